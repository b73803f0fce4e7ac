"""Small helpers shared by the engine's components."""
from __future__ import annotations


def bits(n):
    """Unsigned width that holds 0..n (at least 1)."""
    return max(1, int(n).bit_length())


def fits(value, width):
    """value fits a signed `width`-bit field: all bits from width-1 up are copies of the sign (no comparator)."""
    top = value[width - 1:]
    return (top == 0) | (top == (1 << len(top)) - 1)
