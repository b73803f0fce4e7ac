"""LayerTable: the layer-table ROM and its decode into a layer entry (golden twin:
golden.components.decode_layer_word)."""
from __future__ import annotations

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, enum, memory, wiring
from amaranth.lib.wiring import In, Out

from ..engine_plan import FIELDS, OP_NAMES
from .util import bits


class Opcode(enum.Enum, shape=3):
    """Layer opcodes (rtl/engine_plan.py: OP_*, docs/engine.md)."""
    CONV_IN = 0       # first conv, bit-serial over the pixel bits
    ACC = 1           # accumulate-only conv / linear over spike words
    POOL = 2          # 3×3 OR pool over spike words
    STREAM_LIF = 3    # LIF over the residual stream
    KV = 4            # Kᵀ·V by AND-accumulate over tokens
    ATTN = 5          # Q · KV
    HEAD_Z = 6        # Z_c = Σ_t Σ_n of the stream
    HEAD = 7          # logits, bit-serial over the bits of Z


assert [op.name.lower() for op in Opcode] == OP_NAMES and [op.value for op in Opcode] == list(range(len(OP_NAMES)))


def layer_field_widths(plan):
    """Bits of each layer-table field (a0 is signed, the others unsigned), in FIELDS order."""
    widths = {}
    for f in FIELDS:
        vals = [e[f] for e in plan.layers]
        widths[f] = max(bits(abs(v)) for v in vals) + 1 if f == "a0" else bits(max(vals))
    return widths


def layer_entry_layout(widths):
    """The layout of one layer-table entry: FIELDS in order from the low bits, `op` an Opcode, `a0` signed."""
    def shape(f):
        if f == "op":
            assert widths[f] <= Opcode.as_shape().width
            return Opcode
        return signed(widths[f]) if f == "a0" else unsigned(widths[f])
    return data.StructLayout({f: shape(f) for f in FIELDS})


def pack_layer_entry(layout, entry) -> int:
    """The ROM word of one layer-table entry (a dict with FIELDS)."""
    return layout.const({f: Opcode(entry[f]) if f == "op" else int(entry[f]) for f in FIELDS}).as_value().value


class LayerTable(wiring.Component):
    """The layer table (a ROM, one entry per layer) and its decode.

    Ports: index (a layer) → entry (its fields, layout layer_entry_layout, the opcode an Opcode).
    Latency: 1 cycle (the synchronous ROM read: index in cycle c → entry in cycle c + 1). Throughput: one entry per
    cycle.
    """

    def __init__(self, plan):
        self.widths = layer_field_widths(plan)
        self.layout = layer_entry_layout(self.widths)
        self.words = [pack_layer_entry(self.layout, e) for e in plan.layers]
        super().__init__({"index": In(range(max(2, len(self.words)))), "entry": Out(self.layout)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = memory.Memory(shape=unsigned(self.layout.size), depth=len(self.words),
                                               init=self.words)
        rd = rom.read_port()
        m.d.comb += [rd.addr.eq(self.index), self.entry.eq(rd.data)]
        return m
