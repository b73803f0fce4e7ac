"""Exact cycle counts of the standalone RTL building blocks (rtl/maxpool.py, attention.py,
bitserial.py); the core's own components state theirs in rtl/engine/. The cocotb benches (sim/tb_*.py) measure the same quantities and
compare them with these formulas exactly.

Convention: a stream of n transactions presented back to back (no stalls) starting at cycle 0; the count is the
number of cycles until the last result is visible (pipelined blocks: n - 1 + latency + 1 = n + latency).
"""
from __future__ import annotations


def tree_depth(n: int) -> int:
    return max(0, (int(n) - 1).bit_length())


def maxpool_cycles(rows: int) -> int:
    """OrPool: one input row per cycle; each output row leaves 1 cycle after its last input row."""
    return rows + 1


def kv_latency(tokens: int) -> int:
    """AttentionUnit K·V path: AND register, then a registered popcount tree over the tokens."""
    return 1 + tree_depth(tokens)


def y_latency(d: int) -> int:
    """AttentionUnit Y path: masked-row register, then a registered adder tree over the d KV rows."""
    return 1 + tree_depth(d)


def attention_kv_cycles(pairs: int, tokens: int) -> int:
    return pairs + kv_latency(tokens)


def attention_y_cycles(rows: int, d: int) -> int:
    return rows + y_latency(d)


def bitserial_cycles(values: int, bits: int) -> int:
    """BitSerialMac: transfer cycle, one value bit per cycle for values back to back, the final register."""
    return values * bits + 2
