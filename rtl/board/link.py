"""HostLink: the generated core (`spikingformer_core`, through its port contract only) behind a UART and the framed
protocol of golden/protocol.py (its Python twin is golden.protocol.DeviceModel; docs/board.md for users).

Data path: UART RX -> byte FIFO -> frame parser (CRC-16 checked on the fly, payload into a buffer one image deep)
-> command execution (copy the buffer into the core, pulse start, wait for the core) -> reply generator -> UART TX.
A LOAD is copied into the core only after its CRC and size are checked, so a bad frame never leaves half an image
in the core. Bytes that arrive while a reply is being sent wait in the FIFO (`fifo_depth` bytes: the most a host
may send ahead of the replies).

Latency of a command after its last CRC byte is received: IDENTIFY/START/READ of an idle core 3 cycles, LOAD
pixels + 3 cycles (one of them the register behind the FIFO), then the reply at 10 bit times per byte (plus 3
cycles per byte to form it).
"""
from __future__ import annotations

import re

from amaranth.hdl import Array, Cat, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import fifo, memory, wiring
from amaranth.lib.wiring import In, Out

from golden import protocol as proto

from .uart import UartRx, UartTx

CORE_TOP = "spikingformer_core"


def core_ports(verilog_text: str, top: str = CORE_TOP) -> dict:
    """{port: (direction, width)} of module `top` in Amaranth-generated Verilog."""
    match = re.search(rf"^module {re.escape(top)}\(.*?^endmodule", verilog_text, re.S | re.M)
    if not match:
        raise ValueError(f"module {top} not found in the core's Verilog")
    ports = {}
    for d, hi, name in re.findall(r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):0\]\s+)?(\w+)\s*;",
                                  match.group(0), re.M):
        ports[name] = (d, int(hi) + 1 if hi else 1)
    return ports


def _crc16_matrix():
    """For each bit of the CRC after one byte: the (crc bits, byte bits) whose XOR it is (the CRC is linear)."""
    rows = []
    for out in range(16):
        crc_bits = [i for i in range(16) if (proto.crc16(b"\0", 1 << i) ^ proto.crc16(b"\0", 0)) >> out & 1]
        byte_bits = [j for j in range(8) if (proto.crc16(bytes([1 << j]), 0) >> out) & 1]
        rows.append((crc_bits, byte_bits))
    return rows


CRC16_MATRIX = _crc16_matrix()


def crc16_update(crc, byte):
    """One byte of CRC-16/CCITT-FALSE as an XOR network (golden.protocol.crc16)."""
    bits = []
    for crc_bits, byte_bits in CRC16_MATRIX:
        terms = [crc[i] for i in crc_bits] + [byte[j] for j in byte_bits]
        bits.append(Cat(*terms).xor() if terms else Const(0, 1))
    return Cat(*bits)


def uart_divisor(clock_hz: int, baud: int) -> int:
    """Clock cycles per UART bit; ValueError when the nearest divisor is more than 2 % off (8N1 tolerates ~4 %
    between both ends) or below the receiver's minimum of 4."""
    divisor = max(1, round(clock_hz / baud))
    if abs(clock_hz / divisor - baud) > 0.02 * baud or divisor < 4:
        raise ValueError(f"{baud} baud is more than 2 % off any divisor of the {clock_hz} Hz clock (or above "
                         f"clock / 4)")
    return divisor


