#include "lighter/core/shape.h"

#include "lighter/core/json.h"

namespace lighter {

std::string shape_to_string(const Shape& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += shape[i] < 0 ? "None" : std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  return out + ")";
}

nlohmann::json shape_to_json(const Shape& shape) {
  nlohmann::json out = nlohmann::json::array();
  for (auto d : shape) out.push_back(d < 0 ? nlohmann::json(nullptr) : nlohmann::json(d));
  return out;
}

Shape shape_from_json(const nlohmann::json& value, const std::string& path) {
  if (!value.is_array()) throw ConfigError(path, "expected a shape (a list of integers or null), got " + describe(value));
  Shape out;
  for (size_t i = 0; i < value.size(); ++i) {
    const auto& d = value[i];
    if (d.is_null()) {
      out.push_back(-1);
    } else if (d.is_number_integer() && d.get<int64_t>() > 0) {
      out.push_back(d.get<int64_t>());
    } else {
      throw ConfigError(join_path(path, i), "expected a positive integer or null, got " + describe(d));
    }
  }
  return out;
}

int64_t shape_numel(const Shape& shape, size_t from) {
  int64_t n = 1;
  for (size_t i = from; i < shape.size(); ++i)
    if (shape[i] > 0) n *= shape[i];
  return n;
}

}  // namespace lighter
