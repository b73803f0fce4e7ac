"""RowPipeline: an accumulating output's input rows, from the issuer to one event per cycle (golden twin:
golden.components.row_pipeline_events)."""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from .scanner import RowScanner
from .util import bits


class RowSource(enum.Enum, shape=2):
    """Where a row's non-zero mask comes from: one bit per non-zero spike word (the activation row), the bits of a
    pixel (the first convolution, bit-serial), the bits of one lane's Z value (the head, bit-serial)."""
    SPIKES = 0
    PIXEL = 1
    Z = 2


class RowPipeline(wiring.Component):
    """The issuer's items (an input row, or a bubble for a tap outside the map) through three stages into the
    RowScanner, which emits the row's events one per cycle. The items of consecutive outputs follow each other with
    no drain in between: each item carries a flag that it is its output's last, and the output's scan ends when the
    scanner is done with that item:

      stage 1   the RAMs' outputs (the issuer's item was their address); the item's flags in registers
      stage 2   the registered row: `act_row` (the activation RAM's own output register, held while the pipeline
                stalls), the pixel, the Z value of the item's lane
      stage 3   the row and its non-zero mask in registers beside the scanner (the activation row's register can sit
                anywhere on the die: its mask and the scanner's count behind it were the critical path)
      scanner   holds an item max(1, events) cycles

    All stages advance together when the scanner takes its next item (`take`); otherwise they hold, and the caller
    holds the RAMs' reads (`stall`). A bubble, or an empty slot (no item issued when the pipeline took), enters the
    scanner as a silent row: one cycle.

    Ports:
      clear              empty every stage and the scanner (the caller starts the issuer in the same cycle)
      run                the pipeline works in this cycle (the controller's row state)
      source             where the masks come from (RowSource), steady while running
      issue_valid, issue_bubble, issue_last, issue_wrow, issue_lane
                         the issuer's current item: present, a bubble, its output's last, its weight row, its Z lane
                         (lane of a Z row)
      hold               the caller may not end an output in this cycle (the previous output's epilogue needs the
                         accumulators' held copy a while longer): the scanner keeps an output's last item, silent,
                         after its last event, and nothing behind it moves
      act_row, pixel, z_row
                         the rows: act_row at stage 2 (registered), pixel and z_row at stage 1 (the RAMs' outputs)
      take (out)         the issuer's item is taken in this cycle (the issuer steps when it has one)
      stall (out)        running, and the stages hold: the RAMs' reads must hold too
      event_valid, event_index, event_onehot, event_word, event_wrow (out)
                         the current event: the set bit (index, one-hot) of its row's mask, the spike word of that
                         lane (source SPIKES), the item's weight row
      advance (out)      the scanner is done with its item (and not held): while running, the pipeline takes the next
                         (`take`)
      ending (out)       the scanner holds its output's last item and has no event after the current one: while
                         running and not held, the last cycle of the output's scan. Both come from registers alone
                         (this component's and the caller's `hold`, not `run`), so the controller's end-of-output
                         decision has no path out to the row pipeline and back

    Latency: an item issued in cycle c (take, issue_valid) reaches the scanner at the edge after c + 3; its first
    event is in c + 4 when the pipeline has not stalled in between. Throughput: one item per cycle, and item k holds
    the scanner max(1, nnz_k) cycles (an empty slot 1), so n items issued from cycle r on end in cycle
    r + 3 + Σ_k max(1, nnz_k); an output's end waits in its last item while `hold` is high.
    """

    def __init__(self, lanes: int, T: int, mask_width: int, weight_address_width: int, pixel_width: int,
                 z_width: int):
        self.lanes, self.T, self.z_width = lanes, T, z_width
        super().__init__({
            "clear": In(1), "run": In(1), "source": In(RowSource),
            "issue_valid": In(1), "issue_bubble": In(1), "issue_last": In(1), "issue_wrow": In(weight_address_width),
            "hold": In(1),
            "issue_lane": In(bits(max(1, lanes - 1))),
            "act_row": In(lanes * T), "pixel": In(pixel_width), "z_row": In(lanes * z_width),
            "take": Out(1), "stall": Out(1),
            "event_valid": Out(1), "event_index": Out(bits(mask_width - 1)), "event_onehot": Out(mask_width),
            "event_word": Out(T), "event_wrow": Out(weight_address_width),
            "advance": Out(1), "ending": Out(1),
        })
        self.mask_width = mask_width

    def elaborate(self, platform):
        m = Module()
        P, T, ZW = self.lanes, self.T, self.z_width
        ADW = len(self.issue_wrow)
        m.submodules.scanner = scanner = RowScanner(self.mask_width)
        s1_valid, s1_bubble, s1_last = Signal(name="s1_valid"), Signal(name="s1_bubble"), Signal(name="s1_last")
        s1_wrow, s1_lane = Signal(ADW, name="s1_wrow"), Signal.like(self.issue_lane, name="s1_lane")
        s2_valid, s2_bubble, s2_wrow = Signal(name="s2_valid"), Signal(name="s2_bubble"), Signal(ADW, name="s2_wrow")
        s2_last, s3_last, scan_last = Signal(name="s2_last"), Signal(name="s3_last"), Signal(name="scan_last")
        pixel_q = Signal.like(self.pixel, name="pixel_q", reset_less=True)
        z_q = Signal(ZW, name="z_q")
        s3_valid, s3_wrow = Signal(name="s3_valid"), Signal(ADW, name="s3_wrow")
        s3_row, s3_mask = Signal(P * T, name="s3_row"), Signal(self.mask_width, name="s3_mask")
        scan_valid, scan_row = Signal(name="scan_valid"), Signal(P * T, name="scan_row")

        advance, ending, scan_done, held = Signal(), Signal(), Signal(), Signal()
        # an output's last item stays in the scanner while `hold`: the stages and the scanner's item hold, and the
        # scanner, done with the item's events, loads an empty row (its `empty` input, not a zeroed mask: a mask
        # that depends on `held` put the scanner's register state in front of its count tree, the 16-lane worst
        # path, 9.2 ns). The scanner's own load / next choice stays the two-flag `scan_done`, so the hold does not
        # deepen its `more` loop either
        m.d.comb += [scan_done.eq(~scan_valid | ~scanner.more), held.eq(scan_valid & scan_last & self.hold),
                     ending.eq(scan_valid & scan_last & ~scanner.more), advance.eq(scan_done & ~held)]
        m.d.comb += [self.take.eq(self.run & advance), self.stall.eq(self.run & ~advance),
                     self.advance.eq(advance), self.ending.eq(ending)]
        m.d.comb += [self.event_valid.eq(scan_valid & scanner.valid), self.event_index.eq(scanner.index),
                     self.event_onehot.eq(scanner.onehot)]
        words = [scan_row[l * T:(l + 1) * T] for l in range(P)]
        m.d.comb += self.event_word.eq(Cat(*[Cat(scanner.onehot[l] & words[l][t] for l in range(P)).any()
                                             for t in range(T)]))

        act_words = [self.act_row[l * T:(l + 1) * T] for l in range(P)]
        z_lanes = Array(self.z_row[l * ZW:(l + 1) * ZW] for l in range(P))
        with m.If(self.clear):
            m.d.sync += [s1_valid.eq(0), s2_valid.eq(0), s3_valid.eq(0), scan_valid.eq(0)]
        with m.Elif(self.run):
            m.d.comb += [scanner.load.eq(scan_done), scanner.next.eq(~scan_done),
                         scanner.row_mask.eq(s3_mask), scanner.empty.eq(held)]
            with m.If(advance):
                # the scanner takes stage 3's item (or idles), each stage the one before's, stage 1 the issuer's
                m.d.sync += [scan_valid.eq(s3_valid), scan_last.eq(s3_valid & s3_last), scan_row.eq(s3_row),
                             self.event_wrow.eq(s3_wrow)]
                mask = Mux(self.source == RowSource.PIXEL, pixel_q,
                           Mux(self.source == RowSource.Z, z_q, Cat(w != 0 for w in act_words)))
                m.d.sync += [s3_valid.eq(s2_valid), s3_last.eq(s2_last), s3_wrow.eq(s2_wrow), s3_row.eq(self.act_row),
                             s3_mask.eq(Mux(s2_bubble, 0, mask))]
                m.d.sync += [s2_valid.eq(s1_valid), s2_bubble.eq(s1_bubble), s2_last.eq(s1_last), s2_wrow.eq(s1_wrow),
                             pixel_q.eq(self.pixel), z_q.eq(z_lanes[s1_lane] if P > 1 else z_lanes[0])]
                m.d.sync += s1_valid.eq(self.issue_valid)
                with m.If(self.issue_valid):
                    m.d.sync += [s1_bubble.eq(self.issue_bubble), s1_last.eq(self.issue_last),
                                 s1_wrow.eq(self.issue_wrow), s1_lane.eq(self.issue_lane)]
        return m
