#pragma once
// The `reward` subcommand: reward-based fine-tuning (REINFORCE with a leave-one-out baseline) of a LoRA adapter on
// the character language model pretrained on the King James Bible (the `lm` subcommand's base, reused when it is
// there). Prompts are the first characters of verses; the reward is computed on the text the model writes after
// them, e.g. the share of its words found in Debian's word list. The reward is measured on held-out prompts (verses
// from the end of the text, which neither pretraining nor this training saw) before and after, beside the KL to the
// base and the bits per character on held-out KJV text (what the adaptation costs the language model).
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/version.h>

#include "examples/finetune/common.h"
#include "examples/tnn/args.h"

namespace finetune::reward {

struct Options {
  PretrainOptions pretrain;
  bool retrain = false;
  std::string output = "runs/finetune";
  /// The reward as JSON (lighter::peft::reward_from_json); words_reward() or no_e_reward() below, or any built-in.
  json reward;
  std::string reward_name = "words";
  int64_t prompt_length = 24;      // characters of each prompt (the start of a verse)
  int64_t max_new_tokens = 48;     // characters generated after it
  int64_t samples_per_prompt = 4;  // completions per prompt (the leave-one-out baseline compares them)
  int64_t batch_size = 8;          // prompts per update
  int64_t steps = 600;
  double learning_rate = 1e-3;
  double kl_coef = 0.05;
  double temperature = 1.0;
  std::string baseline = "rloo";
  int64_t rank = 8;
  double alpha = 16;
  std::vector<std::string> target_modules = {"query", "key", "value", "attention_output",
                                             "feedforward_intermediate_dense", "feedforward_output_dense"};
  int64_t heldout_prompts = 200;    // at most, from the held-out end of the text
  int64_t evaluation_samples = 2;   // completions per held-out prompt when scoring
  int64_t eval_windows = 64;        // held-out KJV windows for bits per character (0: all)
  int64_t shown = 3;                // samples printed and saved
  int64_t log_every = 10;           // 0: silent
  int64_t seed = 7;
};

/// The share of the completion's finished words (two letters or more) in a word list.
inline json words_reward(const std::string& word_list = "/usr/share/dict/words") {
  return {{"class_name", "DictionaryWords"}, {"config", {{"path", word_list}, {"min_length", 2}}}};
}
/// Minus the share of the letter e (either case) among the completion's characters: a lipogram.
inline json no_e_reward() {
  return {{"class_name", "CharacterFrequency"}, {"config", {{"characters", "eE"}, {"target", 0.0}}}};
}

/// Prompts: the first `length` ids of each line of `text` that has at least `length` characters, as (N, length);
/// at most `max` (0: all), spread evenly over the lines. `skip_first` drops the first line (cut in the middle).
inline torch::Tensor line_prompts(const L::data::TextVectorizer& v, const std::string& text, int64_t length,
                                  int64_t max = 0, bool skip_first = false) {
  std::vector<torch::Tensor> rows;
  size_t start = 0;
  bool first = true;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (!(first && skip_first) && static_cast<int64_t>(end - start) >= length)
      rows.push_back(L::cli::token_ids(v, text.substr(start, static_cast<size_t>(length))));
    first = false;
    start = end + 1;
  }
  if (rows.empty()) throw L::DataError("prompts", "no line has " + std::to_string(length) + " characters");
  torch::Tensor all = torch::stack(rows);
  if (max > 0 && all.size(0) > max)
    all = all.index_select(0, torch::linspace(0, static_cast<double>(all.size(0) - 1), max).round().to(torch::kLong));
  return all;
}

/// What the run measured.
struct Report {
  json options;
  bool base_reused = false;
  int64_t base_params = 0, trained_params = 0;
  int64_t train_prompts = 0, heldout_prompts = 0;
  double reward_before = 0, reward_after = 0;                // held-out, sampled (evaluation_samples each)
  double greedy_before = 0, greedy_after = 0;                // held-out, greedy
  double training_first = 0, training_last = 0;              // mean training reward, first and last tenth of updates
  double kl_first = 0, kl_last = 0;                          // per completion, first and last tenth of updates
  double bpc_before = 0, bpc_after = 0;                      // held-out KJV
  double median_step_seconds = 0, seconds = 0;
  std::vector<L::peft::ReinforceStats> history;
  struct Sample {
    std::string prompt, before, after;
  };
  std::vector<Sample> samples;

