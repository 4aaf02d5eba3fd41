#pragma once
// Spelling -> pronunciation with an encoder-decoder, the pieces shared by examples/s2s/main.cpp and its test
// (tests/integration/test_s2s.cpp): the CMU pronouncing dictionary, a deterministic split by word, token ids,
// the Functional model, greedy decoding with the trained layers, edit distances and a nearest-neighbour baseline.
//
// Header-only on purpose: the example is one main.cpp, and the test includes this file to run the same code.
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <lighter/lighter.h>

namespace s2s {

namespace L = lighter;

/// One dictionary entry: a word (letters a-z and apostrophes) and its phonemes (ARPAbet without stress marks).
struct Pair {
  std::string word;
  std::vector<std::string> phonemes;
};

/// The 39 ARPAbet phonemes of CMUdict (stress marks removed).
inline const std::vector<std::string>& arpabet() {
  static const std::vector<std::string> p = {"AA", "AE", "AH", "AO", "AW", "AY", "B",  "CH", "D",  "DH",
                                             "EH", "ER", "EY", "F",  "G",  "HH", "IH", "IY", "JH", "K",
                                             "L",  "M",  "N",  "NG", "OW", "OY", "P",  "R",  "S",  "SH",
                                             "T",  "TH", "UH", "UW", "V",  "W",  "Y",  "Z",  "ZH"};
  return p;
}

/// Reads CMUdict (`word PH O N E S` per line; `word(2)` alternates and `;;;`/`#` comments skipped; stress digits
/// dropped). Keeps words of 1..max_letters characters that are letters a-z or apostrophes with at least one
/// letter; every other entry (abbreviations with dots, hyphens, digits) is left out. Sorted as in the file.
inline std::vector<Pair> load_cmudict(const std::string& path, size_t max_letters = 15) {
  std::ifstream in(path);
  if (!in) throw L::DataError(path, "cannot open (scripts/s2s_datasets.sh fetches data/cmudict.dict)");
  std::vector<Pair> pairs;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#' || line.rfind(";;;", 0) == 0) continue;
    std::istringstream fields(line);
    Pair p;
    fields >> p.word;
    if (p.word.find('(') != std::string::npos) continue;  // an alternate pronunciation
    if (p.word.size() > max_letters) continue;
    bool ok = std::any_of(p.word.begin(), p.word.end(), [](char c) { return c >= 'a' && c <= 'z'; });
    for (char c : p.word) ok = ok && ((c >= 'a' && c <= 'z') || c == '\'');
    if (!ok) continue;
    std::string ph;
    while (fields >> ph) {
      while (!ph.empty() && ph.back() >= '0' && ph.back() <= '9') ph.pop_back();
      if (std::find(arpabet().begin(), arpabet().end(), ph) == arpabet().end())
        throw L::DataError(path, "unknown phoneme '" + ph + "'", static_cast<long>(line_no));
      p.phonemes.push_back(ph);
    }
    if (p.phonemes.empty()) throw L::DataError(path, "no phonemes", static_cast<long>(line_no));
    pairs.push_back(std::move(p));
  }
  if (pairs.empty()) throw L::DataError(path, "no usable entries");
  return pairs;
}

enum class Split { train, validation, test };

