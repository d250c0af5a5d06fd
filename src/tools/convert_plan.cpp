#include "tools/convert_plan.h"

#include <algorithm>
#include <set>

#include "model/weights.h"
#include "tensor/shape.h"

namespace dsv3 {
namespace {

constexpr const char* kScaleSuffix = "_scale_inv";
constexpr const char* kGroupScaleSuffix = "_scale";

const char* rule_format_name(RuleFormat f) {
  switch (f) {
    case RuleFormat::Keep: return "keep";
    case RuleFormat::Bf16: return "bf16";
    case RuleFormat::Int8: return "int8";
    case RuleFormat::Int4: return "int4";
  }
  return "?";
}

}  // namespace

Result<std::vector<FormatRule>> parse_format_rules(const std::string& text) {
  std::vector<FormatRule> rules;
  size_t begin = 0;
  while (begin <= text.size() && !text.empty()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, end - begin);
    begin = end + 1;
    const size_t eq = item.rfind('=');
    if (eq == std::string::npos || eq == 0)
      return Error("--keep: '" + item.substr(0, 80) + "' is not PATTERN=FORMAT (e.g. 'self_attn|lm_head=int8')");
    FormatRule r;
    r.pattern = item.substr(0, eq);
    const std::string f = item.substr(eq + 1);
    if (f == "int8") r.format = RuleFormat::Int8;
    else if (f == "int4") r.format = RuleFormat::Int4;
    else if (f == "bf16") r.format = RuleFormat::Bf16;
    else if (f == "keep") r.format = RuleFormat::Keep;
    else return Error("--keep: format '" + f.substr(0, 40) + "' in '" + item.substr(0, 80) + "' is not int8, int4, bf16 or keep");
    try {
      r.re = std::regex(r.pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return Error("--keep: pattern '" + r.pattern.substr(0, 80) + "' is not a regular expression: " + e.what());
    }
    rules.push_back(std::move(r));
    if (end == text.size()) break;
  }
  return rules;
}

uint64_t PlannedTensor::out_bytes() const { return shape_numel(shape) * static_cast<uint64_t>(dtype_size(dtype)); }

uint64_t PlannedShard::out_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors) n += t.out_bytes();
  return n;
}

