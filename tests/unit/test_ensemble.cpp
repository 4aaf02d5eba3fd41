#include "lighter_test.h"

#include <filesystem>

#include "examples/ensemble/ensemble_example.h"

// Ensembles: averaging, voting and stacking against hand computations, JSON and saving round trips, training on
// real data (the digits), and the out-of-fold rule of stacking.

namespace L = lighter;
namespace E = lighter::ensemble;
using L::json;
using lighter_test::max_abs_diff;
using namespace lighter::layers;

namespace {

// A softmax classifier over 4 features with 3 classes.
L::models::ModelPtr small_classifier(const std::string& activation = "softmax", int64_t units = 3) {
  return std::make_shared<L::models::SequentialImpl>(
      std::vector<LayerRef>{Input({4}), Dense(DenseOptions(units).activation(activation))});
}

std::vector<L::models::ModelPtr> classifiers(int n, const std::string& activation = "softmax", int64_t units = 3) {
  std::vector<L::models::ModelPtr> out;
  for (int i = 0; i < n; ++i) out.push_back(small_classifier(activation, units));
  return out;
}

struct Digits {
  torch::Tensor x, y, x_test, y_test;
};

const Digits& digits() {
  static Digits d = [] {
    auto options = L::data::CsvOptions().target("digit").kind(L::data::TargetKind::Classification);
    auto train = L::data::read_csv(lighter_test::source_path("examples/data/digits_train.csv"), options);
    auto test = L::data::read_csv(lighter_test::source_path("examples/data/digits_test.csv"), options);
    return Digits{train.x / 16, train.y, test.x / 16, test.y};
  }();
  return d;
}

json digits_member_json(int64_t hidden) {
  return {{"class_name", "Sequential"},
          {"config",
           {{"name", "mlp"},
            {"layers",
             {{{"class_name", "InputLayer"}, {"config", {{"batch_shape", {nullptr, 64}}}}},
              {{"class_name", "Dense"}, {"config", {{"units", hidden}, {"activation", "relu"}}}},
              {{"class_name", "Dense"}, {"config", {{"units", 10}, {"activation", "softmax"}}}}}}}}};
}

E::EnsembleFitOptions digits_fit(int64_t epochs) {
  E::EnsembleFitOptions f;
  f.compile = [](L::models::ModelImpl& m) {
    m.compile(L::optimizers::adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  };
  f.fit.epochs(epochs).batch_size(32).verbose(0);
  return f;
}

}  // namespace

TEST_CASE("Ensemble averaging and weighted averaging equal the hand formula", "[ensemble]") {
  torch::manual_seed(1);
  auto members = classifiers(3);
  auto x = torch::randn({5, 4});
  std::vector<torch::Tensor> p;
  for (auto& m : members) p.push_back(m->forward(x).detach());

  auto avg = std::make_shared<E::EnsembleImpl>(members);
  REQUIRE(max_abs_diff(avg->forward(x), (p[0] + p[1] + p[2]) / 3) < 1e-6);
  REQUIRE(avg->output_activation() == "softmax");
  REQUIRE(avg->output_shape() == L::Shape({-1, 3}));
  REQUIRE(avg->count_params().total() == 3 * (4 * 3 + 3));

  auto weighted = std::make_shared<E::EnsembleImpl>(members, E::EnsembleOptions().weights({1, 2, 1}));
  REQUIRE(max_abs_diff(weighted->forward(x), (p[0] + 2 * p[1] + p[2]) / 4) < 1e-6);
  // Asked for the value before the softmax (as crossentropy does), the ensemble gives log p, which softmax maps
  // back to the averaged probabilities.
  auto pre = weighted->call({x}, {}, {true}).values[0];
  REQUIRE(max_abs_diff(torch::softmax(pre, -1), (p[0] + 2 * p[1] + p[2]) / 4) < 1e-6);

  // Stacking's default meta-model starts as the members' log-linear average, softmax(Σ log p_i / M), and takes
  // the members' log-probabilities.
  auto stack = std::make_shared<E::EnsembleImpl>(members, E::EnsembleOptions().combine("stacking"));
  REQUIRE(max_abs_diff(stack->stack_features(p), torch::cat({p[0].log(), p[1].log(), p[2].log()}, -1)) < 1e-5);
  REQUIRE(max_abs_diff(stack->forward(x), torch::softmax((p[0].log() + p[1].log() + p[2].log()) / 3, -1)) < 1e-5);
  REQUIRE(stack->summary().find("meta_model (Sequential)") != std::string::npos);

  // Regression members average their outputs.
  auto regressors = classifiers(2, "linear", 1);
  auto r = std::make_shared<E::EnsembleImpl>(regressors, E::EnsembleOptions().weights({3, 1}));
  REQUIRE(max_abs_diff(r->forward(x), 0.75 * regressors[0]->forward(x) + 0.25 * regressors[1]->forward(x)) < 1e-6);
}

TEST_CASE("Hard voting counts weighted votes, for softmax and sigmoid members", "[ensemble]") {
  auto e = std::make_shared<E::EnsembleImpl>(classifiers(3), E::EnsembleOptions().combine("hard_voting"));
  // Sample 0 votes 0, 0, 1; sample 1 votes 2, 2, 1.
  std::vector<torch::Tensor> p{torch::tensor({{0.5, 0.3, 0.2}, {0.1, 0.2, 0.7}}),
                               torch::tensor({{0.4, 0.35, 0.25}, {0.3, 0.3, 0.4}}),
                               torch::tensor({{0.1, 0.8, 0.1}, {0.2, 0.6, 0.2}})};
  REQUIRE(max_abs_diff(e->combine(p), torch::tensor({{2.0 / 3, 1.0 / 3, 0.0}, {0.0, 1.0 / 3, 2.0 / 3}})) < 1e-6);
  // Weights 0.2, 0.2, 0.6: the third member outvotes the other two.
  e->set_weights({1, 1, 3});
  REQUIRE(max_abs_diff(e->combine(p), torch::tensor({{0.4, 0.6, 0.0}, {0.0, 0.6, 0.4}})) < 1e-6);
  // A sigmoid member votes for p > 0.5.
  auto b = std::make_shared<E::EnsembleImpl>(classifiers(3, "sigmoid", 1), E::EnsembleOptions().combine("hard_voting"));
  std::vector<torch::Tensor> q{torch::tensor({{0.9}, {0.2}}), torch::tensor({{0.6}, {0.4}}), torch::tensor({{0.1}, {0.7}})};
  REQUIRE(max_abs_diff(b->combine(q), torch::tensor({{2.0 / 3}, {1.0 / 3}})) < 1e-6);
  // Through call: the members' own votes.
  auto x = torch::randn({6, 4});
  torch::Tensor counts = torch::zeros({6, 3});
  for (const auto& m : e->members()) counts += torch::one_hot(m->forward(x).argmax(-1), 3).to(torch::kFloat);
  e->set_weights({1, 1, 1});
  REQUIRE(max_abs_diff(e->forward(x), counts / 3) < 1e-6);
}

TEST_CASE("Ensemble checks: weights, combinations, member outputs", "[ensemble]") {
  auto members = classifiers(2);
  LIGHTER_REQUIRE_THROWS_WITH(std::make_shared<E::EnsembleImpl>(members, E::EnsembleOptions().weights({1, -1})),
                              "weights[1]: expected a non-negative number");
  LIGHTER_REQUIRE_THROWS_WITH(std::make_shared<E::EnsembleImpl>(members, E::EnsembleOptions().weights({0, 0})),
                              "the weights sum to 0");
  LIGHTER_REQUIRE_THROWS_WITH(std::make_shared<E::EnsembleImpl>(members, E::EnsembleOptions().weights({1})),
                              "one weight per member: 2 members, 1 weights");
  LIGHTER_REQUIRE_THROWS_WITH(std::make_shared<E::EnsembleImpl>(members, E::EnsembleOptions().combine("median")),
                              "unknown combination 'median' (supported: average, soft_voting, hard_voting, stacking)");
  LIGHTER_REQUIRE_THROWS_WITH(std::make_shared<E::EnsembleImpl>(classifiers(2, "linear", 1),
                                                                E::EnsembleOptions().combine("soft_voting")),
                              "soft_voting needs members that end with softmax or sigmoid");
  LIGHTER_REQUIRE_THROWS_WITH(std::make_shared<E::EnsembleImpl>(std::vector<L::models::ModelPtr>{
                                  small_classifier(), small_classifier("softmax", 4)}),
                              "member 1 outputs (None, 4) but member 0 outputs (None, 3)");
  LIGHTER_REQUIRE_THROWS_WITH(std::make_shared<E::EnsembleImpl>(std::vector<L::models::ModelPtr>{}),
                              "an ensemble needs at least one member");
  LIGHTER_REQUIRE_THROWS_WITH(std::make_shared<E::EnsembleImpl>(members, E::EnsembleOptions().folds(1)),
                              "folds: expected an integer of at least 2, got 1");
}

TEST_CASE("Ensemble JSON: inline and saved members, round trip, save and load", "[ensemble][io]") {
  std::string dir = lighter_test::temp_dir("ensemble_json");
  torch::manual_seed(4);
  auto saved = small_classifier();
  L::save_model(*saved, dir + "/member");
  json member = small_classifier()->to_json();
  json spec = {{"class_name", "Ensemble"},
               {"config",
                {{"name", "trio"},
                 {"combine", "average"},
                 {"weights", {1, 1, 2}},
                 {"members", {member, member, {{"path", dir + "/member"}}}}}}};
  auto model = L::models::model_from_json(spec);
  auto* e = dynamic_cast<E::EnsembleImpl*>(model.get());
  REQUIRE(e != nullptr);
  REQUIRE(e->pretrained() == std::vector<bool>{false, false, true});
  REQUIRE(e->weights() == std::vector<double>{0.25, 0.25, 0.5});
  auto x = torch::randn({4, 4});
  // The member from the folder keeps its trained weights.
  REQUIRE(max_abs_diff(e->members()[2]->forward(x), saved->forward(x)) == 0);
  // Two fresh members built from one spec differ (each draws its own initial weights).
  REQUIRE(max_abs_diff(e->members()[0]->forward(x), e->members()[1]->forward(x)) > 1e-4);

  // Saved and loaded: one model.json (members inline) and one weight file, same predictions.
  L::save_model(*model, dir + "/ensemble");
  json written = L::read_json_file(dir + "/ensemble/model.json");
  REQUIRE(written["class_name"] == "Ensemble");
  REQUIRE(written["config"]["members"].size() == 3);
  REQUIRE(written["config"]["members"][2]["class_name"] == "Sequential");
  auto loaded = L::load_model(dir + "/ensemble");
  REQUIRE(max_abs_diff(loaded->forward(x), model->forward(x)) == 0);
  REQUIRE(loaded->to_json() == model->to_json());
  auto names = L::model_tensors(*model);
  REQUIRE(names.front().first.rfind("member_0.", 0) == 0);
  REQUIRE(model->summary().find("member_2 (Sequential)") != std::string::npos);

  // The Fashion-MNIST config: five MLPs of 784·256 + 256 + 256·10 + 10 parameters.
  std::string out;
  REQUIRE(lighter_test::run_cli("summary " + lighter_test::source_path("configs/fashion_mnist_ensemble.json"), &out) == 0);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("Total params: 1,017,650"));
  REQUIRE_THAT(out, LIGHTER_CONTAINS("member_4 (Sequential)"));

