#include "lighter/layers/activations.h"

#include <map>

#include <torch/nn/functional/activation.h>

#include "lighter/core/error.h"

namespace lighter::activations {

namespace {
namespace F = torch::nn::functional;

torch::Tensor linear(const torch::Tensor& x) { return x; }
torch::Tensor relu(const torch::Tensor& x) { return torch::relu(x); }
torch::Tensor relu6(const torch::Tensor& x) { return torch::clamp(x, 0, 6); }
torch::Tensor sigmoid(const torch::Tensor& x) { return torch::sigmoid(x); }
torch::Tensor tanh_fn(const torch::Tensor& x) { return torch::tanh(x); }
torch::Tensor softmax(const torch::Tensor& x) { return torch::softmax(x, -1); }
torch::Tensor log_softmax(const torch::Tensor& x) { return torch::log_softmax(x, -1); }
// Keras' gelu defaults to approximate=False: the exact erf form.
torch::Tensor gelu(const torch::Tensor& x) { return torch::gelu(x); }
torch::Tensor elu(const torch::Tensor& x) { return torch::elu(x); }
torch::Tensor selu(const torch::Tensor& x) { return torch::selu(x); }
torch::Tensor silu(const torch::Tensor& x) { return torch::silu(x); }
torch::Tensor softplus(const torch::Tensor& x) { return torch::softplus(x); }
torch::Tensor softsign(const torch::Tensor& x) { return x / (x.abs() + 1); }
// Keras 3's leaky_relu default negative_slope is 0.2.
torch::Tensor leaky_relu(const torch::Tensor& x) { return torch::leaky_relu(x, 0.2); }
// Keras 3: relu6(x + 3) / 6, which is torch's hardsigmoid.
torch::Tensor hard_sigmoid(const torch::Tensor& x) { return torch::hardsigmoid(x); }
torch::Tensor hard_silu(const torch::Tensor& x) { return torch::hardswish(x); }
torch::Tensor exponential(const torch::Tensor& x) { return torch::exp(x); }
torch::Tensor mish(const torch::Tensor& x) { return torch::mish(x); }

const std::map<std::string, Function>& table() {
  static const std::map<std::string, Function> t = {
      {"linear", linear},       {"relu", relu},           {"relu6", relu6},
      {"sigmoid", sigmoid},     {"tanh", tanh_fn},        {"softmax", softmax},
      {"log_softmax", log_softmax}, {"gelu", gelu},       {"elu", elu},
      {"selu", selu},           {"silu", silu},           {"softplus", softplus},
      {"softsign", softsign},   {"leaky_relu", leaky_relu}, {"hard_sigmoid", hard_sigmoid},
      {"hard_silu", hard_silu}, {"exponential", exponential}, {"mish", mish}};
  return t;
}

const std::map<std::string, std::string>& aliases() {
  static const std::map<std::string, std::string> a = {
      {"swish", "silu"}, {"hard_swish", "hard_silu"}, {"None", "linear"}, {"", "linear"}};
  return a;
}
}  // namespace

std::vector<std::string> names() {
  std::vector<std::string> out;
  for (const auto& kv : table()) out.push_back(kv.first);
  out.push_back("swish");
  out.push_back("hard_swish");
  std::sort(out.begin(), out.end());
  return out;
}

std::string canonical(const std::string& name, const std::string& path) {
  auto alias = aliases().find(name);
  std::string resolved = alias == aliases().end() ? name : alias->second;
  if (!table().count(resolved)) {
    std::string known;
    for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
    throw ConfigError(path, "unknown activation '" + name + "' (supported: " + known + ")");
  }
  return resolved;
}

Function get(const std::string& name, const std::string& path) { return table().at(canonical(name, path)); }

}  // namespace lighter::activations
