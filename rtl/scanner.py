"""Spike scanner: the event-driven skip over a row of T-bit spike words."""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .common import bits_for


class SpikeScanner(wiring.Component):
    """Takes a row of R T-bit words and emits the index and word of every non-zero one, lowest index first,
    one per cycle (a priority encoder over the row's non-zero mask). All-zero words cost nothing.

    Ports (valid/ready on both sides; a transfer happens when valid and ready are both high at a clock edge):
      in_valid, in_ready, in_row [R·T]      word r at bits [r·T, r·T + T)
      out_valid, out_ready, out_index, out_word [T], out_last (this is the row's last non-zero word)

    in_ready is high while no events are pending, or in the cycle the last pending event is taken, so rows
    follow each other with no idle cycle. Latency: 1 cycle from a row's transfer to its first event.
    Throughput with out_ready high: a row with nnz non-zero words occupies max(1, nnz) cycles; a sequence of rows
    is busy Σ_r max(1, nnz_r) + [nnz_last > 0] cycles (hls_models.blocks.scanner_cycles).
    """

    def __init__(self, words: int, T: int):
        self.R, self.T = words, T
        super().__init__({
            "in_valid": In(1), "in_ready": Out(1), "in_row": In(words * T),
            "out_valid": Out(1), "out_ready": In(1), "out_index": Out(bits_for(max(1, words - 1))),
            "out_word": Out(T), "out_last": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        R, T = self.R, self.T
        row = Signal(R * T)
        pending = Signal(R)
        lowbit = Signal(R)
        m.d.comb += lowbit.eq(pending & (~pending + 1))
        index = Signal.like(self.out_index)
        for r in reversed(range(R)):      # lowest set bit wins: it is assigned last
            with m.If(pending[r]):
                m.d.comb += index.eq(r)
        take = self.out_valid & self.out_ready
        m.d.comb += [
            self.out_valid.eq(pending.any()),
            self.out_index.eq(index),
            self.out_word.eq(Array(row[r * T:(r + 1) * T] for r in range(R))[index]),  # mux, no index·T
            self.out_last.eq((pending & ~lowbit) == 0),
            self.in_ready.eq(~pending.any() | (take & self.out_last)),
        ]
        nonzero = [self.in_row[r * T:(r + 1) * T].any() for r in range(R)]
        with m.If(self.in_valid & self.in_ready):
            m.d.sync += [row.eq(self.in_row), pending.eq(Cat(*nonzero))]
        with m.Elif(take):
            m.d.sync += pending.eq(pending & ~lowbit)
        return m
