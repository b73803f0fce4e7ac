"""LaneAccumulators: the P lanes × T timestep accumulators of the core and their held copy (golden twin:
golden.components.lane_accumulators_step)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


def lane_time_layout(lanes: int, T: int, width: int):
    """A lane × timestep array of signed `width`-bit values: [lane][t]."""
    return data.ArrayLayout(data.ArrayLayout(signed(width), T), lanes)


class LaneAccumulators(wiring.Component):
    """P × T signed accumulators, `width` bits (the analysed width plus one guard bit), and a held copy that the
    epilogue reads while the accumulators already sum the next output.

    Ports:
      init, init_value[P]     every acc[l][t] ← init_value[l] (the bias, or 0)
      add_en[P] (T bits), addend[P][T]
                              acc[l][t] ← acc[l][t] + addend[l][t] where bit t of add_en[l] is set (time-inner
                              dataflow: one event adds its weight into the timesteps its spike word has set)
      snap                    held[l][t] ← acc[l][t] (the value before this edge's init or add)
      rotate                  held[l][t] ← held[l][(t + 1) mod T]: the epilogues read timestep t at held[l][0]
                              (no t-indexed multiplexer in front of the LIF and the stream adder)
      acc[P][T], held[P][T]   the registers
      overflow                some accumulator's guard bit differed from its sign in the previous cycle
    Priority: init over the add (acc); snap over rotate (held).
    Latency: 1 cycle (acc and held show an input from the next cycle; overflow 1 cycle after acc). Throughput: one
    add into every lane and timestep, and one snapshot or rotation, per cycle.
    """

    def __init__(self, lanes: int, T: int, width: int):
        self.P, self.T, self.width = lanes, T, width
        super().__init__({
            "init": In(1), "init_value": In(data.ArrayLayout(signed(width), lanes)),
            "add_en": In(data.ArrayLayout(T, lanes)), "addend": In(lane_time_layout(lanes, T, width)),
            "snap": In(1), "rotate": In(1),
            "acc": Out(lane_time_layout(lanes, T, width)), "held": Out(lane_time_layout(lanes, T, width)),
            "overflow": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        P, T, AW = self.P, self.T, self.width
        acc = [[Signal(signed(AW), name=f"acc_{l}_{t}") for t in range(T)] for l in range(P)]
        held = [[Signal(signed(AW), name=f"held_{l}_{t}", reset_less=True) for t in range(T)] for l in range(P)]
        bad = Signal(P)
        for l in range(P):
            for tt in range(T):
                with m.If(self.init):
                    m.d.sync += acc[l][tt].eq(self.init_value[l])
                with m.Elif(self.add_en[l][tt]):
                    m.d.sync += acc[l][tt].eq(acc[l][tt] + self.addend[l][tt])
                with m.If(self.snap):
                    m.d.sync += held[l][tt].eq(acc[l][tt])
                with m.Elif(self.rotate):
                    m.d.sync += held[l][tt].eq(held[l][(tt + 1) % T])
                m.d.comb += [self.acc[l][tt].eq(acc[l][tt]), self.held[l][tt].eq(held[l][tt])]
            m.d.sync += bad[l].eq(Cat(acc[l][tt][AW - 1] ^ acc[l][tt][AW - 2] for tt in range(T)).any())
        m.d.comb += self.overflow.eq(bad.any())
        return m
