"""Golden outputs for a DeepSeek-V3.2 (deepseek_v32) HF checkpoint, computed by DeepSeek's
V3.2-Exp inference/model.py (torch, float32) with the CPU stand-ins of kernels_cpu.py.

usage: DSV32_REF_DIR=<DeepSeek-V3.2-Exp/inference> ref_v32.py CKPT_DIR PROMPTS.json OUT_PREFIX [NEW_TOKENS]
PROMPTS.json: list of token-id lists. Writes OUT_PREFIX.safetensors + OUT_PREFIX.json:
  logits.{i}   F32 [len, vocab]        one forward pass over prompt i
  selected.{i} I32 [layers, len, topk] each layer's indexer choice per query position, sorted
                                       ascending, -1 padded (rows i < topk choose all i+1)
  scores.{i}   F32 [layers, len, len]  the indexer's scores (fp8_index), -inf past the causal mask
  greedy[i]    NEW_TOKENS argmax tokens, decoding one token at a time with the caches
  greedy_selected[i] per decode step, per layer: the sorted positions chosen

What this harness changes in model.py (nothing else):
  - kernel.act_quant / fp8_gemm / fp8_index and fast_hadamard_transform: kernels_cpu.py;
  - torch.float8_e4m3fn, absent from torch 1.13, is aliased to float64 so that model.py's
    FP8 buffers (the indexer's key cache) are float tensors holding e4m3 values, and its
    float weights take the plain F.linear path (weights are dequantized exactly at load);
  - einops.rearrange for the one pattern model.py uses; torch.distributed.broadcast (a
    single-process run) is a no-op;
  - the indexer's rope is the non-interleaved (half-split) form, the fix DeepSeek published
    after the first demo (whose indexer used MLA's interleaved form); MLA keeps interleaved.
"""
import json, os, sys, types
import numpy as np
import torch
import st
from reference_names import load_float, reference_name
import kernels_cpu

torch.float8_e4m3fn = torch.float64
sys.modules["kernel"] = types.SimpleNamespace(act_quant=kernels_cpu.act_quant, fp8_gemm=kernels_cpu.fp8_gemm,
                                              fp8_index=None)


def _rearrange(x, pattern, d):
    assert pattern == "b s (h d) -> b s h d"
    return x.reshape(*x.shape[:-1], -1, d)


sys.modules["einops"] = types.SimpleNamespace(rearrange=_rearrange)
sys.path.insert(0, os.environ["DSV32_REF_DIR"])
import model as M  # DeepSeek's V3.2-Exp reference implementation

M.dist = types.SimpleNamespace(is_initialized=lambda: False, broadcast=lambda *a, **k: None,
                               get_world_size=lambda: 1, get_rank=lambda: 0)
M.rotate_activation = lambda x: kernels_cpu.hadamard(x, x.size(-1) ** -0.5)

# The indexer's scores, kept from its last call (for the goldens' near-tie checks).
_last = {}


def _fp8_index(q, q_s, k, k_s):
    s = kernels_cpu.fp8_index(q, q_s, k, k_s)
    _last["scores"] = s
    return s


M.fp8_index = _fp8_index

_interleaved_rope = M.apply_rotary_emb
_in_indexer = [False]


