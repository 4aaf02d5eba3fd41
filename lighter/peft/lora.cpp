#include "lighter/peft/lora.h"

#include <cmath>
#include <regex>
#include <set>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lighter/core/error.h"
#include "lighter/core/logging.h"
#include "lighter/layers/convolution.h"
#include "lighter/layers/core_layers.h"
#include "lighter/layers/embedding.h"

namespace lighter::peft {

// ---- LoraConfig ----------------------------------------------------------------------------------------------------

double LoraConfig::scaling() const {
  return use_rslora_ ? lora_alpha_ / std::sqrt(static_cast<double>(r_)) : lora_alpha_ / static_cast<double>(r_);
}

void LoraConfig::validate() const {
  if (r_ <= 0) throw ConfigError("r", "expected a positive integer, got " + std::to_string(r_));
  if (!(lora_dropout_ >= 0.0 && lora_dropout_ < 1.0))
    throw ConfigError("lora_dropout", "expected a rate in [0, 1), got " + std::to_string(lora_dropout_));
  if (bias_ != "none" && bias_ != "all" && bias_ != "lora_only")
    throw ConfigError("bias", "expected \"none\", \"all\" or \"lora_only\", got \"" + bias_ + "\"");
  const auto& init = init_lora_weights_;
  if (!(init.is_boolean() || (init.is_string() && init.get<std::string>() == "gaussian")))
    throw ConfigError("init_lora_weights", "expected true, false or \"gaussian\", got " + init.dump());
  if (target_modules_.empty() && target_regex_.empty())
    throw ConfigError("target_modules", "name the layers to adapt (module paths, their last parts, class names, or a regex)");
  if (!target_regex_.empty()) {
    try {
      std::regex re(target_regex_);
    } catch (const std::regex_error& e) {
      throw ConfigError("target_modules", "invalid regex '" + target_regex_ + "': " + e.what());
    }
  }
}

// ---- LoraLayer -----------------------------------------------------------------------------------------------------

namespace {

template <size_t D>
bool bind_conv(layers::LayerImpl& layer, layers::BaseConvImpl*& conv, torch::Tensor*& weight, torch::Tensor*& bias) {
  auto* c = dynamic_cast<layers::ConvImpl<D>*>(&layer);
  if (!c) return false;
  if (c->options().groups() != 1)
    throw ShapeError("layer '" + layer.layer_name() + "' (" + layer.class_name() +
                     "): LoRA on grouped convolutions (groups = " + std::to_string(c->options().groups()) +
                     ") is not supported");
  conv = c;
  weight = &c->weight;
  bias = c->bias.defined() ? &c->bias : nullptr;
  return true;
}

std::vector<int64_t> filled(int64_t n, int64_t value) { return std::vector<int64_t>(static_cast<size_t>(n), value); }

}  // namespace

LoraLayerImpl::LoraLayerImpl(layers::LayerImpl& layer) : layers::AdapterHookImpl("LoraLayer"), layer_(&layer) {
  if (!layer.built())
    throw ShapeError("layer '" + layer.layer_name() + "' (" + layer.class_name() + ") must be built before adapters are added");
  if (auto* d = dynamic_cast<layers::DenseImpl*>(&layer)) {
    kind_ = Kind::Dense;
    weight_ = &d->weight;
    bias_ = d->bias.defined() ? &d->bias : nullptr;
  } else if (auto* e = dynamic_cast<layers::EmbeddingImpl*>(&layer)) {
    kind_ = Kind::Embedding;
    weight_ = &e->weight;
  } else if (bind_conv<1>(layer, conv_, weight_, bias_) || bind_conv<2>(layer, conv_, weight_, bias_) ||
             bind_conv<3>(layer, conv_, weight_, bias_)) {
    kind_ = Kind::Conv;
  } else {
    throw ShapeError("layer '" + layer.layer_name() + "' (" + layer.class_name() +
                     ") takes no LoRA adapter (supported: Dense, Conv1D, Conv2D, Conv3D, Embedding)");
  }
  // Embedding's table is [input_dim, output_dim]: PEFT's in_features are the ids, out_features the vector size.
  in_features_ = kind_ == Kind::Embedding ? weight_->size(0) : weight_->size(1);
  out_features_ = kind_ == Kind::Embedding ? weight_->size(1) : weight_->size(0);
}

std::vector<std::string> LoraLayerImpl::names() const {
  std::vector<std::string> out;
  for (const auto& kv : adapters_) out.push_back(kv.first);
  return out;
}

const LoraLayerImpl::Entry& LoraLayerImpl::entry(const std::string& name) const {
  auto it = adapters_.find(name);
  if (it == adapters_.end())
    throw ConfigError("adapter", "layer '" + layer_->layer_name() + "' has no adapter '" + name + "'");
  return it->second;
}

const LoraWeights& LoraLayerImpl::weights(const std::string& name) const { return entry(name).weights; }
double LoraLayerImpl::scaling(const std::string& name) const { return entry(name).scaling; }
bool LoraLayerImpl::use_dora(const std::string& name) const { return entry(name).use_dora; }

void LoraLayerImpl::add(const std::string& name, const LoraConfig& config) {
  if (adapters_.count(name))
    throw ConfigError("adapter", "layer '" + layer_->layer_name() + "' already has an adapter '" + name + "'");
  const int64_t r = config.r();
  const auto opts = weight_->options().requires_grad(false);
  torch::Tensor a, b;
  if (kind_ == Kind::Conv) {
    std::vector<int64_t> a_shape{r, in_features_}, b_shape{out_features_, r};
    for (int64_t i = 2; i < weight_->dim(); ++i) {
      a_shape.push_back(weight_->size(i));
      b_shape.push_back(1);
    }
    a = torch::empty(a_shape, opts);
    b = torch::empty(b_shape, opts);
  } else {
    a = torch::empty({r, in_features_}, opts);
    b = torch::empty({out_features_, r}, opts);
  }
  {
    torch::NoGradGuard no_grad;
    const auto& init = config.init_lora_weights();
    const bool gaussian = init.is_string();
    const bool identity = gaussian || init.get<bool>();
    if (kind_ == Kind::Embedding) {
      // PEFT: A zero and B normal (LoRA's reference code), whatever the init; false draws both at random.
      if (identity) a.zero_(); else a.normal_();
      b.normal_();
    } else {
      // PEFT: A as torch's Linear/Conv default (Kaiming-uniform, a = sqrt(5)) or normal(0, 1/r), B zero.
      if (gaussian) a.normal_(0.0, 1.0 / static_cast<double>(r));
      else torch::nn::init::kaiming_uniform_(a, std::sqrt(5.0));
      if (identity) b.zero_(); else torch::nn::init::kaiming_uniform_(b, std::sqrt(5.0));
    }
  }
  Entry e;
  e.scaling = config.scaling();
  e.dropout = config.lora_dropout();
  e.use_dora = config.use_dora();
  e.weights = LoraWeights();
  e.weights->lora_A = e.weights->register_parameter("lora_A", a);
  e.weights->lora_B = e.weights->register_parameter("lora_B", b);
  if (e.use_dora) {
    torch::NoGradGuard no_grad;
    // DoRA's magnitude starts at the norm of the adapted weight (the weight's own norm when B·A = 0).
    auto m = weight_norm(*weight_, e.scaling * unscaled_delta(e)).clone();
    e.weights->magnitude = e.weights->register_parameter("lora_magnitude_vector", m);
  }
  register_module(name, e.weights);
  adapters_.emplace(name, std::move(e));
}

void LoraLayerImpl::remove(const std::string& name) {
  entry(name);
  for (const auto& m : merged_)
    if (m == name)
      throw ConfigError("adapter", "adapter '" + name + "' of layer '" + layer_->layer_name() + "' is merged; unmerge first");
  unregister_module(name);
  adapters_.erase(name);
  if (active_ == name) active_.clear();
}

torch::Tensor LoraLayerImpl::unscaled_delta(const Entry& e) const {
  const auto& a = e.weights->lora_A;
  const auto& b = e.weights->lora_B;
  switch (kind_) {
    case Kind::Dense:
      return b.mm(a);
    case Kind::Conv: {
      const int64_t r = a.size(0);
      return b.reshape({out_features_, r}).mm(a.reshape({r, -1})).reshape(weight_->sizes());
    }
    case Kind::Embedding:
      return b.mm(a).t();  // [output_dim, input_dim] -> the table's [input_dim, output_dim]
  }
  return {};
}

torch::Tensor LoraLayerImpl::delta_weight(const std::string& name) const {
  const Entry& e = entry(name);
  return unscaled_delta(e) * e.scaling;
}

torch::Tensor LoraLayerImpl::weight_norm(const torch::Tensor& weight, const torch::Tensor& scaled_delta) const {
  const auto w = weight + scaled_delta;
  switch (kind_) {
    case Kind::Dense:
      return torch::linalg_vector_norm(w, 2, at::IntArrayRef{1}, false, c10::nullopt);
    case Kind::Conv: {
      std::vector<int64_t> dims;
      for (int64_t i = 1; i < w.dim(); ++i) dims.push_back(i);
      // PEFT's shape: [1, out, 1, ...].
      return torch::linalg_vector_norm(w, 2, dims, true, c10::nullopt).transpose(0, 1);
    }
    case Kind::Embedding:
      // PEFT normalises the rows of the transposed table: one norm per output feature.
      return torch::linalg_vector_norm(w, 2, at::IntArrayRef{0}, false, c10::nullopt);
  }
  return {};
}

torch::Tensor LoraLayerImpl::as_weight_factor(const torch::Tensor& v) const {
  switch (kind_) {
    case Kind::Dense:
      return v.reshape({-1, 1});
    case Kind::Conv: {
      auto shape = filled(weight_->dim(), 1);
      shape[0] = -1;
      return v.reshape(shape);
    }
    case Kind::Embedding:
      return v.reshape({1, -1});
  }
  return {};
}

torch::Tensor LoraLayerImpl::as_output_factor(const torch::Tensor& v, int64_t dims) const {
  if (kind_ != Kind::Conv) return v.reshape({-1});  // the last axis is the output feature axis
  auto shape = filled(dims, 1);
  shape[1] = -1;  // channels-first output (a 1-d layer's may be lifted to 4-d)
  return v.reshape(shape);
}

torch::Tensor LoraLayerImpl::lora_branch(const Entry& e, const torch::Tensor& x) const {
  const auto& a = e.weights->lora_A;
  const auto& b = e.weights->lora_B;
  switch (kind_) {
    case Kind::Dense:
      return torch::nn::functional::linear(torch::nn::functional::linear(x, a), b) * e.scaling;
    case Kind::Conv: {
      auto low = conv_->convolve_with(x, a);
      const int64_t n = low.dim() - 2;
      auto shape = filled(low.dim(), 1);
      shape[0] = out_features_;
      shape[1] = a.size(0);
      const auto ones = filled(n, 1), zeros = filled(n, 0);
      return at::convolution(low, b.reshape(shape), {}, ones, zeros, ones, false, zeros, 1) * e.scaling;
    }
    case Kind::Embedding:
      return torch::matmul(torch::embedding(a.t(), x), b.t()) * e.scaling;
  }
  return {};
}

torch::Tensor LoraLayerImpl::detached_norm(const Entry& e) const {
  // Outside autograd: the norm is a constant of the step (DoRA paper, section 4.3; PEFT detaches it too).
  torch::NoGradGuard no_grad;
  return weight_norm(*weight_, e.scaling * unscaled_delta(e));
}

torch::Tensor LoraLayerImpl::apply(const torch::Tensor& x, const torch::Tensor& output) {
  if (!enabled_ || !merged_.empty() || active_.empty()) return output;
  auto it = adapters_.find(active_);
  if (it == adapters_.end()) return output;
  const Entry& e = it->second;
  if (kind_ == Kind::Embedding) {
    auto lora = lora_branch(e, x);
    if (!e.use_dora) return output + lora;
    auto norm = detached_norm(e);
    auto scale = as_output_factor(e.weights->magnitude / norm, output.dim());
    return scale * output + scale * lora;
  }
  // The layer's own training flag: the hook may have been attached after model.eval().
  const bool drop = e.dropout > 0.0 && layer_->is_training();
  const auto dx = drop ? torch::dropout(x, e.dropout, true) : x;
  auto lora = lora_branch(e, dx);
  if (!e.use_dora) return output + lora;
  // DoRA (PEFT's DoraLinearLayer / DoraConvNdLayer): m / ||W + s·BA|| · (W + s·BA) x + b, written as the base output
  // plus a correction; the norm is detached as the DoRA paper (section 4.3) suggests.
  auto norm = detached_norm(e);
  auto scale = as_output_factor(e.weights->magnitude / norm, output.dim());
  torch::Tensor base;
  if (drop) {
    base = kind_ == Kind::Dense ? torch::nn::functional::linear(dx, *weight_) : conv_->convolve_with(dx, *weight_);
  } else if (bias_) {
    base = output - (kind_ == Kind::Dense ? *bias_ : as_output_factor(*bias_, output.dim()));
  } else {
    base = output;
  }
  return output + (scale - 1) * base + scale * lora;
}

void LoraLayerImpl::merge(const std::string& name) {
  entry(name);
  Entry& e = adapters_.at(name);
  for (const auto& m : merged_)
    if (m == name) return;
  torch::NoGradGuard no_grad;
  auto delta = unscaled_delta(e) * e.scaling;
  auto& w = *weight_;
  if (!e.use_dora) {
    w.add_(delta);
  } else {
    // The norm of the unmerged weight is kept: unmerge cannot recompute it from the merged one.
    e.merged_norm = weight_norm(w, delta);
    w.copy_(as_weight_factor(e.weights->magnitude / e.merged_norm) * (w + delta));
  }
  merged_.push_back(name);
}

void LoraLayerImpl::unmerge() {
  torch::NoGradGuard no_grad;
  auto& w = *weight_;
  while (!merged_.empty()) {
    Entry& e = adapters_.at(merged_.back());
    auto delta = unscaled_delta(e) * e.scaling;
    if (!e.use_dora) {
      w.sub_(delta);
    } else {
      w.copy_(w / as_weight_factor(e.weights->magnitude / e.merged_norm) - delta);
      e.merged_norm = torch::Tensor();
    }
    merged_.pop_back();
  }
}

// ---- PeftModel -----------------------------------------------------------------------------------------------------

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool matches_entry(const std::vector<std::string>& entries, const std::string& path, const std::string& class_name) {
  for (const auto& e : entries)
    if (path == e || ends_with(path, "." + e) || class_name == e) return true;
  return false;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

/// Layers of the model by module path, in registration order.
std::vector<std::pair<std::string, std::shared_ptr<layers::LayerImpl>>> layers_by_path(const models::ModelImpl& model) {
  std::vector<std::pair<std::string, std::shared_ptr<layers::LayerImpl>>> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false))
    if (auto layer = std::dynamic_pointer_cast<layers::LayerImpl>(item.value())) out.emplace_back(item.key(), layer);
  return out;
}

}  // namespace

