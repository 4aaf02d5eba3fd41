#pragma once
/// CSV reader: a numeric feature matrix plus one target column (class names, class ids or numbers).
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace lighter::data {

/// How the target column is interpreted.
enum class TargetKind {
  Auto,            ///< classification when any label is not a number, else regression
  Classification,  ///< int64 class ids: names map through `classes`, non-negative integers are ids themselves
  Regression,      ///< float32 values; every label must be a number
  None,            ///< no target column: every column is a feature (e.g. inputs for predict)
};

/// Options of read_csv (TORCH_ARG style: `CsvOptions().target("species").delimiter(';')`).
struct CsvOptions {
  CsvOptions() = default;
  /// Name of the target column; when empty, `target_index` picks it.
  TORCH_ARG(std::string, target);
  /// Index of the target column when `target` is empty; negative counts from the end (-1 = last).
  TORCH_ARG(int64_t, target_index) = -1;
  /// Whether the first record names the columns (otherwise they are called column_0, column_1, ...).
  TORCH_ARG(bool, header) = true;
  TORCH_ARG(char, delimiter) = ',';
  /// The label mapping to use (e.g. the one saved with a model); implies classification.
  /// Every label must be one of these names; its id is its position.
  TORCH_ARG(std::vector<std::string>, classes);
  TORCH_ARG(TargetKind, kind) = TargetKind::Auto;
};

/// A table read from a CSV file.
struct Table {
  /// float32 [N, features], contiguous.
  torch::Tensor x;
  /// int64 [N] class ids for classification, float32 [N] for regression; undefined for TargetKind::None.
  torch::Tensor y;
  std::vector<std::string> feature_names;
  /// Class names indexed by id; empty for a numeric (regression) target. String labels are sorted
  /// alphabetically (as sklearn's LabelEncoder does), so a train and a test file holding the same
  /// classes get the same ids whatever their row order; integer labels 0..k name themselves "0".."k".
  std::vector<std::string> classes;
  std::string target_name;

  int64_t size() const { return x.defined() ? x.size(0) : 0; }
  bool is_classification() const { return !classes.empty(); }
};

/// Reads a CSV file (RFC 4180 quoting, CRLF or LF line ends, blank lines skipped, UTF-8 BOM tolerated).
/// Every problem is a DataError naming file, line and column (the 1-based field number).
Table read_csv(const std::string& path, const CsvOptions& options = {});

/// Parses CSV text already in memory; `source` names it in errors.
Table parse_csv(std::string text, const std::string& source, const CsvOptions& options = {});

}  // namespace lighter::data
