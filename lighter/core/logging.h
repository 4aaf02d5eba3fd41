#pragma once
/// The `lighter` spdlog logger.
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace lighter {

/// The logger named `lighter` (created on first use, writing to stderr).
std::shared_ptr<spdlog::logger> logger();

/// Sets the level by name: trace, debug, info, warn, error, off.
void set_log_level(const std::string& level);

}  // namespace lighter
