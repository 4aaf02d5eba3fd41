#pragma once
/// The callback catalogue: Keras class names -> built-in callbacks, read from and written to JSON.
#include <string>

#include <nlohmann/json.hpp>

#include "lighter/core/json.h"
#include "lighter/core/registry.h"
#include "lighter/training/callback.h"

namespace lighter::callbacks {

/// Factories take the strict reader of the callback's "config" and the folder that relative file paths
/// (CSVLogger's filename, ModelCheckpoint's filepath, TensorBoard's log_dir) resolve against ("" leaves them as given).
using CallbackRegistry = Registry<training::CallbackPtr, ConfigReader&, const std::string&>;

/// The built-in callbacks: EarlyStopping, ReduceLROnPlateau, CSVLogger, TerminateOnNaN, ModelCheckpoint, TensorBoard.
/// LearningRateScheduler and LambdaCallback are listed too, but take C++ functions: asking for them from JSON is a
/// ConfigError saying so.
const CallbackRegistry& registry();

/// Builds a callback from a Keras-style spec ({"class_name": ..., "config": {...}} or a bare name). Unknown keys,
/// bad values and unknown classes are ConfigErrors naming their JSON path under `path`. Relative file paths resolve
/// against `base_dir` when it is not empty.
training::CallbackPtr from_json(const nlohmann::json& spec, const std::string& path, const std::string& base_dir = "");

/// The spec of a built-in callback ({"class_name", "config"} with every argument); ConfigError for others
/// (LambdaCallback, LearningRateScheduler, user classes).
nlohmann::json to_json(const training::Callback& callback);

}  // namespace lighter::callbacks
