"""HeadZSequencer: the head's Z sums over the residual stream, a lane group at a time (golden twin:
golden.components.head_z_schedule)."""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class HeadZSequencer(wiring.Component):
    """Sequences a head-Z layer, Z_c = Σ_n Σ_t X[t, n, c]: per lane group the accumulators start from zero, the
    group's N·T stream rows (token-major, timestep-minor) are read one a cycle and added into the lanes' timestep-0
    accumulators, and after the event pipeline's drain the sums are written to the Z RAM. It commands the units
    around it; the values flow between them directly (the stream RAM's registered rows into the accumulators, the
    accumulators into the Z RAM).

    Ports:
      start               run the layer (lane group 0 first)
      tokens              N, the tokens per group (sampled at start; at least 1)
      last                the group being written is the layer's last (sampled with `z_write`)
      acc_init            clear the accumulators for a group
      stream_load, stream_row
                          load the caller's stream read-address register with the group's first row (group g: g·T)
      stream_next         step that register to the next timestep's row (+1)
      stream_skip         step it to the next token's first row (+ the caller's token stride - (T - 1))
      add                 the stream RAM's registered row (read ADD_LATENCY cycles after its address) is added
      add_next            the value add takes at the next edge (for per-lane copies, fanout.py)
      z_write             write the group's sums; the caller steps its group counter
      done                the layer's last write: the caller goes on to the next layer

    Schedule (start in cycle s, group g's first cycle b = s + g·(N·T + drain + 2)):
      acc_init and stream_load (row g·T) in b; a stream row read in each of b + 1 .. b + N·T, with stream_next
      after every read but a token's last (stream_skip then); add ADD_LATENCY cycles after each read;
      z_write in b + N·T + drain + 1 (done with it for the last group). N·T + drain + 2 cycles per group.
    """

    ADD_LATENCY = 2     # the stream RAM's read and its output register

    @staticmethod
    def group_cycles(tokens: int, T: int, drain: int) -> int:
        return tokens * T + drain + 2

    def __init__(self, T: int, drain: int, row_width: int, token_width: int = 16):
        self.T, self.drain = T, drain
        super().__init__({
            "start": In(1), "tokens": In(token_width), "last": In(1),
            "acc_init": Out(1), "stream_load": Out(1), "stream_row": Out(row_width),
            "stream_next": Out(1), "stream_skip": Out(1), "add": Out(1), "add_next": Out(1),
            "z_write": Out(1), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        T = self.T
        tokens = Signal.like(self.tokens)
        n = Signal.like(self.tokens)
        n_last = Signal()       # kept beside n, so the loop's decision is one flip-flop
        t = Signal(range(T))
        wait = Signal(range(self.drain + 1))
        group_row = Signal.like(self.stream_row)
        read = Signal(self.ADD_LATENCY)     # a row was read 1 .. ADD_LATENCY cycles ago
        m.d.sync += read.eq(read << 1)
        m.d.comb += [self.add.eq(read[-1]), self.add_next.eq(read[-2]), self.stream_row.eq(group_row)]

        def begin_group():
            m.d.comb += [self.acc_init.eq(1), self.stream_load.eq(1)]
            m.d.sync += [n.eq(0), n_last.eq(tokens <= 1), t.eq(0)]
            m.next = "READ"

        with m.FSM(init="IDLE"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.comb += [self.acc_init.eq(1), self.stream_load.eq(1), self.stream_row.eq(0)]
                    m.d.sync += [tokens.eq(self.tokens), n.eq(0), n_last.eq(self.tokens <= 1), t.eq(0),
                                 group_row.eq(0)]
                    m.next = "READ"

            with m.State("INIT"):
                begin_group()

            with m.State("READ"):
                m.d.sync += read[0].eq(1)
                with m.If(t != T - 1):
                    m.d.comb += self.stream_next.eq(1)
                    m.d.sync += t.eq(t + 1)
                with m.Else():
                    m.d.comb += self.stream_skip.eq(1)
                    m.d.sync += [t.eq(0), n.eq(n + 1), n_last.eq(n + 2 >= tokens)]
                    with m.If(n_last):
                        if self.drain:
                            m.d.sync += wait.eq(self.drain - 1)
                        m.next = "DRAIN" if self.drain else "WRITE"

            with m.State("DRAIN"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.next = "WRITE"

            with m.State("WRITE"):
                m.d.comb += self.z_write.eq(1)
                m.d.sync += group_row.eq(group_row + T)
                with m.If(self.last):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.next = "INIT"
        return m
