#include "lighter_test.h"

#include <torch/cuda.h>

#include "lighter/callbacks/backup_and_restore.h"
#include "lighter/callbacks/lambda_callback.h"
#include "lighter/callbacks/reduce_lr_on_plateau.h"
#include "lighter/callbacks/registry.h"

namespace L = lighter;
namespace C = lighter::callbacks;
using L::json;
using namespace lighter::layers;

namespace {

L::Sequential regression_model(const L::optimizers::OptimizerSpec& opt) {
  auto model = L::Sequential({Input({4}), Dense(DenseOptions(8).activation("tanh")), Dense(2)});
  model->compile(opt, "mse", {"mae"});
  return model;
}

std::vector<torch::Tensor> params_of(L::models::ModelImpl& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

void copy_params(L::models::ModelImpl& from, L::models::ModelImpl& to) {
  torch::NoGradGuard g;
  auto a = from.parameters(), b = to.parameters();
  for (size_t i = 0; i < a.size(); ++i) b[i].copy_(a[i]);
}

double max_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, (a[i] - b[i]).abs().max().item<double>());
  return d;
}

}  // namespace

TEST_CASE("gradient accumulation: k batches of b update like one batch of k*b", "[training]") {
  L::seed_everything(4);
  auto x = torch::randn({64, 4}), y = torch::randn({64, 2});
  auto big = regression_model(L::optimizers::sgd(0.1).with("clipnorm", 0.5));
  auto accumulated = regression_model(L::optimizers::sgd(0.1).with("clipnorm", 0.5).with("gradient_accumulation_steps", 4));
  auto plain = regression_model(L::optimizers::sgd(0.1).with("clipnorm", 0.5));
  copy_params(*big, *accumulated);
  copy_params(*big, *plain);
  big->fit(x, y, L::FitOptions().epochs(3).batch_size(16).shuffle(false).verbose(0));
  accumulated->fit(x, y, L::FitOptions().epochs(3).batch_size(4).shuffle(false).verbose(0));
  plain->fit(x, y, L::FitOptions().epochs(3).batch_size(4).shuffle(false).verbose(0));
  // The mean of four batch means is the mean over their 16 samples; clipping applies to that mean.
  REQUIRE(max_diff(params_of(*big), params_of(*accumulated)) < 1e-5);
  REQUIRE(big->trainer().optimizer().iterations() == 12);
  REQUIRE(accumulated->trainer().optimizer().iterations() == 12);  // updates, not batches
  // Without accumulation the same small batches give another result (so the comparison above can fail).
  REQUIRE(max_diff(params_of(*big), params_of(*plain)) > 1e-3);
  REQUIRE(plain->trainer().optimizer().iterations() == 48);
}

TEST_CASE("steps_per_epoch continues through the data across epochs", "[training]") {
  L::seed_everything(6);
  auto x = torch::randn({100, 4}), y = torch::randn({100, 2});
  auto windowed = regression_model(L::optimizers::sgd(0.05));
  auto reference = regression_model(L::optimizers::sgd(0.05));
  copy_params(*windowed, *reference);
  int64_t batches = 0;
  auto count = std::make_shared<C::LambdaCallback>();
  count->on_train_batch_end_fn = [&](int64_t, L::training::Logs&) { ++batches; };
  auto history = windowed->fit(
      x, y, L::FitOptions().epochs(4).batch_size(10).steps_per_epoch(3).shuffle(false).verbose(0).callbacks({count}));
  REQUIRE(batches == 12);
  REQUIRE(history.epoch.size() == 4);
  // Unshuffled, 12 batches of 10 are rows 0..99 then 0..19 again: one epoch over those 120 rows, same updates.
  auto xs = torch::cat({x, x.narrow(0, 0, 20)}), ys = torch::cat({y, y.narrow(0, 0, 20)});
  reference->fit(xs, ys, L::FitOptions().epochs(1).batch_size(10).shuffle(false).verbose(0));
  REQUIRE(max_diff(params_of(*windowed), params_of(*reference)) == 0.0);
  REQUIRE_THROWS_WITH(windowed->fit(x, y, L::FitOptions().steps_per_epoch(-1).verbose(0)),
                      LIGHTER_CONTAINS("fit.steps_per_epoch"));
}

