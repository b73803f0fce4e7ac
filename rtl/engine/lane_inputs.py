"""LaneInputs: what each lane and timestep accumulator adds in the next cycle (golden twin:
golden.components.lane_inputs_step)."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .accumulators import lane_time_layout
from .util import bits


class LaneInputs(wiring.Component):
    """The addend register in front of the P × T lane accumulators. Three writers, never two in one cycle by the
    schedule, taken in this order:

      an event        (event_valid) timestep t of every lane adds where the event's spike word has bit t: the weight
                      row's addend of the lane, or, for a Q·(Kᵀ·V) event (event_attn), the lane's K·V value of
                      timestep t; with lanes wider than a head (heads_per_group > 1) an attention event adds only
                      into the lanes of its head (event_head)
      a Kᵀ·V count    (kv_add) +1 where kv_mask has the lane's timestep bit (lane-major: bit l·T + t)
      head Z          (hz_add) timestep 0 of every lane adds the lane's residual-stream value

    Ports: the writers' inputs above (event_valid, event_attn, kv_add and hz_add as P equal copies, lane l reading
    bit l: each selects in every timestep of a lane, and one copy per lane, fanout.ReplicatedRegister, keeps the
    16-lane core's widest selects local), weight_addend[P] (signed width), kv_values (P × T values of kv_width bits,
    timestep-major: value t·P + l), stream[P] (signed stream_width) → add_en[P] (T bits each) and addend[P][T].
    Latency: 1 cycle (inputs in cycle c → add_en, addend in c + 1; with no writer add_en is 0 and the addends
    hold). Throughput: one write per cycle.
    """

    def __init__(self, lanes: int, T: int, width: int, kv_width: int, stream_width: int, head_dim: int,
                 heads_per_group: int = 1):
        self.P, self.T, self.KW, self.d, self.heads = lanes, T, kv_width, head_dim, heads_per_group
        super().__init__({
            "event_valid": In(lanes), "event_word": In(T), "event_attn": In(lanes),
            "event_head": In(bits(max(1, heads_per_group - 1))),
            "weight_addend": In(data.ArrayLayout(signed(width), lanes)),
            "kv_values": In(lanes * T * kv_width),
            "kv_add": In(lanes), "kv_mask": In(lanes * T),
            "hz_add": In(lanes), "stream": In(data.ArrayLayout(signed(stream_width), lanes)),
            "add_en": Out(data.ArrayLayout(unsigned(T), lanes)),
            "addend": Out(lane_time_layout(lanes, T, width)),
        })

    def elaborate(self, platform):
        m = Module()
        P, T, KW = self.P, self.T, self.KW
        for l in range(P):
            event_valid, event_attn = self.event_valid[l], self.event_attn[l]
            lane_in_head = 1 if self.heads == 1 else ~event_attn | (self.event_head == l // self.d)
            for t in range(T):
                kv_value = self.kv_values[(t * P + l) * KW:(t * P + l + 1) * KW]
                en, addend = self.add_en[l][t], self.addend[l][t]
                with m.If(event_valid):
                    m.d.sync += [en.eq(self.event_word[t] & lane_in_head),
                                 addend.eq(Mux(event_attn, kv_value.as_unsigned(), self.weight_addend[l]))]
                with m.Elif(self.kv_add[l]):
                    m.d.sync += [en.eq(self.kv_mask[l * T + t]), addend.eq(1)]
                with m.Elif(self.hz_add[l] & (t == 0)):
                    m.d.sync += [en.eq(1), addend.eq(self.stream[l])]
                with m.Else():
                    m.d.sync += en.eq(0)
        return m
