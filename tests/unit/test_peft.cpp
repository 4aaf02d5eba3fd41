#include "lighter_test.h"
#include "cli_runs.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "char_lm_run.h"
#include "lighter/core/safetensors.h"
#include "lighter/peft/lora.h"

// LoRA and DoRA adapters: outputs against the formulas written out with torch ops, merging, training with the
// Trainer, and PEFT's file layout.

namespace L = lighter;
namespace P = lighter::peft;
using lighter_test::max_abs_diff;
using lighter_test::write_json;
using L::layers::Conv1D;
using L::layers::Conv1DOptions;
using L::layers::Conv2D;
using L::layers::Conv2DOptions;
using L::layers::Flatten;
using L::layers::GlobalAveragePooling1D;
using L::layers::MultiHeadAttention;
using L::layers::MultiHeadAttentionOptions;
using nlohmann::json;

namespace {

torch::Tensor run(const L::models::ModelPtr& model, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  model->eval();
  return model->forward(x);
}

std::shared_ptr<P::LoraLayerImpl> hook_of(const L::layers::LayerImpl& layer) {
  auto hook = std::dynamic_pointer_cast<P::LoraLayerImpl>(layer.adapter_hook());
  REQUIRE(hook);
  return hook;
}

/// Gives B (or, for embeddings, A) random values, so the adapter changes the output.
void randomize(P::LoraLayerImpl& hook, const std::string& name = "default") {
  torch::NoGradGuard no_grad;
  auto w = hook.weights(name);
  if (hook.kind() == P::LoraLayerImpl::Kind::Embedding) {
    w->lora_A.normal_(0.0, 0.5);
  } else {
    w->lora_B.normal_(0.0, 0.5);
  }
}

std::map<std::string, torch::Tensor> snapshot(const L::models::ModelImpl& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [k, t] : L::model_tensors(model)) out[k] = t.detach().clone();
  return out;
}

L::models::ModelPtr mlp(int64_t inputs = 4) {
  return L::Sequential({L::Input({inputs}), L::Dense(L::DenseOptions(16).activation("relu").name("hidden")),
                        L::Dense(L::DenseOptions(3).activation("softmax").name("head"))})
      .ptr();
}

}  // namespace

TEST_CASE("LoRA on Dense: a fresh adapter changes nothing and the output is W x + b + s B A x", "[peft]") {
  L::seed_everything(1);
  auto model = L::Sequential({L::Input({4}), L::Dense(L::DenseOptions(3).name("d"))}).ptr();
  auto x = torch::randn({5, 4});
  auto y0 = run(model, x);
  const json config_before = model->to_json();
  auto& dense = dynamic_cast<L::layers::DenseImpl&>(*model->layers().back());
  const auto w0 = dense.weight.detach().clone();

  P::PeftModel peft(model, P::LoraConfig().r(2).lora_alpha(4).target_modules({"Dense"}));
  REQUIRE(peft.adapted_modules("default") == std::vector<std::string>{"d"});
  auto hook = hook_of(dense);
  REQUIRE(hook->scaling("default") == 2.0);  // alpha / r
  // PEFT's init: A Kaiming-uniform (bound 1/sqrt(in)), B zero.
  auto a = hook->weights("default")->lora_A;
  REQUIRE(a.sizes() == at::IntArrayRef({2, 4}));
  REQUIRE(a.abs().max().item<double>() <= 0.5);
  REQUIRE(a.abs().max().item<double>() > 0.0);
  REQUIRE(torch::equal(hook->weights("default")->lora_B, torch::zeros({3, 2})));
  REQUIRE(torch::equal(run(model, x), y0));  // exactly
  REQUIRE(model->to_json() == config_before);

  randomize(*hook);
  auto b = hook->weights("default")->lora_B;
  auto expected = x.matmul(dense.weight.t()) + dense.bias + 2.0 * x.matmul(a.t()).matmul(b.t());
  auto y1 = run(model, x);
  REQUIRE(max_abs_diff(y1, expected) < 1e-5);
  REQUIRE(max_abs_diff(y1, y0) > 1e-2);

  // merge: W + s·B·A in the weight, the same outputs (float32 rounding: 1e-5); unmerge: the original weight back.
  peft.merge();
  REQUIRE(peft.merged());
  REQUIRE(max_abs_diff(dense.weight, w0 + 2.0 * b.matmul(a)) < 1e-6);
  REQUIRE(max_abs_diff(run(model, x), y1) < 1e-5);
  peft.unmerge();
  REQUIRE_FALSE(peft.merged());
  REQUIRE(max_abs_diff(dense.weight, w0) < 1e-6);
  REQUIRE(max_abs_diff(run(model, x), y1) < 1e-6);

  // merge_and_unload: the plain model computes the adapted function, without hook or adapter tensors.
  auto plain = peft.merge_and_unload();
  REQUIRE(plain == model);
  REQUIRE_FALSE(dense.adapter_hook());
  REQUIRE(max_abs_diff(run(model, x), y1) < 1e-5);
  for (const auto& p : model->named_parameters(true)) {
    REQUIRE(p.key().find("adapter_hook") == std::string::npos);
    REQUIRE(p.value().requires_grad());  // trainable again, as before the adapter
  }
  REQUIRE(model->to_json() == config_before);
}

TEST_CASE("rsLoRA scales by alpha over the square root of r", "[peft]") {
  L::seed_everything(2);
  auto model = L::Sequential({L::Input({6}), L::Dense(L::DenseOptions(5).name("d"))}).ptr();
  P::PeftModel peft(model, P::LoraConfig().r(4).lora_alpha(8).use_rslora(true).target_modules({"d"}));
  auto& dense = dynamic_cast<L::layers::DenseImpl&>(*model->layers().back());
  auto hook = hook_of(dense);
  REQUIRE(hook->scaling("default") == 4.0);  // 8 / sqrt(4), not 8 / 4
  REQUIRE(P::LoraConfig().r(4).lora_alpha(8).scaling() == 2.0);
  randomize(*hook);
  auto x = torch::randn({3, 6});
  auto a = hook->weights("default")->lora_A, b = hook->weights("default")->lora_B;
  auto expected = x.matmul(dense.weight.t()) + dense.bias + 4.0 * x.matmul(a.t()).matmul(b.t());
  REQUIRE(max_abs_diff(run(model, x), expected) < 1e-5);
}