TEST_CASE("validation_freq and validation_steps", "[training]") {
  L::seed_everything(8);
  auto x = torch::randn({60, 4}), y = torch::randn({60, 2});
  auto vx = torch::randn({30, 4}), vy = torch::randn({30, 2});
  auto model = regression_model(L::optimizers::adam(1e-2));
  auto history = model->fit(x, y, L::FitOptions().epochs(4).batch_size(10).validation_data(std::make_pair(vx, vy))
                                      .validation_freq(2).validation_steps(1).verbose(0));
  // Validated after epochs 2 and 4 only (Keras: (epoch + 1) % validation_freq == 0).
  REQUIRE(history.history.at("loss").size() == 4);
  REQUIRE(history.history.at("val_loss").size() == 2);
  // One validation batch: the first 10 samples.
  auto first = model->evaluate(vx.narrow(0, 0, 10), vy.narrow(0, 0, 10), L::training::EvaluateOptions().batch_size(10));
  REQUIRE(history.last("val_loss") == Approx(first.at("loss")).epsilon(1e-6));
  auto all = model->evaluate(vx, vy, L::training::EvaluateOptions().batch_size(10));
  REQUIRE(history.last("val_loss") != Approx(all.at("loss")).epsilon(1e-6));
  REQUIRE_THROWS_WITH(model->fit(x, y, L::FitOptions().validation_freq(0).verbose(0)),
                      LIGHTER_CONTAINS("fit.validation_freq: expected a positive integer"));
}

TEST_CASE("ReduceLROnPlateau refuses a learning rate that follows a schedule", "[training][callbacks]") {
  auto x = torch::randn({20, 4}), y = torch::randn({20, 2});
  auto model = regression_model(L::optimizers::adam().with_schedule(L::schedules::exponential_decay(1e-2, 10, 0.5)));
  auto cb = std::make_shared<C::ReduceLROnPlateau>();
  LIGHTER_REQUIRE_THROWS_WITH(model->fit(x, y, L::FitOptions().epochs(2).verbose(0).callbacks({cb})),
                              "ReduceLROnPlateau: the optimizer's learning rate follows a schedule (ExponentialDecay)");
}

TEST_CASE("BackupAndRestore from JSON", "[callbacks][checkpoint]") {
  auto cb = C::from_json(json::parse(R"({"class_name": "BackupAndRestore", "config": {"backup_dir": "bk",
      "save_freq": "epoch", "delete_checkpoint": false, "double_checkpoint": true}})"), "fit.callbacks[0]", "/runs/a");
  auto* b = dynamic_cast<C::BackupAndRestore*>(cb.get());
  REQUIRE(b != nullptr);
  REQUIRE(b->options().backup_dir() == "/runs/a/bk");
  REQUIRE(b->options().double_checkpoint());
  REQUIRE_FALSE(b->options().delete_checkpoint());
  REQUIRE(C::to_json(*cb)["config"]["backup_dir"] == "/runs/a/bk");
  LIGHTER_REQUIRE_THROWS_WITH(
      C::from_json(json::parse(R"({"class_name": "BackupAndRestore", "config": {"backup_dir": "bk", "save_freq": 10}})"),
                   "fit.callbacks[0]", ""),
      "fit.callbacks[0].config.save_freq: only \"epoch\" is supported");
  LIGHTER_REQUIRE_THROWS_WITH(
      C::from_json(json::parse(R"({"class_name": "BackupAndRestore", "config": {}})"), "fit.callbacks[0]", ""),
      "fit.callbacks[0].config.backup_dir");
}

namespace {

std::pair<torch::Tensor, torch::Tensor> digits_data() {
  L::data::CsvOptions o;
  o.target("digit").kind(L::data::TargetKind::Classification);
  auto t = L::data::read_csv(lighter_test::source_path("examples/data/digits_train.csv"), o);
  return {t.x / 16.0, t.y};
}

L::Sequential digits_mlp() {
  auto model = L::Sequential({Input({64}), Dense(DenseOptions(64).activation("relu")),
                              Dense(DenseOptions(10).activation("softmax"))});
  model->compile(L::optimizers::adam(3e-3), "sparse_categorical_crossentropy", {"accuracy"});
  return model;
}

}  // namespace

