"""Unit tests of the engine's components (rtl/engine/) in Amaranth's simulator: each against its golden twin
(golden/components.py, golden.primitives) with ≥ 1,000 seeded random transactions plus named edge cases, checking
values and the cycle in which they appear (the latency each component's docstring states).

Timing convention: each cycle the test applies the inputs, reads the outputs (registers from the previous edge,
combinational outputs of these inputs), then the clock ticks.
"""
import numpy as np
import pytest
from amaranth.hdl import signed
from amaranth.lib import data
from amaranth.sim import Simulator

from golden.components import (EPILOGUE_CYCLES, LAYER_CONTROLLER_OUTPUTS, addend_shift, banked_rom_read,
                               decode_layer_word, epilogue_schedule, event_pipeline_stages, group_walk,
                               head_z_schedule, kv_channel_tokens, kv_layer, kv_shift_words, lane_accumulators_step,
                               lane_inputs_step, layer_controller_init, replicated_register_step, layer_controller_step, lif_lanes,
                               logit_bank_step, output_walk, param_reads, tap_flags, ram_step, row_mask, row_pipeline_events,
                               scan_row, stream_add, stream_lif_schedule, tap_walk)
from golden.primitives import argmax_lowest, attention
from rtl.engine.accumulators import LaneAccumulators
from rtl.engine.addend import AddendShifter
from rtl.engine.argmax import ArgmaxUnit
from rtl.engine.controller import LayerController
from rtl.engine.epilogue import EpilogueKind, OutputEpilogue
from rtl.engine.events import EventPipeline
from rtl.engine.fanout import REPLICA_ATTRIBUTE, ReplicatedRegister
from rtl.engine.head_z import HeadZSequencer
from rtl.engine.kv_sequencer import KvSequencer
from rtl.engine.kv_tokens import KvTokenScanner
from rtl.engine.lane_inputs import LaneInputs
from rtl.engine.layer_table import FIELDS, LayerTable, Opcode, layer_field_widths
from rtl.engine.memories import BankedRom, SlicedRam, weight_banking
from rtl.engine.logits import LogitBank
from rtl.engine.lif import LifLanes, lif_input_width
from rtl.engine.row_pipeline import RowPipeline, RowSource
from rtl.engine.scanner import RowScanner
from rtl.engine.stream_adder import StreamAdder
from rtl.engine.output_loop import OutputLoop
from rtl.engine.params import ParamReader
from rtl.engine.stream_lif import StreamLifSequencer
from rtl.engine.tap_walker import TapWalker
from rtl.engine.schedule import output_spacing, stream_lif_param_wait, timing

pytestmark = pytest.mark.unit

TRANSACTIONS = 1000


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


def assert_next_leads(seen, port, next_port, label=""):
    """`next_port` in cycle c equals `port` in cycle c + 1: the value a register takes at the edge, which the core
    loads into per-lane copies of it (rtl/engine/fanout.py)."""
    for c in range(len(seen) - 1):
        assert seen[c][next_port] == seen[c + 1][port], \
            f"{label}cycle {c}: {next_port} {seen[c][next_port]}, but {port} is {seen[c + 1][port]} in the next cycle"


def copies(flag, lanes):
    """A control bit as the core drives it into per-lane inputs: one equal copy per lane."""
    return (1 << lanes) - 1 if flag else 0


# ---------------------------------------------------------------------------------------------------- LIF

LIF = dict(lanes=3, T=4, x_width=14, theta_width=10, membrane_width=14)   # LIF input width 12 < x width 14


def lif_outputs(n, rng):
    """n random outputs (x [T, P], theta [P], idle cycles before each step): mostly in range, some overflowing."""
    P, T, LA = LIF["lanes"], LIF["T"], lif_input_width(LIF["membrane_width"], LIF["T"])
    outs = []
    for _ in range(n):
        scale = rng.choice([1 << 3, 1 << 6, 1 << (LA - 1), 1 << (LA + 1)], p=[0.3, 0.4, 0.25, 0.05])
        x = rng.integers(-scale, scale, size=(T, P))
        theta = rng.integers(0, 1 << LIF["theta_width"], size=P) >> rng.integers(0, 8)
        outs.append((x, theta, rng.integers(0, 3, size=T) * (rng.random(T) < 0.2)))
    return outs


LIF_EDGES = {
    # step 0: U_H = x·2^(T-1); θ equal to it fires, θ one above does not
    "spike exactly at threshold": (np.full((4, 3), 5), np.full(3, 5 << 3)),
    "one below threshold": (np.full((4, 3), 5), np.full(3, (5 << 3) + 1)),
    "zero threshold fires on a zero input": (np.zeros((4, 3), dtype=np.int64), np.zeros(3, dtype=np.int64)),
    "negative inputs never fire": (np.full((4, 3), -7), np.zeros(3, dtype=np.int64) + 1),
    "largest input that fits": (np.full((4, 3), (1 << 11) - 1), np.full(3, 1023)),
    "smallest input that fits": (np.full((4, 3), -(1 << 11)), np.full(3, 1023)),
    "input one past the LIF width overflows": (np.full((4, 3), 1 << 11), np.full(3, 1023)),
    "leak: sub-threshold inputs add up to a spike": (np.array([[40] * 3, [40] * 3, [40] * 3, [0] * 3]),
                                                     np.full(3, 600)),
}


def run_lif(outputs):
    """Drive each output as the core does (start with θ, then T steps, optional idle cycles between steps); returns
    per output (words, overflow seen) and checks the 2-cycle latency of every step."""
    dut = LifLanes(**LIF)
    P, T = LIF["lanes"], LIF["T"]

    async def bench(ctx):
        results = []
        for x, theta, gaps in outputs:
            ctx.set(dut.start, 1)
            for l in range(P):
                ctx.set(dut.theta[l], int(theta[l]))
            await ctx.tick()
            ctx.set(dut.start, 0)
            overflow = False
            for t in range(T):
                for _ in range(int(gaps[t])):
                    await ctx.tick()
                ctx.set(dut.valid, 1)
                ctx.set(dut.step, t)
                for l in range(P):
                    ctx.set(dut.x[l], int(x[t, l]))
                before = [ctx.get(dut.spikes[l]) for l in range(P)]
                await ctx.tick()
                ctx.set(dut.valid, 0)
                # one cycle after valid: the step is not visible yet
                assert [ctx.get(dut.spikes[l]) for l in range(P)] == before, f"step {t} visible after 1 cycle"
                await ctx.tick()
                overflow |= bool(ctx.get(dut.overflow))
            results.append(([ctx.get(dut.spikes[l]) for l in range(P)], overflow))
        return results
    return simulate(dut, bench)


def lif_check(outputs, results, names=None):
    LA = lif_input_width(LIF["membrane_width"], LIF["T"])
    for k, ((x, theta, _), (words, overflow)) in enumerate(zip(outputs, results)):
        want, want_ovf = lif_lanes(x, theta, LIF["T"], LA, LIF["membrane_width"])
        label = names[k] if names else f"transaction {k}"
        assert overflow == want_ovf, f"{label}: overflow {overflow}, golden {want_ovf}"
        if not want_ovf:
            assert words == [int(w) for w in want], f"{label}: spikes {words}, golden {want.tolist()}"


def test_lif_lanes_random_outputs_equal_golden():
    outputs = lif_outputs(TRANSACTIONS, np.random.default_rng(1))
    lif_check(outputs, run_lif(outputs))


@pytest.mark.parametrize("case", list(LIF_EDGES))
def test_lif_lanes_edge_case(case):
    x, theta = LIF_EDGES[case]
    outputs = [(np.asarray(x, dtype=np.int64), np.asarray(theta, dtype=np.int64), np.zeros(4, dtype=np.int64))]
    # after an output that leaves a membrane behind: its last timestep must clear it
    outputs = [(np.full((4, 3), 30), np.full(3, 1000), np.zeros(4, dtype=np.int64))] + outputs
    results = run_lif(outputs)
    lif_check(outputs, results, ["membrane carry", case])


# ---------------------------------------------------------------------------------------------------- scanner

SCAN_WIDTH = 10


def run_scanner(masks, rng, hold_rate=0.1, empties=()):
    """Feed rows as the core does (load when the current row has no further event, else next; random holds with
    neither; the rows numbered in `empties` loaded with `empty`); returns per row (events as indices, cycles it held
    the scanner)."""
    dut = RowScanner(SCAN_WIDTH)

    async def bench(ctx):
        rows, i, current = [], 0, None
        while True:
            valid, more = ctx.get(dut.valid), ctx.get(dut.more)
            hold = current is not None and rng.random() < hold_rate
            ctx.set(dut.load, 0)
            ctx.set(dut.next, 0)
            if current is not None and not hold:
                if valid:
                    index, onehot = ctx.get(dut.index), ctx.get(dut.onehot)
                    assert onehot == 1 << index, f"row {len(rows) - 1}: one-hot {onehot:b}, index {index}"
                    current[0].append(index)
                current[1] += 1
            if hold:
                pass
            elif valid and more:
                ctx.set(dut.next, 1)
            elif i < len(masks):
                ctx.set(dut.load, 1)
                ctx.set(dut.row_mask, masks[i])
                ctx.set(dut.empty, i in empties)
                current = [[], 0]
                rows.append(current)
                i += 1
            else:
                break
            await ctx.tick()
        return rows
    return simulate(dut, bench)


def scanner_check(masks, rows, names=None, empties=()):
    assert len(rows) == len(masks)
    for k, (mask, (events, cycles)) in enumerate(zip(masks, rows)):
        label = names[k] if names else f"row {k} ({mask:0{SCAN_WIDTH}b}{', empty' if k in empties else ''})"
        want = scan_row(0 if k in empties else mask)
        assert events == want, f"{label}: events {events}, golden {want}"
        assert cycles == max(1, len(want)), f"{label}: held {cycles} cycles, expected max(1, {len(want)})"


def test_row_scanner_random_rows_equal_golden():
    rng = np.random.default_rng(2)
    masks = [int(sum(1 << b for b in range(SCAN_WIDTH) if rng.random() < d))
             for d in rng.choice([0.0, 0.1, 0.3, 0.6, 1.0], size=TRANSACTIONS)]
    empties = {k for k in range(len(masks)) if rng.random() < 0.1}
    scanner_check(masks, run_scanner(masks, rng, empties=empties), empties=empties)


SCAN_EDGES = {
    "silent row": 0,
    "all ones": (1 << SCAN_WIDTH) - 1,
    "lowest bit only": 1,
    "top bit only": 1 << (SCAN_WIDTH - 1),
    "alternating bits": int("0101010101", 2),
    "two top bits": 3 << (SCAN_WIDTH - 2),
}


@pytest.mark.parametrize("case", list(SCAN_EDGES))
def test_row_scanner_edge_case(case):
    # the row between silent rows and a full row: back to back, no holds
    masks = [0, SCAN_EDGES[case], 0, (1 << SCAN_WIDTH) - 1, SCAN_EDGES[case]]
    scanner_check(masks, run_scanner(masks, np.random.default_rng(0), hold_rate=0.0),
                  ["silent before", case, "silent after", "full after", case + " again"])


# ---------------------------------------------------------------------------------------------------- row pipeline

ROWP = dict(lanes=4, T=3, mask_width=8, weight_address_width=9, pixel_width=8, z_width=6)
ROW_SOURCES = {"spikes": RowSource.SPIKES, "pixel": RowSource.PIXEL, "z": RowSource.Z}


def random_row_items(n, rng, density):
    """n issuer items: bubble flag, activation row, pixel, Z row, Z lane, weight row (bubbles carry garbage rows:
    the RAMs read whatever the issuer's address names)."""
    P, T, ZW = ROWP["lanes"], ROWP["T"], ROWP["z_width"]
    items = []
    for _ in range(n):
        words = [int(sum(1 << t for t in range(T) if rng.random() < 0.7)) if rng.random() < density else 0
                 for _ in range(P)]
        items.append(dict(bubble=bool(rng.random() < 0.1), act=sum(w << (l * T) for l, w in enumerate(words)),
                          pixel=int(sum(1 << b for b in range(ROWP["pixel_width"]) if rng.random() < density)),
                          z=int(sum(1 << b for b in range(P * ZW) if rng.random() < density)),
                          lane=int(rng.integers(P)), wrow=int(rng.integers(1 << ROWP["weight_address_width"]))))
    return items


