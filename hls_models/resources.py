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
# iCE40: up to this many bits, or this shallow, Yosys keeps a memory in LUT logic (measured).
LUT_ROM_MAX_BITS = {"ice40": 1024}
SHALLOW_DEPTH = 16
# LUT4 per 16 ROM bits: ECP5 builds wider muxes from PFUMX/L6MUX21 for free, iCE40 spends LUTs on them.
LUT_ROM_LUTS_PER_16_BITS = {"ecp5": 1.0, "ice40": 2.3}
# Yosys's memory_libmap maps a memory without a ram_style to the cheapest of block RAM, distributed RAM (written
# memories only) and soft logic, by the costs its ECP5 library files state (share/lattice/brams_16kd.txt: 128 per
# DP16KD; lutrams_trellis.txt: 4 per TRELLIS_DPR16X4, a 16 x 4 cell) and its per-bit soft-logic costs (1/16 per ROM
# bit, 1 per RAM bit). So a shallow, wide RAM goes to LUTs: the 32-lane digits core's K.V RAM (32 x 768: 384 cells,
# cost 1,536, against 22 DP16KD, 2,816), while the 16-lane one (64 x 384: 1,536 against 11 DP16KD, 1,408) stays in
# block RAM; and the Fashion-MNIST layer table (a 19 x 195 ROM: 232 against 6 DP16KD, 768) is logic.
BRAM_COST = {"ecp5": 128}
LUTRAM_CELL_COST, LUTRAM_CELL = {"ecp5": 4}, (16, 4)
LOGIC_COST_PER_BIT = {"rom": 1 / 16, "ram": 1.0}


def bram_blocks(depth: int, width: int, target: str = "ecp5") -> int:
    """Block RAMs for one memory of depth × width: the cheapest tiling by one aspect ratio."""
    if depth <= 0 or width <= 0:
        return 0
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in BRAM_SHAPES[target])


def lutram_cells(depth: int, width: int) -> int:
    """TRELLIS_DPR16X4 cells for a depth x width distributed RAM."""
    return math.ceil(depth / LUTRAM_CELL[0]) * math.ceil(width / LUTRAM_CELL[1])


def memory_mapping(depth: int, width: int, target: str = "ecp5", read_only: bool = True) -> str:
    """Where Yosys puts a depth x width memory without a ram_style: "bram", "lutram" or "logic"."""
    bits = depth * width
    if target not in BRAM_COST:
        # iCE40 (measured): small or shallow memories in logic, the rest in block RAM
        return "logic" if bits <= LUT_ROM_MAX_BITS[target] or depth <= SHALLOW_DEPTH else "bram"
    costs = {"bram": BRAM_COST[target] * bram_blocks(depth, width, target),
             "logic": LOGIC_COST_PER_BIT["rom" if read_only else "ram"] * bits}
    if not read_only:
        costs["lutram"] = LUTRAM_CELL_COST[target] * lutram_cells(depth, width)
    return min(costs, key=costs.get)


def memory_cost(depth: int, width: int, target: str = "ecp5", read_only: bool = True) -> dict:
    """A memory in block RAM, in distributed RAM, or as LUT logic (ROMs) with its registered read data."""
    bits = depth * width
    where = memory_mapping(depth, width, target, read_only)
    if where == "bram":
        return {"lut": 0, "ff": 0, "bram": bram_blocks(depth, width, target)}
    if read_only:
        return {"lut": math.ceil(LUT_ROM_LUTS_PER_16_BITS[target] * bits / 16), "ff": width, "bram": 0}
    if target == "ecp5":
        # a TRELLIS_DPR16X4 takes two LUT slots; deeper memories add a read mux
        cells = lutram_cells(depth, width)
        return {"lut": 2 * cells + width * (math.ceil(depth / 16) - 1), "ff": width, "bram": 0}
    # iCE40 has no distributed RAM: flip-flops
    return {"lut": width * math.ceil(depth / 4), "ff": depth * width + width, "bram": 0}


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


def shifter(bits: int, positions: int) -> dict:
    """A barrel shifter over `positions` shift amounts: one 2:1 mux level per shift bit."""
    return {"lut": bits * max(1, math.ceil(math.log2(max(2, positions)))), "ff": 0, "bram": 0}


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


