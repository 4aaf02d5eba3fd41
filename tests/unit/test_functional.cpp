#include "lighter_test.h"

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

// Functional models: graphs of layer calls built from C++ and from Keras' Functional JSON (Keras 2 and 3 node
// formats), merge layers, masks along the graph, several outputs with their own losses, and the errors of bad
// graphs.

namespace L = lighter;
using namespace lighter::layers;
using L::json;
using L::models::KerasTensor;

namespace {

torch::Tensor dense_by_hand(const std::shared_ptr<LayerImpl>& layer, const torch::Tensor& x) {
  auto p = layer->named_parameters();
  return torch::matmul(x, p["weight"].t()) + p["bias"];
}

}  // namespace

TEST_CASE("Functional model from C++: two inputs, Add, values by hand, summary connections", "[models][functional]") {
  torch::manual_seed(1);
  auto a = L::keras_input({4}, "a");
  auto b = L::keras_input({3}, "b");
  Dense da(5), db(5);
  Dense head(DenseOptions(2).activation("softmax"));
  auto sum = L::call(Add(), {L::call(da, a), L::call(db, b)});
  auto out = L::call(head, sum);
  REQUIRE(out.shape() == L::Shape{-1, 2});
  L::Functional model({a, b}, {out}, "two_inputs");
  REQUIRE(model->num_inputs() == 2);
  REQUIRE(model->input_names() == std::vector<std::string>{"a", "b"});
  REQUIRE(model->output_names() == std::vector<std::string>{head->layer_name()});
  REQUIRE(model->count_params().total() == (4 * 5 + 5) + (3 * 5 + 5) + (5 * 2 + 2));
  REQUIRE(model->layers().size() == 6);  // two InputLayers, three Dense, Add

  auto xa = torch::randn({7, 4}), xb = torch::randn({7, 3});
  model->eval();
  auto y = model->call({xa, xb}).values.at(0);
  auto expected = torch::softmax(dense_by_hand(head.ptr(), dense_by_hand(da.ptr(), xa) + dense_by_hand(db.ptr(), xb)), -1);
  REQUIRE(lighter_test::max_abs_diff(y, expected) < 1e-6);
  // The logits of the softmax output, for the trainer's fused crossentropy.
  auto logits = model->call({xa, xb}, {}, {true}).values.at(0);
  REQUIRE(lighter_test::max_abs_diff(torch::softmax(logits, -1), expected) < 1e-6);
  REQUIRE(lighter_test::max_abs_diff(model->predict(std::vector<torch::Tensor>{xa, xb}, 3).at(0), expected) < 1e-6);

  auto text = model->summary();
  INFO(text);
  REQUIRE(text.find("Connected to") != std::string::npos);
  REQUIRE(text.find(da->layer_name() + "[0][0]") != std::string::npos);
  REQUIRE(text.find("a (InputLayer)") != std::string::npos);
  REQUIRE(text.find("Total params: 57") != std::string::npos);

  // Wrong inputs are refused with what was expected.
  LIGHTER_REQUIRE_THROWS_WITH(model->call({xa}), "takes 2 inputs, got 1");
  LIGHTER_REQUIRE_THROWS_WITH(model->call({xa, torch::randn({7, 4})}), "input 'b' expects shape (None, 3), got (7, 4)");
  LIGHTER_REQUIRE_THROWS_WITH(model->forward(xa), "pass a list of tensors");
}

TEST_CASE("Functional model: JSON and weights round trip, shared layers, Keras 3 node format", "[models][functional]") {
  torch::manual_seed(2);
  auto x = L::keras_input({6}, "features");
  Dense shared(DenseOptions(4).activation("tanh").name("shared"));
  auto h1 = L::call(shared, x);
  auto h2 = L::call(Dense(DenseOptions(4).name("widen")), L::call(shared, L::call(Dense(DenseOptions(6).name("mix")), x)));
  auto joined = L::call(Concatenate(), {h1, h2});
  auto out = L::call(Dense(DenseOptions(1).name("out")), joined);
  L::Functional model({x}, {out}, "shared_graph");
  // The shared layer counts once.
  REQUIRE(model->count_params().total() == (6 * 4 + 4) + (6 * 6 + 6) + (4 * 4 + 4) + (8 + 1));
  auto text = model->summary();
  REQUIRE(text.find("features[0][0], mix[0][0]") != std::string::npos);

  json j = model->to_json();
  REQUIRE(j["class_name"] == "Functional");
  const json& layers = j["config"]["layers"];
  json shared_entry;
  for (const auto& l : layers)
    if (l["name"] == "shared") shared_entry = l;
  REQUIRE(shared_entry["inbound_nodes"].size() == 2);
  REQUIRE(shared_entry["inbound_nodes"][1]["args"][0]["config"]["keras_history"] == json{"mix", 0, 0});

  auto dir = lighter_test::temp_dir("functional_round_trip");
  L::save_model(*model, dir);
  auto again = L::load_model(dir);
  REQUIRE(again->class_name() == "Functional");
  REQUIRE(again->to_json() == j);
  auto input = torch::randn({5, 6});
  REQUIRE(lighter_test::max_abs_diff(again->predict(input), model->predict(input)) == 0.0);
}

