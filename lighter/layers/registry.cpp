#include "lighter/layers/registry.h"

#include "lighter/layers/core_layers.h"
#include "lighter/layers/preprocessing.h"

namespace lighter::layers {

namespace {
template <class T>
void add(Registry<LayerPtr, ConfigReader&>& r, const std::string& name) {
  r.add(name, [](ConfigReader& c) -> LayerPtr { return T::from_config(c); });
}
}  // namespace

Registry<LayerPtr, ConfigReader&>& registry() {
  static Registry<LayerPtr, ConfigReader&> r = [] {
    Registry<LayerPtr, ConfigReader&> reg("layer");
    add<InputLayerImpl>(reg, "InputLayer");
    add<DenseImpl>(reg, "Dense");
    add<ActivationImpl>(reg, "Activation");
    add<DropoutImpl>(reg, "Dropout");
    add<FlattenImpl>(reg, "Flatten");
    add<NormalizationImpl>(reg, "Normalization");
    return reg;
  }();
  return r;
}

LayerPtr from_json(const nlohmann::json& spec, const std::string& path) {
  if (!spec.is_object()) throw ConfigError(path, "expected a layer {\"class_name\": ..., \"config\": {...}}, got " + describe(spec));
  // Keras 3 adds build_config; functional models add name and inbound_nodes beside the config.
  ClassSpec s = read_class_spec(spec, path, "layer", {"build_config", "name", "inbound_nodes"});
  ConfigReader config(s.config, s.config_path);
  LayerPtr layer = registry().create(s.class_name, s.name_path, config);
  config.finish();
  return layer;
}

nlohmann::json to_json(const LayerImpl& layer) {
  return {{"class_name", layer.class_name()}, {"config", layer.get_config()}};
}

}  // namespace lighter::layers
