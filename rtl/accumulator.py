"""Accumulator lanes: the time-inner accumulate of one event into P lanes × T timestep accumulators."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .common import field


class AccumulatorLanes(wiring.Component):
    """P output-channel lanes, each with T accumulators (one per timestep).

    Ports:
      load               acc[p][t] <= bias[p] for every t (starts a receptive field); an event in the same
                         cycle is added on top of the bias, so fields follow each other with no idle cycle
      bias   [P·A]       signed per-lane bias
      ev_valid           an event: one input neuron's spike word and its weight row
      ev_word [T]        the input neuron's T-bit spike word (bit t = timestep t)
      ev_weights [P·W]   signed weights, lane p at field p
      acc    [P·T·A]     the accumulators (registered), lane p timestep t at field p·T + t

    acc[p][t] += w[p] where ev_word bit t is set: one weight read, T conditional adds (no multiplier).
    Latency: 1 cycle (the event's sum is on acc the cycle after ev_valid). Throughput: 1 event per cycle.
    A = acc_width must come from the width analysis (golden.widths); the adders wrap beyond it.
    """

    def __init__(self, lanes: int, T: int, weight_width: int, acc_width: int):
        self.P, self.T, self.W, self.A = lanes, T, weight_width, acc_width
        super().__init__({
            "load": In(1), "bias": In(lanes * acc_width),
            "ev_valid": In(1), "ev_word": In(T), "ev_weights": In(lanes * weight_width),
            "acc": Out(lanes * T * acc_width),
        })

    def elaborate(self, platform):
        m = Module()
        P, T, W, A = self.P, self.T, self.W, self.A
        regs = []
        for p in range(P):
            w = field(self.ev_weights, p, W, True)
            b = field(self.bias, p, A, True)
            for t in range(T):
                r = Signal(signed(A), name=f"acc_{p}_{t}")
                base = Mux(self.load, b, r)
                add = self.ev_valid & self.ev_word[t]
                with m.If(self.load | add):
                    m.d.sync += r.eq(base + Mux(add, w, 0))
                regs.append(r)
        m.d.comb += self.acc.eq(Cat(*regs))
        return m
