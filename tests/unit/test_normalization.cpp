#include "lighter_test.h"

#include <cmath>
#include <filesystem>
#include <functional>

#include "lighter/layers/normalization.h"

namespace L = lighter;
using L::json;
using namespace lighter::layers;
using lighter_test::max_abs_diff;

namespace {
// Builds a layer from its own config; the config survives and the copy computes the same output.
void check_round_trip(LayerImpl& layer, const torch::Tensor& x) {
  json spec = to_json(layer);
  LayerPtr again = from_json(spec, "layer");
  REQUIRE(again->class_name() == layer.class_name());
  REQUIRE(again->get_config() == layer.get_config());
  L::Shape s(x.sizes().begin(), x.sizes().end());
  s[0] = -1;
  again->build(s);
  // Same weights (weights are learned, not configured).
  {
    torch::NoGradGuard g;
    auto mine = layer.named_parameters();
    for (auto& p : again->named_parameters()) p.value().copy_(mine[p.key()]);
    auto bufs = layer.named_buffers();
    for (auto& b : again->named_buffers()) b.value().copy_(bufs[b.key()]);
  }
  layer.eval();
  again->eval();
  REQUIRE(max_abs_diff(again->forward(x), layer.forward(x)) < 1e-6);
}

void set_affine(torch::Tensor& gamma, torch::Tensor& beta) {
  torch::NoGradGuard g;
  int64_t n = gamma.numel();
  gamma.copy_(torch::linspace(0.5, 2.0, n).view(gamma.sizes()));
  beta.copy_(torch::linspace(-1.0, 1.0, n).view(beta.sizes()));
}
}  // namespace

TEST_CASE("BatchNormalization: Keras' weights, a training step and its moving statistics by hand", "[layers][norm]") {
  torch::manual_seed(0);
  BatchNormalization bn(BatchNormalizationOptions().name("bn"));
  bn->build({-1, 3});
  // gamma, beta trainable; moving mean and variance non-trainable: 4·C weights, 2·C of them non-trainable.
  REQUIRE(bn->count_params().trainable == 6);
  REQUIRE(bn->count_params().non_trainable == 6);
  REQUIRE(bn->named_parameters().contains("weight"));
  REQUIRE(bn->named_parameters().contains("bias"));
  REQUIRE(bn->named_buffers().contains("running_mean"));
  REQUIRE(bn->named_buffers().contains("running_var"));
  REQUIRE(torch::equal(bn->running_var, torch::ones({3})));
  set_affine(bn->weight, bn->bias);
  auto rm0 = torch::tensor({0.5, -1.0, 2.0}, torch::kFloat), rv0 = torch::tensor({1.5, 0.5, 3.0}, torch::kFloat);
  {
    torch::NoGradGuard g;
    bn->running_mean.copy_(rm0);
    bn->running_var.copy_(rv0);
  }
  auto x = torch::randn({8, 3}) * torch::tensor({1.0, 3.0, 0.5}) + torch::tensor({2.0, -1.0, 0.0});
  bn->train();
  auto y = bn->forward(x);
  auto xd = x.to(torch::kDouble);
  auto mean = xd.mean(0), var = xd.var(0, /*unbiased=*/false);
  auto gamma = bn->weight.detach().to(torch::kDouble), beta = bn->bias.detach().to(torch::kDouble);
  REQUIRE(max_abs_diff(y, (xd - mean) / torch::sqrt(var + 1e-3) * gamma + beta) < 1e-5);
  // Keras: moving = 0.99 · moving + 0.01 · batch statistic, with the biased variance.
  auto expected_mean = 0.99 * rm0.to(torch::kDouble) + 0.01 * mean;
  auto expected_var = 0.99 * rv0.to(torch::kDouble) + 0.01 * var;
  REQUIRE(max_abs_diff(bn->running_mean, expected_mean) < 1e-6);
  REQUIRE(max_abs_diff(bn->running_var, expected_var) < 1e-6);
  // torch's own update (unbiased variance) would differ by 0.01·var/(n-1).
  REQUIRE(max_abs_diff(bn->running_var, 0.99 * rv0.to(torch::kDouble) + 0.01 * xd.var(0, true)) > 1e-4);
  // Gradients reach gamma and beta.
  y.sum().backward();
  REQUIRE(bn->weight.grad().defined());
  REQUIRE(bn->bias.grad().defined());
  // Inference uses the moving statistics and leaves them alone.
  bn->eval();
  auto rm = bn->running_mean.clone(), rv = bn->running_var.clone();
  auto z = bn->forward(x);
  REQUIRE(max_abs_diff(z, (xd - rm.to(torch::kDouble)) / torch::sqrt(rv.to(torch::kDouble) + 1e-3) * gamma + beta) < 1e-5);
  REQUIRE(torch::equal(bn->running_mean, rm));
  REQUIRE(torch::equal(bn->running_var, rv));
  check_round_trip(*bn, x);
}

