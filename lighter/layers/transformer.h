#pragma once
/// Transformer building blocks in the spirit of KerasHub's: PositionEmbedding, SinePositionEncoding,
/// TokenAndPositionEmbedding, TransformerEncoder and TransformerDecoder (same arguments, defaults, sub-layer names
/// and parameter counts).
#include <string>
#include <vector>

#include <torch/arg.h>

#include "lighter/layers/attention.h"
#include "lighter/layers/embedding.h"
#include "lighter/layers/layer.h"
#include "lighter/layers/normalization.h"

namespace lighter::layers {

// ---- Position embeddings ----------------------------------------------------------------------------------------

struct PositionEmbeddingOptions {
  /* implicit */ PositionEmbeddingOptions(int64_t sequence_length) : sequence_length_(sequence_length) {}
  /// The longest sequence the layer takes (rows of the table).
  TORCH_ARG(int64_t, sequence_length);
  TORCH_ARG(nlohmann::json, initializer) = "glorot_uniform";
  LIGHTER_LAYER_ARGS
};

/// KerasHub's PositionEmbedding: a learned vector per position. On (N, T, dim) inputs it returns the first T rows
/// of its table `embeddings` [sequence_length, dim], broadcast to the input's shape (add it to the input). Masks
/// pass through.
class PositionEmbeddingImpl : public LayerImpl {
 public:
  explicit PositionEmbeddingImpl(const PositionEmbeddingOptions& options);
  torch::Tensor forward(const torch::Tensor& x) override { return positions(x, 0); }
  torch::Tensor forward_step(const torch::Tensor& x, DecodeCache& cache) override { return positions(x, cache.position); }
  bool supports_masking() const override { return true; }
  nlohmann::json get_config() const override;
  static std::shared_ptr<PositionEmbeddingImpl> from_config(ConfigReader& r);
  /// The embeddings of positions [start, start + T) for an (N, T, dim) input, shaped like it.
  torch::Tensor positions(const torch::Tensor& x, int64_t start);

  const PositionEmbeddingOptions& options() const { return options_; }
  torch::Tensor embeddings;

 protected:
  void build_impl(const Shape& input_shape) override;

 private:
  PositionEmbeddingOptions options_;
};
TORCH_MODULE(PositionEmbedding);

struct SinePositionEncodingOptions {
  TORCH_ARG(double, max_wavelength) = 10000.0;
  LIGHTER_LAYER_ARGS
};

/// KerasHub's SinePositionEncoding (Vaswani et al. 2017, section 3.5): on (N, T, dim) inputs it returns, shaped like
/// the input, sin(p / w^(2i/dim)) at even features 2i and cos(p / w^(2i/dim)) at odd features 2i+1 of position p,
/// with w = max_wavelength. No weights; add it to the input. Masks pass through.
class SinePositionEncodingImpl : public LayerImpl {
 public:
  explicit SinePositionEncodingImpl(const SinePositionEncodingOptions& options = {});
  torch::Tensor forward(const torch::Tensor& x) override { return encoding(x, 0); }
  torch::Tensor forward_step(const torch::Tensor& x, DecodeCache& cache) override { return encoding(x, cache.position); }
  bool supports_masking() const override { return true; }
  nlohmann::json get_config() const override;
  static std::shared_ptr<SinePositionEncodingImpl> from_config(ConfigReader& r);
  /// The encoding of positions [start, start + T) for an (N, T, dim) input, shaped like it.
  torch::Tensor encoding(const torch::Tensor& x, int64_t start) const;

 protected:
  void build_impl(const Shape& input_shape) override;

