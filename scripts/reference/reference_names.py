"""A HuggingFace-layout checkpoint as DeepSeek's model.py names and holds it: float32 torch
tensors (st.read_checkpoint_f32) under the reference's module names. Shared by ref.py (V3)
and ref_v32.py (V3.2-Exp)."""
import torch
import st

# HF module name -> model.py's (the name's second-to-last part).
MAP = {"embed_tokens": "embed", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
       "q_proj": "wq", "q_a_proj": "wq_a", "q_a_layernorm": "q_norm", "q_b_proj": "wq_b",
       "kv_a_proj_with_mqa": "wkv_a", "kv_a_layernorm": "kv_norm", "kv_b_proj": "wkv_b", "o_proj": "wo",
       "gate": "gate", "gate_proj": "w1", "down_proj": "w2", "up_proj": "w3", "norm": "norm", "lm_head": "head"}


def load_float(ckpt):
    return {name: torch.from_numpy(w) for name, w in st.read_checkpoint_f32(ckpt).items()}


def reference_name(n):
    """model.py's name of a tensor, from its HF name without the "model." prefix. V3.2's
    indexer keeps its own names (wq_b, wk, k_norm, weights_proj are model.py's already)."""
    n = n.replace("self_attn", "attn").replace("mlp", "ffn").replace("e_score_correction_bias", "bias")
    key = n.split(".")[-2]
    if key in MAP and ".indexer." not in n:
        n = n.replace(key, MAP[key])
    return n