def _bits(n: int) -> int:
    return max(1, int(n).bit_length())


def _overflow_check(bits: int) -> dict:
    """`fits(v, w)` as the engine builds it: the bits above the width all equal the sign (an AND and an OR tree)."""
    return {"lut": 2 * math.ceil(bits / 3), "ff": 0, "bram": 0}


# LUT4 per accumulator bit for the addend's source selection and the accumulator's next-value selection (addend:
# shifted weight, KV value, +1, head-Z stream value; next value: bias/0 at the output start, or the sum). Fitted on
# the ECP5 synthesis of the digits core (Yosys 0.70, nextpnr 0.11); everything else is counted from the structure.
ACC_SELECT_LUTS_PER_BIT = 1.0
def _engine_memory(mem: dict, target: str) -> dict:
    """One memory of the engine as gen-rtl describes it (manifest.json -> memories: kind, ram_style, ports and the
    physical parts the generator cut it into). A part in block RAM takes its cheapest tiling; a written memory with
    more read ports than a block RAM offers besides its write port is duplicated by Yosys, once per read port."""
    total = {"lut": 0, "ff": 0, "bram": 0}
    rom = mem["kind"] == "rom"
    copies = mem["read_ports"] if mem["write_ports"] else 1
    # Yosys maps only a ROM's columns that differ between rows (gen-rtl counts the others for one-part ROMs)
    constant = mem.get("constant_columns", 0) if rom and len(mem["parts"]) == 1 else 0
    for depth, width in mem["parts"]:
        width -= constant
        if mem.get("style") == "block":
            cost = {"lut": 0, "ff": 0, "bram": bram_blocks(depth, width, target)}
        else:
            cost = memory_cost(depth, width, target, read_only=rom)
        total = add(total, scale(cost, copies) if cost["bram"] else cost)
    return total


