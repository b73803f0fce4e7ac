"""Board tops around HostLink: `SimBoard` (a plain clock input, for simulation) and `BoardTop` (a real board through
amaranth-boards: oscillator -> EHXPLLL -> core clock, USB UART, LEDs, a reset button). Boards: Radiona ULX3S-85F
(25 MHz, FTDI FT231X, 8 LEDs, FIRE1 as reset) and LambdaConcept ECPIX-5 85F (100 MHz, FT2232, LEDs on the red and
green of its 4 RGB LEDs, the reset button).

Both put the reset through a reset synchroniser (asynchronous assertion, synchronous release), so the core's
synchronous reset is held for at least two clock cycles after configuration, PLL lock or a button press.
"""

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from .link import HostLink

BOARD_TOP = "board_top"
DEFAULT_CLOCK_HZ = 75_000_000
DEFAULT_BAUD = 3_000_000


class SimBoard(wiring.Component):
    """The whole board top without the PLL: `clk` is the core clock, `arst` an asynchronous active-high reset."""
    clk: In(1)
    arst: In(1)
    rx: In(1, init=1)
    tx: Out(1, init=1)
    leds: Out(8)

    def __init__(self, manifest, core_verilog, clock_hz, baud, timeout_cycles=None):
        self.link = HostLink(manifest, core_verilog, clock_hz, baud, timeout_cycles)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(self.clk)
        m.submodules.reset_sync = ResetSynchronizer(self.arst, domain="sync")
        m.submodules.link = link = self.link
        m.d.comb += [link.rx.eq(self.rx), self.tx.eq(link.tx), self.leds.eq(link.leds)]
        return m


def pll_config(f_in: float, f_out: float) -> dict:
    """EHXPLLL dividers for f_out from f_in: PFD 3.125-400 MHz, VCO 400-800 MHz (ECP5 datasheet); exact or the
    closest. Returns CLKI_DIV, CLKFB_DIV, CLKOP_DIV and the achieved frequency."""
    best = None
    for clki in range(1, 129):
        pfd = f_in / clki
        if not 3.125e6 <= pfd <= 400e6:
            continue
        for fb in range(1, 81):
            out = pfd * fb
            for op in range(1, 129):
                vco = out * op
                if 400e6 <= vco <= 800e6:
                    err = abs(out - f_out)
                    if best is None or err < best[0]:
                        best = (err, {"CLKI_DIV": clki, "CLKFB_DIV": fb, "CLKOP_DIV": op, "f_out": out})
                    break
    if best is None:
        raise ValueError(f"no EHXPLLL setting gives {f_out / 1e6} MHz from {f_in / 1e6} MHz")
    return best[1]


# Boards: amaranth-boards platform, oscillator resource and frequency, reset button (active high after the
# platform's inversion), and the 8 link LEDs as (resource, number, subsignal or None).
BOARDS = {
    "ulx3s-85f": {"platform": ("amaranth_boards.ulx3s", "ULX3S_85F_Platform"), "osc": ("clk25", 25_000_000),
                  "reset": ("button_fire", 0), "leds": [("led", i, None) for i in range(8)],
                  "program": "openFPGALoader -b ulx3s top.bit  (or: fujprog top.bit)"},
    "ecpix5-85f": {"platform": ("amaranth_boards.ecpix5", "ECPIX585Platform"), "osc": ("clk100", 100_000_000),
                   "reset": ("rst", 0), "leds": [("rgb_led", i // 2, "rg"[i % 2]) for i in range(8)],
                   "program": "openFPGALoader -b ecpix5 top.bit"},
}


class BoardTop(Elaboratable):
    """A board's top (amaranth-boards platform): oscillator -> PLL to `clock_hz`, reset synchroniser (PLL not
    locked or the reset button), HostLink on the board's USB UART, 8 LEDs."""

    def __init__(self, board, manifest, core_verilog, clock_hz=DEFAULT_CLOCK_HZ, baud=DEFAULT_BAUD):
        self.spec = BOARDS[board]
        self.osc_hz = self.spec["osc"][1]
        self.pll = pll_config(self.osc_hz, clock_hz)
        if self.pll["f_out"] != clock_hz:
            raise ValueError(f"the PLL cannot make exactly {clock_hz} Hz from {self.osc_hz / 1e6:g} MHz (closest "
                             f"{self.pll['f_out']:.0f} Hz); choose that clock")
        self.clock_hz = clock_hz
        self.link = HostLink(manifest, core_verilog, clock_hz, baud)

    def elaborate(self, platform):
        m = Module()
        # pins through explicit io.Buffer components (dir="-": the platform hands over the port, inversion included)
        def pin(direction, port, name):
            m.submodules[name] = buf = io.Buffer(direction, port)
            return buf
        osc = pin("i", platform.request(self.spec["osc"][0], 0, dir="-"), "osc_buffer")
        m.domains.sync = cd = ClockDomain("sync")
        locked = Signal()
        p = self.pll
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{self.osc_hz / 1e6:g}", a_FREQUENCY_PIN_CLKOP=f"{self.clock_hz / 1e6:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=p["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"],
            p_CLKOP_CPHASE=(p["CLKOP_DIV"] - 1) // 2, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=p["CLKFB_DIV"],
            i_RST=0, i_STDBY=0, i_CLKI=osc.i, o_CLKOP=cd.clk, i_CLKFB=cd.clk,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0,
            i_ENCLKOP=0, o_LOCK=locked)
        # no FREQUENCY constraint on the PLL output: nextpnr derives it from the oscillator's frequency and the
        # dividers (its log says "Derived frequency constraint of 75.0 MHz for net clk"); tools/bitstream.py
        # checks that the report's core clock carries that constraint.
        button = pin("i", platform.request(*self.spec["reset"], dir="-"), "button_buffer")
        m.submodules.reset_sync = ResetSynchronizer(~locked | button.i, domain="sync")
        uart = platform.request("uart", 0, dir="-")
        rx, tx = pin("i", uart.rx, "uart_rx_buffer"), pin("o", uart.tx, "uart_tx_buffer")
        m.submodules.link = link = self.link
        m.d.comb += [link.rx.eq(rx.i), tx.o.eq(link.tx)]
        requested = {}
        for i, (name, number, sub) in enumerate(self.spec["leds"]):
            res = requested.get((name, number)) or platform.request(name, number, dir="-")
            requested[(name, number)] = res
            led = pin("o", getattr(res, sub) if sub else res, f"led{i}_buffer")
            m.d.comb += led.o.eq(link.leds[i])
        return m
