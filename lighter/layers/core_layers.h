#pragma once
/// Keras' core layers: InputLayer, Dense, Activation, Dropout, Flatten.
#include <string>
#include <vector>

#include <torch/arg.h>

#include "lighter/layers/activations.h"
#include "lighter/layers/layer.h"

namespace lighter::layers {

// ---- InputLayer ------------------------------------------------------------------------------------------

/// Keras' InputLayer: declares the input shape of a model (the batch axis is added, unknown unless batch_size).
struct InputLayerOptions {
  /* implicit */ InputLayerOptions(std::vector<int64_t> shape) : shape_(std::move(shape)) {}
  TORCH_ARG(std::vector<int64_t>, shape);
  TORCH_ARG(int64_t, batch_size) = -1;
  TORCH_ARG(std::string, name) = "";
  /// Keras' dtype of the input: float32, or an integer type for token ids.
  TORCH_ARG(std::string, dtype) = "float32";
};

class InputLayerImpl : public LayerImpl {
 public:
  explicit InputLayerImpl(const InputLayerOptions& options);
  InputLayerImpl(const Shape& batch_shape, std::string name, std::string dtype);
  const Shape& batch_shape() const { return batch_shape_; }
  const std::string& dtype() const { return dtype_; }
  torch::Tensor forward(const torch::Tensor& x) override { return x; }
  nlohmann::json get_config() const override;
  static std::shared_ptr<InputLayerImpl> from_config(ConfigReader& r);

 private:
  Shape batch_shape_;
  std::string dtype_;
};
TORCH_MODULE(InputLayer);

/// Keras' `keras.Input(shape)`: the first element of a Sequential model.
InputLayer Input(std::vector<int64_t> shape, const std::string& name = "");

// ---- Dense -------------------------------------------------------------------------------------------------

/// Options of Dense, with Keras' argument names and defaults.
struct DenseOptions {
  /* implicit */ DenseOptions(int64_t units) : units_(units) {}
  TORCH_ARG(int64_t, units);
  TORCH_ARG(std::string, activation) = "linear";
  TORCH_ARG(bool, use_bias) = true;
  TORCH_ARG(nlohmann::json, kernel_initializer) = "glorot_uniform";
  TORCH_ARG(nlohmann::json, bias_initializer) = "zeros";
  TORCH_ARG(nlohmann::json, kernel_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, bias_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, activity_regularizer) = nullptr;
  LIGHTER_LAYER_ARGS
};

/// Keras' Dense: activation(x · kernel + bias) on the last axis. The weight is stored as torch's Linear stores it,
/// [units, inputs] (Keras' kernel transposed), so `weight`/`bias` load into torch::nn::Linear unchanged.
class DenseImpl : public LayerImpl {
 public:
  explicit DenseImpl(const DenseOptions& options);
  torch::Tensor forward(const torch::Tensor& x) override;
  torch::Tensor forward_pre_activation(const torch::Tensor& x) override;
  std::string output_activation() const override { return options_.activation(); }
  Shape compute_output_shape(const Shape& input_shape) const override;
  nlohmann::json get_config() const override;
  torch::Tensor regularization_loss() const override;
  bool supports_masking() const override { return true; }
  bool acts_per_step() const override { return true; }
  bool supports_adapter_hook() const override { return true; }
  static std::shared_ptr<DenseImpl> from_config(ConfigReader& r);

  const DenseOptions& options() const { return options_; }
  torch::Tensor weight, bias;

 protected:
  void build_impl(const Shape& input_shape) override;

 private:
  torch::Tensor linear(const torch::Tensor& x) const;
  void record_activity(const torch::Tensor& output);
  DenseOptions options_;
  activations::Function activation_;
  torch::Tensor activity_loss_;
};
TORCH_MODULE(Dense);

// ---- Activation -------------------------------------------------------------------------------------------

struct ActivationOptions {
  /* implicit */ ActivationOptions(std::string activation) : activation_(std::move(activation)) {}
  /* implicit */ ActivationOptions(const char* activation) : activation_(activation) {}
  TORCH_ARG(std::string, activation);
  LIGHTER_LAYER_ARGS
};

/// Keras' Activation layer.
class ActivationImpl : public LayerImpl {
 public:
  explicit ActivationImpl(const ActivationOptions& options);
  torch::Tensor forward(const torch::Tensor& x) override { return activation_(x); }
  std::string output_activation() const override { return options_.activation(); }
  torch::Tensor forward_pre_activation(const torch::Tensor& x) override { return x; }
  nlohmann::json get_config() const override;
  bool supports_masking() const override { return true; }
  bool acts_per_step() const override { return true; }
  static std::shared_ptr<ActivationImpl> from_config(ConfigReader& r);

 private:
  ActivationOptions options_;
  activations::Function activation_;
};
TORCH_MODULE(Activation);

// ---- Dropout -------------------------------------------------------------------------------------------------

struct DropoutOptions {
  /* implicit */ DropoutOptions(double rate) : rate_(rate) {}
  TORCH_ARG(double, rate);
  /// Seeds this layer's own generator (reproducible masks independent of the global seed); -1 uses the global one.
  TORCH_ARG(int64_t, seed) = -1;
  LIGHTER_LAYER_ARGS
};

/// Keras' Dropout: zeroes inputs with probability `rate` during training and scales the rest by 1/(1-rate).
class DropoutImpl : public LayerImpl {
 public:
  explicit DropoutImpl(const DropoutOptions& options);
  torch::Tensor forward(const torch::Tensor& x) override;
  nlohmann::json get_config() const override;
  bool supports_masking() const override { return true; }
  bool acts_per_step() const override { return true; }
  static std::shared_ptr<DropoutImpl> from_config(ConfigReader& r);

 private:
  DropoutOptions options_;
  c10::optional<at::Generator> generator_;
};
TORCH_MODULE(Dropout);

// ---- Flatten --------------------------------------------------------------------------------------------------

struct FlattenOptions {
  /// "channels_last" (Keras' default) or "channels_first" (moved to channels_last before flattening, as Keras does).
  TORCH_ARG(std::string, data_format) = "channels_last";
  LIGHTER_LAYER_ARGS
};

/// Keras' Flatten: (N, d1, d2, ...) -> (N, d1·d2·...).
class FlattenImpl : public LayerImpl {
 public:
  explicit FlattenImpl(const FlattenOptions& options = {});
  torch::Tensor forward(const torch::Tensor& x) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  nlohmann::json get_config() const override;
  static std::shared_ptr<FlattenImpl> from_config(ConfigReader& r);

 private:
  FlattenOptions options_;
};
TORCH_MODULE(Flatten);

}  // namespace lighter::layers
