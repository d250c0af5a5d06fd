#pragma once
// A checkpoint directory in the HuggingFace layout: `model.safetensors.index.json` naming the
// shard of every tensor, or a single `model.safetensors`. Shards are mapped, validated and
// cross-checked against the index: shard paths stay inside the directory, every shard the
// index names exists, every indexed tensor is in its shard and in one shard only (a shard's
// tensor missing from the index, or a wrong total_size, is a warning). Tensors are then found
// by name.

#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "base/result.h"
#include "format/safetensors.h"

namespace dsv3 {

// A tensor as stored: dtype, shape and a pointer into a mapped shard (or, for the rare tensor
// whose offset is misaligned for its dtype, into an aligned copy owned by the checkpoint).
struct TensorRef {
  const std::string* name = nullptr;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  int shard = -1;  // index into Checkpoint::shards()
  uint64_t numel() const;
};

class Checkpoint {
 public:
  // Opens every shard of the checkpoint in `dir`; errors name the file and tensor.
  static Result<std::unique_ptr<Checkpoint>> open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const TensorRef* find(const std::string& name) const;
  const std::map<std::string, TensorRef>& tensors() const { return tensors_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }
  uint64_t total_file_bytes() const;
  // Bytes copied because of misaligned offsets (normally 0).
  uint64_t copied_bytes() const { return copied_bytes_; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, TensorRef> tensors_;
  // Aligned copies are allocated with an alignment and must be freed with the same.
  struct AlignedDelete {
    void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  std::vector<std::unique_ptr<uint8_t[], AlignedDelete>> aligned_copies_;
  uint64_t copied_bytes_ = 0;
};

// Checks a shard file name from an index against escaping the model directory: it must
// be a plain relative path without '..', backslashes or NUL; if it is a symlink, its target
// must stay inside the directory (or inside the `blobs/` folder of a HuggingFace hub cache
// snapshot, which is how the hub stores downloads).
Status check_shard_path(const std::string& dir, const std::string& file);

}  // namespace dsv3
