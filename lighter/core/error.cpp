#include "lighter/core/error.h"

namespace lighter {

namespace {
std::string place(const std::string& file, long line, long column) {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  if (column > 0) out += ":" + std::to_string(column);
  return out;
}
}  // namespace

DataError::DataError(std::string file, const std::string& message, long line, long column)
    : Error(place(file, line, column) + ": " + message), file_(std::move(file)), line_(line), column_(column) {}

}  // namespace lighter
