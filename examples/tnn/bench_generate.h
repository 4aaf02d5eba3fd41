#pragma once
// `example_tnn bench-generate`: time per generated token with the key/value cache and without it (the whole
// sequence run again for each token), on the same decoder-only model, in the same process, and check that both
// give the same greedy tokens.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <lighter/lighter.h>

#include "examples/tnn/args.h"

namespace tnn {

struct BenchGenerateOptions {
  int64_t vocab = 64, sequence_length = 1024, dim = 128, heads = 4, intermediate = 512, layers = 4;
  int64_t prompt = 16, batch = 1, repeats = 3;
  std::vector<int64_t> new_tokens{64, 256, 512};
  int threads = 0;
};

inline int bench_generate(const BenchGenerateOptions& o) {
  namespace L = lighter;
  using namespace lighter::layers;
  if (o.threads > 0) torch::set_num_threads(o.threads);
  torch::manual_seed(1);
  std::vector<L::layers::LayerRef> stack{InputLayer(InputLayerOptions({-1}).dtype("int64")),
                                         TokenAndPositionEmbedding(TokenAndPositionEmbeddingOptions(o.vocab, o.sequence_length, o.dim))};
  for (int64_t i = 0; i < o.layers; ++i)
    stack.push_back(TransformerDecoder(TransformerOptions(o.intermediate, o.heads).normalize_first(true)));
  stack.push_back(Dense(DenseOptions(o.vocab)));
  L::Sequential lm(stack, "bench_lm");
  const auto prompt = torch::randint(0, o.vocab, {o.batch, o.prompt}, torch::kLong);
  std::printf("decoder-only LM: %lld blocks, dim %lld, %lld heads, vocabulary %lld, %lld parameters; prompt %lld, "
              "batch %lld, %d threads, LibTorch %s\n",
              static_cast<long long>(o.layers), static_cast<long long>(o.dim), static_cast<long long>(o.heads),
              static_cast<long long>(o.vocab), static_cast<long long>(lm->count_params().total()),
              static_cast<long long>(o.prompt), static_cast<long long>(o.batch), torch::get_num_threads(), TORCH_VERSION);
  std::printf("%10s %16s %16s %8s %10s\n", "new tokens", "cached ms/token", "full ms/token", "speedup", "same tokens");
  for (int64_t n : o.new_tokens) {
    if (o.prompt + n > o.sequence_length) continue;
    auto time_one = [&](bool cache, torch::Tensor& out) {
      std::vector<double> ms;
      for (int64_t r = 0; r < o.repeats; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        out = L::models::generate(*lm, prompt, L::models::GenerateOptions().max_new_tokens(n).use_cache(cache));
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / n);
      }
      std::sort(ms.begin(), ms.end());
      return ms[ms.size() / 2];  // the median run
    };
    torch::Tensor a, b;
    // Interleaved: each pair of timings sees the same machine load.
    const double cached = time_one(true, a), full = time_one(false, b);
    std::printf("%10lld %16.2f %16.2f %7.1fx %10s\n", static_cast<long long>(n), cached, full, full / cached,
                a.equal(b) ? "yes" : "NO");
    if (!a.equal(b)) return 1;
  }
  return 0;
}

inline int run_bench_generate(const std::vector<std::string>& words) {
  Args a(words, {"--layers", "--dim", "--heads", "--intermediate", "--vocab", "--prompt", "--batch", "--repeats", "--threads"});
  if (a.help()) {
    std::fputs("usage: example_tnn bench-generate [--layers 4] [--dim 128] [--heads 4] [--intermediate 512] [--vocab 64]\n"
               "                                  [--prompt 16] [--batch 1] [--repeats 3] [--threads N]\n"
               "Times greedy generation of 64, 256 and 512 tokens with the key/value cache and without it (the whole\n"
               "sequence again for each token) on a randomly initialised decoder-only model, and checks both give the\n"
               "same tokens.\n",
               stdout);
    return 0;
  }
  if (!a.positional().empty()) throw lighter::ConfigError(a.positional()[0], "unexpected argument (see --help)");
  BenchGenerateOptions o;
  o.layers = a.integer("--layers", o.layers, 1);
  o.dim = a.integer("--dim", o.dim, 1);
  o.heads = a.integer("--heads", o.heads, 1);
  o.intermediate = a.integer("--intermediate", o.intermediate, 1);
  o.vocab = a.integer("--vocab", o.vocab, 2);
  o.prompt = a.integer("--prompt", o.prompt, 1);
  o.batch = a.integer("--batch", o.batch, 1);
  o.repeats = a.integer("--repeats", o.repeats, 1);
  o.threads = static_cast<int>(a.integer("--threads", 0));
  return bench_generate(o);
}

}  // namespace tnn
