"""Attention unit: spike self-attention without softmax (docs/intmodel.md) for one head and one timestep."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .common import adder_tree, bits_for, field


class AttentionUnit(wiring.Component):
    """KV = Kᵀ·V by AND + popcount over the N tokens, then Y rows accumulated where Q is 1.

    Phase KV (one (i, j) pair per cycle): kv_valid, kv_index = i·d + j, k_bits [N] (channel i of K over the
    tokens), v_bits [N] (channel j of V). The AND is registered, then a registered popcount adder tree
    (ceil(log2 N) levels) writes KV[i][j] into the unit's d×d register file; kv_out_valid / kv_out /
    kv_out_index show each count as it is written.
    Phase Y (one token per cycle): q_valid, q_bits [d] (Q[n, ·]); Y[n, j] = Σ_{i: Q[n,i]} KV[i][j] by masking the
    KV rows (AND, no multiplier) into a registered adder tree over the d rows; y_valid, y [d·Y] (j at field j).
    The attention LIF (θ = 4·2^T, golden.primitives.attn_theta) runs on Y in the core's rtl.engine.lif.LifLanes over the T
    timesteps of each token.

    Latency: KV 1 + ceil(log2 N) cycles to kv_out (the register file holds it the cycle after); Y 1 + ceil(log2 d).
    Throughput: one KV pair per cycle (d² cycles per head and timestep), one token's Y row per cycle (N cycles);
    both pipelines are independent (hls_models.blocks.attention_kv_cycles / attention_y_cycles).
    Widths: KV counts bits_for(N), Y bits_for(d·N).
    """

    def __init__(self, tokens: int, d: int):
        self.N, self.d = tokens, d
        self.kv_width = bits_for(tokens)
        self.y_width = bits_for(tokens * d)
        super().__init__({
            "kv_valid": In(1), "kv_index": In(bits_for(d * d - 1)), "k_bits": In(tokens), "v_bits": In(tokens),
            "kv_out_valid": Out(1), "kv_out_index": Out(bits_for(d * d - 1)), "kv_out": Out(self.kv_width),
            "q_valid": In(1), "q_bits": In(d),
            "y_valid": Out(1), "y": Out(d * self.y_width),
        })

    def elaborate(self, platform):
        m = Module()
        N, d = self.N, self.d
        # K·V: AND, then popcount tree; index and valid travel alongside.
        both = Signal(N)
        m.d.sync += both.eq(self.k_bits & self.v_bits)
        count, depth = adder_tree(m, [both[n] for n in range(N)], self.kv_width, False, "pop")
        valid, index = self.kv_valid, self.kv_index
        for s in range(depth + 1):
            v_r, i_r = Signal(name=f"kv_valid_{s}"), Signal.like(self.kv_index, name=f"kv_index_{s}")
            m.d.sync += [v_r.eq(valid), i_r.eq(index)]
            valid, index = v_r, i_r
        m.d.comb += [self.kv_out_valid.eq(valid), self.kv_out_index.eq(index), self.kv_out.eq(count)]
        kv = [Signal(unsigned(self.kv_width), name=f"kv_{k // d}_{k % d}") for k in range(d * d)]
        with m.If(valid):
            with m.Switch(index):
                for k in range(d * d):
                    with m.Case(k):
                        m.d.sync += kv[k].eq(count)
        # Y: rows of KV masked by Q, summed per column by one tree per column.
        masked = [[Signal(unsigned(self.kv_width), name=f"m_{i}_{j}") for j in range(d)] for i in range(d)]
        for i in range(d):
            m.d.sync += [masked[i][j].eq(Mux(self.q_bits[i], kv[i * d + j], 0)) for j in range(d)]
        cols = []
        for j in range(d):
            col, ydepth = adder_tree(m, [masked[i][j] for i in range(d)], self.y_width, False, f"y{j}")
            cols.append(col)
        yv = self.q_valid
        for s in range(ydepth + 1):
            v_r = Signal(name=f"y_valid_{s}")
            m.d.sync += v_r.eq(yv)
            yv = v_r
        m.d.comb += [self.y_valid.eq(yv), self.y.eq(Cat(*cols))]
        return m
