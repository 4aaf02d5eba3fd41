#include "lighter_test.h"

#include <chrono>
#include <functional>

namespace L = lighter;
using L::json;
using namespace lighter::layers;

namespace {

// Reference cells written out with Keras' formulas, on the layer's weights (stored torch-style: [G·units, F]).
struct Ref {
  std::string cell;  // simple_rnn, lstm, gru_after, gru_before
  torch::Tensor w_ih, w_hh, b, b_hh;
};

Ref ref_of(const RecurrentImpl& l) {
  Ref r;
  r.w_ih = l.weight_ih.detach();
  r.w_hh = l.weight_hh.detach();
  r.b = l.bias.defined() ? l.bias.detach() : torch::zeros({l.weight_ih.size(0)});
  r.b_hh = l.bias_hh.defined() ? l.bias_hh.detach() : torch::Tensor();
  switch (l.cell()) {
    case RecurrentImpl::Cell::SimpleRNN: r.cell = "simple_rnn"; break;
    case RecurrentImpl::Cell::LSTM: r.cell = "lstm"; break;
    default: r.cell = l.options().reset_after() ? "gru_after" : "gru_before";
  }
  return r;
}

// One sequence (T, F) without masks; returns outputs (T, u) and final h (and c).
std::vector<torch::Tensor> ref_run(const Ref& r, const torch::Tensor& x) {
  const int64_t u = r.w_hh.size(1);
  auto h = torch::zeros({u}), c = torch::zeros({u});
  std::vector<torch::Tensor> outs;
  for (int64_t t = 0; t < x.size(0); ++t) {
    auto xt = x[t];
    auto xw = r.w_ih.matmul(xt) + r.b;
    if (r.cell == "simple_rnn") {
      h = torch::tanh(xw + r.w_hh.matmul(h));
    } else if (r.cell == "lstm") {
      auto z = xw + r.w_hh.matmul(h);
      auto i = torch::sigmoid(z.slice(0, 0, u)), f = torch::sigmoid(z.slice(0, u, 2 * u));
      auto g = torch::tanh(z.slice(0, 2 * u, 3 * u)), o = torch::sigmoid(z.slice(0, 3 * u, 4 * u));
      c = f * c + i * g;
      h = o * torch::tanh(c);
    } else {
      // Stored gate order r, z, n.
      auto xr = xw.slice(0, 0, u), xz = xw.slice(0, u, 2 * u), xn = xw.slice(0, 2 * u, 3 * u);
      torch::Tensor rg, zg, n;
      if (r.cell == "gru_after") {
        auto hw = r.w_hh.matmul(h) + r.b_hh;
        rg = torch::sigmoid(xr + hw.slice(0, 0, u));
        zg = torch::sigmoid(xz + hw.slice(0, u, 2 * u));
        n = torch::tanh(xn + rg * hw.slice(0, 2 * u, 3 * u));
      } else {
        rg = torch::sigmoid(xr + r.w_hh.slice(0, 0, u).matmul(h));
        zg = torch::sigmoid(xz + r.w_hh.slice(0, u, 2 * u).matmul(h));
        n = torch::tanh(xn + r.w_hh.slice(0, 2 * u, 3 * u).matmul(rg * h));
      }
      h = zg * h + (1 - zg) * n;
    }
    outs.push_back(h);
  }
  return {torch::stack(outs), h, c};
}

// Randomizes all weights so that biases and forget-gate offsets matter.
void randomize(torch::nn::Module& m) {
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) p.uniform_(-0.5, 0.5);
}

void copy_weights(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard g;
  auto src = from.named_parameters();
  for (auto& p : to.named_parameters()) p.value().copy_(src[p.key()]);
}

std::shared_ptr<RecurrentImpl> make(const std::string& kind, RecurrentOptions o) {
  if (kind == "lstm") return LSTM(o).ptr();
  if (kind == "simple_rnn") return SimpleRNN(o).ptr();
  if (kind == "gru_before") return GRU(o.reset_after(false)).ptr();
  return GRU(o).ptr();
}

}  // namespace

