#pragma once
/// Keras' Normalization preprocessing layer.
#include <vector>

#include <torch/arg.h>

#include "lighter/layers/layer.h"

namespace lighter::layers {

struct NormalizationOptions {
  /// The feature axis (Keras' default -1): one mean and variance per entry of that axis.
  TORCH_ARG(int64_t, axis) = -1;
  /// Fixed statistics; when empty they are learned by `adapt` (automatically before fit).
  TORCH_ARG(std::vector<double>, mean) = {};
  TORCH_ARG(std::vector<double>, variance) = {};
  /// Undo a normalization instead: x * sqrt(variance) + mean.
  TORCH_ARG(bool, invert) = false;
  LIGHTER_LAYER_ARGS
};

/// Keras' Normalization: (x - mean) / max(sqrt(variance), 1e-7). The statistics are non-trainable weights
/// (`mean`, `variance` and the sample `count`), saved with the model; Keras counts them (2 × features + 1) as
/// non-trainable params. Fixed statistics given in the config are constants, not weights, as in Keras.
class NormalizationImpl : public LayerImpl {
 public:
  explicit NormalizationImpl(const NormalizationOptions& options = {});
  torch::Tensor forward(const torch::Tensor& x) override;
  nlohmann::json get_config() const override;
  bool supports_masking() const override { return true; }
  bool needs_adapt() const override { return !adapted_; }
  /// Learns mean and (population) variance of `data` over every axis but the feature axis.
  void adapt(const torch::Tensor& data) override;
  void on_weights_loaded() override { adapted_ = true; }
  ParamCount count_params() const override;
  static std::shared_ptr<NormalizationImpl> from_config(ConfigReader& r);

  torch::Tensor mean, variance, count;

 protected:
  void build_impl(const Shape& input_shape) override;

 private:
  int64_t feature_axis(int64_t rank) const;
  std::vector<int64_t> broadcast_shape(int64_t rank) const;
  NormalizationOptions options_;
  bool fixed_ = false;
  bool adapted_ = false;
};
TORCH_MODULE(Normalization);

}  // namespace lighter::layers
