#include "lighter_test.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "lighter/cli/language_model.h"

// The language_model data source (windows of next-token targets from one text), the unigram baseline, decoding,
// and `lighter generate` end to end on a tiny character model trained by `lighter train`.

namespace L = lighter;
using L::json;
namespace fs = std::filesystem;

namespace {

std::string write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

json lm_source(const std::string& path, json extra = json::object()) {
  json s = {{"format", "language_model"}, {"path", path}, {"sequence_length", 3}};
  for (auto it = extra.begin(); it != extra.end(); ++it) s[it.key()] = it.value();
  return s;
}

// A run config around `train` (a data.train source) with a character vectorizer keeping case and punctuation.
json lm_config(const json& train) {
  return {{"data",
           {{"train", train}, {"text_vectorization", {{"split", "character"}, {"standardize", nullptr}}}}},
          {"model", {{"class_name", "Sequential"}, {"config", {{"layers", json::array()}}}}},
          {"compile", {{"loss", "sparse_categorical_crossentropy"}}}};
}

L::cli::RunConfig parse(const json& config) { return L::cli::parse_run_config(config, ""); }

L::data::TextVectorizer char_vectorizer() {
  return L::data::TextVectorizer::from_config({{"split", "character"}, {"standardize", nullptr}});
}

// A tiny decoder-only character LM over `vocab` ids (positions for 32 steps) on the text in `text_file`.
json tiny_lm_run(const std::string& text_file, int64_t vocab, const std::string& output_dir) {
  json layers = json::array(
      {{{"class_name", "InputLayer"}, {"config", {{"batch_shape", {nullptr, nullptr}}, {"dtype", "int64"}}}},
       {{"class_name", "TokenAndPositionEmbedding"},
        {"config", {{"vocabulary_size", vocab}, {"sequence_length", 32}, {"embedding_dim", 16}}}},
       {{"class_name", "TransformerDecoder"},
        {"config", {{"intermediate_dim", 32}, {"num_heads", 2}, {"normalize_first", true}}}},
       {{"class_name", "Dense"}, {"config", {{"units", vocab}}}}});
  return {{"name", "tiny_lm"},
          {"seed", 7},
          {"device", "cpu"},
          {"data",
           {{"train", {{"format", "language_model"}, {"path", text_file}, {"sequence_length", 16}, {"sequence_stride", 8}}},
            {"validation_split", 0.2},
            {"text_vectorization", {{"split", "character"}, {"standardize", nullptr}}}}},
          {"model", {{"class_name", "Sequential"}, {"config", {{"name", "tiny_lm"}, {"layers", layers}}}}},
          {"compile",
           {{"optimizer", {{"class_name", "Adam"}, {"config", {{"learning_rate", 0.01}}}}},
            {"loss", {{"class_name", "SparseCategoricalCrossentropy"}, {"config", {{"from_logits", true}}}}}}},
          {"fit", {{"epochs", 3}, {"batch_size", 4}, {"verbose", 0}}},
          {"output_dir", output_dir}};
}

}  // namespace

TEST_CASE("language_model source cuts the text into windows with targets shifted by one", "[cli][generation]") {
  std::string dir = lighter_test::temp_dir("lm_windows");
  // a, b three times each; space and newline once: the vocabulary is "", [UNK], b, a, " ", "\n" (count, then
  // decreasing byte order on ties), so the text reads 3 2 4 3 2 5 3 2.
  std::string file = write_file(dir + "/t.txt", "ab ab\nab");
  auto cfg = parse(lm_config(lm_source(file, {{"sequence_stride", 2}})));
  REQUIRE(cfg.train.sequence_length == 3);
  REQUIRE(cfg.train.sequence_stride == 2);
  auto v = char_vectorizer();
  auto table = L::cli::read_language_model(cfg.train, v, /*adapt=*/true);
  REQUIRE(v.get_vocabulary() == std::vector<std::string>{"", "[UNK]", "b", "a", " ", "\n"});
  // Windows of 4 ids starting at 0, 2, 4 (one at 6 would need 10 ids).
  REQUIRE(table.x.scalar_type() == torch::kLong);
  REQUIRE(table.x.equal(torch::tensor({3, 2, 4, 4, 3, 2, 2, 5, 3}, torch::kLong).reshape({3, 3})));
  REQUIRE(table.y.equal(torch::tensor({2, 4, 3, 3, 2, 5, 5, 3, 2}, torch::kLong).reshape({3, 3})));

  // The stride defaults to sequence_length: windows do not overlap. CRLF reads as LF.
  write_file(file, "ab ab\r\nab");
  cfg = parse(lm_config(lm_source(file)));
  REQUIRE(cfg.train.sequence_stride == 3);
  table = L::cli::read_language_model(cfg.train, v, /*adapt=*/false);
  REQUIRE(table.x.equal(torch::tensor({3, 2, 4, 3, 2, 5}, torch::kLong).reshape({2, 3})));
  REQUIRE(table.y.equal(torch::tensor({2, 4, 3, 2, 5, 3}, torch::kLong).reshape({2, 3})));

  // A character the vocabulary lacks reads as the OOV id.
  write_file(file, "abXab\n");
  table = L::cli::read_language_model(cfg.train, v, /*adapt=*/false);
  REQUIRE(table.x.equal(torch::tensor({3, 2, 1}, torch::kLong).reshape({1, 3})));
}

