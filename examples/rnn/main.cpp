// RNN examples through Lighter's C++ API, on real data taken from Debian packages by scripts/rnn_datasets.sh:
//
//   langid    language identification (en, de, es, it, pl, cs, ru) of short fortune-cookie texts, read character
//             by character: TextVectorizer(split "character") -> Embedding(mask_zero) -> Bidirectional(GRU) ->
//             softmax; the mask makes the GRUs skip the padding, so a text's class does not depend on its padding.
//   forecast  next-hour temperature in Seattle (hourly series of 2010) from the past 24 hours with an LSTM, split
//             chronologically (train / validation / test) and scored against the naive forecast "same as the last
//             hour" on the same held-out windows.
//
//   build/example_rnn [langid|forecast|all] [DATA_DIR]      (DATA_DIR defaults to data, or $LIGHTER_DATA_DIR)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <lighter/lighter.h>

namespace L = lighter;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void report(const std::string& name, const std::map<std::string, double>& scores) {
  std::printf("%-9s test:", name.c_str());
  for (const auto& kv : scores) std::printf("  %s %.4f", kv.first.c_str(), kv.second);
  std::printf("\n");
}

// ---- language identification ------------------------------------------------------------------------------------

void langid(const std::string& dir) {
  L::seed_everything(42);
  auto train = L::data::read_text_lines(dir + "/lang_train.tsv");
  auto test = L::data::read_text_lines(dir + "/lang_test.tsv", "\t", train.classes);
  // Characters as tokens: the ~250 most frequent (of the training texts only), lowercased, punctuation kept.
  L::data::TextVectorizer vectorizer(
      L::data::TextVectorizerOptions().max_tokens(256).standardize("lower").split("character"));
  vectorizer.adapt(train.texts);
  // No output_sequence_length: texts are padded to the longest one; the mask tells the GRUs where each one ends.
  torch::Tensor x_train = vectorizer.encode(train.texts), x_test = vectorizer.encode(test.texts);
  std::printf("langid: %lld training and %lld test texts, %zu languages, %lld characters in the vocabulary\n",
              static_cast<long long>(train.size()), static_cast<long long>(test.size()), train.classes.size(),
              static_cast<long long>(vectorizer.vocabulary_size()));

  int64_t classes = static_cast<int64_t>(train.classes.size());
  L::Sequential model(
      {L::layers::InputLayer(L::layers::InputLayerOptions({-1}).dtype("int64")),
       L::Embedding(L::EmbeddingOptions(vectorizer.vocabulary_size(), 32).mask_zero(true)),
       L::Bidirectional(L::GRU(L::RecurrentOptions(48))),
       L::Dense(L::DenseOptions(classes).activation("softmax"))},
      "lang_id");
  std::fputs(model->summary().c_str(), stdout);
  model->compile(L::optimizers::adam(3e-3), "sparse_categorical_crossentropy", {"accuracy"});
  auto start = std::chrono::steady_clock::now();
  model->fit(x_train, train.y, L::FitOptions().epochs(4).batch_size(64).validation_split(0.1).verbose(2));
  std::printf("langid: trained in %.1f s\n", seconds_since(start));
  report("langid", model->evaluate(x_test, test.y));

  // Accuracy per language.
  torch::Tensor predicted = model->predict(x_test, 256).argmax(1);
  for (int64_t c = 0; c < classes; ++c) {
    torch::Tensor mine = test.y.eq(c);
    double accuracy = predicted.index({mine}).eq(c).to(torch::kDouble).mean().item<double>();
    std::printf("langid    %s: accuracy %.3f on %lld texts\n", train.classes[static_cast<size_t>(c)].c_str(),
                accuracy, static_cast<long long>(mine.sum().item<int64_t>()));
  }
  std::vector<std::string> samples = {"The quick brown fox jumps over the lazy dog.",
                                      "Wer zuletzt lacht, hat es nicht eher begriffen.",
                                      "No hay mal que por bien no venga.", "Chi va piano va sano e va lontano.",
                                      "Nie mój cyrk, nie moje małpy.", "Kdo jinému jámu kopá, sám do ní padá.",
                                      "Тише едешь — дальше будешь."};
  torch::Tensor guess = model->predict(vectorizer.encode(samples)).argmax(1);
  for (size_t i = 0; i < samples.size(); ++i) {
    auto language = guess[static_cast<int64_t>(i)].item<int64_t>();
    std::printf("langid    %s  <- %s\n", train.classes[static_cast<size_t>(language)].c_str(), samples[i].c_str());
  }
}

// ---- temperature forecasting ------------------------------------------------------------------------------------

// Reads seattle-temps.csv ("date,temp", one row per hour) into a float64 tensor of temperatures.
torch::Tensor read_temperatures(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw L::DataError(path, "cannot open (run scripts/rnn_datasets.sh to fetch it)");
  std::string line;
  std::getline(in, line);
  if (line.rfind("date,temp", 0) != 0) throw L::DataError(path, "expected the header 'date,temp'");
  std::vector<double> temps;
  while (std::getline(in, line)) {
    if (line.empty() || line == "\r") continue;
    auto comma = line.find(',');
    if (comma == std::string::npos) throw L::DataError(path, "line " + std::to_string(temps.size() + 2) + ": no comma");
    temps.push_back(std::stod(line.substr(comma + 1)));
  }
  return torch::tensor(temps, torch::kDouble);
}

