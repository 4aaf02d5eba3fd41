#include "lighter/callbacks/monitor.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lighter/core/error.h"
#include "lighter/core/logging.h"

namespace lighter::callbacks {

torch::Tensor double_state(double value) { return torch::tensor(value, torch::kFloat64); }

double read_double_state(const training::CallbackState& state, const std::string& key, const std::string& who) {
  auto it = state.tensors.find(key);
  if (it == state.tensors.end() || it->second.numel() != 1 || it->second.scalar_type() != torch::kFloat64)
    throw Error(who + ": saved state has no float64 value '" + key + "'");
  return it->second.item<double>();
}

int64_t read_int_state(const training::CallbackState& state, const std::string& key, const std::string& who) {
  if (!state.values.is_object() || !state.values.contains(key) || !state.values[key].is_number_integer())
    throw Error(who + ": saved state has no integer '" + key + "'");
  return state.values[key].get<int64_t>();
}

std::string resolve_mode(const std::string& mode, const std::string& monitor) {
  if (mode == "min" || mode == "max") return mode;
  if (mode != "auto") throw ConfigError("mode", "expected 'auto', 'min' or 'max', got '" + mode + "'");
  std::string name = monitor.rfind("val_", 0) == 0 ? monitor.substr(4) : monitor;
  for (const char* up : {"acc", "auc", "precision", "recall", "r2"})
    if (name.find(up) != std::string::npos) return "max";
  return "min";
}

bool improves(const std::string& mode, double current, double reference, double min_delta) {
  // Keras: monitor_op(current - min_delta, best), with min_delta negated in min mode.
  return mode == "max" ? current - min_delta > reference : current + min_delta < reference;
}

std::optional<double> monitor_value(const training::Logs& logs, const std::string& monitor, const std::string& who) {
  auto it = logs.find(monitor);
  if (it != logs.end()) return it->second;
  std::string keys;
  for (const auto& kv : logs) keys += (keys.empty() ? "" : ",") + kv.first;
  logger()->warn("{} conditioned on metric `{}` which is not available. Available metrics are: {}", who, monitor, keys);
  return std::nullopt;
}

}  // namespace lighter::callbacks
