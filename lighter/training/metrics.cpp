#include "lighter/training/metrics.h"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "lighter/core/error.h"
#include "lighter/core/logging.h"
#include "lighter/training/losses.h"

namespace lighter {
namespace metrics {

namespace {

constexpr double kEpsilon = 1e-7;  // Keras' backend.epsilon()

// Predictions with rank 1 read as [N, 1]; the target made to the predictions' shape.
std::pair<torch::Tensor, torch::Tensor> prepare(const torch::Tensor& y_pred, const torch::Tensor& y_true,
                                                const std::string& who) {
  if (!y_pred.defined() || !y_true.defined()) throw ShapeError(who + ": y_pred and y_true must be defined");
  if (y_pred.dim() == 0) throw ShapeError(who + ": expected predictions with a batch axis, got a scalar");
  torch::Tensor p = y_pred.dim() == 1 ? y_pred.unsqueeze(-1) : y_pred;
  return {p, detail::align_target(p, y_true, who)};
}

torch::Tensor class_scores(const torch::Tensor& y_pred, const std::string& who) {
  if (!y_pred.defined() || y_pred.dim() < 2)
    throw ShapeError(who + ": expected predictions [N, C] (one score per class), got " +
                     (y_pred.defined() ? detail::shape_string(y_pred) : std::string("undefined")));
  return y_pred;
}

// Sample weights times mask, broadcast to `like` (double); undefined when neither is given.
torch::Tensor combined_weights(const torch::Tensor& sample_weight, const torch::Tensor& mask, const torch::Tensor& like,
                               const std::string& who) {
  torch::Tensor w;
  if (sample_weight.defined()) w = detail::broadcast_weights(sample_weight.detach(), like, who + ": sample_weight");
  if (mask.defined()) {
    torch::Tensor m = detail::broadcast_weights(mask.detach(), like, who + ": mask");
    w = w.defined() ? w * m : m;
  }
  return w;
}

torch::Tensor accumulated(const torch::Tensor& state, const torch::Tensor& value) {
  return state.defined() ? state + value : value;
}

// a / b, 0 where b is 0 (Keras' divide_no_nan).
torch::Tensor divide_no_nan(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor zero = b == 0;
  return torch::where(zero, torch::zeros_like(a), a / torch::where(zero, torch::ones_like(b), b));
}

}  // namespace

nlohmann::json Metric::get_config() const { return {{"name", name_}, {"dtype", "float32"}}; }

// ---- Mean and the wrappers ----------------------------------------------------------------------------------

void Mean::update(const torch::Tensor& value, double weight) {
  torch::NoGradGuard no_grad;
  total_ = accumulated(total_, value.detach().to(torch::kDouble).sum() * weight);
  host_count_ += weight;
}

void Mean::update_state(const torch::Tensor& y_pred, const torch::Tensor&, const torch::Tensor& sample_weight,
                        const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  accumulate(y_pred, sample_weight, mask);
}

void Mean::accumulate(const torch::Tensor& values, const torch::Tensor& sample_weight, const torch::Tensor& mask) {
  torch::Tensor v = values.detach().to(torch::kDouble);
  torch::Tensor w = combined_weights(sample_weight, mask, v, name());
  if (w.defined()) {
    // where() keeps a NaN at a masked (weight 0) position out of the sum.
    total_ = accumulated(total_, torch::where(w != 0, v * w, torch::zeros_like(v)).sum());
    count_ = accumulated(count_, w.sum());
  } else {
    total_ = accumulated(total_, v.sum());
    host_count_ += static_cast<double>(v.numel());
  }
}

double Mean::mean() const {
  if (!total_.defined()) return 0.0;
  double count = host_count_ + (count_.defined() ? count_.item<double>() : 0.0);
  return count == 0.0 ? 0.0 : total_.item<double>() / count;
}

double Mean::result() const { return mean(); }

void Mean::reset_state() {
  total_ = torch::Tensor();
  count_ = torch::Tensor();
  host_count_ = 0.0;
}

void MeanMetricWrapper::update_state(const torch::Tensor& y_pred, const torch::Tensor& y_true,
                                     const torch::Tensor& sample_weight, const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  accumulate(values(y_pred.detach(), y_true.defined() ? y_true.detach() : y_true), sample_weight, mask);
}

torch::Tensor Accuracy::values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  auto [p, t] = prepare(y_pred, y_true, name());
  return (p == t).to(torch::kFloat).mean(-1);
}

torch::Tensor BinaryAccuracy::values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  auto [p, t] = prepare(y_pred, y_true, name());
  return ((p > threshold_).to(t.scalar_type()) == t).to(torch::kFloat).mean(-1);
}

