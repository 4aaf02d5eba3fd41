// Fine-tuning examples: a character language model pretrained on the King James Bible, adapted to Moby-Dick by full
// fine-tuning, LoRA and DoRA, and tuned toward a reward with REINFORCE (examples/finetune/README.md).
// Each subcommand lives in its own header; what they share (the base model, text windows, bits per character,
// sampling) is in common.h; this file only dispatches.
//
//   build/example_finetune lm [options]
//   build/example_finetune reward [options]
//   build/example_finetune SUBCOMMAND --help
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "examples/finetune/adapt_lm.h"
#include "examples/finetune/reward.h"

namespace L = lighter;

namespace {

struct Command {
  const char* name;
  const char* summary;
  std::function<int(const std::vector<std::string>&)> run;
};

const std::vector<Command>& commands() {
  static const std::vector<Command> c = {
      {"lm", "KJV character LM adapted to Moby-Dick: full fine-tuning, LoRA and DoRA, bits per character",
       finetune::lm::run_command},
      {"reward", "the KJV LM's LoRA adapter trained with REINFORCE/RLOO toward a reward (dictionary words), held out",
       finetune::reward::run_command},
  };
  return c;
}

void usage(FILE* to) {
  std::fputs("usage: example_finetune SUBCOMMAND [options]     (run from the repository root)\n", to);
  for (const auto& c : commands()) std::fprintf(to, "  %-10s %s\n", c.name, c.summary);
  std::fputs("example_finetune SUBCOMMAND --help lists a subcommand's options.\n", to);
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
      std::fprintf(stderr, "example_finetune %s: %s\n", c.name, e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "example_finetune %s: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "example_finetune: unknown subcommand '%s'\n", name.c_str());
  usage(stderr);
  return 2;
}
