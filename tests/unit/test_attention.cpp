#include "lighter_test.h"

// MultiHeadAttention: Keras' parameter counts, values against a hand-written attention on the same weights, masks
// combined as Keras does (padding invariance, causality), and its place in Functional models and their JSON.

namespace L = lighter;
using namespace lighter::layers;
using L::json;

namespace {

// Attention written out: projections with the layer's Dense weights, softmax(q k^T / sqrt(d) + bias) v, output
// projection. `allowed` (N, T, S) bool or undefined.
torch::Tensor reference(MultiHeadAttentionImpl& mha, const torch::Tensor& q_in, const torch::Tensor& v_in,
                        const torch::Tensor& allowed) {
  const int64_t n = q_in.size(0), t = q_in.size(1), s = v_in.size(1);
  const int64_t h = mha.options().num_heads(), kd = mha.options().key_dim();
  const int64_t vd = mha.options().value_dim() > 0 ? mha.options().value_dim() : kd;
  auto proj = [](const Dense& d, const torch::Tensor& x) { return torch::matmul(x, d->weight.t()) + d->bias; };
  auto q = proj(mha.query_dense, q_in).view({n, t, h, kd}).permute({0, 2, 1, 3});
  auto k = proj(mha.key_dense, v_in).view({n, s, h, kd}).permute({0, 2, 1, 3});
  auto v = proj(mha.value_dense, v_in).view({n, s, h, vd}).permute({0, 2, 1, 3});
  auto scores = torch::matmul(q, k.transpose(2, 3)) / std::sqrt(static_cast<double>(kd));
  if (allowed.defined()) scores = scores.masked_fill(allowed.logical_not().unsqueeze(1), -1e9);
  auto context = torch::matmul(torch::softmax(scores, -1), v).permute({0, 2, 1, 3}).reshape({n, t, h * vd});
  return proj(mha.output_dense, context);
}

}  // namespace

TEST_CASE("MultiHeadAttention has Keras' parameter counts and output shapes", "[layers][attention]") {
  MultiHeadAttention a(MultiHeadAttentionOptions(2, 64));
  a->build({-1, 50, 1});
  // query, key, value: 1·2·64 + 2·64 each; output: 2·64·1 + 1.
  REQUIRE(a->count_params().total() == 3 * (128 + 128) + 129);
  MultiHeadAttention b(MultiHeadAttentionOptions(4, 8).value_dim(5).output_shape(7).use_bias(false));
  b->build_list({{-1, 10, 6}, {-1, 12, 3}});
  REQUIRE(b->count_params().total() == 6 * 32 + 3 * 32 + 3 * 20 + 20 * 7);
  REQUIRE(b->output_shape() == L::Shape{-1, 10, 7});
  LIGHTER_REQUIRE_THROWS_WITH(MultiHeadAttention(MultiHeadAttentionOptions(2, 4))->build_list({{-1, 5, 3}}),
                              "must be called on [query, value] or [query, value, key], got a list of 1");
  LIGHTER_REQUIRE_THROWS_WITH(MultiHeadAttention(MultiHeadAttentionOptions(2, 4))->build({-1, 5}),
                              "expects query of shape (batch, steps, features), got (None, 5)");
}

TEST_CASE("MultiHeadAttention equals attention written out on the same weights", "[layers][attention]") {
  torch::manual_seed(31);
  MultiHeadAttention mha(MultiHeadAttentionOptions(3, 4).value_dim(5));
  auto q = torch::randn({2, 6, 8}), v = torch::randn({2, 9, 8});
  auto out = mha->forward_list({q, v}, {});
  REQUIRE(out.sizes() == torch::IntArrayRef({2, 6, 8}));
  REQUIRE(lighter_test::max_abs_diff(out, reference(*mha, q, v, {})) < 1e-5);
  // Self-attention through forward(x).
  REQUIRE(lighter_test::max_abs_diff(mha->forward(v), reference(*mha, v, v, {})) < 1e-5);
  // The probabilities returned sum to one over the value steps.
  auto both = mha->attend(q, v, v, {}, {}, {}, {}, true);
  REQUIRE(both[1].sizes() == torch::IntArrayRef({2, 3, 6, 9}));
  REQUIRE(lighter_test::max_abs_diff(both[1].sum(-1), torch::ones({2, 3, 6})) < 1e-5);
  REQUIRE(lighter_test::max_abs_diff(both[0], out) < 1e-5);
}

