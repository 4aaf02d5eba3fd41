#pragma once
/// Keras' Functional model: a graph of layer calls with any number of inputs and outputs, built from symbolic
/// tensors in C++ (keras_input, call) or read from Keras' Functional JSON (Keras 2 and Keras 3 node formats).
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <torch/nn/pimpl.h>

#include "lighter/layers/core_layers.h"
#include "lighter/models/model.h"

namespace lighter::models {

namespace detail {
struct GraphNode;
}

/// Keras' KerasTensor: one output of a layer call in a graph being built. It holds no data, only where it comes
/// from, its shape (batch axis included, -1 unknown) and its dtype.
class KerasTensor {
 public:
  KerasTensor() = default;
  KerasTensor(std::shared_ptr<detail::GraphNode> node, size_t index) : node_(std::move(node)), index_(index) {}
  const Shape& shape() const;
  const std::string& dtype() const;
  /// The layer whose call made it (an InputLayer for a graph input).
  const layers::LayerPtr& layer() const;
  const std::shared_ptr<detail::GraphNode>& node() const { return node_; }
  /// Which output of the call it is.
  size_t index() const { return index_; }
  bool defined() const { return node_ != nullptr; }

 private:
  std::shared_ptr<detail::GraphNode> node_;
  size_t index_ = 0;
};

/// Keras' `keras.Input(shape, batch_size, dtype, name)`: a graph input of `shape` (without the batch axis; -1 for an
/// unknown length). Integer dtypes ("int64", "int32") suit token ids feeding an Embedding.
KerasTensor keras_input(std::vector<int64_t> shape, const std::string& name = "", const std::string& dtype = "float32",
                        int64_t batch_size = -1);

/// Calls `layer` on a symbolic tensor (Keras' `layer(x)`): builds it for x's shape and returns its (first) output.
/// Calling one layer object several times shares its weights, as in Keras.
KerasTensor call(const layers::LayerRef& layer, const KerasTensor& x);
/// Calls a layer that takes a list (a merge layer: `Concatenate()([a, b])`).
KerasTensor call(const layers::LayerRef& layer, const std::vector<KerasTensor>& inputs);
/// Every output of a call (a recurrent layer with return_state gives [output, h] or [output, h, c]).
/// `initial_state` gives a recurrent layer its starting states (Keras' `LSTM(...)(x, initial_state=[h, c])`).
std::vector<KerasTensor> call_all(const layers::LayerRef& layer, const KerasTensor& x,
                                   const std::vector<KerasTensor>& initial_state = {});

/// The graph of layer calls between `inputs` and `outputs`. Masks flow along the edges as in Sequential (see
/// LayerImpl::forward_masked); a merge layer combines the masks of its inputs. Layers are registered as
/// sub-modules under their names, so weight files use `<layer>.<weight>` keys as Sequential models do.
class FunctionalImpl : public ModelImpl {
 public:
  FunctionalImpl(const std::vector<KerasTensor>& inputs, const std::vector<KerasTensor>& outputs,
                 std::string name = "functional");

  ModelOutputs call(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks = {},
                    const std::vector<bool>& pre_activation = {}) override;
  size_t num_inputs() const override { return inputs_.size(); }
  size_t num_outputs() const override { return outputs_.size(); }
  std::vector<std::string> input_names() const override;
  std::vector<std::string> output_names() const override;
  std::vector<Shape> input_shapes() const override;
  std::vector<std::string> input_dtypes() const override;
  std::vector<Shape> output_shapes() const override;
  std::vector<std::string> output_activations() const override;
  /// Every layer, InputLayers included (as Keras' model.layers for Functional models), in graph order.
  std::vector<layers::LayerPtr> layers() const override { return layers_; }
  bool built() const override { return true; }
  Shape input_shape() const override;
  Shape output_shape() const override;
  std::string input_dtype() const override;
  /// Keras 3's Functional JSON (`__keras_tensor__` nodes), readable by model_from_json and by Keras.
  nlohmann::json to_json() const override;
  void adapt(const torch::Tensor& x) override;

  /// For summary(): "layer[node][tensor]" of each input of each call of `layer`.
  std::string connections_of(const layers::LayerImpl& layer) const override;

 private:
  // A call in graph order; args index earlier steps' outputs.
  struct Ref {
    size_t step, output;
  };
  struct Step {
    std::shared_ptr<detail::GraphNode> node;
    std::vector<Ref> args;     // the tensor(s) the layer was called on, then its initial states
    size_t node_index = 0;     // which call of its layer this is (Keras' node_index)
    bool pre_activation = false;  // an output asks for it before the final activation (set per call)
  };
  /// Runs the graph; with `adapting`, preprocessing layers adapt to what reaches them first.
  ModelOutputs run(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks,
                   const std::vector<bool>& pre_activation, bool adapting);
  void check_inputs(const std::vector<torch::Tensor>& inputs) const;
  std::string tensor_name(const Ref& r) const;

  std::vector<Step> steps_;
  std::vector<size_t> inputs_;  // steps of the input layers, in the model's input order
  std::vector<Ref> outputs_;
  std::vector<layers::LayerPtr> layers_;
};

/// The holder users write: `Functional model({a, b}, {out});`.
class Functional : public torch::nn::ModuleHolder<FunctionalImpl> {
 public:
  using torch::nn::ModuleHolder<FunctionalImpl>::ModuleHolder;
  Functional(const std::vector<KerasTensor>& inputs, const std::vector<KerasTensor>& outputs,
             std::string name = "functional")
      : ModuleHolder(std::make_shared<FunctionalImpl>(inputs, outputs, std::move(name))) {}
};

/// Reads Keras' Functional config ({"name", "layers", "input_layers", "output_layers"}): Keras 2 list-style
/// inbound nodes and Keras 3 `__keras_tensor__` nodes, input/output layers as a list of [name, node, tensor] or one
/// flat triple. Errors name the JSON path: an unknown inbound layer, a cycle, shapes a layer cannot take.
ModelPtr functional_from_json(const nlohmann::json& config, const std::string& path);

}  // namespace lighter::models