TEST_CASE("BatchNormalization: channels_last and channels_first give the same numbers", "[layers][norm]") {
  torch::manual_seed(1);
  auto x = torch::randn({4, 5, 6, 3}) * 2 + 1;  // NHWC
  BatchNormalization last(BatchNormalizationOptions().momentum(0.9));
  BatchNormalization first(BatchNormalizationOptions().momentum(0.9).axis(1));
  last->build({-1, 5, 6, 3});
  first->build({-1, 3, 5, 6});
  set_affine(last->weight, last->bias);
  set_affine(first->weight, first->bias);
  auto nchw = x.permute({0, 3, 1, 2}).contiguous();
  last->train();
  first->train();
  auto y_last = last->forward(x);
  auto y_first = first->forward(nchw);
  REQUIRE(y_last.sizes() == x.sizes());
  REQUIRE(max_abs_diff(y_first.permute({0, 2, 3, 1}), y_last) < 1e-5);
  REQUIRE(max_abs_diff(first->running_mean, last->running_mean) < 1e-6);
  REQUIRE(max_abs_diff(first->running_var, last->running_var) < 1e-6);
  // And the same as raw ATen batch_norm in training, with Keras' (biased) variance in the moving average.
  auto rm = torch::zeros({3}), rv = torch::ones({3});
  auto raw = torch::batch_norm(nchw, first->weight, first->bias, rm, rv, true, 0.1, 1e-3, false);
  REQUIRE(max_abs_diff(raw, y_first) < 1e-5);
  auto var_b = nchw.var({0, 2, 3}, false);
  REQUIRE(max_abs_diff(first->running_var, 0.9 * torch::ones({3}) + 0.1 * var_b) < 1e-6);
  last->eval();
  first->eval();
  REQUIRE(max_abs_diff(first->forward(nchw).permute({0, 2, 3, 1}), last->forward(x)) < 1e-5);
  // Any single axis: the middle one of a rank-4 input, and the last of a sequence.
  BatchNormalization middle(BatchNormalizationOptions().momentum(0.9).axis(2));
  middle->build({-1, 5, 3, 6});
  set_affine(middle->weight, middle->bias);
  middle->train();
  auto y_mid = middle->forward(x.permute({0, 1, 3, 2}));
  REQUIRE(max_abs_diff(y_mid.permute({0, 1, 3, 2}), y_last) < 1e-5);
  BatchNormalization seq;
  seq->build({-1, 30, 3});
  set_affine(seq->weight, seq->bias);
  seq->train();
  REQUIRE(max_abs_diff(seq->forward(x.reshape({4, 30, 3})), y_last.reshape({4, 30, 3})) < 1e-5);
}

TEST_CASE("BatchNormalization with trainable=false runs in inference mode even in training", "[layers][norm]") {
  torch::manual_seed(2);
  BatchNormalization bn(BatchNormalizationOptions().trainable(false).input_shape({4}));
  REQUIRE(bn->built());
  REQUIRE(bn->count_params().trainable == 0);
  REQUIRE(bn->count_params().non_trainable == 16);
  {
    torch::NoGradGuard g;
    bn->running_mean.fill_(1.0);
    bn->running_var.fill_(4.0);
  }
  auto x = torch::randn({6, 4});
  bn->train();
  auto y = bn->forward(x);
  REQUIRE(max_abs_diff(y, (x - 1.0) / std::sqrt(4.0 + 1e-3)) < 1e-6);
  REQUIRE(torch::equal(bn->running_mean, torch::full({4}, 1.0)));
  REQUIRE(torch::equal(bn->running_var, torch::full({4}, 4.0)));
  // Unfrozen again, it uses the batch statistics.
  bn->set_trainable(true);
  REQUIRE(bn->count_params().trainable == 8);
  auto z = bn->forward(x);
  REQUIRE(max_abs_diff(z.mean(0), torch::zeros({4})) < 1e-5);
}

