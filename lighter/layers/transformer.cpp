#include "lighter/layers/transformer.h"

#include <cmath>

#include <torch/torch.h>

#include "lighter/layers/activations.h"
#include "lighter/layers/config_helpers.h"
#include "lighter/layers/initializers.h"

namespace lighter::layers {

using detail::layer_label;

namespace {
// (N, T, features) with a known feature size: what every block here takes.
void expect_sequence(const LayerImpl& l, const Shape& s, const char* what = "inputs") {
  if (s.size() != 3 || s[2] < 0)
    throw ShapeError(layer_label(l) + " expects " + what + " of shape (batch, steps, features) with known features, got " +
                     shape_to_string(s));
}

void check_positive(int64_t v, const char* key) {
  if (v <= 0) throw ConfigError(key, "expected a positive integer, got " + std::to_string(v));
}

// Steps [start, start + t) must fit a table of `length` positions.
void check_positions(const LayerImpl& l, int64_t start, int64_t t, int64_t length) {
  if (start + t > length)
    throw ShapeError(layer_label(l) + " has positions for sequences of up to sequence_length = " + std::to_string(length) +
                     " steps, got step " + std::to_string(start + t - 1) + " (0-based)");
}
}  // namespace

// ---- PositionEmbedding ----------------------------------------------------------------------------------------

PositionEmbeddingImpl::PositionEmbeddingImpl(const PositionEmbeddingOptions& o)
    : LayerImpl("PositionEmbedding", o.layer_args()), options_(o) {
  check_positive(o.sequence_length(), "sequence_length");
  options_.initializer(initializers::normalize(o.initializer(), "initializer"));
  if (args_.batch_input_shape) build(*args_.batch_input_shape);
}

void PositionEmbeddingImpl::build_impl(const Shape& s) {
  expect_sequence(*this, s);
  if (s[1] > options_.sequence_length()) check_positions(*this, 0, s[1], options_.sequence_length());
  embeddings = register_parameter("embeddings", torch::empty({options_.sequence_length(), s[2]}));
  initializers::apply(embeddings, options_.initializer(), options_.sequence_length(), s[2]);
}

torch::Tensor PositionEmbeddingImpl::positions(const torch::Tensor& x, int64_t start) {
  if (!built_) build({-1, -1, x.dim() == 3 ? x.size(2) : -1});
  TORCH_CHECK(x.dim() == 3, layer_label(*this), " expects (batch, steps, features) inputs");
  check_positions(*this, start, x.size(1), options_.sequence_length());
  return embeddings.narrow(0, start, x.size(1)).unsqueeze(0).expand_as(x);
}

nlohmann::json PositionEmbeddingImpl::get_config() const {
  auto c = LayerImpl::get_config();
  c["sequence_length"] = options_.sequence_length();
  c["initializer"] = options_.initializer();
  return c;
}

std::shared_ptr<PositionEmbeddingImpl> PositionEmbeddingImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  PositionEmbeddingOptions o(r.positive_int("sequence_length"));
  o.initializer(initializers::normalize(r.get<nlohmann::json>("initializer", "glorot_uniform"), r.path_of("initializer")));
  o.name(a.name).trainable(a.trainable);
  auto l = detail::construct_at<PositionEmbeddingImpl>(r, o);
  if (a.batch_input_shape) l->build(*a.batch_input_shape);
  return l;
}

// ---- SinePositionEncoding ---------------------------------------------------------------------------------------

SinePositionEncodingImpl::SinePositionEncodingImpl(const SinePositionEncodingOptions& o)
    : LayerImpl("SinePositionEncoding", o.layer_args()), options_(o) {
  if (!(o.max_wavelength() > 0))
    throw ConfigError("max_wavelength", "expected a positive number, got " + std::to_string(o.max_wavelength()));
  if (args_.batch_input_shape) build(*args_.batch_input_shape);
}

void SinePositionEncodingImpl::build_impl(const Shape& s) { expect_sequence(*this, s); }

