#pragma once
// What `dsv3 convert` writes, decided before any byte is: for every output shard, the tensors
// it holds (sorted by name) and how each is produced from the input. Output shards keep the
// input's file names and tensor placement (as DeepSeek's fp8_cast_bf16.py does); a new
// weight_scale_inv goes into its weight's shard.
//
//   --to bf16: an F8_E4M3 tensor with its weight_scale_inv becomes BF16, each value the
//              float32 product e4m3 * scale_inv rounded to nearest even; the scales are dropped.
//   --to fp8:  the projection weights (TensorRole::Linear of the config's tensor list) stored as
//              BF16/F16/F32 become F8_E4M3 with F32 block scales (scale = amax / 448 per block,
//              q = e4m3(w / scale) rounded to nearest even), as the published checkpoints are
//              made. Router gates, norms, embeddings, head and eh_proj stay as they are.
//   --to int8 / int4: the projection weights (FP8 with their scales, or BF16/F16/F32) become
//              the grouped integer formats (docs/formats.md): I8 [out, in] or U8 [out,
//              ceil(in / 2)] (int4, two per byte) plus an F16 `{name}_scale` [out,
//              ceil(in / group_size)]; the FP8 scales are dropped. Rules (`--keep`) choose
//              another format per tensor by name: int8, int4, bf16 (FP8 dequantized as --to
//              bf16 does; others as stored) or keep (as stored); a rule may also name tensors
//              that are not projections (lm_head, embed_tokens, shared_head.head, eh_proj).
//   Everything else is copied byte for byte.

#include <cstdint>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "base/result.h"
#include "format/checkpoint.h"
#include "format/model_config.h"

namespace dsv3 {

enum class ConvertTarget { Bf16, Fp8, Int8, Int4 };

enum class TensorOp {
  Copy,         // bytes as stored
  DequantFp8,   // F8_E4M3 + scales -> BF16
  QuantFp8,     // BF16/F16/F32 -> F8_E4M3 (its scales are a separate WriteScales tensor)
  WriteScales,  // the F32 weight_scale_inv of the QuantFp8 tensor `source` (computed with it)
  QuantInt,     // F8_E4M3 (+ scales) or BF16/F16/F32 -> I8 / U8 (its scales: WriteGroupScales)
  WriteGroupScales,  // the F16 weight_scale of the QuantInt tensor `source`
};

// One --keep rule: tensors whose checkpoint name matches `pattern` (std::regex, ECMAScript,
// searched anywhere in the name) get `format`. The first matching rule wins.
enum class RuleFormat { Keep, Bf16, Int8, Int4 };
struct FormatRule {
  std::string pattern;
  std::regex re;
  RuleFormat format = RuleFormat::Keep;
};
// Parses "regex=int8,regex2=bf16" (int8 | int4 | bf16 | keep); patterns cannot contain ','.
Result<std::vector<FormatRule>> parse_format_rules(const std::string& text);

struct IntPlanOptions {
  int64_t group_size = 64;  // columns per scale (a multiple of 16)
  std::vector<FormatRule> rules;
};

struct PlannedTensor {
  std::string name;               // output name
  DType dtype = DType::F32;       // output dtype
  std::vector<int64_t> shape;     // output shape
  TensorOp op = TensorOp::Copy;
  const TensorRef* source = nullptr;         // input tensor (for WriteScales: the weight it scales)
  const TensorRef* source_scales = nullptr;  // DequantFp8: the input's weight_scale_inv
  int64_t block_rows = 128, block_cols = 128;
  int bits = 0;                   // QuantInt / WriteGroupScales: 8 or 4
  int64_t group_size = 0;         // QuantInt / WriteGroupScales
  uint64_t progress_bytes = 0;    // input bytes this tensor accounts for (dropped scales included)

  uint64_t out_bytes() const;
};

struct PlannedShard {
  std::string file;                     // output (= input) file name
  std::vector<PlannedTensor> tensors;   // sorted by name: a weight precedes its weight_scale_inv
  uint64_t out_bytes() const;
};

struct ConvertPlan {
  std::vector<PlannedShard> shards;
  uint64_t input_bytes = 0;       // sum of progress_bytes
  uint64_t output_bytes = 0;      // tensor bytes written
  size_t converted = 0;           // tensors whose dtype changes
  size_t copied = 0;
  size_t scales_dropped = 0;
  size_t scales_added = 0;
  int64_t block_rows = 128, block_cols = 128;  // FP8 blocks (of the input for bf16, of the output for fp8)
  bool fp8_left = false;          // some FP8 weights stay FP8 (int targets with keep rules)
};

// Plans the conversion of `checkpoint` (described by `config`). Errors name the tensor when
// an FP8 weight lacks usable scales (--to bf16).
Result<ConvertPlan> plan_conversion(const ModelConfig& config, const Checkpoint& checkpoint, ConvertTarget target,
                                   const IntPlanOptions& int_options = {});

}  // namespace dsv3
