"""Resource model: memory mapping against Yosys, and the whole core against a stored synthesis result."""
import json
import os
import random

import pytest
from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hls_models import resources
from tools.yosys import cell_counts

BENCH = os.path.join(os.path.dirname(__file__), "..", "docs", "bench", "synth_results.json")


class Rom(wiring.Component):
    def __init__(self, depth, width):
        self.depth, self.width = depth, width
        super().__init__({"addr": In(max(1, (depth - 1).bit_length())), "y": Out(width)})

    def elaborate(self, platform):
        m = Module()
        rng = random.Random(self.depth * 1000 + self.width)   # random words: nothing for Yosys to fold
        m.submodules.rom = rom = Memory(shape=self.width, depth=self.depth,
                                        init=[rng.getrandbits(self.width) for _ in range(self.depth)])
        port = rom.read_port()
        m.d.comb += [port.addr.eq(self.addr), self.y.eq(port.data)]
        return m


def yosys_cells(tmp_path, depth, width, target):
    text = verilog.convert(Rom(depth, width), name="rom")
    return cell_counts(text, "rom", str(tmp_path), {"mapped": f"synth_{target} -top rom"})["mapped"]


@pytest.mark.synth
@pytest.mark.parametrize("target,bram_cell", [("ecp5", "DP16KD"), ("ice40", "SB_RAM40_4K")])
@pytest.mark.parametrize("depth,width", [(1024, 16), (512, 72), (96, 24), (64, 16)])
def test_memory_mapping_matches_yosys(tmp_path, target, bram_cell, depth, width):
    cells = yosys_cells(tmp_path, depth, width, target)
    predicted = resources.memory_cost(depth, width, target)
    assert predicted["bram"] == cells.get(bram_cell, 0)
    if predicted["bram"] == 0:   # a small ROM in LUTs, with its read register
        luts = cells.get("LUT4", 0) + cells.get("SB_LUT4", 0)
        assert luts == pytest.approx(predicted["lut"], rel=0.25)


