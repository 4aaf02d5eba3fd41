#pragma once
// The entry point of the examples with subcommands (example_tnn, example_finetune): `PROGRAM SUBCOMMAND [options]`,
// the usage text, and one line for an error (exit status 2 for a configuration mistake, 1 for anything else).
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include <lighter/lighter.h>

namespace examples {

struct Subcommand {
  const char* name;
  const char* summary;
  std::function<int(const std::vector<std::string>&)> run;
};

inline void subcommand_usage(const char* program, const std::vector<Subcommand>& commands, int name_width, FILE* to) {
  std::fprintf(to, "usage: %s SUBCOMMAND [options]     (run from the repository root)\n", program);
  for (const auto& c : commands) std::fprintf(to, "  %-*s %s\n", name_width, c.name, c.summary);
  std::fprintf(to, "%s SUBCOMMAND --help lists a subcommand's options.\n", program);
}

/// Runs the subcommand argv[1] names with the words after it.
inline int run_subcommand(const char* program, const std::vector<Subcommand>& commands, int argc, char** argv,
                          int name_width = 16) {
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
    subcommand_usage(program, commands, name_width, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& c : commands) {
    if (name != c.name) continue;
    try {
      return c.run(args);
    } catch (const lighter::ConfigError& e) {
      std::fprintf(stderr, "%s %s: %s\n", program, c.name, e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s %s: %s\n", program, c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "%s: unknown subcommand '%s'\n", program, name.c_str());
  subcommand_usage(program, commands, name_width, stderr);
  return 2;
}

}  // namespace examples
