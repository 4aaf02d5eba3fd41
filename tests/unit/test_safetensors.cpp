#include "lighter_test.h"

#include <fstream>
#include <iterator>

#include "lighter/core/safetensors.h"

using lighter::DataError;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string u64_le(uint64_t n) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return out;
}

/// A safetensors file as Python writes it: length, space-padded header, data.
std::string file_bytes(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return u64_le(header.size()) + header + data;
}

template <class T>
std::string raw(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) out.append(reinterpret_cast<const char*>(&v), sizeof(T));
  return out;
}

/// Writes `bytes` to a fresh file and expects load_safetensors to throw a DataError containing `text`.
void expect_error(const std::string& name, const std::string& bytes, const std::string& text) {
  std::string path = lighter_test::temp_dir("st_errors_" + name) + "/bad.safetensors";
  write_bytes(path, bytes);
  INFO(name);
  REQUIRE_THROWS_AS(lighter::load_safetensors(path), DataError);
  LIGHTER_REQUIRE_THROWS_WITH(lighter::load_safetensors(path), text);
  LIGHTER_REQUIRE_THROWS_WITH(lighter::load_safetensors(path), path + ": ");
}

}  // namespace

TEST_CASE("safetensors round trip keeps names, dtypes, shapes and values", "[io]") {
  torch::manual_seed(1);
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"dense.kernel", torch::randn({2, 3})},
      {"f64", torch::randn({4}, torch::kFloat64)},
      {"f16", torch::randn({3, 2}).to(torch::kFloat16)},
      {"bf16", torch::randn({5}).to(torch::kBFloat16)},
      {"i64", torch::tensor({int64_t(-1), int64_t(0), int64_t(1), int64_t(1) << 40}, torch::kInt64).reshape({2, 2})},
      {"i32", torch::tensor({-7, 8, 9}, torch::kInt32)},
      {"i16", torch::tensor({-300, 300}, torch::kInt16)},
      {"i8", torch::tensor({-128, 127}, torch::kInt8)},
      {"u8", torch::tensor({0, 255, 17}, torch::kUInt8)},
      {"mask", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(3.5f)},
      {"empty", torch::empty({0, 4})},
      {"transposed", torch::arange(6, torch::kFloat32).reshape({2, 3}).t()},  // not contiguous
      {"deep", torch::randn({2, 1, 3, 2})},
  };
  std::string path = lighter_test::temp_dir("st_round") + "/w.safetensors";
  lighter::save_safetensors(path, tensors);
  auto loaded = lighter::load_safetensors(path);
  REQUIRE(loaded.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    INFO(name);
    REQUIRE(loaded.count(name) == 1);
    const torch::Tensor& back = loaded.at(name);
    REQUIRE(back.scalar_type() == t.scalar_type());
    REQUIRE(back.sizes() == t.sizes());
    REQUIRE(back.is_contiguous());
    REQUIRE(back.device().is_cpu());
    REQUIRE(torch::equal(back, t));
  }
  REQUIRE(loaded.at("scalar").dim() == 0);
  REQUIRE(loaded.at("scalar").item<float>() == 3.5f);

  // The layout the format prescribes: a header length that is a multiple of 8 and JSON that names every tensor.
  std::string bytes = read_bytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  REQUIRE(n % 8 == 0);
  auto header = lighter::json::parse(bytes.substr(8, n));
  REQUIRE(header["dense.kernel"]["dtype"] == "F32");
  REQUIRE(header["dense.kernel"]["shape"] == lighter::json::array({2, 3}));
  REQUIRE(header["scalar"]["shape"] == lighter::json::array());
  REQUIRE(header["mask"]["dtype"] == "BOOL");
  REQUIRE(header["bf16"]["dtype"] == "BF16");
  // The only metadata is Lighter's checksum of the data section (zlib's CRC-32), which readers may ignore.
  REQUIRE(header["__metadata__"].size() == 1);
  REQUIRE(header["__metadata__"]["lighter.crc32"].get<std::string>().size() == 8);
}

