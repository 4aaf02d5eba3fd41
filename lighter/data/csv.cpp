#include "lighter/data/csv.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <unordered_map>

#include <sys/stat.h>

#include "lighter/core/error.h"

namespace lighter::data {

namespace {

/// One field of a record: a view into the (mutable) text, quotes already removed.
struct Field {
  const char* data;
  size_t size;
  std::string_view view() const { return {data, size}; }
};

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && (is_blank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

/// A value shown in an error message: quoted, shortened, control characters replaced.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  size_t n = std::min<size_t>(s.size(), 40);
  for (size_t i = 0; i < n; ++i) out += (static_cast<unsigned char>(s[i]) < 0x20) ? '?' : s[i];
  if (s.size() > n) out += "...";
  return out + "\"";
}

std::string join(const std::vector<std::string>& names, size_t limit = 20) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

/// Plain decimals ([-+]digits[.digits], at most 15 digits, no exponent) without strtod: the digits form an exact
/// integer m < 2^53 and m / 10^k with k <= 22 is correctly rounded (Clinger's fast path), so the result is
/// bit-identical to strtod's; anything else returns false and goes to strtod.
bool parse_simple_decimal(std::string_view s, double* value) {
  static constexpr double kPow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
  size_t i = 0;
  bool negative = false;
  if (s[0] == '-' || s[0] == '+') {
    negative = s[0] == '-';
    ++i;
  }
  uint64_t mantissa = 0;
  int digits = 0, fraction_digits = 0;
  bool point = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      if (++digits > 15) return false;
      mantissa = mantissa * 10 + static_cast<uint64_t>(c - '0');
      if (point) ++fraction_digits;
    } else if (c == '.' && !point) {
      point = true;
    } else {
      return false;
    }
  }
  if (digits == 0) return false;
  double v = static_cast<double>(mantissa) / kPow10[fraction_digits];
  *value = negative ? -v : v;
  return true;
}

/// Parses a whole (trimmed) field as a number; false when it is empty or not entirely a number.
bool parse_number(std::string_view s, double* value) {
  s = trim(s);
  if (s.empty()) return false;
  if (parse_simple_decimal(s, value)) return true;
  // strtod needs a terminated string; the field lies inside the file's text, so copy it out.
  char small[64];
  std::string large;
  const char* start;
  if (s.size() < sizeof(small)) {
    std::memcpy(small, s.data(), s.size());
    small[s.size()] = '\0';
    start = small;
  } else {
    large.assign(s);
    start = large.c_str();
  }
  char* end = nullptr;
  *value = std::strtod(start, &end);
  // strtod also takes "nan", "inf" and hex floats; a data file's feature must be a finite decimal number.
  bool hex = s.find_first_of("xX") != std::string_view::npos;
  return end == start + s.size() && std::isfinite(*value) && !hex;
}

/// Splits RFC 4180 text into records. Quoted fields are unescaped in place (they only shrink),
/// so every field is a view into the text and no per-field string is allocated.
class Tokenizer {
 public:
  Tokenizer(std::string& text, char delimiter, const std::string& source)
      : p_(text.data()), end_(text.data() + text.size()), delimiter_(delimiter), source_(source) {
    if (text.size() >= 3 && std::memcmp(p_, "\xEF\xBB\xBF", 3) == 0) p_ += 3;  // UTF-8 byte order mark
  }

  /// Reads the next non-blank record into `fields`; false at the end of the text.
  bool next(std::vector<Field>& fields, long* record_line) {
    while (p_ < end_) {
      fields.clear();
      *record_line = line_;
      read_record(fields);
      bool blank = fields.size() == 1 && !last_quoted_ && trim(fields[0].view()).empty();
      if (!blank) return true;
    }
    return false;
  }

 private:
  void read_record(std::vector<Field>& fields) {
    long start_line = line_;
    for (;;) {
      read_field(fields, start_line);
      if (p_ >= end_) return;
      if (*p_ == delimiter_) {
        ++p_;
        if (p_ >= end_) {  // a delimiter right at the end of the text: one more empty field
          fields.push_back({p_, 0});
          return;
        }
        continue;
      }
      // read_field stops only at a delimiter, a newline or the end.
      ++p_;
      ++line_;
      return;
    }
  }

  void read_field(std::vector<Field>& fields, long start_line) {
    // Spaces before an opening quote are tolerated (`a, "b"`).
    char* q = p_;
    while (q < end_ && is_blank(*q) && *q != delimiter_) ++q;
    if (q < end_ && *q == '"') {
      read_quoted(fields, q + 1, start_line);
      return;
    }
    last_quoted_ = false;
    char* begin = p_;
    while (p_ < end_ && *p_ != delimiter_ && *p_ != '\n') ++p_;
    char* stop = p_;
    if (stop > begin && stop[-1] == '\r') --stop;  // CRLF
    fields.push_back({begin, static_cast<size_t>(stop - begin)});
  }

