"""Bit-serial multiply-free accumulate for the non-spike layers: the first conv (over the pixels' bit-planes)
and the head (over the bits of Z)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .common import field


class BitSerialMac(wiring.Component):
    """P lanes of acc[p] += w[p] · x, computed as Σ_b 2^b · (bit b of x ? w[p] : 0), one bit per cycle:
    the weight register doubles each cycle (a wire shift), so there is no multiplier. With `signed_input` the
    top bit of x weighs −2^(B−1) (two's complement Z of the head); otherwise x is an unsigned pixel.

    Ports:
      load, bias [P·A]              acc <= bias (while idle, before a field's first value)
      in_valid, in_ready, in_value [B], in_weights [P·W]   one value and its weight row
      acc [P·A]                     the accumulators (registered)
      busy                          a value is being shifted in

    Latency: B + 1 cycles from a value's transfer to its sum on acc (bit b is added in cycle b + 1).
    Throughput: one value per B cycles; in_ready is also high in a value's last bit cycle, so values follow
    with no idle cycle: n values take n·B + 2 cycles from the first transfer to the final sum
    (hls_models.blocks.bitserial_cycles). `load` only acts while idle (busy low).
    """

    def __init__(self, lanes: int, value_bits: int, weight_width: int, acc_width: int, signed_input: bool):
        self.P, self.B, self.W, self.A, self.signed_input = lanes, value_bits, weight_width, acc_width, signed_input
        super().__init__({
            "load": In(1), "bias": In(lanes * acc_width),
            "in_valid": In(1), "in_ready": Out(1), "in_value": In(value_bits), "in_weights": In(lanes * weight_width),
            "acc": Out(lanes * acc_width), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        P, B, W, A = self.P, self.B, self.W, self.A
        x = Signal(B)
        step = Signal(range(B + 1))
        shifted = [Signal(signed(A), name=f"w_{p}") for p in range(P)]
        accs = [Signal(signed(A), name=f"acc_{p}") for p in range(P)]
        last = step == B
        m.d.comb += [self.busy.eq(step != 0), self.in_ready.eq((step == 0) | last),
                     self.acc.eq(Cat(*accs))]
        take = self.in_valid & self.in_ready
        negative_bit = last if self.signed_input else 0
        for p in range(P):
            addend = Mux(negative_bit, -shifted[p], shifted[p])
            with m.If(self.load & (step == 0)):
                m.d.sync += accs[p].eq(field(self.bias, p, A, True))
            with m.Elif((step != 0) & x[0]):
                m.d.sync += accs[p].eq(accs[p] + addend)
        with m.If(step != 0):
            m.d.sync += [x.eq(x >> 1), step.eq(Mux(last, 0, step + 1))]
            m.d.sync += [shifted[p].eq(shifted[p] << 1) for p in range(P)]
        with m.If(take):
            m.d.sync += [x.eq(self.in_value), step.eq(1)]
            m.d.sync += [shifted[p].eq(field(self.in_weights, p, W, True)) for p in range(P)]
        return m
