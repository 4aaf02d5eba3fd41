#include "lighter/data/text.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "lighter/core/error.h"
#include "lighter/core/json.h"

namespace lighter::data {

namespace fs = std::filesystem;

namespace {

// Length of the UTF-8 sequence starting at text[i], or 0 when it is not a valid one.
size_t utf8_length(const std::string& text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char c = byte(i);
  size_t n;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not valid UTF-8.
  if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
  return n;
}

uint32_t decode(const std::string& text, size_t i, size_t n) {
  if (n == 1) return static_cast<unsigned char>(text[i]);
  uint32_t cp = static_cast<unsigned char>(text[i]) & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
  return cp;
}

void encode_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Simple lowercase mapping of the blocks TextVectorizer documents; other code points map to themselves.
uint32_t lower(uint32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 32;
  if (cp < 0xC0) return cp;
  if (cp <= 0xDE) return cp == 0xD7 ? cp : cp + 32;  // À-Þ except ×
  if (cp >= 0x100 && cp <= 0x17F) {                   // Latin Extended-A: pairs upper/lower
    if (cp == 0x130) return 'i';                      // İ (its full lowercase is i + a combining dot)
    if (cp == 0x178) return 0xFF;                     // Ÿ -> ÿ
    bool even_pairs = (cp <= 0x137) || (cp >= 0x14A && cp <= 0x177);
    bool odd_pairs = (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E);
    if (even_pairs && cp % 2 == 0) return cp + 1;
    if (odd_pairs && cp % 2 == 1) return cp + 1;
    return cp;
  }
  if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) return cp + 32;  // Greek capitals
  if (cp >= 0x410 && cp <= 0x42F) return cp + 32;                 // Cyrillic А-Я
  if (cp >= 0x400 && cp <= 0x40F) return cp + 80;                 // Cyrillic Ѐ-Џ
  return cp;
}

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

bool is_ascii_punct(uint32_t cp) {
  return (cp >= '!' && cp <= '/') || (cp >= ':' && cp <= '@') || (cp >= '[' && cp <= '`') || (cp >= '{' && cp <= '~');
}

// Applies `fn(code_point, bytes)` to each character; invalid bytes come one at a time with code point -1.
template <class F>
void for_each_character(const std::string& text, F&& fn) {
  size_t i = 0;
  while (i < text.size()) {
    size_t n = utf8_length(text, i);
    if (n == 0) {
      fn(static_cast<uint32_t>(-1), text.substr(i, 1));
      ++i;
    } else {
      fn(decode(text, i, n), text.substr(i, n));
      i += n;
    }
  }
}

const std::vector<std::string> kStandardize = {"lower_and_strip_punctuation", "lower", "strip_punctuation"};
const std::vector<std::string> kSplit = {"whitespace", "character"};

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

std::string utf8_lower(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for_each_character(text, [&](uint32_t cp, const std::string& bytes) {
    if (cp == static_cast<uint32_t>(-1)) {
      out += bytes;
    } else {
      encode_utf8(lower(cp), out);
    }
  });
  return out;
}

std::vector<std::string> utf8_characters(const std::string& text) {
  std::vector<std::string> out;
  for_each_character(text, [&](uint32_t, const std::string& bytes) { out.push_back(bytes); });
  return out;
}

bool is_valid_utf8(const std::string& text, size_t* bad_offset) {
  size_t i = 0;
  while (i < text.size()) {
    size_t n = utf8_length(text, i);
    if (n == 0) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += n;
  }
  return true;
}

// ---- TextVectorizer ------------------------------------------------------------------------------------------

TextVectorizer::TextVectorizer(TextVectorizerOptions options) : options_(std::move(options)) {
  if (options_.max_tokens() && *options_.max_tokens() < 3)
    throw ConfigError("max_tokens", "must be at least 3 (padding, OOV and one token) or null, got " +
                                        std::to_string(*options_.max_tokens()));
  if (options_.standardize() &&
      std::find(kStandardize.begin(), kStandardize.end(), *options_.standardize()) == kStandardize.end())
    throw ConfigError("standardize", "expected lower_and_strip_punctuation, lower, strip_punctuation or null, got " +
                                         in_quotes(*options_.standardize()));
  if (options_.split() && std::find(kSplit.begin(), kSplit.end(), *options_.split()) == kSplit.end())
    throw ConfigError("split", "expected whitespace, character or null, got " + in_quotes(*options_.split()));
  if (options_.output_mode() != "int")
    throw ConfigError("output_mode", "only \"int\" is supported, got " + in_quotes(options_.output_mode()));
  if (options_.output_sequence_length() && *options_.output_sequence_length() < 1)
    throw ConfigError("output_sequence_length", "must be positive or null, got " +
                                                    std::to_string(*options_.output_sequence_length()));
  if (!options_.vocabulary().empty()) {
    set_vocabulary(options_.vocabulary());
  } else {
    vocabulary_ = {kPaddingToken, kOovToken};
  }
}

void TextVectorizer::set_vocabulary(const std::vector<std::string>& vocabulary) {
  size_t start = 0;
  if (vocabulary.size() >= 2 && vocabulary[0] == kPaddingToken && vocabulary[1] == kOovToken) start = 2;
  std::vector<std::string> full = {kPaddingToken, kOovToken};
  std::unordered_map<std::string, int64_t> index;
  for (size_t i = start; i < vocabulary.size(); ++i) {
    const std::string& token = vocabulary[i];
    if (token == kPaddingToken || token == kOovToken)
      throw ConfigError(join_path("vocabulary", i), "the reserved token " + in_quotes(token) +
                                                        " may only come first (\"\" then \"[UNK]\")");
    if (!index.emplace(token, static_cast<int64_t>(full.size())).second)
      throw ConfigError(join_path("vocabulary", i), "the token " + in_quotes(token) + " is repeated");
    full.push_back(token);
  }
  if (options_.max_tokens() && static_cast<int64_t>(full.size()) > *options_.max_tokens())
    throw ConfigError("vocabulary", "holds " + std::to_string(full.size()) +
                                        " tokens with padding and OOV, more than max_tokens " +
                                        std::to_string(*options_.max_tokens()));
  vocabulary_ = std::move(full);
  index_ = std::move(index);
  has_vocabulary_ = true;
}

void TextVectorizer::adapt(const std::vector<std::string>& texts) {
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& text : texts)
    for (auto& token : tokenize(text)) ++counts[std::move(token)];
  counts.erase(kPaddingToken);
  counts.erase(kOovToken);
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    if (a.second != b.second) return a.second > b.second;
    return a.first > b.first;
  });
  if (options_.max_tokens() && static_cast<int64_t>(sorted.size()) > *options_.max_tokens() - 2)
    sorted.resize(static_cast<size_t>(*options_.max_tokens() - 2));
  std::vector<std::string> vocabulary;
  vocabulary.reserve(sorted.size());
  for (auto& kv : sorted) vocabulary.push_back(std::move(kv.first));
  set_vocabulary(vocabulary);
}

