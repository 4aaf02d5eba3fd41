#pragma once
// The ensemble example's work, on any image or feature classification data (main.cpp runs it on Fashion-MNIST;
// the tests run it small on the digits):
//   1. members: M copies of one MLP, each from its own seed, trained independently;
//   2. ensembles of those members: averaged probabilities, hard voting, weights from validation accuracy, stacking
//      (a Dense meta-model on out-of-fold predictions);
//   3. weight soups: one pretrained model fine-tuned K ways, then its uniform and greedy soups (one model's cost at
//      inference) beside the best fine-tuned variant and the ensemble of the variants.
// Every row is scored on the same held-out test data; predict_ms is the time to predict the whole test set.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <lighter/lighter.h>

namespace ensemble_example {

namespace L = lighter;
namespace E = lighter::ensemble;

struct Split {
  torch::Tensor x, y;
};

struct Options {
  int64_t members = 5, epochs = 5, hidden = 256, folds = 3;
  int64_t pretrain_epochs = 3, variants = 5, finetune_epochs = 2, batch_size = 64;
  double scale = 1.0 / 255;  // input scaling inside the model (raw pixels)
  uint64_t seed = 42;
  int verbose = 0;
};

struct Row {
  std::string group, name;
  double accuracy = 0, loss = 0;
  int64_t params = 0;
  double predict_ms = 0;
  std::string note;
};

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The member network: flatten, scale, one hidden ReLU layer with dropout, softmax.
inline L::models::ModelPtr make_mlp(const L::Shape& input, int64_t classes, const Options& o) {
  return std::make_shared<L::models::SequentialImpl>(
      std::vector<L::layers::LayerRef>{L::Input(input), L::layers::Flatten(), L::layers::Rescaling(o.scale),
                                       L::Dense(L::DenseOptions(o.hidden).activation("relu")), L::Dropout(0.2),
                                       L::Dense(L::DenseOptions(classes).activation("softmax"))},
      "mlp");
}

inline void compile(L::models::ModelImpl& m, double learning_rate = 1e-3) {
  m.compile(L::optimizers::adam(learning_rate), "sparse_categorical_crossentropy", {"accuracy"});
}

// Test accuracy and loss, the parameter count and the time to predict the test set.
inline Row score(const std::string& group, const std::string& name, L::models::ModelImpl& model, const Split& test,
                 int64_t batch_size, const std::string& note = "") {
  compile(model);
  model.eval();
  Row r{group, name};
  auto start = std::chrono::steady_clock::now();
  {
    torch::NoGradGuard no_grad;
    model.predict(test.x, 256);
  }
  r.predict_ms = 1000 * seconds_since(start);
  auto s = model.evaluate(test.x, test.y, L::EvaluateOptions().batch_size(256));
  r.accuracy = s.at("accuracy");
  r.loss = s.at("loss");
  r.params = model.count_params().total();
  r.note = note;
  return r;
}

inline double accuracy_on(L::models::ModelImpl& model, const Split& data) {
  model.eval();
  return model.evaluate(data.x, data.y, L::EvaluateOptions().batch_size(256)).at("accuracy");
}

inline L::Shape input_shape_of(const torch::Tensor& x) {
  L::Shape s(x.sizes().begin() + 1, x.sizes().end());
  return s;
}

/// Parts 1 and 2: the members and their ensembles.
inline std::vector<Row> run_ensembles(const Split& train, const Split& valid, const Split& test, int64_t classes,
                                      const Options& o) {
  std::vector<Row> rows;
  std::vector<L::models::ModelPtr> members;
  for (int64_t i = 0; i < o.members; ++i) {
    L::seed_everything(o.seed + i);  // each member its own initial weights and shuffles
    members.push_back(make_mlp(input_shape_of(train.x), classes, o));
  }
  auto average = std::make_shared<E::EnsembleImpl>(members, E::EnsembleOptions(), "average");
  E::EnsembleFitOptions fit;
  fit.compile = [](L::models::ModelImpl& m) { compile(m); };
  fit.fit.epochs(o.epochs).batch_size(o.batch_size).verbose(o.verbose);
  fit.validation = std::make_pair(valid.x, valid.y);
  fit.seed = o.seed;
  auto start = std::chrono::steady_clock::now();
  auto trained = E::fit_ensemble(*average, train.x, train.y, fit);
  std::printf("trained %lld members in %.1f s\n", static_cast<long long>(o.members), seconds_since(start));

  std::vector<double> valid_accuracy;
  for (size_t i = 0; i < members.size(); ++i) {
    valid_accuracy.push_back(trained.member_validation[i].at("accuracy"));
    char note[64];
    std::snprintf(note, sizeof note, "validation accuracy %.4f", valid_accuracy.back());
    rows.push_back(score("members", "member_" + std::to_string(i), *members[i], test, o.batch_size, note));
  }
  rows.push_back(score("ensembles", "average (soft voting)", *average, test, o.batch_size));

  auto voting = std::make_shared<E::EnsembleImpl>(members, E::EnsembleOptions().combine("hard_voting"), "voting");
  rows.push_back(score("ensembles", "hard voting", *voting, test, o.batch_size));

  auto weighted = std::make_shared<E::EnsembleImpl>(members, E::EnsembleOptions().weights(valid_accuracy), "weighted");
  rows.push_back(score("ensembles", "weighted by validation accuracy", *weighted, test, o.batch_size));

  // Stacking over the same members: fit_ensemble leaves pretrained members alone and trains fold copies of them
  // for the meta-model's out-of-fold inputs.
  auto stacking = std::make_shared<E::EnsembleImpl>(members, E::EnsembleOptions().combine("stacking").folds(o.folds),
                                                    "stacking");
  stacking->set_pretrained(std::vector<bool>(members.size(), true));
  E::EnsembleFitOptions sfit = fit;
  sfit.fit.verbose(0);
  sfit.meta_fit = L::FitOptions().epochs(10).batch_size(o.batch_size).verbose(0);
  start = std::chrono::steady_clock::now();
  E::fit_ensemble(*stacking, train.x, train.y, sfit);
  char note[96];
  std::snprintf(note, sizeof note, "%lld folds, meta-model trained in %.1f s", static_cast<long long>(o.folds),
                seconds_since(start));
  rows.push_back(score("ensembles", "stacking (Dense meta-model)", *stacking, test, o.batch_size, note));

  // What a soup is not for: members trained from different initial weights do not share a basin, and averaging
  // their weights mixes unrelated hidden units.
  std::vector<E::Weights> member_weights;
  for (const auto& m : members) member_weights.push_back(E::weights_of(*m));
  auto mixed = L::models::model_from_json(members.front()->to_json());
  E::assign_weights(*mixed, E::average(member_weights));
  rows.push_back(score("ensembles", "uniform soup of these members", *mixed, test, o.batch_size,
                       "independent initialisations: no shared basin"));
  return rows;
}

/// Part 3: fine-tuned variants of one pretrained model, and their soups.
inline std::vector<Row> run_soups(const Split& train, const Split& valid, const Split& test, int64_t classes,
                                  const Options& o) {
  std::vector<Row> rows;
  L::seed_everything(o.seed + 1000);
  auto base = make_mlp(input_shape_of(train.x), classes, o);
  compile(*base);
  base->fit(train.x, train.y, L::FitOptions().epochs(o.pretrain_epochs).batch_size(o.batch_size).verbose(o.verbose));
  rows.push_back(score("soups", "pretrained base", *base, test, o.batch_size));

  // Each variant starts from the base weights with its own learning rate and shuffling.
  const std::vector<double> rates = {1e-3, 3e-4, 1e-4, 5e-4, 2e-4};
  std::vector<E::Weights> variants;
  std::vector<L::models::ModelPtr> variant_models;
  const auto start_weights = E::weights_of(*base);
  int64_t best = 0;
  double best_valid = -1;
  for (int64_t k = 0; k < o.variants; ++k) {
    L::seed_everything(o.seed + 2000 + k);
    auto m = L::models::model_from_json(base->to_json());
    E::assign_weights(*m, start_weights);
    const double lr = rates[k % rates.size()];
    compile(*m, lr);
    m->fit(train.x, train.y, L::FitOptions().epochs(o.finetune_epochs).batch_size(o.batch_size).verbose(o.verbose));
    double v = accuracy_on(*m, valid);
    if (v > best_valid) {
      best_valid = v;
      best = k;
    }
    char note[80];
    std::snprintf(note, sizeof note, "lr %.0e, validation accuracy %.4f", lr, v);
    rows.push_back(score("soups", "fine-tuned variant " + std::to_string(k), *m, test, o.batch_size, note));
    variants.push_back(E::weights_of(*m));
    variant_models.push_back(m);
  }
  rows.push_back(rows[1 + best]);
  rows.back().name = "best variant by validation (" + std::to_string(best) + ")";

  auto soup_model = L::models::model_from_json(base->to_json());
  E::assign_weights(*soup_model, E::average(variants));
  rows.push_back(score("soups", "uniform soup", *soup_model, test, o.batch_size));

  auto probe = L::models::model_from_json(base->to_json());
  auto greedy = E::greedy_soup(variants, [&](const E::Weights& w) {
    E::assign_weights(*probe, w);
    compile(*probe);
    return accuracy_on(*probe, valid);
  });
  E::assign_weights(*soup_model, greedy.weights);
  std::string ingredients;
  for (size_t i : greedy.ingredients) ingredients += (ingredients.empty() ? "" : ", ") + std::to_string(i);
  rows.push_back(score("soups", "greedy soup", *soup_model, test, o.batch_size, "variants " + ingredients));

  auto variant_ensemble = std::make_shared<E::EnsembleImpl>(variant_models, E::EnsembleOptions(), "variants");
  rows.push_back(score("soups", "ensemble of the variants", *variant_ensemble, test, o.batch_size));
  return rows;
}

inline void print(const std::vector<Row>& rows) {
  std::printf("\n%-10s %-34s %9s %8s %10s %11s  %s\n", "group", "model", "accuracy", "loss", "params", "predict ms",
              "note");
  for (const auto& r : rows)
    std::printf("%-10s %-34s %9.4f %8.4f %10lld %11.1f  %s\n", r.group.c_str(), r.name.c_str(), r.accuracy, r.loss,
                static_cast<long long>(r.params), r.predict_ms, r.note.c_str());
}

inline nlohmann::json to_json(const std::vector<Row>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows)
    out.push_back({{"group", r.group}, {"name", r.name}, {"accuracy", r.accuracy}, {"loss", r.loss},
                   {"params", r.params}, {"predict_ms", r.predict_ms}, {"note", r.note}});
  return out;
}

}  // namespace ensemble_example
