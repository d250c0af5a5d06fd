#include "model/partition.h"

#include <algorithm>

namespace dsv3 {

Range split_range(int64_t n, int parts, int r, int64_t unit) {
  const int64_t units = (n + unit - 1) / unit, base = units / parts, extra = units % parts;
  const int64_t first = r * base + std::min<int64_t>(r, extra), count = base + (r < extra ? 1 : 0);
  return {std::min(n, first * unit), std::min(n, (first + count) * unit)};
}

Partition whole_model(const ModelConfig& c) {
  Partition p;
  p.heads = {0, c.num_attention_heads};
  p.experts = {0, c.n_routed_experts};
  p.vocab = {0, c.vocab_size};
  p.dense_inter = {0, c.intermediate_size};
  p.shared_inter = {0, c.moe_intermediate_size * c.n_shared_experts};
  return p;
}

Result<Partition> make_partition(const ModelConfig& c, int rank, int world) {
  if (world == 1) return whole_model(c);
  if (c.has_indexer())
    return error_f("config.json: DeepSeek-V3.2 sparse attention (index_topk) cannot be split across ranks yet; run it "
                   "in one process (%d ranks asked)",
                   world);
  // Column slices of grouped int weights (packed int4, per-group scales) are not written yet:
  // refuse rather than slice them as if they were FP8 blocks.
  if (c.quantization_config && c.quantization_config->quant_method == "dsv3_int")
    return error_f("config.json: quantization_config.quant_method \"dsv3_int\" (int8 / int4 weights) cannot be split "
                   "across ranks yet; run it in one process, or split the FP8 or BF16 checkpoint (%d ranks asked)",
                   world);
  const int64_t block = c.quantization_config ? c.quantization_config->block_cols : 128;
  auto check = [&](const char* field, int64_t n) -> Status {
    if (n > 0 && n < world)
      return error_f("config.json: %s is %lld, which cannot be split over %d ranks (each rank needs at least one); "
                     "use at most %lld ranks",
                     field, static_cast<long long>(n), world, static_cast<long long>(n));
    return {};
  };
  DSV3_TRY(check("num_attention_heads", c.num_attention_heads));
  DSV3_TRY(check("n_routed_experts", c.n_routed_experts));
  DSV3_TRY(check("vocab_size", c.vocab_size));
  DSV3_TRY(check("intermediate_size", c.intermediate_size));
  DSV3_TRY(check("moe_intermediate_size * n_shared_experts", c.moe_intermediate_size * c.n_shared_experts));
  auto inter_unit = [&](int64_t n) { return n >= world * block ? block : 1; };
  Partition p;
  p.rank = rank;
  p.world = world;
  p.heads = split_range(c.num_attention_heads, world, rank);
  p.experts = split_range(c.n_routed_experts, world, rank);
  p.vocab = split_range(c.vocab_size, world, rank);
  p.dense_inter = split_range(c.intermediate_size, world, rank, inter_unit(c.intermediate_size));
  const int64_t shared = c.moe_intermediate_size * c.n_shared_experts;
  p.shared_inter = split_range(shared, world, rank, inter_unit(shared));
  return p;
}

}  // namespace dsv3
