#include "lighter/layers/core_layers.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/linear.h>
#include <torch/torch.h>

#include "lighter/core/error.h"
#include "lighter/layers/initializers.h"
#include "lighter/layers/regularizers.h"

namespace lighter::layers {

namespace {
std::string dtype_name_checked(const std::string& dtype, const std::string& path) {
  static const std::vector<std::string> ok = {"float32", "int32", "int64", "int16", "int8", "uint8"};
  if (std::find(ok.begin(), ok.end(), dtype) == ok.end())
    throw ConfigError(path, "input dtype '" + dtype + "' is not supported (supported: float32, int32, int64)");
  return dtype;
}
}  // namespace

// ---- InputLayer ------------------------------------------------------------------------------------------

InputLayerImpl::InputLayerImpl(const InputLayerOptions& o)
    : LayerImpl("InputLayer", LayerArgs{o.name(), true, {}}), dtype_(dtype_name_checked(o.dtype(), "dtype")) {
  batch_shape_.push_back(o.batch_size() > 0 ? o.batch_size() : -1);
  for (auto d : o.shape()) {
    if (d == 0 || d < -1) throw ConfigError("shape", "expected positive dimensions, got " + std::to_string(d));
    batch_shape_.push_back(d);
  }
  args_.batch_input_shape = batch_shape_;
  build(batch_shape_);
}

InputLayerImpl::InputLayerImpl(const Shape& batch_shape, std::string name, std::string dtype)
    : LayerImpl("InputLayer", LayerArgs{std::move(name), true, batch_shape}), batch_shape_(batch_shape),
      dtype_(std::move(dtype)) {
  build(batch_shape_);
}

json InputLayerImpl::get_config() const {
  return {{"batch_shape", shape_to_json(batch_shape_)}, {"dtype", dtype_}, {"sparse", false}, {"name", layer_name()}};
}

std::shared_ptr<InputLayerImpl> InputLayerImpl::from_config(ConfigReader& r) {
  std::string name = r.get<std::string>("name", "");
  std::string dtype = dtype_name_checked(read_dtype_name(r), r.path_of("dtype"));
  Shape shape;
  if (r.has("batch_shape")) {
    shape = shape_from_json(r.raw("batch_shape"), r.path_of("batch_shape"));
  } else if (r.has("batch_input_shape")) {
    shape = shape_from_json(r.raw("batch_input_shape"), r.path_of("batch_input_shape"));
  } else if (r.has("shape")) {
    shape = shape_from_json(r.raw("shape"), r.path_of("shape"));
    shape.insert(shape.begin(), -1);
  } else {
    throw ConfigError(r.path(), "InputLayer needs batch_shape (Keras 3) or batch_input_shape (Keras 2)");
  }
  if (shape.size() < 2) throw ConfigError(r.path(), "InputLayer shape must have at least one non-batch dimension");
  if (r.has("batch_size")) shape[0] = r.positive_int("batch_size");
  for (const char* k : {"sparse", "ragged", "optional"}) {
    if (r.get<bool>(k, false))
      throw ConfigError(r.path_of(k), std::string(k) + " inputs are not supported");
  }
  r.ignore({"batch_size", "input_tensor"});
  return std::make_shared<InputLayerImpl>(shape, name, dtype);
}

InputLayer Input(std::vector<int64_t> shape, const std::string& name) {
  return InputLayer(InputLayerOptions(std::move(shape)).name(name));
}

// ---- Dense -------------------------------------------------------------------------------------------------

DenseImpl::DenseImpl(const DenseOptions& o) : LayerImpl("Dense", o.layer_args()), options_(o) {
  if (o.units() <= 0) throw ConfigError("units", "expected a positive integer, got " + std::to_string(o.units()));
  options_.activation(activations::canonical(o.activation(), "activation"));
  activation_ = activations::get(options_.activation());
  options_.kernel_initializer(initializers::normalize(o.kernel_initializer(), "kernel_initializer"));
  options_.bias_initializer(initializers::normalize(o.bias_initializer(), "bias_initializer"));
  options_.kernel_regularizer(regularizers::normalize(o.kernel_regularizer(), "kernel_regularizer"));
  options_.bias_regularizer(regularizers::normalize(o.bias_regularizer(), "bias_regularizer"));
  options_.activity_regularizer(regularizers::normalize(o.activity_regularizer(), "activity_regularizer"));
  if (args_.batch_input_shape) build(*args_.batch_input_shape);
}

Shape DenseImpl::compute_output_shape(const Shape& input_shape) const {
  detail::expect_min_rank(*this, input_shape, 2);
  if (input_shape.back() < 0)
    throw ShapeError("layer '" + layer_name() + "' (Dense) needs a known last dimension, got " +
                     shape_to_string(input_shape));
  Shape out = input_shape;
  out.back() = options_.units();
  return out;
}

void DenseImpl::build_impl(const Shape& input_shape) {
  int64_t in = input_shape.back(), units = options_.units();
  weight = register_parameter("weight", torch::empty({units, in}));
  // Keras' kernel is [in, units]: fan_in = inputs, fan_out = units.
  initializers::apply(weight, options_.kernel_initializer(), in, units);
  if (options_.use_bias()) {
    bias = register_parameter("bias", torch::empty({units}));
    initializers::apply(bias, options_.bias_initializer(), in, units);
  }
}

torch::Tensor DenseImpl::linear(const torch::Tensor& x) const {
  TORCH_CHECK(built_, "Dense layer '", layer_name(), "' is used before it was built");
  TORCH_CHECK(x.dim() >= 2 && x.size(-1) == weight.size(1), "layer '", layer_name(), "' (Dense) expects ",
              weight.size(1), " input features, got input of shape ", x.sizes());
  return apply_adapter_hook(x, torch::nn::functional::linear(x, weight, bias));
}

void DenseImpl::record_activity(const torch::Tensor& output) {
  // Keras 3 adds activity_regularizer(output) to the loss as it is (Keras 2 divided it by the batch size).
  if (!options_.activity_regularizer().is_null() && is_training())
    activity_loss_ = regularizers::penalty(options_.activity_regularizer(), output);
}

torch::Tensor DenseImpl::forward_pre_activation(const torch::Tensor& x) {
  auto z = linear(x);
  // The activity penalty is on the activated output, also when a loss takes the logits.
  if (!options_.activity_regularizer().is_null() && is_training()) record_activity(activation_(z));
  return z;
}

torch::Tensor DenseImpl::forward(const torch::Tensor& x) {
  auto out = activation_(linear(x));
  record_activity(out);
  return out;
}

torch::Tensor DenseImpl::regularization_loss() const {
  torch::Tensor total;
  auto add = [&](const torch::Tensor& t) {
    if (t.defined()) total = total.defined() ? total + t : t;
  };
  if (weight.defined() && weight.requires_grad()) add(regularizers::penalty(options_.kernel_regularizer(), weight));
  if (bias.defined() && bias.requires_grad()) add(regularizers::penalty(options_.bias_regularizer(), bias));
  if (is_training()) add(activity_loss_);
  return total;
}

json DenseImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["units"] = options_.units();
  c["activation"] = options_.activation();
  c["use_bias"] = options_.use_bias();
  c["kernel_initializer"] = options_.kernel_initializer();
  c["bias_initializer"] = options_.bias_initializer();
  c["kernel_regularizer"] = options_.kernel_regularizer();
  c["bias_regularizer"] = options_.bias_regularizer();
  c["activity_regularizer"] = options_.activity_regularizer();
  c["kernel_constraint"] = nullptr;
  c["bias_constraint"] = nullptr;
  return c;
}

