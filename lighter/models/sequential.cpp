#include "lighter/models/sequential.h"

#include <cctype>

#include <spdlog/spdlog.h>

#include "lighter/core/error.h"
#include "lighter/core/logging.h"
#include "lighter/layers/registry.h"

namespace lighter::models {

std::string unique_layer_name(const std::string& class_name, const std::vector<std::string>& taken) {
  // CamelCase -> snake_case, as Keras names layers.
  std::string base;
  for (size_t i = 0; i < class_name.size(); ++i) {
    char c = class_name[i];
    if (std::isupper(static_cast<unsigned char>(c))) {
      bool boundary = i > 0 && (std::islower(static_cast<unsigned char>(class_name[i - 1])) ||
                                (i + 1 < class_name.size() && std::islower(static_cast<unsigned char>(class_name[i + 1])) &&
                                 std::isupper(static_cast<unsigned char>(class_name[i - 1]))));
      if (boundary) base += '_';
      base += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      base += c;
    }
  }
  auto used = [&](const std::string& n) { return std::find(taken.begin(), taken.end(), n) != taken.end(); };
  if (!used(base)) return base;
  for (int i = 1;; ++i)
    if (!used(base + "_" + std::to_string(i))) return base + "_" + std::to_string(i);
}

SequentialImpl::SequentialImpl(std::string name) : ModelImpl("Sequential", std::move(name)) {}

SequentialImpl::SequentialImpl(std::initializer_list<layers::LayerRef> layers, std::string name)
    : SequentialImpl(std::vector<layers::LayerRef>(layers), std::move(name)) {}

SequentialImpl::SequentialImpl(const std::vector<layers::LayerRef>& layers, std::string name)
    : ModelImpl("Sequential", std::move(name)) {
  for (const auto& l : layers) add(l);
}

void SequentialImpl::add(const layers::LayerRef& ref) {
  const layers::LayerPtr& layer = ref.ptr();
  if (!layer) throw ConfigError("layers", "cannot add an empty layer");
  if (auto input = std::dynamic_pointer_cast<layers::InputLayerImpl>(layer)) {
    if (!layers_.empty() || !input_shape_.empty())
      throw ConfigError("layers", "an InputLayer can only be the first layer of a Sequential model");
    input_shape_ = input->batch_shape();
    input_name_ = input->layer_name();
    input_dtype_ = input->dtype();
    return;
  }
  if (layer->num_outputs() > 1)
    throw ConfigError("layers", "layer '" + layer->layer_name() + "' (" + layer->class_name() +
                                    ") has several outputs (return_state?); a Sequential model needs single-output layers");
  std::vector<std::string> taken;
  for (const auto& l : layers_) taken.push_back(l->layer_name());
  if (layer->layer_name().empty()) {
    layer->set_layer_name(unique_layer_name(layer->class_name(), taken));
  } else if (std::find(taken.begin(), taken.end(), layer->layer_name()) != taken.end()) {
    throw ConfigError("layers", "two layers are named '" + layer->layer_name() + "'; layer names must be unique");
  } else if (layer->layer_name().find('.') != std::string::npos) {
    throw ConfigError("layers", "layer name '" + layer->layer_name() + "' must not contain '.'");
  }
  if (layers_.empty() && input_shape_.empty() && layer->declared_input_shape()) input_shape_ = *layer->declared_input_shape();
  register_module(layer->layer_name(), layer);
  layers_.push_back(layer);
  if (!input_shape_.empty()) {
    // Build as soon as the shapes are known, so summary() and the weights exist before any data is seen.
    Shape shape = input_shape_;
    for (const auto& l : layers_) {
      l->build(shape);
      shape = l->output_shape();
    }
    built_ = true;
  }
}

void SequentialImpl::build(const Shape& input_shape) {
  if (input_shape.size() < 2) throw ShapeError("Sequential.build: expected a shape with a batch axis, got " + shape_to_string(input_shape));
  if (built_ && !input_shape_.empty()) {
    layers_.empty() ? void() : layers_.front()->build(input_shape);  // checks compatibility
    return;
  }
  input_shape_ = input_shape;
  Shape shape = input_shape;
  for (const auto& l : layers_) {
    l->build(shape);
    shape = l->output_shape();
  }
  built_ = true;
}

Shape SequentialImpl::input_shape() const {
  if (input_shape_.empty()) throw ShapeError("model '" + name_ + "' has no input shape yet");
  return input_shape_;
}

Shape SequentialImpl::output_shape() const {
  if (!built_) throw ShapeError("model '" + name_ + "' is not built yet");
  return layers_.empty() ? input_shape_ : layers_.back()->output_shape();
}

void SequentialImpl::check_input(const torch::Tensor& x) const {
  if (!x.defined() || x.dim() == 0) throw ShapeError("model '" + name_ + "' expects a batch of inputs, got a scalar");
  if (input_shape_.empty()) return;
  bool ok = x.dim() == static_cast<int64_t>(input_shape_.size());
  for (size_t i = 1; ok && i < input_shape_.size(); ++i) ok = input_shape_[i] < 0 || input_shape_[i] == x.size(i);
  if (!ok) {
    Shape got(x.sizes().begin(), x.sizes().end());
    throw ShapeError("model '" + name_ + "' expects input of shape " + shape_to_string(input_shape_) + ", got " +
                     shape_to_string(got));
  }
}

void SequentialImpl::build_for(const torch::Tensor& x) {
  check_input(x);
  if (!built_) {
    Shape s(x.sizes().begin(), x.sizes().end());
    s[0] = -1;
    build(s);
    check_input(x);
  }
}

torch::Tensor SequentialImpl::forward(const torch::Tensor& x) {
  build_for(x);
  torch::Tensor mask;
  return run_layers(x, layers_.size(), mask);
}

ModelOutputs SequentialImpl::call(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks,
                                  const std::vector<bool>& pre_activation) {
  if (inputs.size() != 1)
    throw ShapeError("model '" + name_ + "' takes 1 input, got " + std::to_string(inputs.size()));
  if (masks.size() > 1) throw ShapeError("model '" + name_ + "' takes 1 input mask, got " + std::to_string(masks.size()));
  if (pre_activation.size() > 1)
    throw ShapeError("model '" + name_ + "' has 1 output, got " + std::to_string(pre_activation.size()) + " pre_activation flags");
  const torch::Tensor& x = inputs.front();
  build_for(x);
  torch::Tensor mask = masks.empty() ? torch::Tensor() : masks.front();
  if (mask.defined()) {
    if (mask.dim() != 2 || mask.size(0) != x.size(0) || x.dim() < 2 || mask.size(1) != x.size(1))
      throw ShapeError("model '" + name_ + "': an input mask must have shape (batch, steps) = (" +
                       std::to_string(x.size(0)) + ", " + (x.dim() > 1 ? std::to_string(x.size(1)) : std::string("?")) +
                       "), got " + shape_to_string(Shape(mask.sizes().begin(), mask.sizes().end())));
    mask = mask.to(x.device(), torch::kBool);
  }
  const bool pre = !pre_activation.empty() && pre_activation.front();
  ModelOutputs out;
  if (layers_.empty()) {
    out.values.push_back(x);
    out.masks.push_back(mask);
    return out;
  }
  torch::Tensor h = run_layers(x, layers_.size() - 1, mask);
  const auto& last = layers_.back();
  if (pre && !(mask.defined() && last->supports_masking() && last->output_activation() == "linear")) {
    // The mask a final activation leaves is the one it was given (Dense and Activation pass masks on).
    torch::Tensor in_mask = mask;
    out.values.push_back(last->forward_pre_activation(h));
    out.masks.push_back(in_mask.defined() && last->supports_masking() ? last->compute_mask(h, in_mask) : torch::Tensor());
    if (in_mask.defined() && !last->supports_masking()) warn_mask_dropped(*last);
    return out;
  }
  out.values.push_back(run_layer(last, h, mask));
  out.masks.push_back(mask);
  return out;
}

std::vector<std::string> SequentialImpl::input_names() const {
  return {input_name_.empty() ? "input_layer" : input_name_};
}

std::vector<std::string> SequentialImpl::output_names() const {
  return {layers_.empty() ? (input_name_.empty() ? "input_layer" : input_name_) : layers_.back()->layer_name()};
}

torch::Tensor SequentialImpl::run_layer(const layers::LayerPtr& l, const torch::Tensor& h, torch::Tensor& mask) {
  if (!mask.defined()) {
    torch::Tensor out = l->forward(h);
    // An undefined mask in, usually an undefined mask out: only mask makers allocate here.
    mask = l->compute_mask(h, mask);
    return out;
  }
  if (!l->supports_masking()) {
    warn_mask_dropped(*l);
    mask = torch::Tensor();
    return l->forward(h);
  }
  torch::Tensor out = l->forward_masked(h, mask);
  mask = l->compute_mask(h, mask);
  return out;
}

torch::Tensor SequentialImpl::run_layers(const torch::Tensor& x, size_t end, torch::Tensor& mask) {
  torch::Tensor h = x;
  for (size_t i = 0; i < end; ++i) h = run_layer(layers_[i], h, mask);
  return h;
}

torch::Tensor SequentialImpl::forward_pre_activation(const torch::Tensor& x) {
  if (layers_.empty()) return x;
  build_for(x);
  torch::Tensor mask;
  torch::Tensor h = run_layers(x, layers_.size() - 1, mask);
  const auto& last = layers_.back();
  // A masked last layer whose output has no final activation to split off takes the mask as usual.
  if (mask.defined() && last->supports_masking() && last->output_activation() == "linear") return last->forward_masked(h, mask);
  return last->forward_pre_activation(h);
}

torch::Tensor SequentialImpl::forward_step(const torch::Tensor& x, layers::DecodeCache& cache, bool pre_activation) {
  build_for(x);
  torch::Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& l = layers_[i];
    // The last layer acts per step (a Dense head): its pre-activation output is the logits.
    h = (pre_activation && i + 1 == layers_.size() && l->acts_per_step()) ? l->forward_pre_activation(h) : l->forward_step(h, cache);
  }
  return h;
}

