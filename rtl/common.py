"""Helpers shared by the RTL building blocks: packed-vector slicing and a registered adder tree."""
from __future__ import annotations

from amaranth.hdl import Signal, signed, unsigned


def bits_for(n: int) -> int:
    """Unsigned width that holds 0..n."""
    return max(1, int(n).bit_length())


def field(vec, i: int, width: int, is_signed: bool = False):
    """Element i of a packed vector of `width`-bit fields (element 0 in the low bits)."""
    v = vec[i * width:(i + 1) * width]
    return v.as_signed() if is_signed else v


def adder_tree(m, leaves, width: int, is_signed: bool, name: str):
    """Sum `leaves` with one register per tree level (a registered tree reaches 3-5x the Fmax of a combinational one; docs/model.md).

    Returns (sum signal, depth). Latency: depth = ceil(log2(len(leaves))) cycles; throughput: one sum per cycle.
    """
    shape = signed(width) if is_signed else unsigned(width)
    level = list(leaves)
    depth = 0
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            r = Signal(shape, name=f"{name}_l{depth}_{i // 2}")
            m.d.sync += r.eq(level[i] + level[i + 1] if i + 1 < len(level) else level[i])
            nxt.append(r)
        level = nxt
        depth += 1
    if depth == 0:
        r = Signal(shape, name=f"{name}_leaf")
        m.d.comb += r.eq(level[0])
        return r, 0
    return level[0], depth


def tree_depth(n: int) -> int:
    """Levels of a binary tree over n leaves: ceil(log2 n)."""
    return max(0, (int(n) - 1).bit_length())
