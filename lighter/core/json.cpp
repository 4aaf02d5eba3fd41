#include "lighter/core/json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include <unistd.h>

namespace lighter {

json parse_json(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // Turn the byte offset into line and column.
    size_t offset = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    long line = 1, column = 1;
    for (size_t i = 0; i < offset; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    auto pos = what.find("syntax error");
    if (pos != std::string::npos) what = what.substr(pos);
    throw ConfigError(source + ":" + std::to_string(line) + ":" + std::to_string(column), "malformed JSON: " + what);
  }
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path, "cannot open file (does it exist?)");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw DataError(path, "read error");
  return buffer.str();
}

json read_json_file(const std::string& path) { return parse_json(read_text_file(path), path); }

void write_file_atomic(const std::string& path, const std::string& bytes) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw DataError(path, "cannot write (is the folder writable?)");
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  ok = std::fflush(f) == 0 && ok;
  ok = ::fsync(::fileno(f)) == 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw DataError(path, "write failed");
  }
}

std::string describe(const json& value) {
  if (value.is_object()) return "an object";
  if (value.is_array()) return "a list";
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

std::string join_path(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }
std::string join_path(const std::string& path, size_t index) { return path + "[" + std::to_string(index) + "]"; }

ConfigReader::ConfigReader(const json& object, std::string path) : object_(&object), path_(std::move(path)) {
  if (!object.is_object()) throw ConfigError(path_, "expected an object, got " + describe(object));
}

bool ConfigReader::has(const std::string& key) {
  seen_.insert(key);
  auto it = object_->find(key);
  return it != object_->end() && !it->is_null();
}

void ConfigReader::ignore(std::initializer_list<const char*> keys) {
  for (const char* k : keys) seen_.insert(k);
}

const json& ConfigReader::raw(const std::string& key) {
  seen_.insert(key);
  auto it = object_->find(key);
  if (it == object_->end()) throw ConfigError(path_of(key), "required key is missing");
  return *it;
}

const json& ConfigReader::raw_or_null(const std::string& key) {
  static const json null_value;
  seen_.insert(key);
  auto it = object_->find(key);
  return it == object_->end() ? null_value : *it;
}

int64_t ConfigReader::positive_int(const std::string& key) {
  const json& v = raw(key);
  if (!v.is_number_integer() || v.get<int64_t>() <= 0)
    throw ConfigError(path_of(key), "expected a positive integer, got " + describe(v));
  return v.get<int64_t>();
}

int64_t ConfigReader::positive_int(const std::string& key, int64_t fallback) {
  if (!has(key)) {
    seen_.insert(key);
    return fallback;
  }
  return positive_int(key);
}

double ConfigReader::non_negative(const std::string& key, double fallback) {
  double v = get<double>(key, fallback);
  if (!(v >= 0)) throw ConfigError(path_of(key), "expected a non-negative number, got " + describe(raw(key)));
  return v;
}

double ConfigReader::positive(const std::string& key, double fallback) {
  double v = get<double>(key, fallback);
  if (!(v > 0)) throw ConfigError(path_of(key), "expected a positive number, got " + describe(raw(key)));
  return v;
}

double ConfigReader::fraction(const std::string& key, double fallback) {
  double v = get<double>(key, fallback);
  if (!(v >= 0 && v < 1)) throw ConfigError(path_of(key), "expected a number in [0, 1), got " + describe(raw(key)));
  return v;
}

std::string ConfigReader::choice(const std::string& key, const std::string& fallback,
                                 const std::vector<std::string>& choices) {
  std::string v = get<std::string>(key, fallback);
  if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
    std::string known;
    for (const auto& c : choices) known += (known.empty() ? "" : ", ") + c;
    throw ConfigError(path_of(key), "expected one of " + known + ", got \"" + v + "\"");
  }
  return v;
}

void ConfigReader::require_null(const std::string& key, const std::string& what) {
  const json& v = raw_or_null(key);
  if (!v.is_null())
    throw ConfigError(path_of(key), (what.empty() ? key : what) + " is not supported yet (only null is accepted), got " +
                                        describe(v));
}

ConfigReader ConfigReader::child(const std::string& key) { return ConfigReader(raw(key), path_of(key)); }

void ConfigReader::finish() const {
  for (auto it = object_->begin(); it != object_->end(); ++it) {
    if (seen_.count(it.key())) continue;
    std::string known;
    for (const auto& k : seen_) known += (known.empty() ? "" : ", ") + k;
    throw ConfigError(path_of(it.key()), "unknown key (known keys here: " + (known.empty() ? "none" : known) + ")");
  }
}

