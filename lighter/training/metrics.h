#pragma once
/// Keras metrics: stateful accumulators (update_state per batch, result, reset_state per epoch). State is kept as
/// tensors on the data's device, so update_state never waits for the device; result() does.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lighter/core/json.h"
#include "lighter/core/registry.h"

namespace lighter {
namespace metrics {

/// A stateful Keras metric: update_state per batch, result() at any time, reset_state() per epoch.
class Metric {
 public:
  virtual ~Metric() = default;
  /// The log key (the user's spelling, e.g. "accuracy", "mae", "auc").
  const std::string& name() const { return name_; }
  virtual std::string class_name() const = 0;
  /// y_pred are probabilities/outputs (after the final activation). Weighted by sample_weight when defined;
  /// mask (same layout as the loss mask) restricts to valid positions. Never syncs with the device.
  virtual void update_state(const torch::Tensor& y_pred, const torch::Tensor& y_true,
                            const torch::Tensor& sample_weight = {}, const torch::Tensor& mask = {}) = 0;
  /// The current value (0 before any update, as Keras' divide_no_nan).
  virtual double result() const = 0;
  virtual void reset_state() = 0;
  /// Keras get_config: name, dtype and the constructor arguments.
  virtual nlohmann::json get_config() const;

 protected:
  explicit Metric(std::string name) : name_(std::move(name)) {}

 private:
  std::string name_;
};
using MetricPtr = std::shared_ptr<Metric>;

/// Weighted running mean (Keras Mean); also the trainer's loss tracker.
/// update_state(values, _, sample_weight, mask) averages the elements of `values`: sum(v*w)/sum(w).
class Mean : public Metric {
 public:
  explicit Mean(std::string name = "mean") : Metric(std::move(name)) {}
  std::string class_name() const override { return "Mean"; }
  /// Adds a scalar (e.g. a batch's loss) with a host-side weight (e.g. the batch size).
  void update(const torch::Tensor& value, double weight = 1.0);
  void update_state(const torch::Tensor& y_pred, const torch::Tensor& y_true = {},
                    const torch::Tensor& sample_weight = {}, const torch::Tensor& mask = {}) override;
  double result() const override;
  void reset_state() override;

 protected:
  /// Adds sum(values*w*mask) and sum(w*mask) (weights broadcast to the values' shape).
  void accumulate(const torch::Tensor& values, const torch::Tensor& sample_weight, const torch::Tensor& mask);
  /// total / count, 0 when nothing was counted.
  double mean() const;

 private:
  torch::Tensor total_;       // double scalar on the data's device
  torch::Tensor count_;       // weighted counts (device), when weights were given
  double host_count_ = 0.0;  // unweighted counts, known on the host without a sync
};

/// Keras MeanMetricWrapper: the weighted mean of a per-sample function values(y_pred, y_true) ([N] or [N, T]).
class MeanMetricWrapper : public Mean {
 public:
  using Mean::Mean;
  void update_state(const torch::Tensor& y_pred, const torch::Tensor& y_true,
                    const torch::Tensor& sample_weight = {}, const torch::Tensor& mask = {}) override;
  /// The per-sample values the metric averages.
  virtual torch::Tensor values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const = 0;
};

/// Keras Accuracy: the fraction of exactly equal elements (not what the "accuracy" string resolves to).
class Accuracy : public MeanMetricWrapper {
 public:
  explicit Accuracy(std::string name = "accuracy") : MeanMetricWrapper(std::move(name)) {}
  std::string class_name() const override { return "Accuracy"; }
  torch::Tensor values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
};

/// mean((y_pred > threshold) == y_true, axis=-1).
class BinaryAccuracy : public MeanMetricWrapper {
 public:
  explicit BinaryAccuracy(std::string name = "binary_accuracy", double threshold = 0.5)
      : MeanMetricWrapper(std::move(name)), threshold_(threshold) {}
  std::string class_name() const override { return "BinaryAccuracy"; }
  torch::Tensor values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
  nlohmann::json get_config() const override;

 private:
  double threshold_;
};

/// argmax(y_pred, -1) == argmax(y_true, -1) (one-hot targets).
class CategoricalAccuracy : public MeanMetricWrapper {
 public:
  explicit CategoricalAccuracy(std::string name = "categorical_accuracy") : MeanMetricWrapper(std::move(name)) {}
  std::string class_name() const override { return "CategoricalAccuracy"; }
  torch::Tensor values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
};

/// argmax(y_pred, -1) == label (integer labels [N] or [N, 1]).
class SparseCategoricalAccuracy : public MeanMetricWrapper {
 public:
  explicit SparseCategoricalAccuracy(std::string name = "sparse_categorical_accuracy")
      : MeanMetricWrapper(std::move(name)) {}
  std::string class_name() const override { return "SparseCategoricalAccuracy"; }
  torch::Tensor values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
};

/// Whether the target class is among the k highest scores (ties count in the target's favour, as in_top_k).
class TopKCategoricalAccuracy : public MeanMetricWrapper {
 public:
  explicit TopKCategoricalAccuracy(std::string name = "top_k_categorical_accuracy", int64_t k = 5)
      : MeanMetricWrapper(std::move(name)), k_(k) {}
  std::string class_name() const override { return "TopKCategoricalAccuracy"; }
  torch::Tensor values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
  nlohmann::json get_config() const override;

