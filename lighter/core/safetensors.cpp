#include "lighter/core/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "lighter/core/error.h"
#include "lighter/core/json.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors stores little-endian data; Lighter copies raw bytes and supports little-endian hosts only"
#endif

namespace lighter {

namespace {

constexpr const char* kMetadataKey = "__metadata__";
// CRC-32 of the data section, written by Lighter and checked when present: safetensors has no checksum of its own,
// so without it a flipped bit in the data would load silently.
constexpr const char* kChecksumKey = "lighter.crc32";

uint32_t crc_update(uint32_t crc, const void* data, uint64_t size) {
  const auto* p = static_cast<const Bytef*>(data);
  while (size > 0) {
    uInt chunk = static_cast<uInt>(std::min<uint64_t>(size, 1u << 30));
    crc = static_cast<uint32_t>(::crc32(crc, p, chunk));
    p += chunk;
    size -= chunk;
  }
  return crc;
}

std::string hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}
// The reference implementation refuses larger headers too; it also bounds what a corrupt length can make us allocate.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

struct DtypeName {
  torch::ScalarType type;
  const char* name;
};

const DtypeName kDtypes[] = {
    {torch::kFloat32, "F32"}, {torch::kFloat64, "F64"}, {torch::kFloat16, "F16"}, {torch::kBFloat16, "BF16"},
    {torch::kInt64, "I64"},   {torch::kInt32, "I32"},   {torch::kInt16, "I16"},   {torch::kInt8, "I8"},
    {torch::kUInt8, "U8"},    {torch::kBool, "BOOL"},
};

std::string supported_names() {
  std::string out;
  for (const auto& d : kDtypes) out += std::string(out.empty() ? "" : ", ") + d.name;
  return out;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string offsets_text(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

/// nlohmann's messages start with "[json.exception.parse_error.101] "; the user needs only the rest.
std::string json_message(const std::exception& e) {
  std::string text = e.what();
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find("] ");
    if (close != std::string::npos) text = text.substr(close + 2);
  }
  return text;
}

/// One tensor's entry in the header, validated.
struct Entry {
  std::string name;
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

/// A non-negative integer of the header, or a DataError naming `what`.
uint64_t header_uint(const std::string& path, const json& value, const std::string& what) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) return static_cast<uint64_t>(value.get<int64_t>());
  throw DataError(path, "header: " + what + " must be a non-negative integer, got " + describe(value));
}

Entry parse_entry(const std::string& path, const std::string& name, const json& info) {
  const std::string where = "tensor '" + name + "'";
  if (!info.is_object()) throw DataError(path, "header: " + where + " must be an object, got " + describe(info));
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!info.contains(key)) throw DataError(path, "header: " + where + " has no \"" + key + "\"");
  }
  Entry e;
  e.name = name;
  const json& dtype = info["dtype"];
  if (!dtype.is_string()) throw DataError(path, "header: " + where + ": dtype must be a string, got " + describe(dtype));
  const std::string dtype_name = dtype.get<std::string>();
  const DtypeName* found = nullptr;
  for (const auto& d : kDtypes) {
    if (dtype_name == d.name) found = &d;
  }
  if (!found) {
    throw DataError(path, "header: " + where + " has unknown or unsupported dtype \"" + dtype_name +
                              "\" (supported: " + supported_names() + ")");
  }
  e.dtype = found->type;

  const json& shape = info["shape"];
  if (!shape.is_array()) throw DataError(path, "header: " + where + ": shape must be a list, got " + describe(shape));
  // Overflow-checked element count: a corrupt shape must not wrap around to a plausible size.
  uint64_t numel = 1;
  bool overflow = false;
  for (const json& dim : shape) {
    uint64_t d = header_uint(path, dim, where + " shape entry");
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) overflow = true;
    e.shape.push_back(static_cast<int64_t>(d));
    if (d != 0 && numel > std::numeric_limits<uint64_t>::max() / d) overflow = true;
    numel *= d;
  }

  const json& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    throw DataError(path, "header: " + where + ": data_offsets must be a list [begin, end], got " + describe(offsets));
  }
  e.begin = header_uint(path, offsets[0], where + " data_offsets[0]");
  e.end = header_uint(path, offsets[1], where + " data_offsets[1]");
  if (e.end < e.begin) {
    throw DataError(path, "header: " + where + ": data_offsets " + offsets_text(e.begin, e.end) + " end before they begin");
  }
  const uint64_t item = c10::elementSize(e.dtype);
  if (overflow || numel > std::numeric_limits<uint64_t>::max() / item || numel * item != e.end - e.begin) {
    throw DataError(path, "header: " + where + ": shape " + shape_text(e.shape) + " of " + dtype_name + " needs " +
                              (overflow ? std::string("an impossible number of") : std::to_string(numel * item)) +
                              " bytes but data_offsets " + offsets_text(e.begin, e.end) + " hold " +
                              std::to_string(e.end - e.begin));
  }
  return e;
}