TEST_CASE("recurrent layers have Keras' parameter counts and output shapes", "[layers][recurrent]") {
  auto count = [](const LayerRef& l) {
    l.ptr()->build({-1, 10, 16});
    return l.ptr()->count_params().total();
  };
  REQUIRE(count(LSTM(32)) == 4 * 32 * (16 + 32 + 1));
  REQUIRE(count(LSTM(32)) == 6272);
  REQUIRE(count(GRU(32)) == 3 * (32 * 48 + 64));
  REQUIRE(count(GRU(32)) == 4800);
  REQUIRE(count(GRU(GRUOptions(32).reset_after(false))) == 3 * 32 * (16 + 32 + 1));
  REQUIRE(count(SimpleRNN(32)) == 1568);
  REQUIRE(count(LSTM(LSTMOptions(32).use_bias(false))) == 4 * 32 * 48);
  REQUIRE(count(Bidirectional(LSTM(32))) == 2 * 6272);

  LSTM seq(LSTMOptions(8).return_sequences(true));
  seq->build({-1, 5, 3});
  REQUIRE(seq->output_shape() == L::Shape{-1, 5, 8});
  REQUIRE(seq->forward(torch::randn({2, 5, 3})).sizes() == torch::IntArrayRef({2, 5, 8}));
  GRU last(4);
  last->build({-1, 5, 3});
  REQUIRE(last->output_shape() == L::Shape{-1, 4});
  Bidirectional bi(LSTM(LSTMOptions(8).return_sequences(true)));
  bi->build({-1, 5, 3});
  REQUIRE(bi->output_shape() == L::Shape{-1, 5, 16});
  REQUIRE(bi->forward(torch::randn({2, 5, 3})).sizes() == torch::IntArrayRef({2, 5, 16}));
  Bidirectional bsum(BidirectionalOptions(GRU(8)).merge_mode("sum"));
  bsum->build({-1, 5, 3});
  REQUIRE(bsum->output_shape() == L::Shape{-1, 8});
  // Keras' initial biases: zeros, with the LSTM forget gate at one.
  REQUIRE(seq->bias.slice(0, 8, 16).eq(1).all().item<bool>());
  REQUIRE(seq->bias.slice(0, 0, 8).eq(0).all().item<bool>());
  // Checkpoint keys.
  auto names = bi->named_parameters();
  REQUIRE(names.contains("forward_layer.weight_ih"));
  REQUIRE(names.contains("backward_layer.bias"));
  REQUIRE(last->named_parameters().contains("bias_hh"));
  REQUIRE_THROWS_AS(seq->build({-1, 5}), L::ShapeError);
  REQUIRE_THROWS_AS(LSTM(0), L::ConfigError);
}

TEST_CASE("recurrent layers compute Keras' cells: fused kernels and the step loop agree with a reference",
          "[layers][recurrent]") {
  torch::manual_seed(3);
  for (std::string kind : {"simple_rnn", "lstm", "gru_after", "gru_before"}) {
    for (bool backwards : {false, true}) {
      INFO(kind << " go_backwards=" << backwards);
      auto layer = make(kind, RecurrentOptions(6).return_sequences(true).return_state(true).go_backwards(backwards));
      layer->build({-1, 7, 4});
      randomize(*layer);
      layer->eval();
      auto x = torch::randn({3, 7, 4});
      for (bool fused : {true, false}) {
        layer->set_use_fused(fused);
        auto outs = layer->forward_all(x, {});
        REQUIRE(layer->last_call_fused() == (fused && kind != "gru_before"));
        REQUIRE(static_cast<int64_t>(outs.size()) == layer->num_outputs());
        REQUIRE(outs.size() == (kind == "lstm" ? 3u : 2u));
        REQUIRE(outs[0].sizes() == torch::IntArrayRef({3, 7, 6}));
        REQUIRE(outs[1].sizes() == torch::IntArrayRef({3, 6}));
        for (int64_t i = 0; i < 3; ++i) {
          auto xi = backwards ? x[i].flip(0) : x[i];
          auto ref = ref_run(ref_of(*layer), xi);
          REQUIRE(lighter_test::max_abs_diff(outs[0][i], ref[0]) < 1e-5);
          REQUIRE(lighter_test::max_abs_diff(outs[1][i], ref[1]) < 1e-5);
          if (kind == "lstm") REQUIRE(lighter_test::max_abs_diff(outs[2][i], ref[2]) < 1e-5);
        }
      }
    }
  }
}

