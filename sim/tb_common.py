"""Shared pieces of the block testbenches (sim/tb_*.py): clock/reset, a cycle-accurate driver step, packing of
lane vectors, and the parameters handed over by sim/test_blocks.py through the environment.

Timing convention: `await bench.cycle(**inputs)` waits for the falling edge, applies the inputs, lets the
combinational logic settle and returns; what is read afterwards is cycle `bench.n` as the next rising edge will
see it (registers from the previous edge, combinational outputs of these inputs). A valid/ready transfer
happens in the cycles where both read high.
"""
from __future__ import annotations

import json
import os

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer


def params() -> dict:
    return json.loads(os.environ["BLOCK_PARAMS"])


def rng(salt: int = 0) -> np.random.Generator:
    return np.random.default_rng(int(os.environ.get("BLOCK_SEED", "1")) * 1000 + salt)


def transactions() -> int:
    return int(os.environ.get("BLOCK_TRANSACTIONS", "1000"))


def pack(values, width: int) -> int:
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & ((1 << width) - 1)) << (i * width)
    return word


def unpack(word: int, count: int, width: int, is_signed: bool = False) -> list[int]:
    out = []
    for i in range(count):
        v = (word >> (i * width)) & ((1 << width) - 1)
        if is_signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def srange(width: int) -> tuple[int, int]:
    """Inclusive range of a signed width."""
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


class Bench:
    def __init__(self, dut):
        self.dut = dut
        self.n = 0

    async def start(self, **idle):
        Clock(self.dut.clk, 10, unit="ns").start()
        self.dut.rst.value = 1
        for _ in range(2):
            await self.cycle(**idle)
        self.dut.rst.value = 0
        self.n = 0

    async def cycle(self, **inputs):
        await FallingEdge(self.dut.clk)
        for name, value in inputs.items():
            getattr(self.dut, name).value = int(value)
        await Timer(1, "ns")
        self.n += 1

    def get(self, name: str) -> int:
        v = getattr(self.dut, name).value
        return v.to_unsigned() if hasattr(v, "to_unsigned") else int(v)
