#include "lighter_test.h"

#include <ATen/CPUGeneratorImpl.h>

#include "lighter/ensemble/weight_merge.h"

// Weight merging against its formulas computed by hand on small tensors.

namespace L = lighter;
namespace E = lighter::ensemble;
using lighter_test::max_abs_diff;

namespace {

E::Weights one(std::vector<double> v, std::string name = "w") {
  return {{std::move(name), torch::tensor(v, torch::kFloat)}};
}
torch::Tensor values(const E::Weights& w, size_t k = 0) { return w.at(k).second; }
torch::Tensor vec(std::vector<double> v) { return torch::tensor(v, torch::kFloat); }

}  // namespace

TEST_CASE("Soups and task arithmetic follow their formulas", "[ensemble][merge]") {
  auto a = one({1, 2}), b = one({3, 6});
  REQUIRE(max_abs_diff(values(E::average({a, b})), vec({2, 4})) < 1e-6);
  // (1·1 + 3·3) / 4 and (1·2 + 3·6) / 4.
  REQUIRE(max_abs_diff(values(E::average({a, b}, {1, 3})), vec({2.5, 5})) < 1e-6);
  // base + λ Σ w_i (θ_i − base): τ1 = (1, −1, 0), τ2 = (0, 2, 0); Σ = (1, −2, 0); base + 0.5 Σ.
  auto base = one({1, 1, 1});
  auto merged = E::task_arithmetic(base, {one({2, 0, 1}), one({1, 3, 1})}, {1, -0.5}, 0.5);
  REQUIRE(max_abs_diff(values(merged), vec({1.5, 0, 1})) < 1e-6);

  LIGHTER_REQUIRE_THROWS_WITH(E::average({a, b}, {1, -1}), "weights[1]: an average takes non-negative weights");
  LIGHTER_REQUIRE_THROWS_WITH(E::average({a, b}, {0, 0}), "positive sum");
  LIGHTER_REQUIRE_THROWS_WITH(E::average({a, b}, {1}), "one weight per model: 2 models, 1 weights");
  LIGHTER_REQUIRE_THROWS_WITH(E::average({}), "no models given");
}

TEST_CASE("TIES trims, elects signs and takes the disjoint mean", "[ensemble][merge]") {
  auto base = one({0, 0, 0, 0});
  auto m1 = one({3, -1, 2, 0.5}), m2 = one({-2, -4, 1, 0.1}), m3 = one({1, 2, -3, 0.2});
  // density 0.5 keeps 2 of 4 entries each: (3, 0, 2, 0), (−2, −4, 0, 0), (0, 2, −3, 0). Summed: (1, −2, −1, 0), so
  // the signs are +, −, −, + (a zero sum elects +). Agreeing entries: 3 | −4 | −3 | none (0).
  auto merged = E::ties(base, {m1, m2, m3}, 0.5);
  REQUIRE(max_abs_diff(values(merged), vec({3, -4, -3, 0})) < 1e-6);
  // Weights scale the trimmed task vectors before the election: doubling m2 makes entry 0 sum to −1 (−), where −4
  // (2·−2) is the only agreeing value.
  auto weighted = E::ties(base, {m1, m2, m3}, 0.5, {1, 2, 1});
  REQUIRE(values(weighted)[0].item<double>() == Approx(-4));
  // With a base and λ: base + λ · merged task vector; density 1 keeps everything: entry 0: 3, −2, 1 → + → (3+1)/2.
  auto shifted = E::ties(one({1, 1, 1, 1}), {one({4, 0, 3, 1.5}), one({-1, -3, 2, 1.1}), one({2, 3, -2, 1.2})}, 1.0, {}, 0.5);
  REQUIRE(values(shifted)[0].item<double>() == Approx(1 + 0.5 * 2));
  LIGHTER_REQUIRE_THROWS_WITH(E::ties(base, {m1}, 0.0), "density: expected a number in (0, 1], got 0");
  LIGHTER_REQUIRE_THROWS_WITH(E::ties(base, {m1}, 1.5), "density: expected a number in (0, 1]");
}