nlohmann::json BinaryAccuracy::get_config() const {
  auto config = Metric::get_config();
  config["threshold"] = threshold_;
  return config;
}

torch::Tensor CategoricalAccuracy::values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  torch::Tensor p = class_scores(y_pred, name());
  torch::Tensor t = detail::align_target(p, y_true, name());
  return (p.argmax(-1) == t.argmax(-1)).to(torch::kFloat);
}

torch::Tensor SparseCategoricalAccuracy::values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  torch::Tensor p = class_scores(y_pred, name());
  return (p.argmax(-1) == detail::sparse_labels(p, y_true, name())).to(torch::kFloat);
}

namespace {
// in_top_k: fewer than k classes score strictly higher than the target class.
torch::Tensor in_top_k(const torch::Tensor& p, const torch::Tensor& labels, int64_t k) {
  torch::Tensor target_score = p.gather(-1, labels.unsqueeze(-1));
  return ((p > target_score).sum(-1) < k).to(torch::kFloat);
}
}  // namespace

torch::Tensor TopKCategoricalAccuracy::values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  torch::Tensor p = class_scores(y_pred, name());
  return in_top_k(p, detail::align_target(p, y_true, name()).argmax(-1), k_);
}

nlohmann::json TopKCategoricalAccuracy::get_config() const {
  auto config = Metric::get_config();
  config["k"] = k_;
  return config;
}

torch::Tensor SparseTopKCategoricalAccuracy::values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  torch::Tensor p = class_scores(y_pred, name());
  return in_top_k(p, detail::sparse_labels(p, y_true, name()), k_);
}

nlohmann::json SparseTopKCategoricalAccuracy::get_config() const {
  auto config = Metric::get_config();
  config["k"] = k_;
  return config;
}

torch::Tensor MeanSquaredError::values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  static const losses::MeanSquaredError fn;
  return fn.per_sample(y_pred, y_true);
}

torch::Tensor MeanAbsoluteError::values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  static const losses::MeanAbsoluteError fn;
  return fn.per_sample(y_pred, y_true);
}

torch::Tensor MeanAbsolutePercentageError::values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  static const losses::MeanAbsolutePercentageError fn;
  return fn.per_sample(y_pred, y_true);
}

torch::Tensor RootMeanSquaredError::values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const {
  static const losses::MeanSquaredError fn;
  return fn.per_sample(y_pred, y_true);
}

double RootMeanSquaredError::result() const { return std::sqrt(mean()); }

// ---- AUC ----------------------------------------------------------------------------------------------------

AUC::AUC(std::string name, int64_t num_thresholds, std::string curve, std::string summation_method, bool from_logits,
         std::vector<double> thresholds)
    : Metric(std::move(name)),
      num_thresholds_(num_thresholds),
      curve_(std::move(curve)),
      summation_method_(std::move(summation_method)),
      from_logits_(from_logits),
      explicit_thresholds_(std::move(thresholds)) {
  if (curve_ != "ROC" && curve_ != "PR") throw ConfigError("curve", "expected ROC or PR, got \"" + curve_ + "\"");
  if (summation_method_ != "interpolation" && summation_method_ != "minoring" && summation_method_ != "majoring")
    throw ConfigError("summation_method", "expected interpolation, minoring or majoring, got \"" + summation_method_ + "\"");
  std::vector<double> t;
  if (!explicit_thresholds_.empty()) {
    std::sort(explicit_thresholds_.begin(), explicit_thresholds_.end());
    t = explicit_thresholds_;
    num_thresholds_ = static_cast<int64_t>(t.size()) + 2;
  } else {
    if (num_thresholds_ < 2) throw ConfigError("num_thresholds", "expected an integer > 1");
    // Keras: evenly spaced inner thresholds i / (n - 1), plus end points just outside [0, 1].
    for (int64_t i = 1; i < num_thresholds_ - 1; ++i) t.push_back(static_cast<double>(i) / (num_thresholds_ - 1));
  }
  t.insert(t.begin(), -kEpsilon);
  t.push_back(1.0 + kEpsilon);
  thresholds_ = torch::tensor(t, torch::kDouble);
}

