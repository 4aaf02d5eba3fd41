#include "lighter_test.h"

#include <filesystem>
#include <fstream>

namespace L = lighter;
using L::json;
using namespace lighter::layers;

namespace {
int64_t count_from_summary(const std::string& summary, const std::string& label) {
  auto pos = summary.find(label);
  REQUIRE(pos != std::string::npos);
  std::string digits;
  for (size_t i = pos + label.size(); i < summary.size() && summary[i] != ' ' && summary[i] != '\n'; ++i)
    if (summary[i] != ',') digits += summary[i];
  return std::stoll(digits);
}
}  // namespace

TEST_CASE("Sequential builds from Input, names layers Keras' way and prints Keras' summary", "[models]") {
  L::Sequential model({Input({4}), Dense(DenseOptions(16).activation("relu")), Dropout(0.2),
                       Dense(DenseOptions(3).activation("softmax"))});
  REQUIRE(model->built());
  auto names = model->layers();
  REQUIRE(names.size() == 3);
  REQUIRE(names[0]->layer_name() == "dense");
  REQUIRE(names[1]->layer_name() == "dropout");
  REQUIRE(names[2]->layer_name() == "dense_1");
  REQUIRE(model->output_shape() == L::Shape{-1, 3});
  REQUIRE(model->output_activation() == "softmax");
  std::string s = model->summary();
  REQUIRE(s.find("dense (Dense)") != std::string::npos);
  REQUIRE(s.find("(None, 16)") != std::string::npos);
  REQUIRE(count_from_summary(s, "Total params: ") == 4 * 16 + 16 + 16 * 3 + 3);
  REQUIRE(count_from_summary(s, "Trainable params: ") == 131);
  REQUIRE(count_from_summary(s, "Non-trainable params: ") == 0);
  auto x = torch::randn({8, 4});
  model->eval();
  auto p = model->forward(x);
  REQUIRE(p.sizes() == torch::IntArrayRef({8, 3}));
  REQUIRE(lighter_test::max_abs_diff(p.sum(1), torch::ones({8})) < 1e-5);
  REQUIRE(lighter_test::max_abs_diff(torch::softmax(model->forward_pre_activation(x), -1), p) < 1e-6);
  REQUIRE_THROWS_AS(model->forward(torch::randn({8, 5})), L::ShapeError);
  // The registered names are the checkpoint keys.
  auto params = model->named_parameters();
  REQUIRE(params.contains("dense.weight"));
  REQUIRE(params.contains("dense_1.bias"));
}

TEST_CASE("Sequential without an input shape builds on first call", "[models]") {
  L::Sequential model({Dense(5), Dense(2)});
  REQUIRE_FALSE(model->built());
  REQUIRE_THROWS_AS(model->summary(), L::ShapeError);
  REQUIRE(model->forward(torch::randn({3, 7})).sizes() == torch::IntArrayRef({3, 2}));
  REQUIRE(model->built());
  REQUIRE(model->count_params().total() == 7 * 5 + 5 + 5 * 2 + 2);
  REQUIRE_THROWS_AS(L::Sequential({Dense(DenseOptions(2).name("a")), Dense(DenseOptions(2).name("a"))}), L::ConfigError);
}

TEST_CASE("model JSON round trip gives the same architecture", "[models]") {
  L::Sequential model({Input({6}), Normalization(), Dense(DenseOptions(8).activation("gelu").kernel_initializer("he_normal")),
                       Dense(DenseOptions(1).activation("sigmoid"))},
                      "round");
  json j = model->to_json();
  auto again = L::models::model_from_json(j);
  REQUIRE(again->to_json() == j);
  REQUIRE(again->count_params().total() == model->count_params().total());
  REQUIRE(again->count_params().non_trainable == 13);
}

