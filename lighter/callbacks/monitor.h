#pragma once
/// Shared by the callbacks that watch a logged value (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint):
/// Keras' "auto"/"min"/"max" mode and the missing-key warning.
#include <optional>
#include <string>

#include "lighter/training/callback.h"

namespace lighter::callbacks {

/// Resolves Keras' mode for `monitor`: "min" or "max" are kept; "auto" is "max" when the name (without "val_")
/// contains "acc", "auc", "precision", "recall" or "r2", else "min". Any other mode is a ConfigError.
std::string resolve_mode(const std::string& mode, const std::string& monitor);

/// True when `current` beats `reference` by more than `min_delta` in `mode` ("min" or "max").
bool improves(const std::string& mode, double current, double reference, double min_delta = 0.0);

/// `logs[monitor]`, or nullopt after a warning on the `lighter` logger listing the available keys (as Keras).
/// Saved callback state helpers: a double kept as a float64 scalar tensor (exact, and NaN/infinity survive),
/// and its reader, which throws Error naming `who` and `key` when it is missing or not a scalar.
torch::Tensor double_state(double value);
double read_double_state(const training::CallbackState& state, const std::string& key, const std::string& who);
/// An integer from state.values; Error naming `who` and `key` when it is missing or not an integer.
int64_t read_int_state(const training::CallbackState& state, const std::string& key, const std::string& who);

std::optional<double> monitor_value(const training::Logs& logs, const std::string& monitor, const std::string& who);

}  // namespace lighter::callbacks
