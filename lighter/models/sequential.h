#pragma once
/// Keras' Sequential model.
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include <torch/nn/pimpl.h>

#include "lighter/layers/core_layers.h"
#include "lighter/models/model.h"

namespace lighter::models {

/// A plain stack of layers. Built as soon as its input shape is known: from an Input/InputLayer first element or
/// a first layer with input_shape; otherwise on the first forward call (or `build`).
class SequentialImpl : public ModelImpl {
 public:
  explicit SequentialImpl(std::string name = "sequential");
  SequentialImpl(std::initializer_list<layers::LayerRef> layers, std::string name = "sequential");
  SequentialImpl(const std::vector<layers::LayerRef>& layers, std::string name = "sequential");

  /// Appends a layer (Keras' model.add); an InputLayer is only allowed first; a layer with several outputs (an
  /// RNN with return_state) is refused, as Keras refuses it. Names are made unique Keras' way
  /// (dense, dense_1, ...); a duplicate explicit name is a ConfigError.
  void add(const layers::LayerRef& layer);
  /// Builds every layer for `input_shape` (batch axis included).
  void build(const Shape& input_shape);

  /// Runs the layers in order, carrying Keras masks (see LayerImpl::forward_masked): a mask made by one layer
  /// (Embedding with mask_zero, Masking) reaches the next ones while they support masking.
  torch::Tensor forward(const torch::Tensor& x) override;
  torch::Tensor forward_pre_activation(const torch::Tensor& x) override;
  std::string output_activation() const override;
  /// Each layer's forward_step in turn (masks play no part: generated sequences have no padding).
  torch::Tensor forward_step(const torch::Tensor& x, layers::DecodeCache& cache, bool pre_activation) override;
  /// One input, one output: its value (pre-activation when asked) and the mask the last layer leaves on it.
  ModelOutputs call(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks = {},
                    const std::vector<bool>& pre_activation = {}) override;
  std::vector<std::string> input_names() const override;
  std::vector<std::string> output_names() const override;
  std::vector<std::string> output_activations() const override { return {output_activation()}; }
  std::vector<layers::LayerPtr> layers() const override { return layers_; }
  bool built() const override { return built_; }
  Shape input_shape() const override;
  Shape output_shape() const override;
  std::string input_dtype() const override { return input_dtype_; }
  nlohmann::json to_json() const override;
  void adapt(const torch::Tensor& x) override;

 private:
  void check_input(const torch::Tensor& x) const;
  void build_for(const torch::Tensor& x);
  /// Runs layers [0, end) carrying Keras masks; `mask` is undefined while no layer made one.
  torch::Tensor run_layers(const torch::Tensor& x, size_t end, torch::Tensor& mask);
  /// One layer on (h, mask): forward_masked for layers that support masks, else forward and the mask dropped.
  torch::Tensor run_layer(const layers::LayerPtr& layer, const torch::Tensor& h, torch::Tensor& mask);
  std::vector<layers::LayerPtr> layers_;
  std::string input_name_;
  std::string input_dtype_ = "float32";
  Shape input_shape_;
  bool built_ = false;
};

/// The holder users write: `Sequential model({Input({4}), Dense(16), Dense(3)});`.
class Sequential : public torch::nn::ModuleHolder<SequentialImpl> {
 public:
  using torch::nn::ModuleHolder<SequentialImpl>::ModuleHolder;
  Sequential() : ModuleHolder(std::make_shared<SequentialImpl>()) {}
  Sequential(std::initializer_list<layers::LayerRef> layers, std::string name = "sequential")
      : ModuleHolder(std::make_shared<SequentialImpl>(layers, std::move(name))) {}
  explicit Sequential(const std::vector<layers::LayerRef>& layers, std::string name = "sequential")
      : ModuleHolder(std::make_shared<SequentialImpl>(layers, std::move(name))) {}
};

/// Keras-style unique name for a new layer of `class_name` among `taken` ("Dense" -> dense, dense_1, ...).
std::string unique_layer_name(const std::string& class_name, const std::vector<std::string>& taken);

}  // namespace lighter::models