def _apply_rotary_emb(x, freqs_cis):
    if not _in_indexer[0]:
        return _interleaved_rope(x, freqs_cis)
    # Half-split pairs: (x[j], x[j + d/2]) rotated by freqs_cis[:, j].
    dtype, d = x.dtype, x.size(-1)
    xf = x.float()
    z = torch.complex(xf[..., :d // 2], xf[..., d // 2:])
    z = z * freqs_cis.view(1, x.size(1), 1, d // 2)
    return torch.cat([z.real, z.imag], dim=-1).to(dtype)


M.apply_rotary_emb = _apply_rotary_emb
_indexer_forward = M.Indexer.forward
_calls = []   # (layer-independent) indexer outputs in call order during one forward


def _indexer_forward_fixed(self, *args):
    _in_indexer[0] = True
    try:
        out = _indexer_forward(self, *args)
    finally:
        _in_indexer[0] = False
    _calls.append((out, _last["scores"]))
    return out


M.Indexer.forward = _indexer_forward_fixed

def scale_fmt_of(cfg):
    return cfg.get("scale_fmt") or (cfg.get("quantization_config") or {}).get("scale_fmt")


def args_from(cfg):
    rs = cfg.get("rope_scaling") or {}
    return M.ModelArgs(
        max_batch_size=1, max_seq_len=16384, dtype="bf16", scale_fmt=scale_fmt_of(cfg), vocab_size=cfg["vocab_size"],
        dim=cfg["hidden_size"], inter_dim=cfg["intermediate_size"], moe_inter_dim=cfg["moe_intermediate_size"],
        n_layers=cfg["num_hidden_layers"], n_dense_layers=cfg["first_k_dense_replace"],
        n_heads=cfg["num_attention_heads"], n_routed_experts=cfg["n_routed_experts"],
        n_shared_experts=cfg.get("n_shared_experts") or 0, n_activated_experts=cfg["num_experts_per_tok"],
        n_expert_groups=cfg.get("n_group") or 1, n_limited_groups=cfg.get("topk_group") or 1,
        score_func=cfg.get("scoring_func", "softmax"), route_scale=cfg.get("routed_scaling_factor", 1.0),
        q_lora_rank=cfg["q_lora_rank"], kv_lora_rank=cfg["kv_lora_rank"],
        qk_nope_head_dim=cfg["qk_nope_head_dim"], qk_rope_head_dim=cfg["qk_rope_head_dim"],
        v_head_dim=cfg["v_head_dim"], original_seq_len=rs.get("original_max_position_embeddings", 4096),
        rope_theta=cfg.get("rope_theta", 10000.0), rope_factor=rs.get("factor", 40),
        beta_fast=rs.get("beta_fast", 32), beta_slow=rs.get("beta_slow", 1),
        mscale=rs.get("mscale_all_dim", rs.get("mscale", 1.0)),
        index_n_heads=cfg["index_n_heads"], index_head_dim=cfg["index_head_dim"], index_topk=cfg["index_topk"])


def build(ckpt):
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    args = args_from(cfg)
    W = load_float(ckpt)
    torch.set_default_dtype(torch.float32)
    model = M.Transformer(args)
    for layer in model.layers:
        if hasattr(layer.ffn, "gate"):
            layer.ffn.gate.bias = torch.nn.Parameter(torch.zeros(args.n_routed_experts)) \
                if any(k.endswith("e_score_correction_bias") for k in W) else None
    sd = {}
    for name, w in W.items():
        n = name[len("model."):] if name.startswith("model.") else name
        parts = n.split(".")
        if parts[0] == "layers" and int(parts[1]) >= args.n_layers:
            continue                                  # MTP layers: not used by these goldens
        sd[reference_name(n)] = w
    model = model.float()
    model.load_state_dict(sd, strict=True)
    return cfg, args, model


def causal_mask(n):
    return torch.full((n, n), float("-inf")).triu_(1) if n > 1 else None


@torch.inference_mode()
def forward_all(model, tokens, start_pos=0):
    """Logits at every position (model.py's Transformer.forward returns the last only)."""
    seqlen = tokens.size(1)
    fc = model.freqs_cis[start_pos:start_pos + seqlen]
    h, residual = model.embed(tokens), None
    for layer in model.layers:
        h, residual = layer(h, residual, start_pos, fc, causal_mask(seqlen))
    h, _ = model.norm(h, residual)
    return model.head(h).float()


def selected_rows(idx, start_pos, topk):
    """Indexer output [1, s, k] -> sorted valid positions per row, -1 padded to topk."""
    rows = []
    for i, r in enumerate(idx[0].tolist()):
        v = sorted(j for j in r if j <= start_pos + i)
        rows.append(v + [-1] * (topk - len(v)))
    return rows


def main(ckpt, prompts_path, out_prefix, new_tokens=12):
    prompts = json.load(open(prompts_path))
    cfg, args, model = build(ckpt)
    topk = args.index_topk
    result = {"prompts": prompts, "index_topk": topk, "greedy": [], "greedy_selected": []}
    tensors = {}
    for i, p in enumerate(prompts):
        _calls.clear()
        lg = forward_all(model, torch.tensor([p]))
        tensors[f"logits.{i}"] = ("F32", lg[0].numpy())
        sel = [selected_rows(idx, 0, topk) for idx, _ in _calls]
        tensors[f"selected.{i}"] = ("I32", np.array(sel, np.int32))
        tensors[f"scores.{i}"] = ("F32", np.stack([s[0].numpy() for _, s in _calls]).astype(np.float32))
        # greedy decoding through model.py's own forward (prefill, then one token at a time)
        with torch.inference_mode():
            toks, out, steps = list(p), [], []
            logits = model.forward(torch.tensor([toks]), 0)
            pos = len(toks)
            for _ in range(new_tokens):
                t = int(logits[0].argmax())
                out.append(t)
                _calls.clear()
                logits = model.forward(torch.tensor([[t]]), pos)
                steps.append([sorted(idx[0, 0].tolist()) for idx, _ in _calls])
                pos += 1
        result["greedy"].append(out)
        result["greedy_selected"].append(steps)
    st.write(out_prefix + ".safetensors", tensors)
    json.dump(result, open(out_prefix + ".json", "w"))
    print("greedy", result["greedy"])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 12)
