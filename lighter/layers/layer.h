#pragma once
/// The base of every Lighter layer: a torch::nn::Module with Keras' layer contract (name, trainable, build from an
/// input shape, output shape, get_config, weight counts, regularization and masks).
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "lighter/core/json.h"
#include "lighter/core/shape.h"

namespace lighter::layers {

/// Weight counts as Keras' summary reports them.
struct ParamCount {
  int64_t trainable = 0;
  int64_t non_trainable = 0;
  int64_t total() const { return trainable + non_trainable; }
  ParamCount& operator+=(const ParamCount& o) {
    trainable += o.trainable;
    non_trainable += o.non_trainable;
    return *this;
  }
};

/// Arguments every Keras layer takes. `input_shape` (without the batch axis) or `batch_input_shape` declare the
/// input of a first layer, as Keras 2 allowed.
struct LayerArgs {
  std::string name;
  bool trainable = true;
  std::optional<Shape> batch_input_shape;
};

class LayerImpl;

/// A hook through which an adapter (lighter/peft's LoRA and DoRA) changes what a weight-bearing layer computes.
/// Dense, Conv1D/2D/3D and Embedding call it with their input as their op sees it (ids for Embedding; channels-first
/// for convolutions) and the op's output (bias included, before the activation), and go on with what it returns.
/// It is registered as the layer's submodule named LayerImpl::kAdapterHookName, so its parameters train, count and
/// move with the model; model_tensors (the model's weight files) and configs leave it out.
class AdapterHookImpl : public torch::nn::Module {
 public:
  using torch::nn::Module::Module;
  /// The output the layer goes on with, for its input `x` and its own output `output`.
  virtual torch::Tensor apply(const torch::Tensor& x, const torch::Tensor& output) = 0;
};

/// What incremental decoding (generation, one step at a time) keeps between calls: the position of the first new
/// step, and each layer's state (an attention layer's past keys and values), keyed by the layer.
struct DecodeCache {
  int64_t position = 0;
  std::unordered_map<const LayerImpl*, std::vector<torch::Tensor>> entries;
};

/// Base of every layer (Keras' `Layer`). Weights are created by `build` once the input shape is known; their
/// registered names (`weight`, `bias`, `mean`, ...) are the checkpoint keys.
class LayerImpl : public torch::nn::Module {
 public:
  LayerImpl(std::string class_name, LayerArgs args);

  /// Keras' class name (`Dense`).
  const std::string& class_name() const { return class_name_; }
  /// The layer's name in its model (`dense_1`).
  const std::string& layer_name() const { return args_.name; }
  void set_layer_name(std::string name) { args_.name = std::move(name); }

  /// Keras' `trainable`: false freezes every weight of the layer (requires_grad off) and counts it non-trainable.
  bool trainable() const { return args_.trainable; }
  void set_trainable(bool trainable);

  /// Shape of the input declared by the config (batch axis included), if any.
  const std::optional<Shape>& declared_input_shape() const { return args_.batch_input_shape; }

  bool built() const { return built_; }
  /// Creates the weights for `input_shape` (batch axis included, -1 unknown); checks the shape.
  void build(const Shape& input_shape);
  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const { return output_shape_; }

  /// Output shape for an input shape (both with the batch axis). Throws ShapeError for an input it cannot take.
  virtual Shape compute_output_shape(const Shape& input_shape) const { return input_shape; }

  virtual torch::Tensor forward(const torch::Tensor& x) = 0;

  /// Masks (Keras' `mask`): a bool tensor of shape (N, T), true = a valid step, false = a padded one; an undefined
  /// tensor means "no mask". They describe the time axis (axis 1) of sequence inputs (N, T, ...). A layer that
  /// makes a mask (Embedding with mask_zero, Masking) returns it from compute_mask; models carry it from layer to
  /// layer: for each layer, `y = forward_masked(x, mask)` and then `mask = compute_mask(x, mask)`. A layer whose
  /// supports_masking() is false gets forward(x) and drops the mask (with a warning once per layer). When no layer
  /// makes a mask, nothing is allocated and forward(x) is called as before.
  ///
  /// forward with an input mask; the default ignores the mask (right for layers that act on each step alone).
  virtual torch::Tensor forward_masked(const torch::Tensor& x, const torch::Tensor& mask) { return forward(x); }

