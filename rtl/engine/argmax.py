"""ArgmaxUnit: the class of the largest logit, ties to the lowest index (golden twin:
golden.primitives.argmax_lowest)."""
from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class ArgmaxUnit(wiring.Component):
    """Running argmax over the logits presented one per cycle, class 0 first.

    Ports: valid, index, value (class `index`'s logit; index 0 starts a new argmax) → best.
    A registered input stage, then best ← index where index = 0 or value > the best value so far (strictly, so
    ties keep the lowest index). Latency: 2 cycles (value in cycle c → best includes it from cycle c + 2).
    Throughput: one logit per cycle; K classes: K + 2 cycles from the first logit to the class.
    """

    def __init__(self, classes: int, logit_width: int):
        self.K, self.LW = classes, logit_width
        super().__init__({
            "valid": In(1), "index": In(range(max(2, classes))), "value": In(signed(logit_width)),
            "best": Out(range(max(2, classes))),
        })

    def elaborate(self, platform):
        m = Module()
        cur_v = Signal()
        cur_k = Signal(range(max(2, self.K)))
        cur = Signal(signed(self.LW))
        best = Signal(range(max(2, self.K)))
        bestval = Signal(signed(self.LW))
        m.d.sync += cur_v.eq(self.valid)
        with m.If(self.valid):
            m.d.sync += [cur.eq(self.value), cur_k.eq(self.index)]
        with m.If(cur_v & ((cur_k == 0) | (cur > bestval))):
            m.d.sync += [best.eq(cur_k), bestval.eq(cur)]
        m.d.comb += self.best.eq(best)
        return m
