#pragma once
/// Keras' ModelCheckpoint: saves the model or its weights every epoch or every N batches, optionally only when a
/// monitored value improves.
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <torch/arg.h>

#include "lighter/training/callback.h"

namespace lighter::callbacks {

/// ModelCheckpoint's arguments (Keras' names and defaults; `filepath` is required).
struct ModelCheckpointOptions {
  /// A path with Python format fields filled from `epoch` (1-based, as Keras), `batch` (1-based, when saving by
  /// batch) and the logs: "ckpt-{epoch:02d}-{val_loss:.3f}.weights.safetensors". With save_weights_only it must end
  /// in ".weights.safetensors" (Keras: ".weights.h5"); otherwise it names a model folder written by save_model
  /// (Keras: a ".keras" file).
  explicit ModelCheckpointOptions(std::string filepath) : filepath_(std::move(filepath)) {}
  TORCH_ARG(std::string, filepath);
  TORCH_ARG(std::string, monitor) = "val_loss";
  TORCH_ARG(int, verbose) = 0;
  /// Save only when `monitor` improves on the best value seen (a missing monitor skips the save with a warning).
  TORCH_ARG(bool, save_best_only) = false;
  TORCH_ARG(bool, save_weights_only) = false;
  /// "auto", "min" or "max" (auto: see resolve_mode).
  TORCH_ARG(std::string, mode) = "auto";
  /// 0 for Keras' "epoch" (save at each epoch end), else save every `save_freq` training batches.
  TORCH_ARG(int64_t, save_freq) = 0;
  /// With save_best_only: the value to beat at first (Keras' initial_value_threshold).
  TORCH_ARG(std::optional<double>, initial_value_threshold) = std::nullopt;
};

/// Keras' ModelCheckpoint. Each file is written atomically (a temporary file renamed over the target), so an
/// interrupted save never leaves a truncated checkpoint.
class ModelCheckpoint : public training::Callback {
 public:
  explicit ModelCheckpoint(ModelCheckpointOptions options);
  void on_train_begin(training::Logs& logs) override;
  void on_epoch_begin(int64_t epoch, training::Logs& logs) override;
  void on_epoch_end(int64_t epoch, training::Logs& logs) override;
  void on_train_batch_end(int64_t batch, training::Logs& logs) override;
  bool wants_batch_logs() override;
  training::CallbackState get_state() const override;
  void set_state(const training::CallbackState& state) override;

  const ModelCheckpointOptions& options() const { return options_; }
  /// The resolved mode, "min" or "max".
  const std::string& mode() const { return mode_; }
  /// The best monitored value so far (infinite before the first save with save_best_only).
  double best() const { return best_; }
  /// The path of the last save ("" before the first).
  const std::string& last_saved() const { return last_saved_; }

 private:
  void save(int64_t epoch, std::optional<int64_t> batch, const training::Logs& logs);
  ModelCheckpointOptions options_;
  std::string mode_;
  double best_ = 0;
  int64_t current_epoch_ = 0, last_batch_seen_ = -1, batches_since_save_ = 0;
  std::string last_saved_;
};

namespace detail {
/// Fills Python format fields ("{epoch:02d}", "{val_loss:.3f}", "{{" for a brace) in `templ` as str.format would,
/// with `epoch` and `batch` as integers and the logs as floats. A missing name or an unsupported spec is a
/// ConfigError naming the template.
std::string format_filepath(const std::string& templ, int64_t epoch, std::optional<int64_t> batch,
                            const training::Logs& logs);
}  // namespace detail

}  // namespace lighter::callbacks
