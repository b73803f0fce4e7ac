"""OutputLoop: a layer's outputs in order and where each one reads and writes (golden twin:
golden.components.output_walk)."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class OutputLoop(wiring.Component):
    """The loop over a layer's outputs: output lane group innermost, then output column, then output row. For each
    output it keeps what the rest of the core reads: the activation row it writes, its first stream row, its lane
    group, its first weight row and parameter row, its first input row (tap (0, 0), input group 0: `pos`) and the
    input column and row of tap (0, 0) (negative in the padding).

    The layer's geometry comes from its layer-table entry (LayerTable layout): Ho, Wo (output map), Gout (output
    lane groups), k3 (3×3 taps, one pixel of padding), s2 (stride 2), a0 (input row of output (0, 0)), XSTEP /
    YSTEP (input-row step per output column / row), hoff and DP (how `pos` moves per output group: 0 not at all,
    1 one row, 2 DP rows every DP groups), R (weight rows per output group), out_base, w_base, p_base.

    Ports:
      load, entry      begin a layer (entry: its layer-table entry, in the cycle of load)
      layer            the current layer's entry (the core's layer register, from the cycle after load)
      next_output      the current output is done: move to the next one (after the layer's last output, the group
                       and the weight and parameter rows start over; the column and row stay)
      next_group       the stream-LIF and head-Z layers' step: the next output group and parameter row, after the
                       last group group 0 of the next output row (no column, input rows or weight rows)
      next_out_row     the activation row alone moves on (the stream LIF writes its rows on its own schedule)
      out_row, stream_row, group, weight_base, param_row, pos, ix, iy
                       the current output's
      group_last, last_output (combinational: the current output is the layer's last), rows_last (the current
                       group is the last group of the last output row)
    Latency: one cycle: a command in cycle c → the next output's values in c + 1. Every loop decision reads a flag
    register (group_last, column_last, row_last), not a compare on a counter.
    """

    def __init__(self, layer_layout, T: int, address_width: int, position_width: int = 18):
        self.T = T
        ADW = address_width
        super().__init__({
            "load": In(1), "entry": In(layer_layout), "layer": In(layer_layout),
            "next_output": In(1), "next_group": In(1), "next_out_row": In(1),
            "out_row": Out(ADW), "stream_row": Out(ADW), "group": Out(16), "weight_base": Out(ADW),
            "param_row": Out(ADW), "pos": Out(signed(ADW + 2)),
            "ix": Out(signed(position_width)), "iy": Out(signed(position_width)),
            "group_last": Out(1), "last_output": Out(1), "rows_last": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L, E = self.layer, self.entry
        ADW = len(self.out_row)
        x, y = Signal(16), Signal(16)
        column_last, row_last = Signal(), Signal()
        column_base = Signal(signed(ADW))    # the input-row offset of the current output column
        row_pos = Signal(signed(ADW + 2))    # a0 + y·YSTEP
        col_pos = Signal(signed(ADW + 2))    # the column's offset plus the group's (hoff)
        dp_count = Signal(16)                # groups since pos last moved by DP rows (hoff 2)
        m.d.comb += [self.pos.eq(row_pos + col_pos),
                     self.last_output.eq(self.group_last & column_last & row_last),
                     self.rows_last.eq(self.group_last & row_last)]

        def first_group():
            m.d.sync += [self.group.eq(0), self.group_last.eq(L.Gout <= 1), self.param_row.eq(L.p_base)]

        with m.If(self.load):
            pad = Mux(E.k3, 1, 0)
            m.d.sync += [self.group_last.eq(E.Gout <= 1), column_last.eq(E.Wo <= 1), row_last.eq(E.Ho <= 1),
                         y.eq(0), x.eq(0), self.iy.eq(-pad), self.ix.eq(-pad), column_base.eq(0),
                         row_pos.eq(E.a0), col_pos.eq(0), self.group.eq(0), self.out_row.eq(E.out_base),
                         self.stream_row.eq(0), dp_count.eq(0), self.weight_base.eq(E.w_base),
                         self.param_row.eq(E.p_base)]
        with m.Elif(self.next_output):
            stride = Mux(L.s2, 2, 1)
            m.d.sync += [self.out_row.eq(self.out_row + 1), self.stream_row.eq(self.stream_row + self.T)]
            with m.If(~self.group_last):
                m.d.sync += [self.group.eq(self.group + 1), self.group_last.eq(self.group + 2 >= L.Gout),
                             self.weight_base.eq(self.weight_base + L.R), self.param_row.eq(self.param_row + 1)]
                with m.If(L.hoff == 1):
                    m.d.sync += col_pos.eq(col_pos + 1)
                with m.Elif(L.hoff == 2):
                    with m.If(dp_count + 1 == L.DP):
                        m.d.sync += [dp_count.eq(0), col_pos.eq(col_pos + L.DP)]
                    with m.Else():
                        m.d.sync += dp_count.eq(dp_count + 1)
            with m.Else():
                first_group()
                m.d.sync += [self.weight_base.eq(L.w_base), dp_count.eq(0)]
                with m.If(~column_last):
                    m.d.sync += [x.eq(x + 1), column_last.eq(x + 2 >= L.Wo), self.ix.eq(self.ix + stride),
                                 column_base.eq(column_base + L.XSTEP), col_pos.eq(column_base + L.XSTEP)]
                with m.Elif(~row_last):
                    m.d.sync += [y.eq(y + 1), row_last.eq(y + 2 >= L.Ho), x.eq(0), column_last.eq(L.Wo <= 1),
                                 self.ix.eq(-Mux(L.k3, 1, 0)), column_base.eq(0), col_pos.eq(0),
                                 self.iy.eq(self.iy + stride), row_pos.eq(row_pos + L.YSTEP)]
        with m.Elif(self.next_group):
            with m.If(~self.group_last):
                m.d.sync += [self.group.eq(self.group + 1), self.group_last.eq(self.group + 2 >= L.Gout),
                             self.param_row.eq(self.param_row + 1)]
            with m.Else():
                first_group()
                m.d.sync += [y.eq(y + 1), row_last.eq(y + 2 >= L.Ho)]
        with m.If(self.next_out_row & ~self.load & ~self.next_output):
            m.d.sync += self.out_row.eq(self.out_row + 1)
        return m
