#include "lighter_test.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "lighter/callbacks/csv_logger.h"
#include "lighter/callbacks/early_stopping.h"
#include "lighter/callbacks/lambda_callback.h"
#include "lighter/callbacks/learning_rate_scheduler.h"
#include "lighter/callbacks/model_checkpoint.h"
#include "lighter/callbacks/monitor.h"
#include "lighter/callbacks/reduce_lr_on_plateau.h"
#include "lighter/callbacks/registry.h"
#include "lighter/callbacks/terminate_on_nan.h"

namespace L = lighter;
namespace C = lighter::callbacks;
using L::json;
using namespace lighter::layers;
namespace fs = std::filesystem;

namespace {

L::Sequential small_model() {
  auto model = L::Sequential({Input({2}), Dense(3), Dense(1)});
  model->compile(L::optimizers::sgd(0.1), "mse");
  return model;
}

// Feeds `values` of `key` to the callback's epoch hooks as fit would; returns the epoch after which training was
// stopped, or -1 when it ran through.
int64_t drive(L::training::Callback& cb, L::models::ModelImpl& model, const std::vector<double>& values,
              const std::string& key = "val_loss") {
  cb.set_model(&model);
  model.stop_training = false;
  L::training::Logs logs;
  cb.on_train_begin(logs);
  int64_t stopped = -1;
  for (size_t e = 0; e < values.size(); ++e) {
    L::training::Logs epoch_logs{{"loss", 1.0}, {key, values[e]}};
    cb.on_epoch_begin(e, epoch_logs);
    cb.on_epoch_end(e, epoch_logs);
    if (model.stop_training) {
      stopped = static_cast<int64_t>(e);
      break;
    }
  }
  cb.on_train_end(logs);
  return stopped;
}

void fill_state(L::models::ModelImpl& model, double value) {
  torch::NoGradGuard no_grad;
  for (auto& p : model.parameters()) p.fill_(value);
  for (auto& b : model.buffers()) b.fill_(value);
}

}  // namespace

TEST_CASE("mode auto resolves as Keras and improvement honours min_delta", "[callbacks]") {
  REQUIRE(C::resolve_mode("auto", "val_loss") == "min");
  REQUIRE(C::resolve_mode("auto", "loss") == "min");
  REQUIRE(C::resolve_mode("auto", "mae") == "min");
  REQUIRE(C::resolve_mode("auto", "val_accuracy") == "max");
  REQUIRE(C::resolve_mode("auto", "sparse_categorical_accuracy") == "max");
  REQUIRE(C::resolve_mode("auto", "auc") == "max");
  REQUIRE(C::resolve_mode("auto", "val_precision") == "max");
  REQUIRE(C::resolve_mode("auto", "recall") == "max");
  REQUIRE(C::resolve_mode("auto", "val_r2_score") == "max");
  REQUIRE(C::resolve_mode("max", "val_loss") == "max");
  REQUIRE(C::resolve_mode("min", "accuracy") == "min");
  LIGHTER_REQUIRE_THROWS_WITH(C::resolve_mode("best", "loss"), "expected 'auto', 'min' or 'max', got 'best'");
  REQUIRE(C::improves("min", 0.8, 1.0, 0.1));
  REQUIRE_FALSE(C::improves("min", 0.95, 1.0, 0.1));
  REQUIRE(C::improves("max", 0.7, 0.5, 0.1));
  REQUIRE_FALSE(C::improves("max", 0.55, 0.5, 0.1));
}