void AUC::update_state(const torch::Tensor& y_pred, const torch::Tensor& y_true, const torch::Tensor& sample_weight,
                       const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  auto [p, t] = prepare(y_pred.detach().to(torch::kDouble), y_true.detach(), name());
  if (from_logits_) p = torch::sigmoid(p);
  torch::Tensor w = combined_weights(sample_weight, mask, p, name());
  torch::Tensor label = (t != 0).to(torch::kDouble).reshape(-1);
  torch::Tensor weight = w.defined() ? w.reshape(-1) : torch::ones_like(label);
  if (thresholds_.device() != p.device()) thresholds_ = thresholds_.to(p.device());
  // Bucket b holds predictions in (thr[b-1], thr[b]]; a prediction is positive at threshold j when its bucket > j.
  torch::Tensor bucket = torch::bucketize(p.reshape(-1), thresholds_);
  if (!positive_hist_.defined()) {
    positive_hist_ = torch::zeros({num_thresholds_ + 1}, p.options());
    negative_hist_ = torch::zeros({num_thresholds_ + 1}, p.options());
  }
  positive_hist_ = positive_hist_.index_add(0, bucket, label * weight);
  negative_hist_ = negative_hist_.index_add(0, bucket, (1.0 - label) * weight);
}

double AUC::result() const {
  if (!positive_hist_.defined()) return 0.0;
  const int64_t n = num_thresholds_;
  // Counts strictly above threshold j: the sum of buckets j+1 .. n.
  auto above = [](const torch::Tensor& hist) { return hist.cpu().flip(0).cumsum(0).flip(0).slice(0, 1); };
  torch::Tensor tp = above(positive_hist_), fp = above(negative_hist_);
  torch::Tensor fn = positive_hist_.cpu().sum() - tp, tn = negative_hist_.cpu().sum() - fp;
  auto head = [n](const torch::Tensor& v) { return v.slice(0, 0, n - 1); };
  auto tail = [](const torch::Tensor& v) { return v.slice(0, 1); };

  if (curve_ == "PR" && summation_method_ == "interpolation") {
    // Davis & Goadrich (2006) interpolation, as Keras' interpolate_pr_auc.
    torch::Tensor dtp = head(tp) - tail(tp);
    torch::Tensor pos = tp + fp;
    torch::Tensor dp = head(pos) - tail(pos);
    torch::Tensor slope = divide_no_nan(dtp, dp.clamp_min(0));
    torch::Tensor intercept = tail(tp) - slope * tail(pos);
    torch::Tensor safe_ratio = torch::where((head(pos) > 0).logical_and(tail(pos) > 0),
                                            divide_no_nan(head(pos), tail(pos).clamp_min(0)), torch::ones_like(tail(pos)));
    torch::Tensor increment =
        divide_no_nan(slope * (dtp + intercept * safe_ratio.log()), (tail(tp) + tail(fn)).clamp_min(0));
    return increment.sum().item<double>();
  }
  torch::Tensor recall = divide_no_nan(tp, tp + fn);
  torch::Tensor x, y;
  if (curve_ == "ROC") {
    x = divide_no_nan(fp, fp + tn);
    y = recall;
  } else {
    x = recall;
    y = divide_no_nan(tp, tp + fp);
  }
  torch::Tensor heights;
  if (summation_method_ == "interpolation") heights = (head(y) + tail(y)) / 2.0;
  else if (summation_method_ == "minoring") heights = torch::minimum(head(y), tail(y));
  else heights = torch::maximum(head(y), tail(y));
  return ((head(x) - tail(x)) * heights).sum().item<double>();
}

void AUC::reset_state() {
  positive_hist_ = torch::Tensor();
  negative_hist_ = torch::Tensor();
}

nlohmann::json AUC::get_config() const {
  auto config = Metric::get_config();
  config["num_thresholds"] = num_thresholds_;
  config["curve"] = curve_;
  config["summation_method"] = summation_method_;
  config["multi_label"] = false;
  config["num_labels"] = nullptr;
  config["label_weights"] = nullptr;
  config["from_logits"] = from_logits_;
  if (!explicit_thresholds_.empty()) config["thresholds"] = explicit_thresholds_;
  return config;
}

// ---- Precision and Recall -----------------------------------------------------------------------------------