TEST_CASE("lora_dropout drops the adapter's input in training only", "[peft]") {
  L::seed_everything(11);
  auto model = L::Sequential({L::Input({8}), L::Dense(L::DenseOptions(4).name("d"))}).ptr();
  P::PeftModel peft(model, P::LoraConfig().r(2).lora_alpha(2).lora_dropout(0.5).target_modules({"d"}));
  auto& dense = dynamic_cast<L::layers::DenseImpl&>(*model->layers().back());
  auto hook = hook_of(dense);
  randomize(*hook);
  auto x = torch::randn({3, 8});
  auto a = hook->weights("default")->lora_A, b = hook->weights("default")->lora_B;
  auto y = run(model, x);
  REQUIRE(max_abs_diff(y, x.matmul(dense.weight.t()) + dense.bias + x.matmul(a.t()).matmul(b.t())) < 1e-5);
  model->train();
  torch::NoGradGuard no_grad;
  auto t1 = model->forward(x), t2 = model->forward(x);
  REQUIRE(max_abs_diff(t1, t2) > 1e-6);
  REQUIRE(torch::equal(run(model, x), y));
}

TEST_CASE("DoRA: the magnitude starts at the row norm and the output is m (W + sBA) / ||W + sBA|| x + b", "[peft]") {
  L::seed_everything(3);
  auto model = L::Sequential({L::Input({4}), L::Dense(L::DenseOptions(3).name("d"))}).ptr();
  auto x = torch::randn({6, 4});
  auto y0 = run(model, x);
  auto& dense = dynamic_cast<L::layers::DenseImpl&>(*model->layers().back());
  const auto w0 = dense.weight.detach().clone();
  P::PeftModel peft(model, P::LoraConfig().r(2).lora_alpha(2).use_dora(true).target_modules({"d"}));
  auto hook = hook_of(dense);
  auto m = hook->weights("default")->magnitude;
  REQUIRE(m.sizes() == at::IntArrayRef({3}));
  REQUIRE(max_abs_diff(m, w0.pow(2).sum(1).sqrt()) < 1e-6);
  REQUIRE(torch::equal(run(model, x), y0));  // m / ||W|| = 1 exactly for a fresh adapter

  randomize(*hook);
  {
    torch::NoGradGuard no_grad;
    m.mul_(torch::tensor({1.5f, 0.5f, 2.0f}));
  }
  auto a = hook->weights("default")->lora_A, b = hook->weights("default")->lora_B;
  auto adapted = w0 + 1.0 * b.matmul(a);
  auto directed = adapted / adapted.pow(2).sum(1, true).sqrt() * m.unsqueeze(1);
  auto expected = x.matmul(directed.t()) + dense.bias;
  auto y1 = run(model, x);
  REQUIRE(max_abs_diff(y1, expected) < 1e-5);

  // The norm is detached: the magnitude and both factors get gradients, the norm passes none.
  model->train();
  auto loss = model->forward(x).sum();
  loss.backward();
  REQUIRE(m.grad().defined());
  REQUIRE(b.grad().defined());
  REQUIRE_FALSE(dense.weight.grad().defined());  // frozen

  peft.merge();
  REQUIRE(max_abs_diff(dense.weight, directed) < 1e-5);
  REQUIRE(max_abs_diff(run(model, x), y1) < 1e-5);
  peft.unmerge();
  REQUIRE(max_abs_diff(dense.weight, w0) < 1e-5);
  REQUIRE(max_abs_diff(run(model, x), y1) < 1e-5);
}