 private:
  int64_t k_;
};

/// TopKCategoricalAccuracy with integer labels.
class SparseTopKCategoricalAccuracy : public MeanMetricWrapper {
 public:
  explicit SparseTopKCategoricalAccuracy(std::string name = "sparse_top_k_categorical_accuracy", int64_t k = 5)
      : MeanMetricWrapper(std::move(name)), k_(k) {}
  std::string class_name() const override { return "SparseTopKCategoricalAccuracy"; }
  torch::Tensor values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
  nlohmann::json get_config() const override;

 private:
  int64_t k_;
};

/// mean((y_pred - y_true)^2, axis=-1), averaged over samples.
class MeanSquaredError : public MeanMetricWrapper {
 public:
  explicit MeanSquaredError(std::string name = "mean_squared_error") : MeanMetricWrapper(std::move(name)) {}
  std::string class_name() const override { return "MeanSquaredError"; }
  torch::Tensor values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
};

/// mean(|y_pred - y_true|, axis=-1), averaged over samples.
class MeanAbsoluteError : public MeanMetricWrapper {
 public:
  explicit MeanAbsoluteError(std::string name = "mean_absolute_error") : MeanMetricWrapper(std::move(name)) {}
  std::string class_name() const override { return "MeanAbsoluteError"; }
  torch::Tensor values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
};

/// 100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7), axis=-1), averaged over samples.
class MeanAbsolutePercentageError : public MeanMetricWrapper {
 public:
  explicit MeanAbsolutePercentageError(std::string name = "mean_absolute_percentage_error")
      : MeanMetricWrapper(std::move(name)) {}
  std::string class_name() const override { return "MeanAbsolutePercentageError"; }
  torch::Tensor values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
};

/// sqrt of the weighted mean squared error over everything seen (not a mean of batch roots).
class RootMeanSquaredError : public MeanMetricWrapper {
 public:
  explicit RootMeanSquaredError(std::string name = "root_mean_squared_error") : MeanMetricWrapper(std::move(name)) {}
  std::string class_name() const override { return "RootMeanSquaredError"; }
  torch::Tensor values(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
  double result() const override;
};

/// Keras AUC for binary labels: confusion counts at num_thresholds thresholds (prediction > threshold is positive),
/// ROC or PR curve, Riemann sum by "interpolation" (PR: Davis & Goadrich), "minoring" or "majoring".
class AUC : public Metric {
 public:
  explicit AUC(std::string name = "auc", int64_t num_thresholds = 200, std::string curve = "ROC",
               std::string summation_method = "interpolation", bool from_logits = false,
               std::vector<double> thresholds = {});
  std::string class_name() const override { return "AUC"; }
  void update_state(const torch::Tensor& y_pred, const torch::Tensor& y_true,
                    const torch::Tensor& sample_weight = {}, const torch::Tensor& mask = {}) override;
  double result() const override;
  void reset_state() override;
  nlohmann::json get_config() const override;

 private:
  int64_t num_thresholds_;
  std::string curve_;
  std::string summation_method_;
  bool from_logits_;
  std::vector<double> explicit_thresholds_;
  torch::Tensor thresholds_;      // [T] ascending, on the data's device
  torch::Tensor positive_hist_;   // [T + 1] weighted positives per threshold bucket
  torch::Tensor negative_hist_;   // [T + 1] weighted negatives per threshold bucket
};

/// Shared by Precision and Recall: weighted true/false positives and false negatives at one threshold.
class ConfusionMetric : public Metric {
 public:
  void update_state(const torch::Tensor& y_pred, const torch::Tensor& y_true,
                    const torch::Tensor& sample_weight = {}, const torch::Tensor& mask = {}) override;
  void reset_state() override;
  nlohmann::json get_config() const override;

