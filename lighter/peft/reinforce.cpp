#include "lighter/peft/reinforce.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <fstream>
#include <unordered_set>

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lighter/core/error.h"
#include "lighter/core/json.h"
#include "lighter/core/runtime.h"
#include "lighter/models/generation.h"
#include "lighter/peft/lora.h"

namespace lighter::peft {

// ---- rewards -------------------------------------------------------------------------------------------------------

namespace {

std::vector<int64_t> row_ids(const torch::Tensor& ids, int64_t row, const torch::Tensor& mask = {}) {
  torch::Tensor r = ids[row].to(torch::kCPU, torch::kLong).contiguous();
  std::vector<int64_t> out(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
  if (mask.defined()) {
    torch::Tensor m = mask[row].to(torch::kCPU, torch::kFloat).contiguous();
    const float* mp = m.data_ptr<float>();
    std::vector<int64_t> kept;
    for (size_t i = 0; i < out.size(); ++i)
      if (mp[i] > 0) kept.push_back(out[i]);
    out.swap(kept);
  }
  return out;
}

std::string lowered(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_letter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

}  // namespace

Reward text_reward(Decode decode, TextReward fn) {
  if (!decode || !fn) throw Error("text_reward: both the decoder and the reward function are needed");
  return [decode = std::move(decode), fn = std::move(fn)](const torch::Tensor& prompts, const torch::Tensor& completions,
                                                          const torch::Tensor& mask) {
    const int64_t n = completions.size(0);
    torch::Tensor rewards = torch::empty({n}, torch::kFloat);
    auto acc = rewards.accessor<float, 1>();
    for (int64_t i = 0; i < n; ++i)
      acc[i] = static_cast<float>(fn(decode(row_ids(prompts, i)), decode(row_ids(completions, i, mask))));
    return rewards;
  };
}

std::vector<std::string> read_word_list(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError(path, "cannot open the word list");
  std::vector<std::string> words;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) words.push_back(line);
  }
  if (words.empty()) throw DataError(path, "the word list is empty");
  return words;
}

TextReward dictionary_words_reward(const std::vector<std::string>& words, int64_t min_length, bool case_sensitive) {
  if (words.empty()) throw ConfigError("words", "the word list is empty");
  if (min_length < 1) throw ConfigError("min_length", "expected a positive integer, got " + std::to_string(min_length));
  auto dictionary = std::make_shared<std::unordered_set<std::string>>();
  for (const auto& w : words) dictionary->insert(case_sensitive ? w : lowered(w));
  return [dictionary, min_length, case_sensitive](const std::string& prompt, const std::string& completion) {
    const std::string text = prompt + completion;
    const size_t start = prompt.size();
    size_t counted = 0, known = 0;
    size_t i = 0;
    while (i < text.size()) {
      if (!is_letter(text[i])) {
        ++i;
        continue;
      }
      size_t j = i + 1;
      // letters, and apostrophes with a letter on both sides ("Ishmael's")
      while (j < text.size() && (is_letter(text[j]) || (text[j] == '\'' && j + 1 < text.size() && is_letter(text[j + 1]))))
        ++j;
      // [i, j) is a word; it counts when it ends inside the completion and something follows it
      if (j > start && j < text.size() && static_cast<int64_t>(j - i) >= min_length) {
        ++counted;
        const std::string word = text.substr(i, j - i);
        if (dictionary->count(case_sensitive ? word : lowered(word))) ++known;
      }
      i = j;
    }
    return counted ? static_cast<double>(known) / static_cast<double>(counted) : 0.0;
  };
}

TextReward character_frequency_reward(const std::string& characters, double target) {
  if (characters.empty()) throw ConfigError("characters", "expected at least one character");
  if (!(target >= 0 && target <= 1)) throw ConfigError("target", "expected a share in [0, 1], got " + std::to_string(target));
  return [characters, target](const std::string&, const std::string& completion) {
    size_t hits = 0;
    for (char c : completion)
      if (characters.find(c) != std::string::npos) ++hits;
    const double f = completion.empty() ? 0.0 : static_cast<double>(hits) / static_cast<double>(completion.size());
    return -std::abs(f - target);
  };
}

Reward reward_from_json(const nlohmann::json& spec, const std::string& path, Decode decode, const std::string& base_dir) {
  const ClassSpec cs = read_class_spec(spec, path, "reward");
  ConfigReader r(cs.config, cs.config_path);
  TextReward fn;
  if (cs.class_name == "DictionaryWords") {
    std::string file = r.get<std::string>("path", "/usr/share/dict/words");
    if (!base_dir.empty() && !file.empty() && file[0] != '/') file = base_dir + "/" + file;
    const int64_t min_length = r.positive_int("min_length", 1);
    const bool case_sensitive = r.get<bool>("case_sensitive", false);
    r.finish();
    fn = dictionary_words_reward(read_word_list(file), min_length, case_sensitive);
  } else if (cs.class_name == "CharacterFrequency") {
    const std::string characters = r.get<std::string>("characters");
    if (characters.empty()) throw ConfigError(r.path_of("characters"), "expected at least one character");
    const double target = r.get<double>("target", 0.0);
    if (!(target >= 0 && target <= 1))
      throw ConfigError(r.path_of("target"), "expected a share in [0, 1], got " + describe(r.raw("target")));
    r.finish();
    fn = character_frequency_reward(characters, target);
  } else {
    throw ConfigError(cs.name_path, "unknown reward '" + cs.class_name +
                                        "' (built-in rewards: DictionaryWords, CharacterFrequency; C++ programs can "
                                        "pass any callable)");
  }
  return text_reward(std::move(decode), std::move(fn));
}

// ---- options -------------------------------------------------------------------------------------------------------

void check_reinforce_options(const ReinforceOptions& o) {
  if (o.samples_per_prompt() < 1)
    throw ConfigError("samples_per_prompt", "expected a positive integer, got " + std::to_string(o.samples_per_prompt()));
  if (o.baseline() != "rloo" && o.baseline() != "group" && o.baseline() != "none")
    throw ConfigError("baseline", "expected \"rloo\", \"group\" or \"none\", got \"" + o.baseline() + "\"");
  if (o.baseline() != "none" && o.samples_per_prompt() < 2)
    throw ConfigError("samples_per_prompt", "the " + o.baseline() +
                                                " baseline compares the completions of one prompt: expected at least 2, got " +
                                                std::to_string(o.samples_per_prompt()));
  if (o.max_new_tokens() < 1)
    throw ConfigError("max_new_tokens", "expected a positive integer, got " + std::to_string(o.max_new_tokens()));
  if (!(o.temperature() > 0))
    throw ConfigError("temperature", "expected a positive number, got " + std::to_string(o.temperature()));
  if (!(o.kl_coef() >= 0)) throw ConfigError("kl_coef", "expected a non-negative number, got " + std::to_string(o.kl_coef()));
}

ReinforceOptions reinforce_options_from_json(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) throw ConfigError(path, "expected an object, got " + describe(j));
  ConfigReader r(j, path);
  ReinforceOptions o;
  o.samples_per_prompt(r.positive_int("samples_per_prompt", o.samples_per_prompt()));
  o.baseline(r.choice("baseline", o.baseline(), {"rloo", "group", "none"}));
  o.max_new_tokens(r.positive_int("max_new_tokens", o.max_new_tokens()));
  o.temperature(r.positive("temperature", o.temperature()));
  o.end_token_id(r.get<int64_t>("end_token_id", o.end_token_id()));
  o.kl_coef(r.non_negative("kl_coef", o.kl_coef()));
  o.seed(r.get<int64_t>("seed", o.seed()));
  r.finish();
  try {
    check_reinforce_options(o);
  } catch (const ConfigError& e) {
    throw ConfigError(join_path(path, e.path()), e.message());
  }
  return o;
}

