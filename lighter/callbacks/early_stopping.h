#pragma once
/// Keras' EarlyStopping: stops fit when a monitored value has stopped improving.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/types.h>

#include "lighter/training/callback.h"

namespace lighter::callbacks {

/// EarlyStopping's arguments (Keras' names and defaults).
struct EarlyStoppingOptions {
  TORCH_ARG(std::string, monitor) = "val_loss";
  /// Smallest change that counts as an improvement (its absolute value is used, as Keras).
  TORCH_ARG(double, min_delta) = 0.0;
  /// Epochs without improvement after which training stops.
  TORCH_ARG(int64_t, patience) = 0;
  TORCH_ARG(int, verbose) = 0;
  /// "auto", "min" or "max" (auto: see resolve_mode).
  TORCH_ARG(std::string, mode) = "auto";
  /// Training stops unless the monitored value beats this within `patience` epochs.
  TORCH_ARG(std::optional<double>, baseline) = std::nullopt;
  /// At the end of training, restore the weights of the best epoch (Keras 3: whenever a best epoch was seen,
  /// whether or not training was stopped early).
  TORCH_ARG(bool, restore_best_weights) = false;
  /// Epochs to wait before monitoring starts (a warm-up).
  TORCH_ARG(int64_t, start_from_epoch) = 0;
};

/// Keras' EarlyStopping.
class EarlyStopping : public training::Callback {
 public:
  explicit EarlyStopping(EarlyStoppingOptions options = {});
  void on_train_begin(training::Logs& logs) override;
  void on_epoch_end(int64_t epoch, training::Logs& logs) override;
  void on_train_end(training::Logs& logs) override;
  training::CallbackState get_state() const override;
  void set_state(const training::CallbackState& state) override;

  const EarlyStoppingOptions& options() const { return options_; }
  /// The resolved mode, "min" or "max".
  const std::string& mode() const { return mode_; }
  /// Epochs since the last improvement.
  int64_t wait() const { return wait_; }
  /// The epoch (0-based) at which training was stopped, 0 when it was not.
  int64_t stopped_epoch() const { return stopped_epoch_; }
  /// The epoch (0-based) of the best value.
  int64_t best_epoch() const { return best_epoch_; }
  /// The best value seen (nullopt before the first monitored epoch).
  std::optional<double> best() const { return best_; }

 private:
  bool is_improvement(double current, std::optional<double> reference) const;

  EarlyStoppingOptions options_;
  std::string mode_;
  double min_delta_;
  int64_t wait_ = 0, stopped_epoch_ = 0, best_epoch_ = 0;
  std::optional<double> best_;
  // Copies of the parameters and buffers at the best epoch, in named_parameters then named_buffers order.
  std::vector<torch::Tensor> best_weights_;
};

namespace detail {
/// Copies of a model's parameters and buffers (Keras' get_weights).
std::vector<torch::Tensor> copy_state(torch::nn::Module& model);
/// Writes copies made by copy_state back into the same model (Keras' set_weights).
void restore_state(torch::nn::Module& model, const std::vector<torch::Tensor>& state);
}  // namespace detail

}  // namespace lighter::callbacks
