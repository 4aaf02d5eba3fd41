#include "lighter/layers/layer.h"

#include "lighter/core/error.h"

namespace lighter::layers {

LayerImpl::LayerImpl(std::string class_name, LayerArgs args)
    : torch::nn::Module(class_name), class_name_(std::move(class_name)), args_(std::move(args)) {}

void LayerImpl::set_trainable(bool trainable) {
  args_.trainable = trainable;
  // An adapter's own parameters keep their state: freezing the layer is what adapters are for.
  for (auto& p : named_parameters(/*recurse=*/true))
    if (!detail::is_adapter_tensor_name(p.key())) p.value().set_requires_grad(trainable);
}

void LayerImpl::set_adapter_hook(std::shared_ptr<AdapterHookImpl> hook) {
  if (hook && !supports_adapter_hook())
    throw ShapeError("layer '" + layer_name() + "' (" + class_name_ + ") takes no adapter");
  if (adapter_hook_) unregister_module(kAdapterHookName);
  adapter_hook_ = std::move(hook);
  if (adapter_hook_) register_module(kAdapterHookName, adapter_hook_);
}

void LayerImpl::build(const Shape& input_shape) {
  if (built_) {
    // Rebuilding with another feature shape would silently replace trained weights.
    bool same = input_shape.size() == input_shape_.size();
    for (size_t i = 1; same && i < input_shape.size(); ++i)
      same = input_shape[i] == input_shape_[i] || input_shape[i] < 0 || input_shape_[i] < 0;
    if (!same)
      throw ShapeError("layer '" + layer_name() + "' (" + class_name_ + ") was built for input " +
                       shape_to_string(input_shape_) + " but got " + shape_to_string(input_shape));
    return;
  }
  output_shape_ = compute_output_shape(input_shape);
  input_shape_ = input_shape;
  build_impl(input_shape);
  built_ = true;
  if (!args_.trainable) set_trainable(false);
}

void LayerImpl::build_list(const std::vector<Shape>& shapes) {
  if (!takes_list())
    throw ShapeError("layer '" + layer_name() + "' (" + class_name_ + ") takes one tensor, got a list of " +
                     std::to_string(shapes.size()));
  if (built_) {
    bool same = shapes.size() == input_shapes_.size();
    for (size_t k = 0; same && k < shapes.size(); ++k) {
      same = shapes[k].size() == input_shapes_[k].size();
      for (size_t i = 1; same && i < shapes[k].size(); ++i)
        same = shapes[k][i] == input_shapes_[k][i] || shapes[k][i] < 0 || input_shapes_[k][i] < 0;
    }
    if (!same) {
      std::string was, got;
      for (const auto& s : input_shapes_) was += (was.empty() ? "" : ", ") + shape_to_string(s);
      for (const auto& s : shapes) got += (got.empty() ? "" : ", ") + shape_to_string(s);
      throw ShapeError("layer '" + layer_name() + "' (" + class_name_ + ") was built for inputs [" + was + "] but got [" +
                       got + "]");
    }
    return;
  }
  output_shape_ = compute_output_shape_list(shapes);
  input_shapes_ = shapes;
  input_shape_ = shapes.empty() ? Shape{} : shapes.front();
  build_list_impl(shapes);
  built_ = true;
  if (!args_.trainable) set_trainable(false);
}

Shape LayerImpl::compute_output_shape_list(const std::vector<Shape>& shapes) const {
  throw ShapeError("layer '" + layer_name() + "' (" + class_name_ + ") takes one tensor, got a list of " +
                   std::to_string(shapes.size()));
}

torch::Tensor LayerImpl::forward_list(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>&) {
  throw ShapeError("layer '" + layer_name() + "' (" + class_name_ + ") takes one tensor, got a list of " +
                   std::to_string(inputs.size()));
}

torch::Tensor LayerImpl::forward_step(const torch::Tensor& x, DecodeCache&) {
  if (!acts_per_step())
    throw ShapeError("layer '" + layer_name() + "' (" + class_name_ +
                     ") cannot decode step by step: it does not act on each step alone and keeps no cache");
  return forward(x);
}

json LayerImpl::get_config() const { return detail::write_layer_args(args_); }

ParamCount LayerImpl::count_params() const {
  ParamCount c;
  for (const auto& p : parameters(true)) (p.requires_grad() ? c.trainable : c.non_trainable) += p.numel();
  c.non_trainable += weight_buffer_count();
  return c;
}

int64_t LayerImpl::weight_buffer_count() const {
  int64_t n = 0;
  auto own = named_buffers(/*recurse=*/false);
  for (const auto& name : weight_buffers_)
    if (const auto* b = own.find(name)) n += b->numel();
  for (const auto& child : children())
    if (auto layer = std::dynamic_pointer_cast<LayerImpl>(child)) n += layer->weight_buffer_count();
  return n;
}

torch::Tensor LayerImpl::register_weight_buffer(const std::string& name, torch::Tensor tensor) {
  weight_buffers_.push_back(name);
  return register_buffer(name, std::move(tensor));
}

namespace detail {

bool is_adapter_tensor_name(const std::string& name) {
  const std::string hook = LayerImpl::kAdapterHookName;
  for (size_t start = 0; start <= name.size();) {
    size_t end = name.find('.', start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, hook) == 0) return true;
    start = end + 1;
  }
  return false;
}

LayerArgs read_layer_args(ConfigReader& r) {
  LayerArgs a;
  a.name = r.get<std::string>("name", "");
  a.trainable = r.get<bool>("trainable", true);
  std::string dtype_name = read_dtype_name(r);
  if (dtype_name != "float32")
    throw ConfigError(r.path_of("dtype"), "dtype '" + dtype_name + "' is not supported yet (supported: float32)");
  if (r.has("batch_input_shape")) a.batch_input_shape = shape_from_json(r.raw("batch_input_shape"), r.path_of("batch_input_shape"));
  if (r.has("batch_shape")) a.batch_input_shape = shape_from_json(r.raw("batch_shape"), r.path_of("batch_shape"));
  if (r.has("input_shape")) {
    Shape s = shape_from_json(r.raw("input_shape"), r.path_of("input_shape"));
    s.insert(s.begin(), -1);
    a.batch_input_shape = s;
  }
  if (r.has("batch_size") && a.batch_input_shape) (*a.batch_input_shape)[0] = r.positive_int("batch_size");
  r.ignore({"batch_size"});
  return a;
}

json write_layer_args(const LayerArgs& a) {
  json j{{"name", a.name}, {"trainable", a.trainable}, {"dtype", "float32"}};
  if (a.batch_input_shape) j["batch_input_shape"] = shape_to_json(*a.batch_input_shape);
  return j;
}

void expect_min_rank(const LayerImpl& layer, const Shape& shape, size_t rank) {
  if (shape.size() < rank)
    throw ShapeError("layer '" + layer.layer_name() + "' (" + layer.class_name() + ") expects inputs of rank >= " +
                     std::to_string(rank) + ", got shape " + shape_to_string(shape));
}

}  // namespace detail
}  // namespace lighter::layers
