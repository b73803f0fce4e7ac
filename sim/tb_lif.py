"""LifLanes bench. Driver: one set of P lanes × T accumulators per cycle (random idle gaps in the random test).
Model: golden.primitives.lif. Checker: spike words in order, and the cycle count of a back-to-back burst against
hls_models.blocks.lif_cycles."""
import cocotb
import numpy as np

from golden.primitives import lif, pack_words
from hls_models.blocks import lif_cycles
from tb_common import Bench, pack, params, rng, srange, transactions, unpack


def model(acc, theta, T):
    """acc [P, T], theta [P] -> P words."""
    return [int(w) for w in pack_words(lif(np.asarray(acc).T, np.asarray(theta), T))]


async def run_stream(dut, cases, gaps=None):
    """Drive (acc [P, T], theta [P]) cases; returns (received words per case, cycles of the burst)."""
    p = params()
    P, T, A, TH = p["lanes"], p["T"], p["acc_width"], p["theta_width"]
    bench = Bench(dut)
    await bench.start(in_valid=0)
    got, first, last = [], None, None
    i = 0
    while len(got) < len(cases):
        assert bench.n < 10 * len(cases) + 100, "LifLanes stopped producing results"
        if i < len(cases) and not (gaps is not None and gaps[i] and gaps[i].pop()):
            acc, theta = cases[i]
            await bench.cycle(in_valid=1, acc=pack(np.ravel(acc), A), theta=pack(theta, TH))
            first = bench.n if first is None else first
            i += 1
        else:
            await bench.cycle(in_valid=0)
        if bench.get("out_valid"):
            got.append(unpack(bench.get("spikes"), P, T))
            last = bench.n
    return got, last - first + 1


def check(cases, got, T):
    for k, ((acc, theta), words) in enumerate(zip(cases, got)):
        want = model(acc, theta, T)
        for lane, (w, g) in enumerate(zip(want, words)):
            assert w == g, (f"transaction {k} lane {lane}: spikes {g:0{T}b}, golden {w:0{T}b} "
                            f"(acc {list(acc[lane])}, theta {theta[lane]})")


@cocotb.test()
async def random_stream(dut):
    p = params()
    P, T, A, TH = p["lanes"], p["T"], p["acc_width"], p["theta_width"]
    r = rng(1)
    lo, hi = srange(A)
    tlo, thi = srange(TH)
    cases = []
    for _ in range(transactions()):
        scale = int(r.choice([4, 64, hi]))
        acc = r.integers(max(lo, -scale), min(hi, scale) + 1, size=(P, T))
        theta = r.integers(max(1, min(thi, scale << (T - 1)) // 4), min(thi, scale << (T - 1)) + 1, size=P)
        cases.append((acc, theta))
    gaps = [[int(r.random() < 0.2)] for _ in cases]
    got, _ = await run_stream(dut, cases, gaps)
    check(cases, got, T)


@cocotb.test()
async def edge_cases(dut):
    p = params()
    P, T, A, TH = p["lanes"], p["T"], p["acc_width"], p["theta_width"]
    lo, hi = srange(A)
    tlo, thi = srange(TH)
    full = lambda v: np.full((P, T), v)
    theta1 = np.full(P, min(thi, 1 << T))            # V_th = 1.0
    x_at = theta1[0] >> (T - 1)                      # U_H of step 0 is exactly x·2^(T-1)
    named = {
        "spike exactly at threshold": (full(x_at), np.full(P, x_at << (T - 1))),
        "one below threshold": (full(x_at), np.full(P, (x_at << (T - 1)) + 1)),
        "negative membrane": (np.array([[-3, 5, 2, 1][t % 4] for t in range(T)] * P).reshape(P, T), theta1),
        "largest accumulator": (full(hi), np.full(P, thi)),
        "most negative accumulator": (full(lo), theta1),
        "alternating extremes": (np.array([[hi, lo][t % 2] for t in range(T)] * P).reshape(P, T), np.full(P, thi)),
        "all zero, theta 0 (fires on equality)": (full(0), np.zeros(P, dtype=np.int64)),
        "all zero": (full(0), theta1),
        "negative threshold": (full(lo), np.full(P, tlo)),
    }
    cases = list(named.values())
    got, cycles = await run_stream(dut, cases)
    for (name, case), words in zip(named.items(), got):
        want = model(case[0], case[1], T)
        assert want == words, f"edge case '{name}': spikes {words}, golden {want}"
    assert cycles == lif_cycles(len(cases), T), f"burst took {cycles} cycles, exp_cycles {lif_cycles(len(cases), T)}"