  /// Several outputs (a recurrent layer with return_state gives [output, h] or [output, h, c]; Bidirectional with
  /// merge_mode None gives [forward, backward, states...]). forward/forward_masked return the first of them.
  virtual int64_t num_outputs() const { return 1; }
  /// All outputs, in Keras' order; the default is {forward_masked(x, mask)}.
  virtual std::vector<torch::Tensor> forward_all(const torch::Tensor& x, const torch::Tensor& mask) {
    return {forward_masked(x, mask)};
  }

  /// Shapes of every output (forward_all's order) for an input shape; the default is {compute_output_shape}.
  virtual std::vector<Shape> compute_output_shapes(const Shape& input_shape) const {
    return {compute_output_shape(input_shape)};
  }

  /// Layers called on a list of tensors (Keras' merge layers: Add, Concatenate, Dot, ...). Such a layer is built
  /// with build_list and run with forward_list; its single-tensor forward is an error.
  virtual bool takes_list() const { return false; }
  /// Builds a list-taking layer for the shapes of its inputs (batch axes included); checks them.
  void build_list(const std::vector<Shape>& input_shapes);
  /// How Keras 3 writes a list call: one list argument (merge layers, false) or one positional argument per tensor
  /// (attention's query, value, key: true).
  virtual bool list_call_positional() const { return false; }
  /// The input shapes a list-taking layer was built for.
  const std::vector<Shape>& input_shapes() const { return input_shapes_; }
  /// The output shape for a list of input shapes (ShapeError naming the layer when they do not fit together).
  virtual Shape compute_output_shape_list(const std::vector<Shape>& input_shapes) const;
  /// The output for a list of inputs and their masks (`masks` empty or one per input, undefined = none).
  virtual torch::Tensor forward_list(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks);
  /// The output mask for a list of inputs (Keras' merge layers: the logical and of the inputs' masks).
  virtual torch::Tensor compute_mask_list(const std::vector<torch::Tensor>& inputs,
                                          const std::vector<torch::Tensor>& masks) const {
    return {};
  }

  /// The activation the layer ends with ("softmax", "sigmoid", ... or "linear"); losses fuse softmax/sigmoid.
  virtual std::string output_activation() const { return "linear"; }
  /// The output before that final activation (the logits when it is softmax or sigmoid).
  virtual torch::Tensor forward_pre_activation(const torch::Tensor& x) { return forward(x); }

  /// Keras' get_config: exactly the constructor arguments (name, trainable, dtype and the layer's own).
  virtual nlohmann::json get_config() const;

  /// Weight counts (parameters by requires_grad, plus weights held as buffers, which are non-trainable).
  virtual ParamCount count_params() const;

  /// Weight and activity regularization penalties of the last forward pass (undefined when the layer has none).
  virtual torch::Tensor regularization_loss() const { return {}; }

  /// Keras' supports_masking: true when the layer passes a mask through unchanged or transforms it.
  virtual bool supports_masking() const { return false; }
  /// The mask of the output for an input mask (Keras' compute_mask); by default passed on when supported. Called
  /// with the layer's input; `mask` may be undefined (the layer may still make one, as Embedding does).
  virtual torch::Tensor compute_mask(const torch::Tensor& input, const torch::Tensor& mask) const {
    return supports_masking() ? mask : torch::Tensor();
  }

  /// Incremental decoding: true when the layer acts on each time step alone (Dense, Activation, Dropout,
  /// Embedding, LayerNormalization over features), so running it on the new steps only gives what the whole
  /// sequence would give at those steps.
  virtual bool acts_per_step() const { return false; }
  /// Runs the layer on new steps `x` (N, t, ...) that sit at positions [cache.position, cache.position + t) of a
  /// sequence whose earlier steps went through before. Attention layers keep their past keys and values in
  /// `cache`; position embeddings use cache.position. The default is forward(x) for layers that act per step and a
  /// ShapeError naming the layer otherwise.
  virtual torch::Tensor forward_step(const torch::Tensor& x, DecodeCache& cache);
  /// Whether a layer that takes_list() may also be called on one tensor (TransformerDecoder without an encoder).
  virtual bool takes_single() const { return !takes_list(); }

  /// Preprocessing layers that learn statistics from data before training (Keras' `adapt`).
  virtual bool needs_adapt() const { return false; }
  virtual void adapt(const torch::Tensor& data) {}
  /// Called after weights were loaded into the layer (adapted statistics count as adapted).
  virtual void on_weights_loaded() {}

