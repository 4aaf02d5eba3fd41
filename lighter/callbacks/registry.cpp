#include "lighter/callbacks/registry.h"

#include <filesystem>
#include <typeinfo>

#include "lighter/callbacks/backup_and_restore.h"
#include "lighter/callbacks/csv_logger.h"
#include "lighter/callbacks/early_stopping.h"
#include "lighter/callbacks/lambda_callback.h"
#include "lighter/callbacks/learning_rate_scheduler.h"
#include "lighter/callbacks/model_checkpoint.h"
#include "lighter/callbacks/reduce_lr_on_plateau.h"
#include "lighter/callbacks/tensorboard.h"
#include "lighter/callbacks/terminate_on_nan.h"
#include "lighter/core/error.h"

namespace lighter::callbacks {

namespace {

std::string resolve_path(const std::string& file, const std::string& base_dir) {
  if (base_dir.empty() || file.empty() || std::filesystem::path(file).is_absolute()) return file;
  return (std::filesystem::path(base_dir) / file).lexically_normal().string();
}

int read_verbose(ConfigReader& r) {
  int64_t v = r.get<int64_t>("verbose", 0);
  if (v < 0 || v > 2) throw ConfigError(r.path_of("verbose"), "expected 0, 1 or 2");
  return static_cast<int>(v);
}

int64_t non_negative_int(ConfigReader& r, const std::string& key, int64_t fallback) {
  int64_t v = r.get<int64_t>(key, fallback);
  if (v < 0) throw ConfigError(r.path_of(key), "must be >= 0, got " + std::to_string(v));
  return v;
}

std::optional<double> optional_number(ConfigReader& r, const std::string& key) {
  if (!r.has(key)) return std::nullopt;
  return r.get<double>(key);
}

training::CallbackPtr early_stopping(ConfigReader& r, const std::string&) {
  EarlyStoppingOptions o;
  o.monitor(r.get<std::string>("monitor", "val_loss"));
  o.min_delta(r.get<double>("min_delta", 0.0));
  o.patience(non_negative_int(r, "patience", 0));
  o.verbose(read_verbose(r));
  o.mode(r.choice("mode", "auto", {"auto", "min", "max"}));
  o.baseline(optional_number(r, "baseline"));
  o.restore_best_weights(r.get<bool>("restore_best_weights", false));
  o.start_from_epoch(non_negative_int(r, "start_from_epoch", 0));
  return std::make_shared<EarlyStopping>(o);
}

training::CallbackPtr reduce_lr_on_plateau(ConfigReader& r, const std::string&) {
  ReduceLROnPlateauOptions o;
  o.monitor(r.get<std::string>("monitor", "val_loss"));
  o.factor(r.get<double>("factor", 0.1));
  if (o.factor() >= 1.0 || o.factor() < 0)
    throw ConfigError(r.path_of("factor"), "ReduceLROnPlateau does not support a factor >= 1.0 (or < 0)");
  o.patience(non_negative_int(r, "patience", 10));
  o.verbose(read_verbose(r));
  o.mode(r.choice("mode", "auto", {"auto", "min", "max"}));
  o.min_delta(r.get<double>("min_delta", 1e-4));
  o.cooldown(non_negative_int(r, "cooldown", 0));
  o.min_lr(r.non_negative("min_lr", 0.0));
  return std::make_shared<ReduceLROnPlateau>(o);
}

training::CallbackPtr csv_logger(ConfigReader& r, const std::string& base_dir) {
  std::string filename = resolve_path(r.get<std::string>("filename"), base_dir);
  std::string separator = r.get<std::string>("separator", ",");
  bool append = r.get<bool>("append", false);
  return std::make_shared<CSVLogger>(filename, separator, append);
}

training::CallbackPtr terminate_on_nan(ConfigReader&, const std::string&) { return std::make_shared<TerminateOnNaN>(); }

training::CallbackPtr model_checkpoint(ConfigReader& r, const std::string& base_dir) {
  ModelCheckpointOptions o(resolve_path(r.get<std::string>("filepath"), base_dir));
  o.monitor(r.get<std::string>("monitor", "val_loss"));
  o.verbose(read_verbose(r));
  o.save_best_only(r.get<bool>("save_best_only", false));
  o.save_weights_only(r.get<bool>("save_weights_only", false));
  o.mode(r.choice("mode", "auto", {"auto", "min", "max"}));
  const json& freq = r.raw_or_null("save_freq");
  if (freq.is_string() && freq.get<std::string>() == "epoch") {
    o.save_freq(0);
  } else if (!freq.is_null()) {
    if (!freq.is_number_integer() || freq.get<int64_t>() <= 0)
      throw ConfigError(r.path_of("save_freq"), "expected \"epoch\" or a positive number of batches, got " +
                                                    describe(freq));
    o.save_freq(freq.get<int64_t>());
  }
  o.initial_value_threshold(optional_number(r, "initial_value_threshold"));
  return std::make_shared<ModelCheckpoint>(o);
}

training::CallbackPtr backup_and_restore(ConfigReader& r, const std::string& base_dir) {
  BackupAndRestoreOptions o(resolve_path(r.get<std::string>("backup_dir"), base_dir));
  const json& freq = r.raw_or_null("save_freq");
  if (!freq.is_null() && !(freq.is_string() && freq.get<std::string>() == "epoch"))
    throw ConfigError(r.path_of("save_freq"), "only \"epoch\" is supported (a checkpoint at the end of every epoch), got " +
                                                  describe(freq));
  o.delete_checkpoint(r.get<bool>("delete_checkpoint", true));
  o.double_checkpoint(r.get<bool>("double_checkpoint", false));
  return std::make_shared<BackupAndRestore>(o);
}

training::CallbackPtr tensorboard(ConfigReader& r, const std::string& base_dir) {
  TensorBoardOptions o(resolve_path(r.get<std::string>("log_dir", "logs"), base_dir));
  o.histogram_freq(non_negative_int(r, "histogram_freq", 0));
  o.write_graph(r.get<bool>("write_graph", true));
  o.write_images(r.get<bool>("write_images", false));
  o.write_steps_per_second(r.get<bool>("write_steps_per_second", false));
  const json& freq = r.raw_or_null("update_freq");
  if (freq.is_string() && freq.get<std::string>() == "epoch") {
    o.update_freq(0);
  } else if (freq.is_string() && freq.get<std::string>() == "batch") {
    o.update_freq(1);  // Keras reads "batch" as 1
  } else if (!freq.is_null()) {
    if (!freq.is_number_integer() || freq.get<int64_t>() <= 0)
      throw ConfigError(r.path_of("update_freq"),
                        "expected \"epoch\", \"batch\" or a positive number of batches, got " + describe(freq));
    o.update_freq(freq.get<int64_t>());
  }
  // Keras also accepts a pair [start, stop] of batches to profile; any profiling is unsupported here.
  const json& profile = r.raw_or_null("profile_batch");
  if (!profile.is_null() && !(profile.is_number_integer() && profile.get<int64_t>() == 0))
    throw ConfigError(r.path_of("profile_batch"),
                      "profiling is not supported; only 0 is accepted, got " + describe(profile));
  o.embeddings_freq(non_negative_int(r, "embeddings_freq", 0));
  r.require_null("embeddings_metadata");
  return std::make_shared<TensorBoard>(o);
}

CallbackRegistry make_registry() {
  CallbackRegistry reg("callback");
  reg.add("EarlyStopping", early_stopping);
  reg.add("ReduceLROnPlateau", reduce_lr_on_plateau);
  reg.add("CSVLogger", csv_logger);
  reg.add("TerminateOnNaN", terminate_on_nan);
  reg.add("ModelCheckpoint", model_checkpoint);
  reg.add("BackupAndRestore", backup_and_restore);
  reg.add("TensorBoard", tensorboard);
  reg.add("LearningRateScheduler", [](ConfigReader& r, const std::string&) -> training::CallbackPtr {
    throw ConfigError(r.path(), "LearningRateScheduler takes a C++ function (schedule) and cannot be built from "
                                "JSON; use a learning-rate schedule in the optimizer, or ReduceLROnPlateau");
  });
  reg.add("LambdaCallback", [](ConfigReader& r, const std::string&) -> training::CallbackPtr {
    throw ConfigError(r.path(), "LambdaCallback takes C++ functions and cannot be built from JSON");
  });
  return reg;
}

}  // namespace

const CallbackRegistry& registry() {
  static const CallbackRegistry reg = make_registry();
  return reg;
}

training::CallbackPtr from_json(const nlohmann::json& spec, const std::string& path, const std::string& base_dir) {
  ClassSpec cs = read_class_spec(spec, path, "callback");
  ConfigReader r(cs.config, cs.config_path);
  // An unknown class: the registry's error, at class_name, listing the known ones.
  if (!registry().contains(cs.class_name)) registry().create(cs.class_name, cs.name_path, r, base_dir);
  training::CallbackPtr out;
  try {
    out = registry().create(cs.class_name, cs.name_path, r, base_dir);
  } catch (const ConfigError& e) {
    // Argument checks inside the constructors name the argument only; put it under the config's path.
    if (e.path().rfind(cs.config_path, 0) == 0) throw;
    throw ConfigError(join_path(cs.config_path, e.path()), e.message());
  }
  r.finish();
  return out;
}

nlohmann::json to_json(const training::Callback& callback) {
  auto opt = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  if (auto* c = dynamic_cast<const EarlyStopping*>(&callback)) {
    const auto& o = c->options();
    return {{"class_name", "EarlyStopping"},
            {"config",
             {{"monitor", o.monitor()},
              {"min_delta", o.min_delta()},
              {"patience", o.patience()},
              {"verbose", o.verbose()},
              {"mode", o.mode()},
              {"baseline", opt(o.baseline())},
              {"restore_best_weights", o.restore_best_weights()},
              {"start_from_epoch", o.start_from_epoch()}}}};
  }
  if (auto* c = dynamic_cast<const ReduceLROnPlateau*>(&callback)) {
    const auto& o = c->options();
    return {{"class_name", "ReduceLROnPlateau"},
            {"config",
             {{"monitor", o.monitor()},
              {"factor", o.factor()},
              {"patience", o.patience()},
              {"verbose", o.verbose()},
              {"mode", o.mode()},
              {"min_delta", o.min_delta()},
              {"cooldown", o.cooldown()},
              {"min_lr", o.min_lr()}}}};
  }
  if (auto* c = dynamic_cast<const CSVLogger*>(&callback)) {
    return {{"class_name", "CSVLogger"},
            {"config", {{"filename", c->filename()}, {"separator", c->separator()}, {"append", c->append()}}}};
  }
  if (dynamic_cast<const TerminateOnNaN*>(&callback)) return {{"class_name", "TerminateOnNaN"}, {"config", json::object()}};
  if (auto* c = dynamic_cast<const ModelCheckpoint*>(&callback)) {
    const auto& o = c->options();
    return {{"class_name", "ModelCheckpoint"},
            {"config",
             {{"filepath", o.filepath()},
              {"monitor", o.monitor()},
              {"verbose", o.verbose()},
              {"save_best_only", o.save_best_only()},
              {"save_weights_only", o.save_weights_only()},
              {"mode", o.mode()},
              {"save_freq", o.save_freq() == 0 ? json("epoch") : json(o.save_freq())},
              {"initial_value_threshold", opt(o.initial_value_threshold())}}}};
  }
  if (auto* c = dynamic_cast<const BackupAndRestore*>(&callback)) {
    const auto& o = c->options();
    return {{"class_name", "BackupAndRestore"},
            {"config",
             {{"backup_dir", o.backup_dir()},
              {"save_freq", "epoch"},
              {"delete_checkpoint", o.delete_checkpoint()},
              {"double_checkpoint", o.double_checkpoint()}}}};
  }
  if (auto* c = dynamic_cast<const TensorBoard*>(&callback)) {
    const auto& o = c->options();
    return {{"class_name", "TensorBoard"},
            {"config",
             {{"log_dir", o.log_dir()},
              {"histogram_freq", o.histogram_freq()},
              {"write_graph", o.write_graph()},
              {"write_images", o.write_images()},
              {"write_steps_per_second", o.write_steps_per_second()},
              {"update_freq", o.update_freq() == 0 ? json("epoch") : json(o.update_freq())},
              {"profile_batch", o.profile_batch()},
              {"embeddings_freq", o.embeddings_freq()}}}};
  }
  throw ConfigError("", std::string("callback ") + typeid(callback).name() +
                            " has no JSON form (only the built-in callbacks built from arguments have one)");
}

}  // namespace lighter::callbacks
