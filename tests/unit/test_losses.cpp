#include "lighter_test.h"

#include <cmath>

#include "lighter/training/losses.h"

namespace losses = lighter::losses;
using lighter::json;

namespace {

torch::Tensor t2(std::vector<std::vector<double>> rows) {
  std::vector<torch::Tensor> out;
  for (auto& r : rows) out.push_back(torch::tensor(r, torch::kFloat));
  return torch::stack(out);
}

torch::Tensor t1(std::vector<double> v) { return torch::tensor(v, torch::kFloat); }

double value(const torch::Tensor& t) { return t.item<double>(); }

}  // namespace

TEST_CASE("regression losses match hand computations", "[losses]") {
  auto pred = t2({{1, 2}, {3, 4}});
  auto truth = t2({{0, 2}, {1, 1}});

  losses::MeanSquaredError mse;
  // per sample: ((1-0)^2 + 0) / 2 = 0.5, ((3-1)^2 + (4-1)^2) / 2 = 6.5
  REQUIRE(lighter_test::max_abs_diff(mse.per_sample(pred, truth), t1({0.5, 6.5})) < 1e-6);
  REQUIRE(value(mse(pred, truth)) == Approx(3.5));
  // sum_over_batch_size with weights: (0.5*2 + 6.5*0.5) / 2
  REQUIRE(value(mse(pred, truth, t1({2.0, 0.5}))) == Approx(2.125));
  REQUIRE(value(losses::MeanSquaredError("sum")(pred, truth)) == Approx(7.0));

  losses::MeanAbsoluteError mae;
  // (1 + 0) / 2 = 0.5, (2 + 3) / 2 = 2.5
  REQUIRE(value(mae(pred, truth)) == Approx(1.5));

  losses::MeanAbsolutePercentageError mape;
  // 100 * |2-1|/2 = 50, 100 * |4-5|/4 = 25; a zero target divides by 1e-7
  REQUIRE(value(mape(t2({{1}, {5}}), t2({{2}, {4}}))) == Approx(37.5));
  REQUIRE(value(mape(t2({{1e-7}}), t2({{0}}))) == Approx(100.0).epsilon(1e-4));

  // errors 0.5 and 2: delta 1 -> 0.5*0.25 = 0.125 and 1*2 - 0.5 = 1.5; delta 2 -> 0.125 and 0.5*4 = 2
  REQUIRE(value(losses::Huber()(t2({{1.5, 3}}), t2({{1, 1}}))) == Approx((0.125 + 1.5) / 2));
  REQUIRE(value(losses::Huber(2.0)(t2({{1.5, 3}}), t2({{1, 1}}))) == Approx((0.125 + 2.0) / 2));
}

TEST_CASE("log_cosh is log(cosh(x)) and stays finite for large errors", "[losses]") {
  losses::LogCosh lc;
  auto per = lc.per_sample(t2({{0.5}, {-1.0}, {1000.0}, {-1000.0}}), t2({{0}, {0}, {0}, {0}}));
  REQUIRE(per[0].item<double>() == Approx(std::log(std::cosh(0.5))));
  REQUIRE(per[1].item<double>() == Approx(std::log(std::cosh(1.0))));
  // cosh(1000) overflows; log cosh(x) = |x| - log 2 there.
  REQUIRE(per[2].item<double>() == Approx(1000.0 - std::log(2.0)));
  REQUIRE(per[3].item<double>() == Approx(1000.0 - std::log(2.0)));
}

