#pragma once
/// Error types of Lighter. Each names the place of the mistake: a JSON path, a file (and line/column),
/// or a layer; `what()` is the one-line message the CLI prints.
#include <stdexcept>
#include <string>

namespace lighter {

/// Base class of every error Lighter raises on a user mistake.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// A configuration mistake; `path()` is the JSON path (e.g. `model.layers[2].config.units`).
class ConfigError : public Error {
 public:
  ConfigError(std::string path, const std::string& message)
      : Error(path.empty() ? message : path + ": " + message), path_(std::move(path)), message_(message) {}
  const std::string& path() const { return path_; }
  /// The message without the path.
  const std::string& message() const { return message_; }

 private:
  std::string path_, message_;
};

/// Tensors whose shapes do not fit what a layer, loss or model expects.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// A data or weights file that is missing, unreadable or malformed; names the file (and line/column).
class DataError : public Error {
 public:
  DataError(std::string file, const std::string& message, long line = 0, long column = 0);
  const std::string& file() const { return file_; }
  long line() const { return line_; }
  long column() const { return column_; }

 private:
  std::string file_;
  long line_;
  long column_;
};

}  // namespace lighter
