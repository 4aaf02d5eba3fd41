#pragma once
/// Keras' attention layers: MultiHeadAttention, Attention (dot-product) and AdditiveAttention.
#include <string>
#include <vector>

#include <torch/nn/pimpl.h>

#include "lighter/layers/core_layers.h"
#include "lighter/layers/layer.h"

namespace lighter::layers {

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

  const MultiHeadAttentionOptions& options() const { return options_; }
  Dense query_dense{nullptr}, key_dense{nullptr}, value_dense{nullptr}, output_dense{nullptr};

 protected:
  void build_impl(const Shape& input_shape) override;
  void build_list_impl(const std::vector<Shape>& input_shapes) override;

 private:
  void build_for(const Shape& query, const Shape& value, const Shape& key);
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