/// Closes the FILE on every path out, errors included.
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

bool read_at(std::FILE* f, uint64_t offset, void* out, uint64_t size) {
  if (size == 0) return true;
  if (fseeko(f, static_cast<off_t>(offset), SEEK_SET) != 0) return false;
  return std::fread(out, 1, size, f) == size;
}

}  // namespace

std::string safetensors_dtype(torch::ScalarType dtype, const std::string& path) {
  for (const auto& d : kDtypes) {
    if (d.type == dtype) return d.name;
  }
  throw DataError(path, std::string("safetensors cannot store dtype ") + c10::toString(dtype) + " (supported: " +
                            supported_names() + ")");
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  std::vector<torch::Tensor> cpu;
  cpu.reserve(tensors.size());
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) throw DataError(path, "the tensor name \"__metadata__\" is reserved");
    if (!names.insert(name).second) throw DataError(path, "tensor name '" + name + "' is given twice");
    if (!tensor.defined()) throw DataError(path, "tensor '" + name + "' is undefined");
    std::string dtype = safetensors_dtype(tensor.scalar_type(), path);
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", dtype}, {"shape", t.sizes().vec()}, {"data_offsets", json::array({offset, offset + bytes})}};
    offset += bytes;
    cpu.push_back(std::move(t));
  }
  uint32_t crc = static_cast<uint32_t>(::crc32(0L, Z_NULL, 0));
  for (const torch::Tensor& t : cpu) crc = crc_update(crc, t.data_ptr(), static_cast<uint64_t>(t.numel()) * t.element_size());
  std::map<std::string, std::string> meta = metadata;
  meta[kChecksumKey] = hex32(crc);
  header[kMetadataKey] = meta;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {  // e.g. a name that is not valid UTF-8
    throw DataError(path, "cannot write the header: " + json_message(e));
  }
  // The format pads the header with spaces so the data that follows is 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string bytes;
  bytes.reserve(8 + text.size() + offset);
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  bytes += text;
  for (const torch::Tensor& t : cpu) {
    if (t.numel() > 0) bytes.append(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel()) * t.element_size());
  }
  write_file_atomic(path, bytes);
}