torch::Tensor SinePositionEncodingImpl::encoding(const torch::Tensor& x, int64_t start) const {
  TORCH_CHECK(x.dim() == 3, layer_label(*this), " expects (batch, steps, features) inputs");
  const int64_t t = x.size(1), dim = x.size(2);
  auto f = x.options().dtype(torch::kFloat);
  torch::Tensor position = torch::arange(start, start + t, f);
  // KerasHub: timescales = (1 / max_wavelength)^(2·(i // 2) / dim); even features take sin, odd ones cos.
  torch::Tensor i = torch::arange(dim, f);
  torch::Tensor timescales = torch::pow(1.0 / options_.max_wavelength(), 2.0 * torch::floor(i / 2) / dim);
  torch::Tensor angles = position.unsqueeze(1) * timescales.unsqueeze(0);
  torch::Tensor odd = torch::remainder(torch::arange(dim, x.options().dtype(torch::kLong)), 2).to(torch::kBool);
  torch::Tensor enc = torch::where(odd, torch::cos(angles), torch::sin(angles)).to(x.scalar_type());
  return enc.unsqueeze(0).expand_as(x);
}

nlohmann::json SinePositionEncodingImpl::get_config() const {
  auto c = LayerImpl::get_config();
  c["max_wavelength"] = options_.max_wavelength();
  return c;
}

std::shared_ptr<SinePositionEncodingImpl> SinePositionEncodingImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  SinePositionEncodingOptions o;
  o.max_wavelength(r.positive("max_wavelength", 10000.0));
  o.name(a.name).trainable(a.trainable);
  auto l = detail::construct_at<SinePositionEncodingImpl>(r, o);
  if (a.batch_input_shape) l->build(*a.batch_input_shape);
  return l;
}

// ---- TokenAndPositionEmbedding ----------------------------------------------------------------------------------

TokenAndPositionEmbeddingImpl::TokenAndPositionEmbeddingImpl(const TokenAndPositionEmbeddingOptions& o)
    : LayerImpl("TokenAndPositionEmbedding", o.layer_args()), options_(o) {
  check_positive(o.vocabulary_size(), "vocabulary_size");
  check_positive(o.sequence_length(), "sequence_length");
  check_positive(o.embedding_dim(), "embedding_dim");
  options_.embeddings_initializer(initializers::normalize(o.embeddings_initializer(), "embeddings_initializer"));
  token_embedding = register_module(
      "token_embedding", Embedding(EmbeddingOptions(o.vocabulary_size(), o.embedding_dim())
                                       .embeddings_initializer(options_.embeddings_initializer())
                                       .mask_zero(o.mask_zero())
                                       .name("token_embedding")));
  position_embedding = register_module(
      "position_embedding",
      PositionEmbedding(PositionEmbeddingOptions(o.sequence_length()).initializer(options_.embeddings_initializer()).name("position_embedding")));
  if (args_.batch_input_shape) build(*args_.batch_input_shape);
}

Shape TokenAndPositionEmbeddingImpl::compute_output_shape(const Shape& s) const {
  if (s.size() != 2) throw ShapeError(layer_label(*this) + " expects token ids of shape (batch, steps), got " + shape_to_string(s));
  if (s[1] > options_.sequence_length()) check_positions(*this, 0, s[1], options_.sequence_length());
  return {s[0], s[1], options_.embedding_dim()};
}

void TokenAndPositionEmbeddingImpl::build_impl(const Shape& s) {
  token_embedding->build(s);
  position_embedding->build({s[0], s[1], options_.embedding_dim()});
}

torch::Tensor TokenAndPositionEmbeddingImpl::forward(const torch::Tensor& x) {
  if (!built_) build({-1, -1});
  torch::Tensor tokens = token_embedding->forward(x);
  return tokens + position_embedding->positions(tokens, 0);
}

torch::Tensor TokenAndPositionEmbeddingImpl::forward_step(const torch::Tensor& x, DecodeCache& cache) {
  if (!built_) build({-1, -1});
  torch::Tensor tokens = token_embedding->forward(x);
  return tokens + position_embedding->positions(tokens, cache.position);
}

torch::Tensor TokenAndPositionEmbeddingImpl::compute_mask(const torch::Tensor& input, const torch::Tensor&) const {
  return options_.mask_zero() ? input.ne(0) : torch::Tensor();
}

nlohmann::json TokenAndPositionEmbeddingImpl::get_config() const {
  auto c = LayerImpl::get_config();
  c["vocabulary_size"] = options_.vocabulary_size();
  c["sequence_length"] = options_.sequence_length();
  c["embedding_dim"] = options_.embedding_dim();
  c["embeddings_initializer"] = options_.embeddings_initializer();
  c["tie_weights"] = options_.tie_weights();
  c["mask_zero"] = options_.mask_zero();
  return c;
}