TEST_CASE("language_model source errors name the JSON path", "[cli][generation]") {
  std::string dir = lighter_test::temp_dir("lm_errors");
  std::string file = write_file(dir + "/t.txt", "ab ab\nab");
  auto v = char_vectorizer();
  auto missing = parse(lm_config(lm_source(dir + "/nope.txt")));
  LIGHTER_REQUIRE_THROWS_WITH(L::cli::read_language_model(missing.train, v, true), "data.train.path: no such file: ");
  auto too_long = parse(lm_config(lm_source(file, {{"sequence_length", 8}})));
  LIGHTER_REQUIRE_THROWS_WITH(L::cli::read_language_model(too_long.train, v, true),
                              "data.train.sequence_length: " + file +
                                  " holds 8 tokens, too few for one window of sequence_length + 1 = 9 tokens");
  LIGHTER_REQUIRE_THROWS_WITH(parse(lm_config(lm_source(file, {{"sequence_length", 0}}))),
                              "data.train.sequence_length: expected a positive integer, got 0");
  LIGHTER_REQUIRE_THROWS_WITH(parse(lm_config(lm_source(file, {{"sequence_stride", -1}}))),
                              "data.train.sequence_stride: expected a positive integer, got -1");
  json no_length = lm_source(file);
  no_length.erase("sequence_length");
  LIGHTER_REQUIRE_THROWS_WITH(parse(lm_config(no_length)), "data.train.sequence_length");
  LIGHTER_REQUIRE_THROWS_WITH(parse(lm_config(lm_source(file, {{"classes", {"a"}}}))), "data.train.classes: unknown key");
  json mixed = lm_config(lm_source(file));
  mixed["data"]["validation"] = {{"format", "text"}, {"path", file}};
  LIGHTER_REQUIRE_THROWS_WITH(parse(mixed), "data.validation.format: a language_model source goes with");
  json fixed_length = lm_config(lm_source(file));
  fixed_length["data"]["text_vectorization"]["output_sequence_length"] = 10;
  LIGHTER_REQUIRE_THROWS_WITH(parse(fixed_length), "data.text_vectorization.output_sequence_length: must be null");
}

TEST_CASE("unigram baseline and decoding of token ids", "[cli][generation]") {
  // Train targets 2, 2, 3 over 4 ids with add-one counts: 1, 1, 3, 2 of 7.
  double bits = L::cli::unigram_bits_per_token(torch::tensor({2, 2, 3}), torch::tensor({2, 3}), 4);
  REQUIRE(bits == Approx(-(std::log2(3.0 / 7) + std::log2(2.0 / 7)) / 2));

  auto chars = char_vectorizer();
  chars.set_vocabulary({"b", "a", " ", "\n"});
  REQUIRE(L::cli::decode_tokens(chars, {3, 2, 4, 5, 0, 1}) == "ab \n[UNK]");
  auto words = L::data::TextVectorizer::from_config({{"vocabulary", {"in", "the", "beginning"}}});
  REQUIRE(L::cli::decode_tokens(words, {2, 0, 3, 4}) == "in the beginning");
  LIGHTER_REQUIRE_THROWS_WITH(L::cli::decode_tokens(words, {5}), "token id 5 is outside the vocabulary of 5 tokens");
}

