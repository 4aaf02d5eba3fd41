#pragma once
/// Keras losses: the built-in catalogue, the Keras reduction ("sum_over_batch_size"), sample weights and masks.
#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lighter/core/json.h"
#include "lighter/core/registry.h"

namespace lighter {
namespace losses {

/// A Keras loss. per_sample gives one value per sample (and per remaining position for sequence outputs),
/// reduced the Keras way ("sum_over_batch_size").
class Loss {
 public:
  virtual ~Loss() = default;
  /// Keras' function name, e.g. "sparse_categorical_crossentropy" (resolves "accuracy" and names logs).
  virtual std::string name() const = 0;
  /// Keras class name, e.g. "SparseCategoricalCrossentropy".
  virtual std::string class_name() const = 0;
  /// Unreduced loss: y_pred [N, C] -> [N]; y_pred [N, T, C] -> [N, T] (averaged over the last axis as Keras does).
  /// A rank-1 y_pred [N] is read as [N, 1].
  virtual torch::Tensor per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const = 0;
  /// Reduced loss. sample_weight: undefined, [N] (or broadcastable to per_sample's shape). mask: undefined or
  /// bool/float of per_sample's shape; with a mask the result is sum(values*w*mask)/sum(mask) (valid positions only).
  /// Without a mask: sum(values*w)/numel(values) (Keras "sum_over_batch_size"); reduction "sum" gives the sum.
  torch::Tensor operator()(const torch::Tensor& y_pred, const torch::Tensor& y_true,
                           const torch::Tensor& sample_weight = {}, const torch::Tensor& mask = {}) const;
  /// Keras get_config: exactly the constructor arguments (name, reduction, and the loss' own).
  virtual nlohmann::json get_config() const;
  /// Which output activation this loss can fuse ("softmax" for categorical/sparse CE, "sigmoid" for binary CE,
  /// "" otherwise) when the model's last activation is that one and from_logits is false.
  virtual std::string fusable_activation() const { return ""; }
  /// A copy of this loss that takes logits (from_logits = true); nullptr if it has no logits form.
  virtual std::shared_ptr<Loss> with_logits() const { return nullptr; }

  /// The configured name (Keras' `name` argument; defaults to the Keras class default, e.g. "huber_loss").
  const std::string& config_name() const { return config_name_; }
  /// "sum_over_batch_size" or "sum".
  const std::string& reduction() const { return reduction_; }

 protected:
  Loss(std::string config_name, std::string reduction);
  /// The unweighted, unmasked "sum_over_batch_size" loss in one fused ATen call, for losses that have one (sparse
  /// categorical cross-entropy: cross_entropy / nll_loss, whose backward is cheaper than per_sample's ops); undefined
  /// when the loss has none or the inputs need per_sample's checks (operator() then reduces per_sample).
  virtual torch::Tensor fused_mean(const torch::Tensor& y_pred, const torch::Tensor& y_true) const { return {}; }

 private:
  std::string config_name_;
  std::string reduction_;
  bool sum_ = false;  // reduction_ == "sum", read every step
};
using LossPtr = std::shared_ptr<Loss>;

/// The Keras default reduction.
inline constexpr const char* kSumOverBatchSize = "sum_over_batch_size";

/// mean((y_pred - y_true)^2, axis=-1).
class MeanSquaredError : public Loss {
 public:
  explicit MeanSquaredError(std::string reduction = kSumOverBatchSize, std::string name = "mean_squared_error");
  std::string name() const override { return "mean_squared_error"; }
  std::string class_name() const override { return "MeanSquaredError"; }
  torch::Tensor per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
};

/// mean(|y_pred - y_true|, axis=-1).
class MeanAbsoluteError : public Loss {
 public:
  explicit MeanAbsoluteError(std::string reduction = kSumOverBatchSize, std::string name = "mean_absolute_error");
  std::string name() const override { return "mean_absolute_error"; }
  std::string class_name() const override { return "MeanAbsoluteError"; }
  torch::Tensor per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
};

/// 100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7), axis=-1).
class MeanAbsolutePercentageError : public Loss {
 public:
  explicit MeanAbsolutePercentageError(std::string reduction = kSumOverBatchSize,
                                       std::string name = "mean_absolute_percentage_error");
  std::string name() const override { return "mean_absolute_percentage_error"; }
  std::string class_name() const override { return "MeanAbsolutePercentageError"; }
  torch::Tensor per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
};

/// mean(0.5 e^2 if |e| <= delta else delta |e| - 0.5 delta^2, axis=-1), e = y_pred - y_true.
class Huber : public Loss {
 public:
  explicit Huber(double delta = 1.0, std::string reduction = kSumOverBatchSize, std::string name = "huber_loss");
  std::string name() const override { return "huber"; }
  std::string class_name() const override { return "Huber"; }
  torch::Tensor per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
  nlohmann::json get_config() const override;
  double delta() const { return delta_; }