TEST_CASE("LoRA and DoRA on Conv1D, Conv2D and Embedding have PEFT's shapes and compute the merged weight's output",
          "[peft]") {
  L::seed_everything(4);
  SECTION("Conv2D") {
    auto model = L::Sequential({L::Input({7, 7, 2}), Conv2D(Conv2DOptions(4, 3).padding("same").name("c"))}).ptr();
    auto x = torch::randn({2, 7, 7, 2});
    auto y0 = run(model, x);
    auto& conv = dynamic_cast<L::layers::Conv2DImpl&>(*model->layers().back());
    P::PeftModel peft(model, P::LoraConfig().r(2).lora_alpha(4).target_modules({"Conv2D"}));
    auto hook = hook_of(conv);
    auto a = hook->weights("default")->lora_A, b = hook->weights("default")->lora_B;
    REQUIRE(a.sizes() == at::IntArrayRef({2, 2, 3, 3}));
    REQUIRE(b.sizes() == at::IntArrayRef({4, 2, 1, 1}));
    REQUIRE(torch::equal(run(model, x), y0));
    randomize(*hook);
    // W + s·ΔW with ΔW[o, i, h, w] = Σ_r B[o, r] A[r, i, h, w], through torch's conv2d (same padding = 1 here).
    auto delta = torch::einsum("or,rihw->oihw", {b.flatten(1), a});
    auto w = conv.weight + 2.0 * delta;
    auto expected = torch::conv2d(x.permute({0, 3, 1, 2}), w, conv.bias, 1, 1).permute({0, 2, 3, 1});
    auto y1 = run(model, x);
    REQUIRE(max_abs_diff(y1, expected) < 1e-4);
    peft.merge();
    REQUIRE(max_abs_diff(run(model, x), y1) < 1e-4);
    peft.unmerge();
    REQUIRE(max_abs_diff(run(model, x), y1) < 1e-4);
  }
  SECTION("Conv1D with DoRA") {
    auto model = L::Sequential({L::Input({9, 3}), Conv1D(Conv1DOptions(5, 3).name("c"))}).ptr();
    auto x = torch::randn({2, 9, 3});
    auto y0 = run(model, x);
    auto& conv = dynamic_cast<L::layers::Conv1DImpl&>(*model->layers().back());
    const auto w0 = conv.weight.detach().clone();
    P::PeftModel peft(model, P::LoraConfig().r(2).use_dora(true).target_modules({"c"}));
    auto hook = hook_of(conv);
    auto w = hook->weights("default");
    REQUIRE(w->lora_A.sizes() == at::IntArrayRef({2, 3, 3}));
    REQUIRE(w->lora_B.sizes() == at::IntArrayRef({5, 2, 1}));
    REQUIRE(w->magnitude.sizes() == at::IntArrayRef({1, 5, 1}));  // PEFT's DoRA shape for convolutions
    REQUIRE(max_abs_diff(w->magnitude.flatten(), w0.flatten(1).pow(2).sum(1).sqrt()) < 1e-6);
    REQUIRE(max_abs_diff(run(model, x), y0) < 1e-6);
    randomize(*hook);
    {
      torch::NoGradGuard no_grad;
      w->magnitude.mul_(1.3);
    }
    auto adapted = w0 + 4.0 * torch::einsum("or,rik->oik", {w->lora_B.flatten(1), w->lora_A});  // s = 8 / 2
    auto norm = adapted.flatten(1).pow(2).sum(1).sqrt().view({-1, 1, 1});
    auto directed = adapted / norm * w->magnitude.view({-1, 1, 1});
    auto expected = torch::conv1d(x.permute({0, 2, 1}), directed, conv.bias).permute({0, 2, 1});
    auto y1 = run(model, x);
    REQUIRE(max_abs_diff(y1, expected) < 1e-4);
    peft.merge();
    REQUIRE(max_abs_diff(conv.weight, directed) < 1e-5);
    REQUIRE(max_abs_diff(run(model, x), y1) < 1e-4);
    peft.unmerge();
    REQUIRE(max_abs_diff(conv.weight, w0) < 1e-5);
  }
  SECTION("Embedding") {
    auto model = L::Sequential({L::Input({5}), L::Embedding(L::EmbeddingOptions(10, 6).name("emb"))}).ptr();
    auto ids = torch::randint(0, 10, {3, 5}).to(torch::kFloat);
    auto y0 = run(model, ids);
    auto& emb = dynamic_cast<L::layers::EmbeddingImpl&>(*model->layers().back());
    P::PeftModel peft(model, P::LoraConfig().r(2).lora_alpha(2).target_modules({"emb"}));
    auto hook = hook_of(emb);
    auto a = hook->weights("default")->lora_A, b = hook->weights("default")->lora_B;
    // PEFT's embedding init: A zero [r, input_dim], B normal [output_dim, r].
    REQUIRE(a.sizes() == at::IntArrayRef({2, 10}));
    REQUIRE(b.sizes() == at::IntArrayRef({6, 2}));
    REQUIRE(torch::equal(a, torch::zeros({2, 10})));
    REQUIRE(b.abs().sum().item<double>() > 0);
    REQUIRE(torch::equal(run(model, ids), y0));
    randomize(*hook);
    auto id = ids.to(torch::kLong);
    auto expected = emb.weight.index({id}) + a.t().index({id}).matmul(b.t());
    auto y1 = run(model, ids);
    REQUIRE(max_abs_diff(y1, expected) < 1e-5);
    peft.merge();
    REQUIRE(max_abs_diff(run(model, ids), y1) < 1e-5);
    peft.unmerge();
    REQUIRE(max_abs_diff(run(model, ids), y1) < 1e-5);
  }
  SECTION("Embedding with DoRA") {
    auto model = L::Sequential({L::Input({5}), L::Embedding(L::EmbeddingOptions(10, 6).name("emb"))}).ptr();
    auto ids = torch::randint(0, 10, {3, 5}).to(torch::kFloat);
    auto y0 = run(model, ids);
    auto& emb = dynamic_cast<L::layers::EmbeddingImpl&>(*model->layers().back());
    P::PeftModel peft(model, P::LoraConfig().r(2).use_dora(true).target_modules({"emb"}));
    auto m = hook_of(emb)->weights("default")->magnitude;
    REQUIRE(m.sizes() == at::IntArrayRef({6}));  // one per output feature, as PEFT
    REQUIRE(max_abs_diff(m, emb.weight.pow(2).sum(0).sqrt()) < 1e-6);
    REQUIRE(torch::equal(run(model, ids), y0));
    randomize(*hook_of(emb));
    auto y1 = run(model, ids);
    peft.merge();
    REQUIRE(max_abs_diff(run(model, ids), y1) < 1e-5);
    peft.unmerge();
    REQUIRE(max_abs_diff(run(model, ids), y1) < 1e-5);
  }
}

TEST_CASE("Training with the Trainer changes only the adapter: base weights stay bit-identical", "[peft][training]") {
  L::seed_everything(5);
  auto opts = L::data::CsvOptions().target("species");
  auto train = L::data::read_csv(lighter_test::source_path("examples/data/iris_train.csv"), opts);
  auto x = (train.x - train.x.mean(0)) / train.x.std(0);
  auto model = mlp();
  const auto base = snapshot(*model);
  const auto base_count = model->count_params();

  P::PeftModel peft(model, P::LoraConfig().r(4).lora_alpha(8).target_modules({"hidden", "head"}));
  // hidden: A [4, 4] + B [16, 4]; head: A [4, 16] + B [3, 4].
  const int64_t adapter = 16 + 64 + 64 + 12;
  auto count = model->count_params();
  REQUIRE(count.trainable == adapter);
  REQUIRE(count.non_trainable == base_count.total());
  REQUIRE_THAT(model->summary(), LIGHTER_CONTAINS("Trainable params: 156"));
  // The base model's weight file holds no adapter tensor.
  REQUIRE(L::model_tensors(*model).size() == base.size());
  // Resumable checkpoints keep them: A and B of two layers.
  REQUIRE(L::model_tensors(*model, /*with_adapters=*/true).size() == base.size() + 4);

  model->compile(L::optimizers::adam(0.02), "sparse_categorical_crossentropy", json{"accuracy"});
  auto history = model->fit(x, train.y, L::FitOptions().epochs(8).batch_size(16).verbose(0));
  REQUIRE(history.history["loss"].back() < history.history["loss"].front());
  for (const auto& [k, t] : L::model_tensors(*model)) REQUIRE(torch::equal(t, base.at(k)));
  for (const auto& path : {"hidden", "head"}) {
    auto& layer = *model->named_modules()[path];
    auto hook = hook_of(dynamic_cast<L::layers::LayerImpl&>(layer));
    REQUIRE(hook->weights("default")->lora_B.abs().sum().item<double>() > 0);  // trained away from zero
  }
}