void ConfusionMetric::update_state(const torch::Tensor& y_pred, const torch::Tensor& y_true,
                                   const torch::Tensor& sample_weight, const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  auto [p, t] = prepare(y_pred.detach().to(torch::kDouble), y_true.detach(), name());
  torch::Tensor w = combined_weights(sample_weight, mask, p, name());
  torch::Tensor predicted = (p > threshold_).to(torch::kDouble);
  torch::Tensor label = (t != 0).to(torch::kDouble);
  if (w.defined()) {
    predicted = predicted * w;
    label = label * w;
  }
  // With weights folded into both: tp = w*l*p, fp = w*p - tp, fn = w*l - tp.
  torch::Tensor tp = ((t != 0).to(torch::kDouble) * predicted).sum();
  tp_ = accumulated(tp_, tp);
  fp_ = accumulated(fp_, predicted.sum() - tp);
  fn_ = accumulated(fn_, label.sum() - tp);
}

void ConfusionMetric::reset_state() {
  tp_ = torch::Tensor();
  fp_ = torch::Tensor();
  fn_ = torch::Tensor();
}

nlohmann::json ConfusionMetric::get_config() const {
  auto config = Metric::get_config();
  config["thresholds"] = threshold_;
  config["top_k"] = nullptr;
  config["class_id"] = nullptr;
  return config;
}

double ConfusionMetric::ratio(const torch::Tensor& a, const torch::Tensor& b) {
  if (!a.defined()) return 0.0;
  double denominator = b.item<double>();
  return denominator == 0.0 ? 0.0 : a.item<double>() / denominator;
}

double Precision::result() const { return tp_.defined() ? ratio(tp_, tp_ + fp_) : 0.0; }

double Recall::result() const { return tp_.defined() ? ratio(tp_, tp_ + fn_) : 0.0; }

// ---- FBetaScore and F1Score ------------------------------------------------------------------------------------

FBetaScore::FBetaScore(std::string name, std::string average, double beta, std::optional<double> threshold)
    : Metric(std::move(name)), average_(std::move(average)), beta_(beta), threshold_(threshold) {
  if (!average_.empty() && average_ != "micro" && average_ != "macro" && average_ != "weighted")
    throw ConfigError("average", "expected null, \"micro\", \"macro\" or \"weighted\", got \"" + average_ + "\"");
  if (!(beta_ > 0.0)) throw ConfigError("beta", "expected a number > 0, got " + std::to_string(beta_));
  if (threshold_ && !(*threshold_ > 0.0 && *threshold_ <= 1.0))
    throw ConfigError("threshold", "expected a number in (0, 1], got " + std::to_string(*threshold_));
}

void FBetaScore::update_state(const torch::Tensor& y_pred, const torch::Tensor& y_true,
                              const torch::Tensor& sample_weight, const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  auto [p, t] = prepare(y_pred.detach().to(torch::kDouble), y_true.detach(), name());
  torch::Tensor w = combined_weights(sample_weight, mask, p, name());
  const int64_t classes = p.size(-1);
  if (average_.empty() && classes != 1)
    throw ShapeError(name() + ": average null gives one score per class (" + std::to_string(classes) +
                     " here) and a log holds one number; set average to \"micro\", \"macro\" or \"weighted\"");
  if (!average_.empty() && average_ != "micro" && tp_.defined() && tp_.size(0) != classes)
    throw ShapeError(name() + ": predictions have " + std::to_string(classes) + " classes, earlier batches had " +
                     std::to_string(tp_.size(0)));
  p = p.reshape({-1, classes});
  t = t.reshape({-1, classes});
  torch::Tensor predicted;
  if (threshold_) {
    predicted = (p > *threshold_).to(torch::kDouble);
  } else {
    // Keras: the row's maximum is the positive; abs > 1e-9 keeps an all-zero row from being all positive.
    predicted = p.ge(std::get<0>(p.max(-1, true))).logical_and(p.abs() > 1e-9).to(torch::kDouble);
  }
  if (w.defined()) w = w.reshape({-1, classes});
  auto weighted_sum = [&](const torch::Tensor& v) {
    torch::Tensor x = w.defined() ? v * w : v;
    return average_ == "micro" ? x.sum() : x.sum(0);
  };
  tp_ = accumulated(tp_, weighted_sum(predicted * t));
  fp_ = accumulated(fp_, weighted_sum(predicted * (1.0 - t)));
  fn_ = accumulated(fn_, weighted_sum((1.0 - predicted) * t));
  label_weights_ = accumulated(label_weights_, weighted_sum(t));
}

