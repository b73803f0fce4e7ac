"""cocotb bench for the whole board top (rtl/board/top.py SimBoard): a pseudo-terminal bridged to the UART pins,
driven by the real host runtime (`flow.py run --port <pty>`) in subprocesses.

The bench only moves bytes: host -> pty master -> bits on `rx` at the link's baud; bits on `tx` -> bytes -> pty
master -> host. Python wakes once per bit and every POLL cycles, so inferences run free. When the line has been
quiet for longer than the link's timeout and the core is idle, the bench waits for the host in select() (wall time)
instead of racing simulated time ahead. The job (host commands to run one after the other, divisor, timeout)
comes from BOARD_JOB; each command's exit status and output go to the job's result file.
"""
import json
import os
import select
import subprocess
import tty
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, Timer

from golden.artifacts import atomic_write

PERIOD_NS = 10
POLL = 256


def unsigned(value) -> int:
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


class Bridge:
    def __init__(self, dut, divisor, quiet_cycles):
        self.dut, self.bit_ns = dut, divisor * PERIOD_NS
        self.master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(self.master)
        self.slave_fd = slave
        self.path = os.ttyname(slave)
        os.set_blocking(self.master, False)
        self.quiet_ns = quiet_cycles * PERIOD_NS
        self.last_ns = 0
        self.sending = False
        self.to_device = 0
        self.to_host = 0

    def now(self):
        return cocotb.utils.get_sim_time("ns")

    async def host_to_device(self):
        dut = self.dut
        while True:
            await Timer(POLL * PERIOD_NS, "ns")
            idle = (not self.sending and self.now() - self.last_ns > self.quiet_ns
                    and not unsigned(dut.leds.value) & 1)
            ready, _, _ = select.select([self.master], [], [], 0.005 if idle else 0)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except (BlockingIOError, OSError):
                continue
            for byte in data:
                for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                    dut.rx.value = bit
                    await Timer(self.bit_ns, "ns")
                self.to_device += 1
            self.last_ns = self.now()

    async def device_to_host(self):
        dut = self.dut
        while True:
            await FallingEdge(dut.tx)
            self.sending = True
            await Timer(self.bit_ns // 2, "ns")
            if unsigned(dut.tx.value) != 0:
                self.sending = False
                continue
            byte = 0
            for i in range(8):
                await Timer(self.bit_ns, "ns")
                byte |= unsigned(dut.tx.value) << i
            await Timer(self.bit_ns, "ns")
            assert unsigned(dut.tx.value) == 1, "the board sent a byte without its stop bit"
            os.write(self.master, bytes([byte]))
            self.to_host += 1
            self.last_ns = self.now()
            self.sending = False


@cocotb.test()
async def host_runtime_over_uart(dut):
    job = json.loads(Path(os.environ["BOARD_JOB"]).read_text())
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.rx.value = 1
    dut.arst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.arst.value = 0
    await ClockCycles(dut.clk, 4)
    bridge = Bridge(dut, job["divisor"], job["timeout_cycles"] + 4 * 10 * job["divisor"])
    cocotb.start_soon(bridge.host_to_device())
    cocotb.start_soon(bridge.device_to_host())
    records = []
    for argv in job["commands"]:
        argv = [a.replace("{port}", bridge.path) for a in argv]
        log = open(job["results"] + f".{len(records)}.log", "w+")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=job["cwd"])
        start_ns = bridge.now()
        while proc.poll() is None:
            await Timer(POLL * PERIOD_NS, "ns")
        log.seek(0)
        records.append({"argv": argv, "returncode": proc.returncode, "output": log.read(),
                        "sim_cycles": (bridge.now() - start_ns) // PERIOD_NS})
        log.close()
        dut._log.info("host command %d: exit %d", len(records), proc.returncode)
    records_path = job["results"]
    atomic_write(records_path, json.dumps({"commands": records, "bytes_to_device": bridge.to_device,
                                           "bytes_to_host": bridge.to_host}))
