#include "lighter_test.h"

#include <cmath>

#include "lighter/training/metrics.h"

namespace metrics = lighter::metrics;
using lighter::json;

namespace {

torch::Tensor t2(std::vector<std::vector<double>> rows) {
  std::vector<torch::Tensor> out;
  for (auto& r : rows) out.push_back(torch::tensor(r, torch::kFloat));
  return torch::stack(out);
}

torch::Tensor t1(std::vector<double> v) { return torch::tensor(v, torch::kFloat); }

// Feeds rows [0, split) and [split, N) as two batches.
void update_in_two(metrics::Metric& m, const torch::Tensor& p, const torch::Tensor& y, const torch::Tensor& w,
                   int64_t split) {
  const int64_t n = p.size(0);
  m.update_state(p.narrow(0, 0, split), y.narrow(0, 0, split), w.defined() ? w.narrow(0, 0, split) : w);
  m.update_state(p.narrow(0, split, n - split), y.narrow(0, split, n - split),
                 w.defined() ? w.narrow(0, split, n - split) : w);
}

// Exact ROC AUC: the probability a positive scores above a negative (ties count half).
double exact_auc(const torch::Tensor& p, const torch::Tensor& y) {
  auto pa = p.accessor<float, 1>();
  auto ya = y.accessor<float, 1>();
  double wins = 0, pairs = 0;
  for (int64_t i = 0; i < p.size(0); ++i)
    for (int64_t j = 0; j < p.size(0); ++j)
      if (ya[i] == 1 && ya[j] == 0) {
        pairs += 1;
        wins += pa[i] > pa[j] ? 1.0 : (pa[i] == pa[j] ? 0.5 : 0.0);
      }
  return wins / pairs;
}

}  // namespace

TEST_CASE("accuracy metrics match hand counts", "[metrics]") {
  metrics::BinaryAccuracy binary;
  binary.update_state(t2({{0.9}, {0.4}, {0.6}, {0.2}}), t1({1, 1, 0, 0}));
  REQUIRE(binary.result() == Approx(0.5));  // right: 0.9 and 0.2
  metrics::BinaryAccuracy low("binary_accuracy", 0.3);
  low.update_state(t2({{0.9}, {0.4}, {0.6}, {0.2}}), t2({{1}, {1}, {0}, {0}}));
  REQUIRE(low.result() == Approx(0.75));

  auto p = t2({{0.1, 0.8, 0.1}, {0.6, 0.3, 0.1}, {0.2, 0.2, 0.6}});
  metrics::CategoricalAccuracy categorical;
  categorical.update_state(p, t2({{0, 1, 0}, {0, 1, 0}, {0, 0, 1}}));
  REQUIRE(categorical.result() == Approx(2.0 / 3));
  metrics::SparseCategoricalAccuracy sparse;
  sparse.update_state(p, torch::tensor({1, 1, 2}));
  REQUIRE(sparse.result() == Approx(2.0 / 3));
  sparse.reset_state();
  REQUIRE(sparse.result() == 0.0);
  // weighted: (1*1 + 2*0 + 1*1) / 4, labels as [N, 1] floats
  sparse.update_state(p, t2({{1}, {1}, {2}}), t1({1, 2, 1}));
  REQUIRE(sparse.result() == Approx(0.5));

  // top-2: row 0 target 0.4 has one higher -> in; row 1 target 0.2 has two higher -> out;
  // row 2 target 0.3 ties with another 0.3, one strictly higher -> in
  auto q = t2({{0.1, 0.5, 0.4}, {0.5, 0.3, 0.2}, {0.3, 0.3, 0.4}});
  metrics::SparseTopKCategoricalAccuracy top2("top2", 2);
  top2.update_state(q, torch::tensor({2, 2, 0}));
  REQUIRE(top2.result() == Approx(2.0 / 3));
  metrics::TopKCategoricalAccuracy top2c("top2", 2);
  top2c.update_state(q, t2({{0, 0, 1}, {0, 0, 1}, {1, 0, 0}}));
  REQUIRE(top2c.result() == Approx(2.0 / 3));
  metrics::SparseTopKCategoricalAccuracy top5;  // k = 5 >= 3 classes: always in
  top5.update_state(q, torch::tensor({2, 2, 0}));
  REQUIRE(top5.result() == 1.0);
}

