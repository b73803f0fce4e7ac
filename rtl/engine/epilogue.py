"""OutputEpilogue: what an accumulating layer does with an output's sums (golden twin:
golden.components.epilogue_schedule)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out


class EpilogueKind(enum.Enum, shape=2):
    """What a layer does with its outputs' sums: spikes (LIF), the residual stream (stream add) or the logits."""
    LIF = 0
    STREAM_ADD = 1
    HEAD = 2


class OutputEpilogue(wiring.Component):
    """Sequences an output's epilogue from the accumulators' held copy, while the controller already scans the next
    output. It commands the units around it (the LIF, the held copy's rotation, the stream read address, the RAM
    writes); the values flow between those units directly (held[l][0] into the LIF and the stream adder, the LIF's
    spikes and the stream adder's sums into the RAMs).

    Ports:
      capture, capture_row, capture_srow, capture_group, capture_theta[P]
                          the output's context, kept at the end of its scan (its snapshot comes ACC_LATENCY cycles
                          later, when the loop registers already belong to the next output)
      start, kind         the snapshot (held ← acc) in this cycle: run the layer's epilogue kind
      rotate              (registered) held[l][t] ← held[l][t + 1]: timestep t is at held[l][0] when it is used
      rotate_next         the value rotate takes at the next edge (for per-lane copies, fanout.py)
      lif_start, lif_theta[P], lif_valid, lif_step
                          the LIF's commands (its input: held[l][0])
      act_write, act_row  write the LIF's spike words to activation row act_row
      stream_start, stream_row, stream_next
                          load the stream read-address register with stream_row; step it by one
      stream_write, stream_write_row
                          write the stream adder's sums to stream row stream_write_row
      head_write, head_group, head_write_group[head_groups]
                          the logits of lane group head_group ← held[l][0]; head_write_group is the same write
                          one-hot by group (bit g: group g), from registers (it gates every logit register)
      idle                no epilogue running (start is taken only then)

    Schedule (start in cycle s; the golden twin states it per cycle):
      LIF: lif_start in s; lif_valid with step t in s + 1 + t; rotate high in s + 1 .. s + T (timestep t at
        held[l][0] in s + 1 + t); act_write in s + T + 2 (the LIF's last spike is visible then); idle again from
        s + T + 3: T + 3 cycles.
      STREAM_ADD: stream_start in s; stream_next in s + 1 .. s + T (timestep t's stream value is in the RAM's
        output register in s + 3 + t); rotate high in s + 3 .. s + T + 2 (timestep t at held[l][0] in s + 3 + t);
        the stream adder's sum of timestep t is written in s + 4 + t to stream_write_row = srow + t; idle from
        s + T + 4: T + 4 cycles.
      HEAD: head_write in s + 1; idle from s + 2: 2 cycles.
    """

    @staticmethod
    def cycles(kind: EpilogueKind, T: int) -> int:
        """Cycles from the start to the first idle cycle (the schedule above)."""
        return {EpilogueKind.LIF: T + 3, EpilogueKind.STREAM_ADD: T + 4, EpilogueKind.HEAD: 2}[kind]

    def __init__(self, lanes: int, T: int, row_width: int, group_width: int, theta_width: int,
                 head_groups: int = 1):
        self.P, self.T, self.head_groups = lanes, T, head_groups
        super().__init__({
            "capture": In(1), "capture_row": In(row_width), "capture_srow": In(row_width),
            "capture_group": In(group_width),
            "capture_theta": In(data.ArrayLayout(unsigned(theta_width), lanes)),
            "start": In(1), "kind": In(EpilogueKind),
            "rotate": Out(1), "rotate_next": Out(1),
            "lif_start": Out(1), "lif_theta": Out(data.ArrayLayout(unsigned(theta_width), lanes)),
            "lif_valid": Out(1), "lif_step": Out(range(T)),
            "act_write": Out(1), "act_row": Out(row_width),
            "stream_start": Out(1), "stream_row": Out(row_width), "stream_next": Out(1),
            "stream_write": Out(1), "stream_write_row": Out(row_width),
            "head_write": Out(1), "head_group": Out(group_width), "head_write_group": Out(head_groups),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        T = self.T
        ctx_row, ctx_srow = Signal.like(self.capture_row), Signal.like(self.capture_srow)
        ctx_group, ctx_theta = Signal.like(self.capture_group), Signal.like(self.capture_theta)
        with m.If(self.capture):
            m.d.sync += [ctx_row.eq(self.capture_row), ctx_srow.eq(self.capture_srow),
                         ctx_group.eq(self.capture_group), ctx_theta.eq(self.capture_theta)]
        row, group, t = Signal.like(ctx_row), Signal.like(ctx_group), Signal(range(T + 4))
        m.d.comb += [self.act_row.eq(row), self.head_group.eq(group), self.stream_row.eq(ctx_srow),
                     self.lif_theta.eq(ctx_theta), self.lif_step.eq(t[:len(self.lif_step)])]
        # the RAM write enables are registers set a cycle ahead (from the state and t), not a decode of them: they
        # drive write ports of RAMs spread over the die
        m.d.sync += [self.rotate.eq(self.rotate_next), self.head_write_group.eq(0), self.act_write.eq(0),
                     self.stream_write.eq(0)]
        with m.FSM(init="IDLE") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [row.eq(ctx_row), group.eq(ctx_group), t.eq(0), self.stream_write_row.eq(ctx_srow)]
                    with m.Switch(self.kind):
                        with m.Case(EpilogueKind.HEAD):
                            m.d.sync += self.head_write_group.eq(
                                Cat(ctx_group == g for g in range(self.head_groups)))
                            m.next = "HEAD"
                        with m.Case(EpilogueKind.STREAM_ADD):
                            m.d.comb += self.stream_start.eq(1)
                            m.next = "STREAM_ADD"
                        with m.Default():
                            m.d.comb += [self.lif_start.eq(1), self.rotate_next.eq(1)]
                            m.next = "LIF"

            # the LIF over the T held values, one timestep per cycle, then the output's spike words
            with m.State("LIF"):
                m.d.comb += self.lif_valid.eq(t < T)
                with m.If(t < T - 1):
                    m.d.comb += self.rotate_next.eq(1)
                m.d.sync += t.eq(t + 1)
                with m.If(t == T):
                    m.d.sync += self.act_write.eq(1)
                    m.next = "WRITE"

            with m.State("WRITE"):      # act_write is high
                m.next = "IDLE"

            # stream add, pipelined over the timesteps: read address (t), RAM, its output register (t + 2),
            # the sum register (t + 3), write
            with m.State("STREAM_ADD"):
                m.d.comb += self.stream_next.eq(t < T)
                with m.If((t >= 1) & (t < T + 1)):
                    m.d.comb += self.rotate_next.eq(1)
                with m.If((t >= 2) & (t < T + 2)):
                    m.d.sync += self.stream_write.eq(1)
                with m.If(self.stream_write):          # t >= 3
                    m.d.sync += self.stream_write_row.eq(self.stream_write_row + 1)
                m.d.sync += t.eq(t + 1)
                with m.If(t == T + 2):
                    m.next = "IDLE"

            with m.State("HEAD"):
                m.d.comb += self.head_write.eq(1)
                m.next = "IDLE"
        m.d.comb += self.idle.eq(fsm.ongoing("IDLE"))
        return m