TEST_CASE("recurrent layers: gradients of the fused path equal those of the step loop", "[layers][recurrent]") {
  torch::manual_seed(4);
  for (std::string kind : {"simple_rnn", "lstm", "gru_after"}) {
    INFO(kind);
    auto layer = make(kind, RecurrentOptions(5).return_sequences(true));
    layer->build({-1, 6, 3});
    auto x = torch::randn({2, 6, 3});
    auto r = torch::randn({2, 6, 5});
    std::vector<torch::Tensor> grads[2];
    for (int fused = 0; fused < 2; ++fused) {
      layer->set_use_fused(fused == 1);
      layer->zero_grad();
      (layer->forward(x) * r).sum().backward();
      for (auto& p : layer->parameters()) grads[fused].push_back(p.grad().clone());
    }
    for (size_t i = 0; i < grads[0].size(); ++i) REQUIRE(lighter_test::max_abs_diff(grads[0][i], grads[1][i]) < 1e-5);
  }
}

TEST_CASE("masked sequences: padding does not change the results of valid steps", "[layers][recurrent][masking]") {
  torch::manual_seed(5);
  const std::vector<int64_t> lengths{5, 3, 1};
  auto x = torch::randn({3, 5, 4});
  auto mask = torch::arange(5).unsqueeze(0).lt(torch::tensor(lengths).unsqueeze(1));
  auto padded = x * mask.unsqueeze(2);
  for (std::string kind : {"simple_rnn", "lstm", "gru_after", "gru_before"}) {
    for (bool fused : {true, false}) {
      INFO(kind << " fused=" << fused);
      auto layer = make(kind, RecurrentOptions(6).return_sequences(true).return_state(true));
      layer->build({-1, -1, 4});
      randomize(*layer);
      layer->eval();
      layer->set_use_fused(fused);
      auto outs = layer->forward_all(padded, mask);
      REQUIRE(layer->last_call_fused() == (fused && kind != "gru_before"));
      for (int64_t i = 0; i < 3; ++i) {
        int64_t len = lengths[i];
        auto alone = layer->forward_all(x[i].slice(0, 0, len).unsqueeze(0), {});
        REQUIRE(lighter_test::max_abs_diff(outs[0][i].slice(0, 0, len), alone[0][0]) < 1e-5);
        // Keras repeats the last valid output over the padded steps.
        for (int64_t t = len; t < 5; ++t) REQUIRE(lighter_test::max_abs_diff(outs[0][i][t], alone[0][0][len - 1]) < 1e-6);
        for (size_t s = 1; s < outs.size(); ++s) REQUIRE(lighter_test::max_abs_diff(outs[s][i], alone[s][0]) < 1e-5);
      }
      // Without return_sequences the output is the state after the last valid step.
      auto last = make(kind, RecurrentOptions(6));
      last->build({-1, -1, 4});
      copy_weights(*layer, *last);
      last->eval();
      last->set_use_fused(fused);
      REQUIRE(lighter_test::max_abs_diff(last->forward_masked(padded, mask), outs[1]) < 1e-6);
    }
  }
  // A mask that is not right-padded (here left-padded) takes the step loop and skips the leading steps.
  auto lstm = make("lstm", RecurrentOptions(6));
  lstm->build({-1, -1, 4});
  lstm->eval();
  auto left = mask.flip(1);
  auto y = lstm->forward_masked(x.flip(1) * left.unsqueeze(2), left);
  REQUIRE_FALSE(lstm->last_call_fused());
  for (int64_t i = 0; i < 3; ++i) {
    auto alone = lstm->forward(x[i].flip(0).slice(0, 5 - lengths[i]).unsqueeze(0));
    REQUIRE(lighter_test::max_abs_diff(y[i], alone[0]) < 1e-5);
  }
  // go_backwards with a right-padded mask: packed sequences give the step loop's results.
  for (std::string kind : {"simple_rnn", "lstm", "gru_after"}) {
    INFO(kind << " go_backwards with a mask");
    auto back = make(kind, RecurrentOptions(6).return_sequences(true).return_state(true).go_backwards(true));
    back->build({-1, -1, 4});
    randomize(*back);
    back->eval();
    auto fused_outs = back->forward_all(padded, mask);
    REQUIRE(back->last_call_fused());
    back->set_use_fused(false);
    auto loop_outs = back->forward_all(padded, mask);
    REQUIRE_FALSE(back->last_call_fused());
    for (size_t s = 0; s < loop_outs.size(); ++s) REQUIRE(lighter_test::max_abs_diff(fused_outs[s], loop_outs[s]) < 1e-5);
    // The final states are those of the valid steps read backwards.
    auto alone = back->forward_all(x[1].slice(0, 0, lengths[1]).unsqueeze(0), {});
    REQUIRE(lighter_test::max_abs_diff(loop_outs[1][1], alone[1][0]) < 1e-5);
  }
  // An all-true mask runs the plain fused kernel.
  lstm->forward_masked(x, torch::ones({3, 5}, torch::kBool));
  REQUIRE(lstm->last_call_fused());
}

