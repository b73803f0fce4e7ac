"""flow.py synth on small Amaranth designs generated here (the whole core is synthesised by `make bench`)."""
import hashlib
import json
import os
import statistics
import sys

import pytest
from amaranth import Cat, Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from flowerrors import FlowError
from tools import synth


class RomAccumulator(wiring.Component):
    """A 20-bit accumulator adding ROM words: one block RAM, 20 flip-flops, no multiplier; 37 port bits, so it
    fits an SG48 package too."""
    x: In(8)
    en: In(1)
    addr: In(6)
    y: Out(20)

    def __init__(self, multiply=None):
        self.multiply = multiply
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = Memory(shape=16, depth=1024, init=[(i * 37) % 65536 for i in range(1024)])
        port = rom.read_port()
        acc = Signal(20)
        m.d.comb += port.addr.eq(self.addr)
        term = port.data
        if self.multiply == "data":
            term = port.data * self.x
        elif self.multiply == "const":
            term = port.data * 12345
        with m.If(self.en):
            m.d.sync += acc.eq(acc + term + self.x)
        m.d.comb += self.y.eq(acc)
        return m


class WidePorts(wiring.Component):
    """Registers 64 input bits to 64 outputs (plus clk and rst: 130 pins), more than an SG48 package has."""
    a: In(64)
    y: Out(64)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.y.eq(self.a)
        return m


def roms_read_every_cycle(m, addr, names, width, depth, stride):
    """One `depth` x `width` ROM per name (distinct contents), all read at `addr`; {name: read data}."""
    data = {}
    for i, name in enumerate(names):
        m.submodules[name] = rom = Memory(shape=width, depth=depth,
                                          init=[(a * (stride + 2 * i)) % (1 << width) for a in range(depth)])
        port = rom.read_port()
        m.d.comb += port.addr.eq(addr)
        data[name] = port.data
    return data


class RomRegisters(wiring.Component):
    """Five 1024 x 8 ROMs read every cycle: `plain` behind a plain register (the block RAM output register's
    job), `gated` behind a register with an enable (the output register's clock enable), `held` behind one whose
    enable is active low, `shared` behind a plain register whose input also feeds logic, `reset` behind a register
    with a synchronous reset."""
    addr: In(10)
    en: In(1)
    plain: Out(8)
    gated: Out(8)
    shared: Out(9)
    reset: Out(8)
    held: Out(8)

    def elaborate(self, platform):
        m = Module()
        data = roms_read_every_cycle(m, self.addr, ("plain", "gated", "shared", "reset", "held"), 8, 1024, 7)
        q = {name: Signal(8, name=f"{name}_q", reset_less=name != "reset") for name in data}
        m.d.sync += [q["plain"].eq(data["plain"]), q["shared"].eq(data["shared"]), q["reset"].eq(data["reset"])]
        with m.If(self.en):
            m.d.sync += q["gated"].eq(data["gated"])
        with m.If(~self.en):
            m.d.sync += q["held"].eq(data["held"])
        m.d.comb += [self.plain.eq(q["plain"]), self.gated.eq(q["gated"]), self.reset.eq(q["reset"]),
                     self.held.eq(q["held"]),
                     self.shared.eq(q["shared"] + data["shared"])]
        return m


class WideRomRegisters(wiring.Component):
    """Two 512 x 36 ROMs (the DP16KD's 36-bit mode: one read on both ports' data pins) read every cycle into plain
    registers: `wide`'s register is the block RAM output register's job for all 36 bits; `tapped`'s RAM bit 0 also
    drives an output of its own, so its 36-bit output register cannot take the register (neither half moves)."""
    addr: In(9)
    wide: Out(36)
    tapped: Out(37)

    def elaborate(self, platform):
        m = Module()
        data = roms_read_every_cycle(m, self.addr, ("wide", "tapped"), 36, 512, 0x9E3779B1)
        q = {name: Signal(36, name=f"{name}_q", reset_less=True) for name in data}
        m.d.sync += [q[name].eq(data[name]) for name in data]
        m.d.comb += [self.wide.eq(q["wide"]), self.tapped.eq(Cat(q["tapped"], data["tapped"][0]))]
        return m


def write_design(tmp_path, component, name):
    path = tmp_path / f"{name}.v"
    path.write_text(verilog.convert(component, name=name))
    return str(path)