TEST_CASE("EarlyStopping stops after patience epochs without improvement", "[callbacks]") {
  auto model = small_model();
  using O = C::EarlyStoppingOptions;
  {
    C::EarlyStopping es(O().patience(2));
    REQUIRE(drive(es, *model, {1.0, 0.9, 0.95, 0.96, 0.5}) == 3);
    REQUIRE(es.stopped_epoch() == 3);
    REQUIRE(es.best_epoch() == 1);
    REQUIRE(*es.best() == 0.9);
  }
  {
    C::EarlyStopping es(O().patience(0));
    REQUIRE(drive(es, *model, {1.0, 0.9, 0.8, 0.8}) == 3);  // equal is no improvement
  }
  {
    C::EarlyStopping es(O().patience(3));
    REQUIRE(drive(es, *model, {1.0, 0.9, 0.95, 0.96, 0.5, 0.6}) == -1);  // the wait restarted at epoch 4
    REQUIRE(es.stopped_epoch() == 0);
  }
  SECTION("min_delta (its absolute value, as Keras)") {
    C::EarlyStopping es(O().patience(1).min_delta(-0.1));
    REQUIRE(drive(es, *model, {1.0, 0.95, 0.5}) == 1);
    C::EarlyStopping es2(O().patience(1).min_delta(0.01));
    REQUIRE(drive(es2, *model, {1.0, 0.95, 0.9, 0.895, 0.89}) == 3);
  }
  SECTION("max mode for accuracy") {
    C::EarlyStopping es(O().monitor("val_accuracy").patience(0));
    REQUIRE(es.mode() == "max");
    REQUIRE(drive(es, *model, {0.5, 0.6, 0.55}, "val_accuracy") == 2);
    C::EarlyStopping forced(O().monitor("val_accuracy").mode("min").patience(0));
    REQUIRE(drive(forced, *model, {0.5, 0.6, 0.55}, "val_accuracy") == 1);
  }
  SECTION("baseline: the wait restarts only when the baseline is beaten") {
    C::EarlyStopping plain(O().patience(2));
    REQUIRE(drive(plain, *model, {0.9, 0.9, 0.9, 0.9}) == 2);
    C::EarlyStopping with_baseline(O().patience(2).baseline(0.5));
    REQUIRE(drive(with_baseline, *model, {0.9, 0.9, 0.9, 0.9}) == 1);
    C::EarlyStopping beaten(O().patience(2).baseline(0.5));
    REQUIRE(drive(beaten, *model, {0.9, 0.4, 0.45, 0.45, 0.45}) == 3);
  }
  SECTION("start_from_epoch ignores the first epochs") {
    C::EarlyStopping early(O().patience(0));
    REQUIRE(drive(early, *model, {1, 2, 3, 4}) == 1);
    C::EarlyStopping late(O().patience(0).start_from_epoch(2));
    REQUIRE(drive(late, *model, {1, 2, 3, 4}) == 3);
    REQUIRE(late.best_epoch() == 2);
  }
  SECTION("a missing monitor never stops training") {
    C::EarlyStopping es(O().monitor("val_mae"));
    REQUIRE(drive(es, *model, {1, 2, 3}) == -1);
  }
  SECTION("bad arguments") {
    LIGHTER_REQUIRE_THROWS_WITH(C::EarlyStopping(O().patience(-1)), "patience: must be >= 0");
    LIGHTER_REQUIRE_THROWS_WITH(C::EarlyStopping(O().mode("up")), "expected 'auto', 'min' or 'max'");
  }
}

TEST_CASE("EarlyStopping restore_best_weights restores the exact parameters and buffers", "[callbacks]") {
  auto model = L::Sequential({Input({2}), Normalization(), Dense(3), Dense(1)});
  model->compile(L::optimizers::sgd(0.1), "mse");
  REQUIRE(!model->buffers().empty());
  auto run = [&](C::EarlyStopping& es, const std::vector<double>& losses) {
    es.set_model(model.get());
    model->stop_training = false;
    L::training::Logs logs;
    es.on_train_begin(logs);
    for (size_t e = 0; e < losses.size() && !model->stop_training; ++e) {
      fill_state(*model, 10.0 * (e + 1));  // the weights "after" epoch e
      L::training::Logs l{{"val_loss", losses[e]}};
      es.on_epoch_end(e, l);
    }
    es.on_train_end(logs);
  };
  auto all_equal = [&](double v) {
    for (auto& p : model->parameters())
      if (!torch::equal(p, torch::full_like(p, v))) return false;
    for (auto& b : model->buffers())
      if (!torch::equal(b, torch::full_like(b, v))) return false;
    return true;
  };
  using O = C::EarlyStoppingOptions;
  {
    // Stopped early: back to the best epoch (1).
    C::EarlyStopping es(O().patience(1).restore_best_weights(true));
    run(es, {1.0, 0.5, 0.7, 0.2});
    REQUIRE(es.stopped_epoch() == 2);
    REQUIRE(all_equal(20.0));
  }
  {
    // Keras 3 restores at the end of training even when patience never ran out.
    C::EarlyStopping es(O().patience(5).restore_best_weights(true));
    run(es, {1.0, 0.5, 0.7, 0.6});
    REQUIRE(es.stopped_epoch() == 0);
    REQUIRE(all_equal(20.0));
  }
  {
    C::EarlyStopping es(O().patience(1));
    run(es, {1.0, 0.5, 0.7, 0.2});
    REQUIRE(all_equal(30.0));  // no restore asked: the last weights stay
  }
  {
    // A real fit: the weights after fit are the ones of the best val_loss epoch.
    L::seed_everything(3);
    auto m = small_model();
    auto x = torch::randn({16, 2}), y = torch::randn({16, 1});
    auto es = std::make_shared<C::EarlyStopping>(O().monitor("loss").patience(100).restore_best_weights(true));
    struct Snap : L::training::Callback {
      std::vector<std::vector<torch::Tensor>> states;
      void on_epoch_end(int64_t, L::training::Logs&) override { states.push_back(C::detail::copy_state(model())); }
    };
    auto snap = std::make_shared<Snap>();
    auto h = m->fit(x, y, L::FitOptions().epochs(6).batch_size(4).verbose(0).callbacks({snap, es}));
    auto& losses = h.history.at("loss");
    size_t best = std::min_element(losses.begin(), losses.end()) - losses.begin();
    REQUIRE(es->best_epoch() == static_cast<int64_t>(best));
    auto now = C::detail::copy_state(*m);
    for (size_t i = 0; i < now.size(); ++i) REQUIRE(torch::equal(now[i], snap->states[best][i]));
  }
}

