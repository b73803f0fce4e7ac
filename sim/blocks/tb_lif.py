"""LifArray bench. Driver: sets of P x T accumulators back to back, random out_ready stalls. Model:
golden.primitives.lif + pack_words. Checker: every lane's spike word, and the cycles against
hls_models.block_cycles.lif_exp_cycles."""
import cocotb
import numpy as np

from golden.primitives import lif, pack_words
from hls_models.block_cycles import lif_exp_cycles
from sim.blocks import Bench, pack, params, rng, srange, stream, transactions, unpack


def golden_words(acc, theta, T):
    """acc [P, T], theta [P] -> the P spike words."""
    return [int(w) for w in pack_words(lif(np.asarray(acc).T, np.asarray(theta), T))]


async def run_sets(dut, cases, stall_p=0.0, seed=0):
    p = params()
    P, T, A, TH = p["lanes"], p["T"], p["acc_width"], p["theta_width"]
    bench = Bench(dut)
    await bench.start(in_valid=0, out_ready=1)
    items = [{"acc": pack(acc, A), "theta": pack(theta, TH)} for acc, theta in cases]
    got, cycles, stalls = await stream(bench, items, lambda: unpack(bench.get("spikes"), P, T), len(cases),
                                       stall_p, rng(seed))
    want_cycles = lif_exp_cycles(len(cases), T, stalls)
    assert cycles == want_cycles, f"{len(cases)} sets took {cycles} cycles, exp_cycles {want_cycles}"
    return got


@cocotb.test()
async def random_sets(dut):
    p = params()
    P, T, A, TH = p["lanes"], p["T"], p["acc_width"], p["theta_width"]
    r = rng(1)
    lo, hi = srange(A)
    _, thi = srange(TH)
    cases = []
    for _ in range(transactions()):
        scale = int(r.choice([3, 30, hi]))
        acc = r.integers(max(lo, -scale), min(hi, scale) + 1, size=(P, T))
        top = min(thi, scale << T)
        cases.append((acc, r.integers(-(top // 8), top + 1, size=P)))
    got = await run_sets(dut, cases, stall_p=0.2, seed=2)
    for k, ((acc, theta), words) in enumerate(zip(cases, got)):
        want = golden_words(acc, theta, T)
        assert words == want, f"set {k}: spikes {words}, golden {want} (acc {acc.tolist()}, theta {theta.tolist()})"


@cocotb.test()
async def edge_cases(dut):
    p = params()
    P, T, A, TH = p["lanes"], p["T"], p["acc_width"], p["theta_width"]
    lo, hi = srange(A)
    tlo, thi = srange(TH)
    full = lambda v: np.full((P, T), v)
    lanes = lambda v: np.full(P, v)
    one = min(thi, 1 << T)                       # V_th = 1.0 in U units
    named = {
        # step 0 gives U_H = x * 2^(T-1): equal to theta, so it fires (>=), and one above does not
        "spike exactly at threshold": (full(3), lanes(3 << (T - 1))),
        "one below threshold": (full(3), lanes((3 << (T - 1)) + 1)),
        "negative membrane": (np.tile([[-5, 2, 3, 1, -1, 4, 0, 2][t % 8] for t in range(T)], (P, 1)), lanes(one)),
        "largest accumulator": (full(hi), lanes(thi)),
        "most negative accumulator": (full(lo), lanes(one)),
        "alternating extremes": (np.tile([[lo, hi][t % 2] for t in range(T)], (P, 1)), lanes(thi)),
        "all-zero input, theta 0 (all-one word)": (full(0), lanes(0)),
        "all-zero input (all-zero word)": (full(0), lanes(one)),
        "largest threshold": (full(hi), lanes(thi)),
        "most negative threshold": (full(lo), lanes(tlo)),
        "lanes differ": (np.arange(P * T).reshape(P, T) % (hi + 1), np.arange(P) + 1),
    }
    got = await run_sets(dut, list(named.values()))
    for (name, (acc, theta)), words in zip(named.items(), got):
        want = golden_words(acc, theta, T)
        assert words == want, f"edge case '{name}': spikes {words}, golden {want}"
