#pragma once
/// Keras' weight initializers (Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal, GlorotNormal/Uniform,
/// HeNormal/Uniform, LecunNormal/Uniform, Orthogonal, VarianceScaling), described as Keras JSON.
#include <string>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace lighter::initializers {

/// Canonical Keras form {"class_name": "GlorotUniform", "config": {"seed": null}} of a string or object spec,
/// with defaults filled in; unknown names or keys are a ConfigError at `path`.
nlohmann::json normalize(const nlohmann::json& spec, const std::string& path = "initializer");

/// Fills `tensor` in place (no autograd) following a spec. fan_in/fan_out as Keras computes them for the layer's
/// kernel (Dense: inputs / units). A non-null `seed` makes the result reproducible on its own.
void apply(torch::Tensor& tensor, const nlohmann::json& spec, int64_t fan_in, int64_t fan_out);

/// Convenience specs for C++ users.
nlohmann::json constant(double value);
nlohmann::json random_normal(double mean = 0.0, double stddev = 0.05);
nlohmann::json random_uniform(double minval = -0.05, double maxval = 0.05);
nlohmann::json variance_scaling(double scale, const std::string& mode, const std::string& distribution);

}  // namespace lighter::initializers