/// 64-bit FNV-1a: the same on every platform and compiler, unlike std::hash.
inline uint64_t fnv1a(const std::string& s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

/// Where a word belongs, from a hash of the word alone: 80% train, 10% validation, 10% test. A held-out word is
/// never a training word (each word appears once, alternates being skipped).
inline Split split_of(const std::string& word) {
  uint64_t bucket = fnv1a(word) % 10;
  return bucket < 8 ? Split::train : bucket == 8 ? Split::validation : Split::test;
}

struct Splits {
  std::vector<Pair> train, validation, test;
};

/// Splits by word, then keeps a deterministic subset of each part (the first `n` of a shuffle by a hash of the
/// word and `seed`; 0 keeps them all). The subsets stay sorted as in the dictionary.
inline Splits split_pairs(const std::vector<Pair>& pairs, size_t n_train = 0, size_t n_validation = 0,
                          size_t n_test = 0, uint64_t seed = 0) {
  Splits s;
  for (const auto& p : pairs) {
    auto which = split_of(p.word);
    (which == Split::train ? s.train : which == Split::validation ? s.validation : s.test).push_back(p);
  }
  auto subset = [seed](std::vector<Pair>& v, size_t n) {
    if (n == 0 || n >= v.size()) return;
    std::vector<std::pair<uint64_t, size_t>> keys;
    for (size_t i = 0; i < v.size(); ++i) keys.emplace_back(fnv1a(std::to_string(seed) + "/" + v[i].word), i);
    std::sort(keys.begin(), keys.end());
    std::vector<size_t> keep;
    for (size_t i = 0; i < n; ++i) keep.push_back(keys[i].second);
    std::sort(keep.begin(), keep.end());
    std::vector<Pair> out;
    for (size_t i : keep) out.push_back(std::move(v[i]));
    v = std::move(out);
  };
  subset(s.train, n_train);
  subset(s.validation, n_validation);
  subset(s.test, n_test);
  return s;
}

// ---- token ids ------------------------------------------------------------------------------------------------

/// Source ids: 0 padding, 1 apostrophe, 2..27 a..z.
constexpr int64_t kLetterVocab = 28;
/// Target ids: 0 padding, 1 start (the decoder's first input), 2 end (the last output), 3.. the 39 phonemes.
constexpr int64_t kPad = 0, kStart = 1, kEnd = 2, kFirstPhoneme = 3;
inline int64_t phoneme_vocab() { return kFirstPhoneme + static_cast<int64_t>(arpabet().size()); }

inline int64_t letter_id(char c) { return c == '\'' ? 1 : 2 + (c - 'a'); }
inline int64_t phoneme_id(const std::string& p) {
  return kFirstPhoneme + (std::find(arpabet().begin(), arpabet().end(), p) - arpabet().begin());
}
/// A phoneme's name; the special ids (which a model could still predict) come out as "<pad>", "<s>", "</s>".
inline std::string phoneme_name(int64_t id) {
  if (id >= kFirstPhoneme && id < phoneme_vocab()) return arpabet()[id - kFirstPhoneme];
  return id == kStart ? "<s>" : id == kEnd ? "</s>" : "<pad>";
}

/// A set of pairs as tensors, right-padded with 0: `source` (N, S) letters; `decoder_input` (N, T) the start token
/// then the phonemes (teacher forcing); `decoder_target` (N, T) the phonemes then the end token. Both target
/// tensors have n+1 valid steps for n phonemes, so the decoder input's mask is the target's.
struct Encoded {
  torch::Tensor source, decoder_input, decoder_target;
};

inline torch::Tensor encode_words(const std::vector<std::string>& words) {
  size_t s = 1;
  for (const auto& w : words) s = std::max(s, w.size());
  auto src = torch::zeros({static_cast<int64_t>(words.size()), static_cast<int64_t>(s)}, torch::kLong);
  auto a = src.accessor<int64_t, 2>();
  for (size_t i = 0; i < words.size(); ++i)
    for (size_t j = 0; j < words[i].size(); ++j) a[i][j] = letter_id(words[i][j]);
  return src;
}

inline Encoded encode(const std::vector<Pair>& pairs) {
  std::vector<std::string> words;
  size_t t = 1;
  for (const auto& p : pairs) {
    words.push_back(p.word);
    t = std::max(t, p.phonemes.size() + 1);
  }
  Encoded e;
  e.source = encode_words(words);
  int64_t n = static_cast<int64_t>(pairs.size());
  e.decoder_input = torch::zeros({n, static_cast<int64_t>(t)}, torch::kLong);
  e.decoder_target = torch::zeros({n, static_cast<int64_t>(t)}, torch::kLong);
  auto in = e.decoder_input.accessor<int64_t, 2>();
  auto out = e.decoder_target.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& ph = pairs[i].phonemes;
    in[i][0] = kStart;
    for (size_t j = 0; j < ph.size(); ++j) {
      in[i][j + 1] = phoneme_id(ph[j]);
      out[i][j] = phoneme_id(ph[j]);
    }
    out[i][ph.size()] = kEnd;
  }
  return e;
}

// ---- the model ------------------------------------------------------------------------------------------------

struct ModelOptions {
  TORCH_ARG(std::string, cell) = "lstm";  // "lstm" or "gru"
  TORCH_ARG(int64_t, embedding_dim) = 64;
  TORCH_ARG(int64_t, units) = 128;
};

/// The trained model and its layers, as step-by-step decoding needs them.
struct Seq2Seq {
  L::Functional model{nullptr};
  std::shared_ptr<L::layers::EmbeddingImpl> source_embedding, target_embedding;
  std::shared_ptr<L::layers::RecurrentImpl> encoder, decoder;
  std::shared_ptr<L::layers::DenseImpl> head;
};

inline L::layers::LayerRef recurrent(const ModelOptions& o, L::RecurrentOptions r) {
  if (o.cell() == "lstm") return L::LSTM(r);
  if (o.cell() == "gru") return L::GRU(r);
  throw L::ConfigError("cell", "expected \"lstm\" or \"gru\", got \"" + o.cell() + "\"");
}

