#pragma once
// Writes one planned output shard, streaming: each tensor is cut into work items of at most
// `chunk_bytes` (row bands; FP8 quantization in whole 128-row block bands), a batch of items
// is computed in parallel on the pool while the previous batch is written by a writer thread
// (double buffering), and copied tensors go from the input mapping straight to the file. Input
// pages are released from the process once consumed (tools/page_release.h).
//
// Memory bound: 2 batches x batch_items x 2 x chunk_bytes of buffers (each slot: an output
// buffer and a float staging buffer), the 8 MiB direct-I/O buffer, and the FP8 scales of the
// tensors quantized in the shard (1/16384 of their values, as F32), and the F16 group scales
// of the int8 / int4 tensors of the shard (2 / group_size bytes per value). Neither a shard nor a
// tensor is ever held whole. stream_buffer_bound() computes it.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "base/result.h"
#include "base/thread_pool.h"
#include "format/checkpoint.h"
#include "tools/convert_plan.h"

namespace dsv3 {

struct StreamOptions {
  uint64_t chunk_bytes = uint64_t(4) << 20;
  int batch_items = 0;                            // 0: twice the pool's threads (at most 64)
  bool durable = true;                            // fsync before the rename
  bool direct_io = true;                          // write shards with O_DIRECT (partial_file.h)
  const std::atomic<bool>* cancel = nullptr;      // checked between items: "interrupted"
  std::function<void(uint64_t)> on_progress;      // input bytes done, from the calling thread
};

// Upper bound of the buffer memory write_planned_shard uses with these options.
uint64_t stream_buffer_bound(const StreamOptions& options, const ThreadPool& pool);

// Writes `shard` to `out_path` (through a .dsv3-partial file renamed on success; on any error
// or cancellation the partial file is removed).
Status write_planned_shard(const PlannedShard& shard, const Checkpoint& checkpoint, const std::string& out_path,
                           ThreadPool& pool, const StreamOptions& options);

}  // namespace dsv3
