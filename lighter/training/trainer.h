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
#include "lighter/training/mixed_precision.h"
#include "lighter/training/optimizers.h"

namespace lighter::training {

/// Several tensors: the inputs (or targets) of a model with several inputs (or outputs), in the model's order.
using Tensors = std::vector<torch::Tensor>;

/// Validation inputs and targets: one tensor each, or one per model input and output.
struct ValidationData {
  Tensors x, y;
  ValidationData(torch::Tensor x, torch::Tensor y) : x{std::move(x)}, y{std::move(y)} {}
  ValidationData(Tensors x, Tensors y) : x(std::move(x)), y(std::move(y)) {}
  ValidationData(const std::pair<torch::Tensor, torch::Tensor>& xy) : ValidationData(xy.first, xy.second) {}
};
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
  TORCH_ARG(std::optional<ValidationData>, validation_data) = std::nullopt;
  /// Weight of each class in the loss (class id -> weight).
  TORCH_ARG(ClassWeight, class_weight) = {};
  /// Weight of each training sample in the loss ([N]).
  TORCH_ARG(torch::Tensor, sample_weight) = {};
  TORCH_ARG(int64_t, initial_epoch) = 0;
  /// 0 silent, 1 progress bar (one line per epoch when not a terminal), 2 one line per epoch.
  TORCH_ARG(int, verbose) = 1;
  TORCH_ARG(std::vector<CallbackPtr>, callbacks) = {};
  /// Batches per epoch; 0 for one pass over the data. With a count, an epoch goes on from where the previous one
  /// stopped, and the data is reshuffled each time it has all been seen (so epochs may be shorter or longer than
  /// the data; Keras stops an epoch that runs out of data, here the data wraps around).
  TORCH_ARG(int64_t, steps_per_epoch) = 0;
  /// Batches of the validation data per validation; 0 for all of it.
  TORCH_ARG(int64_t, validation_steps) = 0;
  /// Validate after every `validation_freq`-th epoch (Keras' integer validation_freq).
  TORCH_ARG(int64_t, validation_freq) = 1;
  /// Keras' dtype policy for the forward passes of fit (and its validation): mixed_bfloat16 or mixed_float16 run
  /// them under ATen's autocast with float32 weights; mixed_float16 adds dynamic loss scaling (a step whose
  /// gradients overflow is skipped and the scale halved). CPU takes mixed_bfloat16 (and mixed_float16 where the
  /// LibTorch in use has CPU float16 autocast); CUDA both. An unsupported one is a ConfigError before training.
  TORCH_ARG(Precision, dtype_policy) = Precision::float32;
};

/// Keras' evaluate arguments.
struct EvaluateOptions {
  TORCH_ARG(int64_t, batch_size) = 32;
  TORCH_ARG(torch::Tensor, sample_weight) = {};
  TORCH_ARG(std::vector<CallbackPtr>, callbacks) = {};
};

/// What compile gives one model output: its loss (null: the output is not trained, Keras' None), the loss' weight
/// in the total, and its metrics.
struct OutputSpec {
  losses::LossPtr loss;
  double loss_weight = 1.0;
  std::vector<metrics::MetricPtr> metrics;
};

/// Owns the training loop of one compiled model.
///
/// Masks: the mask a model leaves on an output (an Embedding with mask_zero feeding a recurrent layer with
/// return_sequences, say) reaches that output's loss and metrics, which then average over the valid positions
/// only (sum over valid / count of valid), so padding a batch to any length changes neither loss nor gradients.
///
/// Several outputs (Functional models): each output has its own loss, weight and metrics; the loss logged and
/// minimised is the weighted sum (plus regularization). Logs then hold "loss", "<output>_loss" per output and
/// "<output>_<metric>" per metric, as Keras 3 names them; with one output they are "loss" and "<metric>".
class Trainer {
 public:
  Trainer(models::ModelImpl& model, optimizers::OptimizerSpec optimizer, losses::LossPtr loss,
          std::vector<metrics::MetricPtr> metrics);
  /// One OutputSpec per model output, in the model's output order.
  Trainer(models::ModelImpl& model, optimizers::OptimizerSpec optimizer, std::vector<OutputSpec> outputs);

  History fit(const torch::Tensor& x, const torch::Tensor& y, const FitOptions& options);
  History fit(const Tensors& x, const Tensors& y, const FitOptions& options);
  Logs evaluate(const torch::Tensor& x, const torch::Tensor& y, const EvaluateOptions& options);
  Logs evaluate(const Tensors& x, const Tensors& y, const EvaluateOptions& options);
  torch::Tensor predict(const torch::Tensor& x, int64_t batch_size = 32);

  /// One optimisation step on a batch already on the model's device; returns the (undetached) total loss.
  torch::Tensor train_step(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& sample_weight = {});
  torch::Tensor train_step(const Tensors& x, const Tensors& y, const torch::Tensor& sample_weight = {});