namespace {
// Feeds val_loss values to a ReduceLROnPlateau; returns the learning rate logged at each epoch, then the final one.
std::vector<double> lr_trace(C::ReduceLROnPlateau& cb, L::models::ModelImpl& model, const std::vector<double>& values) {
  cb.set_model(&model);
  L::training::Logs logs;
  cb.on_train_begin(logs);
  std::vector<double> out;
  for (size_t e = 0; e < values.size(); ++e) {
    L::training::Logs l{{"loss", 1.0}, {"val_loss", values[e]}};
    cb.on_epoch_end(e, l);
    out.push_back(l.at("learning_rate"));
  }
  out.push_back(model.trainer().optimizer().learning_rate());
  return out;
}

void require_close(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == Approx(want[i]).epsilon(1e-12));
}
}  // namespace

TEST_CASE("ReduceLROnPlateau lowers the learning rate after patience, with cooldown and min_lr", "[callbacks]") {
  using O = C::ReduceLROnPlateauOptions;
  {
    auto model = small_model();  // sgd(0.1)
    C::ReduceLROnPlateau cb(O().factor(0.5).patience(2).min_delta(0));
    require_close(lr_trace(cb, *model, {1, 1, 1, 1, 1, 0.5, 0.5, 0.5}),
                  {0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125});
  }
  {
    // min_delta: 0.99995 is no improvement on 1 with the default 1e-4.
    auto model = small_model();
    C::ReduceLROnPlateau cb(O().factor(0.5).patience(1));
    require_close(lr_trace(cb, *model, {1, 0.99995, 0.5}), {0.1, 0.1, 0.05, 0.05});
  }
  {
    // cooldown 2: after a reduction, two epochs pass before the wait counts again.
    auto model = small_model();
    C::ReduceLROnPlateau cb(O().factor(0.5).patience(1).cooldown(2));
    require_close(lr_trace(cb, *model, {1, 1, 1, 1, 1, 1}), {0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125});
  }
  {
    auto model = small_model();
    C::ReduceLROnPlateau cb(O().factor(0.1).patience(1).min_lr(0.005));
    require_close(lr_trace(cb, *model, {1, 1, 1, 1}), {0.1, 0.1, 0.01, 0.005, 0.005});
  }
  {
    // max mode for accuracy-like monitors.
    auto model = small_model();
    C::ReduceLROnPlateau cb(O().monitor("val_accuracy").factor(0.5).patience(1));
    REQUIRE(cb.mode() == "max");
    cb.set_model(model.get());
    L::training::Logs logs, l0{{"val_accuracy", 0.5}}, l1{{"val_accuracy", 0.6}}, l2{{"val_accuracy", 0.6}};
    cb.on_train_begin(logs);
    cb.on_epoch_end(0, l0);
    cb.on_epoch_end(1, l1);
    REQUIRE(model->trainer().optimizer().learning_rate() == Approx(0.1));
    cb.on_epoch_end(2, l2);
    REQUIRE(model->trainer().optimizer().learning_rate() == Approx(0.05));
  }
  LIGHTER_REQUIRE_THROWS_WITH(C::ReduceLROnPlateau(O().factor(1.0)), "does not support a factor >= 1.0");
  {
    // In a real fit the learning rate is in the history.
    L::seed_everything(1);
    auto model = small_model();
    auto cb = std::make_shared<C::ReduceLROnPlateau>(O().monitor("loss").factor(0.5).patience(0).min_delta(10));
    auto h = model->fit(torch::randn({8, 2}), torch::randn({8, 1}),
                        L::FitOptions().epochs(3).verbose(0).callbacks({cb}));
    // Epoch 0 sets the best; epochs 1 and 2 each halve the rate (logged before the change, as Keras).
    REQUIRE(model->trainer().optimizer().learning_rate() == Approx(0.025));
    require_close(h.history.at("learning_rate"), {0.1, 0.1, 0.05});
  }
}

