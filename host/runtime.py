"""Host side of the board link: a pyserial connection speaking golden/protocol.py.

    link = BoardLink.open("/dev/ttyUSB0", baud=3_000_000)
    ident = link.identify()
    result, seconds = link.infer(pixels)        # LOAD + START + READ in one write, three replies

`infer` sends its three frames back to back (82 bytes for a digits image, well inside the device's 512-byte receive
FIFO) so an image costs one host round trip. link_test() sends the bad frames the device must reject and checks
that each gets its error reply and that the link works right after it.
"""
from __future__ import annotations

import struct
import time

import numpy as np

from golden import protocol as proto
from flowerrors import FlowError


class LinkError(FlowError):
    """The device did not answer as the protocol says."""


class BoardLink:
    def __init__(self, port, timeout: float = 5.0):
        self.port = port                     # a pyserial Serial (or anything with read/write/reset_input_buffer)
        self.timeout = timeout
        self.identity = None

    @classmethod
    def open(cls, device: str, baud: int, timeout: float = 5.0) -> "BoardLink":
        try:
            import serial
        except ImportError:
            raise FlowError("pyserial is not installed; run `make venv`.") from None
        try:
            port = serial.Serial(device, baud, timeout=0.05)
        except (OSError, ValueError, serial.SerialException) as exc:
            raise FlowError(f"cannot open the serial port {device} ({exc}); check the cable and --port.") from None
        return cls(port, timeout)

    def close(self):
        self.port.close()

    # ------------------------------------------------------------------ framing
    def _read_exact(self, n: int, deadline: float) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.port.read(n - len(data))
            if chunk:
                data += chunk
            elif time.monotonic() > deadline:
                raise LinkError(f"the device did not answer within {self.timeout:g} s (got {len(data)} of {n} "
                                f"bytes); check --port, --baud and that the bitstream is loaded.")
        return bytes(data)

    def read_reply(self, timeout: float | None = None) -> proto.Reply:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while self._read_exact(1, deadline)[0] != proto.SYNC_REPLY:
            pass
        head = self._read_exact(4, deadline)
        length = struct.unpack_from("<H", head, 2)[0]
        rest = self._read_exact(length + 2, deadline)
        try:
            reply, _ = proto.decode_reply(bytes([proto.SYNC_REPLY]) + head + rest)
        except proto.ProtocolError as exc:
            raise LinkError(f"garbled reply from the device ({exc}); check --baud.") from None
        return reply

    def send(self, data: bytes):
        self.port.write(data)
        if hasattr(self.port, "flush"):
            self.port.flush()

    def request(self, cmd: int, payload: bytes = b"", expect: int = proto.OK) -> proto.Reply:
        self.send(proto.encode_request(cmd, payload))
        reply = self.read_reply()
        _check(reply, cmd, expect)
        return reply

    # ------------------------------------------------------------------ commands
    def identify(self) -> proto.Identity:
        self.identity = proto.Identity.unpack(self.request(proto.CMD_IDENTIFY).payload)
        return self.identity

    def pixels_of(self, image) -> bytes:
        flat = np.asarray(image).reshape(-1)
        return bytes(int(v) & 0xFF for v in flat)

    def read(self) -> proto.Result:
        return proto.Result.unpack(self.request(proto.CMD_READ).payload, self.identity.classes, self.identity.logit_bits)

    def infer(self, image) -> tuple[proto.Result, float]:
        """LOAD + START + READ as one write; returns the result and the host round trip in seconds."""
        frames = (proto.encode_request(proto.CMD_LOAD, self.pixels_of(image)) +
                  proto.encode_request(proto.CMD_START) + proto.encode_request(proto.CMD_READ))
        t0 = time.perf_counter()
        self.send(frames)
        replies = [self.read_reply() for _ in range(3)]
        seconds = time.perf_counter() - t0
        for reply, cmd in zip(replies, (proto.CMD_LOAD, proto.CMD_START, proto.CMD_READ)):
            _check(reply, cmd, proto.OK)
        return proto.Result.unpack(replies[2].payload, self.identity.classes, self.identity.logit_bits), seconds


