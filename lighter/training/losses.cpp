#include "lighter/training/losses.h"

#include <cmath>
#include <sstream>

#include "lighter/core/error.h"

namespace lighter {

namespace detail {

std::string shape_string(const torch::Tensor& t) {
  std::ostringstream out;
  out << "[";
  for (int64_t i = 0; i < t.dim(); ++i) out << (i ? ", " : "") << t.size(i);
  out << "]";
  return out.str();
}

torch::Tensor broadcast_weights(torch::Tensor weights, const torch::Tensor& like, const std::string& what) {
  const torch::Tensor original = weights;
  while (weights.dim() > like.dim() && weights.size(-1) == 1) weights = weights.squeeze(-1);
  while (weights.dim() < like.dim()) weights = weights.unsqueeze(-1);
  bool ok = weights.dim() == like.dim();
  for (int64_t i = 0; ok && i < like.dim(); ++i) ok = weights.size(i) == like.size(i) || weights.size(i) == 1;
  if (!ok)
    throw ShapeError(what + " of shape " + shape_string(original) + " does not match the values of shape " +
                     shape_string(like));
  return weights.to(like.scalar_type()).expand_as(like);
}

torch::Tensor align_target(const torch::Tensor& y_pred, const torch::Tensor& y_true, const std::string& who) {
  torch::Tensor t = y_true;
  if (t.dim() == y_pred.dim() - 1 && y_pred.dim() > 0 && y_pred.size(-1) == 1) {
    t = t.unsqueeze(-1);
  } else if (t.dim() == y_pred.dim() + 1 && t.size(-1) == 1) {
    t = t.squeeze(-1);
  }
  if (!t.sizes().equals(y_pred.sizes()))
    throw ShapeError(who + ": target shape " + shape_string(y_true) + " does not match prediction shape " +
                     shape_string(y_pred));
  return t.to(y_pred.scalar_type());
}

namespace {
// Integer labels laid out as y_pred without its class axis ((N) or (N, 1) for (N, C)), as int64; undefined when
// they do not fit. y_pred has rank 2 or more.
torch::Tensor fitted_labels(const torch::Tensor& y_pred, const torch::Tensor& y_true) {
  torch::Tensor t = y_true;
  if (t.dim() == y_pred.dim() && t.size(-1) == 1) t = t.squeeze(-1);
  if (t.dim() != y_pred.dim() - 1 || !t.sizes().equals(y_pred.sizes().slice(0, y_pred.dim() - 1))) return {};
  return t.scalar_type() == torch::kLong ? t : t.to(torch::kLong);
}
}  // namespace

torch::Tensor sparse_labels(const torch::Tensor& y_pred, const torch::Tensor& y_true, const std::string& who) {
  if (y_pred.dim() < 2)
    throw ShapeError(who + ": expected predictions [N, C] (one score per class), got " + shape_string(y_pred));
  torch::Tensor t = fitted_labels(y_pred, y_true);
  if (!t.defined())
    throw ShapeError(who + ": integer label shape " + shape_string(y_true) + " does not match prediction shape " +
                     shape_string(y_pred) + " (expected the prediction shape without its class axis)");
  return t;
}

void read_float32_dtype(ConfigReader& r) {
  std::string dtype = read_dtype_name(r);
  if (dtype != "float32") throw ConfigError(r.path_of("dtype"), "only float32 is supported, got \"" + dtype + "\"");
}

}  // namespace detail

namespace losses {

namespace {

constexpr double kEpsilon = 1e-7;  // Keras' backend.epsilon()

// Half and bfloat16 lose too much in logs and sums; losses are computed in at least float32, as Keras' loss
// scaling keeps them.
torch::Tensor as_float(const torch::Tensor& t) {
  if (t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kDouble) return t;
  return t.to(torch::kFloat);
}

// Predictions as float, rank-1 read as [N, 1], and the target made to the same shape.
std::pair<torch::Tensor, torch::Tensor> prepare(const torch::Tensor& y_pred, const torch::Tensor& y_true,
                                                const std::string& who) {
  if (!y_pred.defined() || !y_true.defined()) throw ShapeError(who + ": y_pred and y_true must be defined");
  torch::Tensor p = as_float(y_pred);
  if (p.dim() == 0) throw ShapeError(who + ": expected predictions with a batch axis, got a scalar");
  if (p.dim() == 1) p = p.unsqueeze(-1);
  return {p, detail::align_target(p, y_true, who)};
}

torch::Tensor class_scores(const torch::Tensor& y_pred, const std::string& who) {
  if (!y_pred.defined() || y_pred.dim() < 2)
    throw ShapeError(who + ": expected predictions [N, C] (one score per class), got " +
                     (y_pred.defined() ? detail::shape_string(y_pred) : std::string("undefined")));
  return as_float(y_pred);
}

// log-probabilities over the last axis. Probabilities are renormalized and clipped to [eps, 1 - eps] as Keras does.
torch::Tensor log_probabilities(const torch::Tensor& p, bool from_logits) {
  if (from_logits) return torch::log_softmax(p, -1);
  torch::Tensor q = p / p.sum(-1, true);
  return q.clamp(kEpsilon, 1.0 - kEpsilon).log();
}

double check_smoothing(double ls) {
  if (!(ls >= 0.0 && ls <= 1.0)) throw ConfigError("label_smoothing", "expected a number in [0, 1]");
  return ls;
}

}  // namespace

Loss::Loss(std::string config_name, std::string reduction)
    : config_name_(std::move(config_name)), reduction_(std::move(reduction)) {
  if (reduction_ == "auto") reduction_ = kSumOverBatchSize;
  if (reduction_ != kSumOverBatchSize && reduction_ != "sum")
    throw ConfigError("reduction", "expected sum_over_batch_size or sum, got \"" + reduction_ + "\"");
  sum_ = reduction_ == "sum";
}

torch::Tensor Loss::operator()(const torch::Tensor& y_pred, const torch::Tensor& y_true,
                               const torch::Tensor& sample_weight, const torch::Tensor& mask) const {
  const bool sum = sum_;
  if (!sum && !sample_weight.defined() && !mask.defined()) {
    torch::Tensor fused = fused_mean(y_pred, y_true);
    if (fused.defined()) return fused;
  }
  torch::Tensor values = per_sample(y_pred, y_true);
  torch::Tensor weighted = values;
  if (sample_weight.defined())
    weighted = weighted * detail::broadcast_weights(sample_weight, values, name() + ": sample_weight");
  if (mask.defined()) {
    torch::Tensor m = detail::broadcast_weights(mask, values, name() + ": mask");
    weighted = weighted * m;
    if (sum) return weighted.sum();
    torch::Tensor count = m.sum();
    // An all-masked batch gives 0 (Keras' divide_no_nan) without a NaN gradient.
    return weighted.sum() / torch::where(count > 0, count, torch::ones_like(count));
  }
  if (sum || values.numel() == 0) return weighted.sum();
  return weighted.sum() / static_cast<double>(values.numel());
}

nlohmann::json Loss::get_config() const { return {{"name", config_name_}, {"reduction", reduction_}}; }

// ---- regression ---------------------------------------------------------------------------------------------

MeanSquaredError::MeanSquaredError(std::string reduction, std::string name)
    : Loss(std::move(name), std::move(reduction)) {}

torch::Tensor MeanSquaredError::per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  auto [p, t] = prepare(y_pred, y_true, name());
  return (p - t).square().mean(-1);
}

MeanAbsoluteError::MeanAbsoluteError(std::string reduction, std::string name)
    : Loss(std::move(name), std::move(reduction)) {}

torch::Tensor MeanAbsoluteError::per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  auto [p, t] = prepare(y_pred, y_true, name());
  return (p - t).abs().mean(-1);
}