  // replicas repeat the member list.
  json twice = {{"class_name", "Ensemble"}, {"config", {{"members", {member}}, {"replicas", 3}}}};
  REQUIRE(dynamic_cast<E::EnsembleImpl&>(*L::models::model_from_json(twice)).members().size() == 3);

  // Errors name the place.
  json bad = spec;
  bad["config"]["members"][2]["path"] = dir + "/missing";
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(bad), "model.config.members[2].path:");
  bad = spec;
  bad["config"]["weights"] = "best";
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(bad),
                              "model.config.weights: expected a list of numbers, null or \"validation\"");
  bad = spec;
  bad["config"]["weights"] = {1, -2, 1};
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(bad), "model.config.weights[1]: expected a non-negative");
  bad = spec;
  bad["config"]["members"][1]["config"]["layers"][1]["config"]["units"] = -4;
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(bad),
                              "model.config.members[1].config.layers[1].config.units: expected a positive integer");
  bad = spec;
  bad["config"]["members"] = json::array();
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(bad), "model.config.members: expected a non-empty list");
  bad = spec;
  bad["config"]["meta_model"] = member;
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(bad), "model.config.meta_model: only a stacking ensemble");
  bad = spec;
  bad["config"]["replicas"] = 2;
  LIGHTER_REQUIRE_THROWS_WITH(L::models::model_from_json(bad), "model.config.members[2]: a member loaded from a folder");
}