TEST_CASE("DARE drops with a seeded generator and rescales by 1/density", "[ensemble][merge]") {
  torch::manual_seed(5);
  E::Weights base{{"a", torch::randn({50})}, {"b", torch::randn({4, 5})}};
  auto model = [&](double shift) {
    E::Weights m;
    for (const auto& [n, t] : base) m.emplace_back(n, t + shift + torch::randn(t.sizes()) * 0.1);
    return m;
  };
  auto m1 = model(0.5), m2 = model(-0.2);
  auto merged = E::dare(base, {m1, m2}, 0.3, 11, {1.0, 0.5});
  // The same draws, made here: one Bernoulli mask per model and tensor, in order.
  auto gen = at::detail::createCPUGenerator(11);
  for (size_t k = 0; k < base.size(); ++k) {
    const auto& b = base[k].second;
    auto k1 = torch::empty(b.sizes()).bernoulli_(0.3, gen), k2 = torch::empty(b.sizes()).bernoulli_(0.3, gen);
    auto want = b + (m1[k].second - b) * k1 / 0.3 + 0.5 * (m2[k].second - b) * k2 / 0.3;
    REQUIRE(max_abs_diff(merged[k].second, want) < 1e-5);
    // About 30% kept.
    REQUIRE(k1.mean().item<double>() == Approx(0.3).margin(0.25));
  }
  // The same seed gives the same merge; density 1 is task arithmetic.
  REQUIRE(max_abs_diff(E::dare(base, {m1, m2}, 0.3, 11, {1.0, 0.5})[1].second, merged[1].second) == 0);
  auto full = E::dare(base, {m1, m2}, 1.0, 3, {1.0, 0.5});
  REQUIRE(max_abs_diff(full[0].second, E::task_arithmetic(base, {m1, m2}, {1.0, 0.5})[0].second) < 1e-6);
  // With TIES' election on the rescaled vectors (density 1: no drops): the disjoint mean.
  auto t = E::dare(one({0, 0}), {one({2, -1}), one({-1, -3})}, 1.0, 0, {}, true);
  REQUIRE(max_abs_diff(values(t), vec({2, -2})) < 1e-6);
}

TEST_CASE("SLERP interpolates on the sphere, linearly when parallel, with t by tensor name", "[ensemble][merge]") {
  E::Weights a{{"dense.weight", vec({1, 0})}, {"attention.weight", vec({1, 0})}, {"same", vec({1, 1})}};
  E::Weights b{{"dense.weight", vec({0, 1})}, {"attention.weight", vec({0, 1})}, {"same", vec({2, 2})}};
  auto m = E::slerp(a, b, 0.5, {{"^attention", 0.0}});
  const double h = std::sqrt(0.5);
  REQUIRE(max_abs_diff(m[0].second, vec({h, h})) < 1e-6);
  REQUIRE(max_abs_diff(m[1].second, vec({1, 0})) < 1e-6);  // t = 0 by name: a
  REQUIRE(max_abs_diff(m[2].second, vec({1.5, 1.5})) < 1e-6);  // parallel: linear
  // t = 1/3 of a right angle: (cos 30°, sin 30°).
  auto third = E::slerp(a, b, 1.0 / 3);
  REQUIRE(max_abs_diff(third[0].second, vec({std::cos(M_PI / 6), std::sin(M_PI / 6)})) < 1e-6);
  LIGHTER_REQUIRE_THROWS_WITH(E::slerp(a, b, 1.5), "t: expected a number in [0, 1]");
  LIGHTER_REQUIRE_THROWS_WITH(E::slerp(a, b, 0.5, {{"(", 0.2}}), "t_by_name[0]: '(' is not a valid regular expression");
}

TEST_CASE("Merging identical models returns the model, architectures must match", "[ensemble][merge]") {
  torch::manual_seed(6);
  auto make = [] {
    return L::Sequential({L::layers::Input({4}), L::layers::Dense(L::layers::DenseOptions(8).activation("relu")),
                          L::layers::BatchNormalization(), L::layers::Dense(L::layers::DenseOptions(3))});
  };
  auto model = make();
  auto w = E::weights_of(*model);
  auto x = torch::randn({5, 4});
  model->eval();
  auto y = model->forward(x);
  for (const auto& merged : {E::average({w, w, w}), E::task_arithmetic(w, {w, w}), E::ties(w, {w, w}, 0.4),
                             E::dare(w, {w, w}, 0.5, 1), E::slerp(w, w, 0.3)}) {
    auto copy = make();
    E::assign_weights(*copy, merged);
    copy->eval();
    REQUIRE(max_abs_diff(copy->forward(x), y) < 1e-6);
  }
  // Non-floating tensors are not averaged: the first model's is kept.
  E::Weights c1{{"count", torch::tensor({3}, torch::kLong)}, {"w", vec({1})}};
  E::Weights c2{{"count", torch::tensor({5}, torch::kLong)}, {"w", vec({3})}};
  auto avg = E::average({c1, c2});
  REQUIRE(avg[0].second.item<int64_t>() == 3);
  REQUIRE(avg[1].second.item<double>() == Approx(2));

  // A different architecture: the first differing tensor is named.
  auto other = L::Sequential({L::layers::Input({4}), L::layers::Dense(L::layers::DenseOptions(9).activation("relu")),
                              L::layers::BatchNormalization(), L::layers::Dense(L::layers::DenseOptions(3))});
  LIGHTER_REQUIRE_THROWS_WITH(E::average({w, E::weights_of(*other)}), "tensor 'dense.weight' has shape (9, 4), model 0 has (8, 4)");
  LIGHTER_REQUIRE_THROWS_WITH(E::task_arithmetic(w, {E::weights_of(*other)}), "the base model has");
  LIGHTER_REQUIRE_THROWS_WITH(E::assign_weights(*other, w), "the architectures differ");
}