TEST_CASE("CSVLogger writes a header from the first epoch's keys and one exact row per epoch", "[callbacks]") {
  std::string dir = lighter_test::temp_dir("csv_logger");
  auto model = small_model();
  L::training::Logs begin, end;
  {
    C::CSVLogger cb(dir + "/sub/log.csv");
    cb.set_model(model.get());
    cb.on_train_begin(begin);
    L::training::Logs l0{{"loss", 0.5}, {"accuracy", 0.25}, {"val_loss", 0.1}};
    cb.on_epoch_end(0, l0);
    L::training::Logs l1{{"loss", 1.0 / 3}, {"accuracy", std::nan("")}};  // no val_loss this epoch
    cb.on_epoch_end(1, l1);
    cb.on_train_end(end);
  }
  REQUIRE(L::read_text_file(dir + "/sub/log.csv") ==
          "epoch,accuracy,loss,val_loss\n0,0.25,0.5,0.1\n1,nan,0.3333333333333333,NA\n");
  {
    // Without val_ keys in the first epoch, Keras reserves val_ columns; append adds rows without a new header.
    C::CSVLogger cb(dir + "/log2.csv", ";");
    cb.on_train_begin(begin);
    L::training::Logs l{{"loss", 2.0}};
    cb.on_epoch_end(0, l);
    cb.on_train_end(end);
    C::CSVLogger again(dir + "/log2.csv", ";", true);
    again.on_train_begin(begin);
    L::training::Logs l2{{"loss", 1.5}, {"val_loss", 1.25}};
    again.on_epoch_end(0, l2);
    again.on_train_end(end);
  }
  REQUIRE(L::read_text_file(dir + "/log2.csv") == "epoch;loss;val_loss\n0;2;NA\n0;1.5;1.25\n");
  {
    // Rows are on disk as soon as the epoch ends (a crash loses nothing written).
    C::CSVLogger cb(dir + "/log3.csv");
    cb.on_train_begin(begin);
    L::training::Logs l{{"loss", 2.0}, {"val_loss", 3.0}};
    cb.on_epoch_end(0, l);
    REQUIRE(L::read_text_file(dir + "/log3.csv") == "epoch,loss,val_loss\n0,2,3\n");
  }
  {
    // A real fit.
    L::seed_everything(2);
    auto cb = std::make_shared<C::CSVLogger>(dir + "/fit.csv");
    auto h = model->fit(torch::randn({8, 2}), torch::randn({8, 1}),
                        L::FitOptions().epochs(3).verbose(0).validation_split(0.25).callbacks({cb}));
    std::string text = L::read_text_file(dir + "/fit.csv");
    REQUIRE(text.rfind("epoch,loss,val_loss\n0,", 0) == 0);
    REQUIRE(std::count(text.begin(), text.end(), '\n') == 4);
    REQUIRE(text.find("\n2,") != std::string::npos);
  }
  LIGHTER_REQUIRE_THROWS_WITH(C::CSVLogger(""), "filename: must not be empty");
}

