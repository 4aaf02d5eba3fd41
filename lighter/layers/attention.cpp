#include "lighter/layers/attention.h"

#include <atomic>
#include <cmath>

#include <torch/torch.h>
#include <torch/version.h>

#include "lighter/layers/config_helpers.h"
#include "lighter/layers/initializers.h"
#include "lighter/layers/regularizers.h"

namespace lighter::layers {

using detail::layer_label;

MultiHeadAttentionImpl::MultiHeadAttentionImpl(const MultiHeadAttentionOptions& o)
    : LayerImpl("MultiHeadAttention", o.layer_args()), options_(o) {
  if (o.num_heads() <= 0) throw ConfigError("num_heads", "expected a positive integer, got " + std::to_string(o.num_heads()));
  if (o.key_dim() <= 0) throw ConfigError("key_dim", "expected a positive integer, got " + std::to_string(o.key_dim()));
  if (o.value_dim() == 0 || o.value_dim() < -1)
    throw ConfigError("value_dim", "expected a positive integer or null, got " + std::to_string(o.value_dim()));
  if (o.output_shape() == 0 || o.output_shape() < -1)
    throw ConfigError("output_shape", "expected a positive integer or null, got " + std::to_string(o.output_shape()));
  if (!(o.dropout() >= 0 && o.dropout() < 1))
    throw ConfigError("dropout", "expected a number in [0, 1), got " + std::to_string(o.dropout()));
  options_.kernel_initializer(initializers::normalize(o.kernel_initializer(), "kernel_initializer"));
  options_.bias_initializer(initializers::normalize(o.bias_initializer(), "bias_initializer"));
  options_.kernel_regularizer(regularizers::normalize(o.kernel_regularizer(), "kernel_regularizer"));
  options_.bias_regularizer(regularizers::normalize(o.bias_regularizer(), "bias_regularizer"));
  if (args_.batch_input_shape) build(*args_.batch_input_shape);
}

namespace {
void expect_sequence(const LayerImpl& l, const Shape& s, const char* what) {
  if (s.size() != 3)
    throw ShapeError(layer_label(l) + " expects " + what + " of shape (batch, steps, features), got " + shape_to_string(s));
  if (s[2] < 0) throw ShapeError(layer_label(l) + " needs a known feature dimension for its " + what + ", got " + shape_to_string(s));
}
}  // namespace

Shape MultiHeadAttentionImpl::compute_output_shape(const Shape& s) const { return compute_output_shape_list({s, s}); }

Shape MultiHeadAttentionImpl::compute_output_shape_list(const std::vector<Shape>& shapes) const {
  if (shapes.size() < 2 || shapes.size() > 3)
    throw ShapeError(layer_label(*this) + " must be called on [query, value] or [query, value, key], got a list of " +
                     std::to_string(shapes.size()));
  expect_sequence(*this, shapes[0], "query");
  expect_sequence(*this, shapes[1], "value");
  const Shape& key = shapes.size() == 3 ? shapes[2] : shapes[1];
  expect_sequence(*this, key, "key");
  if (key[1] >= 0 && shapes[1][1] >= 0 && key[1] != shapes[1][1])
    throw ShapeError(layer_label(*this) + ": key and value must have the same number of steps, got " +
                     shape_to_string(key) + " and " + shape_to_string(shapes[1]));
  Shape out = shapes[0];
  if (options_.output_shape() > 0) out[2] = options_.output_shape();
  return out;
}

void MultiHeadAttentionImpl::build_impl(const Shape& s) { build_for(s, s, s); }

void MultiHeadAttentionImpl::build_list_impl(const std::vector<Shape>& shapes) {
  build_for(shapes[0], shapes[1], shapes.size() == 3 ? shapes[2] : shapes[1]);
}

void MultiHeadAttentionImpl::build_for(const Shape& query, const Shape& value, const Shape& key) {
  const int64_t h = options_.num_heads(), kd = options_.key_dim(), vd = value_dim();
  const int64_t out = options_.output_shape() > 0 ? options_.output_shape() : query[2];
  auto dense = [&](const std::string& name, int64_t units, int64_t in, int64_t fan_in, int64_t fan_out) {
    Dense d(DenseOptions(units)
                .use_bias(options_.use_bias())
                .bias_initializer(options_.bias_initializer())
                .kernel_regularizer(options_.kernel_regularizer())
                .bias_regularizer(options_.bias_regularizer())
                .name(name));
    d->build({-1, -1, in});
    // Keras' projections are EinsumDense kernels ([in, H, dim] and [H, dim, out]), whose fans count the leading
    // axis as a receptive field.
    initializers::apply(d->weight, options_.kernel_initializer(), fan_in, fan_out);
    return register_module(name, d);
  };
  query_dense = dense("query", h * kd, query[2], h * query[2], kd * query[2]);
  key_dense = dense("key", h * kd, key[2], h * key[2], kd * key[2]);
  value_dense = dense("value", h * vd, value[2], h * value[2], vd * value[2]);
  output_dense = dense("attention_output", out, h * vd, vd * h, out * h);
}

namespace {
std::atomic<bool> fused_attention{true};

// A bool mask (true = may attend) as Keras applies it: a large negative number added where it is false (uniform
// weights for a fully masked row); the same additive bias keeps ATen's fused kernels free of NaN rows.
torch::Tensor additive_bias(const torch::Tensor& mask, const torch::TensorOptions& options) {
  const double large_negative = options.dtype() == torch::kHalf ? -65500.0 : -1e9;
  return torch::zeros(mask.sizes(), options).masked_fill(mask.logical_not(), large_negative);
}
}  // namespace

void set_fused_attention(bool enabled) { fused_attention = enabled; }
bool fused_attention_enabled() { return fused_attention; }

void MultiHeadAttentionImpl::ensure_built(const torch::Tensor& query, const torch::Tensor& value,
                                          const torch::Tensor& key) {
  if (built_) return;
  auto shape = [](const torch::Tensor& t) {
    Shape s(t.sizes().begin(), t.sizes().end());
    s[0] = -1;
    if (s.size() > 1) s[1] = -1;
    return s;
  };
  build_list({shape(query), shape(value), shape(key)});
}

torch::Tensor MultiHeadAttentionImpl::split_heads(const torch::Tensor& x, int64_t dim) const {
  // (N, steps, H·dim) -> (N, H, steps, dim)
  return x.view({x.size(0), x.size(1), options_.num_heads(), dim}).transpose(1, 2);
}

std::vector<torch::Tensor> MultiHeadAttentionImpl::attend_heads(const torch::Tensor& q, const torch::Tensor& k,
                                                                const torch::Tensor& v, const torch::Tensor& bias,
                                                                bool return_scores) {
  const double p = is_training() ? options_.dropout() : 0.0;
  torch::Tensor context, probs;
#if TORCH_VERSION_MAJOR >= 2
  if (!return_scores && fused_attention) {
    context = at::scaled_dot_product_attention(q, k, v, bias.defined() ? c10::optional<torch::Tensor>(bias) : c10::nullopt,
                                               p, false);
  }
#endif
  if (!context.defined()) {
    // The same computation in ATen calls: scores of the scaled query (cheaper than scaling the T x S scores),
    // softmax, weighted values.
    torch::Tensor scores = torch::matmul(q * (1.0 / std::sqrt(static_cast<double>(q.size(-1)))), k.transpose(-2, -1));
    if (bias.defined()) scores = scores + bias;
    probs = torch::softmax(scores, -1);
    torch::Tensor dropped = p > 0 ? torch::dropout(probs, p, true) : probs;
    context = torch::matmul(dropped, v);
  }
  // (N, H, T, vd) -> (N, T, H·vd) -> output projection.
  const int64_t n = q.size(0), t = q.size(2);
  torch::Tensor out = output_dense->forward(context.transpose(1, 2).reshape({n, t, options_.num_heads() * value_dim()}));
  return return_scores ? std::vector<torch::Tensor>{out, probs} : std::vector<torch::Tensor>{out};
}

std::vector<torch::Tensor> MultiHeadAttentionImpl::attend(const torch::Tensor& query, const torch::Tensor& value,
                                                          const torch::Tensor& key, const torch::Tensor& query_mask,
                                                          const torch::Tensor& value_mask, const torch::Tensor& key_mask,
                                                          const torch::Tensor& attention_mask, bool return_scores) {
  ensure_built(query, value, key);
  TORCH_CHECK(query.dim() == 3 && value.dim() == 3 && key.dim() == 3, layer_label(*this),
              " expects (batch, steps, features) inputs");
  const int64_t t = query.size(1), s = value.size(1);
  TORCH_CHECK(key.size(1) == s, layer_label(*this), ": key and value must have the same number of steps");
  torch::Tensor q = split_heads(query_dense->forward(query), options_.key_dim());
  torch::Tensor k = split_heads(key_dense->forward(key), options_.key_dim());
  torch::Tensor v = split_heads(value_dense->forward(value), value_dim());

  // Keras' _compute_attention_mask: query mask on rows, value (and key) mask on columns, the causal triangle (query
  // step i sees value steps j <= i, as Keras' cumsum comparison), and the explicit mask, all and-ed; (N or 1, T, S).
  torch::Tensor mask;
  auto combine = [&](const torch::Tensor& m) { mask = mask.defined() ? mask.logical_and(m) : m; };
  if (query_mask.defined()) combine(query_mask.to(torch::kBool).unsqueeze(2));
  if (value_mask.defined()) combine(value_mask.to(torch::kBool).unsqueeze(1));
  if (key_mask.defined()) combine(key_mask.to(torch::kBool).unsqueeze(1));
  if (options_.use_causal_mask()) combine(torch::ones({t, s}, query.options().dtype(torch::kBool)).tril().unsqueeze(0));
  if (attention_mask.defined()) combine(attention_mask.to(torch::kBool));
  torch::Tensor bias = mask.defined() ? additive_bias(mask, q.options()).unsqueeze(1) : torch::Tensor();
  return attend_heads(q, k, v, bias, return_scores);
}

torch::Tensor MultiHeadAttentionImpl::forward_step(const torch::Tensor& x, DecodeCache& cache) {
  if (!options_.use_causal_mask())
    throw ShapeError(layer_label(*this) + " cannot decode step by step without use_causal_mask: earlier steps would "
                                          "see later ones");
  return step_self_attention(x, cache, {});
}

torch::Tensor MultiHeadAttentionImpl::step_self_attention(const torch::Tensor& x, DecodeCache& cache,
                                                          const torch::Tensor& padding_mask) {
  ensure_built(x, x, x);
  TORCH_CHECK(x.dim() == 3, layer_label(*this), " expects (batch, steps, features) inputs");
  auto& entry = cache.entries[this];
  torch::Tensor k = split_heads(key_dense->forward(x), options_.key_dim());
  torch::Tensor v = split_heads(value_dense->forward(x), value_dim());
  if (!entry.empty()) {
    TORCH_CHECK(entry[0].size(2) == cache.position, layer_label(*this), ": the cache holds ", entry[0].size(2),
                " steps but decoding is at position ", cache.position);
    k = torch::cat({entry[0], k}, 2);
    v = torch::cat({entry[1], v}, 2);
  } else {
    TORCH_CHECK(cache.position == 0, layer_label(*this), ": no cached steps before position ", cache.position);
  }
  entry = {k, v};
  const int64_t t = x.size(1), total = k.size(2);
  torch::Tensor bias;
  if (t > 1 || padding_mask.defined()) {
    // New step i (at position cache.position + i) sees cached and new steps j <= cache.position + i.
    torch::Tensor mask = torch::ones({t, total}, x.options().dtype(torch::kBool)).tril(total - t).unsqueeze(0);
    if (padding_mask.defined()) mask = mask.logical_and(padding_mask.to(torch::kBool).unsqueeze(1));
    bias = additive_bias(mask, k.options()).unsqueeze(1);
  }
  torch::Tensor q = split_heads(query_dense->forward(x), options_.key_dim());
  return attend_heads(q, k, v, bias, false).front();
}

torch::Tensor MultiHeadAttentionImpl::step_cross_attention(const torch::Tensor& query, const torch::Tensor& memory,
                                                           const torch::Tensor& memory_mask, DecodeCache& cache) {
  ensure_built(query, memory, memory);
  auto& entry = cache.entries[this];
  if (entry.empty()) {
    entry = {split_heads(key_dense->forward(memory), options_.key_dim()), split_heads(value_dense->forward(memory), value_dim())};
    if (memory_mask.defined()) entry.push_back(additive_bias(memory_mask.to(torch::kBool).unsqueeze(1), entry[0].options()).unsqueeze(1));
  }
  torch::Tensor q = split_heads(query_dense->forward(query), options_.key_dim());
  return attend_heads(q, entry[0], entry[1], entry.size() > 2 ? entry[2] : torch::Tensor(), false).front();
}

torch::Tensor MultiHeadAttentionImpl::forward_list(const std::vector<torch::Tensor>& xs, const std::vector<torch::Tensor>& ms) {
  if (xs.size() < 2 || xs.size() > 3)
    throw ShapeError(layer_label(*this) + " must be called on [query, value] or [query, value, key], got a list of " +
                     std::to_string(xs.size()));
  auto mask = [&](size_t i) { return i < ms.size() ? ms[i] : torch::Tensor(); };
  const torch::Tensor& key = xs.size() == 3 ? xs[2] : xs[1];
  const torch::Tensor key_mask = xs.size() == 3 ? mask(2) : torch::Tensor();
  return attend(xs[0], xs[1], key, mask(0), mask(1), key_mask).front();
}

torch::Tensor MultiHeadAttentionImpl::compute_mask_list(const std::vector<torch::Tensor>&,
                                                        const std::vector<torch::Tensor>& masks) const {
  return masks.empty() ? torch::Tensor() : masks.front();
}

torch::Tensor MultiHeadAttentionImpl::regularization_loss() const {
  torch::Tensor total;
  for (const auto& d : {query_dense, key_dense, value_dense, output_dense}) {
    if (d.is_empty()) continue;
    auto r = d->regularization_loss();
    if (r.defined()) total = total.defined() ? total + r : r;
  }
  return total;
}

nlohmann::json MultiHeadAttentionImpl::get_config() const {
  auto c = LayerImpl::get_config();
  c["num_heads"] = options_.num_heads();
  c["key_dim"] = options_.key_dim();
  c["value_dim"] = value_dim();
  c["dropout"] = options_.dropout();
  c["use_bias"] = options_.use_bias();
  c["output_shape"] = options_.output_shape() > 0 ? nlohmann::json(options_.output_shape()) : nlohmann::json(nullptr);
  c["attention_axes"] = nullptr;
  c["use_causal_mask"] = options_.use_causal_mask();
  c["kernel_initializer"] = options_.kernel_initializer();
  c["bias_initializer"] = options_.bias_initializer();
  c["kernel_regularizer"] = options_.kernel_regularizer();
  c["bias_regularizer"] = options_.bias_regularizer();
  return c;
}

std::shared_ptr<MultiHeadAttentionImpl> MultiHeadAttentionImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  MultiHeadAttentionOptions o(r.positive_int("num_heads"), r.positive_int("key_dim"));
  if (r.has("value_dim")) o.value_dim(r.positive_int("value_dim"));
  o.dropout(r.fraction("dropout", 0.0));
  o.use_bias(r.get<bool>("use_bias", true));
  const auto& out = r.raw_or_null("output_shape");
  if (!out.is_null()) {
    // Keras takes an integer or a one-element shape for the last axis.
    if (out.is_number_integer() && out.get<int64_t>() > 0) o.output_shape(out.get<int64_t>());
    else if (out.is_array() && out.size() == 1 && out[0].is_number_integer() && out[0].get<int64_t>() > 0)
      o.output_shape(out[0].get<int64_t>());
    else throw ConfigError(r.path_of("output_shape"), "expected a positive integer or null, got " + describe(out));
  }
  // Rank-3 inputs attend over axis 1, which is all Lighter supports: null, 1 or [1].
  const auto& axes = r.raw_or_null("attention_axes");
  bool axis_one = axes.is_null() || (axes.is_number_integer() && axes.get<int64_t>() == 1) ||
                  (axes.is_array() && axes.size() == 1 && axes[0].is_number_integer() && axes[0].get<int64_t>() == 1);
  if (!axis_one)
    throw ConfigError(r.path_of("attention_axes"), "only attention over the steps axis (null or [1]) is supported, got " +
                                                       describe(axes));
  o.use_causal_mask(r.get<bool>("use_causal_mask", false));
  if (r.get<bool>("use_gate", false)) throw ConfigError(r.path_of("use_gate"), "gated attention is not supported yet");
  o.kernel_initializer(initializers::normalize(r.get<json>("kernel_initializer", "glorot_uniform"), r.path_of("kernel_initializer")));
  o.bias_initializer(initializers::normalize(r.get<json>("bias_initializer", "zeros"), r.path_of("bias_initializer")));
  o.kernel_regularizer(regularizers::normalize(r.get<json>("kernel_regularizer", nullptr), r.path_of("kernel_regularizer")));
  o.bias_regularizer(regularizers::normalize(r.get<json>("bias_regularizer", nullptr), r.path_of("bias_regularizer")));
  for (const char* k : {"activity_regularizer", "kernel_constraint", "bias_constraint"}) r.require_null(k);
  if (r.has("seed")) r.get<int64_t>("seed");  // Keras' dropout seed: Lighter's dropout follows the global seed
  r.ignore({"seed"});
  o.name(a.name).trainable(a.trainable);
  if (a.batch_input_shape) o.input_shape(Shape(a.batch_input_shape->begin() + 1, a.batch_input_shape->end()));
  return detail::construct_at<MultiHeadAttentionImpl>(r, o);
}