std::string TextVectorizer::standardize(const std::string& text) const {
  if (!options_.standardize()) return text;
  const std::string& mode = *options_.standardize();
  bool lowercase = mode != "strip_punctuation", strip = mode != "lower";
  std::string out;
  out.reserve(text.size());
  for_each_character(text, [&](uint32_t cp, const std::string& bytes) {
    if (cp == static_cast<uint32_t>(-1)) {
      out += bytes;
    } else if (!(strip && is_ascii_punct(cp))) {
      encode_utf8(lowercase ? lower(cp) : cp, out);
    }
  });
  return out;
}

std::vector<std::string> TextVectorizer::tokenize(const std::string& text) const {
  std::string s = standardize(text);
  std::vector<std::string> tokens;
  if (!options_.split()) {
    tokens.push_back(std::move(s));
  } else if (*options_.split() == "character") {
    tokens = utf8_characters(s);
  } else {
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && is_ascii_space(s[i])) ++i;
      size_t begin = i;
      while (i < s.size() && !is_ascii_space(s[i])) ++i;
      if (i > begin) tokens.push_back(s.substr(begin, i - begin));
    }
  }
  return tokens;
}

int64_t TextVectorizer::token_id(const std::string& token) const {
  if (token.empty()) return 0;
  auto it = index_.find(token);
  return it == index_.end() ? 1 : it->second;
}