  void read_quoted(std::vector<Field>& fields, char* p, long start_line) {
    last_quoted_ = true;
    char* begin = p;
    char* w = p;
    for (;;) {
      if (p >= end_) {
        throw DataError(source_, "unterminated quoted field (a '\"' opened here is never closed)", start_line,
                        static_cast<long>(fields.size()) + 1);
      }
      if (*p == '"') {
        if (p + 1 < end_ && p[1] == '"') {  // "" is an escaped quote
          *w++ = '"';
          p += 2;
          continue;
        }
        ++p;
        break;
      }
      if (*p == '\n') ++line_;
      *w++ = *p++;
    }
    while (p < end_ && (is_blank(*p) || *p == '\r') && *p != delimiter_) ++p;
    if (p < end_ && *p != delimiter_ && *p != '\n') {
      throw DataError(source_, "unexpected text after a closing quote: " + quoted(std::string_view(p, end_ - p)),
                      line_, static_cast<long>(fields.size()) + 1);
    }
    p_ = p;
    fields.push_back({begin, static_cast<size_t>(w - begin)});
  }

  char* p_;
  char* end_;
  char delimiter_;
  const std::string& source_;
  long line_ = 1;
  bool last_quoted_ = false;
};

struct Label {
  std::string_view text;
  long line;
};

}  // namespace

Table read_csv(const std::string& path, const CsvOptions& options) {
  // One sized fread: streaming through an ostringstream costs more than parsing for large files.
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw DataError(path, "cannot open file (does it exist?)");
  struct stat info;
  if (::fstat(::fileno(file.get()), &info) != 0 || !S_ISREG(info.st_mode)) {
    throw DataError(path, "not a regular file");
  }
  std::string text(static_cast<size_t>(info.st_size), '\0');
  size_t got = text.empty() ? 0 : std::fread(text.data(), 1, text.size(), file.get());
  if (got != text.size() || std::ferror(file.get())) throw DataError(path, "read error");
  return parse_csv(std::move(text), path, options);
}

