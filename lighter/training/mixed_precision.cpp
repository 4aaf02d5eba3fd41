#include "lighter/training/mixed_precision.h"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <cmath>
#include <cstdlib>
#include <exception>
#include <map>
#include <tuple>

#include "lighter/core/error.h"
#include "lighter/core/json.h"

// LibTorch 2.4 replaced the per-device autocast functions (set_cpu_enabled, set_autocast_gpu_dtype, ...) by ones
// taking a device type, and deprecated the old ones (they warn at run time).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define LIGHTER_AUTOCAST_DEVICE_TYPE_API 1
#else
#define LIGHTER_AUTOCAST_DEVICE_TYPE_API 0
#endif

namespace lighter::training {

namespace {

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

bool is_autocast_device(torch::DeviceType t) { return t == torch::kCPU || t == torch::kCUDA; }

void set_autocast_enabled(torch::DeviceType t, bool enabled) {
#if LIGHTER_AUTOCAST_DEVICE_TYPE_API
  at::autocast::set_autocast_enabled(t, enabled);
#else
  if (t == torch::kCUDA)
    at::autocast::set_enabled(enabled);
  else
    at::autocast::set_cpu_enabled(enabled);
#endif
}

void set_autocast_dtype(torch::DeviceType t, torch::ScalarType dtype) {
#if LIGHTER_AUTOCAST_DEVICE_TYPE_API
  at::autocast::set_autocast_dtype(t, dtype);
#else
  if (t == torch::kCUDA)
    at::autocast::set_autocast_gpu_dtype(dtype);
  else
    at::autocast::set_autocast_cpu_dtype(dtype);
#endif
}

// Enters an autocast region as torch.autocast.__enter__ does; returns the previous (enabled, dtype).
std::pair<bool, torch::ScalarType> enter_autocast(torch::DeviceType t, torch::ScalarType dtype) {
  std::pair<bool, torch::ScalarType> previous{autocast_enabled(t), autocast_dtype(t)};
  set_autocast_dtype(t, dtype);
  set_autocast_enabled(t, true);
  at::autocast::increment_nesting();
  return previous;
}

// Leaves it as torch.autocast.__exit__ does: the cast cache lives until the outermost region ends.
void exit_autocast(torch::DeviceType t, const std::pair<bool, torch::ScalarType>& previous) {
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast_enabled(t, previous.first);
  set_autocast_dtype(t, previous.second);
}

// CPU autocast took bfloat16 only before LibTorch 2.x gained float16 kernels for it; rather than pin the exact
// release, 2.x builds try one small product once.
bool cpu_half_autocast_works() {
#if TORCH_VERSION_MAJOR < 2
  return false;
#else
  static const bool works = [] {
    torch::NoGradGuard no_grad;
    auto previous = enter_autocast(torch::kCPU, torch::kHalf);
    bool ok = false;
    try {
      auto a = torch::ones({2, 2});
      ok = torch::mm(a, a).scalar_type() == torch::kHalf;
    } catch (const std::exception&) {
      ok = false;
    }
    exit_autocast(torch::kCPU, previous);
    return ok;
  }();
  return works;
#endif
}

// Why autocast_supported(p, device) is false, for the guard's error.
std::string unsupported_reason(Precision p, const torch::Device& device) {
  const std::string what = to_string(p) + " on " + device.str();
  if (!is_autocast_device(device.type())) return what + ": autocast runs on CPU and CUDA devices only";
  if (device.is_cpu())
    return what + ": CPU autocast in float16 is not available with LibTorch " + torch_version() +
           "; use mixed_bfloat16 on CPU";
  if (!torch::cuda::is_available()) return what + ": CUDA is not available";
  return what + ": no such CUDA device (" + std::to_string(torch::cuda::device_count()) + " available)";
}

}  // namespace

Precision precision_from_string(const std::string& name, const std::string& path) {
  if (name == "float32") return Precision::float32;
  if (name == "mixed_float16") return Precision::mixed_float16;
  if (name == "mixed_bfloat16") return Precision::mixed_bfloat16;
  std::string hint;
  if (name == "float16" || name == "bfloat16")
    hint = " (Keras' \"" + name + "\" policy keeps the weights in " + name + "; only the mixed policies are supported)";
  throw ConfigError(path, "expected one of \"float32\", \"mixed_float16\", \"mixed_bfloat16\", got \"" + name + "\"" +
                              hint);
}

std::string to_string(Precision p) {
  switch (p) {
    case Precision::float32:
      return "float32";
    case Precision::mixed_float16:
      return "mixed_float16";
    case Precision::mixed_bfloat16:
      return "mixed_bfloat16";
  }
  return "float32";
}

torch::ScalarType compute_dtype(Precision p) {
  switch (p) {
    case Precision::float32:
      return torch::kFloat;
    case Precision::mixed_float16:
      return torch::kHalf;
    case Precision::mixed_bfloat16:
      return torch::kBFloat16;
  }
  return torch::kFloat;
}

bool autocast_supported(Precision p, const torch::Device& device) {
  if (p == Precision::float32) return true;
  if (device.is_cpu()) return p == Precision::mixed_bfloat16 || cpu_half_autocast_works();
  if (device.is_cuda()) {
    if (!torch::cuda::is_available()) return false;
    return !device.has_index() || device.index() < static_cast<int64_t>(torch::cuda::device_count());
  }
  return false;
}

bool autocast_enabled(torch::DeviceType device_type) {
  if (!is_autocast_device(device_type)) return false;
#if LIGHTER_AUTOCAST_DEVICE_TYPE_API
  return at::autocast::is_autocast_enabled(device_type);
#else
  return device_type == torch::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

torch::ScalarType autocast_dtype(torch::DeviceType device_type) {
  if (!is_autocast_device(device_type))
    throw ConfigError("mixed_precision", "autocast runs on CPU and CUDA devices only, got " +
                                             torch::Device(device_type).str());
#if LIGHTER_AUTOCAST_DEVICE_TYPE_API
  return at::autocast::get_autocast_dtype(device_type);
#else
  return device_type == torch::kCUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

// ---- AutocastGuard -------------------------------------------------------------------------------------------

AutocastGuard::AutocastGuard(Precision p, const torch::Device& device) {
  if (p == Precision::float32) return;
  if (!autocast_supported(p, device)) throw ConfigError("mixed_precision", unsupported_reason(p, device));
  device_type_ = device.type();
  auto previous = enter_autocast(device_type_, compute_dtype(p));
  previous_enabled_ = previous.first;
  previous_dtype_ = previous.second;
  active_ = true;
}

AutocastGuard::~AutocastGuard() {
  if (active_) exit_autocast(device_type_, {previous_enabled_, previous_dtype_});
}

// ---- LossScaler ----------------------------------------------------------------------------------------------

LossScaler::LossScaler(double initial_scale, double growth_factor, double backoff_factor, int64_t growth_interval)
    : scale_(initial_scale),
      growth_factor_(growth_factor),
      backoff_factor_(backoff_factor),
      growth_interval_(growth_interval) {
  if (!(initial_scale > 0) || !std::isfinite(initial_scale))
    throw ConfigError("loss_scaler.initial_scale", "expected a positive finite number, got " + std::to_string(initial_scale));
  if (!(growth_factor > 1) || !std::isfinite(growth_factor))
    throw ConfigError("loss_scaler.growth_factor", "expected a finite number > 1, got " + std::to_string(growth_factor));
  if (!(backoff_factor > 0 && backoff_factor < 1))
    throw ConfigError("loss_scaler.backoff_factor", "expected a number in (0, 1), got " + std::to_string(backoff_factor));
  if (growth_interval <= 0)
    throw ConfigError("loss_scaler.growth_interval", "expected a positive integer, got " + std::to_string(growth_interval));
}

torch::Tensor LossScaler::scale(const torch::Tensor& loss) const { return loss * scale_; }

bool LossScaler::unscale(const std::vector<torch::Tensor>& params) {
  const double inv_scale = 1.0 / scale_;
  // Dense CUDA gradients per (device, dtype), as GradScaler groups them for the fused kernel.
  std::map<std::tuple<int, int, int>, std::vector<torch::Tensor>> fused_groups;
  std::vector<torch::Tensor> flags;  // one "found a non-finite value" count per group or plain gradient
  for (const auto& param : params) {
    if (!param.defined()) continue;
    torch::Tensor grad = param.grad();
    if (!grad.defined()) continue;
    if (grad.is_sparse()) {
      // The values of an uncoalesced sparse tensor may sum to a non-finite number: coalesce first.
      grad = grad.coalesce();
      torch::Tensor p = param;
      p.mutable_grad() = grad;
      grad = grad._values();
    } else if (grad.is_cuda()) {
      fused_groups[{static_cast<int>(grad.device().type()), static_cast<int>(grad.device().index()),
                    static_cast<int>(grad.scalar_type())}]
          .push_back(grad);
      continue;
    }
    flags.push_back(torch::isfinite(grad).logical_not().any().to(torch::kFloat).reshape({1}));
    grad.mul_(inv_scale);
  }
  for (auto& [key, grads] : fused_groups) {
    auto options = torch::TensorOptions().dtype(torch::kFloat).device(grads.front().device());
    torch::Tensor found_inf = torch::zeros({1}, options);
    torch::Tensor inv = torch::full({1}, inv_scale, options);
    at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv);
    flags.push_back(found_inf);
  }
  if (flags.empty()) return true;
  torch::Tensor total = flags.front();
  for (size_t i = 1; i < flags.size(); ++i) total = total + flags[i].to(total.device());
  return total.item<float>() == 0.0f;  // the one host synchronisation
}

void LossScaler::update(bool found_inf) {
  if (found_inf) {
    scale_ *= backoff_factor_;
    good_steps_ = 0;
    return;
  }
  ++good_steps_;
  if (good_steps_ >= growth_interval_) {
    const double grown = scale_ * growth_factor_;
    if (std::isfinite(grown)) scale_ = grown;
    good_steps_ = 0;
  }
}

nlohmann::json LossScaler::state() const { return {{"scale", scale_}, {"good_steps", good_steps_}}; }

void LossScaler::load_state(const nlohmann::json& s) {
  ConfigReader r(s, "loss_scaler");
  const json& scale = r.raw("scale");
  if (!scale.is_number() || !(scale.get<double>() > 0) || !std::isfinite(scale.get<double>()))
    throw ConfigError(r.path_of("scale"), "expected a positive finite number, got " + describe(scale));
  const json& steps = r.raw("good_steps");
  if (!steps.is_number_integer() || steps.get<int64_t>() < 0)
    throw ConfigError(r.path_of("good_steps"), "expected a non-negative integer, got " + describe(steps));
  r.finish();
  scale_ = scale.get<double>();
  good_steps_ = steps.get<int64_t>();
}

// ---- determinism ---------------------------------------------------------------------------------------------

void set_deterministic(bool enabled, bool warn_only) {
  auto& context = at::globalContext();
  context.setDeterministicAlgorithms(enabled, warn_only);
  context.setDeterministicCuDNN(enabled);
  if (enabled) {
    context.setBenchmarkCuDNN(false);
    // Deterministic cuBLAS needs a fixed workspace; without it ATen raises on the first CUDA matrix product.
    if (torch::cuda::is_available()) setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  }
}

bool deterministic() { return at::globalContext().deterministicAlgorithms(); }

}  // namespace lighter::training
