#include "lighter_test.h"

#include <ATen/CPUGeneratorImpl.h>

// Transformer blocks: KerasHub's parameter counts, the block wiring against a hand computation on the same
// weights, causality, padding invariance, cached decoding against the full computation, the fused and unfused
// attention paths, samplers, and JSON.

namespace L = lighter;
using namespace lighter::layers;
using L::json;
using lighter_test::max_abs_diff;

namespace {

torch::Tensor layer_norm(const torch::Tensor& x, const LayerNormalization& n) {
  return torch::layer_norm(x, {x.size(-1)}, n->weight, n->bias, n->options().epsilon());
}
torch::Tensor dense(const Dense& d, const torch::Tensor& x) { return torch::matmul(x, d->weight.t()) + d->bias; }

// A decoder-only language model: ids -> TokenAndPositionEmbedding -> decoder blocks -> Dense logits.
L::Sequential tiny_lm(int64_t vocab, int64_t length, bool normalize_first = false) {
  return L::Sequential({InputLayer(InputLayerOptions({-1}).dtype("int64")),
                        TokenAndPositionEmbedding(TokenAndPositionEmbeddingOptions(vocab, length, 16)),
                        TransformerDecoder(TransformerOptions(32, 4).normalize_first(normalize_first)),
                        TransformerDecoder(TransformerOptions(32, 4).normalize_first(normalize_first)),
                        Dense(DenseOptions(vocab).activation("softmax"))});
}

}  // namespace

TEST_CASE("Transformer blocks have KerasHub's parameter counts", "[layers][transformer]") {
  const int64_t h = 32, i = 64;
  const int64_t attention = 4 * (h * h + h), norm = 2 * h, ffn = h * i + i + i * h + h;
  TransformerEncoder enc(TransformerOptions(i, 4));
  enc->build({-1, 10, h});
  REQUIRE(enc->count_params().total() == attention + 2 * norm + ffn);
  REQUIRE(enc->output_shape() == L::Shape{-1, 10, h});
  TransformerDecoder dec(TransformerOptions(i, 4));
  dec->build({-1, 10, h});
  REQUIRE_FALSE(dec->has_cross_attention());
  REQUIRE(dec->count_params().total() == attention + 2 * norm + ffn);
  TransformerDecoder cross(TransformerOptions(i, 4));
  cross->build_list({{-1, 10, h}, {-1, 7, 24}});
  // Cross-attention: query from the decoder (32), keys and values from the encoder (24 features).
  REQUIRE(cross->count_params().total() == 2 * attention + 3 * norm + ffn - 2 * (h * h) + 2 * (24 * h));
  TokenAndPositionEmbedding tpe(TokenAndPositionEmbeddingOptions(100, 16, h));
  tpe->build({-1, -1});
  REQUIRE(tpe->count_params().total() == 100 * h + 16 * h);
  REQUIRE(tpe->output_shape() == L::Shape{-1, -1, h});
  // The weight keys are the sub-layers' names.
  auto keys = dec->named_parameters().keys();
  REQUIRE(std::find(keys.begin(), keys.end(), "self_attention.query.weight") != keys.end());
  REQUIRE(std::find(keys.begin(), keys.end(), "feedforward_intermediate_dense.weight") != keys.end());
  auto tkeys = tpe->named_parameters().keys();
  REQUIRE(std::find(tkeys.begin(), tkeys.end(), "position_embedding.embeddings") != tkeys.end());

  LIGHTER_REQUIRE_THROWS_WITH(TransformerEncoder(TransformerOptions(8, 4))->build({-1, 5, 3}),
                              "3 features cannot be split into num_heads = 4 heads");
  LIGHTER_REQUIRE_THROWS_WITH(TransformerEncoder(TransformerOptions(0, 4)), "intermediate_dim: expected a positive integer");
  LIGHTER_REQUIRE_THROWS_WITH(TransformerEncoder(TransformerOptions(8, 2).activation("relux")), "activation");
  LIGHTER_REQUIRE_THROWS_WITH(tpe->forward(torch::zeros({1, 17}, torch::kLong)),
                              "sequence_length = 16 steps, got step 16");
}

