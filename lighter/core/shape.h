#pragma once
/// Shapes as Keras writes them: the batch axis included, -1 for an unknown dimension (`None`).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lighter {

using Shape = std::vector<int64_t>;

/// Keras' notation: `(None, 16)`.
std::string shape_to_string(const Shape& shape);
/// JSON list with null for unknown dimensions.
nlohmann::json shape_to_json(const Shape& shape);
/// Reads a JSON list of integers or nulls; `path` names it in errors.
Shape shape_from_json(const nlohmann::json& value, const std::string& path);
/// Number of elements of the known part (unknown dimensions are skipped).
int64_t shape_numel(const Shape& shape, size_t from = 1);

}  // namespace lighter
