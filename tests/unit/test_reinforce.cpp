#include "lighter_test.h"

#include <filesystem>
#include <fstream>

#include "char_lm_run.h"
#include "lighter/peft/lora.h"
#include "lighter/peft/reinforce.h"

// Reward-based fine-tuning (REINFORCE with leave-one-out and group baselines): the advantages, masks, log-probabilities
// and loss against hand computations, the built-in rewards on hand-made texts, JSON errors, and training: a bigram
// model learns a rewarded token, and a LoRA adapter on a transformer learns it with a KL penalty to the model with
// adapters disabled while the base stays bit-identical.

namespace L = lighter;
namespace P = lighter::peft;
using namespace lighter::layers;
using L::json;
using lighter_test::max_abs_diff;

namespace {

// ids -> Embedding(v, v): each token's row is the next token's logits (a bigram model).
L::models::ModelPtr bigram(int64_t v) {
  return std::make_shared<L::models::SequentialImpl>(std::vector<LayerRef>{
      InputLayer(InputLayerOptions({-1}).dtype("int64")), Embedding(EmbeddingOptions(v, v).name("table"))});
}

L::models::ModelPtr tiny_lm(int64_t vocab, int64_t length) {
  return std::make_shared<L::models::SequentialImpl>(std::vector<LayerRef>{
      InputLayer(InputLayerOptions({-1}).dtype("int64")),
      TokenAndPositionEmbedding(TokenAndPositionEmbeddingOptions(vocab, length, 16)),
      TransformerDecoder(TransformerOptions(32, 2).name("block")), Dense(DenseOptions(vocab).name("head"))});
}

// The share of completion tokens equal to `id` (every token valid).
P::Reward share_of(int64_t id) {
  return [id](const torch::Tensor&, const torch::Tensor& completions, const torch::Tensor& mask) {
    return (completions.eq(id).to(torch::kFloat) * mask).sum(1) / mask.sum(1).clamp_min(1);
  };
}

// Token id i is the character 'a' + i - 1, id 27 a space (id 0 is padding, dropped).
std::string letters(const std::vector<int64_t>& ids) {
  std::string s;
  for (auto id : ids)
    if (id > 0) s += id == 27 ? ' ' : static_cast<char>('a' + id - 1);
  return s;
}

torch::Tensor ids_of(const std::string& text) {
  std::vector<int64_t> v;
  for (char c : text) v.push_back(c == ' ' ? 27 : c - 'a' + 1);
  return torch::tensor(v, torch::kLong).unsqueeze(0);
}

}  // namespace

TEST_CASE("REINFORCE pieces: advantages, completion masks and the loss against hand computations", "[reinforce]") {
  auto r = torch::tensor({1.f, 2.f, 3.f, 4.f, 0.f, 0.f, 0.f, 1.f});
  auto rloo = P::advantages(r, 4, "rloo");
  auto expected = torch::tensor({1 - 3.f, 2 - 8 / 3.f, 3 - 7 / 3.f, 4 - 2.f, -1 / 3.f, -1 / 3.f, -1 / 3.f, 1.f});
  REQUIRE(max_abs_diff(rloo, expected) < 1e-6);
  // Leave-one-out is the group-mean baseline scaled by k / (k - 1).
  auto mean_centred = r.view({2, 4}) - r.view({2, 4}).mean(1, true);
  REQUIRE(max_abs_diff(rloo, (mean_centred * 4.0 / 3.0).reshape({-1})) < 1e-6);
  auto group = P::advantages(r, 4, "group");
  const double std1 = std::sqrt((2.25 + 0.25 + 0.25 + 2.25) / 3.0);
  REQUIRE(group[0].item<double>() == Approx(-1.5 / (std1 + 1e-6)).epsilon(1e-5));
  REQUIRE(group[3].item<double>() == Approx(1.5 / (std1 + 1e-6)).epsilon(1e-5));
  REQUIRE(group.slice(0, 0, 4).sum().item<double>() == Approx(0).margin(1e-5));
  REQUIRE(torch::equal(P::advantages(r, 4, "none"), r));
  // Equal rewards give no signal.
  REQUIRE(P::advantages(torch::full({3}, 0.7f), 3, "group").abs().max().item<double>() < 1e-5);
  LIGHTER_REQUIRE_THROWS_WITH(P::advantages(r, 4, "ppo"), "baseline");

  auto completions = torch::tensor({{5, 2, 7}, {2, 3, 4}, {1, 1, 1}}, torch::kLong);
  REQUIRE(torch::equal(P::completion_mask(completions, 2),
                       torch::tensor({{1.f, 1.f, 0.f}, {1.f, 0.f, 0.f}, {1.f, 1.f, 1.f}})));
  REQUIRE(torch::equal(P::completion_mask(completions, -1), torch::ones({3, 3})));

  // -mean(A_i Σ_t mask log p): sequences -3 and -1.5, advantages 2 and -1 -> -mean(-6, 1.5) = 2.25.
  auto lp = torch::tensor({{-1.f, -2.f, -3.f}, {-0.5f, -0.5f, -0.5f}});
  auto mask = torch::tensor({{1.f, 1.f, 0.f}, {1.f, 1.f, 1.f}});
  REQUIRE(P::reinforce_loss(lp, mask, torch::tensor({2.f, -1.f})).item<double>() == Approx(2.25));
}

