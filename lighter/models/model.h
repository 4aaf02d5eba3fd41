#pragma once
/// The model base (Keras' `Model`): a torch::nn::Module holding layers, with summary, Keras JSON and the
/// compile/fit/evaluate/predict calls of Keras (implemented by the Trainer in lighter/training).
#include <map>
#include <memory>
#include <set>
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

/// What a model call returns: one tensor per model output, and each output's Keras mask (an undefined tensor when
/// the output carries none; see LayerImpl::forward_masked). The trainer hands the masks to losses and metrics, so
/// padded positions of a sequence output count for nothing.
struct ModelOutputs {
  std::vector<torch::Tensor> values;
  std::vector<torch::Tensor> masks;
};

/// Base of Sequential and Functional models.
class ModelImpl : public torch::nn::Module {
 public:
  ModelImpl(std::string class_name, std::string name);
  ~ModelImpl() override;

  const std::string& class_name() const { return class_name_; }
  const std::string& model_name() const { return name_; }

  /// Runs the model on every input and returns every output with its mask. `masks` is empty or holds one tensor
  /// per input (undefined: none), e.g. the padding mask of a token input; masks made inside the model (Embedding
  /// with mask_zero, Masking) are combined with them as Keras does. Output i is given before its final
  /// softmax/sigmoid when pre_activation[i] is true (empty: all after), which losses use for a stable crossentropy.
  virtual ModelOutputs call(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks = {},
                            const std::vector<bool>& pre_activation = {}) = 0;

  /// The single output for a single input (ShapeError for a model with several inputs or outputs: use call).
  virtual torch::Tensor forward(const torch::Tensor& x);
  /// The output before the final softmax/sigmoid (see output_activation); single input and output.
  virtual torch::Tensor forward_pre_activation(const torch::Tensor& x);
  /// Incremental decoding for generation: runs new steps `x` (N, t) at positions [cache.position, +t) of a
  /// sequence whose earlier steps went through before (see LayerImpl::forward_step), returning the (single)
  /// output for those steps, before its final softmax/sigmoid when `pre_activation`. The caller advances
  /// cache.position. ShapeError for models that cannot (the default; Sequential models of layers that can).
  virtual torch::Tensor forward_step(const torch::Tensor& x, layers::DecodeCache& cache, bool pre_activation);
  /// The activation the (single) output ends with ("softmax", "sigmoid", "linear", ...).
  virtual std::string output_activation() const;

  /// Inputs and outputs: Sequential models have one of each, Functional models any number.
  virtual size_t num_inputs() const { return 1; }
  virtual size_t num_outputs() const { return 1; }
  /// Keras' names: of the Input layers, and of the layers that make the outputs (they name per-output losses,
  /// metrics and logs: "dense_1_loss").
  virtual std::vector<std::string> input_names() const = 0;
  virtual std::vector<std::string> output_names() const = 0;
  /// Shapes (batch axis included) and dtypes of every input, shapes and final activations of every output.
  virtual std::vector<Shape> input_shapes() const { return {input_shape()}; }
  virtual std::vector<std::string> input_dtypes() const { return {input_dtype()}; }
  virtual std::vector<Shape> output_shapes() const { return {output_shape()}; }
  virtual std::vector<std::string> output_activations() const = 0;

  /// The layers in order (InputLayer excluded, as in Keras' model.layers).
  virtual std::vector<layers::LayerPtr> layers() const = 0;
  /// The layer named `name`; ConfigError listing the names when absent.
  layers::LayerPtr get_layer(const std::string& name) const;

  virtual bool built() const = 0;
  /// Input and output shapes with the batch axis (ShapeError when the model is not built yet).
  virtual Shape input_shape() const = 0;
  virtual Shape output_shape() const = 0;
  /// ShapeError unless the model has one input and one output (for the single-tensor API); `what` names the call.
  void expect_single_io(const std::string& what) const;
  /// The dtype of the declared input ("float32", or an integer type for token ids).
  virtual std::string input_dtype() const { return "float32"; }

  /// Keras' `model.to_json()` form: {"class_name": "Sequential", "config": {...}}.
  virtual nlohmann::json to_json() const = 0;

  /// For summary()'s "Connected to" column: the inputs of each call of `layer` ("dense[0][0], ..."); empty for
  /// models without one (Sequential).
  virtual std::string connections_of(const layers::LayerImpl& layer) const { return {}; }

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
  /// Several outputs, in Keras' forms: `loss` one spec for every output, a list with one per output (null: not
  /// trained), or an object by output name; `metrics` a list (for every output), a list of lists (one per
  /// output) or an object by output name; `loss_weights` null, a list or an object by output name.
  void compile(const optimizers::OptimizerSpec& optimizer, const nlohmann::json& loss, const nlohmann::json& metrics,
               const nlohmann::json& loss_weights);
  training::History fit(const torch::Tensor& x, const torch::Tensor& y);
  /// Several inputs and outputs: one tensor per model input and per output, in the model's order.
  training::History fit(const std::vector<torch::Tensor>& x, const std::vector<torch::Tensor>& y,
                        const training::FitOptions& options);
  std::map<std::string, double> evaluate(const std::vector<torch::Tensor>& x, const std::vector<torch::Tensor>& y,
                                         const training::EvaluateOptions& options);
  /// Every output for every sample, batch by batch (on the CPU).
  std::vector<torch::Tensor> predict(const std::vector<torch::Tensor>& x, int64_t batch_size = 32);
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
  /// A mask reached a layer without mask support: Keras 2 raised here and Keras 3 drops it; Lighter drops it and
  /// says so once per layer.
  void warn_mask_dropped(const layers::LayerImpl& layer);

  /// One row of summary()'s table: "name (Class)", output shape, parameter count and the "Connected to" cell
  /// (shown for every model but Sequential).
  struct SummaryRow {
    std::string layer, output_shape;
    int64_t params = 0;
    std::string connected_to;
  };
  /// The rows of summary()'s table: one per layer by default; models made of other models (Ensemble) list those.
  virtual std::vector<SummaryRow> summary_rows() const;

  std::string class_name_, name_;
  std::shared_ptr<training::Trainer> trainer_;
  std::set<const layers::LayerImpl*> mask_dropped_warned_;
};

using ModelPtr = std::shared_ptr<ModelImpl>;

}  // namespace models
}  // namespace lighter