PeftModel::PeftModel(models::ModelPtr model) : model_(std::move(model)) {
  if (!model_) throw ConfigError("model", "no model given");
  if (!model_->built())
    throw ShapeError("model '" + model_->model_name() + "' must be built (know its input shape) before adapters are added");
  for (const auto& p : model_->named_parameters(true))
    if (!layers::detail::is_adapter_tensor_name(p.key())) base_requires_grad_[p.key()] = p.value().requires_grad();
}

PeftModel::PeftModel(models::ModelPtr model, const LoraConfig& config, const std::string& adapter_name)
    : PeftModel(std::move(model)) {
  add_adapter(adapter_name, config);
}

std::vector<std::pair<std::string, std::shared_ptr<LoraLayerImpl>>> PeftModel::hooks() const {
  std::vector<std::pair<std::string, std::shared_ptr<LoraLayerImpl>>> out;
  for (const auto& [path, layer] : layers_by_path(*model_))
    if (auto hook = std::dynamic_pointer_cast<LoraLayerImpl>(layer->adapter_hook())) out.emplace_back(path, hook);
  return out;
}

layers::LayerImpl& PeftModel::layer_at(const std::string& path) const {
  for (const auto& [p, layer] : layers_by_path(*model_))
    if (p == path) return *layer;
  throw ConfigError("modules_to_save", "model '" + model_->model_name() + "' has no layer '" + path + "'");
}

