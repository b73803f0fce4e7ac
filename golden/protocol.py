"""The board's host-link protocol: framing, CRC and a bit-exact Python model of the device side.

The host runtime (host/) and the board top's link controller (rtl/board/link.py) both follow this module; the
device model here is the golden twin of that controller (same replies, same error precedence), so the host
runtime can be tested against it without a simulator. docs/board.md describes the protocol for users.

Frame, host -> device:  0xA5, cmd, len_lo, len_hi, payload[len], crc_hi, crc_lo
Reply, device -> host:  0x5A, cmd, status, len_lo, len_hi, payload[len], crc_hi, crc_lo
CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor) over every byte after the sync byte up to
the CRC, sent high byte first; the CRC run over a whole frame including its CRC is therefore 0.

Commands: IDENTIFY (0x01, no payload), LOAD (0x02, one byte per pixel in channel-row-column order), START (0x03),
READ (0x04: waits until the core is idle, then returns the result of the last inference; logits as int32, or
int64 when the core's logit width exceeds 32 bits).
The device ignores bytes outside a frame until it sees the sync byte. A frame that stops for longer than the
link's timeout is answered TRUNCATED; after a bad CRC or a length larger than the device's buffer the device
discards bytes until the line has been idle for the timeout, then answers, so one bad frame gives one error
reply and the next frame is parsed from its sync byte.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

SYNC_REQUEST = 0xA5
SYNC_REPLY = 0x5A
PROTOCOL_VERSION = 1

CMD_IDENTIFY, CMD_LOAD, CMD_START, CMD_READ = 0x01, 0x02, 0x03, 0x04
COMMANDS = {CMD_IDENTIFY: "IDENTIFY", CMD_LOAD: "LOAD", CMD_START: "START", CMD_READ: "READ"}

# Reply status codes, in the order the device checks them.
OK, BAD_CRC, TRUNCATED, UNKNOWN_COMMAND, BAD_LENGTH, BAD_PIXEL, BUSY, NO_IMAGE = range(8)
STATUS_NAMES = {OK: "OK", BAD_CRC: "BAD_CRC", TRUNCATED: "TRUNCATED", UNKNOWN_COMMAND: "UNKNOWN_COMMAND",
                BAD_LENGTH: "BAD_LENGTH", BAD_PIXEL: "BAD_PIXEL", BUSY: "BUSY", NO_IMAGE: "NO_IMAGE"}

# READ reply flags
FLAG_DONE, FLAG_OVERFLOW = 0x01, 0x02

IDENTIFY_FORMAT = "<BB4s32sBBBBHIIB"   # see Identity
IDENTIFY_LEN = struct.calcsize(IDENTIFY_FORMAT)
RESULT_HEADER = "<BBI"                 # flags, class, cycles; then K little-endian logits (logit_bytes each)


def logit_bytes(logit_bits: int) -> int:
    """Bytes per logit in a READ reply: int32 when the core's logits fit 32 bits, else int64."""
    return 4 if logit_bits <= 32 else 8


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of data (continuing from crc)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def encode_request(cmd: int, payload: bytes = b"") -> bytes:
    body = bytes([cmd & 0xFF]) + struct.pack("<H", len(payload)) + bytes(payload)
    return bytes([SYNC_REQUEST]) + body + struct.pack(">H", crc16(body))


def encode_reply(cmd: int, status: int, payload: bytes = b"") -> bytes:
    body = bytes([cmd & 0xFF, status]) + struct.pack("<H", len(payload)) + bytes(payload)
    return bytes([SYNC_REPLY]) + body + struct.pack(">H", crc16(body))


@dataclass
class Reply:
    cmd: int
    status: int
    payload: bytes

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, f"status {self.status}")


class ProtocolError(Exception):
    """The device's reply could not be decoded (no sync, bad CRC, or incomplete)."""


def decode_reply(data: bytes) -> tuple[Reply, bytes]:
    """Decode the first reply in data; returns (reply, the bytes after it). Raises ProtocolError."""
    start = data.find(bytes([SYNC_REPLY]))
    if start < 0 or len(data) - start < 7:
        raise ProtocolError(f"incomplete reply ({len(data)} bytes: {data[:16].hex()})")
    length = struct.unpack_from("<H", data, start + 3)[0]
    end = start + 5 + length + 2
    if len(data) < end:
        raise ProtocolError(f"incomplete reply: {len(data) - start} of {end - start} bytes")
    if crc16(data[start + 1:end]) != 0:
        raise ProtocolError("reply with a bad CRC")
    return Reply(data[start + 1], data[start + 2], bytes(data[start + 5:end - 2])), bytes(data[end:])