TEST_CASE("Bidirectional runs a second layer backwards and merges Keras' way", "[layers][recurrent][masking]") {
  torch::manual_seed(6);
  Bidirectional bi(LSTM(LSTMOptions(4).return_sequences(true)));
  bi->build({-1, -1, 3});
  randomize(*bi);
  bi->eval();
  REQUIRE(bi->forward_layer()->layer_name() == "forward_lstm");
  REQUIRE(bi->backward_layer()->layer_name() == "backward_lstm");
  REQUIRE(bi->backward_layer()->options().go_backwards());
  auto x = torch::randn({2, 5, 3});
  auto y = bi->forward(x);
  auto f = ref_run(ref_of(*bi->forward_layer()), x[1]);
  auto b = ref_run(ref_of(*bi->backward_layer()), x[1].flip(0));
  REQUIRE(lighter_test::max_abs_diff(y[1], torch::cat({f[0], b[0].flip(0)}, -1)) < 1e-5);

  // Masked: each sequence as if it were alone; padded steps output zeros (Keras' zero_output_for_mask).
  const std::vector<int64_t> lengths{5, 2};
  auto mask = torch::arange(5).unsqueeze(0).lt(torch::tensor(lengths).unsqueeze(1));
  auto ym = bi->forward_masked(x * mask.unsqueeze(2), mask);
  auto alone = bi->forward(x[1].slice(0, 0, 2).unsqueeze(0));
  REQUIRE(lighter_test::max_abs_diff(ym[1].slice(0, 0, 2), alone[0]) < 1e-5);
  REQUIRE(ym[1].slice(0, 2).abs().max().item<double>() == 0.0);
  REQUIRE(bi->forward_layer()->last_call_fused());
  REQUIRE(bi->backward_layer()->last_call_fused());
  REQUIRE(lighter_test::max_abs_diff(bi->compute_mask(x, mask).to(torch::kLong), mask.to(torch::kLong)) == 0);

  // return_state and merge_mode none: several outputs.
  Bidirectional both(BidirectionalOptions(GRU(GRUOptions(4).return_state(true))).merge_mode("none"));
  both->build({-1, 5, 3});
  REQUIRE(both->num_outputs() == 4);
  auto outs = both->forward_all(x, {});
  REQUIRE(outs.size() == 4u);
  for (auto& o : outs) REQUIRE(o.sizes() == torch::IntArrayRef({2, 4}));
  REQUIRE(lighter_test::max_abs_diff(outs[0], outs[2]) == 0);  // GRU output = its state
  REQUIRE_THROWS_AS(Bidirectional(Dense(3)), L::ConfigError);
  REQUIRE_THROWS_AS(L::Sequential({Input({5, 3}), LSTM(LSTMOptions(4).return_state(true))}), L::ConfigError);
}

