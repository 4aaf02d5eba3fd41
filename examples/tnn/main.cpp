// Transformer examples: spam classification with an encoder, spelling -> pronunciation with an encoder-decoder,
// and a benchmark of cached generation.
// Each subcommand lives in its own header; this file only dispatches.
//
//   build/example_tnn spam [DATA_DIR] [options]          (same model as configs/spam_transformer.json)
//   build/example_tnn s2s [DATA_FILE_OR_DIR] [options]
//   build/example_tnn bench-generate [options]
//   build/example_tnn SUBCOMMAND --help
#include <string>
#include <vector>

#include "examples/common/subcommands.h"
#include "examples/tnn/bench_generate.h"
#include "examples/tnn/spam.h"
#include "examples/tnn/transformer_s2s.h"

int main(int argc, char** argv) {
  static const std::vector<examples::Subcommand> commands = {
      {"spam", "spam or ham of mail bodies with a transformer encoder (configs/spam_transformer.json in C++)",
       tnn::spam::run},
      {"s2s", "spelling -> pronunciation (CMUdict) with a transformer encoder-decoder, cached greedy decoding",
       tnn::run_s2s},
      {"bench-generate", "time per generated token with the key/value cache against re-running the whole sequence",
       tnn::run_bench_generate},
  };
  return examples::run_subcommand("example_tnn", commands, argc, argv, 16);
}