torch::Tensor FBetaScore::result_tensor() const {
  if (!tp_.defined()) return torch::zeros({}, torch::kDouble);
  // Keras' formula, epsilons included (so a class never predicted nor present scores 0, not NaN).
  torch::Tensor precision = tp_ / (tp_ + fp_ + kEpsilon);
  torch::Tensor recall = tp_ / (tp_ + fn_ + kEpsilon);
  const double b2 = beta_ * beta_;
  torch::Tensor score = (1.0 + b2) * (precision * recall) / (b2 * precision + recall + kEpsilon);
  if (average_ == "weighted") return (score * (label_weights_ / (label_weights_.sum() + kEpsilon))).sum();
  if (!average_.empty()) return score.mean();
  return score;
}

double FBetaScore::result() const {
  torch::Tensor r = result_tensor();
  return r.numel() == 1 ? r.item<double>() : 0.0;  // more than one class without average is refused by update_state
}

void FBetaScore::reset_state() { tp_ = fp_ = fn_ = label_weights_ = torch::Tensor(); }

nlohmann::json FBetaScore::get_config() const {
  auto config = Metric::get_config();
  config["average"] = average_.empty() ? json(nullptr) : json(average_);
  config["beta"] = beta_;
  config["threshold"] = threshold_ ? json(*threshold_) : json(nullptr);
  return config;
}

nlohmann::json F1Score::get_config() const {
  auto config = FBetaScore::get_config();
  config.erase("beta");  // as Keras' F1Score.get_config
  return config;
}

// ---- R2Score ------------------------------------------------------------------------------------------------

R2Score::R2Score(std::string name, std::string class_aggregation, int64_t num_regressors)
    : Metric(std::move(name)), class_aggregation_(std::move(class_aggregation)), num_regressors_(num_regressors) {
  if (class_aggregation_ != "uniform_average" && class_aggregation_ != "variance_weighted_average")
    throw ConfigError("class_aggregation",
                      "expected uniform_average or variance_weighted_average, got \"" + class_aggregation_ + "\"");
  if (num_regressors_ < 0) throw ConfigError("num_regressors", "expected a non-negative integer");
}

void R2Score::update_state(const torch::Tensor& y_pred, const torch::Tensor& y_true,
                           const torch::Tensor& sample_weight, const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  auto [p, t] = prepare(y_pred.detach().to(torch::kDouble), y_true.detach(), name());
  torch::Tensor w = combined_weights(sample_weight, mask, p, name());
  const int64_t columns = p.size(-1);
  if (sum_.defined() && sum_.size(0) != columns)
    throw ShapeError(name() + ": predictions have " + std::to_string(columns) + " outputs, earlier batches had " +
                     std::to_string(sum_.size(0)));
  p = p.reshape({-1, columns});
  t = t.reshape({-1, columns});
  w = w.defined() ? w.reshape({-1, columns}) : torch::ones_like(t);
  torch::Tensor weighted = t * w;
  sum_ = accumulated(sum_, weighted.sum(0));
  squared_sum_ = accumulated(squared_sum_, (t * weighted).sum(0));
  total_mse_ = accumulated(total_mse_, ((t - p).square() * w).sum(0));
  count_ = accumulated(count_, w.sum(0));
  num_samples_ += t.size(0);
}

double R2Score::result() const {
  if (!sum_.defined()) return 0.0;
  torch::Tensor mean = sum_ / count_;
  torch::Tensor total = squared_sum_ - sum_ * mean;
  torch::Tensor raw = 1.0 - total_mse_ / total;
  // Keras: a constant target column (total 0) scores 0 rather than -inf.
  raw = torch::where(raw.isinf(), torch::zeros_like(raw), raw);
  double r2 = class_aggregation_ == "uniform_average" ? raw.mean().item<double>()
                                                      : ((total * raw).sum() / total.sum()).item<double>();
  if (num_regressors_ > 0) {
    const int64_t n = num_samples_;
    if (num_regressors_ >= n - 1) {
      logger()->warn("{}: num_regressors ({}) must be smaller than the number of samples minus one ({}); "
                     "returning the unadjusted R2",
                     name(), num_regressors_, n - 1);
    } else {
      r2 = 1.0 - (1.0 - r2) * static_cast<double>(n - 1) / static_cast<double>(n - num_regressors_ - 1);
    }
  }
  return r2;
}