 private:
  SinePositionEncodingOptions options_;
};
TORCH_MODULE(SinePositionEncoding);

struct TokenAndPositionEmbeddingOptions {
  TokenAndPositionEmbeddingOptions(int64_t vocabulary_size, int64_t sequence_length, int64_t embedding_dim)
      : vocabulary_size_(vocabulary_size), sequence_length_(sequence_length), embedding_dim_(embedding_dim) {}
  TORCH_ARG(int64_t, vocabulary_size);
  TORCH_ARG(int64_t, sequence_length);
  TORCH_ARG(int64_t, embedding_dim);
  /// KerasHub's flag for reusing the token table as the output projection; kept in the config (Lighter models
  /// end with their own Dense).
  TORCH_ARG(bool, tie_weights) = true;
  /// For both tables; KerasHub's "uniform" is RandomUniform(-0.05, 0.05).
  TORCH_ARG(nlohmann::json, embeddings_initializer) = "uniform";
  /// Id 0 is padding: the output mask is `x != 0`.
  TORCH_ARG(bool, mask_zero) = false;
  LIGHTER_LAYER_ARGS
};

/// KerasHub's TokenAndPositionEmbedding: integer ids (N, T) -> token embedding + learned position embedding
/// (N, T, embedding_dim). Sub-layers `token_embedding` (an Embedding) and `position_embedding` (a
/// PositionEmbedding); parameters vocabulary_size·dim + sequence_length·dim.
class TokenAndPositionEmbeddingImpl : public LayerImpl {
 public:
  explicit TokenAndPositionEmbeddingImpl(const TokenAndPositionEmbeddingOptions& options);
  torch::Tensor forward(const torch::Tensor& x) override;
  torch::Tensor forward_step(const torch::Tensor& x, DecodeCache& cache) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  torch::Tensor compute_mask(const torch::Tensor& input, const torch::Tensor& mask) const override;
  nlohmann::json get_config() const override;
  static std::shared_ptr<TokenAndPositionEmbeddingImpl> from_config(ConfigReader& r);

  const TokenAndPositionEmbeddingOptions& options() const { return options_; }
  Embedding token_embedding{nullptr};
  PositionEmbedding position_embedding{nullptr};

 protected:
  void build_impl(const Shape& input_shape) override;

 private:
  TokenAndPositionEmbeddingOptions options_;
};
TORCH_MODULE(TokenAndPositionEmbedding);

// ---- Transformer blocks -----------------------------------------------------------------------------------------

/// Arguments of TransformerEncoder and TransformerDecoder (KerasHub's names and defaults).
struct TransformerOptions {
  TransformerOptions(int64_t intermediate_dim, int64_t num_heads)
      : intermediate_dim_(intermediate_dim), num_heads_(num_heads) {}
  /// Width of the feed-forward network's hidden layer.
  TORCH_ARG(int64_t, intermediate_dim);
  /// Attention heads; each has hidden_dim / num_heads features.
  TORCH_ARG(int64_t, num_heads);
  /// Dropout on the attention probabilities and after each sub-block, in training.
  TORCH_ARG(double, dropout) = 0.0;
  /// The feed-forward network's hidden activation.
  TORCH_ARG(std::string, activation) = "relu";
  TORCH_ARG(double, layer_norm_epsilon) = 1e-5;
  TORCH_ARG(nlohmann::json, kernel_initializer) = "glorot_uniform";
  TORCH_ARG(nlohmann::json, bias_initializer) = "zeros";
  /// Pre-norm (LayerNormalization before each sub-block, GPT-2 style) instead of post-norm (after the residual
  /// sum, as in the original transformer).
  TORCH_ARG(bool, normalize_first) = false;
  LIGHTER_LAYER_ARGS
};

/// What the encoder and decoder share: options, the feed-forward sub-block and the residual wiring.
class TransformerBlockImpl : public LayerImpl {
 public:
  TransformerBlockImpl(std::string class_name, const TransformerOptions& options);
  bool supports_masking() const override { return true; }
  nlohmann::json get_config() const override;
  const TransformerOptions& options() const { return options_; }

  LayerNormalization feedforward_layer_norm{nullptr};
  Dense feedforward_intermediate_dense{nullptr}, feedforward_output_dense{nullptr};

