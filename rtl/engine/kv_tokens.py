"""KvTokenScanner: Kᵀ·V's event-driven walk over tokens (golden twin: golden.components.kv_channel_tokens)."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .scanner import RowScanner


class KvTokenScanner(wiring.Component):
    """For one lane group and one block of K rows, which tokens hold a non-zero K word in each K channel, and where
    their rows are. Kᵀ·V then reads the K and V rows of those tokens only, one token per cycle.

    The caller stores each token's K row once: one bit per lane (the lane's T-bit K word is non-zero) and the
    token's row offset. A channel's scan then names, lowest token first, every present token whose word at lane 0
    of any head (bit h·d of the stored bits) is set; `shift` moves every token's bits down one lane, so the next
    channel is again at lane 0 (no channel-indexed select in front of the scanner, whose `more` steers the caller).

    Ports:
      present (tokens bits)   the tokens of this layer (bit j: token j exists)
      store, store_token, store_nz (lanes bits), store_off
                              keep token store_token's lane bits and row offset
      shift                   every token's lane bits move down one lane (the next K channel)
      load                    start a channel scan from the stored bits (as they are in this cycle)
      take                    the current token (valid) goes down the pick pipe; the scan moves on when `more`
      valid, more             the scan has a current token; it has another one after it (RowScanner's)
      pick_valid, pick_off    the token taken PICK_LATENCY cycles earlier and its row offset
      take_tag -> pick_tag    caller data (e.g. the channel's lane) that travels with the token
    Latency: store in cycle c → a load from c + STORE_LATENCY on sees it (the store is registered first: the K row
    comes straight from a block RAM's output register anywhere on the die); load in cycle c → first token valid in
    c + 1; take in c → pick_valid, pick_off in c + PICK_LATENCY (the taken token's one-hot register, then the
    offset's AND-OR over the one-hot: no index encoder and no token-indexed multiplexer). Throughput: one store, or
    one token, per cycle; a channel holds the scan max(1, tokens) cycles. Stored bits and offsets change only with
    store and shift (a shift in the cycle after a store leaves that token's stored bits unshifted: the caller
    does not do that).
    """

    STORE_LATENCY = 2
    PICK_LATENCY = 2

    def __init__(self, tokens: int, lanes: int, heads: int, head_dim: int, offset_width: int, tag_width: int = 1):
        assert heads == 1 or heads * head_dim <= lanes, "a group holds whole heads"
        self.N, self.P, self.H, self.d, self.OW = tokens, lanes, heads, head_dim, offset_width
        super().__init__({
            "present": In(tokens),
            "store": In(1), "store_token": In(range(max(2, tokens))), "store_nz": In(lanes),
            "store_off": In(offset_width),
            "shift": In(1), "load": In(1), "take": In(1), "take_tag": In(tag_width),
            "valid": Out(1), "more": Out(1),
            "pick_valid": Out(1), "pick_off": Out(offset_width), "pick_tag": Out(tag_width),
        })

    def elaborate(self, platform):
        m = Module()
        N, P, H, d = self.N, self.P, self.H, self.d
        nz = [Signal(P, name=f"nz_{j}") for j in range(N)]
        off = [Signal(self.OW, name=f"off_{j}") for j in range(N)]
        m.submodules.scanner = scanner = RowScanner(N)
        store, store_token = Signal(), Signal.like(self.store_token)
        store_nz, store_off = Signal.like(self.store_nz), Signal.like(self.store_off)
        m.d.sync += [store.eq(self.store), store_token.eq(self.store_token), store_nz.eq(self.store_nz),
                     store_off.eq(self.store_off)]
        for j in range(N):
            with m.If(store & (store_token == j)):
                m.d.sync += [nz[j].eq(store_nz), off[j].eq(store_off)]
            with m.Elif(self.shift):
                m.d.sync += nz[j].eq(nz[j] >> 1)
        channel = Cat(Cat(nz[j][h * d] for h in range(H)).any() for j in range(N))
        m.d.comb += [scanner.load.eq(self.load), scanner.row_mask.eq(channel & self.present),
                     scanner.next.eq(~self.load & self.take & scanner.more),
                     self.valid.eq(scanner.valid), self.more.eq(scanner.more)]
        hot_v, hot, hot_tag = Signal(), Signal(N), Signal.like(self.take_tag)
        m.d.sync += [hot_v.eq(self.take & scanner.valid), hot.eq(scanner.onehot), hot_tag.eq(self.take_tag)]
        m.d.sync += [self.pick_valid.eq(hot_v), self.pick_tag.eq(hot_tag),
                     self.pick_off.eq(Cat(Cat(hot[j] & off[j][b] for j in range(N)).any()
                                          for b in range(self.OW)))]
        return m