void R2Score::reset_state() {
  sum_ = squared_sum_ = total_mse_ = count_ = torch::Tensor();
  num_samples_ = 0;
}

nlohmann::json R2Score::get_config() const {
  auto config = Metric::get_config();
  config["class_aggregation"] = class_aggregation_;
  config["num_regressors"] = num_regressors_;
  return config;
}

// ---- "accuracy" ---------------------------------------------------------------------------------------------

namespace {

// "accuracy" without a deciding loss: picks binary, sparse or categorical accuracy from the first batch's shapes
// (Keras 3 compile_utils.get_metric).
class ResolvingAccuracy : public Metric {
 public:
  explicit ResolvingAccuracy(std::string name) : Metric(std::move(name)) {}
  std::string class_name() const override { return resolved_ ? resolved_->class_name() : "accuracy"; }
  void update_state(const torch::Tensor& y_pred, const torch::Tensor& y_true, const torch::Tensor& sample_weight,
                    const torch::Tensor& mask) override {
    if (!resolved_) {
      if (!y_pred.defined() || !y_true.defined() || y_pred.dim() == 0)
        throw ShapeError(name() + ": expected predictions with a batch axis");
      const int64_t last = y_pred.size(-1);
      const bool binary = y_pred.dim() == 1 || last == 1;
      const bool sparse = (y_true.dim() < y_pred.dim() || (y_true.dim() > 0 && y_true.size(-1) == 1)) && last > 1;
      if (binary) resolved_ = std::make_shared<BinaryAccuracy>(name());
      else if (sparse) resolved_ = std::make_shared<SparseCategoricalAccuracy>(name());
      else resolved_ = std::make_shared<CategoricalAccuracy>(name());
    }
    resolved_->update_state(y_pred, y_true, sample_weight, mask);
  }
  double result() const override { return resolved_ ? resolved_->result() : 0.0; }
  void reset_state() override {
    if (resolved_) resolved_->reset_state();
  }
  nlohmann::json get_config() const override { return resolved_ ? resolved_->get_config() : Metric::get_config(); }

