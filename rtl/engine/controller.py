"""LayerController: the core's loop nest over the layer table (golden twin: golden.components.layer_controller_step)."""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .layer_table import Opcode
from .schedule import output_seam, output_spacing, stream_lif_param_wait


class LayerController(wiring.Component):
    """Walks the layer table for one inference and commands the units that run each layer; it holds no datapath.

    Per layer: FETCH (the table reads the entry), LOAD (the entry goes into the layer registers; its opcode picks
    the layer's loop), then
      - accumulating layers (CONV_IN, ACC, ATTN, HEAD): OUT_INIT starts the layer's first output, then ROWS for
        all of them. The issue side runs ahead of the scan: when the row pipeline takes an output's last item, the
        next output's walk follows after `seam` empty slots: the issue side's output loop steps the cycle after the
        last item was taken (`issue_next`) and the tap walker starts from it the cycle after that (`walk_start`),
        both from registers, whatever the pipeline takes meanwhile; the walker's items are held back
        (`issue_open` low) until the pipeline has taken the seam's empty slots. So the outputs' items enter the
        pipeline back to back, `seam` slots apart. The end side: an output ends in the cycle the scanner is done with its last item (`rows_ending`),
        at least `spacing` cycles after the previous output ended (its epilogue must finish first: until then
        `rows_hold` keeps the item in the scanner); `fetch_next` then reads the next output's parameters. After
        the last output, LAYER_WAIT until the event pipeline, the Kᵀ·V sequencer and the epilogue are idle;
      - pooling: per output OUT_INIT, then ROW_RD (a tap outside the map steps on) / LATCH (a tap inside: its row
        is latched) per tap, WRITE;
      - stream LIF, Kᵀ·V, head Z: the layer's sequencer runs it (after `param_wait` cycles for the stream LIF's
        first thresholds); its `done` ends the layer (Kᵀ·V: LAYER_WAIT then).
    After the plan's last layer (the head, always an accumulating layer) K argmax cycles present the logits, one a
    cycle, while the logit bank rotates; then `done`.

    Every transition reads this component's registers and the units' flags in the same cycle, so a layer costs
    exactly its states' cycles: FETCH + LOAD (2), OUT_INIT (1) per pooled output and per accumulating layer, the
    seam's `seam` slots per accumulating output after the first, the units' own cycles, and K + 2 for the argmax
    (schedule.timing(): layer_fetch, output_start, output_seam, argmax_class, argmax_fixed).

    Ports (in): start; entry_op (the entry being loaded); pooling (the current layer is a pooling layer);
      tap_in_bounds, tap_last, tap_done (the tap walker's item is inside the map / the output's last; the walk
      ended); rows_advance, rows_ending (the row pipeline takes its next item / is done with an output's last
      item in this cycle, if running: flags from registers, so the decision below has no path through
      `rows_run`); last_output (the end side's output loop: its current output is the layer's last);
      issue_last_output (the same for the issue side's loop); stream_lif_done, kv_done, head_z_done (the
      sequencers' last cycles); pipeline_idle.
    Ports (out): layer (the table index), busy, done, cycles (since start); begin (the start cycle); load;
      kv_start, stream_lif_start, head_z_start; output_start (OUT_INIT); first_output (a register: no output of
      this layer has ended); rows_run; rows_hold; tap_step; issue_open (a register: the walker's item may be
      issued, low during a seam); walk_start (a register: the tap walker starts the issue side's output);
      issue_next (the issue side's output loop steps); fetch_next (a register: read the end side's
      parameter row); pool_latch; pool_write; end_output (the output's marker enters the event pipeline);
      next_output (the end side's output loop steps; pooling steps both loops); argmax_valid, argmax_index;
      logit_rotate.
    """

    def __init__(self, layers: int, classes: int, T: int):
        self.layers, self.K = layers, classes
        self.spacing = output_spacing(T)
        self.seam = output_seam()
        assert self.seam >= 2, "the walker starts two cycles after the last item was taken, ready for the third take"
        self.param_wait = stream_lif_param_wait(T)
        assert self.param_wait <= 1, "the stream LIF waits at most one cycle for its thresholds"
        super().__init__({
            "start": In(1), "entry_op": In(Opcode), "pooling": In(1),
            "tap_in_bounds": In(1), "tap_last": In(1), "tap_done": In(1),
            "rows_advance": In(1), "rows_ending": In(1), "last_output": In(1), "issue_last_output": In(1),
            "stream_lif_done": In(1), "kv_done": In(1), "head_z_done": In(1), "pipeline_idle": In(1),
            "layer": Out(range(layers + 1)), "busy": Out(1), "done": Out(1), "cycles": Out(32),
            "begin": Out(1), "load": Out(1),
            "kv_start": Out(1), "stream_lif_start": Out(1), "head_z_start": Out(1),
            "output_start": Out(1), "first_output": Out(1), "rows_run": Out(1), "rows_hold": Out(1),
            "tap_step": Out(1), "issue_open": Out(1, init=1), "walk_start": Out(1), "issue_next": Out(1),
            "fetch_next": Out(1),
            "pool_latch": Out(1), "pool_write": Out(1), "end_output": Out(1), "next_output": Out(1),
            "argmax_valid": Out(1), "argmax_index": Out(range(max(2, classes))), "logit_rotate": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        K = self.K
        layer_last = Signal()                         # the layer being run is the plan's last
        gap = Signal(range(self.spacing + 1))         # cycles until the next output may end
        gap_zero = Signal(init=1)                     # gap == 0, kept as a flag: it steers the whole loop nest
        kidx = Signal(range(K + 1))
        seam = Signal(range(self.seam + 1))           # empty slots of the seam taken so far (0: no seam)
        # the issue loop steps the cycle after an output's last row was taken and the walker starts from it the
        # cycle after that, both from registers: no take decision reaches the loop's or the walker's enables (the
        # start loads the walker's tap-position compares, the 8-lane core's worst path when the seam's take drove it)
        issue_step = Signal()
        m.d.comb += self.issue_next.eq(issue_step)
        m.d.comb += self.argmax_index.eq(kidx[:len(self.argmax_index)])
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(gap != 0):
            m.d.sync += [gap.eq(gap - 1), gap_zero.eq(gap == 1)]
        m.d.sync += [self.fetch_next.eq(0), issue_step.eq(0), self.walk_start.eq(issue_step)]

        def next_layer(may_be_last=False):
            # only LAYER_WAIT may end the model (the plan ends with the head), so no sequencer's state decode
            # reaches the logit rotation flag
            if not may_be_last:
                m.d.sync += self.layer.eq(self.layer + 1)
                m.next = "FETCH"
                return
            with m.If(layer_last):
                # the logits were written in this very cycle: read them from the next
                m.d.sync += [kidx.eq(0), self.logit_rotate.eq(1)]
                m.next = "ARGMAX"
            with m.Else():
                m.d.sync += self.layer.eq(self.layer + 1)
                m.next = "FETCH"

        def next_output(at_layer_end=next_layer):
            m.d.comb += self.next_output.eq(1)
            with m.If(self.last_output):
                at_layer_end()
            with m.Else():
                m.next = "OUT_INIT"

        def wait_for_epilogue():
            m.next = "LAYER_WAIT"

        with m.FSM(init="IDLE") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.comb += self.begin.eq(1)
                    m.d.sync += [self.layer.eq(0), self.cycles.eq(0), self.busy.eq(1), self.done.eq(0)]
                    m.next = "FETCH"

            with m.State("FETCH"):
                m.d.sync += layer_last.eq(self.layer == self.layers - 1)
                m.next = "LOAD"

            with m.State("LOAD"):
                m.d.comb += self.load.eq(1)
                m.d.sync += [self.first_output.eq(1), seam.eq(0), self.issue_open.eq(1)]
                with m.Switch(self.entry_op):
                    with m.Case(Opcode.KV):
                        m.d.comb += self.kv_start.eq(1)
                        m.next = "KV_RUN"
                    with m.Case(Opcode.HEAD_Z):
                        m.next = "HZ_START"
                    with m.Case(Opcode.STREAM_LIF):
                        m.next = "SL_WAIT" if self.param_wait else "SL_START"
                    with m.Default():
                        m.next = "OUT_INIT"

            # ------------------------------------------------------------ the shared loop nest
            with m.State("OUT_INIT"):
                m.d.comb += self.output_start.eq(1)
                with m.If(self.pooling):
                    m.next = "ROW_RD"
                with m.Else():
                    m.next = "ROWS"

            # accumulating layers: issuer, pipeline stages and scanner all work in this one state, the issue side
            # (walker, issue loop) up to an output ahead of the end side (scanner, epilogue, end loop)
            with m.State("ROWS"):
                m.d.comb += [self.rows_run.eq(1),
                             self.tap_step.eq(self.rows_advance & ~self.tap_done & self.issue_open),
                             self.rows_hold.eq(~gap_zero)]
                with m.If(self.rows_advance):
                    with m.If(~self.tap_done & self.tap_last & self.issue_open & ~self.issue_last_output):
                        m.d.sync += [seam.eq(1), issue_step.eq(1), self.issue_open.eq(0)]
                    with m.If(seam == self.seam):
                        m.d.sync += [seam.eq(0), self.issue_open.eq(1)]
                    with m.Elif(seam != 0):
                        m.d.sync += seam.eq(seam + 1)
                with m.If(self.rows_ending & gap_zero):
                    # the output's last event reaches the accumulators ACC_LATENCY cycles after this one
                    m.d.comb += [self.end_output.eq(1), self.next_output.eq(1)]
                    m.d.sync += [gap.eq(self.spacing - 1), gap_zero.eq(self.spacing == 1),
                                 self.first_output.eq(0)]
                    with m.If(self.last_output):
                        wait_for_epilogue()
                    with m.Else():
                        m.d.sync += self.fetch_next.eq(1)

            # the last output of an accumulating layer: its epilogue ends before the next layer reads its rows
            with m.State("LAYER_WAIT"):
                with m.If(self.pipeline_idle):
                    next_layer(may_be_last=True)

            # pooling: a row inside the map is latched, a tap outside steps on; the pooled row is written last
            with m.State("ROW_RD"):
                with m.If(self.tap_in_bounds):
                    m.next = "LATCH"
                with m.Else():
                    m.d.comb += self.tap_step.eq(1)
                    with m.If(self.tap_last):
                        m.next = "WRITE"

            with m.State("LATCH"):
                m.d.comb += [self.pool_latch.eq(1), self.tap_step.eq(1)]
                m.next = "ROW_RD"
                with m.If(self.tap_last):
                    m.next = "WRITE"

            with m.State("WRITE"):
                m.d.comb += [self.pool_write.eq(1), self.issue_next.eq(1)]
                next_output()

            # the sequencers' layers
            if self.param_wait:
                with m.State("SL_WAIT"):
                    m.next = "SL_START"

            with m.State("SL_START"):
                m.d.comb += self.stream_lif_start.eq(1)
                m.next = "SL_RUN"

            with m.State("SL_RUN"):
                with m.If(self.stream_lif_done):
                    next_layer()

            # Kᵀ·V: its last channel's snapshot and write end in LAYER_WAIT
            with m.State("KV_RUN"):
                with m.If(self.kv_done):
                    m.next = "LAYER_WAIT"

            with m.State("HZ_START"):
                m.d.comb += self.head_z_start.eq(1)
                m.next = "HZ_RUN"

            with m.State("HZ_RUN"):
                with m.If(self.head_z_done):
                    next_layer()

            # the logits rotate past logit 0 (K steps: back in place for the read-out), so no index multiplexer sits
            # in front of the argmax's input register
            with m.State("ARGMAX"):
                with m.If(kidx < K):
                    m.d.comb += self.argmax_valid.eq(1)
                    m.d.sync += kidx.eq(kidx + 1)
                    with m.If(kidx == K - 1):
                        m.d.sync += self.logit_rotate.eq(0)
                with m.Else():
                    m.next = "ARGMAX_DONE"

            with m.State("ARGMAX_DONE"):
                m.d.sync += [self.busy.eq(0), self.done.eq(1)]
                m.next = "IDLE"

        # Yosys re-encodes the state one-hot: every state test is then one flip-flop instead of a compare in front of
        # wide fan-outs (left alone, Yosys keeps Amaranth's binary encoding)
        fsm.state.attrs["fsm_encoding"] = "one-hot"
        return m
