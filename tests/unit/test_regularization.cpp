#include "lighter_test.h"

#include <cmath>

#include "lighter/layers/regularization.h"

namespace L = lighter;
using L::json;
using namespace lighter::layers;
using lighter_test::max_abs_diff;

namespace {
// Builds a layer from its own config and checks the config survives; both are the identity at inference.
void check_round_trip(LayerImpl& layer, const torch::Tensor& x) {
  LayerPtr again = from_json(to_json(layer), "layer");
  REQUIRE(again->class_name() == layer.class_name());
  REQUIRE(again->get_config() == layer.get_config());
  again->eval();
  layer.eval();
  REQUIRE(torch::equal(again->forward(x), x));
  REQUIRE(torch::equal(layer.forward(x), x));
}

json layer_spec(const std::string& cls, json config) { return {{"class_name", cls}, {"config", std::move(config)}}; }
}  // namespace

TEST_CASE("SpatialDropout1D/2D drop whole channels in training only", "[layers][regularization]") {
  torch::manual_seed(0);
  SpatialDropout1D sd1(SpatialDropout1DOptions(0.3).name("sd"));
  auto x = torch::ones({100, 10, 40});
  sd1->train();
  auto y = sd1->forward(x);
  // Per (sample, channel): all steps dropped or all kept and scaled by 1/(1-rate).
  auto first = y.select(1, 0);
  REQUIRE(torch::equal(y, first.unsqueeze(1).expand_as(y)));
  REQUIRE(torch::all((first == 0) | ((first - 1 / 0.7).abs() < 1e-6)).item<bool>());
  double kept = (first > 0).to(torch::kDouble).mean().item<double>();
  REQUIRE(kept == Approx(0.7).margin(0.03));
  REQUIRE(y.mean().item<double>() == Approx(1.0).margin(0.05));  // expectation preserved
  sd1->eval();
  REQUIRE(torch::equal(sd1->forward(x), x));
  check_round_trip(*sd1, x);
  LIGHTER_REQUIRE_THROWS_WITH(sd1->compute_output_shape({-1, 10}), "layer 'sd' (SpatialDropout1D) expects inputs of rank 3");

  SpatialDropout2D last(SpatialDropout2DOptions(0.5));
  SpatialDropout2D first_fmt(SpatialDropout2DOptions(0.5).data_format("channels_first"));
  auto img = torch::ones({50, 4, 5, 20});
  last->train();
  first_fmt->train();
  auto yl = last->forward(img);
  auto corner = yl.select(1, 0).select(1, 0);  // (N, C)
  REQUIRE(torch::equal(yl, corner.view({50, 1, 1, 20}).expand_as(yl)));
  REQUIRE((corner > 0).to(torch::kDouble).mean().item<double>() == Approx(0.5).margin(0.06));
  auto yf = first_fmt->forward(img);  // channels are axis 1 here: (N, 4) draws shared over 5x20
  auto plane = yf.select(2, 0).select(2, 0);
  REQUIRE(torch::equal(yf, plane.view({50, 4, 1, 1}).expand_as(yf)));
  check_round_trip(*first_fmt, img);
  // A seed makes the masks reproducible.
  SpatialDropout2D a(SpatialDropout2DOptions(0.5).seed(7)), b(SpatialDropout2DOptions(0.5).seed(7));
  a->train();
  b->train();
  torch::rand({3});
  REQUIRE(torch::equal(a->forward(img), b->forward(img)));
  LIGHTER_REQUIRE_THROWS_WITH(from_json(layer_spec("SpatialDropout2D", {{"rate", 1.2}}), "model.layers[4]"),
                              "model.layers[4].config.rate: expected a number in [0, 1), got 1.2");
  LIGHTER_REQUIRE_THROWS_WITH(from_json(layer_spec("SpatialDropout2D", {{"rate", 0.1}, {"data_format", "NCHW"}}), "m"),
                              "m.config.data_format: expected one of channels_last, channels_first");
  LIGHTER_REQUIRE_THROWS_WITH(from_json(layer_spec("SpatialDropout1D", json::object()), "m"), "m.config.rate: required key is missing");
}

TEST_CASE("GaussianNoise and GaussianDropout add and multiply Keras' noise in training only", "[layers][regularization]") {
  torch::manual_seed(1);
  GaussianNoise noise(GaussianNoiseOptions(0.5));
  auto zeros = torch::zeros({40000});
  noise->train();
  auto n = noise->forward(zeros);
  REQUIRE(n.mean().item<double>() == Approx(0.0).margin(0.01));
  REQUIRE(n.std().item<double>() == Approx(0.5).epsilon(0.02));
  check_round_trip(*noise, zeros);
  LIGHTER_REQUIRE_THROWS_WITH(from_json(layer_spec("GaussianNoise", {{"stddev", -1}}), "m"),
                              "m.config.stddev: expected a non-negative number");

  GaussianDropout gd(GaussianDropoutOptions(0.2).seed(3));
  auto ones = torch::ones({40000});
  gd->train();
  auto g = gd->forward(ones);
  // Multiplicative N(1, rate / (1 - rate)).
  REQUIRE(g.mean().item<double>() == Approx(1.0).margin(0.01));
  REQUIRE(g.std().item<double>() == Approx(std::sqrt(0.2 / 0.8)).epsilon(0.02));
  GaussianDropout same(GaussianDropoutOptions(0.2).seed(3));
  same->train();
  REQUIRE(torch::equal(same->forward(ones), g));
  check_round_trip(*gd, ones);
  REQUIRE(gd->get_config()["seed"] == 3);
}

