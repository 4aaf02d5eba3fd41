#pragma once
/// The layer catalogue: Keras class name -> layer built from its config.
#include <string>

#include "lighter/core/registry.h"
#include "lighter/layers/layer.h"

namespace lighter::layers {

/// All built-in layers, registered in one place (registry.cpp).
Registry<LayerPtr, ConfigReader&>& registry();

/// Builds a layer from Keras' {"class_name": ..., "config": {...}} (Keras 3's module/registered_name/build_config
/// are tolerated). Unknown class -> ConfigError at `path`.class_name listing the supported layers; unknown config keys
/// -> ConfigError naming the key.
LayerPtr from_json(const nlohmann::json& spec, const std::string& path);
/// Same, for a path given as a literal.
// Without it, `from_json(spec, "path")` fails to compile with nlohmann-json >= 3.11.3 (Debian trixie): argument-
// dependent lookup also finds nlohmann's from_json(const json&, T (&)[N]), an exact match for the literal, which
// beats the std::string conversion. A non-template exact match wins over that template.
inline LayerPtr from_json(const nlohmann::json& spec, const char* path) {
  return layers::from_json(spec, std::string(path));
}

/// Keras' {"class_name", "config"} of a layer.
nlohmann::json to_json(const LayerImpl& layer);

}  // namespace lighter::layers
