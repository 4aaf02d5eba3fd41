#pragma once
// Spam or ham with a transformer encoder: the C++ equivalent of configs/spam_transformer.json (same data,
// vectorization, layers, loss, metrics and training), so the example shows both forms of one model.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <lighter/lighter.h>

#include "examples/tnn/args.h"

namespace tnn::spam {

namespace L = lighter;

/// The config's values (configs/spam_transformer.json) as defaults.
struct SpamOptions {
  TORCH_ARG(std::string, train_path) = "data/spam_train.tsv";
  TORCH_ARG(std::string, test_path) = "data/spam_test.tsv";
  /// TextVectorization: vocabulary size (padding and [UNK] included) and the fixed length (longer mails are cut,
  /// shorter ones padded with 0).
  TORCH_ARG(int64_t, max_tokens) = 20000;
  TORCH_ARG(int64_t, sequence_length) = 256;
  TORCH_ARG(int64_t, embedding_dim) = 64;
  TORCH_ARG(int64_t, intermediate_dim) = 128;
  TORCH_ARG(int64_t, num_heads) = 2;
  TORCH_ARG(double, dropout) = 0.1;
  TORCH_ARG(int64_t, epochs) = 5;
  TORCH_ARG(int64_t, batch_size) = 32;
  TORCH_ARG(double, learning_rate) = 1e-3;
  TORCH_ARG(double, validation_split) = 0.1;
};

/// TokenAndPositionEmbedding(max_tokens, sequence_length, dim, mask_zero) -> TransformerEncoder(intermediate,
/// heads, dropout) -> GlobalAveragePooling1D over the real tokens (the mask) -> Dropout(0.2) -> Dense(1, sigmoid).
inline L::Sequential build_model(const SpamOptions& o) {
  namespace LL = L::layers;
  return L::Sequential(
      {LL::TokenAndPositionEmbedding(
           LL::TokenAndPositionEmbeddingOptions(o.max_tokens(), o.sequence_length(), o.embedding_dim()).mask_zero(true)),
       LL::TransformerEncoder(LL::TransformerOptions(o.intermediate_dim(), o.num_heads()).dropout(o.dropout())),
       LL::GlobalAveragePooling1D(), L::Dropout(L::layers::DropoutOptions(0.2)),
       L::Dense(L::DenseOptions(1).activation("sigmoid"))});
}

/// The metrics of the config: accuracy, precision, recall and Keras' F1Score at threshold 0.5 (its default
/// threshold, None, would count every non-zero probability of a single sigmoid output as spam).
inline std::vector<nlohmann::json> metrics() {
  return {"accuracy", "precision", "recall",
          {{"class_name", "F1Score"}, {"config", {{"name", "f1_score"}, {"threshold", 0.5}}}}};
}

struct Data {
  torch::Tensor x_train, y_train, x_test, y_test;
  L::data::TextVectorizer vectorizer;
  std::vector<std::string> test_texts;
};

/// Reads the `label<TAB>text` files (1 = spam), adapts the vectorizer on the training texts and encodes both.
inline Data load(const SpamOptions& o) {
  auto train = L::data::read_text_lines(o.train_path(), "\t", {"0", "1"}, L::data::TargetKind::Classification);
  auto test = L::data::read_text_lines(o.test_path(), "\t", {"0", "1"}, L::data::TargetKind::Classification);
  Data d{torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(),
         L::data::TextVectorizer(
             L::data::TextVectorizerOptions().max_tokens(o.max_tokens()).output_sequence_length(o.sequence_length())),
         test.texts};
  d.vectorizer.adapt(train.texts);
  d.x_train = d.vectorizer.encode(train.texts);
  d.y_train = train.y;
  d.x_test = d.vectorizer.encode(test.texts);
  d.y_test = test.y;
  return d;
}

/// True/false positives and negatives of probabilities (N, 1) at 0.5 against labels (N).
struct Confusion {
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
};

inline Confusion confusion(const torch::Tensor& probabilities, const torch::Tensor& labels) {
  auto predicted = probabilities.reshape({-1}) > 0.5;
  auto truth = labels.reshape({-1}) != 0;
  Confusion c;
  c.tp = (predicted & truth).sum().item<int64_t>();
  c.fp = (predicted & ~truth).sum().item<int64_t>();
  c.fn = (~predicted & truth).sum().item<int64_t>();
  c.tn = (~predicted & ~truth).sum().item<int64_t>();
  return c;
}

inline void usage(FILE* to) {
  std::fputs(
      "usage: example_tnn spam [DATA_DIR] [options]     (run from the repository root)\n"
      "  Trains configs/spam_transformer.json's model from C++ and scores it on the test mails.\n"
      "  DATA_DIR            folder holding spam_train.tsv and spam_test.tsv (default data/, written by\n"
      "                      scripts/tnn_datasets.sh)\n"
      "  --epochs N          (5)     --batch-size N (32)     --learning-rate X  Adam's (0.001)\n"
      "  --max-tokens N      vocabulary size, padding and [UNK] included (20000)\n"
      "  --sequence-length N words kept per mail, the rest cut (256)\n"
      "  --embedding N       (64)    --intermediate N (128)  --heads N (2)   --dropout X (0.1)\n"
      "  --seed N            (42)    --threads N  LibTorch's intra-op threads, 0 = its default (0)\n"
      "  --samples N         misclassified test mails shown (5)\n",
      to);
}

/// `example_tnn spam ...`: returns the exit status.
inline int run(const std::vector<std::string>& words) {
  Args a(words, {"--epochs", "--batch-size", "--learning-rate", "--max-tokens", "--sequence-length", "--embedding",
                 "--intermediate", "--heads", "--dropout", "--seed", "--threads", "--samples"});
  if (a.help()) {
    usage(stdout);
    return 0;
  }
  if (a.positional().size() > 1) throw L::ConfigError(a.positional()[1], "unexpected argument (see --help)");
  std::string dir = a.positional().empty() ? "data" : a.positional()[0];
  SpamOptions o;
  o.train_path(dir + "/spam_train.tsv").test_path(dir + "/spam_test.tsv");
  o.epochs(a.integer("--epochs", o.epochs(), 1)).batch_size(a.integer("--batch-size", o.batch_size(), 1));
  o.learning_rate(a.number("--learning-rate", o.learning_rate(), 1e-8, 10));
  o.max_tokens(a.integer("--max-tokens", o.max_tokens(), 3)).sequence_length(a.integer("--sequence-length", o.sequence_length(), 1));
  o.embedding_dim(a.integer("--embedding", o.embedding_dim(), 1)).intermediate_dim(a.integer("--intermediate", o.intermediate_dim(), 1));
  o.num_heads(a.integer("--heads", o.num_heads(), 1)).dropout(a.number("--dropout", o.dropout(), 0, 0.99));
  const int64_t seed = a.integer("--seed", 42), threads = a.integer("--threads", 0), samples = a.integer("--samples", 5);
  if (threads > 0) torch::set_num_threads(static_cast<int>(threads));
  L::seed_everything(static_cast<uint64_t>(seed));

  auto data = load(o);
  const double spam_share = data.y_train.to(torch::kDouble).mean().item<double>();
  std::printf("spam mails %s: %lld train (%.1f%% spam) / %lld test; vocabulary %lld words, %lld words per mail\n",
              dir.c_str(), static_cast<long long>(data.y_train.size(0)), 100 * spam_share,
              static_cast<long long>(data.y_test.size(0)), static_cast<long long>(data.vectorizer.vocabulary_size()),
              static_cast<long long>(o.sequence_length()));
  auto model = build_model(o);
  model->compile(L::optimizers::adam(o.learning_rate()), "binary_crossentropy", metrics());
  {
    torch::NoGradGuard no_grad;
    model->eval();
    model->forward(data.x_train.narrow(0, 0, 1));  // builds the layers, for the summary
  }
  std::fputs(model->summary().c_str(), stdout);
  std::fflush(stdout);  // before fit's log lines, which go to stderr

  auto start = std::chrono::steady_clock::now();
  model->fit(data.x_train, data.y_train,
             L::FitOptions().epochs(o.epochs()).batch_size(o.batch_size()).validation_split(o.validation_split()).verbose(2));
  const double train_seconds = seconds_since(start);
  auto scores = model->evaluate(data.x_test, data.y_test);
  auto probabilities = model->predict(data.x_test, 256);
  auto c = confusion(probabilities, data.y_test);

  std::printf("\ntrained %lld epochs in %.1f s (%.1f s per epoch)\n", static_cast<long long>(o.epochs()),
              train_seconds, train_seconds / o.epochs());
  std::printf("test mails: %lld\n", static_cast<long long>(data.y_test.size(0)));
  for (const char* k : {"loss", "accuracy", "precision", "recall", "f1_score"})
    if (scores.count(k)) std::printf("  %-10s %.4f\n", k, scores.at(k));
  std::printf("confusion at 0.5: %lld spam caught, %lld spam missed, %lld ham flagged, %lld ham passed\n",
              static_cast<long long>(c.tp), static_cast<long long>(c.fn), static_cast<long long>(c.fp),
              static_cast<long long>(c.tn));

  auto p = probabilities.reshape({-1});
  auto wrong = ((p > 0.5) != (data.y_test != 0)).nonzero().reshape({-1});
  const int64_t shown = std::min<int64_t>(samples, wrong.numel());
  if (shown > 0) std::printf("\nmisclassified test mails (label, spam probability, beginning):\n");
  for (int64_t k = 0; k < shown; ++k) {
    int64_t i = wrong[k].item<int64_t>();
    std::string text = data.test_texts[i].substr(0, 90);
    std::replace(text.begin(), text.end(), '\t', ' ');
    std::printf("  %s %.3f  %s\n", data.y_test[i].item<int64_t>() ? "spam" : "ham ", p[i].item<float>(), text.c_str());
  }
  return 0;
}

}  // namespace tnn::spam