struct Windows {
  torch::Tensor x;     // float32 (N, window, 2): (temp - train mean) / train std, (temp - last temp) / train std
  torch::Tensor y;     // float32 (N, 1): (next temp - last temp) / train std of the hourly changes
  torch::Tensor last;  // float64 (N): the last temperature of each window (the naive forecast)
  torch::Tensor next;  // float64 (N): the temperature to forecast
};

// Every window of `window` consecutive hours of `part` with the hour after it as the target.
Windows make_windows(const torch::Tensor& part, int64_t window, double mean, double std, double delta_std) {
  Windows w;
  torch::Tensor inputs = part.narrow(0, 0, part.size(0) - 1).unfold(0, window, 1);  // (N, window)
  w.next = part.narrow(0, window, part.size(0) - window);
  w.last = inputs.select(1, window - 1);
  torch::Tensor level = (inputs - mean) / std, relative = (inputs - w.last.unsqueeze(1)) / std;
  w.x = torch::stack({level, relative}, 2).to(torch::kFloat32).contiguous();
  w.y = ((w.next - w.last) / delta_std).to(torch::kFloat32).unsqueeze(1);
  return w;
}

void forecast(const std::string& dir) {
  L::seed_everything(42);
  torch::Tensor temps = read_temperatures(dir + "/seattle-temps.csv");
  const int64_t n = temps.size(0), window = 24;
  // Chronological split: January to early September trains, then validation, then the last 15% (from mid-November)
  // is the test. Windows never cross a boundary, and every statistic comes from the training part alone.
  int64_t n_train = n * 70 / 100, n_val = n * 15 / 100, n_test = n - n_train - n_val;
  torch::Tensor train_part = temps.narrow(0, 0, n_train);
  double mean = train_part.mean().item<double>(), std = train_part.std().item<double>();
  double delta_std = (train_part.narrow(0, 1, n_train - 1) - train_part.narrow(0, 0, n_train - 1)).std().item<double>();
  Windows train = make_windows(train_part, window, mean, std, delta_std);
  Windows val = make_windows(temps.narrow(0, n_train, n_val), window, mean, std, delta_std);
  Windows test = make_windows(temps.narrow(0, n_train + n_val, n_test), window, mean, std, delta_std);
  std::printf("forecast: %lld hours; %lld / %lld / %lld windows of %lld hours (train / validation / test)\n",
              static_cast<long long>(n), static_cast<long long>(train.x.size(0)), static_cast<long long>(val.x.size(0)),
              static_cast<long long>(test.x.size(0)), static_cast<long long>(window));

  // The LSTM predicts the change from the last hour, so the naive forecast is its starting point.
  L::Sequential model({L::Input({window, 2}), L::LSTM(L::RecurrentOptions(32)), L::Dense(1)}, "forecast");
  std::fputs(model->summary().c_str(), stdout);
  model->compile(L::optimizers::adam(3e-3), "mean_squared_error", {"mae"});
  auto stop = std::make_shared<L::callbacks::EarlyStopping>(
      L::callbacks::EarlyStoppingOptions().monitor("val_loss").patience(5).restore_best_weights(true));
  auto start = std::chrono::steady_clock::now();
  auto fit = L::FitOptions().epochs(30).batch_size(64).validation_data(std::make_pair(val.x, val.y));
  model->fit(train.x, train.y, fit.callbacks({stop}).verbose(2));
  std::printf("forecast: trained in %.1f s\n", seconds_since(start));

  torch::Tensor predicted = test.last + model->predict(test.x, 256).squeeze(1).to(torch::kDouble) * delta_std;
  double model_mae = (predicted - test.next).abs().mean().item<double>();
  double naive_mae = (test.last - test.next).abs().mean().item<double>();
  std::printf("forecast  test (%lld windows, next hour): LSTM MAE %.3f °F, naive (last value) MAE %.3f °F\n",
              static_cast<long long>(test.x.size(0)), model_mae, naive_mae);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // keep our lines in order with the training log (stderr) in a file
  std::string which = argc > 1 ? argv[1] : "all";
  const char* env = std::getenv("LIGHTER_DATA_DIR");
  std::string dir = argc > 2 ? argv[2] : (env && *env ? env : "data");
  if (which != "langid" && which != "forecast" && which != "all") {
    std::fprintf(stderr, "usage: example_rnn [langid|forecast|all] [DATA_DIR]\n");
    return 2;
  }
  try {
    if (which == "langid" || which == "all") langid(dir);
    if (which == "forecast" || which == "all") forecast(dir);
  } catch (const L::Error& e) {
    std::fprintf(stderr, "example_rnn: %s\n", e.what());
    return 1;
  }
  return 0;
}
