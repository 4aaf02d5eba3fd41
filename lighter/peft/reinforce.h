#pragma once
/// Reward-based fine-tuning of sequence models: REINFORCE with a leave-one-out (RLOO) or group-normalised baseline.
///
/// For each prompt the policy samples k completions; a reward scores each; the advantage of a completion is its
/// reward minus a baseline from the other completions of the same prompt; the loss is -A · Σ log π(token) over the
/// completion's valid tokens, averaged over completions. An optional KL penalty to a reference model is subtracted
/// from the reward (per sequence, β · Σ (log π - log π_ref), as RLOO and TRL's RLOOTrainer do). With a PeftModel the
/// reference is the same model with its adapters disabled, so no second copy is held.
///
/// This is REINFORCE (Williams 1992) with the baselines of Kool et al. 2019 (leave-one-out) and Shao et al. 2024
/// (group-normalised); there is no clipped ratio, value network or reuse of samples, so it is not PPO.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/arg.h>

#include "lighter/models/model.h"
#include "lighter/training/optimizers.h"

namespace lighter::peft {

class PeftModel;

/// Scores completions: prompt ids (N, P), completion ids (N, L) and their mask (N, L) (1 for the valid tokens: up
/// to and including the end token) -> rewards (N), float. Any C++ callable of this form can be a reward.
using Reward = std::function<torch::Tensor(const torch::Tensor& prompts, const torch::Tensor& completions,
                                           const torch::Tensor& mask)>;
/// The text of token ids (for text rewards), e.g. a TextVectorizer's decoding.
using Decode = std::function<std::string(const std::vector<int64_t>& ids)>;
/// A reward of one completion's text given its prompt's text.
using TextReward = std::function<double(const std::string& prompt, const std::string& completion)>;

/// A Reward that decodes every prompt and completion (only the valid tokens) and scores the texts with `fn`.
Reward text_reward(Decode decode, TextReward fn);

/// Built-in text rewards:
///
/// Dictionary words: the share of the completion's words found in a word list (one word per line, e.g. Debian's
/// wamerican /usr/share/dict/words), in [0, 1]. A word is a maximal run of letters (and apostrophes inside it) in
/// prompt + completion that ends inside the completion; a word the completion is still in the middle of at its
/// end (no character after it) does not count, nor does a word shorter than `min_length`. No counted word gives 0.
/// Case-insensitive unless `case_sensitive`.
TextReward dictionary_words_reward(const std::vector<std::string>& words, int64_t min_length = 1,
                                   bool case_sensitive = false);
/// Reads a word list file (DataError naming it when missing or empty).
std::vector<std::string> read_word_list(const std::string& path);
/// Character frequency: -|f - target| where f is the share of the completion's characters that are in
/// `characters` (0 for an empty completion's f), in [-1, 0]. E.g. characters "eE", target 0 rewards avoiding the
/// letter e.
TextReward character_frequency_reward(const std::string& characters, double target);

/// A built-in reward from JSON: {"class_name": "DictionaryWords", "config": {"path", "min_length", "case_sensitive"}}
/// or {"class_name": "CharacterFrequency", "config": {"characters", "target"}}. ConfigError naming `path` for an
/// unknown class or a bad field, DataError for a missing word list. Relative paths resolve against `base_dir` when
/// it is not empty.
Reward reward_from_json(const nlohmann::json& spec, const std::string& path, Decode decode,
                        const std::string& base_dir = "");

struct ReinforceOptions {
  /// Completions sampled per prompt (k >= 2 for a baseline).
  TORCH_ARG(int64_t, samples_per_prompt) = 4;
  /// "rloo": A = r - mean of the other k-1 rewards of the prompt; "group": A = (r - mean) / (std + 1e-6) over the k
  /// (unbiased std); "none": A = r.
  TORCH_ARG(std::string, baseline) = "rloo";
  TORCH_ARG(int64_t, max_new_tokens) = 32;
  /// Sampling temperature; the log-probabilities trained are those of the same tempered distribution.
  TORCH_ARG(double, temperature) = 1.0;
  /// A completion ends after this id (-1: none, every completion has max_new_tokens tokens).
  TORCH_ARG(int64_t, end_token_id) = -1;
  /// β of the KL penalty (0: the KL to the reference is measured, when there is one, but not penalised).
  TORCH_ARG(double, kl_coef) = 0.0;
  /// Seed of the sampler (-1: the global generator).
  TORCH_ARG(int64_t, seed) = -1;
};

/// Checks options (ConfigError naming the option).
void check_reinforce_options(const ReinforceOptions& options);
/// Reads {"samples_per_prompt", "baseline", "max_new_tokens", "temperature", "end_token_id", "kl_coef", "seed"};
/// absent keys keep their defaults, unknown keys are errors naming `path`.
ReinforceOptions reinforce_options_from_json(const nlohmann::json& j, const std::string& path);

/// What one update did (means over the batch's completions).
struct ReinforceStats {
  int64_t step = 0;
  double reward = 0;       // the reward's mean, without the KL penalty
  double reward_std = 0;   // its standard deviation over the batch
  double kl = 0;           // mean per-completion Σ (log π - log π_ref) (measured with any reference, penalised
                           // only when kl_coef > 0); 0 without a reference
  double loss = 0;
  double length = 0;       // mean number of valid completion tokens
  double seconds = 0;      // wall time of the update (sampling included)
};

/// The advantages of rewards (N·k), grouped in runs of k per prompt, with `baseline` as in ReinforceOptions.
torch::Tensor advantages(const torch::Tensor& rewards, int64_t k, const std::string& baseline);
/// 1 for each completion token up to and including the first `end_token_id` (all 1 when end_token_id < 0); float.
torch::Tensor completion_mask(const torch::Tensor& completions, int64_t end_token_id);
/// log π(completion token | the tokens before it) under `model` (which maps ids (N, T) to scores (N, T, V)) at
/// `temperature`: (N, L), with gradient when grad mode is on. Runs the model on prompt + completion minus its last
/// token, in the model's current train/eval mode.
torch::Tensor completion_log_probs(models::ModelImpl& model, const torch::Tensor& prompts,
                                   const torch::Tensor& completions, double temperature = 1.0);
/// The REINFORCE loss -mean_i(A_i · Σ_t mask_it · logp_it).
torch::Tensor reinforce_loss(const torch::Tensor& log_probs, const torch::Tensor& mask, const torch::Tensor& advantages);

/// Trains a policy with REINFORCE/RLOO. The policy's trainable tensors (requires_grad; for a PeftModel its adapters)
/// reach the optimizer. The policy runs in eval mode (no dropout), for sampling and for the gradient alike.
class ReinforceTrainer {
 public:
  /// Trains `policy` with no reference (kl_coef must be 0) or against `reference` (a frozen model; nullptr: none).
  ReinforceTrainer(models::ModelPtr policy, const optimizers::OptimizerSpec& optimizer, Reward reward,
                   ReinforceOptions options = {}, models::ModelPtr reference = nullptr);
  /// Trains the active adapter of `policy`; the reference is the same model with adapters disabled. `policy` must
  /// outlive the trainer.
  ReinforceTrainer(PeftModel& policy, const optimizers::OptimizerSpec& optimizer, Reward reward,
                   ReinforceOptions options = {});

