"""Expected cycle counts of the rtl/blocks building blocks (exp_cycles per block). The block testbenches in
sim/blocks/ measure the same quantity in simulation and require equality.

Unless stated otherwise a count is the number of clock edges from the one that takes the first input through
the one that hands out the last result, both included; `stalls` counts the cycles an output waited on ready.
"""
from __future__ import annotations


def tree_levels(leaves: int) -> int:
    """Register levels of a binary adder tree: ceil(log2(leaves))."""
    return max(0, (int(leaves) - 1).bit_length())


def lif_exp_cycles(sets: int, T: int, stalls: int = 0) -> int:
    """LifArray: T steps per set plus the hand-out edge, which also takes the next set."""
    return sets * (T + 1) + 1 + stalls


def scanner_exp_cycles(events_per_row, stalls: int = 0) -> int:
    """SpikeScanner: from the first row's edge to the cycle in which it can take a row again after the last
    one: one load cycle per row plus one cycle per non-zero word (the zero words are skipped)."""
    return sum(1 + int(k) for k in events_per_row) + stalls


def accumulator_exp_cycles(events_per_row) -> int:
    """AccumulatorLanes: one cycle per event; a row's load shares the cycle of its first event, an empty row
    (bias only) takes one cycle."""
    return sum(max(1, int(e)) for e in events_per_row)


def pool_exp_cycles(maps: int, height: int, stalls: int = 0) -> int:
    """OrPoolUnit: one input row per cycle, the last output row one cycle later."""
    return maps * height + 1 + stalls


def residual_exp_cycles(vectors: int) -> int:
    """ResidualAdder: one vector per cycle, registered output."""
    return vectors + 1


def bitserial_exp_cycles(inputs_per_output, value_bits: int) -> int:
    """BitSerialAccumulator: value_bits cycles per input plus one idle cycle per output for the next load,
    counted from the first load to the cycle in which the last output is final."""
    return sum(int(n) * value_bits + 1 for n in inputs_per_output)


def attention_kv_exp_cycles(T: int, d: int, tokens: int) -> int:
    """AttentionUnit KV phase: T*d*d pairs one per cycle, then the AND register and the popcount tree,
    counted to the cycle in which kv_done is seen."""
    return T * d * d + 1 + tree_levels(tokens) + 1


def attention_y_exp_cycles(n_tokens: int, d: int, T: int, stalls: int = 0) -> int:
    """AttentionUnit Y phase, back-to-back tokens: d accumulate cycles, one hand-over to the LIF, T LIF steps,
    the hand-out edge and one edge before the next token is taken."""
    return n_tokens * (d + T + 3) + stalls