TEST_CASE("TransformerEncoder and TransformerDecoder equal the block written out", "[layers][transformer]") {
  torch::manual_seed(41);
  auto x = torch::randn({2, 6, 8});
  for (bool first : {false, true}) {
    TransformerEncoder enc(TransformerOptions(12, 2).normalize_first(first).activation("gelu"));
    enc->eval();
    auto out = enc->forward(x);
    auto attend = [&](const torch::Tensor& in) { return enc->self_attention_layer->attend(in, in, in, {}, {}, {}).front(); };
    auto ffn = [&](const torch::Tensor& in) {
      return dense(enc->feedforward_output_dense, torch::gelu(dense(enc->feedforward_intermediate_dense, in)));
    };
    torch::Tensor want;
    if (first) {
      auto h = x + attend(layer_norm(x, enc->self_attention_layer_norm));
      want = h + ffn(layer_norm(h, enc->feedforward_layer_norm));
    } else {
      auto h = layer_norm(x + attend(x), enc->self_attention_layer_norm);
      want = layer_norm(h + ffn(h), enc->feedforward_layer_norm);
    }
    REQUIRE(max_abs_diff(out, want) < 1e-5);
  }
  // Decoder with cross-attention, post-norm: self (causal), cross, feed-forward.
  TransformerDecoder dec(TransformerOptions(12, 2));
  auto memory = torch::randn({2, 4, 10});
  auto out = dec->forward_list({x, memory}, {});
  auto causal = torch::ones({6, 6}, torch::kBool).tril().unsqueeze(0);
  auto h = layer_norm(x + dec->self_attention->attend(x, x, x, {}, {}, {}, causal).front(), dec->self_attention_layer_norm);
  auto mha = dec->cross_attention;
  // The cross-attention written out: softmax(q k^T / sqrt(d)) v per head, then the output projection.
  const int64_t heads = 2, d = 4;
  auto split = [&](const torch::Tensor& t) { return t.view({2, t.size(1), heads, d}).transpose(1, 2); };
  auto q = split(dense(mha->query_dense, h)), k = split(dense(mha->key_dense, memory)), v = split(dense(mha->value_dense, memory));
  auto ctx = torch::matmul(torch::softmax(torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(4.0), -1), v);
  auto crossed = dense(mha->output_dense, ctx.transpose(1, 2).reshape({2, 6, 8}));
  auto h2 = layer_norm(h + crossed, dec->cross_attention_layer_norm);
  auto want = layer_norm(h2 + dense(dec->feedforward_output_dense, torch::relu(dense(dec->feedforward_intermediate_dense, h2))),
                         dec->feedforward_layer_norm);
  REQUIRE(max_abs_diff(out, want) < 1e-5);
  LIGHTER_REQUIRE_THROWS_WITH(dec->forward(x), "was built with cross-attention");
}

TEST_CASE("SinePositionEncoding and PositionEmbedding give the positions' vectors", "[layers][transformer]") {
  SinePositionEncoding sine;
  auto x = torch::zeros({2, 5, 4});
  auto enc = sine->forward(x);
  REQUIRE(enc.sizes() == x.sizes());
  // Position 3, features 4: sin(3), cos(3), sin(3 / 100), cos(3 / 100) (timescales 1 and 10000^(-2/4)).
  auto row = enc[1][3];
  REQUIRE(row[0].item<double>() == Approx(std::sin(3.0)).margin(1e-6));
  REQUIRE(row[1].item<double>() == Approx(std::cos(3.0)).margin(1e-6));
  REQUIRE(row[2].item<double>() == Approx(std::sin(0.03)).margin(1e-6));
  REQUIRE(row[3].item<double>() == Approx(std::cos(0.03)).margin(1e-6));
  L::layers::DecodeCache cache;
  cache.position = 3;
  REQUIRE(max_abs_diff(sine->forward_step(x.slice(1, 0, 1), cache)[0][0], row) < 1e-6);

  torch::manual_seed(42);
  PositionEmbedding pos(PositionEmbeddingOptions(8));
  auto p = pos->forward(torch::randn({3, 5, 6}));
  REQUIRE(p.sizes() == torch::IntArrayRef({3, 5, 6}));
  REQUIRE(max_abs_diff(p[2], pos->embeddings.slice(0, 0, 5)) == 0);
  REQUIRE(pos->count_params().total() == 8 * 6);
  // Token + position: the token table row plus the position row.
  TokenAndPositionEmbedding tpe(TokenAndPositionEmbeddingOptions(10, 8, 6).mask_zero(true));
  auto ids = torch::tensor({{4, 2, 0}}, torch::kLong);
  auto e = tpe->forward(ids);
  REQUIRE(max_abs_diff(e[0][1], tpe->token_embedding->weight[2] + tpe->position_embedding->embeddings[1]) < 1e-6);
  REQUIRE(tpe->compute_mask(ids, {}).equal(torch::tensor({{true, true, false}})));
}

