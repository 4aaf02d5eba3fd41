#include "lighter/training/progress.h"

#include <cstdio>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "lighter/core/logging.h"

namespace lighter::training {

ProgbarLogger::ProgbarLogger(int verbose) : verbose_(verbose) {}

std::string ProgbarLogger::format_logs(const Logs& logs) {
  std::string out;
  char buf[64];
  auto add = [&](const std::string& k, double v) {
    std::snprintf(buf, sizeof buf, "%.4f", v);
    out += (out.empty() ? "" : " - ") + k + ": " + buf;
  };
  auto it = logs.find("loss");
  if (it != logs.end()) add("loss", it->second);
  for (const auto& kv : logs)
    if (kv.first != "loss" && kv.first.rfind("val_", 0) != 0) add(kv.first, kv.second);
  for (const auto& kv : logs)
    if (kv.first.rfind("val_", 0) == 0) add(kv.first, kv.second);
  return out;
}

void ProgbarLogger::on_train_begin(Logs&) {
  epochs_ = params().value("epochs", 0);
  steps_ = params().value("steps", 0);
  live_ = verbose_ == 1 && ::isatty(STDERR_FILENO);
}

void ProgbarLogger::on_epoch_begin(int64_t epoch, Logs&) {
  epoch_start_ = last_render_ = std::chrono::steady_clock::now();
  seen_ = 0;
  if (live_) std::fprintf(stderr, "Epoch %lld/%lld\n", static_cast<long long>(epoch + 1), static_cast<long long>(epochs_));
}

bool ProgbarLogger::wants_batch_logs() {
  if (!live_) return false;
  // Redraw at most ten times a second: each redraw reads values back from the device.
  return std::chrono::steady_clock::now() - last_render_ > std::chrono::milliseconds(100);
}

void ProgbarLogger::on_train_batch_end(int64_t batch, Logs& logs) {
  seen_ = batch + 1;
  if (!live_ || logs.empty()) return;
  last_render_ = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(last_render_ - epoch_start_).count();
  double eta = seen_ > 0 ? elapsed / seen_ * (steps_ - seen_) : 0;
  const int width = 20;
  int filled = steps_ > 0 ? static_cast<int>(width * seen_ / steps_) : width;
  std::string bar;
  for (int i = 0; i < width; ++i) bar += i < filled ? "━" : "─";
  std::fprintf(stderr, "\r\033[K%lld/%lld %s ETA: %.0fs - %s", static_cast<long long>(seen_),
               static_cast<long long>(steps_), bar.c_str(), eta, format_logs(logs).c_str());
  std::fflush(stderr);
}

void ProgbarLogger::on_epoch_end(int64_t epoch, Logs& logs) {
  if (verbose_ == 0) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
  double per_step_ms = steps_ > 0 ? 1000.0 * elapsed / steps_ : 0;
  char per_step[32], head[128];
  if (per_step_ms >= 1) {
    std::snprintf(per_step, sizeof per_step, "%.0fms/step", per_step_ms);
  } else {
    std::snprintf(per_step, sizeof per_step, "%.0fus/step", per_step_ms * 1000);
  }
  std::snprintf(head, sizeof head, "%lld/%lld ━━━━━━━━━━━━━━━━━━━━ %.1fs %s", static_cast<long long>(steps_),
                static_cast<long long>(steps_), elapsed, per_step);
  if (live_) {
    std::fprintf(stderr, "\r\033[K%s - %s\n", head, format_logs(logs).c_str());
    std::fflush(stderr);
  } else {
    logger()->info("Epoch {}/{} - {:.1f}s {} - {}", epoch + 1, epochs_, elapsed, per_step, format_logs(logs));
  }
}

}  // namespace lighter::training
