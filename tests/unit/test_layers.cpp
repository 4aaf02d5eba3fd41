#include "lighter_test.h"

#include <cmath>

namespace L = lighter;
using L::json;
using namespace lighter::layers;

namespace {
// Builds a layer from its own get_config and checks the config survives unchanged.
void check_round_trip(const LayerImpl& layer) {
  json spec = to_json(layer);
  LayerPtr again = from_json(spec, "layer");
  REQUIRE(again->class_name() == layer.class_name());
  REQUIRE(again->get_config() == layer.get_config());
}
}  // namespace

TEST_CASE("Dense computes activation(x W^T + b) with Keras' shapes and counts", "[layers]") {
  Dense dense(DenseOptions(3).activation("relu").name("d"));
  dense->build({-1, 4});
  REQUIRE(dense->output_shape() == L::Shape{-1, 3});
  REQUIRE(dense->count_params().trainable == 4 * 3 + 3);
  auto x = torch::randn({5, 4});
  auto expected = torch::relu(torch::matmul(x, dense->weight.t()) + dense->bias);
  REQUIRE(lighter_test::max_abs_diff(dense->forward(x), expected) < 1e-6);
  // Higher-rank inputs apply to the last axis, as in Keras.
  auto x3 = torch::randn({2, 7, 4});
  REQUIRE(dense->forward(x3).sizes() == torch::IntArrayRef({2, 7, 3}));
  REQUIRE(dense->compute_output_shape({-1, 7, 4}) == L::Shape{-1, 7, 3});
  // No bias.
  Dense nobias(DenseOptions(2).use_bias(false));
  nobias->build({-1, 5});
  REQUIRE(nobias->count_params().total() == 10);
  check_round_trip(*dense);
  check_round_trip(*nobias);
  // Wrong input width fails with a message naming the layer.
  REQUIRE_THROWS_WITH(dense->forward(torch::randn({2, 5})), LIGHTER_CONTAINS("layer 'd' (Dense) expects 4"));
}

TEST_CASE("Dense rejects non-positive units and unknown activations", "[layers]") {
  json bad = {{"class_name", "Dense"}, {"config", {{"units", -4}}}};
  LIGHTER_REQUIRE_THROWS_WITH(from_json(bad, "model.layers[2]"),
                              "model.layers[2].config.units: expected a positive integer, got -4");
  json act = {{"class_name", "Dense"}, {"config", {{"units", 4}, {"activation", "relux"}}}};
  LIGHTER_REQUIRE_THROWS_WITH(from_json(act, "m"), "m.config.activation: unknown activation 'relux' (supported:");
  json key = {{"class_name", "Dense"}, {"config", {{"units", 4}, {"unitz", 3}}}};
  LIGHTER_REQUIRE_THROWS_WITH(from_json(key, "m"), "m.config.unitz: unknown key");
  json constraint = {{"class_name", "Dense"}, {"config", {{"units", 4}, {"kernel_constraint", {{"class_name", "MaxNorm"}}}}}};
  LIGHTER_REQUIRE_THROWS_WITH(from_json(constraint, "m"), "m.config.kernel_constraint: kernel_constraint is not supported");
  json unknown = {{"class_name", "Conv7D"}, {"config", json::object()}};
  LIGHTER_REQUIRE_THROWS_WITH(from_json(unknown, "m"), "m.class_name: unknown layer 'Conv7D' (supported: Activation, ");
}

TEST_CASE("activations match the ATen functions and Keras' definitions", "[layers]") {
  auto x = torch::linspace(-4, 4, 33);
  std::vector<std::pair<std::string, torch::Tensor>> cases = {
      {"relu", torch::relu(x)},
      {"sigmoid", torch::sigmoid(x)},
      {"tanh", torch::tanh(x)},
      {"softmax", torch::softmax(x, -1)},
      {"log_softmax", torch::log_softmax(x, -1)},
      {"gelu", 0.5 * x * (1 + torch::erf(x / std::sqrt(2.0)))},
      {"elu", torch::where(x > 0, x, torch::exp(x) - 1)},
      {"selu", 1.0507009873554805 * torch::where(x > 0, x, 1.6732632423543772 * (torch::exp(x) - 1))},
      {"silu", x * torch::sigmoid(x)},
      {"swish", x * torch::sigmoid(x)},
      {"softplus", torch::log1p(torch::exp(x))},
      {"softsign", x / (1 + x.abs())},
      {"leaky_relu", torch::where(x > 0, x, 0.2 * x)},
      {"hard_sigmoid", torch::clamp((x + 3) / 6, 0, 1)},
      {"exponential", torch::exp(x)},
      {"linear", x}};
  for (const auto& [name, expected] : cases) {
    INFO(name);
    REQUIRE(lighter_test::max_abs_diff(L::activations::get(name)(x), expected) < 1e-5);
    Activation layer(name);
    REQUIRE(lighter_test::max_abs_diff(layer->forward(x.view({1, -1})), expected.view({1, -1})) < 1e-5);
  }
  check_round_trip(*Activation("relu"));
}

