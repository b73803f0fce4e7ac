"""RowScanner: the event-driven skip over one input row (golden twin: golden.components.scan_row)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .util import bits


class RowScanner(wiring.Component):
    """Holds one row's non-zero mask (one bit per spike word, pixel bit or Z bit) and emits its set bits lowest
    first, one event per cycle, as a one-hot and as an index: the lowest set bit is mask & ~(mask − 1), its index
    an OR per index bit over the one-hot (no priority chain).

    Ports:
      load, row_mask    take a new row (priority over next)
      next              drop the current event (the row's next set bit becomes current)
      valid             the current row has an event: onehot / index name it
      more              the row has another event after the current one (the caller keeps the row: next)
      onehot, index     the current event

    With load driven as ~(valid & more) and next as its complement, a row holds the scanner max(1, nnz) cycles
    (a silent row one cycle) and rows follow each other with no idle cycle.
    Latency: 1 cycle (row_mask loaded in cycle c → its first event in cycle c + 1). Throughput: one event per
    cycle. With neither load nor next the scanner holds its row.
    """

    def __init__(self, width: int):
        self.width = width
        super().__init__({
            "load": In(1), "row_mask": In(width), "next": In(1),
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
        rest = mask & below
        new = self.row_mask
        with m.If(self.load):
            m.d.sync += [mask.eq(new), valid.eq(new != 0), more.eq((new & (new - 1)) != 0)]
        with m.Elif(self.next):
            m.d.sync += [mask.eq(rest), valid.eq(more), more.eq((rest & (rest - 1)) != 0)]
        m.d.comb += [self.valid.eq(valid), self.more.eq(more)]
        return m