TEST_CASE("metrics over uneven batches equal one batch, weighted", "[metrics]") {
  torch::manual_seed(1);
  const int64_t n = 7;
  auto reg_pred = torch::randn({n, 1});
  auto reg_true = torch::randn({n}) + 1.0;
  auto cls_pred = torch::softmax(torch::randn({n, 4}), -1);
  auto cls_true = torch::randint(0, 4, {n});
  auto bin_pred = torch::rand({n, 1});
  auto bin_true = torch::randint(0, 2, {n}).to(torch::kFloat);
  auto w = torch::rand({n}) + 0.1;

  struct Case {
    std::string name;
    torch::Tensor p, y;
  };
  std::vector<Case> cases = {{"mse", reg_pred, reg_true},        {"mae", reg_pred, reg_true},
                             {"rmse", reg_pred, reg_true},       {"mape", reg_pred, reg_true},
                             {"r2_score", reg_pred, reg_true},   {"sparse_categorical_accuracy", cls_pred, cls_true},
                             {"binary_accuracy", bin_pred, bin_true}, {"auc", bin_pred, bin_true},
                             {"precision", bin_pred, bin_true},  {"recall", bin_pred, bin_true},
                             {"f1_score", bin_pred, bin_true},
                             {"sparse_top_k_categorical_accuracy", cls_pred, cls_true}};
  for (const auto& c : cases) {
    for (bool weighted : {false, true}) {
      INFO(c.name << (weighted ? " weighted" : ""));
      auto whole = metrics::get(c.name);
      auto split = metrics::get(c.name);
      torch::Tensor weights = weighted ? w : torch::Tensor();
      whole->update_state(c.p, c.y, weights);
      update_in_two(*split, c.p, c.y, weights, 5);
      REQUIRE(split->result() == Approx(whole->result()).epsilon(1e-6));
    }
  }

  // The regression metrics by hand, weighted: sum(w*e) / sum(w); rmse is the root of the weighted mse.
  auto e = reg_pred.squeeze(1).to(torch::kDouble) - reg_true.to(torch::kDouble);
  auto wd = w.to(torch::kDouble);
  double mse = ((e * e) * wd).sum().item<double>() / wd.sum().item<double>();
  double mae = (e.abs() * wd).sum().item<double>() / wd.sum().item<double>();
  auto m = metrics::get("mse");
  update_in_two(*m, reg_pred, reg_true, w, 5);
  REQUIRE(m->result() == Approx(mse).epsilon(1e-5));
  auto a = metrics::get("mae");
  update_in_two(*a, reg_pred, reg_true, w, 5);
  REQUIRE(a->result() == Approx(mae).epsilon(1e-5));
  auto r = metrics::get("rmse");
  update_in_two(*r, reg_pred, reg_true, w, 5);
  REQUIRE(r->result() == Approx(std::sqrt(mse)).epsilon(1e-5));
  // and not the mean of the two batch means
  double first = ((e.narrow(0, 0, 5).abs() * wd.narrow(0, 0, 5)).sum() / wd.narrow(0, 0, 5).sum()).item<double>();
  double second = ((e.narrow(0, 5, 2).abs() * wd.narrow(0, 5, 2)).sum() / wd.narrow(0, 5, 2).sum()).item<double>();
  REQUIRE(std::abs((first + second) / 2 - mae) > 1e-4);
}

