#include "lighter/layers/regularization.h"

#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "lighter/core/error.h"
#include "lighter/layers/config_helpers.h"
#include "lighter/layers/spatial.h"

namespace lighter::layers {

namespace {

std::string number(double v) { return json(v).dump(); }

double check_rate(double rate) {
  if (!(rate >= 0 && rate < 1)) throw ConfigError("rate", "expected a number in [0, 1), got " + number(rate));
  return rate;
}

c10::optional<at::Generator> make_generator(int64_t seed) {
  if (seed < 0) return c10::nullopt;
  return at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
}

// The layer's own generator draws on CPU tensors; other devices use their global generator.
c10::optional<at::Generator> generator_for(const c10::optional<at::Generator>& own, const torch::Tensor& x) {
  return own && x.is_cpu() ? own : c10::nullopt;
}

// Keeps whole channels: a mask of `mask_shape` (1 on the spatial axes) with values 0 or 1/keep.
torch::Tensor channel_dropout(const torch::Tensor& x, double rate, std::vector<int64_t> mask_shape,
                              const c10::optional<at::Generator>& gen) {
  const double keep = 1.0 - rate;
  auto mask = torch::empty(mask_shape, x.options()).bernoulli_(keep, generator_for(gen, x)).div_(keep);
  return x * mask;
}

void check_rank(const LayerImpl& layer, const Shape& s, size_t rank, const std::string& what) {
  if (s.size() != rank)
    throw ShapeError(detail::layer_label(layer) + " expects inputs of rank " + std::to_string(rank) + " " + what +
                     ", got shape " + shape_to_string(s));
}

}  // namespace

// ---- SpatialDropout1D -------------------------------------------------------------------------------------------

SpatialDropout1DImpl::SpatialDropout1DImpl(const SpatialDropout1DOptions& o)
    : LayerImpl("SpatialDropout1D", o.layer_args()), options_(o) {
  check_rate(o.rate());
  generator_ = track_generator(make_generator(o.seed()));
}

Shape SpatialDropout1DImpl::compute_output_shape(const Shape& s) const {
  check_rank(*this, s, 3, "(batch, steps, channels)");
  return s;
}

torch::Tensor SpatialDropout1DImpl::forward(const torch::Tensor& x) {
  if (!is_training() || options_.rate() == 0) return x;
  TORCH_CHECK(x.dim() == 3, "layer '", layer_name(), "' (SpatialDropout1D) expects inputs of rank 3, got shape ",
              x.sizes());
  return channel_dropout(x, options_.rate(), {x.size(0), 1, x.size(2)}, generator_);
}

json SpatialDropout1DImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["rate"] = options_.rate();
  c["seed"] = detail::seed_to_json(options_.seed());
  return c;
}

std::shared_ptr<SpatialDropout1DImpl> SpatialDropout1DImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  SpatialDropout1DOptions o(r.get<double>("rate"));
  o.seed(detail::read_seed(r));
  r.require_null("noise_shape");  // Keras 2 writes it (always null here)
  o.name(a.name).trainable(a.trainable);
  auto layer = detail::construct_at<SpatialDropout1DImpl>(r, o);
  layer->args_.batch_input_shape = a.batch_input_shape;
  return layer;
}

// ---- SpatialDropout2D -------------------------------------------------------------------------------------------

SpatialDropout2DImpl::SpatialDropout2DImpl(const SpatialDropout2DOptions& o)
    : LayerImpl("SpatialDropout2D", o.layer_args()), options_(o) {
  check_rate(o.rate());
  detail::check_data_format(o.data_format(), "data_format");
  generator_ = track_generator(make_generator(o.seed()));
}

Shape SpatialDropout2DImpl::compute_output_shape(const Shape& s) const {
  check_rank(*this, s, 4, "(images)");
  return s;
}

torch::Tensor SpatialDropout2DImpl::forward(const torch::Tensor& x) {
  if (!is_training() || options_.rate() == 0) return x;
  TORCH_CHECK(x.dim() == 4, "layer '", layer_name(), "' (SpatialDropout2D) expects inputs of rank 4, got shape ",
              x.sizes());
  if (options_.data_format() == "channels_last")
    return channel_dropout(x, options_.rate(), {x.size(0), 1, 1, x.size(3)}, generator_);
  return channel_dropout(x, options_.rate(), {x.size(0), x.size(1), 1, 1}, generator_);
}

json SpatialDropout2DImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["rate"] = options_.rate();
  c["data_format"] = options_.data_format();
  c["seed"] = detail::seed_to_json(options_.seed());
  return c;
}

std::shared_ptr<SpatialDropout2DImpl> SpatialDropout2DImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  SpatialDropout2DOptions o(r.get<double>("rate"));
  o.data_format(detail::read_data_format(r));
  o.seed(detail::read_seed(r));
  r.require_null("noise_shape");
  o.name(a.name).trainable(a.trainable);
  auto layer = detail::construct_at<SpatialDropout2DImpl>(r, o);
  layer->args_.batch_input_shape = a.batch_input_shape;
  return layer;
}

// ---- GaussianNoise ------------------------------------------------------------------------------------------------

GaussianNoiseImpl::GaussianNoiseImpl(const GaussianNoiseOptions& o)
    : LayerImpl("GaussianNoise", o.layer_args()), options_(o) {
  if (!(o.stddev() >= 0)) throw ConfigError("stddev", "expected a non-negative number, got " + number(o.stddev()));
  generator_ = track_generator(make_generator(o.seed()));
}

