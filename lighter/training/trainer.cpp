#include "lighter/training/trainer.h"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lighter/callbacks/backup_and_restore.h"
#include "lighter/core/error.h"
#include "lighter/core/logging.h"
#include "lighter/core/runtime.h"
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
    : Trainer(model, std::move(optimizer), std::vector<OutputSpec>{OutputSpec{std::move(loss), 1.0, std::move(metrics)}}) {}

Trainer::Trainer(models::ModelImpl& model, optimizers::OptimizerSpec optimizer, std::vector<OutputSpec> outputs)
    : model_(model), optimizer_spec_(std::move(optimizer)), outputs_(std::move(outputs)) {
  apply_runtime_defaults();  // once per process: malloc thresholds and threads (lighter/core/runtime.h)
  const size_t n = model_.num_outputs();
  if (outputs_.size() != n)
    throw ConfigError("compile.loss", "the model has " + std::to_string(n) + " output" + (n == 1 ? "" : "s") + " but " +
                                          std::to_string(outputs_.size()) + " were given losses");
  bool any = false;
  for (const auto& o : outputs_) any = any || o.loss != nullptr;
  if (!any) throw ConfigError("compile.loss", "a loss is required");
  auto names = model_.output_names();
  auto activations_of = model_.output_activations();
  for (size_t i = 0; i < n; ++i) {
    const auto& spec = outputs_[i];
    if (!std::isfinite(spec.loss_weight))
      throw ConfigError(join_path("compile.loss_weights", i), "expected a finite number");
    Head h;
    h.loss = h.training_loss = spec.loss;
    h.weight = spec.loss_weight;
    h.metrics = spec.metrics;
    if (n > 1) h.loss_key = names[i] + "_loss";
    for (const auto& m : h.metrics) h.metric_keys.push_back(n > 1 ? names[i] + "_" + m->name() : m->name());
    if (!spec.loss && !h.metrics.empty())
      logger()->debug("output '{}' has metrics but no loss; its metrics are still computed", names[i]);
    // Softmax/sigmoid followed by crossentropy: compute the loss from the logits (log-softmax), as Keras does
    // where it can, instead of taking the log of a rounded probability.
    std::string fusable = spec.loss ? spec.loss->fusable_activation() : "";
    if (!fusable.empty() && fusable == activations_of[i]) {
      if (auto with_logits = spec.loss->with_logits()) {
        h.training_loss = with_logits;
        h.fused = true;
        h.fused_fn = activations::get(fusable);
      }
    }
    pre_activation_.push_back(h.fused);
    heads_.push_back(std::move(h));
  }
  const auto& acc = optimizer_spec_.config.value("gradient_accumulation_steps", nlohmann::json(nullptr));
  if (acc.is_number_integer() && acc.get<int64_t>() > 1) accumulation_steps_ = acc.get<int64_t>();
}

const losses::Loss& Trainer::loss() const {
  for (const auto& h : heads_)
    if (h.loss) return *h.loss;
  throw ConfigError("compile.loss", "no output has a loss");
}

