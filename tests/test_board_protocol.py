"""The board link without a simulator: CRC, framing, the device model (golden twin of rtl/board/link.py) against the
host runtime, the PLL divider search and the run/bitstream commands' user errors."""
import os
import subprocess
import sys

import numpy as np
import pytest

from golden import intmodel as im
from golden import protocol as proto
from golden.inference import run as golden_run
from host.runtime import BoardLink, LinkError, link_test

pytestmark = pytest.mark.unit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_crc16_ccitt_false_check_value():
    # the catalogued check value of CRC-16/CCITT-FALSE over the ASCII digits 1..9
    assert proto.crc16(b"123456789") == 0x29B1


def test_crc_logic_matches_the_golden_crc():
    from rtl.board.link import CRC16_MATRIX
    rng = np.random.default_rng(3)
    for crc, byte in rng.integers(0, [65536, 256], size=(500, 2)):
        out = 0
        for bit, (crc_bits, byte_bits) in enumerate(CRC16_MATRIX):
            v = sum((int(crc) >> i) & 1 for i in crc_bits) + sum((int(byte) >> j) & 1 for j in byte_bits)
            out |= (v & 1) << bit
        assert out == proto.crc16(bytes([int(byte)]), int(crc))


def test_frames_round_trip_and_bad_crc_is_refused():
    frame = proto.encode_reply(proto.CMD_READ, proto.OK, b"\x01\x02\x03")
    assert proto.crc16(frame[1:]) == 0                    # CRC over a frame including its CRC is zero
    reply, rest = proto.decode_reply(b"\x00\x11" + frame + b"\x5a")
    assert (reply.cmd, reply.status, reply.payload, rest) == (proto.CMD_READ, proto.OK, b"\x01\x02\x03", b"\x5a")
    broken = bytearray(frame)
    broken[6] ^= 0x80
    with pytest.raises(proto.ProtocolError, match="CRC"):
        proto.decode_reply(bytes(broken))
    with pytest.raises(proto.ProtocolError, match="incomplete"):
        proto.decode_reply(frame[:-1])


class ModelPort:
    """A serial port wired to DeviceModel: a read that finds nothing waiting is the line going idle."""

    def __init__(self, device):
        self.device, self.pending = device, bytearray()

    def write(self, data):
        self.pending += self.device.feed(data)

    def read(self, n):
        if not self.pending:
            self.pending += self.device.idle()
        out, self.pending = bytes(self.pending[:n]), self.pending[n:]
        return out

    def close(self):
        pass


@pytest.fixture(scope="module")
def small_model():
    cfg = im.make_config(T=2, input_bits=6, in_channels=2, image_size=[4, 4], tokenizer=[{"out": 16, "pool": False}],
                         embed_dim=16, heads=1, blocks=1, mlp_hidden=48, num_classes=3, weight_bits=6)
    return im.random_intmodel(cfg, seed=13, firing=0.1)


def _device(model, logit_bits=20):
    ident = proto.Identity(proto.PROTOCOL_VERSION, 1, b"\x01\x02\x03\x04", bytes.fromhex(model.sha256),
                           model.config["T"], 16, model.config["num_classes"], model.input_bits,
                           int(np.prod(model.input_shape)), 100_000_000, 12_500_000, logit_bits)

    def infer(pixels):
        img = np.frombuffer(pixels, dtype=np.uint8).astype(np.int64).reshape(1, *model.input_shape)
        res = golden_run(model, img)
        return int(res.classes[0]), [int(v) for v in res.logits[0]], 1234, False
    return proto.DeviceModel(ident, infer), ident


@pytest.mark.parametrize("logit_bits", [20, 33])      # logits travel as int32, or int64 above 32 bits
def test_host_runtime_against_the_device_model(small_model, logit_bits):
    device, ident = _device(small_model, logit_bits)
    link = BoardLink(ModelPort(device), timeout=0.5)
    assert link.identify() == ident
    rng = np.random.default_rng(4)
    images = rng.integers(0, 1 << small_model.input_bits, size=(4, *small_model.input_shape))
    seen = link_test(link, images[0], fresh=True, say=lambda *_: None)
    assert [s for _, s in seen] == ["NO_IMAGE", "BAD_CRC", "TRUNCATED", "TRUNCATED", "UNKNOWN_COMMAND",
                                    "BAD_LENGTH", "BAD_LENGTH", "BAD_LENGTH", "BAD_PIXEL", "OK"]
    ref = golden_run(small_model, images)
    for i, image in enumerate(images):
        result, _ = link.infer(image)
        assert result.done and not result.overflow and result.cycles == 1234
        assert result.logits == [int(v) for v in ref.logits[i]] and result.pred_class == int(ref.classes[i])


def test_host_reports_a_wrong_status(small_model):
    device, _ = _device(small_model)
    link = BoardLink(ModelPort(device), timeout=0.5)
    link.identify()
    with pytest.raises(LinkError, match="START: the device answered START NO_IMAGE, expected OK"):
        link.request(proto.CMD_START)


def test_host_times_out_on_a_silent_port():
    class Silent:
        def write(self, data):
            pass

        def read(self, n):
            return b""
    with pytest.raises(LinkError, match="did not answer within"):
        BoardLink(Silent(), timeout=0.05).identify()


@pytest.mark.parametrize("mhz", [50, 60, 75, 100])
def test_pll_settings_are_legal_and_exact(mhz):
    from rtl.board.top import pll_config
    p = pll_config(25e6, mhz * 1e6)
    pfd = 25e6 / p["CLKI_DIV"]
    assert 3.125e6 <= pfd <= 400e6 and 400e6 <= pfd * p["CLKFB_DIV"] * p["CLKOP_DIV"] <= 800e6
    assert pfd * p["CLKFB_DIV"] == p["f_out"] == mhz * 1e6


def _flow(*args, cwd=ROOT):
    return subprocess.run([sys.executable, os.path.join(ROOT, "flow.py"), *args], cwd=cwd, capture_output=True,
                          text=True)


def test_run_with_a_missing_port_is_one_sentence(tmp_path, small_model):
    im.save(small_model, str(tmp_path / "m.zip"))
    im.save_testset(str(tmp_path / "t.npz"), np.zeros((1, *small_model.input_shape), dtype=int), np.zeros(1))
    r = _flow("run", "--port", str(tmp_path / "no-such-tty"), "--model", str(tmp_path / "m.zip"),
              "--testset", str(tmp_path / "t.npz"), "--out", str(tmp_path / "run.json"))
    assert r.returncode == 2 and "cannot open the serial port" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run.json").exists()


def test_bitstream_without_a_core_is_one_sentence(tmp_path):
    r = _flow("bitstream", "--rtl", str(tmp_path / "none"), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "run `python flow.py gen-rtl` first" in r.stderr
    assert not (tmp_path / "out").exists()
