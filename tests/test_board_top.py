"""The ULX3S board top through amaranth-boards, without running the tools: pins, clock constraint, PLL, core
instance; and the link's checks on its parameters."""
import json
import re
import sys
from pathlib import Path

import pytest

from golden import intmodel as im
from rtl.gen import generate

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def small_core(tmp_path_factory):
    cfg = im.make_config(T=2, input_bits=6, in_channels=2, image_size=[4, 4], tokenizer=[{"out": 16, "pool": False}],
                         embed_dim=16, heads=1, blocks=1, mlp_hidden=48, num_classes=3, weight_bits=6)
    rtl = tmp_path_factory.mktemp("rtl")
    generate(im.random_intmodel(cfg, seed=13, firing=0.1), 16, str(rtl))
    return rtl


def test_ulx3s_build_files(small_core, tmp_path):
    from tools.bitstream import prepare
    _, device = prepare(str(small_core), str(tmp_path), "ulx3s-85f", 75_000_000, 3_000_000)
    assert device == ["--85k", "--package", "CABGA381", "--speed", "6"]
    lpf = (tmp_path / "top.lpf").read_text()
    for pin in ("G2", "M1", "L4", "B2", "H3", "R1"):       # 25 MHz oscillator, FTDI RX/TX, LED 0 and 7, FIRE1
        assert f'SITE "{pin}"' in lpf, pin
    assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ;' in lpf   # nextpnr derives the core clock from it
    il = (tmp_path / "top.il").read_text()
    assert "EHXPLLL" in il and "spikingformer_core" in il
    # 25 MHz / 1 * 3 = 75 MHz, VCO 75 MHz * 6 = 450 MHz
    for name, value in (("CLKI_DIV", 1), ("CLKFB_DIV", 3), ("CLKOP_DIV", 6)):
        assert re.search(rf"parameter \\{name} {value}\b", il), name
    assert "read_verilog  spikingformer_core.v" in (tmp_path / "top.ys").read_text()
    # the core as `flow.py synth` reads it: the same text but for names ABC9 could confuse (tools/synth.py)
    from tools.synth import abc9_safe_names
    core = (small_core / "core.v").read_text()
    copied = (tmp_path / "spikingformer_core.v").read_text()
    assert copied == abc9_safe_names([core], "spikingformer_core")[0]
    assert re.search(r"\\\S*\[", core) and not re.search(r"\\\S*\[", copied)


def test_link_reads_the_core_ports_from_its_verilog(small_core):
    from rtl.board.link import core_ports
    ports = core_ports((small_core / "core.v").read_text())
    manifest = json.loads((small_core / "manifest.json").read_text())
    assert ports["in_data"] == ("input", manifest["widths"]["pixel"])
    assert ports["logit"] == ("output", manifest["widths"]["logit"])
    assert ports["cycles"] == ("output", 32) and ports["start"] == ("input", 1) and ports["clk"] == ("input", 1)


def test_link_refuses_a_baud_rate_the_clock_cannot_make():
    from rtl.board.link import uart_divisor
    assert uart_divisor(75_000_000, 3_000_000) == 25 and uart_divisor(75_000_000, 115_200) == 651
    with pytest.raises(ValueError, match="2 %"):
        uart_divisor(75_000_000, 7_000_000)      # 75 / 7 = 10.7: 11 gives 6.82 Mbaud, 2.6 % off
    with pytest.raises(ValueError):
        uart_divisor(75_000_000, 25_000_000)     # divisor 3: below the receiver's minimum


def test_ecpix5_build_files(small_core, tmp_path):
    from tools.bitstream import prepare
    _, device = prepare(str(small_core), str(tmp_path), "ecpix5-85f", 75_000_000, 3_000_000)
    assert device == ["--um5g-85k", "--package", "CABGA554", "--speed", "8"]
    lpf = (tmp_path / "top.lpf").read_text()
    for pin in ("K23", "R26", "R24", "AB1", "T23", "R21", "P21", "R23"):  # 100 MHz, UART, reset, LED r/g 0 and 3
        assert f'SITE "{pin}"' in lpf, pin
    il = (tmp_path / "top.il").read_text()
    for name, value in (("CLKI_DIV", 4), ("CLKFB_DIV", 3), ("CLKOP_DIV", 6)):   # 100 / 4 * 3 = 75 MHz
        assert re.search(rf"parameter \\{name} {value}\b", il), name


