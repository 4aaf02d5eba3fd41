#include "lighter_test.h"

#include <filesystem>
#include <random>

#include "examples/finetune/adapt_lm.h"
#include "examples/finetune/reward.h"

// The fine-tuning example (examples/finetune) run small on made-up texts: a model pretrained on one word list and
// adapted to another by full fine-tuning, LoRA and DoRA, through the functions `example_finetune lm` calls; and an
// adapter trained toward a reward (fewer e's) with REINFORCE, through those of `example_finetune reward`.

namespace L = lighter;
namespace F = finetune;
using L::json;

namespace {

// Lines of 6 to 12 words drawn from `words` (std::mt19937's draws are the same on every platform), until `size`
// characters.
std::string made_up_text(const std::vector<std::string>& words, size_t size, uint32_t seed) {
  std::mt19937 draw(seed);
  std::string text;
  while (text.size() < size) {
    const uint32_t n = 6 + draw() % 7;
    for (uint32_t i = 0; i < n; ++i) text += (i ? " " : "") + words[draw() % words.size()];
    text += ".\n";
  }
  return text;
}

// The source's words hold every letter of the target's, so the target is in the source's vocabulary.
const std::vector<std::string> kSourceWords = {"and",   "the",    "lord",   "said",  "unto",     "him",   "god",
                                               "of",    "israel", "his",    "people", "house",   "which", "back",
                                               "knew",  "bow",    "children", "over", "by",      "jacob", "mighty",
                                               "waxed", "quiet",  "zeal"};
const std::vector<std::string> kTargetWords = {"whale", "sea",   "ship",  "ahab",     "the",     "white",
                                               "boat",  "harpoon", "captain", "deck", "oil",     "queequeg",
                                               "starbuck", "cabin", "sperm", "jaw"};

// A one-block model of width 32 over 40 ids, pretrained for 60 steps on windows of 32 characters.
F::PretrainOptions small_pretraining() {
  F::PretrainOptions p;
  p.lm.vocabulary_size = 40;
  p.lm.positions = 32;
  p.lm.embedding_dim = 32;
  p.lm.intermediate_dim = 64;
  p.lm.num_heads = 2;
  p.lm.blocks = 1;
  p.lm.dropout = 0.0;
  p.steps = 60;
  p.batch_size = 8;
  p.sequence_length = 32;
  p.learning_rate = 1e-2;
  p.heldout_fraction = 0.05;
  return p;
}

}  // namespace

TEST_CASE("The fine-tuning example adapts a pretrained LM by full fine-tuning, LoRA and DoRA",
          "[finetune][examples][peft]") {
  const std::string source = made_up_text(kSourceWords, 40000, 1), target = made_up_text(kTargetWords, 20000, 2);
  F::lm::Options o;
  o.pretrain = small_pretraining();
  const auto& lm = o.pretrain.lm;
  o.steps = 40;
  o.batch_size = 8;
  o.sequence_length = 32;
  o.heldout_fraction = 0.1;
  o.rank = 4;
  o.alpha = 8;
  o.full_learning_rate = 3e-3;
  o.lora_learning_rate = 1e-2;
  o.scratch_learning_rate = 1e-2;
  o.log_every = 0;
  o.sample_tokens = 20;
  o.prompt = "the ";
  o.output = lighter_test::temp_dir("finetune_example");

  F::lm::Report report = F::lm::run(source, target, o);
  F::lm::print(report);
  REQUIRE_FALSE(report.base_reused);
  REQUIRE(report.target_oov == 0);
  REQUIRE(report.rows.size() == 5);
  const auto& base = report.rows[0];
  const auto& full = report.row("full fine-tuning");
  const auto& lora = report.row("LoRA (r 4, alpha 8)");
  const auto& dora = report.row("DoRA (r 4, alpha 8)");
  const auto& scratch = report.row("from scratch on Moby-Dick");

  // Every adaptation learns the new text: lower bits per character on its held-out end than the base.
  INFO("base " << base.target_bpc << ", full " << full.target_bpc << ", LoRA " << lora.target_bpc << ", DoRA "
               << dora.target_bpc << ", scratch " << scratch.target_bpc);
  REQUIRE(std::isfinite(base.target_bpc));
  REQUIRE(full.target_bpc < base.target_bpc - 0.1);
  REQUIRE(lora.target_bpc < base.target_bpc - 0.1);
  REQUIRE(dora.target_bpc < base.target_bpc - 0.1);
  REQUIRE(base.source_bpc < base.target_bpc);  // the base knows its own text best

  // Trained parameters: everything for full fine-tuning; for LoRA r·(in + out) per adapted Dense layer (the four
  // attention projections, d -> d, and the feed-forward layers, d -> ff and ff -> d); DoRA adds a magnitude per
  // output unit.
  const int64_t d = 32, ff = 64, r = 4;
  REQUIRE(full.trained_params == report.base_params);
  REQUIRE(lora.trained_params == lm.blocks * (4 * r * (d + d) + r * (d + ff) + r * (ff + d)));
  REQUIRE(lora.trained_params == 1792);
  REQUIRE(dora.trained_params == lora.trained_params + lm.blocks * (4 * d + ff + d));
  REQUIRE(lora.share == Approx(1792.0 / report.base_params));
  REQUIRE(lora.adapted_modules.size() == 6);
  REQUIRE(lora.adapted_modules.front() == "transformer_decoder.self_attention.query");
  REQUIRE(lora.adapted_modules.back() == "transformer_decoder.feedforward_output_dense");
  // The base weights do not move under an adapter.
  REQUIRE(lora.base_change == 0.0);
  REQUIRE(dora.base_change == 0.0);
  REQUIRE(full.training.steps == 40);
  REQUIRE(lora.training.median_step_seconds > 0);
  REQUIRE(base.training.steps == 60);
  REQUIRE(lora.sample.rfind("the ", 0) == 0);
  REQUIRE(lora.sample.size() == 4 + 20);

  // The results and the adapters are on disk; the saved LoRA adapter on a fresh base scores what the run did.
  namespace fs = std::filesystem;
  const fs::path out(o.output);
  json results = L::read_json_file((out / "results.json").string());
  REQUIRE(results["rows"].size() == 5);
  REQUIRE(results["rows"][2]["trained_parameters"] == 1792);
  REQUIRE(results["rows"][2]["moby_dick_bits_per_character"].get<double>() == Approx(lora.target_bpc));
  REQUIRE(results["base_parameters"] == report.base_params);
  REQUIRE_THAT(L::read_text_file((out / "results.md").string()), LIGHTER_CONTAINS("| LoRA (r 4, alpha 8) | 1,792 |"));
  REQUIRE(fs::exists(out / "lora" / "adapter_model.safetensors"));
  REQUIRE(fs::exists(out / "dora" / "adapter_config.json"));

  F::Base again = F::pretrain_or_load(source, o.pretrain, (out / "kjv_base").string(), false, 0);
  REQUIRE(again.reused);
  REQUIRE(again.info["training"]["steps"] == 60);
  auto model = F::copy_of(again);
  L::peft::PeftModel peft(model);
  peft.load_adapter((out / "lora").string(), "lora");
  model->compile(F::lm_optimizer(1e-3, 1), F::lm_loss());
  F::TextIds ids = F::text_ids(again.vectorizer, target, o.heldout_fraction);
  REQUIRE(F::bits_per_character(*model, F::windows(ids.heldout, o.sequence_length)) == Approx(lora.target_bpc).epsilon(1e-5));

  // Other pretraining settings (or another text) are not reused.
  F::PretrainOptions other = o.pretrain;
  other.steps = 5;
  REQUIRE_FALSE(F::pretrain_or_load(source, other, (out / "kjv_base").string(), false, 0).reused);
}

