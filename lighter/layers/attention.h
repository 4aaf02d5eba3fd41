#pragma once
/// Keras' attention layers: MultiHeadAttention, Attention (dot-product) and AdditiveAttention.
#include <string>
#include <vector>

#include <torch/nn/pimpl.h>

#include "lighter/layers/core_layers.h"
#include "lighter/layers/layer.h"

namespace lighter::layers {

/// Whether MultiHeadAttention may run ATen's fused scaled_dot_product_attention (LibTorch >= 2.0; on by default).
/// Off, it runs the matmul + softmax + matmul path LibTorch 1.13 uses; both give the same values (tested).
void set_fused_attention(bool enabled);
bool fused_attention_enabled();

struct MultiHeadAttentionOptions {
  MultiHeadAttentionOptions(int64_t num_heads, int64_t key_dim) : num_heads_(num_heads), key_dim_(key_dim) {}
  TORCH_ARG(int64_t, num_heads);
  /// Size of each head for query and key.
  TORCH_ARG(int64_t, key_dim);
  /// Size of each head for value; -1: key_dim (Keras' None).
  TORCH_ARG(int64_t, value_dim) = -1;
  /// Dropout on the attention probabilities, in training.
  TORCH_ARG(double, dropout) = 0.0;
  TORCH_ARG(bool, use_bias) = true;
  /// Last axis of the output; -1: the query's (Keras' None).
  TORCH_ARG(int64_t, output_shape) = -1;
  /// Keras passes use_causal_mask with each call; Lighter keeps it on the layer: step t attends to steps <= t.
  TORCH_ARG(bool, use_causal_mask) = false;
  TORCH_ARG(nlohmann::json, kernel_initializer) = "glorot_uniform";
  TORCH_ARG(nlohmann::json, bias_initializer) = "zeros";
  TORCH_ARG(nlohmann::json, kernel_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, bias_regularizer) = nullptr;
  LIGHTER_LAYER_ARGS
};

/// Keras' MultiHeadAttention on (batch, steps, features) inputs, called on [query, value] or [query, value, key]
/// (key defaults to value); forward(x) is self-attention. The four projections are Dense sub-layers `query`,
/// `key`, `value` and `attention_output` (weights [H·key_dim, features] as torch's Linear stores them; Keras'
/// parameter counts, and Keras' EinsumDense fans for the kernel initializer).
///
/// Masks as Keras 3 combines them: a query step attends to the value steps valid in the value (and key) mask,
/// padded query steps attend to nothing masked out, and use_causal_mask keeps step t from seeing later steps. A
/// fully masked row gets uniform weights, as Keras' softmax with a large negative bias gives. The output carries
/// the query's mask. Runs on ATen's scaled_dot_product_attention on LibTorch >= 2.0, matmul + softmax on 1.13.
class MultiHeadAttentionImpl : public LayerImpl {
 public:
  explicit MultiHeadAttentionImpl(const MultiHeadAttentionOptions& options);

  bool takes_list() const override { return true; }
  bool list_call_positional() const override { return true; }
  bool supports_masking() const override { return true; }
  /// Self-attention: query = value = key = x.
  torch::Tensor forward(const torch::Tensor& x) override { return attend(x, x, x, {}, {}, {}).front(); }
  torch::Tensor forward_masked(const torch::Tensor& x, const torch::Tensor& mask) override {
    return attend(x, x, x, mask, mask, mask).front();
  }
  Shape compute_output_shape(const Shape& input_shape) const override;
  Shape compute_output_shape_list(const std::vector<Shape>& shapes) const override;
  torch::Tensor forward_list(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks) override;
  torch::Tensor compute_mask_list(const std::vector<torch::Tensor>& inputs,
                                  const std::vector<torch::Tensor>& masks) const override;
  nlohmann::json get_config() const override;
  torch::Tensor regularization_loss() const override;
  static std::shared_ptr<MultiHeadAttentionImpl> from_config(ConfigReader& r);

  /// The output and the attention probabilities (batch, heads, query steps, value steps). `attention_mask`
  /// (batch, query steps, value steps), bool, true = may attend, is combined with the masks as Keras does.
  std::vector<torch::Tensor> attend(const torch::Tensor& query, const torch::Tensor& value, const torch::Tensor& key,
                                    const torch::Tensor& query_mask, const torch::Tensor& value_mask,
                                    const torch::Tensor& key_mask, const torch::Tensor& attention_mask = {},
                                    bool return_scores = false);

