#pragma once
/// Keras' TensorBoard callback: epoch (and optionally batch) scalars as TensorBoard event files.
#include <cstdint>
#include <memory>
#include <string>

#include <torch/arg.h>

#include "lighter/core/event_file.h"
#include "lighter/training/callback.h"

namespace lighter::callbacks {

/// TensorBoard's arguments (Keras' names and defaults). Only scalars are written: the arguments for graphs,
/// histograms, images, profiling and embeddings exist so Keras configs read, and accept their "off" values only
/// (write_graph is accepted either way, as Keras' default is true, but no graph is written).
struct TensorBoardOptions {
  TensorBoardOptions() = default;
  explicit TensorBoardOptions(std::string log_dir) : log_dir_(std::move(log_dir)) {}
  /// The folder of the run: scalars of training go to `<log_dir>/train`, of validation to `<log_dir>/validation`.
  TORCH_ARG(std::string, log_dir) = "logs";
  /// Must be 0 (no weight histograms).
  TORCH_ARG(int64_t, histogram_freq) = 0;
  /// Accepted and ignored: no graph is written.
  TORCH_ARG(bool, write_graph) = true;
  /// Must be false (no weight images).
  TORCH_ARG(bool, write_images) = false;
  /// Must be false.
  TORCH_ARG(bool, write_steps_per_second) = false;
  /// 0 for Keras' "epoch" (epoch scalars only); N > 0 also writes `batch_<name>` scalars every N training batches
  /// to the train writer, at step = the number of training batches of this fit so far (1-based, as Keras).
  TORCH_ARG(int64_t, update_freq) = 0;
  /// Must be 0 (no profiling).
  TORCH_ARG(int64_t, profile_batch) = 0;
  /// Must be 0 (no embedding projector data).
  TORCH_ARG(int64_t, embeddings_freq) = 0;
};

/// Keras' TensorBoard, scalars only, written without TensorFlow: at each epoch end, the logs without a `val_`
/// prefix go to the train writer as `epoch_<name>` (`epoch_loss`, `epoch_accuracy`, `epoch_learning_rate` when a
/// callback before this one put "learning_rate" in the logs) and the `val_` ones, prefix dropped, to the validation
/// writer (`epoch_loss`, ...), at step = the epoch index (0-based, as Keras). Both files are flushed at each epoch
/// end, so a crash loses at most the epoch in progress. Each fit adds new event files; TensorBoard reads them all.
/// Values are stored as 32-bit floats (TensorBoard's simple_value).
class TensorBoard : public training::Callback {
 public:
  explicit TensorBoard(TensorBoardOptions options = {});
  void on_train_begin(training::Logs& logs) override;
  void on_train_batch_end(int64_t batch, training::Logs& logs) override;
  void on_epoch_end(int64_t epoch, training::Logs& logs) override;
  void on_train_end(training::Logs& logs) override;
  bool wants_batch_logs() override;

  const TensorBoardOptions& options() const { return options_; }
  /// The event file of the train writer ("" before it exists).
  std::string train_file() const { return train_ ? train_->path() : ""; }
  /// The event file of the validation writer ("" before the first validation logs).
  std::string validation_file() const { return validation_ ? validation_->path() : ""; }

 private:
  TensorBoardOptions options_;
  std::unique_ptr<EventFileWriter> train_, validation_;
  int64_t global_batch_ = 0;
};

}  // namespace lighter::callbacks
