#include "lighter/core/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "lighter/core/error.h"

namespace lighter {

std::shared_ptr<spdlog::logger> logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto existing = spdlog::get("lighter");
    if (existing) return existing;
    auto made = spdlog::stderr_color_mt("lighter");
    made->set_pattern("%^[%l]%$ %v");
    made->set_level(spdlog::level::info);
    return made;
  }();
  return instance;
}

void set_log_level(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off")
    throw ConfigError("log_level", "unknown level '" + level + "' (known: trace, debug, info, warn, error, off)");
  logger()->set_level(parsed);
}

}  // namespace lighter