std::shared_ptr<DenseImpl> DenseImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  DenseOptions o(r.positive_int("units"));
  o.activation(activations::canonical(r.get<std::string>("activation", "linear"), r.path_of("activation")));
  o.use_bias(r.get<bool>("use_bias", true));
  o.kernel_initializer(initializers::normalize(r.get<json>("kernel_initializer", "glorot_uniform"),
                                               r.path_of("kernel_initializer")));
  o.bias_initializer(initializers::normalize(r.get<json>("bias_initializer", "zeros"), r.path_of("bias_initializer")));
  o.kernel_regularizer(regularizers::normalize(r.get<json>("kernel_regularizer", nullptr), r.path_of("kernel_regularizer")));
  o.bias_regularizer(regularizers::normalize(r.get<json>("bias_regularizer", nullptr), r.path_of("bias_regularizer")));
  o.activity_regularizer(
      regularizers::normalize(r.get<json>("activity_regularizer", nullptr), r.path_of("activity_regularizer")));
  for (const char* k : {"kernel_constraint", "bias_constraint", "quantization_config", "lora_rank"}) r.require_null(k);
  r.ignore({"lora_alpha"});
  o.name(a.name).trainable(a.trainable);
  auto layer = std::make_shared<DenseImpl>(o);
  if (a.batch_input_shape) {
    layer->args_.batch_input_shape = a.batch_input_shape;
    layer->build(*a.batch_input_shape);
  }
  return layer;
}

