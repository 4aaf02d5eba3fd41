#include "lighter/models/generation.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "lighter/core/error.h"

namespace lighter::models {

void check_generate_options(const GenerateOptions& o) {
  if (o.max_new_tokens() < 0)
    throw ConfigError("max_new_tokens", "expected a non-negative integer, got " + std::to_string(o.max_new_tokens()));
  if (o.sampler() != "greedy" && o.sampler() != "random" && o.sampler() != "top_k" && o.sampler() != "top_p")
    throw ConfigError("sampler", "expected one of greedy, random, top_k, top_p, got '" + o.sampler() + "'");
  if (!(o.temperature() > 0))
    throw ConfigError("temperature", "expected a positive number, got " + std::to_string(o.temperature()));
  if (o.k() <= 0) throw ConfigError("k", "expected a positive integer, got " + std::to_string(o.k()));
  if (!(o.p() > 0 && o.p() <= 1)) throw ConfigError("p", "expected a number in (0, 1], got " + std::to_string(o.p()));
}

torch::Tensor sample_next(const torch::Tensor& logits, const GenerateOptions& o, at::Generator* generator) {
  TORCH_CHECK(logits.dim() == 2, "sample_next expects logits of shape (batch, vocabulary)");
  if (o.sampler() == "greedy") return logits.argmax(-1);
  // Draws happen on the CPU, where a seeded generator lives; (N, vocabulary) is small.
  torch::Tensor scaled = logits.detach().to(torch::kCPU, torch::kFloat) / o.temperature();
  torch::Tensor ids;  // the candidates' token ids, when the draw is among a subset
  if (o.sampler() == "top_k") {
    auto top = scaled.topk(std::min<int64_t>(o.k(), scaled.size(-1)), -1);
    scaled = std::get<0>(top);
    ids = std::get<1>(top);
  } else if (o.sampler() == "top_p") {
    auto sorted = scaled.sort(-1, /*descending=*/true);
    scaled = std::get<0>(sorted);
    ids = std::get<1>(sorted);
    torch::Tensor probs = torch::softmax(scaled, -1);
    // Keep a token while the tokens before it hold less than p (so the most likely one always stays).
    torch::Tensor before = probs.cumsum(-1) - probs;
    scaled = scaled.masked_fill(before >= o.p(), -std::numeric_limits<float>::infinity());
  }
  torch::Tensor probs = torch::softmax(scaled, -1);
  torch::Tensor draw = generator ? torch::multinomial(probs, 1, false, *generator) : torch::multinomial(probs, 1);
  if (ids.defined()) draw = ids.gather(-1, draw);
  return draw.squeeze(-1).to(logits.device());
}

torch::Tensor generate(ModelImpl& model, const torch::Tensor& prompt, const GenerateOptions& o) {
  check_generate_options(o);
  model.expect_single_io("generate");
  if (prompt.dim() != 2 || prompt.size(1) == 0)
    throw ShapeError("generate: the prompt must be token ids of shape (batch, steps) with at least one step, got " +
                     shape_to_string(Shape(prompt.sizes().begin(), prompt.sizes().end())));
  const std::string act = model.output_activation();
  if (act != "softmax" && act != "linear")
    throw ShapeError("generate: the model must end with softmax or with logits (no activation), not " + act);
  auto params = model.parameters();
  const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();

  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  c10::optional<at::Generator> gen;
  if (o.seed() >= 0) gen = at::detail::createCPUGenerator(static_cast<uint64_t>(o.seed()));

  torch::Tensor tokens = prompt.to(device, torch::kLong);
  const int64_t n = tokens.size(0);
  torch::Tensor stopped = torch::zeros({n}, tokens.options().dtype(torch::kBool));
  layers::DecodeCache cache;
  torch::Tensor next_input = tokens;  // with the cache: what the model has not seen yet
  try {
    for (int64_t step = 0; step < o.max_new_tokens(); ++step) {
      torch::Tensor scores;
      if (o.use_cache()) {
        scores = model.forward_step(next_input, cache, /*pre_activation=*/true);
        cache.position += next_input.size(1);
      } else {
        scores = model.forward_pre_activation(tokens);
      }
      TORCH_CHECK(scores.dim() == 3, "generate: the model must give scores of shape (batch, steps, vocabulary)");
      torch::Tensor next = sample_next(scores.select(1, scores.size(1) - 1), o, gen ? &*gen : nullptr);
      if (o.end_token_id() >= 0) {
        next = torch::where(stopped, torch::full_like(next, o.end_token_id()), next);
        stopped = stopped.logical_or(next.eq(o.end_token_id()));
      }
      tokens = torch::cat({tokens, next.unsqueeze(1)}, 1);
      next_input = next.unsqueeze(1);
      if (o.end_token_id() >= 0 && stopped.all().item<bool>()) break;
    }
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  return tokens.cpu();
}

}  // namespace lighter::models