TEST_CASE("BatchNormalization: one value per channel, options and regularizers", "[layers][norm]") {
  // A training batch of one sample (ATen refuses it): the variance is 0, so the output is beta, as in Keras.
  BatchNormalization bn(BatchNormalizationOptions().center(true).scale(false));
  bn->build({-1, 2});
  {
    torch::NoGradGuard g;
    bn->bias.copy_(torch::tensor({0.5, -0.5}));
  }
  REQUIRE(bn->count_params().trainable == 2);
  bn->train();
  auto x = torch::tensor({{3.0, -2.0}}).to(torch::kFloat);
  REQUIRE(max_abs_diff(bn->forward(x), torch::tensor({{0.5, -0.5}})) < 1e-6);
  REQUIRE(max_abs_diff(bn->running_mean, torch::tensor({0.03, -0.02})) < 1e-6);
  REQUIRE(max_abs_diff(bn->running_var, torch::tensor({0.99, 0.99})) < 1e-6);
  // No gamma, no beta.
  BatchNormalization plain(BatchNormalizationOptions().center(false).scale(false));
  plain->build({-1, 2});
  REQUIRE(plain->count_params().trainable == 0);
  REQUIRE(plain->count_params().non_trainable == 4);
  // Initializers and the gamma/beta regularizers.
  BatchNormalization reg(BatchNormalizationOptions()
                             .gamma_initializer(L::initializers::constant(2.0))
                             .moving_variance_initializer(L::initializers::constant(3.0))
                             .gamma_regularizer(L::regularizers::l2(0.1))
                             .beta_regularizer(L::regularizers::l1(0.5)));
  reg->build({-1, 4});
  REQUIRE(torch::equal(reg->weight.detach(), torch::full({4}, 2.0)));
  REQUIRE(torch::equal(reg->running_var, torch::full({4}, 3.0)));
  {
    torch::NoGradGuard g;
    reg->bias.fill_(-1.0);
  }
  REQUIRE(reg->regularization_loss().item<double>() == Approx(0.1 * 4 * 4.0 + 0.5 * 4));
  check_round_trip(*reg, torch::randn({3, 4}));
}

