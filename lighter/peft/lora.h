#pragma once
/// LoRA and DoRA adapters (HF PEFT's `peft/tuners/lora`): low-rank updates of the weights of Dense, Conv1D/2D/3D
/// and Embedding layers (which includes MultiHeadAttention's query/key/value/attention_output projections and the
/// Dense layers inside transformer blocks), trained while the base weights stay frozen, saved and loaded in PEFT's
/// file layout (adapter_config.json + adapter_model.safetensors; adapter_file.cpp).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/arg.h>

#include "lighter/layers/convolution.h"
#include "lighter/layers/layer.h"
#include "lighter/models/model.h"

namespace lighter::peft {

/// Options of a LoRA adapter, with PEFT's LoraConfig names and defaults.
struct LoraConfig {
  /// Rank of the update B·A.
  TORCH_ARG(int64_t, r) = 8;
  /// The update is scaled by lora_alpha / r (lora_alpha / sqrt(r) with use_rslora).
  TORCH_ARG(double, lora_alpha) = 8.0;
  /// Dropout on the input of the adapter branch, in training (PEFT applies none on embeddings).
  TORCH_ARG(double, lora_dropout) = 0.0;
  /// PEFT's target_modules given as a list: an entry matches a layer whose module path (`encoder.query`) equals it
  /// or ends with "." + it; Lighter also matches an entry against the layer's class name (`Dense`, `Conv2D`).
  TORCH_ARG(std::vector<std::string>, target_modules) = {};
  /// PEFT's target_modules given as one string: an ECMAScript regex the whole module path must match (PEFT's
  /// re.fullmatch). Used when not empty, instead of target_modules.
  TORCH_ARG(std::string, target_regex) = "";
  /// Which biases train (and are saved with the adapter): "none", "all" (every bias of the model) or "lora_only"
  /// (those of the adapted layers). Biases are shared by all adapters, as in PEFT.
  TORCH_ARG(std::string, bias) = "none";
  /// Rank-stabilized LoRA: scale lora_alpha / sqrt(r).
  TORCH_ARG(bool, use_rslora) = false;
  /// DoRA: a trained magnitude per output row, W' = m · (W + s·B·A) / ||W + s·B·A|| (norm detached).
  TORCH_ARG(bool, use_dora) = false;
  /// Layers trained fully and saved with the adapter (e.g. a new head): matched as target_modules' list entries.
  TORCH_ARG(std::vector<std::string>, modules_to_save) = {};
  /// PEFT's init_lora_weights: true (A Kaiming-uniform, B zero; for Embedding A zero, B normal), "gaussian" (A
  /// normal with std 1/r) or false (A and B random, so the adapter changes the output at once; for tests).
  TORCH_ARG(nlohmann::json, init_lora_weights) = true;
  /// Written to adapter_config.json as PEFT does (null when empty).
  TORCH_ARG(std::string, task_type) = "";
  TORCH_ARG(std::string, base_model_name_or_path) = "";

 public:
  /// The factor of the update: lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora.
  double scaling() const;
  /// Checks the values; ConfigError naming the field.
  void validate() const;
};

/// One LoRA/DoRA adapter of one layer: PEFT's tensors in PEFT's shapes. Dense: lora_A [r, in], lora_B [out, r],
/// magnitude [out]. ConvND: lora_A [r, in, k...] (a convolution with the layer's kernel, strides, padding and
/// dilation), lora_B [out, r, 1...] (a 1×1 convolution), magnitude [1, out, 1...]. Embedding: lora_A
/// [r, input_dim] (lora_embedding_A), lora_B [output_dim, r] (lora_embedding_B), magnitude [output_dim].
struct LoraWeightsImpl : torch::nn::Module {
  torch::Tensor lora_A, lora_B, magnitude;
};
TORCH_MODULE(LoraWeights);

/// The adapter hook a targeted layer calls (registered as its `adapter_hook` submodule): holds every adapter of the
/// layer by name (submodule `<adapter>` with `lora_A`, `lora_B`, `lora_magnitude_vector`), adds the active one's
/// update to the layer's output, and merges it into the layer's weight.
class LoraLayerImpl : public layers::AdapterHookImpl {
 public:
  enum class Kind { Dense, Conv, Embedding };
  /// ShapeError for a layer LoRA cannot adapt (a grouped convolution, an unbuilt layer).
  explicit LoraLayerImpl(layers::LayerImpl& layer);

  torch::Tensor apply(const torch::Tensor& x, const torch::Tensor& output) override;