 private:
  double delta_;
};

/// mean(log(cosh(e)), axis=-1), computed stably as e + softplus(-2e) - log 2.
class LogCosh : public Loss {
 public:
  explicit LogCosh(std::string reduction = kSumOverBatchSize, std::string name = "log_cosh");
  std::string name() const override { return "log_cosh"; }
  std::string class_name() const override { return "LogCosh"; }
  torch::Tensor per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
};

/// mean(-(t log p + (1 - t) log(1 - p)), axis=-1), t = y_true (1 - ls) + 0.5 ls; p clipped to [1e-7, 1 - 1e-7].
class BinaryCrossentropy : public Loss {
 public:
  explicit BinaryCrossentropy(bool from_logits = false, double label_smoothing = 0.0,
                              std::string reduction = kSumOverBatchSize, std::string name = "binary_crossentropy");
  std::string name() const override { return "binary_crossentropy"; }
  std::string class_name() const override { return "BinaryCrossentropy"; }
  torch::Tensor per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
  nlohmann::json get_config() const override;
  std::string fusable_activation() const override { return from_logits_ ? "" : "sigmoid"; }
  std::shared_ptr<Loss> with_logits() const override;
  bool from_logits() const { return from_logits_; }
  double label_smoothing() const { return label_smoothing_; }

 private:
  bool from_logits_;
  double label_smoothing_;
};

/// -sum(t log p, axis=-1), t = y_true (1 - ls) + ls / C; probabilities renormalized and clipped as Keras does.
class CategoricalCrossentropy : public Loss {
 public:
  explicit CategoricalCrossentropy(bool from_logits = false, double label_smoothing = 0.0,
                                   std::string reduction = kSumOverBatchSize,
                                   std::string name = "categorical_crossentropy");
  std::string name() const override { return "categorical_crossentropy"; }
  std::string class_name() const override { return "CategoricalCrossentropy"; }
  torch::Tensor per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
  nlohmann::json get_config() const override;
  std::string fusable_activation() const override { return from_logits_ ? "" : "softmax"; }
  std::shared_ptr<Loss> with_logits() const override;
  bool from_logits() const { return from_logits_; }
  double label_smoothing() const { return label_smoothing_; }

 private:
  bool from_logits_;
  double label_smoothing_;
};

/// -log p[label]; labels [N] or [N, 1] ([N, T] or [N, T, 1] for sequences), any dtype (cast to long).
class SparseCategoricalCrossentropy : public Loss {
 public:
  explicit SparseCategoricalCrossentropy(bool from_logits = false, std::string reduction = kSumOverBatchSize,
                                         std::string name = "sparse_categorical_crossentropy");
  std::string name() const override { return "sparse_categorical_crossentropy"; }
  std::string class_name() const override { return "SparseCategoricalCrossentropy"; }
  torch::Tensor per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
  nlohmann::json get_config() const override;
  std::string fusable_activation() const override { return from_logits_ ? "" : "softmax"; }
  std::shared_ptr<Loss> with_logits() const override;
  bool from_logits() const { return from_logits_; }

 protected:
  torch::Tensor fused_mean(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;

 private:
  /// DataError naming the first label outside [0, classes), if there is one.
  void throw_label_out_of_range(const torch::Tensor& labels, int64_t classes) const;
  bool from_logits_;
};

/// sum(t log(t / p), axis=-1) with t and p clipped to [1e-7, 1].
class KLDivergence : public Loss {
 public:
  explicit KLDivergence(std::string reduction = kSumOverBatchSize, std::string name = "kl_divergence");
  std::string name() const override { return "kl_divergence"; }
  std::string class_name() const override { return "KLDivergence"; }
  torch::Tensor per_sample(const torch::Tensor& y_pred, const torch::Tensor& y_true) const override;
};

/// From Keras' spellings: a string ("mse", "mean_squared_error", "MeanSquaredError", ...) or
/// {"class_name": "Huber", "config": {"delta": 2.0}} (Keras 3's "module"/"registered_name" are tolerated).
/// Unknown names -> ConfigError at `path` listing the supported ones; unknown config keys -> ConfigError naming the key.
LossPtr get(const nlohmann::json& spec, const std::string& path = "loss");

/// {"class_name": ..., "config": get_config()}: what get() reads back.
nlohmann::json serialize(const Loss& loss);

/// The catalogue (class_name -> factory from a config reader), registered explicitly in one function.
Registry<LossPtr, ConfigReader&>& registry();

}  // namespace losses

namespace detail {
/// Sample weights or a mask made to `like`'s shape and dtype: trailing singleton axes beyond its rank dropped,
/// missing trailing axes added, then broadcast. ShapeError (naming `what`) when they cannot match.
torch::Tensor broadcast_weights(torch::Tensor weights, const torch::Tensor& like, const std::string& what);
/// Keras' squeeze_or_expand_to_same_rank for a target: y_true [N] against y_pred [N, 1] is unsqueezed (and [N, 1]
/// against [N] squeezed); then the shapes must be equal, else ShapeError naming `who` and both shapes.
torch::Tensor align_target(const torch::Tensor& y_pred, const torch::Tensor& y_true, const std::string& who);
/// Sparse integer labels for y_pred [..., C]: labels [...] or [..., 1], cast to long; ShapeError otherwise.
torch::Tensor sparse_labels(const torch::Tensor& y_pred, const torch::Tensor& y_true, const std::string& who);
/// Reads Keras' "dtype" key of a loss or metric config: null, "float32" or a float32 DTypePolicy; else ConfigError.
void read_float32_dtype(ConfigReader& reader);
/// "[2, 3]" for error messages.
std::string shape_string(const torch::Tensor& t);
}  // namespace detail

}  // namespace lighter
