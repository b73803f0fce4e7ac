"""LaneAccumulators: the P lanes × T timestep accumulators of the core and their held copy (golden twin:
golden.components.lane_accumulators_step)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


def lane_time_layout(lanes: int, T: int, width: int):
    """A lane × timestep array of signed `width`-bit values: [lane][t]."""
    return data.ArrayLayout(data.ArrayLayout(signed(width), T), lanes)


class LaneAccumulators(wiring.Component):
    """P × T signed accumulators and a held copy that the epilogue reads while the accumulators already sum the
    next output. Timestep 0 is `width` bits (the analysed width plus one guard bit), timesteps 1 .. T - 1 are
    `rest_width` bits (default `width`): only timestep 0 ever holds the head's Z sums and logits, which need far more
    bits than the spike layers (on the digits core 37 against 17 bits), so the other timesteps are that much cheaper.

    Ports (the arrays are `width` bits; a narrow timestep reads sign-extended and takes its inputs' low bits):
      init, init_value[P]     acc[l][0] ← init_value[l] and acc[l][t ≥ 1] ← init_value[l], or 0 with init_t0_only
                              (the head: its bias belongs to timestep 0 alone and may not fit the narrow ones)
      add_en[P] (T bits), addend[P][T]
                              acc[l][t] ← acc[l][t] + addend[l][t] where bit t of add_en[l] is set (time-inner
                              dataflow: one event adds its weight into the timesteps its spike word has set)
      snap                    held[l][t] ← acc[l][t] (the value before this edge's init or add)
      rotate                  held[l][t] ← held[l][(t + 1) mod T]: the epilogues read timestep t at held[l][0]
                              (no t-indexed multiplexer in front of the LIF and the stream adder); held[l][0]
                              wraps into the narrow held[l][T - 1]
      init, snap and rotate are P equal copies, lane l reading bit l: each selects in all of a lane's registers
      (about 90 on the digits core), so a copy per lane (fanout.ReplicatedRegister) drives one lane where one
      register driving all P lanes was the 16-lane core's worst path.
      acc[P][T], held[P][T]   the registers
      overflow                some accumulator's guard bit (of its own width) differed from its sign in the
                              previous cycle
    Every register wraps at its own width. Priority: init over the add (acc); snap over rotate (held).
    Latency: 1 cycle (acc and held show an input from the next cycle; overflow 1 cycle after acc). Throughput: one
    add into every lane and timestep, and one snapshot or rotation, per cycle.
    """

    def __init__(self, lanes: int, T: int, width: int, rest_width: int | None = None):
        rest_width = width if rest_width is None else rest_width
        assert 2 <= rest_width <= width, "the narrow timesteps hold at most timestep 0's bits"
        self.P, self.T, self.width, self.rest_width = lanes, T, width, rest_width
        super().__init__({
            "init": In(lanes), "init_value": In(data.ArrayLayout(signed(width), lanes)), "init_t0_only": In(1),
            "add_en": In(data.ArrayLayout(T, lanes)), "addend": In(lane_time_layout(lanes, T, width)),
            "snap": In(lanes), "rotate": In(lanes),
            "acc": Out(lane_time_layout(lanes, T, width)), "held": Out(lane_time_layout(lanes, T, width)),
            "overflow": Out(1),
        })

    def timestep_width(self, t: int) -> int:
        return self.width if t == 0 else self.rest_width

    def elaborate(self, platform):
        m = Module()
        P, T = self.P, self.T
        tw = [self.timestep_width(t) for t in range(T)]
        acc = [[Signal(signed(tw[t]), name=f"acc_{l}_{t}") for t in range(T)] for l in range(P)]
        held = [[Signal(signed(tw[t]), name=f"held_{l}_{t}", reset_less=True) for t in range(T)] for l in range(P)]
        bad = Signal(P)
        for l in range(P):
            for tt in range(T):
                w = tw[tt]
                init_value = self.init_value[l] if tt == 0 else Mux(self.init_t0_only, 0, self.init_value[l][:w])
                with m.If(self.init[l]):
                    m.d.sync += acc[l][tt].eq(init_value)
                with m.Elif(self.add_en[l][tt]):
                    m.d.sync += acc[l][tt].eq(acc[l][tt] + self.addend[l][tt][:w].as_signed())
                with m.If(self.snap[l]):
                    m.d.sync += held[l][tt].eq(acc[l][tt])
                with m.Elif(self.rotate[l]):
                    m.d.sync += held[l][tt].eq(held[l][(tt + 1) % T])
                m.d.comb += [self.acc[l][tt].eq(acc[l][tt]), self.held[l][tt].eq(held[l][tt])]
            m.d.sync += bad[l].eq(Cat(acc[l][tt][tw[tt] - 1] ^ acc[l][tt][tw[tt] - 2] for tt in range(T)).any())
        m.d.comb += self.overflow.eq(bad.any())
        return m