/// Encoder: Embedding(mask_zero) -> LSTM/GRU(return_state). Decoder: Embedding(mask_zero) of the shifted phonemes ->
/// LSTM/GRU(return_sequences, initial_state = the encoder's final states) -> Dense softmax over the target ids.
/// The decoder also returns its states (unused in the graph) so that greedy decoding can carry them step by step.
inline Seq2Seq build_model(const ModelOptions& o) {
  auto source = L::keras_input({-1}, "letters", "int64");
  auto target = L::keras_input({-1}, "phonemes_in", "int64");
  auto src_emb = L::call(
      L::Embedding(L::EmbeddingOptions(kLetterVocab, o.embedding_dim()).mask_zero(true).name("letter_embedding")),
      source);
  auto enc = L::call_all(recurrent(o, L::RecurrentOptions(o.units()).return_state(true).name("encoder")), src_emb);
  std::vector<L::KerasTensor> states(enc.begin() + 1, enc.end());
  auto tgt_emb = L::call(
      L::Embedding(L::EmbeddingOptions(phoneme_vocab(), o.embedding_dim()).mask_zero(true).name("phoneme_embedding")),
      target);
  auto dec = L::call_all(
      recurrent(o, L::RecurrentOptions(o.units()).return_sequences(true).return_state(true).name("decoder")), tgt_emb,
      states);
  auto out = L::call(L::Dense(L::DenseOptions(phoneme_vocab()).activation("softmax").name("phoneme")), dec.front());
  Seq2Seq m;
  m.model = L::Functional({source, target}, {out}, "speller");
  m.source_embedding = std::dynamic_pointer_cast<L::layers::EmbeddingImpl>(m.model->get_layer("letter_embedding"));
  m.target_embedding = std::dynamic_pointer_cast<L::layers::EmbeddingImpl>(m.model->get_layer("phoneme_embedding"));
  m.encoder = std::dynamic_pointer_cast<L::layers::RecurrentImpl>(m.model->get_layer("encoder"));
  m.decoder = std::dynamic_pointer_cast<L::layers::RecurrentImpl>(m.model->get_layer("decoder"));
  m.head = std::dynamic_pointer_cast<L::layers::DenseImpl>(m.model->get_layer("phoneme"));
  if (!m.source_embedding || !m.target_embedding || !m.encoder || !m.decoder || !m.head)
    throw L::Error("build_model: a layer has an unexpected type");
  return m;
}

/// The greedy choice at each step from the head's logits or probabilities (..., V): the most likely phoneme or end
/// token. Padding and the start token are never targets, so they are left out of the choice.
inline torch::Tensor next_tokens(torch::Tensor scores) {
  scores = scores.clone();
  scores.slice(-1, kPad, kEnd).fill_(-std::numeric_limits<float>::infinity());
  return scores.argmax(-1);
}

/// Greedy decoding of a batch of words (`source` as from encode_words): the encoder runs once over the letters, then
/// the decoder runs one step at a time from the encoder's states, fed its own previous argmax (the start token
/// first) and carrying its states, until every word has produced the end token or `max_steps` tokens.
/// Returns (N, steps) token ids: a word's tokens up to and including its end token, then padding (0).
inline torch::Tensor greedy_decode_ids(Seq2Seq& m, const torch::Tensor& source, int64_t max_steps) {
  torch::NoGradGuard no_grad;
  m.model->eval();
  auto mask = source != kPad;
  auto enc = m.encoder->forward_all(m.source_embedding->forward(source), mask);
  std::vector<torch::Tensor> states(enc.begin() + 1, enc.end());
  int64_t n = source.size(0);
  auto token = torch::full({n, 1}, kStart, torch::kLong);
  auto done = torch::zeros({n}, torch::kBool);
  std::vector<torch::Tensor> steps;
  for (int64_t t = 0; t < max_steps; ++t) {
    auto out = m.decoder->forward_all(m.target_embedding->forward(token), {}, states);
    states.assign(out.begin() + 1, out.end());
    token = next_tokens(m.head->forward_pre_activation(out.front()));  // (N, 1)
    steps.push_back(token.squeeze(1).masked_fill(done, kPad));
    done = done | (token.squeeze(1) == kEnd);
    if (done.all().item<bool>()) break;
  }
  return torch::stack(steps, 1);
}

/// The phonemes of decoded ids (up to the end token; a special id predicted in between is kept by its name and
/// counts as an error).
inline std::vector<std::string> to_phonemes(const torch::Tensor& ids_row) {
  std::vector<std::string> out;
  auto ids = ids_row.contiguous();
  const int64_t* p = ids.data_ptr<int64_t>();
  for (int64_t i = 0; i < ids.numel(); ++i) {
    if (p[i] == kEnd || p[i] == kPad) break;
    out.push_back(phoneme_name(p[i]));
  }
  return out;
}

