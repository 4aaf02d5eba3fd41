#include "lighter_test.h"

#include <cmath>
#include <functional>
#include <sstream>

#include "lighter/training/optimizers.h"

namespace opt = lighter::optimizers;
using lighter::json;
using lighter_test::max_abs_diff;

namespace {

torch::Tensor vec(std::vector<double> values) { return torch::tensor(values, torch::kDouble); }

const torch::Tensor& start_values() {
  static const torch::Tensor start = vec({0.5, -1.0, 2.0, 0.1});
  return start;
}

// A fixed gradient sequence with mixed signs, a zero and varied magnitudes.
std::vector<torch::Tensor> gradients() {
  return {vec({0.1, -0.2, 0.3, 0.0}), vec({-0.5, 0.4, 0.05, 0.2}), vec({0.3, 0.3, -0.1, -0.4}),
          vec({0.02, -0.7, 0.2, 0.1}), vec({-0.1, 0.1, 0.6, 0.05})};
}

torch::Tensor fresh_parameter() { return start_values().clone().set_requires_grad(true); }

torch::Tensor run_ours(const opt::OptimizerSpec& spec) {
  auto p = fresh_parameter();
  opt::Optimizer optimizer(spec, {p});
  for (const auto& g : gradients()) {
    optimizer.zero_grad();
    p.mutable_grad() = g.clone();
    optimizer.step();
  }
  return p.detach();
}

template <class TorchOptimizer, class Options>
torch::Tensor run_torch(const Options& options) {
  auto p = fresh_parameter();
  TorchOptimizer optimizer(std::vector<torch::Tensor>{p}, options);
  for (const auto& g : gradients()) {
    optimizer.zero_grad();
    p.mutable_grad() = g.clone();
    optimizer.step();
  }
  return p.detach();
}

// Runs ours and the hand-configured torch optimizer and checks they agree (and that they moved at all).
template <class TorchOptimizer, class Options>
void require_same_as_torch(const opt::OptimizerSpec& spec, const Options& options) {
  auto ours = run_ours(spec);
  auto theirs = run_torch<TorchOptimizer>(options);
  INFO(lighter::optimizers::to_json(spec).dump());
  REQUIRE(max_abs_diff(ours, start_values()) > 1e-3);
  REQUIRE(max_abs_diff(ours, theirs) < 1e-6);
}

std::vector<double> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace

TEST_CASE("SGD matches torch::optim::SGD (plain, momentum, nesterov)", "[optimizers]") {
  require_same_as_torch<torch::optim::SGD>(opt::sgd(0.1), torch::optim::SGDOptions(0.1));
  require_same_as_torch<torch::optim::SGD>(opt::sgd(0.1, 0.9), torch::optim::SGDOptions(0.1).momentum(0.9));
  require_same_as_torch<torch::optim::SGD>(opt::sgd(0.05, 0.8, true),
                                           torch::optim::SGDOptions(0.05).momentum(0.8).nesterov(true));
}

TEST_CASE("SGD momentum follows Keras' velocity formula", "[optimizers]") {
  for (bool nesterov : {false, true}) {
    const double lr = 0.1, momentum = 0.9;
    auto p = to_vector(start_values());
    std::vector<double> velocity(p.size(), 0.0);
    for (const auto& gt : gradients()) {
      auto g = to_vector(gt);
      for (size_t i = 0; i < p.size(); ++i) {
        velocity[i] = momentum * velocity[i] - lr * g[i];
        p[i] += nesterov ? momentum * velocity[i] - lr * g[i] : velocity[i];
      }
    }
    REQUIRE(max_abs_diff(run_ours(opt::sgd(lr, momentum, nesterov)), vec(p)) < 1e-9);
  }
}

TEST_CASE("Adam and AdamW match torch::optim", "[optimizers]") {
  using torch::optim::AdamOptions;
  using torch::optim::AdamWOptions;
  require_same_as_torch<torch::optim::Adam>(opt::adam(0.01), AdamOptions(0.01).betas({0.9, 0.999}).eps(1e-7));
  require_same_as_torch<torch::optim::Adam>(opt::adam(0.02, 0.8, 0.99, 1e-5),
                                            AdamOptions(0.02).betas({0.8, 0.99}).eps(1e-5));
  require_same_as_torch<torch::optim::Adam>(opt::adam(0.02, 0.8, 0.99, 1e-7, true),
                                            AdamOptions(0.02).betas({0.8, 0.99}).eps(1e-7).amsgrad(true));
  require_same_as_torch<torch::optim::AdamW>(opt::adamw(0.01),
                                             AdamWOptions(0.01).betas({0.9, 0.999}).eps(1e-7).weight_decay(0.004));
  require_same_as_torch<torch::optim::AdamW>(opt::adamw(0.05, 0.3, 0.85, 0.995, 1e-6, true),
                                             AdamWOptions(0.05).betas({0.85, 0.995}).eps(1e-6).weight_decay(0.3).amsgrad(true));
}

TEST_CASE("RMSprop matches torch::optim::RMSprop (plain, centered, momentum)", "[optimizers]") {
  using torch::optim::RMSpropOptions;
  require_same_as_torch<torch::optim::RMSprop>(opt::rmsprop(0.01), RMSpropOptions(0.01).alpha(0.9).eps(1e-7));
  require_same_as_torch<torch::optim::RMSprop>(opt::rmsprop(0.01, 0.8, 0.0, 1e-6, true),
                                               RMSpropOptions(0.01).alpha(0.8).eps(1e-6).centered(true));
  require_same_as_torch<torch::optim::RMSprop>(opt::rmsprop(0.01, 0.9, 0.5),
                                               RMSpropOptions(0.01).alpha(0.9).eps(1e-7).momentum(0.5));
  require_same_as_torch<torch::optim::RMSprop>(opt::rmsprop(0.01, 0.9, 0.5, 1e-7, true),
                                               RMSpropOptions(0.01).alpha(0.9).eps(1e-7).momentum(0.5).centered(true));
}

TEST_CASE("Adagrad matches torch::optim::Adagrad", "[optimizers]") {
  using torch::optim::AdagradOptions;
  require_same_as_torch<torch::optim::Adagrad>(opt::adagrad(0.1),
                                               AdagradOptions(0.1).initial_accumulator_value(0.1).eps(1e-7));
  require_same_as_torch<torch::optim::Adagrad>(opt::adagrad(0.05, 0.5, 1e-4),
                                               AdagradOptions(0.05).initial_accumulator_value(0.5).eps(1e-4));
}

TEST_CASE("Adamax follows Keras' formula", "[optimizers]") {
  const double lr = 0.02, b1 = 0.8, b2 = 0.95, eps = 1e-6;
  auto p = to_vector(start_values());
  std::vector<double> m(p.size(), 0.0), u(p.size(), 0.0);
  int t = 0;
  for (const auto& gt : gradients()) {
    auto g = to_vector(gt);
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      m[i] += (g[i] - m[i]) * (1 - b1);
      u[i] = std::max(b2 * u[i], std::abs(g[i]));
      p[i] -= lr / (1 - std::pow(b1, t)) * m[i] / (u[i] + eps);
    }
  }
  auto ours = run_ours(opt::adamax(lr, b1, b2, eps));
  REQUIRE(max_abs_diff(ours, start_values()) > 1e-3);
  REQUIRE(max_abs_diff(ours, vec(p)) < 1e-6);
}

