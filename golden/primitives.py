"""Bit-exact integer primitives of the integer contract (docs/intmodel.md). Each is the specification of one hardware block.

Everything is vectorised over leading dimensions and works on int64. Convolutions and matrix products use
float64 BLAS where the result is provably exact (|partial sums| < 2^53, checked), because numpy has no
integer BLAS; `_exact_matmul` falls back to int64 einsum otherwise.
"""
from __future__ import annotations

import numpy as np

ATTN_THETA_MULT = 4  # attn_lif V_th 0.5 over the constant scale 0.125 (docs/intmodel.md)
_EXACT = float(2 ** 52)


def attn_theta(T: int) -> int:
    """Threshold of the attention LIF in U units: 4 · 2^T."""
    return ATTN_THETA_MULT << T


# ----------------------------------------------------------------------------------------------- LIF

def lif_step(u, x, theta, T: int):
    """One LIF step in integers (τ = 2, hard reset). `u` is the membrane in U units (V·2^T).

    Returns (spike, u_next, u_h): U_H = (U + (X << T)) >> 1, S = U_H ≥ θ, U_next = S ? 0 : U_H.
    The shift is exact for the first T steps because U then carries at most t-1 fractional bits.
    """
    u = np.asarray(u, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    s = u + (x << T)
    u_h = s >> 1
    spike = u_h >= theta
    u_next = np.where(spike, 0, u_h)
    return spike.astype(np.uint8), u_next, u_h


def lif_trace(x, theta, T: int):
    """LIF over the leading time axis of x [T', ...]: returns (spikes uint8, u_h, u_after) each [T', ...]."""
    x = np.asarray(x, dtype=np.int64)
    theta = np.asarray(theta, dtype=np.int64)
    u = np.zeros(x.shape[1:], dtype=np.int64)
    spikes, uhs, us = [], [], []
    for t in range(x.shape[0]):
        s, u, u_h = lif_step(u, x[t], theta, T)
        spikes.append(s)
        uhs.append(u_h)
        us.append(u)
    return np.stack(spikes), np.stack(uhs), np.stack(us)


def lif(x, theta, T: int) -> np.ndarray:
    """Spikes [T, ...] (uint8) of a LIF driven by x [T, ...]; theta broadcasts against x[0]."""
    return lif_trace(x, theta, T)[0]


# ----------------------------------------------------------------------------------------------- words

def pack_words(s) -> np.ndarray:
    """[T, ...] 0/1 -> int64 words [...] with bit t = timestep t."""
    s = np.asarray(s, dtype=np.int64)
    shifts = np.arange(s.shape[0], dtype=np.int64).reshape((-1,) + (1,) * (s.ndim - 1))
    return (s << shifts).sum(axis=0)


def unpack_words(words, T: int) -> np.ndarray:
    """int words [...] -> [T, ...] uint8."""
    words = np.asarray(words, dtype=np.int64)
    return np.stack([(words >> t) & 1 for t in range(T)]).astype(np.uint8)


# ----------------------------------------------------------------------------------------------- conv / linear

def _exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer a @ b, via float64 when every partial sum is below 2^52 in magnitude."""
    bound = float(np.abs(a).max(initial=0)) * float(np.abs(b).sum(axis=0).max(initial=0))
    if bound < _EXACT:
        return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return np.einsum("...k,kn->...n", a.astype(np.int64), b.astype(np.int64))


def _im2col3x3(x: np.ndarray) -> np.ndarray:
    """x [B, Cin, H, W] -> patches [B, H, W, Cin*9], zero padding 1, tap order (cin, ky, kx)."""
    bsz, cin, h, w = x.shape
    xp = np.zeros((bsz, cin, h + 2, w + 2), dtype=x.dtype)
    xp[:, :, 1:-1, 1:-1] = x
    cols = np.empty((bsz, h, w, cin, 3, 3), dtype=x.dtype)
    for ky in range(3):
        for kx in range(3):
            cols[..., ky, kx] = xp[:, :, ky:ky + h, kx:kx + w].transpose(0, 2, 3, 1)
    return cols.reshape(bsz, h, w, cin * 9)


def conv3x3(x, w, b) -> np.ndarray:
    """Integer 3×3 conv, stride 1, zero padding 1: x [B, Cin, H, W], w [Cout, Cin, 3, 3], b [Cout] -> [B, Cout, H, W]."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    cols = _im2col3x3(x)
    out = _exact_matmul(cols, w.reshape(w.shape[0], -1).T) + np.asarray(b, dtype=np.int64)
    return out.transpose(0, 3, 1, 2)


def conv3x3_bitplanes(u, w, b, bits: int) -> np.ndarray:
    """The first conv as the hardware computes it: Σ_b 2^b · (Σ_{taps with pixel bit b set} w) + bias.

    Equal to conv3x3 for pixels in 0 .. 2^bits-1; written separately so the two can check each other.
    """
    u = np.asarray(u, dtype=np.int64)
    total = np.zeros((u.shape[0], np.asarray(w).shape[0], *u.shape[2:]), dtype=np.int64)
    for bit in range(bits):
        plane = (u >> bit) & 1
        total += conv3x3(plane, w, np.zeros(np.asarray(w).shape[0], dtype=np.int64)) << bit
    return total + np.asarray(b, dtype=np.int64)[:, None, None]


def spike_conv3x3(s, w, b) -> np.ndarray:
    """3×3 conv over spikes s [T, B, Cin, H, W] (0/1) -> acc [T, B, Cout, H, W] = Σ w·s[t] + b."""
    s = np.asarray(s)
    t, bsz = s.shape[:2]
    acc = conv3x3(s.reshape(t * bsz, *s.shape[2:]), w, b)
    return acc.reshape(t, bsz, *acc.shape[1:])


def spike_linear(s, w, b) -> np.ndarray:
    """1×1 conv over tokens: s [T, B, Cin, N] (0/1), w [Cout, Cin], b [Cout] -> acc [T, B, Cout, N]."""
    s = np.asarray(s, dtype=np.int64)
    acc = _exact_matmul(np.swapaxes(s, -1, -2), np.asarray(w, dtype=np.int64).T) + np.asarray(b, dtype=np.int64)
    return np.swapaxes(acc, -1, -2)


def or_pool(s) -> np.ndarray:
    """Max-pool 3×3, stride 2, pad 1 on spikes (or on T-bit words): the OR of the window. s [..., H, W]."""
    s = np.asarray(s)
    h, w = s.shape[-2:]
    ho, wo = (h + 1) // 2, (w + 1) // 2
    pad = np.zeros(s.shape[:-2] + (h + 2, w + 2), dtype=s.dtype)
    pad[..., 1:-1, 1:-1] = s
    out = np.zeros(s.shape[:-2] + (ho, wo), dtype=s.dtype)
    for ky in range(3):
        for kx in range(3):
            out |= pad[..., ky:ky + 2 * ho:2, kx:kx + 2 * wo:2]
    return out


# ----------------------------------------------------------------------------------------------- attention

def attention(q, k, v, heads: int):
    """Spike self-attention without softmax, exact in integers (docs/intmodel.md).

    q, k, v [T, B, C, N] (0/1). Per head h (channels [h·d, (h+1)·d)) and timestep:
    KV[i, j] = Σ_n K[i, n] AND V[j, n] (popcount), Y[j, n] = Σ_i Q[i, n] · KV[i, j] (accumulate KV rows where Q is 1).
    Returns kv [T, B, heads, d, d] (index [i, j]) and y [T, B, C, N]; the attn LIF then uses attn_theta(T).
    """
    q, k, v = (np.asarray(a, dtype=np.int64) for a in (q, k, v))
    t, bsz, c, n = q.shape
    d = c // heads
    qh, kh, vh = (a.reshape(t, bsz, heads, d, n) for a in (q, k, v))
    kv = np.einsum("tbhin,tbhjn->tbhij", kh, vh)
    y = np.einsum("tbhin,tbhij->tbhjn", qh, kv)
    return kv, y.reshape(t, bsz, c, n)


# ----------------------------------------------------------------------------------------------- head

def head(x, w, b):
    """Z_c = Σ_t Σ_n X[t, ·, c, n]; logits = W·Z + b. x [T, B, C, N] -> (z [B, C], logits [B, K])."""
    z = np.asarray(x, dtype=np.int64).sum(axis=(0, 3))
    logits = np.einsum("kc,bc->bk", np.asarray(w, dtype=np.int64), z) + np.asarray(b, dtype=np.int64)
    return z, logits


def argmax_lowest(logits) -> np.ndarray:
    """Argmax over the last axis, ties to the lowest index (numpy's argmax already does so)."""
    return np.argmax(np.asarray(logits), axis=-1)
