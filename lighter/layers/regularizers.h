#pragma once
/// Keras' weight regularizers L1, L2 and L1L2: penalties added to the training loss.
#include <string>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace lighter::regularizers {

/// Canonical Keras form ({"class_name": "L1L2", "config": {"l1": .., "l2": ..}}, or null for none) of a spec:
/// null, "l1", "l2", "l1_l2" (Keras' default factor 0.01) or {"class_name": "L2", "config": {"l2": 0.001}}.
nlohmann::json normalize(const nlohmann::json& spec, const std::string& path = "regularizer");

/// l1·Σ|w| + l2·Σw² (Keras' formula, no ½). Undefined tensor when the spec is null.
torch::Tensor penalty(const nlohmann::json& normalized_spec, const torch::Tensor& weights);

nlohmann::json l1(double factor = 0.01);
nlohmann::json l2(double factor = 0.01);
nlohmann::json l1_l2(double l1 = 0.01, double l2 = 0.01);

}  // namespace lighter::regularizers