Table parse_csv(std::string text, const std::string& source, const CsvOptions& options) {
  const char delimiter = options.delimiter();
  if (delimiter == '"' || delimiter == '\n' || delimiter == '\r') {
    throw DataError(source, std::string("unusable CSV delimiter '") + delimiter + "'");
  }
  Tokenizer tokens(text, delimiter, source);
  std::vector<Field> fields;
  long line = 0;
  if (!tokens.next(fields, &line)) throw DataError(source, "empty file (no header and no data)");

  const int64_t columns = static_cast<int64_t>(fields.size());
  std::vector<std::string> names;
  names.reserve(columns);
  for (int64_t c = 0; c < columns; ++c) {
    names.push_back(options.header() ? std::string(trim(fields[c].view())) : "column_" + std::to_string(c));
  }

  // Which column is the target.
  const bool has_target = options.kind() != TargetKind::None;
  int64_t target = -1;
  if (has_target) {
    if (!options.target().empty()) {
      if (!options.header()) {
        throw DataError(source, "target column '" + options.target() +
                                    "' is named but the file has no header (give target_index instead)");
      }
      auto it = std::find(names.begin(), names.end(), options.target());
      if (it == names.end()) {
        throw DataError(source, "unknown target column '" + options.target() + "' (columns: " + join(names) + ")");
      }
      target = it - names.begin();
    } else {
      target = options.target_index() < 0 ? options.target_index() + columns : options.target_index();
      if (target < 0 || target >= columns) {
        throw DataError(source, "target_index " + std::to_string(options.target_index()) + " is out of range for " +
                                    std::to_string(columns) + " columns");
      }
    }
    if (columns < 2) throw DataError(source, "no feature columns besides the target '" + names[target] + "'");
  }
  if (has_target && options.kind() == TargetKind::Regression && !options.classes().empty()) {
    throw DataError(source, "classes were given for a regression target");
  }

  Table table;
  table.target_name = has_target ? names[target] : "";
  for (int64_t c = 0; c < columns; ++c) {
    if (c != target) table.feature_names.push_back(names[c]);
  }
  const int64_t features = static_cast<int64_t>(table.feature_names.size());

  // Records never outnumber lines, so this bounds the row count and the matrix is filled in place.
  const int64_t max_rows = static_cast<int64_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  torch::Tensor x = torch::empty({max_rows, features}, torch::kFloat32);
  float* out = x.data_ptr<float>();
  std::vector<Label> labels;
  if (has_target) labels.reserve(max_rows);

  int64_t rows = 0;
  bool have_record = !options.header();  // without a header the first record is data
  for (;;) {
    if (!have_record && !tokens.next(fields, &line)) break;
    have_record = false;
    if (static_cast<int64_t>(fields.size()) != columns) {
      throw DataError(source, "expected " + std::to_string(columns) + " fields" +
                                  (options.header() ? " (as in the header)" : " (as in the first row)") + ", got " +
                                  std::to_string(fields.size()),
                      line);
    }
    for (int64_t c = 0; c < columns; ++c) {
      if (c == target) {
        labels.push_back({trim(fields[c].view()), line});
        continue;
      }
      double value;
      if (!parse_number(fields[c].view(), &value)) {
        std::string_view raw = trim(fields[c].view());
        throw DataError(source,
                        raw.empty() ? "missing value in column '" + names[c] + "'"
                                    : "expected a number in column '" + names[c] + "', got " + quoted(raw),
                        line, static_cast<long>(c) + 1);
      }
      *out++ = static_cast<float>(value);
    }
    ++rows;
  }
  if (rows == 0) throw DataError(source, "no data rows" + std::string(options.header() ? " after the header" : ""));
  // A narrowed prefix along dim 0 stays contiguous; the few spare rows (header, blank lines) are not worth a copy.
  table.x = rows == max_rows ? x : x.narrow(0, 0, rows);
  if (max_rows - rows > 64 + rows / 16) table.x = table.x.clone();

  if (!has_target) return table;

  const long target_column = static_cast<long>(target) + 1;
  for (const Label& label : labels) {
    if (label.text.empty()) {
      throw DataError(source, "missing label in column '" + table.target_name + "'", label.line, target_column);
    }
  }

  std::vector<int64_t> ids(rows);
  if (!options.classes().empty()) {
    std::unordered_map<std::string_view, int64_t> index;
    for (size_t i = 0; i < options.classes().size(); ++i) index.emplace(options.classes()[i], static_cast<int64_t>(i));
    for (int64_t r = 0; r < rows; ++r) {
      auto it = index.find(labels[r].text);
      if (it == index.end()) {
        throw DataError(source, "label " + quoted(labels[r].text) + " in column '" + table.target_name +
                                    "' is not one of the known classes (" + join(options.classes()) + ")",
                        labels[r].line, target_column);
      }
      ids[r] = it->second;
    }
    table.classes = options.classes();
    table.y = torch::tensor(ids, torch::kInt64);
    return table;
  }

  std::vector<double> numbers(rows);
  int64_t first_text = -1;  // first label that is not a number
  bool non_negative_integers = true;
  double max_value = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (!parse_number(labels[r].text, &numbers[r])) {
      if (first_text < 0) first_text = r;
      non_negative_integers = false;
      continue;
    }
    double v = numbers[r];
    if (!(v >= 0 && v == std::floor(v) && v < (1 << 20))) non_negative_integers = false;
    max_value = std::max(max_value, v);
  }

  const bool classification = options.kind() == TargetKind::Classification ||
                              (options.kind() == TargetKind::Auto && first_text >= 0);
  if (!classification) {
    if (first_text >= 0) {
      throw DataError(source, "expected a number in target column '" + table.target_name + "', got " +
                                  quoted(labels[first_text].text),
                      labels[first_text].line, target_column);
    }
    std::vector<float> values(numbers.begin(), numbers.end());
    table.y = torch::tensor(values, torch::kFloat32);
    return table;
  }

  if (non_negative_integers) {
    // Integer labels are class ids already (Keras' sparse labels); they name themselves.
    for (int64_t r = 0; r < rows; ++r) ids[r] = static_cast<int64_t>(numbers[r]);
    for (int64_t k = 0; k <= static_cast<int64_t>(max_value); ++k) table.classes.push_back(std::to_string(k));
    table.y = torch::tensor(ids, torch::kInt64);
    return table;
  }

  // Names: ids follow the sorted order of the distinct labels (numeric order when all are numbers).
  std::unordered_map<std::string_view, int64_t> seen;
  std::vector<std::string_view> distinct;
  std::vector<double> distinct_numbers;
  for (int64_t r = 0; r < rows; ++r) {
    auto [it, inserted] = seen.emplace(labels[r].text, static_cast<int64_t>(distinct.size()));
    if (inserted) {
      distinct.push_back(labels[r].text);
      distinct_numbers.push_back(numbers[r]);
    }
    ids[r] = it->second;
  }
  std::vector<int64_t> order(distinct.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  const bool numeric = first_text < 0;
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return numeric ? distinct_numbers[a] < distinct_numbers[b] : distinct[a] < distinct[b];
  });
  std::vector<int64_t> rank(distinct.size());
  for (size_t i = 0; i < order.size(); ++i) {
    rank[order[i]] = static_cast<int64_t>(i);
    table.classes.emplace_back(distinct[order[i]]);
  }
  for (int64_t& id : ids) id = rank[id];
  table.y = torch::tensor(ids, torch::kInt64);
  return table;
}

}  // namespace lighter::data
