"""LIF lane array (SPEC §2.4): P neurons stepped through their T accumulators, one timestep per cycle."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def lif_membrane_bits(acc_width: int, T: int) -> int:
    """Width of the pre-shift sum U + (X << T): U is a halving geometric sum of earlier X·2^T, so |U| < 2^(A-1+T)
    and the sum needs one bit more than X << T."""
    return acc_width + T + 1


class LifArray(wiring.Component):
    """P LIF lanes. A set (T accumulators and one threshold per lane) is taken on in_valid & in_ready; then one
    timestep per cycle: U_H = (U + (X_t << T)) >> 1, S_t = U_H >= theta, U = S_t ? 0 : U_H, starting from U = 0.

    Ports (packed, lane p / timestep t):
      in_valid, in_ready   handshake of a set
      acc   [P*T*A]        signed accumulator X_t of lane p at field p*T + t
      theta [P*TH]         signed threshold of lane p, in U units (V * 2^T)
      out_valid, out_ready handshake of a result; spikes is held while out_valid & ~out_ready
      spikes [P*T]         lane p's T-bit word at bits [p*T, p*T + T), bit t = timestep t

    Latency: T cycles from the accepting edge to out_valid. Throughput: one set (P neurons) per T + 1 cycles
    (a new set is taken on the edge that hands the previous result out). No membrane memory: the membrane
    lives in a lif_membrane_bits(A, T)-bit register per lane for the T cycles of one set.
    """

    def __init__(self, lanes: int, T: int, acc_width: int, theta_width: int):
        self.lanes, self.T, self.acc_width, self.theta_width = lanes, T, acc_width, theta_width
        super().__init__({
            "in_valid": In(1), "in_ready": Out(1), "acc": In(lanes * T * acc_width),
            "theta": In(lanes * theta_width),
            "out_valid": Out(1), "out_ready": In(1), "spikes": Out(lanes * T),
        })

    def elaborate(self, platform):
        m = Module()
        P, T, A, TH = self.lanes, self.T, self.acc_width, self.theta_width
        busy = Signal()
        step = Signal(range(T))
        m.d.comb += self.in_ready.eq(~busy & (~self.out_valid | self.out_ready))
        with m.If(self.out_valid & self.out_ready):
            m.d.sync += self.out_valid.eq(0)
        for p in range(P):
            # The lane's accumulators shift down by A each step, so step t always reads the low field: no mux.
            xs = Signal(T * A, name=f"xs{p}")
            theta = Signal(signed(TH), name=f"theta{p}")
            u = Signal(signed(lif_membrane_bits(A, T)), name=f"u{p}")
            word = self.spikes[p * T:(p + 1) * T]
            u_h = Signal(signed(lif_membrane_bits(A, T)), name=f"u_h{p}")
            m.d.comb += u_h.eq((u + (xs[:A].as_signed() << T)) >> 1)
            fire = u_h >= theta
            with m.If(self.in_valid & self.in_ready):
                m.d.sync += [xs.eq(self.acc[p * T * A:(p + 1) * T * A]), theta.eq(self.theta[p * TH:(p + 1) * TH]),
                             u.eq(0)]
            with m.Elif(busy):
                # the word fills from the top, so after T steps bit t holds step t
                m.d.sync += [xs.eq(xs >> A), u.eq(Mux(fire, 0, u_h)), word.eq(Cat(word[1:], fire))]
        with m.If(self.in_valid & self.in_ready):
            m.d.sync += [busy.eq(1), step.eq(0)]
        with m.Elif(busy):
            m.d.sync += step.eq(step + 1)
            with m.If(step == T - 1):
                m.d.sync += [busy.eq(0), self.out_valid.eq(1)]
        return m
