"""Analytic resource model: LUT4, FF and block RAM per block and for the whole core, on ECP5 and iCE40.

The model is structural: each hardware block is a sum of primitives whose cost on a 4-input-LUT fabric follows from
the architecture (a carry-chain adder costs one LUT4 per bit: an ECP5 CCU2C is two LUT4 slots for two bits; a
register costs one FF per bit; a 2:1 mux one LUT4 per bit; a block RAM is chosen among the aspect ratios the device
offers). The core's blocks come from its manifest (build/<preset>/rtl/manifest.json, written by gen-rtl).
"""
from __future__ import annotations

import math

# Aspect ratios (depth, width) of one block RAM as Yosys maps a single-port-read ROM/RAM.
BRAM_SHAPES = {
    "ecp5": [(16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)],   # DP16KD, 18 kbit
    "ice40": [(2048, 2), (1024, 4), (512, 8), (256, 16)],                            # SB_RAM40_4K, 4 kbit
}
# Up to this many bits Yosys keeps a ROM in LUT logic (measured: 64x16 and 128x8 go to LUTs, 96x24 to a BRAM).
LUT_ROM_MAX_BITS = {"ecp5": 1024, "ice40": 1024}
# LUT4 per 16 ROM bits: ECP5 builds wider muxes from PFUMX/L6MUX21 for free, iCE40 spends LUTs on them.
LUT_ROM_LUTS_PER_16_BITS = {"ecp5": 1.0, "ice40": 2.3}


def bram_blocks(depth: int, width: int, target: str = "ecp5") -> int:
    """Block RAMs for one memory of depth × width: the cheapest tiling by one aspect ratio."""
    if depth <= 0 or width <= 0:
        return 0
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in BRAM_SHAPES[target])


def memory_cost(depth: int, width: int, target: str = "ecp5", read_only: bool = True) -> dict:
    """A memory either in block RAM, or (small ROMs) as LUT logic with its registered read data."""
    bits = depth * width
    if read_only and bits <= LUT_ROM_MAX_BITS[target]:
        return {"lut": math.ceil(LUT_ROM_LUTS_PER_16_BITS[target] * bits / 16), "ff": width, "bram": 0}
    return {"lut": 0, "ff": 0, "bram": bram_blocks(depth, width, target)}


def adder(bits: int) -> dict:
    """A carry-chain adder/subtractor/comparator: one LUT4 per bit."""
    return {"lut": bits, "ff": 0, "bram": 0}


def comparator(bits: int) -> dict:
    """a >= b (or against a constant) on a carry chain: one LUT4 per bit, like an adder."""
    return adder(bits)


def register(bits: int) -> dict:
    return {"lut": 0, "ff": bits, "bram": 0}


def mux(bits: int, inputs: int) -> dict:
    """An inputs:1 multiplexer of `bits`: a LUT4 is a 2:1 mux with a spare input, PFUMX/L6MUX merge the rest."""
    return {"lut": bits * max(0, inputs - 1), "ff": 0, "bram": 0}


def popcount(bits: int, registered: bool = True) -> dict:
    """An adder tree counting `bits` ones: ~one LUT4 per input bit, a register per tree level when pipelined."""
    levels = max(1, math.ceil(math.log2(max(2, bits))))
    out = math.ceil(math.log2(bits + 1))
    ff = sum(min(out, k + 1) * math.ceil(bits / 2 ** k) for k in range(1, levels + 1)) if registered else 0
    return {"lut": bits, "ff": ff, "bram": 0}


def add(*costs: dict) -> dict:
    total = {"lut": 0, "ff": 0, "bram": 0}
    for c in costs:
        for k in total:
            total[k] += c.get(k, 0)
    return total


def scale(cost: dict, n: int) -> dict:
    return {k: v * n for k, v in cost.items()}


# nextpnr-ecp5 reports more LUT slots (TRELLIS_COMB) than Yosys maps LUT4 + 2·CCU2C: route-through LUTs that
# carry signals into flip-flops which cannot share a slice with their driver. Measured 0.38 per FF on accumulator
# lane arrays (P = 8, 16, 32: 258/677, 514/1349, 1026/2693); iCE40 logic cells already count LUT and FF together.
ROUTE_THROUGH_LUTS_PER_FF = {"ecp5": 0.38, "ice40": 0.0}


def placed(cost: dict, target: str = "ecp5") -> dict:
    """A netlist cost as the placer counts it (LUT slots including route-throughs)."""
    if target == "ice40":
        return {**cost, "lut": max(cost["lut"], cost["ff"])}
    return {**cost, "lut": cost["lut"] + round(ROUTE_THROUGH_LUTS_PER_FF[target] * cost["ff"])}


def estimate_from_manifest(manifest: dict | None, target: str = "ecp5") -> dict | None:
    """Per-block and total estimate of the core described by gen-rtl's manifest; None without a manifest."""
    if not manifest:
        return None
    blocks = core_blocks(manifest, target)
    if not blocks:
        return None
    total = add(*blocks)
    return {"blocks": blocks, **total, "target": target}


def core_blocks(manifest: dict, target: str) -> list[dict]:
    """The core's blocks with their costs (filled in once the core's structure is known)."""
    return []
