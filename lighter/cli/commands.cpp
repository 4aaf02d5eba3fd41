#include "lighter/cli/commands.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lighter/callbacks/backup_and_restore.h"
#include "lighter/callbacks/monitor.h"
#include "lighter/callbacks/registry.h"
#include "lighter/cli/language_model.h"
#include "lighter/cli/run_config.h"
#include "lighter/core/device.h"
#include "lighter/core/error.h"
#include "lighter/core/logging.h"
#include "lighter/core/runtime.h"
#include "lighter/data/csv.h"
#include "lighter/data/dataset.h"
#include "lighter/data/idx.h"
#include "lighter/data/npy.h"
#include "lighter/data/text.h"
#include "lighter/ensemble/ensemble.h"
#include "lighter/ensemble/weight_merge.h"
#include "lighter/models/generation.h"
#include "lighter/models/keras_json.h"
#include "lighter/models/saving.h"
#include "lighter/peft/lora.h"
#include "lighter/peft/reinforce.h"
#include "lighter/training/plot.h"
#include "lighter/training/trainer.h"

namespace lighter::cli {

namespace fs = std::filesystem;

namespace {

const char* kUsage =
    "usage: lighter <command> [options]\n"
    "\n"
    "commands:\n"
    "  train CONFIG [--set KEY=VALUE ...] [--output-dir DIR] [--device cpu|cuda|auto] [--resume]\n"
    "  evaluate CONFIG --weights DIR [--data CSV|TEXT] [--set KEY=VALUE ...]\n"
    "  predict CONFIG --weights DIR --input FILE (.csv, .npy, IDX; text: one per line) [--output CSV]\n"
    "  summary CONFIG|MODEL_JSON\n"
    "  generate CONFIG --weights DIR --prompt TEXT [--max-new-tokens N (64)] [--sampler greedy|random|top_k|top_p]\n"
    "           [--temperature T (1)] [--k K (5)] [--p P (0.9)] [--seed S] [--no-cache] [--device cpu|cuda|auto]\n"
    "  merge --method soup|task_arithmetic|ties|dare|dare_ties|slerp --output DIR MODEL_DIR... [--base DIR]\n"
    "        [--weights W,W,...] [--lambda L (1)] [--density D] [--seed S (0)] [--t T]\n"
    "  merge --method greedy_soup --config CONFIG [--data CSV] [--metric NAME] --output DIR MODEL_DIR...\n"
    "        (held-out data: the config's data.validation, or --data in the format of its training file)\n"
    "  merge-adapter --base DIR --adapter DIR --output DIR   (folds a LoRA/DoRA adapter into a copy of the base)\n"
    "\n"
    "options for every command: --log-level trace|debug|info|warn|error, --threads N (default: one per hardware\n"
    "thread; a config's \"threads\" for train), --no-tune-allocator (keep glibc malloc's own thresholds; see the\n"
    "README's Performance section)\n";

/// A usage mistake (exit status 2).
struct UsageError : Error {
  using Error::Error;
};

struct Args {
  std::string command, config;
  std::vector<std::string> sets;
  std::string output_dir, device, weights, data, input, output, log_level;
  int threads = 0;
  bool tune_allocator = true;
  bool resume = false;
  // generate
  std::optional<std::string> prompt;
  models::GenerateOptions generation;
  // merge: the model folders (positional), the method and its numbers
  std::vector<std::string> models;
  std::string method, base, adapter, metric;
  std::vector<double> merge_weights;
  std::optional<double> lambda, density, t;
};

/// The runtime settings of a command: --threads, else the config's "threads", else default_thread_count() (one per
/// hardware thread, or OMP_NUM_THREADS when set); malloc's thresholds raised unless --no-tune-allocator or the
/// config's "tune_allocator": false. With LIGHTER_RUNTIME_DEFAULTS=0 in the environment, what the flags and the
/// config leave unset stays as LibTorch and glibc set it.
RuntimeOptions runtime_options(const Args& a, const RunConfig* cfg) {
  const char* env = std::getenv("LIGHTER_RUNTIME_DEFAULTS");
  const bool defaults = !(env && std::string(env) == "0");
  RuntimeOptions o;
  o.tune_allocator = defaults && a.tune_allocator && (cfg == nullptr || cfg->tune_allocator);
  o.threads = a.threads > 0 ? a.threads : (cfg && cfg->threads > 0 ? cfg->threads : 0);
  if (o.threads == 0 && !defaults) o.threads = torch::get_num_threads();
  return o;
}

int64_t integer_flag(const std::string& flag, const std::string& text) {
  try {
    size_t used = 0;
    int64_t v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw UsageError(flag + " needs an integer, got '" + text + "'");
}

double number_flag(const std::string& flag, const std::string& text) {
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw UsageError(flag + " needs a number, got '" + text + "'");
}

Args parse_args(const std::vector<std::string>& argv) {
  Args a;
  if (argv.empty()) throw UsageError("no command given");
  a.command = argv[0];
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& s = argv[i];
    auto value = [&](const std::string& flag) -> std::string {
      if (i + 1 >= argv.size()) throw UsageError(flag + " needs a value");
      return argv[++i];
    };
    if (s == "--set") {
      a.sets.push_back(value(s));
    } else if (s.rfind("--set=", 0) == 0) {
      a.sets.push_back(s.substr(6));
    } else if (s == "--output-dir") {
      a.output_dir = value(s);
    } else if (s == "--device") {
      a.device = value(s);
    } else if (s == "--weights" && a.command == "merge") {
      // merge: one number per model, comma separated.
      std::string list = value(s);
      for (size_t start = 0; start <= list.size();) {
        size_t end = list.find(',', start);
        if (end == std::string::npos) end = list.size();
        a.merge_weights.push_back(number_flag(s, list.substr(start, end - start)));
        start = end + 1;
      }
    } else if (s == "--weights") {
      a.weights = value(s);
    } else if (s == "--data") {
      a.data = value(s);
    } else if (s == "--input") {
      a.input = value(s);
    } else if (s == "--output") {
      a.output = value(s);
    } else if (s == "--resume") {
      a.resume = true;
    } else if (s == "--prompt") {
      a.prompt = value(s);
    } else if (s == "--max-new-tokens") {
      a.generation.max_new_tokens(integer_flag(s, value(s)));
    } else if (s == "--sampler") {
      a.generation.sampler(value(s));
    } else if (s == "--temperature") {
      a.generation.temperature(number_flag(s, value(s)));
    } else if (s == "--k") {
      a.generation.k(integer_flag(s, value(s)));
    } else if (s == "--p") {
      a.generation.p(number_flag(s, value(s)));
    } else if (s == "--seed") {
      int64_t seed = integer_flag(s, value(s));
      if (seed < 0) throw UsageError("--seed needs a non-negative integer");
      a.generation.seed(seed);
    } else if (s == "--no-cache") {
      a.generation.use_cache(false);
    } else if (s == "--config" && a.command == "merge") {
      a.config = value(s);
    } else if (s == "--metric") {
      a.metric = value(s);
    } else if (s == "--method") {
      a.method = value(s);
    } else if (s == "--base") {
      a.base = value(s);
    } else if (s == "--adapter") {
      a.adapter = value(s);
    } else if (s == "--lambda") {
      a.lambda = number_flag(s, value(s));
    } else if (s == "--density") {
      a.density = number_flag(s, value(s));
    } else if (s == "--t") {
      a.t = number_flag(s, value(s));
    } else if (s == "--log-level") {
      a.log_level = value(s);
    } else if (s == "--threads") {
      try {
        a.threads = std::stoi(value(s));
      } catch (const std::exception&) {
        throw UsageError("--threads needs a positive integer");
      }
      if (a.threads <= 0) throw UsageError("--threads needs a positive integer");
    } else if (s == "--no-tune-allocator") {
      a.tune_allocator = false;
    } else if (!s.empty() && s[0] == '-') {
      throw UsageError("unknown option " + s);
    } else if (a.command == "merge") {
      a.models.push_back(s);
    } else if (a.config.empty()) {
      a.config = s;
    } else {
      throw UsageError("unexpected argument " + s);
    }
  }
  return a;
}

// Runs `fn`, prefixing ConfigErrors with the config file name so every message names the file and the path.
template <class F>
auto in_file(const std::string& file, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const ConfigError& e) {
    if (e.path().rfind(file, 0) == 0) throw;
    throw ConfigError(file + (e.path().empty() ? "" : ": " + e.path()), e.message());
  }
}

// Crossentropy losses take class ids: integer labels (digits 0-9) then get a class mapping saved with the model too.
bool is_classification_loss(const std::string& loss) {
  return loss.find("crossentropy") != std::string::npos;
}

data::CsvOptions csv_options(const DataSource& s, const std::vector<std::string>& classes, bool classification) {
  data::CsvOptions o;
  o.delimiter(s.delimiter).header(s.header).classes(classes);
  if (classification) o.kind(data::TargetKind::Classification);
  if (!s.target.empty()) {
    o.target(s.target);
  } else {
    o.target_index(s.target_index);
  }
  return o;
}

// Class ids 0..max named "0".."max" unless `classes` names them; a label outside the names is an error.
std::vector<std::string> class_names(const torch::Tensor& y, std::vector<std::string> classes, const std::string& file) {
  if (y.numel() == 0) return classes;
  int64_t lo = y.min().item<int64_t>(), hi = y.max().item<int64_t>();
  if (lo < 0) throw DataError(file, "class ids must be non-negative, found " + std::to_string(lo));
  if (classes.empty()) {
    for (int64_t c = 0; c <= hi; ++c) classes.push_back(std::to_string(c));
  } else if (hi >= static_cast<int64_t>(classes.size())) {
    throw DataError(file, "class id " + std::to_string(hi) + " has no name among the " +
                              std::to_string(classes.size()) + " classes");
  }
  return classes;
}

data::Table read_npy_source(const DataSource& s, bool classification, std::vector<std::string> classes) {
  data::Table t;
  t.x = data::read_npy(s.x);
  if (t.x.dim() == 0) throw DataError(s.x, "expected an array with a sample axis, got a scalar");
  if (!s.y.empty()) {
    torch::Tensor y = data::read_npy(s.y);
    if (y.dim() == 0 || y.size(0) != t.x.size(0))
      throw DataError(s.y, std::to_string(y.dim() ? y.size(0) : 0) + " targets for " + std::to_string(t.x.size(0)) +
                               " samples in " + s.x);
    if (classification) {
      if (y.is_floating_point() && !y.equal(y.round()))
        throw DataError(s.y, "a crossentropy loss needs integer class ids, found fractional values");
      t.y = y.to(torch::kLong).reshape({-1});
      if (t.y.size(0) != t.x.size(0)) throw DataError(s.y, "expected one class id per sample");
      t.classes = class_names(t.y, s.classes.empty() ? classes : s.classes, s.y);
    } else {
      t.y = y.to(torch::kFloat32);
    }
    t.target_name = "y";
  }
  return t;
}

// Texts with their labels from a text source, turned into token ids by `vectorizer`, which first adapts on them
// when `adapt` is set and it has no vocabulary yet (the training split).
data::Table read_text_source(const DataSource& s, bool classification, const std::vector<std::string>& classes,
                             data::TextVectorizer* vectorizer, bool adapt) {
  if (!vectorizer) throw ConfigError(s.json_path, "a text source needs the text vectorizer saved with the model");
  const auto& known = s.classes.empty() ? classes : s.classes;
  data::TextTable texts =
      s.folder.empty()
          ? data::read_text_lines(s.path, s.label_separator, known,
                                  classification ? data::TargetKind::Classification : data::TargetKind::Auto)
          : data::read_text_folder(s.folder, known);
  if (adapt && !vectorizer->has_vocabulary()) {
    vectorizer->adapt(texts.texts);
    logger()->info("text vocabulary: {} tokens (padding and OOV included) from {} training texts",
                   vectorizer->vocabulary_size(), texts.size());
  }
  data::Table table;
  table.x = vectorizer->encode(texts.texts);
  table.y = texts.y;
  table.classes = texts.classes;
  table.target_name = "label";
  return table;
}

data::Table read_source(const DataSource& s, bool classification, const std::vector<std::string>& classes = {},
                        data::TextVectorizer* vectorizer = nullptr, bool adapt = false) {
  data::Table table;
  if (s.format == "text") {
    table = read_text_source(s, classification, classes, vectorizer, adapt);
  } else if (s.format == "language_model") {
    if (!vectorizer) throw ConfigError(s.json_path, "a language_model source needs the text vectorizer saved with the model");
    table = read_language_model(s, *vectorizer, adapt);
  } else if (s.format == "idx") {
    table = data::read_idx_images(s.images, s.labels, s.classes.empty() ? classes : s.classes);
  } else if (s.format == "npy") {
    table = read_npy_source(s, classification, classes);
  } else {
    table = data::read_csv(s.path, csv_options(s, classes, classification));
  }
  if (s.shuffle) {
    auto order = torch::randperm(table.size(), torch::kLong);
    table.x = table.x.index_select(0, order);
    if (table.y.defined()) table.y = table.y.index_select(0, order);
  }
  return table;
}

// Input dtype the model declares (token ids are integers).
torch::Tensor model_input(const models::ModelImpl& model, const torch::Tensor& x) {
  std::string dtype = model.input_dtype();
  if (dtype.rfind("int", 0) == 0 || dtype.rfind("uint", 0) == 0) return x.to(torch::kLong);
  return x.scalar_type() == torch::kFloat32 ? x : x.to(torch::kFloat32);
}

// A language model takes every id of the vectorizer's vocabulary and scores each one as the next token. `sample`
// is one row of the training ids (its shape is what the model is built for).
void check_vocabulary_fits(models::ModelImpl& model, const data::TextVectorizer& vectorizer, const torch::Tensor& sample) {
  const int64_t v = vectorizer.vocabulary_size();
  torch::Tensor out;
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::string problem;
  try {
    out = model.forward(torch::full_like(sample, v - 1));
  } catch (const c10::Error& e) {
    problem = e.what_without_backtrace();
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    problem = e.what();
  }
  if (!problem.empty()) {
    // Padding ids alone: a model that fails on these too has another problem, reported as it is.
    out = model.forward(torch::zeros_like(sample));
    model.train(was_training);
    throw ConfigError("data.text_vectorization",
                      "the vocabulary has " + std::to_string(v) + " tokens (padding and OOV included) but the model "
                      "cannot take the id " + std::to_string(v - 1) + " (set max_tokens to the model's vocabulary "
                      "size): " + problem);
  }
  model.train(was_training);
  if (out.dim() != 3)
    throw ConfigError("model", "a language model gives next-token scores of shape (batch, steps, vocabulary), this "
                               "one gives " + shape_to_string(Shape(out.sizes().begin(), out.sizes().end())));
  if (out.size(-1) < v)
    throw ConfigError("data.text_vectorization",
                      "the vocabulary has " + std::to_string(v) + " tokens (padding and OOV included) but the model "
                      "scores " + std::to_string(out.size(-1)) + " (set max_tokens, or the last layer's units)");
}

json scores_json(const std::map<std::string, double>& scores) {
  json j = json::object();
  for (const auto& kv : scores) j[kv.first] = kv.second;
  return j;
}

void print_scores(const std::string& split, const std::map<std::string, double>& scores) {
  std::string line;
  char buf[64];
  for (const auto& kv : scores) {
    std::snprintf(buf, sizeof buf, "%s%s: %.4f", line.empty() ? "" : " - ", kv.first.c_str(), kv.second);
    line += buf;
  }
  std::printf("%-10s %s\n", (split + ":").c_str(), line.c_str());
}

// The resumable checkpoint `lighter train` keeps in the run's folder (BackupAndRestore's file names).
const char* const kCheckpoint = "checkpoint.safetensors";
const char* const kPreviousCheckpoint = "checkpoint.prev.safetensors";

bool has_checkpoint(const fs::path& dir) {
  return fs::exists(dir / kCheckpoint) || fs::exists(dir / kPreviousCheckpoint);
}

// Files a Lighter run writes; a folder holding anything else is not replaced.
const std::vector<std::string>& run_files() {
  static const std::vector<std::string> ours = {"model.json",   "model.safetensors",      "lighter.json",
                                                "metrics.json", "history.csv",            "training_curves.svg",
                                                kCheckpoint,    kPreviousCheckpoint,      "adapter_config.json",
                                                "adapter_model.safetensors"};
  return ours;
}

bool is_run_file(const std::string& name) {
  return std::find(run_files().begin(), run_files().end(), name) != run_files().end();
}

bool looks_like_run(const fs::path& dir) {
  // Plus what the run's callbacks wrote there (CSVLogger, ModelCheckpoint), as train records in lighter.json.
  std::vector<std::string> theirs;
  try {
    json extra = load_model_extra(dir.string());
    if (extra.is_object() && extra.contains("callback_outputs"))
      theirs = extra["callback_outputs"].get<std::vector<std::string>>();
  } catch (const std::exception&) {
    return false;
  }
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (!is_run_file(name) && std::find(theirs.begin(), theirs.end(), name) == theirs.end())
      return false;
  }
  return true;
}