std::map<std::string, torch::Tensor> PeftModel::live_tensors(const std::string& path) const {
  std::map<std::string, torch::Tensor> out;
  auto& layer = layer_at(path);
  for (const auto& p : layer.named_parameters(true))
    if (!layers::detail::is_adapter_tensor_name(p.key())) out[p.key()] = p.value();
  for (const auto& b : layer.named_buffers(true))
    if (!layers::detail::is_adapter_tensor_name(b.key())) out[b.key()] = b.value();
  return out;
}

std::vector<std::string> PeftModel::adapters() const {
  std::vector<std::string> out;
  for (const auto& kv : configs_) out.push_back(kv.first);
  return out;
}

const LoraConfig& PeftModel::config(const std::string& name) const {
  auto it = configs_.find(name);
  if (it == configs_.end())
    throw ConfigError("adapter", "model '" + model_->model_name() + "' has no adapter '" + name + "' (adapters: " +
                                     join(adapters()) + ")");
  return it->second;
}

std::vector<std::string> PeftModel::adapted_modules(const std::string& name) const {
  config(name);
  std::vector<std::string> out;
  for (const auto& [path, hook] : hooks())
    if (hook->has(name)) out.push_back(path);
  return out;
}

std::vector<std::string> PeftModel::saved_modules(const std::string& name) const {
  config(name);
  auto it = saved_.find(name);
  return it == saved_.end() ? std::vector<std::string>{} : it->second.paths;
}

