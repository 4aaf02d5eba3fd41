#pragma once
/// Keras' CSVLogger: one CSV row per epoch with the epoch's logs.
#include <optional>
#include <string>
#include <vector>

#include "lighter/training/callback.h"

namespace lighter::callbacks {

/// Keras' CSVLogger(filename, separator=",", append=False). The columns are `epoch` (0-based, as Keras) and the
/// first epoch's keys, sorted; as Keras, when that epoch has no `val_` key, `val_<key>` columns are added too (they
/// hold "NA" until validation logs appear). Values are written in the shortest form that reads back exactly; a
/// key missing in a later epoch is written "NA". Each row goes to the file in one write and is flushed, so a crash
/// leaves whole lines only.
class CSVLogger : public training::Callback {
 public:
  explicit CSVLogger(std::string filename, std::string separator = ",", bool append = false);
  void on_train_begin(training::Logs& logs) override;
  void on_epoch_end(int64_t epoch, training::Logs& logs) override;
  void on_train_end(training::Logs& logs) override;
  /// The columns and every line written so far: a resumed fit rewrites the file with them (dropping a row a crash
  /// may have left after the checkpoint) and goes on appending.
  training::CallbackState get_state() const override;
  void set_state(const training::CallbackState& state) override;
  ~CSVLogger() override;

  const std::string& filename() const { return filename_; }
  const std::string& separator() const { return separator_; }
  bool append() const { return append_; }

 private:
  void write_line(const std::string& line);
  void close();
  std::string filename_, separator_;
  bool append_;
  bool write_header_ = true;
  int fd_ = -1;
  std::optional<std::vector<std::string>> keys_;
  std::string written_;  // the file's content as this logger knows it
};

}  // namespace lighter::callbacks
