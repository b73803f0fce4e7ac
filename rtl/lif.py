"""LIF lane array: P neurons, each run over its T timestep accumulators (docs/intmodel.md), emitting a T-bit word."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .common import field


def membrane_width(acc_width: int, T: int) -> int:
    """Membrane width in U units (V·2^T). |U_H| ≤ max|X|·(2^T − 1) after T steps of halving (it is a geometric
    sum of X·2^T/2^k), so acc_width + T bits hold it; one more bit keeps the unshifted sum U + (X << T)."""
    return acc_width + T + 1


class LifLanes(wiring.Component):
    """P LIF lanes, unrolled over time into a T-stage pipeline (one stage per timestep, no membrane memory).

    Ports:
      in_valid          a new set of accumulators is presented this cycle
      acc   [P·T·A]     signed accumulators, lane p timestep t at field p·T + t (A = acc_width bits each)
      theta [P·Θ]       signed per-lane threshold in U units
      out_valid         spikes holds the result of the set accepted T cycles earlier
      spikes [P·T]      lane p's word at bits [p·T, p·T + T), bit t = timestep t

    Stage t computes U_H = (U + (X_t << T)) >> 1, S = U_H ≥ θ, U = S ? 0 : U_H and registers it.
    Latency: T cycles. Throughput: P neurons (one set) per cycle; there is no back-pressure.
    Membrane registers are acc_width + T + 1 bits wide (membrane_width), enough for any accumulator sequence.
    """

    def __init__(self, lanes: int, T: int, acc_width: int, theta_width: int):
        self.P, self.T, self.A, self.TH = lanes, T, acc_width, theta_width
        super().__init__({
            "in_valid": In(1), "acc": In(lanes * T * acc_width), "theta": In(lanes * theta_width),
            "out_valid": Out(1), "spikes": Out(lanes * T),
        })

    def elaborate(self, platform):
        m = Module()
        P, T, A, TH = self.P, self.T, self.A, self.TH
        mw = membrane_width(A, T)
        valid, acc, theta = self.in_valid, self.acc, self.theta
        u = [0] * P
        spikes = [[] for _ in range(P)]
        for t in range(T):
            v_r = Signal(name=f"valid_{t}")
            acc_r = Signal(P * T * A, name=f"acc_{t}")
            theta_r = Signal(P * TH, name=f"theta_{t}")
            m.d.sync += [v_r.eq(valid), acc_r.eq(acc), theta_r.eq(theta)]
            new_u, new_s = [], [[] for _ in range(P)]
            for p in range(P):
                x = field(acc, p * T + t, A, True)
                u_h = Signal(signed(mw), name=f"uh_{t}_{p}")
                m.d.comb += u_h.eq((u[p] + (x << T)) >> 1)
                fire = u_h >= field(theta, p, TH, True)
                u_r = Signal(signed(mw), name=f"u_{t}_{p}")
                s_r = Signal(name=f"s_{t}_{p}")
                m.d.sync += [u_r.eq(Mux(fire, 0, u_h)), s_r.eq(fire)]
                # earlier spikes travel along the pipeline with their neuron
                prev = []
                for k, s in enumerate(spikes[p]):
                    s_d = Signal(name=f"s_{k}_{p}_d{t}")
                    m.d.sync += s_d.eq(s)
                    prev.append(s_d)
                new_u.append(u_r)
                new_s[p] = prev + [s_r]
            u, spikes = new_u, new_s
            valid, acc, theta = v_r, acc_r, theta_r
        m.d.comb += [self.out_valid.eq(valid), self.spikes.eq(Cat(*[s for p in range(P) for s in spikes[p]]))]
        return m