TEST_CASE("TerminateOnNaN stops at a NaN or infinite batch loss", "[callbacks]") {
  auto model = small_model();
  C::TerminateOnNaN cb;
  cb.set_model(model.get());
  REQUIRE(cb.wants_batch_logs());
  model->stop_training = false;
  L::training::Logs ok{{"loss", 1.0}}, none, inf{{"loss", std::numeric_limits<double>::infinity()}},
      nan{{"loss", std::nan("")}};
  cb.on_train_batch_end(0, ok);
  cb.on_train_batch_end(1, none);
  REQUIRE_FALSE(model->stop_training);
  cb.on_train_batch_end(2, inf);
  REQUIRE(model->stop_training);
  model->stop_training = false;
  cb.on_train_batch_end(3, nan);
  REQUIRE(model->stop_training);
  // In fit: a NaN target makes the first batch loss NaN; training ends after that epoch.
  auto x = torch::randn({8, 2}), y = torch::randn({8, 1});
  y[0][0] = std::nan("");
  auto stop = std::make_shared<C::TerminateOnNaN>();
  int batches = 0;
  auto count = std::make_shared<C::LambdaCallback>();
  count->on_train_batch_end_fn = [&](int64_t, L::training::Logs&) { ++batches; };
  auto h = model->fit(x, y, L::FitOptions().epochs(5).batch_size(2).shuffle(false).verbose(0).callbacks({stop, count}));
  REQUIRE(h.epoch.size() == 1);
  REQUIRE(batches == 1);
}

TEST_CASE("LambdaCallback calls its functions and LearningRateScheduler sets the rate per epoch", "[callbacks]") {
  auto model = small_model();
  std::vector<std::string> calls;
  auto cb = std::make_shared<C::LambdaCallback>();
  cb->on_train_begin_fn = [&](L::training::Logs&) { calls.push_back("train_begin"); };
  cb->on_epoch_begin_fn = [&](int64_t e, L::training::Logs&) { calls.push_back("epoch_begin " + std::to_string(e)); };
  cb->on_epoch_end_fn = [&](int64_t e, L::training::Logs& l) {
    calls.push_back("epoch_end " + std::to_string(e) + (l.count("loss") ? " loss" : ""));
  };
  cb->on_train_end_fn = [&](L::training::Logs&) { calls.push_back("train_end"); };
  std::vector<double> seen;
  auto sched = std::make_shared<C::LearningRateScheduler>([&](int64_t epoch, double lr) {
    seen.push_back(lr);
    return epoch < 1 ? lr : lr * 0.5;
  });
  auto h = model->fit(torch::randn({8, 2}), torch::randn({8, 1}),
                      L::FitOptions().epochs(3).verbose(0).callbacks({cb, sched}));
  REQUIRE(calls == std::vector<std::string>{"train_begin", "epoch_begin 0", "epoch_end 0 loss", "epoch_begin 1",
                                            "epoch_end 1 loss", "epoch_begin 2", "epoch_end 2 loss", "train_end"});
  require_close(seen, {0.1, 0.1, 0.05});
  require_close(h.history.at("learning_rate"), {0.1, 0.05, 0.025});
  REQUIRE(model->trainer().optimizer().learning_rate() == Approx(0.025));
  LIGHTER_REQUIRE_THROWS_WITH(C::LearningRateScheduler(nullptr), "needs a schedule function");
  auto bad = std::make_shared<C::LearningRateScheduler>([](int64_t, double) { return -1.0; });
  LIGHTER_REQUIRE_THROWS_WITH(model->fit(torch::randn({4, 2}), torch::randn({4, 1}),
                                         L::FitOptions().epochs(1).verbose(0).callbacks({bad})),
                              "expected a finite rate >= 0");
}

TEST_CASE("ModelCheckpoint fills Python format templates as str.format does", "[callbacks]") {
  using C::detail::format_filepath;
  L::training::Logs logs{{"loss", 1.0}, {"val_loss", 0.12345}, {"acc", 0.5}, {"big", 12345.678}, {"neg", -0.25}};
  REQUIRE(format_filepath("ckpt-{epoch:02d}-{val_loss:.3f}", 3, std::nullopt, logs) == "ckpt-03-0.123");
  REQUIRE(format_filepath("{epoch}/{loss}/{neg}/{val_loss}", 12, std::nullopt, logs) == "12/1.0/-0.25/0.12345");
  REQUIRE(format_filepath("{big:.2e}|{acc:.1%}|{loss:+.1f}|{neg:.1f}|{loss:g}", 1, std::nullopt, logs) ==
          "1.23e+04|50.0%|+1.0|-0.2|1");
  REQUIRE(format_filepath("{epoch:>4}|{epoch:<4}|{epoch:*^5}|{epoch:04}|{neg:07.2f}", 5, std::nullopt, logs) ==
          "   5|5   |**5**|0005|-000.25");
  REQUIRE(format_filepath("{{literal}}-{batch:03d}", 1, 7, logs) == "{literal}-007");
  LIGHTER_REQUIRE_THROWS_WITH(format_filepath("m-{val_acc:.2f}", 1, std::nullopt, logs),
                              "Failed to format this callback filepath: \"m-{val_acc:.2f}\". Reason: 'val_acc' is "
                              "not in the logs (available: epoch, acc, big, loss, neg, val_loss)");
  LIGHTER_REQUIRE_THROWS_WITH(format_filepath("m-{loss:02d}", 1, std::nullopt, logs), "Unknown format code 'd' for float");
  LIGHTER_REQUIRE_THROWS_WITH(format_filepath("m-{batch}", 1, std::nullopt, logs), "'batch' is not in the logs");
  LIGHTER_REQUIRE_THROWS_WITH(format_filepath("m-{epoch", 1, std::nullopt, logs), "unclosed '{'");
}