TEST_CASE("modules_to_save trains a layer fully and disabling adapters gives the base model back", "[peft][training]") {
  L::seed_everything(6);
  auto opts = L::data::CsvOptions().target("species");
  auto train = L::data::read_csv(lighter_test::source_path("examples/data/iris_train.csv"), opts);
  auto x = (train.x - train.x.mean(0)) / train.x.std(0);
  auto model = mlp();
  const auto base = snapshot(*model);
  auto y0 = run(model, x);
  P::PeftModel peft(model, P::LoraConfig().r(2).target_modules({"hidden"}).modules_to_save({"head"}));
  REQUIRE(peft.saved_modules("default") == std::vector<std::string>{"head"});
  // hidden: A [2, 4] + B [16, 2]; head: 16·3 + 3.
  REQUIRE(model->count_params().trainable == 8 + 32 + 51);
  model->compile(L::optimizers::adam(0.02), "sparse_categorical_crossentropy");
  model->fit(x, train.y, L::FitOptions().epochs(4).batch_size(16).verbose(0));
  auto current = snapshot(*model);
  REQUIRE(torch::equal(current.at("hidden.weight"), base.at("hidden.weight")));
  REQUIRE(torch::equal(current.at("hidden.bias"), base.at("hidden.bias")));
  REQUIRE_FALSE(torch::equal(current.at("head.weight"), base.at("head.weight")));
  auto y1 = run(model, x);
  {
    P::DisableAdapters off(peft);
    REQUIRE(torch::equal(run(model, x), y0));
    REQUIRE(torch::equal(snapshot(*model).at("head.weight"), base.at("head.weight")));
  }
  REQUIRE(torch::equal(run(model, x), y1));
}

TEST_CASE("bias all trains every bias and saves it under PEFT's names", "[peft]") {
  L::seed_everything(12);
  auto model = mlp();
  P::PeftModel peft(model, P::LoraConfig().r(2).bias("all").target_modules({"hidden"}));
  // hidden: A [2, 4] + B [16, 2], and the biases of both layers.
  REQUIRE(model->count_params().trainable == 8 + 32 + 16 + 3);
  std::set<std::string> keys;
  for (const auto& [k, t] : peft.adapter_tensors("default")) keys.insert(k);
  // An adapted layer's own weights sit under `base_layer` in PEFT's wrapped module.
  REQUIRE(keys == std::set<std::string>{"base_model.model.hidden.lora_A.weight", "base_model.model.hidden.lora_B.weight",
                                        "base_model.model.hidden.base_layer.bias", "base_model.model.head.bias"});
}

TEST_CASE("Several named adapters: set_adapter switches, delete_adapter removes", "[peft]") {
  L::seed_everything(7);
  auto model = mlp(5);
  auto x = torch::randn({4, 5});
  auto y0 = run(model, x);
  P::PeftModel peft(model, P::LoraConfig().r(2).target_modules({"Dense"}), "a");
  peft.add_adapter("b", P::LoraConfig().r(3).target_modules({"head"}));
  REQUIRE(peft.adapters() == std::vector<std::string>{"a", "b"});
  REQUIRE(peft.active_adapter() == "a");
  REQUIRE(peft.adapted_modules("b") == std::vector<std::string>{"head"});
  auto& head = dynamic_cast<L::layers::LayerImpl&>(*model->named_modules()["head"]);
  auto& hidden = dynamic_cast<L::layers::LayerImpl&>(*model->named_modules()["hidden"]);
  randomize(*hook_of(hidden), "a");
  randomize(*hook_of(head), "b");
  auto ya = run(model, x);
  REQUIRE(max_abs_diff(ya, y0) > 1e-4);
  REQUIRE(hook_of(head)->weights("a")->lora_A.requires_grad());
  REQUIRE_FALSE(hook_of(head)->weights("b")->lora_A.requires_grad());

  peft.set_adapter("b");
  auto yb = run(model, x);
  REQUIRE(max_abs_diff(yb, ya) > 1e-4);
  REQUIRE(hook_of(head)->weights("b")->lora_A.requires_grad());
  REQUIRE_FALSE(hook_of(head)->weights("a")->lora_A.requires_grad());
  peft.set_adapter("a");
  REQUIRE(torch::equal(run(model, x), ya));
  {
    P::DisableAdapters off(peft);
    REQUIRE_FALSE(peft.adapters_enabled());
    REQUIRE(torch::equal(run(model, x), y0));
  }
  REQUIRE(torch::equal(run(model, x), ya));
  LIGHTER_REQUIRE_THROWS_WITH(peft.set_adapter("c"), "has no adapter 'c'");
  LIGHTER_REQUIRE_THROWS_WITH(peft.add_adapter("a", P::LoraConfig().target_modules({"head"})), "already has an adapter 'a'");
  LIGHTER_REQUIRE_THROWS_WITH(peft.add_adapter("c", P::LoraConfig().target_modules({"nothing"})), "no layer of model");

  peft.delete_adapter("a");
  REQUIRE(peft.active_adapter() == "b");
  REQUIRE_FALSE(hidden.adapter_hook());  // its only adapter is gone
  REQUIRE(torch::equal(run(model, x), yb));
}

TEST_CASE("MultiHeadAttention's projections get adapters when targeted", "[peft][attention]") {
  L::seed_everything(8);
  auto tokens = L::keras_input({6}, "tokens");
  auto e = L::call(L::Embedding(L::EmbeddingOptions(20, 8).name("emb")), tokens);
  MultiHeadAttention mha(MultiHeadAttentionOptions(2, 4).name("mha"));
  auto attended = L::call(mha, {e, e});
  auto out = L::call(L::Dense(L::DenseOptions(3).name("head")), L::call(GlobalAveragePooling1D(), attended));
  auto model = L::Functional({tokens}, {out}, "attn").ptr();
  auto ids = torch::randint(0, 20, {2, 6}).to(torch::kFloat);
  auto y0 = run(model, ids);

  LIGHTER_REQUIRE_THROWS_WITH(P::PeftModel(model, P::LoraConfig().target_modules({"mha"})),
                              "(MultiHeadAttention) takes no LoRA adapter");
  P::PeftModel all(model, P::LoraConfig().r(2).target_modules({"query", "key", "value", "attention_output"}), "all");
  REQUIRE(all.adapted_modules("all") ==
          std::vector<std::string>{"mha.query", "mha.key", "mha.value", "mha.attention_output"});
  REQUIRE(torch::equal(run(model, ids), y0));
  all.add_adapter("qv", P::LoraConfig().r(2).target_regex(R"(mha\.(query|value))"));
  REQUIRE(all.adapted_modules("qv") == std::vector<std::string>{"mha.query", "mha.value"});
  all.set_adapter("qv");
  REQUIRE(torch::equal(run(model, ids), y0));
  randomize(*hook_of(*mha->value_dense), "qv");
  REQUIRE(max_abs_diff(run(model, ids), y0) > 1e-5);
  std::set<std::string> keys;
  for (const auto& [k, t] : all.adapter_tensors("qv")) keys.insert(k);
  REQUIRE(keys == std::set<std::string>{"base_model.model.mha.query.lora_A.weight", "base_model.model.mha.query.lora_B.weight",
                                        "base_model.model.mha.value.lora_A.weight", "base_model.model.mha.value.lora_B.weight"});
}

