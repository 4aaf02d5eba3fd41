#include "lighter/cli/run_config.h"

#include "lighter/training/mixed_precision.h"

#include <filesystem>

#include "lighter/callbacks/registry.h"
#include "lighter/core/error.h"
#include "lighter/core/json.h"
#include "lighter/data/text.h"

namespace lighter::cli {

namespace fs = std::filesystem;

namespace {

std::string resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute() || base_dir.empty()) return path;
  return (fs::path(base_dir) / path).lexically_normal().string();
}

DataSource parse_source(const json& j, const std::string& path, const std::string& base_dir) {
  ConfigReader r(j, path);
  DataSource s;
  s.json_path = path;
  s.format = r.choice("format", "csv", {"csv", "idx", "npy", "text", "language_model", "prompts"});
  if (s.format == "csv") {
    s.path = resolve(base_dir, r.get<std::string>("path"));
    const json& target = r.raw_or_null("target");
    if (target.is_string()) {
      s.target = target.get<std::string>();
    } else if (target.is_number_integer()) {
      s.target_index = target.get<int64_t>();
    } else if (!target.is_null()) {
      throw ConfigError(r.path_of("target"), "expected a column name or index, got " + describe(target));
    }
    std::string delimiter = r.get<std::string>("delimiter", ",");
    if (delimiter.size() != 1)
      throw ConfigError(r.path_of("delimiter"), "expected a single character, got \"" + delimiter + "\"");
    s.delimiter = delimiter[0];
    s.header = r.get<bool>("header", true);
  } else if (s.format == "idx") {
    s.images = resolve(base_dir, r.get<std::string>("images"));
    s.labels = resolve(base_dir, r.get<std::string>("labels"));
  } else if (s.format == "text") {
    if (r.has("folder") == r.has("path"))
      throw ConfigError(path, "a text source needs either \"path\" (a file of labelled lines) or \"folder\" (one "
                              "sub-folder per class), not both");
    if (r.has("folder")) {
      s.folder = resolve(base_dir, r.get<std::string>("folder"));
    } else {
      s.path = resolve(base_dir, r.get<std::string>("path"));
      s.label_separator = r.get<std::string>("label_separator", "\t");
      if (s.label_separator.empty()) throw ConfigError(r.path_of("label_separator"), "must not be empty");
    }
    r.choice("encoding", "utf-8", {"utf-8"});
  } else if (s.format == "prompts") {
    s.path = resolve(base_dir, r.get<std::string>("path"));
    s.prompt_length = r.positive_int("prompt_length");
    r.choice("encoding", "utf-8", {"utf-8"});
  } else if (s.format == "language_model") {
    s.path = resolve(base_dir, r.get<std::string>("path"));
    s.sequence_length = r.positive_int("sequence_length");
    s.sequence_stride = r.positive_int("sequence_stride", s.sequence_length);
    r.choice("encoding", "utf-8", {"utf-8"});
  } else {
    s.x = resolve(base_dir, r.get<std::string>("x"));
    if (r.has("y")) s.y = resolve(base_dir, r.get<std::string>("y"));
  }
  if (s.format != "csv" && s.format != "language_model" && s.format != "prompts") s.classes = r.get<std::vector<std::string>>("classes", {});
  s.shuffle = r.get<bool>("shuffle", false);
  r.finish();
  return s;
}

std::vector<std::string> string_list(ConfigReader& r, const std::string& key) {
  const json& v = r.raw_or_null(key);
  std::vector<std::string> out;
  if (v.is_null()) return out;
  if (!v.is_array()) throw ConfigError(r.path_of(key), "expected a list of module names, got " + describe(v));
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) throw ConfigError(join_path(r.path_of(key), i), "expected a string, got " + describe(v[i]));
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