  /// Incremental causal self-attention (generation): the keys and values of the new steps `x` are appended to
  /// this layer's entry of `cache`, and each new step attends to the cached steps and to new steps up to itself.
  /// ShapeError without use_causal_mask, where earlier outputs would depend on later steps.
  torch::Tensor forward_step(const torch::Tensor& x, DecodeCache& cache) override;
  /// forward_step's computation, also for blocks holding this layer; `padding_mask` (N, total steps) is optional.
  torch::Tensor step_self_attention(const torch::Tensor& x, DecodeCache& cache, const torch::Tensor& padding_mask);
  /// Attention from new query steps to a fixed `memory` (an encoder's output), whose projected keys and values
  /// are computed on the first call and kept in `cache`.
  torch::Tensor step_cross_attention(const torch::Tensor& query, const torch::Tensor& memory,
                                     const torch::Tensor& memory_mask, DecodeCache& cache);

  const MultiHeadAttentionOptions& options() const { return options_; }
  /// Keras passes use_causal_mask per call; a graph read from Keras JSON sets it on the layer.
  void set_use_causal_mask(bool causal) { options_.use_causal_mask(causal); }
  Dense query_dense{nullptr}, key_dense{nullptr}, value_dense{nullptr}, output_dense{nullptr};

 protected:
  void build_impl(const Shape& input_shape) override;
  void build_list_impl(const std::vector<Shape>& input_shapes) override;

 private:
  void build_for(const Shape& query, const Shape& value, const Shape& key);
  void ensure_built(const torch::Tensor& query, const torch::Tensor& value, const torch::Tensor& key);
  torch::Tensor split_heads(const torch::Tensor& x, int64_t dim) const;
  /// Attention on projected heads (N, H, steps, dim) with an additive bias (N or 1, 1, T, S), then the output
  /// projection; the probabilities too when asked (they force the unfused path).
  std::vector<torch::Tensor> attend_heads(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                          const torch::Tensor& bias, bool return_scores);
  int64_t value_dim() const { return options_.value_dim() > 0 ? options_.value_dim() : options_.key_dim(); }
  MultiHeadAttentionOptions options_;
};
TORCH_MODULE(MultiHeadAttention);

struct AttentionOptions {
  /// Attention: a learned scalar multiplying the scores (init 1). AdditiveAttention: a learned vector inside tanh.
  TORCH_ARG(bool, use_scale) = false;
  /// Attention only: "dot" (q·k) or "concat" (Σ tanh(q + k), times a learned scalar).
  TORCH_ARG(std::string, score_mode) = "dot";
  /// Dropout on the attention weights, in training.
  TORCH_ARG(double, dropout) = 0.0;
  /// Keras passes use_causal_mask with each call; Lighter keeps it on the layer.
  TORCH_ARG(bool, use_causal_mask) = false;
  LIGHTER_LAYER_ARGS
};

/// Keras' Attention (Luong-style dot-product, or "concat") and AdditiveAttention (Bahdanau-style): called on
/// [query, value] or [query, value, key] of shapes (batch, Tq, dim) and (batch, Tv, dim); no projections. Value
/// steps masked out get a -1e9 score, query steps masked out give zeros, and the output carries the query's mask,
/// as in Keras 3.
class AttentionImpl : public LayerImpl {
 public:
  explicit AttentionImpl(const AttentionOptions& options = {}, bool additive = false);
  bool takes_list() const override { return true; }
  bool supports_masking() const override { return true; }
  torch::Tensor forward(const torch::Tensor& x) override { return attend({x, x}, {}).front(); }
  Shape compute_output_shape_list(const std::vector<Shape>& shapes) const override;
  torch::Tensor forward_list(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks) override {
    return attend(inputs, masks).front();
  }
  torch::Tensor compute_mask_list(const std::vector<torch::Tensor>& inputs,
                                  const std::vector<torch::Tensor>& masks) const override;
  /// The output and the attention weights (batch, Tq, Tv).
  std::vector<torch::Tensor> attend(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks);
  nlohmann::json get_config() const override;
  static std::shared_ptr<AttentionImpl> from_config(ConfigReader& r);
  static std::shared_ptr<AttentionImpl> additive_from_config(ConfigReader& r);

  const AttentionOptions& options() const { return options_; }
  void set_use_causal_mask(bool causal) { options_.use_causal_mask(causal); }
  bool additive() const { return additive_; }
  /// Attention: `scale` (scalar, with use_scale) and `concat_score_weight` (scalar, score_mode concat);
  /// AdditiveAttention: `scale` of shape (dim) with use_scale.
  torch::Tensor scale, concat_score_weight;

 protected:
  void build_list_impl(const std::vector<Shape>& input_shapes) override;

 private:
  AttentionOptions options_;
  bool additive_;
};
TORCH_MODULE(Attention);

/// Keras' AdditiveAttention (use_scale defaults to true).
class AdditiveAttentionImpl : public AttentionImpl {
 public:
  explicit AdditiveAttentionImpl(const AttentionOptions& options = AttentionOptions().use_scale(true))
      : AttentionImpl(options, true) {}
};
TORCH_MODULE(AdditiveAttention);

}  // namespace lighter::layers