// ---- Attention and AdditiveAttention -----------------------------------------------------------------------

AttentionImpl::AttentionImpl(const AttentionOptions& o, bool additive)
    : LayerImpl(additive ? "AdditiveAttention" : "Attention", o.layer_args()), options_(o), additive_(additive) {
  if (o.score_mode() != "dot" && o.score_mode() != "concat")
    throw ConfigError("score_mode", "expected \"dot\" or \"concat\", got \"" + o.score_mode() + "\"");
  if (additive && o.score_mode() != "dot") throw ConfigError("score_mode", "AdditiveAttention takes no score_mode");
  if (!(o.dropout() >= 0 && o.dropout() < 1))
    throw ConfigError("dropout", "expected a number in [0, 1), got " + std::to_string(o.dropout()));
}

Shape AttentionImpl::compute_output_shape_list(const std::vector<Shape>& shapes) const {
  if (shapes.size() < 2 || shapes.size() > 3)
    throw ShapeError(layer_label(*this) + " must be called on [query, value] or [query, value, key], got a list of " +
                     std::to_string(shapes.size()));
  for (const auto& sh : shapes) expect_sequence(*this, sh, "inputs");
  const Shape& key = shapes.size() == 3 ? shapes[2] : shapes[1];
  if (shapes[0][2] != key[2])
    throw ShapeError(layer_label(*this) + ": query and key must have the same last dimension, got " +
                     shape_to_string(shapes[0]) + " and " + shape_to_string(key));
  if (key[1] >= 0 && shapes[1][1] >= 0 && key[1] != shapes[1][1])
    throw ShapeError(layer_label(*this) + ": key and value must have the same number of steps, got " +
                     shape_to_string(key) + " and " + shape_to_string(shapes[1]));
  return {shapes[0][0], shapes[0][1], shapes[1][2]};
}