AdapterSpec parse_adapters(const json& j, const std::string& base_dir) {
  ConfigReader r(j, "adapters");
  AdapterSpec a;
  a.base_model = resolve(base_dir, r.get<std::string>("base_model"));
  if (a.base_model.empty()) throw ConfigError(r.path_of("base_model"), "must name a folder written by lighter train");
  a.adapter_name = r.get<std::string>("adapter_name", "default");
  if (a.adapter_name.empty() || a.adapter_name.find_first_of("./") != std::string::npos)
    throw ConfigError(r.path_of("adapter_name"), "expected a non-empty name without '.' or '/', got \"" + a.adapter_name + "\"");
  peft::LoraConfig& c = a.lora;
  c.r(r.positive_int("r", 8));
  c.lora_alpha(r.positive("lora_alpha", 8.0));
  c.lora_dropout(r.fraction("lora_dropout", 0.0));
  const json& targets = r.raw("target_modules");
  if (targets.is_string()) {
    if (targets.get<std::string>().empty()) throw ConfigError(r.path_of("target_modules"), "must not be empty");
    c.target_regex(targets.get<std::string>());
  } else if (targets.is_array()) {
    c.target_modules(string_list(r, "target_modules"));
    if (c.target_modules().empty())
      throw ConfigError(r.path_of("target_modules"), "must name at least one layer (a module path or a class name)");
  } else {
    throw ConfigError(r.path_of("target_modules"), "expected a list of module names or a regex string, got " + describe(targets));
  }
  c.bias(r.choice("bias", "none", {"none", "all", "lora_only"}));
  c.use_rslora(r.get<bool>("use_rslora", false));
  c.use_dora(r.get<bool>("use_dora", false));
  c.modules_to_save(string_list(r, "modules_to_save"));
  const json& init = r.raw_or_null("init_lora_weights");
  if (!init.is_null()) {
    if (!(init.is_boolean() || (init.is_string() && init.get<std::string>() == "gaussian")))
      throw ConfigError(r.path_of("init_lora_weights"), "expected true, false or \"gaussian\", got " + describe(init));
    c.init_lora_weights(init);
  }
  r.finish();
  try {
    c.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(join_path("adapters", e.path()), e.message());
  }
  return a;
}

ReinforceSpec parse_reinforce(const json& j, const std::string& base_dir, int64_t seed) {
  if (!j.is_object()) throw ConfigError("reinforce", "expected an object, got " + describe(j));
  ConfigReader r(j, "reinforce");
  ReinforceSpec spec;
  spec.base_dir = base_dir;
  spec.reward = r.raw("reward");
  spec.steps = r.positive_int("steps", spec.steps);
  spec.batch_size = r.positive_int("batch_size", spec.batch_size);
  spec.evaluation_samples = r.positive_int("evaluation_samples", spec.evaluation_samples);
  spec.log_every = r.get<int64_t>("log_every", spec.log_every);
  if (spec.log_every < 0) throw ConfigError(r.path_of("log_every"), "expected 0 or a positive integer");
  // The trainer's options: the rest of the section (seeded by the run's seed unless given).
  json options = json::object();
  for (const char* key : {"samples_per_prompt", "baseline", "max_new_tokens", "temperature", "end_token_id", "kl_coef",
                          "seed"})
    if (r.has(key)) options[key] = r.raw(key);
  r.finish();
  if (!options.contains("seed")) options["seed"] = seed;
  spec.options = peft::reinforce_options_from_json(options, "reinforce");
  // The reward is built once here (a missing word list is reported before anything else happens).
  peft::reward_from_json(spec.reward, "reinforce.reward", [](const std::vector<int64_t>&) { return std::string(); },
                         base_dir);
  return spec;
}

}  // namespace

void apply_override(json& config, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError("--set", "expected KEY=VALUE (e.g. fit.epochs=5), got \"" + assignment + "\"");
  std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  json value;
  try {
    value = json::parse(text);
  } catch (const json::parse_error&) {
    value = text;
  }
  json* node = &config;
  std::string walked;
  size_t i = 0;
  while (i < key.size()) {
    if (key[i] == '[') {
      auto close = key.find(']', i);
      if (close == std::string::npos) throw ConfigError("--set " + key, "unclosed '['");
      size_t index = 0;
      try {
        index = std::stoul(key.substr(i + 1, close - i - 1));
      } catch (const std::exception&) {
        throw ConfigError("--set " + key, "expected a list index inside []");
      }
      if (!node->is_array() || index >= node->size())
        throw ConfigError("--set " + key, walked + " has no element [" + std::to_string(index) + "]");
      walked = join_path(walked, index);
      node = &(*node)[index];
      i = close + 1;
      if (i < key.size() && key[i] == '.') ++i;
      continue;
    }
    size_t end = key.find_first_of(".[", i);
    std::string part = key.substr(i, end == std::string::npos ? std::string::npos : end - i);
    if (part.empty()) throw ConfigError("--set " + key, "empty key");
    if (node->is_null()) *node = json::object();
    if (!node->is_object()) throw ConfigError("--set " + key, (walked.empty() ? "the config" : walked) + " is not an object");
    walked = join_path(walked, part);
    node = &(*node)[part];
    i = end == std::string::npos ? key.size() : (key[end] == '.' ? end + 1 : end);
  }
  *node = value;
}