TEST_CASE("TimeDistributed applies a layer to every step", "[layers][recurrent]") {
  TimeDistributed td(Dense(DenseOptions(3).activation("softmax")));
  td->build({-1, 4, 5});
  REQUIRE(td->output_shape() == L::Shape{-1, 4, 3});
  REQUIRE(td->count_params().total() == 5 * 3 + 3);
  REQUIRE(td->output_activation() == "softmax");
  auto x = torch::randn({2, 4, 5});
  auto y = td->forward(x);
  auto dense = std::dynamic_pointer_cast<DenseImpl>(td->layer());
  REQUIRE(lighter_test::max_abs_diff(y[1][2], dense->forward(x[1][2].unsqueeze(0))[0]) < 1e-6);
  REQUIRE(lighter_test::max_abs_diff(torch::softmax(td->forward_pre_activation(x), -1), y) < 1e-6);
  REQUIRE(td->named_parameters().contains("layer.weight"));
}

TEST_CASE("Embedding and Masking make masks that Sequential carries to the layers", "[layers][recurrent][masking]") {
  torch::manual_seed(7);
  Embedding emb(EmbeddingOptions(10, 4).mask_zero(true));
  emb->build({-1, -1});
  REQUIRE(emb->count_params().total() == 40);
  REQUIRE(emb->weight.abs().max().item<double>() <= 0.05);
  auto ids = torch::tensor({{3, 5, 0, 0}, {1, 2, 7, 9}}, torch::kLong);
  REQUIRE(emb->forward(ids).sizes() == torch::IntArrayRef({2, 4, 4}));
  REQUIRE(emb->forward(ids.to(torch::kFloat)).equal(emb->forward(ids)));
  auto m = emb->compute_mask(ids, {});
  REQUIRE(m.equal(ids.ne(0)));
  REQUIRE_FALSE(Embedding(EmbeddingOptions(10, 4))->compute_mask(ids, {}).defined());

  // Embedding(mask_zero) -> GlobalAveragePooling1D averages the valid steps only.
  L::Sequential avg({Input({4}), emb, GlobalAveragePooling1D()});
  auto y = avg->forward(ids);
  auto e = emb->forward(ids);
  REQUIRE(lighter_test::max_abs_diff(y[0], e[0].slice(0, 0, 2).mean(0)) < 1e-6);
  REQUIRE(lighter_test::max_abs_diff(y[1], e[1].mean(0)) < 1e-6);
  GlobalMaxPooling1D gmax;
  auto neg = -torch::ones({1, 3, 2});
  neg[0][2] = torch::ones({2});  // masked step holds the largest values
  REQUIRE(lighter_test::max_abs_diff(gmax->forward_masked(neg, torch::tensor({{true, true, false}})), -torch::ones({1, 2})) == 0);

  // Masking: steps whose features all equal mask_value are masked and zeroed.
  Masking masking(MaskingOptions().mask_value(-1.0));
  auto xs = torch::tensor({{{1.0f, -1.0f}, {-1.0f, -1.0f}, {2.0f, 3.0f}}});
  REQUIRE(masking->compute_mask(xs, {}).equal(torch::tensor({{true, false, true}})));
  REQUIRE(masking->forward(xs)[0][1].abs().sum().item<double>() == 0.0);

  // Stacked recurrent layers in Sequential: padding invariance end to end (Dense and Dropout pass the mask on).
  L::Sequential model({Input({-1}), Embedding(EmbeddingOptions(20, 5).mask_zero(true)),
                       LSTM(LSTMOptions(8).return_sequences(true)), Dropout(0.1),
                       TimeDistributed(Dense(8)), GRU(6), Dense(3)});
  model->eval();
  auto seqs = torch::tensor({{4, 8, 15, 16, 0, 0}, {2, 3, 0, 0, 0, 0}}, torch::kLong);
  auto out = model->forward(seqs);
  REQUIRE(out.sizes() == torch::IntArrayRef({2, 3}));
  REQUIRE(lighter_test::max_abs_diff(out[0], model->forward(seqs[0].slice(0, 0, 4).unsqueeze(0))[0]) < 1e-5);
  REQUIRE(lighter_test::max_abs_diff(out[1], model->forward(seqs[1].slice(0, 0, 2).unsqueeze(0))[0]) < 1e-5);
  REQUIRE(lighter_test::max_abs_diff(model->forward_pre_activation(seqs), out) < 1e-6);

  // A layer that does not support masks drops the mask (with a warning) and the model still runs.
  L::Sequential flat({Input({4}), Embedding(EmbeddingOptions(10, 2).mask_zero(true)), Flatten(), Dense(1)});
  REQUIRE(flat->forward(ids).sizes() == torch::IntArrayRef({2, 1}));
}

