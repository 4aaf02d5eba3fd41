// Transformer examples: spam classification with an encoder, spelling -> pronunciation with an encoder-decoder,
// and a benchmark of cached generation.
// Each subcommand lives in its own header; this file only dispatches.
//
//   build/example_tnn spam [DATA_DIR] [options]          (same model as configs/spam_transformer.json)
//   build/example_tnn s2s [DATA_FILE_OR_DIR] [options]
//   build/example_tnn bench-generate [options]
//   build/example_tnn SUBCOMMAND --help
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "examples/tnn/bench_generate.h"
#include "examples/tnn/spam.h"
#include "examples/tnn/transformer_s2s.h"

namespace L = lighter;

namespace {

struct Command {
  const char* name;
  const char* summary;
  std::function<int(const std::vector<std::string>&)> run;
};

const std::vector<Command>& commands() {
  static const std::vector<Command> c = {
      {"spam", "spam or ham of mail bodies with a transformer encoder (configs/spam_transformer.json in C++)",
       tnn::spam::run},
      {"s2s", "spelling -> pronunciation (CMUdict) with a transformer encoder-decoder, cached greedy decoding",
       tnn::run_s2s},
      {"bench-generate", "time per generated token with the key/value cache against re-running the whole sequence",
       tnn::run_bench_generate},
  };
  return c;
}

void usage(FILE* to) {
  std::fputs("usage: example_tnn SUBCOMMAND [options]     (run from the repository root)\n", to);
  for (const auto& c : commands()) std::fprintf(to, "  %-16s %s\n", c.name, c.summary);
  std::fputs("example_tnn SUBCOMMAND --help lists a subcommand's options.\n", to);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& c : commands()) {
    if (name != c.name) continue;
    try {
      return c.run(args);
    } catch (const L::ConfigError& e) {
      std::fprintf(stderr, "example_tnn %s: %s\n", c.name, e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "example_tnn %s: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "example_tnn: unknown subcommand '%s'\n", name.c_str());
  usage(stderr);
  return 2;
}