// The output folder, checked before training: it must be absent, or an earlier Lighter run that may be replaced.
fs::path checked_output_dir(const std::string& output_dir) {
  if (output_dir.empty()) throw ConfigError("output_dir", "must not be empty");
  fs::path target = fs::absolute(fs::path(output_dir)).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();  // "runs/x/" -> "runs/x"
  if (fs::exists(target)) {
    if (!fs::is_directory(target)) throw DataError(target.string(), "output_dir exists and is not a folder");
    if (!looks_like_run(target))
      throw DataError(target.string(), "output_dir holds files that are not a Lighter run; choose another folder");
  }
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) throw DataError(target.parent_path().string(), "cannot create folder: " + ec.message());
  return target;
}

// Writes the run's files into a staging folder beside the target, then swaps it into place, so an earlier
// run's outputs are replaced only by a complete new set (and put back if the swap fails).
// The staging folder of `target`: `<target>.partial`. A run killed midway leaves it with its checkpoint, which
// `--resume` continues from.
fs::path staging_dir(const fs::path& target) { return target.string() + ".partial"; }

// An exclusive lock on a folder for the lifetime of the object: two runs never write one output folder. The lock
// goes with the process, so a killed run leaves none behind.
class FolderLock {
 public:
  explicit FolderLock(const fs::path& dir) : dir_(dir) {
    fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ < 0) throw DataError(dir.string(), std::string("cannot open folder: ") + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw DataError(dir.string(), "another `lighter train` is writing this run (the folder is locked)");
    }
  }
  ~FolderLock() { ::close(fd_); }
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  fs::path dir_;
  int fd_ = -1;
};