RunConfig parse_run_config(const json& config, const std::string& base_dir, const std::string& file) {
  ConfigReader r(config, "");
  RunConfig c;
  c.file = file;
  c.name = r.get<std::string>("name", "run");
  c.seed = r.get<int64_t>("seed", 42);
  c.device = r.get<std::string>("device", "auto");
  c.dtype_policy = r.get<std::string>("dtype_policy", "float32");
  training::precision_from_string(c.dtype_policy, r.path_of("dtype_policy"));  // checked here, before training
  c.deterministic = r.get<bool>("deterministic", false);
  if (r.has("threads")) c.threads = static_cast<int>(r.positive_int("threads"));
  c.tune_allocator = r.get<bool>("tune_allocator", true);
  r.ignore({"description"});

  ConfigReader d = r.child("data");
  c.train = parse_source(d.raw("train"), d.path_of("train"), base_dir);
  c.validation_split = d.fraction("validation_split", 0.0);
  if (d.has("validation")) c.validation = parse_source(d.raw("validation"), d.path_of("validation"), base_dir);
  if (d.has("test")) c.test = parse_source(d.raw("test"), d.path_of("test"), base_dir);
  const bool with_adapters = r.has("adapters");
  if (with_adapters && d.has("text_vectorization"))
    throw ConfigError(d.path_of("text_vectorization"), "leave it out with adapters: text goes through the base model's "
                                                       "vectorizer and vocabulary (its lighter.json)");
  if (d.has("text_vectorization")) {
    c.text_vectorization = d.raw("text_vectorization");
    // Checked now, so a mistake is reported before anything is read or trained.
    lighter::data::TextVectorizer::from_config(c.text_vectorization, d.path_of("text_vectorization"));
  }
  d.finish();
  auto is_text = [](const std::string& format) { return format == "text" || format == "language_model"; };
  bool any_text = is_text(c.train.format) || (c.validation && is_text(c.validation->format)) ||
                  (c.test && is_text(c.test->format));
  for (const auto* s : {c.validation ? &*c.validation : nullptr, c.test ? &*c.test : nullptr}) {
    if (s && is_text(s->format) != is_text(c.train.format))
      throw ConfigError(s->json_path + ".format", "text and non-text sources cannot be mixed (train is \"" +
                                                     c.train.format + "\")");
    if (s && (s->format == "language_model") != (c.train.format == "language_model"))
      throw ConfigError(s->json_path + ".format", "a language_model source goes with language_model sources only "
                                                  "(train is \"" + c.train.format + "\")");
  }
  if (!c.text_vectorization.is_null() && !any_text)
    throw ConfigError("data.text_vectorization", "applies to text sources only (format \"text\" or \"language_model\")");
  if (c.train.format == "language_model" && c.text_vectorization.is_object() &&
      !c.text_vectorization.value("output_sequence_length", json()).is_null())
    throw ConfigError("data.text_vectorization.output_sequence_length",
                      "must be null for a language_model source (its windows are data.train.sequence_length long)");

  if (with_adapters) {
    c.adapters = parse_adapters(r.raw("adapters"), base_dir);
    if (r.has("model"))
      throw ConfigError("model", "leave it out with adapters: the architecture is the base model's (" +
                                     c.adapters->base_model + "/model.json)");
  } else {
    c.model = r.raw("model");
    if (!c.model.is_object()) throw ConfigError("model", "expected a Keras model object, got " + describe(c.model));
    // Ensemble members given as saved folders resolve against the config file's folder, as data paths do.
    if (c.model.value("class_name", json()) == "Ensemble" && c.model.contains("config") &&
        c.model["config"].is_object() && c.model["config"].contains("members") &&
        c.model["config"]["members"].is_array())
      for (auto& member : c.model["config"]["members"])
        if (member.is_object() && member.contains("path") && member["path"].is_string())
          member["path"] = resolve(base_dir, member["path"].get<std::string>());
  }

  const bool prompts = c.train.format == "prompts" || (c.validation && c.validation->format == "prompts") ||
                       (c.test && c.test->format == "prompts");
  if (r.has("reinforce")) {
    c.reinforce = parse_reinforce(r.raw("reinforce"), base_dir, c.seed);
    if (!with_adapters)
      throw ConfigError("reinforce", "needs an \"adapters\" section: the adapter is what trains, on the model of "
                                     "adapters.base_model (with adapters disabled, the KL reference)");
    if (c.train.format != "prompts")
      throw ConfigError("data.train.format", "a reinforce run samples from prompts: expected \"prompts\", got \"" +
                                                 c.train.format + "\"");
    if (c.validation && c.validation->format != "prompts")
      throw ConfigError("data.validation.format", "expected \"prompts\" in a reinforce run, got \"" +
                                                      c.validation->format + "\"");
    if (c.test) throw ConfigError("data.test", "a reinforce run scores held-out prompts: give data.validation or "
                                               "data.validation_split");
    if (r.has("fit"))
      throw ConfigError("fit", "leave it out in a reinforce run: reinforce.steps and reinforce.batch_size say how long "
                               "it trains");
  } else if (prompts) {
    throw ConfigError("data.train.format", "\"prompts\" sources belong to reward-based runs (a \"reinforce\" section)");
  }

  ConfigReader k = r.child("compile");
  c.optimizer = k.get<json>("optimizer", "adam");
  if (c.reinforce) {
    if (k.has("loss") || k.has("metrics"))
      throw ConfigError(k.path_of(k.has("loss") ? "loss" : "metrics"),
                        "leave it out in a reinforce run: the reward (reinforce.reward) is what it optimises");
  } else {
    c.loss = k.raw("loss");
  }
  const json& metrics = k.raw_or_null("metrics");
  if (!metrics.is_null()) {
    if (!metrics.is_array()) throw ConfigError(k.path_of("metrics"), "expected a list, got " + describe(metrics));
    for (const auto& m : metrics) c.metrics.push_back(m);
  }
  k.finish();

  if (r.has("fit")) {
    ConfigReader f = r.child("fit");
    c.epochs = f.positive_int("epochs", 1);
    c.batch_size = f.positive_int("batch_size", 32);
    c.shuffle = f.get<bool>("shuffle", true);
    c.verbose = f.get<int64_t>("verbose", 1);
    if (c.verbose < 0 || c.verbose > 2) throw ConfigError(f.path_of("verbose"), "expected 0, 1 or 2");
    c.steps_per_epoch = f.has("steps_per_epoch") ? f.positive_int("steps_per_epoch") : 0;
    f.raw_or_null("steps_per_epoch");
    c.validation_steps = f.has("validation_steps") ? f.positive_int("validation_steps") : 0;
    f.raw_or_null("validation_steps");
    c.validation_freq = f.positive_int("validation_freq", 1);
    c.checkpoint = f.get<bool>("checkpoint", true);
    if (f.has("validation_split")) {
      if (c.validation_split > 0) throw ConfigError(f.path_of("validation_split"), "already given in data.validation_split");
      c.validation_split = f.fraction("validation_split", 0.0);
    }
    if (f.has("class_weight")) {
      ConfigReader cw(f.raw("class_weight"), f.path_of("class_weight"));
      for (auto it = cw.object().begin(); it != cw.object().end(); ++it) {
        int64_t id;
        try {
          size_t used = 0;
          id = std::stoll(it.key(), &used);
          if (used != it.key().size() || id < 0) throw std::invalid_argument("id");
        } catch (const std::exception&) {
          throw ConfigError(cw.path_of(it.key()), "class ids must be non-negative integers");
        }
        c.class_weight[id] = cw.non_negative(it.key(), 1.0);
      }
    }
    const json& callbacks = f.raw_or_null("callbacks");
    if (!callbacks.is_null()) {
      if (!callbacks.is_array()) throw ConfigError(f.path_of("callbacks"), "expected a list, got " + describe(callbacks));
      for (size_t i = 0; i < callbacks.size(); ++i) {
        // Built once here so that every mistake is reported before training; train builds them again with their
        // file paths resolved against the run's output folder.
        lighter::callbacks::from_json(callbacks[i], join_path(f.path_of("callbacks"), i), "");
        c.callbacks.push_back(callbacks[i]);
      }
    }
    f.finish();
  }
  if (c.validation && c.validation_split > 0)
    throw ConfigError("data.validation_split", "give either data.validation or a validation_split, not both");
  // Unlike data paths, the output folder is relative to the working directory, as for any command's output.
  c.output_dir = r.get<std::string>("output_dir", "runs/" + c.name);
  r.finish();
  return c;
}

RunConfig load_run_config(const std::string& file, const std::vector<std::string>& overrides) {
  json config = read_json_file(file);
  try {
    for (const auto& o : overrides) apply_override(config, o);
    std::string base = fs::path(file).parent_path().string();
    return parse_run_config(config, base, file);
  } catch (const ConfigError& e) {
    throw ConfigError(file + (e.path().empty() ? "" : ": " + e.path()), e.message());
  }
}

}  // namespace lighter::cli