  /// Creates adapter `name` (replacing none: ConfigError when it exists) and initialises it as `config` says.
  void add(const std::string& name, const LoraConfig& config);
  void remove(const std::string& name);
  bool has(const std::string& name) const { return adapters_.count(name) != 0; }
  std::vector<std::string> names() const;
  const LoraWeights& weights(const std::string& name) const;
  /// The factor s of adapter `name`.
  double scaling(const std::string& name) const;
  bool use_dora(const std::string& name) const;

  /// The adapter whose update apply() adds ("" or an adapter this layer lacks: none).
  void set_active(const std::string& name) { active_ = name; }
  const std::string& active() const { return active_; }
  void set_enabled(bool enabled) { enabled_ = enabled; }
  bool enabled() const { return enabled_; }

  /// s·ΔW of adapter `name` in the layer's weight layout ([out, in], [out, in, k...], [input_dim, output_dim]).
  torch::Tensor delta_weight(const std::string& name) const;
  /// Folds adapter `name` into the layer's weight (DoRA: W = m / ||W + ΔW|| · (W + ΔW), the norm kept for unmerge).
  void merge(const std::string& name);
  /// Undoes the merges, last first.
  void unmerge();
  const std::vector<std::string>& merged_adapters() const { return merged_; }

  Kind kind() const { return kind_; }
  layers::LayerImpl& layer() const { return *layer_; }
  /// The layer's weight and bias (bias undefined when it has none).
  torch::Tensor& base_weight() const { return *weight_; }
  torch::Tensor base_bias() const { return bias_ ? *bias_ : torch::Tensor(); }

 private:
  struct Entry {
    LoraWeights weights{nullptr};
    double scaling = 1.0;
    double dropout = 0.0;
    bool use_dora = false;
    torch::Tensor merged_norm;  // DoRA's ||W + ΔW|| at merge time
  };
  const Entry& entry(const std::string& name) const;
  /// B·A without the scale, in the layer's weight layout.
  torch::Tensor unscaled_delta(const Entry& e) const;
  /// s·B(A(x)), shaped as the layer's output.
  torch::Tensor lora_branch(const Entry& e, const torch::Tensor& x) const;
  /// ||W + s·ΔW|| per output row, shaped as the magnitude vector.
  torch::Tensor weight_norm(const torch::Tensor& weight, const torch::Tensor& scaled_delta) const;
  /// DoRA's ||W + s·ΔW|| for the forward pass, without gradient.
  torch::Tensor detached_norm(const Entry& e) const;
  /// The magnitude (or norm) shaped to scale the layer's weight.
  torch::Tensor as_weight_factor(const torch::Tensor& v) const;
  /// The magnitude (or norm) shaped to scale an output of `dims` dimensions.
  torch::Tensor as_output_factor(const torch::Tensor& v, int64_t dims) const;

  layers::LayerImpl* layer_;  // owns this hook
  layers::BaseConvImpl* conv_ = nullptr;
  torch::Tensor* weight_ = nullptr;  // the layer's own members
  torch::Tensor* bias_ = nullptr;
  Kind kind_;
  int64_t in_features_ = 0, out_features_ = 0;
  std::map<std::string, Entry> adapters_;
  std::string active_;
  bool enabled_ = true;
  std::vector<std::string> merged_;
};
TORCH_MODULE(LoraLayer);

/// A model with LoRA/DoRA adapters (PEFT's PeftModel): adds adapters to the targeted layers of `model`, freezes
/// every base weight (requires_grad off, so the Trainer's optimizer and summary()'s Trainable line see only the
/// adapters, the modules to save and the biases the config trains), and switches, merges and saves them. compile,
/// fit, evaluate and predict run on model() as before; its get_config and save_model stay the base model's (adapter
/// tensors are not in model_tensors). Compile again after set_adapter, so the optimizer takes the new adapter.
///
/// modules_to_save trains the listed layers themselves: their original tensors are kept aside, each adapter has its
/// own copy, and the layer holds the active adapter's (the original while adapters are disabled). So save_model
/// writes the active adapter's modules_to_save, as PEFT's merge_and_unload keeps them.
class PeftModel {
 public:
  /// Adds adapter `adapter_name` to `model` (built). ConfigError when nothing is targeted.
  PeftModel(models::ModelPtr model, const LoraConfig& config, const std::string& adapter_name = "default");
  /// A model with no adapter yet (load_adapter adds them).
  explicit PeftModel(models::ModelPtr model);
  // One PeftModel per model: the adapter state (modules_to_save copies, base trainability) lives here.
  PeftModel(const PeftModel&) = delete;
  PeftModel& operator=(const PeftModel&) = delete;
  PeftModel(PeftModel&&) = default;
  PeftModel& operator=(PeftModel&&) = default;