TEST_CASE("Fold assignment splits the samples into k nearly equal, seeded parts", "[ensemble]") {
  auto folds = E::fold_assignment(103, 5, 7);
  auto counts = torch::bincount(folds);
  REQUIRE(counts.size(0) == 5);
  REQUIRE(counts.min().item<int64_t>() == 20);
  REQUIRE(counts.max().item<int64_t>() == 21);
  REQUIRE(folds.equal(E::fold_assignment(103, 5, 7)));
  REQUIRE(!folds.equal(E::fold_assignment(103, 5, 8)));
  LIGHTER_REQUIRE_THROWS_WITH(E::fold_assignment(3, 5, 1), "5 folds need at least 5 samples");
}

TEST_CASE("Stacking learns from out-of-fold predictions only", "[ensemble][training]") {
  // Each member memorises a label per sample id (an embedding row per id). A copy that trained on a sample knows
  // its random label; one that did not has never moved that row. So predictions made on the samples a model
  // trained on would give the label away, and out-of-fold predictions must not.
  const int64_t n = 60, classes = 4;
  torch::manual_seed(9);
  auto x = torch::arange(n, torch::kLong).unsqueeze(1);
  auto y = torch::randint(classes, {n}, torch::kLong);
  auto member = [&] {
    return std::make_shared<L::models::SequentialImpl>(std::vector<LayerRef>{
        Input({1}), Embedding(EmbeddingOptions(n, classes)), Flatten(), Activation("softmax")});
  };
  auto e = std::make_shared<E::EnsembleImpl>(std::vector<L::models::ModelPtr>{member(), member()},
                                             E::EnsembleOptions().combine("stacking").folds(3));
  E::EnsembleFitOptions f;
  f.compile = [](L::models::ModelImpl& m) { m.compile(L::optimizers::adam(0.5), "sparse_categorical_crossentropy"); };
  f.fit.epochs(30).batch_size(n).verbose(0);
  auto folds = E::fold_assignment(n, 3, 1);
  auto features = E::out_of_fold_predictions(*e, x, y, folds, f);
  REQUIRE(features.sizes() == torch::IntArrayRef({n, 2 * classes}));
  REQUIRE(!features.isnan().any().item<bool>());
  // The probability each member's out-of-fold copy gives the true label stays at chance (the initial rows). The
  // features are log-probabilities.
  auto true_prob = [&](const torch::Tensor& p) { return p.gather(1, y.unsqueeze(1)).squeeze(1); };
  for (int m = 0; m < 2; ++m)
    REQUIRE(true_prob(features.narrow(1, m * classes, classes).exp()).max().item<double>() < 0.4);

  // fit_ensemble: members memorise the whole training set, and the meta-model learns from the fold copies.
  auto result = E::fit_ensemble(*e, x, y, f);
  REQUIRE(result.meta_history.epoch.size() == 30);
  torch::NoGradGuard no_grad;
  for (const auto& m : e->members()) REQUIRE(true_prob(m->forward(x)).min().item<double>() > 0.9);
  REQUIRE(e->meta_model() != nullptr);
  REQUIRE(e->output_shape() == L::Shape({-1, classes}));
  REQUIRE(e->summary().find("meta_model (Sequential)") != std::string::npos);
}

