#include "lighter/callbacks/csv_logger.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "lighter/core/error.h"
#include "lighter/core/json.h"

namespace lighter::callbacks {

namespace {
// Python's repr of a float: the shortest text that reads back to the same double ("0.1", "nan", "inf").
std::string format_value(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}
}  // namespace

CSVLogger::CSVLogger(std::string filename, std::string separator, bool append)
    : filename_(std::move(filename)), separator_(std::move(separator)), append_(append) {
  if (filename_.empty()) throw ConfigError("filename", "must not be empty");
  if (separator_.empty()) throw ConfigError("separator", "must not be empty");
}

CSVLogger::~CSVLogger() { close(); }

void CSVLogger::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void CSVLogger::on_train_begin(training::Logs&) {
  close();
  namespace fs = std::filesystem;
  // As Keras: when appending to a file that already has content, no new header.
  write_header_ = !(append_ && fs::exists(filename_) && fs::file_size(filename_) > 0);
  written_ = write_header_ ? std::string() : read_text_file(filename_);
  fs::path parent = fs::path(filename_).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  fd_ = ::open(filename_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (append_ ? O_APPEND : O_TRUNC), 0644);
  if (fd_ < 0) throw DataError(filename_, std::string("cannot open for writing: ") + std::strerror(errno));
  keys_.reset();
}

void CSVLogger::write_line(const std::string& line) {
  // One write per row: a crash leaves whole rows, never half of one.
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw DataError(filename_, std::string("cannot write: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  written_ += line;
}

training::CallbackState CSVLogger::get_state() const {
  training::CallbackState s;
  s.values = {{"content", written_}};
  s.values["keys"] = keys_ ? nlohmann::json(*keys_) : nlohmann::json(nullptr);
  return s;
}

void CSVLogger::set_state(const training::CallbackState& s) {
  if (!s.values.is_object() || !s.values.contains("content") || !s.values["content"].is_string())
    throw Error("CSVLogger: saved state has no file content");
  if (fd_ < 0) throw Error("CSVLogger: set_state before on_train_begin");
  std::string content = s.values["content"];
  keys_.reset();
  if (s.values.contains("keys") && s.values["keys"].is_array()) keys_ = s.values["keys"].get<std::vector<std::string>>();
  write_header_ = !keys_;
  close();
  write_file_atomic(filename_, content);
  fd_ = ::open(filename_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) throw DataError(filename_, std::string("cannot open for writing: ") + std::strerror(errno));
  written_ = content;
}

void CSVLogger::on_epoch_end(int64_t epoch, training::Logs& logs) {
  if (fd_ < 0) throw Error("CSVLogger: on_epoch_end before on_train_begin");
  if (!keys_) {
    std::vector<std::string> keys;
    bool has_val = false;
    for (const auto& kv : logs) {  // std::map: already sorted
      keys.push_back(kv.first);
      has_val = has_val || kv.first.rfind("val_", 0) == 0;
    }
    // As Keras: validation may not run every epoch, so its columns are reserved from the start.
    if (!has_val && !keys.empty()) {
      size_t n = keys.size();
      for (size_t i = 0; i < n; ++i) keys.push_back("val_" + keys[i]);
    }
    keys_ = keys;
    if (write_header_) {
      std::string header = "epoch";
      for (const auto& k : *keys_) header += separator_ + k;
      write_line(header + "\n");
    }
  }
  std::string row = std::to_string(epoch);
  for (const auto& k : *keys_) {
    auto it = logs.find(k);
    row += separator_ + (it == logs.end() ? std::string("NA") : format_value(it->second));
  }
  write_line(row + "\n");
}

void CSVLogger::on_train_end(training::Logs&) { close(); }

}  // namespace lighter::callbacks
