"""AddendShifter: the event's weight row made into the lanes' addends (golden twin: golden.components.addend_shift)."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


class AddendShifter(wiring.Component):
    """P lanes of addend = ((neg ? −w : w) << lane_shift[l]) << shift, for the bit-serial layers (first conv: pixel
    bit `shift`; head: bit `shift` of Z, the top bit negative) and shift 0, neg 0 for the spike layers. lane_shift is
    the output channel's power of two that the weight ROM leaves out (rtl/engine_plan.py, common_shift); it is sampled
    with the weights (the core sets it with the bias and holds it for a whole output).

    Ports: weights[P] (signed `weight_width`), neg, shift, lane_shift[P] → addend[P] (signed `width`, wrapping).
    Negate the narrow weight first, then shift: a short carry chain instead of one as wide as the accumulator.
    Latency: LATENCY = 2 cycles (negate register, shift register: inputs in cycle c → addend in cycle c + 2).
    Throughput: one row per cycle.
    """
    LATENCY = 2

    def __init__(self, lanes: int, weight_width: int, shift_width: int, width: int, lane_shift_width: int = 1):
        self.P, self.WB, self.width, self.LSW = lanes, weight_width, width, lane_shift_width
        super().__init__({
            "weights": In(data.ArrayLayout(signed(weight_width), lanes)), "neg": In(1), "shift": In(shift_width),
            "lane_shift": In(data.ArrayLayout(unsigned(lane_shift_width), lanes)),
            "addend": Out(data.ArrayLayout(signed(width), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        shift = Signal.like(self.shift, name="shift_q")
        m.d.sync += shift.eq(self.shift)
        for l in range(self.P):
            w = self.weights[l]
            wn = Signal(signed(self.WB + (1 << self.LSW)), name=f"wn_{l}")
            sh = Signal(signed(self.width), name=f"sh_{l}")
            # the lane shift as a multiplexer of constant shifts: Yosys 0.70's ABC9 pass asserts on the variable
            # shift of this signed value in the 16-lane digits core
            signed_w = Mux(self.neg, -w, w)
            shifted = [signed_w << k for k in range(1 << self.LSW)]
            lane_shifted = shifted[0]
            for k in range(1, 1 << self.LSW):
                lane_shifted = Mux(self.lane_shift[l] == k, shifted[k], lane_shifted)
            m.d.sync += [wn.eq(lane_shifted), sh.eq(wn << shift)]
            m.d.comb += self.addend[l].eq(sh)
        return m