TEST_CASE("Ensembles of digit classifiers: averaging beats its members' loss, voting and stacking work",
          "[ensemble][training][slow]") {
  const auto& d = digits();
  torch::manual_seed(21);
  auto make = [](const std::string& combine, bool bagging = false) {
    json spec = {{"class_name", "Ensemble"},
                 {"config", {{"combine", combine}, {"bagging", bagging}, {"folds", 3},
                             {"members", {digits_member_json(16), digits_member_json(32), digits_member_json(8)}}}}};
    return std::dynamic_pointer_cast<E::EnsembleImpl>(L::models::model_from_json(spec));
  };
  auto evaluate = [&](L::models::ModelImpl& m) {
    m.compile(L::optimizers::adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
    return m.evaluate(d.x_test, d.y_test);
  };

  auto avg = make("average", /*bagging=*/true);
  auto fit = digits_fit(8);
  fit.validation = std::make_pair(d.x_test, d.y_test);
  fit.fit.validation_data(std::make_pair(d.x_test, d.y_test));
  auto result = E::fit_ensemble(*avg, d.x, d.y, fit);
  REQUIRE(result.member_histories.size() == 3);
  REQUIRE(result.member_validation.size() == 3);
  auto scores = evaluate(*avg);
  double mean_member_loss = 0;
  for (const auto& s : result.member_validation) mean_member_loss += s.at("loss") / 3;
  // -log of the averaged probability is at most the average of -log p (Jensen), sample by sample.
  REQUIRE(scores.at("loss") <= mean_member_loss);
  REQUIRE(scores.at("accuracy") > 0.9);
  // The CSV of the members' histories: a header and 8 rows per member.
  auto csv = E::history_csv(result);
  REQUIRE(csv.rfind("model,epoch,accuracy,loss,val_accuracy,val_loss\n", 0) == 0);
  REQUIRE(std::count(csv.begin(), csv.end(), '\n') == 1 + 3 * 8);

  // Weights from the validation accuracy are proportional to it.
  auto weighted = make("soft_voting");
  json cfg = weighted->to_json();
  cfg["config"]["weights"] = "validation";
  weighted = std::dynamic_pointer_cast<E::EnsembleImpl>(L::models::model_from_json(cfg));
  auto wfit = digits_fit(4);
  LIGHTER_REQUIRE_THROWS_WITH(E::fit_ensemble(*weighted, d.x, d.y, wfit), "\"validation\" weights need validation data");
  wfit.validation = std::make_pair(d.x_test, d.y_test);
  auto wresult = E::fit_ensemble(*weighted, d.x, d.y, wfit);
  double total = 0;
  for (const auto& s : wresult.member_validation) total += s.at("accuracy");
  for (size_t i = 0; i < 3; ++i)
    REQUIRE(weighted->weights()[i] == Approx(wresult.member_validation[i].at("accuracy") / total));

  auto voting = make("hard_voting");
  E::fit_ensemble(*voting, d.x, d.y, digits_fit(8));
  REQUIRE(evaluate(*voting).at("accuracy") > 0.9);

  auto stacking = make("stacking");
  auto sfit = digits_fit(8);
  E::fit_ensemble(*stacking, d.x, d.y, sfit);
  REQUIRE(stacking->meta_model()->count_params().total() == 3 * 10 * 10 + 10);
  REQUIRE(evaluate(*stacking).at("accuracy") > 0.9);
}

TEST_CASE("lighter train trains an Ensemble config and reports members beside the ensemble", "[ensemble][cli][slow]") {
  namespace fs = std::filesystem;
  std::string dir = lighter_test::temp_dir("ensemble_cli");
  json c = L::read_json_file(lighter_test::source_path("configs/iris.json"));
  std::string data = lighter_test::source_path("examples/data/");
  c["data"]["train"]["path"] = data + "iris_train.csv";
  c["data"]["test"]["path"] = data + "iris_test.csv";
  c["fit"]["epochs"] = 30;
  c["fit"]["verbose"] = 0;
  c["device"] = "cpu";
  json member = c["model"];
  c["model"] = {{"class_name", "Ensemble"},
                {"config", {{"name", "iris_trio"}, {"weights", "validation"}, {"replicas", 3}, {"members", {member}}}}};
  std::string cfg = dir + "/ensemble.json";
  L::write_file_atomic(cfg, c.dump(2));
  std::string out;
  int rc = lighter_test::run_cli("train " + cfg + " --output-dir " + dir + "/run", &out);
  INFO(out);
  REQUIRE(rc == 0);
  json metrics = L::read_json_file(dir + "/run/metrics.json");
  REQUIRE(metrics["combine"] == "average");
  REQUIRE(metrics["members"].size() == 3);
  double weight_sum = 0;
  for (const auto& m : metrics["members"]) {
    REQUIRE(m["epochs"] == 30);
    REQUIRE(m["test"]["accuracy"].get<double>() > 0.6);
    REQUIRE(m.contains("validation"));
    weight_sum += m["weight"].get<double>();
  }
  REQUIRE(weight_sum == Approx(1.0));
  REQUIRE(metrics["test"]["accuracy"].get<double>() > 0.8);
  // history.csv: a header and 30 rows per member.
  std::string history = L::read_text_file(dir + "/run/history.csv");
  REQUIRE(std::count(history.begin(), history.end(), '\n') == 1 + 3 * 30);
  REQUIRE(history.rfind("model,epoch,", 0) == 0);

  // The saved ensemble evaluates to the same test scores.
  rc = lighter_test::run_cli("evaluate " + cfg + " --weights " + dir + "/run", &out);
  INFO(out);
  REQUIRE(rc == 0);
  json eval = json::parse(out.substr(out.find('{')));
  REQUIRE(eval["accuracy"].get<double>() == Approx(metrics["test"]["accuracy"].get<double>()));

  // Members given as trained folders (relative to the config file) are used as they are, here under stacking.
  fs::rename(dir + "/run", dir + "/trio");
  json stack = c;
  stack["model"]["config"] = {{"combine", "stacking"}, {"folds", 3}, {"members", {member, {{"path", "trio"}}}}};
  L::write_file_atomic(cfg, stack.dump(2));
  rc = lighter_test::run_cli("train " + cfg + " --output-dir " + dir + "/stack", &out);
  INFO(out);
  REQUIRE(rc == 0);
  json smetrics = L::read_json_file(dir + "/stack/metrics.json");
  REQUIRE(smetrics["members"][1]["pretrained"] == true);
  REQUIRE(smetrics["members"][1]["epochs"] == 0);
  REQUIRE(smetrics["members"][1]["test"]["accuracy"].get<double>() == Approx(metrics["test"]["accuracy"].get<double>()));
  REQUIRE(smetrics["test"]["accuracy"].get<double>() > 0.8);

  // Errors: one line naming the place, a non-zero exit.
  stack["model"]["config"]["members"][1]["path"] = "missing_run";
  L::write_file_atomic(cfg, stack.dump(2));
  rc = lighter_test::run_cli("train " + cfg + " --output-dir " + dir + "/bad", &out);
  REQUIRE(rc != 0);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("model.config.members[1].path:"));
  REQUIRE_THAT(out, LIGHTER_CONTAINS("missing_run"));
  REQUIRE(!fs::exists(dir + "/bad"));
  stack["model"]["config"]["members"][1]["path"] = "trio";
  L::write_file_atomic(cfg, stack.dump(2));
  rc = lighter_test::run_cli("train " + cfg + " --resume --output-dir " + dir + "/bad", &out);
  REQUIRE(rc == 2);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("--resume is not supported for ensembles"));
}