std::shared_ptr<TokenAndPositionEmbeddingImpl> TokenAndPositionEmbeddingImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  TokenAndPositionEmbeddingOptions o(r.positive_int("vocabulary_size"), r.positive_int("sequence_length"),
                                     r.positive_int("embedding_dim"));
  o.embeddings_initializer(
      initializers::normalize(r.get<nlohmann::json>("embeddings_initializer", "uniform"), r.path_of("embeddings_initializer")));
  o.tie_weights(r.get<bool>("tie_weights", true));
  o.mask_zero(r.get<bool>("mask_zero", false));
  o.name(a.name).trainable(a.trainable);
  auto l = detail::construct_at<TokenAndPositionEmbeddingImpl>(r, o);
  if (a.batch_input_shape) l->build(*a.batch_input_shape);
  return l;
}

// ---- Transformer blocks -----------------------------------------------------------------------------------------

TransformerBlockImpl::TransformerBlockImpl(std::string class_name, const TransformerOptions& o)
    : LayerImpl(std::move(class_name), o.layer_args()), options_(o) {
  check_positive(o.intermediate_dim(), "intermediate_dim");
  check_positive(o.num_heads(), "num_heads");
  if (!(o.dropout() >= 0 && o.dropout() < 1))
    throw ConfigError("dropout", "expected a number in [0, 1), got " + std::to_string(o.dropout()));
  if (!(o.layer_norm_epsilon() > 0))
    throw ConfigError("layer_norm_epsilon", "expected a positive number, got " + std::to_string(o.layer_norm_epsilon()));
  activations::get(o.activation(), "activation");  // an unknown name fails here, naming the key
  options_.kernel_initializer(initializers::normalize(o.kernel_initializer(), "kernel_initializer"));
  options_.bias_initializer(initializers::normalize(o.bias_initializer(), "bias_initializer"));
}

int64_t TransformerBlockImpl::head_dim_for(const Shape& s) const {
  expect_sequence(*this, s);
  const int64_t head_dim = s[2] / options_.num_heads();
  if (head_dim == 0)
    throw ShapeError(layer_label(*this) + ": " + std::to_string(s[2]) + " features cannot be split into num_heads = " +
                     std::to_string(options_.num_heads()) + " heads");
  return head_dim;
}

MultiHeadAttention TransformerBlockImpl::make_attention(const std::string& name, int64_t head_dim, const Shape& query,
                                                        const Shape& value) {
  MultiHeadAttention a(MultiHeadAttentionOptions(options_.num_heads(), head_dim)
                           .dropout(options_.dropout())
                           .kernel_initializer(options_.kernel_initializer())
                           .bias_initializer(options_.bias_initializer())
                           .name(name));
  a->build_list({query, value});
  return register_module(name, a);
}

LayerNormalization TransformerBlockImpl::make_layer_norm(const std::string& name, const Shape& s) {
  LayerNormalization n(LayerNormalizationOptions().epsilon(options_.layer_norm_epsilon()).name(name));
  n->build(s);
  return register_module(name, n);
}

void TransformerBlockImpl::build_feedforward(const Shape& s) {
  auto dense = [&](const std::string& name, int64_t units, const std::string& activation, const Shape& in) {
    Dense d(DenseOptions(units)
                .activation(activation)
                .kernel_initializer(options_.kernel_initializer())
                .bias_initializer(options_.bias_initializer())
                .name(name));
    d->build(in);
    return register_module(name, d);
  };
  feedforward_intermediate_dense = dense("feedforward_intermediate_dense", options_.intermediate_dim(), options_.activation(), s);
  feedforward_output_dense = dense("feedforward_output_dense", s[2], "linear", {s[0], s[1], options_.intermediate_dim()});
  feedforward_layer_norm = make_layer_norm("feedforward_layer_norm", s);
}

template <class F>
torch::Tensor TransformerBlockImpl::residual(const torch::Tensor& x, const LayerNormalization& norm, F&& f) {
  torch::Tensor h = f(options_.normalize_first() ? norm.ptr()->forward(x) : x);
  if (is_training() && options_.dropout() > 0) h = torch::dropout(h, options_.dropout(), true);
  h = h + x;
  return options_.normalize_first() ? h : norm.ptr()->forward(h);
}

