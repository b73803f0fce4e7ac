"""The building blocks' synthesis figures (docs/blocks.md): each rtl/ block (and the core's LIF, accumulators, scanner and
stream adder, rtl/engine/) at its reference generics through
Yosys for ECP5, with the word-level cells (to show there is no $mul) and the mapped cells.

    python -m tools.synth_blocks     prints the table rows of docs/blocks.md
"""
from __future__ import annotations

import os

from .yosys import cell_counts


def block_cells(verilog_text: str, top: str, work_dir: str) -> dict[str, dict[str, int]]:
    """{"coarse": cells after `synth -run :coarse` (word-level, such as $mul, before techmap),
    "ecp5": cells after synth_ecp5}."""
    return cell_counts(verilog_text, top, work_dir, {"coarse": f"synth -top {top} -run :coarse",
                                                     "ecp5": f"synth_ecp5 -top {top}"})


def reference_blocks():
    """name -> (factory, label): the parametrisations of the synthesis figures in docs/blocks.md (the fast sim
    generics); factories, so that only the blocks actually synthesised get built."""
    from rtl.attention import AttentionUnit
    from rtl.bitserial import BitSerialMac
    from rtl.engine.accumulators import LaneAccumulators
    from rtl.engine.lif import LifLanes
    from rtl.engine.scanner import RowScanner
    from rtl.engine.stream_adder import StreamAdder
    from rtl.maxpool import OrPool
    return {
        "lif": (lambda: LifLanes(4, 4, 14, 14, 14), "engine LifLanes(P=4, T=4, x 14, theta 14, membrane 14)"),
        "accumulators": (lambda: LaneAccumulators(4, 4, 13), "engine LaneAccumulators(P=4, T=4, acc 13)"),
        "scanner": (lambda: RowScanner(32), "engine RowScanner(32)"),
        "maxpool": (lambda: OrPool(7, 6, 4), "OrPool(H=7, W=6, B=4)"),
        "attention": (lambda: AttentionUnit(16, 4), "AttentionUnit(N=16, d=4)"),
        "bitserial": (lambda: BitSerialMac(3, 10, 6, 20, True), "BitSerialMac(P=3, B=10 signed, w 6, acc 20)"),
        "stream_adder": (lambda: StreamAdder(4, 12, 10), "engine StreamAdder(P=4, stream 12, branch 10)"),
    }


if __name__ == "__main__":
    from amaranth.back import verilog
    for name, (make, label) in reference_blocks().items():
        cells = block_cells(verilog.convert(make(), name=f"{name}_top"), f"{name}_top",
                            os.path.join("build", "synth_blocks", name))
        e = cells["ecp5"]
        print(f"| {label} | {e.get('LUT4', 0)} | {e.get('TRELLIS_FF', 0)} | {e.get('CCU2C', 0)} | "
              f"{e.get('MULT18X18D', 0)} | {cells['coarse'].get('$mul', 0)} |", flush=True)
