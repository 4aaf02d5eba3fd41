#pragma once
/// Keras' normalization layers: BatchNormalization, LayerNormalization, GroupNormalization, UnitNormalization.
#include <algorithm>
#include <string>
#include <vector>

#include <torch/arg.h>

#include "lighter/layers/layer.h"

namespace lighter::layers {

// ---- BatchNormalization ---------------------------------------------------------------------------------------

/// Options of BatchNormalization, with Keras' argument names and defaults.
struct BatchNormalizationOptions {
  /// The feature axis (any single axis but the batch axis; Keras' default -1, use 1 after channels_first layers).
  TORCH_ARG(int64_t, axis) = -1;
  /// Keras' momentum of the moving statistics (torch's momentum is 1 - this).
  TORCH_ARG(double, momentum) = 0.99;
  TORCH_ARG(double, epsilon) = 1e-3;
  /// Learn an offset `beta` (registered as `bias`).
  TORCH_ARG(bool, center) = true;
  /// Learn a scale `gamma` (registered as `weight`).
  TORCH_ARG(bool, scale) = true;
  TORCH_ARG(nlohmann::json, beta_initializer) = "zeros";
  TORCH_ARG(nlohmann::json, gamma_initializer) = "ones";
  TORCH_ARG(nlohmann::json, moving_mean_initializer) = "zeros";
  TORCH_ARG(nlohmann::json, moving_variance_initializer) = "ones";
  TORCH_ARG(nlohmann::json, beta_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, gamma_regularizer) = nullptr;
  LIGHTER_LAYER_ARGS
};

/// Keras' BatchNormalization: gamma · (x - mean) / sqrt(var + epsilon) + beta per feature of `axis`.
/// Training uses the batch statistics and updates the moving ones Keras' way,
///   moving = momentum · moving + (1 - momentum) · batch_statistic,
/// with the biased batch variance (torch's running_var uses the unbiased one; the update is corrected).
/// Inference, and training of a layer with trainable=false (as in Keras 3), uses the moving statistics.
/// Weights: `weight` (gamma) and `bias` (beta) parameters, `running_mean` and `running_var` non-trainable weights,
/// as torch::nn::BatchNorm names them. Runs ATen's fused batch_norm on a view with the feature axis at dim 1.
class BatchNormalizationImpl : public LayerImpl {
 public:
  explicit BatchNormalizationImpl(const BatchNormalizationOptions& options = {});
  torch::Tensor forward(const torch::Tensor& x) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  nlohmann::json get_config() const override;
  torch::Tensor regularization_loss() const override;
  bool supports_masking() const override { return true; }
  static std::shared_ptr<BatchNormalizationImpl> from_config(ConfigReader& r);

  const BatchNormalizationOptions& options() const { return options_; }
  torch::Tensor weight, bias, running_mean, running_var;

 protected:
  void build_impl(const Shape& input_shape) override;

 private:
  int64_t feature_axis(size_t rank) const;
  torch::Tensor normalize_single_sample(const torch::Tensor& xc);
  BatchNormalizationOptions options_;
};
TORCH_MODULE(BatchNormalization);

// ---- LayerNormalization ---------------------------------------------------------------------------------------

struct LayerNormalizationOptions {
  /// The axis or axes to normalize over (each sample on its own); gamma and beta span them.
  TORCH_ARG(std::vector<int64_t>, axis) = {-1};
  TORCH_ARG(double, epsilon) = 1e-3;
  TORCH_ARG(bool, center) = true;
  TORCH_ARG(bool, scale) = true;
  /// Keras' rms_scaling: x · rsqrt(var(x) + epsilon) · gamma, no beta (center and scale are then ignored).
  TORCH_ARG(bool, rms_scaling) = false;
  TORCH_ARG(nlohmann::json, beta_initializer) = "zeros";
  TORCH_ARG(nlohmann::json, gamma_initializer) = "ones";
  TORCH_ARG(nlohmann::json, beta_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, gamma_regularizer) = nullptr;
  LIGHTER_LAYER_ARGS
};

/// Keras' LayerNormalization: (x - mean) / sqrt(var + epsilon) · gamma + beta, statistics over `axis` per sample.
/// Trailing axes run ATen's fused layer_norm; other axes the same formula with ATen reductions. Weights `weight`
/// (gamma) and `bias` (beta) with the shape of the normalized axes, in the order given.
class LayerNormalizationImpl : public LayerImpl {
 public:
  explicit LayerNormalizationImpl(const LayerNormalizationOptions& options = {});
  torch::Tensor forward(const torch::Tensor& x) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  nlohmann::json get_config() const override;
  torch::Tensor regularization_loss() const override;
  bool supports_masking() const override { return true; }
  /// Per step when the normalized axes leave out the time axis (axis 1).
  bool acts_per_step() const override { return built_ && std::find(axes_.begin(), axes_.end(), 1) == axes_.end(); }
  static std::shared_ptr<LayerNormalizationImpl> from_config(ConfigReader& r);