// Removes everything inside `dir`, keeping the folder (and the lock held on it).
void clear_folder(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) fs::remove_all(entry.path());
}

// Creates an empty staging folder (removing a leftover of the same name).
void make_staging(const fs::path& staging) {
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) throw DataError(staging.string(), "cannot create folder: " + ec.message());
}

// `fresh_staging`: false when train already created the staging folder and callbacks wrote into it.
void publish(const fs::path& target, const std::function<void(const std::string&)>& write, bool fresh_staging = true) {
  std::error_code ec;
  std::string tag = std::to_string(::getpid());
  fs::path staging = staging_dir(target), old = target.string() + ".old-" + tag;
  if (fresh_staging) make_staging(staging);
  try {
    write(staging.string());
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  bool had_old = fs::exists(target);
  if (had_old) {
    fs::rename(target, old, ec);
    if (ec) {
      fs::remove_all(staging);
      throw DataError(target.string(), "cannot replace the earlier run: " + ec.message());
    }
  }
  fs::rename(staging, target, ec);
  if (ec) {
    if (had_old) fs::rename(old, target);
    fs::remove_all(staging);
    throw DataError(target.string(), "cannot write the run: " + ec.message());
  }
  if (had_old) fs::remove_all(old, ec);
}

// The text vectorizer `lighter train` saved beside the model, if any.
std::optional<data::TextVectorizer> vectorizer_of(const json& extra, const std::string& dir) {
  if (!extra.contains("text_vectorization")) return std::nullopt;
  try {
    return data::TextVectorizer::from_json(extra["text_vectorization"], "text_vectorization");
  } catch (const ConfigError& e) {
    throw ConfigError(dir + "/lighter.json: " + e.path(), e.message());
  }
}

std::vector<std::string> classes_of(const json& extra) {
  std::vector<std::string> out;
  if (extra.contains("classes"))
    for (const auto& c : extra["classes"]) out.push_back(c.get<std::string>());
  return out;
}

// A model folder written by `lighter train` or save_model, to adapt or to merge an adapter into: the model with its
// weights and its lighter.json (an empty object when absent).
std::pair<models::ModelPtr, json> load_base(const std::string& dir) {
  if (!fs::is_directory(dir))
    throw DataError(dir, "no such folder (the base model: a folder written by lighter train, with model.json)");
  if (!fs::exists(fs::path(dir) / "model.json")) {
    if (fs::exists(fs::path(dir) / "adapter_config.json"))
      throw DataError(dir, "holds an adapter, not a model (fold it into its base with lighter merge-adapter first)");
    throw DataError(dir, "holds no model.json (the base model must be a folder written by lighter train)");
  }
  auto model = load_model(dir);
  json extra = load_model_extra(dir);
  if (extra.is_null()) extra = json::object();
  return {model, extra};
}

// ConfigErrors of the adapter code name LoraConfig's fields; in a run config they sit under "adapters".
template <class F>
auto in_adapters(F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const ConfigError& e) {
    throw ConfigError(join_path("adapters", e.path() == "adapter" ? std::string("adapter_name") : e.path()), e.message());
  }
}

// Times fit's training batches (from the batch-begin to the batch-end hook, so validation is left out) for
// metrics.json's seconds_per_step.
class StepTimer : public training::Callback {
 public:
  void on_train_batch_begin(int64_t, training::Logs&) override { start_ = std::chrono::steady_clock::now(); }
  void on_train_batch_end(int64_t, training::Logs&) override {
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    ++steps_;
  }
  int64_t steps() const { return steps_; }
  double seconds_per_step() const { return steps_ ? seconds_ / static_cast<double>(steps_) : 0.0; }

 private:
  std::chrono::steady_clock::time_point start_;
  double seconds_ = 0.0;
  int64_t steps_ = 0;
};

// The base folder of an adapter run as an absolute path without a trailing '/'; the config's LoraConfig records it
// (adapter_config.json's base_model_name_or_path).
std::string resolve_adapter_base(AdapterSpec& spec) {
  std::string dir = fs::absolute(spec.base_model).lexically_normal().string();
  if (!dir.empty() && dir.back() == '/') dir.pop_back();
  spec.lora.base_model_name_or_path(dir);
  return dir;
}

// An adapter run's lighter.json: the run's own `extra`, what the base saved beside its model (class names,
// vectorizer) where the run has none, and the "adapter" record naming the base, which evaluate, predict and generate
// load and adapt (load_trained): absolute, and relative to the run (used when the absolute one is gone, e.g. after
// both folders moved together).
void add_adapter_record(json& extra, const json& base_extra, const AdapterSpec& spec, const std::string& base_dir,
                        const fs::path& output) {
  for (const auto& [key, value] : base_extra.items())
    if (!extra.contains(key) && key != "callback_outputs") extra[key] = value;
  extra["adapter"] = {{"name", spec.adapter_name},
                      {"base_model", base_dir},
                      {"base_model_relative", fs::path(base_dir).lexically_relative(output).string()}};
}

// Commands that score with the config's loss refuse a reward-based run's config, which has none.
void expect_loss_config(const RunConfig& cfg, const Args& a) {
  if (cfg.reinforce)
    throw UsageError(a.config + " describes a reinforce run, which has no loss to " + a.command +
                     " with: its held-out rewards are in the run's metrics.json (lighter generate samples from it)");
}

