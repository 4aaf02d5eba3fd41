// Resumable checkpoints of a fit in progress (Trainer::save_checkpoint / load_checkpoint): one safetensors file
// holding every tensor ("model/<name>", "optimizer", "rng/...", "callbacks/<i>/<key>", "grad/<i>", "data/order")
// and, in its metadata, a JSON document with the counters ("lighter.checkpoint").
#include <cstring>
#include <sstream>
#include <typeinfo>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include "lighter/core/error.h"
#include "lighter/core/safetensors.h"
#include "lighter/models/saving.h"
#include "lighter/training/trainer.h"

namespace lighter::training {

namespace {

constexpr const char* kStateKey = "lighter.checkpoint";
constexpr int kFormatVersion = 1;

torch::Tensor bytes_tensor(const std::string& bytes) {
  auto t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

// The generators whose states make a resumed run draw what an uninterrupted one would: torch's default CPU and
// CUDA generators and those the layers own (seeded dropout), by a stable name.
std::vector<std::pair<std::string, at::Generator>> generators_of(const models::ModelImpl& model) {
  std::vector<std::pair<std::string, at::Generator>> out;
  out.emplace_back("rng/cpu", at::detail::getDefaultCPUGenerator());
  if (torch::cuda::is_available()) {
    for (int64_t i = 0; i < static_cast<int64_t>(torch::cuda::device_count()); ++i)
      out.emplace_back("rng/cuda:" + std::to_string(i),
                       at::globalContext().defaultGenerator(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(i))));
  }
  for (const auto& layer : model.layers()) {
    const auto& gens = layer->generators();
    for (size_t i = 0; i < gens.size(); ++i)
      out.emplace_back("rng/layers/" + layer->layer_name() + "/" + std::to_string(i), gens[i]);
  }
  return out;
}

std::string callback_kind(const Callback& c) { return typeid(c).name(); }

// The first place where two JSON documents differ, as a JSON pointer ("/config/layers/2/config/units").
std::string first_difference(const nlohmann::json& a, const nlohmann::json& b) {
  auto patch = nlohmann::json::diff(a, b);
  return patch.empty() ? std::string() : patch[0].value("path", std::string("/"));
}

}  // namespace

void Trainer::save_checkpoint(const std::string& file) {
  if (!fit_state_ || !fit_state_->in_epoch_end)
    throw Error("save_checkpoint: a resumable checkpoint is written during fit, at the end of an epoch "
                "(from a callback's on_epoch_end)");
  FitState& st = *fit_state_;
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [name, t] : model_tensors(model_, /*with_adapters=*/true)) tensors.emplace_back("model/" + name, t);

  auto& opt = optimizer();
  {
    torch::serialize::OutputArchive archive;
    opt.torch_optimizer().save(archive);
    std::ostringstream bytes;
    archive.save_to(bytes);
    tensors.emplace_back("optimizer", bytes_tensor(bytes.str()));
  }
  for (auto& [name, gen] : generators_of(model_)) {
    std::lock_guard<std::mutex> lock(gen.mutex());
    tensors.emplace_back(name, gen.get_state());
  }
  nlohmann::json callbacks = nlohmann::json::array();
  for (size_t i = 0; i < st.stateful.size(); ++i) {
    CallbackState cs = st.stateful[i]->get_state();
    callbacks.push_back({{"kind", callback_kind(*st.stateful[i])}, {"values", cs.values}});
    for (const auto& [key, t] : cs.tensors) tensors.emplace_back("callbacks/" + std::to_string(i) + "/" + key, t);
  }
  if (accumulated_ > 0) {
    const auto& params = opt.torch_optimizer().param_groups();
    int64_t index = 0;
    for (const auto& group : params)
      for (const auto& p : group.params()) {
        if (p.grad().defined()) tensors.emplace_back("grad/" + std::to_string(index), p.grad());
        ++index;
      }
  }
  if (st.order.defined()) tensors.emplace_back("data/order", st.order);

  nlohmann::json state = {{"format", "lighter-checkpoint"},
                          {"version", kFormatVersion},
                          {"epoch", st.next_epoch},
                          {"stopped", model_.stop_training},
                          {"iterations", opt.iterations()},
                          {"learning_rate", opt.learning_rate()},
                          {"accumulated", accumulated_},
                          {"cursor", st.cursor},
                          {"drawn", st.drawn},
                          {"callbacks", callbacks},
                          {"optimizer", optimizers::to_json(optimizer_spec_)},
                          {"model", model_.to_json()}};
  if (scaler_) state["loss_scaler"] = scaler_->state();
  save_safetensors(file, tensors, {{kStateKey, state.dump()}, {"producer", "lighter"}});
}

namespace {

nlohmann::json read_state(const std::string& file, const std::map<std::string, std::string>& meta) {
  auto it = meta.find(kStateKey);
  if (it == meta.end()) throw DataError(file, "not a Lighter training checkpoint (no \"" + std::string(kStateKey) + "\" metadata)");
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(file, std::string("malformed checkpoint metadata: ") + e.what());
  }
  if (!state.is_object() || state.value("format", "") != "lighter-checkpoint")
    throw DataError(file, "not a Lighter training checkpoint");
  if (state.value("version", 0) != kFormatVersion)
    throw DataError(file, "checkpoint format version " + state.value("version", nlohmann::json(0)).dump() +
                              " is not supported (this Lighter reads version " + std::to_string(kFormatVersion) + ")");
  for (const char* key : {"epoch", "iterations", "accumulated", "cursor"})
    if (!state.contains(key) || !state[key].is_number_integer() || state[key].get<int64_t>() < 0)
      throw DataError(file, std::string("checkpoint metadata: \"") + key + "\" must be a non-negative integer");
  if (!state.contains("callbacks") || !state["callbacks"].is_array())
    throw DataError(file, "checkpoint metadata: \"callbacks\" must be a list");
  return state;
}

}  // namespace

