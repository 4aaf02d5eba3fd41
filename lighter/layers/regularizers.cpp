#include "lighter/layers/regularizers.h"

#include "lighter/core/json.h"

namespace lighter::regularizers {

json normalize(const json& spec, const std::string& path) {
  if (spec.is_null()) return nullptr;
  ClassSpec s = read_class_spec(spec, path, "regularizer");
  const std::string& name = s.class_name;
  double l1 = 0, l2 = 0;
  ConfigReader c(s.config, s.config_path);
  if (name == "l1" || name == "L1") {
    l1 = c.non_negative("l1", 0.01);
  } else if (name == "l2" || name == "L2") {
    l2 = c.non_negative("l2", 0.01);
  } else if (name == "l1_l2" || name == "L1L2") {
    // Keras' L1L2 class defaults to 0 for both; the "l1_l2" string means 0.01 each.
    double fallback = name == "l1_l2" ? 0.01 : 0.0;
    l1 = c.non_negative("l1", fallback);
    l2 = c.non_negative("l2", fallback);
  } else if (name == "OrthogonalRegularizer" || name == "orthogonal_regularizer") {
    throw ConfigError(path, "regularizer '" + name + "' is not supported yet (supported: L1, L2, L1L2)");
  } else {
    throw ConfigError(path, "unknown regularizer '" + name + "' (supported: L1, L2, L1L2, l1, l2, l1_l2)");
  }
  c.finish();
  if (name == "l1" || name == "L1") return {{"class_name", "L1"}, {"config", {{"l1", l1}}}};
  if (name == "l2" || name == "L2") return {{"class_name", "L2"}, {"config", {{"l2", l2}}}};
  return {{"class_name", "L1L2"}, {"config", {{"l1", l1}, {"l2", l2}}}};
}

torch::Tensor penalty(const json& spec, const torch::Tensor& w) {
  if (spec.is_null()) return {};
  const json& c = spec["config"];
  double l1 = c.value("l1", 0.0), l2 = c.value("l2", 0.0);
  torch::Tensor out;
  if (l1 > 0) out = l1 * w.abs().sum();
  if (l2 > 0) {
    auto p = l2 * w.square().sum();
    out = out.defined() ? out + p : p;
  }
  return out.defined() ? out : torch::zeros({}, w.options());
}

json l1(double factor) { return {{"class_name", "L1"}, {"config", {{"l1", factor}}}}; }
json l2(double factor) { return {{"class_name", "L2"}, {"config", {{"l2", factor}}}}; }
json l1_l2(double a, double b) { return {{"class_name", "L1L2"}, {"config", {{"l1", a}, {"l2", b}}}}; }

}  // namespace lighter::regularizers