TEST_CASE("safetensors: a flipped bit in the data is caught by the checksum", "[io]") {
  std::string path = lighter_test::temp_dir("st_crc") + "/w.safetensors";
  lighter::save_safetensors(path, {{"a", torch::arange(16, torch::kFloat32)}, {"b", torch::ones({3}, torch::kInt64)}});
  std::string bytes = read_bytes(path);
  // A bit flipped near the end (inside tensor data) keeps the header valid, so only the checksum can notice.
  bytes[bytes.size() - 5] = static_cast<char>(bytes[bytes.size() - 5] ^ 0x10);
  lighter::write_file_atomic(path, bytes);
  LIGHTER_REQUIRE_THROWS_WITH(lighter::load_safetensors(path), "does not match its checksum");
  LIGHTER_REQUIRE_THROWS_WITH(lighter::load_safetensors(path), path);
}

TEST_CASE("safetensors metadata round trip", "[io]") {
  std::string path = lighter_test::temp_dir("st_meta") + "/w.safetensors";
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"lighter", "0.1.0"}, {"note", "ünïcode, \"quotes\""}};
  lighter::save_safetensors(path, {{"a", torch::ones({2})}}, meta);
  std::map<std::string, std::string> back = {{"stale", "entry"}};
  auto loaded = lighter::load_safetensors(path, &back);
  REQUIRE(back == meta);
  REQUIRE(torch::equal(loaded.at("a"), torch::ones({2})));

  // No tensors at all is a valid file too.
  lighter::save_safetensors(path, {}, {{"only", "metadata"}});
  REQUIRE(lighter::load_safetensors(path, &back).empty());
  REQUIRE(back == std::map<std::string, std::string>{{"only", "metadata"}});
}

TEST_CASE("safetensors reads a file laid out as Python's safetensors writes it", "[io]") {
  // Written byte by byte: Python orders the data by dtype alignment, so "b" (I64) comes before "a" (F32) here,
  // the header has spaces in it, and it is padded with spaces.
  std::string header =
      R"({"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [8, 24]},)"
      R"( "b": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]}, "h": {"dtype": "F16", "shape": [1],)"
      R"( "data_offsets": [24, 26]}, "z": {"dtype": "U8", "shape": [0], "data_offsets": [26, 26]}})";
  // 0x3C00 is 1.0 in IEEE half precision.
  std::string data = raw<int64_t>({42}) + raw<float>({1.5f, -2.0f, 0.25f, 8.0f}) + std::string("\x00\x3C", 2);
  std::string path = lighter_test::temp_dir("st_python") + "/model.safetensors";
  write_bytes(path, file_bytes(header, data));

  std::map<std::string, std::string> meta;
  auto t = lighter::load_safetensors(path, &meta);
  REQUIRE(meta.at("format") == "pt");
  REQUIRE(t.at("b").dim() == 0);
  REQUIRE(t.at("b").item<int64_t>() == 42);
  REQUIRE(torch::equal(t.at("a"), torch::tensor({1.5f, -2.0f, 0.25f, 8.0f}).reshape({2, 2})));
  REQUIRE(t.at("h").scalar_type() == torch::kFloat16);
  REQUIRE(t.at("h").item<float>() == 1.0f);
  REQUIRE(t.at("z").numel() == 0);
  REQUIRE(t.at("z").scalar_type() == torch::kUInt8);
}