void PeftModel::add_adapter(const std::string& name, const LoraConfig& config) {
  if (name.empty() || name.find('.') != std::string::npos || name == layers::LayerImpl::kAdapterHookName)
    throw ConfigError("adapter", "an adapter name must be non-empty and without '.', got '" + name + "'");
  if (configs_.count(name)) throw ConfigError("adapter", "model '" + model_->model_name() + "' already has an adapter '" + name + "'");
  config.validate();
  if (merged()) throw ConfigError("adapter", "cannot add adapter '" + name + "' while an adapter is merged; unmerge first");

  std::vector<std::pair<std::string, std::shared_ptr<layers::LayerImpl>>> targets;
  std::vector<std::string> to_save;
  std::unique_ptr<std::regex> re;
  if (!config.target_regex().empty()) re = std::make_unique<std::regex>(config.target_regex());
  std::vector<std::string> all_paths;
  for (const auto& [path, layer] : layers_by_path(*model_)) {
    all_paths.push_back(path);
    const bool target = re ? std::regex_match(path, *re) : matches_entry(config.target_modules(), path, layer->class_name());
    const bool save = matches_entry(config.modules_to_save(), path, layer->class_name());
    if (target && save)
      throw ConfigError("modules_to_save", "layer '" + path + "' is both a LoRA target and a module to save");
    if (target) {
      if (!layer->supports_adapter_hook())
        throw ConfigError("target_modules", "layer '" + path + "' (" + layer->class_name() +
                                                ") takes no LoRA adapter (supported: Dense, Conv1D, Conv2D, Conv3D, "
                                                "Embedding); target its sub-layers instead");
      targets.emplace_back(path, layer);
    }
    if (save) to_save.push_back(path);
  }
  if (targets.empty())
    throw ConfigError("target_modules", "no layer of model '" + model_->model_name() + "' matches " +
                                            (re ? "'" + config.target_regex() + "'" : "[" + join(config.target_modules()) + "]") +
                                            " (layers: " + join(all_paths) + ")");
  // Create the hooks first, so a layer LoRA cannot take fails before anything changed.
  std::vector<std::shared_ptr<LoraLayerImpl>> layer_hooks;
  for (auto& [path, layer] : targets) {
    auto hook = std::dynamic_pointer_cast<LoraLayerImpl>(layer->adapter_hook());
    layer_hooks.push_back(hook ? hook : std::make_shared<LoraLayerImpl>(*layer));
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    auto& layer = *targets[i].second;
    auto& hook = layer_hooks[i];
    if (!layer.adapter_hook()) {
      hook->set_enabled(enabled_);
      hook->set_active(active_);
      layer.set_adapter_hook(hook);
    }
    hook->add(name, config);
  }
  Saved saved;
  saved.paths = to_save;
  for (const auto& path : to_save) {
    if (!originals_.count(path)) {
      auto& orig = originals_[path];
      for (const auto& [k, t] : live_tensors(path)) orig[k] = t.detach().clone();
    }
    // Each adapter trains its own copy of the original module (PEFT's ModulesToSaveWrapper).
    auto& copy = saved.tensors[path];
    for (const auto& [k, t] : originals_[path]) copy[k] = t.clone();
  }
  saved_[name] = std::move(saved);
  configs_[name] = config;
  logger()->debug("adapter '{}' on {} layer(s) of model '{}'", name, targets.size(), model_->model_name());
  if (active_.empty()) {
    set_adapter(name);
  } else {
    update_trainable();
  }
}