 protected:
  /// Checks the (N, T, hidden) input shape; hidden / num_heads must be at least 1.
  int64_t head_dim_for(const Shape& input_shape) const;
  MultiHeadAttention make_attention(const std::string& name, int64_t head_dim, const Shape& query, const Shape& value);
  LayerNormalization make_layer_norm(const std::string& name, const Shape& input_shape);
  void build_feedforward(const Shape& input_shape);
  /// residual + dropout(f(norm(x))) with the norm before (normalize_first) or after the sum.
  template <class F>
  torch::Tensor residual(const torch::Tensor& x, const LayerNormalization& norm, F&& f);
  torch::Tensor feedforward(const torch::Tensor& x);
  TransformerOptions options_;
};

/// KerasHub's TransformerEncoder: self-attention and a feed-forward network, each with a residual connection,
/// dropout and LayerNormalization. Sub-layers `self_attention_layer`, `self_attention_layer_norm`,
/// `feedforward_intermediate_dense`, `feedforward_output_dense`, `feedforward_layer_norm`. The input's mask (or
/// `padding_mask`) hides padded steps as keys; the output carries the input's mask.
class TransformerEncoderImpl : public TransformerBlockImpl {
 public:
  TransformerEncoderImpl(const TransformerOptions& options);
  torch::Tensor forward(const torch::Tensor& x) override { return encode(x, {}, {}); }
  torch::Tensor forward_masked(const torch::Tensor& x, const torch::Tensor& mask) override { return encode(x, mask, {}); }
  static std::shared_ptr<TransformerEncoderImpl> from_config(ConfigReader& r);
  /// `padding_mask` (N, T) true = valid step; `attention_mask` (N, T, T) true = may attend; either may be undefined.
  torch::Tensor encode(const torch::Tensor& x, const torch::Tensor& padding_mask, const torch::Tensor& attention_mask);

  MultiHeadAttention self_attention_layer{nullptr};
  LayerNormalization self_attention_layer_norm{nullptr};

 protected:
  void build_impl(const Shape& input_shape) override;
};
TORCH_MODULE(TransformerEncoder);

/// KerasHub's TransformerDecoder: causal self-attention, then (when called on [decoder_sequence,
/// encoder_sequence]) cross-attention to the encoder's output, then a feed-forward network, each with a residual
/// connection, dropout and LayerNormalization. Called on one tensor it is a decoder-only (GPT-style) block with no
/// cross-attention weights, as KerasHub builds it without an encoder_sequence. Sub-layers `self_attention`,
/// `self_attention_layer_norm`, `cross_attention`, `cross_attention_layer_norm`, `feedforward_*`. Masks: the
/// decoder's hides padded keys in self-attention, the encoder's hides padded encoder steps; the output carries the
/// decoder's. Decodes step by step with a cache of past keys and values (forward_step, step).
class TransformerDecoderImpl : public TransformerBlockImpl {
 public:
  TransformerDecoderImpl(const TransformerOptions& options);
  bool takes_list() const override { return true; }
  bool takes_single() const override { return true; }
  bool list_call_positional() const override { return true; }
  torch::Tensor forward(const torch::Tensor& x) override { return decode(x, {}, {}, {}); }
  torch::Tensor forward_masked(const torch::Tensor& x, const torch::Tensor& mask) override { return decode(x, mask, {}, {}); }
  Shape compute_output_shape_list(const std::vector<Shape>& shapes) const override;
  torch::Tensor forward_list(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks) override;
  torch::Tensor compute_mask_list(const std::vector<torch::Tensor>& inputs,
                                  const std::vector<torch::Tensor>& masks) const override;
  /// Decoder-only incremental decoding (see LayerImpl::forward_step).
  torch::Tensor forward_step(const torch::Tensor& x, DecodeCache& cache) override { return step(x, {}, {}, cache); }
  static std::shared_ptr<TransformerDecoderImpl> from_config(ConfigReader& r);

  /// The full computation: `decoder_mask` (N, T) and `encoder_mask` (N, S) true = valid; `encoder` undefined for a
  /// decoder-only block.
  torch::Tensor decode(const torch::Tensor& x, const torch::Tensor& decoder_mask, const torch::Tensor& encoder,
                       const torch::Tensor& encoder_mask);
  /// New decoder steps at positions [cache.position, +t), attending to the cached steps (and to `encoder`, whose
  /// projected keys and values are cached on the first call); equals the matching rows of decode().
  torch::Tensor step(const torch::Tensor& x, const torch::Tensor& encoder, const torch::Tensor& encoder_mask,
                     DecodeCache& cache);
  bool has_cross_attention() const { return !cross_attention.is_empty(); }

  MultiHeadAttention self_attention{nullptr}, cross_attention{nullptr};
  LayerNormalization self_attention_layer_norm{nullptr}, cross_attention_layer_norm{nullptr};

 protected:
  void build_impl(const Shape& input_shape) override;
  void build_list_impl(const std::vector<Shape>& input_shapes) override;

 private:
  void build_blocks(const Shape& decoder, const Shape* encoder);
};
TORCH_MODULE(TransformerDecoder);

}  // namespace lighter::layers