def run_row_pipeline(runs, source, seam=0, spacing=0, extra=3):
    """Each run (a list of outputs, each a list of items): a clear (the controller's first output start, not
    running), then running: the outputs' items back to back, the last item of each flagged, `seam` empty slots
    after each output but the run's last; the bench plays the controller's spacing (`hold` until `spacing` cycles
    after the previous end) and the RAMs (they read the issuer's current item unless the pipeline stalls, the
    activation row one register later). Runs until `extra` cycles after the run's last end. Returns per run the
    events (cycle from the first running cycle, index, word, weight row) and the end cycles (ending, not held)."""
    dut = RowPipeline(**ROWP)
    garbage = dict(bubble=False, act=(1 << (ROWP["lanes"] * ROWP["T"])) - 1, pixel=255, z=(1 << 24) - 1, lane=0,
                   wrow=0)

    async def bench(ctx):
        seen = []
        ctx.set(dut.source, ROW_SOURCES[source])
        ram, act_q = garbage, garbage
        for outputs in runs:
            stream = []              # (item or None for an empty slot, last)
            for n, items in enumerate(outputs):
                stream += [(it, k == len(items) - 1) for k, it in enumerate(items)]
                if n < len(outputs) - 1:
                    stream += [(None, False)] * seam
            ctx.set(dut.clear, 1)
            ctx.set(dut.run, 0)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            ctx.set(dut.run, 1)
            i, cycle, gap, events, ends, after = 0, 0, 0, [], [], 0
            while after <= extra:
                item, last = stream[i] if i < len(stream) else (None, False)
                current = item or garbage
                ctx.set(dut.issue_valid, int(item is not None))
                ctx.set(dut.issue_bubble, int(current["bubble"]))
                ctx.set(dut.issue_last, int(last))
                ctx.set(dut.issue_wrow, current["wrow"])
                ctx.set(dut.issue_lane, current["lane"])
                ctx.set(dut.act_row, act_q["act"])
                ctx.set(dut.pixel, ram["pixel"])
                ctx.set(dut.z_row, ram["z"])
                ctx.set(dut.hold, int(gap != 0))
                if ctx.get(dut.event_valid):
                    index = ctx.get(dut.event_index)
                    assert ctx.get(dut.event_onehot) == 1 << index, f"cycle {cycle}: one-hot and index disagree"
                    events.append((cycle, index, ctx.get(dut.event_word), ctx.get(dut.event_wrow)))
                take, stall = ctx.get(dut.take), ctx.get(dut.stall)
                assert take != stall, f"cycle {cycle}: take and stall both {take}"
                assert ctx.get(dut.advance) == take, f"cycle {cycle}: advance {ctx.get(dut.advance)}, take {take}"
                gap = max(0, gap - 1)
                if ctx.get(dut.ending) and not ctx.get(dut.hold):
                    assert take, f"cycle {cycle}: an output ends without taking the next item"
                    ends.append(cycle)
                    gap = spacing - 1 if spacing else 0
                if not stall:
                    act_q, ram = ram, current
                if take and i < len(stream):
                    i += 1
                if len(ends) == len(outputs):
                    after += 1
                await ctx.tick()
                cycle += 1
                assert cycle < 40 * (len(stream) + 4) + spacing * len(outputs), "the outputs never ended"
            seen.append((events, ends))
        return seen
    return simulate(dut, bench)


def row_pipeline_check(runs, source, seen, seam=0, spacing=0):
    P, T, ZW = ROWP["lanes"], ROWP["T"], ROWP["z_width"]
    for r, (outputs, (events, ends)) in enumerate(zip(runs, seen)):
        masks = [[row_mask(source, it["bubble"], it["act"], it["pixel"], it["z"], it["lane"], P, T, ZW)
                  for it in items] for items in outputs]
        want, want_ends = row_pipeline_events(masks, seam, spacing)
        got = [(c, i) for c, i, _, _ in events]
        assert got == [(c, b) for c, _, _, b in want], f"run {r} ({source}): events {got}, golden {want}"
        for (c, _, word, wrow), (_, n, k, b) in zip(events, want):
            assert wrow == outputs[n][k]["wrow"], f"run {r}, cycle {c}: weight row {wrow}, output {n} item {k}'s"
            if source == "spikes":
                assert word == (outputs[n][k]["act"] >> (b * T)) & ((1 << T) - 1), f"run {r}, cycle {c}: word {word}"
        assert ends == want_ends, f"run {r} ({source}): ends {ends}, golden {want_ends}"


def random_row_runs(rng, transactions):
    """Runs of 1-4 outputs of 1-29 items each (densities 0-1) until `transactions` items."""
    runs, n = [], 0
    while n < transactions:
        outputs = [random_row_items(int(rng.integers(1, 30)), rng, float(rng.choice([0.0, 0.2, 0.5, 1.0])))
                   for _ in range(int(rng.integers(1, 5)))]
        runs.append(outputs)
        n += sum(len(items) for items in outputs)
    return runs


@pytest.mark.parametrize("source", list(ROW_SOURCES))
def test_row_pipeline_random_outputs_equal_golden(source):
    runs = random_row_runs(np.random.default_rng(7), TRANSACTIONS)
    row_pipeline_check(runs, source, run_row_pipeline(runs, source, seam=2, spacing=10), seam=2, spacing=10)


@pytest.mark.parametrize("seam, spacing", [(0, 0), (1, 3), (2, 25)])
def test_row_pipeline_back_to_back_outputs_equal_golden(seam, spacing):
    # no seam (outputs' items touch), short and long holds: the hold lands on silent and on busy last items
    runs = random_row_runs(np.random.default_rng(11 + seam), TRANSACTIONS // 4)
    row_pipeline_check(runs, "spikes", run_row_pipeline(runs, "spikes", seam, spacing), seam, spacing)


def test_row_pipeline_edge_cases():
    rng = np.random.default_rng(3)
    full = random_row_items(1, rng, 1.0)[0]
    full.update(bubble=False, act=(1 << (ROWP["lanes"] * ROWP["T"])) - 1)
    silent = dict(full, act=0)
    bubble = dict(full, bubble=True)
    cases = {"one silent row": [[silent]], "one full row": [[full]], "bubbles only": [[bubble] * 5],
             "silent rows back to back": [[silent] * 6], "full rows back to back": [[full] * 4],
             "full, bubble, full": [[full, bubble, full]],
             "one-item outputs, held": [[full], [silent], [full], [bubble]],
             "a full last item held": [[silent, full], [full, full]]}
    runs = list(cases.values())
    seen = run_row_pipeline(runs, "spikes", seam=2, spacing=10)
    for name, outputs, got in zip(cases, runs, seen):
        try:
            row_pipeline_check([outputs], "spikes", [got], seam=2, spacing=10)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None


# ---------------------------------------------------------------------------------------------------- replicated register

@pytest.mark.parametrize("n_copies", [1, 5, 16])
def test_replicated_register_random_inputs_equal_golden(n_copies):
    rng = np.random.default_rng(90 + n_copies)
    inputs = [bool(b) for b in rng.random(TRANSACTIONS) < 0.5] + [True, True, False, False]   # held, then toggled
    dut = ReplicatedRegister(n_copies)

    async def bench(ctx):
        seen = []
        for d in inputs:
            seen.append(ctx.get(dut.q))
            ctx.set(dut.d, int(d))
            await ctx.tick()
        seen.append(ctx.get(dut.q))
        return seen
    seen = simulate(dut, bench)
    assert seen[0] == 0, f"copies {seen[0]:b} out of reset, golden 0"
    for c, d in enumerate(inputs):
        want = replicated_register_step(d, n_copies)
        assert seen[c + 1] == want, f"cycle {c + 1}: copies {seen[c + 1]:b}, golden {want:b}"


def test_replicated_register_marks_every_copy_for_synthesis():
    """Each copy is a signal of its own carrying the attribute tools/synth.py keeps (one multi-bit register would be
    one flip-flop cell whose bits Yosys could still merge)."""
    from amaranth.back import rtlil
    text = rtlil.convert(ReplicatedRegister(4), ports=None)
    assert text.count(f"attribute \\{REPLICA_ATTRIBUTE} 1") == 4, text


# ---------------------------------------------------------------------------------------------------- accumulators

ACC = dict(lanes=3, T=3, width=10, rest_width=7)   # timestep 0 wide, the others narrow


def run_accumulators(cycles):
    """cycles: dicts of init, init_value [P], init_t0_only, add_en [P, T], addend [P, T], snap, rotate. Returns acc
    and held
    [P, T] and the overflow flag observed before each cycle's edge (one more entry for the state after the last
    edge)."""
    dut = LaneAccumulators(**ACC)
    P, T = ACC["lanes"], ACC["T"]

    async def bench(ctx):
        seen = []
        for c in cycles + [None]:
            acc = np.array([[ctx.get(dut.acc[l][t]) for t in range(T)] for l in range(P)])
            held = np.array([[ctx.get(dut.held[l][t]) for t in range(T)] for l in range(P)])
            seen.append((acc, held, bool(ctx.get(dut.overflow))))
            if c is None:
                break
            ctx.set(dut.init, copies(c["init"], P))
            ctx.set(dut.snap, copies(c["snap"], P))
            ctx.set(dut.rotate, copies(c["rotate"], P))
            ctx.set(dut.init_t0_only, int(c["init_t0_only"]))
            for l in range(P):
                ctx.set(dut.init_value[l], int(c["init_value"][l]))
                ctx.set(dut.add_en[l], int(sum(int(b) << t for t, b in enumerate(c["add_en"][l]))))
                for t in range(T):
                    ctx.set(dut.addend[l][t], int(c["addend"][l][t]))
            await ctx.tick()
        return seen
    return simulate(dut, bench)


def accumulators_check(cycles, seen, names=None):
    P, T, width, rest_width = ACC["lanes"], ACC["T"], ACC["width"], ACC["rest_width"]
    acc, held, prev_flag = np.zeros((P, T), dtype=np.int64), np.zeros((P, T), dtype=np.int64), False
    for k, c in enumerate(cycles + [None]):
        got, got_held, flag = seen[k]
        label = names[k] if names and k < len(names) else f"cycle {k}"
        assert (got == acc).all(), f"{label}: acc {got.tolist()}, golden {acc.tolist()}"
        assert (got_held == held).all(), f"{label}: held {got_held.tolist()}, golden {held.tolist()}"
        assert flag == prev_flag, f"{label}: overflow {flag}, golden {prev_flag}"
        if c is not None:
            acc, held, prev_flag = lane_accumulators_step(acc, held, c["init"], c["init_value"], c["add_en"],
                                                          c["addend"], c["snap"], c["rotate"], width,
                                                          rest_width, c["init_t0_only"])


def acc_widths():
    """Each timestep's register width, broadcast over the lanes: [1, T]."""
    return np.array([[ACC["width"]] + [ACC["rest_width"]] * (ACC["T"] - 1)])


def acc_cycle(rng, init=None, rotate=None, add_p=0.4, big=False, snap=None):
    P, T, w, rw = ACC["lanes"], ACC["T"], ACC["width"], ACC["rest_width"]
    wt = np.repeat(acc_widths(), P, axis=0)
    lim = 1 << (wt - 1) if big else 1 << (wt - 4)
    t0_only = rng.random() < 0.3
    ilim = 1 << ((w if t0_only else rw) - 3)     # a wide bias with init_t0_only, as the head's
    return {"init": rng.random() < 0.08 if init is None else init,
            "init_value": rng.integers(-ilim, ilim, size=P), "init_t0_only": t0_only,
            "add_en": rng.random((P, T)) < add_p, "addend": rng.integers(-lim, lim),
            "snap": rng.random() < 0.1 if snap is None else snap,
            "rotate": rng.random() < 0.3 if rotate is None else rotate}


def test_lane_accumulators_random_cycles_equal_golden():
    rng = np.random.default_rng(3)
    cycles = [acc_cycle(rng, big=rng.random() < 0.1) for _ in range(2 * TRANSACTIONS)]
    accumulators_check(cycles, run_accumulators(cycles))


def _acc_edge(name):
    P, T, w = ACC["lanes"], ACC["T"], ACC["width"]
    rng = np.random.default_rng(4)
    none = np.zeros((P, T), dtype=bool)
    allv = np.ones((P, T), dtype=bool)
    c = lambda **kw: {**acc_cycle(rng, init=False, rotate=False, add_p=0, snap=False), **kw}   # noqa: E731
    if name == "init wins over an add in the same cycle":
        return [c(init=True, add_en=allv, addend=np.full((P, T), 5), init_value=np.array([1, -2, 3]))]
    if name == "snap holds the sum before the init of the next output, then rotates":
        return [c(init=True, init_value=np.array([1, 2, 3])),
                c(add_en=allv, addend=np.arange(P * T).reshape(P, T)),
                c(snap=True, init=True, init_value=np.array([-7, 0, 7])),
                c(rotate=True, add_en=allv, addend=np.full((P, T), 100)), c(rotate=True), c(rotate=True)]
    if name == "snap wins over rotate; an add in the snap cycle is not in the snapshot":
        en = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=bool)
        return [c(add_en=allv, addend=np.arange(P * T).reshape(P, T)),
                c(add_en=en, addend=np.full((P, T), 100), snap=True, rotate=True), c(rotate=True), c(snap=True)]
    wt = np.repeat(acc_widths(), P, axis=0)       # each timestep at its own width
    if name == "largest and smallest values wrap":
        top = (1 << (wt - 1)) - 1
        return [c(add_en=allv, addend=top), c(add_en=allv, addend=np.full((P, T), 1)),
                c(add_en=allv, addend=np.full((P, T), -1)), c(add_en=allv, addend=-top),
                c(add_en=allv, addend=np.full((P, T), -1))]
    if name == "guard bit: the first value that needs it flags overflow":
        edge = (1 << (wt - 2)) - 1
        return [c(add_en=allv, addend=edge), c(), c(add_en=allv, addend=np.full((P, T), 1)), c(),
                c(add_en=allv, addend=np.full((P, T), -1)), c()]
    if name == "single-bit addends in every bit position":
        out = [c(init=True, init_value=np.zeros(P, dtype=np.int64))]
        for b in range(w - 2):
            out.append(c(add_en=allv, addend=np.where(b < wt - 2, 1 << b, 0)))
        return out + [c(add_en=none)]
    if name == "the head's wide bias: init_t0_only zeroes the narrow timesteps":
        bias = np.array([(1 << (w - 2)) - 1, -(1 << (w - 2)), 5])
        return [c(init=True, init_t0_only=True, init_value=bias), c(), c(init=True, init_value=np.array([3, -3, 1]))]
    if name == "rotate wraps timestep 0 into the narrow last timestep":
        return [c(init=True, init_t0_only=True, init_value=np.array([1 << (w - 3), -(1 << (w - 3)) - 1, 9])),
                c(snap=True), c(rotate=True), c(rotate=True), c(rotate=True)]
    raise KeyError(name)


ACC_EDGES = ["init wins over an add in the same cycle",
             "snap holds the sum before the init of the next output, then rotates",
             "snap wins over rotate; an add in the snap cycle is not in the snapshot",
             "largest and smallest values wrap", "guard bit: the first value that needs it flags overflow",
             "single-bit addends in every bit position",
             "the head's wide bias: init_t0_only zeroes the narrow timesteps",
             "rotate wraps timestep 0 into the narrow last timestep"]


@pytest.mark.parametrize("case", ACC_EDGES)
def test_lane_accumulators_edge_case(case):
    cycles = _acc_edge(case)
    accumulators_check(cycles, run_accumulators(cycles), [f"{case}, cycle {k}" for k in range(len(cycles) + 1)])


