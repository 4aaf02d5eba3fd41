#include "lighter/core/device.h"

#include <cstdlib>

#include <torch/cuda.h>
#include <torch/utils.h>

#include "lighter/core/error.h"

namespace lighter {

c10::Device resolve_device(const std::string& spec, const std::string& path) {
  if (spec == "auto") return torch::cuda::is_available() ? c10::Device(c10::kCUDA) : c10::Device(c10::kCPU);
  if (spec == "cpu") return c10::Device(c10::kCPU);
  if (spec.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw ConfigError(path, "'" + spec + "' was asked for but no CUDA device is available (use \"cpu\" or \"auto\")");
    try {
      c10::Device device(spec);
      if (device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count()))
        throw ConfigError(path, "'" + spec + "': only " + std::to_string(torch::cuda::device_count()) +
                                    " CUDA device(s) present");
      return device;
    } catch (const c10::Error&) {
    }
  }
  throw ConfigError(path, "expected \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", got \"" + spec + "\"");
}

void seed_everything(uint64_t seed) {
  torch::manual_seed(seed);  // seeds the CPU generator and every CUDA generator
  std::srand(static_cast<unsigned>(seed));
}

}  // namespace lighter