ClassSpec read_class_spec(const json& spec, const std::string& path, const std::string& what,
                          std::initializer_list<const char*> tolerated) {
  ClassSpec out;
  out.name_path = out.config_path = path;
  if (spec.is_string()) {
    out.class_name = spec.get<std::string>();
    out.from_string = true;
    return out;
  }
  if (!spec.is_object())
    throw ConfigError(path, "expected a " + what + " name or {\"class_name\": ..., \"config\": {...}}, got " +
                                describe(spec));
  ConfigReader r(spec, path);
  out.class_name = r.get<std::string>("class_name");
  // Keras 3 numbers objects that several layers share (the same initializer instance) with shared_object_id.
  r.ignore({"module", "registered_name", "shared_object_id"});
  r.ignore(tolerated);
  const json& config = r.raw_or_null("config");
  r.finish();
  out.name_path = r.path_of("class_name");
  out.config_path = r.path_of("config");
  if (!config.is_null()) {
    if (!config.is_object()) throw ConfigError(out.config_path, "expected an object, got " + describe(config));
    out.config = config;
  }
  return out;
}

std::string read_dtype_name(ConfigReader& r, const std::string& key, const std::string& fallback) {
  const json& dtype = r.raw_or_null(key);
  if (dtype.is_null()) return fallback;
  if (dtype.is_string()) return dtype.get<std::string>();
  if (!dtype.is_object())
    throw ConfigError(r.path_of(key), "expected a dtype name or a DTypePolicy, got " + describe(dtype));
  ConfigReader policy(dtype, r.path_of(key));
  // Keras 3 marks a policy object shared between layers with shared_object_id.
  policy.ignore({"module", "class_name", "registered_name", "shared_object_id"});
  ConfigReader config = policy.child("config");
  std::string name = config.get<std::string>("name");
  config.finish();
  policy.finish();
  return name;
}

namespace detail {

template <>
json convert<json>(const json& value, const std::string&) {
  return value;
}

template <>
bool convert<bool>(const json& value, const std::string& path) {
  if (!value.is_boolean()) throw ConfigError(path, "expected true or false, got " + describe(value));
  return value.get<bool>();
}

template <>
int64_t convert<int64_t>(const json& value, const std::string& path) {
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (std::floor(d) == d && std::abs(d) < 9e15) return static_cast<int64_t>(d);
  }
  throw ConfigError(path, "expected an integer, got " + describe(value));
}

template <>
int convert<int>(const json& value, const std::string& path) {
  int64_t v = convert<int64_t>(value, path);
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
    throw ConfigError(path, "integer out of range: " + describe(value));
  return static_cast<int>(v);
}

template <>
double convert<double>(const json& value, const std::string& path) {
  if (!value.is_number()) throw ConfigError(path, "expected a number, got " + describe(value));
  return value.get<double>();
}

template <>
float convert<float>(const json& value, const std::string& path) {
  return static_cast<float>(convert<double>(value, path));
}

template <>
std::string convert<std::string>(const json& value, const std::string& path) {
  if (!value.is_string()) throw ConfigError(path, "expected a string, got " + describe(value));
  return value.get<std::string>();
}

template <>
std::vector<int64_t> convert<std::vector<int64_t>>(const json& value, const std::string& path) {
  if (value.is_number_integer()) return {value.get<int64_t>()};
  if (!value.is_array()) throw ConfigError(path, "expected a list of integers, got " + describe(value));
  std::vector<int64_t> out;
  for (size_t i = 0; i < value.size(); ++i) out.push_back(convert<int64_t>(value[i], join_path(path, i)));
  return out;
}

template <>
std::vector<std::string> convert<std::vector<std::string>>(const json& value, const std::string& path) {
  if (!value.is_array()) throw ConfigError(path, "expected a list of strings, got " + describe(value));
  std::vector<std::string> out;
  for (size_t i = 0; i < value.size(); ++i) out.push_back(convert<std::string>(value[i], join_path(path, i)));
  return out;
}

template <>
std::vector<double> convert<std::vector<double>>(const json& value, const std::string& path) {
  if (value.is_number()) return {value.get<double>()};
  if (!value.is_array()) throw ConfigError(path, "expected a list of numbers, got " + describe(value));
  std::vector<double> out;
  for (size_t i = 0; i < value.size(); ++i) out.push_back(convert<double>(value[i], join_path(path, i)));
  return out;
}

}  // namespace detail
}  // namespace lighter