TEST_CASE("merge layers compute Keras' formulas", "[layers][merge]") {
  torch::manual_seed(3);
  auto p = torch::randn({4, 3}), q = torch::randn({4, 3}), r = torch::randn({4, 3});
  auto apply_list = [](const LayerRef& ref, const std::vector<torch::Tensor>& xs) {
    std::vector<L::Shape> shapes;
    for (const auto& x : xs) shapes.emplace_back(x.sizes().begin(), x.sizes().end());
    ref.ptr()->build_list(shapes);
    return ref.ptr()->forward_list(xs, {});
  };
  REQUIRE(apply_list(Add(), {p, q, r}).allclose(p + q + r));
  REQUIRE(apply_list(Subtract(), {p, q}).allclose(p - q));
  REQUIRE(apply_list(Multiply(), {p, q, r}).allclose(p * q * r));
  REQUIRE(apply_list(Average(), {p, q, r}).allclose((p + q + r) / 3));
  REQUIRE(apply_list(Maximum(), {p, q, r}).equal(torch::max(torch::max(p, q), r)));
  REQUIRE(apply_list(Minimum(), {p, q, r}).equal(torch::min(torch::min(p, q), r)));
  // Broadcasting a size-1 axis, as Keras allows.
  auto row = torch::randn({4, 1});
  REQUIRE(apply_list(Add(), {p, row}).allclose(p + row));

  auto s = torch::randn({4, 5, 3}), t = torch::randn({4, 2, 3});
  REQUIRE(apply_list(Concatenate(ConcatenateOptions().axis(1)), {s, t}).equal(torch::cat({s, t}, 1)));
  REQUIRE(apply_list(Concatenate(), {p, q}).equal(torch::cat({p, q}, 1)));
  // Dot of vectors: (N, 1) row sums of the product; normalize gives the cosine similarity.
  auto dot = apply_list(Dot(1), {p, q});
  REQUIRE(dot.sizes() == torch::IntArrayRef({4, 1}));
  REQUIRE(dot.allclose((p * q).sum(1, true), 1e-5, 1e-6));
  auto cosine = apply_list(Dot(DotOptions(1).normalize(true)), {p, q});
  REQUIRE(cosine.allclose(torch::cosine_similarity(p, q, 1).unsqueeze(1), 1e-5, 1e-6));
  // Dot of sequences: (N, 5, 3)·(N, 2, 3) over the features gives (N, 5, 2) = s @ t^T.
  auto dot3 = apply_list(Dot(2), {s, t});
  REQUIRE(dot3.sizes() == torch::IntArrayRef({4, 5, 2}));
  REQUIRE(dot3.allclose(torch::bmm(s, t.transpose(1, 2)), 1e-5, 1e-6));
  // (N, 5, 3)·(N, 5, 2) over the time axis gives (N, 3, 2).
  auto u = torch::randn({4, 5, 2});
  REQUIRE(apply_list(Dot(1), {s, u}).allclose(torch::bmm(s.transpose(1, 2), u), 1e-5, 1e-6));

  // Keras configs round-trip.
  auto c = L::layers::from_json(json{{"class_name", "Dot"}, {"config", {{"axes", json{2, 1}}, {"normalize", true}}}}, "dot");
  REQUIRE(L::layers::to_json(*c)["config"]["axes"] == json{2, 1});
}

