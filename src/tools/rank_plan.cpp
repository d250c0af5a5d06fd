#include "tools/rank_plan.h"

#include <algorithm>
#include <set>

#include "format/checkpoint.h"
#include "format/model_config.h"
#include "model/weights.h"

namespace dsv3 {

Result<std::vector<RankShare>> plan_ranks(const std::string& dir, int world, bool with_mtp) {
  if (world < 1) return Error("--ranks must be at least 1");
  DSV3_ASSIGN(const ModelConfig config, load_model_config(dir));
  DSV3_ASSIGN(auto checkpoint, Checkpoint::open(dir));
  with_mtp = with_mtp && config.num_nextn_predict_layers > 0;
  std::vector<RankShare> plan;
  for (int r = 0; r < world; ++r) {
    RankShare share;
    share.rank = r;
    DSV3_ASSIGN(share.partition, make_partition(config, r, world));
    WeightBinder binder(checkpoint.get(), config);
    const ModelWeights w = bind_model_weights(binder, config, with_mtp, &share.partition, /*plan_only=*/true);
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
    std::set<int> shards;
    for (const std::string& name : binder.used()) shards.insert(checkpoint->find(name)->shard);
    for (int s : shards) share.shard_files.push_back(checkpoint->shards()[s]->path());
    std::sort(share.shard_files.begin(), share.shard_files.end());
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