TEST_CASE("lighter train fits a character LM on a language_model source and lighter generate continues a prompt",
          "[cli][generation]") {
  std::string dir = lighter_test::temp_dir("lm_cli");
  std::string text;
  for (int i = 0; i < 12; ++i) text += "the cat sat on the mat.\n";  // 12 distinct characters: 14 ids
  std::string file = write_file(dir + "/text.txt", text);
  std::string cfg = write_file(dir + "/lm.json", tiny_lm_run(file, 14, dir + "/run").dump(2));
  std::string out;
  int rc = lighter_test::run_cli("train " + cfg + " --log-level warn", &out);
  INFO(out);
  REQUIRE(rc == 0);
  json metrics = L::read_json_file(dir + "/run/metrics.json");
  double loss = metrics["validation"]["loss"].get<double>();
  REQUIRE(metrics["validation"]["bits_per_token"].get<double>() == Approx(loss / std::log(2.0)));
  // The unigram baseline of the training targets on the held-out ones: between 1 bit and a uniform guess.
  double unigram = metrics["validation"]["unigram_bits_per_token"].get<double>();
  REQUIRE(unigram > 1.0);
  REQUIRE(unigram < std::log2(14.0));
  json saved = L::read_json_file(dir + "/run/lighter.json");
  REQUIRE(saved["text_vectorization"]["config"]["vocabulary"].size() == 14);

  std::string generate = "generate " + cfg + " --weights " + dir + "/run --log-level warn --prompt 'the ' ";
  rc = lighter_test::run_cli(generate + "--max-new-tokens 10", &out);
  INFO(out);
  REQUIRE(rc == 0);
  REQUIRE(out.size() == 4 + 10 + 1);  // the prompt, 10 characters, a newline
  REQUIRE(out.rfind("the ", 0) == 0);
  std::string cached = out;
  rc = lighter_test::run_cli(generate + "--max-new-tokens 10 --no-cache", &out);
  REQUIRE(rc == 0);
  REQUIRE(out == cached);

  // Seeded sampling repeats itself; the log line reports the tokens and the time.
  std::string sampled;
  rc = lighter_test::run_cli(generate + "--max-new-tokens 12 --sampler top_k --k 3 --seed 5", &sampled);
  REQUIRE(rc == 0);
  REQUIRE(sampled.size() == 4 + 12 + 1);
  rc = lighter_test::run_cli(generate + "--max-new-tokens 12 --sampler top_k --k 3 --seed 5", &out);
  REQUIRE(out == sampled);
  // A prompt character the vocabulary lacks is read as [UNK], with a warning.
  rc = lighter_test::run_cli("generate " + cfg + " --weights " + dir + "/run --prompt 'Zthe ' --max-new-tokens 3", &out);
  REQUIRE(rc == 0);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("--prompt: 'Z' not in the vocabulary, read as the OOV token [UNK]"));
  REQUIRE_THAT(out, LIGHTER_CONTAINS("generated 3 tokens in"));

  // `lighter evaluate` reads the language_model source again with the saved vectorizer.
  rc = lighter_test::run_cli("evaluate " + cfg + " --weights " + dir + "/run --log-level warn", &out);
  REQUIRE(rc == 0);
  REQUIRE(json::parse(out.substr(out.find('{'))).contains("loss"));
}

TEST_CASE("lighter generate rejects bad arguments with a usage message", "[cli][generation]") {
  // Arguments are checked before anything is loaded: the weights folder need not exist.
  std::string generate = "generate lm.json --weights " + lighter_test::temp_dir("lm_cli_args") + "/run ";
  struct Case {
    std::string args, expected;
  };
  std::vector<Case> cases = {
      {"--prompt the --sampler best", "--sampler: expected one of greedy, random, top_k, top_p, got 'best'"},
      {"--prompt the --temperature 0", "--temperature: expected a positive number"},
      {"--prompt the --k 0 --sampler top_k", "--k: expected a positive integer"},
      {"--prompt the --max-new-tokens ten", "--max-new-tokens needs an integer, got 'ten'"},
      {"--prompt the --seed -3", "--seed needs a non-negative integer"},
      {"--max-new-tokens 3", "generate needs --prompt TEXT"},
  };
  std::string out;
  for (const auto& c : cases) {
    INFO(c.args);
    int rc = lighter_test::run_cli(generate + c.args, &out);
    INFO(out);
    REQUIRE(rc == 2);
    REQUIRE(out.rfind("lighter: " + c.expected, 0) == 0);
    REQUIRE_THAT(out, LIGHTER_CONTAINS("usage: lighter <command>"));
  }
  REQUIRE(lighter_test::run_cli("generate lm.json --prompt the", &out) == 2);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("generate needs --weights DIR"));
}

