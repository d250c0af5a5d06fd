#!/usr/bin/env python3
"""Decode speed of a DeepSeek-V3-style model split over W machines, from three numbers per
setup: memory bandwidth per machine, link bandwidth and link latency (docs/distributed.md).

Per decoded token and layer, every rank reads its share of the weights (bytes / memory
bandwidth) and then takes part in two all-reduces of the hidden state (after attention, after
the FFN), as dsv3 does (DeepSeek's model.py). A layer ends when its slowest rank does, so the
routed experts cost the most any rank got: estimated by routing random tokens through the
group-limited top-k (uniform scores; the router's bias balancing keeps real loads near that).
The head is split by vocabulary and its logits gathered on rank 0.

  scripts/distributed_model.py --config tests/fixtures/configs/deepseek-v3.json \\
      --mem-gbs 200 --link-gbs 11 --latency-us 3 --ranks 1 2 4 8 16
"""
import argparse
import json
import math
import random


def expert_load(cfg, world, tokens, rng, parallel):
    """Mean over layers/tokens of the most routed experts' worth of bytes any rank reads, in
    units of one expert. 'ep': experts split whole; 'tp': every expert split by columns."""
    E, K = cfg["n_routed_experts"], cfg["num_experts_per_tok"]
    if parallel == "tp" or world == 1:
        return K / world
    G, keep = cfg.get("n_group", 1) or 1, cfg.get("topk_group", 1) or 1
    per_group = E // G
    total = 0
    for _ in range(tokens):
        groups = rng.sample(range(G), keep)
        candidates = [g * per_group + i for g in groups for i in range(per_group)]
        chosen = rng.sample(candidates, K)
        counts = [0] * world
        for e in chosen:
            counts[min(world - 1, e * world // E)] += 1  # contiguous ranges, as partition.cpp
        total += max(counts)
    return total / tokens


def token_seconds(cfg, world, mem_bps, link_bps, latency_s, parallel, rng):
    D, V = cfg["hidden_size"], cfg["vocab_size"]
    H = cfg["num_attention_heads"]
    nope, rope, v = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    qr, kr = cfg.get("q_lora_rank") or 0, cfg["kv_lora_rank"]
    fp8 = 1.0 if cfg.get("quantization_config") else 2.0  # bytes per projection weight
    # attention: replicated (wq_a, wkv_a) and split (wq_b or wq, wkv_b, wo)
    replicated = (D * qr + D * (kr + rope)) * fp8
    split = ((qr if qr else D) * H * (nope + rope) + kr * H * (nope + v) + H * v * D) * fp8
    L, dense = cfg["num_hidden_layers"], cfg.get("first_k_dense_replace", 0)
    expert = 3 * D * cfg["moe_intermediate_size"] * fp8
    shared = cfg.get("n_shared_experts", 0) * expert
    gate = cfg["n_routed_experts"] * D * 2
    load = expert_load(cfg, world, 2000, rng, parallel)
    steps = math.ceil(math.log2(world)) if world > 1 else 0
    allreduce = steps * (latency_s + D * 4 / link_bps)  # recursive doubling, float32 hidden state
    compute = 0.0
    for layer in range(L):
        if layer < dense:
            b = replicated + (split + 3 * D * cfg["intermediate_size"] * fp8) / world
        else:
            b = replicated + gate + (split + shared) / world + load * expert
        compute += b / mem_bps
    compute += V * D * 2 / world / mem_bps  # head (BF16), split by vocabulary
    comm = (2 * L + 1) * allreduce  # two per layer and the embedding's
    if world > 1:
        comm += steps * latency_s + V * 4 * (world - 1) / world / link_bps  # logits gathered on rank 0
        comm += 2 * steps * latency_s  # the step's broadcast: its length, then the message
    return compute, comm, 2 * L + 4 if world > 1 else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--mem-gbs", type=float, required=True, help="memory read bandwidth per machine, GB/s")
    ap.add_argument("--link-gbs", type=float, required=True, help="link bandwidth, GB/s")
    ap.add_argument("--latency-us", type=float, required=True, help="one message's latency, microseconds")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--parallel", choices=["ep", "tp"], default="ep",
                    help="ep: routed experts split whole (dsv3); tp: every expert split by columns")
    a = ap.parse_args()
    cfg = json.load(open(a.config))
    print(f"{'W':>3} {'compute ms':>11} {'comm ms':>8} {'collectives':>11} {'tok/s':>7}")
    for w in a.ranks:
        compute, comm, n = token_seconds(cfg, w, a.mem_gbs * 1e9, a.link_gbs * 1e9, a.latency_us * 1e-6, a.parallel,
                                         random.Random(1))
        print(f"{w:>3} {compute * 1e3:>11.2f} {comm * 1e3:>8.2f} {n:>11} {1 / (compute + comm):>7.2f}")


if __name__ == "__main__":
    main()
