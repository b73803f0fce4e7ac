"""EventPipeline: an event's way from the scanner to the lane accumulators (golden twin:
golden.components.event_pipeline_stages)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class EventPipeline(wiring.Component):
    """The stages between the scanner and the addend register, for the events and for the end-of-output marker
    that follows an output's last event.

    An event (issue with its payload) is registered, then its weight-ROM address base + off is added and
    registered (stage 0: rom_addr); the ROM takes rom_latency cycles (stage rom_latency: the addend shifter's
    inputs shift, neg), the shifter shifter_latency more (stage add_stage: add_v, word, attn, head meet the shifted
    addend, which the caller registers and accumulates). value_addr is rom_addr value_addr_stage cycles later (a
    second RAM whose registered value meets the event at add_stage).

    The marker (mark, in the cycle of an output's last issue or later) travels one slot behind that event: it
    needs no payload, only its position. `switch` is high when it is one stage before the ROM output (the events
    behind it belong to the next output: its lane shifts take over there), `snap` the cycle after it is at
    add_stage (the first cycle in which the accumulators hold the output's last event). `busy`: a marker is in
    flight. snap_next, add_v_next and add_attn_next are the values snap, add_v and add_attn take at the next edge (for
    per-lane copies, rtl/engine/fanout.py).

    Latency: issue in cycle c → stage i in cycle c + 2 + i, add_* in c + 2 + add_stage; mark in cycle e → switch
    in e + 2 + rom_latency, snap in e + 4 + add_stage. Throughput: one event per cycle.
    """

    def __init__(self, T: int, shift_width: int, head_bits: int, addr_width: int, off_width: int,
                 rom_latency: int, shifter_latency: int, value_addr_stage: int):
        assert rom_latency >= 1, "the lane shift changes one stage before the weight ROM's output"
        assert 0 <= value_addr_stage <= rom_latency + shifter_latency
        self.T, self.rom_latency, self.value_addr_stage = T, rom_latency, value_addr_stage
        self.add_stage = rom_latency + shifter_latency
        super().__init__({
            "issue": In(1), "word": In(T), "shift": In(shift_width), "neg": In(1), "attn": In(1),
            "head": In(head_bits), "base": In(addr_width), "off": In(off_width), "mark": In(1),
            "rom_addr": Out(addr_width), "value_addr": Out(addr_width),
            "shifter_shift": Out(shift_width), "shifter_neg": Out(1), "switch": Out(1),
            "add_v": Out(1), "add_word": Out(T), "add_attn": Out(1), "add_head": Out(head_bits),
            "snap": Out(1), "busy": Out(1),
            "snap_next": Out(1), "add_v_next": Out(1), "add_attn_next": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        ADD, ROM_L = self.add_stage, self.rom_latency

        def stages(name, shape, last):
            return [Signal(shape, name=f"ev{i}_{name}") for i in range(last + 1)]
        v, word, attn, head = stages("v", 1, ADD), stages("word", self.T, ADD), stages("attn", 1, ADD), \
            stages("head", len(self.head), ADD)
        shift, neg = stages("shift", len(self.shift), ROM_L), stages("neg", 1, ROM_L)
        end = stages("end", 1, ADD)
        # the event register (SCAN's): payload held between issues, the valid bit for one cycle
        pv, pword, pshift, pneg, pattn, phead = (Signal(1), Signal(self.T), Signal.like(self.shift), Signal(1),
                                                 Signal(1), Signal.like(self.head))
        pbase, poff = Signal.like(self.base), Signal.like(self.off)
        m.d.sync += pv.eq(self.issue)
        with m.If(self.issue):
            m.d.sync += [pword.eq(self.word), pshift.eq(self.shift), pneg.eq(self.neg), pattn.eq(self.attn),
                         phead.eq(self.head), pbase.eq(self.base), poff.eq(self.off)]
        addr = [Signal.like(self.rom_addr, name=f"ev{i}_addr") for i in range(self.value_addr_stage + 1)]
        m.d.sync += [v[0].eq(pv), word[0].eq(pword), shift[0].eq(pshift), neg[0].eq(pneg), attn[0].eq(pattn),
                     head[0].eq(phead), addr[0].eq(pbase + poff)]
        for i in range(1, ADD + 1):
            m.d.sync += [v[i].eq(v[i - 1]), word[i].eq(word[i - 1]), attn[i].eq(attn[i - 1]),
                         head[i].eq(head[i - 1]), end[i].eq(end[i - 1])]
            if i <= ROM_L:
                m.d.sync += [shift[i].eq(shift[i - 1]), neg[i].eq(neg[i - 1])]
        m.d.sync += [addr[i].eq(addr[i - 1]) for i in range(1, len(addr))]
        # the marker: registered like the event, then a slot of its own
        mark_q, mark_p = Signal(), Signal()
        m.d.sync += [mark_q.eq(self.mark), mark_p.eq(mark_q), end[0].eq(mark_p), self.snap.eq(end[ADD])]
        m.d.comb += [self.rom_addr.eq(addr[0]), self.value_addr.eq(addr[-1]),
                     self.shifter_shift.eq(shift[ROM_L]), self.shifter_neg.eq(neg[ROM_L]),
                     self.switch.eq(end[ROM_L - 1]),
                     self.add_v.eq(v[ADD]), self.add_word.eq(word[ADD]), self.add_attn.eq(attn[ADD]),
                     self.add_head.eq(head[ADD]),
                     self.snap_next.eq(end[ADD]), self.add_v_next.eq(v[ADD - 1]), self.add_attn_next.eq(attn[ADD - 1]),
                     self.busy.eq(Cat(mark_q, mark_p, *end, self.snap).any())]
        return m