TEST_CASE("MultiHeadAttention masks: padding invariance, causality, fully masked rows", "[layers][attention][masking]") {
  torch::manual_seed(32);
  MultiHeadAttention mha(MultiHeadAttentionOptions(2, 4));
  const std::vector<int64_t> lengths{5, 3};
  auto x = torch::randn({2, 5, 6});
  auto mask = torch::arange(5).unsqueeze(0).lt(torch::tensor(lengths).unsqueeze(1));
  auto out = mha->forward_masked(x, mask);
  // Each sequence alone, without padding, gives the same valid rows.
  for (int64_t i = 0; i < 2; ++i) {
    auto alone = mha->forward(x[i].slice(0, 0, lengths[i]).unsqueeze(0))[0];
    REQUIRE(lighter_test::max_abs_diff(out[i].slice(0, 0, lengths[i]), alone) < 1e-5);
  }
  // Padding further leaves the valid rows unchanged; padded rows stay finite.
  auto xp = torch::cat({x, torch::randn({2, 4, 6})}, 1);
  auto mp = torch::cat({mask, torch::zeros({2, 4}, torch::kBool)}, 1);
  auto outp = mha->forward_masked(xp, mp);
  REQUIRE(lighter_test::max_abs_diff(outp.slice(1, 0, 5) * mask.unsqueeze(2), out * mask.unsqueeze(2)) < 1e-5);
  REQUIRE(torch::isfinite(outp).all().item<bool>());
  REQUIRE(mha->compute_mask_list({x, x}, {mask, mask}).equal(mask));

  // Causal: changing step 3 onwards leaves steps 0..2 unchanged, and step 3 changes.
  MultiHeadAttention causal(MultiHeadAttentionOptions(2, 4).use_causal_mask(true));
  auto y = causal->forward(x);
  auto x2 = x.clone();
  x2.slice(1, 3, 5).normal_();
  auto y2 = causal->forward(x2);
  REQUIRE(lighter_test::max_abs_diff(y.slice(1, 0, 3), y2.slice(1, 0, 3)) < 1e-6);
  REQUIRE(lighter_test::max_abs_diff(y.slice(1, 3, 4), y2.slice(1, 3, 4)) > 1e-3);
  auto tri = torch::ones({5, 5}, torch::kBool).tril().unsqueeze(0).expand({2, 5, 5});
  REQUIRE(lighter_test::max_abs_diff(y, reference(*causal, x, x, tri)) < 1e-5);
}

TEST_CASE("MultiHeadAttention in Functional models and Keras JSON", "[layers][attention][functional]") {
  torch::manual_seed(33);
  auto tokens = L::keras_input({-1}, "tokens", "int64");
  auto e = L::call(Embedding(EmbeddingOptions(20, 8).mask_zero(true)), tokens);
  MultiHeadAttention mha(MultiHeadAttentionOptions(2, 4).name("mha"));
  auto attended = L::call(mha, {e, e});
  auto pooled = L::call(GlobalAveragePooling1D(), L::call(Add(), {e, attended}));
  L::Functional model({tokens}, {L::call(Dense(DenseOptions(3).activation("softmax")), pooled)}, "tiny_transformer");
  model->eval();
  auto ids = torch::tensor({{3, 5, 7, 0, 0}, {2, 9, 0, 0, 0}}, torch::kLong);
  auto y = model->predict(ids);
  auto padded = torch::cat({ids, torch::zeros({2, 3}, torch::kLong)}, 1);
  REQUIRE(lighter_test::max_abs_diff(model->predict(padded), y) < 1e-5);

  // Keras 3 writes attention's tensors as positional arguments; the JSON reads back to the same graph.
  json j = model->to_json();
  json node;
  for (const auto& l : j["config"]["layers"])
    if (l["name"] == "mha") node = l["inbound_nodes"][0];
  REQUIRE(node["args"].size() == 2);
  REQUIRE(node["args"][1]["class_name"] == "__keras_tensor__");
  auto again = L::models::model_from_json(j);
  REQUIRE(again->to_json() == j);
  REQUIRE(again->count_params().total() == model->count_params().total());
  // Keras 2 passes the value by name.
  json k2 = json::parse(R"({"class_name": "Model", "config": {"name": "m", "layers": [
      {"class_name": "InputLayer", "name": "x", "config": {"batch_input_shape": [null, 7, 4], "name": "x"}, "inbound_nodes": []},
      {"class_name": "MultiHeadAttention", "name": "att", "config": {"num_heads": 2, "key_dim": 3, "name": "att"},
       "inbound_nodes": [[["x", 0, 0, {"value": ["x", 0, 0]}]]]}],
    "input_layers": [["x", 0, 0]], "output_layers": [["att", 0, 0]]}})");
  auto m2 = L::models::model_from_json(k2);
  REQUIRE(m2->count_params().total() == 3 * (4 * 6 + 6) + (6 * 4 + 4));
  REQUIRE(m2->output_shape() == L::Shape{-1, 7, 4});
  k2["config"]["layers"][1]["config"]["attention_axes"] = json{1, 2};
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(k2, "model"),
                              "model.config.layers[1].config.attention_axes: only attention over the steps axis");
}