  /// Keras' compute_loss: the total loss of a batch (weighted per-output losses over valid positions, plus the
  /// regularization penalties), undetached, with the model in its current mode; nothing is updated.
  torch::Tensor compute_loss(const Tensors& x, const Tensors& y, const torch::Tensor& sample_weight = {});

  /// The optimizer (created on first use, once the model's weights exist).
  optimizers::Optimizer& optimizer();
  /// The loss of the first output that has one.
  const losses::Loss& loss() const;
  /// Every output's metrics, output by output.
  std::vector<metrics::MetricPtr> metrics() const;
  const std::vector<OutputSpec>& outputs() const { return outputs_; }
  const optimizers::OptimizerSpec& optimizer_spec() const { return optimizer_spec_; }
  /// True when the (first) output's final softmax/sigmoid is folded into its loss (the numerically stable path).
  bool fused_activation() const { return !heads_.empty() && heads_.front().fused; }

  /// Writes a resumable checkpoint of the running fit to `file`, atomically (one safetensors file with a checksum):
  /// the weights, the optimizer's state and update count, the epoch to continue at, the state of every callback
  /// (History included), the random generators (CPU, CUDA and the layers' own) and the trainer's counters
  /// (gradient accumulation, data position). Valid only inside fit at the end of an epoch (from on_epoch_end,
  /// as BackupAndRestore does); Error otherwise.
  void save_checkpoint(const std::string& file);
  /// Restores a checkpoint written by save_checkpoint into the running fit (after on_train_begin) and returns the
  /// epoch to continue at. The file is read and checked (checksum, architecture, optimizer, callbacks, tensor
  /// shapes) before anything changes; a bad file is a DataError naming it.
  int64_t load_checkpoint(const std::string& file);
  /// The dynamic loss scaler of mixed_float16 training (null before such a fit).
  const LossScaler* loss_scaler() const { return scaler_.get(); }
  /// A checkpoint's summary without loading it: {"epoch", "iterations", "stopped", "model", "optimizer", ...}.
  static nlohmann::json checkpoint_info(const std::string& file);

 private:
  torch::Device device() const;
  Logs run_evaluation(const Tensors& x, const Tensors& y, const torch::Tensor& sample_weight, int64_t batch_size,
                      CallbackList& callbacks, int64_t max_steps = 0);
  void check_data(const Tensors& x, const Tensors& y, const std::string& what) const;
  /// The model's outputs for a batch, with the losses (weighted total and per output) and the predictions (after
  /// the final activation, detached) that metrics take.
  struct StepResult {
    torch::Tensor loss;
    Tensors head_losses, predictions, masks;
  };
  StepResult run_batch(const Tensors& x, const Tensors& y, const torch::Tensor& sample_weight, bool training);
  void reset_metrics();
  void update_metrics(const StepResult& r, const Tensors& y);
  /// Adds the epoch's metric results (and per-output losses) to `logs`.
  void write_metric_logs(Logs& logs, const std::vector<torch::Tensor>& head_loss_sums, double count) const;

  // One per model output: what compile gave it, and how the trainer runs it.
  struct Head {
    losses::LossPtr loss, training_loss;  // training_loss takes logits when `fused`
    double weight = 1.0;
    std::vector<metrics::MetricPtr> metrics;
    bool fused = false;
    activations::Function fused_fn = nullptr;
    std::string loss_key;                  // "<output>_loss" (several outputs only)
    std::vector<std::string> metric_keys;  // "<metric>" or "<output>_<metric>"
  };

  models::ModelImpl& model_;
  optimizers::OptimizerSpec optimizer_spec_;
  std::unique_ptr<optimizers::Optimizer> optimizer_;
  std::vector<OutputSpec> outputs_;
  std::vector<Head> heads_;
  std::vector<bool> pre_activation_;  // per output: ask the model for logits (fused heads)
  // Running sums of the epoch's loss (total and per output), kept on the device so the loop never waits for it.
  torch::Tensor loss_sum_;
  std::vector<torch::Tensor> head_loss_sums_;
  double loss_count_ = 0;
  // Gradient accumulation (the optimizer's gradient_accumulation_steps): batches per update, batches so far.
  int64_t accumulation_steps_ = 1;
  int64_t accumulated_ = 0;
  // Mixed precision of the fit in progress, and the loss scaler (kept across fits, as Keras keeps its optimizer's).
  Precision precision_ = Precision::float32;
  std::unique_ptr<LossScaler> scaler_;
  torch::Device device_ = torch::kCPU;  // the model's device during fit
  std::vector<torch::Tensor> trainable_;  // the optimizer's parameters, for the loss scaler

  // What save_checkpoint needs from the fit in progress (null outside fit).
  struct FitState {
    std::vector<CallbackPtr> stateful;  // the user's callbacks and History, in order
    int64_t next_epoch = 0;
    bool in_epoch_end = false;
    torch::Tensor order;  // the data order in use with steps_per_epoch (undefined: none drawn yet)
    int64_t cursor = 0;   // position in it
    bool drawn = false;   // whether an order (or, unshuffled, a pass) has started
  };
  FitState* fit_state_ = nullptr;
};

}  // namespace lighter::training
