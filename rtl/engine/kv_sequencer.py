"""KvSequencer: a Kᵀ·V layer, event-driven over tokens (golden twin: golden.components.kv_layer)."""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .kv_tokens import KvTokenScanner
from .util import bits


class KvSequencer(wiring.Component):
    """Runs a Kᵀ·V layer, KV[h][i, j] = Σ_n K[h·d + i, n] AND V[h·d + j, n] per timestep, into the lanes'
    accumulators (lane l of lane group g: V channel g·P + l) and from their held copy into the KV RAM, one row per
    (lane group, K channel i).

    Per lane group and block of K rows (the K channel group holding channels i of the group's head) it reads the K
    rows of all tokens once (phase A) into a KvTokenScanner; then per K channel it names only the tokens whose K word
    is non-zero and has their K and V rows read, both in one cycle (the V row through the activation RAM's read-out
    port); each token adds K word AND V word into every lane of its head. A marker follows the channel's last token:
    at the accumulators it snaps them into the held copy and clears them for the next channel, which starts at once;
    the held copy is written the cycle after.

    It commands the core's registers and RAM ports (the values flow between them directly):
      start                   run the layer; the layer fields below are sampled with it (the entry being loaded)
      tokens, channels, groups, dp, k_base, v_base
                              N; d (K channels per head); lane groups (also the rows between a token's K rows);
                              lane groups per head; the K and V regions' first rows
      act_row                 the activation RAM's registered row, ROW_LATENCY cycles after its k_addr was loaded
      v_row                   the read-out port's second register, V_LATENCY cycles after its v_addr was loaded
      k_load, k_addr          load the activation RAM's row-address register (a K row)
      v_load, v_addr          load the read-out port's address register (a V row)
      acc_init                clear the accumulators (before the layer's first channel)
      add, add_mask           add 1 into lane l, timestep t where bit l·T + t is set
      snap                    the accumulators' snapshot: held <- acc, acc <- 0 (the channel's last token is in)
      write, write_row        write the held copy to the KV RAM row write_row (rows in (group, channel) order)
      busy                    a channel's marker, snapshot or write is still in flight
      add_next, snap_next     the values add and snap take at the next edge (for per-lane copies, fanout.py)
      done                    the layer's last channel has been scanned (then wait for ~busy)

    Cycles from start (the cycle after it is the first): per (lane group, K row block) N + 6 (an init, the N K rows,
    STORE_LATENCY + 1 for the last row to reach the scanner, two to let the last token's rows be read), per K channel
    1 + max(1, tokens with a non-zero K word in the group's heads). A token taken in cycle c adds in c + 6
    (add_mask's registers are the caller's add-enable registers, so its counts are in the accumulators from
    c + ACC_LATENCY).
    """

    ROW_LATENCY = 3         # k_load in cycle c -> act_row in c + 3: the caller's address register, the RAM, its register
    V_LATENCY = 4           # v_load in cycle c -> v_row in c + 4: the address register, the RAM, two registers
    # from the cycle the token scanner names a token to the first cycle its counts are in the accumulators: its pick,
    # the K and V row addresses, the RAM read, the K row and V row registers, the K word and the V row's second
    # register, the add-enable register, the accumulate
    ACC_LATENCY = KvTokenScanner.PICK_LATENCY + 6

    def __init__(self, lanes: int, T: int, tokens: int, head_dim: int, heads_per_group: int, addr_width: int,
                 field_width: int = 16):
        self.P, self.T, self.NT, self.d, self.H = lanes, T, max(1, tokens), head_dim, heads_per_group
        self.lp = bits(lanes) - 1                                        # log2(P)
        self.ld = (head_dim - 1).bit_length() if heads_per_group > 1 else 0   # log2(d) when a group holds heads
        self.SELW = max(1, self.lp, self.ld)
        self.AW = addr_width
        super().__init__({
            "start": In(1), "tokens": In(field_width), "channels": In(field_width), "groups": In(field_width),
            "dp": In(field_width), "k_base": In(addr_width), "v_base": In(addr_width),
            "act_row": In(lanes * T), "v_row": In(lanes * T),
            "k_load": Out(1), "k_addr": Out(addr_width), "v_load": Out(1), "v_addr": Out(addr_width),
            "acc_init": Out(1), "add": Out(1), "add_mask": Out(lanes * T),
            "snap": Out(1), "write": Out(1), "write_row": Out(addr_width), "busy": Out(1), "done": Out(1),
            "add_next": Out(1), "snap_next": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        P, T, NT, d, H, lp, ld, SELW, AW = (self.P, self.T, self.NT, self.d, self.H, self.lp, self.ld, self.SELW,
                                             self.AW)
        m.submodules.tokens = scan = KvTokenScanner(NT, P, H, d, AW, tag_width=SELW + 1)
        # the layer's fields, sampled at start
        n_tokens, channels = Signal.like(self.tokens), Signal.like(self.channels)
        groups, dp, v_base = Signal.like(self.groups), Signal.like(self.dp), Signal.like(self.v_base)
        present = Signal(NT)
        # loop counters, each with its "last iteration" flag kept beside it
        kv_i, kv_last = Signal.like(self.channels), Signal()
        g, g_last, gdp = Signal.like(self.groups), Signal(), Signal.like(self.dp)
        n, n_last = Signal.like(self.tokens), Signal()
        khead = Signal(AW)              # the first K row block of the group's head
        k_addr = Signal(AW)
        off_acc = Signal(AW)            # token n's row offset n·groups
        k_rowbase, v_rowbase = Signal(AW), Signal(AW)
        first, last_group = Signal(), Signal()
        wait = Signal(range(KvTokenScanner.STORE_LATENCY + 1))
        kv_row = Signal(AW)
        act_words = [self.act_row[l * T:(l + 1) * T] for l in range(P)]
        v_words = [self.v_row[l * T:(l + 1) * T] for l in range(P)]

        # phase A: a K row read in KVA reaches the scanner's store two cycles later (act_row)
        kva_v = [Signal(name=f"kva_v{i}") for i in range(2)]
        kva_n = [Signal(range(NT), name=f"kva_n{i}") for i in range(2)]
        kva_off = [Signal(AW, name=f"kva_off{i}") for i in range(2)]
        m.d.sync += [kva_v[1].eq(kva_v[0]), kva_n[1].eq(kva_n[0]), kva_off[1].eq(kva_off[0]), kva_v[0].eq(0)]
        m.d.comb += [scan.present.eq(present), scan.store.eq(kva_v[1]), scan.store_token.eq(kva_n[1]),
                     scan.store_nz.eq(Cat(w != 0 for w in act_words)), scan.store_off.eq(kva_off[1])]

        # phase B: a picked token's K and V rows are read in one cycle; its tag (the K word's lane, the end of the
        # channel) follows it
        KVB = self.ACC_LATENCY - KvTokenScanner.PICK_LATENCY - 1     # token stages from the pick to the add
        kvb_v = [scan.pick_valid] + [Signal(name=f"kvb_v{i}") for i in range(1, KVB)]
        kvb_sel = [scan.pick_tag[:SELW]] + [Signal(SELW, name=f"kvb_sel{i}") for i in range(1, 4)]
        kvb_end = [Signal(name=f"kvb_end{i}") for i in range(KVB)]     # the marker, a slot behind the last token
        snap, write = Signal(), Signal()
        m.d.sync += [kvb_v[i].eq(kvb_v[i - 1]) for i in range(1, len(kvb_v))]
        m.d.sync += [kvb_end[i].eq(kvb_end[i - 1]) for i in range(1, len(kvb_end))]
        m.d.sync += [kvb_sel[i].eq(kvb_sel[i - 1]) for i in range(1, len(kvb_sel))]
        m.d.sync += [kvb_end[0].eq(scan.pick_tag[SELW]), snap.eq(kvb_end[-1]), write.eq(snap)]
        m.d.comb += [self.snap.eq(snap), self.snap_next.eq(kvb_end[-1]), self.write.eq(write), self.write_row.eq(kv_row),
                     self.busy.eq(Cat(*kvb_end).any() | snap | write)]
        with m.If(write):
            m.d.sync += kv_row.eq(kv_row + 1)
        with m.If(kvb_v[0]):
            m.d.comb += [self.k_load.eq(1), self.k_addr.eq(k_rowbase + scan.pick_off),
                         self.v_load.eq(1), self.v_addr.eq(v_rowbase + scan.pick_off)]
        # the K word of channel i of each head in the group (one head per group when P <= d)
        kwords = [Signal(T, name=f"kword_{h}") for h in range(H)]
        with m.If(kvb_v[3]):
            if H > 1:
                m.d.sync += [kw.eq(Array(act_words[h * d:(h + 1) * d])[kvb_sel[3][:ld]] if ld else act_words[h])
                             for h, kw in enumerate(kwords)]
            else:
                m.d.sync += kwords[0].eq(Array(act_words)[kvb_sel[3][:lp]] if lp else act_words[0])
        m.d.comb += [self.add.eq(kvb_v[4]), self.add_next.eq(kvb_v[3])]
        m.d.comb += self.add_mask.eq(Cat(kwords[l // d if H > 1 else 0][t] & v_words[l][t]
                                         for l in range(P) for t in range(T)))

        with m.FSM(init="IDLE"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [n_tokens.eq(self.tokens), channels.eq(self.channels), groups.eq(self.groups),
                                 dp.eq(self.dp), v_base.eq(self.v_base), khead.eq(self.k_base),
                                 present.eq(Cat(self.tokens > j for j in range(NT))),
                                 kv_i.eq(0), kv_last.eq(self.channels <= 1), g.eq(0), g_last.eq(self.groups <= 1),
                                 gdp.eq(0), last_group.eq(0), kv_row.eq(0), first.eq(1)]
                    m.next = "INIT"

            with m.State("INIT"):
                # phase A of a lane group's K row block: the K rows of all tokens, one per cycle
                block = khead + (kv_i >> lp)
                m.d.comb += [self.k_load.eq(1), self.k_addr.eq(block), self.acc_init.eq(first)]
                m.d.sync += [n.eq(0), n_last.eq(n_tokens <= 1), k_addr.eq(block), off_acc.eq(0),
                             k_rowbase.eq(block), v_rowbase.eq(v_base + g), first.eq(0)]
                m.next = "KVA"

            with m.State("KVA"):
                m.d.comb += [self.k_load.eq(1), self.k_addr.eq(k_addr + groups)]
                m.d.sync += [kva_v[0].eq(1), kva_n[0].eq(n), kva_off[0].eq(off_acc), off_acc.eq(off_acc + groups),
                             k_addr.eq(k_addr + groups), n.eq(n + 1), n_last.eq(n + 2 >= n_tokens)]
                with m.If(n_last):
                    m.d.sync += wait.eq(KvTokenScanner.STORE_LATENCY)
                    m.next = "KVA_WAIT"

            with m.State("KVA_WAIT"):
                # the last K row reaches the token scanner two cycles after its read, its scan STORE_LATENCY on
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.next = "CHANNEL"

            with m.State("CHANNEL"):
                # phase B of K channel i: the tokens whose K word (any head of the group) is non-zero
                m.d.comb += scan.load.eq(1)
                m.next = "SCAN"

            with m.State("SCAN"):
                channel_end = ~(scan.valid & scan.more)
                m.d.comb += [scan.take.eq(1), scan.take_tag.eq(Cat(kv_i[:SELW], channel_end))]
                with m.If(channel_end):
                    # the channel's last scan cycle: its marker follows the last token down the pipeline
                    m.d.comb += scan.shift.eq(1)
                    with m.If(~kv_last):
                        m.d.sync += [kv_i.eq(kv_i + 1), kv_last.eq(kv_i + 2 >= channels)]
                        # the next channel's K words are in the K row block just read, unless it starts a new one
                        new_block = (kv_i[:lp] == P - 1) if (H == 1 and lp) else Const(int(H == 1))
                        with m.If(new_block):
                            m.next = "NEXT"
                        with m.Else():
                            m.next = "CHANNEL"
                    with m.Else():
                        m.d.sync += [kv_i.eq(0), kv_last.eq(channels <= 1), g.eq(g + 1), g_last.eq(g + 2 >= groups),
                                     last_group.eq(g_last)]
                        with m.If(gdp + 1 == dp):
                            m.d.sync += [gdp.eq(0), khead.eq(khead + dp)]
                        with m.Else():
                            m.d.sync += gdp.eq(gdp + 1)
                        m.next = "NEXT"

            # a new K row block reads the activation RAM: two cycles let the last token's rows be read first
            with m.State("NEXT"):
                m.next = "NEXT2"

            with m.State("NEXT2"):
                with m.If(last_group):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.next = "INIT"
        return m
