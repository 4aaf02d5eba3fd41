#include "lighter_test.h"

#include <filesystem>
#include <fstream>

#include "lighter/data/text.h"

namespace L = lighter;
using L::json;
using L::data::TextVectorizer;
using L::data::TextVectorizerOptions;
namespace fs = std::filesystem;

namespace {

std::vector<int64_t> row(const torch::Tensor& ids, int64_t i) {
  auto r = ids[i].contiguous();
  return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

void write_file(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

TextVectorizer no_standardize(const std::string& split) {
  return TextVectorizer(TextVectorizerOptions().standardize(std::nullopt).split(split));
}

}  // namespace

TEST_CASE("TextVectorizer standardizes UTF-8 text as Keras does, lowercasing Latin letters too", "[data][text]") {
  TextVectorizer v;
  // ASCII punctuation goes; Latin-1 and Latin Extended-A capitals are lowercased; ß and ¿ stay.
  REQUIRE(v.standardize("Hello, World! STRASSE Straße ÜBER Ñandú ¿Qué? ŁÓDŹ") ==
          "hello world strasse straße über ñandú ¿qué łódź");
  REQUIRE(v.standardize("ΑΘΗΝΑ Москва") == "αθηνα москва");
  REQUIRE(TextVectorizer(TextVectorizerOptions().standardize("lower")).standardize("Don't STOP.") == "don't stop.");
  REQUIRE(TextVectorizer(TextVectorizerOptions().standardize("strip_punctuation")).standardize("Don't STOP.") ==
          "Dont STOP");
  REQUIRE(no_standardize("whitespace").standardize("Don't STOP.") == "Don't STOP.");
  REQUIRE(L::data::utf8_lower("ÀÉÎÕÜ×Þ") == "àéîõü×þ");
}

TEST_CASE("TextVectorizer splits on whitespace or into code points", "[data][text]") {
  TextVectorizer words;
  REQUIRE(words.tokenize("  Straße\t über\n\nalles  ") == std::vector<std::string>{"straße", "über", "alles"});
  REQUIRE(words.tokenize(" ... ").empty());

  // "Straße über" is 13 bytes but 11 characters: ß and ü are one token each, the space is a token.
  auto chars = no_standardize("character").tokenize("Straße über");
  REQUIRE(chars == std::vector<std::string>{"S", "t", "r", "a", "ß", "e", " ", "ü", "b", "e", "r"});
  REQUIRE(L::data::utf8_characters("日本€😀").size() == 4);
  // An invalid byte is a character of its own.
  REQUIRE(L::data::utf8_characters(std::string("a\xFF" "b")).size() == 3);
  REQUIRE_FALSE(L::data::is_valid_utf8(std::string("ab\xC3")));
  REQUIRE(L::data::is_valid_utf8("Straße"));

  TextVectorizer whole(TextVectorizerOptions().split(std::nullopt));
  REQUIRE(whole.tokenize("New York!") == std::vector<std::string>{"new york"});
}

TEST_CASE("TextVectorizer adapts a vocabulary by frequency, ties in reverse byte order, cut at max_tokens",
          "[data][text]") {
  std::vector<std::string> texts = {"b a c a", "B a!", "d", "[UNK]"};
  TextVectorizer v;
  REQUIRE_FALSE(v.has_vocabulary());
  REQUIRE(v.get_vocabulary() == std::vector<std::string>{"", "[UNK]"});
  v.adapt(texts);
  // a: 3, b: 2, then c, d and unk (from "[UNK]" standardized) once each: ties go in decreasing order.
  REQUIRE(v.get_vocabulary() == std::vector<std::string>{"", "[UNK]", "a", "b", "unk", "d", "c"});
  REQUIRE(v.vocabulary_size() == 7);

  TextVectorizer cut(TextVectorizerOptions().max_tokens(4));
  cut.adapt(texts);
  REQUIRE(cut.get_vocabulary() == std::vector<std::string>{"", "[UNK]", "a", "b"});

  // Character vocabulary of German text: ü counts as one token.
  auto chars = no_standardize("character");
  chars.adapt({"über", "üb"});
  REQUIRE(chars.get_vocabulary() == std::vector<std::string>{"", "[UNK]", "ü", "b", "r", "e"});
}

TEST_CASE("TextVectorizer encodes with OOV 1 and padding 0, padding or truncating", "[data][text]") {
  TextVectorizer v(TextVectorizerOptions().vocabulary({"a", "b", "c"}));
  REQUIRE(v.has_vocabulary());
  REQUIRE(v.get_vocabulary() == std::vector<std::string>{"", "[UNK]", "a", "b", "c"});
  // A vocabulary that starts with the special tokens is taken as the full list.
  REQUIRE(TextVectorizer(TextVectorizerOptions().vocabulary({"", "[UNK]", "a", "b", "c"})).get_vocabulary() ==
          v.get_vocabulary());

  auto ids = v.encode({"a zebra", "B a b c", ""});
  REQUIRE(ids.scalar_type() == torch::kInt64);
  REQUIRE(ids.sizes() == torch::IntArrayRef({3, 4}));  // the longest text
  REQUIRE(row(ids, 0) == std::vector<int64_t>{2, 1, 0, 0});
  REQUIRE(row(ids, 1) == std::vector<int64_t>{3, 2, 3, 4});
  REQUIRE(row(ids, 2) == std::vector<int64_t>{0, 0, 0, 0});
  auto mask = L::data::padding_mask(ids);
  REQUIRE(mask.sum().item<int64_t>() == 6);
  REQUIRE(mask[0][1].item<bool>());
  REQUIRE_FALSE(mask[0][2].item<bool>());

  TextVectorizer two(TextVectorizerOptions().vocabulary({"a", "b", "c"}).output_sequence_length(2));
  auto cut = two.encode({"a zebra", "B a b c", "c"});
  REQUIRE(cut.sizes() == torch::IntArrayRef({3, 2}));
  REQUIRE(row(cut, 1) == std::vector<int64_t>{3, 2});  // the first tokens are kept
  REQUIRE(row(cut, 2) == std::vector<int64_t>{4, 0});
  TextVectorizer six(TextVectorizerOptions().vocabulary({"a"}).output_sequence_length(6));
  REQUIRE(row(six.encode({"a a"}), 0) == std::vector<int64_t>{2, 2, 0, 0, 0, 0});
  // All empty texts still give one padding column.
  REQUIRE(v.encode({"", "!!"}).sizes() == torch::IntArrayRef({2, 1}));

  LIGHTER_REQUIRE_THROWS_WITH(TextVectorizer().encode({"a"}), "no vocabulary");
}

TEST_CASE("TextVectorizer JSON round trip gives identical encodings", "[data][text]") {
  std::vector<std::string> texts = {"Der Hund schläft.", "El perro duerme", "Le chien dort", "Der Hund bellt"};
  TextVectorizer v(TextVectorizerOptions().max_tokens(10).output_sequence_length(5).standardize("lower"));
  v.adapt(texts);
  json saved = json::parse(v.to_json().dump());
  REQUIRE(saved["class_name"] == "TextVectorization");
  REQUIRE(saved["config"]["max_tokens"] == 10);
  REQUIRE(saved["config"]["standardize"] == "lower");
  REQUIRE(saved["config"]["output_sequence_length"] == 5);
  auto again = TextVectorizer::from_json(saved, "text_vectorization");
  REQUIRE(again.get_vocabulary() == v.get_vocabulary());
  std::vector<std::string> other = {"der Hund schläft nicht", "el gato", ""};
  REQUIRE(torch::equal(again.encode(other), v.encode(other)));
  REQUIRE(again.get_config() == v.get_config());
  // A bare config (no class_name) reads too, and null options stay null.
  auto plain = TextVectorizer::from_json(
      json{{"standardize", nullptr}, {"split", "character"}, {"vocabulary", {"a", "b"}}, {"name", "tv"}});
  REQUIRE_FALSE(plain.options().standardize().has_value());
  REQUIRE(plain.get_config()["standardize"].is_null());
  REQUIRE(TextVectorizer::from_json(plain.to_json()).get_config() == plain.get_config());
  // Absent options take Keras' defaults.
  auto defaults = TextVectorizer::from_config(json::object()).get_config();
  REQUIRE(defaults["standardize"] == "lower_and_strip_punctuation");
  REQUIRE(defaults["split"] == "whitespace");
  REQUIRE(defaults["max_tokens"].is_null());
}

TEST_CASE("TextVectorizer config errors name the path", "[data][text]") {
  auto read = [](const json& j) { return TextVectorizer::from_config(j, "data.text_vectorization"); };
  LIGHTER_REQUIRE_THROWS_WITH(read({{"max_token", 10}}), "data.text_vectorization.max_token: unknown key");
  LIGHTER_REQUIRE_THROWS_WITH(read({{"max_tokens", 2}}), "data.text_vectorization.max_tokens");
  LIGHTER_REQUIRE_THROWS_WITH(read({{"max_tokens", "many"}}), "data.text_vectorization.max_tokens");
  LIGHTER_REQUIRE_THROWS_WITH(read({{"split", "word"}}), "data.text_vectorization.split");
  LIGHTER_REQUIRE_THROWS_WITH(read({{"standardize", "upper"}}), "data.text_vectorization.standardize");
  LIGHTER_REQUIRE_THROWS_WITH(read({{"output_mode", "tf_idf"}}), "data.text_vectorization.output_mode");
  LIGHTER_REQUIRE_THROWS_WITH(read({{"ngrams", 2}}), "data.text_vectorization.ngrams: ngrams is not supported");
  LIGHTER_REQUIRE_THROWS_WITH(read({{"output_sequence_length", 0}}), "data.text_vectorization.output_sequence_length");
  LIGHTER_REQUIRE_THROWS_WITH(read({{"encoding", "latin-1"}}), "data.text_vectorization.encoding");
  LIGHTER_REQUIRE_THROWS_WITH(read({{"vocabulary", {"a", "b", "a"}}}),
                              "data.text_vectorization.vocabulary[2]: the token \"a\" is repeated");
  LIGHTER_REQUIRE_THROWS_WITH(read({{"vocabulary", {"a", "[UNK]"}}}), "data.text_vectorization.vocabulary[1]");
  LIGHTER_REQUIRE_THROWS_WITH(read({{"max_tokens", 3}, {"vocabulary", {"a", "b"}}}), "more than max_tokens 3");
  LIGHTER_REQUIRE_THROWS_WITH(TextVectorizer(TextVectorizerOptions().max_tokens(1)), "max_tokens");
  LIGHTER_REQUIRE_THROWS_WITH(TextVectorizer::from_json(json{{"class_name", "StringLookup"}, {"config", json::object()}}),
                              "expected TextVectorization");
}

TEST_CASE("text data: labelled lines and class folders", "[data][text]") {
  std::string dir = lighter_test::temp_dir("text_data");
  write_file(dir + "/lang.tsv",
             "\xEF\xBB\xBF" "en\tHello world\r\nde\tHallo Welt, schöne Straße\n\n es \tBuenos días\tamigos\nen\tGood morning\n");
  auto t = L::data::read_text_lines(dir + "/lang.tsv");
  REQUIRE(t.size() == 4);
  REQUIRE(t.classes == std::vector<std::string>{"de", "en", "es"});
  REQUIRE(t.texts[1] == "Hallo Welt, schöne Straße");
  REQUIRE(t.texts[2] == "Buenos días\tamigos");  // split at the first separator only
  REQUIRE(torch::equal(t.y, torch::tensor({1, 0, 2, 1}, torch::kLong)));
  // Another split reuses the training classes.
  write_file(dir + "/test.tsv", "es\tHola\n");
  REQUIRE(L::data::read_text_lines(dir + "/test.tsv", "\t", t.classes).y.item<int64_t>() == 2);
  write_file(dir + "/fr.tsv", "es\tHola\nfr\tBonjour\n");
  LIGHTER_REQUIRE_THROWS_WITH(L::data::read_text_lines(dir + "/fr.tsv", "\t", t.classes),
                              "fr.tsv:2: label \"fr\" is not one of the known classes");
  write_file(dir + "/bad.tsv", "en\tfine\nno separator here\n");
  LIGHTER_REQUIRE_THROWS_WITH(L::data::read_text_lines(dir + "/bad.tsv"), "bad.tsv:2");
  write_file(dir + "/latin1.tsv", "de\tStra\xDF" "e\n");
  LIGHTER_REQUIRE_THROWS_WITH(L::data::read_text_lines(dir + "/latin1.tsv"), "not valid UTF-8");
  // Integer labels are class ids; a custom separator.
  write_file(dir + "/ids.txt", "1|good\n0|bad\n");
  auto ids = L::data::read_text_lines(dir + "/ids.txt", "|", {}, L::data::TargetKind::Classification);
  REQUIRE(ids.classes == std::vector<std::string>{"0", "1"});
  REQUIRE(torch::equal(ids.y, torch::tensor({1, 0}, torch::kLong)));
  // Numbers without classification are a regression target.
  auto values = L::data::read_text_lines(dir + "/ids.txt", "|", {}, L::data::TargetKind::Auto);
  REQUIRE(values.y.scalar_type() == torch::kFloat32);
  REQUIRE(values.classes.empty());

  write_file(dir + "/reviews/pos/b.txt", "Great film!\n");
  write_file(dir + "/reviews/pos/a.txt", "Loved it");
  write_file(dir + "/reviews/neg/x.txt", "Boring.");
  write_file(dir + "/reviews/neg/notes.md", "not an example");
  auto f = L::data::read_text_folder(dir + "/reviews");
  REQUIRE(f.classes == std::vector<std::string>{"neg", "pos"});
  REQUIRE(f.texts == std::vector<std::string>{"Boring.", "Loved it", "Great film!\n"});
  REQUIRE(torch::equal(f.y, torch::tensor({0, 1, 1}, torch::kLong)));
  LIGHTER_REQUIRE_THROWS_WITH(L::data::read_text_folder(dir + "/missing"), "no such folder");

  write_file(dir + "/predict.txt", "first\n\nthird\r\n");
  REQUIRE(L::data::read_text_per_line(dir + "/predict.txt") == std::vector<std::string>{"first", "", "third"});
}

TEST_CASE("run configs take text sources and data.text_vectorization", "[data][text]") {
  json c = {{"data",
             {{"train", {{"format", "text"}, {"path", "train.tsv"}}},
              {"test", {{"format", "text"}, {"folder", "test"}, {"encoding", "utf-8"}}},
              {"text_vectorization", {{"max_tokens", 100}, {"output_sequence_length", 8}}}}},
            {"model", {{"class_name", "Sequential"}, {"config", {{"layers", json::array()}}}}},
            {"compile", {{"loss", "sparse_categorical_crossentropy"}}}};
  auto cfg = L::cli::parse_run_config(c, "/data");
  REQUIRE(cfg.train.format == "text");
  REQUIRE(cfg.train.path == "/data/train.tsv");
  REQUIRE(cfg.train.label_separator == "\t");
  REQUIRE(cfg.test->folder == "/data/test");
  REQUIRE(cfg.text_vectorization["max_tokens"] == 100);

  auto bad = c;
  bad["data"]["text_vectorization"]["split"] = "words";
  LIGHTER_REQUIRE_THROWS_WITH(L::cli::parse_run_config(bad, "/data"), "data.text_vectorization.split");
  bad = c;
  bad["data"]["train"]["encoding"] = "latin-1";
  LIGHTER_REQUIRE_THROWS_WITH(L::cli::parse_run_config(bad, "/data"), "data.train.encoding");
  bad = c;
  bad["data"]["train"]["folder"] = "x";
  LIGHTER_REQUIRE_THROWS_WITH(L::cli::parse_run_config(bad, "/data"), "data.train: a text source needs either");
  bad = c;
  bad["data"]["test"] = {{"format", "csv"}, {"path", "t.csv"}};
  LIGHTER_REQUIRE_THROWS_WITH(L::cli::parse_run_config(bad, "/data"), "data.test.format: text and non-text");
}

// The whole data path (vectorizer adapted in train, saved in lighter.json, reused by evaluate and predict) with a
// small masked text model: Embedding(mask_zero) -> mean over the valid tokens -> softmax.
TEST_CASE("lighter train, evaluate and predict on a text data source", "[data][text][cli]") {
  std::string dir = lighter_test::temp_dir("text_cli");
  std::string train;
  for (int i = 0; i < 8; ++i) {
    train += "de\tDer Hund schläft und die Katze läuft über die Straße\n";
    train += "es\tEl perro duerme y el gato corre por la calle\n";
  }
  write_file(dir + "/train.tsv", train);
  write_file(dir + "/test/de/1.txt", "Die Katze schläft");
  write_file(dir + "/test/es/1.txt", "El gato duerme");
  json c = {{"name", "lang"},
            {"device", "cpu"},
            {"data",
             {{"train", {{"format", "text"}, {"path", "train.tsv"}}},
              {"test", {{"format", "text"}, {"folder", "test"}}},
              {"text_vectorization", {{"max_tokens", 12}, {"output_sequence_length", 6}}}}},
            {"model",
             {{"class_name", "Sequential"},
              {"config",
               {{"name", "lang"},
                {"layers",
                 {{{"class_name", "InputLayer"}, {"config", {{"batch_shape", {nullptr, 6}}}}},
                  {{"class_name", "Embedding"}, {"config", {{"input_dim", 12}, {"output_dim", 8}, {"mask_zero", true}}}},
                  {{"class_name", "GlobalAveragePooling1D"}, {"config", json::object()}},
                  {{"class_name", "Dense"}, {"config", {{"units", 2}, {"activation", "softmax"}}}}}}}}}},
            {"compile", {{"optimizer", {{"class_name", "Adam"}, {"config", {{"learning_rate", 0.05}}}}},
                         {"loss", "sparse_categorical_crossentropy"}, {"metrics", {"accuracy"}}}},
            {"fit", {{"epochs", 30}, {"batch_size", 4}, {"verbose", 0}}}};
  write_file(dir + "/lang.json", c.dump(2));
  std::string out;
  int rc = lighter_test::run_cli("train " + dir + "/lang.json --output-dir " + dir + "/run", &out);
  INFO(out);
  REQUIRE(rc == 0);
  json saved = L::read_json_file(dir + "/run/lighter.json");
  INFO(saved.dump(2));
  json metrics = L::read_json_file(dir + "/run/metrics.json");
  REQUIRE(metrics["test"]["accuracy"].get<double>() == 1.0);  // both unseen test texts

  // The saved vectorizer is the one adapted on the training texts.
  TextVectorizer expected(TextVectorizerOptions().max_tokens(12).output_sequence_length(6));
  std::vector<std::string> texts;
  for (int i = 0; i < 8; ++i) {
    texts.push_back("Der Hund schläft und die Katze läuft über die Straße");
    texts.push_back("El perro duerme y el gato corre por la calle");
  }
  expected.adapt(texts);
  REQUIRE(saved.contains("text_vectorization"));
  REQUIRE(TextVectorizer::from_json(saved["text_vectorization"]).get_vocabulary() == expected.get_vocabulary());

  rc = lighter_test::run_cli("evaluate " + dir + "/lang.json --weights " + dir + "/run", &out);
  INFO(out);
  REQUIRE(rc == 0);
  REQUIRE(out.find("accuracy") != std::string::npos);

  write_file(dir + "/input.txt", "Der Hund läuft\nEl gato\n");
  rc = lighter_test::run_cli("predict " + dir + "/lang.json --weights " + dir + "/run --input " + dir + "/input.txt",
                             &out);
  INFO(out);
  REQUIRE(rc == 0);
  REQUIRE(out.find("de,es,predicted") != std::string::npos);
  // Rows end with the predicted language: German first, Spanish second.
  auto first = out.find("\n", out.find("de,es,predicted"));
  auto de = out.find(",de\n", first), es = out.find(",es\n", first);
  REQUIRE(de != std::string::npos);
  REQUIRE(es != std::string::npos);
  REQUIRE(de < es);
}