TEST_CASE("Nadam follows Keras 3's formula", "[optimizers]") {
  const double lr = 0.02, b1 = 0.85, b2 = 0.99, eps = 1e-6;
  auto p = to_vector(start_values());
  std::vector<double> m(p.size(), 0.0), v(p.size(), 0.0);
  double u_product = 1.0;
  int t = 0;
  for (const auto& gt : gradients()) {
    auto g = to_vector(gt);
    ++t;
    double u_t = b1 * (1 - 0.5 * std::pow(0.96, t));
    double u_t1 = b1 * (1 - 0.5 * std::pow(0.96, t + 1));
    u_product *= u_t;
    double u_product_t1 = u_product * u_t1;
    for (size_t i = 0; i < p.size(); ++i) {
      m[i] += (g[i] - m[i]) * (1 - b1);
      v[i] += (g[i] * g[i] - v[i]) * (1 - b2);
      double m_hat = u_t1 * m[i] / (1 - u_product_t1) + (1 - u_t) * g[i] / (1 - u_product);
      double v_hat = v[i] / (1 - std::pow(b2, t));
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
  auto ours = run_ours(opt::nadam(lr, b1, b2, eps));
  REQUIRE(max_abs_diff(ours, start_values()) > 1e-3);
  REQUIRE(max_abs_diff(ours, vec(p)) < 1e-6);
}

TEST_CASE("Adamax and Nadam state survives torch::save / torch::load", "[optimizers]") {
  for (const auto& spec : {opt::adamax(0.05), opt::nadam(0.05)}) {
    INFO(spec.class_name);
    auto grads = gradients();
    auto a = fresh_parameter();
    opt::Optimizer first(spec, {a});
    for (size_t k = 0; k < 3; ++k) {
      a.mutable_grad() = grads[k].clone();
      first.step();
    }
    std::stringstream stream;
    torch::save(first.torch_optimizer(), stream);

    // A restored copy continues exactly like the original; a fresh one (no state) does not.
    auto b = a.detach().clone().set_requires_grad(true);
    auto c = a.detach().clone().set_requires_grad(true);
    opt::Optimizer restored(spec, {b});
    torch::load(restored.torch_optimizer(), stream);
    opt::Optimizer fresh(spec, {c});
    for (size_t k = 3; k < grads.size(); ++k) {
      for (auto* pair : {&a, &b, &c}) pair->mutable_grad() = grads[k].clone();
      first.step();
      restored.step();
      fresh.step();
    }
    REQUIRE(max_abs_diff(a, b) < 1e-12);
    REQUIRE(max_abs_diff(a, c) > 1e-4);
  }
}

TEST_CASE("clipvalue, clipnorm and global_clipnorm clip like Keras", "[optimizers]") {
  // Two parameters so per-tensor and global norms differ; SGD with lr 0.1 makes the clipped gradient visible.
  auto run = [](const opt::OptimizerSpec& spec) {
    auto a = vec({1.0, 2.0}).set_requires_grad(true);
    auto b = vec({-1.0, 0.5}).set_requires_grad(true);
    opt::Optimizer optimizer(spec, {a, b});
    a.mutable_grad() = vec({3.0, 4.0});   // norm 5
    b.mutable_grad() = vec({0.0, 0.12});  // norm 0.12
    optimizer.step();
    return std::make_pair(a.detach(), b.detach());
  };
  SECTION("clipvalue clamps each element") {
    auto [a, b] = run(opt::sgd(0.1).with("clipvalue", 0.5));
    REQUIRE(max_abs_diff(a, vec({1.0 - 0.1 * 0.5, 2.0 - 0.1 * 0.5})) < 1e-12);
    REQUIRE(max_abs_diff(b, vec({-1.0, 0.5 - 0.1 * 0.12})) < 1e-12);
  }
  SECTION("clipnorm rescales each tensor above the norm") {
    auto [a, b] = run(opt::sgd(0.1).with("clipnorm", 1.0));
    REQUIRE(max_abs_diff(a, vec({1.0 - 0.1 * 0.6, 2.0 - 0.1 * 0.8})) < 1e-12);  // (3, 4) / 5
    REQUIRE(max_abs_diff(b, vec({-1.0, 0.5 - 0.1 * 0.12})) < 1e-12);            // below 1: untouched
  }
  SECTION("global_clipnorm rescales all tensors by their joint norm") {
    double norm = std::sqrt(25.0 + 0.12 * 0.12);
    double scale = 2.0 / norm;
    auto [a, b] = run(opt::sgd(0.1).with("global_clipnorm", 2.0));
    REQUIRE(max_abs_diff(a, vec({1.0 - 0.1 * 3 * scale, 2.0 - 0.1 * 4 * scale})) < 1e-12);
    REQUIRE(max_abs_diff(b, vec({-1.0, 0.5 - 0.1 * 0.12 * scale})) < 1e-12);
    // Under the threshold nothing changes.
    auto [a2, b2] = run(opt::sgd(0.1).with("global_clipnorm", 10.0));
    REQUIRE(max_abs_diff(a2, vec({1.0 - 0.3, 2.0 - 0.4})) < 1e-12);
  }
}

TEST_CASE("weight_decay is applied decoupled before the Adam update, as Keras does", "[optimizers]") {
  const double lr = 0.05, wd = 0.2, b1 = 0.9, b2 = 0.999, eps = 1e-7;
  auto p = to_vector(start_values());
  std::vector<double> m(p.size(), 0.0), v(p.size(), 0.0);
  int t = 0;
  for (const auto& gt : gradients()) {
    auto g = to_vector(gt);
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] -= p[i] * wd * lr;
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      // torch's epsilon placement (see optimizers.h): sqrt(v / (1 - b2^t)) + eps.
      p[i] -= lr / (1 - std::pow(b1, t)) * m[i] / (std::sqrt(v[i] / (1 - std::pow(b2, t))) + eps);
    }
  }
  auto decayed = run_ours(opt::adam(lr).with("weight_decay", wd));
  REQUIRE(max_abs_diff(decayed, vec(p)) < 1e-6);
  REQUIRE(max_abs_diff(decayed, run_ours(opt::adam(lr))) > 1e-3);
  // Keras' Adam with weight_decay is AdamW.
  REQUIRE(max_abs_diff(decayed, run_ours(opt::adamw(lr, wd))) < 1e-9);
}

