// Fine-tuning examples: a character language model pretrained on the King James Bible, adapted to Moby-Dick by full
// fine-tuning, LoRA and DoRA, and tuned toward a reward with REINFORCE (examples/finetune/README.md).
// Each subcommand lives in its own header; what they share (the base model, text windows, bits per character,
// sampling) is in common.h; this file only dispatches.
//
//   build/example_finetune lm [options]
//   build/example_finetune reward [options]
//   build/example_finetune SUBCOMMAND --help
#include <string>
#include <vector>

#include "examples/common/subcommands.h"
#include "examples/finetune/adapt_lm.h"
#include "examples/finetune/reward.h"

int main(int argc, char** argv) {
  static const std::vector<examples::Subcommand> commands = {
      {"lm", "KJV character LM adapted to Moby-Dick: full fine-tuning, LoRA and DoRA, bits per character",
       finetune::lm::run_command},
      {"reward", "the KJV LM's LoRA adapter trained with REINFORCE/RLOO toward a reward (dictionary words), held out",
       finetune::reward::run_command},
  };
  return examples::run_subcommand("example_finetune", commands, argc, argv, 10);
}