torch::Tensor TextVectorizer::encode(const std::vector<std::string>& texts) const {
  if (!has_vocabulary_)
    throw Error("TextVectorizer has no vocabulary: call adapt() on training texts or give a vocabulary");
  std::vector<std::vector<int64_t>> ids(texts.size());
  size_t longest = 1;
  for (size_t i = 0; i < texts.size(); ++i) {
    for (const auto& token : tokenize(texts[i])) ids[i].push_back(token_id(token));
    longest = std::max(longest, ids[i].size());
  }
  int64_t width = options_.output_sequence_length() ? *options_.output_sequence_length()
                                                    : static_cast<int64_t>(longest);
  auto out = torch::zeros({static_cast<int64_t>(texts.size()), width}, torch::kLong);
  int64_t* p = out.data_ptr<int64_t>();
  for (size_t i = 0; i < ids.size(); ++i) {
    size_t n = std::min(ids[i].size(), static_cast<size_t>(width));
    std::copy(ids[i].begin(), ids[i].begin() + static_cast<std::ptrdiff_t>(n), p + i * width);
  }
  return out;
}

nlohmann::json TextVectorizer::get_config() const {
  json c = json::object();
  c["max_tokens"] = options_.max_tokens() ? json(*options_.max_tokens()) : json(nullptr);
  c["standardize"] = options_.standardize() ? json(*options_.standardize()) : json(nullptr);
  c["split"] = options_.split() ? json(*options_.split()) : json(nullptr);
  c["ngrams"] = nullptr;
  c["output_mode"] = options_.output_mode();
  c["output_sequence_length"] =
      options_.output_sequence_length() ? json(*options_.output_sequence_length()) : json(nullptr);
  c["encoding"] = "utf-8";
  c["vocabulary"] = has_vocabulary_ ? json(vocabulary_) : json(nullptr);
  return c;
}

nlohmann::json TextVectorizer::to_json() const {
  return {{"class_name", "TextVectorization"}, {"config", get_config()}};
}

TextVectorizer TextVectorizer::from_config(const nlohmann::json& config, const std::string& path) {
  if (!config.is_object()) throw ConfigError(path, "expected an object of TextVectorization options, got " + describe(config));
  ConfigReader r(config, path);
  TextVectorizerOptions o;
  const json& max_tokens = r.raw_or_null("max_tokens");
  if (!max_tokens.is_null()) {
    if (!max_tokens.is_number_integer() || max_tokens.get<int64_t>() < 3)
      throw ConfigError(r.path_of("max_tokens"),
                        "expected an integer of at least 3 (padding, OOV and one token) or null, got " +
                            describe(max_tokens));
    o.max_tokens(max_tokens.get<int64_t>());
  }
  for (const char* key : {"standardize", "split"}) {
    const json& v = r.raw_or_null(key);
    const auto& known = std::string(key) == "split" ? kSplit : kStandardize;
    std::optional<std::string> value;
    if (!v.is_null()) {
      if (!v.is_string() || std::find(known.begin(), known.end(), v.get<std::string>()) == known.end()) {
        std::string names;
        for (const auto& k : known) names += k + ", ";
        throw ConfigError(r.path_of(key), "expected one of " + names + "or null, got " + describe(v));
      }
      value = v.get<std::string>();
    }
    if (!config.contains(key)) continue;  // absent: Keras' default; null: none
    if (std::string(key) == "split") {
      o.split(value);
    } else {
      o.standardize(value);
    }
  }
  r.require_null("ngrams");
  r.require_null("idf_weights");
  o.output_mode(r.choice("output_mode", "int", {"int"}));
  const json& length = r.raw_or_null("output_sequence_length");
  if (!length.is_null()) {
    if (!length.is_number_integer() || length.get<int64_t>() < 1)
      throw ConfigError(r.path_of("output_sequence_length"), "expected a positive integer or null, got " + describe(length));
    o.output_sequence_length(length.get<int64_t>());
  }
  for (const char* key : {"pad_to_max_tokens", "sparse", "ragged"})
    if (r.get<bool>(key, false)) throw ConfigError(r.path_of(key), "only false is supported");
  r.choice("encoding", "utf-8", {"utf-8"});
  r.ignore({"name", "trainable", "dtype", "vocabulary_size"});
  const json& vocabulary = r.raw_or_null("vocabulary");
  if (!vocabulary.is_null()) {
    if (!vocabulary.is_array()) throw ConfigError(r.path_of("vocabulary"), "expected a list of tokens, got " + describe(vocabulary));
    std::vector<std::string> tokens;
    for (size_t i = 0; i < vocabulary.size(); ++i) {
      if (!vocabulary[i].is_string())
        throw ConfigError(join_path(r.path_of("vocabulary"), i), "expected a string, got " + describe(vocabulary[i]));
      tokens.push_back(vocabulary[i].get<std::string>());
    }
    o.vocabulary(tokens);
  }
  r.finish();
  try {
    return TextVectorizer(o);
  } catch (const ConfigError& e) {
    throw ConfigError(join_path(path, e.path()), e.message());
  }
}