TEST_CASE("Adapter files have PEFT's layout and load back to identical outputs", "[peft]") {
  L::seed_everything(9);
  auto model = L::Sequential({L::Input({5}), L::Embedding(L::EmbeddingOptions(10, 8).name("emb")),
                              Conv1D(Conv1DOptions(4, 3).name("conv")), Flatten(), L::Dense(L::DenseOptions(3).name("head"))})
                   .ptr();
  auto ids = torch::randint(0, 10, {4, 5}).to(torch::kFloat);
  const json config_before = model->to_json();
  const std::string dir = lighter_test::temp_dir("peft_files");
  L::save_model(*model, dir + "/base");

  P::PeftModel peft(model, P::LoraConfig().r(2).lora_alpha(4).use_dora(true).bias("lora_only")
                               .target_modules({"emb", "conv", "head"}).task_type("FEATURE_EXTRACTION"));
  for (const auto& path : peft.adapted_modules("default"))
    randomize(*hook_of(dynamic_cast<L::layers::LayerImpl&>(*model->named_modules()[path])));
  {
    torch::NoGradGuard no_grad;
    dynamic_cast<L::layers::DenseImpl&>(*model->named_modules()["head"]).bias.add_(0.25);  // a trained bias
  }
  auto y1 = run(model, ids);
  peft.save_adapter(dir + "/adapter");
  REQUIRE(model->to_json() == config_before);

  // The tensors: PEFT's keys (adapter name left out) and shapes.
  auto stored = L::load_safetensors(dir + "/adapter/adapter_model.safetensors");
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& [k, t] : stored) shapes[k] = t.sizes().vec();
  const std::map<std::string, std::vector<int64_t>> expected{
      {"base_model.model.emb.lora_embedding_A", {2, 10}},
      {"base_model.model.emb.lora_embedding_B", {8, 2}},
      {"base_model.model.emb.lora_magnitude_vector", {8}},
      {"base_model.model.conv.lora_A.weight", {2, 8, 3}},
      {"base_model.model.conv.lora_B.weight", {4, 2, 1}},
      {"base_model.model.conv.lora_magnitude_vector", {1, 4, 1}},
      {"base_model.model.conv.base_layer.bias", {4}},
      {"base_model.model.head.lora_A.weight", {2, 12}},
      {"base_model.model.head.lora_B.weight", {3, 2}},
      {"base_model.model.head.lora_magnitude_vector", {3}},
      {"base_model.model.head.base_layer.bias", {3}}};
  REQUIRE(shapes == expected);

  // The config: PEFT's LoraConfig fields.
  auto cfg = L::read_json_file(dir + "/adapter/adapter_config.json");
  REQUIRE(cfg["peft_type"] == "LORA");
  REQUIRE(cfg["r"] == 2);
  REQUIRE(cfg["lora_alpha"] == 4);
  REQUIRE(cfg["lora_dropout"] == 0.0);
  REQUIRE(cfg["target_modules"] == json{"emb", "conv", "head"});
  REQUIRE(cfg["bias"] == "lora_only");
  REQUIRE(cfg["use_dora"] == true);
  REQUIRE(cfg["use_rslora"] == false);
  REQUIRE(cfg["modules_to_save"].is_null());
  REQUIRE(cfg["fan_in_fan_out"] == false);
  REQUIRE(cfg["init_lora_weights"] == true);
  REQUIRE(cfg["task_type"] == "FEATURE_EXTRACTION");
  REQUIRE(cfg["base_model_name_or_path"].is_null());
  REQUIRE(cfg["rank_pattern"] == json::object());

  // The base model saved before holds no adapter; loading the adapter onto it gives the same outputs.
  auto base_file = L::load_safetensors(dir + "/base/model.safetensors");
  for (const auto& [k, t] : base_file) REQUIRE(k.find("adapter") == std::string::npos);
  auto again = L::load_model(dir + "/base");
  P::PeftModel loaded(again);
  loaded.load_adapter(dir + "/adapter");
  REQUIRE(loaded.active_adapter() == "default");
  REQUIRE(loaded.config("default").use_dora());
  REQUIRE(torch::equal(run(again, ids), y1));
  // And save_model of the adapted model still writes the base architecture and base tensor names only.
  L::save_model(*model, dir + "/adapted_base");
  REQUIRE(L::load_safetensors(dir + "/adapted_base/model.safetensors").size() == base_file.size());
  REQUIRE(L::read_json_file(dir + "/adapted_base/model.json") == L::read_json_file(dir + "/base/model.json"));
}

