#pragma once
/// Text data: Keras' TextVectorization on std::string (tensors cannot hold text), and readers for text datasets
/// (one labelled example per line, or one folder per class as keras.utils.text_dataset_from_directory).
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lighter/data/csv.h"

namespace lighter::data {

/// Options of TextVectorizer, with Keras' names and defaults (`TextVectorizerOptions().max_tokens(20000)`).
struct TextVectorizerOptions {
  TextVectorizerOptions() = default;
  /// Size of the vocabulary including the padding token "" and the OOV token "[UNK]" (so at most
  /// max_tokens - 2 learned tokens); unset: no limit. Must be at least 3.
  TORCH_ARG(std::optional<int64_t>, max_tokens);
  /// "lower_and_strip_punctuation" (default), "lower", "strip_punctuation", or unset (nullopt: text as is).
  TORCH_ARG(std::optional<std::string>, standardize) = std::string("lower_and_strip_punctuation");
  /// "whitespace" (default: runs of ASCII whitespace separate tokens), "character" (one token per Unicode
  /// code point, spaces included), or unset (nullopt: the whole standardized text is one token).
  TORCH_ARG(std::optional<std::string>, split) = std::string("whitespace");
  /// Only "int" (token ids) is supported.
  TORCH_ARG(std::string, output_mode) = "int";
  /// Pads with 0 or truncates (keeping the first tokens) to this length; unset: the longest text of each
  /// encode() call (at least 1, so a batch of empty texts still has one padding column; Keras gives width 0).
  TORCH_ARG(std::optional<int64_t>, output_sequence_length);
  /// A fixed vocabulary (learned tokens in id order, optionally preceded by "" and "[UNK]"); empty: adapt() builds it.
  TORCH_ARG(std::vector<std::string>, vocabulary);
};

/// Turns texts into int64 token ids, as Keras' TextVectorization with output_mode "int":
/// id 0 is padding (token ""), id 1 is out-of-vocabulary (token "[UNK]"), learned tokens follow.
/// The mask convention of Lighter's sequence data: `ids != 0` marks real tokens (see padding_mask).
///
/// Text is UTF-8. Standardization lowercases ASCII, Latin-1 (À-Þ), Latin Extended-A (Ā-ž), basic Greek and
/// basic Cyrillic letters (Keras lowercases ASCII only); other scripts and special casings (ß, Turkish İ) are left
/// as they are. Punctuation stripping removes ASCII punctuation only, as Keras' default regex does (so ¿ ¡ « »
/// stay). Bytes that are not valid UTF-8 are kept, each as one character.
///
///     TextVectorizer v(TextVectorizerOptions().max_tokens(1000).output_sequence_length(20));
///     v.adapt(train_texts);                 // vocabulary by frequency
///     torch::Tensor ids = v.encode(texts);  // int64 (N, 20)
class TextVectorizer {
 public:
  /// Checks the options (ConfigError naming the option); a given vocabulary is set at once.
  explicit TextVectorizer(TextVectorizerOptions options = {});

  /// Builds the vocabulary from `texts`: tokens by decreasing count, ties broken by decreasing byte order of the
  /// token (Keras sorts with numpy's lexsort on (token, count) and reverses), cut to max_tokens - 2.
  void adapt(const std::vector<std::string>& texts);
  /// Sets the vocabulary (see TextVectorizerOptions::vocabulary). Repeated tokens, "" or "[UNK]" among the learned
  /// tokens, or more than max_tokens entries are ConfigErrors.
  void set_vocabulary(const std::vector<std::string>& vocabulary);
  /// The vocabulary in id order, starting with "" and "[UNK]"; just those two before adapt().
  std::vector<std::string> get_vocabulary() const { return vocabulary_; }
  int64_t vocabulary_size() const { return static_cast<int64_t>(vocabulary_.size()); }
  /// Whether a vocabulary was given or adapted.
  bool has_vocabulary() const { return has_vocabulary_; }

