#pragma once
// The `lm` subcommand: a character language model pretrained on the King James Bible, adapted to Moby-Dick three
// ways from the same base weights (full fine-tuning, LoRA, DoRA), beside a model trained on Moby-Dick alone for as
// many steps. Each is scored in bits per character on the held-out end of Moby-Dick (and of the KJV, to see what
// the adaptation costs on the old text), with its trained parameters and its median time per training step.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/version.h>

#include "examples/finetune/common.h"
#include "examples/tnn/args.h"

namespace finetune::lm {

struct Options {
  PretrainOptions pretrain;
  int64_t steps = 200;  // per adaptation, and for the model trained from scratch
  int64_t batch_size = 16;
  int64_t sequence_length = 256;
  double heldout_fraction = 0.05;  // the end of Moby-Dick: chapters 133-135 and the epilogue
  /// LoRA/DoRA: rank, alpha (scale alpha / r) and the adapted layers: every attention projection and both Dense
  /// layers of the feed-forward network, in every block (not the embedding, not the output layer).
  int64_t rank = 8;
  double alpha = 16;
  std::vector<std::string> target_modules = {"query", "key", "value", "attention_output",
                                             "feedforward_intermediate_dense", "feedforward_output_dense"};
  /// Peak learning rates of the schedule (lm_optimizer). 1e-2 was the best of 1e-3, 3e-3 and 1e-2 for full
  /// fine-tuning and within 0.01 bits of the best of 3e-3, 1e-2 and 3e-2 for LoRA (examples/finetune/README.md).
  double full_learning_rate = 1e-2;
  double lora_learning_rate = 1e-2;  // LoRA and DoRA
  double scratch_learning_rate = 1e-2;
  /// Which runs beside the base: any of "full", "lora", "dora", "scratch" (a model trained on Moby-Dick alone, as a
  /// reference).
  std::vector<std::string> methods = {"full", "lora", "dora", "scratch"};
  bool retrain = false;  // pretrain even when the output folder holds a matching base
  int64_t eval_windows = 0;  // held-out windows scored per text (0: all)
  int64_t log_every = 50;    // 0: silent
  int64_t sample_tokens = 200;
  std::string prompt = "Call me Ishmael. ";
  std::string output = "runs/finetune";
  uint64_t seed = 42;

  json to_json() const {
    return {{"pretrain", pretrain.to_json()},
            {"steps", steps},
            {"batch_size", batch_size},
            {"sequence_length", sequence_length},
            {"heldout_fraction", heldout_fraction},
            {"rank", rank},
            {"alpha", alpha},
            {"target_modules", target_modules},
            {"full_learning_rate", full_learning_rate},
            {"lora_learning_rate", lora_learning_rate},
            {"scratch_learning_rate", scratch_learning_rate},
            {"eval_windows", eval_windows},
            {"methods", methods},
            {"seed", seed}};
  }
};

/// One line of the results.
struct Row {
  std::string method;
  int64_t trained_params = 0;
  double share = 0;        // trained_params / the base model's parameters
  TrainStats training;     // the base's row: its pretraining
  double target_bpc = 0;   // held-out Moby-Dick
  double source_bpc = 0;   // held-out KJV
  double base_change = -1; // adapters: the largest change of a base weight (-1: not measured)
  std::vector<std::string> adapted_modules;
  std::string sample;

  json to_json() const {
    json j = {{"method", method},
              {"trained_parameters", trained_params},
              {"trained_share", share},
              {"training", training.to_json()},
              {"moby_dick_bits_per_character", target_bpc},
              {"kjv_bits_per_character", source_bpc},
              {"sample", sample}};
    if (base_change >= 0) j["base_weights_max_abs_change"] = base_change;
    if (!adapted_modules.empty()) j["adapted_modules"] = adapted_modules;
    return j;
  }
};

struct Report {
  Options options;
  json base_info;  // pretraining.json
  bool base_reused = false;
  int64_t base_params = 0;
  int64_t target_train_windows = 0, target_heldout_windows = 0, source_heldout_windows = 0;
  int64_t target_oov = 0;         // Moby-Dick characters outside the KJV vocabulary ([UNK])
  double target_unigram_bpc = 0;  // Moby-Dick's training character counts on its held-out part
  std::vector<Row> rows;