@dataclass
class Identity:
    protocol: int
    core_interface: int        # manifest version of the core's port contract
    core_id: bytes             # first 4 bytes of the core Verilog's sha256
    model_sha256: bytes
    T: int
    lanes: int
    classes: int
    pixel_bits: int
    pixels: int
    clock_hz: int
    baud: int
    logit_bits: int

    def pack(self) -> bytes:
        return struct.pack(IDENTIFY_FORMAT, self.protocol, self.core_interface, self.core_id, self.model_sha256,
                           self.T, self.lanes, self.classes, self.pixel_bits, self.pixels, self.clock_hz,
                           self.baud, self.logit_bits)

    @classmethod
    def unpack(cls, payload: bytes) -> "Identity":
        if len(payload) != IDENTIFY_LEN:
            raise ProtocolError(f"IDENTIFY reply of {len(payload)} bytes, expected {IDENTIFY_LEN}")
        return cls(*struct.unpack(IDENTIFY_FORMAT, payload))

    @classmethod
    def from_manifest(cls, manifest: dict, clock_hz: int, baud: int) -> "Identity":
        return cls(PROTOCOL_VERSION, manifest["version"], bytes.fromhex(manifest["verilog_sha256"])[:4],
                   bytes.fromhex(manifest["model_sha256"]), manifest["parameters"]["T"],
                   manifest["parameters"]["lanes"], manifest["dims"]["K"], manifest["widths"]["pixel"],
                   manifest["dims"]["pixels"], int(clock_hz), int(baud), manifest["widths"]["logit"])


@dataclass
class Result:
    done: bool
    overflow: bool
    pred_class: int
    cycles: int
    logits: list

    def pack(self, logit_bits: int) -> bytes:
        flags = (FLAG_DONE if self.done else 0) | (FLAG_OVERFLOW if self.overflow else 0)
        code = "i" if logit_bytes(logit_bits) == 4 else "q"
        return struct.pack(RESULT_HEADER, flags, self.pred_class, self.cycles) + \
            struct.pack(f"<{len(self.logits)}{code}", *self.logits)

    @classmethod
    def unpack(cls, payload: bytes, classes: int, logit_bits: int) -> "Result":
        head, lb = struct.calcsize(RESULT_HEADER), logit_bytes(logit_bits)
        if len(payload) != head + lb * classes:
            raise ProtocolError(f"READ reply of {len(payload)} bytes, expected {head + lb * classes}")
        flags, cls_, cycles = struct.unpack_from(RESULT_HEADER, payload)
        logits = list(struct.unpack_from(f"<{classes}{'i' if lb == 4 else 'q'}", payload, head))
        return cls(bool(flags & FLAG_DONE), bool(flags & FLAG_OVERFLOW), cls_, cycles, logits)


class DeviceModel:
    """Golden twin of the board's link controller: feed it request bytes, get reply bytes.

    infer(pixels) -> (pred_class, logits, cycles, overflow) stands in for the core. idle() models the line staying
    quiet for longer than the device's timeout (what ends a truncated frame or a discard).
    """

    def __init__(self, identity: Identity, infer):
        self.identity, self.infer = identity, infer
        self.buffer_len = max(1, identity.pixels)
        self.state = "HUNT"
        self.header = b""
        self.payload = bytearray()
        self.crc_bytes = b""
        self.pending_error = None
        self.image = None
        self.result = Result(False, False, 0, 0, [0] * identity.classes)

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            out += self._byte(byte)
        return bytes(out)

    def idle(self) -> bytes:
        if self.state == "DRAIN":
            self.state = "HUNT"
            return encode_reply(self.header[0] if self.header else 0, self.pending_error)
        if self.state in ("HEADER", "PAYLOAD", "CRC"):
            self.state = "HUNT"
            return encode_reply(self.header[0] if self.header else 0, TRUNCATED)
        return b""

    def _byte(self, byte: int) -> bytes:
        if self.state == "HUNT":
            if byte == SYNC_REQUEST:
                self.state, self.header, self.payload, self.crc_bytes = "HEADER", b"", bytearray(), b""
            return b""
        if self.state == "DRAIN":
            return b""
        if self.state == "HEADER":
            self.header += bytes([byte])
            if len(self.header) == 3:
                length = self.header[1] | self.header[2] << 8
                if length > self.buffer_len:
                    self.state, self.pending_error = "DRAIN", BAD_LENGTH
                else:
                    self.state = "PAYLOAD" if length else "CRC"
            return b""
        if self.state == "PAYLOAD":
            self.payload.append(byte)
            if len(self.payload) == (self.header[1] | self.header[2] << 8):
                self.state = "CRC"
            return b""
        self.crc_bytes += bytes([byte])          # state CRC
        if len(self.crc_bytes) < 2:
            return b""
        if crc16(self.header + bytes(self.payload) + self.crc_bytes) != 0:
            self.state, self.pending_error = "DRAIN", BAD_CRC
            return b""
        self.state = "HUNT"
        return self._execute(self.header[0], bytes(self.payload))

    def _execute(self, cmd: int, payload: bytes) -> bytes:
        ident = self.identity
        if cmd not in COMMANDS:
            return encode_reply(cmd, UNKNOWN_COMMAND)
        if len(payload) != (ident.pixels if cmd == CMD_LOAD else 0):
            return encode_reply(cmd, BAD_LENGTH)
        if cmd == CMD_IDENTIFY:
            return encode_reply(cmd, OK, ident.pack())
        if cmd == CMD_LOAD:
            if any(p >> ident.pixel_bits for p in payload):
                return encode_reply(cmd, BAD_PIXEL)
            self.image = bytes(payload)
            return encode_reply(cmd, OK)
        if cmd == CMD_START:
            if self.image is None:
                return encode_reply(cmd, NO_IMAGE)
            cls_, logits, cycles, overflow = self.infer(self.image)
            self.result = Result(True, bool(overflow), int(cls_), int(cycles), [int(v) for v in logits])
            return encode_reply(cmd, OK)
        return encode_reply(cmd, OK, self.result.pack(ident.logit_bits))     # READ (the model's core is never busy)
