#include "lighter/training/callback.h"

#include <cstdio>
#include <set>

#include <torch/torch.h>

#include "lighter/core/error.h"

namespace lighter::training {

models::ModelImpl& Callback::model() const {
  if (!model_) throw Error("callback used before it was attached to a model (set_model)");
  return *model_;
}

void History::on_train_begin(Logs&) {
  // Keras keeps appending when fit is called again on the same History; a fresh fit gets a fresh one.
}

void History::on_epoch_end(int64_t e, Logs& logs) {
  epoch.push_back(e);
  for (const auto& kv : logs) history[kv.first].push_back(kv.second);
}

double History::last(const std::string& name) const {
  auto it = history.find(name);
  if (it == history.end() || it->second.empty()) throw Error("history has no values for '" + name + "'");
  return it->second.back();
}

// Values go as float64 tensors, which keep NaN and infinity (JSON cannot) and every bit of a double.
CallbackState History::get_state() const {
  CallbackState s;
  s.values = {{"epoch", epoch}};
  for (const auto& kv : history)
    s.tensors[kv.first] = torch::tensor(std::vector<double>(kv.second), torch::kFloat64);
  return s;
}

void History::set_state(const CallbackState& s) {
  try {
    epoch = s.values.at("epoch").get<std::vector<int64_t>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("History: malformed saved state: ") + e.what());
  }
  history.clear();
  for (const auto& [name, t] : s.tensors) {
    if (t.scalar_type() != torch::kFloat64 || t.dim() != 1)
      throw Error("History: saved values of '" + name + "' are not a float64 vector");
    auto c = t.contiguous();
    history[name].assign(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  }
}

std::string History::to_csv() const {
  std::string out = "epoch";
  for (const auto& kv : history) out += "," + kv.first;
  out += "\n";
  for (size_t i = 0; i < epoch.size(); ++i) {
    out += std::to_string(epoch[i]);
    for (const auto& kv : history) {
      char buf[32];
      if (i < kv.second.size()) {
        std::snprintf(buf, sizeof buf, ",%.8g", kv.second[i]);
      } else {
        std::snprintf(buf, sizeof buf, ",");
      }
      out += buf;
    }
    out += "\n";
  }
  return out;
}

void CallbackList::set_model(models::ModelImpl* model) {
  for (auto& c : callbacks_) c->set_model(model);
}
void CallbackList::set_params(const nlohmann::json& params) {
  for (auto& c : callbacks_) c->set_params(params);
}
bool CallbackList::wants_batch_logs() {
  bool any = false;
  for (auto& c : callbacks_) any = c->wants_batch_logs() || any;
  return any;
}

#define LIGHTER_DISPATCH(hook, ...) \
  for (auto& c : callbacks_) c->hook(__VA_ARGS__);

void CallbackList::on_train_begin(Logs& l) { LIGHTER_DISPATCH(on_train_begin, l) }
void CallbackList::on_train_end(Logs& l) { LIGHTER_DISPATCH(on_train_end, l) }
void CallbackList::on_epoch_begin(int64_t e, Logs& l) { LIGHTER_DISPATCH(on_epoch_begin, e, l) }
void CallbackList::on_epoch_end(int64_t e, Logs& l) { LIGHTER_DISPATCH(on_epoch_end, e, l) }
void CallbackList::on_train_batch_begin(int64_t b, Logs& l) { LIGHTER_DISPATCH(on_train_batch_begin, b, l) }
void CallbackList::on_train_batch_end(int64_t b, Logs& l) { LIGHTER_DISPATCH(on_train_batch_end, b, l) }
void CallbackList::on_test_begin(Logs& l) { LIGHTER_DISPATCH(on_test_begin, l) }
void CallbackList::on_test_end(Logs& l) { LIGHTER_DISPATCH(on_test_end, l) }
void CallbackList::on_test_batch_begin(int64_t b, Logs& l) { LIGHTER_DISPATCH(on_test_batch_begin, b, l) }
void CallbackList::on_test_batch_end(int64_t b, Logs& l) { LIGHTER_DISPATCH(on_test_batch_end, b, l) }
void CallbackList::on_predict_begin(Logs& l) { LIGHTER_DISPATCH(on_predict_begin, l) }
void CallbackList::on_predict_end(Logs& l) { LIGHTER_DISPATCH(on_predict_end, l) }
void CallbackList::on_predict_batch_begin(int64_t b, Logs& l) { LIGHTER_DISPATCH(on_predict_batch_begin, b, l) }
void CallbackList::on_predict_batch_end(int64_t b, Logs& l) { LIGHTER_DISPATCH(on_predict_batch_end, b, l) }

#undef LIGHTER_DISPATCH

}  // namespace lighter::training