// ---- the pieces of an update ---------------------------------------------------------------------------------------

torch::Tensor advantages(const torch::Tensor& rewards, int64_t k, const std::string& baseline) {
  TORCH_CHECK(rewards.dim() == 1 && k >= 1 && rewards.size(0) % k == 0,
              "advantages: expected rewards (N·k) in groups of k");
  torch::Tensor r = rewards.to(torch::kFloat).view({-1, k});
  torch::Tensor a;
  if (baseline == "none") {
    a = r;
  } else if (baseline == "rloo") {
    TORCH_CHECK(k >= 2, "advantages: the leave-one-out baseline needs k >= 2");
    // r_i - (Σ_j r_j - r_i) / (k - 1)
    a = r - (r.sum(1, true) - r) / static_cast<double>(k - 1);
  } else if (baseline == "group") {
    TORCH_CHECK(k >= 2, "advantages: the group baseline needs k >= 2");
    a = (r - r.mean(1, true)) / (r.std(1, /*unbiased=*/true, /*keepdim=*/true) + 1e-6);
  } else {
    throw ConfigError("baseline", "expected \"rloo\", \"group\" or \"none\", got \"" + baseline + "\"");
  }
  return a.reshape({-1});
}

torch::Tensor completion_mask(const torch::Tensor& completions, int64_t end_token_id) {
  if (end_token_id < 0) return torch::ones(completions.sizes(), completions.options().dtype(torch::kFloat));
  // valid while no end token came before this position
  torch::Tensor ends = completions.eq(end_token_id).to(torch::kInt);
  torch::Tensor before = ends.cumsum(1) - ends;
  return before.eq(0).to(torch::kFloat);
}