class HostLink(wiring.Component):
    """The core plus the UART link. Ports: rx/tx (UART pins, idle high), leds[8]: 0 busy, 1 done, 2 the last reply
    was an error, 3 heartbeat (clock / 2^24), 4-7 the predicted class (low 4 bits)."""

    def __init__(self, manifest: dict, core_verilog: str, clock_hz: int, baud: int, timeout_cycles: int | None = None,
                 fifo_depth: int = 512):
        self.manifest = manifest
        self.ports = core_ports(core_verilog)
        self.clock_hz, self.baud = int(clock_hz), int(baud)
        self.divisor = uart_divisor(clock_hz, baud)
        # a frame that pauses longer than this is truncated; default 10 ms (USB-serial bridges pause up to ~1 ms)
        self.timeout = int(timeout_cycles or clock_hz // 100)
        self.fifo_depth = fifo_depth
        self.identity = proto.Identity.from_manifest(manifest, clock_hz, baud)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "leds": Out(8)})

    def elaborate(self, platform):
        m = Module()
        man, ports = self.manifest, self.ports
        npix, pbits, K = man["dims"]["pixels"], man["widths"]["pixel"], man["dims"]["K"]
        buf_depth = max(1, npix)

        # ------------------------------------------------------------ the core, through its port contract
        sig = {name: Signal(signed(w) if name == "logit" else w, name=f"core_{name}")
               for name, (d, w) in ports.items() if name not in ("clk", "rst")}
        conns = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
        for name, (d, w) in ports.items():
            if name not in ("clk", "rst"):
                conns[("i_" if d == "input" else "o_") + name] = sig[name]
        m.submodules.core = Instance(CORE_TOP, **conns)
        c_busy, c_done, c_class, c_logit = sig["busy"], sig["done"], sig["pred_class"], sig["logit"]
        c_cycles, c_overflow, c_start = sig["cycles"], sig["overflow"], sig["start"]
        # inputs the contract does not name (a later core's extras) stay at their safe default, 0

        # ------------------------------------------------------------ UART and receive FIFO
        m.submodules.uart_rx = rx = UartRx(self.divisor)
        m.submodules.uart_tx = tx = UartTx(self.divisor)
        m.submodules.rx_fifo = rxf = fifo.SyncFIFOBuffered(width=8, depth=self.fifo_depth)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx),
                     rxf.w_data.eq(rx.data), rxf.w_en.eq(rx.valid)]

        m.submodules.buffer = buf = memory.Memory(shape=8, depth=buf_depth, init=[])
        buf_wr, buf_rd = buf.write_port(), buf.read_port()

        # ------------------------------------------------------------ frame parser and command execution
        cmd = Signal(8)
        length = Signal(16)
        idx = Signal(16)
        crc = Signal(16)
        pix_bad = Signal()
        timer = Signal(range(self.timeout + 1))
        status = Signal(3)
        kind = Signal(2)            # reply payload: 0 none, 1 identity, 2 result
        loaded = Signal()
        copy_valid = Signal()
        # A register between the FIFO and the parser: the FIFO's data comes straight from a block RAM (about 5.8 ns
        # clock-to-output on ECP5), too late to feed the CRC, the pixel check and the parser in the same cycle at
        # 75 MHz. The register refills in the cycle the parser takes it, so the parser still gets a byte a cycle.
        byte = Signal(8)
        byte_valid = Signal()
        take = Signal()             # the parser's state accepts a byte this cycle
        m.d.comb += rxf.r_en.eq(~byte_valid | take)
        with m.If(rxf.r_rdy & rxf.r_en):
            m.d.sync += [byte.eq(rxf.r_data), byte_valid.eq(1)]
        with m.Elif(take):
            m.d.sync += byte_valid.eq(0)
        got = Signal()
        m.d.comb += got.eq(byte_valid & take)
        crc_next = crc16_update(crc, byte)
        m.d.sync += c_start.eq(0)

        def wait_timer(on_timeout):
            with m.If(got):
                m.d.sync += timer.eq(0)
            with m.Elif(timer == self.timeout):
                on_timeout()
            with m.Else():
                m.d.sync += timer.eq(timer + 1)

        def reply(st, k=0):
            m.d.sync += [status.eq(st), kind.eq(k), idx.eq(0)]
            m.next = "REPLY_PREP"

        def truncated():
            reply(proto.TRUNCATED)

        # ------------------------------------------------------------ reply: 5A cmd status len payload crc
        ident = self.identity.pack()
        lbytes = proto.logit_bytes(man["widths"]["logit"])     # 4 or 8: a power of two, no divider
        lshift = lbytes.bit_length() - 1
        result_len = 6 + lbytes * K
        plen = Signal(16)
        m.d.comb += plen.eq(Mux(kind == 1, len(ident), Mux(kind == 2, result_len, 0)))
        pidx = Signal(16)
        m.d.comb += pidx.eq(idx - 5)
        lsel = Signal(16)
        m.d.comb += lsel.eq((pidx - 6) >> lshift)
        m.d.comb += sig["logit_sel"].eq(lsel)
        logit_wide = Signal(signed(8 * lbytes))
        m.d.comb += logit_wide.eq(c_logit)
        result_byte = Signal(8)
        with m.Switch(pidx):
            with m.Case(0):
                m.d.comb += result_byte.eq(Cat(c_done, c_overflow))
            with m.Case(1):
                m.d.comb += result_byte.eq(c_class)
            for i in range(4):
                with m.Case(2 + i):
                    m.d.comb += result_byte.eq(c_cycles[8 * i:8 * i + 8])
            with m.Default():
                m.d.comb += result_byte.eq(logit_wide.as_unsigned().word_select((pidx - 6)[:lshift], 8))
        ident_rom = Array(Const(b, 8) for b in ident)
        # The payload byte (the core's logit mux, the identity ROM) is registered a cycle before the reply byte is
        # formed: REPLY_PREP lets it settle for the new idx, REPLY_FORM latches the byte.
        payload_byte = Signal(8)
        m.d.sync += payload_byte.eq(Mux(kind == 1, ident_rom[pidx[:6]], result_byte))
        out = Signal(8)
        with m.Switch(idx):
            with m.Case(0):
                m.d.comb += out.eq(proto.SYNC_REPLY)
            with m.Case(1):
                m.d.comb += out.eq(cmd)
            with m.Case(2):
                m.d.comb += out.eq(status)
            with m.Case(3):
                m.d.comb += out.eq(plen[:8])
            with m.Case(4):
                m.d.comb += out.eq(plen[8:])
            with m.Default():
                with m.If(pidx == plen):
                    m.d.comb += out.eq(crc[8:])
                with m.Elif(pidx == plen + 1):
                    m.d.comb += out.eq(crc[:8])
                with m.Else():
                    m.d.comb += out.eq(payload_byte)
        tx_byte = Signal(8)

        with m.FSM(name="link"):
            with m.State("HUNT"):
                m.d.comb += take.eq(1)
                with m.If(got & (byte == proto.SYNC_REQUEST)):
                    m.d.sync += [idx.eq(0), crc.eq(0xFFFF), pix_bad.eq(0), cmd.eq(0), timer.eq(0)]
                    m.next = "HEADER"
            with m.State("HEADER"):
                m.d.comb += take.eq(1)
                with m.If(got):
                    m.d.sync += [crc.eq(crc_next), idx.eq(idx + 1)]
                    with m.Switch(idx):
                        with m.Case(0):
                            m.d.sync += cmd.eq(byte)
                        with m.Case(1):
                            m.d.sync += length[:8].eq(byte)
                        with m.Default():
                            m.d.sync += [length[8:].eq(byte), idx.eq(0)]
                            new_len = Cat(length[:8], byte)
                            with m.If(new_len > buf_depth):
                                m.d.sync += status.eq(proto.BAD_LENGTH)
                                m.next = "DRAIN"
                            with m.Elif(new_len == 0):
                                m.next = "CRC"
                            with m.Else():
                                m.next = "PAYLOAD"
                wait_timer(truncated)
            with m.State("PAYLOAD"):
                m.d.comb += [take.eq(1), buf_wr.addr.eq(idx), buf_wr.data.eq(byte), buf_wr.en.eq(got)]
                with m.If(got):
                    m.d.sync += [crc.eq(crc_next), idx.eq(idx + 1), pix_bad.eq(pix_bad | (byte >> pbits).any())]
                    with m.If(idx == length - 1):
                        m.d.sync += idx.eq(0)
                        m.next = "CRC"
                wait_timer(truncated)
            with m.State("CRC"):
                m.d.comb += take.eq(1)
                with m.If(got):
                    m.d.sync += [crc.eq(crc_next), idx.eq(idx + 1)]
                    with m.If(idx == 1):
                        with m.If(crc_next == 0):
                            m.next = "EXEC"
                        with m.Else():
                            m.d.sync += status.eq(proto.BAD_CRC)
                            m.next = "DRAIN"
                wait_timer(truncated)
            with m.State("DRAIN"):          # resynchronise: discard until the line is idle, then answer
                m.d.comb += take.eq(1)
                wait_timer(lambda: reply(status))
            with m.State("EXEC"):
                with m.Switch(cmd):
                    with m.Case(proto.CMD_IDENTIFY):
                        with m.If(length != 0):
                            reply(proto.BAD_LENGTH)
                        with m.Else():
                            reply(proto.OK, 1)
                    with m.Case(proto.CMD_LOAD):
                        with m.If(length != npix):
                            reply(proto.BAD_LENGTH)
                        with m.Elif(pix_bad):
                            reply(proto.BAD_PIXEL)
                        with m.Elif(c_busy):
                            reply(proto.BUSY)
                        with m.Else():
                            m.d.sync += [idx.eq(0), copy_valid.eq(0)]
                            m.next = "COPY"
                    with m.Case(proto.CMD_START):
                        with m.If(length != 0):
                            reply(proto.BAD_LENGTH)
                        with m.Elif(c_busy):
                            reply(proto.BUSY)
                        with m.Elif(~loaded):
                            reply(proto.NO_IMAGE)
                        with m.Else():
                            m.d.sync += c_start.eq(1)
                            reply(proto.OK)
                    with m.Case(proto.CMD_READ):
                        with m.If(length != 0):
                            reply(proto.BAD_LENGTH)
                        with m.Elif(~c_busy):    # READ waits for a running inference to finish
                            reply(proto.OK, 2)
                    with m.Default():
                        reply(proto.UNKNOWN_COMMAND)
            with m.State("COPY"):           # buffer -> core, one pixel per cycle (1-cycle buffer read latency)
                m.d.comb += [buf_rd.addr.eq(idx), sig["in_data"].eq(buf_rd.data), sig["in_valid"].eq(copy_valid)]
                m.d.sync += [idx.eq(idx + 1), copy_valid.eq(idx < npix)]
                with m.If(copy_valid & (idx == npix)):
                    m.d.sync += loaded.eq(1)
                    reply(proto.OK)

            with m.State("REPLY_PREP"):
                with m.If(idx == 0):
                    m.d.sync += crc.eq(0xFFFF)
                m.next = "REPLY_FORM"
            with m.State("REPLY_FORM"):
                m.d.sync += tx_byte.eq(out)
                m.next = "REPLY_SEND"
            with m.State("REPLY_SEND"):
                m.d.comb += [tx.data.eq(tx_byte), tx.valid.eq(1)]
                with m.If(tx.ready):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If((idx >= 1) & ((idx < 5) | (pidx < plen))):
                        m.d.sync += crc.eq(crc16_update(crc, tx_byte))
                    with m.If(pidx == plen + 1):
                        m.d.sync += timer.eq(0)
                        m.next = "HUNT"
                    with m.Else():
                        m.next = "REPLY_PREP"

        # ------------------------------------------------------------ LEDs
        error = Signal()
        with m.If(tx.valid & tx.ready & (idx == 2)):
            m.d.sync += error.eq(tx_byte != proto.OK)
        beat = Signal(24)
        m.d.sync += beat.eq(beat + 1)
        m.d.comb += self.leds.eq(Cat(c_busy, c_done, error, beat[-1], c_class[:4]))
        return m
