"""Component tests in Amaranth's own simulator (no Verilator build): the LIF lanes and the spike scanner against
their golden twins (golden.primitives) and cycle formulas (hls_models.blocks), small generics, a few hundred
cycles each. The full randomized benches of every block run under Verilator in sim/test_blocks.py.

Timing convention as in sim/tb_common.py: each cycle the inputs are applied and the outputs read (registers
from the previous edge, combinational outputs of these inputs), then the clock ticks.
"""
import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.primitives import lif, pack_words
from hls_models.blocks import lif_cycles, scanner_cycles
from rtl.lif import LifLanes
from rtl.scanner import SpikeScanner
from sim.tb_common import pack

pytestmark = pytest.mark.unit


def simulate(dut, bench):
    """Run `bench(ctx)` against dut with one clock; returns what bench returns."""
    out = {}
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def run(ctx):
        out["result"] = await bench(ctx)
    sim.add_testbench(run)
    sim.run()
    return out["result"]


def test_lif_lanes_equal_golden_and_take_n_plus_T_cycles():
    P, T, A, TH = 2, 4, 8, 12
    r = np.random.default_rng(7)
    cases = [(r.integers(-128, 128, size=(P, T)), r.integers(1, 1 << 10, size=P)) for _ in range(24)]
    x_at = 5                                           # step 0: U_H = x·2^(T-1); θ equal to it fires, θ + 1 not
    cases += [(np.full((P, T), x_at), np.full(P, x_at << (T - 1))), (np.full((P, T), x_at), np.full(P, (x_at << (T - 1)) + 1)),
              (np.array([[-3, 5, 2, 1]] * P), np.full(P, 16)), (np.full((P, T), -128), np.full(P, -(1 << 11)))]
    dut = LifLanes(P, T, A, TH)

    async def bench(ctx):
        got, n, first, last = [], 0, None, None
        while len(got) < len(cases):
            assert n < len(cases) + 10 * T, "LifLanes stopped producing results"
            n += 1
            if n <= len(cases):
                acc, theta = cases[n - 1]
                ctx.set(dut.in_valid, 1)
                ctx.set(dut.acc, pack(np.ravel(acc), A))
                ctx.set(dut.theta, pack(theta, TH))
                first = n if first is None else first
            else:
                ctx.set(dut.in_valid, 0)
            if ctx.get(dut.out_valid):
                word = ctx.get(dut.spikes)
                got.append([(word >> (p * T)) & ((1 << T) - 1) for p in range(P)])
                last = n
            await ctx.tick()
        return got, last - first + 1

    got, cycles = simulate(dut, bench)
    for k, ((acc, theta), words) in enumerate(zip(cases, got)):
        want = [int(w) for w in pack_words(lif(acc.T, theta, T))]
        assert words == want, f"case {k}: spikes {words}, golden {want} (acc {acc.tolist()}, theta {theta.tolist()})"
    assert cycles == lif_cycles(len(cases), T)


def test_spike_scanner_emits_every_nonzero_word_and_skips_silent_ones():
    R, T = 8, 4
    r = np.random.default_rng(3)
    rows = [[int(w) for w in pack_words((r.random((T, R)) < density).astype(np.uint8))]
            for density in (0.0, 0.05, 0.3, 0.9, 0.0, 0.5, 1.0, 0.1)]
    dut = SpikeScanner(R, T)

    async def bench(ctx):
        events, i, n, first, idle_at = [], 0, 0, None, None
        ctx.set(dut.out_ready, 1)
        while idle_at is None:
            assert n < 20 * len(rows) * (R + 1), "SpikeScanner stopped"
            n += 1
            send = i < len(rows)
            ctx.set(dut.in_valid, int(send))
            ctx.set(dut.in_row, pack(rows[i], T) if send else 0)
            if i == len(rows) and not ctx.get(dut.out_valid):
                idle_at = n
            if ctx.get(dut.out_valid):
                events.append((ctx.get(dut.out_index), ctx.get(dut.out_word), bool(ctx.get(dut.out_last))))
            if send and ctx.get(dut.in_ready):
                first = n if first is None else first
                i += 1
            await ctx.tick()
        return events, idle_at - first

    events, cycles = simulate(dut, bench)
    want = []
    for words in rows:
        idx = [k for k, w in enumerate(words) if w]
        want += [(k, words[k], j == len(idx) - 1) for j, k in enumerate(idx)]
    assert events == want
    assert cycles == scanner_cycles([sum(1 for w in words if w) for words in rows])
