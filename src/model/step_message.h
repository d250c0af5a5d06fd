#pragma once
// What rank 0 tells the other ranks (model/follower.cpp), one message per model call: load a
// checkpoint, run a forward step or an MTP pass over these sequences' caches, report counters,
// unload, quit. Sequences are named by their cache's id (kv_cache.h); every rank keeps its own
// copy of each cache and brings it to rank 0's length (and copies) before the step.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace dsv3 {

enum class StepKind : uint8_t { Load, Unload, Forward, MtpStep, MtpForward, Stats, Quit };

// A cache as rank 0 has it when the step starts.
struct CacheRef {
  uint64_t id = 0;
  int64_t n_layers = 0;
  int64_t length = 0;             // rows filled before the step
  uint64_t origin_source = 0;     // nonzero: its rows were copied from this cache since the last step
  int64_t origin_rows = 0;
};

struct StepSegment {
  CacheRef cache;
  int64_t first_position = 0;  // MtpStep: where its rows go in the MTP layer
  std::vector<int32_t> tokens;
  uint8_t logits = 0;          // model.h Logits
};

struct StepMessage {
  StepKind kind = StepKind::Quit;
  std::vector<uint64_t> released;   // caches rank 0 freed since the last message
  std::vector<StepSegment> segments;
  std::vector<float> hidden;        // MtpStep, MtpForward: [tokens, hidden_size] input states
  bool want_hidden = false;         // Forward
  // Load
  std::string dir;
  int32_t threads = 0;
  bool load_mtp = false;
  uint8_t attention = 0;            // forward_context.h AttentionImpl
  int64_t max_context = 0;
  bool prefault = false;
  bool lock_memory = false;
  bool read_into_memory = false;
  int8_t isa = -1, math = -1, amx = -1;  // kernels::KernelChoice; -1: unset
};

// The load step for `dir` with rank 0's `options` (every per-run option a rank needs), and the
// options a follower loads with (their communicator left null).
struct ModelOptions;
StepMessage load_step(const std::string& dir, const ModelOptions& options);
ModelOptions load_options(const StepMessage& load);

std::vector<uint8_t> encode_step(const StepMessage& m);
Result<StepMessage> decode_step(std::span<const uint8_t> bytes);

}  // namespace dsv3