TEST_CASE("initializers follow Keras' distributions", "[layers]") {
  auto t = torch::empty({400, 300});
  L::initializers::apply(t, "glorot_uniform", 300, 400);
  double limit = std::sqrt(6.0 / 700);
  REQUIRE(t.abs().max().item<double>() <= limit);
  REQUIRE(t.abs().max().item<double>() > 0.95 * limit);
  L::initializers::apply(t, "he_normal", 300, 400);
  // Truncated at two standard deviations, with the variance restored to 2 / fan_in.
  REQUIRE(t.std().item<double>() == Approx(std::sqrt(2.0 / 300)).epsilon(0.03));
  REQUIRE(t.abs().max().item<double>() <= 2 * std::sqrt(2.0 / 300) / 0.87962566103423978 + 1e-6);
  L::initializers::apply(t, "lecun_uniform", 300, 400);
  REQUIRE(t.abs().max().item<double>() <= std::sqrt(3.0 / 300));
  L::initializers::apply(t, L::initializers::constant(0.5), 1, 1);
  REQUIRE(torch::all(t == 0.5).item<bool>());
  L::initializers::apply(t, "ones", 1, 1);
  REQUIRE(torch::all(t == 1).item<bool>());
  L::initializers::apply(t, L::initializers::random_normal(1.0, 0.1), 1, 1);
  REQUIRE(t.mean().item<double>() == Approx(1.0).epsilon(0.01));
  L::initializers::apply(t, "truncated_normal", 1, 1);
  REQUIRE(t.abs().max().item<double>() <= 0.1 + 1e-6);
  auto q = torch::empty({6, 4});
  L::initializers::apply(q, "orthogonal", 4, 6);
  REQUIRE(lighter_test::max_abs_diff(torch::matmul(q.t(), q), torch::eye(4)) < 1e-5);
  // A seed makes an initializer reproducible regardless of the global generator.
  json seeded = {{"class_name", "GlorotUniform"}, {"config", {{"seed", 7}}}};
  auto a = torch::empty({3, 3}), b = torch::empty({3, 3});
  L::initializers::apply(a, seeded, 3, 3);
  torch::rand({10});
  L::initializers::apply(b, seeded, 3, 3);
  REQUIRE(torch::equal(a, b));
  json vs = L::initializers::variance_scaling(2.0, "fan_out", "uniform");
  L::initializers::apply(t, vs, 300, 400);
  REQUIRE(t.abs().max().item<double>() <= std::sqrt(3.0 * 2.0 / 400));
  LIGHTER_REQUIRE_THROWS_WITH(L::initializers::normalize("glorot_uniformm", "k"), "k: unknown initializer");
  LIGHTER_REQUIRE_THROWS_WITH(
      L::initializers::normalize(json{{"class_name", "RandomNormal"}, {"config", {{"stddev", -1}}}}, "k"),
      "k.config.stddev: expected a non-negative number");
  LIGHTER_REQUIRE_THROWS_WITH(
      L::initializers::normalize(json{{"class_name", "RandomUniform"}, {"config", {{"minval", 1}, {"maxval", 0}}}}, "k"),
      "k.config.maxval: maxval must not be below minval");
  REQUIRE(L::initializers::normalize(json{{"class_name", "OrthogonalInitializer"}, {"config", {{"gain", 1.0}}}})["class_name"] ==
          "Orthogonal");
  LIGHTER_REQUIRE_THROWS_WITH(L::initializers::normalize(json{{"class_name", "RandomNormal"}, {"config", {{"sd", 1}}}}, "k"),
                              "k.config.sd: unknown key");
}