@pytest.mark.unit
def test_parse_data_ops_tells_data_from_constant_operands():
    dump = """
  attribute \\src "rtl/x.py:10"
  cell $mul $mul$1
    parameter \\A_WIDTH 6
    connect \\A \\addr
    connect \\B 2'11
    connect \\Y \\$1
  end
  attribute \\src "rtl/x.py:20"
  cell $mul $mul$2
    connect \\A \\a [3:0]
    connect \\B { \\b 1'0 }
    connect \\Y \\$2
  end
"""
    cells = synth.parse_data_ops(dump)
    assert [(c["src"], c["on_data"]) for c in cells] == [("rtl/x.py:10", False), ("rtl/x.py:20", True)]


def _step(kind, delay, frm, to):
    return {"type": kind, "delay": delay, "from": {"cell": frm, "port": "Q"}, "to": {"cell": to, "port": "D"}}


@pytest.mark.unit
def test_critical_path_is_the_worst_clocked_path_not_a_pin_to_pin_path():
    clk = "posedge $glbnet$clk"
    report = {"critical_paths": [
        {"from": clk, "to": clk, "path": [_step("clk-to-q", 5.0, "ram", "ram"), _step("routing", 3.0, "ram", "lut"),
                                          _step("logic", 0.5, "lut", "lut"), _step("routing", 0.25, "lut", "ff"),
                                          _step("setup", 0.0, "ff", "ff")]},
        {"from": "<async>", "to": "<async>", "path": [_step("source", 0.0, "pin_a", "pin_a"),
                                                      _step("routing", 17.0, "pin_a", "pin_b")]},
        {"from": clk, "to": clk, "path": [_step("clk-to-q", 0.5, "r1", "r1"), _step("routing", 2.0, "r1", "r2")]},
    ]}
    path = synth.critical_path(report)
    assert (path["from"], path["to"]) == ("ram", "ff")
    assert path["delay_ns"] == pytest.approx(8.75)
    assert path["routing_ns"] == pytest.approx(3.25) and path["logic_ns"] == pytest.approx(5.5)
    assert path["logic_levels"] == 1
    only_async = {"critical_paths": report["critical_paths"][1:2]}
    assert synth.critical_path(only_async)["from"] == "pin_a"


@pytest.mark.unit
def test_a_tool_failure_names_the_error_line_of_the_tools_own_log(tmp_path):
    # Yosys with -q and -l: the captured output ends with warnings, the ERROR line is only in its own log
    (tmp_path / "yosys.out").write_text("Warning: Regarding the user-specified fsm_encoding attribute\n"
                                        "    Initialization value on FSM state register is ignored.\n")
    (tmp_path / "yosys.log").write_text("7.43.15.7. Executing ABC_OPS_REINTEGRATE pass\n"
                                        "ERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed\n")
    assert synth._log_error(str(tmp_path / "yosys.out"), str(tmp_path)).startswith("ERROR: Assert")
    assert synth._log_error(str(tmp_path / "yosys.out")).startswith("Initialization value")   # no tool log: last line
    (tmp_path / "yosys.out").write_text("ERROR: Module `top' not found!\n")
    assert synth._log_error(str(tmp_path / "yosys.out"), str(tmp_path)) == "ERROR: Module `top' not found!"


@pytest.mark.unit
@pytest.mark.parametrize("error", ["ERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed in rtlil.cc:3091.",
                                   "ERROR: Assert `wire' failed in /y/passes/techmap/abc_ops_reintegrate.cc:596."])
def test_yosys_abc9_assertion_is_one_sentence_with_the_way_round(tmp_path, error):
    # a stand-in tool that fails the way Yosys 0.70 does: the assertion only in its own -l log
    tool = "import sys; open('yosys.log', 'w').write(sys.argv[1] + '\\n'); sys.exit(1)"
    with pytest.raises(synth.Abc9Assertion) as err:
        synth._run([sys.executable, "-c", tool, error], str(tmp_path / "yosys.out"),
                   "Yosys synthesis", str(tmp_path), lambda msg: None)
    text = str(err.value)
    assert "ABC9" in text and "--lanes" in text and error in text and "\n" not in text