TEST_CASE("Attention and AdditiveAttention follow Keras' formulas, masks and parameter counts", "[layers][attention]") {
  torch::manual_seed(34);
  auto q = torch::randn({2, 4, 6}), v = torch::randn({2, 5, 6}), k = torch::randn({2, 5, 6});
  SECTION("dot-product with a learned scale") {
    Attention att(AttentionOptions().use_scale(true));
    att->build_list({{-1, 4, 6}, {-1, 5, 6}, {-1, 5, 6}});
    REQUIRE(att->count_params().total() == 1);
    { torch::NoGradGuard g; att->scale.fill_(0.7); }
    auto out = att->forward_list({q, v, k}, {});
    auto by_hand = torch::matmul(torch::softmax(0.7 * torch::matmul(q, k.transpose(1, 2)), -1), v);
    REQUIRE(lighter_test::max_abs_diff(out, by_hand) < 1e-5);
  }
  SECTION("concat scores") {
    Attention att(AttentionOptions().score_mode("concat"));
    att->build_list({{-1, 4, 6}, {-1, 5, 6}});
    REQUIRE(att->count_params().total() == 1);
    auto scores = torch::tanh(q.unsqueeze(2) + v.unsqueeze(1)).sum(-1);
    REQUIRE(lighter_test::max_abs_diff(att->forward_list({q, v}, {}), torch::matmul(torch::softmax(scores, -1), v)) < 1e-5);
  }
  SECTION("additive (Bahdanau) with its scale vector") {
    AdditiveAttention att;
    att->build_list({{-1, 4, 6}, {-1, 5, 6}});
    REQUIRE(att->count_params().total() == 6);
    auto scores = (att->scale * torch::tanh(q.unsqueeze(2) + v.unsqueeze(1))).sum(-1);
    REQUIRE(lighter_test::max_abs_diff(att->forward_list({q, v}, {}), torch::matmul(torch::softmax(scores, -1), v)) < 1e-5);
  }
  SECTION("masks: padded value steps are ignored, padded query steps give zeros, causal hides later steps") {
    Attention att;
    auto vmask = torch::tensor({{true, true, true, false, false}, {true, true, true, true, true}});
    auto qmask = torch::tensor({{true, true, true, false}, {true, true, true, true}});
    auto out = att->forward_list({q, v}, {qmask, vmask});
    auto alone = att->forward_list({q[0].unsqueeze(0), v[0].slice(0, 0, 3).unsqueeze(0)}, {})[0];
    REQUIRE(lighter_test::max_abs_diff(out[0].slice(0, 0, 3), alone.slice(0, 0, 3)) < 1e-5);
    REQUIRE(out[0][3].abs().sum().item<double>() == 0.0);
    REQUIRE(att->compute_mask_list({q, v}, {qmask, vmask}).equal(qmask));
    Attention causal(AttentionOptions().use_causal_mask(true));
    auto self = causal->forward(v);
    auto v2 = v.clone();
    v2.slice(1, 2, 5).normal_();
    REQUIRE(lighter_test::max_abs_diff(self.slice(1, 0, 2), causal->forward(v2).slice(1, 0, 2)) < 1e-6);
  }
  LIGHTER_REQUIRE_THROWS_WITH(Attention()->build_list({{-1, 4, 6}, {-1, 5, 7}}), "query and key must have the same last dimension");
  LIGHTER_REQUIRE_THROWS_WITH(L::layers::from_json(json{{"class_name", "Attention"}, {"config", {{"score_mode", "sum"}}}}, "l"),
                              "l.config.score_mode");
}