TextVectorizer TextVectorizer::from_json(const nlohmann::json& spec, const std::string& path) {
  if (spec.is_object() && spec.contains("class_name")) {
    ClassSpec s = read_class_spec(spec, path, "text vectorizer");
    if (s.class_name != "TextVectorization")
      throw ConfigError(s.name_path, "expected TextVectorization, got " + in_quotes(s.class_name));
    return from_config(s.config, s.config_path);
  }
  return from_config(spec, path);
}

// ---- reading text datasets ---------------------------------------------------------------------------------

namespace {

bool parse_number(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(*out);
}

// Maps labels to targets as read_csv does; `lines` gives each label's line for errors.
void set_targets(TextTable& t, const std::vector<std::string>& labels, const std::vector<long>& lines,
                 const std::vector<std::string>& classes, TargetKind kind, const std::string& source) {
  const int64_t n = static_cast<int64_t>(labels.size());
  std::vector<int64_t> ids(labels.size());
  if (!classes.empty()) {
    std::unordered_map<std::string, int64_t> index;
    for (size_t i = 0; i < classes.size(); ++i) index.emplace(classes[i], static_cast<int64_t>(i));
    std::string known;
    for (const auto& c : classes) known += (known.empty() ? "" : ", ") + c;
    for (int64_t i = 0; i < n; ++i) {
      auto it = index.find(labels[i]);
      if (it == index.end())
        throw DataError(source, "label " + in_quotes(labels[i]) + " is not one of the known classes (" + known + ")",
                        lines[i]);
      ids[i] = it->second;
    }
    t.classes = classes;
    t.y = torch::tensor(ids, torch::kInt64);
    return;
  }
  std::vector<double> numbers(labels.size());
  int64_t first_text = -1;
  bool integers = true;
  double max_value = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!parse_number(labels[i], &numbers[i])) {
      if (first_text < 0) first_text = i;
      integers = false;
      continue;
    }
    if (!(numbers[i] >= 0 && numbers[i] == std::floor(numbers[i]) && numbers[i] < (1 << 20))) integers = false;
    max_value = std::max(max_value, numbers[i]);
  }
  if (kind == TargetKind::Regression || (kind == TargetKind::Auto && first_text < 0)) {
    if (first_text >= 0)
      throw DataError(source, "expected a number as label, got " + in_quotes(labels[first_text]), lines[first_text]);
    t.y = torch::tensor(std::vector<float>(numbers.begin(), numbers.end()), torch::kFloat32);
    return;
  }
  if (integers) {
    for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int64_t>(numbers[i]);
    for (int64_t k = 0; k <= static_cast<int64_t>(max_value) && n > 0; ++k) t.classes.push_back(std::to_string(k));
  } else {
    std::set<std::string> distinct(labels.begin(), labels.end());
    t.classes.assign(distinct.begin(), distinct.end());
    std::unordered_map<std::string, int64_t> index;
    for (size_t i = 0; i < t.classes.size(); ++i) index.emplace(t.classes[i], static_cast<int64_t>(i));
    for (int64_t i = 0; i < n; ++i) ids[i] = index.at(labels[i]);
  }
  t.y = torch::tensor(ids, torch::kInt64);
}

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path, fs::exists(path) ? "cannot read the file" : "no such file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The file's lines without line ends (a BOM dropped); every line is checked to be UTF-8.
std::vector<std::string> file_lines(const std::string& path) {
  std::string text = read_file_bytes(path);
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
  std::vector<std::string> lines;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(begin, end - begin);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t bad = 0;
    if (!is_valid_utf8(line, &bad))
      throw DataError(path, "not valid UTF-8 (the only encoding supported)", static_cast<long>(lines.size() + 1),
                      static_cast<long>(bad + 1));
    lines.push_back(std::move(line));
    begin = end + 1;
  }
  return lines;
}

}  // namespace

