#pragma once
/// Keras' callback contract: hooks with a `logs` map, the History callback, and a list that dispatches to many.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace lighter {
namespace models {
class ModelImpl;
}
namespace training {

/// Values logged by the trainer: "loss", metric names, "val_" + those at epoch end.
using Logs = std::map<std::string, double>;

/// What a callback carries from one epoch to the next (counters, best values, copies of weights), saved in
/// resumable checkpoints so that a resumed fit behaves as if it had never stopped.
struct CallbackState {
  nlohmann::json values;                         // small values; null when the callback keeps nothing
  std::map<std::string, torch::Tensor> tensors;  // e.g. EarlyStopping's best weights
};

/// Base class of callbacks, with Keras' hook names and meanings. A callback stops training by setting
/// `model().stop_training = true`.
class Callback {
 public:
  virtual ~Callback() = default;

  void set_model(models::ModelImpl* model) { model_ = model; }
  models::ModelImpl& model() const;
  /// What fit was asked to do: {"epochs", "steps", "verbose", "batch_size", "samples"}.
  void set_params(const nlohmann::json& params) { params_ = params; }
  const nlohmann::json& params() const { return params_; }

  virtual void on_train_begin(Logs& logs) {}
  virtual void on_train_end(Logs& logs) {}
  virtual void on_epoch_begin(int64_t epoch, Logs& logs) {}
  virtual void on_epoch_end(int64_t epoch, Logs& logs) {}
  virtual void on_train_batch_begin(int64_t batch, Logs& logs) {}
  virtual void on_train_batch_end(int64_t batch, Logs& logs) {}
  virtual void on_test_begin(Logs& logs) {}
  virtual void on_test_end(Logs& logs) {}
  virtual void on_test_batch_begin(int64_t batch, Logs& logs) {}
  virtual void on_test_batch_end(int64_t batch, Logs& logs) {}
  virtual void on_predict_begin(Logs& logs) {}
  virtual void on_predict_end(Logs& logs) {}
  virtual void on_predict_batch_begin(int64_t batch, Logs& logs) {}
  virtual void on_predict_batch_end(int64_t batch, Logs& logs) {}

  /// Whether the next on_train_batch_end needs current loss/metric values in `logs`. Filling them synchronises
  /// with the device, so the trainer only does it when some callback asks (default: never).
  virtual bool wants_batch_logs() { return false; }

  /// The state a resumed fit needs (see CallbackState); called at the end of an epoch, after on_epoch_end.
  virtual CallbackState get_state() const { return {}; }
  /// Restores a state from get_state; called after on_train_begin when a fit resumes from a checkpoint.
  /// Throws DataError (via the caller, which names the file) when the state does not fit this callback.
  virtual void set_state(const CallbackState& state) {}

 private:
  models::ModelImpl* model_ = nullptr;
  nlohmann::json params_;
};

using CallbackPtr = std::shared_ptr<Callback>;

/// Keras' History: every epoch's logs, by name.
class History : public Callback {
 public:
  void on_train_begin(Logs& logs) override;
  void on_epoch_end(int64_t epoch, Logs& logs) override;
  /// Values per epoch for each logged name ("loss", "val_loss", "accuracy", ...).
  std::map<std::string, std::vector<double>> history;
  /// The epoch indices (0-based, as Keras).
  std::vector<int64_t> epoch;
  /// The last value of `name`; Error when absent.
  double last(const std::string& name) const;
  /// history.csv content: a header `epoch,<names...>` and one row per epoch.
  std::string to_csv() const;

  CallbackState get_state() const override;
  void set_state(const CallbackState& state) override;
};

/// Dispatches each hook to several callbacks in order.
class CallbackList {
 public:
  explicit CallbackList(std::vector<CallbackPtr> callbacks = {}) : callbacks_(std::move(callbacks)) {}
  void add(CallbackPtr c) { callbacks_.push_back(std::move(c)); }
  const std::vector<CallbackPtr>& callbacks() const { return callbacks_; }
  void set_model(models::ModelImpl* model);
  void set_params(const nlohmann::json& params);
  bool wants_batch_logs();
  void on_train_begin(Logs& logs);
  void on_train_end(Logs& logs);
  void on_epoch_begin(int64_t epoch, Logs& logs);
  void on_epoch_end(int64_t epoch, Logs& logs);
  void on_train_batch_begin(int64_t batch, Logs& logs);
  void on_train_batch_end(int64_t batch, Logs& logs);
  void on_test_begin(Logs& logs);
  void on_test_end(Logs& logs);
  void on_test_batch_begin(int64_t batch, Logs& logs);
  void on_test_batch_end(int64_t batch, Logs& logs);
  void on_predict_begin(Logs& logs);
  void on_predict_end(Logs& logs);
  void on_predict_batch_begin(int64_t batch, Logs& logs);
  void on_predict_batch_end(int64_t batch, Logs& logs);

 private:
  std::vector<CallbackPtr> callbacks_;
};

}  // namespace training
}  // namespace lighter