@pytest.mark.unit
def test_an_abc9_assertion_is_told_from_other_yosys_errors(tmp_path):
    """Any internal assertion while ABC9's passes run is the ABC9 failure (the board top hit a third one); the same
    assertion in another pass, or another error, is not."""
    log = tmp_path / "top.rpt"
    err = "ERROR: Assert `count_id(wire->name) == 0' failed in /y/kernel/rtlil.cc:2872."
    log.write_text("3.46.18.7. Executing ABC_OPS_REINTEGRATE pass (reintegrate ABC mapped design into module).\n"
                   "<suppressed ~61546 debug messages>\n" + err + "\n")
    assert synth.abc9_asserted(err, str(log))
    log.write_text("3.12. Executing OPT_CLEAN pass (remove unused cells and wires).\n" + err + "\n")
    assert not synth.abc9_asserted(err, str(log))
    assert not synth.abc9_asserted("ERROR: Module `top' not found!", str(log))
    assert not synth.abc9_asserted(err)      # no tool log to tell where it stopped
    assert synth.abc9_asserted("ERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed in rtlil.cc:3091.")


@pytest.mark.unit
def test_conflicting_drivers_are_read_from_the_last_check_pass(tmp_path):
    """Yosys 0.70's ABC9 returned a netlist with four addend bits each driven by two flip-flops (the 8-lane digits
    core, 2026-12-06): only the last CHECK pass's report counts (an earlier check may see transient wires)."""
    log = tmp_path / "yosys.log"
    assert synth.conflicting_drivers(str(log)) == []                  # no log
    head = ("7. Executing CHECK pass (checking for obvious problems).\n"
            "Warning: multiple conflicting drivers for top.\\early [0]:\n"
            "8. Executing SYNTH_LATTICE pass.\n")
    check = ("12. Executing CHECK pass (checking for obvious problems).\nChecking module top...\n"
             "Warning: multiple conflicting drivers for top.\\acc.addend [6]:\n"
             "    port Q[0] of cell acc.addend_TRELLIS_FF_Q_13 (TRELLIS_FF)\n"
             "    port Q[0] of cell acc.addend_TRELLIS_FF_Q (TRELLIS_FF)\n"
             "Warning: multiple conflicting drivers for top.\\acc.addend [7]:\n"
             "Found and reported 2 problems.\n\n13. Executing JSON backend.\n"
             "Warning: multiple conflicting drivers for top.\\late [0]:\n")
    log.write_text(head + check)
    assert synth.conflicting_drivers(str(log)) == ["top.\\acc.addend [6]", "top.\\acc.addend [7]"]
    log.write_text(head + "12. Executing CHECK pass (checking for obvious problems).\nFound and reported 0 problems.\n")
    assert synth.conflicting_drivers(str(log)) == []


