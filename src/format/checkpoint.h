#pragma once
// A checkpoint directory in the HuggingFace layout: `model.safetensors.index.json` naming the
// shard of every tensor, or a single `model.safetensors`. Shards are mapped, validated and
// cross-checked against the index: shard paths stay inside the directory, every shard the
// index names exists, every indexed tensor is in its shard and in one shard only (a shard's
// tensor missing from the index, or a wrong total_size, is a warning). Tensors are then found
// by name. A rank of a split model opens only the shards holding tensors it looks up
// (ShardOpening::OnFirstUse), so that a machine needs only those files.

#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "base/memory_stats.h"
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

// Which shards Checkpoint::open maps.
enum class ShardOpening {
  All,         // every shard the index names, at open (and the whole index is cross-checked)
  OnFirstUse,  // only the index at open; a shard when find() first asks for one of its tensors
};

class Checkpoint {
 public:
  // Opens the checkpoint in `dir`; errors name the file and tensor.
  // `load`: how each shard comes into memory (base/mapped_file.h: mapped, or read: --no-mmap).
  static Result<std::unique_ptr<Checkpoint>> open(const std::string& dir, ShardOpening opening = ShardOpening::All,
                                                  FileLoad load = FileLoad::Map);

  const std::string& dir() const { return dir_; }
  // The tensor, or null when the checkpoint has none of that name. OnFirstUse: maps its shard
  // if this is the first tensor asked for from it (not thread-safe: loading is one thread); a
  // shard that cannot be opened makes this null and shard_error() says why.
  const TensorRef* find(const std::string& name) const;
  // The first shard that OnFirstUse could not open (missing, unreadable, broken), else ok.
  Status shard_error() const { return shard_error_; }
  // The tensors of the opened shards (all of them, with ShardOpening::All).
  const std::map<std::string, TensorRef>& tensors() const { return tensors_; }
  // One entry per shard file, in index order; null for a shard OnFirstUse has not opened.
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }
  // Paths of the opened shard files, sorted.
  std::vector<std::string> opened_shard_paths() const;
  uint64_t total_file_bytes() const;
  // The opened shards' pages in memory, and how many of them are in 2 MB pages.
  PageResidency page_residency() const;
  // Bytes copied because of misaligned offsets (normally 0).
  uint64_t copied_bytes() const { return copied_bytes_; }

 private:
  // Maps shard `s` and adds its tensors, checked against the index.
  Status open_shard(size_t s) const;

  std::string dir_;
  FileLoad load_ = FileLoad::Map;
  bool have_index_ = false;
  std::map<std::string, size_t> shard_of_;           // the index: tensor -> shard number
  std::vector<std::string> shard_files_;             // shard number -> file name in dir_
  std::vector<std::vector<std::string>> indexed_;    // shard number -> the tensors the index puts there
  // Filled as shards open (at open(), or by find() with OnFirstUse).
  mutable std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  mutable std::map<std::string, TensorRef> tensors_;
  mutable Status shard_error_;
  // Aligned copies are allocated with an alignment and must be freed with the same.
  struct AlignedDelete {
    void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  mutable std::vector<std::unique_ptr<uint8_t[], AlignedDelete>> aligned_copies_;
  mutable uint64_t copied_bytes_ = 0;
};

// Checks a shard file name from an index against escaping the model directory: it must
// be a plain relative path without '..', backslashes or NUL; if it is a symlink, its target
// must stay inside the directory (or inside the `blobs/` folder of a HuggingFace hub cache
// snapshot, which is how the hub stores downloads).
Status check_shard_path(const std::string& dir, const std::string& file);

}  // namespace dsv3
