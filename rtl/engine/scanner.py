"""RowScanner: the event-driven skip over one input row (golden twin: golden.components.scan_row)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .util import bits


class RowScanner(wiring.Component):
    """Holds one row's non-zero mask (one bit per spike word, pixel bit or Z bit) and emits its set bits lowest
    first, one event per cycle, as a one-hot and as an index: the lowest set bit is mask & ~(mask − 1), its index
    an OR per index bit over the one-hot (no priority chain).

    Ports:
      load, row_mask    take a new row (priority over next)
      empty             with load: take an empty row whatever row_mask holds (a caller that must not scan its row
                        twice; a separate input so the count tree behind `more` never waits for the caller's choice)
      next              drop the current event (the row's next set bit becomes current)
      valid             the current row has an event: onehot / index name it
      more              the row has another event after the current one (the caller keeps the row: next)
      onehot, index     the current event

    With load driven as ~(valid & more) and next as its complement, a row holds the scanner max(1, nnz) cycles
    (a silent row one cycle) and rows follow each other with no idle cycle.

    Timing: `more` steers the whole row pipeline, so its next value must be cheap. It is "two or more set bits" of
    the incoming mask on load and "three or more" of the current mask on next, both from one saturating-count tree
    (ceil(log2 width) levels of 4-input functions, no carry chain); the only carry chain, mask − 1, feeds the mask
    register alone.
    Latency: 1 cycle (row_mask loaded in cycle c → its first event in cycle c + 1). Throughput: one event per
    cycle. With neither load nor next the scanner holds its row.
    """

    def __init__(self, width: int):
        self.width = width
        super().__init__({
            "load": In(1), "row_mask": In(width), "empty": In(1), "next": In(1),
            "valid": Out(1), "more": Out(1), "onehot": Out(width), "index": Out(bits(width - 1)),
        })

    def elaborate(self, platform):
        m = Module()
        W = self.width
        mask = Signal(W)
        valid = Signal()
        more = Signal()    # two or more set bits: the row stays another cycle
        below = Signal(W)
        m.d.comb += [below.eq(mask - 1), self.onehot.eq(mask & ~below)]
        m.d.comb += self.index.eq(Cat(Cat(self.onehot[b] for b in range(W) if (b >> k) & 1).any()
                                      for k in range(len(self.index))))
        new = self.row_mask
        with m.If(self.load):
            m.d.sync += [mask.eq(Mux(self.empty, 0, new)), valid.eq(~self.empty & (new != 0)),
                         more.eq(~self.empty & at_least(m, new, 2))]
        with m.Elif(self.next):
            m.d.sync += [mask.eq(mask & below), valid.eq(more), more.eq(at_least(m, mask, 3))]
        m.d.comb += [self.valid.eq(valid), self.more.eq(more)]
        return m


def at_least(m: Module, value, n: int):
    """1 when `value` has n (1..3) or more set bits: a tree of 2-bit counts saturating at 3, each merge a 4-input
    function per bit, so ceil(log2 width) LUT levels."""
    counts = [value[i] for i in range(len(value))]
    while len(counts) > 1:
        merged = []
        for a, b in zip(counts[0::2], counts[1::2]):
            s = Signal(3)
            c = Signal(2)
            m.d.comb += [s.eq(a + b), c.eq(Mux(s[2], 3, s[:2]))]
            merged.append(c)
        counts = merged + ([counts[-1]] if len(counts) % 2 else [])
    return counts[0] >= n