TEST_CASE("mape and regression metrics by hand", "[metrics]") {
  metrics::MeanAbsolutePercentageError mape;
  mape.update_state(t2({{1}, {5}}), t1({2, 4}));  // 50 and 25
  mape.update_state(t2({{3}}), t1({3}));          // 0
  REQUIRE(mape.result() == Approx(25.0));
  metrics::MeanSquaredError mse;
  mse.update_state(t2({{1, 2}, {3, 4}}), t2({{0, 2}, {1, 1}}));  // per sample 0.5 and 6.5
  REQUIRE(mse.result() == Approx(3.5));
}

TEST_CASE("r2_score matches the definition", "[metrics]") {
  metrics::R2Score r2;
  // ss_res = 0.01 + 0.01 + 0.04 + 0.04 = 0.1; mean 2.5, ss_tot = 5 -> 0.98
  r2.update_state(t1({1.1, 1.9, 3.2}), t1({1, 2, 3}));
  r2.update_state(t1({3.8}), t1({4}));
  REQUIRE(r2.result() == Approx(0.98));
  // weights 1, 1, 1, 2: weighted mean 14/5, ss_tot = 46 - 14^2/5 = 6.8, ss_res = 0.14
  metrics::R2Score weighted;
  weighted.update_state(t1({1.1, 1.9, 3.2, 3.8}), t1({1, 2, 3, 4}), t1({1, 1, 1, 2}));
  REQUIRE(weighted.result() == Approx(1 - 0.14 / 6.8));
  // adjusted with one regressor: 1 - (1 - 0.98) * (4 - 1) / (4 - 1 - 1)
  metrics::R2Score adjusted("r2", "uniform_average", 1);
  adjusted.update_state(t1({1.1, 1.9, 3.2, 3.8}), t1({1, 2, 3, 4}));
  REQUIRE(adjusted.result() == Approx(1 - 0.02 * 3 / 2));
  // two outputs, uniform average of per-column scores: column 2 is perfect (1.0)
  metrics::R2Score two;
  two.update_state(t2({{1.1, 5}, {1.9, 6}, {3.2, 7}, {3.8, 8}}), t2({{1, 5}, {2, 6}, {3, 7}, {4, 8}}));
  REQUIRE(two.result() == Approx((0.98 + 1.0) / 2));
}