torch::Tensor completion_log_probs(models::ModelImpl& model, const torch::Tensor& prompts,
                                   const torch::Tensor& completions, double temperature) {
  TORCH_CHECK(prompts.dim() == 2 && completions.dim() == 2 && prompts.size(0) == completions.size(0),
              "completion_log_probs: expected prompts (N, P) and completions (N, L)");
  const int64_t p = prompts.size(1), l = completions.size(1);
  TORCH_CHECK(p >= 1 && l >= 1, "completion_log_probs: empty prompt or completion");
  torch::Tensor ids = torch::cat({prompts.to(torch::kLong), completions.to(prompts.device(), torch::kLong)}, 1);
  torch::Tensor scores = model.forward_pre_activation(ids.slice(1, 0, p + l - 1));
  TORCH_CHECK(scores.dim() == 3, "completion_log_probs: the model must give scores (N, T, vocabulary)");
  torch::Tensor tail = scores.slice(1, p - 1, p + l - 1);  // the scores that predict the completion's tokens
  if (temperature != 1.0) tail = tail / temperature;
  return torch::log_softmax(tail.to(torch::kFloat), -1).gather(-1, ids.slice(1, p).unsqueeze(-1)).squeeze(-1);
}

torch::Tensor reinforce_loss(const torch::Tensor& log_probs, const torch::Tensor& mask, const torch::Tensor& adv) {
  torch::Tensor sequence = (log_probs * mask.to(log_probs.device(), log_probs.scalar_type())).sum(1);
  return -(adv.to(sequence.device(), sequence.scalar_type()).detach() * sequence).mean();
}

// ---- the trainer ---------------------------------------------------------------------------------------------------

ReinforceTrainer::ReinforceTrainer(models::ModelPtr policy, const optimizers::OptimizerSpec& optimizer, Reward reward,
                                   ReinforceOptions options, models::ModelPtr reference)
    : policy_(std::move(policy)), reference_(std::move(reference)), reward_(std::move(reward)), options_(std::move(options)) {
  if (!policy_) throw Error("ReinforceTrainer: no policy model");
  apply_runtime_defaults();
  if (options_.kl_coef() > 0 && !reference_)
    throw ConfigError("kl_coef", "a KL penalty needs a reference model (or a PeftModel, whose reference is the "
                                 "model with adapters disabled)");
  if (reference_) {
    reference_->eval();
    for (auto& t : reference_->parameters()) t.set_requires_grad(false);
  }
  init(optimizer);
}

