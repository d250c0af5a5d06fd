#include "tools/convert_plan.h"

#include <algorithm>
#include <set>

#include "model/weights.h"
#include "tensor/shape.h"

namespace dsv3 {
namespace {

constexpr const char* kScaleSuffix = "_scale_inv";

}  // namespace

uint64_t PlannedTensor::out_bytes() const { return shape_numel(shape) * static_cast<uint64_t>(dtype_size(dtype)); }

uint64_t PlannedShard::out_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors) n += t.out_bytes();
  return n;
}

Result<ConvertPlan> plan_conversion(const ModelConfig& config, const Checkpoint& ck, ConvertTarget target) {
  ConvertPlan plan;
  if (config.quantization_config) {
    plan.block_rows = config.quantization_config->block_rows;
    plan.block_cols = config.quantization_config->block_cols;
  }
  // Projection weights, from the one tensor list (MTP layers included).
  std::set<std::string> projections;
  if (target == ConvertTarget::Fp8)
    for (const TensorSpec& s : model_tensor_specs(config))
      if (s.role == TensorRole::Linear) projections.insert(s.name);

  const std::string prefix = ck.dir() + "/";
  for (const auto& shard : ck.shards()) {
    PlannedShard ps;
    ps.file = shard->path().substr(prefix.size());
    plan.shards.push_back(std::move(ps));
  }

  // Input scale tensors consumed by a conversion: dropped from the output, their bytes counted
  // with their weight.
  std::set<std::string> consumed_scales;
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
    if (target == ConvertTarget::Bf16 && t.dtype == DType::F8_E4M3) {
      const TensorRef* s = ck.find(name + kScaleSuffix);
      if (t.shape.size() != 2) return Error(where + ": F8_E4M3 tensor of rank " + std::to_string(t.shape.size()) + ", expected 2");
      if (!s) return Error(where + ": F8_E4M3 without '" + name + kScaleSuffix + "': cannot dequantize");
      const std::vector<int64_t> want = {(t.shape[0] + plan.block_rows - 1) / plan.block_rows,
                                         (t.shape[1] + plan.block_cols - 1) / plan.block_cols};
      if (s->dtype != DType::F32 || s->shape != want)
        return Error(where + ": scales '" + name + kScaleSuffix + "' are " + dtype_name(s->dtype) + " " +
                     shape_string(s->shape) + ", expected F32 " + shape_string(want));
      p.op = TensorOp::DequantFp8;
      p.dtype = DType::BF16;
      p.source_scales = s;
      p.progress_bytes += s->nbytes;
      consumed_scales.insert(name + kScaleSuffix);
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

  for (PlannedShard& s : plan.shards) {
    std::vector<PlannedTensor> kept;
    for (PlannedTensor& t : s.tensors) {
      if (t.op == TensorOp::Copy && consumed_scales.count(t.name)) {
        ++plan.scales_dropped;
        continue;
      }
      if (t.op == TensorOp::Copy) ++plan.copied;
      plan.input_bytes += t.progress_bytes * (t.op != TensorOp::WriteScales);
      plan.output_bytes += t.out_bytes();
      kept.push_back(std::move(t));
    }
    std::sort(kept.begin(), kept.end(), [](const PlannedTensor& a, const PlannedTensor& b) { return a.name < b.name; });
    s.tensors = std::move(kept);
  }
  return plan;
}

}  // namespace dsv3
