#pragma once
/// A training run described in JSON (DESIGN.md §3): name, seed, device, data, model, compile, fit, output_dir, and
/// optionally adapters (a LoRA/DoRA adapter trained on a saved model).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lighter/peft/lora.h"
#include "lighter/peft/reinforce.h"

namespace lighter::cli {

/// One data source:
///   {"format": "csv", "path": ..., "target": "species" | index, "delimiter": ",", "header": true}
///   {"format": "idx", "images": ..., "labels": ...}   images (N, rows, cols) -> float32 (N, rows, cols, 1)
///   {"format": "npy", "x": ..., "y": ...}              any shapes; y optional for predict inputs
///   {"format": "text", "path": ..., "label_separator": "\t"}   one example per line: label, separator, text
///   {"format": "text", "folder": ...}                  one sub-folder per class, one .txt file per example
///                                                      (text sources take "encoding": only "utf-8")
///   {"format": "language_model", "path": ..., "sequence_length": 128, "sequence_stride": 128}
///       next-token prediction on one text (KerasHub's CausalLM data): the whole file (UTF-8, a BOM dropped, CRLF
///       read as LF) is one text, turned into ids by data.text_vectorization without padding: every token counts,
///       so with "split": "character" spaces and newlines are tokens too (and with "standardize": null case and
///       punctuation stay). The ids are cut into windows of sequence_length + 1 ids, one every sequence_stride ids
///       (default sequence_length: windows do not overlap; Keras' timeseries_dataset_from_array defaults to 1); ids
///       after the last whole window are dropped. x = window[:-1], y = window[1:], both int64 (N, sequence_length):
///       the loss is sparse_categorical_crossentropy over (N, sequence_length, vocabulary) scores. Validation and
///       test sources must be language_model sources too; data.validation_split takes the last windows, i.e. the
///       end of the text. The vectorizer's output_sequence_length does not apply (must be null).
///   {"format": "prompts", "path": ..., "prompt_length": 24}
///       prompts of a reward-based run (the "reinforce" section): one per line of the file (UTF-8, CRLF read as LF),
///       each the first prompt_length tokens of its line through the base model's vectorizer; shorter lines are
///       skipped. data.validation_split takes the last prompts as the held-out ones.
/// idx and npy take "classes" (names of the class ids) too; every format takes "shuffle".
struct DataSource {
  std::string format = "csv";
  std::string path;  // csv; resolved against the config file's folder
  std::string target;
  int64_t target_index = -1;
  char delimiter = ',';
  bool header = true;
  std::string images, labels;  // idx
  std::string x, y;            // npy
  std::string folder;          // text: a folder of class sub-folders (else `path` is a file of labelled lines)
  std::string label_separator = "\t";
  int64_t sequence_length = 0, sequence_stride = 0;  // language_model
  int64_t prompt_length = 0;                          // prompts
  std::vector<std::string> classes;
  /// Shuffle the rows once after reading (seeded by the run's seed): for files sorted by class, so that
  /// validation_split, which takes the last rows as Keras does, gets every class.
  bool shuffle = false;
  std::string json_path;  // where it came from, for errors
};

/// The `"adapters"` section: a LoRA/DoRA adapter (lighter/peft/lora.h) trained on a model saved by `lighter train`
/// (or save_model), with PEFT's LoraConfig fields and the run's own:
///   {"base_model": "runs/kjv_char_lm",      the trained model to adapt: a folder with model.json,
///                                           model.safetensors and lighter.json (relative to the config's folder)
///    "adapter_name": "default",
///    "r": 8, "lora_alpha": 8, "lora_dropout": 0.0,
///    "target_modules": ["Dense"] | "regex",  a list (module paths or their last parts, or layer class names) or
///                                           one regex the whole module path must match; required
///    "bias": "none" | "all" | "lora_only", "use_rslora": false, "use_dora": false,
///    "modules_to_save": [], "init_lora_weights": true | false | "gaussian"}
/// A config with adapters takes its architecture from the base model: `model` must be left out, and so must
/// data.text_vectorization (text data goes through the base run's vectorizer, vocabulary included, saved in its
/// lighter.json; a new vocabulary would give the base's embeddings other meanings). The class names of a
/// classification are the base run's too.
struct AdapterSpec {
  std::string base_model;  // resolved against the config file's folder
  std::string adapter_name = "default";
  peft::LoraConfig lora;
};

/// The `"reinforce"` section: reward-based fine-tuning (REINFORCE with a leave-one-out or group baseline,
/// lighter/peft/reinforce.h) of an adapter on a saved language model. Needs the "adapters" section (the policy is the
/// base with the adapter; the KL reference is the base alone) and a "prompts" training source; compile gives the
/// optimizer only (no loss or metrics) and there is no "fit" section:
///   {"reward": {"class_name": "DictionaryWords", "config": {"path": "/usr/share/dict/words", "min_length": 2}},
///    "steps": 100, "batch_size": 8,          updates, and prompts per update (each sampled samples_per_prompt times)
///    "evaluation_samples": 4,                completions per held-out prompt when scoring before and after
///    "log_every": 10,                        a progress line every so many updates (0: none)
///    "samples_per_prompt": 4, "baseline": "rloo" | "group" | "none", "max_new_tokens": 32, "temperature": 1.0,
///    "end_token_id": -1, "kl_coef": 0.0, "seed": the run's seed}
struct ReinforceSpec {
  nlohmann::json reward;
  peft::ReinforceOptions options;
  int64_t steps = 100, batch_size = 8, evaluation_samples = 4, log_every = 10;
  std::string base_dir;  // the config file's folder (relative word-list paths resolve against it)
};

struct RunConfig {
  std::string name = "run";
  std::string file;  // the config file ("" when built in memory)
  int64_t seed = 42;
  std::string device = "auto";
  /// Keras' dtype policy of the training step: "float32", "mixed_bfloat16" (CPU and CUDA) or "mixed_float16"
  /// (CUDA, with dynamic loss scaling).
  std::string dtype_policy = "float32";
  /// ATen's deterministic algorithms (and cuDNN's): the same run gives the same weights on CUDA too, sometimes
  /// slower; an operation without a deterministic implementation is an error.
  bool deterministic = false;
  /// Intra-op threads for `lighter train` (0: Lighter's default, one per hardware thread; --threads wins) and
  /// whether malloc's thresholds are raised (see lighter/core/runtime.h; --no-tune-allocator wins).
  int threads = 0;
  bool tune_allocator = true;
  DataSource train;
  std::optional<DataSource> validation, test;
  /// data.text_vectorization: the TextVectorization options (Keras' config) turning text sources into token ids;
  /// null when absent. The vectorizer adapts on the training texts only (unless it has a vocabulary) and is reused
  /// for validation, test and predict; `lighter train` saves it (with its vocabulary) in lighter.json.
  nlohmann::json text_vectorization;
  double validation_split = 0.0;
  nlohmann::json model;     // Keras JSON (null with adapters: the base model's)
  /// The `"adapters"` section, when the run trains an adapter on a saved model.
  std::optional<AdapterSpec> adapters;
  /// The `"reinforce"` section, when the run fine-tunes the adapter with rewards instead of a loss.
  std::optional<ReinforceSpec> reinforce;
  nlohmann::json optimizer = "adam";
  nlohmann::json loss;
  std::vector<nlohmann::json> metrics;
  int64_t epochs = 1, batch_size = 32, verbose = 1;
  bool shuffle = true;
  std::map<int64_t, double> class_weight;
  /// Keras' fit arguments of the same names (0: the whole data).
  int64_t steps_per_epoch = 0, validation_steps = 0, validation_freq = 1;
  /// fit.checkpoint: keep a resumable checkpoint in the output folder at the end of every epoch (default true),
  /// from which `lighter train --resume` continues an interrupted run.
  bool checkpoint = true;
  /// fit.callbacks as given (Keras specs, checked by parse_run_config). `lighter train` builds them with relative
  /// file paths (CSVLogger's filename, ModelCheckpoint's filepath) resolved against the run's output folder.
  std::vector<nlohmann::json> callbacks;
  std::string output_dir;  // relative to the working directory
};

/// Sets `key.path=value` in a JSON document: the path uses dots and [i] (`fit.epochs`, `model.config.layers[1].config.units`);
/// the value is parsed as JSON when it parses, else taken as a string.
void apply_override(nlohmann::json& config, const std::string& assignment);

/// Reads and validates a run config (strict: unknown keys and wrong types name their path). Relative paths resolve
/// against `base_dir` (the config file's folder).
RunConfig parse_run_config(const nlohmann::json& config, const std::string& base_dir, const std::string& file = "");

/// Reads a config file, applies `--set` overrides, then parses it. Errors are prefixed with the file name.
RunConfig load_run_config(const std::string& file, const std::vector<std::string>& overrides = {});

}  // namespace lighter::cli
