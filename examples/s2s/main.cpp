// Sequence to sequence through Lighter's Functional API: spelling -> pronunciation on the CMU pronouncing dictionary
// (Debian's pocketsphinx-en-us, fetched by scripts/s2s_datasets.sh). An LSTM (or GRU) encoder reads the letters, a
// decoder started from its final states is trained with teacher forcing by fit(), and held-out words are then
// decoded greedily one phoneme at a time with the trained layers. Scores: word accuracy and phoneme error rate,
// against a nearest-spelling baseline. See README.md beside this file.
//
//   build/example_s2s [DATA_FILE_OR_DIR] [--epochs N] [--words N] [--test-words N] [--units N] [--embedding N]
//                     [--cell lstm|gru] [--batch-size N] [--learning-rate X] [--seed N] [--samples N]
//                     [--max-letters N] [--save DIR]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "examples/s2s/s2s.h"

namespace L = lighter;

namespace {

struct Args {
  std::string data = "data/cmudict.dict";
  int64_t epochs = 10, words = 30000, test_words = 0, units = 128, embedding = 64, batch_size = 64, seed = 42,
          samples = 12, max_letters = 15;
  double learning_rate = 2e-3;
  std::string cell = "lstm", save;
};

void usage(FILE* to) {
  std::fputs(
      "usage: example_s2s [DATA_FILE_OR_DIR] [options]     (run from the repository root)\n"
      "  DATA_FILE_OR_DIR   CMUdict file, or a folder holding cmudict.dict (default data/cmudict.dict,\n"
      "                     written by scripts/s2s_datasets.sh)\n"
      "  --epochs N         training epochs (10)\n"
      "  --words N          training words, a deterministic subset of the training split; 0 = all (30000)\n"
      "  --test-words N     held-out test words scored; 0 = the whole test split (0)\n"
      "  --units N          LSTM/GRU units of the encoder and the decoder (128)\n"
      "  --embedding N      letter and phoneme embedding size (64)\n"
      "  --cell lstm|gru    recurrent cell (lstm)\n"
      "  --batch-size N     (64)   --learning-rate X  Adam's (0.002)   --seed N  (42)\n"
      "  --samples N        sample predictions printed (12)\n"
      "  --max-letters N    longest word kept (15)\n"
      "  --save DIR         also save the trained model (model.json + weights) into DIR\n",
      to);
}

Args parse(int argc, char** argv) {
  Args a;
  bool have_data = false;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw L::ConfigError(k, "needs a value");
      return argv[++i];
    };
    auto integer = [&]() -> int64_t {
      std::string v = value();
      char* end = nullptr;
      long long x = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end || x < 0) throw L::ConfigError(k, "expected a non-negative integer, got '" + v + "'");
      return x;
    };
    if (k == "-h" || k == "--help") {
      usage(stdout);
      std::exit(0);
    } else if (k == "--epochs") a.epochs = integer();
    else if (k == "--words") a.words = integer();
    else if (k == "--test-words") a.test_words = integer();
    else if (k == "--units") a.units = integer();
    else if (k == "--embedding") a.embedding = integer();
    else if (k == "--batch-size") a.batch_size = integer();
    else if (k == "--seed") a.seed = integer();
    else if (k == "--samples") a.samples = integer();
    else if (k == "--max-letters") a.max_letters = integer();
    else if (k == "--cell") a.cell = value();
    else if (k == "--save") a.save = value();
    else if (k == "--learning-rate") {
      std::string v = value();
      char* end = nullptr;
      a.learning_rate = std::strtod(v.c_str(), &end);
      if (v.empty() || *end || !(a.learning_rate > 0)) throw L::ConfigError(k, "expected a positive number, got '" + v + "'");
    } else if (!k.empty() && k[0] == '-') {
      throw L::ConfigError(k, "unknown option (see --help)");
    } else if (!have_data) {
      a.data = k;
      have_data = true;
    } else {
      throw L::ConfigError(k, "unexpected argument (see --help)");
    }
  }
  if (a.epochs < 1 || a.units < 1 || a.embedding < 1 || a.batch_size < 1 || a.max_letters < 1)
    throw L::ConfigError("", "--epochs, --units, --embedding, --batch-size and --max-letters must be positive");
  if (std::filesystem::is_directory(a.data)) a.data = (std::filesystem::path(a.data) / "cmudict.dict").string();
  // The installed package's copy, when the fetch script has not run but pocketsphinx-en-us is installed.
  const char* installed = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict";
  if (!have_data && !std::filesystem::exists(a.data) && std::filesystem::exists(installed)) a.data = installed;
  return a;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void run(const Args& a) {
  L::seed_everything(static_cast<uint64_t>(a.seed));
  auto pairs = s2s::load_cmudict(a.data, static_cast<size_t>(a.max_letters));
  auto all = s2s::split_pairs(pairs);
  // Validation is only watched during training; a few thousand words are enough for that.
  auto split = s2s::split_pairs(pairs, static_cast<size_t>(a.words), 3000, static_cast<size_t>(a.test_words),
                                static_cast<uint64_t>(a.seed));
  std::printf("CMUdict %s: %zu words of at most %lld letters (a-z, ')\n", a.data.c_str(), pairs.size(),
              static_cast<long long>(a.max_letters));
  std::printf("split by a hash of the word: %zu train / %zu validation / %zu test; using %zu / %zu / %zu\n",
              all.train.size(), all.validation.size(), all.test.size(), split.train.size(), split.validation.size(),
              split.test.size());

  auto train = s2s::encode(split.train), validation = s2s::encode(split.validation);
  auto m = s2s::build_model(s2s::ModelOptions().cell(a.cell).units(a.units).embedding_dim(a.embedding));
  std::fputs(m.model->summary().c_str(), stdout);
  std::fflush(stdout);  // before fit's log lines, which go to stderr
  m.model->compile(L::optimizers::adam(a.learning_rate), "sparse_categorical_crossentropy", {"accuracy"});
  auto start = std::chrono::steady_clock::now();
  // Teacher forcing: the decoder reads the true previous phoneme (the start token first). Loss and accuracy
  // average over the valid target steps only (the decoder input's mask reaches the output).
  m.model->fit({train.source, train.decoder_input}, {train.decoder_target},
               L::FitOptions()
                   .epochs(a.epochs)
                   .batch_size(a.batch_size)
                   .validation_data(L::training::ValidationData({validation.source, validation.decoder_input},
                                                               {validation.decoder_target}))
                   .verbose(2));
  double train_seconds = seconds_since(start);
  std::printf("trained on %zu words, %lld epochs, in %.1f s (%.1f s per epoch)\n", split.train.size(),
              static_cast<long long>(a.epochs), train_seconds, train_seconds / a.epochs);

  auto test_words = s2s::words_of(split.test);
  start = std::chrono::steady_clock::now();
  auto predicted = s2s::greedy_decode(m, test_words);
  double decode_seconds = seconds_since(start);
  start = std::chrono::steady_clock::now();
  s2s::NearestWordBaseline baseline(split.train);
  auto nearest = baseline.predict(test_words);
  double baseline_seconds = seconds_since(start);

  auto model_scores = s2s::score(split.test, predicted), baseline_scores = s2s::score(split.test, nearest);
  std::printf("\nheld-out test words: %zu (never seen in training)\n", split.test.size());
  std::printf("%-34s %14s %22s %10s\n", "", "word accuracy", "phoneme error rate", "time");
  std::printf("%-34s %14.3f %22.3f %9.1fs\n", ("greedy decoding, " + a.cell).c_str(), model_scores.word_accuracy,
              model_scores.phoneme_error_rate, decode_seconds);
  std::printf("%-34s %14.3f %22.3f %9.1fs\n", "baseline: nearest training spelling", baseline_scores.word_accuracy,
              baseline_scores.phoneme_error_rate, baseline_seconds);

  std::printf("\nsamples (word: reference | model | baseline)\n");
  size_t n = std::min(split.test.size(), static_cast<size_t>(a.samples));
  for (size_t k = 0; k < n; ++k) {
    size_t i = k * split.test.size() / n;  // spread over the alphabet
    const auto& p = split.test[i];
    std::printf("  %-15s %s | %s%s | %s\n", p.word.c_str(), s2s::join(p.phonemes).c_str(),
                s2s::join(predicted[i]).c_str(), predicted[i] == p.phonemes ? " (=)" : "",
                s2s::join(nearest[i]).c_str());
  }
  if (!a.save.empty()) {
    L::save_model(*m.model, a.save);
    std::printf("\nmodel saved in %s\n", a.save.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    run(parse(argc, argv));
  } catch (const L::ConfigError& e) {
    std::fprintf(stderr, "example_s2s: %s\n", e.what());
    return 2;
  } catch (const L::Error& e) {
    std::fprintf(stderr, "example_s2s: %s\n", e.what());
    return 1;
  }
  return 0;
}