TEST_CASE("mixed_bfloat16 on CPU: bfloat16 compute, float32 weights, learns the digits", "[training][mixed_precision]") {
  auto [x, y] = digits_data();
  L::seed_everything(2);
  auto mixed = digits_mlp();
  auto full = digits_mlp();
  copy_params(*mixed, *full);
  // One step each from the same weights: close, but not equal (the matmuls ran in bfloat16).
  auto one = L::FitOptions().epochs(1).batch_size(1438).shuffle(false).verbose(0);
  mixed->fit(x, y, L::FitOptions(one).dtype_policy(L::training::Precision::mixed_bfloat16));
  full->fit(x, y, one);
  double d = max_diff(params_of(*mixed), params_of(*full));
  REQUIRE(d > 0);
  REQUIRE(d < 1e-2);
  for (const auto& p : mixed->parameters()) REQUIRE(p.scalar_type() == torch::kFloat32);

  // Trained on: bfloat16 reaches what float32 reaches from the same weights.
  copy_params(*mixed, *full);
  auto more = L::FitOptions().epochs(15).batch_size(32).validation_split(0.2).verbose(0);
  auto history = mixed->fit(x, y, L::FitOptions(more).dtype_policy(L::training::Precision::mixed_bfloat16));
  auto reference = full->fit(x, y, more);
  WARN("val_accuracy mixed_bfloat16 " << history.last("val_accuracy") << ", float32 " << reference.last("val_accuracy"));
  REQUIRE(history.last("val_accuracy") > 0.85);
  REQUIRE(history.last("val_accuracy") > reference.last("val_accuracy") - 0.03);
  REQUIRE(std::isfinite(history.last("loss")));
}

TEST_CASE("mixed_float16 runs where autocast allows it, and is refused clearly elsewhere", "[training][mixed_precision]") {
  auto [x, y] = digits_data();
  L::seed_everything(2);
  auto model = digits_mlp();
  auto fit = L::FitOptions().epochs(3).batch_size(64).verbose(0).dtype_policy(L::training::Precision::mixed_float16);
  if (!L::training::autocast_supported(L::training::Precision::mixed_float16, torch::kCPU)) {
    LIGHTER_REQUIRE_THROWS_WITH(model->fit(x, y, fit), "fit.dtype_policy: mixed_float16 is not supported on cpu");
  } else {
    auto history = model->fit(x, y, fit);
    REQUIRE(model->trainer().loss_scaler() != nullptr);
    REQUIRE(history.last("accuracy") > 0.8);
  }
  if (!torch::cuda::is_available()) {
    WARN("CUDA not available; mixed_float16 on CUDA skipped");
    return;
  }
  auto gpu = digits_mlp();
  gpu->to(torch::kCUDA);
  auto history = gpu->fit(x, y, fit.epochs(10));
  REQUIRE(history.last("accuracy") > 0.9);
  REQUIRE(gpu->trainer().loss_scaler()->scale_value() > 1);
  for (const auto& p : gpu->parameters()) REQUIRE(p.scalar_type() == torch::kFloat32);
}

TEST_CASE("lighter train: dtype_policy and deterministic in a config", "[cli][mixed_precision]") {
  std::string cfg = lighter_test::source_path("configs/iris.json"), out;
  std::string dir = lighter_test::temp_dir("dtype_cli");
  REQUIRE(lighter_test::run_cli("train " + cfg + " --set dtype_policy=float16 --output-dir " + dir + "/a", &out) == 1);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("dtype_policy"));
  REQUIRE(lighter_test::run_cli("train " + cfg +
                                    " --set dtype_policy=mixed_bfloat16 --set deterministic=true --set fit.epochs=60"
                                    " --set fit.verbose=0 --output-dir " + dir + "/b",
                                &out) == 0);
  auto metrics = L::read_json_file(dir + "/b/metrics.json");
  REQUIRE(metrics["test"]["accuracy"].get<double>() > 0.8);
}