  const models::ModelPtr& model() const { return model_; }
  models::ModelImpl* operator->() const { return model_.get(); }

  /// Adds another adapter (not made active). ConfigError for a taken name or when nothing is targeted.
  void add_adapter(const std::string& name, const LoraConfig& config);
  /// Makes `name` the active adapter: its weights train and apply; the others stay but do nothing.
  void set_adapter(const std::string& name);
  void delete_adapter(const std::string& name);
  const std::string& active_adapter() const { return active_; }
  std::vector<std::string> adapters() const;
  const LoraConfig& config(const std::string& name) const;
  /// Module paths of the layers adapter `name` adapts, in model order.
  std::vector<std::string> adapted_modules(const std::string& name) const;
  /// Module paths of adapter `name`'s modules_to_save.
  std::vector<std::string> saved_modules(const std::string& name) const;

  /// Turns every adapter off (the base model computes, modules_to_save hold their originals) or on again. Turning
  /// them off unmerges merged adapters first (as PEFT).
  void enable_adapters(bool enabled);
  bool adapters_enabled() const { return enabled_; }

  /// Folds the active adapter into the base weights (outputs unchanged up to rounding; the adapter branch is skipped
  /// while merged). unmerge subtracts it again.
  void merge();
  void unmerge();
  bool merged() const;
  /// Merges the active adapter, removes every adapter hook and returns the plain model (its weights now include
  /// the adapter). The PeftModel is empty afterwards.
  models::ModelPtr merge_and_unload();
  /// Removes every adapter hook without merging; returns the base model.
  models::ModelPtr unload();

  /// PEFT's adapter state dict of adapter `name`: `base_model.model.<path>.lora_A.weight`, ... (the adapter name
  /// left out, as PEFT saves), shared with the model.
  std::vector<std::pair<std::string, torch::Tensor>> adapter_tensors(const std::string& name) const;

  /// Writes adapter `name` (default: the active one) into folder `dir` as PEFT does: adapter_config.json and
  /// adapter_model.safetensors, atomically.
  void save_adapter(const std::string& dir, const std::string& name = "") const;
  /// Reads an adapter saved by save_adapter (or by PEFT for a model with the same module paths) as adapter `name`;
  /// made active when it is the only one. Every tensor must be present with its shape and the file must hold no
  /// other; otherwise a DataError names the file and the tensor, and the model is left as it was. The loaded
  /// adapter stays trainable (PEFT's from_pretrained with is_trainable=True).
  void load_adapter(const std::string& dir, const std::string& name = "default");

 private:
  struct Saved {
    std::vector<std::string> paths;
    // per module path: tensor name in the layer -> tensor (the original, or this adapter's copy)
    std::map<std::string, std::map<std::string, torch::Tensor>> tensors;
  };
  std::vector<std::pair<std::string, std::shared_ptr<LoraLayerImpl>>> hooks() const;
  std::map<std::string, torch::Tensor> live_tensors(const std::string& path) const;
  void stash_modules_to_save(const std::string& name);
  void restore_modules_to_save(const std::string& name);
  void update_trainable();
  layers::LayerImpl& layer_at(const std::string& path) const;

  models::ModelPtr model_;
  std::map<std::string, LoraConfig> configs_;
  std::map<std::string, Saved> saved_;             // per adapter: its modules_to_save copies
  std::map<std::string, std::map<std::string, torch::Tensor>> originals_;  // per module path
  std::map<std::string, bool> base_requires_grad_;  // per model tensor name, before any adapter
  std::string active_;
  bool enabled_ = true;
};

/// Disables the adapters of a PeftModel for its lifetime (PEFT's `with model.disable_adapter():`).
class DisableAdapters {
 public:
  explicit DisableAdapters(PeftModel& model) : model_(model), was_(model.adapters_enabled()) {
    model_.enable_adapters(false);
  }
  ~DisableAdapters() { model_.enable_adapters(was_); }
  DisableAdapters(const DisableAdapters&) = delete;
  DisableAdapters& operator=(const DisableAdapters&) = delete;

 private:
  PeftModel& model_;
  bool was_;
};

/// PEFT's adapter_config.json for `config` (peft_type "LORA" and PEFT's other LoraConfig fields at their defaults).
nlohmann::json to_peft_json(const LoraConfig& config);
/// Reads an adapter_config.json object. ConfigError (path `file`.field) for another peft_type or a PEFT option
/// Lighter does not implement set to a non-default value.
LoraConfig lora_config_from_json(const nlohmann::json& j, const std::string& file);

}  // namespace lighter::peft