void AttentionImpl::build_list_impl(const std::vector<Shape>& shapes) {
  if (additive_) {
    // Keras' AdditiveAttention: scale of shape (dim,), glorot_uniform.
    if (options_.use_scale()) {
      const int64_t dim = shapes[0][2];
      scale = register_parameter("scale", torch::empty({dim}));
      initializers::apply(scale, "glorot_uniform", dim, dim);
    }
    return;
  }
  if (options_.use_scale()) scale = register_parameter("scale", torch::ones({}));
  if (options_.score_mode() == "concat") concat_score_weight = register_parameter("concat_score_weight", torch::ones({}));
}

std::vector<torch::Tensor> AttentionImpl::attend(const std::vector<torch::Tensor>& xs, const std::vector<torch::Tensor>& ms) {
  if (!built_) {
    std::vector<Shape> shapes;
    for (const auto& x : xs) shapes.emplace_back(x.sizes().begin(), x.sizes().end());
    build_list(shapes);
  }
  TORCH_CHECK(xs.size() == 2 || xs.size() == 3, layer_label(*this), " must be called on [query, value] or [query, value, key]");
  const torch::Tensor &q = xs[0], &v = xs[1];
  const torch::Tensor& k = xs.size() == 3 ? xs[2] : xs[1];
  auto mask = [&](size_t i) { return i < ms.size() && ms[i].defined() ? ms[i].to(torch::kBool) : torch::Tensor(); };
  torch::Tensor scores;
  if (additive_ || options_.score_mode() == "concat") {
    // (N, Tq, 1, dim) + (N, 1, Tv, dim), summed over dim after tanh.
    torch::Tensor sum = q.unsqueeze(2) + k.unsqueeze(1);
    if (additive_) {
      scores = (options_.use_scale() ? scale * torch::tanh(sum) : torch::tanh(sum)).sum(-1);
    } else {
      scores = concat_score_weight * torch::tanh(options_.use_scale() ? scale * sum : sum).sum(-1);
    }
  } else {
    scores = torch::matmul(q, k.transpose(1, 2));
    if (options_.use_scale()) scores = scores * scale;
  }
  // Keras 3's _apply_scores: value steps masked out (and, causally, later steps) get a large negative score.
  torch::Tensor allowed;
  if (torch::Tensor vm = mask(1); vm.defined()) allowed = vm.unsqueeze(1);
  if (options_.use_causal_mask()) {
    auto tri = torch::ones({q.size(1), v.size(1)}, q.options().dtype(torch::kBool)).tril().unsqueeze(0);
    allowed = allowed.defined() ? allowed.logical_and(tri) : tri;
  }
  if (allowed.defined()) {
    const double large = scores.scalar_type() == torch::kHalf ? 65000.0 : 1e9;
    scores = scores - large * allowed.logical_not().to(scores.scalar_type());
  }
  torch::Tensor weights = torch::softmax(scores, -1);
  torch::Tensor used = is_training() && options_.dropout() > 0 ? torch::dropout(weights, options_.dropout(), true) : weights;
  torch::Tensor out = torch::matmul(used, v);
  if (torch::Tensor qm = mask(0); qm.defined()) out = out * qm.unsqueeze(2).to(out.scalar_type());
  return {out, weights};
}