TEST_CASE("completion_log_probs are the model's tempered log-softmax at the completion's positions, with gradient",
          "[reinforce]") {
  torch::manual_seed(3);
  auto lm = tiny_lm(9, 20);
  lm->eval();
  auto prompts = torch::randint(1, 9, {3, 4}, torch::kLong);
  auto completions = torch::randint(1, 9, {3, 5}, torch::kLong);
  auto lp = P::completion_log_probs(*lm, prompts, completions, 0.7);
  REQUIRE(lp.sizes() == torch::IntArrayRef({3, 5}));
  REQUIRE(lp.requires_grad());
  torch::NoGradGuard no_grad;
  auto full = torch::cat({prompts, completions}, 1);
  auto logits = lm->forward_pre_activation(full);  // position t predicts token t + 1
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t t = 0; t < 5; ++t) {
      auto row = torch::log_softmax(logits[i][3 + t] / 0.7, -1);
      REQUIRE(lp[i][t].item<double>() == Approx(row[completions[i][t].item<int64_t>()].item<double>()).margin(1e-5));
    }
}

TEST_CASE("Built-in rewards: dictionary words and character frequency on hand-made texts", "[reinforce]") {
  auto words = P::dictionary_words_reward({"the", "cat", "sat", "Ishmael's"});
  // "The" ends in the prompt; cat, sat known; on, a, mat not: 2 of 5.
  REQUIRE(words("The ca", "t sat on a mat.") == Approx(0.4));
  // A word still open at the end does not count: only "cat".
  REQUIRE(words("The ca", "t sat") == Approx(1.0));
  REQUIRE(words("the ", "xq") == 0.0);  // no finished word
  REQUIRE(words("Call me ", "ishmael's boat") == Approx(1.0));
  REQUIRE(words("", "THE CAT ") == Approx(1.0));
  REQUIRE(P::dictionary_words_reward({"the"}, 1, /*case_sensitive=*/true)("", "THE the ") == Approx(0.5));
  // min_length 3 drops on and a: cat, sat, mat -> 2 of 3.
  REQUIRE(P::dictionary_words_reward({"the", "cat", "sat"}, 3)("The ca", "t sat on a mat.") == Approx(2.0 / 3.0));

  auto no_e = P::character_frequency_reward("eE", 0.0);
  REQUIRE(no_e("", "Eeab") == Approx(-0.5));
  REQUIRE(no_e("", "") == 0.0);
  REQUIRE(P::character_frequency_reward("a", 0.25)("", "aabb") == Approx(-0.25));

  // As a Reward over ids: decoded with the mask (tokens after the end are dropped).
  auto reward = P::text_reward(letters, [](const std::string& prompt, const std::string& completion) {
    return static_cast<double>(prompt.size() * 10 + completion.size());
  });
  auto prompts = torch::tensor({{1, 2}, {3, 4}}, torch::kLong);
  auto completions = torch::tensor({{5, 6, 7}, {8, 9, 10}}, torch::kLong);
  auto mask = torch::tensor({{1.f, 1.f, 0.f}, {1.f, 1.f, 1.f}});
  REQUIRE(torch::equal(reward(prompts, completions, mask), torch::tensor({22.f, 23.f})));
}