TEST_CASE("set_learning_rate changes the step size", "[optimizers]") {
  auto p = vec({1.0}).set_requires_grad(true);
  opt::Optimizer optimizer(opt::sgd(0.1), {p});
  REQUIRE(optimizer.learning_rate() == Approx(0.1));
  p.mutable_grad() = vec({1.0});
  optimizer.step();
  REQUIRE(p.item<double>() == Approx(0.9));
  optimizer.set_learning_rate(0.01);
  REQUIRE(optimizer.learning_rate() == Approx(0.01));
  optimizer.step();
  REQUIRE(p.item<double>() == Approx(0.89));

  // Every optimizer, including our own Adamax and Nadam, reports and takes the new rate.
  for (const auto& spec : {opt::adam(), opt::adamw(), opt::rmsprop(), opt::adagrad(), opt::adamax(), opt::nadam()}) {
    auto q = vec({1.0, 2.0}).set_requires_grad(true);
    opt::Optimizer o(spec, {q});
    REQUIRE(o.learning_rate() == Approx(0.001));
    o.set_learning_rate(0.25);
    REQUIRE(o.learning_rate() == Approx(0.25));
    REQUIRE(o.torch_optimizer().param_groups()[0].options().get_lr() == Approx(0.25));
  }
}

TEST_CASE("optimizer names parse in every spelling", "[optimizers]") {
  REQUIRE(opt::from_json("adam") == opt::adam());
  REQUIRE(opt::from_json("Adam") == opt::adam());
  REQUIRE(opt::from_json("ADAM") == opt::adam());
  REQUIRE(opt::from_json("sgd") == opt::sgd());
  REQUIRE(opt::from_json("SGD") == opt::sgd());
  REQUIRE(opt::from_json("rmsprop") == opt::rmsprop());
  REQUIRE(opt::from_json("RMSprop") == opt::rmsprop());
  REQUIRE(opt::from_json("adamw") == opt::adamw());
  REQUIRE(opt::from_json("AdamW") == opt::adamw());
  REQUIRE(opt::from_json("adagrad") == opt::adagrad());
  REQUIRE(opt::from_json("Adamax") == opt::adamax());
  REQUIRE(opt::from_json("nadam") == opt::nadam());
  REQUIRE(opt::from_json(json::parse(R"({"class_name": "SGD", "config": {"learning_rate": 0.1, "momentum": 0.9}})")) ==
          opt::sgd(0.1, 0.9));
  REQUIRE(opt::from_json(json::parse(R"({"class_name": "Nadam"})")) == opt::nadam());

  auto spec = opt::from_json("Adam");
  REQUIRE(spec.class_name == "Adam");
  REQUIRE(spec.config.at("learning_rate").get<double>() == 0.001);
  REQUIRE(spec.config.at("epsilon").get<double>() == 1e-7);
  REQUIRE(spec.config.at("name") == "adam");
  REQUIRE(spec.config.at("clipnorm").is_null());
  REQUIRE(opt::sgd().config.at("learning_rate").get<double>() == 0.01);
  REQUIRE(opt::adamw().config.at("weight_decay").get<double>() == 0.004);
  REQUIRE(opt::adagrad().config.at("initial_accumulator_value").get<double>() == 0.1);
  REQUIRE(opt::rmsprop().config.at("rho").get<double>() == 0.9);
}