TEST_CASE("sequence layers round-trip through their configs", "[layers][recurrent]") {
  std::vector<LayerRef> layers{
      LSTM(LSTMOptions(7).return_sequences(true).dropout(0.1).recurrent_dropout(0.2).unit_forget_bias(false)),
      GRU(GRUOptions(5).reset_after(false).go_backwards(true).recurrent_activation("hard_sigmoid")),
      SimpleRNN(SimpleRNNOptions(3).activation("relu").return_state(true).kernel_regularizer("l2")),
      Bidirectional(BidirectionalOptions(LSTM(LSTMOptions(4).return_sequences(true))).merge_mode("ave")),
      Bidirectional(BidirectionalOptions(GRU(4)).merge_mode("none")),
      TimeDistributed(Dense(DenseOptions(2).activation("relu"))),
      Embedding(EmbeddingOptions(100, 8).mask_zero(true).input_length(12)),
      Masking(MaskingOptions().mask_value(-1.0))};
  for (const auto& ref : layers) {
    auto& l = ref.ptr();
    if (l->layer_name().empty()) l->set_layer_name("x");
    json j = to_json(*l);
    INFO(j.dump());
    auto again = from_json(j, "layer");
    REQUIRE(to_json(*again) == j);
  }
  // Keras 2 keys: implementation, time_major false, zero_output_for_mask; stateful.
  json k2 = json::parse(R"({"class_name": "LSTM", "config": {"name": "lstm", "trainable": true, "dtype": "float32",
    "return_sequences": false, "return_state": false, "go_backwards": false, "stateful": false, "unroll": false,
    "time_major": false, "units": 8, "activation": "tanh", "recurrent_activation": "hard_sigmoid", "use_bias": true,
    "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": null}},
    "recurrent_initializer": {"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": null}},
    "bias_initializer": {"class_name": "Zeros", "config": {}}, "unit_forget_bias": true, "kernel_regularizer": null,
    "recurrent_regularizer": null, "bias_regularizer": null, "activity_regularizer": null, "kernel_constraint": null,
    "recurrent_constraint": null, "bias_constraint": null, "dropout": 0.0, "recurrent_dropout": 0.0,
    "implementation": 2, "zero_output_for_mask": false, "batch_input_shape": [null, 5, 3]}})");
  auto l = from_json(k2, "layer");
  REQUIRE(l->declared_input_shape() == L::Shape{-1, 5, 3});
  l->build(*l->declared_input_shape());
  REQUIRE(l->count_params().total() == 4 * 8 * (3 + 8 + 1));
  k2["config"]["time_major"] = true;
  LIGHTER_REQUIRE_THROWS_WITH(from_json(k2, "layer"), "layer.config.time_major");

  // Bidirectional's merge_mode: left out is Keras' default "concat" (one output); null is Keras' None (two).
  json bi = {{"class_name", "Bidirectional"},
             {"config", {{"layer", {{"class_name", "GRU"}, {"config", {{"units", 3}}}}}}}};
  auto concat = from_json(bi, "layer");
  REQUIRE(concat->num_outputs() == 1);
  REQUIRE(to_json(*concat)["config"]["merge_mode"] == "concat");
  bi["config"]["merge_mode"] = nullptr;
  REQUIRE(from_json(bi, "layer")->num_outputs() == 2);
}