void PeftModel::stash_modules_to_save(const std::string& name) {
  auto it = saved_.find(name);
  if (it == saved_.end()) return;
  torch::NoGradGuard no_grad;
  for (auto& [path, tensors] : it->second.tensors) {
    auto live = live_tensors(path);
    for (auto& [k, t] : tensors) t.copy_(live.at(k));
  }
}

void PeftModel::restore_modules_to_save(const std::string& name) {
  torch::NoGradGuard no_grad;
  auto it = saved_.find(name);
  for (const auto& [path, orig] : originals_) {
    const std::map<std::string, torch::Tensor>* source = &orig;
    if (it != saved_.end() && it->second.tensors.count(path)) source = &it->second.tensors.at(path);
    auto live = live_tensors(path);
    for (const auto& [k, t] : *source) live.at(k).copy_(t);
  }
}

void PeftModel::set_adapter(const std::string& name) {
  config(name);
  if (merged()) {
    logger()->warn("set_adapter('{}'): the merged adapter is unmerged first", name);
    unmerge();
  }
  if (enabled_ && !active_.empty()) stash_modules_to_save(active_);
  active_ = name;
  if (enabled_) restore_modules_to_save(active_);
  for (auto& [path, hook] : hooks()) hook->set_active(name);
  update_trainable();
}