TEST_CASE("BatchNormalization: configs and mistakes name their place", "[layers][norm]") {
  // The configs Keras 3 and Keras 2 write.
  json keras3 = json::parse(R"({"module": "keras.layers", "class_name": "BatchNormalization", "config": {
      "name": "batch_normalization", "trainable": true,
      "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null},
      "axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": true, "scale": true,
      "beta_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null},
      "gamma_initializer": {"module": "keras.initializers", "class_name": "Ones", "config": {}, "registered_name": null},
      "moving_mean_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null},
      "moving_variance_initializer": {"module": "keras.initializers", "class_name": "Ones", "config": {}, "registered_name": null},
      "beta_regularizer": null, "gamma_regularizer": null, "beta_constraint": null, "gamma_constraint": null,
      "synchronized": false}, "registered_name": null, "build_config": {"input_shape": [null, 8, 8, 16]}})");
  auto layer = from_json(keras3, "bn");
  layer->build({-1, 8, 8, 16});
  REQUIRE(layer->count_params().total() == 64);
  REQUIRE(layer->count_params().non_trainable == 32);
  json keras2 = json::parse(R"({"class_name": "BatchNormalization", "config": {"name": "bn", "trainable": true,
      "dtype": "float32", "axis": [3], "momentum": 0.9, "epsilon": 1e-5, "center": true, "scale": false,
      "beta_initializer": {"class_name": "Zeros", "config": {}}, "gamma_initializer": {"class_name": "Ones", "config": {}},
      "moving_mean_initializer": {"class_name": "Zeros", "config": {}},
      "moving_variance_initializer": {"class_name": "Ones", "config": {}},
      "beta_regularizer": null, "gamma_regularizer": null, "beta_constraint": null, "gamma_constraint": null}})");
  auto k2 = from_json(keras2, "bn");
  REQUIRE(k2->get_config()["axis"] == 3);
  REQUIRE(k2->get_config()["momentum"] == 0.9);
  k2->build({-1, 4, 4, 5});
  REQUIRE(k2->count_params().total() == 15);

  auto bad = [](json config) { return json{{"class_name", "BatchNormalization"}, {"config", config}}; };
  LIGHTER_REQUIRE_THROWS_WITH(from_json(bad({{"momentum", 1.5}}), "model.layers[3]"),
                              "model.layers[3].config.momentum: expected a number in [0, 1], got 1.5");
  LIGHTER_REQUIRE_THROWS_WITH(from_json(bad({{"epsilon", -1}}), "m"), "m.config.epsilon: expected a non-negative number");
  LIGHTER_REQUIRE_THROWS_WITH(from_json(bad({{"synchronized", true}}), "m"), "m.config.synchronized: synchronized=true");
  LIGHTER_REQUIRE_THROWS_WITH(from_json(bad({{"gamma_constraint", {{"class_name", "NonNeg"}}}}), "m"),
                              "m.config.gamma_constraint: gamma_constraint is not supported yet");
  LIGHTER_REQUIRE_THROWS_WITH(from_json(bad({{"axis", {1, 2}}}), "m"), "m.config.axis: BatchNormalization normalizes over one axis");
  LIGHTER_REQUIRE_THROWS_WITH(from_json(bad({{"gamma_initializer", "onez"}}), "m"),
                              "m.config.gamma_initializer: unknown initializer");
  LIGHTER_REQUIRE_THROWS_WITH(from_json(bad({{"momentm", 0.9}}), "m"), "m.config.momentm: unknown key");
  // Shape mistakes name the layer.
  BatchNormalization bn(BatchNormalizationOptions().axis(3).name("bn"));
  LIGHTER_REQUIRE_THROWS_WITH(bn->build({-1, 4}), "layer 'bn' (BatchNormalization): axis 3 is out of range for inputs of rank 2");
  BatchNormalization zero(BatchNormalizationOptions().axis(0).name("bn0"));
  LIGHTER_REQUIRE_THROWS_WITH(zero->build({-1, 4}), "layer 'bn0' (BatchNormalization): axis 0 is the batch axis");
  BatchNormalization unknown(BatchNormalizationOptions().name("u"));
  LIGHTER_REQUIRE_THROWS_WITH(unknown->build({-1, 5, -1}), "layer 'u' (BatchNormalization) needs a known size on axis 2");
  BatchNormalization built(BatchNormalizationOptions().name("b4"));
  built->build({-1, 4});
  REQUIRE_THROWS_WITH(built->forward(torch::randn({2, 5})), LIGHTER_CONTAINS("layer 'b4' (BatchNormalization) expects 4 features"));
}