std::map<std::string, torch::Tensor> load_safetensors(const std::string& path,
                                                      std::map<std::string, std::string>* metadata) {
  File file(std::fopen(path.c_str(), "rb"));
  if (!file) throw DataError(path, "cannot open file (does it exist?)");
  if (fseeko(file.get(), 0, SEEK_END) != 0) throw DataError(path, "cannot determine the file size");
  const off_t end_pos = ftello(file.get());
  if (end_pos < 0) throw DataError(path, "cannot determine the file size");
  const uint64_t file_size = static_cast<uint64_t>(end_pos);

  if (file_size < 8) {
    throw DataError(path, "file too short to be safetensors (" + std::to_string(file_size) +
                              " bytes; the 8-byte header length alone needs 8)");
  }
  unsigned char prefix[8];
  if (!read_at(file.get(), 0, prefix, 8)) throw DataError(path, "read error");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | prefix[i];
  if (header_size > file_size - 8) {
    throw DataError(path, "header length " + std::to_string(header_size) + " (the first 8 bytes) goes beyond the end of the " +
                              std::to_string(file_size) + "-byte file: not a safetensors file, or truncated");
  }
  if (header_size > kMaxHeaderSize) {
    throw DataError(path, "header length " + std::to_string(header_size) + " exceeds the format's limit of " +
                              std::to_string(kMaxHeaderSize) + " bytes");
  }
  std::string text(header_size, '\0');
  if (!read_at(file.get(), 8, text.data(), header_size)) throw DataError(path, "read error in the header");

  // nlohmann stops at a NUL byte and would accept whatever follows it; the reference reader rejects it.
  if (text.find('\0') != std::string::npos) {
    throw DataError(path, "malformed header JSON: it contains a NUL byte at offset " +
                              std::to_string(8 + text.find('\0')) + " (wrong header length?)");
  }
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    throw DataError(path, "malformed header JSON: " + json_message(e));
  }
  if (!header.is_object()) throw DataError(path, "malformed header: expected a JSON object, got " + describe(header));

  if (metadata) metadata->clear();
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == kMetadataKey) {
      if (!it->is_object()) throw DataError(path, "header: __metadata__ must be an object, got " + describe(*it));
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) {
          throw DataError(path, "header: __metadata__." + m.key() + " must be a string, got " + describe(*m));
        }
        if (metadata) (*metadata)[m.key()] = m->get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, it.key(), *it));
  }

  // Offsets must not overlap; sorted by position, each tensor starts at or after the end of the one before.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  bool packed = true;  // laid out back to back from offset 0, as writers do
  uint64_t data_end = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (i > 0 && e.begin < entries[i - 1].end) {
      const Entry& p = entries[i - 1];
      throw DataError(path, "header: tensors '" + p.name + "' " + offsets_text(p.begin, p.end) + " and '" + e.name +
                                "' " + offsets_text(e.begin, e.end) + " overlap");
    }
    if (e.begin != data_end) packed = false;
    data_end = std::max(data_end, e.end);
  }
  const uint64_t data_size = file_size - 8 - header_size;
  if (data_end > data_size) {
    if (packed) {
      throw DataError(path, "file truncated: the header describes " + std::to_string(data_end) + " bytes of data but only " +
                                std::to_string(data_size) + " follow it");
    }
    for (const Entry& e : entries) {
      if (e.end > data_size) {
        throw DataError(path, "header: tensor '" + e.name + "' data_offsets " + offsets_text(e.begin, e.end) +
                                  " are out of range (the data section has " + std::to_string(data_size) + " bytes)");
      }
    }
  }

  std::map<std::string, torch::Tensor> out;
  const uint64_t data_start = 8 + header_size;
  uint32_t crc = static_cast<uint32_t>(::crc32(0L, Z_NULL, 0));
  for (const Entry& e : entries) {
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
    if (!read_at(file.get(), data_start + e.begin, t.data_ptr(), e.end - e.begin)) {
      throw DataError(path, "read error in the data of tensor '" + e.name + "'");
    }
    crc = crc_update(crc, t.data_ptr(), e.end - e.begin);
    out.emplace(e.name, std::move(t));
  }
  auto stored = header.find(kMetadataKey);
  if (packed && stored != header.end() && stored->contains(kChecksumKey)) {
    std::string expected = (*stored)[kChecksumKey].get<std::string>();
    if (expected != hex32(crc))
      throw DataError(path, std::string("the data does not match its checksum (") + kChecksumKey + " " + expected + ", computed " +
                                hex32(crc) + "): the file is corrupt");
  }
  if (metadata) metadata->erase(kChecksumKey);
  return out;
}

}  // namespace lighter