TEST_CASE("binary crossentropy: probabilities, smoothing, logits and extreme logits", "[losses]") {
  auto y = t2({{1}, {0}});
  auto p = t2({{0.9}, {0.2}});
  losses::BinaryCrossentropy bce;
  REQUIRE(value(bce(p, y)) == Approx((-std::log(0.9) - std::log(0.8)) / 2));

  // label_smoothing 0.2: targets 1 -> 0.9, 0 -> 0.1
  losses::BinaryCrossentropy smooth(false, 0.2);
  double s0 = -(0.9 * std::log(0.9) + 0.1 * std::log(0.1));
  double s1 = -(0.1 * std::log(0.2) + 0.9 * std::log(0.8));
  REQUIRE(value(smooth(p, y)) == Approx((s0 + s1) / 2).epsilon(1e-5));

  // logits agree with probabilities
  auto logits = t2({{2.0}, {-0.5}, {0.3}});
  auto y3 = t2({{1}, {0}, {1}});
  losses::BinaryCrossentropy from_logits(true);
  REQUIRE(value(from_logits(logits, y3)) == Approx(value(bce(torch::sigmoid(logits), y3))).epsilon(1e-5));
  REQUIRE(value(losses::BinaryCrossentropy(true, 0.2)(logits, y3)) ==
          Approx(value(losses::BinaryCrossentropy(false, 0.2)(torch::sigmoid(logits), y3))).epsilon(1e-5));

  // logits of +-1000: right answers cost 0, wrong ones cost 1000, and the gradient is finite
  auto extreme = t2({{1000}, {-1000}, {-1000}, {1000}}).requires_grad_(true);
  auto per = from_logits.per_sample(extreme, t2({{1}, {0}, {1}, {0}}));
  REQUIRE(torch::isfinite(per).all().item<bool>());
  REQUIRE(lighter_test::max_abs_diff(per, t1({0, 0, 1000, 1000})) < 1e-3);
  per.sum().backward();
  REQUIRE(torch::isfinite(extreme.grad()).all().item<bool>());

  // probabilities of exactly 0 and 1 are clipped to [1e-7, 1 - 1e-7]
  auto clipped = bce.per_sample(t2({{0.0}, {1.0}}), t2({{1}, {0}}));
  REQUIRE(torch::isfinite(clipped).all().item<bool>());
  REQUIRE(clipped[0].item<double>() == Approx(-std::log(1e-7)).epsilon(1e-3));

  // [N] targets against [N, 1] predictions are unsqueezed; rank-1 predictions work too
  REQUIRE(value(bce(p, t1({1, 0}))) == Approx(value(bce(p, y))));
  REQUIRE(value(bce(t1({0.9, 0.2}), t1({1, 0}))) == Approx(value(bce(p, y))));
  REQUIRE(bce.fusable_activation() == "sigmoid");
  auto logit_form = bce.with_logits();
  REQUIRE(logit_form);
  REQUIRE(logit_form->get_config()["from_logits"] == true);
  REQUIRE(logit_form->fusable_activation().empty());
}

TEST_CASE("categorical crossentropy: probabilities, smoothing, logits", "[losses]") {
  auto p = t2({{0.7, 0.2, 0.1}, {0.1, 0.3, 0.6}});
  auto y = t2({{1, 0, 0}, {0, 0, 1}});
  losses::CategoricalCrossentropy cce;
  REQUIRE(value(cce(p, y)) == Approx((-std::log(0.7) - std::log(0.6)) / 2));
  // label_smoothing 0.3 with 3 classes: 1 -> 0.7 + 0.1 = 0.8, 0 -> 0.1
  double s0 = -(0.8 * std::log(0.7) + 0.1 * std::log(0.2) + 0.1 * std::log(0.1));
  double s1 = -(0.1 * std::log(0.1) + 0.1 * std::log(0.3) + 0.8 * std::log(0.6));
  REQUIRE(value(losses::CategoricalCrossentropy(false, 0.3)(p, y)) == Approx((s0 + s1) / 2).epsilon(1e-5));

  auto logits = t2({{1.0, -2.0, 0.5}, {0.0, 3.0, -1.0}});
  losses::CategoricalCrossentropy from_logits(true);
  REQUIRE(value(from_logits(logits, y)) == Approx(value(cce(torch::softmax(logits, -1), y))).epsilon(1e-5));

  auto extreme = t2({{1000, -1000, 0}, {1000, -1000, 0}});
  auto per = from_logits.per_sample(extreme, t2({{1, 0, 0}, {0, 1, 0}}));
  REQUIRE(torch::isfinite(per).all().item<bool>());
  REQUIRE(lighter_test::max_abs_diff(per, t1({0, 2000})) < 1e-2);
  // a zero probability is clipped to 1e-7
  REQUIRE(value(cce(t2({{1, 0, 0}}), t2({{0, 1, 0}}))) == Approx(-std::log(1e-7)).epsilon(1e-3));
  REQUIRE(cce.fusable_activation() == "softmax");
  REQUIRE(losses::MeanSquaredError().fusable_activation().empty());
  REQUIRE(losses::MeanSquaredError().with_logits() == nullptr);
}