/// Greedy pronunciations of `words`, decoded in batches.
inline std::vector<std::vector<std::string>> greedy_decode(Seq2Seq& m, const std::vector<std::string>& words,
                                                           int64_t max_steps = 24, size_t batch = 512) {
  std::vector<std::vector<std::string>> out;
  for (size_t start = 0; start < words.size(); start += batch) {
    std::vector<std::string> chunk(words.begin() + start, words.begin() + std::min(words.size(), start + batch));
    auto ids = greedy_decode_ids(m, encode_words(chunk), max_steps);
    for (int64_t i = 0; i < ids.size(0); ++i) out.push_back(to_phonemes(ids[i]));
  }
  return out;
}

// ---- scores and the baseline ----------------------------------------------------------------------------------

/// Levenshtein distance (insertions, deletions, substitutions each cost 1). With `bound`, returns `bound` as soon as
/// the distance is known to be at least that.
template <typename Seq>
size_t edit_distance(const Seq& a, const Seq& b, size_t bound = SIZE_MAX) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    size_t row_min = cur[0];
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      row_min = std::min(row_min, cur[j]);
    }
    if (row_min >= bound) return bound;
    std::swap(prev, cur);
  }
  return std::min(prev[b.size()], bound);
}

/// Word accuracy (the whole phoneme sequence right) and phoneme error rate (the summed edit distances over the
/// summed reference lengths).
struct Scores {
  double word_accuracy = 0, phoneme_error_rate = 0;
  size_t words = 0;
};

inline Scores score(const std::vector<Pair>& reference, const std::vector<std::vector<std::string>>& predicted) {
  if (reference.size() != predicted.size()) throw L::Error("score: sizes differ");
  size_t right = 0, errors = 0, length = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    right += reference[i].phonemes == predicted[i];
    errors += edit_distance(reference[i].phonemes, predicted[i]);
    length += reference[i].phonemes.size();
  }
  Scores s;
  s.words = reference.size();
  s.word_accuracy = reference.empty() ? 0 : static_cast<double>(right) / reference.size();
  s.phoneme_error_rate = length == 0 ? 0 : static_cast<double>(errors) / length;
  return s;
}

/// The baseline: a held-out word is pronounced as the training word nearest in spelling (smallest letter edit
/// distance; among equally near words, the one closest in length (the shorter first), then the first in dictionary
/// order). A dictionary lookup that tolerates misspellings, with no letter-to-sound rules learnt. Words are looked
/// up in parallel on ATen's threads.
class NearestWordBaseline {
 public:
  explicit NearestWordBaseline(std::vector<Pair> train) : train_(std::move(train)) {
    for (size_t i = 0; i < train_.size(); ++i) by_length_[train_[i].word.size()].push_back(i);
  }

  /// The index of the nearest training word.
  size_t nearest(const std::string& word) const {
    size_t best = SIZE_MAX, best_index = 0;
    // Words whose length differs by d are at distance >= d: visit lengths by growing difference, stop when d
    // cannot beat the best.
    for (size_t d = 0; d < best && d <= 64; ++d) {
      for (int sign : {-1, 1}) {
        if (d == 0 && sign == 1) continue;
        int64_t len = static_cast<int64_t>(word.size()) + sign * static_cast<int64_t>(d);
        auto it = by_length_.find(len < 0 ? SIZE_MAX : static_cast<size_t>(len));
        if (it == by_length_.end()) continue;
        for (size_t i : it->second) {
          size_t dist = edit_distance(word, train_[i].word, best == SIZE_MAX ? SIZE_MAX : best + 1);
          if (dist < best) {  // strictly: the first found wins a tie
            best = dist;
            best_index = i;
          }
        }
      }
    }
    return best_index;
  }

  std::vector<std::string> predict(const std::string& word) const { return train_[nearest(word)].phonemes; }

  std::vector<std::vector<std::string>> predict(const std::vector<std::string>& words) const {
    std::vector<size_t> index(words.size());
    at::parallel_for(0, static_cast<int64_t>(words.size()), 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) index[i] = nearest(words[i]);
    });
    std::vector<std::vector<std::string>> out;
    for (size_t i : index) out.push_back(train_[i].phonemes);
    return out;
  }

 private:
  std::vector<Pair> train_;
  std::map<size_t, std::vector<size_t>> by_length_;
};

inline std::vector<std::string> words_of(const std::vector<Pair>& pairs) {
  std::vector<std::string> w;
  for (const auto& p : pairs) w.push_back(p.word);
  return w;
}

inline std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

}  // namespace s2s