MeanAbsolutePercentageError::MeanAbsolutePercentageError(std::string reduction, std::string name)
    : Loss(std::move(name), std::move(reduction)) {}

torch::Tensor MeanAbsolutePercentageError::per_sample(const torch::Tensor& y_pred,
                                                       const torch::Tensor& y_true) const {
  auto [p, t] = prepare(y_pred, y_true, name());
  return ((t - p).abs() / t.abs().clamp_min(kEpsilon)).mean(-1) * 100.0;
}

Huber::Huber(double delta, std::string reduction, std::string name)
    : Loss(std::move(name), std::move(reduction)), delta_(delta) {
  if (!(delta > 0)) throw ConfigError("delta", "expected a positive number");
}

torch::Tensor Huber::per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  auto [p, t] = prepare(y_pred, y_true, name());
  torch::Tensor error = p - t;
  torch::Tensor abs_error = error.abs();
  return torch::where(abs_error <= delta_, 0.5 * error.square(), delta_ * abs_error - 0.5 * delta_ * delta_)
      .mean(-1);
}

nlohmann::json Huber::get_config() const {
  auto config = Loss::get_config();
  config["delta"] = delta_;
  return config;
}

LogCosh::LogCosh(std::string reduction, std::string name) : Loss(std::move(name), std::move(reduction)) {}

