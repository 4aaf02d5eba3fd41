#pragma once
/// Text generation with language models (KerasHub's CausalLM.generate and its samplers): greedy, random with a
/// temperature, top-k and top-p, with or without a cache of past keys and values.
#include <string>

#include <ATen/core/Generator.h>
#include <torch/arg.h>

#include "lighter/models/model.h"

namespace lighter::models {

struct GenerateOptions {
  /// Tokens to add after the prompt.
  TORCH_ARG(int64_t, max_new_tokens) = 64;
  /// "greedy" (the most likely token), "random" (drawn from softmax(logits / temperature)), "top_k" (drawn among
  /// the k most likely) or "top_p" (drawn among the smallest set of most likely tokens whose probability reaches p).
  TORCH_ARG(std::string, sampler) = "greedy";
  TORCH_ARG(double, temperature) = 1.0;
  TORCH_ARG(int64_t, k) = 5;
  TORCH_ARG(double, p) = 0.9;
  /// Run each new token through the model alone, with the past keys and values cached (one step per token), or
  /// the whole sequence again for each token. Both give the same tokens.
  TORCH_ARG(bool, use_cache) = true;
  /// A row stops at this id (-1: none); once every row has stopped, generation ends. Later ids of a stopped row
  /// repeat it.
  TORCH_ARG(int64_t, end_token_id) = -1;
  /// Seed of the sampler's random generator (-1: drawn from the global one).
  TORCH_ARG(int64_t, seed) = -1;
};

/// Checks the options (ConfigError naming the option).
void check_generate_options(const GenerateOptions& options);

/// Continues each row of `prompt` (N, T) int64 token ids with the model's predictions: the model maps ids (N, T)
/// to next-token scores (N, T, vocabulary), ending with softmax or no activation (logits). Runs in eval mode
/// without gradients and returns (N, T + new tokens) on the CPU.
torch::Tensor generate(ModelImpl& model, const torch::Tensor& prompt, const GenerateOptions& options = {});

/// One draw per row from next-token logits (N, vocabulary) with the options' sampler; (N) int64.
torch::Tensor sample_next(const torch::Tensor& logits, const GenerateOptions& options, at::Generator* generator = nullptr);

}  // namespace lighter::models
