"""Plain-torch CPU stand-ins for the TileLang kernels of DeepSeek-V3.2-Exp's inference/kernel.py
(act_quant, fp8_gemm, fp8_index) and for fast_hadamard_transform, written from their
definitions so that model.py runs on Debian's torch 1.13 (no float8 dtypes, no CUDA).

FP8 e4m3 values are carried in float32 tensors holding exactly the e4m3-representable values
(e4m3_round); every e4m3 value is exact in float32. test_kernels_cpu.py tests each function
against an independent definition.
"""
import torch

FP8_MAX = 448.0


def e4m3_round(x):
    """Round float32 values to the nearest e4m3fn value, ties to even (the hardware cast).
    Callers clamp to [-448, 448] first, as the kernels do. e4m3fn: 3 mantissa bits, exponent
    bias 7, smallest normal 2^-6, subnormal spacing 2^-9."""
    x = x.float()
    _, e = torch.frexp(x)                       # x = m * 2^e, m in [0.5, 1): binade 2^(e-1)
    binade = torch.clamp(e - 1, min=-6)         # subnormals share the spacing of 2^-6's binade
    spacing = torch.pow(torch.tensor(2.0), (binade - 3).float())
    return torch.round(x / spacing) * spacing   # torch.round: half to even; x/spacing exact


def _ceil_pow2(v):
    """2^ceil(log2 v) for positive normal float32 v: kernel.py's fast_round_scale (exponent
    bits, plus one when any mantissa bit is set)."""
    m, e = torch.frexp(v)                       # v = m * 2^e, m in [0.5, 1)
    exp = torch.where(m == 0.5, e - 1, e)       # exact power of two: 2^(e-1) itself
    return torch.pow(torch.tensor(2.0), exp.float())


def act_quant(x, block_size=128, scale_fmt=None):
    """kernel.py act_quant: per block of `block_size` values along the last dimension,
    s = max(amax, 1e-4) / 448 (rounded up to a power of two when scale_fmt is set: ue8m0),
    y = e4m3(clamp(x / s, -448, 448)). Returns (y as float32 e4m3 values, s [..., N/block])."""
    assert x.size(-1) % block_size == 0
    shape = x.shape
    xb = x.float().reshape(*shape[:-1], shape[-1] // block_size, block_size)
    amax = xb.abs().amax(dim=-1).clamp(min=1e-4)
    inv = torch.tensor(1.0 / FP8_MAX, dtype=torch.float32)   # fp8_max_inv, a float32 constant
    s = _ceil_pow2(amax * inv) if scale_fmt is not None else amax * inv
    y = e4m3_round(torch.clamp(xb / s.unsqueeze(-1), -FP8_MAX, FP8_MAX))
    return y.reshape(shape), s


def fp8_gemm(a, a_s, b, b_s):
    """kernel.py fp8_gemm: C = A B^T with A [M, K] e4m3 and per-(row, 128-column block)
    scales a_s [M, K/128], B [N, K] e4m3 with 128x128 block scales b_s [N/128, K/128].
    Each 128-wide K block's partial product is scaled by a_s * b_s and accumulated (float64
    here: the products of e4m3 values are exact, the kernel sums them in float32)."""
    K = a.size(-1)
    M = a.numel() // K
    A = a.reshape(M, K).double()
    B = b.double()
    N = B.size(0)
    out = torch.zeros(M, N, dtype=torch.float64)
    for kb in range((K + 127) // 128):
        sl = slice(kb * 128, min(K, kb * 128 + 128))
        part = A[:, sl] @ B[:, sl].T                                      # [M, N]
        sb = b_s[:, kb].double().repeat_interleave(128)[:N]               # per output row of B
        out += part * a_s.reshape(M, -1)[:, kb].double().unsqueeze(1) * sb.unsqueeze(0)
    return out.float().reshape(*a.shape[:-1], N)


def fp8_index(q, q_s, k, k_s):
    """kernel.py fp8_index: index_score[b, m, n] = k_s[b, n] * sum_h relu(q[b, m, h] . k[b, n]) * q_s[b, m, h].
    q [b, m, h, d] e4m3, q_s [b, m, h] (the head weights), k [b, n, d] e4m3, k_s [b, n].
    Dot products of e4m3 values are exact in float64; the sums run in float64, the result
    is float32 like the kernel's."""
    b, m, h, d = q.shape
    n = k.size(1)
    logits = torch.einsum("bmhd,bnd->bmnh", q.double(), k.double())
    w = q_s.reshape(b, m, 1, h).double()
    score = (logits.clamp(min=0) * w).sum(-1) * k_s.reshape(b, 1, n).double()
    return score.float()


def hadamard(x, scale):
    """fast_hadamard_transform.hadamard_transform: x @ H^T * scale along the last dimension,
    H the Sylvester Hadamard matrix (H_1 = [1], H_2n = [[H_n, H_n], [H_n, -H_n]]); the
    dimension is a power of two. Butterflies in float32, stride 1 first."""
    n = x.size(-1)
    assert n & (n - 1) == 0
    y = x.float().clone()
    h = 1
    while h < n:
        y = y.reshape(*x.shape[:-1], n // (2 * h), 2, h)
        a, c = y[..., 0, :], y[..., 1, :]
        y = torch.stack([a + c, a - c], dim=-2)
        h *= 2
    return y.reshape(x.shape) * scale