TEST_CASE("Transformer decoders are causal and encoders ignore padding", "[layers][transformer][masking]") {
  torch::manual_seed(43);
  auto lm = tiny_lm(20, 12);
  lm->eval();
  auto ids = torch::randint(1, 20, {2, 10}, torch::kLong);
  auto changed = ids.clone();
  changed.slice(1, 6, 10) = torch::randint(1, 20, {2, 4}, torch::kLong);
  auto a = lm->forward(ids), b = lm->forward(changed);
  // Changing steps 6.. leaves outputs 0..5 as they were, and changes later ones.
  REQUIRE(max_abs_diff(a.slice(1, 0, 6), b.slice(1, 0, 6)) < 1e-6);
  REQUIRE(max_abs_diff(a.slice(1, 6, 10), b.slice(1, 6, 10)) > 1e-3);

  // A classifier over padded token ids: the padding does not change the prediction.
  L::Sequential clf({InputLayer(InputLayerOptions({-1}).dtype("int64")),
                     TokenAndPositionEmbedding(TokenAndPositionEmbeddingOptions(30, 16, 8).mask_zero(true)),
                     TransformerEncoder(TransformerOptions(16, 2)), GlobalAveragePooling1D(),
                     Dense(DenseOptions(2).activation("softmax"))});
  clf->eval();
  auto tokens = torch::tensor({{5, 9, 3, 0, 0, 0}, {7, 2, 0, 0, 0, 0}}, torch::kLong);
  auto y = clf->forward(tokens);
  auto longer = torch::cat({tokens, torch::zeros({2, 5}, torch::kLong)}, 1);
  REQUIRE(max_abs_diff(clf->forward(longer), y) < 1e-5);
  // Each row alone, without padding, gives the same prediction.
  REQUIRE(max_abs_diff(clf->forward(tokens[1].slice(0, 0, 2).unsqueeze(0))[0], y[1]) < 1e-5);
  // A decoder with a padding mask: valid steps ignore the padded ones.
  TransformerDecoder dec(TransformerOptions(16, 2));
  dec->eval();
  auto x = torch::randn({1, 6, 8});
  auto mask = torch::tensor({{true, true, true, true, false, false}});
  auto masked = dec->forward_masked(x, mask);
  REQUIRE(max_abs_diff(masked.slice(1, 0, 4), dec->forward(x.slice(1, 0, 4))) < 1e-5);
}

