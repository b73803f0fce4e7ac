"""ResidualAdder bench. Driver: one set of P stream values and branch accumulators per cycle (random gaps).
Model: the stream update X + branch (docs/intmodel.md) (numpy), range-checked against the analysed stream width.
Checker: every output set in order, the sticky overflow flag (low until a sum leaves the range, then high);
a back-to-back burst against hls_models.blocks.residual_cycles."""
import cocotb
import numpy as np

from hls_models.blocks import residual_cycles
from tb_common import Bench, pack, params, rng, srange, transactions, unpack


async def run_sets(dut, sets, r=None):
    p = params()
    P, S, R = p["lanes"], p["stream_width"], p["branch_width"]
    bench = Bench(dut)
    await bench.start(in_valid=0)
    got, flags, i, first, last = [], [], 0, None, None
    while len(got) < len(sets):
        assert bench.n < 3 * len(sets) + 100, "ResidualAdder stopped"
        if i < len(sets) and not (r is not None and r.random() < 0.15):
            await bench.cycle(in_valid=1, stream=pack(sets[i][0], S), branch=pack(sets[i][1], R))
            first = bench.n if first is None else first
            i += 1
        else:
            await bench.cycle(in_valid=0)
        if bench.get("out_valid"):
            got.append(unpack(bench.get("out"), P, S, True))
            flags.append(bench.get("overflow"))
            last = bench.n
    return got, flags, last - first + 1


@cocotb.test()
async def random_sets(dut):
    p = params()
    P, S, R = p["lanes"], p["stream_width"], p["branch_width"]
    slo, shi = srange(S)
    blo, bhi = srange(R)
    r = rng(7)
    sets = []
    for _ in range(transactions()):
        branch = r.integers(blo, bhi + 1, size=P)
        stream = r.integers(np.maximum(slo, slo - branch), np.minimum(shi, shi - branch) + 1)
        sets.append((stream, branch))
    got, flags, _ = await run_sets(dut, sets, r)
    for k, ((x, b), y) in enumerate(zip(sets, got)):
        assert list(x + b) == y, f"set {k}: stream {y}, model {list(x + b)}"
    assert not any(flags), "overflow raised although every sum was in range"


@cocotb.test()
async def edge_cases(dut):
    p = params()
    P, S, R = p["lanes"], p["stream_width"], p["branch_width"]
    slo, shi = srange(S)
    blo, bhi = srange(R)
    named = {"largest sum": (np.full(P, shi - bhi), np.full(P, bhi)),
             "smallest sum": (np.full(P, slo - blo), np.full(P, blo)),
             "zero branch": (np.arange(P) - P, np.zeros(P, dtype=np.int64)),
             "one past the largest (overflow)": (np.full(P, shi), np.full(P, 1))}
    sets = list(named.values())
    got, flags, cycles = await run_sets(dut, sets)
    for (name, (x, b)), y in list(zip(named.items(), got))[:-1]:
        assert list(x + b) == y, f"{name}: stream {y}, model {list(x + b)}"
    assert flags == [0, 0, 0, 1], f"overflow flag per set {flags}, expected only the last to raise it"
    assert cycles == residual_cycles(len(sets)), f"{len(sets)} sets took {cycles} cycles, exp {residual_cycles(4)}"
