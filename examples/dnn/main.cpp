// DNN examples through Lighter's C++ API: iris (classification), sklearn's 8x8 digits (10 classes) and diabetes
// (regression), each trained on the committed CSVs and scored on their held-out test files.
//
//   build/example_dnn [iris|digits|diabetes|all] [DATA_DIR]      (DATA_DIR defaults to examples/data)
#include <cstdio>
#include <string>

#include <lighter/lighter.h>

namespace L = lighter;
using L::layers::Normalization;

namespace {

struct Split {
  L::data::Table train, test;
};

Split load(const std::string& dir, const std::string& name, const std::string& target) {
  auto options = L::data::CsvOptions().target(target);
  Split s{L::data::read_csv(dir + "/" + name + "_train.csv", options), {}};
  s.test = L::data::read_csv(dir + "/" + name + "_test.csv", options.classes(s.train.classes));
  // Keras' validation_split takes the last rows; shuffle once so that it sees every class.
  auto order = torch::randperm(s.train.size(), torch::kLong);
  s.train.x = s.train.x.index_select(0, order);
  s.train.y = s.train.y.index_select(0, order);
  return s;
}

void report(const std::string& name, const std::map<std::string, double>& scores) {
  std::printf("%-9s test:", name.c_str());
  for (const auto& kv : scores) std::printf("  %s %.4f", kv.first.c_str(), kv.second);
  std::printf("\n");
}

void iris(const std::string& dir) {
  L::seed_everything(42);  // the order of `lighter train configs/iris.json`: model, then data
  L::Sequential model({L::Input({4}), Normalization(), L::Dense(L::DenseOptions(16).activation("relu").kernel_regularizer(L::regularizers::l2(0.01))),
                       L::Dense(L::DenseOptions(3).activation("softmax"))},
                      "iris");
  std::fputs(model->summary().c_str(), stdout);
  auto data = load(dir, "iris", "species");
  model->compile(L::optimizers::adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  model->fit(data.train.x, data.train.y, L::FitOptions().epochs(100).batch_size(16).validation_split(0.2).verbose(2));
  report("iris", model->evaluate(data.test.x, data.test.y));
}

void digits(const std::string& dir) {
  L::seed_everything(42);  // the order of `lighter train configs/digits.json`: model, then data
  L::Sequential model({L::Input({64}), Normalization(), L::Dense(L::DenseOptions(128).activation("relu")),
                       L::Dropout(0.2), L::Dense(L::DenseOptions(64).activation("relu")),
                       L::Dense(L::DenseOptions(10).activation("softmax"))},
                      "digits");
  auto data = load(dir, "digits", "digit");
  model->compile(L::optimizers::adam(1e-3), "sparse_categorical_crossentropy", {"accuracy"});
  model->fit(data.train.x, data.train.y, L::FitOptions().epochs(40).batch_size(32).validation_split(0.15).verbose(2));
  report("digits", model->evaluate(data.test.x, data.test.y));
}

void diabetes(const std::string& dir) {
  L::seed_everything(42);  // the order of `lighter train configs/diabetes.json`: model, then data
  L::Sequential model({L::Input({10}), Normalization(), L::Dense(L::DenseOptions(32).activation("relu")),
                       L::Dense(L::DenseOptions(16).activation("relu")), L::Dense(1)},
                      "diabetes");
  auto data = load(dir, "diabetes", "target");
  model->compile(L::optimizers::adam(1e-2), "mean_squared_error", {"mae", "r2_score"});
  model->fit(data.train.x, data.train.y, L::FitOptions().epochs(80).batch_size(32).validation_split(0.2).verbose(2));
  report("diabetes", model->evaluate(data.test.x, data.test.y));
  // The baseline every regression must beat: predict the training mean.
  double mean = data.train.y.mean().item<double>();
  double mae = (data.test.y - mean).abs().mean().item<double>();
  std::printf("diabetes  baseline (predict the training mean): mae %.4f  r2_score <= 0\n", mae);
}

}  // namespace

int main(int argc, char** argv) {
  std::string which = argc > 1 ? argv[1] : "all";
  std::string dir = argc > 2 ? argv[2] : "examples/data";
  try {
    if (which == "iris" || which == "all") iris(dir);
    if (which == "digits" || which == "all") digits(dir);
    if (which == "diabetes" || which == "all") diabetes(dir);
  } catch (const L::Error& e) {
    std::fprintf(stderr, "example_dnn: %s\n", e.what());
    return 1;
  }
  return 0;
}