  json to_json() const {
    json s = json::array();
    for (const auto& x : samples) s.push_back({{"prompt", x.prompt}, {"before", x.before}, {"after", x.after}});
    json h = json::array();
    for (const auto& st : history)
      h.push_back({{"step", st.step}, {"reward", st.reward}, {"kl", st.kl}, {"loss", st.loss}, {"seconds", st.seconds}});
    return {{"options", options},
            {"base_reused", base_reused},
            {"base_parameters", base_params},
            {"trained_parameters", trained_params},
            {"trained_share", base_params ? static_cast<double>(trained_params) / static_cast<double>(base_params) : 0.0},
            {"train_prompts", train_prompts},
            {"heldout_prompts", heldout_prompts},
            {"heldout_reward", {{"before", reward_before}, {"after", reward_after}}},
            {"heldout_reward_greedy", {{"before", greedy_before}, {"after", greedy_after}}},
            {"training_reward", {{"first_tenth", training_first}, {"last_tenth", training_last}}},
            {"kl", {{"first_tenth", kl_first}, {"last_tenth", kl_last}}},
            {"kjv_heldout_bits_per_character", {{"before", bpc_before}, {"after", bpc_after}}},
            {"median_step_seconds", median_step_seconds},
            {"seconds", seconds},
            {"samples", s},
            {"history", h}};
  }
};

/// Runs the whole thing on `text` (the KJV): the base (pretrained or reused), the adapter trained with rewards, the
/// scores before and after. Writes results.json and the adapter into OUTPUT/rloo_<reward_name>.
inline Report run(const std::string& text, const Options& o) {
  namespace fs = std::filesystem;
  Report report;
  report.options = {{"pretrain", o.pretrain.to_json()}, {"reward", o.reward},      {"prompt_length", o.prompt_length},
                    {"max_new_tokens", o.max_new_tokens}, {"samples_per_prompt", o.samples_per_prompt},
                    {"batch_size", o.batch_size},        {"steps", o.steps},        {"learning_rate", o.learning_rate},
                    {"kl_coef", o.kl_coef},              {"temperature", o.temperature}, {"baseline", o.baseline},
                    {"rank", o.rank},                    {"alpha", o.alpha},        {"seed", o.seed}};
  Base base = pretrain_or_load(text, o.pretrain, o.output + "/kjv_base", o.retrain, o.log_every > 0 ? 50 : 0);
  report.base_reused = base.reused;
  const L::data::TextVectorizer& v = base.vectorizer;

  // The pretraining's split: the held-out end of the text was never trained on; prompts come from each side.
  TextIds ids = text_ids(v, text, o.pretrain.heldout_fraction);
  const size_t cut = static_cast<size_t>(ids.train.size(0));  // one id per character
  torch::Tensor train_prompts = line_prompts(v, text.substr(0, cut), o.prompt_length);
  torch::Tensor heldout_prompts = line_prompts(v, text.substr(cut), o.prompt_length, o.heldout_prompts, true);
  report.train_prompts = train_prompts.size(0);
  report.heldout_prompts = heldout_prompts.size(0);
  Windows heldout_windows = windows(ids.heldout, o.pretrain.sequence_length, o.eval_windows);

  L::seed_everything(static_cast<uint64_t>(o.seed));
  auto model = copy_of(base);
  report.base_params = model->count_params().total();
  L::peft::PeftModel peft(model, L::peft::LoraConfig().r(o.rank).lora_alpha(o.alpha).target_modules(o.target_modules));
  report.trained_params = model->count_params().trainable;
  model->compile(lm_optimizer(o.learning_rate, 1), lm_loss());  // for bits_per_character only

  auto decode = [&v](const std::vector<int64_t>& t) { return L::cli::decode_tokens(v, t); };
  L::peft::ReinforceTrainer trainer(
      peft, L::optimizers::adam(o.learning_rate).with("global_clipnorm", 1.0),
      L::peft::reward_from_json(o.reward, "reward", decode),
      L::peft::ReinforceOptions()
          .samples_per_prompt(o.samples_per_prompt)
          .baseline(o.baseline)
          .max_new_tokens(o.max_new_tokens)
          .temperature(o.temperature)
          .kl_coef(o.kl_coef)
          .seed(o.seed));

  const int64_t eval_seed = o.seed + 1000;
  const int64_t shown = std::min<int64_t>(o.shown, heldout_prompts.size(0));
  auto texts = [&](const torch::Tensor& t) {
    std::vector<std::string> out;
    for (int64_t i = 0; i < t.size(0); ++i) {
      torch::Tensor row = t[i].contiguous();
      out.push_back(decode(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel())));
    }
    return out;
  };
  report.reward_before = trainer.evaluate(heldout_prompts, o.evaluation_samples, false, eval_seed);
  report.greedy_before = trainer.evaluate(heldout_prompts, 1, true);
  report.bpc_before = bits_per_character(*model, heldout_windows);
  const auto prompts_shown = texts(heldout_prompts.narrow(0, 0, shown));
  const auto before = texts(trainer.sample(heldout_prompts.narrow(0, 0, shown), false, eval_seed));
  if (o.log_every > 0) {
    std::printf("reward fine-tuning: %lld training prompts, %lld held out; LoRA r %lld on %zu layer kinds: %lld of "
                "%lld parameters trained\nheld-out reward before: %.4f (greedy %.4f), KJV held-out %.3f bits/char\n",
                static_cast<long long>(report.train_prompts), static_cast<long long>(report.heldout_prompts),
                static_cast<long long>(o.rank), o.target_modules.size(), static_cast<long long>(report.trained_params),
                static_cast<long long>(report.base_params), report.reward_before, report.greedy_before,
                report.bpc_before);
    std::fflush(stdout);
  }

  auto start = std::chrono::steady_clock::now();
  report.history = trainer.fit(train_prompts, o.steps, o.batch_size, [&](const L::peft::ReinforceStats& s) {
    if (o.log_every > 0 && (s.step % o.log_every == 0 || s.step == o.steps)) {
      std::printf("  step %lld/%lld  reward %.4f  kl %.3f  loss %.4f  %.2f s/step\n", static_cast<long long>(s.step),
                  static_cast<long long>(o.steps), s.reward, s.kl, s.loss, s.seconds);
      std::fflush(stdout);
    }
  });
  report.seconds = seconds_since(start);
  std::vector<double> step_seconds;
  for (const auto& s : report.history) step_seconds.push_back(s.seconds);
  report.median_step_seconds = median(step_seconds);
  const size_t n = report.history.size(), tenth = std::max<size_t>(1, n / 10);
  auto mean_of = [&](size_t from, size_t to, double L::peft::ReinforceStats::*field) {
    double sum = 0;
    for (size_t i = from; i < to; ++i) sum += report.history[i].*field;
    return to > from ? sum / static_cast<double>(to - from) : 0.0;
  };
  if (n > 0) {
    report.training_first = mean_of(0, tenth, &L::peft::ReinforceStats::reward);
    report.training_last = mean_of(n - tenth, n, &L::peft::ReinforceStats::reward);
    report.kl_first = mean_of(0, tenth, &L::peft::ReinforceStats::kl);
    report.kl_last = mean_of(n - tenth, n, &L::peft::ReinforceStats::kl);
  }

  report.reward_after = trainer.evaluate(heldout_prompts, o.evaluation_samples, false, eval_seed);
  report.greedy_after = trainer.evaluate(heldout_prompts, 1, true);
  report.bpc_after = bits_per_character(*model, heldout_windows);
  const auto after = texts(trainer.sample(heldout_prompts.narrow(0, 0, shown), false, eval_seed));
  for (int64_t i = 0; i < shown; ++i)
    report.samples.push_back({prompts_shown[i], before[i], after[i]});

  const fs::path dir = fs::path(o.output) / ("rloo_" + o.reward_name);
  fs::create_directories(dir);
  peft.save_adapter(dir.string());
  L::write_file_atomic((dir / "results.json").string(), report.to_json().dump(2) + "\n");
  return report;
}