TEST_CASE("merge layers refuse shapes that do not fit, naming the layer", "[layers][merge]") {
  auto a = L::keras_input({4}, "a"), b = L::keras_input({5}, "b"), c = L::keras_input({4}, "c");
  LIGHTER_REQUIRE_THROWS_WITH(L::call(Add(MergeOptions().name("plus")), {a, b}),
                              "layer 'plus' (Add): inputs must have equal shapes (or 1 to broadcast), got shapes [(None, 4), (None, 5)]");
  LIGHTER_REQUIRE_THROWS_WITH(L::call(Subtract(), {a, c, c}), "must be called on a list of exactly 2 tensors, got 3");
  LIGHTER_REQUIRE_THROWS_WITH(L::call(Concatenate(ConcatenateOptions().axis(1)), {L::keras_input({3, 4}), L::keras_input({3, 5})}),
                              "inputs must match in every axis but the concatenation axis 1");
  LIGHTER_REQUIRE_THROWS_WITH(L::call(Dot(1), {a, b}), "the summed axes differ in size (4 vs 5)");
  LIGHTER_REQUIRE_THROWS_WITH(L::call(Add(), a), "must be called on a list of tensors");
  LIGHTER_REQUIRE_THROWS_WITH(L::call(Dense(3), {a, c}), "takes one tensor, got a list of 2");
  // At run time too, when a shape was unknown while building.
  auto s1 = L::keras_input({-1, 2}), s2 = L::keras_input({-1, 2});
  L::Functional model({s1, s2}, {L::call(Add(MergeOptions().name("plus")), {s1, s2})});
  LIGHTER_REQUIRE_THROWS_WITH(model->call({torch::zeros({2, 3, 2}), torch::zeros({2, 4, 2})}), "layer 'plus' (Add)");
  // An input the outputs need must be among the model's inputs.
  LIGHTER_REQUIRE_THROWS_WITH(L::Functional({a}, {L::call(Add(), {a, c})}), "not among the model's inputs");
}

TEST_CASE("Functional model: masks flow through the graph and merges", "[models][functional][masking]") {
  torch::manual_seed(4);
  // Two token inputs, each embedded with mask_zero and run through an LSTM returning sequences; the sequences are
  // added (masks: and) and pooled over valid steps.
  auto ta = L::keras_input({-1}, "tokens_a", "int64"), tb = L::keras_input({-1}, "tokens_b", "int64");
  Embedding emb(EmbeddingOptions(12, 4).mask_zero(true));
  auto ea = L::call(LSTM(LSTMOptions(3).return_sequences(true)), L::call(emb, ta));
  auto eb = L::call(LSTM(LSTMOptions(3).return_sequences(true)), L::call(emb, tb));
  auto pooled = L::call(GlobalAveragePooling1D(), L::call(Add(), {ea, eb}));
  auto seq = L::call(Concatenate(ConcatenateOptions().axis(1)), {ea, eb});
  L::Functional model({ta, tb}, {pooled, seq});
  model->eval();
  auto xa = torch::tensor({{3, 4, 0, 0}, {5, 6, 7, 0}}, torch::kLong);
  auto xb = torch::tensor({{1, 2, 3, 0}, {8, 0, 0, 0}}, torch::kLong);
  auto out = model->call({xa, xb});
  REQUIRE(out.masks.at(0).defined() == false);  // pooling consumes the mask
  // Joined along time, the masks join too.
  REQUIRE(out.masks.at(1).equal(torch::cat({xa.ne(0), xb.ne(0)}, 1)));
  // Padding both inputs further changes nothing.
  auto pad = [](const torch::Tensor& t) { return torch::cat({t, torch::zeros({2, 3}, torch::kLong)}, 1); };
  auto padded = model->call({pad(xa), pad(xb)});
  REQUIRE(lighter_test::max_abs_diff(padded.values.at(0), out.values.at(0)) < 1e-6);
  // The pooled mean uses the steps valid in both inputs (Add's mask is the logical and).
  auto both = xa.ne(0).logical_and(xb.ne(0));
  auto seq_a = out.values.at(1).slice(1, 0, 4), seq_b = out.values.at(1).slice(1, 4, 8);
  auto by_hand = ((seq_a + seq_b) * both.unsqueeze(2)).sum(1) / both.sum(1, true);
  REQUIRE(lighter_test::max_abs_diff(out.values.at(0), by_hand) < 1e-6);
}

