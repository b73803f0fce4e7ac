"""ArgmaxUnit: the class of the largest logit, ties to the lowest index (golden twin:
golden.primitives.argmax_lowest)."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class ArgmaxUnit(wiring.Component):
    """Running argmax over the logits presented one per cycle, class 0 first.

    Ports: valid, index, value (class `index`'s logit; index 0 starts a new argmax) → best.
    Three registered stages: the input; the compares; the decision. While logit i is compared, logit i − 1 is
    being decided, so the best value is still that of classes 0 .. i − 2: stage 2 compares logit i both with that
    best value and with logit i − 1, and stage 3 picks the compare that holds (logit i − 1 won: the second) and
    updates best where index = 0 or the picked compare says greater (strictly, so ties keep the lowest index).
    No carry chain reaches the best registers' enables in the same cycle: each compare ends in one flip-flop,
    the decision is a gate of three register bits. Any gaps between logits are allowed.
    Latency: LATENCY = 3 cycles (value in cycle c → best includes it from cycle c + 3).
    Throughput: one logit per cycle; K classes: K + 3 cycles from the first logit to the class.
    """

    LATENCY = 3

    def __init__(self, classes: int, logit_width: int):
        self.K, self.LW = classes, logit_width
        super().__init__({
            "valid": In(1), "index": In(range(max(2, classes))), "value": In(signed(logit_width)),
            "best": Out(range(max(2, classes))),
        })

    def elaborate(self, platform):
        m = Module()
        K = max(2, self.K)
        in_v, in_k, in_x = Signal(), Signal(range(K)), Signal(signed(self.LW))
        cmp_v, cmp_k, cmp_x = Signal(), Signal(range(K)), Signal(signed(self.LW))
        cmp_first, gt_best, gt_prev = Signal(), Signal(), Signal()
        best, bestval = Signal(range(K)), Signal(signed(self.LW))
        prev_won = Signal()

        # stage 1: the input register
        m.d.sync += in_v.eq(self.valid)
        with m.If(self.valid):
            m.d.sync += [in_x.eq(self.value), in_k.eq(self.index)]

        # stage 2: the compares (cmp_x still holds the previous logit, bestval the best before it)
        m.d.sync += cmp_v.eq(in_v)
        with m.If(in_v):
            m.d.sync += [cmp_x.eq(in_x), cmp_k.eq(in_k), cmp_first.eq(in_k == 0),
                         gt_best.eq(in_x > bestval), gt_prev.eq(in_x > cmp_x)]

        # stage 3: the decision
        win = cmp_first | Mux(prev_won, gt_prev, gt_best)
        with m.If(cmp_v):
            m.d.sync += prev_won.eq(win)
            with m.If(win):
                m.d.sync += [best.eq(cmp_k), bestval.eq(cmp_x)]
        m.d.comb += self.best.eq(best)
        return m