TEST_CASE("auc against the exact area", "[metrics]") {
  metrics::AUC auc;
  auc.update_state(t1({0.1, 0.4, 0.35, 0.8}), t1({0, 0, 1, 1}));
  REQUIRE(auc.result() == Approx(0.75).margin(1e-2));

  // Keras' documented example: num_thresholds 3 gives 0.75
  metrics::AUC coarse("auc", 3);
  coarse.update_state(t1({0, 0.5, 0.3, 0.9}), t1({0, 0, 1, 1}));
  REQUIRE(coarse.result() == Approx(0.75));

  torch::manual_seed(3);
  auto y = torch::randint(0, 2, {200}).to(torch::kFloat);
  auto p = torch::sigmoid(torch::randn({200}) + 1.5 * y);
  metrics::AUC big;
  big.update_state(p.narrow(0, 0, 150), y.narrow(0, 0, 150));
  big.update_state(p.narrow(0, 150, 50), y.narrow(0, 150, 50));
  REQUIRE(big.result() == Approx(exact_auc(p, y)).margin(1e-2));
  // from_logits applies the sigmoid first
  metrics::AUC logits("auc", 200, "ROC", "interpolation", true);
  logits.update_state(torch::logit(p), y);
  REQUIRE(logits.result() == Approx(big.result()).margin(1e-3));
  // integer sample weights count like repeated samples
  metrics::AUC weighted, repeated;
  auto w = torch::tensor({1.0, 3.0, 2.0, 1.0});
  weighted.update_state(t1({0.1, 0.4, 0.35, 0.8}), t1({0, 0, 1, 1}), w);
  repeated.update_state(t1({0.1, 0.4, 0.4, 0.4, 0.35, 0.35, 0.8}), t1({0, 0, 0, 0, 1, 1, 1}));
  REQUIRE(weighted.result() == Approx(repeated.result()));
  REQUIRE(weighted.result() == Approx(exact_auc(t1({0.1, 0.4, 0.4, 0.4, 0.35, 0.35, 0.8}), t1({0, 0, 0, 0, 1, 1, 1}))).margin(1e-2));

  // PR curve: a perfect ranking has area 1; with one inversion it is less
  metrics::AUC pr("pr", 200, "PR");
  pr.update_state(t1({0.1, 0.2, 0.7, 0.9}), t1({0, 0, 1, 1}));
  REQUIRE(pr.result() == Approx(1.0).margin(1e-2));
  metrics::AUC pr2("pr", 200, "PR");
  pr2.update_state(t1({0.1, 0.8, 0.7, 0.9}), t1({0, 0, 1, 1}));
  // Keras' interpolate_pr_auc (Davis & Goadrich) on this problem, evaluated by hand in double precision.
  REQUIRE(pr2.result() == Approx(0.7972674459).epsilon(1e-6));
  metrics::AUC pr_min("pr", 200, "PR", "minoring");
  pr_min.update_state(t1({0.1, 0.8, 0.7, 0.9}), t1({0, 0, 1, 1}));
  REQUIRE(pr_min.result() == Approx(0.25));  // the last step to precision 0 (no predicted positives) counts
  metrics::AUC roc_max("roc", 200, "ROC", "majoring");
  roc_max.update_state(t1({0.1, 0.8, 0.7, 0.9}), t1({0, 0, 1, 1}));
  REQUIRE(roc_max.result() == Approx(0.75));
  metrics::AUC empty;
  REQUIRE(empty.result() == 0.0);
}

TEST_CASE("precision and recall, including no positives", "[metrics]") {
  auto p = t1({0.9, 0.6, 0.3, 0.8});
  auto y = t1({1, 0, 1, 0});
  // predicted positive: 0.9 (tp), 0.6 (fp), 0.8 (fp); 0.3 is a missed positive (fn)
  metrics::Precision precision;
  metrics::Recall recall;
  precision.update_state(p, y);
  recall.update_state(p, y);
  REQUIRE(precision.result() == Approx(1.0 / 3));
  REQUIRE(recall.result() == Approx(1.0 / 2));
  // weights: tp 2, fp 1 + 1, fn 1
  metrics::Precision wp;
  wp.update_state(p, y, t1({2, 1, 1, 1}));
  REQUIRE(wp.result() == Approx(2.0 / 4));

  metrics::Precision none_p;
  metrics::Recall none_r;
  REQUIRE(none_p.result() == 0.0);
  none_p.update_state(t1({0.1, 0.2}), t1({0, 0}));
  none_r.update_state(t1({0.1, 0.2}), t1({0, 0}));
  REQUIRE(none_p.result() == 0.0);
  REQUIRE(none_r.result() == 0.0);
  REQUIRE(std::isfinite(none_p.result()));
}