Result<ConvertPlan> plan_conversion(const ModelConfig& config, const Checkpoint& ck, ConvertTarget target,
                                   const IntPlanOptions& int_options) {
  ConvertPlan plan;
  if (config.quantization_config) {
    plan.block_rows = config.quantization_config->block_rows;
    plan.block_cols = config.quantization_config->block_cols;
  }
  const bool to_int = target == ConvertTarget::Int8 || target == ConvertTarget::Int4;
  if (to_int && (int_options.group_size < 16 || int_options.group_size % 16 != 0 || int_options.group_size > 65536))
    return Error(str_f("--group-size %lld: must be a multiple of 16 in [16, 65536]",
                       static_cast<long long>(int_options.group_size)));
  // Projection weights, from the one tensor list (MTP layers included); with --to int8/int4
  // also the other 2-D weights a rule may name.
  std::set<std::string> projections, rule_candidates;
  if (target != ConvertTarget::Bf16)
    for (const TensorSpec& s : model_tensor_specs(config)) {
      if (s.role == TensorRole::Linear) projections.insert(s.name);
      if (s.shape.size() == 2) rule_candidates.insert(s.name);
    }
  std::vector<bool> rule_used(int_options.rules.size(), false);

  const std::string prefix = ck.dir() + "/";
  for (const auto& shard : ck.shards()) {
    PlannedShard ps;
    ps.file = shard->path().substr(prefix.size());
    plan.shards.push_back(std::move(ps));
  }

  // Input scale tensors consumed by a conversion: dropped from the output, their bytes counted
  // with their weight.
  std::set<std::string> consumed_scales;
  // The FP8 scales of `t`, checked; an error names the tensor.
  auto fp8_scales = [&](const std::string& name, const TensorRef& t) -> Result<const TensorRef*> {
    const std::string where = "tensor '" + name + "'";
    const TensorRef* s = ck.find(name + kScaleSuffix);
    if (t.shape.size() != 2) return Error(where + ": F8_E4M3 tensor of rank " + std::to_string(t.shape.size()) + ", expected 2");
    if (!s) return Error(where + ": F8_E4M3 without '" + name + kScaleSuffix + "': cannot dequantize");
    const std::vector<int64_t> want = {(t.shape[0] + plan.block_rows - 1) / plan.block_rows,
                                       (t.shape[1] + plan.block_cols - 1) / plan.block_cols};
    if (s->dtype != DType::F32 || s->shape != want)
      return Error(where + ": scales '" + name + kScaleSuffix + "' are " + dtype_name(s->dtype) + " " +
                   shape_string(s->shape) + ", expected F32 " + shape_string(want));
    return s;
  };
  for (const auto& [name, t] : ck.tensors()) {
    PlannedTensor p;
    p.name = name;
    p.dtype = t.dtype;
    p.shape = t.shape;
    p.source = &t;
    p.progress_bytes = t.nbytes;
    p.block_rows = plan.block_rows;
    p.block_cols = plan.block_cols;
    const std::string where = "tensor '" + name + "'";
    // What this tensor becomes: bf16 (dequantize FP8), int8 / int4, or as it is.
    RuleFormat format = RuleFormat::Keep;
    if (target == ConvertTarget::Bf16) format = RuleFormat::Bf16;
    if (to_int) {
      if (projections.count(name)) format = target == ConvertTarget::Int8 ? RuleFormat::Int8 : RuleFormat::Int4;
      if (rule_candidates.count(name))
        for (size_t i = 0; i < int_options.rules.size(); ++i)
          if (std::regex_search(name, int_options.rules[i].re)) {
            format = int_options.rules[i].format;
            rule_used[i] = true;
            break;
          }
    }
    if (format == RuleFormat::Bf16 && t.dtype == DType::F8_E4M3) {
      DSV3_ASSIGN(const TensorRef* s, fp8_scales(name, t));
      p.op = TensorOp::DequantFp8;
      p.dtype = DType::BF16;
      p.source_scales = s;
      p.progress_bytes += s->nbytes;
      consumed_scales.insert(name + kScaleSuffix);
      ++plan.converted;
    } else if (format == RuleFormat::Int8 || format == RuleFormat::Int4) {
      if (t.dtype == DType::I8 || t.dtype == DType::U8)
        return Error(where + " is already " + dtype_name(t.dtype) + " (dsv3_int): convert from the FP8 or BF16 original");
      if (t.shape.size() != 2 || !(is_float_weight_dtype(t.dtype)))
        return Error(where + ": " + dtype_name(t.dtype) + " " + shape_string(t.shape) + " cannot become " +
                     rule_format_name(format) + " (a 2-D F8_E4M3, BF16, F16 or F32 weight can)");
      if (t.dtype == DType::F8_E4M3) {
        DSV3_ASSIGN(const TensorRef* s, fp8_scales(name, t));
        p.source_scales = s;
        p.progress_bytes += s->nbytes;
        consumed_scales.insert(name + kScaleSuffix);
      }
      p.op = TensorOp::QuantInt;
      p.bits = format == RuleFormat::Int8 ? 8 : 4;
      p.group_size = int_options.group_size;
      p.dtype = p.bits == 8 ? DType::I8 : DType::U8;
      p.shape = {t.shape[0], p.bits == 8 ? t.shape[1] : (t.shape[1] + 1) / 2};
      PlannedTensor scales;
      scales.name = name + kGroupScaleSuffix;
      scales.dtype = DType::F16;
      scales.shape = {t.shape[0], (t.shape[1] + p.group_size - 1) / p.group_size};
      scales.op = TensorOp::WriteGroupScales;
      scales.source = &t;
      scales.bits = p.bits;
      scales.group_size = p.group_size;
      if (ck.find(scales.name)) return Error(where + ": the checkpoint already holds '" + scales.name + "'");
      plan.shards[static_cast<size_t>(t.shard)].tensors.push_back(std::move(scales));
      ++plan.scales_added;
      ++plan.converted;
    } else if (target == ConvertTarget::Fp8 && projections.count(name) &&
               (t.dtype == DType::BF16 || t.dtype == DType::F16 || t.dtype == DType::F32) && t.shape.size() == 2) {
      p.op = TensorOp::QuantFp8;
      p.dtype = DType::F8_E4M3;
      PlannedTensor scales;
      scales.name = name + kScaleSuffix;
      scales.dtype = DType::F32;
      scales.shape = {(t.shape[0] + plan.block_rows - 1) / plan.block_rows,
                      (t.shape[1] + plan.block_cols - 1) / plan.block_cols};
      scales.op = TensorOp::WriteScales;
      scales.source = &t;
      scales.block_rows = plan.block_rows;
      scales.block_cols = plan.block_cols;
      // A stale scale tensor next to a non-FP8 weight is replaced by the new one.
      if (const TensorRef* old = ck.find(scales.name)) {
        p.progress_bytes += old->nbytes;
        consumed_scales.insert(scales.name);
      }
      plan.shards[static_cast<size_t>(t.shard)].tensors.push_back(std::move(scales));
      ++plan.scales_added;
      ++plan.converted;
    }
    plan.shards[static_cast<size_t>(t.shard)].tensors.push_back(std::move(p));
  }
  for (size_t i = 0; i < rule_used.size(); ++i)
    if (!rule_used[i])
      return Error("--keep: pattern '" + int_options.rules[i].pattern.substr(0, 80) +
                   "' matches no weight tensor (names as in the checkpoint, e.g. model.layers.0.self_attn.q_a_proj.weight, "
                   "lm_head.weight)");
  plan.fp8_left = false;
  for (const PlannedShard& s : plan.shards)
    for (const PlannedTensor& t : s.tensors)
      if (t.dtype == DType::F8_E4M3 && !consumed_scales.count(t.name)) plan.fp8_left = true;

  for (PlannedShard& s : plan.shards) {
    std::vector<PlannedTensor> kept;
    for (PlannedTensor& t : s.tensors) {
      if (t.op == TensorOp::Copy && consumed_scales.count(t.name)) {
        ++plan.scales_dropped;
        continue;
      }
      if (t.op == TensorOp::Copy) ++plan.copied;
      plan.input_bytes += t.progress_bytes * (t.op != TensorOp::WriteScales && t.op != TensorOp::WriteGroupScales);
      plan.output_bytes += t.out_bytes();
      kept.push_back(std::move(t));
    }
    std::sort(kept.begin(), kept.end(), [](const PlannedTensor& a, const PlannedTensor& b) { return a.name < b.name; });
    s.tensors = std::move(kept);
  }
  return plan;
}

}  // namespace dsv3