TEST_CASE("Rewards and REINFORCE options from JSON, and their mistakes named by path", "[reinforce]") {
  const auto dir = std::filesystem::temp_directory_path() / "lighter_reinforce_json";
  std::filesystem::create_directories(dir);
  std::ofstream((dir / "words.txt").string()) << "the\ncat\n\n";
  auto reward = P::reward_from_json(
      json::parse(R"({"class_name": "DictionaryWords", "config": {"path": "words.txt", "min_length": 2}})"),
      "reinforce.reward", letters, dir.string());
  // "the ca" + "t dog ": cat is in the list, dog is not.
  REQUIRE(reward(ids_of("the ca"), ids_of("t dog "), torch::ones({1, 6}))[0].item<float>() == Approx(0.5));
  // Tokens after the end are not read: "t d" ends inside "d".
  auto cut = torch::tensor({{1.f, 1.f, 1.f, 0.f, 0.f, 0.f}});
  REQUIRE(reward(ids_of("the ca"), ids_of("t dog "), cut)[0].item<float>() == Approx(1.0));
  auto freq = P::reward_from_json(json::parse(R"({"class_name": "CharacterFrequency", "config": {"characters": "e"}})"),
                                  "r", letters);
  REQUIRE(freq(ids_of("a"), ids_of("eeb"), torch::ones({1, 3}))[0].item<float>() == Approx(-2.0 / 3.0));

  LIGHTER_REQUIRE_THROWS_WITH(P::reward_from_json(json::parse(R"({"class_name": "Fluency"})"), "reinforce.reward", letters),
                              "reinforce.reward.class_name: unknown reward 'Fluency'");
  LIGHTER_REQUIRE_THROWS_WITH(
      P::reward_from_json(json::parse(R"({"class_name": "DictionaryWords", "config": {"path": "missing.txt"}})"),
                          "reinforce.reward", letters, dir.string()),
      "missing.txt");
  LIGHTER_REQUIRE_THROWS_WITH(
      P::reward_from_json(json::parse(R"({"class_name": "DictionaryWords", "config": {"min_length": -1}})"),
                          "reinforce.reward", letters),
      "reinforce.reward.config.min_length");
  LIGHTER_REQUIRE_THROWS_WITH(
      P::reward_from_json(json::parse(R"({"class_name": "CharacterFrequency", "config": {"characters": "e", "target": 2}})"),
                          "reinforce.reward", letters),
      "reinforce.reward.config.target");
  LIGHTER_REQUIRE_THROWS_WITH(
      P::reward_from_json(json::parse(R"({"class_name": "CharacterFrequency", "config": {"characters": "e", "colour": 1}})"),
                          "reinforce.reward", letters),
      "colour");

  auto o = P::reinforce_options_from_json(
      json::parse(R"({"samples_per_prompt": 6, "baseline": "group", "kl_coef": 0.05, "max_new_tokens": 12})"), "reinforce");
  REQUIRE(o.samples_per_prompt() == 6);
  REQUIRE(o.baseline() == "group");
  REQUIRE(o.kl_coef() == 0.05);
  REQUIRE(o.max_new_tokens() == 12);
  REQUIRE(o.temperature() == 1.0);
  LIGHTER_REQUIRE_THROWS_WITH(P::reinforce_options_from_json(json::parse(R"({"baseline": "ppo"})"), "reinforce"),
                              "reinforce.baseline");
  LIGHTER_REQUIRE_THROWS_WITH(P::reinforce_options_from_json(json::parse(R"({"samples_per_prompt": 1})"), "reinforce"),
                              "reinforce.samples_per_prompt: the rloo baseline compares");
  LIGHTER_REQUIRE_THROWS_WITH(P::reinforce_options_from_json(json::parse(R"({"kl_coef": -1})"), "reinforce"),
                              "reinforce.kl_coef");
  LIGHTER_REQUIRE_THROWS_WITH(P::reinforce_options_from_json(json::parse(R"({"epochs": 3})"), "reinforce"), "epochs");
  std::filesystem::remove_all(dir);
}

