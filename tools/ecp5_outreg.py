"""Move a register that sits right behind an ECP5 block RAM into the block RAM's own output register.

A DP16KD read without its output register (REGMODE "NOREG") has a 5.6-5.8 ns clock-to-output (measured on this
core's weight ROM), most of a 10 ns cycle before any routing. Its output register (REGMODE "OUTREG") has a short
one, but Yosys 0.70 never uses it: its ECP5 block-RAM mapping merges one register (the synchronous read) and leaves
a second register in fabric, often placed far from the block. The core registers every weight-ROM bank's output
right away (rtl/engine/memories.BankedRom), so that fabric register is exactly the DP16KD output register.

`absorb_output_registers` rewrites Yosys's JSON netlist before place and route: for each DP16KD port whose used
outputs each drive one TRELLIS_FF and nothing else, and each such FF is a register of the same clock with no reset
that powers up 0, all of them loading on every edge or all on the same enable, it sets REGMODE_<port> to "OUTREG",
connects that enable (or a constant 1) to the port's output clock enable OCE<port> (an active-low enable through
the port's OCE<port>MUX = "INV", as the FF's CEMUX had it), drives the FFs' output nets from the RAM and removes the
FFs. Cycle for cycle the design is the same (the output register loads on
the edges the FFs loaded on, whatever the RAM's own read enable does, and powers up 0, as the FFs did), so the
Verilog that simulation checks is still the design that is placed.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict

PORTS = ("A", "B")
DATA_BITS = 18


def _const(bits, value):
    return bits is None or bits == [value]


def _output_ff_enable(cell, clock):
    """For a TRELLIS_FF of `clock` with no reset that powers up 0: its load enable as (polarity, net list):
    ("OCE", ["1"]) when it loads on every rising edge, ("OCE", CE) or ("INV", CE) for an active-high or active-low
    enable; None for any other cell (a reset, another clock, set)."""
    p, c = cell["parameters"], cell["connections"]
    if not (cell["type"] == "TRELLIS_FF" and c.get("CLK") == clock and p.get("CLKMUX", "CLK").strip() == "CLK"
            and _const(c.get("LSR"), "0") and p.get("REGSET", "RESET").strip() == "RESET"):
        return None
    cemux = p.get("CEMUX", "").strip()
    if cemux == "1" or (cemux == "CE" and _const(c.get("CE"), "1")):
        return ("OCE", ("1",))
    if cemux in ("CE", "INV") and c.get("CE"):
        return ("OCE" if cemux == "CE" else "INV", tuple(c["CE"]))
    return None


def absorb_output_registers(module: dict) -> int:
    """Rewrite one Yosys JSON module in place (see the module docstring); returns how many FFs were absorbed."""
    cells = module["cells"]
    sinks = defaultdict(list)            # net bit -> [(cell name, port)] of every input it feeds
    for name, cell in cells.items():
        dirs = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            if dirs.get(port, "input") != "output":
                for b in bits:
                    if isinstance(b, int):
                        sinks[b].append((name, port))
    for port in module.get("ports", {}).values():
        if port["direction"] != "input":
            for b in port["bits"]:
                if isinstance(b, int):
                    sinks[b].append((None, "top-level port"))

    absorbed = 0
    for ram in [c for c in cells.values() if c["type"] == "DP16KD"]:
        params, conn = ram["parameters"], ram["connections"]
        for x in PORTS:
            if params.get(f"REGMODE_{x}", "NOREG").strip() != "NOREG" \
                    or params.get(f"CLK{x}MUX", f"CLK{x}").strip() != f"CLK{x}" \
                    or params.get(f"OCE{x}MUX", f"OCE{x}").strip() != f"OCE{x}" \
                    or not _const(conn.get(f"OCE{x}"), "1") or not _const(conn.get(f"RST{x}"), "0"):
                continue
            clock = conn.get(f"CLK{x}")
            moves, enables = [], set()   # (output pin, FF name); the FFs' enables
            for i in range(DATA_BITS):
                pin = f"DO{x}{i}"
                bit = (conn.get(pin) or [None])[0]
                if not isinstance(bit, int) or not sinks[bit]:
                    continue
                users = sinks[bit]
                ff = cells.get(users[0][0]) if len(users) == 1 and users[0][1] == "DI" else None
                enable = _output_ff_enable(ff, clock) if ff is not None else None
                if enable is None:
                    moves = []
                    break
                enables.add(enable)
                moves.append((pin, users[0][0]))
            if not moves or len(enables) != 1:
                continue
            for pin, ff_name in moves:
                conn[pin] = cells.pop(ff_name)["connections"]["Q"]
            params[f"REGMODE_{x}"] = "OUTREG"
            polarity, net = enables.pop()
            conn[f"OCE{x}"] = list(net)
            params[f"OCE{x}MUX"] = f"OCE{x}" if polarity == "OCE" else "INV"
            absorbed += len(moves)
    return absorbed


def absorb_in_file(netlist_path: str, top: str) -> int:
    """absorb_output_registers on `top` of a Yosys JSON file, rewritten in place only when something changed."""
    with open(netlist_path) as f:
        netlist = json.load(f)
    module = netlist["modules"].get(top) or max(netlist["modules"].values(), key=lambda m: len(m.get("cells", {})))
    absorbed = absorb_output_registers(module)
    if absorbed:
        tmp = netlist_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(netlist, f)
        os.replace(tmp, netlist_path)
    return absorbed