torch::Tensor AttentionImpl::compute_mask_list(const std::vector<torch::Tensor>&, const std::vector<torch::Tensor>& masks) const {
  return masks.empty() ? torch::Tensor() : masks.front();
}

nlohmann::json AttentionImpl::get_config() const {
  auto c = LayerImpl::get_config();
  c["use_scale"] = options_.use_scale();
  if (!additive_) c["score_mode"] = options_.score_mode();
  c["dropout"] = options_.dropout();
  c["use_causal_mask"] = options_.use_causal_mask();
  return c;
}

namespace {
std::shared_ptr<AttentionImpl> attention_from_config(ConfigReader& r, bool additive) {
  LayerArgs a = detail::read_layer_args(r);
  AttentionOptions o;
  o.use_scale(r.get<bool>("use_scale", additive));
  if (!additive) o.score_mode(r.choice("score_mode", "dot", {"dot", "concat"}));
  o.dropout(r.fraction("dropout", 0.0));
  o.use_causal_mask(r.get<bool>("use_causal_mask", false));
  // Keras 2's causal flag and Keras' dropout seed.
  if (r.get<bool>("causal", false)) o.use_causal_mask(true);
  if (r.has("seed")) r.get<int64_t>("seed");
  r.ignore({"seed"});
  o.name(a.name).trainable(a.trainable);
  try {
    return std::make_shared<AttentionImpl>(o, additive);
  } catch (const ConfigError& e) {
    throw ConfigError(r.path_of(e.path()), e.message());
  }
}
}  // namespace

std::shared_ptr<AttentionImpl> AttentionImpl::from_config(ConfigReader& r) { return attention_from_config(r, false); }
std::shared_ptr<AttentionImpl> AttentionImpl::additive_from_config(ConfigReader& r) { return attention_from_config(r, true); }

}  // namespace lighter::layers
