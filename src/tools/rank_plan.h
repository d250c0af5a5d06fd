#pragma once
// dsv3 inspect --ranks W: what each rank of a split model (model/partition.h) holds: the weight
// bytes it reads, the column slices it copies, and the shard files it needs, so that each
// machine gets only those files.

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/partition.h"

namespace dsv3 {

struct RankShare {
  int rank = 0;
  Partition partition;
  uint64_t weight_bytes = 0;   // every weight this rank reads (mapped views and copied slices)
  uint64_t copied_bytes = 0;   // of them, column slices copied at load (RowParallelLinear shares)
  uint64_t embedding_bytes = 0;  // of them, the embedding table's rows: only the rows of tokens seen are read
  uint64_t norm_bytes = 0;     // norms and router biases, as float32
  std::vector<std::string> shard_files;  // the files its tensors are in
};

// Each rank's share of the checkpoint in `dir` over `world` ranks, MTP layers included when
// `with_mtp` (and present). Errors as loading would: a split that cannot be done, a broken file.
Result<std::vector<RankShare>> plan_ranks(const std::string& dir, int world, bool with_mtp);

// What a rank keeps resident once every weight was used: all but the embedding rows of tokens
// not seen (its peak RSS, besides activations and caches).
inline uint64_t resident_weight_bytes(const RankShare& r) { return r.weight_bytes - r.embedding_bytes + r.norm_bytes; }

std::string format_rank_plan(const std::vector<RankShare>& plan);

}  // namespace dsv3
