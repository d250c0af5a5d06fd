#pragma once
// dsv3 convert: a checkpoint rewritten with FP8 projections dequantized to BF16 (what
// DeepSeek's fp8_cast_bf16.py does), BF16/F16/F32 projections quantized to FP8 with
// 128x128 block scales (how the published checkpoints are made), or FP8/BF16 projections
// quantized to the grouped int8 / int4 formats (docs/formats.md), per tensor by rule. See convert_plan.h for the
// per-tensor rules and shard_stream.h for the streaming and its memory bound.
//
// Output directory protocol, so that an interrupted run never looks complete:
//   1. refuse --out equal to --model, or an --out holding files convert would not write;
//   2. remove stale *.dsv3-partial files and any previous config.json and index first;
//   3. write each shard as <name>.dsv3-partial, fsync, rename;
//   4. copy the non-weight files (tokenizer*, generation_config.json, ...), then write the
//      index, then config.json (quantization_config removed for bf16, added for fp8, dsv3_int for int8 / int4), last.
// A directory without config.json is incomplete; a rerun starts from step 1.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/thread_pool.h"
#include "tools/convert_plan.h"
#include "tools/shard_stream.h"

namespace dsv3 {

struct ConvertOptions {
  std::string model_dir;
  std::string out_dir;
  ConvertTarget target = ConvertTarget::Bf16;
  IntPlanOptions int_options;   // --to int8 / int4: group size and --keep rules
  std::string rules_text;       // the --keep text, recorded in quantization_config
  StreamOptions stream;  // chunking, fsync, cancellation, per-batch progress (input bytes)
  std::function<void(uint64_t total_input_bytes)> on_start;  // once the plan is known
};

struct ConvertSummary {
  size_t shards = 0;
  size_t converted = 0;        // tensors whose dtype changed
  size_t copied = 0;           // tensors copied byte for byte
  size_t scales_dropped = 0;
  size_t scales_added = 0;
  uint64_t input_bytes = 0;    // tensor bytes read
  uint64_t output_bytes = 0;   // tensor bytes written
  uint64_t buffer_bound = 0;   // the streaming buffers' upper bound (shard_stream.h)
  std::vector<std::string> copied_files;  // non-weight files
  std::vector<std::string> skipped;       // entries of the model directory not carried over, with why
  double seconds = 0;
};

Result<ConvertSummary> convert_checkpoint(const ConvertOptions& options, ThreadPool& pool);

}  // namespace dsv3