TEST_CASE("f1_score and fbeta_score against hand counts", "[metrics]") {
  // Binary at threshold 0.5: predicted positive 0.9 (tp), 0.6 (fp), 0.8 (tp); 0.3 a missed positive (fn).
  // precision 2/3, recall 2/3 -> F1 2/3. Keras' epsilons (1e-7) are below Approx's tolerance.
  auto p = t2({{0.9}, {0.6}, {0.3}, {0.8}, {0.2}});
  auto y = t1({1, 0, 1, 1, 0});
  metrics::F1Score f1("f1_score", "", 0.5);
  f1.update_state(p.narrow(0, 0, 2), y.narrow(0, 0, 2));
  f1.update_state(p.narrow(0, 2, 3), y.narrow(0, 2, 3));
  REQUIRE(f1.result() == Approx(2.0 / 3));
  // weight 2 on the first true positive: tp 3, fp 1, fn 1 -> 3/4
  metrics::F1Score wf1("f1", "", 0.5);
  wf1.update_state(p, y, t1({2, 1, 1, 1, 1}));
  REQUIRE(wf1.result() == Approx(0.75));
  // beta 2 at threshold 0.25: predicted 0.9 0.6 0.3 0.8 -> tp 3, fp 1, fn 0; P 3/4, R 1
  // -> (1 + 4) * 0.75 * 1 / (4 * 0.75 + 1) = 15/16
  metrics::FBetaScore f2("fbeta", "", 2.0, 0.25);
  f2.update_state(p, y);
  REQUIRE(f2.result() == Approx(15.0 / 16));
  // Integer labels [N] as `fit` gives them.
  metrics::F1Score ints("f1", "", 0.5);
  ints.update_state(p, torch::tensor({1, 0, 1, 1, 0}));
  REQUIRE(ints.result() == Approx(2.0 / 3));
  // Keras' default threshold (None) takes each row's maximum: with one column every non-zero score is positive.
  metrics::F1Score quirk;
  quirk.update_state(t2({{0.9}, {0.2}, {0.0}}), t1({1, 0, 0}));
  REQUIRE(quirk.result() == Approx(2.0 / 3));  // tp 1, fp 1 (0.2), the 0.0 row negative

  // Three classes, argmax; labels 0 1 1 1, predicted 0 1 2 0.
  // class 0: tp 1 fp 1 fn 0 -> 2/3; class 1: tp 1 fp 0 fn 2 -> P 1, R 1/3 -> 1/2; class 2: tp 0 fp 1 -> 0.
  auto q = t2({{0.7, 0.2, 0.1}, {0.1, 0.6, 0.3}, {0.3, 0.3, 0.4}, {0.5, 0.4, 0.1}});
  auto onehot = t2({{1, 0, 0}, {0, 1, 0}, {0, 1, 0}, {0, 1, 0}});
  metrics::F1Score macro("f1", "macro"), weighted("f1", "weighted"), micro("f1", "micro");
  for (auto* m : {&macro, &weighted, &micro}) update_in_two(*m, q, onehot, {}, 3);
  REQUIRE(macro.result() == Approx((2.0 / 3 + 0.5 + 0.0) / 3));
  REQUIRE(weighted.result() == Approx((2.0 / 3 * 1 + 0.5 * 3 + 0.0 * 0) / 4));  // by true-label counts 1, 3, 0
  REQUIRE(micro.result() == Approx(0.5));                                     // tp 2, fp 2, fn 2
  auto per_class = macro.result_tensor();
  REQUIRE(per_class.dim() == 0);
  metrics::F1Score none_avg("f1");
  REQUIRE_THROWS_AS(none_avg.update_state(q, onehot), lighter::ShapeError);
  // Ties at the maximum are all positive; an all-zero row has none: tp 1, fp 1, fn 1 -> 1/2.
  metrics::F1Score ties("f1", "micro");
  ties.update_state(t2({{0.5, 0.5, 0.0}, {0, 0, 0}}), t2({{1, 0, 0}, {0, 0, 1}}));
  REQUIRE(ties.result() == Approx(0.5));
  // A mask keeps padded positions out: (N=1, T=3, C=1) with the wrong last step masked.
  metrics::F1Score masked("f1", "", 0.5);
  masked.update_state(torch::tensor({0.9, 0.1, 0.8}).reshape({1, 3, 1}), torch::tensor({{1.0, 0.0, 0.0}}), {},
                      torch::tensor({{true, true, false}}));
  REQUIRE(masked.result() == Approx(1.0));

  // Nothing seen, nothing predicted and no positives: 0, not NaN.
  metrics::F1Score empty("f1", "", 0.5);
  REQUIRE(empty.result() == 0.0);
  empty.update_state(t1({0.1, 0.2}), t1({0, 0}));
  REQUIRE(empty.result() == 0.0);
  empty.reset_state();
  empty.update_state(p, y);
  REQUIRE(empty.result() == Approx(2.0 / 3));
}