torch::Tensor LogCosh::per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  auto [p, t] = prepare(y_pred, y_true, name());
  torch::Tensor x = p - t;
  // log(cosh(x)) = x + log(1 + exp(-2x)) - log 2; softplus keeps it finite where cosh overflows.
  return (x + torch::nn::functional::softplus(-2.0 * x) - std::log(2.0)).mean(-1);
}

// ---- probabilistic ------------------------------------------------------------------------------------------

BinaryCrossentropy::BinaryCrossentropy(bool from_logits, double label_smoothing, std::string reduction,
                                       std::string name)
    : Loss(std::move(name), std::move(reduction)),
      from_logits_(from_logits),
      label_smoothing_(check_smoothing(label_smoothing)) {}

torch::Tensor BinaryCrossentropy::per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  auto [p, t] = prepare(y_pred, y_true, name());
  if (label_smoothing_ > 0) t = t * (1.0 - label_smoothing_) + 0.5 * label_smoothing_;
  if (from_logits_) {
    namespace F = torch::nn::functional;
    return F::binary_cross_entropy_with_logits(p, t, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone))
        .mean(-1);
  }
  // Written out rather than at::binary_cross_entropy, which autocast refuses on CUDA.
  torch::Tensor q = p.clamp(kEpsilon, 1.0 - kEpsilon);
  return (-(t * q.log() + (1.0 - t) * torch::log1p(-q))).mean(-1);
}

nlohmann::json BinaryCrossentropy::get_config() const {
  auto config = Loss::get_config();
  config["from_logits"] = from_logits_;
  config["label_smoothing"] = label_smoothing_;
  config["axis"] = -1;
  return config;
}

std::shared_ptr<Loss> BinaryCrossentropy::with_logits() const {
  return std::make_shared<BinaryCrossentropy>(true, label_smoothing_, reduction(), config_name());
}

CategoricalCrossentropy::CategoricalCrossentropy(bool from_logits, double label_smoothing, std::string reduction,
                                                 std::string name)
    : Loss(std::move(name), std::move(reduction)),
      from_logits_(from_logits),
      label_smoothing_(check_smoothing(label_smoothing)) {}

torch::Tensor CategoricalCrossentropy::per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  torch::Tensor p = class_scores(y_pred, name());
  torch::Tensor t = detail::align_target(p, y_true, name());
  if (label_smoothing_ > 0) t = t * (1.0 - label_smoothing_) + label_smoothing_ / static_cast<double>(p.size(-1));
  return -(t * log_probabilities(p, from_logits_)).sum(-1);
}

nlohmann::json CategoricalCrossentropy::get_config() const {
  auto config = Loss::get_config();
  config["from_logits"] = from_logits_;
  config["label_smoothing"] = label_smoothing_;
  config["axis"] = -1;
  return config;
}

std::shared_ptr<Loss> CategoricalCrossentropy::with_logits() const {
  return std::make_shared<CategoricalCrossentropy>(true, label_smoothing_, reduction(), config_name());
}

SparseCategoricalCrossentropy::SparseCategoricalCrossentropy(bool from_logits, std::string reduction,
                                                             std::string name)
    : Loss(std::move(name), std::move(reduction)), from_logits_(from_logits) {}

torch::Tensor SparseCategoricalCrossentropy::per_sample(const torch::Tensor& y_pred,
                                                        const torch::Tensor& y_true) const {
  torch::Tensor p = class_scores(y_pred, name());
  torch::Tensor labels = detail::sparse_labels(p, y_true, name());
  try {
    // gather checks its indices on the CPU (a GPU kernel asserts on the device instead of waiting for it here).
    return -log_probabilities(p, from_logits_).gather(-1, labels.unsqueeze(-1)).squeeze(-1);
  } catch (const c10::Error&) {
    throw_label_out_of_range(labels, p.size(-1));
    throw;
  }
}

