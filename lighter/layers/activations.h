#pragma once
/// Keras' activation functions by name, computed with ATen ops.
#include <string>
#include <vector>

#include <torch/types.h>

namespace lighter::activations {

using Function = torch::Tensor (*)(const torch::Tensor&);

/// The function for a Keras activation name (relu, sigmoid, tanh, softmax, log_softmax, gelu, elu, selu, silu/swish,
/// softplus, softsign, leaky_relu, hard_sigmoid, exponential, linear, ...). Unknown names are a ConfigError at `path`.
Function get(const std::string& name, const std::string& path = "activation");

/// The canonical Keras name (`swish` -> `silu`, `None`/empty -> `linear`), checked to exist.
std::string canonical(const std::string& name, const std::string& path = "activation");

/// All supported names.
std::vector<std::string> names();

}  // namespace lighter::activations