  /// One update on prompts (B, P) int64 (equal lengths): B·k completions.
  ReinforceStats step(const torch::Tensor& prompts);
  /// `steps` updates on batches of `batch_size` prompts drawn from `prompts` (N, P) in a reshuffled order (a new
  /// order per pass); `on_step` sees each update's stats. Returns every update's stats.
  std::vector<ReinforceStats> fit(const torch::Tensor& prompts, int64_t steps, int64_t batch_size,
                                  const std::function<void(const ReinforceStats&)>& on_step = {});

  /// The mean reward of `samples` completions per prompt, sampled with the options' temperature (or greedy with
  /// `greedy`), without training. With seed >= 0 the draws are reproducible.
  double evaluate(const torch::Tensor& prompts, int64_t samples = 1, bool greedy = false, int64_t seed = -1);
  /// The completions of prompts (N, P) (sampled as in training, or greedy), as ids (N, L) on the CPU.
  torch::Tensor sample(const torch::Tensor& prompts, bool greedy = false, int64_t seed = -1);

  const ReinforceOptions& options() const { return options_; }
  optimizers::Optimizer& optimizer() { return *optimizer_; }
  models::ModelImpl& policy() { return *policy_; }

 private:
  torch::Tensor reference_log_probs(const torch::Tensor& prompts, const torch::Tensor& completions);
  void init(const optimizers::OptimizerSpec& optimizer);

  models::ModelPtr policy_;
  PeftModel* peft_ = nullptr;
  models::ModelPtr reference_;
  Reward reward_;
  ReinforceOptions options_;
  std::unique_ptr<optimizers::Optimizer> optimizer_;
  int64_t steps_ = 0;
  int64_t draws_ = 0;  // sampling calls so far (a seeded trainer seeds each with seed + draws_)
};

}  // namespace lighter::peft