TEST_CASE("regularizers add Keras' penalties to the loss", "[layers]") {
  Dense dense(DenseOptions(2)
                  .kernel_regularizer(L::regularizers::l1_l2(0.01, 0.1))
                  .bias_regularizer(L::regularizers::l2(0.5))
                  .activity_regularizer("l1"));
  dense->build({-1, 3});
  torch::NoGradGuard g;
  dense->weight.copy_(torch::tensor({{1.0, -2.0, 0.5}, {0.0, 1.0, -1.0}}));
  dense->bias.copy_(torch::tensor({1.0, -1.0}));
  dense->eval();
  double kernel = 0.01 * (1 + 2 + 0.5 + 0 + 1 + 1) + 0.1 * (1 + 4 + 0.25 + 0 + 1 + 1);
  double bias = 0.5 * (1 + 1);
  REQUIRE(dense->regularization_loss().item<double>() == Approx(kernel + bias));
  dense->train();
  auto x = torch::tensor({{1.0, 1.0, 1.0}, {0.0, 0.0, 0.0}});
  auto y = dense->forward(x);  // [[-0.5+1, 0-1], [1, -1]] = [[0.5, -1], [1, -1]]
  double activity = 0.01 * (0.5 + 1 + 1 + 1);  // Keras 3: not divided by the batch size
  REQUIRE(dense->regularization_loss().item<double>() == Approx(kernel + bias + activity));
  // The same penalty when a loss takes the logits (the activation is applied for the penalty only).
  Dense fused(DenseOptions(2).activation("softmax").activity_regularizer("l1"));
  fused->build({-1, 3});
  fused->train();
  auto probs = fused->forward(x);
  double expected = 0.01 * probs.abs().sum().item<double>();
  fused->forward_pre_activation(x);
  REQUIRE(fused->regularization_loss().item<double>() == Approx(expected));
  LIGHTER_REQUIRE_THROWS_WITH(L::regularizers::normalize("l3", "r"), "r: unknown regularizer 'l3'");
  REQUIRE(L::regularizers::normalize(json{{"class_name", "L2"}, {"config", {{"l2", 0.01}}}, {"module", "keras.regularizers"}, {"registered_name", nullptr}}) ==
          L::regularizers::l2(0.01));
}

TEST_CASE("Dropout drops in training only and Flatten follows data_format", "[layers]") {
  Dropout drop(DropoutOptions(0.5).seed(1));
  auto x = torch::ones({1000});
  drop->train();
  auto y = drop->forward(x);
  double kept = (y > 0).sum().item<double>() / 1000;
  REQUIRE(kept == Approx(0.5).margin(0.06));
  REQUIRE(torch::all((y == 0) | (y == 2)).item<bool>());
  drop->eval();
  REQUIRE(torch::equal(drop->forward(x), x));
  check_round_trip(*drop);
  LIGHTER_REQUIRE_THROWS_WITH(from_json(json{{"class_name", "Dropout"}, {"config", {{"rate", 1.5}}}}, "l"),
                              "l.config.rate: expected a number in [0, 1)");

  Flatten flat;
  auto img = torch::arange(24).view({1, 2, 3, 4}).to(torch::kFloat);
  REQUIRE(flat->compute_output_shape({-1, 2, 3, 4}) == L::Shape{-1, 24});
  REQUIRE(torch::equal(flat->forward(img), img.view({1, 24})));
  Flatten first(FlattenOptions().data_format("channels_first"));
  REQUIRE(torch::equal(first->forward(img), img.permute({0, 2, 3, 1}).reshape({1, 24})));
  check_round_trip(*first);
}