void SparseCategoricalCrossentropy::throw_label_out_of_range(const torch::Tensor& labels, int64_t classes) const {
  if (labels.numel() == 0) return;
  const int64_t lo = labels.min().item<int64_t>(), hi = labels.max().item<int64_t>();
  if (lo < 0 || hi >= classes)
    throw DataError("y_true", name() + ": label " + std::to_string(lo < 0 ? lo : hi) + " is out of range for " +
                                  std::to_string(classes) + " classes");
}

torch::Tensor SparseCategoricalCrossentropy::fused_mean(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  // Anything unusual (other dtypes, shapes to check, empty batches) takes per_sample's path and its messages.
  if (!y_pred.defined() || !y_true.defined() || y_pred.dim() < 2 || y_pred.numel() == 0 ||
      (y_pred.scalar_type() != torch::kFloat && y_pred.scalar_type() != torch::kDouble))
    return {};
  torch::Tensor labels = detail::fitted_labels(y_pred, y_true);
  if (!labels.defined()) return {};
  const int64_t classes = y_pred.size(-1);
  torch::Tensor flat = y_pred.reshape({-1, classes});
  labels = labels.reshape({-1});
  // No class is ignored: an index no label can take (ATen's default, -100, could be a bad label).
  constexpr int64_t kNoIgnoredClass = -(int64_t(1) << 40);
  try {
    if (from_logits_) return at::cross_entropy_loss(flat, labels, {}, at::Reduction::Mean, kNoIgnoredClass, 0.0);
    return at::nll_loss(log_probabilities(flat, false), labels, {}, at::Reduction::Mean, kNoIgnoredClass);
  } catch (const c10::Error&) {
    throw_label_out_of_range(labels, classes);  // nll_loss checks its targets on the CPU
    throw;
  }
}

nlohmann::json SparseCategoricalCrossentropy::get_config() const {
  auto config = Loss::get_config();
  config["from_logits"] = from_logits_;
  config["ignore_class"] = nullptr;
  return config;
}

std::shared_ptr<Loss> SparseCategoricalCrossentropy::with_logits() const {
  return std::make_shared<SparseCategoricalCrossentropy>(true, reduction(), config_name());
}

KLDivergence::KLDivergence(std::string reduction, std::string name) : Loss(std::move(name), std::move(reduction)) {}

torch::Tensor KLDivergence::per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  auto [p, t] = prepare(y_pred, y_true, name());
  t = t.clamp(kEpsilon, 1.0);
  p = p.clamp(kEpsilon, 1.0);
  return (t * (t / p).log()).sum(-1);
}

// ---- catalogue ----------------------------------------------------------------------------------------------