TEST_CASE("Adapter files with missing or extra tensors, wrong shapes or another method are refused", "[peft]") {
  L::seed_everything(10);
  auto model = mlp();
  auto x = torch::randn({3, 4});
  const std::string dir = lighter_test::temp_dir("peft_bad");
  {
    auto donor = mlp();
    P::PeftModel peft(donor, P::LoraConfig().r(2).target_modules({"hidden", "head"}));
    peft.save_adapter(dir + "/good");
  }
  auto y0 = run(model, x);
  const auto config = L::read_text_file(dir + "/good/adapter_config.json");
  auto tensors = L::load_safetensors(dir + "/good/adapter_model.safetensors");
  auto write = [&](const std::string& name, const std::map<std::string, torch::Tensor>& t, const std::string& cfg) {
    std::filesystem::create_directories(dir + "/" + name);
    L::write_file_atomic(dir + "/" + name + "/adapter_config.json", cfg);
    L::save_safetensors(dir + "/" + name + "/adapter_model.safetensors", {t.begin(), t.end()});
    return dir + "/" + name;
  };
  auto missing = tensors;
  missing.erase("base_model.model.head.lora_B.weight");
  auto wrong = tensors;
  wrong["base_model.model.hidden.lora_A.weight"] = torch::zeros({3, 4});
  auto extra = tensors;
  extra["base_model.model.other.lora_A.weight"] = torch::zeros({2, 4});

  P::PeftModel peft(model);
  LIGHTER_REQUIRE_THROWS_WITH(peft.load_adapter(write("missing", missing, config)),
                              "tensor 'base_model.model.head.lora_B.weight' is missing");
  LIGHTER_REQUIRE_THROWS_WITH(peft.load_adapter(write("missing", missing, config)), "missing/adapter_model.safetensors");
  LIGHTER_REQUIRE_THROWS_WITH(peft.load_adapter(write("wrong", wrong, config)),
                              "tensor 'base_model.model.hidden.lora_A.weight' has shape [3, 4], the model expects [2, 4]");
  LIGHTER_REQUIRE_THROWS_WITH(peft.load_adapter(write("extra", extra, config)),
                              "tensor 'base_model.model.other.lora_A.weight' does not belong to the adapter");
  auto ia3 = json::parse(config);
  ia3["peft_type"] = "IA3";
  LIGHTER_REQUIRE_THROWS_WITH(peft.load_adapter(write("ia3", tensors, ia3.dump())), "\"peft_type\": expected \"LORA\"");
  auto pattern = json::parse(config);
  pattern["rank_pattern"] = json{{"head", 4}};
  LIGHTER_REQUIRE_THROWS_WITH(peft.load_adapter(write("pattern", tensors, pattern.dump())),
                              "\"rank_pattern\": set to {\"head\":4}, which Lighter does not implement");
  // Nothing stayed behind from the refused files.
  REQUIRE(peft.adapters().empty());
  for (const auto& l : model->layers()) REQUIRE_FALSE(l->adapter_hook());
  REQUIRE(torch::equal(run(model, x), y0));
  for (const auto& p : model->parameters()) REQUIRE(p.requires_grad());
  peft.load_adapter(dir + "/good");
  REQUIRE(peft.adapters() == std::vector<std::string>{"default"});
}

// ---- Adapters from JSON configs and the lighter command ---------------------------------------------------------

namespace {

namespace fs = std::filesystem;

// The iris config with absolute data paths, a few quiet epochs on the CPU, writing into `output_dir`.
json iris_run(const std::string& output_dir, int epochs = 5) {
  json c = lighter_test::iris_run_config(epochs);
  c["output_dir"] = output_dir;
  return c;
}

// The same run as an adapter on `base` (relative to the config's folder): no model, an adapters section.
json iris_adapter_run(const std::string& base, const std::string& output_dir) {
  json c = iris_run(output_dir, 8);
  c.erase("model");
  c["name"] = "iris_lora";
  c["adapters"] = {{"base_model", base}, {"r", 4}, {"lora_alpha", 8}, {"target_modules", {"Dense"}}};
  return c;
}

// Every file of a folder with its bytes.
std::map<std::string, std::string> folder_bytes(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::ostringstream b;
    b << in.rdbuf();
    out[e.path().filename().string()] = b.str();
  }
  return out;
}

// The numbers of a predict CSV (header and the predicted class column dropped).
std::vector<double> predicted_numbers(const std::string& csv) {
  std::vector<double> out;
  std::istringstream lines(csv);
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string f;
    while (std::getline(fields, f, ','))
      if (!f.empty() && (std::isdigit(static_cast<unsigned char>(f[0])) || f[0] == '-')) out.push_back(std::stod(f));
  }
  return out;
}