TEST_CASE("F1Score reads Keras configs", "[metrics]") {
  auto f1 = metrics::get(json::parse(R"({"module": "keras.metrics", "class_name": "F1Score", "registered_name": null,
      "config": {"name": "f1", "dtype": "float32", "average": null, "threshold": 0.5}})"));
  REQUIRE(f1->class_name() == "F1Score");
  REQUIRE(f1->name() == "f1");
  REQUIRE(f1->get_config() == json::parse(R"({"name": "f1", "dtype": "float32", "average": null, "threshold": 0.5})"));
  f1->update_state(t2({{0.9}, {0.6}, {0.3}, {0.8}}), t1({1, 0, 1, 1}));
  REQUIRE(f1->result() == Approx(2.0 / 3));  // P 2/3, R 2/3
  auto fb = metrics::get(json::parse(R"({"class_name": "FBetaScore", "config": {"beta": 0.5, "average": "macro"}})"));
  REQUIRE(fb->get_config()["beta"] == 0.5);
  REQUIRE(fb->get_config()["average"] == "macro");
  REQUIRE(fb->get_config()["threshold"].is_null());
  LIGHTER_REQUIRE_THROWS_WITH(
      metrics::get(json::parse(R"({"class_name": "F1Score", "config": {"average": "samples"}})"), "compile.metrics[2]"),
      "compile.metrics[2].config.average: expected one of");
  LIGHTER_REQUIRE_THROWS_WITH(metrics::get(json::parse(R"({"class_name": "F1Score", "config": {"threshold": 0}})")),
                              "metrics.config.threshold: expected null or a number in (0, 1]");
  LIGHTER_REQUIRE_THROWS_WITH(metrics::get(json::parse(R"({"class_name": "F1Score", "config": {"beta": 2}})")),
                              "metrics.config.beta: unknown key");
  LIGHTER_REQUIRE_THROWS_WITH(metrics::get(json::parse(R"({"class_name": "FBetaScore", "config": {"beta": 0}})")),
                              "metrics.config.beta: expected a number > 0");
}

TEST_CASE("masks restrict metrics to valid positions", "[metrics]") {
  // [N=1, T=3, C=2]: position 2 is padding and predicted wrong
  auto p = torch::tensor({0.8, 0.2, 0.4, 0.6, 0.9, 0.1}, torch::kFloat).reshape({1, 3, 2});
  auto labels = torch::tensor({{0, 1, 1}});
  metrics::SparseCategoricalAccuracy acc;
  acc.update_state(p, labels, {}, torch::tensor({{true, true, false}}));
  REQUIRE(acc.result() == 1.0);
  acc.reset_state();
  acc.update_state(p, labels);
  REQUIRE(acc.result() == Approx(2.0 / 3));
  // a NaN at a masked position stays out
  metrics::Mean mean;
  mean.update_state(t1({1.0, std::nan(""), 3.0}), {}, {}, torch::tensor({1.0, 0.0, 1.0}));
  REQUIRE(mean.result() == Approx(2.0));
}

TEST_CASE("Mean is a weighted running mean", "[metrics]") {
  metrics::Mean tracker("loss");
  REQUIRE(tracker.result() == 0.0);
  tracker.update(torch::tensor(2.0), 3);
  tracker.update(torch::tensor(4.0f), 1);
  REQUIRE(tracker.result() == Approx(2.5));  // (2*3 + 4) / 4
  tracker.update_state(t1({1, 3}), {}, t1({1, 3}));  // adds 1 + 9 over weight 4
  REQUIRE(tracker.result() == Approx((10.0 + 10.0) / 8));
  tracker.reset_state();
  REQUIRE(tracker.result() == 0.0);
  REQUIRE(tracker.name() == "loss");
}

