#pragma once
/// Language-model data for the `lighter` command: the `language_model` data source (one text cut into windows of
/// next-token targets), the unigram baseline its runs report, and turning generated ids back into text.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "lighter/cli/run_config.h"
#include "lighter/data/csv.h"
#include "lighter/data/text.h"

namespace lighter::cli {

/// The ids of every token of `text` (the vectorizer's standardization and split, no padding or truncation):
/// int64 [n]. A token outside the vocabulary gets the OOV id 1.
torch::Tensor token_ids(const data::TextVectorizer& vectorizer, const std::string& text);

/// Windows of `sequence_length + 1` ids from `ids` [n], one every `stride` ids, as next-token pairs:
/// x = window[:-1], y = window[1:], both int64 (windows, sequence_length). Ids after the last whole window are
/// dropped; fewer than sequence_length + 1 ids give zero windows.
std::pair<torch::Tensor, torch::Tensor> next_token_windows(const torch::Tensor& ids, int64_t sequence_length,
                                                           int64_t stride);

/// Reads a `language_model` source: the file as one text, its token ids (adapting `vectorizer` on it first when
/// `adapt` is set and it has no vocabulary yet), cut into next-token windows (see DataSource). Errors name the
/// source's JSON path: a missing file, a text too short for one window.
data::Table read_language_model(const DataSource& source, data::TextVectorizer& vectorizer, bool adapt);

/// Reads a `prompts` source: the first prompt_length ids of each line of the file (shorter lines skipped), int64
/// (prompts, prompt_length). ConfigError naming the source when no line is long enough.
torch::Tensor read_prompts(const DataSource& source, const data::TextVectorizer& vectorizer);

/// Cross-entropy in bits per token of a unigram model on `targets`: the token frequencies of `train_targets`
/// with add-one (Laplace) smoothing over `vocabulary_size` ids, i.e. -mean(log2 p(t)) over the ids t of `targets`.
/// The baseline a language model's bits per token (loss / ln 2) should beat.
double unigram_bits_per_token(const torch::Tensor& train_targets, const torch::Tensor& targets, int64_t vocabulary_size);

/// The text of token ids: each id's token joined with "" for a character split, " " otherwise; padding (id 0)
/// gives nothing, OOV (id 1) "[UNK]". An id outside the vocabulary is an Error.
std::string decode_tokens(const data::TextVectorizer& vectorizer, const std::vector<int64_t>& ids);

}  // namespace lighter::cli
