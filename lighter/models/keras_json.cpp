#include "lighter/models/keras_json.h"

#include <map>

#include "lighter/core/error.h"
#include "lighter/layers/core_layers.h"
#include "lighter/layers/registry.h"
#include "lighter/models/functional.h"
#include "lighter/models/sequential.h"

namespace lighter::models {

namespace {

ModelPtr sequential_from_json(const json& config, const std::string& path) {
  const json* layer_list = &config;
  std::string name = "sequential";
  std::optional<Shape> build_input_shape;
  std::string list_path = path;
  if (config.is_object()) {
    ConfigReader r(config, path);
    name = r.get<std::string>("name", "sequential");
    if (!r.get<bool>("trainable", true))
      throw ConfigError(r.path_of("trainable"), "a frozen model is not supported yet; freeze its layers instead");
    r.raw_or_null("dtype");  // a model-wide dtype policy: layers carry their own
    if (r.has("build_input_shape"))
      build_input_shape = shape_from_json(r.raw("build_input_shape"), r.path_of("build_input_shape"));
    layer_list = &r.raw("layers");
    list_path = r.path_of("layers");
    r.finish();
  }
  if (!layer_list->is_array()) throw ConfigError(list_path, "expected a list of layers, got " + describe(*layer_list));
  auto model = std::make_shared<SequentialImpl>(name);
  for (size_t i = 0; i < layer_list->size(); ++i) {
    std::string lpath = join_path(list_path, i);
    layers::LayerPtr layer = layers::from_json((*layer_list)[i], lpath);
    try {
      model->add(layers::LayerRef(layer));
    } catch (const ShapeError& e) {
      throw ConfigError(lpath, e.what());
    } catch (const ConfigError& e) {
      throw ConfigError(lpath, e.what());
    }
  }
  if (!model->built() && build_input_shape) model->build(*build_input_shape);
  return model;
}

std::map<std::string, ModelBuilder>& model_classes() {
  static std::map<std::string, ModelBuilder> classes;
  return classes;
}

}  // namespace

void register_model_class(const std::string& class_name, ModelBuilder builder) {
  if (class_name == "Sequential" || class_name == "Functional" || class_name == "Model")
    throw ConfigError("class_name", "'" + class_name + "' is a built-in model class and cannot be registered again");
  model_classes()[class_name] = std::move(builder);
}

ModelPtr model_from_json(const json& spec, const std::string& path) {
  ConfigReader r(spec, path);
  std::string class_name = r.get<std::string>("class_name");
  // Keys Keras writes around the model config.
  r.ignore({"module", "registered_name", "build_config", "compile_config", "keras_version", "backend"});
  const json& config = r.raw("config");
  r.finish();
  if (class_name == "Sequential") return sequential_from_json(config, r.path_of("config"));
  if (class_name == "Functional" || class_name == "Model") return functional_from_json(config, r.path_of("config"));
  auto it = model_classes().find(class_name);
  if (it != model_classes().end()) return it->second(config, r.path_of("config"));
  std::string supported = "Sequential, Functional";
  for (const auto& kv : model_classes()) supported += ", " + kv.first;
  throw ConfigError(r.path_of("class_name"), "unknown model class '" + class_name + "' (supported: " + supported + ")");
}

ModelPtr model_from_file(const std::string& file) {
  json spec = read_json_file(file);
  try {
    return model_from_json(spec, "");
  } catch (const ConfigError& e) {
    throw ConfigError(file + (e.path().empty() ? "" : ": " + e.path()), e.message());
  }
}

}  // namespace lighter::models
