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

/// Keras' {"class_name", "config"} of a layer.
nlohmann::json to_json(const LayerImpl& layer);

}  // namespace lighter::layers