TEST_CASE("LayerNormalization normalizes each sample over its axes", "[layers][norm]") {
  torch::manual_seed(3);
  LayerNormalization ln(LayerNormalizationOptions().name("ln"));
  ln->build({-1, 5});
  REQUIRE(ln->count_params().trainable == 10);
  set_affine(ln->weight, ln->bias);
  auto x = torch::randn({4, 5}) * 3 + 2;
  auto g = ln->weight.detach(), b = ln->bias.detach();
  auto expected = (x - x.mean(-1, true)) / torch::sqrt(x.var(-1, false, true) + 1e-3) * g + b;
  REQUIRE(max_abs_diff(ln->forward(x), expected) < 1e-5);
  check_round_trip(*ln, x);

  // Several trailing axes: gamma and beta span them.
  auto x3 = torch::randn({2, 5, 6});
  LayerNormalization two(LayerNormalizationOptions().axis({1, 2}).epsilon(1e-6));
  two->build({-1, 5, 6});
  REQUIRE(two->count_params().trainable == 2 * 30);
  set_affine(two->weight, two->bias);
  auto m = x3.mean({1, 2}, true), v = x3.var({1, 2}, false, true);
  REQUIRE(max_abs_diff(two->forward(x3), (x3 - m) / torch::sqrt(v + 1e-6) * two->weight.detach() + two->bias.detach()) < 1e-5);
  check_round_trip(*two, x3);

  // A non-trailing axis: statistics over axis 1 only, gamma of shape (5) broadcast along it.
  LayerNormalization mid(LayerNormalizationOptions().axis({1}));
  mid->build({-1, 5, 6});
  REQUIRE(mid->count_params().trainable == 10);
  set_affine(mid->weight, mid->bias);
  auto m1 = x3.mean(1, true), v1 = x3.var(1, false, true);
  auto expected_mid = (x3 - m1) / torch::sqrt(v1 + 1e-3) * mid->weight.detach().view({1, 5, 1}) + mid->bias.detach().view({1, 5, 1});
  REQUIRE(max_abs_diff(mid->forward(x3), expected_mid) < 1e-5);

  // rms_scaling (Keras 3): x · rsqrt(var + eps) · gamma, no beta.
  LayerNormalization rms(LayerNormalizationOptions().rms_scaling(true));
  rms->build({-1, 5});
  REQUIRE(rms->count_params().trainable == 5);
  REQUIRE_FALSE(rms->named_parameters().contains("bias"));
  {
    torch::NoGradGuard ng;
    rms->weight.copy_(torch::linspace(1, 2, 5));
  }
  REQUIRE(max_abs_diff(rms->forward(x), x * torch::rsqrt(x.var(-1, false, true) + 1e-3) * torch::linspace(1, 2, 5)) < 1e-5);
  check_round_trip(*rms, x);

  // The Keras 3 config (axis written as a list) and mistakes.
  json keras = json::parse(R"({"class_name": "LayerNormalization", "config": {"name": "layer_normalization_8",
      "trainable": true, "dtype": "float32", "axis": [-1], "epsilon": 1e-06, "center": true, "scale": true,
      "rms_scaling": false, "beta_initializer": {"class_name": "Zeros", "config": {}},
      "gamma_initializer": {"class_name": "Ones", "config": {}}, "beta_regularizer": null, "gamma_regularizer": null,
      "beta_constraint": null, "gamma_constraint": null}})");
  auto k = from_json(keras, "ln");
  k->build({-1, 24, 22});
  REQUIRE(k->count_params().total() == 44);
  LIGHTER_REQUIRE_THROWS_WITH(from_json(json{{"class_name", "LayerNormalization"}, {"config", {{"axis", "last"}}}}, "m"),
                              "m.config.axis: expected an integer or a list of integers, got \"last\"");
  LayerNormalization far(LayerNormalizationOptions().axis({3}).name("far"));
  LIGHTER_REQUIRE_THROWS_WITH(far->build({-1, 5}), "layer 'far' (LayerNormalization): axis 3 is out of range for inputs of rank 2");
  LayerNormalization twice(LayerNormalizationOptions().axis({1, -1}).name("t"));
  LIGHTER_REQUIRE_THROWS_WITH(twice->build({-1, 5}), "layer 't' (LayerNormalization): axis -1 is given twice");
}