@pytest.mark.parametrize("achieved,met", [(82.84, True), (70.1, False)])
def test_timing_summary_finds_the_pll_clock_as_nextpnr_states_it(tmp_path, achieved, met):
    """nextpnr states the PLL output with the PLL's rounding (75.0019 MHz for 75); the summary must take that net as
    the core clock, not the 25 MHz oscillator, and judge timing against it."""
    from tools.bitstream import summarise
    util = {"TRELLIS_COMB": {"used": 21210, "available": 83640}, "TRELLIS_FF": {"used": 11758, "available": 83640},
            "DP16KD": {"used": 77, "available": 208}, "MULT18X18D": {"used": 0, "available": 156}}
    fmax = {"$glbnet$clk": {"achieved": achieved, "constraint": 75.00187683105469},
            "$glbnet$clk25": {"achieved": 300.0, "constraint": 25.0}}
    (tmp_path / "pnr_report.json").write_text(json.dumps({"utilization": util, "fmax": fmax}))
    rep = summarise(str(tmp_path), 75_000_000)
    assert rep["fmax_mhz"] == achieved and rep["timing_met"] is met
    assert (rep["lut"], rep["ff"], rep["bram"], rep["dsp"]) == (21210, 11758, 77, 0)


@pytest.mark.synth
def test_when_abc9_asserts_the_board_top_is_mapped_again_with_the_classic_abc(small_core, tmp_path, monkeypatch):
    """Yosys 0.70's ABC9 assertion (docs/synth.md) is made to happen on the first Yosys run of the board top; the
    script's synth_ecp5 then runs with the classic ABC LUT mapper, for real, and writes the netlist."""
    from tools import bitstream
    bitstream.prepare(str(small_core), str(tmp_path), "ulx3s-85f", 75_000_000, 3_000_000)
    real_run, scripts = bitstream._run, []
    error = "ERROR: Assert `count_id(wire->name) == 0' failed in /y/kernel/rtlil.cc:2872."

    def run(cmd, cwd, log, what, tool_log=None):
        scripts.append(Path(cwd, "top.ys").read_text())
        if len(scripts) == 1:
            Path(cwd, "top.rpt").write_text("3.46.18.7. Executing ABC_OPS_REINTEGRATE pass (reintegrate ABC mapped "
                                            "design into module).\n" + error + "\n")
            raise bitstream._ToolFailed(f"Yosys synthesis failed ({error}); see top.rpt.", error)
        return real_run(cmd, cwd, log, what, tool_log)
    monkeypatch.setattr(bitstream, "_run", run)
    _, mapper = bitstream._yosys(str(tmp_path))
    assert len(scripts) == 2 and "abc -lut 4" in scripts[1] and "abc -lut" not in scripts[0]
    assert "-run begin:map_luts" in scripts[1] and "-run map_cells:" in scripts[1]
    assert "write_json top.json" in scripts[1]
    assert mapper.startswith("abc (")
    cells = json.loads((tmp_path / "top.json").read_text())["modules"]["top"]["cells"].values()
    types = {c["type"] for c in cells}
    assert {"LUT4", "TRELLIS_FF", "EHXPLLL"} <= types, types


@pytest.mark.synth
def test_the_board_netlist_moves_registers_into_the_block_rams_output_registers(small_core, tmp_path):
    """The board build runs the output-register pass that `flow.py synth` runs, on the whole top, for real: the
    registers behind the core's block-RAM reads leave the fabric."""
    from tools import bitstream
    bitstream.prepare(str(small_core), str(tmp_path), "ulx3s-85f", 75_000_000, 3_000_000)
    _, _, moved = bitstream.board_netlist(str(tmp_path))
    cells = json.loads((tmp_path / "top.json").read_text())["modules"]["top"]["cells"].values()
    outreg = [c for c in cells if c["type"] == "DP16KD"
              and "OUTREG" in (c["parameters"].get("REGMODE_A", ""), c["parameters"].get("REGMODE_B", ""))]
    assert moved > 0 and outreg, f"{moved} bits moved, {len(outreg)} block RAMs with an output register"


@pytest.mark.unit
def test_a_yosys_error_of_the_board_top_names_its_error_line(tmp_path, monkeypatch):
    """Yosys -q writes its errors only to its -l log (top.rpt): the message quotes that line, not the warnings
    that end the captured output; an error outside ABC9 is not retried."""
    from tools import bitstream
    fake = tmp_path / "fake-yosys"     # a stand-in that fails the way Yosys -q -l top.rpt does
    log = "2.1. Executing Verilog-2005 frontend.\nERROR: Module `top' not found!\n"
    fake.write_text(f"#!{sys.executable}\nimport sys\nopen('top.rpt', 'w').write({log!r})\n"
                    "print('Warning: Initialization value on FSM state register is ignored.')\nsys.exit(1)\n")
    fake.chmod(0o755)
    (tmp_path / "top.ys").write_text("synth_ecp5 -top top\n")
    monkeypatch.setattr(bitstream, "_tool", lambda name: str(fake))
    with pytest.raises(bitstream.FlowError) as err:
        bitstream._yosys(str(tmp_path))
    assert "ERROR: Module `top' not found!" in str(err.value) and "\n" not in str(err.value)
    assert (tmp_path / "top.ys").read_text() == "synth_ecp5 -top top\n"

