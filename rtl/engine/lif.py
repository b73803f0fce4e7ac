"""LifLanes: the LIF epilogue of the core, one timestep of P lanes per cycle (golden twin: golden.components.lif_lanes)."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .util import fits


def lif_input_width(membrane_width: int, T: int) -> int:
    """Bits of the LIF's input: a wider input cannot give a membrane that fits `membrane_width` bits."""
    return max(membrane_width + 2 - T, 2)


class LifLanes(wiring.Component):
    """P LIF neurons (τ = 2, hard reset, U in V·2^T units) stepped over the T values of one output, one timestep
    per cycle; the membrane is a register per lane (no membrane memory), cleared by the step of timestep T − 1, so
    every output starts from U = 0 when each output runs its timesteps 0 .. T − 1 in order (the core's epilogue and
    stream-LIF sequencer always do).

    Ports:
      start, theta[P]     latch the lanes' thresholds (before timestep 0)
      valid, step, x[P]   timestep `step`'s input values (x is any signed width; values beyond the LIF's input
                          width LA = lif_input_width(MW, T) raise overflow)
      spikes[P]           lane l's T-bit word, bit t = spike at timestep t
      overflow            some input or membrane of the last step left its width (never expected)

    Stage 1 registers a = x (LA bits), b = 2θ − a·2^T and whether the step is timestep T − 1, in every cycle
    (valid only marks the cycles whose values stage 2 uses: no enable fans out from the caller's control to the
    stage's registers); stage 2 fires when U ≥ b (⟺ ⌊(U + a·2^T) / 2⌋ ≥ θ: no add in front of the compare), sets
    spikes[l] bit `step` and U ← (fire or last timestep) ? 0 : (U + a·2^T) >> 1. The clear sits behind the
    compare, as the membrane register's synchronous reset, so the step flag reaches one gate per lane; a
    timestep-0 flag selecting U = 0 in front of the compare fanned out to every membrane bit and was the 16-lane
    core's critical path. `start` needs no path to the membranes.
    Latency: 2 cycles (valid in cycle c → spike bit, membrane and overflow visible from cycle c + 2).
    Throughput: P neurons × one timestep per cycle; a whole output: T cycles + 1 to drain (T + 2 from the first
    valid to its last spike visible).
    """

    def __init__(self, lanes: int, T: int, x_width: int, theta_width: int, membrane_width: int):
        self.P, self.T, self.XW, self.TW, self.MW = lanes, T, x_width, theta_width, membrane_width
        self.LA = lif_input_width(membrane_width, T)
        super().__init__({
            "start": In(1), "theta": In(data.ArrayLayout(unsigned(theta_width), lanes)),
            "valid": In(1), "step": In(range(T)), "x": In(data.ArrayLayout(signed(x_width), lanes)),
            "spikes": Out(data.ArrayLayout(unsigned(T), lanes)), "overflow": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        P, T, LA, MW, TW = self.P, self.T, self.LA, self.MW, self.TW
        theta = [Signal(unsigned(TW), name=f"theta_{l}") for l in range(P)]
        U = [Signal(signed(MW), name=f"u_{l}") for l in range(P)]
        spk = [Signal(T, name=f"spk_{l}") for l in range(P)]
        lif_a = [Signal(signed(LA), name=f"lif_a_{l}") for l in range(P)]
        lif_b = [Signal(signed(max(TW + 2, LA + T + 1) + 1), name=f"lif_b_{l}") for l in range(P)]   # 2θ - a·2^T
        lif_ok = Signal(P)
        lif_v = Signal()
        lif_t = Signal(range(T))
        lif_last = Signal()
        lif_bad = Signal(P)

        # stage 1: the input register
        m.d.sync += [lif_v.eq(self.valid), lif_t.eq(self.step), lif_last.eq(self.step == T - 1)]
        for l in range(P):
            v = self.x[l]
            a = v[:LA].as_signed() if len(v) > LA else v
            m.d.sync += [lif_a[l].eq(a), lif_b[l].eq((theta[l] << 1) - (a << T)),
                         lif_ok[l].eq(fits(v, LA) if len(v) > LA else 1)]

        # stage 2: the step
        for l in range(P):
            total = Signal(signed(MW + 3), name=f"lifsum_{l}")
            m.d.comb += total.eq(U[l] + (lif_a[l] << T))
            fire = U[l] >= lif_b[l]       # floor(total / 2) >= θ  ⟺  U >= 2θ - a·2^T: no add before the compare
            with m.If(lif_v):
                m.d.sync += [U[l].eq(Mux(fire | lif_last, 0, total >> 1)),
                             lif_bad[l].eq(~fits(total, MW) | ~lif_ok[l])]
                for tt in range(T):
                    with m.If(lif_t == tt):
                        m.d.sync += spk[l][tt].eq(fire)
            with m.Else():
                m.d.sync += lif_bad[l].eq(0)
            m.d.comb += self.spikes[l].eq(spk[l])

        with m.If(self.start):
            m.d.sync += [theta[l].eq(self.theta[l]) for l in range(P)]
        m.d.comb += self.overflow.eq(lif_bad.any())
        return m
