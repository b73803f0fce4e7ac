"""OutputLoop: a layer's outputs in order and where each one reads and writes (golden twin:
golden.components.output_walk)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
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
      group_steps      the layer steps with next_group (stream LIF, head Z), not next_output: steady from the cycle
                       after load
    xok, yok (3 bits each): tap column / kernel row k of the current output lies inside the input map (Wi, Hi),
    for the tap walker, whose start then loads flags instead of comparing positions (those compares behind the
    start were the 4- and 8-lane cores' worst paths). They are registers too, computed from the next output's ix
    and iy a cycle after those, so they need a command spacing of three cycles (the issue side's commands are at
    least three apart: an output's last row, two seam slots, its first row; a pooled output takes at least three
    cycles); after load they are ready at once.
    Latency: one cycle: a command in cycle c → the next output's values in c + 1. The next output's values wait in
    registers of their own, computed from the current output's a cycle after it changed, so a command only copies
    them (one enable on every register; the loop decisions never sit between the controller's end-of-output
    decision and those enables: on the 16-lane digits core they did, the worst path). Hence the contract: no command
    in the cycle right after load or after a command that moved the same values (next_out_row moves out_row alone,
    so it may follow next_group at once). The core's commands are at least two cycles apart: an accumulating output
    scans at least 6 cycles, a pooled one 3, a stream-LIF output T + 1, a head-Z group more than 2.
    Every loop decision reads a flag register (group_last, column_last, row_last), not a compare on a counter.
    """

    def __init__(self, layer_layout, T: int, address_width: int, position_width: int = 18):
        self.T = T
        # the counters are as wide as the layer-table fields they count to: their compares are short carry chains
        self.count_widths = {k: layer_layout[f].width for k, f in (("x", "Wo"), ("y", "Ho"), ("dp_count", "DP"),
                                                                     ("group", "Gout"))}
        ADW = address_width
        super().__init__({
            "load": In(1), "entry": In(layer_layout), "layer": In(layer_layout),
            "next_output": In(1), "next_group": In(1), "next_out_row": In(1), "group_steps": In(1),
            "out_row": Out(ADW), "stream_row": Out(ADW), "group": Out(self.count_widths["group"]),
            "weight_base": Out(ADW),
            "param_row": Out(ADW), "pos": Out(signed(ADW + 2)),
            "ix": Out(signed(position_width)), "iy": Out(signed(position_width)),
            "group_last": Out(1), "last_output": Out(1), "rows_last": Out(1),
            "xok": Out(3), "yok": Out(3),
        })

    def elaborate(self, platform):
        m = Module()
        L, E = self.layer, self.entry
        ADW = len(self.out_row)
        # the current output (the ports) and the next one; x, y count output columns and rows, column_base is the
        # input-row offset of the current column, row_pos = a0 + y·YSTEP, col_pos the column's offset plus the
        # group's (hoff), dp_count the groups since pos last moved by DP rows (hoff 2)
        shapes = {"x": self.count_widths["x"], "y": self.count_widths["y"], "column_last": 1, "row_last": 1,
                  "column_base": signed(ADW), "row_pos": signed(ADW + 2), "col_pos": signed(ADW + 2),
                  "dp_count": self.count_widths["dp_count"], "group": self.count_widths["group"], "group_last": 1,
                  "param_row": ADW, "stream_row": ADW, "weight_base": ADW,
                  "ix": signed(len(self.ix)), "iy": signed(len(self.iy))}
        ports = ("group", "group_last", "param_row", "stream_row", "weight_base", "ix", "iy")
        cur = {k: getattr(self, k) if k in ports else Signal(v, name=k) for k, v in shapes.items()}
        nxt = {k: Signal(v, name=f"next_{k}") for k, v in shapes.items()}
        next_out_row = Signal(ADW)
        m.d.comb += [self.pos.eq(cur["row_pos"] + cur["col_pos"]),
                     self.last_output.eq(cur["group_last"] & cur["column_last"] & cur["row_last"]),
                     self.rows_last.eq(cur["group_last"] & cur["row_last"])]

        # the next output, from the current one (valid a cycle after the current one changed)
        m.d.sync += [nxt[k].eq(cur[k]) for k in shapes]
        m.d.sync += next_out_row.eq(self.out_row + 1)
        pad = Mux(L.k3, 1, 0)
        with m.If(~cur["group_last"]):
            m.d.sync += [nxt["group"].eq(cur["group"] + 1), nxt["group_last"].eq(cur["group"] + 2 >= L.Gout),
                         nxt["param_row"].eq(cur["param_row"] + 1)]
            with m.If(~self.group_steps):
                m.d.sync += nxt["weight_base"].eq(cur["weight_base"] + L.R)
                with m.If(L.hoff == 1):
                    m.d.sync += nxt["col_pos"].eq(cur["col_pos"] + 1)
                with m.Elif(L.hoff == 2):
                    with m.If(cur["dp_count"] + 1 == L.DP):
                        m.d.sync += [nxt["dp_count"].eq(0), nxt["col_pos"].eq(cur["col_pos"] + L.DP)]
                    with m.Else():
                        m.d.sync += nxt["dp_count"].eq(cur["dp_count"] + 1)
        with m.Else():
            m.d.sync += [nxt["group"].eq(0), nxt["group_last"].eq(L.Gout <= 1), nxt["param_row"].eq(L.p_base)]
            with m.If(self.group_steps):
                m.d.sync += [nxt["y"].eq(cur["y"] + 1), nxt["row_last"].eq(cur["y"] + 2 >= L.Ho)]
            with m.Else():
                m.d.sync += [nxt["weight_base"].eq(L.w_base), nxt["dp_count"].eq(0)]
                stride = Mux(L.s2, 2, 1)
                with m.If(~cur["column_last"]):
                    m.d.sync += [nxt["x"].eq(cur["x"] + 1), nxt["column_last"].eq(cur["x"] + 2 >= L.Wo),
                                 nxt["ix"].eq(cur["ix"] + stride), nxt["column_base"].eq(cur["column_base"] + L.XSTEP),
                                 nxt["col_pos"].eq(cur["column_base"] + L.XSTEP)]
                with m.Elif(~cur["row_last"]):
                    m.d.sync += [nxt["y"].eq(cur["y"] + 1), nxt["row_last"].eq(cur["y"] + 2 >= L.Ho),
                                 nxt["x"].eq(0), nxt["column_last"].eq(L.Wo <= 1), nxt["ix"].eq(-pad),
                                 nxt["column_base"].eq(0), nxt["col_pos"].eq(0),
                                 nxt["iy"].eq(cur["iy"] + stride), nxt["row_pos"].eq(cur["row_pos"] + L.YSTEP)]
        m.d.sync += nxt["stream_row"].eq(Mux(self.group_steps, cur["stream_row"], cur["stream_row"] + self.T))

        # the next output's in-bounds flags, a cycle behind its position (short compares of a register)
        next_xok, next_yok = Signal(3), Signal(3)
        m.d.sync += [next_xok.eq(Cat(((nxt["ix"] + k) >= 0) & ((nxt["ix"] + k) < L.Wi) for k in range(3))),
                     next_yok.eq(Cat(((nxt["iy"] + k) >= 0) & ((nxt["iy"] + k) < L.Hi) for k in range(3)))]

        # the commands copy it
        with m.If(self.load):
            # the layer's first output: tap (0, 0) at -pad
            def first_ok(size):     # tap k at k - pad: inside when 0 <= k - pad < size
                return Cat(Mux(E.k3, (size > k - 1) if k >= 1 else 0, size > k) for k in range(3))
            m.d.sync += [self.xok.eq(first_ok(E.Wi)), self.yok.eq(first_ok(E.Hi))]
            pad_e = Mux(E.k3, 1, 0)
            init = {"x": 0, "y": 0, "column_last": E.Wo <= 1, "row_last": E.Ho <= 1, "column_base": 0,
                    "row_pos": E.a0, "col_pos": 0, "dp_count": 0, "group": 0, "group_last": E.Gout <= 1,
                    "param_row": E.p_base, "stream_row": 0, "weight_base": E.w_base, "ix": -pad_e, "iy": -pad_e}
            m.d.sync += [cur[k].eq(init[k]) for k in shapes]
            m.d.sync += self.out_row.eq(E.out_base)
        with m.Elif(self.next_output | self.next_group):
            m.d.sync += [cur[k].eq(nxt[k]) for k in shapes]
            m.d.sync += [self.xok.eq(next_xok), self.yok.eq(next_yok)]
        with m.If(~self.load & (self.next_output | self.next_out_row)):
            m.d.sync += self.out_row.eq(next_out_row)
        return m