TEST_CASE("accuracy resolves by the loss, or by shapes", "[metrics]") {
  REQUIRE(metrics::get("accuracy", "metrics", "sparse_categorical_crossentropy")->class_name() ==
          "SparseCategoricalAccuracy");
  REQUIRE(metrics::get("accuracy", "metrics", "SparseCategoricalCrossentropy")->class_name() ==
          "SparseCategoricalAccuracy");
  REQUIRE(metrics::get("acc", "metrics", "categorical_crossentropy")->class_name() == "CategoricalAccuracy");
  auto binary = metrics::get("accuracy", "metrics", "binary_crossentropy");
  REQUIRE(binary->class_name() == "BinaryAccuracy");
  REQUIRE(binary->name() == "accuracy");
  REQUIRE(metrics::get("acc", "metrics", "binary_crossentropy")->name() == "acc");

  auto p = t2({{0.1, 0.8, 0.1}, {0.6, 0.3, 0.1}});
  auto by_labels = metrics::get("accuracy", "metrics", "mse");
  by_labels->update_state(p, torch::tensor({1, 2}));
  REQUIRE(by_labels->class_name() == "SparseCategoricalAccuracy");
  REQUIRE(by_labels->result() == Approx(0.5));
  auto by_onehot = metrics::get("accuracy");
  by_onehot->update_state(p, t2({{0, 1, 0}, {1, 0, 0}}));
  REQUIRE(by_onehot->class_name() == "CategoricalAccuracy");
  REQUIRE(by_onehot->result() == 1.0);
  auto by_single = metrics::get("accuracy");
  by_single->update_state(t2({{0.7}, {0.2}}), t1({1, 1}));
  REQUIRE(by_single->class_name() == "BinaryAccuracy");
  REQUIRE(by_single->result() == Approx(0.5));
  REQUIRE(by_single->name() == "accuracy");
  // Keras' Accuracy class is exact equality
  auto exact = metrics::get("Accuracy");
  exact->update_state(t2({{1}, {2}, {3}}), t1({1, 2, 4}));
  REQUIRE(exact->result() == Approx(2.0 / 3));
}

