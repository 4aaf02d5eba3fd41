#include "lighter_test.h"

// Masks end to end: made by Embedding(mask_zero), carried by the model, honoured by recurrent layers and pooling,
// and handed by the trainer to losses and metrics, so that padding a batch to any greater length changes neither
// predictions, nor the loss, nor the gradients.

namespace L = lighter;
using namespace lighter::layers;

namespace {

// Token ids [N, T] padded with zeros (or `fill`) to `length` steps.
torch::Tensor pad_to(const torch::Tensor& x, int64_t length, int64_t fill = 0) {
  auto shape = x.sizes().vec();
  shape[1] = length - x.size(1);
  return torch::cat({x, torch::full(shape, fill, x.options())}, 1);
}

// Random token ids in [1, vocab) with the given lengths, zero-padded to the longest.
torch::Tensor random_tokens(const std::vector<int64_t>& lengths, int64_t vocab) {
  int64_t longest = *std::max_element(lengths.begin(), lengths.end());
  auto ids = torch::randint(1, vocab, {static_cast<int64_t>(lengths.size()), longest}, torch::kLong);
  auto valid = torch::arange(longest).unsqueeze(0).lt(torch::tensor(lengths).unsqueeze(1));
  return ids * valid;
}

// The gradient of every parameter of `model` for `loss`.
std::vector<torch::Tensor> gradients(L::models::ModelImpl& model, const torch::Tensor& loss) {
  model.zero_grad();
  loss.backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : model.parameters()) grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return grads;
}

void require_same_gradients(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b, double tol) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("parameter " << i);
    REQUIRE(lighter_test::max_abs_diff(a[i], b[i]) < tol);
  }
}

}  // namespace

