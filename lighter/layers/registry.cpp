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
  ConfigReader outer(spec, path);
  std::string class_name = outer.get<std::string>("class_name");
  outer.ignore({"module", "registered_name", "build_config", "name", "inbound_nodes"});
  if (!registry().contains(class_name))
    throw ConfigError(outer.path_of("class_name"),
                      "unknown layer '" + class_name + "' (supported: " + registry().known() + ")");
  static const json empty = json::object();
  const json& config = outer.has("config") ? outer.raw("config") : (outer.raw_or_null("config"), empty);
  ConfigReader inner(config, outer.path_of("config"));
  LayerPtr layer = registry().create(class_name, outer.path_of("class_name"), inner);
  inner.finish();
  outer.finish();
  return layer;
}

nlohmann::json to_json(const LayerImpl& layer) {
  return {{"class_name", layer.class_name()}, {"config", layer.get_config()}};
}

}  // namespace lighter::layers
