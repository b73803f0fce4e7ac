"""StreamLifSequencer: the LIF over the residual stream, outputs back to back (golden twin:
golden.components.stream_lif_schedule)."""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class StreamLifSequencer(wiring.Component):
    """Sequences a stream-LIF layer: per output (a stream row group of T timestep rows) the LIF's start, its T
    timesteps from the stream RAM and the output's spike words, the outputs following each other with a period of
    T + 1 cycles. It commands the units around it; the values flow between them directly (the stream RAM's
    registered rows into the LIF, the LIF's spike words into the activation RAM, the parameter RAM's thresholds into
    the LIF at its start).

    Ports:
      start               run the layer (its stream rows from the caller's stream read-address register)
      last                the output being started is the layer's last (sampled with `advance`)
      stream_start, stream_next
                          load the stream read-address register with the layer's first row; step it by one
      lif_start           clear the LIF and latch the thresholds of the output being started
      lif_valid, lif_step timestep lif_step's stream values are in the stream RAM's output register
      act_write           write the previous output's spike words (to the caller's output row, then step it)
      advance             the caller steps its output counters (the next output's parameters are read then)
      done                the layer's last write: the caller goes on to the next layer

    Schedule (start in cycle s, n outputs, period T + 1, output k's phase p in cycle s + 2 + k(T + 1) + p):
      stream_start in s, stream_next in s + 1 and in every phase p ≠ T − 1 (the RAM reads a row a cycle, two cycles
      ahead of its timestep, one idle slot a period); lif_start and advance in phase 0 of outputs 0 .. n − 1;
      lif_valid with step t in phase 1 + t; act_write of output k − 1 in phase 1 of output k (k = 1 .. n; the
      LIF's last spike of output k − 1 is visible then, and the start in phase 0 has not cleared it); done with the
      last write in phase 1 of "output" n. Total n(T + 1) + 4 cycles from start to the cycle after done.
    """

    FIXED_CYCLES = 4        # start, the first read, the last write's period (2): n(T + 1) + 4 in all

    @staticmethod
    def period(T: int) -> int:
        """Cycles per output, the outputs back to back."""
        return T + 1

    def __init__(self, T: int):
        self.T = T
        super().__init__({
            "start": In(1), "last": In(1),
            "stream_start": Out(1), "stream_next": Out(1),
            "lif_start": Out(1), "lif_valid": Out(1), "lif_step": Out(range(T)),
            "act_write": Out(1), "advance": Out(1), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        T = self.T
        phase = Signal(range(T + 1))
        prev = Signal()     # an earlier output's spike words wait for their write
        last = Signal()     # the output in this period is the layer's last
        end = Signal()      # the layer's outputs are done: this period only writes the last one
        m.d.comb += self.lif_step.eq((phase - 1)[:len(self.lif_step)])
        with m.FSM(init="IDLE"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.comb += self.stream_start.eq(1)
                    m.d.sync += [phase.eq(0), prev.eq(0), last.eq(0), end.eq(0)]
                    m.next = "WAIT"

            with m.State("WAIT"):
                m.d.comb += self.stream_next.eq(1)
                m.next = "PERIOD"

            with m.State("PERIOD"):
                with m.If((phase == 0) & ~end):
                    m.d.comb += [self.lif_start.eq(1), self.advance.eq(1)]
                    m.d.sync += last.eq(self.last)
                m.d.comb += [self.lif_valid.eq((phase != 0) & ~end),
                             self.act_write.eq((phase == 1) & prev),
                             self.stream_next.eq(phase != T - 1)]
                with m.If(phase == T):
                    m.d.sync += [phase.eq(0), prev.eq(1), end.eq(last)]
                with m.Else():
                    m.d.sync += phase.eq(phase + 1)
                with m.If(end & (phase == 1)):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
        return m