TEST_CASE("safetensors rejects corrupt files with a message naming the problem", "[io]") {
  const std::string good_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string good_data = raw<float>({1.0f, 2.0f});

  expect_error("short", std::string("\x08\x00\x00", 3), "file too short to be safetensors (3 bytes");
  expect_error("empty", "", "file too short");

  std::string huge = file_bytes(good_header, good_data);
  huge[6] = '\x01';  // the header length now claims 2^48 bytes
  expect_error("length", huge, "goes beyond the end of the");

  std::string off_by_one = file_bytes(good_header, good_data);
  off_by_one[0] = static_cast<char>(off_by_one[0] + 1);  // one (zero) byte of data is read as header
  expect_error("length_plus_one", off_by_one, "malformed header JSON");

  expect_error("json", file_bytes(R"({"a": {"dtype": "F32",)", good_data), "malformed header JSON: ");
  expect_error("not_object", file_bytes("[1, 2]", ""), "expected a JSON object, got a list");
  expect_error("dtype", file_bytes(R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "xx"),
               "tensor 'a' has unknown or unsupported dtype \"F8_E4M3\" (supported: F32, F64");
  expect_error("missing_key", file_bytes(R"({"a":{"dtype":"F32","shape":[2]}})", good_data),
               "tensor 'a' has no \"data_offsets\"");
  expect_error("size", file_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", good_data),
               "tensor 'a': shape [3] of F32 needs 12 bytes but data_offsets [0, 8] hold 8");
  expect_error("overflow",
               file_bytes(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", good_data),
               "needs an impossible number of bytes");
  expect_error("negative", file_bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", good_data),
               "shape entry must be a non-negative integer, got -2");
  expect_error("reversed", file_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", good_data),
               "data_offsets [8, 0] end before they begin");
  expect_error("range",
               file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})",
                          good_data + good_data),
               "tensor 'b' data_offsets [16, 24] are out of range (the data section has 16 bytes)");
  expect_error("overlap",
               file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                          good_data + good_data),
               "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
  expect_error("metadata", file_bytes(R"({"__metadata__":{"epoch":3}})", ""),
               "__metadata__.epoch must be a string, got 3");

  // A valid file cut short by a few bytes.
  std::string dir = lighter_test::temp_dir("st_truncate");
  lighter::save_safetensors(dir + "/w.safetensors", {{"w", torch::ones({4, 4})}, {"b", torch::zeros({4})}});
  std::string whole = read_bytes(dir + "/w.safetensors");
  expect_error("truncated", whole.substr(0, whole.size() - 3),
               "file truncated: the header describes 80 bytes of data but only 77 follow it");

  LIGHTER_REQUIRE_THROWS_WITH(lighter::load_safetensors(dir + "/absent.safetensors"), "cannot open file");
}

TEST_CASE("safetensors refuses what it cannot write", "[io]") {
  std::string path = lighter_test::temp_dir("st_save_errors") + "/w.safetensors";
  REQUIRE_THROWS_AS(lighter::save_safetensors(path, {{"c", torch::zeros({2}, torch::kComplexFloat)}}), DataError);
  LIGHTER_REQUIRE_THROWS_WITH(lighter::save_safetensors(path, {{"c", torch::zeros({2}, torch::kComplexFloat)}}),
                              "safetensors cannot store dtype");
  LIGHTER_REQUIRE_THROWS_WITH(lighter::save_safetensors(path, {{"a", torch::zeros({1})}, {"a", torch::ones({1})}}),
                              "tensor name 'a' is given twice");
  LIGHTER_REQUIRE_THROWS_WITH(lighter::save_safetensors(path, {{"__metadata__", torch::zeros({1})}}), "reserved");
  LIGHTER_REQUIRE_THROWS_WITH(lighter::save_safetensors("/nonexistent-dir/w.safetensors", {{"a", torch::zeros({1})}}),
                              "cannot write");
}

TEST_CASE("safetensors saves CUDA tensors through the CPU", "[io][cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("CUDA not available; skipped");
    return;
  }
  std::string path = lighter_test::temp_dir("st_cuda") + "/w.safetensors";
  torch::Tensor t = torch::randn({3, 5}, torch::kCUDA);
  lighter::save_safetensors(path, {{"t", t}});
  REQUIRE(torch::equal(lighter::load_safetensors(path).at("t"), t.cpu()));
}