TEST_CASE("Cached decoding equals the full computation", "[layers][transformer][generation]") {
  torch::manual_seed(44);
  for (bool first : {false, true}) {
    auto lm = tiny_lm(17, 32, first);
    lm->eval();
    torch::NoGradGuard no_grad;
    auto ids = torch::randint(0, 17, {3, 9}, torch::kLong);
    auto full = lm->forward_pre_activation(ids);
    // A prompt of 4 steps, then one step at a time.
    L::layers::DecodeCache cache;
    std::vector<torch::Tensor> parts{lm->forward_step(ids.slice(1, 0, 4), cache, true)};
    cache.position = 4;
    for (int64_t t = 4; t < 9; ++t) {
      parts.push_back(lm->forward_step(ids.slice(1, t, t + 1), cache, true));
      cache.position += 1;
    }
    REQUIRE(max_abs_diff(torch::cat(parts, 1), full) < 1e-4);
  }
  // Cross-attention decoding: the encoder's keys and values are cached once.
  TransformerDecoder dec(TransformerOptions(16, 2));
  dec->eval();
  auto x = torch::randn({2, 5, 8}), memory = torch::randn({2, 7, 8});
  auto memory_mask = torch::tensor({{true, true, true, true, true, true, true}, {true, true, true, false, false, false, false}});
  auto full = dec->forward_list({x, memory}, {torch::Tensor(), memory_mask});
  L::layers::DecodeCache cache;
  std::vector<torch::Tensor> parts;
  for (int64_t t = 0; t < 5; ++t) {
    parts.push_back(dec->step(x.slice(1, t, t + 1), memory, memory_mask, cache));
    cache.position += 1;
  }
  REQUIRE(max_abs_diff(torch::cat(parts, 1), full) < 1e-5);
  // A self-attention layer that is not causal cannot decode step by step.
  MultiHeadAttention plain(MultiHeadAttentionOptions(2, 4));
  L::layers::DecodeCache c2;
  LIGHTER_REQUIRE_THROWS_WITH(plain->forward_step(torch::randn({1, 1, 8}), c2), "without use_causal_mask");
  LIGHTER_REQUIRE_THROWS_WITH(TransformerEncoder(TransformerOptions(8, 2))->forward_step(torch::randn({1, 1, 8}), c2),
                              "cannot decode step by step");
}

TEST_CASE("Generation: cached greedy decoding gives the uncached tokens, samplers", "[layers][transformer][generation]") {
  torch::manual_seed(45);
  auto lm = tiny_lm(13, 40);
  auto prompt = torch::randint(1, 13, {2, 5}, torch::kLong);
  auto cached = L::models::generate(*lm, prompt, L::models::GenerateOptions().max_new_tokens(20));
  auto uncached = L::models::generate(*lm, prompt, L::models::GenerateOptions().max_new_tokens(20).use_cache(false));
  REQUIRE(cached.sizes() == torch::IntArrayRef({2, 25}));
  REQUIRE(cached.equal(uncached));
  REQUIRE(cached.slice(1, 0, 5).equal(prompt));
  REQUIRE(lm->is_training());  // the mode is restored
  // Seeded sampling repeats itself, with or without the cache.
  auto sampled = L::models::GenerateOptions().max_new_tokens(15).sampler("top_p").p(0.8).temperature(1.5).seed(7);
  auto s1 = L::models::generate(*lm, prompt, sampled);
  REQUIRE(s1.equal(L::models::generate(*lm, prompt, sampled)));
  REQUIRE(s1.equal(L::models::generate(*lm, prompt, L::models::GenerateOptions(sampled).use_cache(false))));
  // Past the position table: a clear error.
  LIGHTER_REQUIRE_THROWS_WITH(L::models::generate(*lm, prompt, L::models::GenerateOptions().max_new_tokens(40)),
                              "sequence_length = 40");
  // An end token stops each row; later ids repeat it.
  auto first_next = cached[0][5].item<int64_t>();
  auto stopped = L::models::generate(*lm, prompt.slice(0, 0, 1), L::models::GenerateOptions().max_new_tokens(10).end_token_id(first_next));
  REQUIRE(stopped.size(1) == 6);

  // Samplers on fixed logits: frequencies follow softmax; top_k never draws outside the k best; top_p keeps the
  // smallest set reaching p.
  auto logits = torch::log(torch::tensor({{0.1, 0.2, 0.3, 0.4}})).repeat({4000, 1});
  auto gen = at::detail::createCPUGenerator(3);
  auto counts = [&](const L::models::GenerateOptions& o) {
    auto draws = L::models::sample_next(logits, o, &gen);
    return torch::bincount(draws, {}, 4).to(torch::kDouble) / 4000.0;
  };
  auto freq = counts(L::models::GenerateOptions().sampler("random"));
  REQUIRE(max_abs_diff(freq, torch::tensor({0.1, 0.2, 0.3, 0.4})) < 0.03);
  auto top2 = counts(L::models::GenerateOptions().sampler("top_k").k(2));
  REQUIRE(top2[0].item<double>() == 0);
  REQUIRE(top2[1].item<double>() == 0);
  REQUIRE(top2[3].item<double>() == Approx(4.0 / 7).margin(0.03));
  // p = 0.6: 0.4 alone is short of it, 0.4 + 0.3 reaches it.
  auto nucleus = counts(L::models::GenerateOptions().sampler("top_p").p(0.6));
  REQUIRE(nucleus[1].item<double>() == 0);
  REQUIRE(nucleus[2].item<double>() == Approx(3.0 / 7).margin(0.03));
  REQUIRE(L::models::sample_next(logits.slice(0, 0, 2), L::models::GenerateOptions()).equal(torch::tensor({3, 3})));
  LIGHTER_REQUIRE_THROWS_WITH(L::models::generate(*lm, prompt, L::models::GenerateOptions().sampler("beam")),
                              "sampler: expected one of greedy, random, top_k, top_p");
}

