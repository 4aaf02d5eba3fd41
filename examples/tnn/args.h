#pragma once
// Command-line options of the tnn subcommands: `--name value` pairs and positional arguments, read strictly (an
// unknown option or a bad value is a ConfigError naming the option).
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <lighter/lighter.h>

namespace tnn {

class Args {
 public:
  /// `args` are the words after the subcommand; `options` the known `--name`s (each takes a value); `flags` the
  /// known `--name`s without a value.
  Args(const std::vector<std::string>& args, const std::set<std::string>& options, const std::set<std::string>& flags = {}) {
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a == "-h" || a == "--help") {
        help_ = true;
      } else if (flags.count(a)) {
        flags_.insert(a);
      } else if (options.count(a)) {
        if (i + 1 >= args.size()) throw lighter::ConfigError(a, "needs a value");
        values_[a] = args[++i];
      } else if (a.size() > 1 && a[0] == '-') {
        throw lighter::ConfigError(a, "unknown option (see --help)");
      } else {
        positional_.push_back(a);
      }
    }
  }

  bool help() const { return help_; }
  bool flag(const std::string& name) const { return flags_.count(name) > 0; }
  const std::vector<std::string>& positional() const { return positional_; }

  std::string text(const std::string& name, const std::string& fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  /// A non-negative integer (`minimum` and up).
  int64_t integer(const std::string& name, int64_t fallback, int64_t minimum = 0) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    char* end = nullptr;
    long long x = std::strtoll(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end || x < minimum)
      throw lighter::ConfigError(name, "expected an integer >= " + std::to_string(minimum) + ", got '" + it->second + "'");
    return x;
  }
  /// A number in [low, high].
  double number(const std::string& name, double fallback, double low, double high) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    char* end = nullptr;
    double x = std::strtod(it->second.c_str(), &end);
    if (it->second.empty() || *end || !(x >= low && x <= high))
      throw lighter::ConfigError(name, "expected a number in [" + std::to_string(low) + ", " + std::to_string(high) +
                                           "], got '" + it->second + "'");
    return x;
  }

 private:
  bool help_ = false;
  std::set<std::string> flags_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace tnn
