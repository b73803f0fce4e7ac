"""SpikeScanner bench. Driver: rows of T-bit words on in_valid/in_ready (valid held until taken, random gaps),
random out_ready stalls. Model: the non-zero words of golden.primitives.pack_words over the row's spikes.
Checker: the event stream (index, word, last) in order; a back-to-back burst with out_ready high against
hls_models.blocks.scanner_cycles."""
import cocotb
import numpy as np

from golden.primitives import pack_words
from hls_models.blocks import scanner_cycles
from tb_common import Bench, pack, params, rng, transactions


def model(words):
    idx = np.flatnonzero(np.asarray(words))
    return [(int(i), int(words[i]), k == len(idx) - 1) for k, i in enumerate(idx)]


def random_row(r, R, T):
    density = r.choice([0.0, 0.05, 0.3, 0.9])
    spikes = (r.random((T, R)) < density).astype(np.uint8)
    return [int(w) for w in pack_words(spikes)]


async def run_rows(dut, rows, r=None):
    """Returns (events, busy cycles from the first row's transfer until idle)."""
    p = params()
    R, T = p["words"], p["T"]
    bench = Bench(dut)
    await bench.start(in_valid=0, out_ready=0)
    events, i, first, idle_at = [], 0, None, None
    while idle_at is None:
        assert bench.n < 20 * (len(rows) * (R + 1)) + 100, "SpikeScanner stopped"
        gap = r is not None and r.random() < 0.1
        send = i < len(rows) and not gap
        stall = r is not None and r.random() < 0.25
        await bench.cycle(in_valid=int(send), in_row=pack(rows[i], T) if send else 0, out_ready=int(not stall))
        if i == len(rows) and not bench.get("out_valid"):
            idle_at = bench.n
        if bench.get("out_valid") and not stall:
            events.append((bench.get("out_index"), bench.get("out_word"), bool(bench.get("out_last"))))
        if send and bench.get("in_ready"):
            first = bench.n if first is None else first
            i += 1
    return events, idle_at - first


@cocotb.test()
async def random_rows(dut):
    p = params()
    r = rng(3)
    rows = [random_row(r, p["words"], p["T"]) for _ in range(transactions())]
    events, _ = await run_rows(dut, rows, r)
    want = [e for row in rows for e in model(row)]
    for k, (w, g) in enumerate(zip(want, events)):
        assert w == g, f"event {k}: (index, word, last) {g}, golden {w}"
    assert len(events) == len(want), f"{len(events)} events, golden {len(want)}"


@cocotb.test()
async def edge_cases(dut):
    p = params()
    R, T = p["words"], p["T"]
    ones = (1 << T) - 1
    named = {
        "all-zero row": [0] * R,
        "all-one row": [ones] * R,
        "only the last word": [0] * (R - 1) + [1 << (T - 1)],
        "only the first word": [ones] + [0] * (R - 1),
        "two all-zero rows back to back": [0] * R,
        "alternate words": [(ones if k % 2 else 0) for k in range(R)],
        "single event then all-zero": [0, 5 % (ones + 1) or 1] + [0] * (R - 2),
        "all-zero last row": [0] * R,
    }
    rows = list(named.values())
    events, cycles = await run_rows(dut, rows)
    want = [e for row in rows for e in model(row)]
    assert events == want, f"edge rows: events {events}, golden {want}"
    nnz = [len(model(row)) for row in rows]
    assert cycles == scanner_cycles(nnz), f"rows with nnz {nnz} took {cycles} cycles, exp {scanner_cycles(nnz)}"
