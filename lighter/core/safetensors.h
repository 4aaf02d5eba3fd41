#pragma once
/// safetensors, the weight-file format Lighter uses (https://github.com/huggingface/safetensors): an 8-byte
/// little-endian header length N, N bytes of JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]},
/// "__metadata__": {str: str}} padded with spaces to a multiple of 8, then the raw little-endian data, offsets
/// counted from the end of the header.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace lighter {

/// Writes named tensors (any device; copied to CPU contiguous) atomically (write_file_atomic).
/// Dtypes F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL; another dtype, a repeated name or the reserved
/// name "__metadata__" is a DataError naming the file.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// Reads all tensors (CPU, contiguous). Validates everything and throws DataError naming the file and the problem:
/// file too short, header length beyond the file, malformed header JSON, unknown dtype, shape/dtype size not
/// matching data_offsets, offsets out of range or overlapping, file truncated (data shorter than the header says).
/// When `metadata` is given it receives the "__metadata__" entries (cleared first).
std::map<std::string, torch::Tensor> load_safetensors(const std::string& path,
                                                      std::map<std::string, std::string>* metadata = nullptr);

/// The safetensors name of a dtype ("F32", ...); DataError naming `path` for a dtype the format cannot hold.
std::string safetensors_dtype(torch::ScalarType dtype, const std::string& path = "");

}  // namespace lighter
