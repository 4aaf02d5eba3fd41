#pragma once
// Spelling -> pronunciation with a transformer encoder-decoder: the model built with the Functional API, greedy
// decoding with the decoder's key/value cache, and the same decoding re-running the whole model at each step (the
// reference the cached decoding must equal). The data, split, token ids and scores are examples/s2s's.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <lighter/lighter.h>

#include "examples/s2s/s2s.h"
#include "examples/tnn/args.h"

namespace tnn {

namespace L = lighter;

struct S2SOptions {
  /// Width of the embeddings and of every block (d_model).
  TORCH_ARG(int64_t, embedding_dim) = 64;
  /// Hidden width of each block's feed-forward network.
  TORCH_ARG(int64_t, intermediate_dim) = 128;
  TORCH_ARG(int64_t, num_heads) = 4;
  /// Encoder blocks, and as many decoder blocks.
  TORCH_ARG(int64_t, num_layers) = 2;
  TORCH_ARG(double, dropout) = 0.1;
  /// Position-table sizes: the longest word (letters) and the longest decoder input (start token + phonemes).
  TORCH_ARG(int64_t, max_letters) = 15;
  TORCH_ARG(int64_t, max_target) = 32;
};

/// The trained model and the layers that step-by-step decoding runs.
struct TransformerSeq2Seq {
  L::Functional model{nullptr};
  S2SOptions options;
  std::shared_ptr<L::layers::TokenAndPositionEmbeddingImpl> source_embedding, target_embedding;
  std::vector<std::shared_ptr<L::layers::TransformerEncoderImpl>> encoders;
  std::vector<std::shared_ptr<L::layers::TransformerDecoderImpl>> decoders;
  std::shared_ptr<L::layers::DenseImpl> head;
};

template <class T>
std::shared_ptr<T> layer_as(L::Functional& model, const std::string& name) {
  auto layer = std::dynamic_pointer_cast<T>(model->get_layer(name));
  if (!layer) throw L::Error("transformer s2s: layer '" + name + "' has an unexpected type");
  return layer;
}

/// letters (N, S) -> TokenAndPositionEmbedding(28, max_letters, dim, mask_zero) -> num_layers TransformerEncoders;
/// phonemes_in (N, T) (start token, then the phonemes: teacher forcing) -> TokenAndPositionEmbedding(42,
/// max_target, dim, mask_zero) -> num_layers TransformerDecoders, each called on {decoder, encoder output} (causal
/// self-attention, cross-attention to the letters) -> Dense(42, softmax). The decoder input's mask reaches the
/// output, so the loss averages over the real target steps.
inline TransformerSeq2Seq build_model(const S2SOptions& o) {
  auto block = L::layers::TransformerOptions(o.intermediate_dim(), o.num_heads()).dropout(o.dropout());
  auto source = L::keras_input({-1}, "letters", "int64");
  auto target = L::keras_input({-1}, "phonemes_in", "int64");
  auto x = L::call(L::layers::TokenAndPositionEmbedding(
                       L::layers::TokenAndPositionEmbeddingOptions(s2s::kLetterVocab, o.max_letters(), o.embedding_dim())
                           .mask_zero(true)
                           .name("letter_embedding")),
                   source);
  for (int64_t i = 0; i < o.num_layers(); ++i)
    x = L::call(L::layers::TransformerEncoder(L::layers::TransformerOptions(block).name("encoder_" + std::to_string(i))), x);
  auto y = L::call(L::layers::TokenAndPositionEmbedding(
                       L::layers::TokenAndPositionEmbeddingOptions(s2s::phoneme_vocab(), o.max_target(), o.embedding_dim())
                           .mask_zero(true)
                           .name("phoneme_embedding")),
                   target);
  for (int64_t i = 0; i < o.num_layers(); ++i)
    y = L::call(L::layers::TransformerDecoder(L::layers::TransformerOptions(block).name("decoder_" + std::to_string(i))), {y, x});
  auto out = L::call(L::Dense(L::DenseOptions(s2s::phoneme_vocab()).activation("softmax").name("phoneme")), y);
  TransformerSeq2Seq m;
  m.options = o;
  m.model = L::Functional({source, target}, {out}, "transformer_speller");
  m.source_embedding = layer_as<L::layers::TokenAndPositionEmbeddingImpl>(m.model, "letter_embedding");
  m.target_embedding = layer_as<L::layers::TokenAndPositionEmbeddingImpl>(m.model, "phoneme_embedding");
  for (int64_t i = 0; i < o.num_layers(); ++i) {
    m.encoders.push_back(layer_as<L::layers::TransformerEncoderImpl>(m.model, "encoder_" + std::to_string(i)));
    m.decoders.push_back(layer_as<L::layers::TransformerDecoderImpl>(m.model, "decoder_" + std::to_string(i)));
  }
  m.head = layer_as<L::layers::DenseImpl>(m.model, "phoneme");
  return m;
}

/// Checks that the words and pronunciations fit the position tables (DataError naming the first that does not).
inline void check_lengths(const TransformerSeq2Seq& m, const std::vector<s2s::Pair>& pairs) {
  for (const auto& p : pairs) {
    if (static_cast<int64_t>(p.word.size()) > m.options.max_letters())
      throw L::DataError(p.word, "longer than the letter positions (" + std::to_string(m.options.max_letters()) + ")");
    if (static_cast<int64_t>(p.phonemes.size()) + 1 > m.options.max_target())
      throw L::DataError(p.word, std::to_string(p.phonemes.size()) + " phonemes do not fit the " +
                                     std::to_string(m.options.max_target()) + " target positions");
  }
}

/// The greedy choice among the phonemes and the end token from (N, V) scores (logits or probabilities): padding
/// and the start token are never targets, so they are masked out before the library's greedy sampler.
inline torch::Tensor choose(const torch::Tensor& scores) {
  auto logits = scores.to(torch::kFloat).clone();
  logits.slice(-1, s2s::kPad, s2s::kEnd).fill_(-std::numeric_limits<float>::infinity());
  return L::models::sample_next(logits, L::models::GenerateOptions().sampler("greedy"));
}

/// Greedy decoding of a batch of words (`source` as from s2s::encode_words) with the key/value cache: the encoder
/// runs once over the letters (with their padding mask), then each step feeds only the newest token through the
/// target embedding (at position cache.position) and the decoder blocks (TransformerDecoder::step, attending to
/// the cached keys and values of the earlier steps and to the encoder output, whose projections are cached on the
/// first step). Stops when every word has produced the end token or after `max_steps` tokens (at most max_target).
/// Returns (N, steps) ids: each word's tokens up to and including its end token, then padding.
inline torch::Tensor greedy_decode_ids(TransformerSeq2Seq& m, const torch::Tensor& source, int64_t max_steps) {
  torch::NoGradGuard no_grad;
  m.model->eval();
  max_steps = std::min(max_steps, m.options.max_target());
  auto mask = source != s2s::kPad;
  auto memory = m.source_embedding->forward(source);
  for (auto& e : m.encoders) memory = e->encode(memory, mask, {});
  const int64_t n = source.size(0);
  auto token = torch::full({n, 1}, s2s::kStart, torch::kLong);
  auto done = torch::zeros({n}, torch::kBool);
  L::layers::DecodeCache cache;
  std::vector<torch::Tensor> steps;
  for (int64_t t = 0; t < max_steps; ++t) {
    auto h = m.target_embedding->forward_step(token, cache);
    for (auto& d : m.decoders) h = d->step(h, memory, mask, cache);
    cache.position += 1;
    auto next = choose(m.head->forward_pre_activation(h).select(1, 0));  // (N)
    steps.push_back(next.masked_fill(done, s2s::kPad));
    done = done | (next == s2s::kEnd);
    token = next.unsqueeze(1);
    if (done.all().item<bool>()) break;
  }
  return torch::stack(steps, 1);
}

/// The same greedy decoding without a cache: at each step the whole Functional model (encoder included) runs on
/// the letters and the whole decoded prefix, and the last step's probabilities give the next token. Quadratic in
/// the length; the reference for greedy_decode_ids.
inline torch::Tensor greedy_decode_ids_uncached(TransformerSeq2Seq& m, const torch::Tensor& source, int64_t max_steps) {
  torch::NoGradGuard no_grad;
  m.model->eval();
  max_steps = std::min(max_steps, m.options.max_target());
  const int64_t n = source.size(0);
  auto prefix = torch::full({n, 1}, s2s::kStart, torch::kLong);
  auto done = torch::zeros({n}, torch::kBool);
  std::vector<torch::Tensor> steps;
  for (int64_t t = 0; t < max_steps; ++t) {
    auto probabilities = m.model->call({source, prefix}).values.at(0);  // (N, t + 1, V)
    auto next = choose(probabilities.select(1, t));
    steps.push_back(next.masked_fill(done, s2s::kPad));
    done = done | (next == s2s::kEnd);
    prefix = torch::cat({prefix, next.unsqueeze(1)}, 1);
    if (done.all().item<bool>()) break;
  }
  return torch::stack(steps, 1);
}

/// Greedy pronunciations of `words`, decoded in batches with the cache (or without, for the comparison).
inline std::vector<std::vector<std::string>> greedy_decode(TransformerSeq2Seq& m, const std::vector<std::string>& words,
                                                           bool use_cache = true, int64_t max_steps = 24,
                                                           size_t batch = 512) {
  std::vector<std::vector<std::string>> out;
  for (size_t start = 0; start < words.size(); start += batch) {
    std::vector<std::string> chunk(words.begin() + start, words.begin() + std::min(words.size(), start + batch));
    auto source = s2s::encode_words(chunk);
    auto ids = use_cache ? greedy_decode_ids(m, source, max_steps) : greedy_decode_ids_uncached(m, source, max_steps);
    for (int64_t i = 0; i < ids.size(0); ++i) out.push_back(s2s::to_phonemes(ids[i]));
  }
  return out;
}

// ---- the command ------------------------------------------------------------------------------------------------

inline void s2s_usage(FILE* to) {
  std::fputs(
      "usage: example_tnn s2s [DATA_FILE_OR_DIR] [options]     (run from the repository root)\n"
      "  examples/s2s's task (CMUdict spelling -> phonemes, same split and scores) with a transformer.\n"
      "  DATA_FILE_OR_DIR   CMUdict file, or a folder holding cmudict.dict (default data/cmudict.dict,\n"
      "                     written by scripts/s2s_datasets.sh)\n"
      "  --epochs N         training epochs (10)\n"
      "  --words N          training words, a deterministic subset of the training split; 0 = all (30000)\n"
      "  --test-words N     held-out test words scored; 0 = the whole test split (0)\n"
      "  --embedding N      width of the embeddings and blocks (64)   --intermediate N  feed-forward width (128)\n"
      "  --heads N          attention heads (4)   --layers N  encoder blocks, and as many decoder blocks (2)\n"
      "  --dropout X        (0.1)   --batch-size N (128)   --learning-rate X  Adam's (0.001)   --seed N (42)\n"
      "  --check-words N    test words also decoded without the cache, to check both agree (64)\n"
      "  --samples N        sample predictions printed (12)   --max-letters N  longest word kept (15)\n"
      "  --threads N        LibTorch's intra-op threads, 0 = its default (0)\n"
      "  --save DIR         also save the trained model (model.json + weights) into DIR\n",
      to);
}

/// `example_tnn s2s ...`: returns the exit status.
inline int run_s2s(const std::vector<std::string>& words) {
  Args a(words, {"--epochs", "--words", "--test-words", "--embedding", "--intermediate", "--heads", "--layers",
                 "--dropout", "--batch-size", "--learning-rate", "--seed", "--check-words", "--samples",
                 "--max-letters", "--threads", "--save"});
  if (a.help()) {
    s2s_usage(stdout);
    return 0;
  }
  if (a.positional().size() > 1) throw L::ConfigError(a.positional()[1], "unexpected argument (see --help)");
  std::string data = a.positional().empty() ? "data/cmudict.dict" : a.positional()[0];
  if (std::filesystem::is_directory(data)) data = (std::filesystem::path(data) / "cmudict.dict").string();
  // The installed package's copy, when the fetch script has not run but pocketsphinx-en-us is installed.
  const char* installed = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict";
  if (a.positional().empty() && !std::filesystem::exists(data) && std::filesystem::exists(installed)) data = installed;
  const int64_t epochs = a.integer("--epochs", 10, 1), n_words = a.integer("--words", 30000),
                test_words = a.integer("--test-words", 0), batch_size = a.integer("--batch-size", 128, 1),
                seed = a.integer("--seed", 42), check_words = a.integer("--check-words", 64),
                samples = a.integer("--samples", 12), threads = a.integer("--threads", 0);
  const double learning_rate = a.number("--learning-rate", 1e-3, 1e-8, 10);
  S2SOptions o;
  o.embedding_dim(a.integer("--embedding", o.embedding_dim(), 1))
      .intermediate_dim(a.integer("--intermediate", o.intermediate_dim(), 1))
      .num_heads(a.integer("--heads", o.num_heads(), 1))
      .num_layers(a.integer("--layers", o.num_layers(), 1))
      .dropout(a.number("--dropout", o.dropout(), 0, 0.99))
      .max_letters(a.integer("--max-letters", o.max_letters(), 1));
  if (threads > 0) torch::set_num_threads(static_cast<int>(threads));
  L::seed_everything(static_cast<uint64_t>(seed));

  auto pairs = s2s::load_cmudict(data, static_cast<size_t>(o.max_letters()));
  auto all = s2s::split_pairs(pairs);
  auto split = s2s::split_pairs(pairs, static_cast<size_t>(n_words), 3000, static_cast<size_t>(test_words),
                                static_cast<uint64_t>(seed));
  std::printf("CMUdict %s: %zu words of at most %lld letters (a-z, ')\n", data.c_str(), pairs.size(),
              static_cast<long long>(o.max_letters()));
  std::printf("split by a hash of the word: %zu train / %zu validation / %zu test; using %zu / %zu / %zu\n",
              all.train.size(), all.validation.size(), all.test.size(), split.train.size(), split.validation.size(),
              split.test.size());

  auto m = build_model(o);
  check_lengths(m, pairs);
  auto train = s2s::encode(split.train), validation = s2s::encode(split.validation);
  std::fputs(m.model->summary().c_str(), stdout);
  std::fflush(stdout);  // before fit's log lines, which go to stderr
  m.model->compile(L::optimizers::adam(learning_rate), "sparse_categorical_crossentropy", {"accuracy"});
  auto start = std::chrono::steady_clock::now();
  m.model->fit({train.source, train.decoder_input}, {train.decoder_target},
               L::FitOptions()
                   .epochs(epochs)
                   .batch_size(batch_size)
                   .validation_data(L::training::ValidationData({validation.source, validation.decoder_input},
                                                               {validation.decoder_target}))
                   .verbose(2));
  const double train_seconds = seconds_since(start);
  std::printf("trained on %zu words, %lld epochs, in %.1f s (%.1f s per epoch)\n", split.train.size(),
              static_cast<long long>(epochs), train_seconds, train_seconds / epochs);

  auto words_to_decode = s2s::words_of(split.test);
  start = std::chrono::steady_clock::now();
  auto predicted = greedy_decode(m, words_to_decode);
  const double decode_seconds = seconds_since(start);
  auto scores = s2s::score(split.test, predicted);
  std::printf("\nheld-out test words: %zu (never seen in training)\n", split.test.size());
  std::printf("%-44s %14s %22s %10s\n", "", "word accuracy", "phoneme error rate", "time");
  std::printf("%-44s %14.3f %22.3f %9.1fs\n", "transformer, greedy decoding with the cache", scores.word_accuracy,
              scores.phoneme_error_rate, decode_seconds);

  // Cached decoding against re-running the whole model on the decoded prefix at every step.
  const size_t n_check = std::min(split.test.size(), static_cast<size_t>(check_words));
  if (n_check > 0) {
    std::vector<std::string> check;
    for (size_t k = 0; k < n_check; ++k) check.push_back(words_to_decode[k * split.test.size() / n_check]);
    start = std::chrono::steady_clock::now();
    auto cached = greedy_decode(m, check, true);
    const double cached_seconds = seconds_since(start);
    start = std::chrono::steady_clock::now();
    auto uncached = greedy_decode(m, check, false);
    const double uncached_seconds = seconds_since(start);
    size_t same = 0;
    for (size_t k = 0; k < n_check; ++k) same += cached[k] == uncached[k];
    std::printf("cache check: %zu of %zu words decode the same with the key/value cache and without it "
                "(%.3f s vs %.3f s)\n", same, n_check, cached_seconds, uncached_seconds);
    if (same != n_check) {
      for (size_t k = 0; k < n_check; ++k)
        if (cached[k] != uncached[k])
          std::printf("  %s: %s | %s\n", check[k].c_str(), s2s::join(cached[k]).c_str(), s2s::join(uncached[k]).c_str());
      throw L::Error("cached decoding differs from the full model's");
    }
  }

  std::printf("\nsamples (word: reference | model)\n");
  const size_t n = std::min(split.test.size(), static_cast<size_t>(samples));
  for (size_t k = 0; k < n; ++k) {
    size_t i = k * split.test.size() / n;  // spread over the alphabet
    const auto& p = split.test[i];
    std::printf("  %-15s %s | %s%s\n", p.word.c_str(), s2s::join(p.phonemes).c_str(), s2s::join(predicted[i]).c_str(),
                predicted[i] == p.phonemes ? " (=)" : "");
  }
  const std::string save = a.text("--save", "");
  if (!save.empty()) {
    L::save_model(*m.model, save);
    std::printf("\nmodel saved in %s\n", save.c_str());
  }
  return 0;
}

}  // namespace tnn