def _check(reply: proto.Reply, cmd: int, expect: int):
    if reply.cmd != cmd or reply.status != expect:
        raise LinkError(f"{proto.COMMANDS.get(cmd, hex(cmd))}: the device answered "
                        f"{proto.COMMANDS.get(reply.cmd, hex(reply.cmd))} {reply.status_name}, expected "
                        f"{proto.STATUS_NAMES[expect]}.")


def link_test(link: BoardLink, image, fresh: bool = False, say=print) -> list[tuple[str, str]]:
    """Send each bad frame, check its error reply, then check that IDENTIFY works at once (recovery without a
    reset). Returns [(case, reply status)]; raises LinkError on the first case that does not behave."""
    ident = link.identity or link.identify()
    good_load = proto.encode_request(proto.CMD_LOAD, link.pixels_of(image))
    bad_crc = bytearray(good_load)
    bad_crc[-1] ^= 0x01
    cases = []
    if fresh:
        cases.append(("START before any LOAD", proto.encode_request(proto.CMD_START), proto.CMD_START,
                      proto.NO_IMAGE))
    cases += [
        ("bad CRC", bytes(bad_crc), proto.CMD_LOAD, proto.BAD_CRC),
        ("truncated frame", good_load[:len(good_load) // 2], proto.CMD_LOAD, proto.TRUNCATED),
        ("truncated header", good_load[:2], proto.CMD_LOAD, proto.TRUNCATED),
        ("unknown command", proto.encode_request(0x7E, b"\x01\x02"), 0x7E, proto.UNKNOWN_COMMAND),
        ("image one pixel short", proto.encode_request(proto.CMD_LOAD, link.pixels_of(image)[:-1]),
         proto.CMD_LOAD, proto.BAD_LENGTH),
        ("image one pixel long (larger than the buffer)",
         proto.encode_request(proto.CMD_LOAD, link.pixels_of(image) + b"\x00"), proto.CMD_LOAD, proto.BAD_LENGTH),
        ("START with a payload", proto.encode_request(proto.CMD_START, b"\x00"), proto.CMD_START,
         proto.BAD_LENGTH),
    ]
    if ident.pixel_bits < 8:
        over = bytearray(link.pixels_of(image))
        over[0] = 1 << ident.pixel_bits
        cases.append(("pixel out of range", proto.encode_request(proto.CMD_LOAD, bytes(over)), proto.CMD_LOAD,
                      proto.BAD_PIXEL))
    cases.append(("noise before a frame", b"\x00\xff\x13" + proto.encode_request(proto.CMD_IDENTIFY),
                  proto.CMD_IDENTIFY, proto.OK))
    seen = []
    for name, data, cmd, expect in cases:
        link.send(data)
        reply = link.read_reply()
        if reply.cmd != cmd or reply.status != expect:
            raise LinkError(f"link test '{name}': the device answered {reply.status_name} to command "
                            f"{reply.cmd:#04x}, expected {proto.STATUS_NAMES[expect]} to {cmd:#04x}.")
        again = link.identify()
        if again != ident:
            raise LinkError(f"link test '{name}': IDENTIFY after the error reply returned another identity.")
        seen.append((name, reply.status_name))
        say(f"  link test: {name}: {reply.status_name}, then IDENTIFY OK")
    # a LOAD while the core runs is refused (checked when an inference is long enough to outlast the frame)
    result, _ = link.infer(image)
    frame_cycles = len(good_load) * 10 * ident.clock_hz / ident.baud
    if result.cycles > 3 * frame_cycles:
        link.send(good_load + proto.encode_request(proto.CMD_START) + good_load)
        statuses = [link.read_reply().status for _ in range(3)]
        if statuses != [proto.OK, proto.OK, proto.BUSY]:
            raise LinkError(f"link test 'LOAD while running': replies {statuses}, expected OK, OK, BUSY.")
        link.read()
        seen.append(("LOAD while the core runs", "BUSY"))
        say("  link test: LOAD while the core runs: BUSY")
    return seen
