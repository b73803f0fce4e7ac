"""LogitBank: the K logit registers (golden twin: golden.components.logit_bank_step)."""
from __future__ import annotations

from amaranth.hdl import Array, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .util import bits


class LogitBank(wiring.Component):
    """The head writes its logits a lane group at a time (logit k from lane k mod P of group k // P); the argmax then
    reads them one per cycle from `first` while they rotate past it (K steps bring them back in place for the
    read-out), so no index multiplexer sits in front of the argmax's input register, and every logit register's
    enable and select come from registers (the rotation flag, the write's one-hot group).

    Ports:
      write_group        one-hot: write the P logits of that lane group from `lanes` (the held sums of timestep 0)
      lanes[P]           the values written
      rotate             logit k takes logit k + 1 (K - 1 takes 0); over a write
      first (out)        logit 0
      sel → logit (out)  the read-out, combinational
    Latency: 1 cycle (write or rotate in c → the new values in c + 1). Throughput: one write or rotation per cycle.
    """

    def __init__(self, classes: int, lanes: int, width: int):
        self.K, self.P = classes, lanes
        groups = -(-classes // lanes)
        super().__init__({
            "write_group": In(groups), "lanes": In(data.ArrayLayout(signed(width), lanes)), "rotate": In(1),
            "first": Out(signed(width)), "sel": In(bits(max(1, classes - 1))), "logit": Out(signed(width)),
        })

    def elaborate(self, platform):
        m = Module()
        K, P = self.K, self.P
        logits = [Signal(signed(len(self.first)), name=f"logit_{k}") for k in range(K)]
        for k in range(K):
            with m.If(self.rotate):
                m.d.sync += logits[k].eq(logits[(k + 1) % K])
            with m.Elif(self.write_group[k // P]):
                m.d.sync += logits[k].eq(self.lanes[k % P])
        m.d.comb += [self.first.eq(logits[0]), self.logit.eq(Array(logits)[self.sel])]
        return m