TEST_CASE("Fused and unfused attention give the same values", "[layers][transformer][attention]") {
  torch::manual_seed(46);
  TransformerDecoder dec(TransformerOptions(16, 4));
  dec->eval();
  auto x = torch::randn({3, 7, 16}), memory = torch::randn({3, 5, 16});
  auto mask = torch::arange(7).unsqueeze(0).lt(torch::tensor({7, 4, 2}).unsqueeze(1));
  auto memory_mask = torch::arange(5).unsqueeze(0).lt(torch::tensor({5, 3, 1}).unsqueeze(1));
  L::layers::set_fused_attention(true);
  auto fused = dec->forward_list({x, memory}, {mask, memory_mask});
  L::layers::set_fused_attention(false);
  auto plain = dec->forward_list({x, memory}, {mask, memory_mask});
  L::layers::set_fused_attention(true);
  REQUIRE(L::layers::fused_attention_enabled());
  REQUIRE(max_abs_diff(fused, plain) < 1e-5);
}

TEST_CASE("Transformer layers in JSON: configs, Sequential and Functional graphs", "[layers][transformer][functional]") {
  torch::manual_seed(47);
  // Round trips of each layer's config.
  for (const LayerPtr& l : std::vector<LayerPtr>{
           TokenAndPositionEmbedding(TokenAndPositionEmbeddingOptions(50, 20, 8).mask_zero(true)).ptr(),
           PositionEmbedding(PositionEmbeddingOptions(20)).ptr(), SinePositionEncoding().ptr(),
           TransformerEncoder(TransformerOptions(16, 2).dropout(0.1).normalize_first(true)).ptr(),
           TransformerDecoder(TransformerOptions(16, 2).activation("gelu").layer_norm_epsilon(1e-6)).ptr()}) {
    json spec = L::layers::to_json(*l);
    REQUIRE(L::layers::to_json(*L::layers::from_json(spec, "layer")) == spec);
  }
  // KerasHub's serialised form (module and registered_name) in a Keras 3 Functional model: an encoder-decoder.
  json j = json::parse(R"({"class_name": "Functional", "config": {"name": "s2s", "layers": [
    {"class_name": "InputLayer", "name": "src", "config": {"batch_shape": [null, null], "dtype": "int64", "name": "src"}, "inbound_nodes": []},
    {"class_name": "InputLayer", "name": "tgt", "config": {"batch_shape": [null, null], "dtype": "int64", "name": "tgt"}, "inbound_nodes": []},
    {"module": "keras_hub.layers", "class_name": "TokenAndPositionEmbedding", "registered_name": "keras_hub>TokenAndPositionEmbedding", "name": "src_emb",
     "config": {"name": "src_emb", "vocabulary_size": 30, "sequence_length": 12, "embedding_dim": 16, "mask_zero": true},
     "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["src", 0, 0]}}], "kwargs": {}}]},
    {"class_name": "TokenAndPositionEmbedding", "name": "tgt_emb",
     "config": {"name": "tgt_emb", "vocabulary_size": 30, "sequence_length": 12, "embedding_dim": 16, "mask_zero": true},
     "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["tgt", 0, 0]}}], "kwargs": {}}]},
    {"module": "keras_hub.layers", "class_name": "TransformerEncoder", "registered_name": "keras_hub>TransformerEncoder", "name": "enc",
     "config": {"name": "enc", "trainable": true, "dtype": "float32", "intermediate_dim": 32, "num_heads": 2, "dropout": 0.0,
                "activation": "relu", "layer_norm_epsilon": 1e-05, "kernel_initializer": "glorot_uniform",
                "bias_initializer": "zeros", "normalize_first": false},
     "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["src_emb", 0, 0]}}], "kwargs": {}}]},
    {"class_name": "TransformerDecoder", "name": "dec", "config": {"name": "dec", "intermediate_dim": 32, "num_heads": 2},
     "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["tgt_emb", 0, 0]}}],
                        "kwargs": {"encoder_sequence": {"class_name": "__keras_tensor__", "config": {"keras_history": ["enc", 0, 0]}},
                                   "use_causal_mask": true}}]},
    {"class_name": "Dense", "name": "out", "config": {"name": "out", "units": 30, "activation": "softmax"},
     "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["dec", 0, 0]}}], "kwargs": {}}]}],
    "input_layers": [["src", 0, 0], ["tgt", 0, 0]], "output_layers": [["out", 0, 0]]}})");
  auto model = L::models::model_from_json(j);
  const int64_t attention = 4 * (16 * 16 + 16), ffn = 16 * 32 + 32 + 32 * 16 + 16;
  REQUIRE(model->count_params().total() == 2 * (30 * 16 + 12 * 16) + (attention + 4 * 16 + ffn) +
                                               (2 * attention + 6 * 16 + ffn) + (16 * 30 + 30));
  model->eval();
  auto src = torch::tensor({{3, 4, 5, 0}, {6, 7, 0, 0}}, torch::kLong), tgt = torch::tensor({{1, 8, 9}, {1, 2, 0}}, torch::kLong);
  auto out = model->call({src, tgt});
  REQUIRE(out.values[0].sizes() == torch::IntArrayRef({2, 3, 30}));
  REQUIRE(out.masks[0].equal(tgt.ne(0)));
  // Padding the source further changes nothing.
  auto more = model->call({torch::cat({src, torch::zeros({2, 3}, torch::kLong)}, 1), tgt});
  REQUIRE(max_abs_diff(more.values[0], out.values[0]) < 1e-5);
  // Written back as Keras 3 JSON, read again: the same graph.
  json back = model->to_json();
  REQUIRE(L::models::model_from_json(back)->to_json() == back);

  // A decoder-only LM as a Sequential config.
  json seq = json::parse(R"({"class_name": "Sequential", "config": {"name": "lm", "layers": [
    {"class_name": "InputLayer", "config": {"batch_shape": [null, null], "dtype": "int64"}},
    {"class_name": "TokenAndPositionEmbedding", "config": {"vocabulary_size": 40, "sequence_length": 64, "embedding_dim": 16}},
    {"class_name": "TransformerDecoder", "config": {"intermediate_dim": 32, "num_heads": 4, "normalize_first": true}},
    {"class_name": "Dense", "config": {"units": 40}}]}})");
  auto lm = L::models::model_from_json(seq);
  REQUIRE(lm->output_shape() == L::Shape{-1, -1, 40});
  seq["config"]["layers"][2]["config"]["num_heads"] = -1;
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(seq, "model"),
                              "model.config.layers[2].config.num_heads: expected a positive integer");
  j["config"]["layers"][5]["inbound_nodes"][0]["kwargs"]["use_causal_mask"] = false;
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(j, "model"), "use_causal_mask false is not supported");
}