TEST_CASE("Functional encoder-decoder: initial_state from an encoder's return_state", "[models][functional][recurrent]") {
  torch::manual_seed(5);
  auto src = L::keras_input({-1, 3}, "source");
  auto tgt = L::keras_input({-1, 2}, "target");
  LSTM encoder(LSTMOptions(6).return_state(true).name("encoder"));
  LSTM decoder(LSTMOptions(6).return_sequences(true).name("decoder"));
  auto enc = L::call_all(encoder, src);
  REQUIRE(enc.size() == 3);
  REQUIRE(enc[1].shape() == L::Shape{-1, 6});
  auto dec = L::call_all(decoder, tgt, {enc[1], enc[2]}).front();
  auto out = L::call(Dense(DenseOptions(5).activation("softmax")), dec);
  L::Functional model({src, tgt}, {out}, "seq2seq");
  model->eval();
  auto xs = torch::randn({2, 7, 3}), xt = torch::randn({2, 4, 2});
  auto y = model->call({xs, xt}).values.at(0);
  REQUIRE(y.sizes() == torch::IntArrayRef({2, 4, 5}));
  // By hand: the decoder starts from the encoder's final (h, c).
  auto states = encoder->forward_all(xs, {});
  auto dec_by_hand = decoder->forward_all(xt, {}, {states[1], states[2]}).front();
  auto head = model->layers().back();
  auto expected = torch::softmax(head->forward_pre_activation(dec_by_hand), -1);
  REQUIRE(lighter_test::max_abs_diff(y, expected) < 1e-6);
  // Without the states the decoder output differs: the states are really used.
  REQUIRE(lighter_test::max_abs_diff(decoder->forward(xt), dec_by_hand) > 1e-4);
  // The JSON records initial_state as a call argument and reads back.
  json j = model->to_json();
  auto again = L::models::model_from_json(j);
  REQUIRE(again->to_json() == j);
  REQUIRE(again->count_params().total() == model->count_params().total());
  LIGHTER_REQUIRE_THROWS_WITH(L::call_all(LSTM(LSTMOptions(6)), tgt, {enc[1]}), "needs 2 initial states, got 1");
  LIGHTER_REQUIRE_THROWS_WITH(L::call_all(Dense(3), tgt, {enc[1]}), "takes no initial_state");
}

TEST_CASE("Functional model with two outputs trains on iris with per-output losses and loss_weights",
          "[models][functional][training]") {
  L::seed_everything(7);
  auto opts = L::data::CsvOptions().target("species");
  auto train = L::data::read_csv(lighter_test::source_path("examples/data/iris_train.csv"), opts);
  auto test = L::data::read_csv(lighter_test::source_path("examples/data/iris_test.csv"), opts.classes(train.classes));
  // Input: sepal length, sepal width, petal length. Outputs: the species, and the petal width (regression).
  auto split = [](const L::data::Table& t) {
    return std::make_pair(t.x.slice(1, 0, 3).contiguous(), std::vector<torch::Tensor>{t.y, t.x.slice(1, 3, 4).contiguous()});
  };
  auto [x, y] = split(train);
  auto [xt, yt] = split(test);
  auto mean = x.mean(0), stdev = x.std(0);
  x = (x - mean) / stdev;
  xt = (xt - mean) / stdev;

  auto in = L::keras_input({3}, "measurements");
  auto trunk = L::call(Dense(DenseOptions(16).activation("relu")), in);
  auto species = L::call(Dense(DenseOptions(3).activation("softmax").name("species")), trunk);
  auto width = L::call(Dense(DenseOptions(1).name("petal_width")), trunk);
  L::Functional model({in}, {species, width}, "iris_two_heads");
  model->compile(L::optimizers::adam(0.02), json{{"species", "sparse_categorical_crossentropy"}, {"petal_width", "mse"}},
                 json{{"species", json{"accuracy"}}, {"petal_width", json{"mae"}}}, json{{"species", 1.0}, {"petal_width", 0.5}});
  REQUIRE(model->trainer().fused_activation());
  auto history = model->fit({x}, y, L::FitOptions().epochs(60).batch_size(16).verbose(0));
  for (const char* key : {"loss", "species_loss", "petal_width_loss", "species_accuracy", "petal_width_mae"})
    REQUIRE(history.history.count(key) == 1);
  REQUIRE(history.history["loss"].back() < history.history["loss"].front() / 3);

  auto scores = model->evaluate({xt}, yt, L::EvaluateOptions());
  INFO("test accuracy " << scores["species_accuracy"] << ", petal width MAE " << scores["petal_width_mae"]);
  REQUIRE(scores["species_accuracy"] >= 0.9);
  // The petal width (0.1 to 2.5 cm) is predicted far better than by its mean.
  double baseline = (yt[1] - y[1].mean()).abs().mean().item<double>();
  REQUIRE(scores["petal_width_mae"] < baseline / 2);
  // The total is the weighted sum of the outputs' losses.
  REQUIRE(scores["loss"] == Approx(scores["species_loss"] + 0.5 * scores["petal_width_loss"]).epsilon(1e-5));
  // By hand for the regression head.
  auto pred = model->predict(std::vector<torch::Tensor>{xt});
  REQUIRE(scores["petal_width_loss"] == Approx((pred[1] - yt[1]).pow(2).mean().item<double>()).epsilon(1e-4));
  LIGHTER_REQUIRE_THROWS_WITH(model->compile(L::optimizers::adam(0.01), json{{"width", "mse"}}, json::array(), nullptr),
                              "no output named 'width'");
}

