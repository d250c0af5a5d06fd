"""Tests of kernels_cpu.py, each function against an independent definition.
usage: /usr/bin/python3 test_kernels_cpu.py   (prints "ok" per test, fails loudly)"""
import numpy as np
import torch
import kernels_cpu as K
import st

torch.manual_seed(0)
TABLE = st.e4m3_table()                 # every e4m3fn byte's value, decoded bit by bit
FINITE = np.sort(np.unique(TABLE[np.isfinite(TABLE)]))


def nearest_e4m3(v):
    """Nearest finite e4m3 value by exhaustive search; ties to the even mantissa code."""
    d = np.abs(FINITE - v)
    best = np.flatnonzero(d == d.min())
    if len(best) == 1:
        return FINITE[best[0]]
    codes = [b for b in range(256) if np.isfinite(TABLE[b]) and TABLE[b] in FINITE[best]]
    even = [b for b in codes if (b & 1) == 0]
    return TABLE[even[0]]


def test_e4m3_round():
    xs = np.concatenate([np.random.default_rng(1).standard_normal(4000) * s for s in (1e-3, 0.05, 1, 30, 200)])
    xs = np.clip(xs, -448, 448).astype(np.float32)
    # every representable value and every midpoint between neighbours (ties)
    mids = ((FINITE[1:] + FINITE[:-1]) / 2).astype(np.float32)
    xs = np.concatenate([xs, FINITE, mids, -mids]).astype(np.float32)
    got = K.e4m3_round(torch.from_numpy(xs)).numpy()
    want = np.array([nearest_e4m3(v) for v in xs], np.float32)
    assert np.array_equal(got, want), (xs[got != want][:5], got[got != want][:5], want[got != want][:5])
    print("ok e4m3_round", len(xs))


def test_act_quant():
    x = torch.randn(3, 5, 256) * torch.tensor([0.01, 1.0, 50.0]).view(3, 1, 1)
    x[0, 0, :128] = 0                               # amax clamps to 1e-4
    for fmt in (None, "ue8m0"):
        y, s = K.act_quant(x, 128, fmt)
        assert s.shape == (3, 5, 2)
        for i in range(3):
            for j in range(5):
                for b in range(2):
                    blk = x[i, j, b * 128:(b + 1) * 128].double().numpy()
                    amax = max(np.abs(blk).max(), 1e-4)
                    sc = np.float32(np.float32(amax) * np.float32(1 / 448.0))
                    if fmt:
                        sc = np.float32(2.0 ** np.ceil(np.log2(np.float64(sc))))
                    assert s[i, j, b].item() == sc, (s[i, j, b].item(), sc)
                    q = np.clip((blk.astype(np.float32) / sc).astype(np.float32), -448, 448)
                    want = np.array([nearest_e4m3(v) for v in q], np.float32)
                    assert np.array_equal(y[i, j, b * 128:(b + 1) * 128].numpy(), want)
    print("ok act_quant")


def test_fp8_gemm():
    a = torch.randn(7, 300)
    w = torch.randn(200, 300)
    qa, sa = K.act_quant(torch.nn.functional.pad(a, (0, 84)), 128)   # pad K to 384 for the activation blocks
    qa, sa = qa[:, :300], sa
    wq, ws = [], []
    # weight blocks of 128x128 quantized with one scale each (like the checkpoint's weight_scale_inv)
    ws = torch.zeros(2, 3)
    wq = torch.zeros_like(w)
    for r in range(2):
        for c in range(3):
            blk = w[r * 128:(r + 1) * 128, c * 128:(c + 1) * 128]
            ws[r, c] = blk.abs().max() / 448
            wq[r * 128:(r + 1) * 128, c * 128:(c + 1) * 128] = K.e4m3_round(blk / ws[r, c])
    got = K.fp8_gemm(qa, sa, wq, ws)
    # definition: dequantize both, multiply in float64
    adq = (qa.double().view(7, -1) * sa.double().repeat_interleave(128, 1)[:, :300])
    wdq = wq.double() * ws.double().repeat_interleave(128, 0)[:200].repeat_interleave(128, 1)[:, :300]
    want = (adq @ wdq.T).float()
    assert torch.allclose(got, want, rtol=1e-6, atol=1e-5), (got - want).abs().max()
    print("ok fp8_gemm")


def test_fp8_index():
    b, m, h, d, n = 2, 3, 4, 128, 9
    q, qs = K.act_quant(torch.randn(b, m, h, d), 128)
    k, ks = K.act_quant(torch.randn(b, n, d), 128)
    w = torch.randn(b, m, h)
    got = K.fp8_index(q, w, k, ks.squeeze(-1))
    want = torch.zeros(b, m, n, dtype=torch.float64)
    for i in range(b):
        for j in range(m):
            for t in range(n):
                acc = 0.0
                for hh in range(h):
                    dot = sum(float(q[i, j, hh, e]) * float(k[i, t, e]) for e in range(d))
                    acc += max(dot, 0.0) * float(w[i, j, hh])
                want[i, j, t] = acc * float(ks[i, t, 0])
    assert torch.allclose(got.double(), want, rtol=1e-6, atol=1e-6), (got - want).abs().max()
    print("ok fp8_index")


def sylvester(n):
    H = np.array([[1.0]])
    while H.shape[0] < n:
        H = np.block([[H, H], [H, -H]])
    return H


def test_hadamard():
    for n in (1, 2, 8, 128):
        x = torch.randn(5, n)
        got = K.hadamard(x, n ** -0.5).double().numpy()
        want = x.double().numpy() @ sylvester(n).T * n ** -0.5
        assert np.allclose(got, want, rtol=1e-5, atol=1e-5), np.abs(got - want).max()
    # orthonormal: applying it twice gives x back
    x = torch.randn(4, 128)
    assert torch.allclose(K.hadamard(K.hadamard(x, 128 ** -0.5), 128 ** -0.5), x, atol=1e-5)
    print("ok hadamard")


if __name__ == "__main__":
    test_e4m3_round()
    test_act_quant()
    test_fp8_gemm()
    test_fp8_index()
    test_hadamard()