TextTable read_text_lines(const std::string& path, const std::string& label_separator,
                          const std::vector<std::string>& classes, TargetKind kind) {
  if (label_separator.empty()) throw DataError(path, "the label separator must not be empty");
  TextTable t;
  std::vector<std::string> labels;
  std::vector<long> line_numbers;
  auto lines = file_lines(path);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    size_t sep = line.find(label_separator);
    if (sep == std::string::npos)
      throw DataError(path, "expected LABEL, the separator " + nlohmann::json(label_separator).dump() + ", then the text",
                      static_cast<long>(i + 1));
    std::string label = line.substr(0, sep);
    while (!label.empty() && label.back() == ' ') label.pop_back();
    while (!label.empty() && label.front() == ' ') label.erase(0, 1);
    if (label.empty()) throw DataError(path, "missing label", static_cast<long>(i + 1));
    labels.push_back(std::move(label));
    line_numbers.push_back(static_cast<long>(i + 1));
    t.texts.push_back(line.substr(sep + label_separator.size()));
  }
  if (t.texts.empty()) throw DataError(path, "holds no examples");
  set_targets(t, labels, line_numbers, classes, kind, path);
  return t;
}

TextTable read_text_folder(const std::string& dir, const std::vector<std::string>& classes) {
  if (!fs::is_directory(dir)) throw DataError(dir, fs::exists(dir) ? "is not a folder" : "no such folder");
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (entry.is_directory() && !name.empty() && name[0] != '.') names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  if (names.empty()) throw DataError(dir, "holds no class sub-folders (one folder per class, one .txt file per example)");
  TextTable t;
  t.classes = classes.empty() ? names : classes;
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < t.classes.size(); ++i) index.emplace(t.classes[i], static_cast<int64_t>(i));
  std::vector<int64_t> ids;
  for (const auto& name : names) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(fs::path(dir) / name)) {
      std::string file = entry.path().filename().string();
      if (entry.is_regular_file() && file[0] != '.' && entry.path().extension() == ".txt") files.push_back(entry.path());
    }
    if (files.empty()) continue;
    auto it = index.find(name);
    if (it == index.end())
      throw DataError((fs::path(dir) / name).string(), "this class folder is not one of the known classes");
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      std::string text = read_file_bytes(file.string());
      if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
      size_t bad = 0;
      if (!is_valid_utf8(text, &bad))
        throw DataError(file.string(), "not valid UTF-8 (the only encoding supported) at byte " + std::to_string(bad));
      t.texts.push_back(std::move(text));
      ids.push_back(it->second);
    }
  }
  if (t.texts.empty()) throw DataError(dir, "holds no .txt files in its class sub-folders");
  t.y = torch::tensor(ids, torch::kInt64);
  return t;
}

std::vector<std::string> read_text_per_line(const std::string& path) { return file_lines(path); }

}  // namespace lighter::data
