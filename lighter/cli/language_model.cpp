#include "lighter/cli/language_model.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "lighter/core/error.h"
#include "lighter/core/logging.h"

namespace lighter::cli {

namespace fs = std::filesystem;

torch::Tensor token_ids(const data::TextVectorizer& vectorizer, const std::string& text) {
  std::vector<std::string> tokens = vectorizer.tokenize(text);
  auto out = torch::empty({static_cast<int64_t>(tokens.size())}, torch::kLong);
  int64_t* p = out.data_ptr<int64_t>();
  for (size_t i = 0; i < tokens.size(); ++i) p[i] = vectorizer.token_id(tokens[i]);
  return out;
}

std::pair<torch::Tensor, torch::Tensor> next_token_windows(const torch::Tensor& ids, int64_t sequence_length,
                                                           int64_t stride) {
  TORCH_CHECK(ids.dim() == 1, "next_token_windows expects ids of shape [n]");
  TORCH_CHECK(sequence_length > 0 && stride > 0, "next_token_windows expects a positive length and stride");
  if (ids.size(0) < sequence_length + 1) {
    auto empty = torch::empty({0, sequence_length}, torch::kLong);
    return {empty, empty.clone()};
  }
  // unfold gives a view (windows, sequence_length + 1); the two shifted halves are copied out contiguous.
  torch::Tensor windows = ids.to(torch::kLong).unfold(0, sequence_length + 1, stride);
  return {windows.narrow(1, 0, sequence_length).contiguous(), windows.narrow(1, 1, sequence_length).contiguous()};
}

namespace {

// A source's file as one UTF-8 text: a BOM dropped, CRLF read as LF. Errors name the source's path.
std::string read_source_text(const DataSource& s) {
  const std::string& at = s.json_path;
  if (!fs::is_regular_file(s.path))
    throw ConfigError(at + ".path", (fs::exists(s.path) ? "not a file: " : "no such file: ") + s.path);
  std::string text;
  {
    std::ifstream in(s.path, std::ios::binary);
    if (!in) throw ConfigError(at + ".path", "cannot read " + s.path);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
  }
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
  if (text.find('\r') != std::string::npos) {
    std::string lf;
    lf.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i)
      if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) lf += text[i];
    text = std::move(lf);
  }
  size_t bad = 0;
  if (!data::is_valid_utf8(text, &bad))
    throw DataError(s.path, "not valid UTF-8 (the only encoding supported) at byte " + std::to_string(bad));
  return text;
}

}  // namespace

data::Table read_language_model(const DataSource& s, data::TextVectorizer& vectorizer, bool adapt) {
  const std::string& at = s.json_path;
  std::string text = read_source_text(s);
  if (adapt && !vectorizer.has_vocabulary()) {
    vectorizer.adapt({text});
    logger()->info("text vocabulary: {} tokens (padding and OOV included) from {}", vectorizer.vocabulary_size(),
                   s.path);
  }
  torch::Tensor ids = token_ids(vectorizer, text);
  const int64_t n = ids.size(0), need = s.sequence_length + 1;
  if (n < need)
    throw ConfigError(at + ".sequence_length", s.path + " holds " + std::to_string(n) + " tokens, too few for one window of " +
                                                   "sequence_length + 1 = " + std::to_string(need) + " tokens");
  auto [x, y] = next_token_windows(ids, s.sequence_length, s.sequence_stride);
  int64_t oov = ids.eq(1).sum().item<int64_t>();
  if (oov > 0) logger()->info("{}: {} of {} tokens are out of the vocabulary (id 1)", s.path, oov, n);
  logger()->info("{}: {} tokens -> {} windows of {} (stride {})", s.path, n, x.size(0), s.sequence_length,
                 s.sequence_stride);
  data::Table table;
  table.x = x;
  table.y = y;
  table.target_name = "next_token";
  return table;
}

torch::Tensor read_prompts(const DataSource& s, const data::TextVectorizer& vectorizer) {
  const std::string text = read_source_text(s);
  std::vector<torch::Tensor> rows;
  size_t lines = 0, start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++lines;
    torch::Tensor ids = token_ids(vectorizer, text.substr(start, end - start));
    if (ids.size(0) >= s.prompt_length) rows.push_back(ids.narrow(0, 0, s.prompt_length));
    start = end + 1;
  }
  if (rows.empty())
    throw ConfigError(s.json_path + ".prompt_length", "no line of " + s.path + " has " +
                                                          std::to_string(s.prompt_length) + " tokens");
  logger()->info("{}: {} prompts of {} tokens from {} lines (shorter lines skipped)", s.path, rows.size(),
                 s.prompt_length, lines);
  return torch::stack(rows);
}

double unigram_bits_per_token(const torch::Tensor& train_targets, const torch::Tensor& targets, int64_t vocabulary_size) {
  TORCH_CHECK(vocabulary_size > 0, "unigram_bits_per_token expects a positive vocabulary size");
  torch::Tensor counts =
      torch::bincount(train_targets.reshape({-1}).to(torch::kLong), {}, vocabulary_size).to(torch::kDouble) + 1.0;
  torch::Tensor log2p = (counts / counts.sum()).log2();
  torch::Tensor t = targets.reshape({-1}).to(torch::kLong);
  if (t.numel() == 0) return 0.0;
  TORCH_CHECK(t.max().item<int64_t>() < log2p.size(0), "unigram_bits_per_token: a target id is outside the vocabulary");
  return -log2p.index_select(0, t).mean().item<double>();
}

std::string decode_tokens(const data::TextVectorizer& vectorizer, const std::vector<int64_t>& ids) {
  const auto& split = vectorizer.options().split();
  const std::string separator = split && *split == "character" ? "" : " ";
  const std::vector<std::string> vocabulary = vectorizer.get_vocabulary();
  std::string out;
  bool first = true;
  for (int64_t id : ids) {
    if (id < 0 || id >= static_cast<int64_t>(vocabulary.size()))
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(vocabulary.size()) + " tokens (does the model's output size match the vectorizer?)");
    if (id == 0) continue;
    if (!first) out += separator;
    out += vocabulary[static_cast<size_t>(id)];
    first = false;
  }
  return out;
}

}  // namespace lighter::cli
