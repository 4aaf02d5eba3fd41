#pragma once
// What the fine-tuning examples share: the character language model of configs/kjv_char_lm.json, pretrained on the
// King James Bible and saved for reuse (its vocabulary with it), text read and cut into next-character windows,
// training for a number of steps with the time of each step, bits per character on held-out text, and sampling.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <lighter/lighter.h>

#include "lighter/cli/language_model.h"

namespace finetune {

namespace L = lighter;
using nlohmann::json;

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// 141249 -> "141,249".
inline std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (n < 0 ? "-" : "") + out;
}

/// FNV-1a of a text: tells whether a saved base was pretrained on the same text.
inline uint64_t fnv1a(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

/// Sizes of the character language model; the defaults are configs/kjv_char_lm.json's.
struct LmOptions {
  /// At most this many ids: "" (padding), [UNK] and the most frequent characters (kjv.txt has 63, newline included).
  int64_t vocabulary_size = 65;
  int64_t positions = 512;       // the position table (generation may run past a training window)
  int64_t embedding_dim = 64;
  int64_t intermediate_dim = 256;
  int64_t num_heads = 4;
  int64_t blocks = 2;
  double dropout = 0.1;

  json to_json() const {
    return {{"vocabulary_size", vocabulary_size}, {"positions", positions},   {"embedding_dim", embedding_dim},
            {"intermediate_dim", intermediate_dim}, {"num_heads", num_heads}, {"blocks", blocks},
            {"dropout", dropout}};
  }
};

/// The model's Keras JSON: int64 ids (N, T) -> TokenAndPositionEmbedding -> `blocks` pre-norm TransformerDecoder
/// blocks (causal self-attention, no cross-attention) -> LayerNormalization -> Dense(vocabulary) logits. Layer
/// names are those `lighter train configs/kjv_char_lm.json` gives, so a saved base also works with
/// `lighter generate`.
inline json lm_model_json(const LmOptions& o, const std::string& name = "char_lm") {
  json layers = json::array();
  layers.push_back({{"class_name", "InputLayer"}, {"config", {{"batch_shape", {nullptr, nullptr}}, {"dtype", "int64"}}}});
  layers.push_back({{"class_name", "TokenAndPositionEmbedding"},
                    {"config",
                     {{"vocabulary_size", o.vocabulary_size},
                      {"sequence_length", o.positions},
                      {"embedding_dim", o.embedding_dim}}}});
  for (int64_t i = 0; i < o.blocks; ++i)
    layers.push_back({{"class_name", "TransformerDecoder"},
                      {"config",
                       {{"intermediate_dim", o.intermediate_dim},
                        {"num_heads", o.num_heads},
                        {"dropout", o.dropout},
                        {"normalize_first", true}}}});
  layers.push_back({{"class_name", "LayerNormalization"}, {"config", {{"epsilon", 1e-5}}}});
  layers.push_back({{"class_name", "Dense"}, {"config", {{"units", o.vocabulary_size}}}});
  return {{"class_name", "Sequential"}, {"config", {{"name", name}, {"layers", layers}}}};
}

/// A new model with fresh weights (drawn from the global generator: seed it first).
inline L::models::ModelPtr build_lm(const LmOptions& o, const std::string& name = "char_lm") {
  return L::models::model_from_json(lm_model_json(o, name));
}

/// The file's bytes (CRLF left as is: the data scripts write LF). DataError naming the file and `hint` (how to get
/// it) when it cannot be read.
inline std::string read_text(const std::string& path, const std::string& hint = "") {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw L::DataError(path, "cannot read the file" + (hint.empty() ? "" : " (" + hint + ")"));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

/// One token per character, case and punctuation kept (the config's text_vectorization), vocabulary by frequency
/// in `text`: "" (id 0), [UNK] (id 1), then the characters.
inline L::data::TextVectorizer char_vectorizer(const std::string& text, int64_t max_tokens) {
  L::data::TextVectorizer v(
      L::data::TextVectorizerOptions().max_tokens(max_tokens).standardize(std::nullopt).split(std::string("character")));
  v.adapt({text});
  return v;
}

/// Token ids of a text, split by characters: the first (1 - heldout_fraction) for training, the rest held out.
struct TextIds {
  torch::Tensor train, heldout;
  int64_t oov = 0;  // ids that are [UNK] (characters outside the vocabulary), in the whole text
};

inline TextIds text_ids(const L::data::TextVectorizer& v, const std::string& text, double heldout_fraction) {
  torch::Tensor ids = L::cli::token_ids(v, text);
  const int64_t n = ids.size(0);
  const int64_t held = static_cast<int64_t>(std::llround(static_cast<double>(n) * heldout_fraction));
  TextIds t;
  t.train = ids.narrow(0, 0, n - held);
  t.heldout = ids.narrow(0, n - held, held);
  t.oov = ids.eq(1).sum().item<int64_t>();
  return t;
}

/// Next-character pairs: x = window[:-1], y = window[1:], (windows, sequence_length) int64, windows side by side.
struct Windows {
  torch::Tensor x, y;
  int64_t size() const { return x.defined() ? x.size(0) : 0; }
  int64_t characters() const { return x.defined() ? x.numel() : 0; }
};

/// Windows of `sequence_length` + 1 ids without overlap; at most `max_windows` (0: all), taken evenly spread.
inline Windows windows(const torch::Tensor& ids, int64_t sequence_length, int64_t max_windows = 0) {
  auto [x, y] = L::cli::next_token_windows(ids, sequence_length, sequence_length);
  if (max_windows > 0 && x.size(0) > max_windows) {
    auto pick = torch::linspace(0, static_cast<double>(x.size(0) - 1), max_windows).round().to(torch::kLong);
    x = x.index_select(0, pick);
    y = y.index_select(0, pick);
  }
  return {x, y};
}

inline json lm_loss() {
  return {{"class_name", "SparseCategoricalCrossentropy"}, {"config", {{"from_logits", true}}}};
}

/// The config's optimizer scaled to `steps`: AdamW (weight decay 0.01, global gradient norm clipped at 1) with a
/// linear warm-up from peak/30 to `peak` over min(50, steps/16) steps, then cosine decay to peak/10.
inline L::optimizers::OptimizerSpec lm_optimizer(double peak, int64_t steps) {
  const int64_t warmup = std::max<int64_t>(1, std::min<int64_t>(50, steps / 16));
  const int64_t decay = std::max<int64_t>(1, steps - warmup);
  return L::optimizers::adamw(peak, 0.01)
      .with("global_clipnorm", 1.0)
      .with_schedule(L::schedules::cosine_decay(peak / 30, decay, 0.1, peak, warmup));
}

/// Mean cross-entropy over every held-out character, in bits (loss / ln 2), with dropout off. The model must be
/// compiled (with lm_loss).
inline double bits_per_character(L::models::ModelImpl& model, const Windows& heldout, int64_t batch_size = 32) {
  model.eval();
  torch::NoGradGuard no_grad;
  return model.evaluate(heldout.x, heldout.y, L::EvaluateOptions().batch_size(batch_size)).at("loss") / std::log(2.0);
}

/// What a training run measured.
struct TrainStats {
  int64_t steps = 0;
  double seconds = 0;              // the whole fit
  double median_step_seconds = 0;  // from the start of a batch to the end of its update
  double final_loss = 0;           // mean training loss (nats) of the last `log_every` steps
  json to_json() const {
    return {{"steps", steps}, {"seconds", seconds}, {"median_step_seconds", median_step_seconds},
            {"final_training_loss", final_loss}};
  }
};

/// Trains the compiled `model` for `steps` batches of `batch_size` windows (shuffled, the data wrapping around), each
/// step timed; prints "label: step k/N, loss ..." every `log_every` steps when `log_every` > 0.
inline TrainStats train_steps(L::models::ModelImpl& model, const Windows& train, int64_t steps, int64_t batch_size,
                              int64_t log_every = 50, const std::string& label = "") {
  TrainStats stats;
  std::vector<double> step_seconds;
  step_seconds.reserve(static_cast<size_t>(steps));
  auto batch_start = std::chrono::steady_clock::now();
  double last_sum = 0;
  int64_t last_step = 0;
  const int64_t window = std::max<int64_t>(1, log_every > 0 ? log_every : steps);
  auto timer = std::make_shared<L::callbacks::LambdaCallback>();
  timer->batch_logs = true;  // the running mean loss of the epoch (the whole run here)
  timer->on_train_batch_begin_fn = [&](int64_t, L::training::Logs&) { batch_start = std::chrono::steady_clock::now(); };
  timer->on_train_batch_end_fn = [&](int64_t batch, L::training::Logs& logs) {
    step_seconds.push_back(seconds_since(batch_start));
    const int64_t done = batch + 1;
    const double sum = logs.at("loss") * static_cast<double>(done);
    if (done % window == 0 || done == steps) {
      stats.final_loss = (sum - last_sum) / static_cast<double>(done - last_step);
      if (log_every > 0) {
        std::printf("  %s step %lld/%lld  loss %.4f (%.3f bits/char)  %.3f s/step\n", label.c_str(),
                    static_cast<long long>(done), static_cast<long long>(steps), stats.final_loss,
                    stats.final_loss / std::log(2.0),
                    median(std::vector<double>(step_seconds.end() - (done - last_step), step_seconds.end())));
        std::fflush(stdout);
      }
      last_sum = sum;
      last_step = done;
    }
  };
  auto start = std::chrono::steady_clock::now();
  model.train();
  model.fit(train.x, train.y,
            L::FitOptions().epochs(1).steps_per_epoch(steps).batch_size(batch_size).shuffle(true).verbose(0).callbacks(
                {timer}));
  stats.seconds = seconds_since(start);
  stats.steps = static_cast<int64_t>(step_seconds.size());
  stats.median_step_seconds = median(step_seconds);
  return stats;
}

/// A continuation of `prompt` by the model: `tokens` characters drawn among the 5 most likely (seeded).
inline std::string sample(L::models::ModelImpl& model, const L::data::TextVectorizer& vectorizer,
                          const std::string& prompt, int64_t tokens, int64_t seed = 1) {
  torch::Tensor ids = L::cli::token_ids(vectorizer, prompt);
  torch::Tensor out = L::models::generate(
      model, ids.unsqueeze(0), L::models::GenerateOptions().max_new_tokens(tokens).sampler("top_k").k(5).seed(seed));
  torch::Tensor tail = out[0].narrow(0, ids.size(0), out.size(1) - ids.size(0)).contiguous();
  std::vector<int64_t> v(tail.data_ptr<int64_t>(), tail.data_ptr<int64_t>() + tail.numel());
  return prompt + L::cli::decode_tokens(vectorizer, v);
}

// ---- the pretrained base -------------------------------------------------------------------------------------

/// How the base is pretrained (defaults: configs/kjv_char_lm.json's run).
struct PretrainOptions {
  LmOptions lm;
  int64_t steps = 800;
  int64_t batch_size = 16;
  int64_t sequence_length = 256;
  double learning_rate = 3e-3;      // the peak of the schedule (lm_optimizer)
  double heldout_fraction = 0.02;   // the end of the text (the end of Revelation for kjv.txt), never trained on
  uint64_t seed = 42;

  /// What a saved base must match to be reused (the text enters as its length and FNV-1a hash).
  json to_json() const {
    return {{"model", lm.to_json()},
            {"steps", steps},
            {"batch_size", batch_size},
            {"sequence_length", sequence_length},
            {"learning_rate", learning_rate},
            {"heldout_fraction", heldout_fraction},
            {"seed", seed}};
  }
};

/// A pretrained base: the model, its vocabulary and what pretraining.json says about it.
struct Base {
  L::models::ModelPtr model;
  L::data::TextVectorizer vectorizer;
  json info;  // {"options", "text", "training", "heldout_bits_per_character", ...}
  bool reused = false;
};

/// Loads a base saved by pretrain_or_load from folder `dir`: model.json + model.safetensors, the vocabulary in
/// lighter.json (as `lighter train` keeps it, so `lighter generate` reads the folder too), pretraining.json.
inline Base load_base(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::exists(fs::path(dir) / "model.json"))
    throw L::DataError(dir, "holds no pretrained base (model.json); run `example_finetune lm` to make one");
  Base b;
  b.model = L::load_model(dir);
  json extra = L::load_model_extra(dir);
  if (extra.is_null() || !extra.contains("text_vectorization"))
    throw L::DataError(dir + "/lighter.json", "the base's vocabulary (text_vectorization) is missing");
  b.vectorizer = L::data::TextVectorizer::from_json(extra["text_vectorization"], "text_vectorization");
  const auto info = fs::path(dir) / "pretraining.json";
  if (fs::exists(info)) b.info = L::read_json_file(info.string());
  b.reused = true;
  return b;
}

/// A fresh copy of the base (its own weights), for one adaptation.
inline L::models::ModelPtr copy_of(const Base& base) {
  auto m = L::models::model_from_json(base.model->to_json());
  {
    torch::NoGradGuard no_grad;
    auto to = L::model_tensors(*m), from = L::model_tensors(*base.model);
    for (size_t i = 0; i < to.size(); ++i) to[i].second.copy_(from[i].second);
  }
  return m;
}

/// The base of folder `dir` when its pretraining.json records the same options and text (and not `retrain`);
/// otherwise pretrains a model on `text` as `o` says, measures its bits per character on the held-out end of the
/// text, and saves it into `dir`.
inline Base pretrain_or_load(const std::string& text, const PretrainOptions& o, const std::string& dir, bool retrain,
                             int64_t log_every = 50) {
  namespace fs = std::filesystem;
  const json text_info = {{"bytes", text.size()}, {"fnv1a", std::to_string(fnv1a(text))}};
  const auto info_file = fs::path(dir) / "pretraining.json";
  if (!retrain && fs::exists(info_file) && fs::exists(fs::path(dir) / "model.json")) {
    json saved = L::read_json_file(info_file.string());
    if (saved.value("options", json()) == o.to_json() && saved.value("text", json()) == text_info) {
      Base b = load_base(dir);
      if (log_every > 0) {
        std::printf("reusing the pretrained base in %s (delete it or pass --retrain to pretrain again)\n", dir.c_str());
        std::fflush(stdout);
      }
      return b;
    }
    if (log_every > 0) std::printf("%s was pretrained with other settings or text: pretraining again\n", dir.c_str());
  }
  Base b;
  b.vectorizer = char_vectorizer(text, o.lm.vocabulary_size);
  TextIds ids = text_ids(b.vectorizer, text, o.heldout_fraction);
  Windows train = windows(ids.train, o.sequence_length), heldout = windows(ids.heldout, o.sequence_length);
  if (train.size() == 0 || heldout.size() == 0)
    throw L::DataError("pretraining text", "too short for a training and a held-out window of " +
                                               std::to_string(o.sequence_length + 1) + " characters");
  // One output unit per id of the vocabulary, which is smaller than max_tokens for a text of fewer characters (not
  // kjv.txt: 63 + 2 = 65), so that every id the model can emit decodes.
  LmOptions lm = o.lm;
  lm.vocabulary_size = b.vectorizer.vocabulary_size();
  L::seed_everything(o.seed);
  b.model = build_lm(lm);
  b.model->compile(lm_optimizer(o.learning_rate, o.steps), lm_loss());
  if (log_every > 0) {
    std::printf("pretraining: %lld steps of %lld windows of %lld characters (%lld training windows, %lld held out)\n",
                static_cast<long long>(o.steps), static_cast<long long>(o.batch_size),
                static_cast<long long>(o.sequence_length), static_cast<long long>(train.size()),
                static_cast<long long>(heldout.size()));
    std::fflush(stdout);
  }
  TrainStats stats = train_steps(*b.model, train, o.steps, o.batch_size, log_every, "pretrain");
  const double bpc = bits_per_character(*b.model, heldout);
  b.info = {{"options", o.to_json()},
            {"text", text_info},
            {"training", stats.to_json()},
            {"parameters", b.model->count_params().total()},
            {"training_windows", train.size()},
            {"heldout_windows", heldout.size()},
            {"heldout_bits_per_character", bpc},
            {"unigram_bits_per_character",
             L::cli::unigram_bits_per_token(train.y, heldout.y, b.vectorizer.vocabulary_size())}};
  L::save_model(*b.model, dir, json{{"text_vectorization", b.vectorizer.to_json()}});
  L::write_file_atomic(info_file.string(), b.info.dump(2) + "\n");
  if (log_every > 0) {
    std::printf("pretrained in %.1f s (median %.3f s/step): %.3f bits/char on the held-out text; saved to %s\n",
                stats.seconds, stats.median_step_seconds, bpc, dir.c_str());
    std::fflush(stdout);
  }
  return b;
}

}  // namespace finetune