torch::Tensor GaussianNoiseImpl::forward(const torch::Tensor& x) {
  if (!is_training() || options_.stddev() == 0) return x;
  return x + torch::empty_like(x).normal_(0.0, options_.stddev(), generator_for(generator_, x));
}

json GaussianNoiseImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["stddev"] = options_.stddev();
  c["seed"] = detail::seed_to_json(options_.seed());
  return c;
}

std::shared_ptr<GaussianNoiseImpl> GaussianNoiseImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  GaussianNoiseOptions o(r.get<double>("stddev"));
  o.seed(detail::read_seed(r));
  o.name(a.name).trainable(a.trainable);
  auto layer = detail::construct_at<GaussianNoiseImpl>(r, o);
  layer->args_.batch_input_shape = a.batch_input_shape;
  return layer;
}

// ---- GaussianDropout ----------------------------------------------------------------------------------------------

GaussianDropoutImpl::GaussianDropoutImpl(const GaussianDropoutOptions& o)
    : LayerImpl("GaussianDropout", o.layer_args()), options_(o) {
  check_rate(o.rate());
  generator_ = track_generator(make_generator(o.seed()));
}

torch::Tensor GaussianDropoutImpl::forward(const torch::Tensor& x) {
  if (!is_training() || options_.rate() == 0) return x;
  const double stddev = std::sqrt(options_.rate() / (1.0 - options_.rate()));
  return x * torch::empty_like(x).normal_(1.0, stddev, generator_for(generator_, x));
}

json GaussianDropoutImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["rate"] = options_.rate();
  c["seed"] = detail::seed_to_json(options_.seed());
  return c;
}

std::shared_ptr<GaussianDropoutImpl> GaussianDropoutImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  GaussianDropoutOptions o(r.get<double>("rate"));
  o.seed(detail::read_seed(r));
  o.name(a.name).trainable(a.trainable);
  auto layer = detail::construct_at<GaussianDropoutImpl>(r, o);
  layer->args_.batch_input_shape = a.batch_input_shape;
  return layer;
}

// ---- AlphaDropout -------------------------------------------------------------------------------------------------

AlphaDropoutImpl::AlphaDropoutImpl(const AlphaDropoutOptions& o) : LayerImpl("AlphaDropout", o.layer_args()), options_(o) {
  check_rate(o.rate());
  generator_ = track_generator(make_generator(o.seed()));
}

torch::Tensor AlphaDropoutImpl::forward(const torch::Tensor& x) {
  const double rate = options_.rate();
  if (!is_training() || rate == 0) return x;
  // SELU's constants (Klambauer et al. 2017), as Keras writes them.
  const double alpha = 1.6732632423543772848170429916717, scale = 1.0507009873554804934193349852946;
  const double alpha_p = -alpha * scale;
  const double a = std::pow((1.0 - rate) * (1.0 + rate * alpha_p * alpha_p), -0.5);
  const double b = -a * alpha_p * rate;
  auto dropped = torch::empty_like(x).uniform_(0.0, 1.0, generator_for(generator_, x)) < rate;
  return x.masked_fill(dropped, alpha_p) * a + b;
}

json AlphaDropoutImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["rate"] = options_.rate();
  c["seed"] = detail::seed_to_json(options_.seed());
  c["noise_shape"] = nullptr;
  return c;
}

std::shared_ptr<AlphaDropoutImpl> AlphaDropoutImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  AlphaDropoutOptions o(r.get<double>("rate"));
  o.seed(detail::read_seed(r));
  r.require_null("noise_shape");
  o.name(a.name).trainable(a.trainable);
  auto layer = detail::construct_at<AlphaDropoutImpl>(r, o);
  layer->args_.batch_input_shape = a.batch_input_shape;
  return layer;
}

// ---- ActivityRegularization ---------------------------------------------------------------------------------------

ActivityRegularizationImpl::ActivityRegularizationImpl(const ActivityRegularizationOptions& o)
    : LayerImpl("ActivityRegularization", o.layer_args()), options_(o) {
  if (!(o.l1() >= 0)) throw ConfigError("l1", "expected a non-negative number, got " + number(o.l1()));
  if (!(o.l2() >= 0)) throw ConfigError("l2", "expected a non-negative number, got " + number(o.l2()));
}

torch::Tensor ActivityRegularizationImpl::forward(const torch::Tensor& x) {
  if (!is_training()) return x;
  // Keras' L1L2(l1, l2)(x), without building a regularizer spec per step.
  torch::Tensor loss;
  if (options_.l1() > 0) loss = options_.l1() * x.abs().sum();
  if (options_.l2() > 0) {
    auto l2 = options_.l2() * x.square().sum();
    loss = loss.defined() ? loss + l2 : l2;
  }
  activity_loss_ = loss;
  return x;
}

torch::Tensor ActivityRegularizationImpl::regularization_loss() const {
  return is_training() ? activity_loss_ : torch::Tensor();
}

json ActivityRegularizationImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["l1"] = options_.l1();
  c["l2"] = options_.l2();
  return c;
}

std::shared_ptr<ActivityRegularizationImpl> ActivityRegularizationImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  ActivityRegularizationOptions o;
  o.l1(r.get<double>("l1", 0.0));
  o.l2(r.get<double>("l2", 0.0));
  r.ignore({"activity_regularizer"});  // some Keras versions write the L1L2 it builds from l1 and l2
  o.name(a.name).trainable(a.trainable);
  auto layer = detail::construct_at<ActivityRegularizationImpl>(r, o);
  layer->args_.batch_input_shape = a.batch_input_shape;
  return layer;
}

}  // namespace lighter::layers