// `lighter train` with a "reinforce" section: REINFORCE/RLOO on an adapter of a saved language model, sampling from
// prompts and optimising the reward; the KL reference is the base (adapters disabled). Writes the adapter as adapter
// runs do, metrics.json with the held-out reward before and after, history.csv with one row per update.
int train_reinforce(const Args& a, RunConfig& cfg, const fs::path& output, const torch::Device& device) {
  if (a.resume) throw UsageError("--resume is not supported for reinforce runs (they keep no checkpoint)");
  const ReinforceSpec& rl = *cfg.reinforce;
  models::ModelPtr model;
  json base_extra;
  std::tie(model, base_extra) = in_file(a.config, [&] { return load_base(cfg.adapters->base_model); });
  const std::string base_dir = resolve_adapter_base(*cfg.adapters);
  auto vectorizer = vectorizer_of(base_extra, cfg.adapters->base_model);
  if (!vectorizer)
    throw ConfigError(a.config + ": data.train", "prompts need the vectorizer the base model was trained with, and " +
                                                     cfg.adapters->base_model + "/lighter.json has none");
  std::optional<peft::PeftModel> adapted;
  in_file(a.config, [&] { in_adapters([&] { adapted.emplace(model, cfg.adapters->lora, cfg.adapters->adapter_name); }); });

  torch::Tensor prompts = in_file(a.config, [&] { return read_prompts(cfg.train, *vectorizer); });
  if (cfg.train.shuffle) prompts = prompts.index_select(0, torch::randperm(prompts.size(0), torch::kLong));
  torch::Tensor heldout;
  if (cfg.validation) {
    heldout = in_file(a.config, [&] { return read_prompts(*cfg.validation, *vectorizer); });
  } else if (cfg.validation_split > 0) {
    const int64_t n = prompts.size(0);
    const int64_t held = static_cast<int64_t>(std::floor(static_cast<double>(n) * cfg.validation_split));
    if (held < 1 || held >= n)
      throw ConfigError(a.config + ": data.validation_split", "leaves " + std::to_string(held) + " of " +
                                                                  std::to_string(n) + " prompts held out");
    heldout = prompts.narrow(0, n - held, held);
    prompts = prompts.narrow(0, 0, n - held);
  }
  in_file(a.config, [&] { check_vocabulary_fits(*model, *vectorizer, prompts.narrow(0, 0, 1)); });
  model->to(device);
  const data::TextVectorizer& v = *vectorizer;
  auto decode = [&v](const std::vector<int64_t>& ids) { return decode_tokens(v, ids); };
  auto reward = in_file(a.config, [&] {
    return peft::reward_from_json(rl.reward, "reinforce.reward", decode, rl.base_dir);
  });
  auto optimizer = in_file(a.config, [&] { return optimizers::from_json(cfg.optimizer, "compile.optimizer"); });
  peft::ReinforceTrainer trainer(*adapted, optimizer, reward, rl.options);
  logger()->info("{}: {} training prompts{} of {} tokens, {} completions of up to {} tokens per update, device {}",
                 cfg.name, prompts.size(0),
                 heldout.defined() ? " (" + std::to_string(heldout.size(0)) + " held out)" : std::string(),
                 prompts.size(1), std::min<int64_t>(rl.batch_size, prompts.size(0)) * rl.options.samples_per_prompt(),
                 rl.options.max_new_tokens(), device.str());
  if (cfg.verbose > 0) {
    std::fputs(model->summary().c_str(), stdout);
    std::fflush(stdout);
  }

  // Nothing is written while it trains: the output folder is published at the end (see publish).
  // Held-out scores use their own seed, the same before and after, so both see the same draws of the sampler.
  const int64_t eval_seed = cfg.seed + 1000003;
  const int64_t shown = heldout.defined() ? std::min<int64_t>(3, heldout.size(0)) : 0;
  auto texts = [&](const torch::Tensor& ids) {
    std::vector<std::string> out;
    for (int64_t i = 0; i < ids.size(0); ++i) {
      torch::Tensor row = ids[i].contiguous();
      out.push_back(decode(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel())));
    }
    return out;
  };
  json reward_scores = json::object();
  std::vector<std::string> samples_before;
  if (heldout.defined()) {
    reward_scores["heldout_before"] = trainer.evaluate(heldout, rl.evaluation_samples, false, eval_seed);
    reward_scores["heldout_greedy_before"] = trainer.evaluate(heldout, 1, true);
    samples_before = texts(trainer.sample(heldout.narrow(0, 0, shown), false, eval_seed));
    std::printf("held-out reward before: %.4f (%lld prompts x %lld samples; greedy %.4f)\n",
                reward_scores["heldout_before"].get<double>(), static_cast<long long>(heldout.size(0)),
                static_cast<long long>(rl.evaluation_samples), reward_scores["heldout_greedy_before"].get<double>());
    std::fflush(stdout);
  }
  std::string csv = "step,reward,reward_std,kl,loss,length,seconds\n";
  std::vector<double> step_seconds;
  auto start = std::chrono::steady_clock::now();
  auto on_step = [&](const peft::ReinforceStats& st) {
    char line[160];
    std::snprintf(line, sizeof line, "%lld,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", static_cast<long long>(st.step), st.reward,
                  st.reward_std, st.kl, st.loss, st.length, st.seconds);
    csv += line;
    step_seconds.push_back(st.seconds);
    if (rl.log_every > 0 && (st.step % rl.log_every == 0 || st.step == rl.steps)) {
      std::printf("step %lld/%lld  reward %.4f (std %.3f)  kl %.4f  loss %.4f  length %.1f  %.2f s/step\n",
                  static_cast<long long>(st.step), static_cast<long long>(rl.steps), st.reward, st.reward_std, st.kl,
                  st.loss, st.length, st.seconds);
      std::fflush(stdout);
    }
  };
  std::vector<peft::ReinforceStats> history = trainer.fit(prompts, rl.steps, rl.batch_size, on_step);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  json metrics = json::object();
  json samples = json::array();
  if (heldout.defined()) {
    reward_scores["heldout_after"] = trainer.evaluate(heldout, rl.evaluation_samples, false, eval_seed);
    reward_scores["heldout_greedy_after"] = trainer.evaluate(heldout, 1, true);
    const auto after = texts(trainer.sample(heldout.narrow(0, 0, shown), false, eval_seed));
    const auto prompt_texts = texts(heldout.narrow(0, 0, shown));
    for (int64_t i = 0; i < shown; ++i)
      samples.push_back({{"prompt", prompt_texts[i]}, {"before", samples_before[i]}, {"after", after[i]}});
    reward_scores["heldout_prompts"] = heldout.size(0);
    reward_scores["evaluation_samples"] = rl.evaluation_samples;
  }
  // The training reward at the start and the end (means of the first and last tenth of the updates).
  const size_t tenth = std::max<size_t>(1, history.size() / 10);
  auto mean_reward = [&](size_t from, size_t to) {
    double sum = 0;
    for (size_t i = from; i < to; ++i) sum += history[i].reward;
    return to > from ? sum / static_cast<double>(to - from) : 0.0;
  };
  if (!history.empty()) {
    reward_scores["training_first"] = mean_reward(0, tenth);
    reward_scores["training_last"] = mean_reward(history.size() - tenth, history.size());
    metrics["kl"] = history.back().kl;
  }
  metrics["reward"] = reward_scores;
  if (!samples.empty()) metrics["samples"] = samples;
  metrics["steps"] = history.size();
  metrics["train_seconds"] = seconds;
  std::vector<double> sorted = step_seconds;
  std::sort(sorted.begin(), sorted.end());
  metrics["seconds_per_step"] = sorted.empty() ? 0.0 : sorted[sorted.size() / 2];
  const auto counts = model->count_params();
  metrics["parameters"] = {{"trainable", counts.trainable}, {"total", counts.total()}};

  json extra = {{"name", cfg.name}};
  add_adapter_record(extra, base_extra, *cfg.adapters, base_dir, output);
  extra["reinforce"] = {{"reward", rl.reward},
                        {"samples_per_prompt", rl.options.samples_per_prompt()},
                        {"baseline", rl.options.baseline()},
                        {"max_new_tokens", rl.options.max_new_tokens()},
                        {"temperature", rl.options.temperature()},
                        {"kl_coef", rl.options.kl_coef()}};
  model->to(torch::kCPU);
  publish(output, [&](const std::string& dir) {
    adapted->save_adapter(dir);
    write_file_atomic(dir + "/lighter.json", extra.dump(2) + "\n");
    write_file_atomic(dir + "/metrics.json", metrics.dump(2) + "\n");
    write_file_atomic(dir + "/history.csv", csv);
  });
  if (heldout.defined()) {
    std::printf("held-out reward after:  %.4f (greedy %.4f); before %.4f\n", reward_scores["heldout_after"].get<double>(),
                reward_scores["heldout_greedy_after"].get<double>(), reward_scores["heldout_before"].get<double>());
    for (const auto& s : samples)
      std::printf("  prompt: %s\n    before: %s\n    after:  %s\n", s["prompt"].get<std::string>().c_str(),
                  s["before"].get<std::string>().c_str(), s["after"].get<std::string>().c_str());
  }
  std::printf("outputs:   %s (adapter_config.json, adapter_model.safetensors, lighter.json, metrics.json, history.csv)\n",
              cfg.output_dir.c_str());
  return 0;
}