TEST_CASE("GroupNormalization normalizes groups of channels, groups must divide the channels", "[layers][norm]") {
  torch::manual_seed(4);
  auto x = torch::randn({2, 4, 4, 6}) * 2 + 1;  // channels_last
  GroupNormalization gn(GroupNormalizationOptions().groups(3).name("gn"));
  gn->build({-1, 4, 4, 6});
  REQUIRE(gn->count_params().trainable == 12);
  set_affine(gn->weight, gn->bias);
  // By hand: channels (0,1), (2,3), (4,5) form the groups; statistics per sample and group.
  auto grouped = x.view({2, 4, 4, 3, 2});
  auto mean = grouped.mean({1, 2, 4}, true), var = grouped.var({1, 2, 4}, false, true);
  auto expected = ((grouped - mean) / torch::sqrt(var + 1e-3)).view({2, 4, 4, 6}) * gn->weight.detach() + gn->bias.detach();
  auto y = gn->forward(x);
  REQUIRE(max_abs_diff(y, expected) < 1e-5);
  check_round_trip(*gn, x);
  // channels_first (axis=1) on permuted data.
  GroupNormalization first(GroupNormalizationOptions().groups(3).axis(1));
  first->build({-1, 6, 4, 4});
  set_affine(first->weight, first->bias);
  REQUIRE(max_abs_diff(first->forward(x.permute({0, 3, 1, 2}).contiguous()).permute({0, 2, 3, 1}), y) < 1e-5);
  // groups=-1: one group per channel (instance normalization).
  GroupNormalization inst(GroupNormalizationOptions().groups(-1).center(false).scale(false));
  inst->build({-1, 4, 4, 6});
  REQUIRE(inst->count_params().total() == 0);
  auto in = (x - x.mean({1, 2}, true)) / torch::sqrt(x.var({1, 2}, false, true) + 1e-3);
  REQUIRE(max_abs_diff(inst->forward(x), in) < 1e-5);
  // Mistakes.
  GroupNormalization four(GroupNormalizationOptions().groups(4).name("g4"));
  LIGHTER_REQUIRE_THROWS_WITH(four->build({-1, 4, 4, 6}),
                              "layer 'g4' (GroupNormalization): groups (4) must divide the number of channels (6)");
  GroupNormalization many(GroupNormalizationOptions().name("g32"));
  LIGHTER_REQUIRE_THROWS_WITH(many->build({-1, 6}),
                              "layer 'g32' (GroupNormalization): groups (32) cannot be more than the number of channels (6)");
  LIGHTER_REQUIRE_THROWS_WITH(from_json(json{{"class_name", "GroupNormalization"}, {"config", {{"groups", 0}}}}, "m.layers[1]"),
                              "m.layers[1].config.groups: expected a positive integer or -1");
}

TEST_CASE("UnitNormalization gives each sample unit L2 norm (Keras 3's formula)", "[layers][norm]") {
  UnitNormalization un;
  auto x = torch::tensor({{3.0, 4.0}, {0.0, 0.0}}).to(torch::kFloat);
  auto y = un->forward(x);
  // x · rsqrt(max(Σx², 1e-12)): a zero vector stays zero.
  REQUIRE(max_abs_diff(y, torch::tensor({{0.6, 0.8}, {0.0, 0.0}})) < 1e-6);
  REQUIRE(un->count_params().total() == 0);
  auto x3 = torch::randn({2, 3, 4});
  UnitNormalization both(UnitNormalizationOptions().axis({1, 2}));
  REQUIRE(max_abs_diff(both->forward(x3), x3 / x3.square().sum({1, 2}, true).sqrt()) < 1e-6);
  both->build({-1, 3, 4});
  check_round_trip(*both, x3);
  REQUIRE(both->get_config()["axis"] == json::array({1, 2}));
  UnitNormalization bad(UnitNormalizationOptions().axis({2}).name("un"));
  LIGHTER_REQUIRE_THROWS_WITH(bad->build({-1, 4}), "layer 'un' (UnitNormalization): axis 2 is out of range");
}

TEST_CASE("Sequential models with normalization layers load from Keras JSON and train their statistics",
          "[layers][norm]") {
  json spec = json::parse(R"({"class_name": "Sequential", "config": {"name": "s", "layers": [
      {"class_name": "InputLayer", "config": {"batch_shape": [null, 6, 4]}},
      {"class_name": "BatchNormalization", "config": {"name": "bn", "axis": -1}},
      {"class_name": "LayerNormalization", "config": {"axis": [-2, -1]}},
      {"class_name": "GroupNormalization", "config": {"groups": 2}},
      {"class_name": "UnitNormalization", "config": {}},
      {"class_name": "Flatten", "config": {}},
      {"class_name": "Dense", "config": {"units": 1}}]}})");
  auto model = L::models::model_from_json(spec);
  // BN 4·4 (8 non-trainable), LN 2·24, GN 2·4, Dense 24+1.
  REQUIRE(model->count_params().total() == 16 + 48 + 8 + 25);
  REQUIRE(model->count_params().non_trainable == 8);
  REQUIRE(model->output_shape() == L::Shape{-1, 1});
  auto again = L::models::model_from_json(model->to_json());
  REQUIRE(again->to_json() == model->to_json());
  // fit moves the moving statistics of a trainable BatchNormalization, not those of a frozen one.
  L::seed_everything(5);
  auto trained = L::Sequential({Input({3}), BatchNormalization(), Dense(1)});
  auto frozen = L::Sequential({Input({3}), BatchNormalization(BatchNormalizationOptions().trainable(false)), Dense(1)});
  auto x = torch::randn({32, 3}) * 3 + 5, y = torch::randn({32, 1});
  for (auto* m : {&trained, &frozen}) {
    (*m)->compile(L::optimizers::sgd(0.01), "mse");
    (*m)->fit(x, y, L::FitOptions().epochs(2).batch_size(8).verbose(0));
  }
  auto bn_trained = std::dynamic_pointer_cast<BatchNormalizationImpl>(trained->layers()[0]);
  auto bn_frozen = std::dynamic_pointer_cast<BatchNormalizationImpl>(frozen->layers()[0]);
  REQUIRE(bn_trained->running_mean.abs().min().item<double>() > 0.1);
  REQUIRE(torch::equal(bn_frozen->running_mean, torch::zeros({3})));
  REQUIRE(torch::equal(bn_frozen->running_var, torch::ones({3})));
}

