"""Board tops around HostLink: `SimBoard` (a plain clock input, for simulation) and `ULX3STop` (the Radiona ULX3S:
25 MHz oscillator -> EHXPLLL -> core clock, FTDI UART, LEDs, FIRE1 button as reset).

Both put the reset through a reset synchroniser (asynchronous assertion, synchronous release), so the core's
synchronous reset is held for at least two clock cycles after configuration, PLL lock or a button press.
"""

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from .link import HostLink

BOARD_TOP = "board_top"
DEFAULT_CLOCK_HZ = 75_000_000
DEFAULT_BAUD = 3_000_000
ULX3S_OSC_HZ = 25_000_000


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


class ULX3STop(Elaboratable):
    """ULX3S top (amaranth-boards platform): PLL to `clock_hz`, reset synchroniser, HostLink on the FTDI UART."""

    def __init__(self, manifest, core_verilog, clock_hz=DEFAULT_CLOCK_HZ, baud=DEFAULT_BAUD):
        self.pll = pll_config(ULX3S_OSC_HZ, clock_hz)
        if self.pll["f_out"] != clock_hz:
            raise ValueError(f"the PLL cannot make exactly {clock_hz} Hz from 25 MHz (closest "
                             f"{self.pll['f_out']:.0f} Hz); choose that clock")
        self.clock_hz = clock_hz
        self.link = HostLink(manifest, core_verilog, clock_hz, baud)

    def elaborate(self, platform):
        m = Module()
        clk25 = platform.request("clk25", 0)
        m.domains.sync = cd = ClockDomain("sync")
        locked = Signal()
        p = self.pll
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{ULX3S_OSC_HZ / 1e6:g}", a_FREQUENCY_PIN_CLKOP=f"{self.clock_hz / 1e6:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=p["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"],
            p_CLKOP_CPHASE=(p["CLKOP_DIV"] - 1) // 2, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=p["CLKFB_DIV"],
            i_RST=0, i_STDBY=0, i_CLKI=clk25.i, o_CLKOP=cd.clk, i_CLKFB=cd.clk,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0,
            i_ENCLKOP=0, o_LOCK=locked)
        # no FREQUENCY constraint on the PLL output: nextpnr derives it from the oscillator's 25 MHz and the
        # dividers (its log says "Derived frequency constraint of 75.0 MHz for net clk"); tools/bitstream.py
        # checks that the report's core clock carries that constraint.
        button = platform.request("button_fire", 0)
        m.submodules.reset_sync = ResetSynchronizer(~locked | button.i, domain="sync")
        uart = platform.request("uart", 0)
        m.submodules.link = link = self.link
        m.d.comb += [link.rx.eq(uart.rx.i), uart.tx.o.eq(link.tx)]
        for i in range(8):
            m.d.comb += platform.request("led", i).o.eq(link.leds[i])
        return m