ReinforceTrainer::ReinforceTrainer(PeftModel& policy, const optimizers::OptimizerSpec& optimizer, Reward reward,
                                   ReinforceOptions options)
    : policy_(policy.model()), peft_(&policy), reward_(std::move(reward)), options_(std::move(options)) {
  if (!policy_) throw Error("ReinforceTrainer: the PeftModel holds no model");
  apply_runtime_defaults();
  init(optimizer);
}

void ReinforceTrainer::init(const optimizers::OptimizerSpec& optimizer) {
  check_reinforce_options(options_);
  if (!reward_) throw Error("ReinforceTrainer: no reward");
  if (!policy_->built()) throw Error("ReinforceTrainer: the policy model is not built");
  policy_->expect_single_io("ReinforceTrainer");
  std::vector<torch::Tensor> trainable;
  for (auto& t : policy_->parameters())
    if (t.requires_grad()) trainable.push_back(t);
  if (trainable.empty()) throw Error("ReinforceTrainer: the policy has no trainable weights");
  optimizer_ = std::make_unique<optimizers::Optimizer>(optimizer, std::move(trainable));
}

torch::Tensor ReinforceTrainer::sample(const torch::Tensor& prompts, bool greedy, int64_t seed) {
  if (prompts.dim() != 2 || prompts.size(0) == 0 || prompts.size(1) == 0)
    throw ShapeError("ReinforceTrainer: prompts must be token ids of shape (batch, steps), got " +
                     shape_to_string(Shape(prompts.sizes().begin(), prompts.sizes().end())));
  models::GenerateOptions g;
  g.max_new_tokens(options_.max_new_tokens())
      .sampler(greedy ? "greedy" : "random")
      .temperature(options_.temperature())
      .end_token_id(options_.end_token_id());
  if (seed >= 0)
    g.seed(seed);
  else if (options_.seed() >= 0)
    g.seed(options_.seed() + draws_);
  ++draws_;
  torch::Tensor tokens = models::generate(*policy_, prompts, g);
  return tokens.slice(1, prompts.size(1));
}

torch::Tensor ReinforceTrainer::reference_log_probs(const torch::Tensor& prompts, const torch::Tensor& completions) {
  torch::NoGradGuard no_grad;
  if (peft_) {
    DisableAdapters off(*peft_);
    return completion_log_probs(*policy_, prompts, completions, options_.temperature());
  }
  return completion_log_probs(*reference_, prompts, completions, options_.temperature());
}

