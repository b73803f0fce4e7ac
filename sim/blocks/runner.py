"""Build-and-run helper for one block: Amaranth component -> Verilog under build/sim/blocks/<name>/ ->
simulator build (cached by the Verilog's hash, in sim/runner.run_cocotb) -> the cocotb module
sim/blocks/tb_<bench>.py, JUnit XML next to it. WAVES=1 keeps an FST per test in the same folder."""
from __future__ import annotations

import json
import os

from sim.runner import BUILD_SIM, run_cocotb


def block_dir(bench: str, generics: dict, simulator: str) -> str:
    tag = "-".join(f"{k}{v}" for k, v in generics.items())
    return os.path.join(BUILD_SIM, "blocks", f"{bench}-{tag}" + ("" if simulator == "verilator" else f"-{simulator}"))


def run_block(component, bench: str, generics: dict, transactions: int, seed: int = 1,
              simulator: str = "verilator") -> str:
    """Run every cocotb test of sim/blocks/tb_<bench>.py on `component`; raises AssertionError on a failure and
    returns the JUnit XML path."""
    env = {"BLOCK_PARAMS": json.dumps(generics), "BLOCK_SEED": seed, "BLOCK_TRANSACTIONS": transactions}
    return run_cocotb(component, f"{bench}_top", f"sim.blocks.tb_{bench}", block_dir(bench, generics, simulator),
                      env=env, simulator=simulator)