class Ram(wiring.Component):
    """A written depth x width memory with a synchronous read, as the core's RAMs are."""
    def __init__(self, depth, width):
        self.depth, self.width = depth, width
        aw = max(1, (depth - 1).bit_length())
        super().__init__({"waddr": In(aw), "wdata": In(width), "we": In(1), "raddr": In(aw), "y": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.ram = ram = Memory(shape=self.width, depth=self.depth, init=[])
        w, r = ram.write_port(), ram.read_port()
        m.d.comb += [w.addr.eq(self.waddr), w.data.eq(self.wdata), w.en.eq(self.we), r.addr.eq(self.raddr),
                     self.y.eq(r.data)]
        return m


@pytest.mark.synth
@pytest.mark.parametrize("depth,width", [(32, 768), (64, 384), (16, 176), (416, 128)])
def test_written_memory_goes_where_yosys_puts_it(tmp_path, depth, width):
    """Block RAM or distributed RAM by Yosys's library costs: the 32-lane K·V RAM (32 x 768) in LUTs, the 16-lane
    one (64 x 384) in block RAM."""
    text = verilog.convert(Ram(depth, width), name="ram")
    cells = cell_counts(text, "ram", str(tmp_path), {"mapped": "synth_ecp5 -top ram"})["mapped"]
    predicted = resources.memory_cost(depth, width, "ecp5", read_only=False)
    assert predicted["bram"] == cells.get("DP16KD", 0), (predicted, cells)
    assert (predicted["bram"] == 0) == (cells.get("TRELLIS_DPR16X4", 0) == resources.lutram_cells(depth, width))


@pytest.mark.synth
def test_a_roms_constant_columns_take_no_block_ram(tmp_path):
    """Yosys maps only the columns that differ between rows: 29 x 1,248 with 391 constant columns (the 32-lane digits
    parameter ROM's shape) takes 24 DP16KD, not the 35 of its full width."""
    from rtl.engine.memories import constant_columns
    rng = random.Random(3)
    depth, width, live = 29, 1248, 857
    live_cols = sorted(rng.sample(range(width), live))
    ones = sum(1 << c for c in range(width) if c not in live_cols and rng.random() < 0.5)
    words = [ones | sum(rng.getrandbits(1) << c for c in live_cols) for _ in range(depth)]
    assert constant_columns(words, width) == width - live

    class ConstRom(Rom):
        def elaborate(self, platform):
            m = Module()
            m.submodules.rom = rom = Memory(shape=width, depth=depth, init=words, attrs={"ram_style": "block"})
            port = rom.read_port()
            m.d.comb += [port.addr.eq(self.addr), self.y.eq(port.data)]
            return m
    text = verilog.convert(ConstRom(depth, width), name="rom")
    cells = cell_counts(text, "rom", str(tmp_path), {"mapped": "synth_ecp5 -top rom"})["mapped"]
    mem = {"kind": "rom", "style": "block", "read_ports": 1, "write_ports": 0, "parts": [[depth, width]],
           "constant_columns": width - live}
    assert resources._engine_memory(mem, "ecp5")["bram"] == cells.get("DP16KD", 0) == 24


@pytest.mark.unit
def test_bram_tiling_picks_the_cheapest_aspect_ratio():
    assert resources.bram_blocks(512, 36) == 1          # exactly one DP16KD in its widest mode
    assert resources.bram_blocks(513, 36) == 2
    assert resources.bram_blocks(16384, 1) == 1
    assert resources.bram_blocks(2048, 20) == 3         # 2048 x 9 three times beats 1024 x 18 four times
    assert resources.bram_blocks(256, 16, "ice40") == 1
    assert resources.bram_blocks(256, 17, "ice40") == 2


@pytest.mark.unit
def test_popcount_and_adders_scale_with_bits():
    assert resources.adder(20) == {"lut": 20, "ff": 0, "bram": 0}
    small, big = resources.popcount(16), resources.popcount(64)
    assert 3.5 <= big["lut"] / small["lut"] <= 4.5 and big["ff"] > small["ff"]


class LaneArray(wiring.Component):
    """P lanes × T accumulators adding a P-wide ROM row where the spike word's bit is set, then a threshold compare:
    the shape of the core's time-inner datapath (docs/engine.md), written here independently of rtl/."""

    def __init__(self, lanes, T=4, acc_bits=20, weight_bits=8, depth=512):
        self.P, self.T, self.A, self.wb, self.depth = lanes, T, acc_bits, weight_bits, depth
        super().__init__({"word": In(T), "addr": In((depth - 1).bit_length()), "valid": In(1), "clear": In(1),
                          "spikes": Out(lanes * T)})

    def elaborate(self, platform):
        from amaranth import Cat, Signal, signed
        m = Module()
        rng = random.Random(1)
        m.submodules.rom = rom = Memory(shape=self.P * self.wb, depth=self.depth,
                                        init=[rng.getrandbits(self.P * self.wb) for _ in range(self.depth)])
        port = rom.read_port()
        word, valid = Signal(self.T), Signal()
        m.d.comb += port.addr.eq(self.addr)
        m.d.sync += [word.eq(self.word), valid.eq(self.valid)]
        spikes = []
        for p in range(self.P):
            w = port.data[p * self.wb:(p + 1) * self.wb].as_signed()
            for t in range(self.T):
                acc, s = Signal(signed(self.A)), Signal()
                with m.If(self.clear):
                    m.d.sync += acc.eq(0)
                with m.Elif(valid & word[t]):
                    m.d.sync += acc.eq(acc + w)
                m.d.sync += s.eq(acc >= 100 + p)
                spikes.append(s)
        m.d.comb += self.spikes.eq(Cat(*spikes))
        return m


@pytest.mark.synth
def test_lane_datapath_estimate_within_25_percent_of_place_and_route(tmp_path):
    from tools import synth
    lanes, T, A, wb, depth = 8, 4, 20, 8, 512
    v = tmp_path / "lanes.v"
    v.write_text(verilog.convert(LaneArray(lanes, T, A, wb, depth), name="lanes"))
    rep = synth.synthesise(str(v), "lanes", "ecp5", seeds=1, out_dir=str(tmp_path / "out"), progress=lambda m: None)
    r = resources
    per_acc = r.add(r.adder(A), r.register(A), r.comparator(A), r.register(1))
    est = r.placed(r.add(r.scale(per_acc, lanes * T), r.register(T + 1), r.memory_cost(depth, lanes * wb)))
    assert est["bram"] == rep["bram"] == 2
    for key in ("lut", "ff"):
        assert abs(est[key] - rep[key]) <= 0.25 * rep[key], (key, est[key], rep[key])


@pytest.mark.unit
def test_core_estimate_within_10_percent_of_stored_synthesis():
    """The whole-core model against `make bench`'s stored ECP5 result (refreshed by `make bench`)."""
    from tools.bench import TOLERANCE
    with open(BENCH) as f:
        bench = json.load(f)
    assert bench["points"], "run `make bench` to store a synthesis result"
    assert TOLERANCE <= 0.10
    for point in bench["points"]:
        est = resources.estimate_from_manifest(point["manifest"])
        assert est["blocks"] and point["synth"]["dsp"] == 0
        for key in ("lut", "ff", "bram"):
            measured = point["synth"][key]
            assert abs(est[key] - measured) <= TOLERANCE * measured, (point["lanes"], key, est[key], measured)
        # block RAM is counted, not fitted: every memory's mapping follows Yosys's rules
        assert est["bram"] == point["synth"]["bram"], (point["lanes"], est["bram"], point["synth"]["bram"])