int cmd_train(const Args& a) {
  if (a.config.empty()) throw UsageError("train needs a CONFIG file");
  RunConfig cfg = load_run_config(a.config, a.sets);
  configure_runtime(runtime_options(a, &cfg));
  if (!a.output_dir.empty()) cfg.output_dir = a.output_dir;
  if (!a.device.empty()) cfg.device = a.device;
  auto device = in_file(a.config, [&] { return resolve_device(cfg.device, "device"); });
  fs::path output = in_file(a.config, [&] { return checked_output_dir(cfg.output_dir); });
  seed_everything(static_cast<uint64_t>(cfg.seed));
  if (cfg.deterministic) training::set_deterministic(true);
  if (cfg.reinforce) return train_reinforce(a, cfg, output, device);

  // Everything is checked (model, compile, data) before any training or writing. With adapters the model is the
  // base run's (architecture, weights, lighter.json), wrapped in a PeftModel that trains the adapter only.
  json base_extra = json::object();
  auto model = in_file(a.config, [&] {
    models::ModelPtr m;
    if (cfg.adapters) {
      std::tie(m, base_extra) = load_base(cfg.adapters->base_model);
    } else {
      m = models::model_from_json(cfg.model, "model");
    }
    // The data sources of a config give one input table and one target column.
    if (m->num_inputs() != 1 || m->num_outputs() != 1)
      throw ConfigError("model", "the lighter command trains models with one input and one output; this one has " +
                                     std::to_string(m->num_inputs()) + " inputs and " + std::to_string(m->num_outputs()) +
                                     " outputs (train it from C++ with fit({x...}, {y...}))");
    return m;
  });
  std::optional<peft::PeftModel> adapted;
  std::string base_dir;
  if (cfg.adapters) {
    base_dir = resolve_adapter_base(*cfg.adapters);
    in_file(a.config, [&] {
      in_adapters([&] { adapted.emplace(model, cfg.adapters->lora, cfg.adapters->adapter_name); });
    });
  }
  auto optimizer = in_file(a.config, [&] { return optimizers::from_json(cfg.optimizer, "compile.optimizer"); });
  in_file(a.config, [&] { model->compile(optimizer, cfg.loss, cfg.metrics); });
  bool classification = is_classification_loss(model->trainer().loss().name());
  // An ensemble trains member by member (ensemble::fit_ensemble); the ensemble itself is compiled to evaluate.
  auto* ensemble = dynamic_cast<ensemble::EnsembleImpl*>(model.get());
  if (ensemble && a.resume)
    throw UsageError("--resume is not supported for ensembles (their members train one after another in one run)");
  // Text sources go through one vectorizer: adapted on the training texts, reused for the other splits.
  std::optional<data::TextVectorizer> vectorizer;
  const bool language_model = cfg.train.format == "language_model";
  if (cfg.adapters && (cfg.train.format == "text" || language_model)) {
    // The base model's vectorizer with its vocabulary: token ids must mean what they meant in the base's training.
    vectorizer = vectorizer_of(base_extra, cfg.adapters->base_model);
    if (!vectorizer)
      throw ConfigError(a.config + ": data.train", "text data needs the vectorizer the base model was trained with, "
                        "and " + cfg.adapters->base_model + "/lighter.json has none");
    logger()->info("text: the base model's vocabulary of {} tokens", vectorizer->vocabulary_size());
  } else if (cfg.train.format == "text" || language_model)
    vectorizer = in_file(a.config, [&] {
      return data::TextVectorizer::from_config(
          cfg.text_vectorization.is_null() ? json::object() : cfg.text_vectorization, "data.text_vectorization");
    });
  data::TextVectorizer* text = vectorizer ? &*vectorizer : nullptr;
  // An adapter keeps the base's class ids (its output units), so labels map to the base run's class names.
  const std::vector<std::string> base_classes = classes_of(base_extra);
  data::Table train =
      in_file(a.config, [&] { return read_source(cfg.train, classification, base_classes, text, /*adapt=*/true); });
  std::optional<data::Table> validation, test;
  if (cfg.validation)
    validation = in_file(a.config, [&] { return read_source(*cfg.validation, classification, train.classes, text); });
  if (cfg.test) test = in_file(a.config, [&] { return read_source(*cfg.test, classification, train.classes, text); });
  torch::Tensor x = model_input(*model, train.x);
  if (language_model) in_file(a.config, [&] { check_vocabulary_fits(*model, *vectorizer, x.narrow(0, 0, 1)); });
  if (!model->built()) {
    torch::NoGradGuard no_grad;
    model->eval();
    model->forward(x.narrow(0, 0, 1));
  }
  model->to(device);

  logger()->info("{}: {} training samples of shape {}{}, device {}", cfg.name, train.size(),
                 shape_to_string(Shape(train.x.sizes().begin() + 1, train.x.sizes().end())),
                 train.classes.empty() ? "" : ", " + std::to_string(train.classes.size()) + " classes",
                 device.str());
  if (cfg.verbose > 0) {
    std::fputs(model->summary().c_str(), stdout);
    std::fflush(stdout);
  }

  // Callbacks' relative files go into the run's output folder. The run is written into a staging folder that
  // replaces the output folder at the end (see publish), so they are written there during training; so is the
  // resumable checkpoint.
  fs::path staging = staging_dir(output);
  std::error_code ec;
  fs::create_directories(staging, ec);
  if (ec) throw DataError(staging.string(), "cannot create folder: " + ec.message());
  FolderLock lock(staging);
  if (a.resume) {
    if (has_checkpoint(staging)) {
      logger()->info("resuming the interrupted run in {}", staging.string());
    } else if (has_checkpoint(output)) {
      // A finished run goes on (e.g. with more epochs): its files are the starting point.
      clear_folder(staging);
      for (const auto& entry : fs::directory_iterator(output))
        fs::copy(entry.path(), staging / entry.path().filename(), fs::copy_options::recursive);
      logger()->info("continuing the finished run in {}", output.string());
    } else {
      clear_folder(staging);
      logger()->info("no checkpoint in {} or {}: training from the start", staging.string(), output.string());
    }
  } else {
    if (has_checkpoint(staging))
      throw DataError(staging.string(), "holds an interrupted run with its checkpoint; continue it with --resume, or "
                                        "remove the folder to start again");
    clear_folder(staging);
  }
  auto make_callbacks = [&] {
    std::vector<training::CallbackPtr> made;
    for (size_t i = 0; i < cfg.callbacks.size(); ++i)
      made.push_back(in_file(a.config, [&] {
        return lighter::callbacks::from_json(cfg.callbacks[i], join_path("fit.callbacks", i), staging.string());
      }));
    return made;
  };
  std::vector<training::CallbackPtr> callbacks = make_callbacks();
  if (ensemble) {
    if (cfg.checkpoint) logger()->info("ensembles keep no resumable checkpoint: fit.checkpoint does not apply");
  } else if (cfg.checkpoint) {
    lighter::callbacks::BackupAndRestoreOptions backup(staging.string());
    backup.delete_checkpoint(false).double_checkpoint(true);
    callbacks.push_back(std::make_shared<lighter::callbacks::BackupAndRestore>(backup));
  } else if (a.resume) {
    throw UsageError("--resume needs fit.checkpoint (this config sets it to false)");
  }

  auto timer = std::make_shared<StepTimer>();
  callbacks.push_back(timer);
  training::FitOptions fit;
  fit.callbacks(callbacks);
  fit.epochs(cfg.epochs).batch_size(cfg.batch_size).shuffle(cfg.shuffle).verbose(static_cast<int>(cfg.verbose));
  fit.class_weight(cfg.class_weight);
  fit.dtype_policy(training::precision_from_string(cfg.dtype_policy, "dtype_policy"));
  fit.steps_per_epoch(cfg.steps_per_epoch).validation_steps(cfg.validation_steps).validation_freq(cfg.validation_freq);
  // The held-out part: a validation file, or Keras' validation_split (the last rows) of the training file.
  torch::Tensor y = train.y, vx, vy;
  if (validation) {
    vx = model_input(*model, validation->x);
    vy = validation->y;
  } else if (cfg.validation_split > 0) {
    auto parts = in_file(a.config, [&] {
      return data::split_tail(data::TensorDataset(x, y), cfg.validation_split);
    });
    x = parts.first.x;
    y = parts.first.y;
    vx = parts.second.x;
    vy = parts.second.y;
  }
  if (vx.defined()) fit.validation_data(std::make_pair(vx, vy));
  auto start = std::chrono::steady_clock::now();
  training::History history;
  std::optional<ensemble::EnsembleFitResult> members_fit;
  try {
    if (ensemble) {
      ensemble::EnsembleFitOptions eopts;
      eopts.compile = [&](models::ModelImpl& m) { m.compile(optimizer, cfg.loss, cfg.metrics); };
      eopts.fit = fit;
      eopts.callbacks = [&](size_t) {  // each member's own (EarlyStopping keeps state); one timer for all
        auto made = make_callbacks();
        made.push_back(timer);
        return made;
      };
      eopts.seed = static_cast<uint64_t>(cfg.seed);
      if (vx.defined()) eopts.validation = std::make_pair(vx, vy);
      members_fit = in_file(a.config, [&] { return ensemble::fit_ensemble(*ensemble, x, y, eopts); });
    } else {
      history = model->fit(x, y, fit);
    }
  } catch (...) {
    if (fs::is_empty(staging, ec)) {
      fs::remove_all(staging, ec);
    } else if (has_checkpoint(staging)) {
      logger()->error("training failed; continue from the last checkpoint with --resume (it is in {})", staging.string());
    } else {
      logger()->error("training failed; what the callbacks wrote is kept in {}", staging.string());
    }
    throw;
  }
  callbacks.clear();
  fit.callbacks({});  // closes the callbacks' files (CSVLogger) before the folder moves
  std::vector<std::string> callback_outputs;
  for (const auto& entry : fs::directory_iterator(staging))
    if (!is_run_file(entry.path().filename().string())) callback_outputs.push_back(entry.path().filename().string());
  std::sort(callback_outputs.begin(), callback_outputs.end());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Final scores on each split (the validation part is the one fit held out).
  json metrics = json::object();
  training::EvaluateOptions eval;
  eval.batch_size(cfg.batch_size);
  std::map<std::string, std::map<std::string, double>> scores;
  if (vx.defined()) scores["validation"] = model->evaluate(vx, vy, eval);
  if (test) scores["test"] = model->evaluate(model_input(*model, test->x), test->y, eval);
  if (language_model) {
    // Bits per token (the loss in bits) beside the unigram baseline of the training targets' frequencies.
    auto add_bits = [&](const std::string& split, const torch::Tensor& targets) {
      auto& s = scores[split];
      if (s.count("loss")) s["bits_per_token"] = s["loss"] / std::log(2.0);
      s["unigram_bits_per_token"] = unigram_bits_per_token(y, targets, vectorizer->vocabulary_size());
    };
    if (vx.defined()) add_bits("validation", vy);
    if (test) add_bits("test", test->y);
  }
  for (const auto& kv : scores) metrics[kv.first] = scores_json(kv.second);
  if (ensemble) {
    // Each member beside the ensemble, on the same held-out data.
    json members = json::array();
    const auto& ms = ensemble->members();
    for (size_t i = 0; i < ms.size(); ++i) {
      json m = {{"name", "member_" + std::to_string(i)},
                {"weight", members_fit->weights[i]},
                {"pretrained", ensemble->pretrained()[i]},
                {"epochs", members_fit->member_histories[i].epoch.size()}};
      if (vx.defined()) m["validation"] = scores_json(ms[i]->evaluate(vx, vy, eval));
      if (test) m["test"] = scores_json(ms[i]->evaluate(model_input(*model, test->x), test->y, eval));
      members.push_back(m);
    }
    metrics["members"] = members;
    metrics["combine"] = ensemble->options().combine();
  }
  size_t epochs = history.epoch.size();
  if (ensemble)
    for (const auto& h : members_fit->member_histories) epochs = std::max(epochs, h.epoch.size());
  metrics["epochs"] = epochs;
  metrics["train_seconds"] = seconds;
  // Steps of this process (a resumed run counts those after the checkpoint).
  metrics["steps"] = timer->steps();
  metrics["seconds_per_step"] = timer->seconds_per_step();
  const auto counts = model->count_params();
  metrics["parameters"] = {{"trainable", counts.trainable}, {"total", counts.total()}};

  json extra = {{"name", cfg.name},
                {"target", train.target_name},
                {"features", train.feature_names},
                {"classes", train.classes},
                {"loss", model->trainer().loss().name()}};
  if (!callback_outputs.empty()) extra["callback_outputs"] = callback_outputs;
  if (vectorizer) extra["text_vectorization"] = vectorizer->to_json();
  if (adapted) {
    // An adapter run holds the adapter only.
    add_adapter_record(extra, base_extra, *cfg.adapters, base_dir, output);
    if (train.classes.empty() && base_extra.contains("classes")) extra["classes"] = base_extra["classes"];
  }
  model->to(torch::kCPU);
  publish(output, [&](const std::string& dir) {
    if (adapted) {
      adapted->save_adapter(dir);
      write_file_atomic(dir + "/lighter.json", extra.dump(2) + "\n");
    } else {
      save_model(*model, dir, extra);
    }
    write_file_atomic(dir + "/metrics.json", metrics.dump(2) + "\n");
    if (ensemble) {
      write_file_atomic(dir + "/history.csv", ensemble::history_csv(*members_fit));
    } else {
      write_file_atomic(dir + "/history.csv", history.to_csv());
      training::save_history_plot(history, dir + "/training_curves.svg", cfg.name);
    }
  }, /*fresh_staging=*/false);
  for (const auto& kv : scores) print_scores(kv.first, kv.second);
  if (ensemble) {
    // Each member on the same split (test when there is one).
    const char* split = test ? "test" : "validation";
    for (const auto& m : metrics["members"])
      if (m.contains(split))
        print_scores(m["name"].get<std::string>() + " " + split, m[split].get<std::map<std::string, double>>());
  }
  std::printf("outputs:   %s (%s, lighter.json, metrics.json, history.csv%s)\n", cfg.output_dir.c_str(),
              adapted ? "adapter_config.json, adapter_model.safetensors" : "model.json, model.safetensors",
              ensemble ? "" : ", training_curves.svg, checkpoint.safetensors");
  return 0;
}

