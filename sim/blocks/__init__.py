"""Block testbenches (cocotb, driver / model / checker) and the pieces they share: parameters handed over by
sim/test_blocks.py through the environment, a cycle-stepping driver, packing of lane vectors, and a generic
valid/ready stream driver with random output stalls.

Timing convention: `await bench.cycle(**inputs)` waits for the falling edge, applies the inputs, lets the logic
settle and returns; what is read afterwards is what the next rising edge (edge number bench.n) will sample.
"""
from __future__ import annotations

import json
import os

import numpy as np


def params() -> dict:
    return json.loads(os.environ["BLOCK_PARAMS"])


def rng(salt: int = 0) -> np.random.Generator:
    return np.random.default_rng(int(os.environ.get("BLOCK_SEED", "1")) * 1000 + salt)


def transactions() -> int:
    return int(os.environ.get("BLOCK_TRANSACTIONS", "1000"))


def srange(bits: int) -> tuple[int, int]:
    """Range of a signed `bits`-bit field."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def pack(values, width: int) -> int:
    """Packed vector of `width`-bit two's-complement fields, element 0 in the low bits."""
    mask = (1 << width) - 1
    out = 0
    for i, v in enumerate(np.ravel(values)):
        out |= (int(v) & mask) << (i * width)
    return out


def unpack(word: int, count: int, width: int, signed: bool = False) -> list[int]:
    mask = (1 << width) - 1
    vals = [(word >> (i * width)) & mask for i in range(count)]
    if signed:
        vals = [v - (1 << width) if v >> (width - 1) else v for v in vals]
    return vals


class Bench:
    def __init__(self, dut):
        self.dut = dut
        self.n = -1

    async def start(self, **idle):
        from cocotb.clock import Clock
        Clock(self.dut.clk, 10, unit="ns").start()
        await self.cycle(rst=1, **idle)
        await self.cycle(rst=1)
        await self.cycle(rst=0)
        self.n = -1

    async def cycle(self, **inputs):
        from cocotb.triggers import FallingEdge, Timer
        await FallingEdge(self.dut.clk)
        for name, value in inputs.items():
            getattr(self.dut, name).value = int(value)
        await Timer(1, unit="ns")
        self.n += 1

    def get(self, name: str) -> int:
        value = getattr(self.dut, name).value
        # cocotb 2: a one-bit port reads as Logic, a vector as LogicArray
        return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


async def stream(bench, items, read_out, n_out, stall_p=0.0, stall_rng=None, valid="in_valid", ready="in_ready",
                 limit=None):
    """Push `items` (dicts of input ports) through a valid/ready input back to back, take outputs through
    out_valid/out_ready (out_ready low with probability stall_p). Returns (outputs, cycles, stalls): cycles from
    the edge taking the first item through the edge handing out the last output, both included."""
    i, outs, first, last, stalls = 0, [], None, None, 0
    limit = limit or 100 * (len(items) + n_out) + 1000
    while len(outs) < n_out or i < len(items):
        assert bench.n < limit, f"the block stopped after {len(outs)} of {n_out} outputs ({i} inputs taken)"
        out_ready = 0 if stall_p and stall_rng.random() < stall_p else 1
        drive = items[i] if i < len(items) else {}
        await bench.cycle(**{valid: int(i < len(items)), "out_ready": out_ready}, **drive)
        if i < len(items) and bench.get(ready):
            first = bench.n if first is None else first
            i += 1
        if bench.get("out_valid"):
            if out_ready:
                outs.append(read_out())
                last = bench.n
            else:
                stalls += 1
    await bench.cycle(**{valid: 0})
    return outs, (last if last is not None else bench.n) - first + 1, stalls