  /// The text after standardization.
  std::string standardize(const std::string& text) const;
  /// Standardization then splitting.
  std::vector<std::string> tokenize(const std::string& text) const;
  /// The id of one (standardized) token: 1 when out of the vocabulary, 0 for "".
  int64_t token_id(const std::string& token) const;
  /// int64 (N, T) token ids, 0-padded at the end or truncated (see output_sequence_length).
  /// Without a vocabulary this is an Error (call adapt() or give one).
  torch::Tensor encode(const std::vector<std::string>& texts) const;

  /// Keras' layer config (`max_tokens`, `standardize`, `split`, `ngrams`, `output_mode`, `output_sequence_length`,
  /// `vocabulary`, ...), holding the whole vocabulary so it restores the same encodings.
  nlohmann::json get_config() const;
  /// {"class_name": "TextVectorization", "config": get_config()}: what `lighter train` saves with a model.
  nlohmann::json to_json() const;
  /// Reads a config (strict: unknown keys and bad values are ConfigErrors naming `path`). Keras' extra keys
  /// (name, trainable, dtype, vocabulary_size) are tolerated; pad_to_max_tokens, sparse, ragged must be false,
  /// ngrams and idf_weights null, encoding "utf-8".
  static TextVectorizer from_config(const nlohmann::json& config, const std::string& path = "");
  /// Reads to_json()'s form, or a bare config.
  static TextVectorizer from_json(const nlohmann::json& spec, const std::string& path = "");

  const TextVectorizerOptions& options() const { return options_; }

  static constexpr const char* kPaddingToken = "";
  static constexpr const char* kOovToken = "[UNK]";

 private:
  TextVectorizerOptions options_;
  std::vector<std::string> vocabulary_;
  std::unordered_map<std::string, int64_t> index_;
  bool has_vocabulary_ = false;
};

/// The mask of token ids: true where a real token is (id != 0).
inline torch::Tensor padding_mask(const torch::Tensor& ids) { return ids.ne(0); }

/// Lowercases the letters TextVectorizer lowercases (see there) in UTF-8 text.
std::string utf8_lower(const std::string& text);
/// Splits UTF-8 text into code points (each as its bytes); an invalid byte is a character of its own.
std::vector<std::string> utf8_characters(const std::string& text);
/// Whether `text` is valid UTF-8; otherwise `bad_offset` (when given) gets the first bad byte's offset.
bool is_valid_utf8(const std::string& text, size_t* bad_offset = nullptr);

/// Texts with their targets, as read from a text dataset.
struct TextTable {
  std::vector<std::string> texts;
  /// int64 [N] class ids, or float32 [N] values for a numeric (regression) target.
  torch::Tensor y;
  /// Class names indexed by id (empty for a numeric target), as Table::classes.
  std::vector<std::string> classes;
  int64_t size() const { return static_cast<int64_t>(texts.size()); }
};

/// Reads one example per line: `label<separator>text` (split at the first separator; CRLF or LF line ends, blank
/// lines skipped, UTF-8 BOM tolerated; the text must be valid UTF-8). Labels map to ids as read_csv's do: through
/// `classes` when given; else, for classification (TargetKind::Classification, or Auto with a label that is not a
/// number), non-negative integer labels are ids and other labels are names sorted alphabetically; otherwise
/// (Regression, or Auto with numbers only) they are float32 values. Errors are DataErrors naming file and line.
TextTable read_text_lines(const std::string& path, const std::string& label_separator = "\t",
                          const std::vector<std::string>& classes = {}, TargetKind kind = TargetKind::Auto);

/// Reads one example per `.txt` file from one sub-folder per class (keras.utils.text_dataset_from_directory's
/// layout): classes are the sub-folder names sorted (or `classes` when given, which must name every sub-folder
/// holding files), files are taken in sorted order within each class; a file's whole content is its text.
TextTable read_text_folder(const std::string& dir, const std::vector<std::string>& classes = {});

/// Reads one text per line (for predict): every line is one text, including blank ones, except that the newline
/// ending the file starts no further text; CRs before newlines are dropped.
std::vector<std::string> read_text_per_line(const std::string& path);

}  // namespace lighter::data