int lines_of(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

TEST_CASE("lighter train with adapters writes PEFT's files and keeps the base, evaluate and merge-adapter use them",
          "[peft][cli]") {
  std::string dir = lighter_test::temp_dir("peft_cli_iris");
  std::string out;
  int rc = lighter_test::run_cli("train " + write_json(dir + "/base.json", iris_run(dir + "/base")), &out);
  INFO(out);
  REQUIRE(rc == 0);
  const auto base_before = folder_bytes(dir + "/base");

  std::string cfg = write_json(dir + "/adapter.json", iris_adapter_run("base", dir + "/adapter"));
  rc = lighter_test::run_cli("train " + cfg, &out);
  INFO(out);
  REQUIRE(rc == 0);
  const std::string run = dir + "/adapter";
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors", "lighter.json", "metrics.json", "history.csv"})
    REQUIRE(fs::exists(run + "/" + f));
  // No copy of the base as the run's model.
  REQUIRE_FALSE(fs::exists(run + "/model.json"));
  REQUIRE_FALSE(fs::exists(run + "/model.safetensors"));
  REQUIRE(folder_bytes(dir + "/base") == base_before);

  // Only adapter tensors, under PEFT's keys: lora_A [r, in] and lora_B [out, r] of the two Dense layers.
  auto tensors = L::load_safetensors(run + "/adapter_model.safetensors");
  REQUIRE(tensors.size() == 4);
  int64_t adapter_params = 0;
  for (const auto& [key, t] : tensors) {
    INFO(key);
    REQUIRE(key.rfind("base_model.model.", 0) == 0);
    const bool a = key.size() > 14 && key.compare(key.size() - 14, 14, ".lora_A.weight") == 0;
    const bool b = key.size() > 14 && key.compare(key.size() - 14, 14, ".lora_B.weight") == 0;
    REQUIRE((a || b));
    REQUIRE((a ? t.size(0) : t.size(1)) == 4);
    adapter_params += t.numel();
  }
  REQUIRE(adapter_params == 4 * 4 + 16 * 4 + 4 * 16 + 3 * 4);
  json acfg = L::read_json_file(run + "/adapter_config.json");
  REQUIRE(acfg["peft_type"] == "LORA");
  REQUIRE(acfg["r"] == 4);
  REQUIRE(acfg["target_modules"] == json::array({"Dense"}));
  REQUIRE(acfg["base_model_name_or_path"] == fs::absolute(dir + "/base").lexically_normal().string());
  json extra = L::read_json_file(run + "/lighter.json");
  REQUIRE(extra["adapter"]["base_model"] == acfg["base_model_name_or_path"]);
  REQUIRE(extra["classes"] == json::array({"setosa", "versicolor", "virginica"}));

  // Trainable: the adapter's 156 parameters; total: those and the base's 140.
  json metrics = L::read_json_file(run + "/metrics.json");
  REQUIRE(metrics["parameters"]["trainable"] == adapter_params);
  REQUIRE(metrics["parameters"]["total"] == adapter_params + 140);
  REQUIRE(metrics["steps"].get<int64_t>() > 0);
  REQUIRE(metrics["seconds_per_step"].get<double>() > 0);

  // evaluate on the adapter run loads the base and the adapter: the run's own test scores.
  rc = lighter_test::run_cli("evaluate " + cfg + " --weights " + run, &out);
  REQUIRE(rc == 0);
  json eval = json::parse(out.substr(out.find('{')));
  REQUIRE(eval["accuracy"].get<double>() == Approx(metrics["test"]["accuracy"].get<double>()));
  REQUIRE(eval["loss"].get<double>() == Approx(metrics["test"]["loss"].get<double>()).epsilon(1e-6));

  // merge-adapter: a plain model folder predicting what the adapted model predicts (probabilities printed with 6
  // significant digits; merged weights differ from W x + s B A x by float rounding: 1e-5 allowed).
  rc = lighter_test::run_cli("merge-adapter --base " + dir + "/base --adapter " + run + " --output " + dir + "/merged", &out);
  INFO(out);
  REQUIRE(rc == 0);
  for (const char* f : {"model.json", "model.safetensors", "lighter.json"}) REQUIRE(fs::exists(dir + "/merged/" + f));
  json merged_extra = L::read_json_file(dir + "/merged/lighter.json");
  REQUIRE(merged_extra["merge"]["method"] == "lora");
  REQUIRE(merged_extra["classes"] == extra["classes"]);
  std::string input = lighter_test::source_path("examples/data/iris_test.csv");
  REQUIRE(lighter_test::run_cli("predict " + cfg + " --weights " + run + " --input " + input + " --output " + dir + "/a.csv") == 0);
  REQUIRE(lighter_test::run_cli("predict " + cfg + " --weights " + dir + "/merged --input " + input + " --output " + dir + "/m.csv") == 0);
  REQUIRE(lighter_test::run_cli("predict " + cfg + " --weights " + dir + "/base --input " + input + " --output " + dir + "/b.csv") == 0);
  auto adapted = predicted_numbers(L::read_text_file(dir + "/a.csv"));
  auto merged = predicted_numbers(L::read_text_file(dir + "/m.csv"));
  auto base = predicted_numbers(L::read_text_file(dir + "/b.csv"));
  REQUIRE(adapted.size() == 90);
  REQUIRE(merged.size() == adapted.size());
  double diff = 0, moved = 0;
  for (size_t i = 0; i < adapted.size(); ++i) {
    diff = std::max(diff, std::abs(adapted[i] - merged[i]));
    moved = std::max(moved, std::abs(adapted[i] - base[i]));
  }
  REQUIRE(diff < 1e-5);
  REQUIRE(moved > 1e-3);  // the adapter did change the predictions
  REQUIRE(folder_bytes(dir + "/base") == base_before);

  // Moved together with its base, the adapter run still finds it (lighter.json keeps the relative path too).
  fs::create_directories(dir + "/moved");
  fs::copy(dir + "/base", dir + "/moved/base");
  fs::copy(run, dir + "/moved/adapter");
  json moved_extra = extra;
  moved_extra["adapter"]["base_model"] = dir + "/gone";
  write_json(dir + "/moved/adapter/lighter.json", moved_extra);
  REQUIRE(extra["adapter"]["base_model_relative"] == "../base");
  rc = lighter_test::run_cli("evaluate " + cfg + " --weights " + dir + "/moved/adapter", &out);
  INFO(out);
  REQUIRE(rc == 0);
  REQUIRE(json::parse(out.substr(out.find('{')))["accuracy"] == eval["accuracy"]);

  // An existing output, and a base whose Dense layer is narrower than the adapter's: one line each, exit 1.
  rc = lighter_test::run_cli("merge-adapter --base " + dir + "/base --adapter " + run + " --output " + dir + "/merged", &out);
  REQUIRE(rc == 1);
  REQUIRE(lines_of(out) == 1);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("not an empty folder"));
  json narrow = iris_run(dir + "/narrow", 1);
  narrow["model"]["config"]["layers"][2]["config"]["units"] = 8;
  REQUIRE(lighter_test::run_cli("train " + write_json(dir + "/narrow.json", narrow), &out) == 0);
  rc = lighter_test::run_cli("merge-adapter --base " + dir + "/narrow --adapter " + run + " --output " + dir + "/m2", &out);
  REQUIRE(rc == 1);
  REQUIRE(lines_of(out) <= 2);  // the error, and a warning that the adapter was trained on another base
  REQUIRE_THAT(out, LIGHTER_CONTAINS("adapter_model.safetensors"));
  REQUIRE_THAT(out, LIGHTER_CONTAINS("has shape"));
  REQUIRE_FALSE(fs::exists(dir + "/m2/model.json"));

  // --resume: a run of 4 epochs continued to 8 ends with the adapter of the uninterrupted 8 epochs (the checkpoint
  // keeps the adapter tensors and the random streams).
  rc = lighter_test::run_cli("train " + cfg + " --set fit.epochs=4 --output-dir " + dir + "/resumed", &out);
  REQUIRE(rc == 0);
  rc = lighter_test::run_cli("train " + cfg + " --resume --output-dir " + dir + "/resumed", &out);
  INFO(out);
  REQUIRE(rc == 0);
  REQUIRE(lines_of(L::read_text_file(dir + "/resumed/history.csv")) == 9);
  auto resumed = L::load_safetensors(dir + "/resumed/adapter_model.safetensors");
  REQUIRE(resumed.size() == tensors.size());
  for (const auto& [key, t] : tensors) {
    INFO(key);
    REQUIRE(resumed.at(key).equal(t));
  }
  REQUIRE(folder_bytes(dir + "/base") == base_before);
}