void PeftModel::update_trainable() {
  if (configs_.empty()) {
    // No adapter left: the base trains as it did before.
    for (auto& p : model_->named_parameters(true)) {
      auto it = base_requires_grad_.find(p.key());
      if (it != base_requires_grad_.end()) p.value().set_requires_grad(it->second);
    }
    return;
  }
  const LoraConfig* cfg = active_.empty() ? nullptr : &configs_.at(active_);
  std::set<std::string> hooked;  // layers the active adapter adapts
  for (auto& [path, hook] : hooks()) {
    for (const auto& n : hook->names()) {
      const bool on = n == active_;
      for (auto& p : hook->weights(n)->parameters()) p.set_requires_grad(on);
    }
    if (hook->has(active_)) hooked.insert(path);
  }
  std::set<std::string> saved_paths;
  if (cfg && enabled_)
    for (const auto& p : saved_.at(active_).paths) saved_paths.insert(p);
  for (auto& p : model_->named_parameters(true)) {
    const auto& key = p.key();
    if (layers::detail::is_adapter_tensor_name(key)) continue;
    bool on = false;
    for (const auto& s : saved_paths) on = on || key.rfind(s + ".", 0) == 0;
    if (cfg && ends_with(key, ".bias") && cfg->bias() != "none") {
      const std::string owner = key.substr(0, key.size() - 5);
      on = on || cfg->bias() == "all" || hooked.count(owner);
    }
    p.value().set_requires_grad(on);
  }
}

