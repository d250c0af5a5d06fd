#include "tools/rank_plan.h"

#include "format/checkpoint.h"
#include "format/model_config.h"
#include "model/weights.h"

namespace dsv3 {

Result<std::vector<RankShare>> plan_ranks(const std::string& dir, int world, bool with_mtp) {
  if (world < 1) return Error("--ranks must be at least 1");
  DSV3_ASSIGN(const ModelConfig config, load_model_config(dir));
  // The whole checkpoint checked once; then each rank binds as its load does, opening only the
  // shards it asks for, which are then the files it needs (by construction, not a second rule).
  DSV3_ASSIGN(auto whole, Checkpoint::open(dir));
  whole.reset();
  with_mtp = with_mtp && config.num_nextn_predict_layers > 0;
  std::vector<RankShare> plan;
  for (int r = 0; r < world; ++r) {
    RankShare share;
    share.rank = r;
    DSV3_ASSIGN(share.partition, make_partition(config, r, world));
    DSV3_ASSIGN(auto checkpoint, Checkpoint::open(dir, ShardOpening::OnFirstUse));
    WeightBinder binder(checkpoint.get(), config);
    const ModelWeights w = bind_model_weights(binder, config, with_mtp, &share.partition, /*plan_only=*/true);
    DSV3_TRY(checkpoint->shard_error());
    DSV3_TRY_CTX(binder.finish(), dir);
    for_each_linear(w, [&](const LinearWeight& l) { share.weight_bytes += l.bytes(); });
    share.copied_bytes = w.slices.bytes;
    if (!config.tie_word_embeddings) share.embedding_bytes = w.embed.bytes();
    auto norms = [&](const BlockWeights& b) {
      share.norm_bytes += 4 * (b.attn_norm.size() + b.ffn_norm.size() + b.attn.q_norm.size() + b.attn.kv_norm.size());
      if (const MoeWeights* moe = std::get_if<MoeWeights>(&b.ffn)) share.norm_bytes += 4 * moe->gate.bias.size();
    };
    for (const BlockWeights& b : w.layers) norms(b);
    for (const MtpWeights& m : w.mtp) norms(m.block);
    share.shard_files = checkpoint->opened_shard_paths();
    plan.push_back(std::move(share));
  }
  return plan;
}

std::string format_rank_plan(const std::vector<RankShare>& plan) {
  std::string s = str_f("split over %zu ranks (heads, experts, vocabulary and FFN columns as DeepSeek's model.py):\n",
                        plan.size());
  for (const RankShare& r : plan) {
    const Partition& p = r.partition;
    s += str_f("rank %d: %.3f GB of weights (%.3f GB copied column slices, %.3f GB embedding rows read a token at a "
               "time), resident %.3f GB; heads [%lld, %lld), experts [%lld, %lld), vocabulary [%lld, %lld)\n",
               r.rank, (r.weight_bytes + r.norm_bytes) / 1e9, r.copied_bytes / 1e9, r.embedding_bytes / 1e9,
               resident_weight_bytes(r) / 1e9, static_cast<long long>(p.heads.begin),
               static_cast<long long>(p.heads.end), static_cast<long long>(p.experts.begin),
               static_cast<long long>(p.experts.end), static_cast<long long>(p.vocab.begin),
               static_cast<long long>(p.vocab.end));
    s += "  files:";
    for (const std::string& f : r.shard_files) s += " " + f.substr(f.find_last_of('/') + 1);
    s += "\n";
  }
  return s;
}

}  // namespace dsv3