nlohmann::json Trainer::checkpoint_info(const std::string& file) {
  std::map<std::string, std::string> meta;
  load_safetensors(file, &meta);
  return read_state(file, meta);
}

int64_t Trainer::load_checkpoint(const std::string& file) {
  if (!fit_state_) throw Error("load_checkpoint: a checkpoint is restored into a fit in progress (BackupAndRestore)");
  FitState& st = *fit_state_;
  std::map<std::string, std::string> meta;
  auto stored = load_safetensors(file, &meta);  // checksum, header and sizes checked here
  nlohmann::json state = read_state(file, meta);

  // Everything is checked before anything changes.
  std::string diff = first_difference(state.value("model", nlohmann::json()), model_.to_json());
  if (!diff.empty())
    throw DataError(file, "the checkpoint was written by another model architecture (first difference at " + diff +
                              "); resume with the configuration that wrote it");
  auto saved_opt = state.value("optimizer", nlohmann::json());
  std::string odiff = first_difference(saved_opt, optimizers::to_json(optimizer_spec_));
  if (!odiff.empty())
    throw DataError(file, "the checkpoint was written with another optimizer configuration (first difference at " +
                              odiff + ")");
  auto weights = model_tensors(model_, /*with_adapters=*/true);
  for (const auto& [name, t] : weights) {
    auto it = stored.find("model/" + name);
    if (it == stored.end()) throw DataError(file, "tensor 'model/" + name + "' is missing");
    if (it->second.sizes() != t.sizes() || it->second.scalar_type() != t.scalar_type())
      throw DataError(file, "tensor 'model/" + name + "' does not match the model's shape or dtype");
  }
  if (!stored.count("optimizer") || !stored.count("rng/cpu")) throw DataError(file, "the optimizer or generator state is missing");
  const auto& saved_callbacks = state["callbacks"];
  if (saved_callbacks.size() != st.stateful.size())
    throw DataError(file, "the checkpoint holds the state of " + std::to_string(saved_callbacks.size()) +
                              " callbacks (History included), this fit has " + std::to_string(st.stateful.size()) +
                              "; resume with the same callbacks");
  for (size_t i = 0; i < st.stateful.size(); ++i)
    if (saved_callbacks[i].value("kind", "") != callback_kind(*st.stateful[i]))
      throw DataError(file, "callback " + std::to_string(i) + " of this fit is not the one the checkpoint saved");
  auto gens = generators_of(model_);
  for (const auto& [name, gen] : gens)
    if (!stored.count(name) && name.rfind("rng/cuda", 0) != 0)
      throw DataError(file, "generator state '" + name + "' is missing");

  // Apply.
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : weights) t.copy_(stored.at("model/" + name));
  for (const auto& layer : model_.layers()) layer->on_weights_loaded();
  auto& opt = optimizer();
  try {
    const auto& bytes = stored.at("optimizer");
    torch::serialize::InputArchive archive;
    archive.load_from(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(bytes.numel()), device());
    opt.torch_optimizer().load(archive);
  } catch (const c10::Error& e) {
    throw DataError(file, std::string("cannot restore the optimizer state: ") + e.what_without_backtrace());
  }
  opt.set_iterations(state["iterations"].get<int64_t>());
  if (!opt.schedule() && state.contains("learning_rate") && state["learning_rate"].is_number())
    opt.set_learning_rate(state["learning_rate"].get<double>());
  for (auto& [name, gen] : gens) {
    auto it = stored.find(name);
    if (it == stored.end()) continue;  // a CUDA generator of a run saved without that device
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(it->second);
  }
  for (size_t i = 0; i < st.stateful.size(); ++i) {
    CallbackState cs;
    cs.values = saved_callbacks[i].value("values", nlohmann::json());
    std::string prefix = "callbacks/" + std::to_string(i) + "/";
    for (const auto& [name, t] : stored)
      if (name.rfind(prefix, 0) == 0) cs.tensors[name.substr(prefix.size())] = t;
    try {
      st.stateful[i]->set_state(cs);
    } catch (const DataError&) {
      throw;
    } catch (const Error& e) {
      throw DataError(file, e.what());
    }
  }
  accumulated_ = state["accumulated"].get<int64_t>();
  if (accumulated_ > 0) {
    int64_t index = 0;
    for (auto& group : opt.torch_optimizer().param_groups())
      for (auto& p : group.params()) {
        auto it = stored.find("grad/" + std::to_string(index++));
        if (it != stored.end()) p.mutable_grad() = it->second.to(p.device());
      }
  }
  st.cursor = state["cursor"].get<int64_t>();
  st.drawn = state.value("drawn", false);
  auto order = stored.find("data/order");
  st.order = order == stored.end() ? torch::Tensor() : order->second.to(device());
  if (state.contains("loss_scaler") && state["loss_scaler"].is_object()) {
    if (!scaler_) scaler_ = std::make_unique<LossScaler>();
    try {
      scaler_->load_state(state["loss_scaler"]);
    } catch (const Error& e) {
      throw DataError(file, e.what());
    }
  }
  model_.stop_training = state.value("stopped", false);
  return state["epoch"].get<int64_t>();
}

}  // namespace lighter::training
