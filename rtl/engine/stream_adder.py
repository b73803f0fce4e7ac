"""StreamAdder: the residual stream plus the branch's accumulators (golden twin: golden.components.stream_add)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .util import fits


class StreamAdder(wiring.Component):
    """P lanes of X_new = X + branch on the residual stream, one timestep per cycle (the stream-writer epilogue).

    Ports:
      add, init, stream[P] (signed `stream_width`), branch[P] (signed `branch_width`)
                    register the sums (init: the layer that starts the stream, X taken as 0)
      sum[P]        the registered sums, `stream_width` bits (what the stream RAM stores)
      overflow      some registered sum does not fit `stream_width` bits (never expected: the width analysis)
    Latency: 1 cycle (add in cycle c → sum and overflow in cycle c + 1). Throughput: P lanes per cycle.
    """

    def __init__(self, lanes: int, stream_width: int, branch_width: int):
        self.P, self.SW, self.BW = lanes, stream_width, branch_width
        super().__init__({
            "add": In(1), "init": In(1),
            "stream": In(data.ArrayLayout(signed(stream_width), lanes)),
            "branch": In(data.ArrayLayout(signed(branch_width), lanes)),
            "sum": Out(data.ArrayLayout(signed(stream_width), lanes)), "overflow": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        SW = self.SW
        v_q = [Signal(signed(max(SW, self.BW) + 1), name=f"stream_new_{l}") for l in range(self.P)]
        with m.If(self.add):
            m.d.sync += [v.eq(Mux(self.init, 0, self.stream[l]) + self.branch[l]) for l, v in enumerate(v_q)]
        m.d.comb += [self.sum[l].eq(v[:SW]) for l, v in enumerate(v_q)]
        m.d.comb += self.overflow.eq(Cat(~fits(v, SW) for v in v_q).any())
        return m