TEST_CASE("Adapter config mistakes name their JSON path", "[peft][cli]") {
  json c = iris_adapter_run("runs/base", "runs/x");
  auto parse = [](const json& j) { return L::cli::parse_run_config(j, "/configs"); };
  auto cfg = parse(c);
  REQUIRE(cfg.adapters);
  REQUIRE(cfg.adapters->base_model == "/configs/runs/base");
  REQUIRE(cfg.adapters->adapter_name == "default");
  REQUIRE(cfg.adapters->lora.r() == 4);
  REQUIRE(cfg.model.is_null());
  auto shipped = L::cli::load_run_config(lighter_test::source_path("configs/iris_lora.json"));
  REQUIRE(shipped.adapters);
  REQUIRE(shipped.adapters->base_model == lighter_test::source_path("runs/iris_dnn"));
  REQUIRE(shipped.adapters->lora.target_modules() == std::vector<std::string>{"Dense"});

  auto with = [&](const std::string& key, const json& value) {
    json j = c;
    j["adapters"][key] = value;
    return j;
  };
  LIGHTER_REQUIRE_THROWS_WITH(parse(with("r", 0)), "adapters.r: expected a positive integer, got 0");
  LIGHTER_REQUIRE_THROWS_WITH(parse(with("rank", 4)), "adapters.rank: unknown key");
  LIGHTER_REQUIRE_THROWS_WITH(parse(with("target_modules", 5)), "adapters.target_modules: expected a list");
  LIGHTER_REQUIRE_THROWS_WITH(parse(with("target_modules", json::array({"Dense", 3}))), "adapters.target_modules[1]");
  LIGHTER_REQUIRE_THROWS_WITH(parse(with("target_modules", "(")), "adapters.target_modules: invalid regex");
  LIGHTER_REQUIRE_THROWS_WITH(parse(with("bias", "some")), "adapters.bias");
  LIGHTER_REQUIRE_THROWS_WITH(parse(with("lora_dropout", 1.5)), "adapters.lora_dropout");
  LIGHTER_REQUIRE_THROWS_WITH(parse(with("init_lora_weights", "pissa")), "adapters.init_lora_weights");
  LIGHTER_REQUIRE_THROWS_WITH(parse(with("use_dora", "yes")), "adapters.use_dora");
  json no_base = c;
  no_base["adapters"].erase("base_model");
  LIGHTER_REQUIRE_THROWS_WITH(parse(no_base), "adapters.base_model");
  json with_model = c;
  with_model["model"] = L::read_json_file(lighter_test::source_path("configs/iris.json"))["model"];
  LIGHTER_REQUIRE_THROWS_WITH(parse(with_model), "model: leave it out with adapters");
  json with_vectorizer = c;
  with_vectorizer["data"]["text_vectorization"] = {{"split", "character"}};
  LIGHTER_REQUIRE_THROWS_WITH(parse(with_vectorizer), "data.text_vectorization: leave it out with adapters");

  // On the command line: one line naming the file and what is wrong, exit status 1.
  std::string dir = lighter_test::temp_dir("peft_cli_errors");
  std::string out;
  int rc = lighter_test::run_cli("train " + write_json(dir + "/r0.json", with("r", 0)), &out);
  REQUIRE(rc == 1);
  REQUIRE(lines_of(out) == 1);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("r0.json: adapters.r: expected a positive integer, got 0"));
  rc = lighter_test::run_cli("train " + write_json(dir + "/missing.json", iris_adapter_run("nowhere", dir + "/x")), &out);
  REQUIRE(rc == 1);
  REQUIRE(lines_of(out) == 1);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("nowhere: no such folder"));
  rc = lighter_test::run_cli("merge-adapter --base " + dir + "/nowhere --adapter " + dir + " --output " + dir + "/m", &out);
  REQUIRE(rc == 1);
  REQUIRE(lines_of(out) == 1);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("no such folder"));
  rc = lighter_test::run_cli("merge-adapter --base " + dir, &out);
  REQUIRE(rc == 2);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("merge-adapter needs --base DIR"));
}

TEST_CASE("A language-model adapter run reuses the base model's vocabulary", "[peft][cli]") {
  std::string dir = lighter_test::temp_dir("peft_cli_lm");
  {
    std::ofstream(dir + "/base.txt") << [] {
      std::string t;
      for (int i = 0; i < 60; ++i) t += "abc cab bca\n";
      return t;
    }();
    // "d" and "z" are not in the base's text: a vocabulary adapted here would differ (and shift the ids).
    std::ofstream(dir + "/new.txt") << [] {
      std::string t;
      for (int i = 0; i < 60; ++i) t += "dab zab\n";
      return t;
    }();
  }
  // a, b, c, space, newline, padding and OOV: 7 ids.
  json base = lighter_test::tiny_char_lm_run(dir + "/base.txt", dir + "/base", 2, 0.01);
  std::string out;
  int rc = lighter_test::run_cli("train " + write_json(dir + "/base.json", base), &out);
  INFO(out);
  REQUIRE(rc == 0);
  json adapter = base;
  adapter.erase("model");
  adapter["data"]["train"]["path"] = dir + "/new.txt";
  adapter["data"].erase("text_vectorization");
  adapter["adapters"] = {{"base_model", "base"}, {"r", 2}, {"target_modules", {"Embedding", "Dense"}}, {"use_dora", true}};
  adapter["output_dir"] = dir + "/adapter";
  std::string cfg = write_json(dir + "/adapter.json", adapter);
  rc = lighter_test::run_cli("train " + cfg, &out);
  INFO(out);
  REQUIRE(rc == 0);
  json base_extra = L::read_json_file(dir + "/base/lighter.json");
  json extra = L::read_json_file(dir + "/adapter/lighter.json");
  REQUIRE(extra["text_vectorization"] == base_extra["text_vectorization"]);
  json metrics = L::read_json_file(dir + "/adapter/metrics.json");
  REQUIRE(metrics["validation"].contains("bits_per_token"));
  REQUIRE(metrics["parameters"]["trainable"].get<int64_t>() < metrics["parameters"]["total"].get<int64_t>());
  auto tensors = L::load_safetensors(dir + "/adapter/adapter_model.safetensors");
  std::set<std::string> suffixes;
  for (const auto& kv : tensors) suffixes.insert(kv.first.substr(kv.first.rfind('.') + 1));
  REQUIRE(suffixes == std::set<std::string>{"lora_embedding_A", "lora_embedding_B", "weight", "lora_magnitude_vector"});

  // generate and evaluate run the adapted model through the base's vectorizer.
  rc = lighter_test::run_cli("generate " + cfg + " --weights " + dir + "/adapter --prompt ab --max-new-tokens 4 --sampler greedy", &out);
  INFO(out);
  REQUIRE(rc == 0);
  REQUIRE(out.find("ab") != std::string::npos);
  rc = lighter_test::run_cli("evaluate " + cfg + " --weights " + dir + "/adapter", &out);
  REQUIRE(rc == 0);
}
