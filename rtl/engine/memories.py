"""The core's memories: the block-RAM shapes the generator picks (column slices one block deep, weight-ROM banks),
the manifest's `memories` section, and the banked weight ROM (golden twin: golden.components.banked_rom_read)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..engine_plan import param_row_width
from .params import ParamReader
from .util import bits as _bits


# ECP5 block RAM (DP16KD) aspects, deepest first is narrowest. A memory deeper than 512 rows is split into column
# slices narrow enough that each slice is one block deep: Yosys then needs no LUT multiplexer behind the RAM, whose
# clock-to-output (5.6-5.8 ns, measured) leaves no room for one at 100 MHz.
BRAM_ASPECTS = [(512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)]
# The weight ROM is split into banks one block RAM deep; every bank's output is registered, and a registered one-hot
# bank select picks the row a cycle later, so each bank costs one register and one multiplexer input per ROM bit.
# The aspect is the one with the least cost in LUTs, a block RAM counted as the LUTs it displaces on the LFE5U-85F
# (83,640 LUT4 / 208 DP16KD): deep narrow banks save blocks only while their registers cost less.
LUTS_PER_BLOCK = 83640 // 208


def weight_banking(depth, width):
    """(rows per bank, slice width) of the weight ROM: the aspect of least blocks x LUTS_PER_BLOCK + banks x width
    (ties: fewer banks)."""
    def cost(aspect):
        banks = -(-depth // aspect[0])
        return banks * -(-width // aspect[1]) * LUTS_PER_BLOCK + banks * width, banks
    return min(BRAM_ASPECTS, key=cost)


def slice_width(depth, width, wanted=None):
    """Column-slice width of a memory of depth x width: a memory one block deep keeps its width; a deeper one is
    cut into slices of the widest aspect that holds `depth` rows (or `wanted`)."""
    depth = max(1, depth)
    if depth <= BRAM_ASPECTS[0][0]:
        return width
    return wanted or next((w for rows, w in BRAM_ASPECTS if depth <= rows), 1)


def _parts(depth, width, sw):
    """The physical memories [depth, width] of one memory cut into column slices of sw bits."""
    return [[max(1, depth), min(width, lo + sw) - lo] for lo in range(0, width, sw)]


def memory_layout(plan, layer_table_width):
    """Every memory of the core as the generator builds it: kind (rom/ram), ram_style, read and write ports, and
    its physical parts [depth, width] (column slices, weight-ROM banks). gen-rtl writes it into manifest.json
    (`memories`); the resource model reads it from there."""
    P, T, W, D = plan.lanes, plan.T, plan.widths, plan.dims
    w_depth, w_width = max(1, D["weight_rows"]), P * W["weight"]
    bank_rows, bank_sw = weight_banking(w_depth, w_width)
    weight_parts = []
    for lo in range(0, w_depth, bank_rows):
        rows = min(bank_rows, w_depth - lo)
        weight_parts += _parts(rows, w_width, slice_width(rows, w_width, bank_sw))

    def sliced(depth, width):
        return _parts(depth, width, slice_width(depth, width))

    def entry(kind, parts, read_ports=1, write_ports=0, style=None):
        return {"kind": kind, "style": style, "read_ports": read_ports, "write_ports": write_ports, "parts": parts}
    return {
        "layer_table": entry("rom", [[len(plan.layers), layer_table_width]]),
        "image": entry("ram", [[D["pixels"], W["pixel"]]], write_ports=1),
        "weights": {**entry("rom", weight_parts, style="block"), "bank_rows": bank_rows, "bank_slice": bank_sw},
        # ram_style: left alone, Yosys builds this ROM from LUTs, whose depth then limits Fmax (measured). Yosys
        # drops the columns that hold one value in every row (padding lanes, unused high bits, the lane shifts of
        # layers without them) before it maps the rest: a third of the digits model's parameter bits
        "params": {**entry("rom", [[max(1, D["param_rows"]), param_row_width(P, W)]], style="block"),
                   "constant_columns": constant_columns(ParamReader.row_words(P, W, plan.param_rows),
                                                        param_row_width(P, W))},
        "z": entry("ram", [[max(1, D["z_rows"]), P * W["z"]]], write_ports=1),
        # the second read port is the debug read-out (dbg_addr -> dbg_data)
        "act": entry("ram", sliced(D["act_rows"], P * T), read_ports=2, write_ports=1),
        "stream": entry("ram", sliced(D["stream_rows"], P * W["stream"]), write_ports=1),
        "kv": entry("ram", sliced(D["kv_rows"], P * T * W["kv"]), write_ports=1),
    }



def constant_columns(words, width: int) -> int:
    """Bit columns of a ROM that hold the same value in every row."""
    if not words:
        return width
    ones, zeros = (1 << width) - 1, (1 << width) - 1
    for w in words:
        ones &= w
        zeros &= ~w
    return bin(ones | (zeros & ((1 << width) - 1))).count("1")


# Yosys's promise that no read collides with a write to the same row (SlicedRam)
RAM_COLLISIONS = {"no_rw_check": 1}


class _Port:
    def __init__(self, addr, data, en=None):
        self.addr, self.data, self.en = addr, data, en


def sliced_memory(m, name, width, depth, init=None, wanted_slice=None, attrs=None):
    """A memory of `depth` x `width` as column slices one block RAM deep (`wanted_slice` wide, by default the
    widest aspect that holds `depth` rows; see slice_width). Returns a factory of read/write ports."""
    depth = max(1, depth)
    sw = slice_width(depth, width, wanted_slice)
    mems = []
    for i, lo in enumerate(range(0, width, sw)):
        hi = min(width, lo + sw)
        mem = memory.Memory(shape=unsigned(hi - lo), depth=depth,
                            init=[(v >> lo) & ((1 << (hi - lo)) - 1) for v in init] if init else [], attrs=attrs)
        m.submodules[f"{name}_{i}" if width > sw else name] = mem
        mems.append((lo, hi, mem))
    aw = _bits(depth - 1)

    def read_port():
        addr, data = Signal(aw, name=f"{name}_raddr"), Signal(width, name=f"{name}_rdata")
        en = Signal(name=f"{name}_ren", init=1)
        for lo, hi, mem in mems:
            rp = mem.read_port()
            m.d.comb += [rp.addr.eq(addr), data[lo:hi].eq(rp.data), rp.en.eq(en)]
        return _Port(addr, data, en)

    def write_port():
        addr, data = Signal(aw, name=f"{name}_waddr"), Signal(width, name=f"{name}_wdata")
        en = Signal(name=f"{name}_we")
        for lo, hi, mem in mems:
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(addr), wp.data.eq(data[lo:hi]), wp.en.eq(en)]
        return _Port(addr, data, en)
    return read_port, write_port


def RomRead(addr_width, data_width):
    """A synchronous ROM read port, from the reader's side: addr out, data in (wiring.connect it to a ROM's
    flipped `read` member)."""
    return wiring.Signature({"addr": Out(addr_width), "data": In(data_width)})


class BankedRom(wiring.Component):
    """A ROM of `rows` (ints, `width` bits each) cut into banks of `bank_rows` rows, each bank column-sliced
    `bank_slice` bits wide so every slice is one block RAM (weight_banking): no LUT multiplexer behind any block
    RAM. Every bank's output is registered; a one-hot bank select (the bank's address bits, registered along) then
    picks the row in two registered steps, first within groups of GROUP banks, then among the groups: the banks of
    a large ROM sit all over the die, and one step measured 8-9 ns of routing alone (Fashion-MNIST, 28 banks).
    The bank registers are plain (no reset, no enable) so that ECP5 synthesis moves them into the block RAMs' own
    output registers (tools/ecp5_outreg.py), out of the RAM's long clock-to-output.

    Ports: read.addr (register it: the RAMs take it directly) → read.data.
    Latency: LATENCY = 4 cycles (RAM read, bank register, group select, select: addr in cycle c → data in cycle
    c + 4). Throughput: one row per cycle. Addresses past the last row read 0 when they fall outside every bank.
    """
    LATENCY = 4
    GROUP = 4

    def __init__(self, rows, width, bank_rows, bank_slice, addr_width, name="rom"):
        self.rows = [int(r) for r in rows] or [0]
        self.width, self.bank_rows, self.bank_slice, self.name = width, bank_rows, bank_slice, name
        super().__init__({"read": In(RomRead(addr_width, width))})

    def elaborate(self, platform):
        m = Module()
        W, R = self.width, self.bank_rows
        reads = []
        for b, lo in enumerate(range(0, len(self.rows), R)):
            read, _ = sliced_memory(m, f"{self.name}_{b}", W, len(self.rows[lo:lo + R]), init=self.rows[lo:lo + R],
                                    wanted_slice=self.bank_slice, attrs={"ram_style": "block"})
            reads.append(read())
        NB = len(reads)
        bank_bits = _bits(R - 1)
        addr = self.read.addr
        bank_oh = [Signal(NB, name=f"bank_oh{i}") for i in range(2)]
        # reset-less: the select (reset) already masks them, and a plain register is what synthesis moves into the
        # block RAM's output register (tools/ecp5_outreg.py)
        bank_q = [Signal(W, name=f"bank_q_{b}", reset_less=True) for b in range(NB)]
        groups = [range(lo, min(NB, lo + self.GROUP)) for lo in range(0, NB, self.GROUP)]
        group_q = [Signal(W, name=f"group_q_{g}") for g in range(len(groups))]
        data = Signal(W)
        m.d.comb += [rd.addr.eq(addr[:bank_bits]) for rd in reads]
        m.d.sync += [bank_oh[0].eq(Cat(addr[bank_bits:] == b for b in range(NB))), bank_oh[1].eq(bank_oh[0])]
        m.d.sync += [q.eq(rd.data) for q, rd in zip(bank_q, reads)]
        for gq, banks in zip(group_q, groups):
            m.d.sync += gq.eq(Cat(*[Cat(bank_q[b][i] & bank_oh[1][b] for b in banks).any() for i in range(W)]))
        m.d.sync += data.eq(Cat(*[Cat(gq[i] for gq in group_q).any() for i in range(W)]))
        m.d.comb += self.read.data.eq(data)
        return m


def RamRead(addr_width, data_width):
    """A synchronous RAM read port from the reader's side: addr and en (1 when left alone; 0 keeps the output)
    out, data in."""
    return wiring.Signature({"addr": Out(addr_width), "en": Out(1, init=1), "data": In(data_width)})


def RamWrite(addr_width, data_width):
    """A RAM write port from the writer's side."""
    return wiring.Signature({"addr": Out(addr_width), "en": Out(1), "data": Out(data_width)})


