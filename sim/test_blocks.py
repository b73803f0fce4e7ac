"""pytest entry of the block regression (issue 3): each rtl/blocks component, built once per parametrisation,
streams its seeded random transactions and named edge cases through one simulation (sim/blocks/tb_<bench>.py)
and checks golden results and exp_cycles. JUnit XML per block under build/sim/blocks/; WAVES=1 keeps FSTs.
`--full` (make sim FULL=1) raises the transaction count."""
from __future__ import annotations

import pytest

from sim.blocks.runner import run_block

TRANSACTIONS, FULL_TRANSACTIONS = 1000, 10000


def ids(cases):
    return ["-".join(f"{k}{v}" for k, v in g.items()) for g in cases]


def count(full):
    return FULL_TRANSACTIONS if full else TRANSACTIONS


LIF = [dict(lanes=4, T=4, acc_width=10, theta_width=14), dict(lanes=2, T=8, acc_width=16, theta_width=24)]


@pytest.mark.parametrize("g", LIF, ids=ids(LIF))
def test_lif_array(g, full):
    from rtl.blocks import LifArray
    run_block(LifArray(g["lanes"], g["T"], g["acc_width"], g["theta_width"]), "lif", g, count(full))