TEST_CASE("The reward example trains a LoRA adapter with REINFORCE and raises the held-out reward",
          "[finetune][examples][reinforce]") {
  const std::string text = made_up_text(kSourceWords, 40000, 3);
  F::reward::Options o;
  o.pretrain = small_pretraining();
  o.reward = F::reward::no_e_reward();
  o.reward_name = "no_e";
  o.prompt_length = 8;
  o.max_new_tokens = 16;
  o.steps = 40;
  o.batch_size = 8;
  o.rank = 4;
  o.alpha = 8;
  o.learning_rate = 1e-2;
  o.kl_coef = 0.01;
  o.heldout_prompts = 32;
  o.evaluation_samples = 4;
  o.eval_windows = 0;
  o.log_every = 0;
  o.output = lighter_test::temp_dir("finetune_reward_example");

  F::reward::Report r = F::reward::run(text, o);
  F::reward::print(r);
  // The reward is minus the share of e's: the adapter learns to write fewer of them on prompts it never saw.
  INFO("held-out reward before " << r.reward_before << ", after " << r.reward_after);
  REQUIRE(r.reward_before < -0.03);  // the made-up words have e's (about 7% of the characters)
  REQUIRE(r.reward_after > r.reward_before / 2);
  REQUIRE(r.training_last > r.training_first);
  REQUIRE(r.heldout_prompts == 32);
  REQUIRE(r.train_prompts > 500);
  REQUIRE(r.history.size() == 40);
  REQUIRE(r.kl_first >= 0);
  REQUIRE(r.kl_last > r.kl_first);  // the adapter moved away from the base
  const int64_t d = 32, ff = 64, rank = 4;
  REQUIRE(r.trained_params == 4 * rank * (d + d) + rank * (d + ff) + rank * (ff + d));
  REQUIRE(std::isfinite(r.bpc_before));
  REQUIRE(std::isfinite(r.bpc_after));
  REQUIRE(r.samples.size() == 3);
  REQUIRE(r.samples[0].prompt.size() == 8);
  namespace fs = std::filesystem;
  json results = L::read_json_file((fs::path(o.output) / "rloo_no_e" / "results.json").string());
  REQUIRE(results["heldout_reward"]["after"].get<double>() == Approx(r.reward_after));
  REQUIRE(results["history"].size() == 40);
  REQUIRE(fs::exists(fs::path(o.output) / "rloo_no_e" / "adapter_model.safetensors"));
  LIGHTER_REQUIRE_THROWS_WITH(F::reward::line_prompts(L::data::TextVectorizer(), "ab\ncd\n", 5), "no line has 5");
}
