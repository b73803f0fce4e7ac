"""Residual adder: stream += branch output (docs/intmodel.md), widths from golden.widths."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .common import field


class ResidualAdder(wiring.Component):
    """P lanes of X_new = X + branch on the residual stream.

    Ports:
      in_valid, stream [P·S], branch [P·R]    signed stream values (S bits) and branch accumulators (R bits)
      out_valid, out [P·S]                    the new stream values
      overflow                                 sticky: some sum left the S-bit range (never expected: S comes from
                                               the width analysis); cleared by reset only
    Latency: 1 cycle. Throughput: P channels per cycle (hls_models.blocks.residual_cycles).
    """

    def __init__(self, lanes: int, stream_width: int, branch_width: int):
        self.P, self.S, self.R = lanes, stream_width, branch_width
        super().__init__({
            "in_valid": In(1), "stream": In(lanes * stream_width), "branch": In(lanes * branch_width),
            "out_valid": Out(1), "out": Out(lanes * stream_width), "overflow": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        P, S, R = self.P, self.S, self.R
        sums, over = [], []
        for p in range(P):
            full = Signal(signed(max(S, R) + 1), name=f"sum_{p}")
            m.d.comb += full.eq(field(self.stream, p, S, True) + field(self.branch, p, R, True))
            sums.append(full[:S])
            over.append((full < -(1 << (S - 1))) | (full >= (1 << (S - 1))))
        m.d.sync += self.out_valid.eq(self.in_valid)
        with m.If(self.in_valid):
            m.d.sync += self.out.eq(Cat(*sums))
            with m.If(Cat(*over).any()):
                m.d.sync += self.overflow.eq(1)
        return m