TEST_CASE("lighter generate refuses prompts and models it cannot continue", "[cli][generation]") {
  std::string dir = lighter_test::temp_dir("lm_cli_bad");
  // A saved model with lighter.json as `lighter train` writes it, made here without training.
  auto save = [&](const std::string& name, const json& layers, const json& extra) {
    auto model = L::models::model_from_json(
        {{"class_name", "Sequential"}, {"config", {{"name", name}, {"layers", layers}}}}, "model");
    bool ints = layers[0]["config"].value("dtype", "float32") == "int64";
    torch::NoGradGuard no_grad;
    model->forward(ints ? torch::ones({1, 3}, torch::kLong) : torch::ones({1, 3}));
    L::save_model(*model, dir + "/" + name, extra);
    return dir + "/" + name;
  };
  auto v = char_vectorizer();
  v.adapt({"the cat sat on the mat.\n"});
  json vectorizer = v.to_json();
  json lm = tiny_lm_run("unused.txt", 14, "unused")["model"]["config"]["layers"];
  std::string run = save("lm", lm, {{"text_vectorization", vectorizer}});
  std::string out;
  // One message on one line, exit status 1.
  auto fails = [&](const std::string& args, const std::string& expected) {
    INFO(args);
    int rc = lighter_test::run_cli("generate lm.json --log-level warn " + args, &out);
    INFO(out);
    REQUIRE(rc == 1);
    REQUIRE(out.rfind("lighter: error: ", 0) == 0);
    REQUIRE_THAT(out, LIGHTER_CONTAINS(expected));
    REQUIRE(std::count(out.begin(), out.end(), '\n') == 1);
  };
  fails("--weights " + run + " --prompt ''", "--prompt: the prompt gives no tokens (it is empty)");
  // Positions for 32 steps: 3 + 40 do not fit.
  fails("--weights " + run + " --prompt the --max-new-tokens 40", "sequence_length = 32");
  fails("--weights " + dir + "/nothing --prompt the", "nothing: no saved model here");

  // A model without a vectorizer, one over floats, and a text classifier (one score vector per text).
  json dense = {{{"class_name", "InputLayer"}, {"config", {{"batch_shape", {nullptr, 3}}}}},
                {{"class_name", "Dense"}, {"config", {{"units", 14}}}}};
  fails("--weights " + save("plain", dense, json::object()) + " --prompt the", "the run has no text vectorizer");
  fails("--weights " + save("floats", dense, {{"text_vectorization", vectorizer}}) + " --prompt the",
        "generate needs a model of token ids (an int64 input), this one takes float32");
  json classifier = {
      {{"class_name", "InputLayer"}, {"config", {{"batch_shape", {nullptr, nullptr}}, {"dtype", "int64"}}}},
      {{"class_name", "Embedding"}, {"config", {{"input_dim", 14}, {"output_dim", 4}}}},
      {{"class_name", "GlobalAveragePooling1D"}, {"config", json::object()}},
      {{"class_name", "Dense"}, {"config", {{"units", 3}, {"activation", "softmax"}}}}};
  std::string classify = save("classifier", classifier, {{"text_vectorization", vectorizer}});
  fails("--weights " + classify + " --prompt the", "cannot decode step by step");
  fails("--weights " + classify + " --prompt the --no-cache", "must give scores of shape (batch, steps, vocabulary)");
}

TEST_CASE("lighter train checks that the vocabulary fits a language model", "[cli][generation]") {
  std::string dir = lighter_test::temp_dir("lm_cli_vocab");
  std::string text;
  for (int i = 0; i < 4; ++i) text += "the cat sat on the mat.\n";
  std::string file = write_file(dir + "/text.txt", text);
  std::string out;
  // 14 ids, but an embedding of 10 and 14 output scores; then 14 ids in but 12 scores out.
  json small_input = tiny_lm_run(file, 14, dir + "/run");
  small_input["model"]["config"]["layers"][1]["config"]["vocabulary_size"] = 10;
  std::string cfg = write_file(dir + "/a.json", small_input.dump(2));
  REQUIRE(lighter_test::run_cli("train " + cfg + " --log-level warn", &out) == 1);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("a.json: data.text_vectorization: the vocabulary has 14 tokens"));
  json small_output = tiny_lm_run(file, 14, dir + "/run");
  small_output["model"]["config"]["layers"][3]["config"]["units"] = 12;
  cfg = write_file(dir + "/b.json", small_output.dump(2));
  REQUIRE(lighter_test::run_cli("train " + cfg + " --log-level warn", &out) == 1);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("b.json: data.text_vectorization: the vocabulary has 14 tokens (padding and OOV "
                                     "included) but the model scores 12"));
  json missing = tiny_lm_run(dir + "/absent.txt", 14, dir + "/run");
  cfg = write_file(dir + "/c.json", missing.dump(2));
  REQUIRE(lighter_test::run_cli("train " + cfg, &out) == 1);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("c.json: data.train.path: no such file: " + dir + "/absent.txt"));
}
