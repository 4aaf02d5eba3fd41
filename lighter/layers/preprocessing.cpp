#include "lighter/layers/preprocessing.h"

#include <torch/torch.h>

#include "lighter/core/error.h"

namespace lighter::layers {

NormalizationImpl::NormalizationImpl(const NormalizationOptions& o)
    : LayerImpl("Normalization", o.layer_args()), options_(o) {
  if (o.mean().empty() != o.variance().empty())
    throw ConfigError("mean", "Normalization needs both mean and variance, or neither");
  if (o.mean().size() != o.variance().size())
    throw ConfigError("variance", "mean and variance must have the same length");
  for (double v : o.variance())
    if (v < 0) throw ConfigError("variance", "variances must be non-negative");
  fixed_ = adapted_ = !o.mean().empty();
  if (args_.batch_input_shape) build(*args_.batch_input_shape);
}

int64_t NormalizationImpl::feature_axis(int64_t rank) const {
  int64_t axis = options_.axis() < 0 ? options_.axis() + rank : options_.axis();
  if (axis < 1 || axis >= rank)
    throw ShapeError("layer '" + layer_name() + "' (Normalization): axis " + std::to_string(options_.axis()) +
                     " is out of range for inputs of rank " + std::to_string(rank));
  return axis;
}

std::vector<int64_t> NormalizationImpl::broadcast_shape(int64_t rank) const {
  std::vector<int64_t> shape(rank, 1);
  shape[feature_axis(rank)] = mean.size(0);
  return shape;
}

void NormalizationImpl::build_impl(const Shape& input_shape) {
  int64_t axis = feature_axis(static_cast<int64_t>(input_shape.size()));
  int64_t features = input_shape[axis];
  if (features < 0) throw ShapeError("layer '" + layer_name() + "' (Normalization) needs a known feature dimension");
  auto m = torch::zeros({features}), v = torch::ones({features});
  if (fixed_) {
    if (options_.mean().size() != 1 && static_cast<int64_t>(options_.mean().size()) != features)
      throw ShapeError("layer '" + layer_name() + "' (Normalization): " + std::to_string(options_.mean().size()) +
                       " fixed means for " + std::to_string(features) + " features");
    m = torch::tensor(options_.mean(), torch::kDouble).to(torch::kFloat).expand({features}).clone();
    v = torch::tensor(options_.variance(), torch::kDouble).to(torch::kFloat).expand({features}).clone();
  }
  mean = register_weight_buffer("mean", m);
  variance = register_weight_buffer("variance", v);
  // Keras keeps the number of adapted samples as a third (integer) weight; summaries count it.
  count = register_weight_buffer("count", torch::zeros({}, torch::kLong));
}

void NormalizationImpl::adapt(const torch::Tensor& data) {
  if (fixed_) return;
  if (!built_) {
    Shape s(data.sizes().begin(), data.sizes().end());
    s[0] = -1;
    build(s);
  }
  torch::NoGradGuard no_grad;
  auto x = data.to(torch::kDouble);
  int64_t axis = feature_axis(x.dim());
  auto moved = x.movedim(axis, -1).reshape({-1, x.size(axis)});
  mean.copy_(moved.mean(0).to(mean.dtype()));
  variance.copy_(moved.var(0, /*unbiased=*/false).to(variance.dtype()));
  count.fill_(moved.size(0));
  adapted_ = true;
}

torch::Tensor NormalizationImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(built_, "Normalization layer '", layer_name(), "' is used before it was built or adapted");
  auto shape = broadcast_shape(x.dim());
  TORCH_CHECK(x.size(feature_axis(x.dim())) == mean.size(0), "layer '", layer_name(), "' (Normalization) expects ",
              mean.size(0), " features, got input of shape ", x.sizes());
  auto m = mean.view(shape), v = variance.view(shape);
  auto scale = torch::clamp_min(torch::sqrt(v), 1e-7);
  if (options_.invert()) return x * scale + m;
  return (x - m) / scale;
}

ParamCount NormalizationImpl::count_params() const {
  // Fixed statistics are constants in Keras, not weights.
  if (fixed_) return {};
  return LayerImpl::count_params();
}

json NormalizationImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["axis"] = options_.axis();
  c["mean"] = options_.mean().empty() ? json(nullptr) : json(options_.mean());
  c["variance"] = options_.variance().empty() ? json(nullptr) : json(options_.variance());
  c["invert"] = options_.invert();
  return c;
}

std::shared_ptr<NormalizationImpl> NormalizationImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  NormalizationOptions o;
  const json& axis = r.raw_or_null("axis");
  if (axis.is_array()) {
    if (axis.size() != 1) throw ConfigError(r.path_of("axis"), "only a single feature axis is supported");
    o.axis(lighter::detail::convert<int64_t>(axis[0], join_path(r.path_of("axis"), 0)));
  } else if (axis.is_null() && r.object().contains("axis")) {
    throw ConfigError(r.path_of("axis"), "axis=None (one mean and variance for all values) is not supported yet");
  } else if (!axis.is_null()) {
    o.axis(r.get<int64_t>("axis"));
  }
  if (r.has("mean")) o.mean(r.get<std::vector<double>>("mean"));
  if (r.has("variance")) o.variance(r.get<std::vector<double>>("variance"));
  o.invert(r.get<bool>("invert", false));
  o.name(a.name).trainable(a.trainable);
  if (a.batch_input_shape) {
    std::vector<int64_t> in(a.batch_input_shape->begin() + 1, a.batch_input_shape->end());
    o.input_shape(in);
  }
  return std::make_shared<NormalizationImpl>(o);
}

}  // namespace lighter::layers
