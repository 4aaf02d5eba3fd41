#include "lighter/callbacks/reduce_lr_on_plateau.h"

#include <algorithm>
#include <limits>

#include <spdlog/spdlog.h>

#include "lighter/callbacks/monitor.h"
#include "lighter/core/error.h"
#include "lighter/core/logging.h"
#include "lighter/models/model.h"
#include "lighter/training/trainer.h"

namespace lighter::callbacks {

ReduceLROnPlateau::ReduceLROnPlateau(ReduceLROnPlateauOptions options) : options_(std::move(options)) {
  if (options_.factor() >= 1.0) throw ConfigError("factor", "ReduceLROnPlateau does not support a factor >= 1.0");
  if (options_.patience() < 0) throw ConfigError("patience", "must be >= 0");
  if (options_.cooldown() < 0) throw ConfigError("cooldown", "must be >= 0");
  if (options_.min_lr() < 0) throw ConfigError("min_lr", "must be >= 0");
  mode_ = resolve_mode(options_.mode(), options_.monitor());
  reset();
}

void ReduceLROnPlateau::reset() {
  best_ = mode_ == "min" ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  wait_ = 0;
  cooldown_counter_ = 0;
}

void ReduceLROnPlateau::on_train_begin(training::Logs&) {
  reset();
  // Keras refuses to set a learning rate that follows a schedule when it first reduces it; say so before training.
  if (model().trainer().optimizer().schedule())
    throw ConfigError("ReduceLROnPlateau", "the optimizer's learning rate follows a schedule (" +
                                               model().trainer().optimizer().schedule()->class_name() +
                                               "), which a callback cannot change; use a constant learning rate");
}

training::CallbackState ReduceLROnPlateau::get_state() const {
  training::CallbackState s;
  s.values = {{"wait", wait_}, {"cooldown_counter", cooldown_counter_}};
  s.tensors["best"] = double_state(best_);
  return s;
}

void ReduceLROnPlateau::set_state(const training::CallbackState& s) {
  wait_ = read_int_state(s, "wait", "ReduceLROnPlateau");
  cooldown_counter_ = read_int_state(s, "cooldown_counter", "ReduceLROnPlateau");
  best_ = read_double_state(s, "best", "ReduceLROnPlateau");
}

void ReduceLROnPlateau::on_epoch_end(int64_t epoch, training::Logs& logs) {
  auto& optimizer = model().trainer().optimizer();
  logs["learning_rate"] = optimizer.learning_rate();
  auto current = monitor_value(logs, options_.monitor(), "Learning rate reduction");
  if (!current) return;
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    wait_ = 0;
  }
  if (improves(mode_, *current, best_, options_.min_delta())) {
    best_ = *current;
    wait_ = 0;
  } else if (cooldown_counter_ == 0) {
    ++wait_;
    if (wait_ >= options_.patience()) {
      double old_lr = optimizer.learning_rate();
      // Keras compares with min_lr as float32, so a rate already at min_lr (in float32) is left alone.
      if (static_cast<float>(old_lr) > static_cast<float>(options_.min_lr())) {
        double new_lr = std::max(old_lr * options_.factor(), options_.min_lr());
        optimizer.set_learning_rate(new_lr);
        if (options_.verbose() > 0)
          logger()->info("Epoch {}: ReduceLROnPlateau reducing learning rate to {}.", epoch + 1, new_lr);
        cooldown_counter_ = options_.cooldown();
        wait_ = 0;
      }
    }
  }
}

}  // namespace lighter::callbacks