 protected:
  ConfusionMetric(std::string name, double threshold) : Metric(std::move(name)), threshold_(threshold) {}
  /// a / b, 0 when b is 0.
  static double ratio(const torch::Tensor& a, const torch::Tensor& b);
  double threshold_;
  torch::Tensor tp_, fp_, fn_;
};

/// tp / (tp + fp) at threshold 0.5 (binary; 0 when nothing was predicted positive).
class Precision : public ConfusionMetric {
 public:
  explicit Precision(std::string name = "precision", double threshold = 0.5)
      : ConfusionMetric(std::move(name), threshold) {}
  std::string class_name() const override { return "Precision"; }
  double result() const override;
};

/// tp / (tp + fn) at threshold 0.5 (binary; 0 when there were no positives).
class Recall : public ConfusionMetric {
 public:
  explicit Recall(std::string name = "recall", double threshold = 0.5) : ConfusionMetric(std::move(name), threshold) {}
  std::string class_name() const override { return "Recall"; }
  double result() const override;
};

/// Keras FBetaScore: (1 + beta²) · precision · recall / (beta² · precision + recall), from per-class true positive,
/// false positive and false negative counts over (N, C) predictions (other ranks are read as (-1, C); [N] as
/// [N, 1]). A prediction is positive above `threshold`; without one (Keras' default), the highest score of each
/// row is the positive (ties all positive, an all-zero row none). Keras quirk kept: with one output column and no
/// threshold, every non-zero prediction is positive, so a sigmoid output wants threshold 0.5. `average`: "" (Keras'
/// None: one score per class, so only one column fits a scalar log), "micro" (counts summed over classes first),
/// "macro" (mean of the per-class scores) or "weighted" (weighted by each class's count of true labels).
class FBetaScore : public Metric {
 public:
  explicit FBetaScore(std::string name = "fbeta_score", std::string average = "", double beta = 1.0,
                      std::optional<double> threshold = std::nullopt);
  std::string class_name() const override { return "FBetaScore"; }
  void update_state(const torch::Tensor& y_pred, const torch::Tensor& y_true,
                    const torch::Tensor& sample_weight = {}, const torch::Tensor& mask = {}) override;
  double result() const override;
  /// The per-class scores (C), or the averaged one as a scalar tensor.
  torch::Tensor result_tensor() const;
  void reset_state() override;
  nlohmann::json get_config() const override;

 protected:
  std::string average_;
  double beta_;
  std::optional<double> threshold_;
  torch::Tensor tp_, fp_, fn_, label_weights_;  // per class (C), or scalars for "micro"
};

/// Keras F1Score: FBetaScore with beta 1 (its config has no `beta`). For a binary sigmoid output:
/// `F1Score("f1_score", "", 0.5)`, or in JSON {"class_name": "F1Score", "config": {"threshold": 0.5}}.
class F1Score : public FBetaScore {
 public:
  explicit F1Score(std::string name = "f1_score", std::string average = "",
                   std::optional<double> threshold = std::nullopt)
      : FBetaScore(std::move(name), std::move(average), 1.0, threshold) {}
  std::string class_name() const override { return "F1Score"; }
  nlohmann::json get_config() const override;
};

/// Keras R2Score: 1 - SS_res / SS_tot per output column, aggregated by "uniform_average" or
/// "variance_weighted_average"; adjusted R² when num_regressors > 0.
class R2Score : public Metric {
 public:
  explicit R2Score(std::string name = "r2_score", std::string class_aggregation = "uniform_average",
                   int64_t num_regressors = 0);
  std::string class_name() const override { return "R2Score"; }
  void update_state(const torch::Tensor& y_pred, const torch::Tensor& y_true,
                    const torch::Tensor& sample_weight = {}, const torch::Tensor& mask = {}) override;
  double result() const override;
  void reset_state() override;
  nlohmann::json get_config() const override;

 private:
  std::string class_aggregation_;
  int64_t num_regressors_;
  torch::Tensor sum_, squared_sum_, total_mse_, count_;  // per output column
  int64_t num_samples_ = 0;
};

/// From a string or {"class_name", "config"}. "accuracy"/"acc" resolve by the loss name, as Keras does:
/// sparse_categorical_crossentropy -> sparse categorical accuracy, categorical_crossentropy -> categorical,
/// binary_crossentropy -> binary; otherwise by output shape at the first update (last dim 1 -> binary, else
/// sparse categorical when y_true has one fewer dim or a last dim of 1, else categorical).
/// The resolved metric keeps the name "accuracy". A string's spelling becomes the metric's name (the log key).
MetricPtr get(const nlohmann::json& spec, const std::string& path = "metrics", const std::string& loss_name = "");

/// {"class_name": ..., "config": get_config()}: what get() reads back.
nlohmann::json serialize(const Metric& metric);

/// The catalogue (class names, Keras function names and short names).
Registry<MetricPtr, ConfigReader&>& registry();

}  // namespace metrics
}  // namespace lighter
