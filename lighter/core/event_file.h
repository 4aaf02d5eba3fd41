#pragma once
/// TensorBoard event files without protobuf or TensorFlow: TFRecord framing, CRC32C and hand-encoded
/// `tensorflow.Event` messages holding scalar summaries.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lighter {

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven. `crc` continues an earlier call's result,
/// so crc32c(ab) == crc32c(b, crc32c(a)). crc32c("123456789") == 0xE3069283.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

/// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8, with crc the CRC-32C of the bytes.
uint32_t masked_crc32c(const void* data, size_t size);

namespace detail {

/// One TFRecord: uint64 length (little-endian), uint32 masked CRC of those 8 bytes, the data, uint32 masked CRC of
/// the data.
std::string tfrecord(const std::string& data);

/// The bytes of a `tensorflow.Event` (event.proto): wall_time = 1 (double), step = 2 (int64), file_version = 3
/// (string, when not empty) and, when `values` is not empty, summary = 5: a `Summary` (summary.proto) whose
/// repeated `value` = 1 are `Summary.Value {tag = 1, simple_value = 2}`. As proto3 serializers do, a zero step is
/// left out.
std::string encode_event(double wall_time, int64_t step, const std::string& file_version,
                         const std::vector<std::pair<std::string, float>>& values);

}  // namespace detail

/// Writes one TensorBoard event file in a folder: `events.out.tfevents.<unix seconds>.<hostname>.<pid>.<n>` (the
/// pid and a per-process counter keep two writers in the same second apart), starting with the
/// "brain.Event:2" version record. Records are buffered and reach the file on flush() (and close()), each
/// flush in whole records, so a crash loses at most what was added since the last flush.
class EventFileWriter {
 public:
  /// Creates `log_dir` (and its parents) and the file; DataError when either cannot be made.
  explicit EventFileWriter(const std::string& log_dir);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  /// Adds one event with scalar summaries (tag, value) at `step`; the wall time is now.
  void add_scalars(int64_t step, const std::vector<std::pair<std::string, float>>& values);
  void add_scalar(const std::string& tag, float value, int64_t step) { add_scalars(step, {{tag, value}}); }
  /// Writes the buffered records to the file.
  void flush();
  /// Flushes and closes; later adds are errors.
  void close();
  /// The file's full path.
  const std::string& path() const { return path_; }

 private:
  void append(const std::string& event);
  std::string path_;
  std::string buffer_;
  int fd_ = -1;
};

/// Seconds since the Unix epoch, with sub-second precision (an Event's wall_time).
double unix_time_now();

}  // namespace lighter