ReinforceStats ReinforceTrainer::step(const torch::Tensor& prompts) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t k = options_.samples_per_prompt();
  auto params = policy_->parameters();
  const torch::Device device = params.front().device();
  torch::Tensor repeated = prompts.to(torch::kCPU, torch::kLong).repeat_interleave(k, 0);  // groups of k rows
  torch::Tensor completions = sample(repeated);
  torch::Tensor mask = completion_mask(completions, options_.end_token_id());

  torch::Tensor rewards = reward_(repeated, completions, mask);
  if (!rewards.defined() || rewards.dim() != 1 || rewards.size(0) != repeated.size(0))
    throw ShapeError("ReinforceTrainer: the reward must give one value per completion (" +
                     std::to_string(repeated.size(0)) + ")");
  rewards = rewards.to(torch::kCPU, torch::kFloat);
  if (!torch::isfinite(rewards).all().item<bool>()) throw Error("ReinforceTrainer: the reward gave a NaN or infinity");

  const bool was_training = policy_->is_training();
  policy_->eval();
  torch::Tensor p_dev = repeated.to(device), c_dev = completions.to(device), m_dev = mask.to(device);
  ReinforceStats stats;
  torch::Tensor shaped = rewards;
  try {
    // The reference runs first, before the policy's graph exists (disabling adapters swaps the tensors of
    // modules_to_save).
    // The KL is measured whenever there is a reference (it costs one forward pass without gradient) and
    // penalised when kl_coef > 0.
    torch::Tensor ref;
    if (peft_ || reference_) ref = reference_log_probs(p_dev, c_dev);
    torch::Tensor log_probs = completion_log_probs(*policy_, p_dev, c_dev, options_.temperature());
    if (ref.defined()) {
      torch::Tensor kl = ((log_probs.detach() - ref) * m_dev).sum(1).to(torch::kCPU, torch::kFloat);
      stats.kl = kl.mean().item<double>();
      if (options_.kl_coef() > 0) shaped = rewards - options_.kl_coef() * kl;
    }
    torch::Tensor loss = reinforce_loss(log_probs, m_dev, advantages(shaped, k, options_.baseline()));
    optimizer_->zero_grad();
    loss.backward();
    optimizer_->step();
    stats.loss = loss.item<double>();
  } catch (...) {
    policy_->train(was_training);
    throw;
  }
  policy_->train(was_training);
  stats.step = ++steps_;
  stats.reward = rewards.mean().item<double>();
  stats.reward_std = rewards.numel() > 1 ? rewards.std().item<double>() : 0.0;
  stats.length = mask.sum(1).mean().item<double>();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::debug("reinforce step {}: reward {:.4f} (std {:.4f}), kl {:.4f}, loss {:.4f}, length {:.1f}, {:.2f} s",
                stats.step, stats.reward, stats.reward_std, stats.kl, stats.loss, stats.length, stats.seconds);
  return stats;
}

std::vector<ReinforceStats> ReinforceTrainer::fit(const torch::Tensor& prompts, int64_t steps, int64_t batch_size,
                                                  const std::function<void(const ReinforceStats&)>& on_step) {
  if (steps < 0) throw ConfigError("steps", "expected a non-negative integer, got " + std::to_string(steps));
  if (batch_size < 1) throw ConfigError("batch_size", "expected a positive integer, got " + std::to_string(batch_size));
  if (prompts.dim() != 2 || prompts.size(0) == 0)
    throw ShapeError("ReinforceTrainer::fit: prompts must be token ids of shape (prompts, steps)");
  const int64_t n = prompts.size(0);
  c10::optional<at::Generator> gen;
  if (options_.seed() >= 0) gen = at::detail::createCPUGenerator(static_cast<uint64_t>(options_.seed()));
  std::vector<ReinforceStats> history;
  torch::Tensor order;
  int64_t next = n;  // position in `order`; n: a new pass is due
  for (int64_t s = 0; s < steps; ++s) {
    std::vector<torch::Tensor> parts;
    int64_t need = std::min(batch_size, n);
    while (need > 0) {
      if (next >= n) {
        order = gen ? torch::randperm(n, *gen, torch::kLong) : torch::randperm(n, torch::kLong);
        next = 0;
      }
      const int64_t take = std::min(need, n - next);
      parts.push_back(order.slice(0, next, next + take));
      next += take;
      need -= take;
    }
    torch::Tensor batch = prompts.index_select(0, torch::cat(parts).to(prompts.device()));
    history.push_back(step(batch));
    if (on_step) on_step(history.back());
  }
  return history;
}

double ReinforceTrainer::evaluate(const torch::Tensor& prompts, int64_t samples, bool greedy, int64_t seed) {
  if (samples < 1) throw ConfigError("samples", "expected a positive integer, got " + std::to_string(samples));
  torch::Tensor repeated = prompts.to(torch::kCPU, torch::kLong).repeat_interleave(samples, 0);
  torch::Tensor completions = sample(repeated, greedy, seed);
  torch::Tensor rewards = reward_(repeated, completions, completion_mask(completions, options_.end_token_id()));
  if (!rewards.defined() || rewards.numel() != repeated.size(0))
    throw ShapeError("ReinforceTrainer: the reward must give one value per completion");
  return rewards.to(torch::kCPU, torch::kDouble).mean().item<double>();
}

}  // namespace lighter::peft