TEST_CASE("sparse categorical crossentropy: the fused mean equals per_sample's, and bad labels are named", "[losses]") {
  torch::manual_seed(3);
  // Unweighted, unmasked batches take one fused ATen call; its value and gradients are per_sample's mean.
  for (bool logits : {true, false}) {
    losses::SparseCategoricalCrossentropy loss(logits);
    for (auto shape : {std::vector<int64_t>{5, 4}, std::vector<int64_t>{2, 3, 4}}) {
      auto raw = torch::randn(shape);
      auto p = (logits ? raw : torch::softmax(raw, -1)).detach().requires_grad_(true);
      auto q = p.detach().clone().requires_grad_(true);
      std::vector<int64_t> label_shape(shape.begin(), shape.end() - 1);
      auto y = torch::randint(4, label_shape, torch::kLong);
      auto fused = loss(p, y);
      auto reference = loss.per_sample(q, y).mean();
      REQUIRE(value(fused) == Approx(value(reference)).epsilon(1e-6));
      fused.backward();
      reference.backward();
      REQUIRE(lighter_test::max_abs_diff(p.grad(), q.grad()) < 1e-6);
    }
  }
  // A label outside [0, classes) is an error naming it, on the fused path, the weighted path and the masked path;
  // -100 (ATen's default ignore_index) is no exception.
  losses::SparseCategoricalCrossentropy loss(true);
  auto p = torch::randn({3, 4});
  for (int64_t bad : {4, -1, -100}) {
    auto y = torch::tensor(std::vector<int64_t>{0, bad, 1});
    std::string expected = "label " + std::to_string(bad) + " is out of range for 4 classes";
    LIGHTER_REQUIRE_THROWS_WITH(loss(p, y), expected);
    LIGHTER_REQUIRE_THROWS_WITH(loss(p, y, torch::ones({3})), expected);
    LIGHTER_REQUIRE_THROWS_WITH(loss(p, y, {}, torch::ones({3}, torch::kBool)), expected);
  }
}

