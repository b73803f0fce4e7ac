"""ParamReader: the parameter ROM and the registers behind it (golden twin: golden.components.param_reads)."""
from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..engine_plan import PARAM_FIELDS, param_row_width
from .util import pack


class ParamReader(wiring.Component):
    """One parameter row per output lane group: each lane's bias, firing threshold and lane shift (the output
    channel's power of two that the weight ROM leaves out). A row is the P lanes of each field in turn, bias lowest.

    The row goes through plain registers behind the block RAM. The first sits right behind it (synthesis moves it
    into the block RAM's output register where the RAM's mapping allows; where it does not, its only load is the next
    register, so it is placed beside the RAM): the RAM's 5.7-ns clock-to-output plus the route to the readers all over
    the die was the Fashion-MNIST core's worst path.

    Ports:
      addr               the row to read (every cycle)
      fetch              mark this cycle's row: `ready` rises when it is on the outputs
      bias[P], theta[P], lane_shift[P], ready (out)
    Latency: `latency` cycles (1 to 3: the RAM, then latency - 1 registers): addr in cycle c → its row on the outputs
    in c + latency, with `ready` if fetch was high in c. Throughput: one row per cycle.
    """

    FIELDS = PARAM_FIELDS   # the row layout gen-rtl writes into manifest.json

    def __init__(self, lanes: int, widths: dict, rows, latency: int):
        """widths: the bits of each of FIELDS; rows: per row, each field's P lane values."""
        assert 1 <= latency <= 3
        self.P, self.widths, self.latency = lanes, {f: widths[f] for f in self.FIELDS}, latency
        self.rows = [list(r) for r in rows]
        super().__init__({
            "addr": In(max(1, (max(1, len(self.rows)) - 1).bit_length())), "fetch": In(1),
            "bias": Out(data.ArrayLayout(signed(widths["bias"]), lanes)),
            "theta": Out(data.ArrayLayout(unsigned(widths["theta"]), lanes)),
            "lane_shift": Out(data.ArrayLayout(unsigned(widths["lane_shift"]), lanes)),
            "ready": Out(1),
        })

    @classmethod
    def field_offsets(cls, lanes: int, widths: dict) -> dict:
        """Each field's first bit in a row (the fields in FIELDS order, lane 0 in the low bits of each)."""
        return {f: lanes * sum(widths[g] for g in cls.FIELDS[:i]) for i, f in enumerate(cls.FIELDS)}

    @classmethod
    def row_words(cls, lanes: int, widths: dict, rows) -> list[int]:
        """The ROM's rows as integers (gen-rtl's memory layout counts their constant columns from these)."""
        offset = cls.field_offsets(lanes, widths)
        return [sum(pack(values, widths[f]) << offset[f] for f, values in zip(cls.FIELDS, row)) for row in rows]

    def elaborate(self, platform):
        m = Module()
        P = self.P
        offset = self.field_offsets(P, self.widths)
        # ram_style: left alone, Yosys builds this ROM from LUTs, whose depth then limits Fmax (measured)
        m.submodules.rom = rom = memory.Memory(
            shape=unsigned(param_row_width(P, self.widths)), depth=max(1, len(self.rows)),
            init=self.row_words(P, self.widths, self.rows), attrs={"ram_style": "block"})
        read = rom.read_port()
        m.d.comb += read.addr.eq(self.addr)
        row = read.data
        for i in range(self.latency - 1):
            row_q = Signal.like(read.data, name=f"row_q{i or ''}", reset_less=True)
            m.d.sync += row_q.eq(row)
            row = row_q
        ready = self.fetch
        for i in range(self.latency):
            ready_q = Signal(name=f"ready_q{i}")
            m.d.sync += ready_q.eq(ready)
            ready = ready_q
        for f in self.FIELDS:
            w = self.widths[f]
            m.d.comb += [getattr(self, f)[l].eq(row[offset[f] + l * w:offset[f] + (l + 1) * w]) for l in range(P)]
        m.d.comb += self.ready.eq(ready)
        return m