TEST_CASE("metrics::get reads every Keras spelling and names mistakes", "[metrics]") {
  std::vector<std::pair<std::string, std::string>> spellings = {
      {"binary_accuracy", "BinaryAccuracy"},
      {"BinaryAccuracy", "BinaryAccuracy"},
      {"categorical_accuracy", "CategoricalAccuracy"},
      {"sparse_categorical_accuracy", "SparseCategoricalAccuracy"},
      {"SparseCategoricalAccuracy", "SparseCategoricalAccuracy"},
      {"top_k_categorical_accuracy", "TopKCategoricalAccuracy"},
      {"sparse_top_k_categorical_accuracy", "SparseTopKCategoricalAccuracy"},
      {"mse", "MeanSquaredError"},
      {"mean_squared_error", "MeanSquaredError"},
      {"mae", "MeanAbsoluteError"},
      {"MeanAbsoluteError", "MeanAbsoluteError"},
      {"rmse", "RootMeanSquaredError"},
      {"RootMeanSquaredError", "RootMeanSquaredError"},
      {"mape", "MeanAbsolutePercentageError"},
      {"auc", "AUC"},
      {"AUC", "AUC"},
      {"precision", "Precision"},
      {"Precision", "Precision"},
      {"recall", "Recall"},
      {"r2_score", "R2Score"},
      {"R2Score", "R2Score"},
      {"f1_score", "F1Score"},
      {"F1Score", "F1Score"},
      {"fbeta_score", "FBetaScore"},
  };
  for (const auto& s : spellings) {
    INFO(s.first);
    auto m = metrics::get(s.first);
    REQUIRE(m->class_name() == s.second);
    REQUIRE(m->name() == s.first);  // the spelling is the log key
  }
  auto auc = metrics::get(json::parse(R"({"module": "keras.metrics", "class_name": "AUC", "registered_name": null,
      "config": {"name": "pr_auc", "dtype": "float32", "num_thresholds": 50, "curve": "PR",
                 "summation_method": "interpolation", "multi_label": false, "num_labels": null,
                 "label_weights": null, "from_logits": false}})"));
  REQUIRE(auc->name() == "pr_auc");
  REQUIRE(auc->get_config()["num_thresholds"] == 50);
  REQUIRE(metrics::get(json::parse(R"({"class_name": "SparseCategoricalAccuracy"})"))->name() ==
          "sparse_categorical_accuracy");

  LIGHTER_REQUIRE_THROWS_WITH(metrics::get("accuracyy", "compile.metrics[0]"),
                              "compile.metrics[0]: unknown metric 'accuracyy' (supported: ");
  LIGHTER_REQUIRE_THROWS_WITH(metrics::get("nope"), "sparse_categorical_accuracy");
  LIGHTER_REQUIRE_THROWS_WITH(
      metrics::get(json::parse(R"({"class_name": "AUC", "config": {"num_thresold": 10}})"), "compile.metrics[1]"),
      "compile.metrics[1].config.num_thresold: unknown key");
  LIGHTER_REQUIRE_THROWS_WITH(metrics::get(json::parse(R"({"class_name": "AUC", "config": {"curve": "DET"}})")),
                              "metrics.config.curve: expected one of ROC, PR");
  LIGHTER_REQUIRE_THROWS_WITH(metrics::get(json::parse(R"({"class_name": "Precision", "config": {"top_k": 3}})")),
                              "metrics.config.top_k");
  LIGHTER_REQUIRE_THROWS_WITH(metrics::get(json::parse(R"({"class_name": "accuracy", "config": {"x": 1}})")),
                              "metrics.config.x: unknown key");
  REQUIRE_THROWS_AS(metrics::get(json(1)), lighter::ConfigError);
}

TEST_CASE("every metric round-trips through its config", "[metrics]") {
  torch::manual_seed(5);
  auto bin_pred = torch::rand({9, 1});
  auto bin_true = torch::randint(0, 2, {9, 1}).to(torch::kFloat);
  auto cls_pred = torch::softmax(torch::randn({9, 6}), -1);
  auto cls_true = torch::randint(0, 6, {9});
  auto onehot = torch::one_hot(cls_true, 6).to(torch::kFloat);
  for (const auto& name : metrics::registry().names()) {
    INFO(name);
    auto original = metrics::get(name);
    auto cn = original->class_name();
    torch::Tensor p = bin_pred, y = bin_true;
    if (cn == "SparseCategoricalAccuracy" || cn == "SparseTopKCategoricalAccuracy") {
      p = cls_pred;
      y = cls_true;
    } else if (cn == "CategoricalAccuracy" || cn == "TopKCategoricalAccuracy") {
      p = cls_pred;
      y = onehot;
    }
    original->update_state(p, y);
    auto again = metrics::get(metrics::serialize(*original));
    REQUIRE(again->class_name() == original->class_name());
    REQUIRE(again->name() == original->name());
    REQUIRE(again->get_config() == original->get_config());
    again->update_state(p, y);
    REQUIRE(again->result() == Approx(original->result()));
  }
  metrics::AUC custom("roc", 20, "PR", "majoring", true);
  auto again = metrics::get(metrics::serialize(custom));
  REQUIRE(again->get_config() == custom.get_config());
  metrics::SparseTopKCategoricalAccuracy top3("top3", 3);
  auto top3_again = metrics::get(metrics::serialize(top3));
  REQUIRE(top3_again->get_config()["k"] == 3);
  top3.update_state(cls_pred, cls_true);
  top3_again->update_state(cls_pred, cls_true);
  REQUIRE(top3_again->result() == Approx(top3.result()));
}