TEST_CASE("sparse categorical crossentropy: label layouts, sequences and masks", "[losses]") {
  auto p = t2({{0.7, 0.2, 0.1}, {0.1, 0.3, 0.6}});
  double expected = (-std::log(0.7) - std::log(0.6)) / 2;
  losses::SparseCategoricalCrossentropy scce;
  REQUIRE(value(scce(p, torch::tensor({0, 2}, torch::kLong))) == Approx(expected));
  REQUIRE(value(scce(p, torch::tensor({0, 2}, torch::kInt))) == Approx(expected));
  REQUIRE(value(scce(p, t2({{0}, {2}}))) == Approx(expected));

  auto logits = t2({{1.0, -2.0, 0.5}, {0.0, 3.0, -1.0}});
  auto labels = torch::tensor({2, 1});
  losses::SparseCategoricalCrossentropy from_logits(true);
  REQUIRE(value(from_logits(logits, labels)) ==
          Approx(value(scce(torch::softmax(logits, -1), labels))).epsilon(1e-5));
  auto extreme = t2({{1000, -1000, 0}, {-1000, 1000, 0}});
  auto per = from_logits.per_sample(extreme, torch::tensor({0, 0}));
  REQUIRE(torch::isfinite(per).all().item<bool>());
  REQUIRE(lighter_test::max_abs_diff(per, t1({0, 2000})) < 1e-2);

  // Sequences: [N=1, T=3, C=2] -> per position [1, 3]; the mask keeps positions 0 and 1 only.
  auto seq = torch::tensor({0.8, 0.2, 0.4, 0.6, 0.5, 0.5}, torch::kFloat).reshape({1, 3, 2});
  auto seq_labels = torch::tensor({{0, 1, 1}});
  auto values = scce.per_sample(seq, seq_labels);
  REQUIRE(values.sizes() == torch::IntArrayRef({1, 3}));
  auto mask = torch::tensor({{true, true, false}});
  REQUIRE(value(scce(seq, seq_labels, {}, mask)) == Approx((-std::log(0.8) - std::log(0.6)) / 2));
  REQUIRE(value(scce(seq, seq_labels)) == Approx((-std::log(0.8) - std::log(0.6) - std::log(0.5)) / 3));
  // float mask with sample weights: sum(v*w*m) / sum(m)
  auto w = torch::tensor({2.0});
  REQUIRE(value(scce(seq, seq_labels, w, mask.to(torch::kFloat))) ==
          Approx(2 * (-std::log(0.8) - std::log(0.6)) / 2));
  // every position masked: 0, not NaN
  REQUIRE(value(scce(seq, seq_labels, {}, torch::zeros({1, 3}))) == 0.0);

  REQUIRE_THROWS_AS(scce(p, torch::tensor({0, 1, 2})), lighter::ShapeError);
  REQUIRE_THROWS_AS(scce(p, torch::tensor({0, 3})), lighter::DataError);
}

TEST_CASE("kl divergence clips both sides to [1e-7, 1]", "[losses]") {
  losses::KLDivergence kld;
  // 0.5 log(0.5/0.25) + 0.5 log(0.5/0.75)
  REQUIRE(value(kld(t2({{0.25, 0.75}}), t2({{0.5, 0.5}}))) ==
          Approx(0.5 * std::log(2.0) + 0.5 * std::log(0.5 / 0.75)));
  // a zero target term becomes 1e-7 log(1e-7 / 0.5)
  REQUIRE(value(kld(t2({{0.5, 0.5}}), t2({{1, 0}}))) ==
          Approx(std::log(2.0) + 1e-7 * std::log(1e-7 / 0.5)).epsilon(1e-5));
}

TEST_CASE("masks average over valid positions only", "[losses]") {
  losses::MeanSquaredError mse;
  auto pred = t2({{1}, {2}, {4}});
  auto truth = t2({{0}, {0}, {0}});
  // values 1, 4, 16; mask keeps 1 and 16
  REQUIRE(value(mse(pred, truth, {}, torch::tensor({1.0, 0.0, 1.0}))) == Approx(8.5));
  REQUIRE(value(mse(pred, truth, t1({1, 1, 3}), torch::tensor({true, false, true}))) == Approx((1 + 48) / 2.0));
  REQUIRE(value(losses::MeanSquaredError("sum")(pred, truth, {}, torch::tensor({1.0, 0.0, 1.0}))) == Approx(17));
  // gradients reach only valid positions
  auto x = pred.clone().requires_grad_(true);
  mse(x, truth, {}, torch::tensor({1.0, 0.0, 1.0})).backward();
  REQUIRE(x.grad()[1].item<double>() == 0.0);
  REQUIRE(x.grad()[0].item<double>() == Approx(1.0));  // d/dx (x^2 / 2) at 1
}

