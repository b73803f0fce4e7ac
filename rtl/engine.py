"""SpikeEngine: one programmable, event-driven, accumulate-only layer engine for a whole Spikingformer.

A controller walks the layer table (a ROM written by gen-rtl, see rtl/engine_plan.py and docs/engine.md) with
one shared loop nest: output position → output lane group → kernel tap → input row. Each input row (P T-bit
spike words, one pixel, or one Z value) is scanned by a priority encoder that emits one event per cycle for every
non-zero word (or set bit, in the bit-serial layers), so silent neurons cost nothing but the row's scan cycle.
An event reads one weight row (P weights) and adds it into the T accumulators of every lane where the word's bit
t is set (time-inner dataflow). The epilogue then runs the LIF over the T accumulators (no membrane memory),
or adds them into the residual-stream RAM.

Cycle cost (exact; `hls_models/engine_cycles.py` is the formula, the tests compare it with the RTL):
  per layer: 2 (fetch) ; per output (position, group): 2 + Σ_taps [1 if out of bounds else Σ_rows (2 + nnz(row) + 1)]
  + epilogue (T for LIF + 1 write | 2T stream add | 1 pool write | 1 head write).
  pooling rows cost 2 (no scan). stream LIF outputs: 2 + 2T + T + 1. KV: (2N + 3) per (group, K channel).
  head Z: (N·T + 3) per group. argmax: K + 1 cycles.
There is no multiplier: the bit-serial layers (first conv over pixel bits, head over the bits of Z) shift-add.
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .engine_plan import (FIELDS, OP_ACC, OP_ATTN, OP_CONV_IN, OP_HEAD, OP_HEAD_Z, OP_KV, OP_POOL, OP_STREAM_LIF,
                          Plan)


def _pack(values, width):
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & ((1 << width) - 1)) << (i * width)
    return word


def _bits(n):
    return max(1, int(n).bit_length())


class SpikeEngine(wiring.Component):
    """The whole core. Ports:

    in_valid/in_ready/in_data: load the image's pixels (channel, row, column order) while idle.
    start: begin an inference; busy while running; done rises when the class is ready and stays until start.
    pred_class, logit_sel -> logit (combinational readout), cycles (cycles of the last inference),
    overflow (sticky: some value left its analysed width — never expected), dbg_addr -> dbg_data (activation RAM
    row, one cycle latency) for checking every layer's spike words.
    """

    def __init__(self, plan: Plan):
        self.plan = plan
        w, dm = plan.widths, plan.dims
        self.P, self.T = plan.lanes, plan.T
        self.K = dm["K"]
        self.act_width = self.P * self.T
        super().__init__({
            "in_valid": In(1), "in_ready": Out(1), "in_data": In(w["pixel"]),
            "start": In(1), "busy": Out(1), "done": Out(1),
            "pred_class": Out(_bits(max(1, self.K - 1))),
            "logit_sel": In(_bits(max(1, self.K - 1))), "logit": Out(signed(w["logit"])),
            "cycles": Out(32), "overflow": Out(1),
            "dbg_addr": In(_bits(max(1, dm["act_rows"] - 1))), "dbg_data": Out(self.act_width),
        })

    # ---------------------------------------------------------------- layer table packing
    def field_widths(self):
        widths = {}
        for f in FIELDS:
            vals = [e[f] for e in self.plan.layers]
            if f == "a0":
                widths[f] = max(_bits(abs(v)) for v in vals) + 1
            else:
                widths[f] = _bits(max(vals))
        return widths

    def elaborate(self, platform):
        m = Module()
        plan, P, T = self.plan, self.P, self.T
        W, D = plan.widths, plan.dims
        fw = self.field_widths()
        lt_width = sum(fw.values())

        def pack_entry(e):
            word, off = 0, 0
            for f in FIELDS:
                word |= (int(e[f]) & ((1 << fw[f]) - 1)) << off
                off += fw[f]
            return word

        # ---------------------------------------------------------------- memories
        lt_mem = memory.Memory(shape=unsigned(lt_width), depth=len(plan.layers),
                               init=[pack_entry(e) for e in plan.layers])
        img_mem = memory.Memory(shape=unsigned(W["pixel"]), depth=D["pixels"], init=[])
        act_mem = memory.Memory(shape=unsigned(P * T), depth=max(1, D["act_rows"]), init=[])
        WB = W["weight"]
        w_mem = memory.Memory(shape=unsigned(P * WB), depth=max(1, D["weight_rows"]),
                              init=[_pack(r, WB) for r in plan.weight_rows])
        BW, TW = W["bias"], W["theta"]
        p_mem = memory.Memory(shape=unsigned(P * (BW + TW)), depth=max(1, D["param_rows"]),
                              init=[_pack(b, BW) | (_pack(t, TW) << (P * BW)) for b, t in plan.param_rows])
        SW = W["stream"]
        s_mem = memory.Memory(shape=unsigned(P * SW), depth=max(1, D["stream_rows"]), init=[])
        KW = W["kv"]
        kv_mem = memory.Memory(shape=unsigned(P * T * KW), depth=max(1, D["kv_rows"]), init=[])
        ZW = W["z"]
        z_mem = memory.Memory(shape=unsigned(P * ZW), depth=max(1, D["z_rows"]), init=[])
        for name, mem in [("layer_table", lt_mem), ("image", img_mem), ("act", act_mem), ("weights", w_mem),
                          ("params", p_mem), ("stream", s_mem), ("kv", kv_mem), ("z", z_mem)]:
            m.submodules[name] = mem
        lt_rd = lt_mem.read_port()
        img_rd, img_wr = img_mem.read_port(), img_mem.write_port()
        act_rd, act_wr, act_dbg = act_mem.read_port(), act_mem.write_port(), act_mem.read_port()
        w_rd, p_rd = w_mem.read_port(), p_mem.read_port()
        s_rd, s_wr = s_mem.read_port(), s_mem.write_port()
        kv_rd, kv_wr = kv_mem.read_port(), kv_mem.write_port()
        z_rd, z_wr = z_mem.read_port(), z_mem.write_port()

        m.d.comb += [act_dbg.addr.eq(self.dbg_addr), self.dbg_data.eq(act_dbg.data)]

        # ---------------------------------------------------------------- layer registers
        L = {}
        off = 0
        for f in FIELDS:
            L[f] = Signal(signed(fw[f]) if f == "a0" else unsigned(fw[f]), name=f"L_{f}")
            off += fw[f]
        lt_fields = {}
        off = 0
        for f in FIELDS:
            raw = lt_rd.data[off:off + fw[f]]
            lt_fields[f] = raw.as_signed() if f == "a0" else raw
            off += fw[f]

        AW = W["acc"]
        MW = W["membrane"]
        ADW = _bits(max(D["act_rows"], D["weight_rows"], D["pixels"], D["stream_rows"], D["kv_rows"],
                        D["param_rows"], 2)) + 2  # signed address arithmetic with headroom
        lp = _bits(P) - 1  # log2(P)

        acc = [[Signal(signed(AW), name=f"acc_{l}_{t}") for t in range(T)] for l in range(P)]
        theta = [Signal(unsigned(TW), name=f"theta_{l}") for l in range(P)]
        U = [Signal(signed(MW), name=f"u_{l}") for l in range(P)]
        spk = [Signal(T, name=f"spk_{l}") for l in range(P)]
        logits = [Signal(signed(W["logit"]), name=f"logit_{k}") for k in range(self.K)]
        overflow = Signal()
        m.d.comb += self.overflow.eq(overflow)

        def fits(value, width):
            return (value >= -(1 << (width - 1))) & (value <= (1 << (width - 1)) - 1)

        # counters
        layer = Signal(range(len(plan.layers) + 1))
        y, x = Signal(16), Signal(16)
        ys, xs = Signal(16), Signal(16)
        ybase, xbase = Signal(signed(ADW)), Signal(signed(ADW))
        g = Signal(16)
        out_row = Signal(ADW)
        srow = Signal(ADW)
        grow = Signal(ADW)
        gdp = Signal(16)
        wg = Signal(ADW)
        ky, kx = Signal(2), Signal(2)
        tap_yoff, tap_xoff = Signal(ADW), Signal(ADW)
        wtap = Signal(ADW)
        gi = Signal(16)
        gi_off, wgi = Signal(ADW), Signal(ADW)
        MASKW = max(P, W["pixel"], ZW)
        mask = Signal(MASKW)
        rowdata = Signal(P * T)
        t = Signal(range(T + 1))
        ev_valid = Signal()
        ev_word = Signal(T)
        ev_shift = Signal(range(MASKW))
        ev_neg = Signal()
        ev_attn = Signal()
        # KV / head-Z counters
        kv_i = Signal(16)
        hdp = Signal(16)
        n = Signal(16)
        nG = Signal(ADW)
        kv_row = Signal(ADW)
        kv_pend = Signal()
        kword = Signal(T)
        hz_addr, hz_nbase = Signal(ADW), Signal(ADW)
        hz_pend = Signal()
        kidx = Signal(range(self.K + 1))
        best = Signal(range(max(2, self.K)))
        bestval = Signal(signed(W["logit"]))
        cycles = Signal(32)
        busy = Signal()
        done = Signal()
        ld_addr = Signal(range(D["pixels"] + 1))

        m.d.comb += [self.busy.eq(busy), self.done.eq(done), self.cycles.eq(cycles),
                     self.pred_class.eq(best), self.logit.eq(Array(logits)[self.logit_sel])]

        # image load port
        m.d.comb += [self.in_ready.eq(~busy), img_wr.addr.eq(ld_addr), img_wr.data.eq(self.in_data),
                     img_wr.en.eq(self.in_valid & ~busy)]
        with m.If(self.in_valid & ~busy):
            m.d.sync += ld_addr.eq(Mux(ld_addr == D["pixels"] - 1, 0, ld_addr + 1))
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)

        # ---------------------------------------------------------------- event accumulate (one stage after SCAN)
        m.d.sync += ev_valid.eq(0)
        with m.If(ev_valid):
            for l in range(P):
                wv = w_rd.data[l * WB:(l + 1) * WB].as_signed()
                shifted = Signal(signed(AW + 1), name=f"wsh_{l}")
                m.d.comb += shifted.eq(Mux(ev_neg, -(wv << ev_shift), wv << ev_shift))
                for tt in range(T):
                    kvv = kv_rd.data[(tt * P + l) * KW:(tt * P + l + 1) * KW]
                    addend = Mux(ev_attn, kvv.as_unsigned(), shifted)
                    total = acc[l][tt] + addend
                    with m.If(ev_word[tt]):
                        m.d.sync += acc[l][tt].eq(total)
                        with m.If(~fits(total, AW)):
                            m.d.sync += overflow.eq(1)

        # ---------------------------------------------------------------- helpers for the loop nest
        pad = Mux(L["k3"], 1, 0)
        iy = Signal(signed(18))
        ix = Signal(signed(18))
        m.d.comb += [iy.eq(ys + ky - pad), ix.eq(xs + kx - pad)]
        in_bounds = (iy >= 0) & (iy < L["Hi"]) & (ix >= 0) & (ix < L["Wi"])
        row_addr = Signal(signed(ADW + 2))
        m.d.comb += row_addr.eq(L["a0"] + ybase + xbase + tap_yoff + tap_xoff + gi_off + grow)
        kmax = Mux(L["k3"], 2, 0)

        op = L["op"]
        is_bitserial = (op == OP_CONV_IN) | (op == OP_HEAD)

        def goto_epilogue():
            with m.If(op == OP_POOL):
                m.next = "WRITE"
            with m.Elif(op == OP_HEAD):
                m.next = "HEAD_WR"
            with m.Elif(L["to_stream"]):
                m.d.sync += t.eq(0)
                m.next = "SW_RD"
            with m.Else():
                m.d.sync += [t.eq(0)] + [u.eq(0) for u in U]
                m.next = "LIF"

        def next_tap():
            with m.If(kx < kmax):
                m.d.sync += [kx.eq(kx + 1), tap_xoff.eq(tap_xoff + L["PS"]), wtap.eq(wtap + L["WTS"])]
                m.next = "ROW_RD"
            with m.Elif(ky < kmax):
                m.d.sync += [ky.eq(ky + 1), kx.eq(0), tap_yoff.eq(tap_yoff + L["RS"]), tap_xoff.eq(0),
                             wtap.eq(wtap + L["WTS"])]
                m.next = "ROW_RD"
            with m.Else():
                goto_epilogue()

        def next_row():
            with m.If(gi + 1 < L["Gin"]):
                m.d.sync += [gi.eq(gi + 1), gi_off.eq(gi_off + L["GS"]), wgi.eq(wgi + L["WGS"])]
                m.next = "ROW_RD"
            with m.Else():
                m.d.sync += [gi.eq(0), gi_off.eq(0), wgi.eq(0)]
                next_tap()

        def next_layer():
            with m.If(layer + 1 == len(plan.layers)):
                m.d.sync += kidx.eq(0)  # logits are written this very cycle: start comparing next cycle
                m.next = "ARGMAX"
            with m.Else():
                m.d.sync += layer.eq(layer + 1)
                m.next = "FETCH"

        def next_output():
            m.d.sync += [out_row.eq(out_row + 1), srow.eq(srow + T)]
            with m.If(g + 1 < L["Gout"]):
                m.d.sync += [g.eq(g + 1), wg.eq(wg + L["R"])]
                with m.If(L["hoff"] == 1):
                    m.d.sync += grow.eq(grow + 1)
                with m.Elif(L["hoff"] == 2):
                    with m.If(gdp + 1 == L["DP"]):
                        m.d.sync += [gdp.eq(0), grow.eq(grow + L["DP"])]
                    with m.Else():
                        m.d.sync += gdp.eq(gdp + 1)
                m.next = "OUT_START"
            with m.Else():
                m.d.sync += [g.eq(0), wg.eq(L["w_base"]), grow.eq(0), gdp.eq(0)]
                with m.If(x + 1 < L["Wo"]):
                    m.d.sync += [x.eq(x + 1), xs.eq(xs + Mux(L["s2"], 2, 1)), xbase.eq(xbase + L["XSTEP"])]
                    m.next = "OUT_START"
                with m.Elif(y + 1 < L["Ho"]):
                    m.d.sync += [y.eq(y + 1), x.eq(0), xs.eq(0), xbase.eq(0),
                                 ys.eq(ys + Mux(L["s2"], 2, 1)), ybase.eq(ybase + L["YSTEP"])]
                    m.next = "OUT_START"
                with m.Else():
                    next_layer()

        # priority encoder over the scan mask
        lowest = Signal(range(MASKW))
        for b in reversed(range(MASKW)):
            with m.If(mask[b]):
                m.d.comb += lowest.eq(b)

        words = [rowdata[l * T:(l + 1) * T] for l in range(P)]
        p_bias = [p_rd.data[l * BW:(l + 1) * BW].as_signed() for l in range(P)]
        p_theta = [p_rd.data[P * BW + l * TW:P * BW + (l + 1) * TW] for l in range(P)]
        s_vals = [s_rd.data[l * SW:(l + 1) * SW].as_signed() for l in range(P)]
        act_words = [act_rd.data[l * T:(l + 1) * T] for l in range(P)]

        with m.FSM(init="IDLE"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [layer.eq(0), cycles.eq(0), busy.eq(1), done.eq(0), overflow.eq(0),
                                 ld_addr.eq(0)]
                    m.next = "FETCH"

            with m.State("FETCH"):
                m.d.comb += lt_rd.addr.eq(layer)
                m.next = "LOAD"

            with m.State("LOAD"):
                m.d.sync += [L[f].eq(lt_fields[f]) for f in FIELDS]
                m.d.sync += [y.eq(0), x.eq(0), ys.eq(0), xs.eq(0), ybase.eq(0), xbase.eq(0), g.eq(0),
                             out_row.eq(lt_fields["out_base"]), srow.eq(0), grow.eq(0), gdp.eq(0),
                             wg.eq(lt_fields["w_base"]), kv_i.eq(0), hdp.eq(0), kv_row.eq(0),
                             hz_nbase.eq(0)]
                with m.If(lt_fields["op"] == OP_KV):
                    m.next = "KV_INIT"
                with m.Elif(lt_fields["op"] == OP_HEAD_Z):
                    m.next = "HZ_INIT"
                with m.Else():
                    m.next = "OUT_START"

            # ------------------------------------------------------------ shared loop nest
            with m.State("OUT_START"):
                m.d.comb += p_rd.addr.eq(L["p_base"] + g)
                m.next = "OUT_INIT"

            with m.State("OUT_INIT"):
                for l in range(P):
                    m.d.sync += theta[l].eq(p_theta[l])
                    for tt in range(T):
                        m.d.sync += acc[l][tt].eq(Mux((op == OP_ACC) | is_bitserial, p_bias[l], 0))
                m.d.sync += [ky.eq(0), kx.eq(0), tap_yoff.eq(0), tap_xoff.eq(0), wtap.eq(0), gi.eq(0),
                             gi_off.eq(0), wgi.eq(0), rowdata.eq(0), t.eq(0)]
                with m.If(op == OP_STREAM_LIF):
                    m.next = "SL_RD"
                with m.Else():
                    m.next = "ROW_RD"

            with m.State("ROW_RD"):
                with m.If(in_bounds):
                    m.d.comb += [act_rd.addr.eq(row_addr), img_rd.addr.eq(row_addr), z_rd.addr.eq(gi >> lp)]
                    m.next = "LATCH"
                with m.Else():
                    next_tap()

            with m.State("LATCH"):
                with m.If(op == OP_POOL):
                    m.d.sync += rowdata.eq(rowdata | act_rd.data)
                    next_row()
                with m.Else():
                    with m.If(op == OP_CONV_IN):
                        m.d.sync += mask.eq(img_rd.data)
                    with m.Elif(op == OP_HEAD):
                        zvals = Array(z_rd.data[l * ZW:(l + 1) * ZW] for l in range(P))
                        m.d.sync += mask.eq(zvals[gi[:lp] if lp else 0])
                    with m.Else():
                        m.d.sync += [rowdata.eq(act_rd.data), mask.eq(Cat(w != 0 for w in act_words))]
                    m.next = "SCAN"

            with m.State("SCAN"):
                with m.If(mask != 0):
                    m.d.sync += [mask.eq(mask & ~(1 << lowest)), ev_valid.eq(1), ev_attn.eq(op == OP_ATTN),
                                 ev_neg.eq((op == OP_HEAD) & (lowest == ZW - 1)),
                                 ev_shift.eq(Mux(is_bitserial, lowest, 0)),
                                 ev_word.eq(Mux(op == OP_CONV_IN, (1 << T) - 1,
                                                Mux(op == OP_HEAD, 1, Array(words)[lowest[:max(1, lp)]
                                                                                    if P > 1 else 0])))]
                    ev_addr = wg + wtap + wgi + Mux(is_bitserial, 0, lowest)
                    m.d.comb += [w_rd.addr.eq(ev_addr), kv_rd.addr.eq(ev_addr)]
                with m.Else():
                    next_row()

            # ------------------------------------------------------------ epilogues
            with m.State("LIF"):
                for l in range(P):
                    acc_t = Array(acc[l])[t]
                    total = Signal(signed(max(MW, AW + T) + 1), name=f"lifsum_{l}")
                    m.d.comb += total.eq(U[l] + (acc_t << T))
                    u_h = total >> 1
                    fire = u_h >= theta[l]
                    m.d.sync += [U[l].eq(Mux(fire, 0, u_h)), spk[l].eq(Mux(t == 0, 0, spk[l]) | (fire << t))]
                    with m.If(~fits(total, MW)):
                        m.d.sync += overflow.eq(1)
                m.d.sync += t.eq(t + 1)
                with m.If(t == T - 1):
                    m.next = "WRITE"

            with m.State("WRITE"):
                m.d.comb += [act_wr.addr.eq(out_row), act_wr.en.eq(1),
                             act_wr.data.eq(Mux(op == OP_POOL, rowdata, Cat(*spk)))]
                next_output()

            with m.State("SW_RD"):
                m.d.comb += s_rd.addr.eq(srow + t)
                m.next = "SW_WR"

            with m.State("SW_WR"):
                newvals = []
                for l in range(P):
                    acc_t = Array(acc[l])[t]
                    v = Signal(signed(max(SW, AW) + 1), name=f"stream_new_{l}")
                    m.d.comb += v.eq(Mux(L["stream_init"], 0, s_vals[l]) + acc_t)
                    with m.If(~fits(v, SW)):
                        m.d.sync += overflow.eq(1)
                    newvals.append(v[:SW])
                m.d.comb += [s_wr.addr.eq(srow + t), s_wr.en.eq(1), s_wr.data.eq(Cat(*newvals))]
                m.d.sync += t.eq(t + 1)
                with m.If(t == T - 1):
                    next_output()
                with m.Else():
                    m.next = "SW_RD"

            with m.State("SL_RD"):
                m.d.comb += s_rd.addr.eq(srow + t)
                m.next = "SL_LD"

            with m.State("SL_LD"):
                for l in range(P):
                    for tt in range(T):
                        with m.If(t == tt):
                            m.d.sync += acc[l][tt].eq(s_vals[l])
                m.d.sync += t.eq(t + 1)
                with m.If(t == T - 1):
                    m.d.sync += [t.eq(0)] + [u.eq(0) for u in U]
                    m.next = "LIF"
                with m.Else():
                    m.next = "SL_RD"

            with m.State("HEAD_WR"):
                for k in range(self.K):
                    with m.If(g == k // P):
                        m.d.sync += logits[k].eq(acc[k % P][0])
                next_output()

            # ------------------------------------------------------------ Kᵀ·V by AND-accumulate over tokens
            kc = hdp + (kv_i >> lp)
            with m.State("KV_INIT"):
                for l in range(P):
                    for tt in range(T):
                        m.d.sync += acc[l][tt].eq(0)
                m.d.sync += [n.eq(0), nG.eq(0), kv_pend.eq(0)]
                m.next = "KV_RK"

            def kv_accumulate():
                for l in range(P):
                    for tt in range(T):
                        with m.If(kword[tt] & act_words[l][tt]):
                            m.d.sync += acc[l][tt].eq(acc[l][tt] + 1)

            with m.State("KV_RK"):
                m.d.comb += act_rd.addr.eq(L["k_base"] + nG + kc)
                with m.If(kv_pend):
                    kv_accumulate()
                m.next = "KV_RV"

            with m.State("KV_RV"):
                m.d.sync += [kword.eq(Array(act_words)[kv_i[:lp] if lp else 0]), kv_pend.eq(1),
                             n.eq(n + 1), nG.eq(nG + L["Gout"])]
                m.d.comb += act_rd.addr.eq(L["v_base"] + nG + g)
                with m.If(n + 1 == L["N"]):
                    m.next = "KV_LAST"
                with m.Else():
                    m.next = "KV_RK"

            with m.State("KV_LAST"):
                kv_accumulate()
                m.next = "KV_WR"

            with m.State("KV_WR"):
                m.d.comb += [kv_wr.addr.eq(kv_row), kv_wr.en.eq(1),
                             kv_wr.data.eq(Cat(*[acc[l][tt][:KW] for tt in range(T) for l in range(P)]))]
                m.d.sync += kv_row.eq(kv_row + 1)
                with m.If(kv_i + 1 < L["d"]):
                    m.d.sync += kv_i.eq(kv_i + 1)
                    m.next = "KV_INIT"
                with m.Else():
                    m.d.sync += [kv_i.eq(0), g.eq(g + 1)]
                    with m.If(gdp + 1 == L["DP"]):
                        m.d.sync += [gdp.eq(0), hdp.eq(hdp + L["DP"])]
                    with m.Else():
                        m.d.sync += gdp.eq(gdp + 1)
                    with m.If(g + 1 == L["Gout"]):
                        next_layer()
                    with m.Else():
                        m.next = "KV_INIT"

            # ------------------------------------------------------------ head: Z_c = Σ_t Σ_n X[t, n, c]
            with m.State("HZ_INIT"):
                for l in range(P):
                    m.d.sync += acc[l][0].eq(0)
                m.d.sync += [n.eq(0), t.eq(0), hz_pend.eq(0), hz_addr.eq(hz_nbase)]
                m.next = "HZ_RD"

            def hz_accumulate():
                for l in range(P):
                    m.d.sync += acc[l][0].eq(acc[l][0] + s_vals[l])

            with m.State("HZ_RD"):
                m.d.comb += s_rd.addr.eq(hz_addr)
                with m.If(hz_pend):
                    hz_accumulate()
                m.d.sync += hz_pend.eq(1)
                with m.If(t + 1 < T):
                    m.d.sync += [t.eq(t + 1), hz_addr.eq(hz_addr + 1)]
                with m.Else():
                    m.d.sync += [t.eq(0), n.eq(n + 1), hz_addr.eq(hz_addr + L["RS"] - (T - 1))]
                    with m.If(n + 1 == L["N"]):
                        m.next = "HZ_LAST"

            with m.State("HZ_LAST"):
                hz_accumulate()
                m.next = "HZ_WR"

            with m.State("HZ_WR"):
                m.d.comb += [z_wr.addr.eq(g), z_wr.en.eq(1),
                             z_wr.data.eq(Cat(*[acc[l][0][:ZW] for l in range(P)]))]
                for l in range(P):
                    with m.If(~fits(acc[l][0], ZW)):
                        m.d.sync += overflow.eq(1)
                m.d.sync += [g.eq(g + 1), hz_nbase.eq(hz_nbase + T)]
                with m.If(g + 1 == L["Gout"]):
                    next_layer()
                with m.Else():
                    m.next = "HZ_INIT"

            # ------------------------------------------------------------ argmax, ties to the lowest index
            with m.State("ARGMAX"):
                with m.If(kidx < self.K):
                    cur = Array(logits)[kidx]
                    with m.If((kidx == 0) | (cur > bestval)):
                        m.d.sync += [best.eq(kidx), bestval.eq(cur)]
                    m.d.sync += kidx.eq(kidx + 1)
                with m.Else():
                    m.d.sync += [busy.eq(0), done.eq(1)]
                    m.next = "IDLE"
        return m