  const LayerNormalizationOptions& options() const { return options_; }
  torch::Tensor weight, bias;

 protected:
  void build_impl(const Shape& input_shape) override;

 private:
  std::vector<int64_t> resolved_axes(size_t rank) const;
  LayerNormalizationOptions options_;
  std::vector<int64_t> axes_;         // resolved at build (non-negative, in the order given)
  std::vector<int64_t> norm_shape_;   // the sizes of those axes
  bool trailing_ = false;             // the axes are the last ones, in order: fused layer_norm applies
};
TORCH_MODULE(LayerNormalization);

// ---- GroupNormalization ---------------------------------------------------------------------------------------

struct GroupNormalizationOptions {
  /// Number of groups the channels are split into (-1: one per channel, i.e. instance normalization).
  TORCH_ARG(int64_t, groups) = 32;
  /// The channel axis.
  TORCH_ARG(int64_t, axis) = -1;
  TORCH_ARG(double, epsilon) = 1e-3;
  TORCH_ARG(bool, center) = true;
  TORCH_ARG(bool, scale) = true;
  TORCH_ARG(nlohmann::json, beta_initializer) = "zeros";
  TORCH_ARG(nlohmann::json, gamma_initializer) = "ones";
  TORCH_ARG(nlohmann::json, beta_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, gamma_regularizer) = nullptr;
  LIGHTER_LAYER_ARGS
};

/// Keras' GroupNormalization: channels split into `groups` consecutive groups, each normalized per sample over its
/// channels and all other non-batch axes, then scaled and shifted per channel. Runs ATen's group_norm on a view with
/// the channel axis at dim 1; `groups` must divide the number of channels.
class GroupNormalizationImpl : public LayerImpl {
 public:
  explicit GroupNormalizationImpl(const GroupNormalizationOptions& options = {});
  torch::Tensor forward(const torch::Tensor& x) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  nlohmann::json get_config() const override;
  torch::Tensor regularization_loss() const override;
  bool supports_masking() const override { return true; }
  static std::shared_ptr<GroupNormalizationImpl> from_config(ConfigReader& r);

  const GroupNormalizationOptions& options() const { return options_; }
  torch::Tensor weight, bias;

 protected:
  void build_impl(const Shape& input_shape) override;

 private:
  int64_t channel_axis(size_t rank) const;
  GroupNormalizationOptions options_;
  int64_t groups_ = 0;  // resolved at build (-1 -> channels)
};
TORCH_MODULE(GroupNormalization);

// ---- UnitNormalization ----------------------------------------------------------------------------------------

struct UnitNormalizationOptions {
  /// The axis or axes over which each sample gets unit L2 norm.
  TORCH_ARG(std::vector<int64_t>, axis) = {-1};
  LIGHTER_LAYER_ARGS
};

/// Keras' UnitNormalization: x · rsqrt(max(Σ x², 1e-12)) over `axis` (Keras 3's formula). No weights.
class UnitNormalizationImpl : public LayerImpl {
 public:
  explicit UnitNormalizationImpl(const UnitNormalizationOptions& options = {});
  torch::Tensor forward(const torch::Tensor& x) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  nlohmann::json get_config() const override;
  bool supports_masking() const override { return true; }
  static std::shared_ptr<UnitNormalizationImpl> from_config(ConfigReader& r);

 private:
  std::vector<int64_t> resolved_axes(size_t rank) const;
  UnitNormalizationOptions options_;
};
TORCH_MODULE(UnitNormalization);

}  // namespace lighter::layers