std::vector<metrics::MetricPtr> Trainer::metrics() const {
  std::vector<metrics::MetricPtr> all;
  for (const auto& h : heads_) all.insert(all.end(), h.metrics.begin(), h.metrics.end());
  return all;
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

void Trainer::check_data(const Tensors& x, const Tensors& y, const std::string& what) const {
  if (x.size() != model_.num_inputs())
    throw ShapeError(what + ": the model takes " + std::to_string(model_.num_inputs()) + " input" +
                     (model_.num_inputs() == 1 ? "" : "s") + ", got " + std::to_string(x.size()) + " tensors");
  if (!y.empty() && y.size() != model_.num_outputs())
    throw ShapeError(what + ": the model has " + std::to_string(model_.num_outputs()) + " output" +
                     (model_.num_outputs() == 1 ? "" : "s") + ", got " + std::to_string(y.size()) + " target tensors");
  auto label = [&](const char* kind, size_t i, size_t count) {
    return count == 1 ? std::string(kind) : std::string(kind) + "[" + std::to_string(i) + "]";
  };
  for (size_t i = 0; i < x.size(); ++i)
    if (!x[i].defined() || x[i].dim() < 1)
      throw ShapeError(what + ": " + label("x", i, x.size()) + " must be a tensor with a batch axis");
  const int64_t n = x.front().size(0);
  for (size_t i = 1; i < x.size(); ++i)
    if (x[i].size(0) != n)
      throw ShapeError(what + ": x[0] has " + std::to_string(n) + " samples but x[" + std::to_string(i) + "] has " +
                       std::to_string(x[i].size(0)));
  for (size_t i = 0; i < y.size(); ++i) {
    if (!y[i].defined() || y[i].dim() < 1)
      throw ShapeError(what + ": " + label("y", i, y.size()) + " must be a tensor with a batch axis");
    if (y[i].size(0) != n)
      throw ShapeError(what + ": x has " + std::to_string(n) + " samples but " + label("y", i, y.size()) + " has " +
                       std::to_string(y[i].size(0)));
  }
  if (n == 0) throw ShapeError(what + ": no samples");
}

Trainer::StepResult Trainer::run_batch(const Tensors& x, const Tensors& y, const torch::Tensor& sample_weight,
                                       bool training) {
  StepResult r;
  AutocastGuard autocast(precision_, device_);  // float32: nothing
  models::ModelOutputs out = model_.call(x, {}, pre_activation_);
  const bool cast = precision_ != Precision::float32;
  for (size_t i = 0; i < heads_.size(); ++i) {
    const Head& h = heads_[i];
    const torch::Tensor& value = out.values[i];
    torch::Tensor mask = i < out.masks.size() ? out.masks[i] : torch::Tensor();
    // The predictions feed the metrics only: a head without metrics leaves them undefined.
    torch::Tensor pred;
    if (!h.metrics.empty()) {
      pred = h.fused ? h.fused_fn(value.detach()) : value.detach();
      if (cast) pred = pred.to(torch::kFloat);
    }
    r.predictions.push_back(pred);
    r.masks.push_back(mask);
    if (!h.loss) {
      r.head_losses.emplace_back();
      continue;
    }
    torch::Tensor l = (*h.training_loss)(value, y[i], sample_weight, mask);
    if (cast) l = l.to(torch::kFloat);
    r.head_losses.push_back(l);
    torch::Tensor weighted = h.weight == 1.0 ? l : l * h.weight;
    r.loss = r.loss.defined() ? r.loss + weighted : weighted;
  }
  if (training) {
    auto reg = model_.regularization_loss();
    if (reg.defined()) r.loss = r.loss + (cast ? reg.to(torch::kFloat) : reg);
  }
  return r;
}

torch::Tensor Trainer::compute_loss(const Tensors& x, const Tensors& y, const torch::Tensor& sample_weight) {
  check_data(x, y, "compute_loss");
  if (y.empty()) throw ShapeError("compute_loss: targets (y) are required");
  return run_batch(x, y, sample_weight, /*training=*/true).loss;
}

void Trainer::reset_metrics() {
  for (auto& h : heads_)
    for (auto& m : h.metrics) m->reset_state();
}

void Trainer::update_metrics(const StepResult& r, const Tensors& y) {
  for (size_t i = 0; i < heads_.size(); ++i)
    for (auto& m : heads_[i].metrics) m->update_state(r.predictions[i], y[i], {}, r.masks[i]);
}

void Trainer::write_metric_logs(Logs& logs, const std::vector<torch::Tensor>& head_loss_sums, double count) const {
  for (size_t i = 0; i < heads_.size(); ++i) {
    const Head& h = heads_[i];
    if (!h.loss_key.empty() && i < head_loss_sums.size() && head_loss_sums[i].defined())
      logs[h.loss_key] = head_loss_sums[i].item<double>() / count;
    for (size_t k = 0; k < h.metrics.size(); ++k) logs[h.metric_keys[k]] = h.metrics[k]->result();
  }
}

torch::Tensor Trainer::train_step(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& sample_weight) {
  return train_step(Tensors{x}, Tensors{y}, sample_weight);
}

torch::Tensor Trainer::train_step(const Tensors& x, const Tensors& y, const torch::Tensor& sample_weight) {
  auto& opt = optimizer();
  if (trainable_.empty()) {
    for (const auto& group : opt.torch_optimizer().param_groups())
      for (const auto& p : group.params()) trainable_.push_back(p);
  }
  // With gradient accumulation, gradients add up over accumulation_steps_ batches (each loss scaled by 1/steps,
  // so the update sees their mean, as Keras') and the optimizer steps once; clipping applies to that mean.
  if (accumulated_ == 0) opt.zero_grad();
  StepResult r = run_batch(x, y, sample_weight, /*training=*/true);
  torch::Tensor loss = r.loss;
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
  auto batch = static_cast<double>(x.front().size(0));
  // The running sum stays on the device (no sync per step), one in-place op per step.
  if (!loss_sum_.defined()) loss_sum_ = torch::zeros({}, loss.options().requires_grad(false));
  loss_sum_.add_(loss.detach(), batch);
  if (heads_.size() > 1) {
    head_loss_sums_.resize(heads_.size());
    for (size_t i = 0; i < heads_.size(); ++i) {
      if (!r.head_losses[i].defined()) continue;
      auto d = r.head_losses[i].detach() * batch;
      head_loss_sums_[i] = head_loss_sums_[i].defined() ? head_loss_sums_[i] + d : d;
    }
  }
  loss_count_ += batch;
  update_metrics(r, y);
  return loss;
}

History Trainer::fit(const torch::Tensor& x, const torch::Tensor& y, const FitOptions& o) {
  return fit(Tensors{x}, Tensors{y}, o);
}

namespace {

Tensors select_rows(const Tensors& ts, const torch::Tensor& idx) {
  Tensors out;
  out.reserve(ts.size());
  for (const auto& t : ts) out.push_back(t.index_select(0, idx));
  return out;
}

Tensors narrow_rows(const Tensors& ts, int64_t begin, int64_t len) {
  Tensors out;
  out.reserve(ts.size());
  for (const auto& t : ts) out.push_back(t.narrow(0, begin, len));
  return out;
}

Tensors to_device(const Tensors& ts, torch::Device dev, bool contiguous = false) {
  Tensors out;
  out.reserve(ts.size());
  for (const auto& t : ts) out.push_back(contiguous ? t.to(dev).contiguous() : t.to(dev));
  return out;
}

}  // namespace

History Trainer::fit(const Tensors& x_in, const Tensors& y_in, const FitOptions& o) {
  check_data(x_in, y_in, "fit");
  if (y_in.empty()) throw ShapeError("fit: targets (y) are required");
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

  Tensors x = x_in, y = y_in;
  int64_t n = x.front().size(0);
  torch::Tensor sw = o.sample_weight();
  if (sw.defined() && (sw.dim() != 1 || sw.size(0) != n))
    throw ShapeError("fit: sample_weight must have one value per sample (" + std::to_string(n) + ")");
  if (!o.class_weight().empty()) {
    if (y.size() != 1)
      throw ConfigError("fit.class_weight", "class_weight is only supported for models with one output (use "
                                            "sample_weight for several)");
    auto cw = class_weights_for(y.front(), o.class_weight());
    sw = sw.defined() ? sw.to(torch::kFloat) * cw : cw;
  }

  // Keras' validation_split: the tail of the data (with its sample weights), taken before shuffling.
  Tensors vx, vy;
  torch::Tensor vw;
  if (o.validation_data()) {
    vx = o.validation_data()->x;
    vy = o.validation_data()->y;
    check_data(vx, vy, "fit.validation_data");
    if (vy.empty()) throw ShapeError("fit.validation_data: targets (y) are required");
  } else if (o.validation_split() > 0) {
    // The same boundary as Keras (train_validation_split) and data::split_tail.
    const auto kept = static_cast<int64_t>(std::floor(static_cast<double>(n) * (1.0 - o.validation_split())));
    if (kept <= 0 || kept >= n)
      throw ConfigError("validation_split", std::to_string(n) + " samples are too few to split with validation_split=" +
                                                std::to_string(o.validation_split()) + " (one part would be empty)");
    vx = narrow_rows(x, kept, n - kept);
    vy = narrow_rows(y, kept, n - kept);
    if (sw.defined()) vw = sw.narrow(0, kept, n - kept);
    x = narrow_rows(x, 0, kept);
    y = narrow_rows(y, 0, kept);
    if (sw.defined()) sw = sw.narrow(0, 0, kept);
    n = kept;
  }

  // Preprocessing layers learn their statistics from the training data first (Keras' adapt).
  if (model_.needs_adapt()) {
    if (x.size() != 1) throw ConfigError("fit", "preprocessing layers that adapt are supported in models with one input");
    logger()->info("adapting preprocessing layers to {} training samples", n);
    model_.adapt(x.front().to(device()));
  }
  if (!model_.built()) {
    torch::NoGradGuard g;
    model_.call(to_device(narrow_rows(x, 0, 1), device()));
  }

  // The whole dataset moves to the model's device once; batches are then index_select slices of it.
  torch::Device dev = device();
  device_ = dev;
  precision_ = o.dtype_policy();
  if (!autocast_supported(precision_, dev))
    throw ConfigError("fit.dtype_policy", to_string(precision_) + " is not supported on " + dev.str() +
                                              " with this LibTorch" + (dev.is_cpu() ? " (use mixed_bfloat16 on CPU)" : ""));
  if (precision_ == Precision::mixed_float16 && !scaler_) scaler_ = std::make_unique<LossScaler>();
  x = to_device(x, dev, true);
  y = to_device(y, dev, true);
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
  const int64_t bs = o.batch_size();
  const int64_t steps = o.steps_per_epoch() > 0 ? o.steps_per_epoch() : (n + bs - 1) / bs;
  callbacks.set_model(&model_);
  callbacks.set_params({{"epochs", o.epochs()}, {"steps", steps}, {"verbose", o.verbose()}, {"batch_size", bs},
                        {"samples", n}});

  // Validation runs the on_test_* hooks of the user's callbacks, as Keras' fit does (not the progress bar).
  CallbackList validation_callbacks(o.callbacks());
  validation_callbacks.set_model(&model_);
  if (!vx.empty()) {
    vx = to_device(vx, dev);
    vy = to_device(vy, dev);
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
    head_loss_sums_.clear();
    loss_count_ = 0;
    reset_metrics();
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
      Tensors xb, yb;
      torch::Tensor wb;
      if (state.order.defined()) {
        auto idx = state.order.narrow(0, begin, len);
        xb = select_rows(x, idx);
        yb = select_rows(y, idx);
        if (sw.defined()) wb = sw.index_select(0, idx);
      } else {
        xb = narrow_rows(x, begin, len);
        yb = narrow_rows(y, begin, len);
        if (sw.defined()) wb = sw.narrow(0, begin, len);
      }
      train_step(xb, yb, wb);
      if (callbacks.wants_batch_logs()) {
        batch_logs["loss"] = loss_sum_.item<double>() / loss_count_;
        write_metric_logs(batch_logs, head_loss_sums_, loss_count_);
      }
      callbacks.on_train_batch_end(step, batch_logs);
      if (model_.stop_training) break;
    }
    epoch_logs["loss"] = loss_sum_.item<double>() / loss_count_;
    write_metric_logs(epoch_logs, head_loss_sums_, loss_count_);
    if (!std::isfinite(epoch_logs["loss"]))
      logger()->warn("epoch {}: the loss is {} (try a lower learning rate)", epoch + 1, epoch_logs["loss"]);
    if (!vx.empty() && (epoch + 1) % o.validation_freq() == 0) {
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

Logs Trainer::run_evaluation(const Tensors& x_in, const Tensors& y_in, const torch::Tensor& sw_in, int64_t batch_size,
                             CallbackList& callbacks, int64_t max_steps) {
  if (batch_size <= 0) throw ConfigError("batch_size", "expected a positive integer, got " + std::to_string(batch_size));
  torch::NoGradGuard no_grad;
  bool was_training = model_.is_training();
  model_.eval();
  torch::Device dev = device();
  device_ = dev;
  const int64_t n = x_in.front().size(0);
  torch::Tensor total;
  std::vector<torch::Tensor> head_totals(heads_.size() > 1 ? heads_.size() : 0);
  double count = 0;
  reset_metrics();
  Logs logs;
  callbacks.on_test_begin(logs);
  for (int64_t begin = 0, step = 0; begin < n && (max_steps == 0 || step < max_steps); begin += batch_size, ++step) {
    int64_t len = std::min(batch_size, n - begin);
    Logs batch_logs;
    callbacks.on_test_batch_begin(step, batch_logs);
    Tensors xb = to_device(narrow_rows(x_in, begin, len), dev);
    Tensors yb = to_device(narrow_rows(y_in, begin, len), dev);
    torch::Tensor wb = sw_in.defined() ? sw_in.narrow(0, begin, len).to(dev, torch::kFloat) : torch::Tensor();
    StepResult r = run_batch(xb, yb, wb, /*training=*/false);
    auto scaled = r.loss * static_cast<double>(len);
    total = total.defined() ? total + scaled : scaled;
    for (size_t i = 0; i < head_totals.size(); ++i) {
      if (!r.head_losses[i].defined()) continue;
      auto d = r.head_losses[i] * static_cast<double>(len);
      head_totals[i] = head_totals[i].defined() ? head_totals[i] + d : d;
    }
    count += len;
    update_metrics(r, yb);
    callbacks.on_test_batch_end(step, batch_logs);
  }
  // Keras reports the loss with the regularization penalties included.
  auto reg = model_.regularization_loss();
  logs["loss"] = total.item<double>() / count + (reg.defined() ? reg.item<double>() : 0.0);
  write_metric_logs(logs, head_totals, count);
  callbacks.on_test_end(logs);
  model_.train(was_training);
  return logs;
}

Logs Trainer::evaluate(const torch::Tensor& x, const torch::Tensor& y, const EvaluateOptions& o) {
  return evaluate(Tensors{x}, Tensors{y}, o);
}

Logs Trainer::evaluate(const Tensors& x, const Tensors& y, const EvaluateOptions& o) {
  check_data(x, y, "evaluate");
  if (y.empty()) throw ShapeError("evaluate: targets (y) are required");
  if (o.sample_weight().defined() && o.sample_weight().size(0) != x.front().size(0))
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
  compile(optimizer, loss, nlohmann::json(metric_specs), nlohmann::json(nullptr));
}

void ModelImpl::compile(const optimizers::OptimizerSpec& optimizer, std::shared_ptr<losses::Loss> loss,
                        std::vector<std::shared_ptr<metrics::Metric>> ms) {
  // Validates the optimizer spec the same way a JSON config is validated.
  auto checked = optimizers::from_json(optimizers::to_json(optimizer), "compile.optimizer");
  trainer_ = std::make_shared<training::Trainer>(*this, checked, std::move(loss), std::move(ms));
}

void ModelImpl::compile(const optimizers::OptimizerSpec& optimizer, const nlohmann::json& loss,
                        const nlohmann::json& metric_specs, const nlohmann::json& loss_weights) {
  const auto names = output_names();
  const size_t n = names.size();
  auto known = [&] {
    std::string list;
    for (const auto& nm : names) list += (list.empty() ? "'" : ", '") + nm + "'";
    return list;
  };
  // Keras' per-output forms: one value for all, a list by position, or an object by output name.
  auto per_output = [&](const nlohmann::json& spec, const std::string& path, bool single_if_object,
                        bool list_is_single) -> std::vector<std::pair<nlohmann::json, std::string>> {
    std::vector<std::pair<nlohmann::json, std::string>> out(n, {nlohmann::json(nullptr), path});
    bool by_name = spec.is_object() && !(single_if_object && spec.contains("class_name"));
    if (by_name) {
      for (auto it = spec.begin(); it != spec.end(); ++it) {
        auto pos = std::find(names.begin(), names.end(), it.key());
        if (pos == names.end())
          throw ConfigError(path + "." + it.key(), "the model has no output named '" + it.key() + "' (outputs: " + known() + ")");
        out[pos - names.begin()] = {it.value(), path + "." + it.key()};
      }
    } else if (spec.is_array() && !list_is_single) {
      if (spec.size() != n)
        throw ConfigError(path, "expected one entry per model output (" + std::to_string(n) + "), got " +
                                    std::to_string(spec.size()));
      for (size_t i = 0; i < n; ++i) out[i] = {spec[i], join_path(path, i)};
    } else {
      for (size_t i = 0; i < n; ++i) out[i] = {spec, path};
    }
    return out;
  };
  auto loss_specs = per_output(loss, "compile.loss", true, false);
  // A flat list of metrics is for every output (Keras 2's reading); a list of lists (or nulls) is per output.
  bool nested = metric_specs.is_array() && !metric_specs.empty() && n > 1 && metric_specs.size() == n;
  for (const auto& m : metric_specs) nested = nested && (m.is_array() || m.is_null());
  auto metric_lists = per_output(metric_specs.is_null() ? nlohmann::json::array() : metric_specs, "compile.metrics",
                                 false, !nested);
  auto weights = per_output(loss_weights, "compile.loss_weights", false, false);
  std::vector<training::OutputSpec> specs(n);
  for (size_t i = 0; i < n; ++i) {
    if (!loss_specs[i].first.is_null()) specs[i].loss = losses::get(loss_specs[i].first, loss_specs[i].second);
    const auto& w = weights[i].first;
    if (!w.is_null()) {
      if (!w.is_number() || !std::isfinite(w.get<double>()))
        throw ConfigError(weights[i].second, "expected a finite number, got " + describe(w));
      specs[i].loss_weight = w.get<double>();
    }
    const auto& ml = metric_lists[i].first;
    if (ml.is_null()) continue;
    if (!ml.is_array()) throw ConfigError(metric_lists[i].second, "expected a list of metrics, got " + describe(ml));
    std::string loss_name = specs[i].loss ? specs[i].loss->name() : "";
    for (size_t k = 0; k < ml.size(); ++k)
      specs[i].metrics.push_back(metrics::get(ml[k], join_path(metric_lists[i].second, k), loss_name));
  }
  auto checked = optimizers::from_json(optimizers::to_json(optimizer), "compile.optimizer");
  trainer_ = std::make_shared<training::Trainer>(*this, checked, std::move(specs));
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

training::History ModelImpl::fit(const std::vector<torch::Tensor>& x, const std::vector<torch::Tensor>& y,
                                 const training::FitOptions& options) {
  return trainer().fit(x, y, options);
}

std::map<std::string, double> ModelImpl::evaluate(const std::vector<torch::Tensor>& x,
                                                  const std::vector<torch::Tensor>& y,
                                                  const training::EvaluateOptions& options) {
  return trainer().evaluate(x, y, options);
}

std::vector<torch::Tensor> ModelImpl::predict(const std::vector<torch::Tensor>& x, int64_t batch_size) {
  if (batch_size <= 0) throw ConfigError("batch_size", "expected a positive integer, got " + std::to_string(batch_size));
  if (x.size() != num_inputs())
    throw ShapeError("predict: the model takes " + std::to_string(num_inputs()) + " inputs, got " + std::to_string(x.size()));
  for (const auto& t : x)
    if (!t.defined() || t.dim() < 1 || t.size(0) == 0) throw ShapeError("predict: every input must hold at least one sample");
  const int64_t n = x.front().size(0);
  for (const auto& t : x)
    if (t.size(0) != n) throw ShapeError("predict: the inputs hold different numbers of samples");
  torch::NoGradGuard no_grad;
  bool was_training = is_training();
  eval();
  auto params = parameters();
  torch::Device dev = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  std::vector<std::vector<torch::Tensor>> parts(num_outputs());
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    int64_t len = std::min(batch_size, n - begin);
    std::vector<torch::Tensor> xb;
    for (const auto& t : x) xb.push_back(t.narrow(0, begin, len).to(dev));
    auto out = call(xb);
    for (size_t i = 0; i < parts.size(); ++i) parts[i].push_back(out.values[i].to(torch::kCPU));
  }
  train(was_training);
  std::vector<torch::Tensor> result;
  for (auto& p : parts) result.push_back(torch::cat(p));
  return result;
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
