#pragma once
/// The Trainer: Keras' compile / fit / evaluate / predict over a model, with batching by index from contiguous
/// tensors, losses (softmax/sigmoid fused into crossentropy), metrics, callbacks and device moves.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/types.h>

#include "lighter/layers/activations.h"
#include "lighter/models/model.h"
#include "lighter/training/callback.h"
#include "lighter/training/losses.h"
#include "lighter/training/metrics.h"
#include "lighter/training/optimizers.h"

namespace lighter::training {

/// Validation inputs and targets.
using ValidationData = std::optional<std::pair<torch::Tensor, torch::Tensor>>;
/// Class id -> weight.
using ClassWeight = std::map<int64_t, double>;

/// Keras' fit arguments.
struct FitOptions {
  TORCH_ARG(int64_t, epochs) = 1;
  TORCH_ARG(int64_t, batch_size) = 32;
  TORCH_ARG(bool, shuffle) = true;
  /// Keras' semantics: the last fraction of the samples (before shuffling) is held out for validation.
  TORCH_ARG(double, validation_split) = 0.0;
  /// Explicit validation data (x, y); takes precedence over validation_split.
  TORCH_ARG(ValidationData, validation_data) = std::nullopt;
  /// Weight of each class in the loss (class id -> weight).
  TORCH_ARG(ClassWeight, class_weight) = {};
  /// Weight of each training sample in the loss ([N]).
  TORCH_ARG(torch::Tensor, sample_weight) = {};
  TORCH_ARG(int64_t, initial_epoch) = 0;
  /// 0 silent, 1 progress bar (one line per epoch when not a terminal), 2 one line per epoch.
  TORCH_ARG(int, verbose) = 1;
  TORCH_ARG(std::vector<CallbackPtr>, callbacks) = {};
};

/// Keras' evaluate arguments.
struct EvaluateOptions {
  TORCH_ARG(int64_t, batch_size) = 32;
  TORCH_ARG(torch::Tensor, sample_weight) = {};
  TORCH_ARG(std::vector<CallbackPtr>, callbacks) = {};
};

/// Owns the training loop of one compiled model.
class Trainer {
 public:
  Trainer(models::ModelImpl& model, optimizers::OptimizerSpec optimizer, losses::LossPtr loss,
          std::vector<metrics::MetricPtr> metrics);

  History fit(const torch::Tensor& x, const torch::Tensor& y, const FitOptions& options);
  Logs evaluate(const torch::Tensor& x, const torch::Tensor& y, const EvaluateOptions& options);
  torch::Tensor predict(const torch::Tensor& x, int64_t batch_size = 32);

  /// One optimisation step on a batch already on the model's device; returns the (undetached) loss.
  torch::Tensor train_step(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& sample_weight = {});

  /// The optimizer (created on first use, once the model's weights exist).
  optimizers::Optimizer& optimizer();
  const losses::Loss& loss() const { return *loss_; }
  const std::vector<metrics::MetricPtr>& metrics() const { return metrics_; }
  const optimizers::OptimizerSpec& optimizer_spec() const { return optimizer_spec_; }
  /// True when the model's final softmax/sigmoid is folded into the loss (the numerically stable path).
  bool fused_activation() const { return fused_; }

 private:
  torch::Device device() const;
  Logs run_evaluation(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& sample_weight,
                      int64_t batch_size, CallbackList& callbacks);
  void check_data(const torch::Tensor& x, const torch::Tensor& y, const std::string& what) const;

  models::ModelImpl& model_;
  optimizers::OptimizerSpec optimizer_spec_;
  std::unique_ptr<optimizers::Optimizer> optimizer_;
  losses::LossPtr loss_, loss_for_training_;
  std::vector<metrics::MetricPtr> metrics_;
  bool fused_ = false;
  activations::Function fused_fn_ = nullptr;
  // Running sums of the epoch's loss, kept on the device so the loop never waits for it.
  torch::Tensor loss_sum_;
  double loss_count_ = 0;
};

}  // namespace lighter::training