// Loads the model saved by `lighter train` and the label mapping stored beside it.
std::pair<models::ModelPtr, json> load_trained(const Args& a) {
  if (a.weights.empty()) throw UsageError(a.command + " needs --weights DIR (the output folder of `lighter train`)");
  json extra = load_model_extra(a.weights);
  if (extra.is_null()) extra = json::object();
  if (!extra.contains("adapter")) return {load_model(a.weights), extra};
  // An adapter run: its base model (named in lighter.json) with the adapter, unmerged (as it was evaluated).
  const std::string file = a.weights + "/lighter.json";
  const json& record = extra["adapter"];
  if (!record.is_object() || !record.value("base_model", json()).is_string())
    throw DataError(file, "\"adapter\" must be an object with the base model's folder as \"base_model\"");
  std::string base = record["base_model"].get<std::string>();
  if (!fs::is_directory(base) && record.value("base_model_relative", json()).is_string()) {
    const fs::path moved = fs::path(a.weights) / record["base_model_relative"].get<std::string>();
    if (fs::is_directory(moved)) base = moved.lexically_normal().string();
  }
  if (!fs::is_directory(base))
    throw DataError(file, "the adapter's base model " + base + " is gone (the adapter run needs the folder it adapted)");
  auto model = load_base(base).first;
  peft::PeftModel peft(model);
  peft.load_adapter(a.weights, record.value("name", std::string("default")));
  return {model, extra};
}

int cmd_evaluate(const Args& a) {
  if (a.config.empty()) throw UsageError("evaluate needs a CONFIG file");
  RunConfig cfg = load_run_config(a.config, a.sets);
  expect_loss_config(cfg, a);
  auto [model, extra] = load_trained(a);
  auto optimizer = in_file(a.config, [&] { return optimizers::from_json(cfg.optimizer, "compile.optimizer"); });
  in_file(a.config, [&] { model->compile(optimizer, cfg.loss, cfg.metrics); });
  DataSource source = cfg.test ? *cfg.test : cfg.train;
  if (!a.data.empty()) {
    if (source.format == "text") {
      // A folder of class sub-folders or a file of labelled lines, whichever --data names.
      source.folder = fs::is_directory(a.data) ? a.data : "";
      source.path = fs::is_directory(a.data) ? "" : a.data;
    } else if (source.format == "language_model") {
      source.path = a.data;
    } else if (source.format != "csv") {
      throw UsageError("--data replaces a csv file or text data; this config's data is " + source.format +
                       " (edit the config)");
    } else {
      source.path = a.data;
    }
  }
  auto vectorizer = vectorizer_of(extra, a.weights);
  auto table = in_file(a.config, [&] {
    return read_source(source, is_classification_loss(model->trainer().loss().name()), classes_of(extra),
                       vectorizer ? &*vectorizer : nullptr);
  });
  training::EvaluateOptions eval;
  eval.batch_size(cfg.batch_size);
  auto scores = model->evaluate(model_input(*model, table.x), table.y, eval);
  std::printf("%s\n", scores_json(scores).dump(2).c_str());
  return 0;
}

// Whether the first line of a CSV text names `column` (fields trimmed of spaces, quotes and a CR).
bool header_has_column(const std::string& text, const std::string& column) {
  std::string line = text.substr(0, text.find('\n'));
  size_t begin = 0;
  while (begin <= line.size()) {
    size_t end = line.find(',', begin);
    if (end == std::string::npos) end = line.size();
    std::string field = line.substr(begin, end - begin);
    auto strip = [](std::string& f) {
      while (!f.empty() && (f.back() == '\r' || f.back() == ' ' || f.back() == '"')) f.pop_back();
      size_t i = 0;
      while (i < f.size() && (f[i] == ' ' || f[i] == '"')) ++i;
      f.erase(0, i);
    };
    strip(field);
    if (field == column) return true;
    begin = end + 1;
  }
  return false;
}

