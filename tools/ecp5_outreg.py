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
FFs. A RAM in the 36-bit mode has one read (port B's clock and enables) on both ports' data pins and one output
register for all 36 bits: its registers move only when all of them qualify, and then REGMODE_A and REGMODE_B both
become "OUTREG" (a half-moved RAM would be a configuration the pseudo-dual-port primitive cannot express). Cycle for
cycle the design is the same (the output register loads on
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


def _width(params, name):
    """An integer parameter of a Yosys JSON cell (written as a binary string), 0 when absent."""
    value = params.get(name, 0)
    return int(value, 2) if isinstance(value, str) else int(value)


def _read_ports(ram):
    """The RAM's read ports as (clocking port letter, output register ports, data pins). In the 36-bit mode
    (DATA_WIDTH_A = 36, how Yosys and nextpnr write the pseudo-dual-port PDPW16KD) one read, clocked and enabled by
    port B, drives both ports' data pins, and its one output register is set by REGMODE_A and REGMODE_B together
    (nextpnr's PDPW16KD conversion writes both from one REGMODE): the halves move together or not at all."""
    if _width(ram["parameters"], "DATA_WIDTH_A") == 36:
        return [("B", PORTS, [f"DO{x}{i}" for x in PORTS for i in range(DATA_BITS)])]
    return [(x, (x,), [f"DO{x}{i}" for i in range(DATA_BITS)]) for x in PORTS]


def _absorb_read_port(ram, read, cells, sinks):
    """Move the registers behind one read port into its output register when they all qualify; returns the bits."""
    params, conn = ram["parameters"], ram["connections"]
    x, registers, pins = read
    if any(params.get(f"REGMODE_{r}", "NOREG").strip() != "NOREG" or not _const(conn.get(f"RST{r}"), "0")
           for r in registers) \
            or params.get(f"CLK{x}MUX", f"CLK{x}").strip() != f"CLK{x}" \
            or params.get(f"OCE{x}MUX", f"OCE{x}").strip() != f"OCE{x}" or not _const(conn.get(f"OCE{x}"), "1"):
        return 0
    clock = conn.get(f"CLK{x}")
    moves, enables = [], set()   # (output pin, FF name); the FFs' enables
    for pin in pins:
        bit = (conn.get(pin) or [None])[0]
        if not isinstance(bit, int) or not sinks[bit]:
            continue
        users = sinks[bit]
        ff = cells.get(users[0][0]) if len(users) == 1 and users[0][1] == "DI" else None
        enable = _output_ff_enable(ff, clock) if ff is not None else None
        if enable is None:
            return 0
        enables.add(enable)
        moves.append((pin, users[0][0]))
    if not moves or len(enables) != 1:
        return 0
    for pin, ff_name in moves:
        conn[pin] = cells.pop(ff_name)["connections"]["Q"]
    for r in registers:
        params[f"REGMODE_{r}"] = "OUTREG"
    polarity, net = enables.pop()
    conn[f"OCE{x}"] = list(net)
    params[f"OCE{x}MUX"] = f"OCE{x}" if polarity == "OCE" else "INV"
    return len(moves)


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
        for read in _read_ports(ram):
            absorbed += _absorb_read_port(ram, read, cells, sinks)
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