TEST_CASE("REINFORCE with a leave-one-out baseline teaches a bigram model a rewarded token", "[reinforce][training]") {
  L::seed_everything(11);
  auto model = bigram(6);
  auto prompts = torch::randint(0, 6, {32, 1}, torch::kLong);
  P::ReinforceTrainer trainer(model, L::optimizers::adam(0.1), share_of(3),
                              P::ReinforceOptions().samples_per_prompt(4).max_new_tokens(8).seed(1));
  const double before = trainer.evaluate(prompts, 4, false, 100);
  REQUIRE(before < 0.4);  // about 1/6 at the start
  std::vector<double> rewards;
  auto history = trainer.fit(prompts, 40, 8, [&](const P::ReinforceStats& s) { rewards.push_back(s.reward); });
  REQUIRE(history.size() == 40);
  REQUIRE(rewards.size() == 40);
  REQUIRE(history.back().step == 40);
  REQUIRE(history.back().length == 8);
  const double after = trainer.evaluate(prompts, 4, false, 100);
  INFO("reward before " << before << ", after " << after);
  REQUIRE(after > 0.9);
  // Without a reference there is no KL, and asking for one is refused.
  REQUIRE(history.back().kl == 0);
  LIGHTER_REQUIRE_THROWS_WITH(P::ReinforceTrainer(bigram(6), L::optimizers::adam(0.1), share_of(3),
                                                  P::ReinforceOptions().kl_coef(0.1)),
                              "reference");
  LIGHTER_REQUIRE_THROWS_WITH(trainer.step(torch::zeros({2}, torch::kLong)), "prompts must be token ids");
  // A reward of the wrong size is refused.
  P::ReinforceTrainer bad(bigram(6), L::optimizers::adam(0.1),
                          [](const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) { return torch::zeros({1}); });
  LIGHTER_REQUIRE_THROWS_WITH(bad.step(prompts.slice(0, 0, 2)), "one value per completion");
}

TEST_CASE("REINFORCE on a LoRA adapter: KL to the adapters-disabled model starts at 0, only the adapter trains",
          "[reinforce][peft][training]") {
  L::seed_everything(12);
  auto lm = tiny_lm(8, 24);
  std::map<std::string, torch::Tensor> base;
  for (const auto& [k, t] : L::model_tensors(*lm)) base[k] = t.detach().clone();
  P::PeftModel peft(lm, P::LoraConfig().r(4).lora_alpha(8).target_modules({"Dense"}));
  auto prompts = torch::randint(1, 8, {16, 4}, torch::kLong);
  P::ReinforceTrainer trainer(peft, L::optimizers::adam(0.02), share_of(5),
                              P::ReinforceOptions().samples_per_prompt(4).max_new_tokens(6).kl_coef(0.02).seed(2));
  const double before = trainer.evaluate(prompts, 4, false, 200);
  auto first = trainer.step(prompts.slice(0, 0, 8));
  REQUIRE(first.kl == Approx(0).margin(1e-6));  // a fresh adapter is the reference
  auto history = trainer.fit(prompts, 40, 8);
  const double after = trainer.evaluate(prompts, 4, false, 200);
  INFO("reward before " << before << ", after " << after << ", final KL " << history.back().kl);
  REQUIRE(after > before + 0.3);
  REQUIRE(history.back().kl > 0);
  for (const auto& [k, t] : L::model_tensors(*lm)) REQUIRE(torch::equal(t, base.at(k)));
  // With adapters disabled the model is the base model again.
  {
    P::DisableAdapters off(peft);
    REQUIRE(trainer.evaluate(prompts, 4, false, 200) == Approx(before).margin(1e-9));
  }
  REQUIRE(peft.adapters_enabled());
}

