#include "lighter/callbacks/tensorboard.h"

#include <filesystem>
#include <utility>
#include <vector>

#include "lighter/core/error.h"

namespace lighter::callbacks {

namespace {

bool is_validation(const std::string& key) { return key.rfind("val_", 0) == 0; }

}  // namespace

TensorBoard::TensorBoard(TensorBoardOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  if (o.log_dir().empty()) throw ConfigError("log_dir", "must not be empty");
  if (o.histogram_freq() != 0)
    throw ConfigError("histogram_freq", "weight histograms are not supported; only 0 is accepted, got " +
                                            std::to_string(o.histogram_freq()));
  if (o.write_images())
    throw ConfigError("write_images", "weight images are not supported; only false is accepted");
  if (o.write_steps_per_second())
    throw ConfigError("write_steps_per_second", "steps per second are not written; only false is accepted");
  if (o.update_freq() < 0)
    throw ConfigError("update_freq", "expected \"epoch\" or a positive number of batches, got " +
                                         std::to_string(o.update_freq()));
  if (o.profile_batch() != 0)
    throw ConfigError("profile_batch", "profiling is not supported; only 0 is accepted, got " +
                                           std::to_string(o.profile_batch()));
  if (o.embeddings_freq() != 0)
    throw ConfigError("embeddings_freq", "embedding visualisation is not supported; only 0 is accepted, got " +
                                             std::to_string(o.embeddings_freq()));
}

void TensorBoard::on_train_begin(training::Logs&) {
  // A new pair of files per fit, as each Keras fit adds event files to the same run folders.
  train_.reset();
  validation_.reset();
  global_batch_ = 0;
  train_ = std::make_unique<EventFileWriter>((std::filesystem::path(options_.log_dir()) / "train").string());
}

bool TensorBoard::wants_batch_logs() { return options_.update_freq() > 0; }

void TensorBoard::on_train_batch_end(int64_t, training::Logs& logs) {
  ++global_batch_;
  if (options_.update_freq() <= 0 || !train_ || global_batch_ % options_.update_freq() != 0) return;
  std::vector<std::pair<std::string, float>> values;
  for (const auto& [name, value] : logs) values.emplace_back("batch_" + name, static_cast<float>(value));
  if (!values.empty()) train_->add_scalars(global_batch_, values);
}

void TensorBoard::on_epoch_end(int64_t epoch, training::Logs& logs) {
  if (!train_) throw Error("TensorBoard: on_epoch_end before on_train_begin");
  std::vector<std::pair<std::string, float>> train_values, val_values;
  for (const auto& [name, value] : logs) {
    if (is_validation(name))
      val_values.emplace_back("epoch_" + name.substr(4), static_cast<float>(value));
    else
      train_values.emplace_back("epoch_" + name, static_cast<float>(value));
  }
  if (!train_values.empty()) train_->add_scalars(epoch, train_values);
  if (!val_values.empty()) {
    // Created with the first validation logs, as Keras does: a run without validation has no validation folder.
    if (!validation_)
      validation_ =
          std::make_unique<EventFileWriter>((std::filesystem::path(options_.log_dir()) / "validation").string());
    validation_->add_scalars(epoch, val_values);
    validation_->flush();
  }
  train_->flush();
}

void TensorBoard::on_train_end(training::Logs&) {
  if (train_) train_->close();
  if (validation_) validation_->close();
}

}  // namespace lighter::callbacks