TEST_CASE("padding invariance: Embedding(mask_zero) + LSTM classifier, predictions, loss, metrics and gradients",
          "[masking][training]") {
  torch::manual_seed(11);
  L::Sequential model({Input({-1}), Embedding(EmbeddingOptions(20, 6).mask_zero(true)), LSTM(LSTMOptions(8)),
                       Dense(DenseOptions(3).activation("softmax"))});
  model->compile(L::optimizers::adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  model->eval();
  auto x = random_tokens({6, 2, 4, 1, 5, 3}, 20);
  auto y = torch::tensor({0, 1, 2, 1, 0, 2}, torch::kLong);
  for (int64_t length : {9, 17}) {
    INFO("padded to " << length);
    auto xp = pad_to(x, length);
    REQUIRE(lighter_test::max_abs_diff(model->predict(x), model->predict(xp)) < 1e-5);
    auto& trainer = model->trainer();
    auto loss = trainer.compute_loss({x}, {y});
    auto loss_padded = trainer.compute_loss({xp}, {y});
    REQUIRE(loss.item<double>() == Approx(loss_padded.item<double>()).epsilon(1e-6));
    require_same_gradients(gradients(*model, loss), gradients(*model, loss_padded), 1e-5);
    auto a = model->evaluate(x, y), b = model->evaluate(xp, y);
    REQUIRE(a.at("loss") == Approx(b.at("loss")).epsilon(1e-6));
    REQUIRE(a.at("accuracy") == b.at("accuracy"));
  }
  // Training on the padded batch follows the same path as on the tight one.
  torch::manual_seed(3);
  L::Sequential twin({Input({-1}), Embedding(EmbeddingOptions(20, 6).mask_zero(true)), LSTM(LSTMOptions(8)),
                      Dense(DenseOptions(3).activation("softmax"))});
  L::load_weights(*twin, [&] {
    auto dir = lighter_test::temp_dir("masking_twin");
    L::save_weights(*model, dir + "/w.safetensors");
    return dir + "/w.safetensors";
  }());
  twin->compile(L::optimizers::adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  auto h1 = model->fit(x, y, L::FitOptions().epochs(3).batch_size(6).shuffle(false).verbose(0));
  auto h2 = twin->fit(pad_to(x, 12), y, L::FitOptions().epochs(3).batch_size(6).shuffle(false).verbose(0));
  for (size_t e = 0; e < 3; ++e) REQUIRE(h1.history.at("loss")[e] == Approx(h2.history.at("loss")[e]).epsilon(1e-5));
  REQUIRE(lighter_test::max_abs_diff(model->predict(x), twin->predict(x)) < 1e-5);
}

TEST_CASE("padding invariance: Bidirectional GRU tagger, losses and metrics average over valid steps only",
          "[masking][training]") {
  torch::manual_seed(12);
  L::Sequential model({Input({-1}), Embedding(EmbeddingOptions(15, 5).mask_zero(true)),
                       Bidirectional(GRU(GRUOptions(6).return_sequences(true))),
                       Dense(DenseOptions(4).activation("softmax"))});
  model->compile(L::optimizers::sgd(0.1), "sparse_categorical_crossentropy", {"accuracy"});
  model->eval();
  const std::vector<int64_t> lengths{5, 2, 4, 1};
  auto x = random_tokens(lengths, 15);
  auto valid = x.ne(0);
  // Labels at padded steps are junk: they must not count.
  auto y = torch::randint(0, 4, x.sizes(), torch::kLong);

  auto out = model->call({x});
  REQUIRE(out.masks.size() == 1);
  REQUIRE(out.masks[0].defined());
  REQUIRE(out.masks[0].equal(valid));

  // The loss by hand: mean over valid steps of -log p[label].
  auto probs = model->predict(x);
  auto picked = probs.gather(2, y.unsqueeze(2)).squeeze(2);
  double by_hand = (-picked.log() * valid).sum().item<double>() / valid.sum().item<double>();
  auto loss = model->trainer().compute_loss({x}, {y});
  REQUIRE(loss.item<double>() == Approx(by_hand).epsilon(1e-5));
  // Accuracy by hand over valid steps only.
  double correct = (probs.argmax(2).eq(y) & valid).sum().item<double>() / valid.sum().item<double>();
  REQUIRE(model->evaluate(x, y).at("accuracy") == Approx(correct));

  auto grads = gradients(*model, loss);
  for (int64_t length : {7, 12}) {
    INFO("padded to " << length);
    auto xp = pad_to(x, length);
    auto yp = pad_to(y, length, 3);  // more junk labels
    auto probs_p = model->predict(xp);
    REQUIRE(lighter_test::max_abs_diff(probs_p.slice(1, 0, x.size(1)) * valid.unsqueeze(2),
                                       probs * valid.unsqueeze(2)) < 1e-5);
    auto loss_p = model->trainer().compute_loss({xp}, {yp});
    REQUIRE(loss_p.item<double>() == Approx(loss.item<double>()).epsilon(1e-6));
    require_same_gradients(grads, gradients(*model, loss_p), 1e-5);
    REQUIRE(model->evaluate(xp, yp).at("accuracy") == Approx(correct));
  }
  // Changing the labels of padded steps changes nothing.
  auto y2 = torch::where(valid, y, (y + 1) % 4);
  REQUIRE(model->trainer().compute_loss({x}, {y2}).item<double>() == Approx(loss.item<double>()).epsilon(1e-6));
}

TEST_CASE("padding invariance: Embedding(mask_zero) + GlobalAveragePooling1D with a binary loss", "[masking][training]") {
  torch::manual_seed(13);
  L::Sequential model({Input({-1}), Embedding(EmbeddingOptions(30, 4).mask_zero(true)), GlobalAveragePooling1D(),
                       Dense(DenseOptions(1).activation("sigmoid"))});
  model->compile(L::optimizers::adam(1e-2), "binary_crossentropy", {"accuracy"});
  model->eval();
  auto x = random_tokens({3, 7, 1, 5, 2}, 30);
  auto y = torch::tensor({1.0f, 0.0f, 1.0f, 1.0f, 0.0f}).unsqueeze(1);
  auto loss = model->trainer().compute_loss({x}, {y});
  auto grads = gradients(*model, loss);
  for (int64_t length : {8, 20}) {
    auto xp = pad_to(x, length);
    REQUIRE(lighter_test::max_abs_diff(model->predict(x), model->predict(xp)) < 1e-6);
    auto loss_p = model->trainer().compute_loss({xp}, {y});
    REQUIRE(loss_p.item<double>() == Approx(loss.item<double>()).epsilon(1e-6));
    require_same_gradients(grads, gradients(*model, loss_p), 1e-6);
  }
}

TEST_CASE("a mask passed in with the input reaches the layers and the output", "[masking]") {
  torch::manual_seed(14);
  L::Sequential model({Input({-1, 3}), LSTM(LSTMOptions(5).return_sequences(true)), Dense(2)});
  model->eval();
  const std::vector<int64_t> lengths{4, 2, 3};
  auto x = torch::randn({3, 4, 3});
  auto mask = torch::arange(4).unsqueeze(0).lt(torch::tensor(lengths).unsqueeze(1));
  auto out = model->call({x}, {mask});
  REQUIRE(out.masks[0].equal(mask));
  for (int64_t i = 0; i < 3; ++i) {
    auto alone = model->forward(x[i].slice(0, 0, lengths[i]).unsqueeze(0))[0];
    REQUIRE(lighter_test::max_abs_diff(out.values[0][i].slice(0, 0, lengths[i]), alone) < 1e-5);
  }
  // Without the mask the padded steps are read as data.
  auto unmasked = model->call({x}).values[0];
  REQUIRE(lighter_test::max_abs_diff(unmasked[1].slice(0, 0, 2), out.values[0][1].slice(0, 0, 2)) < 1e-6);
  REQUIRE_FALSE(model->call({x}).masks[0].defined());
  // Bad masks are refused with their shape.
  LIGHTER_REQUIRE_THROWS_WITH(model->call({x}, {torch::ones({3, 5}, torch::kBool)}), "(batch, steps) = (3, 4)");
  LIGHTER_REQUIRE_THROWS_WITH(model->call({x, x}), "takes 1 input, got 2");
}
