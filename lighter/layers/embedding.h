#pragma once
/// Keras' Embedding and Masking layers: the layers that start a masked sequence.
#include <string>
#include <vector>

#include <torch/arg.h>

#include "lighter/layers/layer.h"

namespace lighter::layers {

// ---- Embedding -------------------------------------------------------------------------------------------------

/// Options of Embedding, with Keras' argument names and defaults.
struct EmbeddingOptions {
  EmbeddingOptions(int64_t input_dim, int64_t output_dim) : input_dim_(input_dim), output_dim_(output_dim) {}
  TORCH_ARG(int64_t, input_dim);
  TORCH_ARG(int64_t, output_dim);
  /// Keras' default is RandomUniform(-0.05, 0.05).
  TORCH_ARG(nlohmann::json, embeddings_initializer) = "random_uniform";
  TORCH_ARG(nlohmann::json, embeddings_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, activity_regularizer) = nullptr;
  /// Index 0 is padding: the output mask is `x != 0` (input_dim should then count the padding index).
  TORCH_ARG(bool, mask_zero) = false;
  /// Keras 2's input_length: the sequence length of a first layer (-1 when not given).
  TORCH_ARG(int64_t, input_length) = -1;
  LIGHTER_LAYER_ARGS
};

/// Keras' Embedding: integer ids (N, ...) -> vectors (N, ..., output_dim) through ATen's embedding. The table is
/// registered as `weight` [input_dim, output_dim], as torch::nn::Embedding names it (Keras calls it `embeddings`),
/// so it loads into a torch::nn::Embedding unchanged. Float inputs holding integers are accepted (cast to int64).
class EmbeddingImpl : public LayerImpl {
 public:
  explicit EmbeddingImpl(const EmbeddingOptions& options);
  torch::Tensor forward(const torch::Tensor& x) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  nlohmann::json get_config() const override;
  torch::Tensor regularization_loss() const override;
  /// With mask_zero: `x != 0`, shape (N, T); otherwise undefined (an incoming mask is not passed on, as in Keras).
  torch::Tensor compute_mask(const torch::Tensor& input, const torch::Tensor& mask) const override;
  bool acts_per_step() const override { return true; }
  bool supports_adapter_hook() const override { return true; }
  static std::shared_ptr<EmbeddingImpl> from_config(ConfigReader& r);

  const EmbeddingOptions& options() const { return options_; }
  torch::Tensor weight;

 protected:
  void build_impl(const Shape& input_shape) override;

 private:
  EmbeddingOptions options_;
  torch::Tensor activity_loss_;
};
TORCH_MODULE(Embedding);

// ---- Masking ---------------------------------------------------------------------------------------------------

struct MaskingOptions {
  TORCH_ARG(double, mask_value) = 0.0;
  LIGHTER_LAYER_ARGS
};

/// Keras' Masking: a step whose features all equal mask_value is masked (mask = any(x != mask_value, -1)), and its
/// features are zeroed (output = x · mask).
class MaskingImpl : public LayerImpl {
 public:
  explicit MaskingImpl(const MaskingOptions& options = {});
  torch::Tensor forward(const torch::Tensor& x) override;
  nlohmann::json get_config() const override;
  bool supports_masking() const override { return true; }
  torch::Tensor compute_mask(const torch::Tensor& input, const torch::Tensor& mask) const override;
  static std::shared_ptr<MaskingImpl> from_config(ConfigReader& r);

 private:
  MaskingOptions options_;
};
TORCH_MODULE(Masking);

}  // namespace lighter::layers