TEST_CASE("Keras 3 and Keras 2 optimizer configs are read", "[optimizers]") {
  // As written by Keras 3's model.to_json()/compile config.
  auto keras3 = json::parse(R"({
    "module": "keras.optimizers", "class_name": "Adam", "registered_name": null,
    "config": {"name": "adam", "learning_rate": 0.0010000000474974513, "weight_decay": null, "clipnorm": null,
               "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99,
               "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null,
               "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": false}})");
  auto spec = opt::from_json(keras3);
  REQUIRE(spec.class_name == "Adam");
  REQUIRE(spec.config.at("learning_rate").get<double>() == Approx(0.001));
  REQUIRE(opt::to_json(spec).at("config") == keras3.at("config"));

  // Keras 2.11+ adds jit_compile / is_legacy_optimizer; legacy ones carry decay.
  auto keras2 = json::parse(R"({"class_name": "RMSprop", "config": {"name": "RMSprop", "learning_rate": 0.01,
    "decay": 0.0, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-07, "centered": false, "jit_compile": false,
    "is_legacy_optimizer": false}})");
  auto rms = opt::from_json(keras2);
  REQUIRE(rms.class_name == "RMSprop");
  REQUIRE(rms.config.at("name") == "RMSprop");
  REQUIRE(rms.config.at("learning_rate").get<double>() == 0.01);
  REQUIRE_FALSE(rms.config.contains("decay"));
  REQUIRE_FALSE(rms.config.contains("jit_compile"));
}

