#include "lighter/core/event_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "lighter/core/error.h"

namespace lighter {

namespace {

constexpr uint32_t kCastagnoli = 0x82F63B78u;  // reflected form of 0x1EDC6F41

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ kCastagnoli : (c >> 1);
    table[i] = c;
  }
  return table;
}

// Little-endian encodings, byte by byte so the file is the same on any host.
void put_fixed32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}
void put_fixed64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7Fu) | 0x80u));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Protobuf wire types.
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_key(std::string& out, uint32_t field, WireType type) { put_varint(out, (uint64_t{field} << 3) | type); }
void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

std::string hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string name(buf);
  // The name becomes part of a file name: keep it to safe characters.
  for (char& c : name)
    if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '_';
  return name;
}

std::atomic<int> writer_counter{0};

}  // namespace

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

namespace detail {

std::string tfrecord(const std::string& data) {
  std::string out;
  out.reserve(data.size() + 16);
  put_fixed64(out, data.size());
  put_fixed32(out, masked_crc32c(out.data(), 8));
  out += data;
  put_fixed32(out, masked_crc32c(data.data(), data.size()));
  return out;
}

std::string encode_event(double wall_time, int64_t step, const std::string& file_version,
                         const std::vector<std::pair<std::string, float>>& values) {
  std::string event;
  // Event.wall_time = 1 (double).
  uint64_t wall_bits;
  std::memcpy(&wall_bits, &wall_time, sizeof wall_bits);
  put_key(event, 1, kFixed64);
  put_fixed64(event, wall_bits);
  // Event.step = 2 (int64: a negative step is its 64-bit two's complement, ten varint bytes).
  if (step != 0) {
    put_key(event, 2, kVarint);
    put_varint(event, static_cast<uint64_t>(step));
  }
  // Event.file_version = 3.
  if (!file_version.empty()) put_bytes(event, 3, file_version);
  if (!values.empty()) {
    std::string summary;
    for (const auto& [tag, value] : values) {
      std::string v;
      put_bytes(v, 1, tag);  // Summary.Value.tag = 1
      uint32_t bits;
      std::memcpy(&bits, &value, sizeof bits);
      put_key(v, 2, kFixed32);  // Summary.Value.simple_value = 2 (float); a oneof member, so written even when 0
      put_fixed32(v, bits);
      put_bytes(summary, 1, v);  // Summary.value = 1 (repeated)
    }
    put_bytes(event, 5, summary);  // Event.summary = 5
  }
  return event;
}

}  // namespace detail

double unix_time_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

EventFileWriter::EventFileWriter(const std::string& log_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(log_dir, ec);
  if (ec) throw DataError(log_dir, "cannot create the TensorBoard log folder: " + ec.message());
  double now = unix_time_now();
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%010lld", static_cast<long long>(std::floor(now)));
  std::string name = std::string("events.out.tfevents.") + stamp + "." + hostname() + "." +
                     std::to_string(static_cast<long long>(::getpid())) + "." + std::to_string(writer_counter++);
  path_ = (fs::path(log_dir) / name).string();
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) throw DataError(path_, std::string("cannot create the event file: ") + std::strerror(errno));
  // The first record names the format, as TensorFlow's writers do.
  append(detail::encode_event(now, 0, "brain.Event:2", {}));
  flush();
}

EventFileWriter::~EventFileWriter() {
  try {
    close();
  } catch (...) {
    // A destructor must not throw; an explicit close() reports write errors.
  }
}

void EventFileWriter::append(const std::string& event) {
  if (fd_ < 0) throw Error("EventFileWriter: " + path_ + " is closed");
  buffer_ += detail::tfrecord(event);
}

void EventFileWriter::add_scalars(int64_t step, const std::vector<std::pair<std::string, float>>& values) {
  append(detail::encode_event(unix_time_now(), step, "", values));
}

void EventFileWriter::flush() {
  if (fd_ < 0) return;
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      buffer_.erase(0, done);
      throw DataError(path_, std::string("cannot write: ") + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

void EventFileWriter::close() {
  if (fd_ < 0) return;
  try {
    flush();
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
  ::close(fd_);
  fd_ = -1;
}

}  // namespace lighter