TEST_CASE("ModelCheckpoint saves every epoch or only the best, and the files reload", "[callbacks]") {
  std::string dir = lighter_test::temp_dir("checkpoint");
  using O = C::ModelCheckpointOptions;
  auto model = small_model();
  auto run = [&](C::ModelCheckpoint& cb, const std::vector<double>& losses) {
    cb.set_model(model.get());
    L::training::Logs logs;
    cb.on_train_begin(logs);
    for (size_t e = 0; e < losses.size(); ++e) {
      fill_state(*model, 10.0 * (e + 1));
      L::training::Logs l{{"loss", 1.0}, {"val_loss", losses[e]}};
      cb.on_epoch_begin(e, l);
      cb.on_epoch_end(e, l);
    }
    cb.on_train_end(logs);
  };
  auto param_value = [](L::models::ModelImpl& m) { return m.parameters()[0].flatten()[0].item<double>(); };
  {
    C::ModelCheckpoint cb(O(dir + "/best/w-{epoch:02d}-{val_loss:.2f}.weights.safetensors").save_best_only(true)
                              .save_weights_only(true));
    run(cb, {1.0, 0.5, 0.7, 0.4, 0.4});
    REQUIRE(fs::exists(dir + "/best/w-01-1.00.weights.safetensors"));
    REQUIRE(fs::exists(dir + "/best/w-02-0.50.weights.safetensors"));
    REQUIRE_FALSE(fs::exists(dir + "/best/w-03-0.70.weights.safetensors"));
    REQUIRE(fs::exists(dir + "/best/w-04-0.40.weights.safetensors"));
    REQUIRE_FALSE(fs::exists(dir + "/best/w-05-0.40.weights.safetensors"));  // equal is no improvement
    REQUIRE(std::distance(fs::directory_iterator(dir + "/best"), fs::directory_iterator()) == 3);
    REQUIRE(cb.best() == 0.4);
    auto fresh = small_model();
    L::load_weights(*fresh, dir + "/best/w-04-0.40.weights.safetensors");
    auto a = C::detail::copy_state(*fresh);
    for (auto& t : a) REQUIRE(torch::equal(t, torch::full_like(t, 40.0)));
  }
  {
    // Every epoch, as model folders; max mode with an initial threshold.
    C::ModelCheckpoint cb(O(dir + "/all/model-{epoch}"));
    run(cb, {1.0, 2.0});
    auto loaded = L::load_model(dir + "/all/model-2");
    REQUIRE(param_value(*loaded) == 20.0);
    REQUIRE(fs::exists(dir + "/all/model-1/model.json"));
    C::ModelCheckpoint maxed(O(dir + "/max.weights.safetensors").monitor("val_loss").mode("max").save_best_only(true)
                                 .save_weights_only(true).initial_value_threshold(1.5));
    run(maxed, {1.0, 2.0, 1.8});
    auto fresh = small_model();
    L::load_weights(*fresh, dir + "/max.weights.safetensors");
    REQUIRE(param_value(*fresh) == 20.0);  // epoch 2 (2.0 > 1.5); epoch 1 did not beat the threshold
  }
  {
    // A missing monitor skips the save (with a warning), as Keras.
    C::ModelCheckpoint cb(O(dir + "/none.weights.safetensors").monitor("val_auc").save_best_only(true)
                              .save_weights_only(true));
    run(cb, {1.0});
    REQUIRE_FALSE(fs::exists(dir + "/none.weights.safetensors"));
  }
  {
    // save_freq in batches: 4 batches per epoch, a save every 2; the batch logs fill {loss}.
    auto cb = std::make_shared<C::ModelCheckpoint>(
        O(dir + "/batches/b-{epoch}-{batch}-{loss:.0f}.weights.safetensors").save_weights_only(true).save_freq(2));
    L::seed_everything(4);
    auto model = small_model();  // fresh weights: the ones filled above would make the loss overflow
    model->fit(torch::randn({8, 2}), torch::randn({8, 1}), L::FitOptions().epochs(2).batch_size(2).verbose(0).callbacks({cb}));
    std::vector<std::string> names;
    for (auto& f : fs::directory_iterator(dir + "/batches")) names.push_back(f.path().filename().string().substr(0, 6));
    std::sort(names.begin(), names.end());
    REQUIRE(names == std::vector<std::string>{"b-1-2-", "b-1-4-", "b-2-2-", "b-2-4-"});
  }
  LIGHTER_REQUIRE_THROWS_WITH(C::ModelCheckpoint(O("w.weights.h5").save_weights_only(true)),
                              "must end in .weights.safetensors");
  LIGHTER_REQUIRE_THROWS_WITH(C::ModelCheckpoint(O("w.safetensors")), "names a model folder");
}