# ---------------------------------------------------------------------------------------------------- lane inputs

LANES_IN = dict(lanes=4, T=3, width=12, kv_width=5, stream_width=10, head_dim=2, heads_per_group=2)


def random_lane_input_cycles(n, rng):
    """n cycles of writer inputs: the writers' valid flags at random (several at once too: the priority decides)
    and random values in range."""
    P, T, W = LANES_IN["lanes"], LANES_IN["T"], LANES_IN["width"]
    KW, SW = LANES_IN["kv_width"], LANES_IN["stream_width"]
    cycles = []
    for _ in range(n):
        cycles.append(dict(
            event_valid=bool(rng.random() < 0.4), kv_add=bool(rng.random() < 0.3), hz_add=bool(rng.random() < 0.3),
            word=int(rng.integers(1 << T)), attn=bool(rng.random() < 0.5), head=int(rng.integers(2)),
            weight_addend=[int(v) for v in rng.integers(-(1 << (W - 1)), 1 << (W - 1), P)],
            kv_values=[[int(v) for v in rng.integers(0, 1 << KW, P)] for _ in range(T)],
            kv_mask=int(rng.integers(1 << (P * T))),
            stream=[int(v) for v in rng.integers(-(1 << (SW - 1)), 1 << (SW - 1), P)]))
    return cycles


def run_lane_inputs(cycles):
    """Apply each cycle's inputs; returns add_en [P][T] and addend [P][T] seen in the cycle after each."""
    dut = LaneInputs(**LANES_IN)
    P, T, KW = LANES_IN["lanes"], LANES_IN["T"], LANES_IN["kv_width"]

    async def bench(ctx):
        seen = []
        for c in cycles + [None]:
            en = [[bool((ctx.get(dut.add_en[l]) >> t) & 1) for t in range(T)] for l in range(P)]
            seen.append((en, [[ctx.get(dut.addend[l][t]) for t in range(T)] for l in range(P)]))
            if c is None:
                break
            for name in ("event_valid", "kv_add", "hz_add"):
                ctx.set(getattr(dut, name), copies(c[name], P))
            ctx.set(dut.event_word, c["word"])
            ctx.set(dut.event_attn, copies(c["attn"], P))
            ctx.set(dut.event_head, c["head"])
            ctx.set(dut.kv_mask, c["kv_mask"])
            ctx.set(dut.kv_values, sum(v << ((t * P + l) * KW) for t in range(T) for l, v in
                                       enumerate(c["kv_values"][t])))
            for l in range(P):
                ctx.set(dut.weight_addend[l], c["weight_addend"][l])
                ctx.set(dut.stream[l], c["stream"][l])
            await ctx.tick()
        return seen[1:]
    return simulate(dut, bench)


def lane_inputs_check(cycles, seen, names=None):
    for k, (c, (en, addend)) in enumerate(zip(cycles, seen)):
        label = names[k] if names else f"cycle {k}"
        event = dict(word=c["word"], attn=c["attn"], head=c["head"], weight_addend=c["weight_addend"],
                     kv_values=c["kv_values"]) if c["event_valid"] else None
        want_en, want = lane_inputs_step(event, c["kv_mask"] if c["kv_add"] else None,
                                         c["stream"] if c["hz_add"] else None, LANES_IN["lanes"], LANES_IN["T"],
                                         LANES_IN["head_dim"], LANES_IN["heads_per_group"])
        assert en == want_en, f"{label}: add_en {en}, golden {want_en}"
        got = [[a if e else None for a, e in zip(row, row_en)] for row, row_en in zip(addend, en)]
        assert got == want, f"{label}: addends {got}, golden {want}"


def test_lane_inputs_random_cycles_equal_golden():
    cycles = random_lane_input_cycles(TRANSACTIONS, np.random.default_rng(11))
    lane_inputs_check(cycles, run_lane_inputs(cycles))


def test_lane_inputs_edge_cases():
    base = random_lane_input_cycles(1, np.random.default_rng(5))[0]
    none = dict(base, event_valid=False, kv_add=False, hz_add=False)
    cases = {"no writer": none,
             "weight event, all timesteps": dict(none, event_valid=True, attn=False, word=7),
             "attention event, head 1 only": dict(none, event_valid=True, attn=True, head=1, word=5),
             "event beats a count and head Z": dict(base, event_valid=True, kv_add=True, hz_add=True),
             "count beats head Z": dict(base, event_valid=False, kv_add=True, hz_add=True),
             "head Z: timestep 0 only": dict(none, hz_add=True),
             "silent event word": dict(none, event_valid=True, word=0)}
    cycles = list(cases.values())
    lane_inputs_check(cycles, run_lane_inputs(cycles), list(cases))


# ---------------------------------------------------------------------------------------------------- event pipeline

EVENTS = dict(T=3, shift_width=3, head_bits=2, addr_width=8, off_width=3, rom_latency=2, shifter_latency=2,
              value_addr_stage=1)


def event_cycles(rng, n, issue_p=0.6, mark_p=0.05):
    """n cycles of random events (payload drawn per cycle) and markers."""
    E = EVENTS
    return [{"issue": rng.random() < issue_p, "mark": rng.random() < mark_p,
             "word": int(rng.integers(0, 1 << E["T"])), "shift": int(rng.integers(0, 1 << E["shift_width"])),
             "neg": int(rng.integers(0, 2)), "attn": int(rng.integers(0, 2)),
             "head": int(rng.integers(0, 1 << E["head_bits"])),
             "base": int(rng.integers(0, 1 << (E["addr_width"] - 1))),
             "off": int(rng.integers(0, 1 << E["off_width"]))} for _ in range(n)]


def run_events(cycles):
    dut = EventPipeline(**EVENTS)
    tail = dut.add_stage + 5
    outs = ("rom_addr", "value_addr", "shifter_shift", "shifter_neg", "switch", "add_v", "add_word", "add_attn",
            "add_head", "snap", "busy", "snap_next", "add_v_next", "add_attn_next")

    async def bench(ctx):
        seen = []
        for c in cycles + [None] * tail:
            for port in ("issue", "mark", "word", "shift", "neg", "attn", "head", "base", "off"):
                ctx.set(getattr(dut, port), int(c[port]) if c else 0)
            seen.append({o: ctx.get(getattr(dut, o)) for o in outs})
            await ctx.tick()
        return seen
    return simulate(dut, bench)


def events_check(cycles, seen, names=None):
    E = EVENTS
    issues = [c for c, x in enumerate(cycles) if x["issue"]]
    marks = [c for c, x in enumerate(cycles) if x["mark"]]
    want = event_pipeline_stages(issues, marks, E["rom_latency"], E["shifter_latency"], E["value_addr_stage"])
    ev = [cycles[c] for c in issues]
    for c, got in enumerate(seen):
        label = names[c] if names and c < len(names) else f"cycle {c}"
        if c in want["rom_addr"]:
            e = ev[want["rom_addr"][c]]
            assert got["rom_addr"] == e["base"] + e["off"], f"{label}: rom_addr {got['rom_addr']}, golden {e}"
        if c in want["value_addr"]:
            e = ev[want["value_addr"][c]]
            assert got["value_addr"] == e["base"] + e["off"], f"{label}: value_addr {got['value_addr']}, golden {e}"
        if c in want["shifter"]:
            e = ev[want["shifter"][c]]
            assert (got["shifter_shift"], got["shifter_neg"]) == (e["shift"], e["neg"]), \
                f"{label}: shifter inputs {got['shifter_shift'], got['shifter_neg']}, golden {e}"
        assert got["add_v"] == (c in want["add"]), f"{label}: add_v {got['add_v']}, golden {c in want['add']}"
        if c in want["add"]:
            e = ev[want["add"][c]]
            assert (got["add_word"], got["add_attn"], got["add_head"]) == (e["word"], e["attn"], e["head"]), \
                f"{label}: add stage {got['add_word'], got['add_attn'], got['add_head']}, golden {e}"
        for key in ("switch", "snap", "busy"):
            assert got[key] == (c in want[key]), f"{label}: {key} {got[key]}, golden {c in want[key]}"
    for port in ("snap", "add_v", "add_attn"):
        assert_next_leads(seen, port, port + "_next")


def test_event_pipeline_random_cycles_equal_golden():
    rng = np.random.default_rng(21)
    cycles = event_cycles(rng, 2 * TRANSACTIONS)
    assert sum(c["issue"] for c in cycles) >= TRANSACTIONS
    events_check(cycles, run_events(cycles))


def _events_edge(name):
    rng = np.random.default_rng(22)
    quiet = lambda n: [dict(c, issue=False, mark=False) for c in event_cycles(rng, n)]   # noqa: E731
    burst = lambda n: [dict(c, issue=True, mark=False) for c in event_cycles(rng, n)]    # noqa: E731
    if name == "events back to back, then the marker one slot behind the last":
        return burst(6) + [dict(quiet(1)[0], mark=True)] + quiet(3)
    if name == "a marker with no event before it":
        return [dict(quiet(1)[0], mark=True)] + quiet(2)
    if name == "markers back to back with events between":
        return burst(2) + [dict(burst(1)[0], mark=True), dict(burst(1)[0], mark=True)] + burst(2) + quiet(2)
    if name == "largest address sum":
        E = EVENTS
        top = dict(burst(1)[0], base=(1 << (E["addr_width"] - 1)) - 1, off=(1 << E["off_width"]) - 1)
        return [top] + quiet(2)
    raise KeyError(name)


EVENT_EDGES = ["events back to back, then the marker one slot behind the last", "a marker with no event before it",
               "markers back to back with events between", "largest address sum"]


@pytest.mark.parametrize("case", EVENT_EDGES)
def test_event_pipeline_edge_case(case):
    cycles = _events_edge(case)
    events_check(cycles, run_events(cycles), [f"{case}, cycle {k}" for k in range(len(cycles) + 20)])


# ---------------------------------------------------------------------------------------------------- epilogue

EPILOGUE = dict(lanes=3, T=4, row_width=8, group_width=3, theta_width=6, head_groups=8)
KINDS = {"lif": EpilogueKind.LIF, "stream_add": EpilogueKind.STREAM_ADD, "head": EpilogueKind.HEAD}


def epilogue_outputs(rng, n, kinds=tuple(KINDS), slack=(0, 1, 3)):
    """n epilogues: (kind, context, capture delay before the start, idle cycles after the epilogue's length). The
    next output's context is captured while the current epilogue runs, as the core does."""
    E = EPILOGUE
    return [(str(rng.choice(kinds)),
             {"row": int(rng.integers(0, 1 << E["row_width"])), "srow": int(rng.integers(0, 1 << (E["row_width"] - 1))),
              "group": int(rng.integers(0, 1 << E["group_width"])),
              "theta": [int(v) for v in rng.integers(0, 1 << E["theta_width"], size=E["lanes"])]},
             int(rng.integers(1, 4)), int(rng.choice(slack))) for _ in range(n)]


def run_epilogue(outputs):
    """Drives starts and captures; returns, per cycle, the outputs as {port: value} and the plan (kind, context,
    start cycle) of each epilogue."""
    E = EPILOGUE
    dut = OutputEpilogue(**E)
    ports = ("rotate", "lif_start", "lif_valid", "lif_step", "act_write", "act_row", "stream_start", "stream_row",
             "stream_next", "stream_write", "stream_write_row", "head_write", "head_group", "head_write_group",
             "idle", "rotate_next")
    plan, events = [], {}     # events: cycle -> ("capture", context) | ("start", kind)
    c = 1
    for kind, ctx_values, delay, slack in outputs:
        cap = max(c - delay, 0 if not plan else plan[-1][2] + 1)
        events.setdefault(cap, []).append(("capture", ctx_values))
        events.setdefault(c, []).append(("start", kind))
        plan.append((kind, ctx_values, c))
        c += EPILOGUE_CYCLES[kind](E["T"]) + slack
    total = c + 8

    async def bench(ctx):
        seen = []
        for cycle in range(total):
            ctx.set(dut.capture, 0)
            ctx.set(dut.start, 0)
            for what, arg in events.get(cycle, []):
                if what == "capture":
                    ctx.set(dut.capture, 1)
                    ctx.set(dut.capture_row, arg["row"])
                    ctx.set(dut.capture_srow, arg["srow"])
                    ctx.set(dut.capture_group, arg["group"])
                    for l, v in enumerate(arg["theta"]):
                        ctx.set(dut.capture_theta[l], v)
                else:
                    ctx.set(dut.start, 1)
                    ctx.set(dut.kind, KINDS[arg])
            got = {p: ctx.get(getattr(dut, p)) for p in ports}
            if got["lif_start"]:
                got["lif_theta"] = [ctx.get(dut.lif_theta[l]) for l in range(E["lanes"])]
            seen.append(got)
            await ctx.tick()
        return plan, seen
    return simulate(dut, bench)