inline void print(const Report& r) {
  std::printf("\n| | held-out reward (sampled) | greedy | KJV held-out bits/char |\n|---|---|---|---|\n");
  std::printf("| base | %.4f | %.4f | %.3f |\n", r.reward_before, r.greedy_before, r.bpc_before);
  std::printf("| after %zu updates | %.4f | %.4f | %.3f |\n", r.history.size(), r.reward_after, r.greedy_after,
              r.bpc_after);
  std::printf("training reward: first tenth %.4f, last tenth %.4f; KL to the base per completion: %.3f -> %.3f\n",
              r.training_first, r.training_last, r.kl_first, r.kl_last);
  std::printf("trained %lld of %lld parameters (%.2f%%), median %.3f s per update, %.1f s in all\n",
              static_cast<long long>(r.trained_params), static_cast<long long>(r.base_params),
              100.0 * static_cast<double>(r.trained_params) / static_cast<double>(std::max<int64_t>(1, r.base_params)),
              r.median_step_seconds, r.seconds);
  for (const auto& s : r.samples)
    std::printf("\nprompt: %s\n  before: %s\n  after:  %s\n", s.prompt.c_str(), s.before.c_str(), s.after.c_str());
  std::fflush(stdout);
}

inline int run_command(const std::vector<std::string>& words) {
  tnn::Args args(words,
                 {"--kjv", "--output", "--reward", "--word-list", "--steps", "--pretrain-steps", "--batch",
                  "--samples", "--prompt-length", "--new-tokens", "--lr", "--kl", "--temperature", "--baseline",
                  "--rank", "--alpha", "--heldout-prompts", "--threads", "--seed", "--log-every"},
                 {"--small", "--retrain"});
  if (args.help()) {
    std::puts(
        "usage: example_finetune reward [options]     (run from the repository root)\n"
        "Trains a LoRA adapter on the KJV character LM (OUTPUT/kjv_base, pretrained first when missing) with\n"
        "REINFORCE and a leave-one-out baseline, and scores the reward on held-out prompts before and after.\n"
        "  --kjv FILE            the text (default data/kjv.txt, scripts/tnn_datasets.sh)\n"
        "  --output DIR          kjv_base/ and rloo_REWARD/ (adapter, results.json) (default runs/finetune)\n"
        "  --reward words|no_e   dictionary words (default; --word-list, default /usr/share/dict/words from\n"
        "                        Debian's wamerican) or no letter e\n"
        "  --steps N             updates (default 600)\n"
        "  --batch N             prompts per update (default 8)\n"
        "  --samples K           completions per prompt (default 4)\n"
        "  --prompt-length N, --new-tokens N   characters of prompt and completion (default 24, 48)\n"
        "  --lr X, --kl X, --temperature X     (default 1e-3, 0.05, 1)\n"
        "  --baseline rloo|group|none          (default rloo)\n"
        "  --rank N, --alpha X   LoRA rank and alpha (default 8 and 16)\n"
        "  --heldout-prompts N   held-out prompts scored (default 200)\n"
        "  --pretrain-steps N    pretraining steps when there is no base yet (default 800)\n"
        "  --retrain             pretrain even when OUTPUT/kjv_base matches\n"
        "  --small               the `lm --small` base (runs/finetune_small), 40 updates, 64 held-out prompts\n"
        "  --threads N, --seed N, --log-every N");
    return 0;
  }
  Options o;
  if (args.flag("--small")) {
    // The base of `example_finetune lm --small`.
    o.pretrain.steps = 100;
    o.pretrain.batch_size = 8;
    o.pretrain.sequence_length = 64;
    o.output = "runs/finetune_small";
    o.steps = 40;
    o.heldout_prompts = 64;
  }
  const std::string kjv = args.text("--kjv", "data/kjv.txt");
  o.output = args.text("--output", o.output);
  o.reward_name = args.text("--reward", o.reward_name);
  if (o.reward_name == "words") {
    o.reward = words_reward(args.text("--word-list", "/usr/share/dict/words"));
  } else if (o.reward_name == "no_e") {
    o.reward = no_e_reward();
  } else {
    throw L::ConfigError("--reward", "expected words or no_e, got '" + o.reward_name + "'");
  }
  o.steps = args.integer("--steps", o.steps, 1);
  o.pretrain.steps = args.integer("--pretrain-steps", o.pretrain.steps, 1);
  o.batch_size = args.integer("--batch", o.batch_size, 1);
  o.samples_per_prompt = args.integer("--samples", o.samples_per_prompt, 2);
  o.prompt_length = args.integer("--prompt-length", o.prompt_length, 1);
  o.max_new_tokens = args.integer("--new-tokens", o.max_new_tokens, 1);
  if (o.prompt_length + o.max_new_tokens > o.pretrain.lm.positions)
    throw L::ConfigError("--new-tokens", "prompt and completion must fit the position table's " +
                                             std::to_string(o.pretrain.lm.positions) + " positions");
  o.learning_rate = args.number("--lr", o.learning_rate, 1e-8, 1.0);
  o.kl_coef = args.number("--kl", o.kl_coef, 0.0, 1e3);
  o.temperature = args.number("--temperature", o.temperature, 1e-3, 1e3);
  o.baseline = args.text("--baseline", o.baseline);
  o.rank = args.integer("--rank", o.rank, 1);
  o.alpha = args.number("--alpha", o.alpha, 1e-6, 1e6);
  o.heldout_prompts = args.integer("--heldout-prompts", o.heldout_prompts, 1);
  o.seed = args.integer("--seed", o.seed, 0);
  o.log_every = args.integer("--log-every", o.log_every, 0);
  o.retrain = args.flag("--retrain");
  if (!args.positional().empty()) throw L::ConfigError(args.positional().front(), "unexpected argument (see --help)");
  const int64_t threads = args.integer("--threads", 0);
  if (threads > 0) torch::set_num_threads(static_cast<int>(threads));

  std::string text = read_text(kjv, "scripts/tnn_datasets.sh kjv writes it");
  if (args.flag("--small") && text.size() > 300000) text.resize(300000);  // as `lm --small`
  std::printf("threads: %d, LibTorch %s\n", torch::get_num_threads(), TORCH_VERSION);
  Report report = run(text, o);
  print(report);
  std::printf("\nresults and adapter in %s/rloo_%s/\n", o.output.c_str(), o.reward_name.c_str());
  return 0;
}

}  // namespace finetune::reward