TEST_CASE("callbacks from JSON: round trip, relative paths and errors naming their path", "[callbacks]") {
  json specs = json::parse(R"([
    {"class_name": "EarlyStopping", "config": {"monitor": "val_accuracy", "min_delta": 0.01, "patience": 3,
      "verbose": 0, "mode": "max", "baseline": 0.5, "restore_best_weights": true, "start_from_epoch": 2}},
    {"class_name": "ReduceLROnPlateau", "config": {"monitor": "loss", "factor": 0.5, "patience": 2, "verbose": 1,
      "mode": "min", "min_delta": 0.001, "cooldown": 1, "min_lr": 1e-05}},
    {"class_name": "CSVLogger", "config": {"filename": "/abs/log.csv", "separator": ";", "append": true}},
    {"class_name": "TerminateOnNaN", "config": {}},
    {"class_name": "ModelCheckpoint", "config": {"filepath": "/abs/m-{epoch:02d}.weights.safetensors",
      "monitor": "val_loss", "verbose": 0, "save_best_only": true, "save_weights_only": true, "mode": "auto",
      "save_freq": 5, "initial_value_threshold": null}}
  ])");
  for (size_t i = 0; i < specs.size(); ++i) {
    auto cb = C::from_json(specs[i], "fit.callbacks[" + std::to_string(i) + "]", "/base");
    REQUIRE(C::to_json(*cb) == specs[i]);
  }
  // Defaults, bare names, and relative paths against the base folder.
  auto es = std::dynamic_pointer_cast<C::EarlyStopping>(C::from_json(json::parse(R"({"class_name": "EarlyStopping"})"), "c"));
  REQUIRE(es->options().monitor() == "val_loss");
  REQUIRE(es->options().patience() == 0);
  REQUIRE(std::dynamic_pointer_cast<C::TerminateOnNaN>(C::from_json("TerminateOnNaN", "c")));
  auto csv = std::dynamic_pointer_cast<C::CSVLogger>(
      C::from_json(json::parse(R"({"class_name": "CSVLogger", "config": {"filename": "logs/log.csv"}})"), "c", "/runs/a"));
  REQUIRE(csv->filename() == "/runs/a/logs/log.csv");
  auto ck = std::dynamic_pointer_cast<C::ModelCheckpoint>(C::from_json(
      json::parse(R"({"class_name": "ModelCheckpoint", "config": {"filepath": "ckpt/m-{epoch}", "save_freq": "epoch"}})"),
      "c", "/runs/a"));
  REQUIRE(ck->options().filepath() == "/runs/a/ckpt/m-{epoch}");
  REQUIRE(ck->options().save_freq() == 0);

  auto err = [](const std::string& text) { return C::from_json(json::parse(text), "fit.callbacks[0]", ""); };
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "EarlyStopping", "config": {"patients": 3}})"),
                              "fit.callbacks[0].config.patients");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "EarlyStop"})"),
                              "fit.callbacks[0].class_name: unknown callback 'EarlyStop' (supported: BackupAndRestore, CSVLogger, "
                              "EarlyStopping, LambdaCallback, LearningRateScheduler, ModelCheckpoint, "
                              "ReduceLROnPlateau, TensorBoard, TerminateOnNaN)");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "LearningRateScheduler", "config": {}})"),
                              "fit.callbacks[0].config: LearningRateScheduler takes a C++ function");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "ReduceLROnPlateau", "config": {"factor": 1.5}})"),
                              "fit.callbacks[0].config.factor: ReduceLROnPlateau does not support a factor >= 1.0");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "EarlyStopping", "config": {"patience": -1}})"),
                              "fit.callbacks[0].config.patience: must be >= 0");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "EarlyStopping", "config": {"mode": "best"}})"),
                              "fit.callbacks[0].config.mode");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "CSVLogger", "config": {}})"), "fit.callbacks[0].config");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "ModelCheckpoint", "config": {"filepath": "m", "save_freq": "batch"}})"),
                              "fit.callbacks[0].config.save_freq: expected \"epoch\" or a positive number of batches");
  LIGHTER_REQUIRE_THROWS_WITH(
      err(R"({"class_name": "ModelCheckpoint", "config": {"filepath": "m.h5", "save_weights_only": true}})"),
      "fit.callbacks[0].config.filepath: with save_weights_only=true it must end in .weights.safetensors");
  LIGHTER_REQUIRE_THROWS_WITH(C::to_json(C::LambdaCallback()), "has no JSON form");
}