TEST_CASE("The ensemble example runs small on the digits: members, ensembles and soups side by side",
          "[ensemble][examples][slow]") {
  namespace X = ensemble_example;
  const auto& d = digits();
  const int64_t n_valid = 300, n_train = d.x.size(0) - n_valid;
  // The example scales raw inputs inside its model: back to the digits' 0-16 pixels.
  X::Split train{d.x.narrow(0, 0, n_train) * 16, d.y.narrow(0, 0, n_train)};
  X::Split valid{d.x.narrow(0, n_train, n_valid) * 16, d.y.narrow(0, n_train, n_valid)};
  X::Split test{d.x_test * 16, d.y_test};
  X::Options o;
  o.members = 3;
  o.epochs = 15;
  o.hidden = 32;
  o.folds = 2;
  o.pretrain_epochs = 15;
  o.variants = 3;
  o.finetune_epochs = 2;
  o.batch_size = 32;
  o.scale = 1.0 / 16;
  auto rows = X::run_ensembles(train, valid, test, 10, o);
  X::print(rows);
  REQUIRE(rows.size() == 3 + 4 + 1);
  double mean_member_loss = (rows[0].loss + rows[1].loss + rows[2].loss) / 3;
  REQUIRE(rows[3].name == "average (soft voting)");
  REQUIRE(rows[3].loss <= mean_member_loss);  // Jensen: -log of the mean probability <= mean of -log p
  REQUIRE(rows[3].params == 3 * rows[0].params);
  for (size_t i = 0; i < 7; ++i) {
    INFO(rows[i].name);
    REQUIRE(rows[i].accuracy > 0.85);
  }
  // The weight average of independently initialised members is one model's size (its score is what it is).
  REQUIRE(rows[7].name == "uniform soup of these members");
  REQUIRE(rows[7].params == rows[0].params);
  auto soups = X::run_soups(train, valid, test, 10, o);
  X::print(soups);
  REQUIRE(soups.size() == 1 + 3 + 4);
  REQUIRE(soups[5].name == "uniform soup");
  REQUIRE(soups[5].params == soups[0].params);
  REQUIRE(soups[6].note.rfind("variants ", 0) == 0);
  for (const auto& r : soups) {
    INFO(r.name);
    REQUIRE(r.accuracy > 0.85);
  }
}