TEST_CASE("bad optimizer configs name the JSON path", "[optimizers]") {
  auto parse = [](const char* text) { return opt::from_json(json::parse(text)); };
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "Adam", "config": {"learning_rate": -0.1}})"),
                              "compile.optimizer.config.learning_rate: expected a positive number, got -0.1");
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "Adam", "config": {"learning_rat": 0.1}})"),
                              "compile.optimizer.config.learning_rat: unknown key");
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "SGD", "config": {"amsgrad": true}})"),
                              "compile.optimizer.config.amsgrad: unknown key");
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "Adam", "config": {"beta_1": "high"}})"),
                              "compile.optimizer.config.beta_1: expected a number, got \"high\"");
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "Adam", "config": {"beta_1": 1.5}})"),
                              "compile.optimizer.config.beta_1: expected a number in [0, 1)");
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "SGD", "config": {"nesterov": 1}})"),
                              "compile.optimizer.config.nesterov: expected true or false");
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "Adam", "config": {"clipnorm": 1.0, "clipvalue": 0.5}})"),
                              "compile.optimizer.config.clipvalue: only one of clipnorm, clipvalue and global_clipnorm");
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "Adam", "config": {"clipnorm": -1}})"),
                              "compile.optimizer.config.clipnorm: expected a positive number or null");
  LIGHTER_REQUIRE_THROWS_WITH(
      parse(R"({"class_name": "Adam", "config": {"learning_rate": {"class_name": "ExponentialDecay", "config": {}}}})"),
      "compile.optimizer.config.learning_rate.config.initial_learning_rate: required key is missing");
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "Adam", "config": {"use_ema": true}})"),
                              "compile.optimizer.config.use_ema: use_ema=true (moving average of the weights) is not supported");
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "Adam", "config": {"loss_scale_factor": 128}})"),
                              "compile.optimizer.config.loss_scale_factor: loss_scale_factor is not supported yet");
  REQUIRE(parse(R"({"class_name": "Adam", "config": {"gradient_accumulation_steps": 4}})").config["gradient_accumulation_steps"] == 4);
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "Adam", "config": {"gradient_accumulation_steps": 0}})"),
                              "compile.optimizer.config.gradient_accumulation_steps: expected a positive integer");
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "SGD", "config": {"decay": 0.01}})"),
                              "compile.optimizer.config.decay: Keras 2's learning-rate decay is not supported yet");
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "AdamW", "config": {"weight_decay": null}})"),
                              "compile.optimizer.config.weight_decay: AdamW needs a weight_decay number");
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "Adamm", "config": {}})"),
                              "compile.optimizer.class_name: unknown optimizer 'Adamm' (supported: Adagrad, Adam, AdamW");
  LIGHTER_REQUIRE_THROWS_WITH(opt::from_json("adamm", "fit.opt"), "fit.opt: unknown optimizer 'adamm'");
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "Adam", "config": {}, "extra": 1})"),
                              "compile.optimizer.extra: unknown key");
  LIGHTER_REQUIRE_THROWS_WITH(parse(R"({"class_name": "Adam", "config": []})"),
                              "compile.optimizer.config: expected an object");
  LIGHTER_REQUIRE_THROWS_WITH(opt::from_json(json(3)), "compile.optimizer: expected an optimizer name");
  // The C++ constructors validate too.
  LIGHTER_REQUIRE_THROWS_WITH(opt::adam(-1.0), "optimizer.learning_rate: expected a positive number");
  LIGHTER_REQUIRE_THROWS_WITH(opt::sgd(0.1).with("clipnorm", 1.0).with("global_clipnorm", 1.0),
                              "optimizer.global_clipnorm: only one of");
}

