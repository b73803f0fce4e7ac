"""AttentionUnit bench. Driver: per (head, timestep) the d² (K channel i, V channel j) token bit-vectors back to
back, then the N Q rows back to back. Model: golden.primitives.attention (one head, one timestep).
Checker: every KV count and every Y row; the two bursts' cycles against hls_models.blocks.attention_*_cycles.
A transaction is one KV pair or one Q row."""
import cocotb
import numpy as np

from golden.primitives import attention
from hls_models.blocks import attention_kv_cycles, attention_y_cycles
from tb_common import Bench, params, rng, transactions, unpack


def bits(vec):
    return sum(int(b) << n for n, b in enumerate(vec))


async def one_head(bench, q, k, v, name):
    """q, k, v [d, N] 0/1: drive both phases, check against golden, return (kv cycles, y cycles)."""
    p = params()
    N, d = p["tokens"], p["d"]
    kv_want, y_want = attention(q[None, None], k[None, None], v[None, None], heads=1)
    kv_want, y_want = kv_want[0, 0, 0], y_want[0, 0]                # [d, d] (i, j), [d, N] (j, n)
    pairs = [(i, j) for i in range(d) for j in range(d)]
    got, first, last, sent = {}, None, None, 0
    while len(got) < len(pairs):
        assert sent < len(pairs) + 100, "AttentionUnit stopped producing KV counts"
        if sent < len(pairs):
            i, j = pairs[sent]
            await bench.cycle(kv_valid=1, kv_index=i * d + j, k_bits=bits(k[i]), v_bits=bits(v[j]), q_valid=0)
            first = bench.n if first is None else first
        else:
            await bench.cycle(kv_valid=0)
        sent += 1
        if bench.get("kv_out_valid"):
            got[bench.get("kv_out_index")] = bench.get("kv_out")
            last = bench.n
    kv_cycles = last - first + 1
    for i, j in pairs:
        assert got[i * d + j] == kv_want[i, j], f"{name}: KV[{i}][{j}] = {got[i * d + j]}, golden {kv_want[i, j]}"
    rows, first = [], None
    n = 0
    while len(rows) < N:
        assert n < N + 100, "AttentionUnit produced no Y row"
        if n < N:
            await bench.cycle(q_valid=1, q_bits=bits(q[:, n]), kv_valid=0)
            first = bench.n if first is None else first
        else:
            await bench.cycle(q_valid=0)
        n += 1
        if bench.get("y_valid"):
            rows.append(unpack(bench.get("y"), d, bench.y_width))
            last = bench.n
    have = np.asarray(rows).T                                            # [d, N]
    if not np.array_equal(have, y_want):
        j, t = map(int, np.argwhere(have != y_want)[0])
        raise AssertionError(f"{name}: Y[token {t}][channel {j}] = {have[j, t]}, golden {y_want[j, t]}")
    return kv_cycles, last - first + 1


async def start(dut):
    p = params()
    bench = Bench(dut)
    bench.y_width = int(p["tokens"] * p["d"]).bit_length()
    await bench.start(kv_valid=0, q_valid=0)
    return bench


@cocotb.test()
async def random_heads(dut):
    p = params()
    N, d = p["tokens"], p["d"]
    r = rng(5)
    bench = await start(dut)
    for h in range(transactions() // (d * d + N) + 1):
        dens = r.choice([0.05, 0.3, 0.8], size=3)
        q, k, v = ((r.random((d, N)) < de).astype(np.int64) for de in dens)
        await one_head(bench, q, k, v, f"random head-timestep {h}")


@cocotb.test()
async def edge_cases(dut):
    p = params()
    N, d = p["tokens"], p["d"]
    bench = await start(dut)
    zeros, ones = np.zeros((d, N), dtype=np.int64), np.ones((d, N), dtype=np.int64)
    eye = (np.arange(d)[:, None] == np.arange(N)[None, :] % d).astype(np.int64)
    named = {"all one (largest KV and Y)": (ones, ones, ones), "all zero": (zeros, zeros, zeros),
             "Q all zero, K V all one": (zeros, ones, ones), "K all one, V all zero": (ones, ones, zeros),
             "diagonal": (eye, eye, 1 - eye)}
    for name, (q, k, v) in named.items():
        kv_cycles, y_cycles = await one_head(bench, q, k, v, name)
        assert kv_cycles == attention_kv_cycles(d * d, N), \
            f"{name}: KV burst took {kv_cycles} cycles, exp {attention_kv_cycles(d * d, N)}"
        assert y_cycles == attention_y_cycles(N, d), f"{name}: Y burst took {y_cycles}, exp {attention_y_cycles(N, d)}"