TEST_CASE("Keras fixtures whose layers are supported load with Keras' parameter counts", "[models][keras]") {
  if (!lighter_test::have_fixtures()) return;
  json expected = L::read_json_file(lighter_test::fixture_path("keras/expected.json"));
  int loaded = 0, refused = 0;
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    INFO(it.key());
    const json& e = it.value();
    std::string file = lighter_test::fixture_path("keras/" + it.key());
    bool supported = true;
    for (const auto& cls : e["layers"]) supported = supported && registry().contains(cls.get<std::string>());
    if (supported) {
      auto model = L::models::model_from_file(file);
      auto c = model->count_params();
      REQUIRE(c.total() == e["total_params"].get<int64_t>());
      REQUIRE(c.trainable == e["trainable_params"].get<int64_t>());
      REQUIRE(c.non_trainable == e["non_trainable_params"].get<int64_t>());
      const json& shape = e["output_shape"];
      if (!shape.empty() && shape[0].is_array()) {
        // Several outputs: one shape each, in output_layers order.
        REQUIRE(model->output_shapes().size() == shape.size());
        for (size_t i = 0; i < shape.size(); ++i)
          REQUIRE(model->output_shapes()[i] == L::shape_from_json(shape[i], "output_shape"));
      } else {
        REQUIRE(model->output_shapes() == std::vector<L::Shape>{L::shape_from_json(shape, "output_shape")});
      }
      REQUIRE(model->class_name() == (e["kind"] == "Sequential" ? "Sequential" : "Functional"));
      ++loaded;
    } else {
      try {
        L::models::model_from_file(file);
        FAIL("an unsupported model loaded");
      } catch (const L::ConfigError& err) {
        std::string msg = err.what();
        // The message names an unsupported layer of this model (and, for graphs, the Functional class).
        bool names_layer = false;
        for (const auto& cls : e["layers"])
          names_layer = names_layer || (!registry().contains(cls.get<std::string>()) &&
                                        msg.find("'" + cls.get<std::string>() + "'") != std::string::npos);
        INFO(msg);
        REQUIRE(names_layer);
        REQUIRE(msg.find("(supported: ") != std::string::npos);
      }
      ++refused;
    }
  }
  REQUIRE(loaded >= 1);
  REQUIRE(loaded + refused == static_cast<int>(expected.size()));
}

TEST_CASE("Keras JSON: errors name the place", "[models][keras]") {
  json spec = json::parse(R"({"class_name": "Sequential", "config": {"name": "m", "layers": [
      {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 4]}},
      {"class_name": "Dense", "config": {"units": 4}},
      {"class_name": "Dense", "config": {"units": -4}}]}})");
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(spec, "model"),
                              "model.config.layers[2].config.units: expected a positive integer, got -4");
  spec["config"]["layers"][2] = json::parse(R"({"class_name": "LSTMM", "config": {}})");
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(spec, "model"), "model.config.layers[2].class_name: unknown layer 'LSTMM'");
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(json{{"class_name", "Functional"}, {"config", json::object()}}, "model"),
                              "model.config.layers: required key is missing");
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(json{{"class_name", "Graph"}, {"config", json::object()}}, "model"),
                              "unknown model class 'Graph' (supported: Sequential, Functional, Ensemble)");
}

TEST_CASE("Keras fixtures with layers Lighter lacks are refused with an error naming the place", "[models][keras]") {
  if (!lighter_test::have_fixtures()) return;
  json expected = L::read_json_file(lighter_test::fixture_path("keras/unsupported/expected.json"));
  REQUIRE(expected.size() >= 2);
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    INFO(it.key());
    try {
      L::models::model_from_file(lighter_test::fixture_path("keras/unsupported/" + it.key()));
      FAIL("a model with unsupported layers loaded");
    } catch (const L::ConfigError& err) {
      std::string msg = err.what();
      INFO(msg);
      // The file and the JSON path of the first thing that stands in the way: an unknown layer, or an argument
      // (a constraint) that comes before it in the file.
      REQUIRE(msg.find(it.key() + ": config.layers[") != std::string::npos);
      REQUIRE((msg.find("unknown layer '") != std::string::npos || msg.find("is not supported") != std::string::npos));
    }
  }
}