TEST_CASE("optimizer specs round-trip through JSON", "[optimizers]") {
  std::vector<opt::OptimizerSpec> specs = {
      opt::sgd(0.1, 0.9, true),
      opt::adam(0.01, 0.8, 0.99, 1e-6, true).with("clipnorm", 1.5),
      opt::adamw(0.002, 0.05).with("global_clipnorm", 2.0),
      opt::rmsprop(0.005, 0.8, 0.3, 1e-6, true).with("clipvalue", 0.25),
      opt::adagrad(0.05, 0.2, 1e-5).with("weight_decay", 0.01),
      opt::adamax(0.003, 0.85, 0.95, 1e-6).with("name", "my_adamax"),
      opt::nadam(0.004, 0.91, 0.98, 1e-8).with("ema_overwrite_frequency", 10),
  };
  for (const auto& spec : specs) {
    INFO(opt::to_json(spec).dump());
    auto j = opt::to_json(spec);
    REQUIRE(j.at("class_name") == spec.class_name);
    REQUIRE(opt::from_json(j) == spec);
    REQUIRE(opt::from_json(json::parse(j.dump())) == spec);
  }
  REQUIRE(specs[1].config.at("clipnorm").get<double>() == 1.5);
  REQUIRE(specs[1] != opt::adam(0.01, 0.8, 0.99, 1e-6, true));
  // Keras 3's config keys, all present.
  std::set<std::string> keys;
  for (auto it = specs[1].config.begin(); it != specs[1].config.end(); ++it) keys.insert(it.key());
  REQUIRE(keys == std::set<std::string>{"name", "learning_rate", "weight_decay", "clipnorm", "global_clipnorm",
                                        "clipvalue", "use_ema", "ema_momentum", "ema_overwrite_frequency",
                                        "loss_scale_factor", "gradient_accumulation_steps", "beta_1", "beta_2",
                                        "epsilon", "amsgrad"});
}