 private:
  MetricPtr resolved_;
};

MetricPtr make_accuracy(const std::string& name, const std::string& loss_name) {
  const auto& losses = losses::registry();
  const std::string loss = losses.contains(loss_name) ? losses.resolve(loss_name) : "";
  if (loss == "SparseCategoricalCrossentropy") return std::make_shared<SparseCategoricalAccuracy>(name);
  if (loss == "CategoricalCrossentropy") return std::make_shared<CategoricalAccuracy>(name);
  if (loss == "BinaryCrossentropy") return std::make_shared<BinaryAccuracy>(name);
  return std::make_shared<ResolvingAccuracy>(name);
}

std::string read_name(ConfigReader& r, const std::string& fallback) {
  std::string name = r.get<std::string>("name", fallback);
  detail::read_float32_dtype(r);
  return name;
}

template <class T>
void add_simple(Registry<MetricPtr, ConfigReader&>& reg, const std::string& class_name, const std::string& name) {
  reg.add(class_name, [name](ConfigReader& r) -> MetricPtr { return std::make_shared<T>(read_name(r, name)); });
}

int64_t read_k(ConfigReader& r) { return r.positive_int("k", 5); }

double read_threshold(ConfigReader& r, const std::string& key) {
  const json& v = r.raw_or_null(key);
  if (v.is_null()) return 0.5;
  // Keras takes a list of thresholds (and then returns a list); one value is all a scalar log can hold.
  const json& value = v.is_array() && v.size() == 1 ? v[0] : v;
  if (!value.is_number() || value.get<double>() < 0.0 || value.get<double>() > 1.0)
    throw ConfigError(r.path_of(key), "expected one threshold in [0, 1], got " + describe(v));
  return value.get<double>();
}

// FBetaScore's average: null (per class) or micro/macro/weighted; "" stands for null.
std::string read_average(ConfigReader& r) {
  const json& v = r.raw_or_null("average");
  if (v.is_null()) return "";
  return r.choice("average", "", {"micro", "macro", "weighted"});
}

// FBetaScore's threshold: null (the row's maximum) or one number in (0, 1], as Keras checks.
std::optional<double> read_fbeta_threshold(ConfigReader& r) {
  const json& v = r.raw_or_null("threshold");
  if (v.is_null()) return std::nullopt;
  if (!v.is_number() || !(v.get<double>() > 0.0 && v.get<double>() <= 1.0))
    throw ConfigError(r.path_of("threshold"), "expected null or a number in (0, 1], got " + describe(v));
  return v.get<double>();
}

Registry<MetricPtr, ConfigReader&> make_registry() {
  Registry<MetricPtr, ConfigReader&> reg("metric");
  reg.add("accuracy", [](ConfigReader& r) -> MetricPtr {
    return std::make_shared<ResolvingAccuracy>(read_name(r, "accuracy"));
  });
  add_simple<Accuracy>(reg, "Accuracy", "accuracy");
  reg.add("BinaryAccuracy", [](ConfigReader& r) -> MetricPtr {
    std::string name = read_name(r, "binary_accuracy");
    return std::make_shared<BinaryAccuracy>(name, r.get<double>("threshold", 0.5));
  });
  add_simple<CategoricalAccuracy>(reg, "CategoricalAccuracy", "categorical_accuracy");
  add_simple<SparseCategoricalAccuracy>(reg, "SparseCategoricalAccuracy", "sparse_categorical_accuracy");
  reg.add("TopKCategoricalAccuracy", [](ConfigReader& r) -> MetricPtr {
    std::string name = read_name(r, "top_k_categorical_accuracy");
    return std::make_shared<TopKCategoricalAccuracy>(name, read_k(r));
  });
  reg.add("SparseTopKCategoricalAccuracy", [](ConfigReader& r) -> MetricPtr {
    std::string name = read_name(r, "sparse_top_k_categorical_accuracy");
    // Keras 3.5+ adds from_sorted_ids; only its default is meaningful here.
    if (r.get<bool>("from_sorted_ids", false))
      throw ConfigError(r.path_of("from_sorted_ids"), "only false is supported");
    return std::make_shared<SparseTopKCategoricalAccuracy>(name, read_k(r));
  });
  add_simple<MeanSquaredError>(reg, "MeanSquaredError", "mean_squared_error");
  add_simple<MeanAbsoluteError>(reg, "MeanAbsoluteError", "mean_absolute_error");
  add_simple<MeanAbsolutePercentageError>(reg, "MeanAbsolutePercentageError", "mean_absolute_percentage_error");
  add_simple<RootMeanSquaredError>(reg, "RootMeanSquaredError", "root_mean_squared_error");
  add_simple<Mean>(reg, "Mean", "mean");
  reg.add("AUC", [](ConfigReader& r) -> MetricPtr {
    std::string name = read_name(r, "auc");
    int64_t num_thresholds = r.get<int64_t>("num_thresholds", 200);
    if (num_thresholds < 2) throw ConfigError(r.path_of("num_thresholds"), "expected an integer > 1");
    std::string curve = r.choice("curve", "ROC", {"ROC", "PR"});
    std::string summation = r.choice("summation_method", "interpolation", {"interpolation", "minoring", "majoring"});
    bool from_logits = r.get<bool>("from_logits", false);
    if (r.get<bool>("multi_label", false))
      throw ConfigError(r.path_of("multi_label"), "only false is supported (binary labels)");
    r.require_null("num_labels", "num_labels (multi-label AUC)");
    r.require_null("label_weights", "label_weights (multi-label AUC)");
    std::vector<double> thresholds = r.get<std::vector<double>>("thresholds", {});
    for (double t : thresholds)
      if (!(t >= 0.0 && t <= 1.0)) throw ConfigError(r.path_of("thresholds"), "expected thresholds in [0, 1]");
    return std::make_shared<AUC>(name, num_thresholds, curve, summation, from_logits, thresholds);
  });
  reg.add("Precision", [](ConfigReader& r) -> MetricPtr {
    std::string name = read_name(r, "precision");
    double threshold = read_threshold(r, "thresholds");
    r.require_null("top_k", "top_k (only binary precision)");
    r.require_null("class_id", "class_id (only binary precision)");
    return std::make_shared<Precision>(name, threshold);
  });
  reg.add("Recall", [](ConfigReader& r) -> MetricPtr {
    std::string name = read_name(r, "recall");
    double threshold = read_threshold(r, "thresholds");
    r.require_null("top_k", "top_k (only binary recall)");
    r.require_null("class_id", "class_id (only binary recall)");
    return std::make_shared<Recall>(name, threshold);
  });
  reg.add("FBetaScore", [](ConfigReader& r) -> MetricPtr {
    std::string name = read_name(r, "fbeta_score");
    std::string average = read_average(r);
    double beta = r.get<double>("beta", 1.0);
    if (!(beta > 0.0)) throw ConfigError(r.path_of("beta"), "expected a number > 0");
    return std::make_shared<FBetaScore>(name, average, beta, read_fbeta_threshold(r));
  });
  reg.add("F1Score", [](ConfigReader& r) -> MetricPtr {
    std::string name = read_name(r, "f1_score");
    std::string average = read_average(r);
    return std::make_shared<F1Score>(name, average, read_fbeta_threshold(r));
  });
  reg.add("R2Score", [](ConfigReader& r) -> MetricPtr {
    std::string name = read_name(r, "r2_score");
    if (r.object().contains("class_aggregation") && r.object().at("class_aggregation").is_null())
      throw ConfigError(r.path_of("class_aggregation"), "null (one score per output) is not supported");
    std::string aggregation =
        r.choice("class_aggregation", "uniform_average", {"uniform_average", "variance_weighted_average"});
    int64_t num_regressors = r.get<int64_t>("num_regressors", 0);
    if (num_regressors < 0) throw ConfigError(r.path_of("num_regressors"), "expected a non-negative integer");
    return std::make_shared<R2Score>(name, aggregation, num_regressors);
  });
  const std::pair<const char*, const char*> aliases[] = {
      {"acc", "accuracy"},
      {"binary_accuracy", "BinaryAccuracy"},
      {"categorical_accuracy", "CategoricalAccuracy"},
      {"sparse_categorical_accuracy", "SparseCategoricalAccuracy"},
      {"top_k_categorical_accuracy", "TopKCategoricalAccuracy"},
      {"sparse_top_k_categorical_accuracy", "SparseTopKCategoricalAccuracy"},
      {"mean_squared_error", "MeanSquaredError"},
      {"mse", "MeanSquaredError"},
      {"MSE", "MeanSquaredError"},
      {"mean_absolute_error", "MeanAbsoluteError"},
      {"mae", "MeanAbsoluteError"},
      {"MAE", "MeanAbsoluteError"},
      {"mean_absolute_percentage_error", "MeanAbsolutePercentageError"},
      {"mape", "MeanAbsolutePercentageError"},
      {"MAPE", "MeanAbsolutePercentageError"},
      {"root_mean_squared_error", "RootMeanSquaredError"},
      {"rmse", "RootMeanSquaredError"},
      {"auc", "AUC"},
      {"precision", "Precision"},
      {"recall", "Recall"},
      {"r2_score", "R2Score"},
      {"f1_score", "F1Score"},
      {"fbeta_score", "FBetaScore"},
      {"mean", "Mean"},
  };
  for (const auto& a : aliases) reg.alias(a.first, a.second);
  return reg;
}

}  // namespace

Registry<MetricPtr, ConfigReader&>& registry() {
  static Registry<MetricPtr, ConfigReader&> reg = make_registry();
  return reg;
}

MetricPtr get(const nlohmann::json& spec, const std::string& path, const std::string& loss_name) {
  ClassSpec s = read_class_spec(spec, path, "metric");
  // A string's spelling is the log key, as in Keras ("mae" logs as "mae").
  if (s.from_string) s.config = {{"name", s.class_name}};
  const std::string& class_name = s.class_name;
  const std::string& name_path = s.name_path;
  const json* config = &s.config;
  const std::string& config_path = s.config_path;
  ConfigReader reader(*config, config_path);
  MetricPtr metric;
  if (registry().contains(class_name) && registry().resolve(class_name) == "accuracy") {
    metric = make_accuracy(read_name(reader, "accuracy"), loss_name);
  } else {
    metric = registry().create(class_name, name_path, reader);
  }
  reader.finish();
  return metric;
}

nlohmann::json serialize(const Metric& metric) {
  return {{"class_name", metric.class_name()}, {"config", metric.get_config()}};
}

}  // namespace metrics
}  // namespace lighter