def epilogue_check(result, names=None):
    plan, seen = result
    T = EPILOGUE["T"]
    want = {k: {} for k in ("lif_start", "lif_valid", "rotate", "act_write", "stream_start", "stream_next",
                            "stream_write", "head_write")}
    busy, ctx_at = set(), {}
    assert_next_leads(seen, "rotate", "rotate_next")
    for i, (kind, ctx_values, s) in enumerate(plan):
        sched = epilogue_schedule(kind, T, s)
        for k in want:
            for c, v in sched[k].items():
                assert c not in want[k], f"the plan overlaps at cycle {c}"
                want[k][c] = v
                ctx_at[(k, c)] = (i, ctx_values)
        busy |= sched["busy"]
    for c, got in enumerate(seen):
        for k in want:
            assert got[k] == (c in want[k]), f"cycle {c}: {k} {got[k]}, golden {c in want[k]}"
        assert got["idle"] == (c not in busy), f"cycle {c}: idle {got['idle']}, golden {c not in busy}"
        if c not in want["head_write"]:
            assert got["head_write_group"] == 0, f"cycle {c}: head_write_group {got['head_write_group']:b} without a write"
        for k, c_want in want.items():
            if c not in c_want:
                continue
            i, cv = ctx_at[(k, c)]
            label = f"{names[i] if names else f'epilogue {i}'} ({plan[i][0]}), cycle {c}, {k}"
            if k == "lif_start":
                assert got["lif_theta"] == cv["theta"], f"{label}: theta {got['lif_theta']}, golden {cv['theta']}"
            if k == "lif_valid":
                assert got["lif_step"] == c_want[c], f"{label}: step {got['lif_step']}, golden {c_want[c]}"
            if k == "act_write":
                assert got["act_row"] == cv["row"], f"{label}: row {got['act_row']}, golden {cv['row']}"
            if k == "stream_start":
                assert got["stream_row"] == cv["srow"], f"{label}: stream row {got['stream_row']}, golden {cv['srow']}"
            if k == "stream_write":
                assert got["stream_write_row"] == cv["srow"] + c_want[c], \
                    f"{label}: write row {got['stream_write_row']}, golden {cv['srow'] + c_want[c]}"
            if k == "head_write":
                assert got["head_group"] == cv["group"], f"{label}: group {got['head_group']}, golden {cv['group']}"
                assert got["head_write_group"] == 1 << cv["group"], \
                    f"{label}: head_write_group {got['head_write_group']:b}, golden bit {cv['group']}"


def test_output_epilogue_random_outputs_equal_golden():
    rng = np.random.default_rng(31)
    epilogue_check(run_epilogue(epilogue_outputs(rng, TRANSACTIONS)))


EPILOGUE_EDGES = {
    "LIF epilogues back to back": dict(kinds=("lif",), slack=(0,)),
    "stream adds back to back": dict(kinds=("stream_add",), slack=(0,)),
    "head writes back to back": dict(kinds=("head",), slack=(0,)),
    "kinds alternating, back to back": dict(slack=(0,)),
}


@pytest.mark.parametrize("case", list(EPILOGUE_EDGES))
def test_output_epilogue_edge_case(case):
    rng = np.random.default_rng(32)
    outputs = epilogue_outputs(rng, 12, **EPILOGUE_EDGES[case])
    epilogue_check(run_epilogue(outputs), [case] * len(outputs))


# ---------------------------------------------------------------------------------------------------- stream LIF

def run_stream_lif(T, layers):
    """layers: (outputs, idle cycles before the start). Drives `last` from the advances seen, as the core's output
    counters do. Returns the start cycles and, per cycle, the commands."""
    dut = StreamLifSequencer(T)
    ports = ("stream_start", "stream_next", "lif_start", "advance", "lif_valid", "lif_step", "act_write", "done")

    async def bench(ctx):
        starts, seen = [], []
        for n, idle in layers:
            for _ in range(idle):
                seen.append({p: ctx.get(getattr(dut, p)) for p in ports})
                await ctx.tick()
            starts.append(len(seen))
            advances, running = 0, True
            ctx.set(dut.start, 1)
            while running:
                ctx.set(dut.last, int(advances == n - 1))
                got = {p: ctx.get(getattr(dut, p)) for p in ports}
                seen.append(got)
                advances += got["advance"]
                running = not got["done"]
                await ctx.tick()
                ctx.set(dut.start, 0)
                if len(seen) > starts[-1] + (n + 2) * (T + 1) + 8:
                    break    # no done: the check reports it
        for _ in range(3):
            seen.append({p: ctx.get(getattr(dut, p)) for p in ports})
            await ctx.tick()
        return starts, seen
    return simulate(dut, bench)


def merged_schedules(schedules):
    """Several layers' golden schedules ({command: {cycle: value}}) as one, and the layer that owns each cycle."""
    want, owner = {}, {}
    for i, schedule in enumerate(schedules):
        for k, cycles in schedule.items():
            want.setdefault(k, {}).update(cycles)
            owner.update(dict.fromkeys(cycles, i))
    return want, owner


def stream_lif_check(T, layers, result, names=None):
    starts, seen = result
    want, owner = merged_schedules(stream_lif_schedule(n, T, s) for (n, _), s in zip(layers, starts))
    for c, got in enumerate(seen):
        label = f"{names[owner[c]] if names and c in owner else f'layer {owner.get(c)}'}, cycle {c}"
        for k in want:
            assert got[k] == (c in want[k]), f"{label}: {k} {got[k]}, golden {c in want[k]}"
        if c in want["lif_valid"]:
            assert got["lif_step"] == want["lif_valid"][c], f"{label}: step {got['lif_step']}, golden " \
                                                            f"{want['lif_valid'][c]}"


@pytest.mark.parametrize("T", [1, 4])
def test_stream_lif_sequencer_random_layers_equal_golden(T):
    rng = np.random.default_rng(41 + T)
    layers = []
    while sum(n for n, _ in layers) < TRANSACTIONS:
        layers.append((int(rng.integers(1, 9)), int(rng.integers(0, 3))))
    stream_lif_check(T, layers, run_stream_lif(T, layers))


STREAM_LIF_EDGES = {"one output": [(1, 0)], "layers back to back": [(3, 0), (2, 0), (1, 0)],
                    "a long layer after an idle gap": [(1, 0), (40, 5)]}


@pytest.mark.parametrize("case", list(STREAM_LIF_EDGES))
@pytest.mark.parametrize("T", [1, 2, 4])
def test_stream_lif_sequencer_edge_case(T, case):
    layers = STREAM_LIF_EDGES[case]
    stream_lif_check(T, layers, run_stream_lif(T, layers), [case] * len(layers))


# ---------------------------------------------------------------------------------------------------- Kᵀ·V tokens

KV_TOKENS = {"one head per group": dict(tokens=7, lanes=4, heads=1, head_dim=4, offset_width=6, tag_width=3),
             "two heads per group": dict(tokens=5, lanes=8, heads=2, head_dim=4, offset_width=7, tag_width=3)}


def run_kv_tokens(cfg, blocks):
    """blocks: (present, words [tokens], offsets [tokens], store order, channels, idle cycles before each load).
    Drives the core's protocol: store the tokens, then per channel load, take until the scan's last token (shift
    in that cycle). Returns, per block and channel, the scan cycles and the tags given, and every pick observed
    (cycle, offset, tag)."""
    dut = KvTokenScanner(**cfg)
    rng = np.random.default_rng(11)

    async def bench(ctx):
        cycle, picks, scans = 0, [], []

        async def tick():
            nonlocal cycle
            if ctx.get(dut.pick_valid):
                picks.append((cycle, ctx.get(dut.pick_off), ctx.get(dut.pick_tag)))
            await ctx.tick()
            cycle += 1
            for port in (dut.store, dut.load, dut.take, dut.shift):
                ctx.set(port, 0)
        for present, words, offsets, order, channels, idle in blocks:
            ctx.set(dut.present, present)
            for j in order:
                ctx.set(dut.store, 1)
                ctx.set(dut.store_token, int(j))
                ctx.set(dut.store_nz, int(words[j]))
                ctx.set(dut.store_off, int(offsets[j]))
                await tick()
            for _ in range(KvTokenScanner.STORE_LATENCY - 1):
                await tick()
            block_scans = []
            for ch in range(channels):
                for _ in range(idle[ch]):
                    await tick()
                ctx.set(dut.load, 1)
                await tick()
                taken = []
                while True:
                    tag = int(rng.integers(0, 1 << cfg["tag_width"]))
                    ctx.set(dut.take, 1)
                    ctx.set(dut.take_tag, tag)
                    valid, more = ctx.get(dut.valid), ctx.get(dut.more)
                    taken.append((cycle, tag, bool(valid)))
                    end = not (valid and more)
                    if end:
                        ctx.set(dut.shift, 1)
                    await tick()
                    if end:
                        break
                block_scans.append(taken)
            scans.append(block_scans)
        for _ in range(3):
            await tick()
        return scans, picks
    return simulate(dut, bench)


def kv_tokens_check(cfg, blocks, result, names=None):
    scans, picks = result
    expected = []
    for b, (present, words, offsets, _, channels, _) in enumerate(blocks):
        words = list(words)
        for ch in range(channels):
            label = f"{names[b] if names else f'block {b}'}, channel {ch}"
            want = kv_channel_tokens(words, offsets, present, cfg["heads"], cfg["head_dim"])
            taken = scans[b][ch]
            assert len(taken) == max(1, len(want)), f"{label}: {len(taken)} scan cycles, golden max(1, {len(want)})"
            assert [v for _, _, v in taken] == [True] * len(want) + [False] * (len(want) == 0), \
                f"{label}: valid {[v for _, _, v in taken]} for {len(want)} tokens"
            expected += [(c + KvTokenScanner.PICK_LATENCY, off, tag) for (c, tag, _), off in zip(taken, want)]
            words = kv_shift_words(words)
    assert picks == expected, f"picks (cycle, offset, tag) {picks[:8]}..., golden {expected[:8]}..."


def kv_block(rng, cfg, channels=None, density=None):
    N, P = cfg["tokens"], cfg["lanes"]
    density = rng.choice([0.05, 0.3, 0.7, 1.0]) if density is None else density
    words = [int(sum(int(rng.random() < density) << b for b in range(P))) for _ in range(N)]
    order = list(rng.permutation(N)) + list(rng.integers(0, N, size=int(rng.integers(0, 3))))
    return (int(rng.integers(0, 1 << N)) | (int(rng.random() < 0.5) * ((1 << N) - 1)), words,
            list(rng.integers(0, 1 << cfg["offset_width"], size=N)), order,
            cfg["head_dim"] if channels is None else channels,
            [int(rng.integers(0, 3)) * int(rng.random() < 0.3) for _ in range(P)])


