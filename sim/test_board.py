"""End to end without hardware: the host runtime (`flow.py run`, pyserial) drives the Verilator model of the whole
board top (UART, frame parser, image buffer, the generated digits core; a plain clock instead of the PLL) through
a pseudo-terminal. Checks the bad-frame replies and the recovery after each, then streams 24 test images and
compares every logit and class with golden and every cycle count read over the UART with the cycle model."""
import json
import os

import pytest

from golden import intmodel as im
from golden.inference import run
from hls_models.engine_cycles import exp_cycles
from rtl.gen import generate
from sim.board_sim import SIM_BAUD, host_command, run_host_commands

pytestmark = [pytest.mark.sim, pytest.mark.train]

IMAGES = 24



def test_host_runtime_drives_the_simulated_board(digits_model, tmp_path):
    model, base = digits_model
    rtl_dir = str(tmp_path / "rtl")
    manifest = generate(model, 16, rtl_dir)
    work = os.path.join(base, "board", "sim")
    out = os.path.join(work, "run.json")
    if os.path.exists(out):
        os.remove(out)
    records = run_host_commands(rtl_dir, work, [host_command(
        "run", "--port", "{port}", "--baud", str(SIM_BAUD), "--preset", "digits", "--images", str(IMAGES),
        "--link-test", "--fresh", "--timeout", "120", "--out", out)])
    rec = records["commands"][0]
    assert rec["returncode"] == 0, rec["output"][-3000:]
    summary = json.load(open(out))
    assert summary["images"] == IMAGES and summary["mismatches"] == 0, rec["output"][-3000:]
    assert dict(summary["link_test"]) == {
        "START before any LOAD": "NO_IMAGE", "bad CRC": "BAD_CRC", "truncated frame": "TRUNCATED",
        "truncated header": "TRUNCATED", "unknown command": "UNKNOWN_COMMAND",
        "image one pixel short": "BAD_LENGTH", "image one pixel long (larger than the buffer)": "BAD_LENGTH",
        "START with a payload": "BAD_LENGTH", "pixel out of range": "BAD_PIXEL", "noise before a frame": "OK",
        "LOAD while the core runs": "BUSY"}
    # the cycle counts that came over the UART are the core's, image by image
    images, _ = im.load_testset(os.path.join(base, "testset.npz"))
    ref = run(model, images[:IMAGES], trace=True)
    got = [r["cycles"] for r in summary["per_image"]]
    assert got == [exp_cycles(model, ref, i, manifest) for i in range(IMAGES)]
