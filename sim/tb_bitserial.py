"""BitSerialMac bench. Driver: fields = load bias while idle, then values with weight rows on valid/ready
(valid held until taken, random gaps). Model: golden.primitives.head (Σ_c w[k, c]·Z_c + b, the head's formula;
for unsigned values it is the first conv's per-tap sum). Checker: the P accumulators after each field; a
back-to-back field's cycles against hls_models.blocks.bitserial_cycles. A transaction is one value."""
import cocotb
import numpy as np

from golden.primitives import head
from hls_models.blocks import bitserial_cycles
from tb_common import Bench, pack, params, rng, srange, transactions, unpack


def model(bias, values, weights):
    """values [n], weights [n, P] -> acc [P]."""
    x = np.asarray(values, dtype=np.int64).reshape(1, 1, -1, 1)
    if x.shape[2] == 0:
        return np.asarray(bias)
    return head(x, np.asarray(weights).T, bias)[1][0]


async def run_fields(dut, fields, r=None):
    p = params()
    P, B, W, A = p["lanes"], p["bits"], p["weight_width"], p["acc_width"]
    bench = Bench(dut)
    await bench.start(load=0, in_valid=0)
    got, spans = [], []
    for bias, values, weights in fields:
        while True:                                   # load only while idle
            await bench.cycle(load=0, in_valid=0)
            if not bench.get("busy"):
                break
        await bench.cycle(load=1, bias=pack(bias, A), in_valid=0)
        first = None
        for value, row in zip(values, weights):
            while r is not None and r.random() < 0.1:
                await bench.cycle(load=0, in_valid=0)
            while True:
                await bench.cycle(load=0, in_valid=1, in_value=int(value) & ((1 << B) - 1), in_weights=pack(row, W))
                if bench.get("in_ready"):
                    first = bench.n if first is None else first
                    break
        await bench.cycle(load=0, in_valid=0)
        while bench.get("busy"):
            await bench.cycle(load=0, in_valid=0)
        got.append(unpack(bench.get("acc"), P, A, True))
        spans.append(None if first is None else bench.n - first + 1)
    return got, spans


def check(fields, got, names=None):
    for f, ((bias, values, weights), acc) in enumerate(zip(fields, got)):
        want = model(bias, values, weights)
        name = names[f] if names else f"field {f}"
        assert list(want) == list(acc), f"{name}: acc {list(acc)}, golden {list(want)} (values {list(values)})"


def value_range(p):
    return srange(p["bits"]) if p["signed"] else (0, (1 << p["bits"]) - 1)


@cocotb.test()
async def random_fields(dut):
    p = params()
    P, W = p["lanes"], p["weight_width"]
    lo, hi = value_range(p)
    wlo, whi = srange(W)
    r = rng(6)
    fields, n = [], 0
    while n < transactions():
        k = int(r.integers(0, p["max_values"] + 1))
        fields.append((r.integers(-1000, 1000, size=P), r.integers(lo, hi + 1, size=k),
                       r.integers(wlo, whi + 1, size=(k, P))))
        n += k
    got, _ = await run_fields(dut, fields, r)
    check(fields, got)


@cocotb.test()
async def edge_cases(dut):
    p = params()
    P, W, A, B, E = p["lanes"], p["weight_width"], p["acc_width"], p["bits"], p["max_values"]
    lo, hi = value_range(p)
    wlo, whi = srange(W)
    alo, ahi = srange(A)
    named = {
        "largest products up to the largest accumulator": (np.full(P, ahi - E * hi * whi), [hi] * E,
                                                           np.full((E, P), whi)),
        "smallest value times largest weight": (np.full(P, alo - E * lo * whi if lo < 0 else 0), [lo] * E,
                                                np.full((E, P), whi)),
        "zero values (all bits clear)": (np.arange(P), [0] * E, np.full((E, P), wlo)),
        "all bits set": (np.zeros(P, dtype=np.int64), [-1 if p["signed"] else hi] * E, np.full((E, P), wlo)),
        "no value": (np.full(P, 5), [], np.zeros((0, P), dtype=np.int64)),
    }
    fields = list(named.values())
    got, spans = await run_fields(dut, fields)
    check(fields, got, list(named))
    for name, (_, values, _), span in zip(named, fields, spans):
        if len(values):
            assert span == bitserial_cycles(len(values), B), \
                f"{name}: {len(values)} values took {span} cycles, exp {bitserial_cycles(len(values), B)}"
