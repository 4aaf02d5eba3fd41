// PEFT's adapter files: adapter_config.json (LoraConfig's fields) and adapter_model.safetensors (the adapter's
// tensors under `base_model.model.<module path>.`, without the adapter name, as PEFT's get_peft_model_state_dict
// writes them).
#include <cmath>
#include <filesystem>
#include <set>

#include <torch/torch.h>

#include "lighter/core/error.h"
#include "lighter/core/json.h"
#include "lighter/core/safetensors.h"
#include "lighter/peft/lora.h"

namespace lighter::peft {

namespace {

const std::string kPrefix = "base_model.model.";
const char* kConfigFile = "adapter_config.json";
const char* kWeightsFile = "adapter_model.safetensors";

std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

bool neutral(const nlohmann::json& v) {
  return v.is_null() || (v.is_boolean() && !v.get<bool>()) || ((v.is_object() || v.is_array()) && v.empty());
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

nlohmann::json to_peft_json(const LoraConfig& c) {
  nlohmann::json j = nlohmann::json::object();
  auto str_or_null = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
  j["alpha_pattern"] = nlohmann::json::object();
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] = str_or_null(c.base_model_name_or_path());
  j["bias"] = c.bias();
  j["exclude_modules"] = nullptr;
  j["fan_in_fan_out"] = false;  // Lighter's weights are [out, in], as torch's Linear
  j["inference_mode"] = true;   // what PEFT's save_pretrained writes
  j["init_lora_weights"] = c.init_lora_weights();
  j["layer_replication"] = nullptr;
  j["layers_pattern"] = nullptr;
  j["layers_to_transform"] = nullptr;
  j["loftq_config"] = nlohmann::json::object();
  const double alpha = c.lora_alpha();
  if (std::floor(alpha) == alpha && std::abs(alpha) < 1e15) {
    j["lora_alpha"] = static_cast<int64_t>(alpha);
  } else {
    j["lora_alpha"] = alpha;
  }
  j["lora_bias"] = false;
  j["lora_dropout"] = c.lora_dropout();
  j["megatron_config"] = nullptr;
  j["megatron_core"] = "megatron.core";
  j["modules_to_save"] = c.modules_to_save().empty() ? nlohmann::json(nullptr) : nlohmann::json(c.modules_to_save());
  j["peft_type"] = "LORA";
  j["r"] = c.r();
  j["rank_pattern"] = nlohmann::json::object();
  j["revision"] = nullptr;
  j["target_modules"] = c.target_regex().empty() ? nlohmann::json(c.target_modules()) : nlohmann::json(c.target_regex());
  j["task_type"] = str_or_null(c.task_type());
  j["use_dora"] = c.use_dora();
  j["use_rslora"] = c.use_rslora();
  return j;
}

LoraConfig lora_config_from_json(const nlohmann::json& j, const std::string& file) {
  if (!j.is_object()) throw DataError(file, "expected a JSON object (PEFT's adapter_config.json)");
  auto fail = [&](const std::string& key, const std::string& message) -> DataError {
    return DataError(file, "\"" + key + "\": " + message);
  };
  auto get = [&](const std::string& key) -> const nlohmann::json& {
    static const nlohmann::json null_value;
    auto it = j.find(key);
    return it == j.end() ? null_value : *it;
  };
  const auto& type = get("peft_type");
  if (!type.is_string() || type.get<std::string>() != "LORA")
    throw fail("peft_type", "expected \"LORA\" (Lighter reads LoRA and DoRA adapters), got " + type.dump());

  LoraConfig c;
  const auto& r = get("r");
  if (!r.is_number_integer() || r.get<int64_t>() <= 0) throw fail("r", "expected a positive integer, got " + r.dump());
  c.r(r.get<int64_t>());
  const auto& alpha = get("lora_alpha");
  if (!alpha.is_number()) throw fail("lora_alpha", "expected a number, got " + alpha.dump());
  c.lora_alpha(alpha.get<double>());
  const auto& dropout = get("lora_dropout");
  if (!dropout.is_null()) {
    if (!dropout.is_number()) throw fail("lora_dropout", "expected a number, got " + dropout.dump());
    c.lora_dropout(dropout.get<double>());
  }
  const auto& targets = get("target_modules");
  if (targets.is_string()) {
    c.target_regex(targets.get<std::string>());
  } else if (targets.is_array()) {
    std::vector<std::string> names;
    for (const auto& t : targets) {
      if (!t.is_string()) throw fail("target_modules", "expected strings, got " + t.dump());
      names.push_back(t.get<std::string>());
    }
    c.target_modules(names);
  } else {
    throw fail("target_modules", "expected a list of module names or a regex string, got " + targets.dump());
  }
  const auto& bias = get("bias");
  if (!bias.is_null()) {
    if (!bias.is_string()) throw fail("bias", "expected \"none\", \"all\" or \"lora_only\", got " + bias.dump());
    c.bias(bias.get<std::string>());
  }
  for (const char* key : {"use_rslora", "use_dora"}) {
    const auto& v = get(key);
    if (v.is_null()) continue;
    if (!v.is_boolean()) throw fail(key, "expected true or false, got " + v.dump());
    if (std::string(key) == "use_rslora") c.use_rslora(v.get<bool>()); else c.use_dora(v.get<bool>());
  }
  const auto& save = get("modules_to_save");
  if (!save.is_null()) {
    if (!save.is_array()) throw fail("modules_to_save", "expected a list of module names or null, got " + save.dump());
    std::vector<std::string> names;
    for (const auto& t : save) {
      if (!t.is_string()) throw fail("modules_to_save", "expected strings, got " + t.dump());
      names.push_back(t.get<std::string>());
    }
    c.modules_to_save(names);
  }
  const auto& init = get("init_lora_weights");
  if (!init.is_null()) {
    if (!(init.is_boolean() || (init.is_string() && init.get<std::string>() == "gaussian")))
      throw fail("init_lora_weights", "Lighter implements true, false and \"gaussian\", got " + init.dump() +
                                          " (initialisations that change the base weights need that changed base)");
    c.init_lora_weights(init);
  }
  for (const char* key : {"task_type", "base_model_name_or_path"}) {
    const auto& v = get(key);
    if (v.is_null()) continue;
    if (!v.is_string()) throw fail(key, "expected a string or null, got " + v.dump());
    if (std::string(key) == "task_type") c.task_type(v.get<std::string>()); else c.base_model_name_or_path(v.get<std::string>());
  }
  // PEFT options that change which weights exist or how they apply: only their defaults are understood. Other
  // fields (revision, inference_mode, megatron_core, fields of newer PEFT versions) do not matter here.
  for (const char* key : {"fan_in_fan_out", "rank_pattern", "alpha_pattern", "layers_to_transform", "layers_pattern",
                          "layer_replication", "lora_bias", "exclude_modules", "trainable_token_indices",
                          "target_parameters", "use_qalora", "megatron_config"}) {
    const auto& v = get(key);
    if (!neutral(v)) throw fail(key, "set to " + v.dump() + ", which Lighter does not implement");
  }
  try {
    c.validate();
  } catch (const ConfigError& e) {
    throw fail(e.path(), e.message());
  }
  return c;
}

std::vector<std::pair<std::string, torch::Tensor>> PeftModel::adapter_tensors(const std::string& name) const {
  const LoraConfig& cfg = config(name);
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::set<std::string> adapted;
  for (const auto& [path, hook] : hooks()) {
    if (!hook->has(name)) continue;
    adapted.insert(path);
    const auto& w = hook->weights(name);
    const std::string base = kPrefix + path;
    if (hook->kind() == LoraLayerImpl::Kind::Embedding) {
      // PEFT keeps an embedding's factors as ParameterDict entries: no `.weight`.
      out.emplace_back(base + ".lora_embedding_A", w->lora_A);
      out.emplace_back(base + ".lora_embedding_B", w->lora_B);
    } else {
      out.emplace_back(base + ".lora_A.weight", w->lora_A);
      out.emplace_back(base + ".lora_B.weight", w->lora_B);
    }
    if (hook->use_dora(name)) out.emplace_back(base + ".lora_magnitude_vector", w->magnitude);
  }
  const auto& saved = saved_.at(name);
  for (const auto& path : saved.paths) {
    // The active adapter's copy is the one in the layer.
    const auto tensors = (name == active_ && enabled_) ? live_tensors(path) : saved.tensors.at(path);
    for (const auto& [k, t] : tensors) out.emplace_back(kPrefix + path + "." + k, t);
  }
  if (cfg.bias() != "none") {
    for (const auto& p : model_->named_parameters(true)) {
      const std::string& key = p.key();
      if (layers::detail::is_adapter_tensor_name(key) || key.size() < 5 || key.compare(key.size() - 5, 5, ".bias") != 0)
        continue;
      bool in_saved = false;
      for (const auto& s : saved.paths) in_saved = in_saved || starts_with(key, s + ".");
      if (in_saved) continue;
      const std::string owner = key.substr(0, key.size() - 5);
      // PEFT wraps an adapted layer, whose own weights then sit under `base_layer`.
      if (adapted.count(owner)) {
        out.emplace_back(kPrefix + owner + ".base_layer.bias", p.value());
      } else if (cfg.bias() == "all") {
        out.emplace_back(kPrefix + key, p.value());
      }
    }
  }
  return out;
}

void PeftModel::save_adapter(const std::string& dir, const std::string& name) const {
  const std::string n = name.empty() ? active_ : name;
  if (n.empty()) throw ConfigError("adapter", "model '" + model_->model_name() + "' has no adapter to save");
  const LoraConfig& cfg = config(n);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw DataError(dir, "cannot create folder: " + ec.message());
  save_safetensors(dir + "/" + kWeightsFile, adapter_tensors(n), {{"format", "pt"}});
  write_file_atomic(dir + "/" + kConfigFile, to_peft_json(cfg).dump(2) + "\n");
}

void PeftModel::load_adapter(const std::string& dir, const std::string& name) {
  const std::string config_file = dir + "/" + kConfigFile, file = dir + "/" + kWeightsFile;
  if (!std::filesystem::exists(config_file)) throw DataError(config_file, "no adapter here (expected adapter_config.json)");
  const LoraConfig cfg = lora_config_from_json(read_json_file(config_file), config_file);
  const auto stored = load_safetensors(file);
  const std::string previous = active_;
  add_adapter(name, cfg);
  try {
    auto wanted = adapter_tensors(name);
    // Validate everything before copying anything.
    std::set<std::string> known;
    for (const auto& [key, tensor] : wanted) {
      known.insert(key);
      auto it = stored.find(key);
      if (it == stored.end())
        throw DataError(file, "tensor '" + key + "' is missing (an adapter of another model, or other target_modules?)");
      if (it->second.sizes() != tensor.sizes())
        throw DataError(file, "tensor '" + key + "' has shape " + shape_str(it->second.sizes()) + ", the model expects " +
                                  shape_str(tensor.sizes()));
      if (!at::isFloatingType(it->second.scalar_type()))
        throw DataError(file, "tensor '" + key + "' has dtype " + std::string(c10::toString(it->second.scalar_type())) +
                                  ", expected a floating-point type");
    }
    for (const auto& kv : stored)
      if (!known.count(kv.first))
        throw DataError(file, "tensor '" + kv.first + "' does not belong to the adapter (model '" + model_->model_name() +
                                  "' has no such layer or adapter tensor with this adapter_config.json)");
    torch::NoGradGuard no_grad;
    for (auto& [key, tensor] : wanted) tensor.copy_(stored.at(key));
  } catch (...) {
    delete_adapter(name);
    if (!previous.empty() && active_ != previous) set_adapter(previous);
    throw;
  }
}

}  // namespace lighter::peft