  /// The random generators the layer owns (a seeded Dropout's), whose states resumable checkpoints save.
  const std::vector<at::Generator>& generators() const { return generators_; }

  /// The submodule name of an adapter hook; tensor names with this component are adapter tensors.
  static constexpr const char* kAdapterHookName = "adapter_hook";
  /// Whether the layer calls an adapter hook (Dense, Conv1D/2D/3D, Embedding).
  virtual bool supports_adapter_hook() const { return false; }
  /// Attaches `hook` (registered as submodule kAdapterHookName), or removes the current one when null. ShapeError
  /// for a layer that does not support hooks.
  void set_adapter_hook(std::shared_ptr<AdapterHookImpl> hook);
  const std::shared_ptr<AdapterHookImpl>& adapter_hook() const { return adapter_hook_; }

 protected:
  /// Creates weights; `input_shape` has the batch axis.
  virtual void build_impl(const Shape& input_shape) {}
  /// Creates the weights of a list-taking layer for its input shapes.
  virtual void build_list_impl(const std::vector<Shape>& input_shapes) {}
  /// Registers a weight held as a buffer (non-trainable, counted by count_params and saved).
  torch::Tensor register_weight_buffer(const std::string& name, torch::Tensor tensor);
  /// Elements of the weights held as buffers, here and in sub-layers.
  int64_t weight_buffer_count() const;
  /// `output` through the adapter hook, if one is attached.
  torch::Tensor apply_adapter_hook(const torch::Tensor& x, const torch::Tensor& output) const {
    return adapter_hook_ ? adapter_hook_->apply(x, output) : output;
  }
  /// Records a generator the layer draws from (shared handle), for generators(); returns it.
  const c10::optional<at::Generator>& track_generator(const c10::optional<at::Generator>& generator) {
    if (generator) generators_.push_back(*generator);
    return generator;
  }

  std::string class_name_;
  LayerArgs args_;
  bool built_ = false;
  Shape input_shape_, output_shape_;
  std::vector<Shape> input_shapes_;
  std::vector<std::string> weight_buffers_;
  std::vector<at::Generator> generators_;
  std::shared_ptr<AdapterHookImpl> adapter_hook_;
};

using LayerPtr = std::shared_ptr<LayerImpl>;

/// Anything that holds a layer: a ModuleHolder (`Dense(...)`) or a shared_ptr to a LayerImpl subclass.
class LayerRef {
 public:
  template <class T, class = std::enable_if_t<std::is_base_of<LayerImpl, T>::value>>
  LayerRef(const torch::nn::ModuleHolder<T>& holder) : ptr_(holder.ptr()) {}
  template <class T, class = std::enable_if_t<std::is_base_of<LayerImpl, T>::value>>
  LayerRef(std::shared_ptr<T> ptr) : ptr_(std::move(ptr)) {}
  const LayerPtr& ptr() const { return ptr_; }

 private:
  LayerPtr ptr_;
};

namespace detail {
/// Reads name, trainable, dtype and the input-shape keys Keras writes on any layer.
LayerArgs read_layer_args(ConfigReader& r);
/// Writes them back.
nlohmann::json write_layer_args(const LayerArgs& args);
/// Whether a tensor name (`dense.adapter_hook.default.lora_A`) belongs to an adapter hook.
bool is_adapter_tensor_name(const std::string& name);
/// Rank and dimension checks with a ShapeError naming the layer.
void expect_min_rank(const LayerImpl& layer, const Shape& shape, size_t rank);
}  // namespace detail

}  // namespace lighter::layers

/// Declares the arguments every layer options struct carries (name, trainable, input_shape), TORCH_ARG style.
#define LIGHTER_LAYER_ARGS                                        \
  TORCH_ARG(std::string, name) = "";                              \
  TORCH_ARG(bool, trainable) = true;                              \
  /** Input shape without the batch axis (first layer only). */   \
  TORCH_ARG(std::vector<int64_t>, input_shape) = {};              \
                                                                  \
 public:                                                          \
  ::lighter::layers::LayerArgs layer_args() const {               \
    ::lighter::layers::LayerArgs a;                               \
    a.name = name_;                                               \
    a.trainable = trainable_;                                     \
    if (!input_shape_.empty()) {                                  \
      ::lighter::Shape s{-1};                                     \
      s.insert(s.end(), input_shape_.begin(), input_shape_.end()); \
      a.batch_input_shape = s;                                    \
    }                                                             \
    return a;                                                     \
  }
