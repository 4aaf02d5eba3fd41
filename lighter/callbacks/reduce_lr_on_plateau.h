#pragma once
/// Keras' ReduceLROnPlateau: multiplies the learning rate by `factor` when a monitored value stops improving.
#include <cstdint>
#include <string>

#include <torch/arg.h>

#include "lighter/training/callback.h"

namespace lighter::callbacks {

/// ReduceLROnPlateau's arguments (Keras' names and defaults).
struct ReduceLROnPlateauOptions {
  TORCH_ARG(std::string, monitor) = "val_loss";
  /// New rate = rate * factor; must be < 1.
  TORCH_ARG(double, factor) = 0.1;
  /// Epochs without improvement before the rate is lowered.
  TORCH_ARG(int64_t, patience) = 10;
  TORCH_ARG(int, verbose) = 0;
  /// "auto", "min" or "max" (auto: see resolve_mode).
  TORCH_ARG(std::string, mode) = "auto";
  /// Smallest change that counts as an improvement.
  TORCH_ARG(double, min_delta) = 1e-4;
  /// Epochs to wait after a reduction before counting again.
  TORCH_ARG(int64_t, cooldown) = 0;
  /// Lower bound of the learning rate.
  TORCH_ARG(double, min_lr) = 0.0;
};

/// Keras' ReduceLROnPlateau. Like Keras 3, it puts the epoch's learning rate (before any reduction) into the epoch
/// logs as "learning_rate". It changes the rate through the model's trainer (model().trainer().optimizer()).
class ReduceLROnPlateau : public training::Callback {
 public:
  explicit ReduceLROnPlateau(ReduceLROnPlateauOptions options = {});
  void on_train_begin(training::Logs& logs) override;
  void on_epoch_end(int64_t epoch, training::Logs& logs) override;
  training::CallbackState get_state() const override;
  void set_state(const training::CallbackState& state) override;

  const ReduceLROnPlateauOptions& options() const { return options_; }
  /// The resolved mode, "min" or "max".
  const std::string& mode() const { return mode_; }

 private:
  void reset();
  ReduceLROnPlateauOptions options_;
  std::string mode_;
  double best_ = 0;
  int64_t wait_ = 0, cooldown_counter_ = 0;
};

}  // namespace lighter::callbacks
