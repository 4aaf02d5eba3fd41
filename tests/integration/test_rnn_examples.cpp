#include "lighter_test.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

// The RNN examples on their real data (scripts/rnn_datasets.sh, run by scripts/setup.sh, writes it into data/ or
// $LIGHTER_DATA_DIR): language identification from configs/lang_id.json, and next-hour temperature forecasting.

namespace L = lighter;
using L::json;
namespace fs = std::filesystem;

namespace {

// The folder of the RNN data; fails the test, naming the script that makes it, when a file is missing.
std::string rnn_data(const std::vector<std::string>& files) {
  const char* env = std::getenv("LIGHTER_DATA_DIR");
  std::string dir = env && *env ? env : lighter_test::source_path("data");
  for (const auto& f : files) {
    INFO("missing " << dir << "/" << f << ": run scripts/rnn_datasets.sh (scripts/setup.sh does) to fetch it from "
                                          "Debian's fortunes-* and python3-vega-datasets packages");
    REQUIRE(fs::exists(dir + "/" + f));
  }
  return dir;
}

// Every `window` consecutive values of `part` with the value after it: inputs (N, window, 1) as the change from
// the window's last value, in units of `scale`; targets (N, 1) the next change in the same units.
std::pair<torch::Tensor, torch::Tensor> windows(const torch::Tensor& part, int64_t window, double scale) {
  torch::Tensor inputs = part.narrow(0, 0, part.size(0) - 1).unfold(0, window, 1);
  torch::Tensor last = inputs.select(1, window - 1).unsqueeze(1);
  torch::Tensor next = part.narrow(0, window, part.size(0) - window).unsqueeze(1);
  return {((inputs - last) / scale).unsqueeze(2).to(torch::kFloat32).contiguous(),
          ((next - last) / scale).to(torch::kFloat32)};
}

}  // namespace

// The shipped config, trained smaller for CI: a quarter of the training texts, three epochs of batches of 32.
TEST_CASE("configs/lang_id.json trains a character-level language identifier", "[rnn_examples][cli][slow]") {
  std::string data = rnn_data({"lang_train.tsv", "lang_test.tsv"});
  std::string dir = lighter_test::temp_dir("lang_id");
  // The first 3,500 training texts (~500 per language: the file is in hash order, languages mixed).
  {
    std::ifstream in(data + "/lang_train.tsv");
    std::ofstream out(dir + "/train.tsv");
    std::string line;
    for (int i = 0; i < 3500 && std::getline(in, line); ++i) out << line << '\n';
  }
  json c = L::read_json_file(lighter_test::source_path("configs/lang_id.json"));
  c["data"]["train"]["path"] = dir + "/train.tsv";
  c["data"]["test"]["path"] = data + "/lang_test.tsv";
  c["device"] = "cpu";
  c["fit"]["verbose"] = 0;
  std::ofstream(dir + "/lang_id.json") << c.dump(2);
  std::string out;
  // One thread: ctest runs tests side by side, and a 2-thread OpenMP run crawls when its cores are busy.
  std::string args = "--threads 1 --set fit.epochs=3 --set fit.batch_size=32 --output-dir " + dir + "/run";
  int rc = lighter_test::run_cli("train " + dir + "/lang_id.json " + args, &out);
  INFO(out);
  REQUIRE(rc == 0);
  json metrics = L::read_json_file(dir + "/run/metrics.json");
  INFO(metrics.dump(2));
  // 7 balanced classes: chance is 0.14. This reached 0.866; the full config 0.978.
  REQUIRE(metrics["test"]["accuracy"].get<double>() > 0.75);
}

TEST_CASE("an LSTM forecasts Seattle's hourly temperatures better than the last value", "[rnn_examples][slow]") {
  std::string data = rnn_data({"seattle-temps.csv"});
  std::vector<double> temps;
  {
    std::ifstream in(data + "/seattle-temps.csv");
    std::string line;
    std::getline(in, line);
    REQUIRE(line.rfind("date,temp", 0) == 0);
    while (std::getline(in, line))
      if (!line.empty()) temps.push_back(std::stod(line.substr(line.find(',') + 1)));
  }
  REQUIRE(temps.size() == 8759);  // every hour of 2010 but one
  torch::Tensor series = torch::tensor(temps, torch::kDouble);
  // Chronological split, statistics from the training part only; windows stay inside their part.
  const int64_t n = series.size(0), n_train = n * 70 / 100, n_val = n * 15 / 100, window = 24;
  torch::Tensor train_part = series.narrow(0, 0, n_train);
  double scale = (train_part.narrow(0, 1, n_train - 1) - train_part.narrow(0, 0, n_train - 1)).std().item<double>();
  auto train = windows(train_part, window, scale);
  auto val = windows(series.narrow(0, n_train, n_val), window, scale);
  auto test = windows(series.narrow(0, n_train + n_val, n - n_train - n_val), window, scale);

  L::seed_everything(7);
  L::Sequential model({L::Input({window, 1}), L::LSTM(L::RecurrentOptions(16)), L::Dense(1)});
  model->compile(L::optimizers::adam(1e-2), "mean_squared_error", {"mae"});
  model->fit(train.first, train.second,
             L::FitOptions().epochs(4).batch_size(64).validation_data(val).verbose(0));
  // In degrees: the model's predicted change against the naive forecast's zero change.
  double model_mae = (model->predict(test.first, 512) - test.second).abs().mean().item<double>() * scale;
  double naive_mae = test.second.abs().mean().item<double>() * scale;
  INFO("model MAE " << model_mae << " F, naive MAE " << naive_mae << " F on " << test.first.size(0) << " windows");
  REQUIRE(test.first.size(0) == n - n_train - n_val - window);
  REQUIRE(model_mae < 0.8 * naive_mae);
}
