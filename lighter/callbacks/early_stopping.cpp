#include "lighter/callbacks/early_stopping.h"

#include <cmath>

#include <spdlog/spdlog.h>
#include <torch/nn/module.h>

#include "lighter/callbacks/monitor.h"
#include "lighter/core/error.h"
#include "lighter/core/logging.h"
#include "lighter/models/model.h"

namespace lighter::callbacks {

namespace detail {
std::vector<torch::Tensor> copy_state(torch::nn::Module& model) {
  std::vector<torch::Tensor> out;
  torch::NoGradGuard no_grad;
  for (const auto& p : model.parameters()) out.push_back(p.detach().clone());
  for (const auto& b : model.buffers()) out.push_back(b.detach().clone());
  return out;
}

void restore_state(torch::nn::Module& model, const std::vector<torch::Tensor>& state) {
  torch::NoGradGuard no_grad;
  auto params = model.parameters();
  auto buffers = model.buffers();
  if (params.size() + buffers.size() != state.size())
    throw Error("restore_state: the model has " + std::to_string(params.size() + buffers.size()) +
                " tensors, the saved state " + std::to_string(state.size()));
  size_t i = 0;
  for (auto& p : params) p.copy_(state[i++]);
  for (auto& b : buffers) b.copy_(state[i++]);
}
}  // namespace detail

EarlyStopping::EarlyStopping(EarlyStoppingOptions options) : options_(std::move(options)) {
  if (options_.patience() < 0) throw ConfigError("patience", "must be >= 0");
  if (options_.start_from_epoch() < 0) throw ConfigError("start_from_epoch", "must be >= 0");
  mode_ = resolve_mode(options_.mode(), options_.monitor());
  min_delta_ = std::abs(options_.min_delta());
}

bool EarlyStopping::is_improvement(double current, std::optional<double> reference) const {
  if (!reference) return true;
  return improves(mode_, current, *reference, min_delta_);
}

void EarlyStopping::on_train_begin(training::Logs&) {
  wait_ = 0;
  stopped_epoch_ = 0;
  best_epoch_ = 0;
  best_.reset();
  best_weights_.clear();
}

void EarlyStopping::on_epoch_end(int64_t epoch, training::Logs& logs) {
  auto current = monitor_value(logs, options_.monitor(), "Early stopping");
  if (!current || epoch < options_.start_from_epoch()) return;
  // As Keras: before any improvement is recorded, the current weights are the best.
  if (options_.restore_best_weights() && best_weights_.empty()) {
    best_weights_ = detail::copy_state(model());
    best_epoch_ = epoch;
  }
  ++wait_;
  if (is_improvement(*current, best_)) {
    best_ = *current;
    best_epoch_ = epoch;
    if (options_.restore_best_weights()) best_weights_ = detail::copy_state(model());
    // The wait restarts only when the value beats both the previous best and the baseline.
    if (!options_.baseline() || is_improvement(*current, options_.baseline())) wait_ = 0;
    return;
  }
  if (wait_ >= options_.patience() && epoch > 0) {
    stopped_epoch_ = epoch;
    model().stop_training = true;
  }
}

training::CallbackState EarlyStopping::get_state() const {
  training::CallbackState s;
  s.values = {{"wait", wait_}, {"stopped_epoch", stopped_epoch_}, {"best_epoch", best_epoch_}};
  if (best_) s.tensors["best"] = double_state(*best_);
  for (size_t i = 0; i < best_weights_.size(); ++i) s.tensors["best_weights." + std::to_string(i)] = best_weights_[i];
  return s;
}

void EarlyStopping::set_state(const training::CallbackState& s) {
  const char* who = "EarlyStopping";
  wait_ = read_int_state(s, "wait", who);
  stopped_epoch_ = read_int_state(s, "stopped_epoch", who);
  best_epoch_ = read_int_state(s, "best_epoch", who);
  best_.reset();
  if (s.tensors.count("best")) best_ = read_double_state(s, "best", who);
  best_weights_.clear();
  for (size_t i = 0;; ++i) {
    auto it = s.tensors.find("best_weights." + std::to_string(i));
    if (it == s.tensors.end()) break;
    best_weights_.push_back(it->second.clone());
  }
  if (!best_weights_.empty()) {
    // The copies must fit this model (restore_state checks the count; the shapes are checked here).
    std::vector<torch::Tensor> current = model().parameters();
    for (const auto& b : model().buffers()) current.push_back(b);
    if (current.size() != best_weights_.size())
      throw Error("EarlyStopping: saved best weights hold " + std::to_string(best_weights_.size()) +
                  " tensors, the model has " + std::to_string(current.size()));
    for (size_t i = 0; i < current.size(); ++i)
      if (current[i].sizes() != best_weights_[i].sizes() || current[i].scalar_type() != best_weights_[i].scalar_type())
        throw Error("EarlyStopping: saved best weight " + std::to_string(i) + " does not match the model");
    for (size_t i = 0; i < current.size(); ++i) best_weights_[i] = best_weights_[i].to(current[i].device());
  }
}

void EarlyStopping::on_train_end(training::Logs&) {
  if (stopped_epoch_ > 0 && options_.verbose() > 0) logger()->info("Epoch {}: early stopping", stopped_epoch_ + 1);
  if (options_.restore_best_weights() && !best_weights_.empty()) {
    if (options_.verbose() > 0)
      logger()->info("Restoring model weights from the end of the best epoch: {}", best_epoch_ + 1);
    detail::restore_state(model(), best_weights_);
  }
}

}  // namespace lighter::callbacks
