#pragma once
// dsv3 inspect: what a checkpoint directory holds before anyone runs it. Architecture from
// config.json, parameter counts and byte footprints (model/footprint.h), the shards, the
// loader's validation with every finding listed, and optionally a scan of every value.
// Works on a directory with only config.json (counts from the config; weights absent).
//
// Verdict (the command's exit code): ok() is false when the config is fine but the weights
// cannot be loaded (unreadable shard, missing/mis-shaped/mistyped tensors, bad scales,
// partial MTP module) or when --verify found NaN/Inf values. Unused tensors and an entirely
// absent MTP module are warnings. A directory with config.json alone is ok.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/result.h"
#include "base/thread_pool.h"
#include "format/checkpoint.h"
#include "format/model_config.h"
#include "model/footprint.h"
#include "tools/validate.h"
#include "tools/value_scan.h"

namespace dsv3 {

struct ShardSummary {
  std::string file;      // relative to the model directory
  uint64_t bytes = 0;    // file size
  size_t tensors = 0;
};

struct InspectReport {
  std::string dir;
  ModelConfig config;
  std::vector<std::string> architectures;  // config.json "architectures", if any
  bool weights_present = false;            // an index or model.safetensors exists
  std::string weights_error;               // the checkpoint exists but could not be opened
  ModelFootprint footprint;
  // What the model would take in each standard mix (footprint.h standard_mixes), at group
  // sizes 32, 64 and 128, from the config alone: to see what fits before converting.
  std::vector<std::pair<int64_t, ModelFootprint>> mixes;
  std::vector<ShardSummary> shards;
  size_t tensor_count = 0;
  uint64_t tensor_bytes = 0;
  std::optional<CheckpointValidation> validation;  // when the checkpoint opened
  std::optional<ValueScanReport> verify;           // when asked for and the checkpoint opened

  bool ok() const;
};

struct InspectOptions {
  bool verify = false;
  ThreadPool* pool = nullptr;                             // for verify (required then)
  std::function<void(uint64_t total_bytes)> verify_started;  // before the scan starts
  std::function<void(uint64_t bytes)> verify_progress;    // from worker threads
  const std::atomic<bool>* cancel = nullptr;
};

// Errors only when the directory or its config.json is unusable; everything about the
// weights is reported inside the result.
Result<InspectReport> inspect_model(const std::string& dir, const InspectOptions& options = {});

// Human-readable report (several short sections).
std::string format_inspect_text(const InspectReport& report);
// Machine-readable report; see the schema comment in inspect_format.cpp.
Json inspect_to_json(const InspectReport& report);

}  // namespace dsv3