int cmd_predict(const Args& a) {
  if (a.input.empty())
    throw UsageError("predict needs --input FILE (.csv, .npy or IDX; for a text model one text per line)");
  auto [model, extra] = load_trained(a);
  std::vector<std::string> classes = classes_of(extra);
  std::string target = extra.value("target", "");
  // The file's first bytes tell its format: NumPy's magic, IDX's two zero bytes (or gzip's), else CSV text.
  std::string head;
  {
    std::ifstream in(a.input, std::ios::binary);
    if (!in) throw DataError(a.input, "no such file");
    head.resize(6);
    in.read(&head[0], 6);
    head.resize(static_cast<size_t>(in.gcount()));
  }
  data::Table table;
  auto vectorizer = vectorizer_of(extra, a.weights);
  if (vectorizer) {
    // A model trained on text: the input holds one text per line.
    table.x = vectorizer->encode(data::read_text_per_line(a.input));
    if (table.x.size(0) == 0) throw DataError(a.input, "holds no text");
  } else if (head.rfind("\x93NUMPY", 0) == 0) {
    table.x = data::read_npy(a.input);
  } else if (head.size() >= 2 && ((head[0] == 0 && head[1] == 0) || (head[0] == '\x1f' && head[1] == '\x8b'))) {
    // IDX images (N, rows, cols) get Keras' channel axis, as the idx data source gives them.
    table.x = data::read_idx(a.input);
    if (table.x.dim() == 3) table.x = table.x.unsqueeze(-1);
  } else {
    // A CSV input may carry the target column (e.g. a test file): it is ignored.
    data::CsvOptions o;
    bool has_target = !target.empty() && header_has_column(read_text_file(a.input), target);
    if (has_target) {
      o.target(target).classes(classes);
      if (!classes.empty()) o.kind(data::TargetKind::Classification);
    } else {
      o.kind(data::TargetKind::None);
    }
    table = data::read_csv(a.input, o);
  }
  if (table.x.dim() == 0) throw DataError(a.input, "expected an array with a sample axis, got a scalar");
  auto probs = model->predict(model_input(*model, table.x));
  std::string out;
  auto p = probs.reshape({probs.size(0), -1}).to(torch::kDouble).contiguous();
  auto acc = p.accessor<double, 2>();
  char buf[32];
  if (!classes.empty() && (p.size(1) == static_cast<int64_t>(classes.size()) || p.size(1) == 1)) {
    // One sigmoid unit gives P(class 1); otherwise one probability per class.
    bool binary = p.size(1) == 1;
    out += binary ? "probability," : "";
    if (!binary)
      for (const auto& c : classes) out += c + ",";
    out += "predicted\n";
    for (int64_t i = 0; i < p.size(0); ++i) {
      int64_t best = 0;
      for (int64_t j = 0; j < p.size(1); ++j) {
        std::snprintf(buf, sizeof buf, "%.6g,", acc[i][j]);
        out += buf;
        if (acc[i][j] > acc[i][best]) best = j;
      }
      if (binary) best = acc[i][0] >= 0.5 ? 1 : 0;
      out += (best < static_cast<int64_t>(classes.size()) ? classes[best] : std::to_string(best)) + "\n";
    }
  } else {
    for (int64_t j = 0; j < p.size(1); ++j) out += (j ? ",prediction_" : "prediction_") + std::to_string(j);
    out += "\n";
    for (int64_t i = 0; i < p.size(0); ++i) {
      for (int64_t j = 0; j < p.size(1); ++j) {
        std::snprintf(buf, sizeof buf, j ? ",%.6g" : "%.6g", acc[i][j]);
        out += buf;
      }
      out += "\n";
    }
  }
  if (a.output.empty()) {
    std::fputs(out.c_str(), stdout);
  } else {
    write_file_atomic(a.output, out);
  }
  return 0;
}

// lighter merge: one model out of several saved ones of the same architecture (lighter/ensemble/weight_merge.h).
// The greedy soup of `lighter merge`: the models scored on held-out data (the config's data.validation, or --data
// read like its training file) with the config's loss and metrics; --metric picks the score (default: the first
// metric, else the loss).
ensemble::GreedySoup greedy_soup_of(const Args& a, const std::vector<ensemble::Weights>& weights) {
  RunConfig cfg = load_run_config(a.config, a.sets);
  expect_loss_config(cfg, a);
  auto model = load_model(a.models.front());
  json extra = load_model_extra(a.models.front());
  if (extra.is_null()) extra = json::object();
  auto optimizer = in_file(a.config, [&] { return optimizers::from_json(cfg.optimizer, "compile.optimizer"); });
  in_file(a.config, [&] { model->compile(optimizer, cfg.loss, cfg.metrics); });
  DataSource source;
  if (!a.data.empty()) {
    if (cfg.train.format != "csv")
      throw UsageError("--data replaces a csv file; this config's training data is " + cfg.train.format +
                       " (give it a data.validation source instead)");
    source = cfg.train;
    source.path = a.data;
    source.shuffle = false;
  } else if (cfg.validation) {
    source = *cfg.validation;
  } else {
    throw UsageError("--method greedy_soup needs held-out data: a data.validation source in " + a.config +
                     " or --data FILE (not the test set, whose scores would then be chosen on)");
  }
  auto vectorizer = vectorizer_of(extra, a.models.front());
  auto table = in_file(a.config, [&] {
    return read_source(source, is_classification_loss(model->trainer().loss().name()), classes_of(extra),
                       vectorizer ? &*vectorizer : nullptr);
  });
  std::string metric = a.metric;
  if (metric.empty()) {
    auto ms = model->trainer().metrics();
    metric = ms.empty() ? "loss" : ms.front()->name();
  }
  const bool higher = lighter::callbacks::resolve_mode("auto", metric) == "max";
  torch::Tensor x = model_input(*model, table.x);
  training::EvaluateOptions eval;
  eval.batch_size(cfg.batch_size);
  auto score = [&](const ensemble::Weights& w) {
    ensemble::assign_weights(*model, w);
    auto scores = model->evaluate(x, table.y, eval);
    auto it = scores.find(metric);
    if (it == scores.end()) {
      std::string keys;
      for (const auto& kv : scores) keys += (keys.empty() ? "" : ", ") + kv.first;
      throw UsageError("--metric " + metric + ": the config's compile section logs " + keys);
    }
    return it->second;
  };
  return ensemble::greedy_soup(weights, score, higher);
}

int cmd_merge(const Args& a) {
  static const std::vector<std::string> methods = {"soup",      "greedy_soup", "task_arithmetic", "ties",
                                                   "dare",      "dare_ties",   "slerp"};
  const std::string listed = "soup, greedy_soup, task_arithmetic, ties, dare, dare_ties, slerp";
  if (a.method.empty()) throw UsageError("merge needs --method (" + listed + ")");
  if (std::find(methods.begin(), methods.end(), a.method) == methods.end())
    throw UsageError("unknown merge method '" + a.method + "' (" + listed + ")");
  const bool greedy = a.method == "greedy_soup";
  if (greedy && a.config.empty())
    throw UsageError("--method greedy_soup needs --config CONFIG (its compile section and held-out data score the soup)");
  if (!greedy && (!a.config.empty() || !a.metric.empty() || !a.data.empty()))
    throw UsageError("--config, --data and --metric go with --method greedy_soup only");
  if (a.output.empty()) throw UsageError("merge needs --output DIR");
  if (a.models.empty()) throw UsageError("merge needs the folders of the models to merge");
  const bool with_base = a.method != "soup" && a.method != "greedy_soup" && a.method != "slerp";
  if (with_base && a.base.empty()) throw UsageError("--method " + a.method + " needs --base DIR (the model the others were fine-tuned from)");
  if (!with_base && !a.base.empty()) throw UsageError("--method " + a.method + " takes no --base");
  if ((a.method == "ties" || a.method == "dare" || a.method == "dare_ties") && !a.density)
    throw UsageError("--method " + a.method + " needs --density D (the fraction of each task vector kept, in (0, 1])");
  if (a.method == "slerp" && (a.models.size() != 2 || !a.t))
    throw UsageError("--method slerp merges exactly two models and needs --t T in [0, 1]");
  if (fs::exists(a.output) && !fs::is_empty(a.output))
    throw UsageError("--output " + a.output + " exists and is not empty; merged models go into a new folder");

  std::vector<ensemble::Weights> weights;
  std::vector<std::string> labels;
  std::vector<const ensemble::Weights*> all;
  ensemble::Weights base;
  if (with_base) {
    base = ensemble::weights_of(*load_model(a.base));
    labels.push_back(a.base);
  }
  for (const auto& dir : a.models) {
    weights.push_back(ensemble::weights_of(*load_model(dir)));
    labels.push_back(dir);
  }
  if (with_base) all.push_back(&base);
  for (const auto& w : weights) all.push_back(&w);
  ensemble::check_same_architecture(all, labels);

  const double lambda = a.lambda.value_or(1.0);
  const uint64_t seed = a.generation.seed() >= 0 ? static_cast<uint64_t>(a.generation.seed()) : 0;
  ensemble::Weights merged;
  json record = {{"method", a.method}, {"models", a.models}};
  if (greedy) {
    if (!a.merge_weights.empty()) throw UsageError("--method greedy_soup takes no --weights (it averages uniformly)");
    auto soup = greedy_soup_of(a, weights);
    merged = std::move(soup.weights);
    json ingredients = json::array(), scores = json::array();
    for (size_t i : soup.ingredients) ingredients.push_back(a.models[i]);
    for (double v : soup.individual_scores) scores.push_back(v);
    record["ingredients"] = ingredients;
    record["individual_scores"] = scores;
    record["score"] = soup.score;
    std::printf("greedy soup: %zu of %zu models (held-out score %.4f; the best single model scored %.4f)\n",
                soup.ingredients.size(), a.models.size(), soup.score,
                soup.individual_scores[soup.ingredients.front()]);
  } else if (a.method == "soup") merged = ensemble::average(weights, a.merge_weights);
  else if (a.method == "task_arithmetic") merged = ensemble::task_arithmetic(base, weights, a.merge_weights, lambda);
  else if (a.method == "ties") merged = ensemble::ties(base, weights, *a.density, a.merge_weights, lambda);
  else if (a.method == "slerp") merged = ensemble::slerp(weights[0], weights[1], *a.t);
  else merged = ensemble::dare(base, weights, *a.density, seed, a.merge_weights, a.method == "dare_ties", lambda);

  // The first model (or the base) gives the architecture and what was saved beside it (a vectorizer, class names).
  const std::string& first = with_base ? a.base : a.models.front();
  auto model = load_model(first);
  ensemble::assign_weights(*model, merged);
  json extra = load_model_extra(first);
  if (extra.is_null()) extra = json::object();
  if (with_base) record["base"] = a.base;
  if (!a.merge_weights.empty()) record["weights"] = a.merge_weights;
  if (a.lambda) record["lambda"] = *a.lambda;
  if (a.density) record["density"] = *a.density;
  if (a.method == "dare" || a.method == "dare_ties") record["seed"] = seed;
  if (a.t) record["t"] = *a.t;
  extra["merge"] = record;
  save_model(*model, a.output, extra);
  std::printf("merged %zu model(s) with %s into %s\n", a.models.size(), a.method.c_str(), a.output.c_str());
  return 0;
}

