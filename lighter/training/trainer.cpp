#include "lighter/training/trainer.h"

#include <cmath>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lighter/callbacks/backup_and_restore.h"
#include "lighter/core/error.h"
#include "lighter/core/logging.h"
#include "lighter/data/dataset.h"
#include "lighter/training/progress.h"

namespace lighter {
namespace training {

namespace {

// Per-sample weights from Keras' class_weight for integer (or one-hot) targets.
torch::Tensor class_weights_for(const torch::Tensor& y, const std::map<int64_t, double>& class_weight) {
  torch::Tensor labels = y;
  if (y.dim() >= 2 && y.size(-1) > 1) labels = y.argmax(-1);
  labels = labels.reshape({y.size(0), -1}).select(1, 0).round().to(torch::kLong);
  int64_t max_label = labels.numel() ? labels.max().item<int64_t>() : 0;
  for (const auto& kv : class_weight) max_label = std::max(max_label, kv.first);
  std::vector<float> weights(max_label + 1, 1.0f);
  for (const auto& kv : class_weight) {
    if (kv.first < 0) throw ConfigError("fit.class_weight", "class ids must be non-negative, got " + std::to_string(kv.first));
    weights[kv.first] = static_cast<float>(kv.second);
  }
  auto table = torch::tensor(weights).to(labels.device());
  return table.index_select(0, labels.clamp_min(0));
}

}  // namespace

Trainer::Trainer(models::ModelImpl& model, optimizers::OptimizerSpec optimizer, losses::LossPtr loss,
                 std::vector<metrics::MetricPtr> metrics)
    : model_(model), optimizer_spec_(std::move(optimizer)), loss_(std::move(loss)), metrics_(std::move(metrics)) {
  if (!loss_) throw ConfigError("compile.loss", "a loss is required");
  loss_for_training_ = loss_;
  // Softmax/sigmoid followed by crossentropy: compute the loss from the logits (log-softmax), as Keras does
  // where it can, instead of taking the log of a rounded probability.
  std::string fusable = loss_->fusable_activation();
  if (!fusable.empty() && fusable == model_.output_activation()) {
    if (auto with_logits = loss_->with_logits()) {
      loss_for_training_ = with_logits;
      fused_ = true;
      fused_fn_ = activations::get(fusable);
    }
  }
  const auto& acc = optimizer_spec_.config.value("gradient_accumulation_steps", nlohmann::json(nullptr));
  if (acc.is_number_integer() && acc.get<int64_t>() > 1) accumulation_steps_ = acc.get<int64_t>();
}

torch::Device Trainer::device() const {
  auto params = model_.parameters();
  if (!params.empty()) return params.front().device();
  auto buffers = model_.buffers();
  return buffers.empty() ? torch::Device(torch::kCPU) : buffers.front().device();
}

optimizers::Optimizer& Trainer::optimizer() {
  if (!optimizer_) {
    std::vector<torch::Tensor> trainable;
    for (const auto& p : model_.parameters())
      if (p.requires_grad()) trainable.push_back(p);
    optimizer_ = std::make_unique<optimizers::Optimizer>(optimizer_spec_, trainable);
  }
  return *optimizer_;
}

void Trainer::check_data(const torch::Tensor& x, const torch::Tensor& y, const std::string& what) const {
  if (!x.defined() || x.dim() < 1) throw ShapeError(what + ": x must be a tensor with a batch axis");
  if (y.defined() && y.size(0) != x.size(0))
    throw ShapeError(what + ": x has " + std::to_string(x.size(0)) + " samples but y has " + std::to_string(y.size(0)));
  if (x.size(0) == 0) throw ShapeError(what + ": no samples");
}

torch::Tensor Trainer::train_step(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& sample_weight) {
  auto& opt = optimizer();
  if (trainable_.empty()) {
    for (const auto& group : opt.torch_optimizer().param_groups())
      for (const auto& p : group.params()) trainable_.push_back(p);
  }
  // With gradient accumulation, gradients add up over accumulation_steps_ batches (each loss scaled by 1/steps,
  // so the update sees their mean, as Keras') and the optimizer steps once; clipping applies to that mean.
  if (accumulated_ == 0) opt.zero_grad();
  torch::Tensor out, pred, loss;
  {
    AutocastGuard autocast(precision_, device_);  // float32: nothing
    if (fused_) {
      out = model_.forward_pre_activation(x);
      pred = fused_fn_(out.detach());
    } else {
      out = model_.forward(x);
      pred = out.detach();
    }
    loss = (*loss_for_training_)(out, y, sample_weight);
    auto reg = model_.regularization_loss();
    if (reg.defined()) loss = loss + reg;
  }
  if (precision_ != Precision::float32) {
    pred = pred.to(torch::kFloat);
    loss = loss.to(torch::kFloat);
  }
  torch::Tensor to_backward = accumulation_steps_ > 1 ? loss / static_cast<double>(accumulation_steps_) : loss;
  const bool scaled = precision_ == Precision::mixed_float16;
  if (scaled) to_backward = scaler_->scale(to_backward);
  to_backward.backward();
  if (++accumulated_ >= accumulation_steps_) {
    accumulated_ = 0;
    bool finite = true;
    if (scaled) {
      // Unscaled before the optimizer clips them; an overflow skips the update, as Keras' LossScaleOptimizer does.
      finite = scaler_->unscale(trainable_);
      scaler_->update(!finite);
      if (!finite) logger()->debug("gradients overflowed in float16: update skipped, loss scale now {}", scaler_->scale_value());
    }
    if (finite) opt.step();
  }
  auto batch = static_cast<double>(x.size(0));
  auto detached = loss.detach() * batch;
  loss_sum_ = loss_sum_.defined() ? loss_sum_ + detached : detached;
  loss_count_ += batch;
  for (auto& m : metrics_) m->update_state(pred, y);
  return loss;
}

History Trainer::fit(const torch::Tensor& x_in, const torch::Tensor& y_in, const FitOptions& o) {
  check_data(x_in, y_in, "fit");
  if (o.epochs() < 0) throw ConfigError("fit.epochs", "expected a non-negative integer, got " + std::to_string(o.epochs()));
  if (o.batch_size() <= 0)
    throw ConfigError("fit.batch_size", "expected a positive integer, got " + std::to_string(o.batch_size()));
  if (!(o.validation_split() >= 0 && o.validation_split() < 1))
    throw ConfigError("fit.validation_split", "expected a number in [0, 1), got " + std::to_string(o.validation_split()));
  if (o.initial_epoch() < 0) throw ConfigError("fit.initial_epoch", "expected a non-negative integer");
  if (o.steps_per_epoch() < 0)
    throw ConfigError("fit.steps_per_epoch", "expected a positive integer (or 0 for the whole data), got " +
                                                 std::to_string(o.steps_per_epoch()));
  if (o.validation_steps() < 0)
    throw ConfigError("fit.validation_steps", "expected a positive integer (or 0 for all), got " +
                                                  std::to_string(o.validation_steps()));
  if (o.validation_freq() <= 0)
    throw ConfigError("fit.validation_freq", "expected a positive integer, got " + std::to_string(o.validation_freq()));

  torch::Tensor x = x_in, y = y_in;
  torch::Tensor sw = o.sample_weight();
  if (sw.defined() && (sw.dim() != 1 || sw.size(0) != x.size(0)))
    throw ShapeError("fit: sample_weight must have one value per sample (" + std::to_string(x.size(0)) + ")");
  if (!o.class_weight().empty()) {
    auto cw = class_weights_for(y, o.class_weight());
    sw = sw.defined() ? sw.to(torch::kFloat) * cw : cw;
  }

  // Keras' validation_split: the tail of the data (with its sample weights), taken before shuffling.
  torch::Tensor vx, vy, vw;
  if (o.validation_data()) {
    vx = o.validation_data()->first;
    vy = o.validation_data()->second;
    check_data(vx, vy, "fit.validation_data");
  } else if (o.validation_split() > 0) {
    auto [train_part, val_part] = data::split_tail(data::TensorDataset(x, y, sw), o.validation_split());
    x = train_part.x;
    y = train_part.y;
    sw = train_part.sample_weight;
    vx = val_part.x;
    vy = val_part.y;
    vw = val_part.sample_weight;
  }

  // Preprocessing layers learn their statistics from the training data first (Keras' adapt).
  if (model_.needs_adapt()) {
    logger()->info("adapting preprocessing layers to {} training samples", x.size(0));
    model_.adapt(x.to(device()));
  }
  if (!model_.built()) {
    torch::NoGradGuard g;
    model_.forward(x.narrow(0, 0, 1).to(device()));
  }

  // The whole dataset moves to the model's device once; batches are then index_select slices of it.
  torch::Device dev = device();
  device_ = dev;
  precision_ = o.dtype_policy();
  if (!autocast_supported(precision_, dev))
    throw ConfigError("fit.dtype_policy", to_string(precision_) + " is not supported on " + dev.str() +
                                              " with this LibTorch" + (dev.is_cpu() ? " (use mixed_bfloat16 on CPU)" : ""));
  if (precision_ == Precision::mixed_float16 && !scaler_) scaler_ = std::make_unique<LossScaler>();
  x = x.to(dev).contiguous();
  y = y.to(dev).contiguous();
  if (sw.defined()) sw = sw.to(dev, torch::kFloat).contiguous();

  auto history = std::make_shared<History>();
  FitState state;
  CallbackList callbacks;
  std::vector<std::shared_ptr<callbacks::BackupAndRestore>> backups;
  for (const auto& c : o.callbacks()) {
    if (auto b = std::dynamic_pointer_cast<callbacks::BackupAndRestore>(c)) {
      backups.push_back(b);
    } else {
      callbacks.add(c);
      state.stateful.push_back(c);
    }
  }
  // After the user's callbacks, as Keras appends History: it records what they add to the logs ("learning_rate").
  callbacks.add(history);
  state.stateful.push_back(history);
  // Backups come last, so that they save what every other callback did at the end of the epoch.
  for (const auto& b : backups) callbacks.add(b);
  if (o.verbose() > 0) callbacks.add(std::make_shared<ProgbarLogger>(o.verbose()));
  const int64_t n = x.size(0), bs = o.batch_size();
  const int64_t steps = o.steps_per_epoch() > 0 ? o.steps_per_epoch() : (n + bs - 1) / bs;
  callbacks.set_model(&model_);
  callbacks.set_params({{"epochs", o.epochs()}, {"steps", steps}, {"verbose", o.verbose()}, {"batch_size", bs},
                        {"samples", n}});

  // Validation runs the on_test_* hooks of the user's callbacks, as Keras' fit does (not the progress bar).
  CallbackList validation_callbacks(o.callbacks());
  validation_callbacks.set_model(&model_);
  if (vx.defined()) {
    vx = vx.to(dev);
    vy = vy.to(dev);
    if (vw.defined()) vw = vw.to(dev, torch::kFloat);
  }

  struct Reset {
    FitState*& slot;
    ~Reset() { slot = nullptr; }
  } reset{fit_state_};
  fit_state_ = &state;
  model_.stop_training = false;
  accumulated_ = 0;
  Logs logs;
  callbacks.on_train_begin(logs);
  int64_t first_epoch = o.initial_epoch();
  for (const auto& b : backups) {
    if (auto resumed = b->restore(*this)) first_epoch = *resumed;
  }
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(dev);
  for (int64_t epoch = first_epoch; epoch < o.epochs() && !model_.stop_training; ++epoch) {
    Logs epoch_logs;
    callbacks.on_epoch_begin(epoch, epoch_logs);
    model_.train();
    loss_sum_ = torch::Tensor();
    loss_count_ = 0;
    for (auto& m : metrics_) m->reset_state();
    // One pass over the data per epoch, or (steps_per_epoch) a window that goes on where the last one stopped.
    if (o.steps_per_epoch() == 0) {
      state.order = o.shuffle() ? torch::randperm(n, long_opts) : torch::Tensor();
      state.cursor = 0;
    }
    for (int64_t step = 0; step < steps; ++step) {
      if (o.steps_per_epoch() > 0 && (!state.drawn || state.cursor >= n)) {
        state.order = o.shuffle() ? torch::randperm(n, long_opts) : torch::Tensor();
        state.cursor = 0;
        state.drawn = true;
      }
      int64_t begin = state.cursor, len = std::min(bs, n - begin);
      state.cursor += len;
      Logs batch_logs;
      callbacks.on_train_batch_begin(step, batch_logs);
      torch::Tensor xb, yb, wb;
      if (state.order.defined()) {
        auto idx = state.order.narrow(0, begin, len);
        xb = x.index_select(0, idx);
        yb = y.index_select(0, idx);
        if (sw.defined()) wb = sw.index_select(0, idx);
      } else {
        xb = x.narrow(0, begin, len);
        yb = y.narrow(0, begin, len);
        if (sw.defined()) wb = sw.narrow(0, begin, len);
      }
      train_step(xb, yb, wb);
      if (callbacks.wants_batch_logs()) {
        batch_logs["loss"] = loss_sum_.item<double>() / loss_count_;
        for (auto& m : metrics_) batch_logs[m->name()] = m->result();
      }
      callbacks.on_train_batch_end(step, batch_logs);
      if (model_.stop_training) break;
    }
    epoch_logs["loss"] = loss_sum_.item<double>() / loss_count_;
    for (auto& m : metrics_) epoch_logs[m->name()] = m->result();
    if (!std::isfinite(epoch_logs["loss"]))
      logger()->warn("epoch {}: the loss is {} (try a lower learning rate)", epoch + 1, epoch_logs["loss"]);
    if (vx.defined() && (epoch + 1) % o.validation_freq() == 0) {
      Logs val = run_evaluation(vx, vy, vw, bs, validation_callbacks, o.validation_steps());
      for (const auto& kv : val) epoch_logs["val_" + kv.first] = kv.second;
    }
    state.next_epoch = epoch + 1;
    state.in_epoch_end = true;
    callbacks.on_epoch_end(epoch, epoch_logs);
    state.in_epoch_end = false;
    logs = epoch_logs;
  }
  callbacks.on_train_end(logs);
  model_.eval();
  return *history;
}

Logs Trainer::run_evaluation(const torch::Tensor& x_in, const torch::Tensor& y_in, const torch::Tensor& sw_in,
                             int64_t batch_size, CallbackList& callbacks, int64_t max_steps) {
  if (batch_size <= 0) throw ConfigError("batch_size", "expected a positive integer, got " + std::to_string(batch_size));
  torch::NoGradGuard no_grad;
  bool was_training = model_.is_training();
  model_.eval();
  torch::Device dev = device();
  const int64_t n = x_in.size(0);
  torch::Tensor total;
  double count = 0;
  for (auto& m : metrics_) m->reset_state();
  Logs logs;
  callbacks.on_test_begin(logs);
  for (int64_t begin = 0, step = 0; begin < n && (max_steps == 0 || step < max_steps); begin += batch_size, ++step) {
    int64_t len = std::min(batch_size, n - begin);
    Logs batch_logs;
    callbacks.on_test_batch_begin(step, batch_logs);
    auto xb = x_in.narrow(0, begin, len).to(dev);
    auto yb = y_in.narrow(0, begin, len).to(dev);
    torch::Tensor wb = sw_in.defined() ? sw_in.narrow(0, begin, len).to(dev, torch::kFloat) : torch::Tensor();
    torch::Tensor out, pred, loss;
    {
      AutocastGuard autocast(precision_, dev);
      if (fused_) {
        out = model_.forward_pre_activation(xb);
        pred = fused_fn_(out);
      } else {
        out = pred = model_.forward(xb);
      }
      loss = (*loss_for_training_)(out, yb, wb).to(torch::kFloat) * static_cast<double>(len);
    }
    if (precision_ != Precision::float32) pred = pred.to(torch::kFloat);
    total = total.defined() ? total + loss : loss;
    count += len;
    for (auto& m : metrics_) m->update_state(pred, yb);
    callbacks.on_test_batch_end(step, batch_logs);
  }
  // Keras reports the loss with the regularization penalties included.
  auto reg = model_.regularization_loss();
  logs["loss"] = total.item<double>() / count + (reg.defined() ? reg.item<double>() : 0.0);
  for (auto& m : metrics_) logs[m->name()] = m->result();
  callbacks.on_test_end(logs);
  model_.train(was_training);
  return logs;
}

Logs Trainer::evaluate(const torch::Tensor& x, const torch::Tensor& y, const EvaluateOptions& o) {
  check_data(x, y, "evaluate");
  if (o.sample_weight().defined() && o.sample_weight().size(0) != x.size(0))
    throw ShapeError("evaluate: sample_weight must have one value per sample");
  CallbackList callbacks(o.callbacks());
  callbacks.set_model(&model_);
  precision_ = Precision::float32;  // evaluate as Keras' float32 policy; fit sets its own
  return run_evaluation(x, y, o.sample_weight(), o.batch_size(), callbacks);
}

torch::Tensor Trainer::predict(const torch::Tensor& x, int64_t batch_size) {
  return model_.predict(x, batch_size);
}

}  // namespace training

// ---- Keras' training API on the model ------------------------------------------------------------------------

namespace models {

void ModelImpl::compile(const optimizers::OptimizerSpec& optimizer, const nlohmann::json& loss,
                        const std::vector<nlohmann::json>& metric_specs) {
  auto l = losses::get(loss, "compile.loss");
  std::vector<metrics::MetricPtr> ms;
  for (size_t i = 0; i < metric_specs.size(); ++i)
    ms.push_back(metrics::get(metric_specs[i], join_path("compile.metrics", i), l->name()));
  compile(optimizer, l, ms);
}

void ModelImpl::compile(const optimizers::OptimizerSpec& optimizer, std::shared_ptr<losses::Loss> loss,
                        std::vector<std::shared_ptr<metrics::Metric>> ms) {
  // Validates the optimizer spec the same way a JSON config is validated.
  auto checked = optimizers::from_json(optimizers::to_json(optimizer), "compile.optimizer");
  trainer_ = std::make_shared<training::Trainer>(*this, checked, std::move(loss), std::move(ms));
}

training::Trainer& ModelImpl::trainer() {
  if (!trainer_) throw ConfigError("compile", "the model must be compiled before fit or evaluate (call compile)");
  return *trainer_;
}

training::History ModelImpl::fit(const torch::Tensor& x, const torch::Tensor& y) {
  return fit(x, y, training::FitOptions());
}

training::History ModelImpl::fit(const torch::Tensor& x, const torch::Tensor& y, const training::FitOptions& options) {
  return trainer().fit(x, y, options);
}

std::map<std::string, double> ModelImpl::evaluate(const torch::Tensor& x, const torch::Tensor& y) {
  return evaluate(x, y, training::EvaluateOptions());
}

std::map<std::string, double> ModelImpl::evaluate(const torch::Tensor& x, const torch::Tensor& y,
                                                  const training::EvaluateOptions& options) {
  return trainer().evaluate(x, y, options);
}

torch::Tensor ModelImpl::predict(const torch::Tensor& x, int64_t batch_size) {
  if (batch_size <= 0) throw ConfigError("batch_size", "expected a positive integer, got " + std::to_string(batch_size));
  if (!x.defined() || x.dim() < 1 || x.size(0) == 0) throw ShapeError("predict: x must hold at least one sample");
  torch::NoGradGuard no_grad;
  bool was_training = is_training();
  eval();
  auto params = parameters();
  torch::Device dev = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  std::vector<torch::Tensor> outs;
  for (int64_t begin = 0; begin < x.size(0); begin += batch_size) {
    int64_t len = std::min(batch_size, x.size(0) - begin);
    outs.push_back(forward(x.narrow(0, begin, len).to(dev)).to(torch::kCPU));
  }
  train(was_training);
  return torch::cat(outs);
}

}  // namespace models
}  // namespace lighter