TEST_CASE("Keras Functional JSON: Keras 2 lists and Keras 3 tensors give the same graph", "[models][functional][keras]") {
  json k2 = json::parse(R"({"class_name": "Model", "config": {"name": "m",
    "layers": [
      {"class_name": "InputLayer", "name": "x", "config": {"batch_input_shape": [null, 4], "name": "x"}, "inbound_nodes": []},
      {"class_name": "Dense", "name": "d1", "config": {"units": 3, "name": "d1"}, "inbound_nodes": [[["x", 0, 0, {}]]]},
      {"class_name": "Dense", "name": "d2", "config": {"units": 3, "name": "d2"}, "inbound_nodes": [[["x", 0, 0, {}]]]},
      {"class_name": "Concatenate", "name": "cat", "config": {"axis": -1, "name": "cat"},
       "inbound_nodes": [[["d1", 0, 0, {}], ["d2", 0, 0, {}]]]}],
    "input_layers": [["x", 0, 0]], "output_layers": [["cat", 0, 0]]}})");
  auto m2 = L::models::model_from_json(k2);
  REQUIRE(m2->count_params().total() == 30);
  REQUIRE(m2->output_shape() == L::Shape{-1, 6});
  // Keras 3 writes the same graph with __keras_tensor__ arguments and (for one tensor) flat triples.
  json k3 = m2->to_json();
  k3["config"]["input_layers"] = json{"x", 0, 0};
  k3["config"]["output_layers"] = json{"cat", 0, 0};
  auto m3 = L::models::model_from_json(k3);
  REQUIRE(m3->count_params().total() == 30);
  REQUIRE(m3->output_shape() == L::Shape{-1, 6});

  // Errors name the place.
  json bad = k2;
  bad["config"]["layers"][2]["inbound_nodes"] = json::parse(R"([[["nope", 0, 0, {}]]])");
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(bad, "model"),
                              "model.config.layers[2].inbound_nodes[0][0]: unknown layer 'nope'");
  bad = k2;  // d1 reads d2 and d2 reads d1: a cycle
  bad["config"]["layers"][1]["inbound_nodes"] = json::parse(R"([[["d2", 0, 0, {}]]])");
  bad["config"]["layers"][2]["inbound_nodes"] = json::parse(R"([[["d1", 0, 0, {}]]])");
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(bad, "model"), "layers 'd1', 'd2', 'cat' wait on each other (a cycle in inbound_nodes)");
  bad = k2;
  bad["config"]["layers"][1]["config"]["units"] = 2;  // Concatenate is fine with 2 + 3; Add would not be
  bad["config"]["layers"][3]["class_name"] = "Add";
  bad["config"]["layers"][3]["config"].erase("axis");
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(bad, "model"),
                              "model.config.layers[3].inbound_nodes[0]: layer 'cat' (Add): inputs must have equal shapes");
  bad = k2;
  bad["config"]["input_layers"] = json::parse(R"([["d1", 0, 0]])");
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(bad, "model"), "'d1' is not an InputLayer");
  bad = k2;
  bad["config"]["output_layers"] = json::parse(R"([["cat", 1, 0]])");
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(bad, "model"), "node_index 1 does not exist");
  bad = k2;
  bad["config"]["layers"][1]["inbound_nodes"] = json::parse(R"([[["x", 0, 0, {}], ["x", 0, 0, {}]]])");
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(bad, "model"), "takes one input tensor, but this node lists 2");
}

