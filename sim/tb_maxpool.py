"""OrPool bench. Driver: frames of H rows of W T-bit words, one row per cycle (random idle cycles in the random
test). Model: golden.primitives.or_pool on the words. Checker: every pooled row in order; a back-to-back burst of
frames against hls_models.blocks.maxpool_cycles."""
import cocotb
import numpy as np

from golden.primitives import or_pool, pack_words
from hls_models.blocks import maxpool_cycles
from tb_common import Bench, pack, params, rng, transactions, unpack


def random_frame(r, H, W, T):
    density = r.choice([0.0, 0.03, 0.2, 0.7])
    return pack_words((r.random((T, H, W)) < density).astype(np.uint8))


async def run_frames(dut, frames, r=None):
    p = params()
    H, W, T = p["height"], p["width"], p["T"]
    Wo = (W + 1) // 2
    bench = Bench(dut)
    await bench.start(in_valid=0)
    rows = [row for f in frames for row in f]
    got, i, first, last = [], 0, None, None
    while len(got) < len(frames) * ((H + 1) // 2):
        assert bench.n < 3 * len(rows) + 100, "OrPool stopped producing rows"
        if i < len(rows) and not (r is not None and r.random() < 0.15):
            await bench.cycle(in_valid=1, in_row=pack(rows[i], T))
            first = bench.n if first is None else first
            i += 1
        else:
            await bench.cycle(in_valid=0, in_row=0 if r is None else int(r.integers(0, 1 << 62)) & ((1 << (W * T)) - 1))
        if bench.get("out_valid"):
            got.append(unpack(bench.get("out_row"), Wo, T))
            last = bench.n
    return got, last - first + 1


def check(frames, got, H, names=None):
    Ho = (H + 1) // 2
    for f, frame in enumerate(frames):
        want = or_pool(np.asarray(frame))
        have = np.asarray(got[f * Ho:(f + 1) * Ho])
        if not np.array_equal(want, have):
            yo, xo = map(int, np.argwhere(want != have)[0])
            name = names[f] if names else f"frame {f}"
            raise AssertionError(f"{name}: pooled word ({yo}, {xo}) is {have[yo, xo]:b}, golden {want[yo, xo]:b}")


@cocotb.test()
async def random_frames(dut):
    p = params()
    r = rng(4)
    frames = [random_frame(r, p["height"], p["width"], p["T"]) for _ in range(transactions() // p["height"] + 1)]
    got, _ = await run_frames(dut, frames, r)
    check(frames, got, p["height"])


@cocotb.test()
async def edge_cases(dut):
    p = params()
    H, W, T = p["height"], p["width"], p["T"]
    ones = (1 << T) - 1
    corner = np.zeros((H, W), dtype=np.int64)
    corner[H - 1, W - 1] = 1 << (T - 1)
    single = np.zeros((H, W), dtype=np.int64)
    single[1, 1] = 1                      # odd row and column: in four windows
    named = {"all zero": np.zeros((H, W), dtype=np.int64), "all one": np.full((H, W), ones),
             "last corner (padding side)": corner, "odd position shared by four windows": single,
             "checkerboard": np.fromfunction(lambda y, x: ((y + x) % 2) * ones, (H, W)).astype(np.int64)}
    frames = list(named.values())
    got, cycles = await run_frames(dut, frames)
    check(frames, got, H, list(named))
    assert cycles == maxpool_cycles(len(frames) * H), \
        f"{len(frames) * H} rows took {cycles} cycles, exp {maxpool_cycles(len(frames) * H)}"