class SlicedRam(wiring.Component):
    """A RAM of `depth` x `width` cut into column slices one block RAM deep (slice_width), with `read_ports`
    synchronous read ports (`read[i]`) and one write port (`write`).

    A read in the cycle of a write to the same row is undefined (RAM_COLLISIONS): simulation returns the old row,
    the FPGA whatever its block RAM gives. The core never uses such a read (tests/test_engine_collisions.py), and
    without the promise Yosys adds a write-data register and a bypass multiplexer behind every RAM output bit,
    which keeps the register behind the RAM out of the block RAM's output register.

    Latency: 1 cycle (addr in cycle c → data in cycle c + 1; en low keeps the port's data). Throughput: one read
    per port and one write per cycle.
    """

    def __init__(self, width, depth, read_ports=1, name="ram"):
        self.width, self.depth, self.name = width, max(1, depth), name
        aw = _bits(self.depth - 1)
        super().__init__({"read": In(RamRead(aw, width)).array(read_ports), "write": In(RamWrite(aw, width))})

    def elaborate(self, platform):
        m = Module()
        read, write = sliced_memory(m, self.name, self.width, self.depth, attrs=RAM_COLLISIONS)
        for port in self.read:
            rp = read()
            m.d.comb += [rp.addr.eq(port.addr), rp.en.eq(port.en), port.data.eq(rp.data)]
        wp = write()
        m.d.comb += [wp.addr.eq(self.write.addr), wp.en.eq(self.write.en), wp.data.eq(self.write.data)]
        return m
