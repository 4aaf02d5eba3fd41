#pragma once
/// The model base (Keras' `Model`): a torch::nn::Module holding layers, with summary, Keras JSON and the
/// compile/fit/evaluate/predict calls of Keras (implemented by the Trainer in lighter/training).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>

#include "lighter/core/shape.h"
#include "lighter/layers/layer.h"

namespace lighter {
namespace optimizers {
struct OptimizerSpec;
}
namespace losses {
class Loss;
}
namespace metrics {
class Metric;
}
namespace training {
class Trainer;
class History;
struct FitOptions;
struct EvaluateOptions;
}  // namespace training

namespace models {

/// Base of Sequential (and, later, Functional) models.
class ModelImpl : public torch::nn::Module {
 public:
  ModelImpl(std::string class_name, std::string name);
  ~ModelImpl() override;

  const std::string& class_name() const { return class_name_; }
  const std::string& model_name() const { return name_; }

  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  /// The output before the final softmax/sigmoid (see output_activation); losses use it for a stable crossentropy.
  virtual torch::Tensor forward_pre_activation(const torch::Tensor& x) = 0;
  /// The activation the model's output ends with ("softmax", "sigmoid", "linear", ...).
  virtual std::string output_activation() const = 0;

  /// The layers in order (InputLayer excluded, as in Keras' model.layers).
  virtual std::vector<layers::LayerPtr> layers() const = 0;
  /// The layer named `name`; ConfigError listing the names when absent.
  layers::LayerPtr get_layer(const std::string& name) const;

  virtual bool built() const = 0;
  /// Input and output shapes with the batch axis (ShapeError when the model is not built yet).
  virtual Shape input_shape() const = 0;
  virtual Shape output_shape() const = 0;
  /// The dtype of the declared input ("float32", or an integer type for token ids).
  virtual std::string input_dtype() const { return "float32"; }

  /// Keras' `model.to_json()` form: {"class_name": "Sequential", "config": {...}}.
  virtual nlohmann::json to_json() const = 0;

  layers::ParamCount count_params() const;
  /// Keras' summary table (layer and type, output shape, params) ending with the Total/Trainable/Non-trainable lines.
  std::string summary(int line_length = 80) const;

  /// Sum of the layers' regularization penalties (undefined tensor when none).
  torch::Tensor regularization_loss() const;

  /// True when a preprocessing layer (Normalization) still has to learn its statistics.
  bool needs_adapt() const;
  /// Runs `x` through the model, adapting each preprocessing layer to the data that reaches it.
  virtual void adapt(const torch::Tensor& x) = 0;

  // ---- Keras' training API (lighter/training/trainer.cpp) -------------------------------------------------
  /// compile(optimizer, loss, metrics): loss and metrics as Keras names or {"class_name", "config"} objects.
  void compile(const optimizers::OptimizerSpec& optimizer, const nlohmann::json& loss,
               const std::vector<nlohmann::json>& metrics = {});
  void compile(const optimizers::OptimizerSpec& optimizer, std::shared_ptr<losses::Loss> loss,
               std::vector<std::shared_ptr<metrics::Metric>> metrics = {});
  training::History fit(const torch::Tensor& x, const torch::Tensor& y);
  training::History fit(const torch::Tensor& x, const torch::Tensor& y, const training::FitOptions& options);
  std::map<std::string, double> evaluate(const torch::Tensor& x, const torch::Tensor& y);
  std::map<std::string, double> evaluate(const torch::Tensor& x, const torch::Tensor& y,
                                         const training::EvaluateOptions& options);
  torch::Tensor predict(const torch::Tensor& x, int64_t batch_size = 32);
  /// The trainer made by compile (ConfigError when the model was not compiled).
  training::Trainer& trainer();
  bool compiled() const { return trainer_ != nullptr; }

  /// Set by a callback to end fit after the current epoch (Keras' model.stop_training).
  bool stop_training = false;

 protected:
  std::string class_name_, name_;
  std::shared_ptr<training::Trainer> trainer_;
};

using ModelPtr = std::shared_ptr<ModelImpl>;

}  // namespace models
}  // namespace lighter
