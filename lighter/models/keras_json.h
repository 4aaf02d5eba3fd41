#pragma once
/// Models from Keras' `model.to_json()` (Keras 2 and Keras 3 flavours) and from Lighter's compact form.
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "lighter/models/model.h"

namespace lighter::models {

/// Builds a model from Keras JSON. `path` prefixes every error (e.g. "model"). Supported: Sequential (config as
/// {"name", "layers", ...} or Keras 2.2's bare list of layers) and Functional (Keras 2's "Model" too; see
/// functional_from_json), and the registered classes (Ensemble). Other classes -> ConfigError listing the
/// supported.
ModelPtr model_from_json(const nlohmann::json& spec, const std::string& path = "model");

/// Builds a model of another class from its "config" (the object under "config"); `path` names that object.
using ModelBuilder = std::function<ModelPtr(const nlohmann::json& config, const std::string& path)>;
/// Makes model_from_json build `class_name` (Ensemble registers itself this way). Registering a name again
/// replaces its builder; Sequential and Functional cannot be replaced.
void register_model_class(const std::string& class_name, ModelBuilder builder);

/// Reads a model file holding Keras JSON (`model.to_json()` output, or a Lighter model.json).
ModelPtr model_from_file(const std::string& file);

}  // namespace lighter::models