TEST_CASE("AlphaDropout keeps a standardized input standardized (Keras' formula)", "[layers][regularization]") {
  torch::manual_seed(2);
  const double rate = 0.2;
  AlphaDropout ad{AlphaDropoutOptions(rate)};
  auto x = torch::randn({100000});
  ad->train();
  auto y = ad->forward(x);
  const double alpha_p = -1.6732632423543772 * 1.0507009873554805;
  const double a = 1.0 / std::sqrt((1 - rate) * (1 + rate * alpha_p * alpha_p));
  const double b = -a * alpha_p * rate;
  // Each value is either a·x + b (kept) or a·α' + b (dropped).
  auto kept = (y - (a * x + b)).abs() < 1e-5;
  auto dropped = (y - (a * alpha_p + b)).abs() < 1e-5;
  REQUIRE(torch::all(kept | dropped).item<bool>());
  REQUIRE(dropped.to(torch::kDouble).mean().item<double>() == Approx(rate).margin(0.01));
  REQUIRE(y.mean().item<double>() == Approx(0.0).margin(0.02));
  REQUIRE(y.var().item<double>() == Approx(1.0).margin(0.03));
  check_round_trip(*ad, x);
  LIGHTER_REQUIRE_THROWS_WITH(from_json(layer_spec("AlphaDropout", {{"rate", 0.1}, {"noise_shape", {1, 2}}}), "m"),
                              "m.config.noise_shape: noise_shape is not supported yet");
}

TEST_CASE("ActivityRegularization adds l1·Σ|x| + l2·Σx² of its input to the training loss", "[layers][regularization]") {
  ActivityRegularization ar(ActivityRegularizationOptions().l1(0.1).l2(0.01));
  auto x = torch::tensor({{1.0, -2.0}, {3.0, 0.5}}).to(torch::kFloat);
  ar->train();
  REQUIRE(torch::equal(ar->forward(x), x));
  REQUIRE(ar->regularization_loss().item<double>() == Approx(0.1 * 6.5 + 0.01 * (1 + 4 + 9 + 0.25)));
  ar->eval();
  REQUIRE_FALSE(ar->regularization_loss().defined());
  check_round_trip(*ar, x);
  LIGHTER_REQUIRE_THROWS_WITH(from_json(layer_spec("ActivityRegularization", {{"l1", -0.1}}), "m"),
                              "m.config.l1: expected a non-negative number");
  // In a model, the penalty reaches the loss the Trainer minimizes.
  auto model = L::Sequential({Input({2}), ActivityRegularization(ActivityRegularizationOptions().l2(0.5))});
  model->train();
  model->forward(x);
  REQUIRE(model->regularization_loss().item<double>() == Approx(0.5 * 14.25));
}

TEST_CASE("Sequential models with noise layers load from Keras JSON, all are the identity at inference",
          "[layers][regularization]") {
  json spec = json::parse(R"({"class_name": "Sequential", "config": {"name": "s", "layers": [
      {"class_name": "InputLayer", "config": {"batch_shape": [null, 6, 4]}},
      {"class_name": "GaussianNoise", "config": {"name": "gaussian_noise", "trainable": true, "dtype": "float32", "stddev": 0.1, "seed": null}},
      {"class_name": "SpatialDropout1D", "config": {"rate": 0.2, "seed": null, "name": "sd", "dtype": "float32"}},
      {"class_name": "GaussianDropout", "config": {"rate": 0.3, "seed": 4}},
      {"class_name": "AlphaDropout", "config": {"rate": 0.1, "seed": null, "noise_shape": null}},
      {"class_name": "ActivityRegularization", "config": {"l1": 0.01, "l2": 0.0}},
      {"class_name": "Dense", "config": {"units": 2}}]}})");
  auto model = L::models::model_from_json(spec);
  REQUIRE(model->output_shape() == L::Shape{-1, 6, 2});
  REQUIRE(model->count_params().total() == 10);
  auto again = L::models::model_from_json(model->to_json());
  REQUIRE(again->to_json() == model->to_json());
  auto x = torch::randn({3, 6, 4});
  model->eval();
  auto dense = std::dynamic_pointer_cast<DenseImpl>(model->layers().back());
  REQUIRE(max_abs_diff(model->forward(x), dense->forward(x)) < 1e-6);
  model->train();
  REQUIRE(max_abs_diff(model->forward(x), dense->forward(x)) > 1e-3);
}