torch::Tensor TransformerBlockImpl::feedforward(const torch::Tensor& x) {
  return residual(x, feedforward_layer_norm,
                  [&](const torch::Tensor& h) { return feedforward_output_dense->forward(feedforward_intermediate_dense->forward(h)); });
}

nlohmann::json TransformerBlockImpl::get_config() const {
  auto c = LayerImpl::get_config();
  c["intermediate_dim"] = options_.intermediate_dim();
  c["num_heads"] = options_.num_heads();
  c["dropout"] = options_.dropout();
  c["activation"] = options_.activation();
  c["layer_norm_epsilon"] = options_.layer_norm_epsilon();
  c["kernel_initializer"] = options_.kernel_initializer();
  c["bias_initializer"] = options_.bias_initializer();
  c["normalize_first"] = options_.normalize_first();
  return c;
}

namespace {
TransformerOptions read_transformer_options(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  TransformerOptions o(r.positive_int("intermediate_dim"), r.positive_int("num_heads"));
  o.dropout(r.fraction("dropout", 0.0));
  o.activation(r.get<std::string>("activation", "relu"));
  activations::get(o.activation(), r.path_of("activation"));
  o.layer_norm_epsilon(r.positive("layer_norm_epsilon", 1e-5));
  o.kernel_initializer(initializers::normalize(r.get<nlohmann::json>("kernel_initializer", "glorot_uniform"),
                                               r.path_of("kernel_initializer")));
  o.bias_initializer(initializers::normalize(r.get<nlohmann::json>("bias_initializer", "zeros"), r.path_of("bias_initializer")));
  o.normalize_first(r.get<bool>("normalize_first", false));
  o.name(a.name).trainable(a.trainable);
  if (a.batch_input_shape) o.input_shape(std::vector<int64_t>(a.batch_input_shape->begin() + 1, a.batch_input_shape->end()));
  return o;
}
}  // namespace

// ---- TransformerEncoder -----------------------------------------------------------------------------------------

TransformerEncoderImpl::TransformerEncoderImpl(const TransformerOptions& o) : TransformerBlockImpl("TransformerEncoder", o) {
  if (args_.batch_input_shape) build(*args_.batch_input_shape);
}

void TransformerEncoderImpl::build_impl(const Shape& s) {
  const int64_t head_dim = head_dim_for(s);
  self_attention_layer = make_attention("self_attention_layer", head_dim, s, s);
  self_attention_layer_norm = make_layer_norm("self_attention_layer_norm", s);
  build_feedforward(s);
}

torch::Tensor TransformerEncoderImpl::encode(const torch::Tensor& x, const torch::Tensor& padding_mask,
                                             const torch::Tensor& attention_mask) {
  if (!built_) build({-1, -1, x.dim() == 3 ? x.size(2) : -1});
  TORCH_CHECK(x.dim() == 3, layer_label(*this), " expects (batch, steps, features) inputs");
  // KerasHub's merge_padding_and_attention_mask: padded steps are hidden as keys (every query row).
  torch::Tensor h = residual(x, self_attention_layer_norm, [&](const torch::Tensor& in) {
    return self_attention_layer->attend(in, in, in, {}, padding_mask, {}, attention_mask).front();
  });
  return feedforward(h);
}

std::shared_ptr<TransformerEncoderImpl> TransformerEncoderImpl::from_config(ConfigReader& r) {
  return detail::construct_at<TransformerEncoderImpl>(r, read_transformer_options(r));
}

// ---- TransformerDecoder -----------------------------------------------------------------------------------------

TransformerDecoderImpl::TransformerDecoderImpl(const TransformerOptions& o) : TransformerBlockImpl("TransformerDecoder", o) {
  if (args_.batch_input_shape) build(*args_.batch_input_shape);
}

Shape TransformerDecoderImpl::compute_output_shape_list(const std::vector<Shape>& shapes) const {
  if (shapes.empty() || shapes.size() > 2)
    throw ShapeError(layer_label(*this) + " must be called on decoder_sequence or [decoder_sequence, encoder_sequence], "
                                          "got a list of " + std::to_string(shapes.size()));
  expect_sequence(*this, shapes[0], "a decoder sequence");
  if (shapes.size() == 2) expect_sequence(*this, shapes[1], "an encoder sequence");
  return shapes[0];
}