// lighter merge-adapter: a plain model folder with a LoRA/DoRA adapter folded into the base's weights.
int cmd_merge_adapter(const Args& a) {
  if (a.base.empty() || a.adapter.empty() || a.output.empty())
    throw UsageError("merge-adapter needs --base DIR (a model folder), --adapter DIR (an adapter run or PEFT adapter "
                     "folder) and --output DIR");
  if (!a.config.empty()) throw UsageError("unexpected argument " + a.config);
  if (fs::exists(a.output) && (!fs::is_directory(a.output) || !fs::is_empty(a.output)))
    throw DataError(a.output, "--output exists and is not an empty folder; the merged model goes into a new folder");
  auto [model, extra] = load_base(a.base);
  if (!fs::is_directory(a.adapter)) throw DataError(a.adapter, "no such folder (--adapter: an adapter run's folder)");
  json adapter_extra = load_model_extra(a.adapter);
  std::string name = "default";
  if (adapter_extra.is_object() && adapter_extra.contains("adapter") && adapter_extra["adapter"].is_object()) {
    const json& record = adapter_extra["adapter"];
    name = record.value("name", name);
    const std::string recorded = record.value("base_model", std::string());
    std::error_code ec;
    if (!recorded.empty() && !fs::equivalent(recorded, a.base, ec))
      logger()->warn("the adapter in {} was trained on {}, not on {}", a.adapter, recorded, a.base);
  }
  peft::PeftModel peft(model);
  peft.load_adapter(a.adapter, name);
  const bool dora = peft.config(name).use_dora();
  auto merged = peft.merge_and_unload();
  extra["merge"] = {{"method", dora ? "dora" : "lora"},
                    {"base", fs::absolute(a.base).lexically_normal().string()},
                    {"adapter", fs::absolute(a.adapter).lexically_normal().string()},
                    {"adapter_name", name}};
  save_model(*merged, a.output, extra);
  std::printf("merged the adapter %s into %s: %s\n", a.adapter.c_str(), a.base.c_str(), a.output.c_str());
  return 0;
}

int cmd_summary(const Args& a) {
  if (a.config.empty()) throw UsageError("summary needs a CONFIG or a model JSON file");
  json j = read_json_file(a.config);
  models::ModelPtr model;
  if (j.is_object() && j.contains("class_name")) {
    model = models::model_from_file(a.config);
  } else {
    RunConfig cfg = load_run_config(a.config, a.sets);
    if (cfg.adapters) {
      // The base model with the config's adapter: the summary shows what the adapter run would train.
      model = load_base(cfg.adapters->base_model).first;
      std::optional<peft::PeftModel> peft;
      in_file(a.config, [&] { in_adapters([&] { peft.emplace(model, cfg.adapters->lora, cfg.adapters->adapter_name); }); });
      std::fputs(model->summary().c_str(), stdout);
      return 0;
    }
    model = in_file(a.config, [&] { return models::model_from_json(cfg.model, "model"); });
  }
  std::fputs(model->summary().c_str(), stdout);
  return 0;
}

// Continues a prompt with a language model trained by `lighter train` (KerasHub's CausalLM.generate).
int cmd_generate(const Args& a) {
  if (!a.prompt) throw UsageError("generate needs --prompt TEXT");
  models::GenerateOptions options = a.generation;
  try {
    models::check_generate_options(options);
  } catch (const ConfigError& e) {
    std::string flag = e.path();
    std::replace(flag.begin(), flag.end(), '_', '-');
    throw UsageError("--" + flag + ": " + e.message());
  }
  auto [model, extra] = load_trained(a);
  auto vectorizer = vectorizer_of(extra, a.weights);
  if (!vectorizer)
    throw DataError(a.weights, "the run has no text vectorizer (lighter.json): generate needs a model trained on "
                               "token ids from text (a language_model data source)");
  std::string dtype = model->input_dtype();
  if (dtype.rfind("int", 0) != 0 && dtype.rfind("uint", 0) != 0)
    throw DataError(a.weights, "generate needs a model of token ids (an int64 input), this one takes " + dtype);
  torch::Tensor ids = token_ids(*vectorizer, *a.prompt);
  if (ids.numel() == 0)
    throw Error("--prompt: the prompt gives no tokens" + std::string(a.prompt->empty() ? " (it is empty)" : ""));
  // Tokens outside the vocabulary become the OOV id, as in training; say so, since the model rarely saw it.
  std::vector<std::string> unknown;
  for (const auto& token : vectorizer->tokenize(*a.prompt))
    if (vectorizer->token_id(token) == 1 && std::find(unknown.begin(), unknown.end(), token) == unknown.end())
      unknown.push_back(token);
  if (!unknown.empty()) {
    std::string list;
    for (const auto& t : unknown) list += (list.empty() ? "'" : ", '") + t + "'";
    logger()->warn("--prompt: {} not in the vocabulary, read as the OOV token [UNK]", list);
  }
  auto device = resolve_device(a.device.empty() ? "cpu" : a.device, "--device");
  model->to(device);
  auto start = std::chrono::steady_clock::now();
  torch::Tensor out = models::generate(*model, ids.unsqueeze(0), options);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t prompt_length = ids.size(0), added = out.size(1) - prompt_length;
  logger()->info("generated {} tokens in {:.3f} s ({}, sampler {})", added, seconds,
                 options.use_cache() ? "cached" : "without cache", options.sampler());
  torch::Tensor tail = out[0].narrow(0, prompt_length, added).contiguous();
  std::vector<int64_t> new_ids(tail.data_ptr<int64_t>(), tail.data_ptr<int64_t>() + added);
  std::string continuation = decode_tokens(*vectorizer, new_ids);
  const auto& split = vectorizer->options().split();
  bool characters = split && *split == "character";
  std::string text = *a.prompt + (characters || continuation.empty() ? "" : " ") + continuation;
  std::fputs((text + "\n").c_str(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace

int run(const std::vector<std::string>& argv) {
  try {
    if (argv.empty() || argv[0] == "--help" || argv[0] == "-h" || argv[0] == "help") {
      std::fputs(kUsage, argv.empty() ? stderr : stdout);
      return argv.empty() ? 2 : 0;
    }
    Args a = parse_args(argv);
    if (!a.log_level.empty()) set_log_level(a.log_level);
    // Lighter's runtime defaults (lighter/core/runtime.h), or the flags' choices; train applies its config's.
    if (a.command == "train") return cmd_train(a);
    configure_runtime(runtime_options(a, nullptr));
    if (a.command == "evaluate") return cmd_evaluate(a);
    if (a.command == "predict") return cmd_predict(a);
    if (a.command == "summary") return cmd_summary(a);
    if (a.command == "generate") return cmd_generate(a);
    if (a.command == "merge") return cmd_merge(a);
    if (a.command == "merge-adapter") return cmd_merge_adapter(a);
    throw UsageError("unknown command '" + a.command +
                     "' (commands: train, evaluate, predict, summary, generate, merge, merge-adapter)");
  } catch (const UsageError& e) {
    std::fprintf(stderr, "lighter: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "lighter: error: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    // A check inside a forward pass (e.g. a shape that does not fit): the message without torch's backtrace.
    std::fprintf(stderr, "lighter: error: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lighter: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace lighter::cli