std::string SequentialImpl::output_activation() const {
  return layers_.empty() ? "linear" : layers_.back()->output_activation();
}

nlohmann::json SequentialImpl::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  if (!input_shape_.empty()) {
    list.push_back({{"class_name", "InputLayer"},
                    {"config",
                     {{"batch_shape", shape_to_json(input_shape_)},
                      {"dtype", input_dtype_},
                      {"sparse", false},
                      {"name", input_name_.empty() ? "input_layer" : input_name_}}}});
  }
  for (const auto& l : layers_) {
    auto entry = layers::to_json(*l);
    // The input shape lives in the InputLayer entry.
    entry["config"].erase("batch_input_shape");
    list.push_back(entry);
  }
  return {{"class_name", "Sequential"},
          {"config", {{"name", name_}, {"trainable", true}, {"dtype", "float32"}, {"layers", list}}}};
}

void SequentialImpl::adapt(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  bool was_training = is_training();
  eval();
  torch::Tensor h = x, mask;
  for (const auto& l : layers_) {
    if (l->needs_adapt()) l->adapt(h);
    if (!l->built()) {
      Shape s(h.sizes().begin(), h.sizes().end());
      s[0] = -1;
      l->build(s);
    }
    h = run_layer(l, h, mask);
  }
  if (!built_) {
    Shape s(x.sizes().begin(), x.sizes().end());
    s[0] = -1;
    build(s);
  }
  train(was_training);
}

}  // namespace lighter::models