def engine_blocks(manifest: dict, target: str = "ecp5") -> list[dict]:
    """Blocks of the SpikeEngine (rtl/engine/) from its manifest: widths, dims and memory map."""
    P, T = manifest["parameters"]["lanes"], manifest["parameters"]["T"]
    w, dm, mem = manifest["widths"], manifest["dims"], manifest["memory_map"]
    AW, MW, SW, ZW, TW, LW = w["acc"] + 1, w["membrane"], w["stream"], w["z"], w["theta"], w["logit"]
    WB, BW, KW = w["weight"], w["bias"], w["kv"]
    LS = 1 << w.get("lane_shift", 0)      # lane-shift positions (1: a core without lane shifts)
    K = dm["K"]
    maskw = max(P, w["pixel"], ZW)
    la = max(MW + 2 - T, 2)
    mems = manifest["memories"]
    banks = max(1, math.ceil(dm["weight_rows"] / mems["weights"]["bank_rows"]))

    # on ECP5 synthesis moves the registers right behind a RAM read (weight banks, K·V values, stream and activation
    # rows) into the block RAMs' output registers (tools/ecp5_outreg.py)
    in_bram = target == "ecp5"
    bank_registers = {"lut": 0, "ff": 0, "bram": 0} if in_bram else register(banks * WB)
    # timestep 0 holds every layer's sums (the head's too), timesteps 1 .. T - 1 only the spike layers' (narrower)
    ARW = w.get("acc_rest", w["acc"]) + 1

    def per_acc(bits):
        return add(adder(bits),                                   # acc + addend
                   {"lut": round(ACC_SELECT_LUTS_PER_BIT * bits), "ff": 0, "bram": 0},
                   register(bits), register(bits), register(1),   # accumulator, addend, enable
                   register(bits),                                # held copy (its snapshot-or-rotate select:
                                                                  # no LUTs beyond the accumulator's, measured)
                   {"lut": 1, "ff": 0, "bram": 0})                # guard-bit check
    lane = add(per_acc(AW), scale(per_acc(ARW), T - 1),
               bank_registers, mux(WB, banks), register(WB),                # weight bank registers and select
               adder(WB + 1), shifter(WB + LS, LS), register(WB + LS),       # negate, lane shift
               shifter(AW, maskw), register(AW),                             # bit-serial shift
               register((1 if in_bram else 2) * T * KW),                    # KV values, two stages
               mux(la, T + 1), register(la + 2),                           # LIF input (acc[t] or stream value)
               adder(la + T + 2), register(la + T + 2),                    # 2θ - a·2^T, prepared with the input
               adder(MW + 3), comparator(MW), mux(MW, 2), _overflow_check(MW + 3),
               register(MW + T + TW + BW),                                  # membrane, spikes, threshold, bias
               mux(AW, T), adder(max(SW, AW) + 1), register(max(SW, AW) + 1),
               _overflow_check(max(SW, AW) + 1),                            # stream add
               register(2 * T if in_bram else SW + 3 * T),                  # stream, activation and row registers
               register(TW + w.get("lane_shift", 0)))                       # next output's threshold, lane shift
    lanes = scale(lane, P)

    memories = []
    for name, m in sorted(mems.items()):
        if name == "layer_table":
            continue            # counted with the controller
        depth, width = max(1, mem[name]["depth"]), mem[name]["width"]
        memories.append({"name": f"{name} memory ({depth} x {width})", **_engine_memory(m, target)})
    lt_depth, lt_bits = mems["layer_table"]["parts"][0]
    addr = _bits(max(dm["act_rows"], dm["weight_rows"], dm["pixels"], dm["stream_rows"], 2)) + 2
    shw = _bits(maskw - 1)
    # the output loop's and tap walker's counters and the tap positions are as wide as the layer-table fields they
    # count to (rtl/engine/output_loop.py, tap_walker.py)
    field, position = manifest["layer_fields"]["widths"], manifest["layer_fields"]["position_width"]
    counters = [field["Wo"], field["Ho"], field["DP"], field["Gout"], field["Gin"], 2, 2] + [16] * 5
    controller = add(_engine_memory(mems["layer_table"], target), register(lt_bits),
                     *[add(adder(c), scale(register(c), 2)) for c in counters[:4]],  # output loop: current, next
                     # the end side's copy of the output loop (the issue side runs an output ahead): its column, row
                     # and group counters and its parameter and stream rows, current and next
                     *[add(adder(c), scale(register(c), 2)) for c in counters[:2] + counters[3:4]],
                     scale(add(adder(addr), scale(register(addr), 2)), 2),
                     *[add(adder(c), register(c)) for c in counters[4:]],            # other loop counters
                     scale(add(adder(position), scale(register(position), 2)), 2),   # tap positions ix, iy
                     scale(add(adder(addr), register(addr)), 20),      # address registers and their updates
                     scale(comparator(position), 12),                  # in-bounds checks (3 columns, 3 rows, 2 ends)
                     add(adder(maskw), scale(mux(1, 2), maskw * 2), register(maskw)),  # scan mask, lowest set bit
                     register(5 * (T + shw + 3) + 2 * banks),           # event pipeline
                     add(adder(32), register(32)),                      # cycle counter
                     {"lut": 150, "ff": 40, "bram": 0})                 # FSM state and glue
    # Kᵀ·V's token buffer: per token the lanes' non-zero K words and its row offset, the token mask's channel
    # select, the token scanner, the offset select and the K / V row address adds, the V row registers
    N = dm.get("N", 0) if dm.get("d") else 0
    if N:
        controller = add(controller, register(N * (P + addr)), scale(mux(1, P), N), mux(addr, N),
                         add(adder(N), register(N)), register(4 * addr), scale(adder(addr), 2),
                         register(2 * P * T))
    logits = add(register(K * LW), mux(LW * K, 2), mux(LW, K), mux(LW, K), comparator(LW), register(2 * LW))

    blocks = [{"name": f"lanes ({P} x {T} accumulators of {AW} / {ARW} bits, LIF, stream add)", **lanes},
              {"name": "controller (layer table, loop nest, scanner)", **controller},
              {"name": f"logits and argmax ({K} x {LW} bits)", **logits}, *memories]
    out = []
    for b in blocks:
        c = placed({k: b[k] for k in ("lut", "ff", "bram")}, target)
        out.append({"name": b["name"], **{k: int(round(v)) for k, v in c.items()}})
    return out


def core_blocks(manifest: dict, target: str) -> list[dict]:
    # a manifest without one of these is from an older gen-rtl (no estimate: rerunning gen-rtl writes them)
    if {"parameters", "widths", "dims", "memory_map", "memories", "layer_fields"} <= set(manifest):
        return engine_blocks(manifest, target)
    return []