  const Row& row(const std::string& method) const {
    for (const auto& r : rows)
      if (r.method == method) return r;
    throw L::Error("no result row '" + method + "'");
  }

  json to_json() const {
    json rs = json::array();
    for (const auto& r : rows) rs.push_back(r.to_json());
    return {{"options", options.to_json()},
            {"libtorch", TORCH_VERSION},
            {"threads", torch::get_num_threads()},
            {"base", base_info},
            {"base_reused", base_reused},
            {"base_parameters", base_params},
            {"moby_dick",
             {{"training_windows", target_train_windows},
              {"heldout_windows", target_heldout_windows},
              {"out_of_vocabulary_characters", target_oov},
              {"unigram_bits_per_character", target_unigram_bpc}}},
            {"kjv_heldout_windows", source_heldout_windows},
            {"rows", rs}};
  }

  /// The results table (GitHub Markdown).
  std::string markdown() const {
    std::string s =
        "| method | trained parameters | share | steps | median s/step | training s | Moby-Dick bits/char | KJV "
        "bits/char |\n|---|---|---|---|---|---|---|---|\n";
    char line[512];
    for (const auto& r : rows) {
      std::snprintf(line, sizeof line, "| %s | %s | %.2f%% | %lld | %.3f | %.1f | %.3f | %.3f |\n", r.method.c_str(),
                    with_commas(r.trained_params).c_str(), 100 * r.share, static_cast<long long>(r.training.steps),
                    r.training.median_step_seconds, r.training.seconds, r.target_bpc, r.source_bpc);
      s += line;
    }
    std::snprintf(line, sizeof line,
                  "\nHeld out: the last %.0f%% of Moby-Dick (%lld windows of %lld characters) and of the KJV the last "
                  "%.0f%% (%lld windows). Unigram baseline on held-out Moby-Dick: %.3f bits/char.\n",
                  100 * options.heldout_fraction, static_cast<long long>(target_heldout_windows),
                  static_cast<long long>(options.sequence_length), 100 * options.pretrain.heldout_fraction,
                  static_cast<long long>(source_heldout_windows), target_unigram_bpc);
    s += line;
    return s;
  }
};

inline std::vector<std::pair<std::string, torch::Tensor>> snapshot(const L::models::ModelImpl& m) {
  auto t = L::model_tensors(m);
  for (auto& [name, tensor] : t) tensor = tensor.detach().clone();
  return t;
}

inline double max_change(const std::vector<std::pair<std::string, torch::Tensor>>& before,
                         const L::models::ModelImpl& m) {
  auto now = L::model_tensors(m);
  if (now.size() != before.size()) throw L::Error("the model's tensors changed in number during adaptation");
  double d = 0;
  for (size_t i = 0; i < now.size(); ++i)
    d = std::max(d, (now[i].second.detach() - before[i].second).abs().max().item<double>());
  return d;
}

/// Pretrains (or reuses) the base on `source_text` (the KJV), adapts it to `target_text` (Moby-Dick), and writes
/// results.json and results.md (and the adapters, in PEFT's layout, under lora/ and dora/) into o.output.
inline Report run(const std::string& source_text, const std::string& target_text, const Options& o) {
  namespace fs = std::filesystem;
  const bool verbose = o.log_every > 0;
  auto say = [&](const char* text) {
    if (verbose) {
      std::printf("%s\n", text);
      std::fflush(stdout);
    }
  };
  fs::create_directories(o.output);
  Report report;
  report.options = o;
  Base base = pretrain_or_load(source_text, o.pretrain, (fs::path(o.output) / "kjv_base").string(), o.retrain,
                               o.log_every);
  report.base_info = base.info;
  report.base_reused = base.reused;
  report.base_params = base.model->count_params().total();

  // Held-out text of both, in windows of the adaptation's length.
  TextIds source = text_ids(base.vectorizer, source_text, o.pretrain.heldout_fraction);
  TextIds target = text_ids(base.vectorizer, target_text, o.heldout_fraction);
  Windows source_heldout = windows(source.heldout, o.sequence_length, o.eval_windows);
  Windows target_train = windows(target.train, o.sequence_length);
  Windows target_heldout = windows(target.heldout, o.sequence_length, o.eval_windows);
  if (target_train.size() == 0 || target_heldout.size() == 0 || source_heldout.size() == 0)
    throw L::DataError("adaptation text", "too short for a training and a held-out window of " +
                                              std::to_string(o.sequence_length + 1) + " characters");
  report.target_train_windows = target_train.size();
  report.target_heldout_windows = target_heldout.size();
  report.source_heldout_windows = source_heldout.size();
  report.target_oov = target.oov;
  report.target_unigram_bpc =
      L::cli::unigram_bits_per_token(target_train.y, target_heldout.y, base.vectorizer.vocabulary_size());
  if (verbose) {
    std::printf("Moby-Dick: %lld training windows of %lld characters, %lld held out; %lld characters outside the "
                "KJV vocabulary\n",
                static_cast<long long>(target_train.size()), static_cast<long long>(o.sequence_length),
                static_cast<long long>(target_heldout.size()), static_cast<long long>(target.oov));
    std::fflush(stdout);
  }

  auto score = [&](Row& r, L::models::ModelImpl& m) {
    r.target_bpc = bits_per_character(m, target_heldout);
    r.source_bpc = bits_per_character(m, source_heldout);
    if (o.sample_tokens > 0) r.sample = sample(m, base.vectorizer, o.prompt, o.sample_tokens);
    if (verbose) {
      std::printf("%s: %.3f bits/char on held-out Moby-Dick, %.3f on held-out KJV (%lld trained parameters)\n",
                  r.method.c_str(), r.target_bpc, r.source_bpc, static_cast<long long>(r.trained_params));
      std::fflush(stdout);
    }
  };

  // The base, not adapted: its row shows its pretraining.
  {
    Row r;
    r.method = "KJV base, not adapted";
    r.trained_params = report.base_params;
    r.share = 1.0;
    const json t = base.info.value("training", json::object());
    r.training.steps = t.value("steps", int64_t{0});
    r.training.seconds = t.value("seconds", 0.0);
    r.training.median_step_seconds = t.value("median_step_seconds", 0.0);
    r.training.final_loss = t.value("final_training_loss", 0.0);
    base.model->compile(lm_optimizer(o.full_learning_rate, o.steps), lm_loss());
    score(r, *base.model);
    report.rows.push_back(r);
  }

  auto wanted = [&](const std::string& m) { return std::find(o.methods.begin(), o.methods.end(), m) != o.methods.end(); };

  // Full fine-tuning: every weight of a copy of the base trains.
  if (wanted("full")) {
    say("full fine-tuning");
    Row r;
    r.method = "full fine-tuning";
    auto m = copy_of(base);
    r.trained_params = m->count_params().trainable;
    r.share = static_cast<double>(r.trained_params) / report.base_params;
    L::seed_everything(o.seed + 1);  // every adaptation sees the same batches
    m->compile(lm_optimizer(o.full_learning_rate, o.steps), lm_loss());
    r.training = train_steps(*m, target_train, o.steps, o.batch_size, o.log_every, "full");
    score(r, *m);
    report.rows.push_back(r);
  }

  // LoRA and DoRA: the base weights frozen, only the adapters of the targeted layers train.
  for (bool dora : {false, true}) {
    const std::string name = dora ? "dora" : "lora";
    if (!wanted(name)) continue;
    say(dora ? "DoRA" : "LoRA");
    Row r;
    char method[96];
    std::snprintf(method, sizeof method, "%s (r %lld, alpha %g)", dora ? "DoRA" : "LoRA", static_cast<long long>(o.rank),
                  o.alpha);
    r.method = method;
    auto m = copy_of(base);
    auto before = snapshot(*m);
    L::peft::PeftModel peft(m,
                            L::peft::LoraConfig()
                                .r(o.rank)
                                .lora_alpha(o.alpha)
                                .target_modules(o.target_modules)
                                .use_dora(dora)
                                .task_type("CAUSAL_LM")
                                .base_model_name_or_path((fs::path(o.output) / "kjv_base").string()),
                            name);
    r.adapted_modules = peft.adapted_modules(name);
    r.trained_params = m->count_params().trainable;
    int64_t adapter = 0;
    for (const auto& [key, t] : peft.adapter_tensors(name)) adapter += t.numel();
    if (r.trained_params != adapter)
      throw L::Error(name + ": " + std::to_string(r.trained_params) + " trainable parameters, but the adapter holds " +
                     std::to_string(adapter));
    r.share = static_cast<double>(r.trained_params) / report.base_params;
    L::seed_everything(o.seed + 1);
    m->compile(lm_optimizer(o.lora_learning_rate, o.steps), lm_loss());
    r.training = train_steps(*m, target_train, o.steps, o.batch_size, o.log_every, name);
    r.base_change = max_change(before, *m);
    score(r, *m);
    peft.save_adapter((fs::path(o.output) / name).string());
    report.rows.push_back(r);
  }

  // The reference: the same model trained on Moby-Dick alone for as many steps (the pretraining's schedule).
  if (wanted("scratch")) {
    say("from scratch on Moby-Dick");
    Row r;
    r.method = "from scratch on Moby-Dick";
    L::seed_everything(o.pretrain.seed);
    auto m = L::models::model_from_json(base.model->to_json());  // the base's architecture, fresh weights
    r.trained_params = m->count_params().trainable;
    r.share = static_cast<double>(r.trained_params) / report.base_params;
    L::seed_everything(o.seed + 1);
    m->compile(lm_optimizer(o.scratch_learning_rate, o.steps), lm_loss());
    r.training = train_steps(*m, target_train, o.steps, o.batch_size, o.log_every, "scratch");
    score(r, *m);
    report.rows.push_back(r);
  }

  L::write_file_atomic((fs::path(o.output) / "results.json").string(), report.to_json().dump(2) + "\n");
  L::write_file_atomic((fs::path(o.output) / "results.md").string(), report.markdown());
  return report;
}

inline void print(const Report& report) {
  std::printf("\n%s", report.markdown().c_str());
  for (const auto& r : report.rows)
    if (!r.sample.empty()) std::printf("\n%s:\n  %s\n", r.method.c_str(), r.sample.c_str());
  std::fflush(stdout);
}

inline int run_command(const std::vector<std::string>& words) {
  tnn::Args args(words,
                 {"--kjv", "--moby", "--output", "--steps", "--pretrain-steps", "--batch", "--sequence-length",
                  "--heldout", "--rank", "--alpha", "--lr-full", "--lr-lora", "--lr-scratch", "--eval-windows",
                  "--limit-chars", "--threads", "--seed", "--sample-tokens", "--prompt", "--log-every", "--methods"},
                 {"--small", "--retrain"});
  if (args.help()) {
    std::puts(
        "usage: example_finetune lm [options]     (run from the repository root)\n"
        "Pretrains the character LM of configs/kjv_char_lm.json on the KJV (or reuses OUTPUT/kjv_base), adapts it to\n"
        "Moby-Dick by full fine-tuning, LoRA and DoRA, and scores each in bits per character on held-out text.\n"
        "  --kjv FILE            the pretraining text (default data/kjv.txt, scripts/tnn_datasets.sh)\n"
        "  --moby FILE           the adaptation text (default data/moby_dick.txt, scripts/finetune_datasets.sh)\n"
        "  --output DIR          results.json, results.md, kjv_base/, lora/, dora/ (default runs/finetune)\n"
        "  --pretrain-steps N    pretraining steps (default 800)\n"
        "  --steps N             steps of each adaptation and of the scratch model (default 200)\n"
        "  --batch N             windows per step (default 16)\n"
        "  --sequence-length N   characters per window (default 256)\n"
        "  --heldout F           held-out end of Moby-Dick (default 0.05)\n"
        "  --rank N, --alpha X   LoRA/DoRA rank and alpha (default 8 and 16)\n"
        "  --lr-full X, --lr-lora X, --lr-scratch X   peak learning rates (default 1e-2 each)\n"
        "  --eval-windows N      score at most N held-out windows per text (default all)\n"
        "  --limit-chars N       use the first N characters of each text only\n"
        "  --methods LIST        the runs beside the base, comma-separated (default full,lora,dora,scratch;\n"
        "                        scratch: the same model trained on Moby-Dick alone, as a reference)\n"
        "  --retrain             pretrain even when OUTPUT/kjv_base matches\n"
        "  --small               a quick run: windows of 64, batches of 8, 100 pretraining and 40 adaptation steps,\n"
        "                        the first 300,000 characters of each text, output runs/finetune_small\n"
        "  --threads N           intra-op threads (default LibTorch's; 1 on a busy machine)\n"
        "  --seed N, --sample-tokens N, --prompt TEXT, --log-every N");
    return 0;
  }
  Options o;
  int64_t limit = 0;
  if (args.flag("--small")) {
    o.pretrain.steps = 100;
    o.pretrain.batch_size = 8;
    o.pretrain.sequence_length = 64;
    o.steps = 40;
    o.batch_size = 8;
    o.sequence_length = 64;
    o.output = "runs/finetune_small";
    o.log_every = 20;
    o.sample_tokens = 80;
    limit = 300000;
  }
  const std::string kjv = args.text("--kjv", "data/kjv.txt"), moby = args.text("--moby", "data/moby_dick.txt");
  o.output = args.text("--output", o.output);
  o.pretrain.steps = args.integer("--pretrain-steps", o.pretrain.steps, 1);
  o.steps = args.integer("--steps", o.steps, 1);
  o.batch_size = o.pretrain.batch_size = args.integer("--batch", o.batch_size, 1);
  o.sequence_length = o.pretrain.sequence_length = args.integer("--sequence-length", o.sequence_length, 1);
  if (o.sequence_length > o.pretrain.lm.positions)
    throw L::ConfigError("--sequence-length", "at most the position table's " + std::to_string(o.pretrain.lm.positions));
  o.heldout_fraction = args.number("--heldout", o.heldout_fraction, 0.001, 0.5);
  o.rank = args.integer("--rank", o.rank, 1);
  o.alpha = args.number("--alpha", o.alpha, 1e-6, 1e6);
  o.full_learning_rate = args.number("--lr-full", o.full_learning_rate, 1e-8, 1.0);
  o.lora_learning_rate = args.number("--lr-lora", o.lora_learning_rate, 1e-8, 1.0);
  o.scratch_learning_rate = args.number("--lr-scratch", o.scratch_learning_rate, 1e-8, 1.0);
  o.eval_windows = args.integer("--eval-windows", o.eval_windows, 0);
  limit = args.integer("--limit-chars", limit, 0);
  o.seed = static_cast<uint64_t>(args.integer("--seed", static_cast<int64_t>(o.seed)));
  o.sample_tokens = args.integer("--sample-tokens", o.sample_tokens, 0);
  o.prompt = args.text("--prompt", o.prompt);
  o.log_every = args.integer("--log-every", o.log_every, 0);
  if (args.text("--methods", "") != "") {
    o.methods.clear();
    std::stringstream list(args.text("--methods", ""));
    for (std::string m; std::getline(list, m, ',');) {
      if (m != "full" && m != "lora" && m != "dora" && m != "scratch")
        throw L::ConfigError("--methods", "unknown method '" + m + "' (expected full, lora, dora or scratch)");
      o.methods.push_back(m);
    }
  }
  o.retrain = args.flag("--retrain");
  if (!args.positional().empty()) throw L::ConfigError(args.positional().front(), "unexpected argument (see --help)");
  const int64_t threads = args.integer("--threads", 0);
  if (threads > 0) torch::set_num_threads(static_cast<int>(threads));

  std::string source = read_text(kjv, "scripts/tnn_datasets.sh kjv writes it");
  std::string target = read_text(moby, "scripts/finetune_datasets.sh writes it");
  if (limit > 0) {
    if (static_cast<int64_t>(source.size()) > limit) source.resize(static_cast<size_t>(limit));
    if (static_cast<int64_t>(target.size()) > limit) target.resize(static_cast<size_t>(limit));
  }
  std::printf("threads: %d, LibTorch %s\n", torch::get_num_threads(), TORCH_VERSION);
  auto start = std::chrono::steady_clock::now();
  Report report = run(source, target, o);
  print(report);
  std::printf("\nall done in %.1f s; results in %s/results.json and results.md\n", seconds_since(start),
              o.output.c_str());
  return 0;
}

}  // namespace finetune::lm
