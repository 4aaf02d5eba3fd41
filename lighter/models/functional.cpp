#include "lighter/models/functional.h"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lighter/core/error.h"
#include "lighter/core/logging.h"
#include "lighter/layers/activations.h"
#include "lighter/layers/attention.h"
#include "lighter/layers/recurrent.h"
#include "lighter/layers/registry.h"
#include "lighter/layers/transformer.h"
#include "lighter/models/sequential.h"

namespace lighter::models {

namespace detail {

/// One layer call of a graph under construction.
struct GraphNode {
  layers::LayerPtr layer;
  bool is_input = false;
  bool list_call = false;          // called on a list (merge layers)
  std::vector<KerasTensor> args;   // what it was called on, then the initial states
  size_t num_states = 0;
  std::vector<Shape> output_shapes;
  std::string dtype = "float32";   // of its outputs
};

}  // namespace detail

using detail::GraphNode;

namespace {

std::string who(const layers::LayerImpl& l) {
  return "layer '" + (l.layer_name().empty() ? std::string("<unnamed>") : l.layer_name()) + "' (" + l.class_name() + ")";
}

void expect_defined(const KerasTensor& t, const layers::LayerImpl& l) {
  if (!t.defined()) throw ShapeError(who(l) + " was called on an empty KerasTensor");
}

}  // namespace

const Shape& KerasTensor::shape() const { return node_->output_shapes.at(index_); }
const std::string& KerasTensor::dtype() const { return node_->dtype; }
const layers::LayerPtr& KerasTensor::layer() const { return node_->layer; }

KerasTensor keras_input(std::vector<int64_t> shape, const std::string& name, const std::string& dtype, int64_t batch_size) {
  Shape batch_shape{batch_size > 0 ? batch_size : -1};
  batch_shape.insert(batch_shape.end(), shape.begin(), shape.end());
  auto layer = std::make_shared<layers::InputLayerImpl>(batch_shape, name, dtype);
  auto node = std::make_shared<GraphNode>();
  node->layer = layer;
  node->is_input = true;
  node->output_shapes = {batch_shape};
  node->dtype = layer->dtype();
  return KerasTensor(node, 0);
}

std::vector<KerasTensor> call_all(const layers::LayerRef& ref, const KerasTensor& x,
                                   const std::vector<KerasTensor>& initial_state) {
  const layers::LayerPtr& layer = ref.ptr();
  if (!layer) throw ConfigError("layer", "cannot call an empty layer");
  expect_defined(x, *layer);
  if (std::dynamic_pointer_cast<layers::InputLayerImpl>(layer))
    throw ConfigError("layer", "an InputLayer cannot be called on a tensor; use keras_input() for graph inputs");
  if (!layer->takes_single())
    throw ShapeError(who(*layer) + " must be called on a list of tensors (it merges several inputs)");
  auto node = std::make_shared<GraphNode>();
  node->layer = layer;
  node->args = {x};
  if (!initial_state.empty()) {
    auto rnn = std::dynamic_pointer_cast<layers::RecurrentImpl>(layer);
    if (!rnn)
      throw ConfigError("initial_state", who(*layer) + " takes no initial_state (only SimpleRNN, LSTM and GRU do)");
    if (static_cast<int64_t>(initial_state.size()) != rnn->num_states())
      throw ShapeError(who(*layer) + " needs " + std::to_string(rnn->num_states()) + " initial states, got " +
                       std::to_string(initial_state.size()));
    for (const auto& s : initial_state) {
      expect_defined(s, *layer);
      const Shape& sh = s.shape();
      if (sh.size() != 2 || (sh[1] >= 0 && sh[1] != rnn->options().units()))
        throw ShapeError(who(*layer) + ": an initial state must have shape (batch, " + std::to_string(rnn->options().units()) +
                         "), got " + shape_to_string(sh));
    }
    node->args.insert(node->args.end(), initial_state.begin(), initial_state.end());
    node->num_states = initial_state.size();
  }
  layer->build(x.shape());
  node->output_shapes = layer->compute_output_shapes(x.shape());
  std::vector<KerasTensor> out;
  for (size_t i = 0; i < node->output_shapes.size(); ++i) out.emplace_back(node, i);
  return out;
}

KerasTensor call(const layers::LayerRef& layer, const KerasTensor& x) { return call_all(layer, x).front(); }

KerasTensor call(const layers::LayerRef& ref, const std::vector<KerasTensor>& inputs) {
  const layers::LayerPtr& layer = ref.ptr();
  if (!layer) throw ConfigError("layer", "cannot call an empty layer");
  if (!layer->takes_list()) {
    if (inputs.size() == 1) return models::call(ref, inputs.front());
    throw ShapeError(who(*layer) + " takes one tensor, got a list of " + std::to_string(inputs.size()));
  }
  std::vector<Shape> shapes;
  for (const auto& t : inputs) {
    expect_defined(t, *layer);
    shapes.push_back(t.shape());
  }
  layer->build_list(shapes);
  auto node = std::make_shared<GraphNode>();
  node->layer = layer;
  node->list_call = true;
  node->args = inputs;
  node->output_shapes = {layer->compute_output_shape_list(shapes)};
  return KerasTensor(node, 0);
}

// ---- FunctionalImpl -----------------------------------------------------------------------------------------

FunctionalImpl::FunctionalImpl(const std::vector<KerasTensor>& inputs, const std::vector<KerasTensor>& outputs,
                               std::string name)
    : ModelImpl("Functional", std::move(name)) {
  if (inputs.empty()) throw ConfigError("inputs", "a Functional model needs at least one input");
  if (outputs.empty()) throw ConfigError("outputs", "a Functional model needs at least one output");
  for (const auto& t : inputs)
    if (!t.defined() || !t.node()->is_input)
      throw ConfigError("inputs", "model inputs must be made by keras_input() (graph inputs), not by a layer call");
  for (const auto& t : outputs)
    if (!t.defined()) throw ConfigError("outputs", "an output is an empty KerasTensor");

  // Graph order: a depth-first walk back from the outputs, each call placed after what it reads.
  std::map<const GraphNode*, size_t> index;
  std::set<const GraphNode*> visiting;
  std::vector<std::shared_ptr<GraphNode>> order;
  std::function<void(const std::shared_ptr<GraphNode>&)> visit = [&](const std::shared_ptr<GraphNode>& n) {
    if (index.count(n.get())) return;
    if (!visiting.insert(n.get()).second) throw ConfigError("outputs", "the graph has a cycle through " + who(*n->layer));
    for (const auto& a : n->args) visit(a.node());
    visiting.erase(n.get());
    index[n.get()] = order.size();
    order.push_back(n);
  };
  // Inputs come first, in the model's order, so steps 0..k-1 are the inputs.
  for (const auto& t : inputs) {
    if (index.count(t.node().get())) throw ConfigError("inputs", "the same input is listed twice");
    index[t.node().get()] = order.size();
    order.push_back(t.node());
  }
  for (const auto& t : outputs) visit(t.node());
  for (const auto& n : order)
    if (n->is_input && index[n.get()] >= inputs.size()) {
      const auto& l = n->layer->layer_name();
      throw ConfigError("inputs", "the outputs depend on an input" + (l.empty() ? std::string() : " '" + l + "'") +
                                      " that is not among the model's inputs");
    }

  // Names: explicit ones must be unique; the others are made unique Keras' way.
  std::vector<std::string> taken;
  std::set<const layers::LayerImpl*> seen;
  for (const auto& n : order) {
    const auto& l = n->layer;
    if (!seen.insert(l.get()).second) continue;
    if (!l->layer_name().empty()) {
      if (std::find(taken.begin(), taken.end(), l->layer_name()) != taken.end())
        throw ConfigError("layers", "two layers are named '" + l->layer_name() + "'; layer names must be unique");
      if (l->layer_name().find('.') != std::string::npos)
        throw ConfigError("layers", "layer name '" + l->layer_name() + "' must not contain '.'");
      taken.push_back(l->layer_name());
    }
  }
  seen.clear();
  std::map<const layers::LayerImpl*, size_t> calls;
  for (const auto& n : order) {
    const auto& l = n->layer;
    Step step;
    step.node = n;
    step.node_index = calls[l.get()]++;
    for (const auto& a : n->args) step.args.push_back({index[a.node().get()], a.index()});
    steps_.push_back(step);
    if (!seen.insert(l.get()).second) continue;
    if (l->layer_name().empty()) {
      l->set_layer_name(unique_layer_name(n->is_input ? "InputLayer" : l->class_name(), taken));
      taken.push_back(l->layer_name());
    }
    layers_.push_back(l);
    if (!n->is_input) register_module(l->layer_name(), l);
  }
  for (size_t i = 0; i < inputs.size(); ++i) inputs_.push_back(i);
  for (const auto& t : outputs) outputs_.push_back({index[t.node().get()], t.index()});
}

std::vector<std::string> FunctionalImpl::input_names() const {
  std::vector<std::string> names;
  for (auto s : inputs_) names.push_back(steps_[s].node->layer->layer_name());
  return names;
}

std::vector<std::string> FunctionalImpl::output_names() const {
  std::vector<std::string> names;
  for (const auto& o : outputs_) {
    std::string n = steps_[o.step].node->layer->layer_name();
    // Two outputs of one layer (or one layer called twice) still get distinct names.
    if (std::find(names.begin(), names.end(), n) != names.end()) n += "_" + std::to_string(names.size());
    names.push_back(n);
  }
  return names;
}

std::vector<Shape> FunctionalImpl::input_shapes() const {
  std::vector<Shape> shapes;
  for (auto s : inputs_) shapes.push_back(steps_[s].node->output_shapes.front());
  return shapes;
}

std::vector<std::string> FunctionalImpl::input_dtypes() const {
  std::vector<std::string> dtypes;
  for (auto s : inputs_) dtypes.push_back(steps_[s].node->dtype);
  return dtypes;
}

std::vector<Shape> FunctionalImpl::output_shapes() const {
  std::vector<Shape> shapes;
  for (const auto& o : outputs_) shapes.push_back(steps_[o.step].node->output_shapes.at(o.output));
  return shapes;
}

std::vector<std::string> FunctionalImpl::output_activations() const {
  std::vector<std::string> acts;
  for (const auto& o : outputs_) {
    const auto& n = steps_[o.step].node;
    bool single = !n->is_input && !n->list_call && n->num_states == 0 && n->output_shapes.size() == 1;
    acts.push_back(single ? n->layer->output_activation() : "linear");
  }
  return acts;
}

Shape FunctionalImpl::input_shape() const {
  if (inputs_.size() != 1)
    throw ShapeError("model '" + name_ + "' has " + std::to_string(inputs_.size()) + " inputs; use input_shapes()");
  return input_shapes().front();
}

Shape FunctionalImpl::output_shape() const {
  if (outputs_.size() != 1)
    throw ShapeError("model '" + name_ + "' has " + std::to_string(outputs_.size()) + " outputs; use output_shapes()");
  return output_shapes().front();
}

std::string FunctionalImpl::input_dtype() const {
  if (inputs_.size() != 1)
    throw ShapeError("model '" + name_ + "' has " + std::to_string(inputs_.size()) + " inputs; use input_dtypes()");
  return input_dtypes().front();
}

void FunctionalImpl::check_inputs(const std::vector<torch::Tensor>& inputs) const {
  if (inputs.size() != inputs_.size())
    throw ShapeError("model '" + name_ + "' takes " + std::to_string(inputs_.size()) + " input" +
                     (inputs_.size() == 1 ? "" : "s") + ", got " + std::to_string(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto& x = inputs[i];
    const auto& node = steps_[inputs_[i]].node;
    const Shape& want = node->output_shapes.front();
    bool ok = x.defined() && x.dim() == static_cast<int64_t>(want.size());
    for (size_t d = 1; ok && d < want.size(); ++d) ok = want[d] < 0 || want[d] == x.size(d);
    if (!ok) {
      Shape got = x.defined() ? Shape(x.sizes().begin(), x.sizes().end()) : Shape{};
      throw ShapeError("model '" + name_ + "': input '" + node->layer->layer_name() + "' expects shape " +
                       shape_to_string(want) + ", got " + (x.defined() ? shape_to_string(got) : "an empty tensor"));
    }
  }
}

ModelOutputs FunctionalImpl::call(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks,
                                  const std::vector<bool>& pre_activation) {
  return run(inputs, masks, pre_activation, false);
}

void FunctionalImpl::adapt(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  bool was_training = is_training();
  eval();
  run({x}, {}, {}, true);
  train(was_training);
}

ModelOutputs FunctionalImpl::run(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& in_masks,
                                 const std::vector<bool>& pre_activation, bool adapting) {
  check_inputs(inputs);
  if (!in_masks.empty() && in_masks.size() != inputs.size())
    throw ShapeError("model '" + name_ + "' takes " + std::to_string(inputs.size()) + " input masks, got " +
                     std::to_string(in_masks.size()));
  if (!pre_activation.empty() && pre_activation.size() != outputs_.size())
    throw ShapeError("model '" + name_ + "' has " + std::to_string(outputs_.size()) + " outputs, got " +
                     std::to_string(pre_activation.size()) + " pre_activation flags");
  const size_t n = steps_.size();
  std::vector<std::vector<torch::Tensor>> values(n), masks(n);
  // Which steps an output wants before its final activation (the logits for a fused crossentropy).
  std::vector<char> pre(n, 0);
  for (size_t o = 0; o < pre_activation.size(); ++o)
    if (pre_activation[o] && outputs_[o].output == 0) pre[outputs_[o].step] = 1;
  std::vector<torch::Tensor> pre_values(n);

  for (size_t i = 0; i < inputs_.size(); ++i) {
    values[i] = {inputs[i]};
    torch::Tensor m = in_masks.empty() ? torch::Tensor() : in_masks[i];
    if (m.defined()) {
      const auto& x = inputs[i];
      if (m.dim() != 2 || x.dim() < 2 || m.size(0) != x.size(0) || m.size(1) != x.size(1))
        throw ShapeError("model '" + name_ + "': an input mask must have shape (batch, steps) = (" +
                         std::to_string(x.size(0)) + ", " + (x.dim() > 1 ? std::to_string(x.size(1)) : std::string("?")) +
                         "), got " + shape_to_string(Shape(m.sizes().begin(), m.sizes().end())));
      m = m.to(x.device(), torch::kBool);
    }
    masks[i] = {m};
  }
  for (size_t s = inputs_.size(); s < n; ++s) {
    const Step& step = steps_[s];
    const auto& node = *step.node;
    const auto& layer = node.layer;
    std::vector<torch::Tensor> xs, ms;
    for (const auto& a : step.args) {
      xs.push_back(values[a.step].at(a.output));
      ms.push_back(masks[a.step].at(a.output));
    }
    if (adapting && layer->needs_adapt()) {
      if (node.list_call) throw ConfigError("adapt", who(*layer) + " cannot adapt to a list of inputs");
      layer->adapt(xs.front());
    }
    if (node.list_call) {
      bool any_mask = std::any_of(ms.begin(), ms.end(), [](const torch::Tensor& m) { return m.defined(); });
      torch::Tensor y = layer->forward_list(xs, ms);
      torch::Tensor m;
      if (any_mask) {
        if (layer->supports_masking()) m = layer->compute_mask_list(xs, ms);
        else warn_mask_dropped(*layer);
      }
      values[s] = {y};
      masks[s] = {m};
      continue;
    }
    const torch::Tensor& x = xs.front();
    torch::Tensor m = ms.front();
    if (m.defined() && !layer->supports_masking()) {
      warn_mask_dropped(*layer);
      m = torch::Tensor();
    }
    std::vector<torch::Tensor> outs;
    if (node.num_states > 0) {
      auto rnn = std::static_pointer_cast<layers::RecurrentImpl>(layer);
      outs = rnn->forward_all(x, m, std::vector<torch::Tensor>(xs.begin() + 1, xs.end()));
    } else if (pre[s] && layer->output_activation() != "linear" && layer->num_outputs() == 1) {
      pre_values[s] = layer->forward_pre_activation(x);
      outs = {activations::get(layer->output_activation())(pre_values[s])};
    } else if (layer->num_outputs() > 1) {
      outs = layer->forward_all(x, m);
    } else {
      outs = {m.defined() ? layer->forward_masked(x, m) : layer->forward(x)};
    }
    values[s] = outs;
    masks[s].assign(outs.size(), torch::Tensor());
    // The mask describes the first output (a sequence); states and the like carry none.
    masks[s][0] = layer->compute_mask(x, m);
  }
  ModelOutputs out;
  for (size_t o = 0; o < outputs_.size(); ++o) {
    const Ref& r = outputs_[o];
    bool want_pre = o < pre_activation.size() && pre_activation[o];
    out.values.push_back(want_pre && pre_values[r.step].defined() ? pre_values[r.step] : values[r.step].at(r.output));
    out.masks.push_back(masks[r.step].at(r.output));
  }
  return out;
}

std::string FunctionalImpl::tensor_name(const Ref& r) const {
  const Step& s = steps_[r.step];
  return s.node->layer->layer_name() + "[" + std::to_string(s.node_index) + "][" + std::to_string(r.output) + "]";
}

std::string FunctionalImpl::connections_of(const layers::LayerImpl& layer) const {
  std::string out;
  for (const auto& s : steps_) {
    if (s.node->layer.get() != &layer) continue;
    for (const auto& a : s.args) out += (out.empty() ? "" : ", ") + tensor_name(a);
  }
  return out.empty() ? "-" : out;
}

nlohmann::json FunctionalImpl::to_json() const {
  auto keras_tensor = [&](const Ref& r) {
    const Step& s = steps_[r.step];
    return nlohmann::json{{"class_name", "__keras_tensor__"},
                          {"config",
                           {{"shape", shape_to_json(s.node->output_shapes.at(r.output))},
                            {"dtype", s.node->dtype},
                            {"keras_history", {s.node->layer->layer_name(), s.node_index, r.output}}}}};
  };
  std::map<const layers::LayerImpl*, nlohmann::json> nodes_of;
  for (const auto& s : steps_) {
    auto& list = nodes_of[s.node->layer.get()];
    if (list.is_null()) list = nlohmann::json::array();
    if (s.node->is_input) continue;
    nlohmann::json args = nlohmann::json::array(), kwargs = nlohmann::json::object();
    const size_t main_args = s.args.size() - s.node->num_states;
    if (s.node->list_call && s.node->layer->list_call_positional()) {
      for (size_t i = 0; i < main_args; ++i) args.push_back(keras_tensor(s.args[i]));
    } else if (s.node->list_call) {
      nlohmann::json tensors = nlohmann::json::array();
      for (size_t i = 0; i < main_args; ++i) tensors.push_back(keras_tensor(s.args[i]));
      args.push_back(tensors);
    } else {
      args.push_back(keras_tensor(s.args.front()));
    }
    if (s.node->num_states) {
      nlohmann::json states = nlohmann::json::array();
      for (size_t i = main_args; i < s.args.size(); ++i) states.push_back(keras_tensor(s.args[i]));
      kwargs["initial_state"] = states;
    }
    list.push_back({{"args", args}, {"kwargs", kwargs}});
  }
  nlohmann::json layer_list = nlohmann::json::array();
  for (const auto& l : layers_) {
    auto entry = layers::to_json(*l);
    entry["config"].erase("batch_input_shape");
    entry["name"] = l->layer_name();
    entry["inbound_nodes"] = nodes_of[l.get()];
    layer_list.push_back(entry);
  }
  auto triple = [&](const Ref& r) {
    const Step& s = steps_[r.step];
    return nlohmann::json{s.node->layer->layer_name(), s.node_index, r.output};
  };
  nlohmann::json ins = nlohmann::json::array(), outs = nlohmann::json::array();
  for (auto s : inputs_) ins.push_back(triple({s, 0}));
  for (const auto& o : outputs_) outs.push_back(triple(o));
  return {{"class_name", "Functional"},
          {"config",
           {{"name", name_}, {"trainable", true}, {"layers", layer_list}, {"input_layers", ins}, {"output_layers", outs}}}};
}

// ---- Keras' Functional JSON ---------------------------------------------------------------------------------

namespace {

// One tensor reference of a node: [layer, node_index, tensor_index].
struct JsonRef {
  std::string layer;
  size_t node = 0, tensor = 0;
  std::string path;
};

// One call of a layer as the JSON describes it.
struct JsonNode {
  std::vector<JsonRef> args;    // the tensor(s) it is called on
  std::vector<JsonRef> states;  // initial_state
  std::vector<JsonRef> value_kw, key_kw;  // attention's value and key (or a decoder's encoder_sequence) by name
  std::optional<bool> causal;   // use_causal_mask given with the call
  bool list = false;            // called on a list
  std::string path;
};

struct JsonLayer {
  layers::LayerPtr layer;
  std::string name, path;
  std::vector<JsonNode> nodes;
  std::vector<std::vector<KerasTensor>> made;  // outputs of each node made so far
};

size_t non_negative_index(const json& v, const std::string& path) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0)
    throw ConfigError(path, "expected a non-negative integer, got " + describe(v));
  return v.get<size_t>();
}

// Keras 2's [name, node_index, tensor_index(, kwargs)] or a triple of input_layers/output_layers.
JsonRef ref_from_list(const json& v, const std::string& path) {
  if (!v.is_array() || v.size() < 3 || v.size() > 4 || !v[0].is_string())
    throw ConfigError(path, "expected [layer_name, node_index, tensor_index], got " + describe(v));
  return {v[0].get<std::string>(), non_negative_index(v[1], join_path(path, 1)), non_negative_index(v[2], join_path(path, 2)),
          path};
}

// Keras 3's {"class_name": "__keras_tensor__", "config": {"keras_history": [...], ...}}.
JsonRef ref_from_keras_tensor(const json& v, const std::string& path) {
  if (!v.is_object() || v.value("class_name", "") != "__keras_tensor__")
    throw ConfigError(path, "expected a __keras_tensor__ object (only tensors are supported as call arguments), got " +
                                describe(v));
  ConfigReader r(v, path);
  r.get<std::string>("class_name");
  ConfigReader c = r.child("config");
  c.ignore({"shape", "dtype", "ragged", "sparse", "name"});
  JsonRef ref = ref_from_list(c.raw("keras_history"), c.path_of("keras_history"));
  ref.path = path;
  c.finish();
  r.finish();
  return ref;
}

// kwargs Keras writes on a call that Lighter reads or can ignore; tensors among them become initial states.
void read_kwargs(const json& kwargs, const std::string& path, JsonNode& node, bool keras3) {
  if (kwargs.is_null()) return;
  if (!kwargs.is_object()) throw ConfigError(path, "expected an object of call arguments, got " + describe(kwargs));
  for (auto it = kwargs.begin(); it != kwargs.end(); ++it) {
    const std::string key = it.key();
    const std::string kpath = join_path(path, key);
    const json& v = it.value();
    if (key == "training") continue;  // Lighter follows the model's train/eval mode
    // Attention's explicit masks and flags: null or false are what Keras writes when they are not used.
    if (key == "query_mask" || key == "value_mask" || key == "key_mask" || key == "attention_mask" ||
        key == "return_attention_scores" || key == "padding_mask" || key == "decoder_padding_mask" ||
        key == "decoder_attention_mask" || key == "encoder_padding_mask" || key == "encoder_attention_mask") {
      if (!(v.is_null() || v == false))
        throw ConfigError(kpath, "'" + key + "' in a call is not supported yet; masks flow from Embedding(mask_zero), "
                                             "TokenAndPositionEmbedding(mask_zero) or Masking layers");
      continue;
    }
    if (key == "use_causal_mask") {
      if (!v.is_null() && !v.is_boolean()) throw ConfigError(kpath, "expected true or false, got " + describe(v));
      if (v.is_boolean()) node.causal = v.get<bool>();
      continue;
    }
    if (key == "encoder_sequence" && !v.is_null()) {
      node.value_kw.push_back(keras3 ? ref_from_keras_tensor(v, kpath) : ref_from_list(v, kpath));
      continue;
    }
    if ((key == "key" || key == "value") && !v.is_null()) {
      // MultiHeadAttention's value and key given by name (Keras 2 writes value so): they follow the query.
      (key == "key" ? node.key_kw : node.value_kw).push_back(keras3 ? ref_from_keras_tensor(v, kpath) : ref_from_list(v, kpath));
      continue;
    }
    if (key == "mask") {
      if (!v.is_null())
        throw ConfigError(kpath, "explicit masks in a call are not supported; masks flow from Embedding(mask_zero) "
                                 "or Masking layers");
      continue;
    }
    if (key == "initial_state") {
      if (!v.is_array()) throw ConfigError(kpath, "expected a list of tensors, got " + describe(v));
      for (size_t i = 0; i < v.size(); ++i)
        node.states.push_back(keras3 ? ref_from_keras_tensor(v[i], join_path(kpath, i)) : ref_from_list(v[i], join_path(kpath, i)));
      continue;
    }
    throw ConfigError(kpath, "call argument '" + key + "' is not supported (supported: initial_state, key, mask, training)");
  }
}

JsonNode node_from_json(const json& v, const std::string& path, const layers::LayerImpl& layer) {
  JsonNode node;
  node.path = path;
  if (v.is_object()) {
    // Keras 3: {"args": [tensor or [tensors]], "kwargs": {...}}.
    ConfigReader r(v, path);
    const json& args = r.raw("args");
    if (!args.is_array() || args.empty())
      throw ConfigError(r.path_of("args"), "expected a list holding the call's input, got " + describe(args));
    const json& first = args[0];
    std::string apath = join_path(r.path_of("args"), 0);
    if (args.size() > 1) {
      // Several positional tensors (MultiHeadAttention's query, value[, key]) make the layer's list.
      if (!layer.takes_list())
        throw ConfigError(join_path(r.path_of("args"), 1), who(layer) + " takes one input tensor, got " +
                                                               std::to_string(args.size()) + " positional arguments");
      node.list = true;
      for (size_t i = 0; i < args.size(); ++i)
        node.args.push_back(ref_from_keras_tensor(args[i], join_path(r.path_of("args"), i)));
    } else if (first.is_array()) {
      node.list = true;
      for (size_t i = 0; i < first.size(); ++i) node.args.push_back(ref_from_keras_tensor(first[i], join_path(apath, i)));
    } else {
      node.args.push_back(ref_from_keras_tensor(first, apath));
    }
    read_kwargs(r.raw_or_null("kwargs"), r.path_of("kwargs"), node, true);
    r.finish();
  } else if (v.is_array()) {
    // Keras 2: a list of [layer, node_index, tensor_index, kwargs].
    if (v.empty()) throw ConfigError(path, "a node must list at least one input tensor");
    for (size_t i = 0; i < v.size(); ++i) {
      std::string epath = join_path(path, i);
      node.args.push_back(ref_from_list(v[i], epath));
      if (v[i].size() == 4) read_kwargs(v[i][3], join_path(epath, 3), node, false);
    }
    if (layer.takes_list() && (node.args.size() > 1 || !layer.takes_single())) {
      node.list = true;
    } else if (node.args.size() > 1) {
      // Keras 2 lists a recurrent layer's initial states after its input.
      auto rnn = dynamic_cast<const layers::RecurrentImpl*>(&layer);
      if (!rnn || static_cast<int64_t>(node.args.size()) != 1 + rnn->num_states())
        throw ConfigError(path, who(layer) + " takes one input tensor, but this node lists " +
                                    std::to_string(node.args.size()));
      node.states.assign(node.args.begin() + 1, node.args.end());
      node.args.resize(1);
    }
  } else {
    throw ConfigError(path, "expected a node (a Keras 3 object or a Keras 2 list), got " + describe(v));
  }
  if (!node.value_kw.empty() || !node.key_kw.empty()) {
    if (!layer.takes_list()) throw ConfigError(path, who(layer) + " takes no value, key or encoder_sequence argument");
    node.list = true;
    node.args.insert(node.args.end(), node.value_kw.begin(), node.value_kw.end());
    node.args.insert(node.args.end(), node.key_kw.begin(), node.key_kw.end());
  }
  if (!node.list && node.args.size() != 1) throw ConfigError(path, who(layer) + " takes one input tensor");
  if (node.list && !layer.takes_list())
    throw ConfigError(path, who(layer) + " takes one tensor, but this node calls it on a list");
  return node;
}

// Keras passes use_causal_mask with each call; Lighter keeps it on the layer, so every call must agree.
void apply_call_causal(const std::vector<JsonNode>& nodes, layers::LayerImpl& layer) {
  std::optional<bool> causal;
  for (const auto& n : nodes) {
    if (!n.causal) continue;
    if (causal && *causal != *n.causal)
      throw ConfigError(n.path, who(layer) + " is called with and without use_causal_mask; Lighter needs one setting per layer");
    causal = n.causal;
  }
  if (!causal) return;
  if (auto* mha = dynamic_cast<layers::MultiHeadAttentionImpl*>(&layer)) {
    if (*causal) mha->set_use_causal_mask(true);
  } else if (auto* att = dynamic_cast<layers::AttentionImpl*>(&layer)) {
    if (*causal) att->set_use_causal_mask(true);
  } else if (dynamic_cast<layers::TransformerDecoderImpl*>(&layer)) {
    if (!*causal) throw ConfigError(nodes.front().path, who(layer) + ": use_causal_mask false is not supported (its self-attention is causal)");
  } else if (*causal) {
    throw ConfigError(nodes.front().path, who(layer) + " takes no use_causal_mask argument");
  }
}

// input_layers / output_layers: a list of triples, or one flat triple (Keras 3 with a single tensor).
std::vector<JsonRef> refs_from_json(const json& v, const std::string& path) {
  if (!v.is_array()) throw ConfigError(path, "expected a list of [layer_name, node_index, tensor_index], got " + describe(v));
  if (v.size() == 3 && v[0].is_string()) return {ref_from_list(v, path)};
  std::vector<JsonRef> refs;
  for (size_t i = 0; i < v.size(); ++i) refs.push_back(ref_from_list(v[i], join_path(path, i)));
  if (refs.empty()) throw ConfigError(path, "expected at least one tensor");
  return refs;
}

}  // namespace

