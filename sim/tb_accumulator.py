"""AccumulatorLanes bench. Driver: receptive fields = a load (with the field's first event in the same cycle) and
a run of events (word + weight row), random idle cycles with garbage on the event bus in the random test.
Model: golden.primitives.spike_linear over the field's spike words. Checker: the T accumulators of every lane
the cycle after each field's last event; a back-to-back burst against hls_models.blocks.accumulator_cycles."""
import cocotb
import numpy as np

from golden.primitives import spike_linear, unpack_words
from hls_models.blocks import accumulator_cycles
from tb_common import Bench, pack, params, rng, srange, transactions, unpack


def model(bias, words, weights, T):
    """-> acc [P, T]."""
    if not words:
        return np.repeat(np.asarray(bias)[:, None], T, axis=1)
    s = unpack_words(np.asarray(words), T)[:, None, :, None]           # [T, 1, Cin, 1]
    acc = spike_linear(s, np.asarray(weights).T, bias)                  # [T, 1, P, 1]
    return acc[:, 0, :, 0].T


async def run_fields(dut, fields, r=None):
    """fields: (bias [P], words [n], weights [n, P]). Returns (acc per field, cycles of the burst)."""
    p = params()
    P, T, W, A = p["lanes"], p["T"], p["weight_width"], p["acc_width"]
    bench = Bench(dut)
    await bench.start(load=0, ev_valid=0)
    got, first = [], None

    async def idle():
        junk = {} if r is None else {"ev_word": int(r.integers(0, 1 << T)),
                                     "ev_weights": int(r.integers(0, 1 << min(60, P * W)))}
        await bench.cycle(load=0, ev_valid=0, **junk)

    for f, (bias, words, weights) in enumerate(fields):
        steps = list(zip(words, weights)) or [None]
        for k, ev in enumerate(steps):
            while r is not None and k > 0 and r.random() < 0.15:
                await idle()
            await bench.cycle(load=int(k == 0), bias=pack(bias, A), ev_valid=int(ev is not None),
                              ev_word=0 if ev is None else ev[0], ev_weights=0 if ev is None else pack(ev[1], W))
            first = bench.n if first is None else first
            if k == 0 and f > 0:     # the previous field's sums, registered at the last edge
                got.append(unpack(bench.get("acc"), P * T, A, True))
    await idle()
    got.append(unpack(bench.get("acc"), P * T, A, True))
    return got, bench.n - first + 1


def check(fields, got, T, P, names=None):
    assert len(got) == len(fields)
    for k, ((bias, words, weights), acc) in enumerate(zip(fields, got)):
        want = model(bias, words, weights, T)
        have = np.asarray(acc).reshape(P, T)
        if not np.array_equal(want, have):
            p, t = map(int, np.argwhere(want != have)[0])
            name = names[k] if names else f"field {k}"
            raise AssertionError(f"{name}: lane {p} timestep {t}: acc {have[p, t]}, golden {want[p, t]} "
                                 f"(words {words})")


def random_field(r, P, T, W, n):
    lo, hi = srange(W)
    words = [int(x) for x in r.integers(0, 1 << T, size=n)]
    weights = r.integers(lo, hi + 1, size=(n, P))
    bias = r.integers(-(1 << (W + 1)), 1 << (W + 1), size=P)
    return bias, words, weights


@cocotb.test()
async def random_fields(dut):
    p = params()
    P, T, W = p["lanes"], p["T"], p["weight_width"]
    r = rng(2)
    fields, events = [], 0
    while events < transactions():
        n = int(r.integers(0, p["max_events"] + 1))
        fields.append(random_field(r, P, T, W, n))
        events += n
    got, _ = await run_fields(dut, fields, r)
    check(fields, got, T, P)


@cocotb.test()
async def edge_cases(dut):
    p = params()
    P, T, W, A, E = p["lanes"], p["T"], p["weight_width"], p["acc_width"], p["max_events"]
    wlo, whi = srange(W)
    alo, ahi = srange(A)
    ones = (1 << T) - 1
    named = {
        "all-one words, largest weights, up to the largest accumulator":
            (np.full(P, ahi - E * whi), [ones] * E, np.full((E, P), whi)),
        "all-one words, most negative weights, down to the smallest accumulator":
            (np.full(P, alo - E * wlo), [ones] * E, np.full((E, P), wlo)),
        "all-zero words leave the bias": (np.arange(P) - 3, [0] * E, np.full((E, P), whi)),
        "load only (no event)": (np.full(P, -7), [], np.zeros((0, P), dtype=np.int64)),
        "one bit per timestep, back to back": (np.zeros(P, dtype=np.int64), [1 << (k % T) for k in range(E)],
                                               np.arange(E * P).reshape(E, P) % (whi + 1)),
    }
    fields = list(named.values())
    got, cycles = await run_fields(dut, fields)
    check(fields, got, T, P, list(named))
    n = sum(max(1, len(f[1])) for f in fields)
    assert cycles == accumulator_cycles(n), f"burst of {n} events took {cycles} cycles, exp {accumulator_cycles(n)}"