TEST_CASE("lighter train with a reinforce section trains an adapter on rewards and reports held-out rewards",
          "[reinforce][cli]") {
  const std::string dir = lighter_test::temp_dir("reinforce_cli");
  {
    std::ofstream text(dir + "/lines.txt");
    for (int i = 0; i < 40; ++i) text << "abc cab bca\nbca abc cab\n";
  }
  // A bigram model of the characters: a, b, c, space, newline, padding and OOV are 7 ids.
  json base = lighter_test::tiny_char_lm_run(dir + "/lines.txt", dir + "/base", 3, 0.02);
  std::string out;
  int rc = lighter_test::run_cli("train " + lighter_test::write_json(dir + "/base.json", base), &out);
  INFO(out);
  REQUIRE(rc == 0);

  // Reward: as many a's as possible (-|share of 'a' - 1|).
  json rl = {{"name", "more_a"},
             {"seed", 3},
             {"device", "cpu"},
             {"data", {{"train", {{"format", "prompts"}, {"path", "lines.txt"}, {"prompt_length", 3}}},
                       {"validation_split", 0.25}}},
             {"adapters", {{"base_model", "base"}, {"r", 2}, {"lora_alpha", 4}, {"target_modules", {"Embedding", "Dense"}}}},
             {"reinforce",
              {{"reward", {{"class_name", "CharacterFrequency"}, {"config", {{"characters", "a"}, {"target", 1.0}}}}},
               {"steps", 30}, {"batch_size", 8}, {"samples_per_prompt", 4}, {"max_new_tokens", 6}, {"kl_coef", 0.01},
               {"evaluation_samples", 2}, {"log_every", 10}}},
             {"compile", {{"optimizer", {{"class_name", "Adam"}, {"config", {{"learning_rate", 0.05}}}}}}},
             {"output_dir", dir + "/rl"}};
  const std::string cfg = lighter_test::write_json(dir + "/rl.json", rl);
  rc = lighter_test::run_cli("train " + cfg, &out);
  INFO(out);
  REQUIRE(rc == 0);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("step 30/30"));
  REQUIRE_THAT(out, LIGHTER_CONTAINS("held-out reward after"));
  json metrics = L::read_json_file(dir + "/rl/metrics.json");
  const double before = metrics["reward"]["heldout_before"].get<double>();
  const double after = metrics["reward"]["heldout_after"].get<double>();
  INFO("held-out reward before " << before << ", after " << after);
  REQUIRE(after > before + 0.2);
  REQUIRE(metrics["reward"]["heldout_prompts"] == 20);  // 80 lines, a quarter held out
  REQUIRE(metrics["steps"] == 30);
  REQUIRE(metrics["samples"].size() == 3);
  REQUIRE(metrics["parameters"]["trainable"].get<int64_t>() < metrics["parameters"]["total"].get<int64_t>());
  const std::string csv = L::read_text_file(dir + "/rl/history.csv");
  REQUIRE(csv.rfind("step,reward,reward_std,kl,loss,length,seconds\n", 0) == 0);
  REQUIRE(std::count(csv.begin(), csv.end(), '\n') == 31);
  json extra = L::read_json_file(dir + "/rl/lighter.json");
  REQUIRE(extra["adapter"]["base_model"].get<std::string>().find("base") != std::string::npos);
  REQUIRE(extra["reinforce"]["baseline"] == "rloo");
  REQUIRE(std::filesystem::exists(dir + "/rl/adapter_model.safetensors"));
  REQUIRE(std::filesystem::exists(dir + "/rl/adapter_config.json"));
  // The base is untouched; generate samples from base + adapter.
  rc = lighter_test::run_cli("generate " + cfg + " --weights " + dir + "/rl --prompt abc --max-new-tokens 6 --sampler greedy", &out);
  INFO(out);
  REQUIRE(rc == 0);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("abc"));
  rc = lighter_test::run_cli("evaluate " + cfg + " --weights " + dir + "/rl", &out);
  REQUIRE(rc == 2);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("reinforce run, which has no loss"));
  rc = lighter_test::run_cli("train " + cfg + " --resume", &out);
  REQUIRE(rc == 2);

  // Mistakes, each one line naming its place, and no output folder.
  auto fails_with = [&](json config, const std::string& text) {
    config["output_dir"] = dir + "/bad";
    int code = lighter_test::run_cli("train " + lighter_test::write_json(dir + "/bad.json", config), &out);
    INFO(out);
    REQUIRE(code != 0);
    REQUIRE_THAT(out, LIGHTER_CONTAINS(text));
    REQUIRE(!std::filesystem::exists(dir + "/bad"));
  };
  json no_adapters = rl;
  no_adapters.erase("adapters");
  no_adapters["model"] = base["model"];
  fails_with(no_adapters, "reinforce: needs an \"adapters\" section");
  json with_loss = rl;
  with_loss["compile"]["loss"] = "mse";
  fails_with(with_loss, "compile.loss: leave it out in a reinforce run");
  json with_fit = rl;
  with_fit["fit"] = {{"epochs", 2}};
  fails_with(with_fit, "fit: leave it out in a reinforce run");
  json long_prompts = rl;
  long_prompts["data"]["train"]["prompt_length"] = 50;
  fails_with(long_prompts, "data.train.prompt_length: no line of");
  json unknown = rl;
  unknown["reinforce"]["reward"] = {{"class_name", "Fluency"}};
  fails_with(unknown, "reinforce.reward.class_name: unknown reward 'Fluency'");
  json missing = rl;
  missing["reinforce"]["reward"] = {{"class_name", "DictionaryWords"}, {"config", {{"path", "no_words.txt"}}}};
  fails_with(missing, "no_words.txt");
  json baseline = rl;
  baseline["reinforce"]["baseline"] = "ppo";
  fails_with(baseline, "reinforce.baseline");
  json lm_source = rl;
  lm_source["data"]["train"] = {{"format", "language_model"}, {"path", "lines.txt"}, {"sequence_length", 8}};
  fails_with(lm_source, "data.train.format: a reinforce run samples from prompts");
  json prompts_alone = base;
  prompts_alone["data"]["train"] = rl["data"]["train"];
  prompts_alone["data"].erase("text_vectorization");
  fails_with(prompts_alone, "\"prompts\" sources belong to reward-based runs");
}

TEST_CASE("configs/kjv_words_rloo.json parses: a LoRA adapter trained on dictionary-word rewards", "[reinforce][cli]") {
  if (!std::filesystem::exists("/usr/share/dict/words")) {
    WARN("no /usr/share/dict/words (Debian's wamerican, installed by scripts/setup.sh): the config cannot be read");
    return;
  }
  auto cfg = L::cli::load_run_config(lighter_test::source_path("configs/kjv_words_rloo.json"));
  REQUIRE(cfg.reinforce);
  REQUIRE(cfg.adapters);
  REQUIRE(cfg.train.format == "prompts");
  REQUIRE(cfg.train.prompt_length == 24);
  REQUIRE(cfg.reinforce->options.baseline() == "rloo");
  REQUIRE(cfg.reinforce->options.kl_coef() > 0);
  REQUIRE(cfg.reinforce->options.seed() == cfg.seed);
  REQUIRE(cfg.reinforce->reward["class_name"] == "DictionaryWords");
  REQUIRE(cfg.adapters->base_model.find("runs/kjv_char_lm") != std::string::npos);
}
