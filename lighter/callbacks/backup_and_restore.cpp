#include "lighter/callbacks/backup_and_restore.h"

#include <filesystem>

#include <spdlog/spdlog.h>

#include "lighter/core/error.h"
#include "lighter/core/logging.h"
#include "lighter/models/model.h"
#include "lighter/training/trainer.h"

namespace lighter::callbacks {

namespace fs = std::filesystem;

BackupAndRestore::BackupAndRestore(BackupAndRestoreOptions options) : options_(std::move(options)) {
  if (options_.backup_dir().empty()) throw ConfigError("backup_dir", "must not be empty");
}

std::string BackupAndRestore::latest_path() const { return options_.backup_dir() + "/checkpoint.safetensors"; }
std::string BackupAndRestore::previous_path() const { return options_.backup_dir() + "/checkpoint.prev.safetensors"; }

void BackupAndRestore::on_epoch_end(int64_t, training::Logs&) {
  std::error_code ec;
  fs::create_directories(options_.backup_dir(), ec);
  if (ec) throw DataError(options_.backup_dir(), "cannot create folder: " + ec.message());
  // The latest becomes the previous one (a rename, atomic) before the new one is written (atomically too): at
  // every instant at least one complete checkpoint exists.
  if (options_.double_checkpoint() && fs::exists(latest_path())) {
    fs::rename(latest_path(), previous_path(), ec);
    if (ec) throw DataError(previous_path(), "cannot keep the previous checkpoint: " + ec.message());
  }
  model().trainer().save_checkpoint(latest_path());
}

void BackupAndRestore::on_train_end(training::Logs&) {
  if (!options_.delete_checkpoint()) return;
  std::error_code ec;
  fs::remove(latest_path(), ec);
  fs::remove(previous_path(), ec);
  // As Keras, the folder goes too when nothing else is in it.
  if (fs::is_directory(options_.backup_dir(), ec) && fs::is_empty(options_.backup_dir(), ec))
    fs::remove(options_.backup_dir(), ec);
}

std::optional<int64_t> BackupAndRestore::restore(training::Trainer& trainer) {
  bool latest = fs::exists(latest_path());
  bool previous = options_.double_checkpoint() && fs::exists(previous_path());
  if (!latest && !previous) return std::nullopt;
  if (latest) {
    try {
      int64_t epoch = trainer.load_checkpoint(latest_path());
      logger()->info("resuming from {} at epoch {}", latest_path(), epoch + 1);
      return epoch;
    } catch (const DataError& e) {
      if (!previous) throw;
      logger()->warn("cannot restore the latest checkpoint ({}); trying the previous one", e.what());
    }
  }
  int64_t epoch = trainer.load_checkpoint(previous_path());
  logger()->info("resuming from {} at epoch {}", previous_path(), epoch + 1);
  return epoch;
}

}  // namespace lighter::callbacks
