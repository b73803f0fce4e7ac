"""ReplicatedRegister: one control bit in several flip-flops, one per group of consumers (golden twin:
golden.components.replicated_register_step)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

# The attribute on each copy's wire. Synthesis (tools/synth.py) marks the flip-flop behind every wire that carries it
# `keep`, because Yosys merges flip-flops with the same input, which would make the copies one register again.
REPLICA_ATTRIBUTE = "replica"


class ReplicatedRegister(wiring.Component):
    """q[i] ← d at every clock edge, for i in 0 .. copies - 1: `copies` equal registers that synthesis keeps apart.

    Why: a control bit that selects in every lane (the accumulators' init, snapshot and rotation, the lane inputs'
    writer) reached some 1,400 flip-flop inputs from one register or one LUT, and the placer cannot put one driver
    near all of them: those nets were the 16-lane core's worst paths (7-8 ns of routing). With one copy per lane
    each copy drives one lane's few dozen inputs, and the placer puts it beside them. The caller feeds `d` the value
    the single register would have taken (its next-state value), so the copies show exactly what it would have shown.

    Ports: d (1 bit) → q (`copies` bits, all equal). Latency: 1 cycle. Throughput: one value per cycle. Resets to 0
    with the sync domain.
    """

    def __init__(self, copies: int):
        assert copies >= 1
        self.copies = copies
        super().__init__({"d": In(1), "q": Out(copies)})

    def elaborate(self, platform):
        m = Module()
        regs = [Signal(name=f"copy_{i}", attrs={REPLICA_ATTRIBUTE: 1}) for i in range(self.copies)]
        m.d.sync += [r.eq(self.d) for r in regs]
        m.d.comb += self.q.eq(Cat(*regs))
        return m