@pytest.mark.parametrize("config", list(KV_TOKENS))
def test_kv_token_scanner_random_channels_equal_golden(config):
    cfg = KV_TOKENS[config]
    rng = np.random.default_rng(12)
    blocks = [kv_block(rng, cfg) for _ in range(TRANSACTIONS // cfg["head_dim"] + 1)]
    kv_tokens_check(cfg, blocks, run_kv_tokens(cfg, blocks))


def _kv_edge(name, cfg):
    N, P, d = cfg["tokens"], cfg["lanes"], cfg["head_dim"]
    every, offs = (1 << N) - 1, [3 * j + 1 for j in range(N)]
    order = list(range(N))
    back_to_back = [0] * P
    if name == "no token present":
        return (0, [(1 << P) - 1] * N, offs, order, d, back_to_back)
    if name == "every token in every channel, channels back to back":
        return (every, [(1 << P) - 1] * N, offs, order, d, back_to_back)
    if name == "only the last token, in the last channel of each head":
        return (every, [0] * (N - 1) + [sum(1 << (h * d + d - 1) for h in range(cfg["heads"]))], offs, order, d,
                back_to_back)
    if name == "a present mask drops stored tokens":
        return (0b101 & every, [(1 << P) - 1] * N, offs, order, d, back_to_back)
    if name == "a token stored twice keeps the later row":
        return (every, [1] * N, offs, order + [0], 1, back_to_back)
    raise KeyError(name)


KV_EDGES = ["no token present", "every token in every channel, channels back to back",
            "only the last token, in the last channel of each head", "a present mask drops stored tokens",
            "a token stored twice keeps the later row"]


@pytest.mark.parametrize("case", KV_EDGES)
@pytest.mark.parametrize("config", list(KV_TOKENS))
def test_kv_token_scanner_edge_case(config, case):
    cfg = KV_TOKENS[config]
    block = _kv_edge(case, cfg)
    if case == "a token stored twice keeps the later row":
        # the second store of token 0 brings other lane bits and another offset
        present, words, offs, order, ch, idle = block
        blocks = [(present, words, offs, order[:-1], 0, idle), (present, [0b1] + words[1:], [40] + offs[1:], [0], ch,
                                                                 idle)]
    else:
        blocks = [block]
    kv_tokens_check(cfg, blocks, run_kv_tokens(cfg, blocks), [case] * len(blocks))


# ---------------------------------------------------------------------------------------------------- argmax

ARGMAX_K, ARGMAX_W = 12, 8


def run_argmax(sequences, gaps=False):
    """Each sequence: the logits of classes 0.. presented one per cycle, back to back, or with random idle cycles
    between them (gaps=True); returns `best` observed LATENCY cycles after each logit (its stated latency)."""
    dut = ArgmaxUnit(ARGMAX_K, ARGMAX_W)
    L = ArgmaxUnit.LATENCY
    stream = [(k, v) for seq in sequences for k, v in enumerate(seq)]
    idle = np.random.default_rng(7).integers(0, 3, size=len(stream)) if gaps else np.zeros(len(stream), int)
    cycles = []
    for item, g in zip(stream, idle):
        cycles += [None] * int(g) + [item]
    cycles += [None] * L

    async def bench(ctx):
        observed = []
        for c, item in enumerate(cycles):
            ctx.set(dut.valid, item is not None)
            if item is not None:
                ctx.set(dut.index, item[0])
                ctx.set(dut.value, int(item[1]))
            if c >= L and cycles[c - L] is not None:
                observed.append(ctx.get(dut.best))
            await ctx.tick()
        return observed
    return simulate(dut, bench)


def argmax_check(sequences, observed, names=None):
    k = 0
    for s, seq in enumerate(sequences):
        for i in range(len(seq)):
            want = int(argmax_lowest(np.asarray(seq[:i + 1])))
            label = names[s] if names else f"sequence {s}"
            assert observed[k] == want, f"{label}, after class {i}: best {observed[k]}, golden {want} ({seq})"
            k += 1


def test_argmax_random_logits_equal_golden():
    rng = np.random.default_rng(5)
    seqs, n = [], 0
    while n < TRANSACTIONS:
        K = int(rng.integers(1, ARGMAX_K + 1))
        lim = int(rng.choice([4, 1 << (ARGMAX_W - 1)]))      # small ranges: many ties
        seqs.append([int(v) for v in rng.integers(-lim, lim, size=K)])
        n += K
    argmax_check(seqs, run_argmax(seqs))
    argmax_check(seqs, run_argmax(seqs, gaps=True))


ARGMAX_EDGES = {
    "all equal: class 0": [3] * ARGMAX_K,
    "tie between two maxima: the lower class": [0, 9, 1, 9, 2],
    "maximum in the last class": list(range(-ARGMAX_K, 0)),
    "all negative, most negative first": [-(1 << (ARGMAX_W - 1))] + [-5] * 4,
    "one class": [-1],
    "largest value in class 0 then equal values": [(1 << (ARGMAX_W - 1)) - 1] * 3,
}


def test_argmax_edge_cases():
    seqs = list(ARGMAX_EDGES.values())
    argmax_check(seqs, run_argmax(seqs), list(ARGMAX_EDGES))


# ---------------------------------------------------------------------------------------------------- logits

LOGITS = dict(classes=10, lanes=4, width=9)   # three lane groups, the last one half full


def test_logit_bank_random_cycles_equal_golden():
    """Random writes (single groups, as the head writes them, and several at once), rotations (over writes) and
    read-outs, then the argmax's K rotations that bring the logits back in place."""
    K, P, Wd = LOGITS["classes"], LOGITS["lanes"], LOGITS["width"]
    groups = -(-K // P)
    rng = np.random.default_rng(13)
    cycles = [dict(write_group=int(1 << rng.integers(groups) if rng.random() < 0.7 else rng.integers(1 << groups)),
                   rotate=bool(rng.random() < 0.3), sel=int(rng.integers(K)),
                   lanes=[int(v) for v in rng.integers(-(1 << (Wd - 1)), 1 << (Wd - 1), P)])
              for _ in range(TRANSACTIONS)]
    cycles += [dict(write_group=0, rotate=True, sel=k, lanes=[0] * P) for k in range(K)]
    dut = LogitBank(**LOGITS)

    async def bench(ctx):
        seen = []
        for c in cycles:
            ctx.set(dut.write_group, c["write_group"])
            ctx.set(dut.rotate, int(c["rotate"]))
            ctx.set(dut.sel, c["sel"])
            for l in range(P):
                ctx.set(dut.lanes[l], c["lanes"][l])
            seen.append((ctx.get(dut.first), ctx.get(dut.logit)))
            await ctx.tick()
        return seen
    seen = simulate(dut, bench)
    logits = [0] * K
    for n, (c, (first, logit)) in enumerate(zip(cycles, seen)):
        assert first == logits[0], f"cycle {n}: first {first}, golden {logits[0]}"
        assert logit == logits[c["sel"]], f"cycle {n}: logit {c['sel']} read {logit}, golden {logits[c['sel']]}"
        logits = logit_bank_step(logits, c["write_group"], c["lanes"], c["rotate"], P)


# ---------------------------------------------------------------------------------------------------- layer table

class _Plan:
    def __init__(self, layers):
        self.layers = layers


def random_entries(n, rng):
    widths = {f: int(rng.integers(1, 12)) for f in FIELDS}
    entries = []
    for _ in range(n):
        e = {f: int(rng.integers(0, 1 << widths[f])) for f in FIELDS}
        e["op"] = int(rng.integers(0, len(Opcode)))
        e["a0"] = int(rng.integers(-(1 << widths["a0"]), 1 << widths["a0"]))
        entries.append(e)
    return entries


def run_layer_table(entries, order):
    dut = LayerTable(_Plan(entries))

    async def bench(ctx):
        got = []
        for c, i in enumerate(order + [None]):
            if c >= 1:
                got.append({f: ctx.get(dut.entry[f].as_value()) if f == "op" else ctx.get(dut.entry[f])
                            for f in FIELDS})
            if i is not None:
                ctx.set(dut.index, i)
            await ctx.tick()
        return got, dut
    return simulate(dut, bench)


def layer_table_check(entries, order, names=None):
    (got, dut) = run_layer_table(entries, order)
    widths = layer_field_widths(_Plan(entries))
    for k, i in enumerate(order):
        want = decode_layer_word(dut.words[i], FIELDS, widths)
        label = names[i] if names else f"read {k} (entry {i})"
        assert want == entries[i], f"{label}: golden decode {want} of the packed word differs from the entry"
        assert got[k] == want, f"{label}: entry {got[k]}, golden {want}"


def test_layer_table_random_entries_equal_golden():
    rng = np.random.default_rng(6)
    entries = random_entries(64, rng)
    order = [int(i) for i in rng.integers(0, len(entries), size=TRANSACTIONS)]
    layer_table_check(entries, order)


def test_layer_table_edge_cases():
    base = {f: 1 for f in FIELDS}
    names = ["all zero", "most negative a0", "largest a0 and the last opcode", "every field at its largest"]
    entries = [{f: 0 for f in FIELDS}, {**base, "a0": -1000}, {**base, "a0": 999, "op": int(Opcode.HEAD.value)},
               {**{f: (1 << 10) - 1 for f in FIELDS}, "op": 7, "a0": 1023}]
    layer_table_check(entries, [0, 1, 2, 3, 3, 0], names)


# ---------------------------------------------------------------------------------------------------- weight ROM

def run_banked_rom(rows, width, bank_rows, bank_slice, addrs):
    """Present one address per cycle; returns the data seen LATENCY cycles after each (its stated latency)."""
    dut = BankedRom(rows, width, bank_rows, bank_slice, 16)
    L = BankedRom.LATENCY

    async def bench(ctx):
        seen = []
        for c in range(len(addrs) + L):
            ctx.set(dut.read.addr, addrs[c] if c < len(addrs) else 0)
            if c >= L:
                seen.append(ctx.get(dut.read.data))
            await ctx.tick()
        return seen
    return simulate(dut, bench)


def rom_check(rows, width, bank_rows, bank_slice, addrs, names=None):
    seen = run_banked_rom(rows, width, bank_rows, bank_slice, addrs)
    for k, a in enumerate(addrs):
        want = banked_rom_read(rows, a)
        label = names[k] if names else f"read {k} (row {a})"
        assert seen[k] == want, f"{label}: {seen[k]:#x}, golden {want:#x}"


def test_banked_rom_random_reads_equal_golden():
    rng = np.random.default_rng(7)
    width, depth = 40, 300                        # 3 banks of 128 rows (the last one partial), 16-bit slices
    rows = [int(v) for v in rng.integers(0, 1 << 40, size=depth, dtype=np.int64)]
    rom_check(rows, width, 128, 16, [int(a) for a in rng.integers(0, depth, size=TRANSACTIONS)])


def test_banked_rom_random_reads_across_select_groups():
    """11 banks of 16 rows: three select groups of BankedRom.GROUP banks, the last one short."""
    rng = np.random.default_rng(11)
    width, depth = 24, 11 * 16 - 5
    rows = [int(v) for v in rng.integers(0, 1 << 24, size=depth)]
    assert -(-depth // 16) > 2 * BankedRom.GROUP
    rom_check(rows, width, 16, 24, [int(a) for a in rng.integers(0, depth, size=TRANSACTIONS)])


def test_banked_rom_edge_cases():
    width, depth = 40, 300
    rows = [(i * 0x9E3779B1) & ((1 << width) - 1) for i in range(depth)]
    addrs = [0, 127, 128, 255, 256, 299, 0, 299, 128, 128]   # bank edges, back to back, the same row twice
    names = ["first row", "last of bank 0", "first of bank 1", "last of bank 1", "first of the partial bank",
             "last row", "first row after the last", "last row again", "bank 1 twice", "bank 1 twice (2)"]
    rom_check(rows, width, 128, 16, addrs, names)


def test_banked_rom_shape_of_the_digits_weights():
    """The banking rule of the generator (weight_banking) at the digits core's shape: 1024 x 18 blocks."""
    assert weight_banking(4585, 160) == (1024, 18)


# ---------------------------------------------------------------------------------------------------- parameter rows

PARAMS = dict(lanes=3, widths={"bias": 9, "theta": 7, "lane_shift": 2})


def random_param_rows(n, rng):
    P, W = PARAMS["lanes"], PARAMS["widths"]
    return [([int(v) for v in rng.integers(-(1 << (W["bias"] - 1)), 1 << (W["bias"] - 1), P)],
             [int(v) for v in rng.integers(0, 1 << W["theta"], P)],
             [int(v) for v in rng.integers(0, 1 << W["lane_shift"], P)]) for _ in range(n)]


def run_param_reader(rows, addrs, fetches, latency):
    """Drive an address and a fetch flag every cycle; returns (bias, theta, lane shift, ready) seen in each cycle
    (len(addrs) + latency cycles)."""
    dut = ParamReader(PARAMS["lanes"], PARAMS["widths"], rows, latency)
    P = PARAMS["lanes"]

    async def bench(ctx):
        seen = []
        for c in range(len(addrs) + latency):
            if c < len(addrs):
                ctx.set(dut.addr, addrs[c])
                ctx.set(dut.fetch, int(fetches[c]))
            else:
                ctx.set(dut.fetch, 0)
            seen.append(([ctx.get(dut.bias[l]) for l in range(P)], [ctx.get(dut.theta[l]) for l in range(P)],
                         [ctx.get(dut.lane_shift[l]) for l in range(P)], bool(ctx.get(dut.ready))))
            await ctx.tick()
        return seen
    return simulate(dut, bench)


@pytest.mark.parametrize("latency", [1, 2, 3])
def test_param_reader_random_reads_equal_golden(latency):
    rng = np.random.default_rng(latency)
    rows = random_param_rows(37, rng)
    # edge cases first: the first and the last row, the same row twice, a fetch in two cycles in a row
    addrs = [0, len(rows) - 1, 5, 5] + [int(a) for a in rng.integers(len(rows), size=TRANSACTIONS)]
    fetches = [1, 1, 0, 1] + [bool(f) for f in rng.random(TRANSACTIONS) < 0.3]
    seen = run_param_reader(rows, addrs, fetches, latency)
    for c, (got, want) in enumerate(zip(seen, param_reads(rows, addrs, fetches, latency))):
        if want is None:
            assert not got[3], f"cycle {c}: ready before any fetch"
            continue
        (bias, theta, shift), ready = want
        assert got[3] == ready, f"cycle {c}: ready {got[3]}, golden {ready}"
        assert got[:3] == (bias, theta, shift), f"cycle {c}: row {got[:3]}, golden {(bias, theta, shift)}"


# ---------------------------------------------------------------------------------------------------- sliced RAM

def run_sliced_ram(width, depth, cycles):
    """cycles: (reads [(addr, en)] per port, write (addr, en, data)); returns each port's data seen before every
    edge (one more entry after the last)."""
    dut = SlicedRam(width, depth, read_ports=2, name="ram")

    async def bench(ctx):
        seen = []
        for c in cycles + [None]:
            seen.append([ctx.get(p.data) for p in dut.read])
            if c is None:
                break
            reads, (wa, we, wd) = c
            for p, (a, en) in zip(dut.read, reads):
                ctx.set(p.addr, a)
                ctx.set(p.en, en)
            ctx.set(dut.write.addr, wa)
            ctx.set(dut.write.en, we)
            ctx.set(dut.write.data, wd)
            await ctx.tick()
        return seen
    return simulate(dut, bench)


def sliced_ram_check(width, depth, cycles, names=None):
    seen = run_sliced_ram(width, depth, cycles)
    mem, held = [0] * depth, [0, 0]
    for k, c in enumerate(cycles + [None]):
        label = names[k] if names and k < len(names) else f"cycle {k}"
        assert seen[k] == held, f"{label}: read data {seen[k]}, golden {held}"
        if c is not None:
            held, mem = ram_step(mem, c[0], c[1], held)


def test_sliced_ram_random_cycles_equal_golden():
    rng = np.random.default_rng(8)
    width, depth = 20, 600                          # deeper than one block: 18-bit slices (1024 x 18)
    cycles = []
    for _ in range(TRANSACTIONS):
        hot = int(rng.integers(0, 8))               # a few hot rows: reads of rows just written
        addr = lambda: hot if rng.random() < 0.3 else int(rng.integers(0, depth))   # noqa: E731
        reads = [(addr(), int(rng.random() < 0.8)) for _ in range(2)]
        cycles.append((reads, (addr(), int(rng.random() < 0.5), int(rng.integers(0, 1 << width)))))
    sliced_ram_check(width, depth, cycles)


def test_sliced_ram_edge_cases():
    width, depth, top = 20, 600, (1 << 20) - 1
    cycles = [([(5, 1), (5, 1)], (5, 1, top)),          # read during the write of the same row: the old row
              ([(5, 1), (599, 1)], (599, 1, 0x5A5A5)),  # the new row, and the last row being written
              ([(599, 1), (5, 0)], (0, 0, 0)),          # en low keeps port 1's data
              ([(0, 1), (599, 1)], (0, 1, 1)),
              ([(0, 1), (0, 1)], (0, 0, 7))]            # write en low: row 0 keeps 1
    names = ["before", "read during write", "after the write", "en low holds", "row 0 written", "write disabled"]
    sliced_ram_check(width, depth, cycles, names)


# ---------------------------------------------------------------------------------------------------- addends

ADD = dict(lanes=3, weight_width=6, shift_width=4, width=14, lane_shift_width=2)


def run_addends(rows):
    """rows: (weights [P], neg, shift) presented one per cycle; returns the addends seen 2 cycles after each."""
    dut = AddendShifter(**ADD)

    async def bench(ctx):
        seen = []
        for c in range(len(rows) + 2):
            w, neg, shift, lane_shift = rows[c] if c < len(rows) else ([0] * ADD["lanes"], 0, 0, [0] * ADD["lanes"])
            for l in range(ADD["lanes"]):
                ctx.set(dut.weights[l], int(w[l]))
                ctx.set(dut.lane_shift[l], int(lane_shift[l]))
            ctx.set(dut.neg, int(neg))
            ctx.set(dut.shift, int(shift))
            if c >= 2:
                seen.append([ctx.get(dut.addend[l]) for l in range(ADD["lanes"])])
            await ctx.tick()
        return seen
    return simulate(dut, bench)


def addends_check(rows, names=None):
    seen = run_addends(rows)
    for k, (w, neg, shift, lane_shift) in enumerate(rows):
        want = [int(v) for v in addend_shift(w, neg, shift, ADD["width"], lane_shift)]
        label = names[k] if names else f"row {k}"
        assert seen[k] == want, \
            f"{label}: addends {seen[k]}, golden {want} (w {list(w)}, neg {neg}, shift {shift}, lane shift {lane_shift})"


def test_addend_shifter_random_rows_equal_golden():
    rng = np.random.default_rng(9)
    lim = 1 << (ADD["weight_width"] - 1)
    rows = [(rng.integers(-lim, lim, size=ADD["lanes"]), int(rng.random() < 0.3), int(rng.integers(0, 10)),
             rng.integers(0, 1 << ADD["lane_shift_width"], size=ADD["lanes"])) for _ in range(TRANSACTIONS)]
    addends_check(rows)


def test_addend_shifter_edge_cases():
    lo, hi = -(1 << (ADD["weight_width"] - 1)), (1 << (ADD["weight_width"] - 1)) - 1
    top = (1 << ADD["lane_shift_width"]) - 1
    rows = [([lo, hi, 0], 1, 0, [0] * 3), ([lo, hi, 1], 0, 8, [0] * 3), ([lo, hi, -1], 1, 8, [0] * 3),
            ([1, -1, 1], 0, 13, [0] * 3), ([1, 2, 3], 1, 0, [0] * 3), ([lo] * 3, 1, 15, [0] * 3),
            ([lo, hi, -1], 1, 0, [top] * 3), ([lo, hi, 1], 0, 8 - top, [top, 1, 0]), ([1, -1, 1], 0, 13, [top] * 3)]
    names = ["negated most negative weight", "largest shift that fits", "negated and shifted",
             "shift into the sign bit", "back to back: no shift", "shift past the width",
             "largest lane shift, negated extremes", "lane shifts differ per lane", "lane shift past the width"]
    addends_check(rows, names)


# ---------------------------------------------------------------------------------------------------- stream adder

SADD = dict(lanes=3, stream_width=10, branch_width=12)


def run_stream_adder(sets):
    """sets: (add, init, stream [P], branch [P]) one per cycle; returns (sum, overflow) seen before each edge."""
    dut = StreamAdder(**SADD)

    async def bench(ctx):
        seen = []
        for c in sets + [None]:
            seen.append(([ctx.get(dut.sum[l]) for l in range(SADD["lanes"])], bool(ctx.get(dut.overflow))))
            if c is None:
                break
            add, init, stream, branch = c
            ctx.set(dut.add, add)
            ctx.set(dut.init, init)
            for l in range(SADD["lanes"]):
                ctx.set(dut.stream[l], int(stream[l]))
                ctx.set(dut.branch[l], int(branch[l]))
            await ctx.tick()
        return seen
    return simulate(dut, bench)


def stream_adder_check(sets, names=None):
    seen = run_stream_adder(sets)
    held = ([0] * SADD["lanes"], False)
    for k, c in enumerate(sets + [None]):
        label = names[k] if names and k < len(names) else f"cycle {k}"
        assert seen[k] == held, f"{label}: (sum, overflow) {seen[k]}, golden {held}"
        if c is not None and c[0]:
            total, ovf = stream_add(c[2], c[3], c[1], SADD["stream_width"])
            held = ([int(v) for v in total], ovf)


def test_stream_adder_random_sets_equal_golden():
    rng = np.random.default_rng(10)
    S, B = SADD["stream_width"], SADD["branch_width"]
    sets = []
    for _ in range(TRANSACTIONS):
        blim = 1 << (B - 1) if rng.random() < 0.1 else 1 << (S - 3)
        sets.append((int(rng.random() < 0.8), int(rng.random() < 0.2),
                     rng.integers(-(1 << (S - 1)), 1 << (S - 1), size=SADD["lanes"]),
                     rng.integers(-blim, blim, size=SADD["lanes"])))
    stream_adder_check(sets)


def test_stream_adder_edge_cases():
    top, bot = (1 << 9) - 1, -(1 << 9)
    sets = [(1, 0, [top, bot, 0], [0, 0, 0]), (1, 0, [top, bot, 5], [1, 0, -5]), (1, 0, [bot, top, 0], [-1, 1, 0]),
            (1, 1, [top, top, top], [7, -7, 0]), (0, 0, [1, 1, 1], [1, 1, 1]), (1, 1, [0, 0, 0], [top, bot, 0])]
    names = ["before", "largest and smallest stream", "one past the top", "one past the bottom",
             "init ignores the stream", "add low holds", "init: the branch alone at the limits"]
    stream_adder_check(sets, names)


# ---------------------------------------------------------------------------------------------------- head Z

HEAD_Z_COMMANDS = ("acc_init", "stream_load", "stream_next", "stream_skip", "add", "z_write", "done")
HEAD_Z_RECORDED = HEAD_Z_COMMANDS + ("add_next",)


def run_head_z(T, drain, layers):
    """layers: (tokens, groups, token stride, idle cycles before the start). The bench is the caller: it drives
    `last` from the writes seen, as the core's group counter does, and keeps a stream read-address register that the
    commands load and step. Returns the start cycles and, per cycle, the commands and the register's value."""
    dut = HeadZSequencer(T, drain, row_width=16)

    async def bench(ctx):
        starts, seen, addr = [], [], 0
        for tokens, groups, stride, idle in layers:
            for _ in range(idle):
                seen.append({**{p: ctx.get(getattr(dut, p)) for p in HEAD_Z_RECORDED}, "addr": addr})
                await ctx.tick()
            starts.append(len(seen))
            writes, running = 0, True
            ctx.set(dut.start, 1)
            ctx.set(dut.tokens, tokens)
            while running:
                ctx.set(dut.last, int(writes == groups - 1))
                got = {p: ctx.get(getattr(dut, p)) for p in HEAD_Z_RECORDED}
                got["addr"] = addr
                seen.append(got)
                if got["stream_load"]:
                    addr = ctx.get(dut.stream_row)
                    got["row"] = addr
                elif got["stream_next"]:
                    addr += 1
                elif got["stream_skip"]:
                    addr += stride - (T - 1)
                writes += got["z_write"]
                running = not got["done"]
                await ctx.tick()
                ctx.set(dut.start, 0)
                ctx.set(dut.tokens, 0)    # sampled at start only
                if len(seen) > starts[-1] + groups * (tokens * T + drain + 2) + 8:
                    break    # no done: the check reports it
        for _ in range(3):
            seen.append({**{p: ctx.get(getattr(dut, p)) for p in HEAD_Z_RECORDED}, "addr": addr})
            await ctx.tick()
        return starts, seen
    return simulate(dut, bench)


def head_z_check(T, drain, layers, result, names=None):
    starts, seen = result
    assert_next_leads(seen, "add", "add_next")
    want, owner = merged_schedules(head_z_schedule(tokens, T, groups, drain, s, stride)
                                   for (tokens, groups, stride, _), s in zip(layers, starts))
    for c, got in enumerate(seen):
        label = f"{names[owner[c]] if names and c in owner else f'layer {owner.get(c)}'}, cycle {c}"
        for k in HEAD_Z_COMMANDS:
            assert got[k] == (c in want[k]), f"{label}: {k} {got[k]}, golden {c in want[k]}"
        if c in want["stream_load"]:
            assert got["row"] == want["stream_load"][c], f"{label}: loads row {got['row']}, golden " \
                                                         f"{want['stream_load'][c]}"
        if c in want["read"]:
            assert got["addr"] == want["read"][c], f"{label}: reads row {got['addr']}, golden {want['read'][c]}"
        if c in want["add"]:
            assert seen[c - HeadZSequencer.ADD_LATENCY]["addr"] == want["add"][c], f"{label}: adds another row"


@pytest.mark.parametrize("T,drain", [(1, 5), (4, 5), (3, 0)])
def test_head_z_sequencer_random_layers_equal_golden(T, drain):
    rng = np.random.default_rng(59 + T)
    layers = []
    while sum(g for _, g, _, _ in layers) < TRANSACTIONS:
        tokens, groups = int(rng.integers(1, 5)), int(rng.integers(1, 40))
        layers.append((tokens, groups, groups * T, int(rng.integers(0, 3))))
    head_z_check(T, drain, layers, run_head_z(T, drain, layers))


HEAD_Z_EDGES = {"one token, one group": [(1, 1, 4, 0)], "layers back to back": [(2, 3, 12, 0), (1, 2, 8, 0)],
                "a wide layer after an idle gap": [(1, 1, 4, 0), (16, 8, 32, 5)]}


@pytest.mark.parametrize("case", list(HEAD_Z_EDGES))
@pytest.mark.parametrize("T", [1, 2, 4])
def test_head_z_sequencer_edge_case(T, case):
    layers = HEAD_Z_EDGES[case]
    head_z_check(T, 5, layers, run_head_z(T, 5, layers), names=[case] * len(layers))


# ---------------------------------------------------------------------------------------------------- Kᵀ·V layer

# (lanes, T, head_dim, heads, most tokens): P = d, P < d (two lane groups per head), P > d (whole heads per group),
# one lane
KV_SHAPES = {"P=d": (4, 2, 4, 2, 6), "P<d": (2, 3, 4, 2, 5), "P>d": (8, 2, 4, 4, 7), "one lane": (1, 2, 2, 2, 3)}


def kv_layout(k, v, lanes, T, k_base, v_base):
    """The activation RAM rows of K and V spikes [T, C, N] (0/1): row base + n·groups + group, lane l of a row holds
    channel group·lanes + l, its T-bit word at bits [l·T, (l+1)·T)."""
    _, C, N = k.shape
    G = C // lanes
    rows = {}
    for base, x in ((k_base, k), (v_base, v)):
        for n in range(N):
            for g in range(G):
                rows[base + n * G + g] = sum(int(x[t, g * lanes + l, n]) << (l * T + t)
                                             for l in range(lanes) for t in range(T))
    return rows


def run_kv_sequencer(shape, layers):
    """layers: (tokens, K spikes, V spikes, idle cycles before the start). The bench is the core around the
    sequencer: the activation RAM's row-address register, RAM and output register (act_row), the read-out port's
    address register, RAM and two registers (v_row), the add-enable registers and the lane accumulators
    (golden.components.lane_accumulators_step), the KV RAM's write. Returns per layer the start and done cycles and
    the rows written."""
    P, T, d, heads, NT = shape
    H = P // d if P > d else 1
    dut = KvSequencer(P, T, NT, d, H, addr_width=12)
    k_base, v_base = 7, 300

    async def bench(ctx):
        cycle, results = 0, []
        row_reg = dbg_reg = 0
        ram_out = act_q = v_ram = vq = vq2 = 0
        acc = np.zeros((P, T), dtype=np.int64)
        held = np.zeros((P, T), dtype=np.int64)
        add_en = np.zeros((P, T), dtype=bool)
        init_reg = False
        for tokens, k, v, idle in layers:
            rows = kv_layout(k, v, P, T, k_base, v_base)
            C = k.shape[1]
            fields = dict(tokens=tokens, channels=d, groups=C // P, dp=max(1, d // P), k_base=k_base, v_base=v_base)
            start, done, writes = None, None, []
            for step in range(100_000):
                starting = step == idle
                ctx.set(dut.start, int(starting))
                for name, value in fields.items():
                    ctx.set(getattr(dut, name), value if starting else 0)   # sampled at start only
                ctx.set(dut.act_row, act_q)
                ctx.set(dut.v_row, vq2)
                out = {p: ctx.get(getattr(dut, p)) for p in ("k_load", "k_addr", "v_load", "v_addr", "acc_init", "add",
                                                             "add_mask", "snap", "write", "write_row", "busy", "done",
                                                             "add_next", "snap_next")}
                if step:
                    for port in ("add", "snap"):
                        assert out[port] == previous[port + "_next"], \
                            f"cycle {cycle}: {port} {out[port]}, but {port}_next was {previous[port + '_next']}"
                previous = out
                if starting:
                    start = cycle
                if out["write"]:
                    writes.append((out["write_row"], held.copy()))
                if out["done"]:
                    done = cycle
                # the clock edge: the core's registers and RAMs around the sequencer
                act_q, ram_out = ram_out, rows.get(row_reg, 0)
                vq2, vq, v_ram = vq, v_ram, rows.get(dbg_reg, 0)
                row_reg = out["k_addr"] if out["k_load"] else row_reg
                dbg_reg = out["v_addr"] if out["v_load"] else 0
                acc, held, _ = lane_accumulators_step(acc, held, init_reg or out["snap"], np.zeros(P), add_en,
                                                      np.ones((P, T)), out["snap"], False, 16)
                mask = out["add_mask"]
                add_en = np.array([[out["add"] and (mask >> (l * T + t)) & 1 for t in range(T)] for l in range(P)],
                                  dtype=bool)
                init_reg = bool(out["acc_init"])
                busy = out["busy"]
                await ctx.tick()
                cycle += 1
                if done is not None and not busy and cycle > done + 1:
                    break
            results.append((start, done, writes))
        return results
    return simulate(dut, bench)


def kv_check(shape, layers, results, names=None):
    P, T, d, heads, NT = shape
    H = P // d if P > d else 1
    for i, ((tokens, k, v, _), (start, done, writes)) in enumerate(zip(layers, results)):
        label = names[i] if names else f"layer {i}"
        C = k.shape[1]
        G = C // P
        want = kv_layer(kv_layout(k, v, P, T, 7, 300), P, T, H, d, tokens, d, G, max(1, d // P), 7, 300)
        # the twin itself is Kᵀ·V of the model (golden.primitives.attention): lane l of group g is V channel g·P + l
        kv, _ = attention(k[:, None], k[:, None], v[:, None], heads)
        for g in range(G):
            for ch in range(d):
                for lane in range(P):
                    c = g * P + lane
                    h, j = divmod(c, d)
                    assert [want["writes"][g * d + ch][lane][t] for t in range(T)] == list(kv[:, 0, h, ch, j])
        assert done is not None, f"{label}: no done"
        assert done - start == want["cycles"], f"{label}: done {done - start} cycles after start, golden " \
                                               f"{want['cycles']}"
        assert [r for r, _ in writes] == list(range(G * d)), f"{label}: KV RAM rows written {[r for r, _ in writes]}"
        for r, (row, got) in enumerate(writes):
            g, ch = divmod(r, d)
            assert np.array_equal(got, np.array(want["writes"][r])), \
                f"{label}: lane group {g}, K channel {ch}: sums {got.tolist()}, golden {want['writes'][r]}"


def kv_random_layers(shape, rng, writes):
    P, T, d, heads, NT = shape
    layers, total = [], 0
    while total < writes:
        tokens = int(rng.integers(1, NT + 1))
        density = rng.choice([0.05, 0.3, 0.7])
        k = (rng.random((T, heads * d, tokens)) < density).astype(np.int64)
        v = (rng.random((T, heads * d, tokens)) < 0.5).astype(np.int64)
        layers.append((tokens, k, v, int(rng.integers(0, 3))))
        total += heads * d // P * d
    return layers


@pytest.mark.parametrize("shape", list(KV_SHAPES))
def test_kv_sequencer_random_layers_equal_golden(shape):
    rng = np.random.default_rng(67 + len(shape))
    layers = kv_random_layers(KV_SHAPES[shape], rng, TRANSACTIONS // len(KV_SHAPES) + 1)
    kv_check(KV_SHAPES[shape], layers, run_kv_sequencer(KV_SHAPES[shape], layers))


def test_kv_sequencer_edge_cases():
    shape = KV_SHAPES["P<d"]
    P, T, d, heads, NT = shape
    zeros = np.zeros((T, heads * d, NT), dtype=np.int64)
    ones = np.ones((T, heads * d, NT), dtype=np.int64)
    one_token = zeros.copy()
    one_token[:, :, NT - 1] = 1
    cases = {"no K spike at all": (NT, zeros, ones, 0), "every K and V spike": (NT, ones, ones, 0),
             "only the last token spikes": (NT, one_token, one_token, 1), "one token": (1, ones[:, :, :1], ones[:, :, :1], 0)}
    layers = list(cases.values())
    kv_check(shape, layers, run_kv_sequencer(shape, layers), names=list(cases))


# ---------------------------------------------------------------------------------------------------- tap walker

WALK_LAYOUT = data.StructLayout({"k3": 1, "Wi": 8, "Hi": 8, "Gin": 6, "PS": 10, "RS": 10, "GS": 10, "WTS": 10,
                                 "WGS": 10})
WALK_GEOMETRY = ("Wi", "Hi", "k3", "Gin", "PS", "RS", "GS", "WTS", "WGS")


def run_tap_walker(outputs, rng):
    """outputs: dicts with the geometry (WALK_GEOMETRY) and pos, weight_base, ix, iy. The bench starts each output,
    then takes items (step) at random cycles until done, and between outputs loads row_addr (as Kᵀ·V does).
    Returns, per output, what it saw each cycle: (row_addr, weight_row, group, in_bounds, last, done, stepped), and
    the loads' (address, row_addr after)."""
    dut = TapWalker(WALK_LAYOUT, address_width=16, weight_address_width=14)

    async def bench(ctx):
        walks, loads = [], []
        for out in outputs:
            for f in WALK_GEOMETRY:
                ctx.set(getattr(dut.layer, f), out[f])
            ctx.set(dut.start, 1)
            for port in ("pos", "weight_base"):
                ctx.set(getattr(dut, port), out[port])
            ctx.set(dut.xok, tap_flags(out["ix"], out["Wi"]))
            ctx.set(dut.yok, tap_flags(out["iy"], out["Hi"]))
            await ctx.tick()
            ctx.set(dut.start, 0)
            seen = []
            while len(seen) < 400:
                step = int(rng.random() < 0.7)
                ctx.set(dut.step, step)
                got = tuple(ctx.get(getattr(dut, p)) for p in ("row_addr", "weight_row", "group", "in_bounds",
                                                               "last", "done"))
                seen.append(got + (step,))
                await ctx.tick()
                if got[5]:
                    break
            ctx.set(dut.step, 0)
            address = int(rng.integers(-100, 3000))
            ctx.set(dut.load, 1)
            ctx.set(dut.load_addr, address)
            await ctx.tick()
            ctx.set(dut.load, 0)
            loads.append((address, ctx.get(dut.row_addr)))
            walks.append(seen)
        return walks, loads
    return simulate(dut, bench)


def tap_walker_check(outputs, result, names=None):
    walks, loads = result
    for n, (out, seen) in enumerate(zip(outputs, walks)):
        label = names[n] if names else f"output {n}"
        items = tap_walk(out["pos"], out["weight_base"], out["ix"], out["iy"], out["Wi"], out["Hi"], bool(out["k3"]),
                         out["Gin"], out["PS"], out["RS"], out["GS"], out["WTS"], out["WGS"])
        i = 0
        for c, (row, weight, group, inside, last, done, step) in enumerate(seen):
            if i == len(items):
                assert done, f"{label}, cycle {c}: not done after its {len(items)} items"
                break
            assert not done, f"{label}, cycle {c}: done after {i} of {len(items)} items"
            got = (row, weight, group, bool(inside))
            assert got == items[i], f"{label}, cycle {c}, item {i}: (row, weight row, group, inside) {got}, " \
                                    f"golden {items[i]}"
            assert bool(last) == (i == len(items) - 1), f"{label}, cycle {c}, item {i}: last {last}"
            i += step
        else:
            raise AssertionError(f"{label}: {i} of {len(items)} items in {len(seen)} cycles")
    for n, (address, after) in enumerate(loads):
        assert after == address, f"output {n}: load_addr {address}, row_addr {after}"


def random_walk_output(rng):
    k3 = int(rng.random() < 0.7)
    Wi, Hi = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    return {"k3": k3, "Wi": Wi, "Hi": Hi, "Gin": int(rng.integers(0, 5)),
            "PS": int(rng.integers(0, 60)), "RS": int(rng.integers(0, 300)), "GS": int(rng.integers(0, 20)),
            "WTS": int(rng.integers(0, 200)), "WGS": int(rng.integers(0, 20)),
            "pos": int(rng.integers(-50, 2000)), "weight_base": int(rng.integers(0, 4000)),
            "ix": int(rng.integers(-k3, Wi + 1)), "iy": int(rng.integers(-k3, Hi + 1))}


def test_tap_walker_random_outputs_equal_golden():
    rng = np.random.default_rng(71)
    outputs = [random_walk_output(rng) for _ in range(250)]
    assert sum(len(tap_walk(o["pos"], o["weight_base"], o["ix"], o["iy"], o["Wi"], o["Hi"], bool(o["k3"]), o["Gin"],
                            o["PS"], o["RS"], o["GS"], o["WTS"], o["WGS"])) for o in outputs) >= TRANSACTIONS
    tap_walker_check(outputs, run_tap_walker(outputs, rng))


WALK_BASE = {"Wi": 4, "Hi": 4, "Gin": 2, "PS": 4, "RS": 32, "GS": 1, "WTS": 2, "WGS": 1, "pos": 100,
             "weight_base": 7}
TAP_WALKER_EDGES = {
    "1x1 kernel, one group": {**WALK_BASE, "k3": 0, "Gin": 1, "ix": 0, "iy": 0},
    "3x3 corner (padding on two sides)": {**WALK_BASE, "k3": 1, "ix": -1, "iy": -1},
    "3x3 wholly inside": {**WALK_BASE, "k3": 1, "ix": 1, "iy": 1},
    "3x3 over a 1x1 map": {**WALK_BASE, "k3": 1, "Wi": 1, "Hi": 1, "ix": -1, "iy": -1},
    "zero groups count as one": {**WALK_BASE, "k3": 1, "Gin": 0, "ix": 0, "iy": 0},
    "five groups, bottom-right corner": {**WALK_BASE, "k3": 1, "Gin": 5, "ix": 2, "iy": 2},
}


def test_tap_walker_edge_cases():
    names = list(TAP_WALKER_EDGES)
    outputs = [TAP_WALKER_EDGES[n] for n in names]
    tap_walker_check(outputs, run_tap_walker(outputs, np.random.default_rng(5)), names=names)


# ---------------------------------------------------------------------------------------------------- output loop

LOOP_LAYOUT = data.StructLayout({"Ho": 5, "Wo": 5, "Gout": 5, "k3": 1, "s2": 1, "a0": signed(10), "XSTEP": 8,
                                 "YSTEP": 9, "hoff": 2, "DP": 4, "R": 8, "out_base": 10, "w_base": 10, "p_base": 8,
                                 "Wi": 5, "Hi": 5})
LOOP_FIELDS = ("Ho", "Wo", "Gout", "k3", "s2", "a0", "XSTEP", "YSTEP", "hoff", "DP", "R", "out_base", "w_base",
               "p_base", "Wi", "Hi")
LOOP_VALUES = ("out_row", "stream_row", "group", "weight_base", "param_row", "pos", "ix", "iy", "xok", "yok")


def run_output_loop(layers, T, rng, mode):
    """mode "outputs": each layer's outputs taken with next_output at random cycles (one more after the last);
    mode "groups": next_group at random cycles and next_out_row at others. Returns per layer the cycles seen:
    (values, group_last, last_output, rows_last, stepped, out_row_stepped)."""
    dut = OutputLoop(LOOP_LAYOUT, T, address_width=14, position_width=12)

    async def bench(ctx):
        runs = []
        for e in layers:
            for f in LOOP_FIELDS:
                ctx.set(getattr(dut.entry, f), e[f])
            ctx.set(dut.load, 1)
            await ctx.tick()
            ctx.set(dut.load, 0)
            ctx.set(dut.group_steps, int(mode == "groups"))
            for f in LOOP_FIELDS:
                ctx.set(getattr(dut.layer, f), e[f])
                ctx.set(getattr(dut.entry, f), 0)
            total = max(1, e["Ho"]) * (max(1, e["Wo"]) if mode == "outputs" else 1) * max(1, e["Gout"])
            # the contract: no command in the cycle after load or after a command that moved the same values; the
            # in-bounds flags (read by the issue side only, "outputs") need three cycles after a command or load
            seen, steps, last_step, last_row_step = [], 0, True, True
            since = 1
            while steps < total:
                step = int(not last_step and rng.random() < 0.6 and (mode == "groups" or since >= 3))
                since = 1 if step else since + 1
                row_step = int(mode == "groups" and not step and not last_row_step and rng.random() < 0.5)
                last_step, last_row_step = bool(step), bool(row_step or (mode == "outputs" and step))
                ctx.set(dut.next_output if mode == "outputs" else dut.next_group, step)
                ctx.set(dut.next_out_row, row_step)
                values = {v: ctx.get(getattr(dut, v)) for v in LOOP_VALUES}
                seen.append((values, ctx.get(dut.group_last), ctx.get(dut.last_output), ctx.get(dut.rows_last),
                             step, row_step))
                steps += step
                await ctx.tick()
            ctx.set(dut.next_output, 0)
            ctx.set(dut.next_group, 0)
            ctx.set(dut.next_out_row, 0)
            seen.append(({v: ctx.get(getattr(dut, v)) for v in LOOP_VALUES}, None, None, None, 0, 0))
            runs.append(seen)
        return runs
    return simulate(dut, bench)


def output_loop_check(layers, T, runs, names=None):
    for n, (e, seen) in enumerate(zip(layers, runs)):
        label = names[n] if names else f"layer {n}"
        outs = output_walk(e, T)
        i = 0
        for c, (values, group_last, last_output, _, step, _) in enumerate(seen[:-1]):
            assert values == outs[i], f"{label}, cycle {c}, output {i}: {values}, golden {outs[i]}"
            assert bool(last_output) == (i == len(outs) - 1), f"{label}, cycle {c}, output {i}: last {last_output}"
            assert bool(group_last) == (outs[i]["group"] == max(1, e["Gout"]) - 1), f"{label}, output {i}"
            i += step
        after = seen[-1][0]
        # after the layer's last output: the next output row, group 0, the layer's first weight and parameter rows
        assert (after["out_row"], after["group"], after["weight_base"], after["param_row"]) == \
            (e["out_base"] + len(outs), 0, e["w_base"], e["p_base"]), f"{label}: after the last output {after}"


def group_loop_check(layers, runs, names=None):
    for n, (e, seen) in enumerate(zip(layers, runs)):
        label = names[n] if names else f"layer {n}"
        steps, i, rows = group_walk(e), 0, 0
        for c, (values, group_last, _, rows_last, step, row_step) in enumerate(seen[:-1]):
            got = {"group": values["group"], "param_row": values["param_row"], "group_last": bool(group_last),
                   "rows_last": bool(rows_last)}
            assert got == steps[i], f"{label}, cycle {c}, step {i}: {got}, golden {steps[i]}"
            assert values["out_row"] == e["out_base"] + rows, f"{label}, cycle {c}: out_row {values['out_row']}"
            i, rows = i + step, rows + row_step


def random_loop_layer(rng):
    hoff = int(rng.integers(0, 3))
    return {"Wi": int(rng.integers(0, 12)), "Hi": int(rng.integers(0, 12)),"Ho": int(rng.integers(0, 5)), "Wo": int(rng.integers(0, 5)), "Gout": int(rng.integers(0, 6)),
            "k3": int(rng.integers(0, 2)), "s2": int(rng.integers(0, 2)), "a0": int(rng.integers(-100, 300)),
            "XSTEP": int(rng.integers(0, 40)), "YSTEP": int(rng.integers(0, 300)), "hoff": hoff,
            "DP": int(rng.integers(1, 4)), "R": int(rng.integers(0, 100)), "out_base": int(rng.integers(0, 900)),
            "w_base": int(rng.integers(0, 900)), "p_base": int(rng.integers(0, 200))}


@pytest.mark.parametrize("T", [1, 4])
def test_output_loop_random_layers_equal_golden(T):
    rng = np.random.default_rng(83 + T)
    layers = []
    while sum(len(output_walk(e, T)) for e in layers) < TRANSACTIONS:
        layers.append(random_loop_layer(rng))
    output_loop_check(layers, T, run_output_loop(layers, T, rng, "outputs"))


def test_output_loop_group_steps_equal_golden():
    rng = np.random.default_rng(89)
    layers = []
    while sum(len(group_walk(e)) for e in layers) < TRANSACTIONS:
        layers.append(random_loop_layer(rng))
    group_loop_check(layers, run_output_loop(layers, 4, rng, "groups"))


LOOP_BASE = {"Ho": 3, "Wo": 3, "Gout": 2, "k3": 1, "s2": 0, "a0": -5, "XSTEP": 4, "YSTEP": 12, "hoff": 0, "DP": 1,
             "R": 9, "out_base": 40, "w_base": 100, "p_base": 20, "Wi": 3, "Hi": 3}
OUTPUT_LOOP_EDGES = {
    "one output": {**LOOP_BASE, "Ho": 1, "Wo": 1, "Gout": 1},
    "zero sizes count as one": {**LOOP_BASE, "Ho": 0, "Wo": 0, "Gout": 0},
    "stride 2, no padding": {**LOOP_BASE, "k3": 0, "s2": 1},
    "one input row per group (hoff 1)": {**LOOP_BASE, "hoff": 1, "Gout": 4},
    "DP rows every DP groups (hoff 2)": {**LOOP_BASE, "hoff": 2, "DP": 2, "Gout": 5},
    "one column, many rows": {**LOOP_BASE, "Wo": 1, "Ho": 6},
}


def test_output_loop_edge_cases():
    names = list(OUTPUT_LOOP_EDGES)
    layers = [OUTPUT_LOOP_EDGES[n] for n in names]
    output_loop_check(layers, 4, run_output_loop(layers, 4, np.random.default_rng(7), "outputs"), names=names)
    group_loop_check(layers, run_output_loop(layers, 4, np.random.default_rng(8), "groups"), names=names)


# ---------------------------------------------------------------------------------------------------- layer controller

CONTROLLER_INPUTS = ("start", "pooling", "tap_in_bounds", "tap_last", "tap_done", "rows_advance", "rows_ending",
                     "last_output", "issue_last_output", "stream_lif_done", "kv_done", "head_z_done", "pipeline_idle")
OPS = [op.name.lower() for op in Opcode]
CONTROLLER_STATES = {"IDLE", "FETCH", "LOAD", "OUT_INIT", "ROWS", "LAYER_WAIT", "ROW_RD", "LATCH", "WRITE", "SL_WAIT",
                     "SL_START", "SL_RUN", "KV_RUN", "HZ_START", "HZ_RUN", "ARGMAX", "ARGMAX_DONE"}


def random_controller_cycles(n, rng, p=0.5):
    """n cycles of random controller inputs (every flag high with probability p, any opcode)."""
    return [dict({k: bool(rng.random() < p) for k in CONTROLLER_INPUTS}, entry_op=OPS[int(rng.integers(len(OPS)))])
            for _ in range(n)]


def run_controller(cycles, T, layers, classes, environment=None, limit=20_000):
    """Drive a LayerController with each cycle's inputs (or, with `environment`, inputs it computes each cycle from
    the outputs of the cycles before: environment(outputs_so_far) -> inputs or None to stop, at most `limit`
    cycles); returns the outputs of every cycle and the inputs applied."""
    dut = LayerController(layers, classes, T)
    names = [k for k in LAYER_CONTROLLER_OUTPUTS if k != "state"]

    async def bench(ctx):
        seen, applied = [], []
        k = 0
        while True:
            c = environment(seen) if environment else (cycles[k] if k < len(cycles) else None)
            if c is None or k == limit:
                return seen, applied
            for name in CONTROLLER_INPUTS:
                ctx.set(getattr(dut, name), int(c[name]))
            ctx.set(dut.entry_op, Opcode[c["entry_op"].upper()])
            seen.append({name: int(ctx.get(getattr(dut, name))) for name in names})
            applied.append(c)
            await ctx.tick()
            k += 1
    return simulate(dut, bench)


def controller_check(applied, seen, T, layers, classes, names=None):
    """Compare every output of every cycle with the twin; returns the twin's state per cycle."""
    r, states = layer_controller_init(), []
    for k, (c, got) in enumerate(zip(applied, seen)):
        want, r = layer_controller_step(r, c, layers, classes, output_spacing(T), stream_lif_param_wait(T))
        label = names[k] if names else f"cycle {k}"
        for name, value in got.items():
            assert value == int(want[name]), \
                f"{label} (state {want['state']}): {name} {value}, golden {int(want[name])}"
        states.append(want["state"])
    return states


@pytest.mark.parametrize("T", [4, 1])
def test_layer_controller_random_cycles_equal_golden(T):
    # few layers and classes, so that random flags reach the argmax and the end of an inference often
    cycles = random_controller_cycles(4 * TRANSACTIONS, np.random.default_rng(101 + T))
    seen, applied = run_controller(cycles, T, 3, 2)
    states = controller_check(applied, seen, T, 3, 2)
    missed = CONTROLLER_STATES - set(states) - (set() if stream_lif_param_wait(T) else {"SL_WAIT"})
    assert not missed, f"the random inputs never reached {sorted(missed)}"


def idle_inputs(**high):
    return {**{k: False for k in CONTROLLER_INPUTS}, "entry_op": "acc", **high}


def plan_environment(plan, T):
    """A behavioural model of the units around the controller running `plan` (a list of layers), for a whole
    inference: each layer {"op": name, ...} with, by kind,
      accumulating (conv_in, acc, attn, head): "spans" (per output, the ROWS cycles from the previous output's
        end, the first from OUT_INIT, until the row pipeline says its scan ends), "items" (per output, the tap
        walker's items: it steps on every take, the pipeline takes every cycle) and "tail" (cycles LAYER_WAIT waits
        for the pipelines and the epilogue);
      pool: "taps", per output the in-map flag of each tap;
      stream_lif, head_z: "run" (the sequencer's cycles from its start to its done, inclusive);
      kv: "run" and "tail".
    Returns environment(outputs so far) for run_controller."""
    st = {"layer": -1, "out": 0, "since": 0, "tap": 0, "issue": 0}

    def env(seen):
        if not seen:
            return idle_inputs(start=True)
        o = seen[-1]
        if len(seen) > 1 and seen[-2]["done"] == 0 and o["done"]:
            return None
        if o["load"]:
            st.update(layer=st["layer"] + 1, out=0, since=0, issue=0)
        if o["next_output"]:
            st.update(out=st["out"] + 1, since=0)
        if o["issue_next"]:
            st["issue"] += 1
        if o["walk_start"] or (o["next_output"] and plan[st["layer"]]["op"] == "pool"):
            st["tap"] = 0
        if o["output_start"] or o["kv_start"] or o["stream_lif_start"] or o["head_z_start"]:
            st.update(since=0, tap=0)
        if o["tap_step"]:
            st["tap"] += 1
        st["since"] += 1
        nxt = plan[min(st["layer"] + 1, len(plan) - 1)]
        x = idle_inputs(entry_op=nxt["op"])
        if st["layer"] < 0:
            return x
        e = plan[st["layer"]]
        x["pooling"] = e["op"] == "pool"
        if e["op"] == "pool":
            taps = e["taps"][min(st["out"], len(e["taps"]) - 1)]
            t = min(st["tap"], len(taps) - 1)
            x.update(tap_in_bounds=taps[t], tap_last=t == len(taps) - 1)
            x["last_output"] = st["out"] == len(e["taps"]) - 1
        elif e["op"] in ("stream_lif", "head_z"):
            x["stream_lif_done"] = x["head_z_done"] = st["since"] == e["run"]
        elif e["op"] == "kv":
            x["kv_done"] = st["since"] == e["run"]
            x["pipeline_idle"] = st["since"] > e["run"] + e["tail"]
        else:
            spans, items = e["spans"], e["items"]
            x["last_output"] = st["out"] >= len(spans) - 1
            x["issue_last_output"] = st["issue"] >= len(spans) - 1
            n_items = items[min(st["issue"], len(items) - 1)]
            x.update(tap_done=st["tap"] >= n_items, tap_last=st["tap"] == n_items - 1)
            x["rows_advance"] = True
            x["rows_ending"] = st["out"] < len(spans) and st["since"] >= spans[st["out"]]
            # LAYER_WAIT: `since` counts on from the last output's end
            x["pipeline_idle"] = st["out"] >= len(spans) and st["since"] > e["tail"]
        return x
    return env


def plan_cycles(plan, T, classes):
    """The cycles of an inference of `plan` (the controller's `cycles` when done rises), from the schedule's costs."""
    tm, spacing, total = timing(T), output_spacing(T), 0
    for e in plan:
        total += tm["layer_fetch"]
        if e["op"] == "pool":
            total += sum(tm["output_start"] + sum(tm["pool_row"] if inside else tm["pool_tap_outside"] for inside in taps)
                         + tm["epilogue"]["pool_write"] for taps in e["taps"])
        elif e["op"] == "stream_lif":
            total += stream_lif_param_wait(T) + 1 + e["run"]
        elif e["op"] == "head_z":
            total += 1 + e["run"]
        elif e["op"] == "kv":
            total += e["run"] + e["tail"] + 1
        else:
            spans = e["spans"]
            total += tm["output_start"] + spans[0] + sum(max(s, spacing) for s in spans[1:]) + e["tail"] + 1
    return total + classes * tm["argmax_class"] + tm["argmax_fixed"]


CONTROLLER_PLAN = [
    {"op": "conv_in", "spans": [5, 3, 30, 4], "items": [1, 1, 20, 2], "tail": 9},
    {"op": "pool", "taps": [[False, True, True, False], [True] * 4, [False] * 4]},
    {"op": "acc", "spans": [3], "items": [1], "tail": 0},
    {"op": "stream_lif", "run": 11},
    {"op": "kv", "run": 7, "tail": 4},
    {"op": "attn", "spans": [1, 3, 3], "items": [1, 1, 1], "tail": 2},
    {"op": "head_z", "run": 6},
    {"op": "head", "spans": [4, 12], "items": [3, 9], "tail": 3},
]


@pytest.mark.parametrize("T", [4, 2, 1])
def test_layer_controller_runs_a_plan_in_the_schedules_cycles(T):
    """A whole inference of a plan with every kind of layer, the units around the controller modelled: every cycle
    equals the twin, and the inference takes the cycles the schedule (timing()) says, from start to done."""
    classes = 3
    seen, applied = run_controller(None, T, len(CONTROLLER_PLAN), classes, plan_environment(CONTROLLER_PLAN, T))
    states = controller_check(applied, seen, T, len(CONTROLLER_PLAN), classes)
    assert states[-1] == "IDLE" and seen[-1]["done"] == 1, f"the inference did not end (last state {states[-1]})"
    assert seen[-1]["cycles"] == plan_cycles(CONTROLLER_PLAN, T, classes), \
        f"cycles {seen[-1]['cycles']}, schedule {plan_cycles(CONTROLLER_PLAN, T, classes)}"
    assert sum(o["load"] for o in seen) == len(CONTROLLER_PLAN)
    assert sum(o["argmax_valid"] for o in seen) == classes
    assert [o["argmax_index"] for o in seen if o["argmax_valid"]] == list(range(classes))
    ends = [k for k, o in enumerate(seen) if o["end_output"]]
    assert all(b - a >= output_spacing(T) for a, b in zip(ends, ends[1:])), "two outputs ended closer than the spacing"
    # every accumulating output after a layer's first is walked from the seam: its loop stepped, then its walk
    accumulating = [e for e in CONTROLLER_PLAN if "spans" in e]
    pooled = sum(len(e["taps"]) for e in CONTROLLER_PLAN if e["op"] == "pool")
    assert sum(o["walk_start"] for o in seen) == sum(len(e["spans"]) - 1 for e in accumulating)
    assert sum(o["issue_next"] for o in seen) == sum(len(e["spans"]) - 1 for e in accumulating) + pooled
    assert [k for k, o in enumerate(seen) if o["fetch_next"]] == \
        [k + 1 for k, o in enumerate(seen) if o["end_output"] and states[k + 1] == "ROWS"], \
        "fetch_next is not the cycle after each end of an output with another to come"


def test_layer_controller_edge_cases():
    T, layers, classes = 4, 2, 2
    cases = {
        "start": idle_inputs(start=True),
        "fetch": idle_inputs(),
        "load: a stream LIF waits for its thresholds": idle_inputs(entry_op="stream_lif"),
        "stream LIF: wait": idle_inputs(),
        "stream LIF: start": idle_inputs(),
        "stream LIF: done on the last layer goes on (only the head ends a model)": idle_inputs(stream_lif_done=True),
        "fetch past the plan": idle_inputs(),
        "load: an accumulating layer": idle_inputs(entry_op="acc"),
        "output start": idle_inputs(),
        "rows: the next item taken": idle_inputs(rows_advance=True),
        "rows: the scanner holds its item": idle_inputs(),
        "rows: the last output ends": idle_inputs(rows_advance=True, rows_ending=True, last_output=True),
        "layer wait: pipelines busy": idle_inputs(),
        "layer wait: idle": idle_inputs(pipeline_idle=True),
    }
    seen, applied = run_controller(list(cases.values()), T, layers, classes)
    states = controller_check(applied, seen, T, layers, classes, names=list(cases))
    assert states[5] == "SL_RUN" and states[6] == "FETCH" and seen[6]["layer"] == 1
    assert seen[11]["end_output"] and seen[11]["next_output"] and states[12] == "LAYER_WAIT"
