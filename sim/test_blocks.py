"""pytest entry of the block regression: builds each standalone rtl/ block with a few generics, runs its cocotb bench
(sim/tb_<block>.py) under Verilator, JUnit XML under build/sim/<block>-<generics>/. `--full` adds
parametrisations and transactions."""
from __future__ import annotations

import json
import os

import pytest

from sim.runner import BUILD_SIM, run_cocotb

pytestmark = pytest.mark.sim

TRANSACTIONS = 1000
FULL_TRANSACTIONS = 5000


def run_block(component, bench: str, generics: dict, full: bool, seed: int = 1, simulator: str = "verilator"):
    tag = "-".join(f"{k}{v}" for k, v in generics.items())
    build_dir = os.path.join(BUILD_SIM, f"{bench}-{tag}")
    env = {"BLOCK_PARAMS": json.dumps(generics), "BLOCK_SEED": seed,
           "BLOCK_TRANSACTIONS": FULL_TRANSACTIONS if full else TRANSACTIONS}
    return run_cocotb(component, f"{bench}_top", f"tb_{bench}", build_dir, env=env, simulator=simulator)


GENERICS = {}   # test function name -> (fast generics, extra generics under --full)


def pytest_generate_tests(metafunc):
    """The fast parametrisations always; the extra ones only with --full (make sim FULL=1)."""
    if metafunc.function.__name__ in GENERICS:
        fast, extra = GENERICS[metafunc.function.__name__]
        chosen = fast + (extra if metafunc.config.getoption("--full") else [])
        metafunc.parametrize("g", chosen, ids=["-".join(f"{k}{v}" for k, v in g.items()) for g in chosen])


GENERICS["test_maxpool"] = ([dict(height=7, width=6, T=4)], [dict(height=8, width=8, T=2), dict(height=4, width=5, T=8)])


def test_maxpool(g, full):
    from rtl.maxpool import OrPool
    run_block(OrPool(g["height"], g["width"], g["T"]), "maxpool", g, full)


GENERICS["test_attention"] = ([dict(tokens=16, d=4)], [dict(tokens=64, d=8), dict(tokens=9, d=3)])


def test_attention(g, full):
    from rtl.attention import AttentionUnit
    run_block(AttentionUnit(g["tokens"], g["d"]), "attention", g, full)


GENERICS["test_bitserial"] = ([dict(lanes=3, bits=10, signed=1, weight_width=6, acc_width=20, max_values=8)],
                              [dict(lanes=4, bits=8, signed=0, weight_width=8, acc_width=22, max_values=27)])


def test_bitserial(g, full):
    from rtl.bitserial import BitSerialMac
    run_block(BitSerialMac(g["lanes"], g["bits"], g["weight_width"], g["acc_width"], bool(g["signed"])),
              "bitserial", g, full)


def test_maxpool_icarus_cross_check():
    """The OR-pool bench again under Icarus: a second simulator must agree (fails with the install hint if absent).
    The core's own components (rtl/engine/) are tested in tests/test_engine_components.py, and the whole core under
    Icarus in sim/test_engine.py."""
    import shutil
    from sim.runner import ICARUS_HINT
    assert shutil.which("iverilog"), ICARUS_HINT
    from rtl.maxpool import OrPool
    g = dict(height=7, width=6, T=4)
    run_block(OrPool(g["height"], g["width"], g["T"]), "maxpool", g, False, simulator="icarus")