@pytest.mark.synth
def test_ecp5_reports_resources_fmax_and_keeps_logs(tmp_path):
    v = write_design(tmp_path, RomAccumulator(), "rom_acc")
    out = tmp_path / "ecp5"
    messages = []
    report = synth.synthesise(v, "rom_acc", "ecp5", seeds=2, out_dir=str(out), progress=messages.append)
    assert report["status"] == "ok"
    assert report["ff"] == 20                       # the accumulator register
    assert report["bram"] == 1                      # 1024 x 16 bits fit one DP16KD
    assert report["dsp"] == 0
    assert 20 <= report["lut"] <= 200               # a 20-bit adder is ~10 CCU2C (2 LUT4 each) plus glue
    assert len(report["fmax_per_seed"]) == 2 and all(f > 30 for f in report["fmax_per_seed"])
    assert report["fmax_mhz"] == pytest.approx(statistics.median(report["fmax_per_seed"]), abs=0.01)
    assert report["critical_path"]["delay_ns"] == pytest.approx(1000 / min(report["fmax_per_seed"]), rel=0.05)
    assert "Yosys" in report["tool_versions"]["yosys"] and "nextpnr" in report["tool_versions"]["nextpnr"]
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    import hashlib
    assert report["verilog_sha256"] == hashlib.sha256(open(v, "rb").read()).hexdigest()   # what it was made from
    assert oct((out / "report.json").stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    for log in ("yosys.log", "seed1/nextpnr.log", "seed2/nextpnr.log", "seed2/nextpnr_report.json"):
        assert (out / log).stat().st_size > 0, log

    # A rerun with the same inputs reuses every finished step and writes the same report, byte for byte.
    first = (out / "report.json").read_bytes()
    messages.clear()
    synth.synthesise(v, "rom_acc", "ecp5", seeds=2, out_dir=str(out), progress=messages.append)
    assert sum("reusing" in m for m in messages) == 3
    assert (out / "report.json").read_bytes() == first

    # Seeds run side by side (--jobs 2) give the same per-seed results as one after the other.
    parallel = synth.synthesise(v, "rom_acc", "ecp5", seeds=2, out_dir=str(tmp_path / "jobs2"),
                                progress=lambda m: None, jobs=2)
    assert parallel["fmax_per_seed"] == report["fmax_per_seed"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _stall_seeds(monkeypatch, stalled):
    """Make nextpnr's run for the given seeds a process that never finishes in time (a router that does not
    converge); the real _run, with its time limit, still runs it. Returns the seeds actually started."""
    real_run, started = synth._run, []

    def run(cmd, log_path, what, cwd, progress, limit_s=None):
        if "--seed" in cmd:
            seed = int(cmd[cmd.index("--seed") + 1])
            started.append(seed)
            if seed in stalled:
                # a router that stops converging: its progress rows in the log (nextpnr's format), then no end
                rows = "".join(f"Info: {i:10d} |  {i // 4:7d}  {i:9d} |  400   600 |  {left:8d}|  20.00  {t:9.2f}|\n"
                               for i, left, t in ((143000, 2607, 566.54), (144000, 2585, 587.53)))
                cmd = [sys.executable, "-c", f"import time; open('nextpnr.log', 'w').write({rows!r}); "
                       "time.sleep(120)"]
        return real_run(cmd, log_path, what, cwd, progress, limit_s)
    monkeypatch.setattr(synth, "_run", run)
    return started


@pytest.mark.synth
def test_a_seed_past_the_timeout_is_replaced_by_the_next_seed(tmp_path, monkeypatch):
    v = write_design(tmp_path, RomAccumulator(), "rom_acc")
    started = _stall_seeds(monkeypatch, stalled={2})
    messages = []
    report = synth.synthesise(v, "rom_acc", "ecp5", seeds=2, out_dir=str(tmp_path / "out"),
                              progress=messages.append, seed_timeout_s=20)
    assert started == [1, 2, 3]
    assert report["seeds_used"] == [1, 3] and report["seeds_timed_out"] == [2]
    assert len(report["fmax_per_seed"]) == 2 and all(f > 30 for f in report["fmax_per_seed"])
    assert any("seed 2) was stopped after" in m and "router1 still had 2,585 arcs to route after 588 s" in m
               for m in messages), messages
    assert synth.seed_summary(report).endswith("(seed 3); seed 2 timed out and was replaced")

    # A rerun under the same limit neither retries the stalled seed nor reruns the finished ones.
    started.clear()
    again = synth.synthesise(v, "rom_acc", "ecp5", seeds=2, out_dir=str(tmp_path / "out"),
                             progress=lambda m: None, seed_timeout_s=20)
    assert started == [] and again == report


# rows of router1's table as nextpnr-ecp5 0.11.1 wrote them for a 16-lane digits seed that did not converge
ROUTER1_LOG = """Info: Routing 80108 arcs.
Info:            |   (re-)routed arcs  |   delta    | remaining|       time spent     |
Info:    IterCnt |  w/ripup   wo/ripup |  w/r  wo/r |      arcs| batch(sec) total(sec)|
Info:       1000 |       93        906 |   93   906 |     79306|       1.86       1.86|
Info:     155000 |    39211     112536 |  494   505 |      1130|      39.21     994.98|
"""


@pytest.mark.unit
def test_router_progress_reads_router1s_last_row():
    assert synth.router_progress(ROUTER1_LOG) == (1130, 994.98)
    assert synth.router_progress(ROUTER1_LOG.rsplit("Info:     155000", 1)[0]) == (79306, 1.86)
    # before routing, or another router's log: nothing to report
    assert synth.router_progress("Info: Running placer...\nInfo: HeAP Placer Time: 40.66s\n") is None


@pytest.mark.unit
def test_a_timed_out_seed_is_replaced_on_the_worker_it_frees():
    """Seed 2 times out while seed 3 is still routing: seed 4 starts at once on the freed worker, not after seed 3
    (rounds left one of the two cores idle); the seeds tried and used are those of a one-at-a-time run."""
    import threading
    import time
    events, lock, seed4_started = [], threading.Lock(), threading.Event()

    def pnr(seed):
        with lock:
            events.append(("start", seed))
        if seed == 2:
            time.sleep(0.05)
            result = None                                   # past its time limit
        elif seed == 3:
            seed4_started.wait(timeout=5)                   # finishes only once seed 4 runs beside it
            result = "seed3.json"
        else:
            if seed == 4:
                seed4_started.set()
            result = f"seed{seed}.json"
        with lock:
            events.append(("end", seed))
        return result

    finished, timed_out = synth.schedule_seeds(pnr, seeds=3, jobs=2)
    assert finished == {1: "seed1.json", 3: "seed3.json", 4: "seed4.json"} and timed_out == [2]
    assert events.index(("start", 4)) < events.index(("end", 3)), events
    assert [e for e in events if e[0] == "start"] == [("start", n) for n in (1, 2, 3, 4)]

    # one at a time, and by rounds (a Dask cluster), the same seeds are tried and used
    serial = []
    assert synth.schedule_seeds(lambda n: serial.append(n) or (None if n == 2 else f"seed{n}.json"), 3, 1) == \
        (finished, timed_out) and serial == [1, 2, 3, 4]
    rounds = []

    def run_round(numbers):
        rounds.append(numbers)
        return [None if n == 2 else f"seed{n}.json" for n in numbers]
    assert synth.seeds_in_rounds(run_round, 3) == (finished, timed_out) and rounds == [[1, 2, 3], [4]]


@pytest.mark.synth
def test_no_seed_finishing_in_time_fails_with_the_fix(tmp_path, monkeypatch):
    v = write_design(tmp_path, RomAccumulator(), "rom_acc")
    started = _stall_seeds(monkeypatch, stalled={1, 2, 3, 4})
    with pytest.raises(FlowError, match=r"only 0 of 2 place-and-route seeds finished.*raise --seed-timeout"):
        synth.synthesise(v, "rom_acc", "ecp5", seeds=2, out_dir=str(tmp_path / "out"), progress=lambda m: None,
                         seed_timeout_s=1)
    assert started == [1, 2, 3, 4]      # the two seeds and at most two replacements


@pytest.mark.synth
def test_multiplier_on_data_fails_naming_its_source(tmp_path):
    v = write_design(tmp_path, RomAccumulator(multiply="data"), "mul_acc")
    with pytest.raises(FlowError, match=r"multiplies data.*test_synth_flow\.py"):
        synth.synthesise(v, "mul_acc", "ecp5", seeds=1, out_dir=str(tmp_path / "out"), progress=lambda m: None)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["status"] == "failed: multiplier"


@pytest.mark.synth
def test_constant_multiplier_inferred_as_dsp_fails(tmp_path):
    v = write_design(tmp_path, RomAccumulator(multiply="const"), "cmul_acc")
    with pytest.raises(FlowError, match=r"DSP cell.*MULT18X18D"):
        synth.synthesise(v, "cmul_acc", "ecp5", seeds=1, out_dir=str(tmp_path / "out"), progress=lambda m: None)


@pytest.mark.synth
def test_ice40_too_many_pins_says_it_does_not_fit(tmp_path):
    v = write_design(tmp_path, WidePorts(), "wide")
    with pytest.raises(FlowError, match=r"does not fit the iCE40 UP5K.*130 top-level port bits"):
        synth.synthesise(v, "wide", "ice40", seeds=1, out_dir=str(tmp_path / "out"), progress=lambda m: None)


@pytest.mark.synth
def test_ice40_small_design_places(tmp_path):
    v = write_design(tmp_path, RomAccumulator(), "rom_acc")
    report = synth.synthesise(v, "rom_acc", "ice40", seeds=1, out_dir=str(tmp_path / "ice40"), progress=lambda m: None)
    assert report["dsp"] == 0 and report["ff"] == 20
    assert report["bram"] == 4                      # SB_RAM40_4K is 256 x 16: 1024 words need four
    assert report["fmax_mhz"] > 10


@pytest.mark.unit
def test_cli_missing_core_names_the_fix(tmp_path):
    import flow
    rc = flow.main(["synth", "--build", str(tmp_path), "--preset", "nothing"])
    assert rc == 2


@pytest.mark.unit
def test_cli_user_errors(tmp_path, capsys):
    import flow
    v = write_design(tmp_path, RomAccumulator(), "rom_acc")
    assert flow.main(["synth", "--verilog", v, "--top", "rom_acc", "--seeds", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--seeds 0" in err and err.count("\n") == 1


@pytest.mark.synth
def test_a_plain_register_behind_a_block_ram_becomes_its_output_register(tmp_path):
    v = write_design(tmp_path, RomRegisters(), "rom_regs")
    report = synth.synthesise(v, "rom_regs", "ecp5", seeds=1, out_dir=str(tmp_path / "ecp5"), progress=lambda m: None)
    assert report["status"] == "ok" and report["bram"] == 5
    # `plain`, `gated` and `held` qualify; `shared`'s RAM output also feeds the adder, `reset`'s register has a reset
    assert report["bram_outreg_bits"] == 24
    assert report["ff"] == 16
    netlist = json.loads((tmp_path / "ecp5" / "netlist.json").read_text())
    module = netlist["modules"]["rom_regs"]
    rams = {name.split(".")[0].split("$")[0]: c for name, c in module["cells"].items() if c["type"] == "DP16KD"}
    moved = {n: x for n, c in rams.items() for x in "AB" if c["parameters"].get(f"REGMODE_{x}") == "OUTREG"}
    assert sorted(moved) == ["gated", "held", "plain"], moved
    # the gated register's enable drives the output register's clock enable, the held one's through the port's
    # inverting OCE multiplexer; the plain one loads every edge
    en = module["ports"]["en"]["bits"]
    x = moved["gated"]
    assert rams["gated"]["connections"][f"OCE{x}"] == en and rams["gated"]["parameters"][f"OCE{x}MUX"] == f"OCE{x}"
    x = moved["held"]
    assert rams["held"]["connections"][f"OCE{x}"] == en and rams["held"]["parameters"][f"OCE{x}MUX"] == "INV"
    assert rams["plain"]["connections"][f"OCE{moved['plain']}"] == ["1"]
    # a second pass finds nothing left to move
    from tools.ecp5_outreg import absorb_output_registers
    assert absorb_output_registers(netlist["modules"]["rom_regs"]) == 0


@pytest.mark.synth
def test_a_36_bit_read_moves_into_its_output_register_whole_or_not_at_all(tmp_path):
    v = write_design(tmp_path, WideRomRegisters(), "wide_regs")
    report = synth.synthesise(v, "wide_regs", "ecp5", seeds=1, out_dir=str(tmp_path / "ecp5"), progress=lambda m: None)
    assert report["status"] == "ok" and report["bram"] == 2
    assert report["bram_outreg_bits"] == 36 and report["ff"] == 36
    module = json.loads((tmp_path / "ecp5" / "netlist.json").read_text())["modules"]["wide_regs"]
    rams = {name.split(".")[0].split("$")[0]: c for name, c in module["cells"].items() if c["type"] == "DP16KD"}
    modes = {n: (c["parameters"]["REGMODE_A"], c["parameters"]["REGMODE_B"]) for n, c in rams.items()}
    assert modes == {"wide": ("OUTREG", "OUTREG"), "tapped": ("NOREG", "NOREG")}, modes
    assert rams["wide"]["connections"]["OCEB"] == ["1"]
    # every output bit of `wide` now comes straight from the RAM's data pins
    pins = {b for p, bits in rams["wide"]["connections"].items() if p.startswith("DO") for b in bits}
    assert set(module["ports"]["wide"]["bits"]) <= pins


def synthesise_with_abc9_failing_once(tmp_path, monkeypatch, fail):
    """Synthesise RomAccumulator with `fail(cwd)` called after the first Yosys run's script is written (before the
    run when it raises, after it otherwise); returns (Yosys scripts in order, report, progress messages)."""
    real_run, scripts = synth._run, []

    def run(cmd, log_path, what, cwd, progress, limit_s=None):
        if what != "Yosys synthesis":
            return real_run(cmd, log_path, what, cwd, progress, limit_s)
        scripts.append(open(os.path.join(cwd, "synth.ys")).read())
        result = real_run(cmd, log_path, what, cwd, progress, limit_s)
        if len(scripts) == 1:
            fail(cwd)
        return result
    monkeypatch.setattr(synth, "_run", run)
    v = write_design(tmp_path, RomAccumulator(), "rom_acc")
    messages = []
    report = synth.synthesise(v, "rom_acc", "ecp5", seeds=1, out_dir=str(tmp_path / "ecp5"), progress=messages.append)
    assert len(scripts) == 2 and "abc -lut 4" in scripts[1] and "abc -lut" not in scripts[0]
    assert report["status"] == "ok" and report["lut_mapper"].startswith("abc (-noabc9")
    return scripts, report, messages


@pytest.mark.synth
def test_when_abc9_asserts_yosys_maps_again_with_the_classic_abc(tmp_path, monkeypatch):
    """Yosys 0.70's ABC9 assertion (docs/synth.md) is made to happen on the first Yosys run; the flow then
    synthesises with the classic ABC LUT mapper, and the design still places, with the same block RAM."""
    def assertion(cwd):
        raise synth.Abc9Assertion("Yosys synthesis hit Yosys 0.70's internal assertion (stand-in)")
    _, report, messages = synthesise_with_abc9_failing_once(tmp_path, monkeypatch, assertion)
    assert report["bram"] == 1 and report["ff"] == 20 and report["dsp"] == 0
    assert any("internal assertion" in m and "classic ABC" in m for m in messages)


@pytest.mark.synth
def test_a_netlist_with_conflicting_drivers_is_mapped_again_with_the_classic_abc(tmp_path, monkeypatch):
    """ABC9's silent failure (docs/synth.md, 'Known tool failures'): the first Yosys run's last CHECK pass reports
    a multiply driven net; the flow maps again with the classic ABC instead of handing nextpnr that netlist."""
    def conflicts(cwd):
        with open(os.path.join(cwd, "yosys.log"), "a") as f:
            f.write("99. Executing CHECK pass (checking for obvious problems).\n"
                    "Warning: multiple conflicting drivers for rom_acc.\\acc [3]:\n")
    _, report, messages = synthesise_with_abc9_failing_once(tmp_path, monkeypatch, conflicts)
    assert report["bram"] == 1 and report["dsp"] == 0
    assert any("multiply driven" in m and "classic ABC" in m for m in messages)


@pytest.mark.synth
def test_router_option_reaches_nextpnr_and_the_report(tmp_path, monkeypatch):
    v = write_design(tmp_path, RomAccumulator(), "rom_acc")
    real_run, commands = synth._run, []

    def run(cmd, log_path, what, cwd, progress, limit_s=None):
        commands.append(cmd)
        return real_run(cmd, log_path, what, cwd, progress, limit_s)
    monkeypatch.setattr(synth, "_run", run)
    report = synth.synthesise(v, "rom_acc", "ecp5", seeds=1, out_dir=str(tmp_path / "out"), progress=lambda m: None,
                              router="router2")
    pnr = [c for c in commands if "--seed" in c]
    assert len(pnr) == 1 and pnr[0][pnr[0].index("--router") + 1] == "router2"
    assert report["router"] == "router2" and report["fmax_mhz"] > 30

    # the default router is another place-and-route run (its own key), not the router2 seed reused
    commands.clear()
    default = synth.synthesise(v, "rom_acc", "ecp5", seeds=1, out_dir=str(tmp_path / "out"), progress=lambda m: None)
    pnr = [c for c in commands if "--seed" in c]
    assert len(pnr) == 1 and "--router" not in pnr[0] and default["router"] == "router1"


@pytest.mark.unit
def test_unknown_router_is_refused_with_the_choices(tmp_path):
    v = tmp_path / "a.v"
    v.write_text("module a(input clk); endmodule\n")
    with pytest.raises(FlowError, match=r"unknown router 'router3'; choose one of router1, router2"):
        synth.synthesise(str(v), "a", seeds=1, out_dir=str(tmp_path / "o"), router="router3")


# Amaranth's naming of a lib.data array view's elements (`acc[0]`, `acc[0][1]`, ...), cut down to the pattern that
# makes Yosys 0.70's ABC9 assert: bit 1 of the wire `x[0]` and the wire `x[0][1]` get the same name inside ABC9.
COLLIDING_NAMES_V = r"""module t(input clk, input [7:0] a, input [7:0] b, output [7:0] y);
  reg [3:0] \x[0][2] ;
  reg [3:0] \x[0][1] ;
  reg [7:0] x;
  reg [3:0] \x[1] ;
  reg [7:0] \x[0] ;
  always @(posedge clk) begin
    \x[0] <= a; x <= x + b; \x[1] <= a[3:0] + b[7:4];
    \x[0][1] <= a[3:0] ^ b[3:0];
    \x[0][2] <= a[7:4] - b[7:4];
  end
  assign y = (\x[0]  + x) ^ {\x[0][1] , \x[0][2] } ^ {\x[1] , \x[1] };
endmodule
"""


@pytest.mark.unit
def test_abc9_safe_names_renames_every_bracketed_name_and_nothing_else():
    top = "module top(clk, \\keep[0] , y);\n  input clk;\n  input \\keep[0] ;\n  output y;\n" \
          "  wire \\a(0) ;\n  wire [3:0] \\a[0] ;\n  wire \\a[0][1] ;\n  wire \\plain.name ;\n" \
          "  sub \\u[2] (.\\p[1] (\\a[0] [2]));\nendmodule\n"
    sub = "module sub(\\p[1] );\n  input \\p[1] ;\nendmodule\n"
    out_top, out_sub = synth.abc9_safe_names([top, sub], "top")
    # the top's port keeps its name; the taken `a(0)` makes the renamed `a[0]` take a suffix
    assert "\\keep[0] " in out_top and "\\a(0)_1 " in out_top and "\\a(0)(1) " in out_top
    assert "\\plain.name " in out_top and "\\u(2) (.\\p(1) (\\a(0)_1 [2]))" in out_top
    assert out_sub == "module sub(\\p(1) );\n  input \\p(1) ;\nendmodule\n"      # one renaming over all files
    assert out_top.count("[") == top.count("[") - 6
    assert synth.abc9_safe_names([sub.replace("[1]", "_1")], "sub") == [sub.replace("[1]", "_1")]


@pytest.mark.synth
def test_colliding_array_names_are_mapped_by_abc9(tmp_path):
    """Yosys 0.70's ABC9 asserts on this Verilog as written (docs/synth.md, 'Known tool failures'); the flow's
    renamed copy maps with ABC9 itself, no fall-back to the classic ABC, and the design keeps its registers."""
    v = tmp_path / "t.v"
    v.write_text(COLLIDING_NAMES_V)
    report = synth.synthesise(str(v), "t", "ecp5", seeds=1, out_dir=str(tmp_path / "ecp5"), progress=lambda m: None)
    assert report["status"] == "ok" and report["lut_mapper"] == "abc9"
    assert report["ff"] == 28 and report["verilog_sha256"] == hashlib.sha256(COLLIDING_NAMES_V.encode()).hexdigest()


def _gated_groups(replicated: bool):
    """Four 4-bit registers, each loaded when its own copy of one control bit is set: ReplicatedRegister's copies
    or four plain registers with the same input."""
    from rtl.engine.fanout import ReplicatedRegister
    m = Module()
    a, b, x, y = Signal(), Signal(), Signal(16), Signal(16)
    if replicated:
        m.submodules.copies = copies = ReplicatedRegister(4)
        m.d.comb += copies.d.eq(a & b)
        enables = [copies.q[i] for i in range(4)]
    else:
        enables = [Signal(name=f"plain_{i}") for i in range(4)]
        m.d.sync += [e.eq(a & b) for e in enables]
    q = Signal(16)
    for i, e in enumerate(enables):
        with m.If(e):
            m.d.sync += q[4 * i:4 * i + 4].eq(x[4 * i:4 * i + 4])
    m.d.comb += y.eq(q)
    return verilog.convert(m, name="t", ports=[a, b, x, y])


@pytest.mark.synth
def test_replicated_registers_survive_synthesis(tmp_path):
    """Yosys merges flip-flops with equal inputs: four plain copies of a control register become one (16 data
    + 1 flip-flops), ReplicatedRegister's four copies stay four (16 + 4), because the script keeps them."""
    from rtl.engine.fanout import REPLICA_ATTRIBUTE
    assert synth.REPLICA_ATTRIBUTE == REPLICA_ATTRIBUTE
    ffs, widest = {}, {}
    for replicated in (False, True):
        v = tmp_path / f"t{int(replicated)}.v"
        v.write_text(_gated_groups(replicated))
        report = synth.synthesise(str(v), "t", "ecp5", seeds=1, out_dir=str(tmp_path / f"ecp5_{int(replicated)}"),
                                  progress=lambda m: None)
        assert report["status"] == "ok"
        ffs[replicated] = report["ff"]
        widest[replicated] = next(n for n in report["high_fanout_nets"] if n["driver"] == "TRELLIS_FF")
    assert ffs == {False: 17, True: 20}, ffs
    # the report's fan-out list names the merged register: one flip-flop into all 16 data registers' enables
    assert widest[False]["sinks"] == 16, widest
    assert widest[True]["sinks"] == 4, widest
