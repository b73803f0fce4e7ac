"""cocotb testbench for the whole core (driver + monitor). The model and the checker live in pytest
(sim/test_engine.py), which compares what this bench records against golden/.

Driver: loads each image through the in_valid/in_ready port, pulses start, and lets the core run (no per-cycle
Python while it computes). Monitor: on done, reads the class, every logit and every activation-RAM row (all
layers' spike words) through the debug port, and records the cycle counter and the sticky overflow flag.
The job (image file, rows to dump, result file) comes from the ENGINE_JOB environment variable.
"""
import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, Timer, with_timeout

from golden.artifacts import atomic_write


def unsigned(value) -> int:
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


async def load_image(dut, pixels):
    for px in pixels:
        dut.in_data.value = int(px)
        dut.in_valid.value = 1
        await RisingEdge(dut.clk)
        await Timer(1, "ns")
        assert unsigned(dut.in_ready.value) == 1, "core refused a pixel while idle"
    dut.in_valid.value = 0


async def read_outputs(dut, job):
    logits = []
    for k in range(job["classes"]):
        dut.logit_sel.value = k
        await Timer(1, "ns")
        logits.append(dut.logit.value.to_signed())
    rows = []
    for addr in range(job["act_rows"]):
        dut.dbg_addr.value = addr
        await ClockCycles(dut.clk, job["debug_read"])
        await Timer(1, "ns")
        rows.append(unsigned(dut.dbg_data.value))
    return logits, rows


@cocotb.test()
async def run_images(dut):
    job = json.loads(Path(os.environ["ENGINE_JOB"]).read_text())
    images = np.load(job["images"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.start.value = 0
    dut.in_valid.value = 0
    dut.dbg_addr.value = 0
    dut.logit_sel.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    results = []
    for index, image in enumerate(images):
        await load_image(dut, image.reshape(-1))
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        await with_timeout(RisingEdge(dut.done), job["timeout_cycles"] * 10, "ns")
        await Timer(1, "ns")
        record = {"class": unsigned(dut.pred_class.value), "cycles": unsigned(dut.cycles.value),
                  "overflow": unsigned(dut.overflow.value)}
        record["logits"], record["rows"] = await read_outputs(dut, job)
        results.append(record)
        if (index + 1) % 20 == 0:
            dut._log.info("%d/%d images", index + 1, len(images))
    atomic_write(job["results"], json.dumps(results))