TEST_CASE("stateful recurrent layers carry their states between batches", "[layers][recurrent]") {
  GRU g(GRUOptions(3).stateful(true));
  g->build({2, 4, 2});
  g->eval();
  auto x = torch::randn({2, 8, 2});
  auto whole = g->forward(x);
  g->reset_states();
  g->forward(x.slice(1, 0, 4));
  auto second = g->forward(x.slice(1, 4, 8));
  REQUIRE(lighter_test::max_abs_diff(whole, second) < 1e-5);
  // Without a reset, the second half is no longer the continuation of zeros.
  REQUIRE(lighter_test::max_abs_diff(g->forward(x.slice(1, 4, 8)), second) > 1e-4);
}

TEST_CASE("an LSTM learns to classify digits read as 8 rows of 8 pixels", "[layers][recurrent][training]") {
  torch::manual_seed(1);
  auto options = L::data::CsvOptions().target("digit").kind(L::data::TargetKind::Classification);
  auto train = L::data::read_csv(lighter_test::source_path("examples/data/digits_train.csv"), options);
  auto test = L::data::read_csv(lighter_test::source_path("examples/data/digits_test.csv"), options);
  auto seq = [](const torch::Tensor& x) { return (x / 16.0).reshape({-1, 8, 8}).contiguous(); };
  L::Sequential model({Input({8, 8}), LSTM(32), Dense(DenseOptions(10).activation("softmax"))});
  model->compile(L::optimizers::adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  model->fit(seq(train.x), train.y, L::FitOptions().epochs(8).batch_size(32).verbose(0));
  auto scores = model->evaluate(seq(test.x), test.y);
  INFO(scores["accuracy"]);
  REQUIRE(scores["accuracy"] > 0.9);
}

TEST_CASE("recurrent speed: fused kernels, packed sequences and the step loop", "[.][bench]") {
  // Hidden (run with "[bench]"): prints milliseconds per forward+backward of LSTM(128) on (64, 50, 64).
  torch::manual_seed(0);
  auto x = torch::randn({64, 50, 64});
  auto lengths = torch::randint(10, 51, {64}, torch::kLong);
  auto mask = torch::arange(50).unsqueeze(0).lt(lengths.unsqueeze(1));
  auto time_ms = [&](const std::function<void()>& f) {
    f();
    auto start = std::chrono::steady_clock::now();
    const int reps = 10;
    for (int i = 0; i < reps; ++i) f();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / reps;
  };
  for (std::string kind : {"lstm", "gru_after", "gru_before"}) {
    auto layer = make(kind, RecurrentOptions(128).return_sequences(true));
    layer->build({-1, -1, 64});
    auto step = [&](const torch::Tensor& m) {
      layer->zero_grad();
      layer->forward_masked(x, m).sum().backward();
    };
    layer->set_use_fused(true);
    double fused = time_ms([&] { step({}); });
    double packed = time_ms([&] { step(mask); });
    layer->set_use_fused(false);
    double loop = time_ms([&] { step({}); });
    double loop_masked = time_ms([&] { step(mask); });
    double raw = 0;
    if (kind == "lstm") {
      // The same step with torch::nn::LSTM, for the wrapper's overhead.
      torch::nn::LSTM torch_lstm(torch::nn::LSTMOptions(64, 128).batch_first(true));
      raw = time_ms([&] {
        torch_lstm->zero_grad();
        std::get<0>(torch_lstm->forward(x)).sum().backward();
      });
    }
    WARN(kind << (raw > 0 ? ": torch::nn::LSTM " + std::to_string(raw) + " ms," : ":") << " fused " << fused << " ms, fused+packed mask " << packed << " ms, step loop " << loop
              << " ms, step loop + mask " << loop_masked << " ms (threads " << at::get_num_threads() << ")");
  }
}

TEST_CASE("recurrent layers equal torch::nn::LSTM, GRU and RNN on the same weights", "[layers][recurrent]") {
  torch::manual_seed(21);
  const int64_t features = 5, units = 7;
  auto x = torch::randn({3, 6, features});
  // Copies a layer's weights into a torch module; Keras' single input bias goes to bias_ih (bias_hh stays zero)
  // except for GRU with reset_after, whose two biases are torch's two.
  auto load = [](RecurrentImpl& layer, torch::nn::Module& raw) {
    torch::NoGradGuard g;
    auto p = raw.named_parameters();
    p["weight_ih_l0"].copy_(layer.weight_ih);
    p["weight_hh_l0"].copy_(layer.weight_hh);
    p["bias_ih_l0"].copy_(layer.bias);
    if (layer.bias_hh.defined()) p["bias_hh_l0"].copy_(layer.bias_hh);
    else p["bias_hh_l0"].zero_();
  };
  SECTION("LSTM") {
    LSTM layer(LSTMOptions(units).return_sequences(true).return_state(true));
    layer->build({-1, 6, features});
    randomize(*layer);
    torch::nn::LSTM raw(torch::nn::LSTMOptions(features, units).batch_first(true));
    load(*layer, *raw);
    auto ours = layer->forward_all(x, {});
    auto theirs = raw->forward(x);
    REQUIRE(lighter_test::max_abs_diff(ours[0], std::get<0>(theirs)) < 1e-5);
    REQUIRE(lighter_test::max_abs_diff(ours[1], std::get<0>(std::get<1>(theirs))[0]) < 1e-5);
    REQUIRE(lighter_test::max_abs_diff(ours[2], std::get<1>(std::get<1>(theirs))[0]) < 1e-5);
  }
  SECTION("GRU (reset_after, Keras 3's default)") {
    GRU layer(GRUOptions(units).return_sequences(true).return_state(true));
    layer->build({-1, 6, features});
    randomize(*layer);
    torch::nn::GRU raw(torch::nn::GRUOptions(features, units).batch_first(true));
    load(*layer, *raw);
    auto ours = layer->forward_all(x, {});
    auto theirs = raw->forward(x);
    REQUIRE(lighter_test::max_abs_diff(ours[0], std::get<0>(theirs)) < 1e-5);
    REQUIRE(lighter_test::max_abs_diff(ours[1], std::get<1>(theirs)[0]) < 1e-5);
  }
  SECTION("SimpleRNN (tanh) and relu") {
    for (const char* act : {"tanh", "relu"}) {
      INFO(act);
      SimpleRNN layer(SimpleRNNOptions(units).activation(act).return_sequences(true));
      layer->build({-1, 6, features});
      randomize(*layer);
      torch::nn::RNN raw(torch::nn::RNNOptions(features, units).batch_first(true).nonlinearity(
          std::string(act) == "tanh" ? torch::nn::RNNOptions::nonlinearity_t(torch::kTanh)
                                     : torch::nn::RNNOptions::nonlinearity_t(torch::kReLU)));
      load(*layer, *raw);
      REQUIRE(lighter_test::max_abs_diff(layer->forward(x), std::get<0>(raw->forward(x))) < 1e-5);
    }
  }
}

TEST_CASE("Embedding refuses token ids below 0 or from input_dim on, naming the id", "[layers][recurrent]") {
  Embedding emb(EmbeddingOptions(10, 3).name("tokens"));
  emb->build({-1, 4});
  REQUIRE(emb->forward(torch::tensor({{0, 9, 3, 1}}, torch::kLong)).sizes() == torch::IntArrayRef({1, 4, 3}));
  LIGHTER_REQUIRE_THROWS_WITH(emb->forward(torch::tensor({{0, 10, 3, 1}}, torch::kLong)),
                              "layer 'tokens' (Embedding): token ids must be in [0, input_dim) = [0, 10), got 10");
  LIGHTER_REQUIRE_THROWS_WITH(emb->forward(torch::tensor({{-1, 2}}, torch::kLong)), "got -1");
  // Through a model and its trainer, the same message reaches the caller.
  L::Sequential model({Input({4}), Embedding(EmbeddingOptions(10, 3)), GlobalAveragePooling1D(), Dense(2)});
  model->compile(L::optimizers::sgd(0.1), "sparse_categorical_crossentropy");
  LIGHTER_REQUIRE_THROWS_WITH(model->fit(torch::full({2, 4}, 12, torch::kLong), torch::zeros({2}, torch::kLong),
                                         L::FitOptions().epochs(1).verbose(0)),
                              "token ids must be in [0, input_dim) = [0, 10), got 12");
}