TEST_CASE("lighter train, evaluate and summary on a Functional model config (iris, Keras 3 JSON)",
          "[models][functional][cli]") {
  std::string dir = lighter_test::temp_dir("functional_cli");
  json c = L::read_json_file(lighter_test::source_path("configs/iris.json"));
  std::string data = lighter_test::source_path("examples/data/");
  c["data"]["train"]["path"] = data + "iris_train.csv";
  c["data"]["test"]["path"] = data + "iris_test.csv";
  c["fit"]["verbose"] = 0;
  c["fit"]["epochs"] = 60;
  c["device"] = "cpu";
  // Normalised features into two branches (a narrow and a wide one), joined, then the softmax head.
  auto x = L::keras_input({4}, "measurements");
  auto norm = L::call(Normalization(), x);
  auto joined = L::call(Concatenate(), {L::call(Dense(DenseOptions(4).activation("tanh")), norm),
                                        L::call(Dense(DenseOptions(12).activation("relu")), norm)});
  L::Functional model({x}, {L::call(Dense(DenseOptions(3).activation("softmax")), joined)}, "iris_branches");
  c["model"] = model->to_json();
  std::string cfg = dir + "/iris_functional.json";
  L::write_file_atomic(cfg, c.dump(2));

  std::string out;
  int rc = lighter_test::run_cli("train " + cfg + " --output-dir " + dir + "/run", &out);
  INFO(out);
  REQUIRE(rc == 0);
  json metrics = L::read_json_file(dir + "/run/metrics.json");
  REQUIRE(metrics["test"]["accuracy"].get<double>() >= 0.85);
  rc = lighter_test::run_cli("evaluate " + cfg + " --weights " + dir + "/run", &out);
  REQUIRE(rc == 0);
  json eval = json::parse(out.substr(out.find('{')));
  REQUIRE(eval["accuracy"].get<double>() == Approx(metrics["test"]["accuracy"].get<double>()));
  rc = lighter_test::run_cli("summary " + dir + "/run/model.json", &out);
  REQUIRE(rc == 0);
  REQUIRE(out.find("Connected to") != std::string::npos);
  REQUIRE(out.find("normalization[0][0]") != std::string::npos);

  // The command trains one input and one output; a two-output graph is refused with a pointer to the C++ API.
  auto species = L::call(Dense(DenseOptions(3).activation("softmax")), joined);
  c["model"] = L::Functional({x}, {species, L::call(Dense(1), joined)}, "two_heads")->to_json();
  L::write_file_atomic(cfg, c.dump(2));
  rc = lighter_test::run_cli("train " + cfg + " --output-dir " + dir + "/run2", &out);
  REQUIRE(rc == 1);
  REQUIRE(out.find("one input and one output; this one has 1 inputs and 2 outputs") != std::string::npos);
}

TEST_CASE("a mask reaching a layer that cannot take it is dropped with one warning naming the layer",
          "[models][functional][masking]") {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  L::logger()->sinks().push_back(sink);
  struct Detach {
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> s;
    ~Detach() {
      auto& sinks = L::logger()->sinks();
      sinks.erase(std::remove(sinks.begin(), sinks.end(), s), sinks.end());
    }
  } detach{sink};
  auto tokens = L::keras_input({4}, "tokens", "int64");
  auto flat = L::call(Flatten(FlattenOptions().name("flat")), L::call(Embedding(EmbeddingOptions(10, 2).mask_zero(true)), tokens));
  L::Functional model({tokens}, {L::call(Dense(1), flat)});
  auto ids = torch::tensor({{1, 2, 0, 0}, {3, 0, 0, 0}}, torch::kLong);
  auto out = model->call({ids});
  REQUIRE(out.values[0].sizes() == torch::IntArrayRef({2, 1}));
  REQUIRE_FALSE(out.masks[0].defined());
  model->call({ids});
  int warnings = 0;
  for (const auto& line : sink->last_formatted())
    warnings += line.find("layer 'flat' (Flatten) does not support masking; the mask of its input is dropped") != std::string::npos;
  REQUIRE(warnings == 1);
}