TEST_CASE("targets are aligned to predictions and mismatches are ShapeErrors", "[losses]") {
  losses::MeanSquaredError mse;
  auto pred = t2({{1}, {2}, {3}});
  auto truth = t2({{0}, {0}, {1}});
  double expected = value(mse(pred, truth));
  REQUIRE(expected == Approx((1 + 4 + 4) / 3.0));
  REQUIRE(value(mse(pred, t1({0, 0, 1}))) == Approx(expected));
  REQUIRE(value(mse(t1({1, 2, 3}), truth)) == Approx(expected));
  // an integer target is cast to the prediction's dtype
  REQUIRE(value(mse(pred, torch::tensor({0, 0, 1}))) == Approx(expected));

  auto wide = torch::zeros({4, 3});
  LIGHTER_REQUIRE_THROWS_WITH(mse(wide, torch::zeros({4})), "target shape [4] does not match prediction shape [4, 3]");
  REQUIRE_THROWS_AS(mse(wide, torch::zeros({3, 3})), lighter::ShapeError);
  REQUIRE_THROWS_AS(losses::CategoricalCrossentropy()(wide, torch::zeros({4, 2})), lighter::ShapeError);
  REQUIRE_THROWS_AS(losses::CategoricalCrossentropy()(torch::zeros({4}), torch::zeros({4})), lighter::ShapeError);
  LIGHTER_REQUIRE_THROWS_WITH(mse(pred, truth, t1({1, 2})), "sample_weight of shape [2]");
}

TEST_CASE("losses::get reads every Keras spelling", "[losses]") {
  for (const char* spelling : {"mse", "MSE", "mean_squared_error", "MeanSquaredError"}) {
    auto loss = losses::get(spelling);
    REQUIRE(loss->class_name() == "MeanSquaredError");
    REQUIRE(loss->name() == "mean_squared_error");
  }
  REQUIRE(losses::get("mae")->class_name() == "MeanAbsoluteError");
  REQUIRE(losses::get("mape")->class_name() == "MeanAbsolutePercentageError");
  REQUIRE(losses::get("huber")->class_name() == "Huber");
  REQUIRE(losses::get("logcosh")->class_name() == "LogCosh");
  REQUIRE(losses::get("log_cosh")->class_name() == "LogCosh");
  REQUIRE(losses::get("kld")->class_name() == "KLDivergence");
  REQUIRE(losses::get("kl_divergence")->name() == "kl_divergence");
  REQUIRE(losses::get("binary_crossentropy")->class_name() == "BinaryCrossentropy");
  REQUIRE(losses::get("categorical_crossentropy")->name() == "categorical_crossentropy");
  REQUIRE(losses::get("SparseCategoricalCrossentropy")->name() == "sparse_categorical_crossentropy");

  // Keras 3 object form, with module/registered_name and the base keys
  auto huber = losses::get(json::parse(R"({"module": "keras.losses", "class_name": "Huber", "registered_name": null,
      "config": {"name": "huber_loss", "reduction": "sum_over_batch_size", "dtype": "float32", "delta": 2.0}})"));
  REQUIRE(huber->get_config()["delta"] == 2.0);
  REQUIRE(value((*huber)(t2({{3}}), t2({{0}}))) == Approx(2 * 3 - 0.5 * 4));
  auto bce = losses::get(json::parse(R"({"class_name": "BinaryCrossentropy",
      "config": {"from_logits": true, "label_smoothing": 0.1, "axis": -1, "reduction": "sum"}})"));
  REQUIRE(bce->get_config() == json::parse(R"({"name": "binary_crossentropy", "reduction": "sum",
      "from_logits": true, "label_smoothing": 0.1, "axis": -1})"));
  // Keras 2 wrote reduction "auto"
  REQUIRE(losses::get(json::parse(R"({"class_name": "MeanSquaredError", "config": {"reduction": "auto"}})"))
              ->reduction() == "sum_over_batch_size");
  REQUIRE(losses::get(json::parse(R"({"class_name": "mse"})"))->class_name() == "MeanSquaredError");
}

