#pragma once
/// Keras' BackupAndRestore: a resumable checkpoint at the end of every epoch, from which a fit that was interrupted
/// (killed, crashed, preempted) continues when it is started again with the same callback.
#include <cstdint>
#include <optional>
#include <string>

#include <torch/arg.h>

#include "lighter/training/callback.h"

namespace lighter::training {
class Trainer;
}

namespace lighter::callbacks {

/// BackupAndRestore's arguments (Keras' names and defaults).
struct BackupAndRestoreOptions {
  explicit BackupAndRestoreOptions(std::string backup_dir) : backup_dir_(std::move(backup_dir)) {}
  /// The folder of the checkpoint (`checkpoint.safetensors`, and `checkpoint.prev.safetensors` when doubled).
  TORCH_ARG(std::string, backup_dir);
  /// Delete the checkpoint when fit ends normally (Keras' default). An interrupted fit keeps it.
  TORCH_ARG(bool, delete_checkpoint) = true;
  /// Keep the previous checkpoint too, and restore from it when the latest cannot be read.
  TORCH_ARG(bool, double_checkpoint) = false;
};

/// Keras' BackupAndRestore, saving what Trainer::save_checkpoint saves (more than Keras: callback and random
/// generator states too, so that a resumed run on CPU ends with exactly the weights of an uninterrupted one).
/// Saves at the end of every epoch (Keras' save_freq="epoch"; a number of batches is not supported). The trainer
/// runs it after every other callback of the epoch and restores from it right after on_train_begin.
class BackupAndRestore : public training::Callback {
 public:
  explicit BackupAndRestore(BackupAndRestoreOptions options);
  void on_epoch_end(int64_t epoch, training::Logs& logs) override;
  void on_train_end(training::Logs& logs) override;

  /// Restores the latest checkpoint of backup_dir into the running fit and returns the epoch to continue at;
  /// nullopt when there is none. With double_checkpoint, an unreadable latest checkpoint falls back to the
  /// previous one (with a warning); otherwise its DataError propagates.
  std::optional<int64_t> restore(training::Trainer& trainer);

  const BackupAndRestoreOptions& options() const { return options_; }
  std::string latest_path() const;
  std::string previous_path() const;

 private:
  BackupAndRestoreOptions options_;
};

}  // namespace lighter::callbacks
