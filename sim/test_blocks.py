"""pytest entry of the block regression: builds each rtl/ block with a few generics, runs its cocotb bench
(sim/tb_<block>.py) under Verilator, JUnit XML under build/sim/<block>-<generics>/. `--full` adds
parametrisations and transactions."""
from __future__ import annotations

import json
import os

import pytest

from sim.runner import BUILD_SIM, run_cocotb

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


GENERICS["test_lif"] = ([dict(lanes=4, T=4, acc_width=10, theta_width=14)],
                        [dict(lanes=2, T=2, acc_width=6, theta_width=8), dict(lanes=3, T=8, acc_width=16, theta_width=24)])


def test_lif(g, full):
    from rtl.lif import LifLanes
    run_block(LifLanes(g["lanes"], g["T"], g["acc_width"], g["theta_width"]), "lif", g, full)


GENERICS["test_accumulator"] = ([dict(lanes=4, T=4, weight_width=8, acc_width=13, max_events=12)],
                                [dict(lanes=2, T=8, weight_width=4, acc_width=9, max_events=20)])


def test_accumulator(g, full):
    from rtl.accumulator import AccumulatorLanes
    run_block(AccumulatorLanes(g["lanes"], g["T"], g["weight_width"], g["acc_width"]), "accumulator", g, full)


GENERICS["test_scanner"] = ([dict(words=8, T=4)], [dict(words=16, T=2), dict(words=3, T=8)])


def test_scanner(g, full):
    from rtl.scanner import SpikeScanner
    run_block(SpikeScanner(g["words"], g["T"]), "scanner", g, full)