ModelPtr functional_from_json(const json& config, const std::string& path) {
  ConfigReader r(config, path);
  std::string name = r.get<std::string>("name", "functional");
  if (!r.get<bool>("trainable", true))
    throw ConfigError(r.path_of("trainable"), "a frozen model is not supported yet; freeze its layers instead");
  r.raw_or_null("dtype");
  const json& list = r.raw("layers");
  const std::string list_path = r.path_of("layers");
  const json& input_spec = r.raw("input_layers");
  const json& output_spec = r.raw("output_layers");
  r.finish();
  if (!list.is_array()) throw ConfigError(list_path, "expected a list of layers, got " + describe(list));

  std::vector<JsonLayer> entries;
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string lpath = join_path(list_path, i);
    ConfigReader lr(list[i], lpath);
    std::string cls = lr.get<std::string>("class_name");
    if (cls == "Sequential" || cls == "Functional" || cls == "Model")
      throw ConfigError(lr.path_of("class_name"), "a model nested as a layer is not supported yet");
    json cfg = lr.has("config") ? lr.raw("config") : json::object();
    std::string lname = lr.get<std::string>("name", cfg.is_object() ? cfg.value("name", "") : "");
    const json& inbound = lr.raw_or_null("inbound_nodes");
    lr.ignore({"module", "registered_name", "build_config"});
    lr.finish();
    if (lname.empty()) throw ConfigError(lpath, "a layer of a Functional model needs a name");
    if (by_name.count(lname)) throw ConfigError(lr.path_of("name"), "two layers are named '" + lname + "'");
    if (cfg.is_object() && !cfg.contains("name")) cfg["name"] = lname;
    JsonLayer e;
    e.layer = layers::from_json(json{{"class_name", cls}, {"config", cfg}}, lpath);
    e.name = lname;
    e.path = lpath;
    if (auto input = std::dynamic_pointer_cast<layers::InputLayerImpl>(e.layer)) {
      auto node = std::make_shared<GraphNode>();
      node->layer = input;
      node->is_input = true;
      node->output_shapes = {input->batch_shape()};
      node->dtype = input->dtype();
      e.made.push_back({KerasTensor(node, 0)});
    } else {
      std::string ipath = lr.path_of("inbound_nodes");
      if (!inbound.is_array() || inbound.empty())
        throw ConfigError(ipath, "expected the layer's calls (inbound_nodes), got " + describe(inbound));
      for (size_t k = 0; k < inbound.size(); ++k)
        e.nodes.push_back(node_from_json(inbound[k], join_path(ipath, k), *e.layer));
      apply_call_causal(e.nodes, *e.layer);
    }
    by_name[lname] = entries.size();
    entries.push_back(std::move(e));
  }
  // Every reference names a layer of the model and a call it has.
  auto check_ref = [&](const JsonRef& ref) -> JsonLayer& {
    auto it = by_name.find(ref.layer);
    if (it == by_name.end()) throw ConfigError(ref.path, "unknown layer '" + ref.layer + "' (not in " + list_path + ")");
    JsonLayer& target = entries[it->second];
    size_t calls = target.nodes.empty() ? 1 : target.nodes.size();
    if (ref.node >= calls)
      throw ConfigError(ref.path, "layer '" + ref.layer + "' has " + std::to_string(calls) + " call(s), node_index " +
                                      std::to_string(ref.node) + " does not exist");
    return target;
  };
  for (auto& e : entries)
    for (auto& node : e.nodes) {
      for (auto& a : node.args) check_ref(a);
      for (auto& a : node.states) check_ref(a);
    }
  auto tensor_of = [&](const JsonRef& ref) -> const KerasTensor* {
    JsonLayer& target = entries[by_name.at(ref.layer)];
    if (ref.node >= target.made.size()) return nullptr;
    const auto& outs = target.made[ref.node];
    if (ref.tensor >= outs.size())
      throw ConfigError(ref.path, "layer '" + ref.layer + "' has " + std::to_string(outs.size()) + " output(s), tensor_index " +
                                      std::to_string(ref.tensor) + " does not exist");
    return &outs[ref.tensor];
  };
  // Make the calls whose inputs exist, pass after pass (each layer's calls in their order), until all are made.
  bool progress = true;
  while (progress) {
    progress = false;
    for (auto& e : entries) {
      while (e.made.size() < e.nodes.size()) {
        const JsonNode& node = e.nodes[e.made.size()];
        std::vector<KerasTensor> args, states;
        bool ready = true;
        for (const auto& a : node.args) {
          const KerasTensor* t = tensor_of(a);
          if (!t) { ready = false; break; }
          args.push_back(*t);
        }
        for (const auto& a : node.states) {
          if (!ready) break;
          const KerasTensor* t = tensor_of(a);
          if (!t) { ready = false; break; }
          states.push_back(*t);
        }
        if (!ready) break;
        try {
          if (node.list) e.made.push_back(std::vector<KerasTensor>{models::call(layers::LayerRef(e.layer), args)});
          else e.made.push_back(call_all(layers::LayerRef(e.layer), args.front(), states));
        } catch (const ShapeError& err) {
          throw ConfigError(node.path, err.what());
        } catch (const ConfigError& err) {
          throw ConfigError(node.path, err.what());
        }
        progress = true;
      }
    }
  }
  std::string stuck;
  for (const auto& e : entries)
    if (e.made.size() < e.nodes.size()) stuck += (stuck.empty() ? "'" : ", '") + e.name + "'";
  if (!stuck.empty())
    throw ConfigError(list_path, "the calls of layers " + stuck + " wait on each other (a cycle in inbound_nodes)");

  std::vector<KerasTensor> inputs, outputs;
  auto ipath = path.empty() ? std::string("input_layers") : join_path(path, "input_layers");
  for (const auto& ref : refs_from_json(input_spec, ipath)) {
    JsonLayer& target = check_ref(ref);
    if (!std::dynamic_pointer_cast<layers::InputLayerImpl>(target.layer))
      throw ConfigError(ref.path, "'" + ref.layer + "' is not an InputLayer");
    inputs.push_back(*tensor_of(ref));
  }
  auto opath = path.empty() ? std::string("output_layers") : join_path(path, "output_layers");
  for (const auto& ref : refs_from_json(output_spec, opath)) {
    check_ref(ref);
    outputs.push_back(*tensor_of(ref));
  }
  try {
    return std::make_shared<FunctionalImpl>(inputs, outputs, name);
  } catch (const ConfigError& e) {
    throw ConfigError(path, e.what());
  }
}

}  // namespace lighter::models
