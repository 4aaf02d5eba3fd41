#pragma once
/// JSON helpers: a strict reader that names the path of every mistake, file reading with line/column
/// errors, and atomic file writing.
#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lighter/core/error.h"

namespace lighter {

using json = nlohmann::json;

/// Parses JSON text; a syntax error becomes a ConfigError naming `source`, line and column.
json parse_json(const std::string& text, const std::string& source);

/// Reads and parses a JSON file (DataError when missing, ConfigError naming file:line:column when malformed).
json read_json_file(const std::string& path);

/// Reads a whole file into a string (DataError when missing or unreadable).
std::string read_text_file(const std::string& path);

/// Writes a file atomically: a temporary file beside it, flushed, then renamed over the target.
void write_file_atomic(const std::string& path, const std::string& bytes);

/// A short description of a JSON value for error messages: `-4`, `"relu"`, `true`, `null`, `an object`, `a list`.
std::string describe(const json& value);

/// Appends a key or index to a JSON path: join_path("model", "units") == "model.units", join_path("layers", 2) == "layers[2]".
std::string join_path(const std::string& path, const std::string& key);
std::string join_path(const std::string& path, size_t index);

/// Strict view of one JSON object. Every key read (or declared tolerated with `ignore`) is marked;
/// `finish()` rejects any other key, naming it and listing the known ones.
class ConfigReader {
 public:
  ConfigReader(const json& object, std::string path);

  const std::string& path() const { return path_; }
  std::string path_of(const std::string& key) const { return join_path(path_, key); }
  const json& object() const { return *object_; }

  /// True when the key is present and not null (the key counts as known).
  bool has(const std::string& key);
  /// Marks keys as known without reading them (values Lighter tolerates, e.g. Keras' `module`).
  void ignore(std::initializer_list<const char*> keys);
  /// The raw value (marks the key); a missing key is an error.
  const json& raw(const std::string& key);
  /// The raw value or null when absent (marks the key).
  const json& raw_or_null(const std::string& key);

  template <class T>
  T get(const std::string& key);
  template <class T>
  T get(const std::string& key, const T& fallback);

  int64_t positive_int(const std::string& key);
  int64_t positive_int(const std::string& key, int64_t fallback);
  double non_negative(const std::string& key, double fallback);
  double positive(const std::string& key, double fallback);
  /// A number in [0, 1) (dropout rates, validation_split).
  double fraction(const std::string& key, double fallback);
  /// One of `choices`.
  std::string choice(const std::string& key, const std::string& fallback, const std::vector<std::string>& choices);

  /// Keras keys for features Lighter lacks: accepted when absent or null, otherwise a ConfigError
  /// "<what> is not supported yet (only null is accepted), got ..." (`what` defaults to the key).
  void require_null(const std::string& key, const std::string& what = "");

  /// A nested object reader (missing → error).
  ConfigReader child(const std::string& key);

  /// Throws ConfigError for the first key that was neither read nor ignored.
  void finish() const;

 private:
  const json* object_;
  std::string path_;
  std::set<std::string> seen_;
};

/// A Keras-serialized object: a bare name ("adam", "glorot_uniform") or {"class_name": ..., "config": {...}}
/// (Keras 3's "module" and "registered_name" tolerated).
struct ClassSpec {
  std::string class_name;
  json config = json::object();  // empty for a bare name or a missing/null config
  bool from_string = false;
  std::string name_path;    // where class_name came from, for errors
  std::string config_path;  // where config came from
};

/// Reads a ClassSpec; `what` names the kind in errors ("loss", "initializer"); `tolerated` lists further outer keys
/// to accept without reading (e.g. a layer's "build_config").
ClassSpec read_class_spec(const json& spec, const std::string& path, const std::string& what,
                          std::initializer_list<const char*> tolerated = {});

/// The dtype name at `key`: a string, or Keras 3's DTypePolicy object ({"class_name": "DTypePolicy",
/// "config": {"name": "float32"}}); `fallback` when absent or null.
std::string read_dtype_name(ConfigReader& r, const std::string& key = "dtype", const std::string& fallback = "float32");

namespace detail {
template <class T>
T convert(const json& value, const std::string& path);
}

template <class T>
T ConfigReader::get(const std::string& key) {
  return detail::convert<T>(raw(key), path_of(key));
}

template <class T>
T ConfigReader::get(const std::string& key, const T& fallback) {
  const json& value = raw_or_null(key);
  if (value.is_null()) return fallback;
  return detail::convert<T>(value, path_of(key));
}

}  // namespace lighter