TEST_CASE("lighter merge --method greedy_soup scores the soups on held-out data", "[ensemble][merge][cli]") {
  const std::string dir = lighter_test::temp_dir("greedy_soup_cli");
  json c = L::read_json_file(lighter_test::source_path("configs/iris.json"));
  const std::string data = lighter_test::source_path("examples/data/");
  c["data"]["train"]["path"] = data + "iris_train.csv";
  c["data"]["test"]["path"] = data + "iris_test.csv";
  const std::string cfg = dir + "/iris.json";
  L::write_file_atomic(cfg, c.dump(2));
  auto options = L::data::CsvOptions().target("species").kind(L::data::TargetKind::Classification);
  auto train = L::data::read_csv(data + "iris_train.csv", options);
  auto held_out = L::data::read_csv(data + "iris_test.csv", options);

  // Variants fine-tuned from one trained model with different learning rates, and one spoiled by noise.
  torch::manual_seed(3);
  L::Sequential base({Input({4}), Dense(DenseOptions(16).activation("relu")), Dense(DenseOptions(3).activation("softmax"))});
  base->compile(L::optimizers::adam(0.01), "sparse_categorical_crossentropy", {"accuracy"});
  base->fit(train.x, train.y, L::FitOptions().epochs(15).batch_size(16).verbose(0));
  std::vector<E::Weights> weights;
  std::string folders;
  for (int k = 0; k < 4; ++k) {
    auto m = L::models::model_from_json(base->to_json());
    E::assign_weights(*m, E::weights_of(*base));
    if (k < 3) {
      m->compile(L::optimizers::adam(std::vector<double>{0.01, 0.003, 0.03}[k]), "sparse_categorical_crossentropy");
      m->fit(train.x, train.y, L::FitOptions().epochs(10).batch_size(16).verbose(0));
    } else {
      torch::NoGradGuard no_grad;
      for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * 3);
    }
    weights.push_back(E::weights_of(*m));
    L::save_model(*m, dir + "/v" + std::to_string(k));
    folders += " " + dir + "/v" + std::to_string(k);
  }
  std::string out;
  int rc = lighter_test::run_cli("merge --method greedy_soup --config " + cfg + " --data " + data + "iris_test.csv" +
                                     " --output " + dir + "/soup" + folders,
                                 &out);
  INFO(out);
  REQUIRE(rc == 0);
  // The same greedy soup computed here, with accuracy on the same held-out rows.
  auto probe = L::models::model_from_json(base->to_json());
  probe->compile(L::optimizers::adam(), "sparse_categorical_crossentropy", {"accuracy"});
  auto want = E::greedy_soup(weights, [&](const E::Weights& w) {
    E::assign_weights(*probe, w);
    return probe->evaluate(held_out.x, held_out.y).at("accuracy");
  });
  json record = L::load_model_extra(dir + "/soup")["merge"];
  REQUIRE(record["method"] == "greedy_soup");
  REQUIRE(record["ingredients"].size() == want.ingredients.size());
  for (size_t i = 0; i < want.ingredients.size(); ++i)
    REQUIRE(record["ingredients"][i] == dir + "/v" + std::to_string(want.ingredients[i]));
  REQUIRE(record["score"].get<double>() == Approx(want.score));
  // Never below the best single model: it starts from it and only adds what does not lower the score.
  for (double s : want.individual_scores) REQUIRE(want.score >= s);
  auto got = E::weights_of(*L::load_model(dir + "/soup"));
  for (size_t k = 0; k < got.size(); ++k) REQUIRE(max_abs_diff(got[k].second, want.weights[k].second) < 1e-6);

  REQUIRE(lighter_test::run_cli("merge --method greedy_soup --output " + dir + "/bad" + folders, &out) == 2);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("--method greedy_soup needs --config CONFIG"));
  REQUIRE(lighter_test::run_cli("merge --method greedy_soup --config " + cfg + " --output " + dir + "/bad" + folders, &out) == 2);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("needs held-out data"));
  REQUIRE(lighter_test::run_cli("merge --method greedy_soup --config " + cfg + " --data " + data + "iris_test.csv" +
                                    " --metric auc --output " + dir + "/bad" + folders,
                                &out) == 2);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("--metric auc: the config's compile section logs accuracy, loss"));
}
