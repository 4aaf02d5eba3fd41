#pragma once
/// Keras-style progress output: a live bar (bar, ETA, running loss and metrics) on a terminal, one line per
/// epoch otherwise (through the `lighter` logger).
#include <chrono>
#include <string>

#include "lighter/training/callback.h"

namespace lighter::training {

class ProgbarLogger : public Callback {
 public:
  /// verbose 1: bar on a terminal (one line per epoch when stderr is not a terminal); 2: one line per epoch.
  explicit ProgbarLogger(int verbose = 1);
  void on_train_begin(Logs& logs) override;
  void on_epoch_begin(int64_t epoch, Logs& logs) override;
  void on_train_batch_end(int64_t batch, Logs& logs) override;
  void on_epoch_end(int64_t epoch, Logs& logs) override;
  bool wants_batch_logs() override;

  /// "loss: 0.3012 - accuracy: 0.9000" in Keras' order (loss first, then the rest by name).
  static std::string format_logs(const Logs& logs);

 private:
  int verbose_;
  bool live_ = false;
  int64_t epochs_ = 0, steps_ = 0, seen_ = 0;
  std::chrono::steady_clock::time_point epoch_start_, last_render_;
};

}  // namespace lighter::training
