#pragma once
// safetensors: an 8-byte little-endian header length N, N bytes of JSON header, then the
// tensor data. Parsing validates the whole file before any tensor is touched: header
// bounds, JSON shape, dtypes, shapes and sizes without overflow, and byte ranges that tile
// the data area exactly (no gaps, no overlaps, nothing past the end).

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "base/result.h"
#include "tensor/dtype.h"

namespace dsv3 {

constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;  // as the reference library
constexpr uint64_t kMaxDimension = uint64_t(1) << 48;

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets within the data area
  uint64_t end = 0;
  uint64_t numel() const;
};

// One opened, validated safetensors file. Tensor data stays in the mapping.
class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path, FileLoad load = FileLoad::Map);
  // Validates a header held in memory against a data area of `data_size` bytes (also used by
  // tests and tools that do not map a file).
  static Result<std::vector<TensorInfo>> parse_header(const std::string& header, uint64_t data_size,
                                                      std::map<std::string, std::string>* metadata);

  const std::string& path() const { return file_->path(); }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;
  // Pointer to a tensor's bytes in the mapping (may be unaligned for its dtype).
  const uint8_t* data(const TensorInfo& t) const { return file_->data() + data_start_ + t.begin; }
  uint64_t data_start() const { return data_start_; }
  const MappedFile& file() const { return *file_; }

 private:
  std::unique_ptr<MappedFile> file_;
  uint64_t data_start_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> by_name_;
  std::map<std::string, std::string> metadata_;
};

// Writes a safetensors file: header (sorted by name, padded to 8 bytes) then each tensor's
// bytes in header order. The writer streams: `fill` is called per tensor to produce bytes.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
};
std::string make_safetensors_header(const std::vector<TensorToWrite>& tensors,
                                    const std::map<std::string, std::string>& metadata,
                                    std::vector<uint64_t>* offsets);

// Writes a whole small safetensors file from memory (tensors in the order given), through a
// temporary name renamed on success.
struct TensorData {
  TensorToWrite info;
  const void* data;  // numel * dtype size bytes
};
Status write_safetensors_file(const std::string& path, const std::vector<TensorData>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace dsv3
