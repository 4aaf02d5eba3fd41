#pragma once
/// Device selection.
#include <string>

#include <c10/core/Device.h>

namespace lighter {

/// Parses "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N"; `path` names the setting in errors.
c10::Device resolve_device(const std::string& spec, const std::string& path = "device");

/// Seeds every random source Lighter uses (torch CPU and CUDA generators, std::rand).
void seed_everything(uint64_t seed);

}  // namespace lighter