TEST_CASE("losses::get errors name the path and list what is supported", "[losses]") {
  LIGHTER_REQUIRE_THROWS_WITH(losses::get("msee", "compile.loss"), "compile.loss: unknown loss 'msee' (supported: ");
  LIGHTER_REQUIRE_THROWS_WITH(losses::get("msee"), "sparse_categorical_crossentropy");
  LIGHTER_REQUIRE_THROWS_WITH(losses::get(json::parse(R"({"class_name": "Huber", "config": {"delt": 2}})"),
                                          "compile.loss"),
                              "compile.loss.config.delt: unknown key");
  LIGHTER_REQUIRE_THROWS_WITH(losses::get(json::parse(R"({"class_name": "Huber", "confg": {}})")), "loss.confg: unknown key");
  LIGHTER_REQUIRE_THROWS_WITH(losses::get(json::parse(R"({"class_name": "Nope"})")), "loss.class_name: unknown loss 'Nope'");
  LIGHTER_REQUIRE_THROWS_WITH(losses::get(json::parse(R"({"class_name": "MeanSquaredError", "config": {"reduction": "none"}})")),
                              "loss.config.reduction: expected one of");
  LIGHTER_REQUIRE_THROWS_WITH(losses::get(json::parse(R"({"class_name": "MeanSquaredError", "config": {"reduction": null}})")),
                              "loss.config.reduction");
  LIGHTER_REQUIRE_THROWS_WITH(losses::get(json::parse(R"({"class_name": "MeanSquaredError", "config": {"dtype": "float16"}})")),
                              "loss.config.dtype");
  LIGHTER_REQUIRE_THROWS_WITH(losses::get(json::parse(R"({"class_name": "CategoricalCrossentropy", "config": {"axis": 1}})")),
                              "loss.config.axis");
  LIGHTER_REQUIRE_THROWS_WITH(
      losses::get(json::parse(R"({"class_name": "BinaryCrossentropy", "config": {"label_smoothing": 2}})")),
      "loss.config.label_smoothing");
  LIGHTER_REQUIRE_THROWS_WITH(
      losses::get(json::parse(R"({"class_name": "SparseCategoricalCrossentropy", "config": {"ignore_class": 0}})")),
      "loss.config.ignore_class");
  LIGHTER_REQUIRE_THROWS_WITH(losses::get(json::parse(R"({"class_name": "Huber", "config": {"delta": -1}})")),
                              "loss.config.delta");
  LIGHTER_REQUIRE_THROWS_WITH(losses::get(json(3)), "loss: expected a loss name");
}

TEST_CASE("every loss round-trips through its config", "[losses]") {
  torch::manual_seed(0);
  auto probs = torch::softmax(torch::randn({6, 4}), -1);
  auto onehot = torch::one_hot(torch::randint(0, 4, {6}), 4).to(torch::kFloat);
  auto labels = torch::randint(0, 4, {6});
  auto weights = torch::rand({6});
  for (const auto& name : losses::registry().names()) {
    INFO(name);
    auto original = losses::get(name);
    json config = losses::serialize(*original);
    auto again = losses::get(config);
    REQUIRE(again->class_name() == original->class_name());
    REQUIRE(again->get_config() == original->get_config());
    bool sparse = original->class_name() == "SparseCategoricalCrossentropy";
    auto target = sparse ? labels : onehot;
    REQUIRE(value((*again)(probs, target, weights)) == Approx(value((*original)(probs, target, weights))));
  }
  // non-default arguments survive too
  auto huber = std::make_shared<losses::Huber>(0.5, "sum", "my_huber");
  auto again = losses::get(losses::serialize(*huber));
  REQUIRE(again->get_config() == huber->get_config());
  REQUIRE(again->config_name() == "my_huber");
  REQUIRE(value((*again)(probs, onehot)) == Approx(value((*huber)(probs, onehot))));
  auto cce = losses::CategoricalCrossentropy(true, 0.25);
  REQUIRE(losses::get(losses::serialize(cce))->get_config() == cce.get_config());
}
