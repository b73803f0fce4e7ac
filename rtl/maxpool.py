"""Max-pool unit on spikes: OR of the 3×3 window, stride 2, pad 1 (docs/intmodel.md)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class OrPool(wiring.Component):
    """Streams an H×W map of B-bit words row by row (B = T for one channel, or P·T for P channels side by side:
    the OR is bitwise) and emits the ⌈H/2⌉ rows of ⌈W/2⌉ pooled words.

    Ports:
      in_valid, in_row [W·B]     input row y (rows arrive in order; the row counter wraps after H rows)
      out_valid, out_row [Wo·B]  pooled row yo = OR of input rows 2yo-1, 2yo, 2yo+1 (those that exist)

    Horizontal OR is combinational on the arriving row; vertically one register holds the partial OR of the
    output row and one the last odd row (it belongs to two windows). No line buffer of the full map.
    Latency: 1 cycle after the last input row of a window. Throughput: one input row per cycle (no
    back-pressure); a frame of H rows is done H + 1 cycles after its first row (hls_models.blocks.maxpool_cycles).
    """

    def __init__(self, height: int, width: int, word_bits: int):
        self.H, self.W, self.B = height, width, word_bits
        self.Ho, self.Wo = (height + 1) // 2, (width + 1) // 2
        super().__init__({
            "in_valid": In(1), "in_row": In(width * word_bits),
            "out_valid": Out(1), "out_row": Out(self.Wo * word_bits),
        })

    def elaborate(self, platform):
        m = Module()
        H, W, B, Wo = self.H, self.W, self.B, self.Wo
        words = [self.in_row[x * B:(x + 1) * B] for x in range(W)]
        hpool = Signal(Wo * B)
        cols = []
        for xo in range(Wo):
            win = [words[x] for x in (2 * xo - 1, 2 * xo, 2 * xo + 1) if 0 <= x < W]
            acc = win[0]
            for w in win[1:]:
                acc = acc | w
            cols.append(acc)
        m.d.comb += hpool.eq(Cat(*cols))
        y = Signal(range(H))
        partial = Signal(Wo * B)      # OR of the current output row's rows so far
        m.d.sync += self.out_valid.eq(0)
        with m.If(self.in_valid):
            m.d.sync += y.eq(Mux(y == H - 1, 0, y + 1))
            with m.If(y[0]):          # odd row 2yo+1: closes window yo, opens window yo+1
                m.d.sync += [self.out_row.eq(partial | hpool), self.out_valid.eq(1), partial.eq(hpool)]
            with m.Else():            # even row 2yo
                with m.If(y == H - 1):
                    m.d.sync += [self.out_row.eq(partial | hpool), self.out_valid.eq(1), partial.eq(0)]
                with m.Else():
                    m.d.sync += partial.eq(partial | hpool)
            with m.If(y == H - 1):
                m.d.sync += partial.eq(0)
        return m