void PeftModel::delete_adapter(const std::string& name) {
  config(name);
  if (merged()) unmerge();
  if (name == active_ && enabled_) {
    stash_modules_to_save(name);
    restore_modules_to_save("");  // the originals back
  }
  for (auto& [path, hook] : hooks()) {
    if (!hook->has(name)) continue;
    hook->remove(name);
    if (hook->names().empty()) hook->layer().set_adapter_hook(nullptr);
  }
  saved_.erase(name);
  configs_.erase(name);
  // Originals no adapter saves any more stay in the layer (it holds them now).
  for (auto it = originals_.begin(); it != originals_.end();) {
    bool used = false;
    for (const auto& [n, s] : saved_) used = used || s.tensors.count(it->first);
    it = used ? std::next(it) : originals_.erase(it);
  }
  if (name == active_) {
    active_.clear();
    if (!configs_.empty()) {
      const std::string next = configs_.begin()->first;
      active_ = next;
      if (enabled_) restore_modules_to_save(next);
      for (auto& [path, hook] : hooks()) hook->set_active(next);
    }
  }
  update_trainable();
}

void PeftModel::enable_adapters(bool enabled) {
  if (enabled == enabled_) return;
  if (!enabled) {
    if (merged()) {
      logger()->warn("adapters disabled: the merged adapter is unmerged first");
      unmerge();
    }
    if (!active_.empty()) stash_modules_to_save(active_);
    restore_modules_to_save("");
  } else if (!active_.empty()) {
    restore_modules_to_save(active_);
  }
  enabled_ = enabled;
  for (auto& [path, hook] : hooks()) hook->set_enabled(enabled);
  update_trainable();
}

bool PeftModel::merged() const {
  for (const auto& [path, hook] : hooks())
    if (!hook->merged_adapters().empty()) return true;
  return false;
}

void PeftModel::merge() {
  if (active_.empty()) throw ConfigError("adapter", "model '" + model_->model_name() + "' has no active adapter to merge");
  if (!enabled_) throw ConfigError("adapter", "cannot merge while adapters are disabled");
  for (auto& [path, hook] : hooks())
    if (hook->has(active_)) hook->merge(active_);
}

void PeftModel::unmerge() {
  for (auto& [path, hook] : hooks()) hook->unmerge();
}

models::ModelPtr PeftModel::unload() {
  for (auto& [path, hook] : hooks()) hook->layer().set_adapter_hook(nullptr);
  configs_.clear();
  saved_.clear();
  originals_.clear();
  active_.clear();
  // The base weights train again as they did before the adapters (modules_to_save keep the active copy).
  update_trainable();
  return model_;
}

models::ModelPtr PeftModel::merge_and_unload() {
  if (!enabled_) enable_adapters(true);
  if (!active_.empty() && !merged()) merge();
  return unload();
}

}  // namespace lighter::peft