void TransformerDecoderImpl::build_impl(const Shape& s) { build_blocks(s, nullptr); }

void TransformerDecoderImpl::build_list_impl(const std::vector<Shape>& shapes) {
  build_blocks(shapes[0], shapes.size() == 2 ? &shapes[1] : nullptr);
}

void TransformerDecoderImpl::build_blocks(const Shape& s, const Shape* encoder) {
  const int64_t head_dim = head_dim_for(s);
  self_attention = make_attention("self_attention", head_dim, s, s);
  self_attention->set_use_causal_mask(true);
  self_attention_layer_norm = make_layer_norm("self_attention_layer_norm", s);
  if (encoder) {
    cross_attention = make_attention("cross_attention", head_dim, s, *encoder);
    cross_attention_layer_norm = make_layer_norm("cross_attention_layer_norm", s);
  }
  build_feedforward(s);
}

torch::Tensor TransformerDecoderImpl::decode(const torch::Tensor& x, const torch::Tensor& decoder_mask,
                                             const torch::Tensor& encoder, const torch::Tensor& encoder_mask) {
  if (!built_) {
    auto shape = [](const torch::Tensor& t) { return Shape{-1, -1, t.dim() == 3 ? t.size(2) : -1}; };
    if (encoder.defined()) build_list({shape(x), shape(encoder)});
    else build(shape(x));
  }
  TORCH_CHECK(x.dim() == 3, layer_label(*this), " expects (batch, steps, features) inputs");
  if (encoder.defined() != has_cross_attention())
    throw ShapeError(layer_label(*this) + (encoder.defined()
                                               ? " was built without cross-attention (called on one tensor); it cannot "
                                                 "take an encoder sequence now"
                                               : " was built with cross-attention; call it on [decoder_sequence, "
                                                 "encoder_sequence]"));
  // Self-attention: causal, padded decoder steps hidden as keys (KerasHub's _compute_self_attention_mask).
  torch::Tensor h = residual(x, self_attention_layer_norm, [&](const torch::Tensor& in) {
    return self_attention->attend(in, in, in, {}, decoder_mask, {}).front();
  });
  if (encoder.defined()) {
    h = residual(h, cross_attention_layer_norm, [&](const torch::Tensor& in) {
      return cross_attention->attend(in, encoder, encoder, {}, encoder_mask, {}).front();
    });
  }
  return feedforward(h);
}

torch::Tensor TransformerDecoderImpl::step(const torch::Tensor& x, const torch::Tensor& encoder,
                                           const torch::Tensor& encoder_mask, DecodeCache& cache) {
  if (!built_) build({-1, -1, x.dim() == 3 ? x.size(2) : -1});
  if (encoder.defined() != has_cross_attention())
    throw ShapeError(layer_label(*this) + (encoder.defined() ? " has no cross-attention for an encoder sequence"
                                                             : " needs the encoder sequence it was built for"));
  torch::Tensor h = residual(x, self_attention_layer_norm, [&](const torch::Tensor& in) {
    return self_attention->step_self_attention(in, cache, {});
  });
  if (encoder.defined()) {
    h = residual(h, cross_attention_layer_norm, [&](const torch::Tensor& in) {
      return cross_attention->step_cross_attention(in, encoder, encoder_mask, cache);
    });
  }
  return feedforward(h);
}

torch::Tensor TransformerDecoderImpl::forward_list(const std::vector<torch::Tensor>& xs, const std::vector<torch::Tensor>& ms) {
  if (xs.empty() || xs.size() > 2)
    throw ShapeError(layer_label(*this) + " must be called on [decoder_sequence, encoder_sequence], got a list of " +
                     std::to_string(xs.size()));
  auto mask = [&](size_t i) { return i < ms.size() ? ms[i] : torch::Tensor(); };
  return decode(xs[0], mask(0), xs.size() == 2 ? xs[1] : torch::Tensor(), mask(1));
}

torch::Tensor TransformerDecoderImpl::compute_mask_list(const std::vector<torch::Tensor>&,
                                                        const std::vector<torch::Tensor>& masks) const {
  return masks.empty() ? torch::Tensor() : masks.front();
}

std::shared_ptr<TransformerDecoderImpl> TransformerDecoderImpl::from_config(ConfigReader& r) {
  return detail::construct_at<TransformerDecoderImpl>(r, read_transformer_options(r));
}

}  // namespace lighter::layers