// ---- Activation -------------------------------------------------------------------------------------------

ActivationImpl::ActivationImpl(const ActivationOptions& o) : LayerImpl("Activation", o.layer_args()), options_(o) {
  options_.activation(activations::canonical(o.activation(), "activation"));
  activation_ = activations::get(options_.activation());
}

json ActivationImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["activation"] = options_.activation();
  return c;
}

std::shared_ptr<ActivationImpl> ActivationImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  ActivationOptions o(activations::canonical(r.get<std::string>("activation"), r.path_of("activation")));
  o.name(a.name).trainable(a.trainable);
  auto layer = std::make_shared<ActivationImpl>(o);
  layer->args_.batch_input_shape = a.batch_input_shape;
  return layer;
}

// ---- Dropout -------------------------------------------------------------------------------------------------

DropoutImpl::DropoutImpl(const DropoutOptions& o) : LayerImpl("Dropout", o.layer_args()), options_(o) {
  if (!(o.rate() >= 0 && o.rate() < 1))
    throw ConfigError("rate", "expected a number in [0, 1), got " + std::to_string(o.rate()));
  if (o.seed() >= 0) generator_ = track_generator(at::detail::createCPUGenerator(static_cast<uint64_t>(o.seed())));
}

torch::Tensor DropoutImpl::forward(const torch::Tensor& x) {
  if (!is_training() || options_.rate() == 0) return x;
  if (generator_ && x.is_cpu()) {
    double keep = 1.0 - options_.rate();
    auto mask = torch::empty_like(x).bernoulli_(keep, *generator_);
    return x * mask / keep;
  }
  return torch::dropout(x, options_.rate(), /*train=*/true);
}

json DropoutImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["rate"] = options_.rate();
  c["noise_shape"] = nullptr;
  c["seed"] = options_.seed() >= 0 ? json(options_.seed()) : json(nullptr);
  return c;
}

std::shared_ptr<DropoutImpl> DropoutImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  DropoutOptions o(r.fraction("rate", 0.0));
  if (!r.has("rate")) throw ConfigError(r.path_of("rate"), "required key is missing");
  if (r.has("seed")) {
    int64_t seed = r.get<int64_t>("seed");
    if (seed < 0) throw ConfigError(r.path_of("seed"), "expected a non-negative integer or null");
    o.seed(seed);
  }
  r.require_null("noise_shape");
  o.name(a.name).trainable(a.trainable);
  auto layer = std::make_shared<DropoutImpl>(o);
  layer->args_.batch_input_shape = a.batch_input_shape;
  return layer;
}

// ---- Flatten --------------------------------------------------------------------------------------------------

FlattenImpl::FlattenImpl(const FlattenOptions& o) : LayerImpl("Flatten", o.layer_args()), options_(o) {
  if (o.data_format() != "channels_last" && o.data_format() != "channels_first")
    throw ConfigError("data_format", "expected channels_last or channels_first, got \"" + o.data_format() + "\"");
}

Shape FlattenImpl::compute_output_shape(const Shape& s) const {
  detail::expect_min_rank(*this, s, 2);
  int64_t n = 1;
  for (size_t i = 1; i < s.size(); ++i) n = (n < 0 || s[i] < 0) ? -1 : n * s[i];
  return {s[0], n};
}

torch::Tensor FlattenImpl::forward(const torch::Tensor& x) {
  if (options_.data_format() == "channels_first" && x.dim() > 2) {
    std::vector<int64_t> order{0};
    for (int64_t d = 2; d < x.dim(); ++d) order.push_back(d);
    order.push_back(1);
    return x.permute(order).flatten(1);
  }
  return x.flatten(1);
}

json FlattenImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["data_format"] = options_.data_format();
  return c;
}

std::shared_ptr<FlattenImpl> FlattenImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  FlattenOptions o;
  o.data_format(r.choice("data_format", "channels_last", {"channels_last", "channels_first"}));
  o.name(a.name).trainable(a.trainable);
  auto layer = std::make_shared<FlattenImpl>(o);
  layer->args_.batch_input_shape = a.batch_input_shape;
  return layer;
}

}  // namespace lighter::layers