namespace {

struct Common {
  std::string name;
  std::string reduction;
};

// The keys every Keras loss config has: name, reduction, dtype (and Keras 3's wrapper "fn").
Common read_common(ConfigReader& r, const std::string& default_name) {
  Common c;
  c.name = r.get<std::string>("name", default_name);
  if (r.object().contains("reduction") && r.object().at("reduction").is_null())
    throw ConfigError(r.path_of("reduction"), "reduction None (unreduced) is not supported; use sum_over_batch_size or sum");
  // Keras 2 wrote "auto", which meant sum_over_batch_size.
  c.reduction = r.choice("reduction", kSumOverBatchSize, {kSumOverBatchSize, "sum", "auto"});
  if (c.reduction == "auto") c.reduction = kSumOverBatchSize;
  detail::read_float32_dtype(r);
  r.ignore({"fn"});
  return c;
}

double read_smoothing(ConfigReader& r) {
  double ls = r.get<double>("label_smoothing", 0.0);
  if (!(ls >= 0.0 && ls <= 1.0))
    throw ConfigError(r.path_of("label_smoothing"), "expected a number in [0, 1], got " + describe(r.raw("label_smoothing")));
  return ls;
}

void read_axis(ConfigReader& r) {
  if (r.get<int64_t>("axis", -1) != -1) throw ConfigError(r.path_of("axis"), "only axis -1 is supported");
}

Registry<LossPtr, ConfigReader&> make_registry() {
  Registry<LossPtr, ConfigReader&> reg("loss");
  reg.add("MeanSquaredError", [](ConfigReader& r) -> LossPtr {
    auto c = read_common(r, "mean_squared_error");
    return std::make_shared<MeanSquaredError>(c.reduction, c.name);
  });
  reg.add("MeanAbsoluteError", [](ConfigReader& r) -> LossPtr {
    auto c = read_common(r, "mean_absolute_error");
    return std::make_shared<MeanAbsoluteError>(c.reduction, c.name);
  });
  reg.add("MeanAbsolutePercentageError", [](ConfigReader& r) -> LossPtr {
    auto c = read_common(r, "mean_absolute_percentage_error");
    return std::make_shared<MeanAbsolutePercentageError>(c.reduction, c.name);
  });
  reg.add("Huber", [](ConfigReader& r) -> LossPtr {
    auto c = read_common(r, "huber_loss");
    double delta = r.positive("delta", 1.0);
    return std::make_shared<Huber>(delta, c.reduction, c.name);
  });
  reg.add("LogCosh", [](ConfigReader& r) -> LossPtr {
    auto c = read_common(r, "log_cosh");
    return std::make_shared<LogCosh>(c.reduction, c.name);
  });
  reg.add("BinaryCrossentropy", [](ConfigReader& r) -> LossPtr {
    auto c = read_common(r, "binary_crossentropy");
    bool from_logits = r.get<bool>("from_logits", false);
    double ls = read_smoothing(r);
    read_axis(r);
    return std::make_shared<BinaryCrossentropy>(from_logits, ls, c.reduction, c.name);
  });
  reg.add("CategoricalCrossentropy", [](ConfigReader& r) -> LossPtr {
    auto c = read_common(r, "categorical_crossentropy");
    bool from_logits = r.get<bool>("from_logits", false);
    double ls = read_smoothing(r);
    read_axis(r);
    return std::make_shared<CategoricalCrossentropy>(from_logits, ls, c.reduction, c.name);
  });
  reg.add("SparseCategoricalCrossentropy", [](ConfigReader& r) -> LossPtr {
    auto c = read_common(r, "sparse_categorical_crossentropy");
    bool from_logits = r.get<bool>("from_logits", false);
    if (!r.raw_or_null("ignore_class").is_null())
      throw ConfigError(r.path_of("ignore_class"), "only null is supported (use a mask to skip positions)");
    return std::make_shared<SparseCategoricalCrossentropy>(from_logits, c.reduction, c.name);
  });
  reg.add("KLDivergence", [](ConfigReader& r) -> LossPtr {
    auto c = read_common(r, "kl_divergence");
    return std::make_shared<KLDivergence>(c.reduction, c.name);
  });
  const std::pair<const char*, const char*> aliases[] = {
      {"mean_squared_error", "MeanSquaredError"},
      {"mse", "MeanSquaredError"},
      {"MSE", "MeanSquaredError"},
      {"mean_absolute_error", "MeanAbsoluteError"},
      {"mae", "MeanAbsoluteError"},
      {"MAE", "MeanAbsoluteError"},
      {"mean_absolute_percentage_error", "MeanAbsolutePercentageError"},
      {"mape", "MeanAbsolutePercentageError"},
      {"MAPE", "MeanAbsolutePercentageError"},
      {"huber", "Huber"},
      {"huber_loss", "Huber"},
      {"log_cosh", "LogCosh"},
      {"logcosh", "LogCosh"},
      {"binary_crossentropy", "BinaryCrossentropy"},
      {"categorical_crossentropy", "CategoricalCrossentropy"},
      {"sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"},
      {"kl_divergence", "KLDivergence"},
      {"kld", "KLDivergence"},
      {"KLD", "KLDivergence"},
      {"kullback_leibler_divergence", "KLDivergence"},
  };
  for (const auto& a : aliases) reg.alias(a.first, a.second);
  return reg;
}

}  // namespace

Registry<LossPtr, ConfigReader&>& registry() {
  static Registry<LossPtr, ConfigReader&> reg = make_registry();
  return reg;
}

LossPtr get(const nlohmann::json& spec, const std::string& path) {
  ClassSpec s = read_class_spec(spec, path, "loss");
  ConfigReader config(s.config, s.config_path);
  LossPtr loss = registry().create(s.class_name, s.name_path, config);
  config.finish();
  return loss;
}

nlohmann::json serialize(const Loss& loss) {
  return {{"class_name", loss.class_name()}, {"config", loss.get_config()}};
}

}  // namespace losses
}  // namespace lighter