TEST_CASE("saved models keep BatchNormalization's moving statistics under torch's names", "[layers][norm]") {
  L::seed_everything(6);
  auto model = L::Sequential({Input({2, 3}), BatchNormalization(), LayerNormalization(), Flatten(), Dense(2)});
  model->compile(L::optimizers::sgd(0.01), "mse");
  auto x = torch::randn({16, 2, 3}) * 2 + 3, y = torch::randn({16, 2});
  model->fit(x, y, L::FitOptions().epochs(1).batch_size(4).verbose(0));
  auto buffers = model->named_buffers();
  REQUIRE(buffers.contains("batch_normalization.running_mean"));
  REQUIRE(buffers.contains("batch_normalization.running_var"));
  REQUIRE(model->named_parameters().contains("layer_normalization.weight"));
  std::string dir = lighter_test::temp_dir("norm_model");
  L::save_model(*model, dir);
  auto again = L::load_model(dir);
  model->eval();
  again->eval();
  REQUIRE(max_abs_diff(again->forward(x), model->forward(x)) < 1e-6);
  auto bn = std::dynamic_pointer_cast<BatchNormalizationImpl>(again->layers()[0]);
  REQUIRE(torch::equal(bn->running_var, buffers["batch_normalization.running_var"]));
}

TEST_CASE("the layer configs in the Keras fixtures load", "[layers][norm][reshape][keras]") {
  if (!lighter_test::have_fixtures()) {
    WARN("no fixtures beside the checkout: skipped");
    return;
  }
  const std::vector<std::string> mine = {"BatchNormalization", "LayerNormalization", "GroupNormalization",
                                         "UnitNormalization", "Reshape", "Permute", "RepeatVector", "UpSampling1D",
                                         "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D",
                                         "Rescaling", "Resizing", "SpatialDropout1D", "SpatialDropout2D",
                                         "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization"};
  int found = 0;
  std::function<void(const json&, const std::string&)> walk = [&](const json& j, const std::string& path) {
    if (j.is_object()) {
      auto cls = j.find("class_name");
      if (cls != j.end() && cls->is_string() && j.contains("config") &&
          std::find(mine.begin(), mine.end(), cls->get<std::string>()) != mine.end()) {
        INFO(path);
        // Keras 3 may mark a shared DTypePolicy with shared_object_id: loaded as it is.
        const json& spec = j;
        REQUIRE_NOTHROW(from_json(spec, path));
        ++found;
      }
      for (auto it = j.begin(); it != j.end(); ++it) walk(it.value(), path + "." + it.key());
    } else if (j.is_array()) {
      for (size_t i = 0; i < j.size(); ++i) walk(j[i], path + "[" + std::to_string(i) + "]");
    }
  };
  for (const auto& entry : std::filesystem::recursive_directory_iterator(lighter_test::fixture_path("keras"))) {
    if (entry.path().extension() != ".json" || entry.path().filename() == "expected.json") continue;
    walk(L::read_json_file(entry.path().string()), entry.path().filename().string());
  }
  REQUIRE(found >= 8);  // BatchNormalization, LayerNormalization and Reshape layers of several models
}