TEST_CASE("Normalization adapts mean and variance and counts them as non-trainable", "[layers]") {
  Normalization norm;
  auto data = torch::tensor({{1.0, 10.0}, {3.0, 30.0}, {5.0, 20.0}}).to(torch::kFloat);
  REQUIRE(norm->needs_adapt());
  norm->adapt(data);
  REQUIRE_FALSE(norm->needs_adapt());
  REQUIRE(lighter_test::max_abs_diff(norm->mean, torch::tensor({3.0, 20.0})) < 1e-6);
  REQUIRE(lighter_test::max_abs_diff(norm->variance, torch::tensor({8.0 / 3, 200.0 / 3})) < 1e-4);
  auto out = norm->forward(data);
  REQUIRE(lighter_test::max_abs_diff(out.mean(0), torch::zeros({2})) < 1e-5);
  REQUIRE(lighter_test::max_abs_diff(out.var(0, false), torch::ones({2})) < 1e-4);
  REQUIRE(norm->count_params().non_trainable == 5);  // mean, variance and Keras' sample count
  REQUIRE(norm->count.item<int64_t>() == 3);
  REQUIRE(norm->count_params().trainable == 0);
  // Fixed statistics from the config are constants, not weights.
  Normalization fixed(NormalizationOptions().mean({1.0, 2.0}).variance({4.0, 9.0}).input_shape({2}));
  REQUIRE(lighter_test::max_abs_diff(fixed->forward(torch::tensor({{3.0, 5.0}}).to(torch::kFloat)),
                                     torch::tensor({{1.0, 1.0}})) < 1e-6);
  REQUIRE(fixed->count_params().total() == 0);
  Normalization inverted(NormalizationOptions().mean({1.0}).variance({4.0}).invert(true).input_shape({1}));
  REQUIRE(inverted->forward(torch::tensor({{1.0}}).to(torch::kFloat)).item<double>() == Approx(3.0));
  check_round_trip(*fixed);
}

TEST_CASE("every registered layer round-trips its config", "[layers]") {
  for (const auto& name : registry().names()) {
    INFO(name);
    json config = json::object();
    if (name == "Dense") config = {{"units", 3}, {"activation", "tanh"}, {"kernel_regularizer", "l2"}};
    if (name == "Activation") config = {{"activation", "softmax"}};
    if (name == "Dropout") config = {{"rate", 0.25}};
    if (name == "InputLayer") config = {{"batch_shape", {nullptr, 5}}};
    if (name == "Normalization") config = {{"axis", -1}};
    if (name == "AlphaDropout" || name == "GaussianDropout" || name == "SpatialDropout1D" || name == "SpatialDropout2D")
      config = {{"rate", 0.25}};
    if (name == "GaussianNoise") config = {{"stddev", 0.1}};
    if (name == "Reshape") config = {{"target_shape", {2, -1}}};
    if (name == "Permute") config = {{"dims", {2, 1}}};
    if (name == "RepeatVector") config = {{"n", 3}};
    if (name == "Rescaling") config = {{"scale", 0.5}};
    if (name == "Resizing") config = {{"height", 4}, {"width", 4}};
    if (name.find("Conv") != std::string::npos) {  // convolutions: kernel_size, and filters but for depthwise
      config = {{"kernel_size", 3}, {"padding", "same"}};
      if (name.find("Depthwise") == std::string::npos) config["filters"] = 2;
    }
    if (name == "Embedding") config = {{"input_dim", 10}, {"output_dim", 4}, {"mask_zero", true}};
    if (name == "LSTM" || name == "GRU" || name == "SimpleRNN") config = {{"units", 3}, {"return_sequences", true}};
    if (name == "Dot") config = {{"axes", 2}, {"normalize", true}};
    if (name == "Concatenate") config = {{"axis", 1}};
    if (name == "MultiHeadAttention") config = {{"num_heads", 2}, {"key_dim", 3}, {"value_dim", 4}, {"dropout", 0.1}};
    if (name == "PositionEmbedding") config = {{"sequence_length", 8}};
    if (name == "TokenAndPositionEmbedding")
      config = {{"vocabulary_size", 20}, {"sequence_length", 8}, {"embedding_dim", 4}, {"mask_zero", true}};
    if (name == "TransformerEncoder" || name == "TransformerDecoder")
      config = {{"intermediate_dim", 8}, {"num_heads", 2}, {"dropout", 0.1}, {"normalize_first", true}};
    if (name == "Bidirectional" || name == "TimeDistributed")
      config = {{"layer", {{"class_name", "LSTM"}, {"config", {{"units", 2}}}}}};
    auto layer = from_json({{"class_name", name}, {"config", config}}, "l");
    check_round_trip(*layer);
  }
}

TEST_CASE("trainable false freezes a layer's weights", "[layers]") {
  Dense dense(DenseOptions(4).trainable(false));
  dense->build({-1, 2});
  REQUIRE(dense->count_params().trainable == 0);
  REQUIRE(dense->count_params().non_trainable == 12);
  for (const auto& p : dense->parameters()) REQUIRE_FALSE(p.requires_grad());
}
