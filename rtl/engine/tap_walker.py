"""TapWalker: the input rows of one output, tap by tap (golden twin: golden.components.tap_walk)."""
from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def tap_position_width(field_widths: dict) -> int:
    """Bits of a tap's input column / row: it lies in [-1, map size + 2), so the map fields' width, a sign and a
    carry (field_widths: the layer table's, layer_field_widths)."""
    return max(field_widths[f] for f in ("Wi", "Hi", "Wo", "Ho")) + 2


class TapWalker(wiring.Component):
    """Walks the input rows that one output reads: the kernel's taps (3×3 or 1×1) in row-major order and, in a tap
    inside the input map, its input lane groups; a tap outside the map (the padding) is one step with in_bounds low.

    The layer's geometry comes from its layer-table entry (`layer`, the LayerTable layout): k3 (3×3 taps), Wi and
    Hi (the input map), Gin (input lane groups), PS / RS (row-address step to the next tap column / kernel row),
    GS (to the next input lane group), WTS / WGS (weight-row step to the next tap / input lane group).

    Ports:
      start, pos, weight_base, xok, yok
                       begin an output: its first row is `pos` (tap (0, 0), group 0), its first weight row
                       `weight_base`; bit k of xok / yok: tap column / kernel row k lies inside the input map (the
                       output loop keeps them ready, so the start loads flags and compares nothing)
      step             the current item is taken: the walk moves to the next group, or the next tap
      load, load_addr  set row_addr alone (Kᵀ·V walks its K rows through this register)
      row_addr, weight_row, group, in_bounds
                       the current item: its input row, its weight row, its input lane group, inside the map
      last             (combinational) a step now takes the walk's last item
      done             the last item was taken (until the next start)
    Latency: start in cycle c → first item in c + 1; step in c → next item (or done) in c + 1. Throughput: one
    item per cycle. Each output takes Σ over its taps of (Gin if the tap is inside the map, else 1) items; every
    loop decision reads a flag register (group_last) or a 2-bit tap counter, not a compare on a counter.
    """

    def __init__(self, layer_layout, address_width: int, weight_address_width: int):
        self.layer_layout = layer_layout
        super().__init__({
            "layer": In(layer_layout),
            "start": In(1), "pos": In(signed(address_width)), "weight_base": In(weight_address_width),
            "xok": In(3), "yok": In(3),
            "step": In(1), "load": In(1), "load_addr": In(signed(address_width)),
            "row_addr": Out(signed(address_width)), "weight_row": Out(weight_address_width),
            "group": Out(layer_layout["Gin"].width),
            "in_bounds": Out(1), "last": Out(1), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L = self.layer
        ky, kx = Signal(2), Signal(2)
        group_last = Signal()
        tap_addr = Signal.like(self.row_addr)   # row of group 0 in the current tap
        tap_row = Signal.like(self.row_addr)    # row of group 0, tap column 0, in the current kernel row
        weight_tap = Signal.like(self.weight_row)
        # tap column / kernel row k lies inside the input map (loaded at start)
        xok = [Signal(name=f"xok_{k}") for k in range(3)]
        yok = [Signal(name=f"yok_{k}") for k in range(3)]
        kmax = Mux(L.k3, 2, 0)
        more_columns, more_rows = kx < kmax, ky < kmax
        m.d.comb += [self.in_bounds.eq(Array(xok)[kx] & Array(yok)[ky]),
                     self.last.eq((~self.in_bounds | group_last) & ~more_columns & ~more_rows)]

        with m.If(self.start):
            m.d.sync += [xok[k].eq(self.xok[k]) for k in range(3)]
            m.d.sync += [yok[k].eq(self.yok[k]) for k in range(3)]
            m.d.sync += [ky.eq(0), kx.eq(0), self.group.eq(0), group_last.eq(L.Gin <= 1), self.done.eq(0),
                         self.row_addr.eq(self.pos), tap_addr.eq(self.pos), tap_row.eq(self.pos),
                         self.weight_row.eq(self.weight_base), weight_tap.eq(self.weight_base)]
        with m.Elif(self.load):
            m.d.sync += self.row_addr.eq(self.load_addr)
        with m.Elif(self.step):
            with m.If(self.in_bounds & ~group_last):
                m.d.sync += [self.group.eq(self.group + 1), group_last.eq(self.group + 2 >= L.Gin),
                             self.row_addr.eq(self.row_addr + L.GS), self.weight_row.eq(self.weight_row + L.WGS)]
            with m.Else():
                with m.If(self.in_bounds):
                    m.d.sync += [self.group.eq(0), group_last.eq(L.Gin <= 1)]
                with m.If(more_columns):
                    m.d.sync += [kx.eq(kx + 1), tap_addr.eq(tap_addr + L.PS), self.row_addr.eq(tap_addr + L.PS),
                                 weight_tap.eq(weight_tap + L.WTS), self.weight_row.eq(weight_tap + L.WTS)]
                with m.Elif(more_rows):
                    m.d.sync += [ky.eq(ky + 1), kx.eq(0), tap_row.eq(tap_row + L.RS), tap_addr.eq(tap_row + L.RS),
                                 self.row_addr.eq(tap_row + L.RS),
                                 weight_tap.eq(weight_tap + L.WTS), self.weight_row.eq(weight_tap + L.WTS)]
                with m.Else():
                    m.d.sync += self.done.eq(1)
        return m