TEST_CASE("lighter train runs EarlyStopping, CSVLogger and ModelCheckpoint from fit.callbacks", "[callbacks][cli]") {
  std::string dir = lighter_test::temp_dir("cli_callbacks");
  json c = L::read_json_file(lighter_test::source_path("configs/iris.json"));
  std::string data = lighter_test::source_path("examples/data/");
  c["data"]["train"]["path"] = data + "iris_train.csv";
  c["data"]["test"]["path"] = data + "iris_test.csv";
  c["device"] = "cpu";
  c["fit"]["epochs"] = 30;
  c["fit"]["verbose"] = 0;
  // min_delta 10: no epoch after the first counts as an improvement, so patience 2 stops after epoch 3.
  c["fit"]["callbacks"] = json::parse(R"([
    {"class_name": "EarlyStopping", "config": {"monitor": "val_loss", "min_delta": 10, "patience": 2,
                                               "restore_best_weights": true}},
    {"class_name": "CSVLogger", "config": {"filename": "log.csv"}},
    {"class_name": "ModelCheckpoint", "config": {"filepath": "ckpt/w-{epoch:02d}-{val_accuracy:.2f}.weights.safetensors",
                                                 "save_weights_only": true}}
  ])");
  std::string cfg = dir + "/iris.json";
  std::ofstream(cfg) << c.dump(2);
  std::string out;
  for (int round = 0; round < 2; ++round) {  // the second run replaces the first, callback files included
    int rc = lighter_test::run_cli("train " + cfg + " --output-dir " + dir + "/run", &out);
    INFO(out);
    REQUIRE(rc == 0);
    REQUIRE(L::read_json_file(dir + "/run/metrics.json")["epochs"] == 3);
    std::string log = L::read_text_file(dir + "/run/log.csv");
    REQUIRE(log.rfind("epoch,accuracy,loss,val_accuracy,val_loss\n0,", 0) == 0);
    REQUIRE(std::count(log.begin(), log.end(), '\n') == 4);
    std::vector<std::string> names;
    for (auto& f : fs::directory_iterator(dir + "/run/ckpt")) names.push_back(f.path().filename().string().substr(0, 5));
    std::sort(names.begin(), names.end());
    REQUIRE(names == std::vector<std::string>{"w-01-", "w-02-", "w-03-"});
  }
  // restore_best_weights: the saved model is the epoch-1 one, which ModelCheckpoint also saved.
  auto saved = L::load_model(dir + "/run");
  auto first = L::load_model(dir + "/run");
  std::string epoch1;
  for (auto& f : fs::directory_iterator(dir + "/run/ckpt"))
    if (f.path().filename().string().rfind("w-01-", 0) == 0) epoch1 = f.path().string();
  L::load_weights(*first, epoch1);
  auto a = C::detail::copy_state(*saved), b = C::detail::copy_state(*first);
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(torch::equal(a[i], b[i]));

  c["fit"]["callbacks"][0]["config"]["patients"] = 3;
  std::ofstream(cfg) << c.dump(2);
  int rc = lighter_test::run_cli("train " + cfg + " --output-dir " + dir + "/run2", &out);
  REQUIRE(rc != 0);
  REQUIRE(out.find("fit.callbacks[0].config.patients") != std::string::npos);
  REQUIRE_FALSE(fs::exists(dir + "/run2"));
}