TEST_CASE("The greedy soup adds a model only when the held-out score does not drop", "[ensemble][merge]") {
  // Score: closeness to a target; models 0 and 2 are near it on opposite sides, model 1 is far off.
  auto target = vec({1, 1});
  auto score = [&](const E::Weights& w) { return -(w[0].second - target).norm().item<double>(); };
  std::vector<E::Weights> models{one({1.25, 1.0}), one({5, -3}), one({0.75, 1.0}), one({1.5, 1.5})};
  auto soup = E::greedy_soup(models, score);
  // Ranked 0 and 2 (0.25 off each; a tie keeps the order), then 3, then 1. 0 + 2 averages to the target; adding 3 or 1 makes it worse.
  REQUIRE(soup.ingredients.front() == 0);
  REQUIRE(soup.ingredients == std::vector<size_t>{0, 2});
  REQUIRE(max_abs_diff(values(soup.weights), target) < 1e-6);
  REQUIRE(soup.score == Approx(0).margin(1e-6));
  REQUIRE(soup.individual_scores.size() == 4);
}

TEST_CASE("lighter merge writes the merged model, bad input gives one clear error", "[ensemble][merge][cli]") {
  torch::manual_seed(7);
  const std::string dir = lighter_test::temp_dir("merge_cli");
  auto make = [](int64_t units) {
    return L::Sequential({L::layers::Input({4}), L::layers::Dense(L::layers::DenseOptions(units).activation("relu")),
                          L::layers::Dense(L::layers::DenseOptions(3).activation("softmax"))});
  };
  auto base = make(8), m1 = make(8), m2 = make(8), other = make(9);
  L::save_model(*base, dir + "/base");
  L::save_model(*m1, dir + "/m1");
  L::save_model(*m2, dir + "/m2");
  L::save_model(*other, dir + "/other");
  std::string out;
  REQUIRE(lighter_test::run_cli("merge --method ties --base " + dir + "/base --density 0.5 --weights 1,0.5 --lambda 0.8 --output " +
                                    dir + "/ties " + dir + "/m1 " + dir + "/m2",
                                &out) == 0);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("merged 2 model(s) with ties"));
  auto merged = L::load_model(dir + "/ties");
  auto want = E::ties(E::weights_of(*base), {E::weights_of(*m1), E::weights_of(*m2)}, 0.5, {1, 0.5}, 0.8);
  auto got = E::weights_of(*merged);
  for (size_t k = 0; k < want.size(); ++k) REQUIRE(max_abs_diff(got[k].second, want[k].second) < 1e-6);
  REQUIRE(L::load_model_extra(dir + "/ties")["merge"]["density"] == 0.5);
  // A soup of a model with itself is the model.
  REQUIRE(lighter_test::run_cli("merge --method soup --output " + dir + "/soup " + dir + "/m1 " + dir + "/m1", &out) == 0);
  auto x = torch::randn({3, 4});
  REQUIRE(max_abs_diff(L::load_model(dir + "/soup")->predict(x), m1->predict(x)) < 1e-6);

  REQUIRE(lighter_test::run_cli("merge --method soup --output " + dir + "/bad " + dir + "/m1 " + dir + "/other", &out) == 1);
  REQUIRE_THAT(out, LIGHTER_CONTAINS(dir + "/other: tensor 'dense.weight' has shape (9, 4)"));
  REQUIRE(lighter_test::run_cli("merge --method ties --base " + dir + "/base --density 1.5 --output " + dir + "/bad " +
                                    dir + "/m1",
                                &out) == 1);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("density: expected a number in (0, 1], got 1.5"));
  REQUIRE(lighter_test::run_cli("merge --method ties --density 0.5 --output " + dir + "/bad " + dir + "/m1", &out) == 2);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("needs --base DIR"));
  REQUIRE(lighter_test::run_cli("merge --method soup --output " + dir + "/bad " + dir + "/missing", &out) == 1);
  REQUIRE_THAT(out, LIGHTER_CONTAINS(dir + "/missing"));
  REQUIRE(lighter_test::run_cli("merge --method soup --output " + dir + "/ties " + dir + "/m1", &out) == 2);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("exists and is not empty"));
}
