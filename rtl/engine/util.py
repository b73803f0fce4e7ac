"""Small helpers shared by the engine's components."""
from __future__ import annotations


def bits(n):
    """Unsigned width that holds 0..n (at least 1)."""
    return max(1, int(n).bit_length())


def fits(value, width):
    """value fits a signed `width`-bit field: all bits from width-1 up are copies of the sign (no comparator)."""
    top = value[width - 1:]
    return (top == 0) | (top == (1 << len(top)) - 1)


def pack(values, width):
    """Lane values (two's complement) side by side in one word, lane 0 lowest: a ROM row or a RAM word."""
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & ((1 << width) - 1)) << (i * width)
    return word
