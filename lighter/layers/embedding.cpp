#include "lighter/layers/embedding.h"

#include <torch/torch.h>

#include "lighter/core/error.h"
#include "lighter/layers/initializers.h"
#include "lighter/layers/regularizers.h"

namespace lighter::layers {

// ---- Embedding -------------------------------------------------------------------------------------------------

EmbeddingImpl::EmbeddingImpl(const EmbeddingOptions& o) : LayerImpl("Embedding", o.layer_args()), options_(o) {
  if (o.input_dim() <= 0) throw ConfigError("input_dim", "expected a positive integer, got " + std::to_string(o.input_dim()));
  if (o.output_dim() <= 0)
    throw ConfigError("output_dim", "expected a positive integer, got " + std::to_string(o.output_dim()));
  options_.embeddings_initializer(initializers::normalize(o.embeddings_initializer(), "embeddings_initializer"));
  options_.embeddings_regularizer(regularizers::normalize(o.embeddings_regularizer(), "embeddings_regularizer"));
  options_.activity_regularizer(regularizers::normalize(o.activity_regularizer(), "activity_regularizer"));
  // Keras 2: input_length declares the input of a first layer when no input shape is given.
  if (!args_.batch_input_shape && o.input_length() > 0) args_.batch_input_shape = Shape{-1, o.input_length()};
  if (args_.batch_input_shape) build(*args_.batch_input_shape);
}

Shape EmbeddingImpl::compute_output_shape(const Shape& input_shape) const {
  detail::expect_min_rank(*this, input_shape, 1);
  Shape out = input_shape;
  out.push_back(options_.output_dim());
  return out;
}

void EmbeddingImpl::build_impl(const Shape&) {
  weight = register_parameter("weight", torch::empty({options_.input_dim(), options_.output_dim()}));
  // Keras' embeddings [input_dim, output_dim]: fan_in = input_dim, fan_out = output_dim.
  initializers::apply(weight, options_.embeddings_initializer(), options_.input_dim(), options_.output_dim());
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(built_, "Embedding layer '", layer_name(), "' is used before it was built");
  torch::Tensor ids = x.scalar_type() == torch::kLong ? x : x.to(torch::kLong);
  // An id outside [0, input_dim) is named here. On the CPU the lookup checks its indices itself, so the ids are
  // scanned only when it fails; on a GPU it would stop with a device-side assert instead, so they are checked first
  // (one reduction and one wait for the device per call).
  auto check_ids = [&] {
    if (ids.numel() == 0) return;
    auto range = torch::stack({ids.min(), ids.max()}).cpu();
    const int64_t lo = range[0].item<int64_t>(), hi = range[1].item<int64_t>();
    if (lo < 0 || hi >= options_.input_dim())
      throw ShapeError("layer '" + layer_name() + "' (Embedding): token ids must be in [0, input_dim) = [0, " +
                       std::to_string(options_.input_dim()) + "), got " + std::to_string(lo < 0 ? lo : hi));
  };
  if (!ids.device().is_cpu()) check_ids();
  torch::Tensor looked_up;
  try {
    looked_up = torch::embedding(weight, ids);
  } catch (const c10::Error&) {
    check_ids();
    throw;
  }
  auto out = apply_adapter_hook(ids, looked_up);
  if (!options_.activity_regularizer().is_null() && is_training())
    activity_loss_ = regularizers::penalty(options_.activity_regularizer(), out);
  return out;
}

torch::Tensor EmbeddingImpl::compute_mask(const torch::Tensor& input, const torch::Tensor&) const {
  if (!options_.mask_zero()) return {};
  return input.ne(0);
}

torch::Tensor EmbeddingImpl::regularization_loss() const {
  torch::Tensor total;
  if (weight.defined() && weight.requires_grad()) total = regularizers::penalty(options_.embeddings_regularizer(), weight);
  if (is_training() && activity_loss_.defined()) total = total.defined() ? total + activity_loss_ : activity_loss_;
  return total;
}

json EmbeddingImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["input_dim"] = options_.input_dim();
  c["output_dim"] = options_.output_dim();
  c["embeddings_initializer"] = options_.embeddings_initializer();
  c["embeddings_regularizer"] = options_.embeddings_regularizer();
  c["activity_regularizer"] = options_.activity_regularizer();
  c["embeddings_constraint"] = nullptr;
  c["mask_zero"] = options_.mask_zero();
  if (options_.input_length() > 0) c["input_length"] = options_.input_length();
  return c;
}

std::shared_ptr<EmbeddingImpl> EmbeddingImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  EmbeddingOptions o(r.positive_int("input_dim"), r.positive_int("output_dim"));
  o.embeddings_initializer(initializers::normalize(r.get<json>("embeddings_initializer", "random_uniform"),
                                                   r.path_of("embeddings_initializer")));
  o.embeddings_regularizer(
      regularizers::normalize(r.get<json>("embeddings_regularizer", nullptr), r.path_of("embeddings_regularizer")));
  o.activity_regularizer(
      regularizers::normalize(r.get<json>("activity_regularizer", nullptr), r.path_of("activity_regularizer")));
  o.mask_zero(r.get<bool>("mask_zero", false));
  if (r.has("input_length")) {
    // Keras 2 writes a number, or a list for several input axes.
    const json& len = r.raw("input_length");
    if (len.is_number_integer() && len.get<int64_t>() > 0) o.input_length(len.get<int64_t>());
  }
  for (const char* k : {"embeddings_constraint", "quantization_config", "lora_rank"}) r.require_null(k);
  r.ignore({"sparse", "lora_alpha"});
  if (r.has("sparse") && r.raw("sparse") != json(false))
    throw ConfigError(r.path_of("sparse"), "sparse embeddings are not supported");
  o.name(a.name).trainable(a.trainable);
  auto layer = std::make_shared<EmbeddingImpl>(o);
  if (a.batch_input_shape) {
    layer->args_.batch_input_shape = a.batch_input_shape;
    layer->build(*a.batch_input_shape);
  }
  return layer;
}

// ---- Masking ---------------------------------------------------------------------------------------------------

MaskingImpl::MaskingImpl(const MaskingOptions& o) : LayerImpl("Masking", o.layer_args()), options_(o) {}

torch::Tensor MaskingImpl::compute_mask(const torch::Tensor& input, const torch::Tensor&) const {
  return input.ne(options_.mask_value()).any(-1);
}

torch::Tensor MaskingImpl::forward(const torch::Tensor& x) {
  return x * compute_mask(x, {}).unsqueeze(-1).to(x.scalar_type());
}

json MaskingImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["mask_value"] = options_.mask_value();
  return c;
}

std::shared_ptr<MaskingImpl> MaskingImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  MaskingOptions o;
  o.mask_value(r.get<double>("mask_value", 0.0));
  o.name(a.name).trainable(a.trainable);
  auto layer = std::make_shared<MaskingImpl>(o);
  layer->args_.batch_input_shape = a.batch_input_shape;
  return layer;
}

}  // namespace lighter::layers
