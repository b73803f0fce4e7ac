"""Golden twins of the engine's components (rtl/engine/): one numpy function per component, the specification its
unit test (tests/test_engine_components.py) compares values and cycles against. Where golden/primitives.py already
is the twin (argmax_lowest for the argmax unit, lif_step inside lif_lanes) it is reused, not restated.
"""
from __future__ import annotations

import numpy as np

from .primitives import lif_step


def _fits(v, width: int):
    """v fits a signed `width`-bit field."""
    v = np.asarray(v, dtype=np.int64)
    return (v >= -(1 << (width - 1))) & (v < (1 << (width - 1)))


def _wrap(v, width: int):
    """v as a signed `width`-bit register holds it (two's complement wrap)."""
    v = np.asarray(v, dtype=np.int64) & ((1 << width) - 1)
    return np.where(v >= 1 << (width - 1), v - (1 << width), v)


def lif_lanes(x, theta, T: int, input_width: int, membrane_width: int):
    """LifLanes (rtl/engine/lif.py): the LIF of P lanes over the T values x [T, P] with thresholds theta [P].

    Returns (words [P] with bit t = spike at timestep t, overflow): overflow is set when some x does not fit the
    LIF's signed `input_width`-bit input or some U + (x << T) does not fit the `membrane_width`-bit membrane; the
    spikes are then unspecified (the core's sticky overflow flag reports it; never expected)."""
    x = np.asarray(x, dtype=np.int64)
    theta = np.asarray(theta, dtype=np.int64)
    u = np.zeros(x.shape[1:], dtype=np.int64)
    words = np.zeros(x.shape[1:], dtype=np.int64)
    overflow = not _fits(x, input_width).all()
    for t in range(x.shape[0]):
        overflow |= not _fits(u + (x[t] << T), membrane_width).all()
        spike, u, _ = lif_step(u, x[t], theta, T)
        words |= spike.astype(np.int64) << t
    return words, bool(overflow)


def scan_row(mask: int) -> list[int]:
    """RowScanner (rtl/engine/scanner.py): the events of a row mask, lowest set bit first, one per cycle; the row
    holds the scanner max(1, len(events)) cycles."""
    return [i for i in range(int(mask).bit_length()) if (int(mask) >> i) & 1]


def row_mask(source: str, bubble: bool, act_row: int, pixel: int, z_row: int, lane: int, lanes: int, T: int,
             z_width: int) -> int:
    """RowPipeline (rtl/engine/row_pipeline.py): the non-zero mask an item enters the scanner with: none for a
    bubble; one bit per non-zero T-bit spike word of the row ("spikes"), the pixel's bits ("pixel"), or the bits of
    lane `lane`'s Z value ("z")."""
    if bubble:
        return 0
    if source == "pixel":
        return int(pixel)
    if source == "z":
        return (int(z_row) >> (lane * z_width)) & ((1 << z_width) - 1)
    return sum(1 << l for l in range(lanes) if (int(act_row) >> (l * T)) & ((1 << T) - 1))


def row_pipeline_events(outputs, seam: int = 0, spacing: int = 0) -> tuple[list[tuple[int, int, int, int]], list[int]]:
    """RowPipeline: the items of consecutive outputs (each a list of row masks) issued back to back from cycle 0,
    `seam` empty slots after each output but the last (the controller's seam), an output's end held until at least
    `spacing` cycles after the previous output's end (`hold`). Returns the events as (cycle, output, item, bit
    index), lowest bit first within an item, and each output's end cycle (its last item's last cycle in the
    scanner, or the cycle the hold lets it go): item k of the stream holds the scanner max(1, nnz_k) cycles from
    cycle 4 + the cycles of the items and slots before it (issue, RAM, row register, mask register)."""
    events, ends, start = [], [], 4
    for n, masks in enumerate(outputs):
        if n:
            start += seam
        for k, mask in enumerate(masks):
            bits = scan_row(mask)
            events += [(start + j, n, k, b) for j, b in enumerate(bits)]
            start += max(1, len(bits))
        end = start - 1 if not ends else max(start - 1, ends[-1] + spacing)
        ends.append(end)
        start = end + 1
    return events, ends


def event_pipeline_stages(issues, marks, rom_latency: int, shifter_latency: int, value_addr_stage: int) -> dict:
    """EventPipeline (rtl/engine/events.py): where each event and marker is in which cycle. issues: the cycles
    in which an event was issued (one per cycle at most); marks: the cycles in which a marker was given.
    Returns {"rom_addr", "value_addr", "shifter", "add"}: {cycle: index of the event there} and {"switch", "snap",
    "busy"}: sets of cycles. An event issued in c is at stage i in c + 2 + i (rom_addr stage 0, value_addr stage
    value_addr_stage, the shifter's inputs stage rom_latency, add stage rom_latency + shifter_latency); a marker
    given in e switches in e + 2 + rom_latency, snaps in e + 4 + add stage (one slot behind an event issued in e,
    which is at the add stage in e + 2 + add stage, registered and accumulated by then), and is in flight from
    e + 1 to the snap."""
    add = rom_latency + shifter_latency
    out = {"rom_addr": {}, "value_addr": {}, "shifter": {}, "add": {}}
    for k, c in enumerate(issues):
        for key, stage in (("rom_addr", 0), ("value_addr", value_addr_stage), ("shifter", rom_latency),
                           ("add", add)):
            out[key][c + 2 + stage] = k
    out["switch"] = {e + 2 + rom_latency for e in marks}
    out["snap"] = {e + 4 + add for e in marks}
    out["busy"] = {c for e in marks for c in range(e + 1, e + 5 + add)}
    return out


EPILOGUE_CYCLES = {"lif": lambda T: T + 3, "stream_add": lambda T: T + 4, "head": lambda T: 2}


def epilogue_schedule(kind: str, T: int, s: int) -> dict:
    """OutputEpilogue (rtl/engine/epilogue.py): the commands of one output's epilogue started (snapshot) in
    cycle s, by cycle. kind: "lif" | "stream_add" | "head". Returns {command: {cycle: timestep or None}} for
    lif_start, lif_valid, rotate, act_write, stream_start, stream_next, stream_write, head_write, and "busy": the
    cycles in which it is not idle (it is again from s + EPILOGUE_CYCLES[kind](T))."""
    out = {k: {} for k in ("lif_start", "lif_valid", "rotate", "act_write", "stream_start", "stream_next",
                           "stream_write", "head_write")}
    if kind == "lif":
        out["lif_start"][s] = None
        out["lif_valid"] = {s + 1 + t: t for t in range(T)}
        out["rotate"] = {s + 1 + t: None for t in range(T)}          # timestep t + 1 at held[l][0] next
        out["act_write"][s + T + 2] = None                            # the last spike is visible from s + T + 2
    elif kind == "stream_add":
        out["stream_start"][s] = None
        out["stream_next"] = {s + 1 + t: None for t in range(T)}
        out["rotate"] = {s + 3 + t: None for t in range(T)}          # stream value t in its register in s + 3 + t
        out["stream_write"] = {s + 4 + t: t for t in range(T)}        # the adder's registered sum a cycle later
    else:
        out["head_write"][s + 1] = None
    out["busy"] = set(range(s + 1, s + EPILOGUE_CYCLES[kind](T)))
    return out


def stream_lif_schedule(n: int, T: int, s: int) -> dict:
    """StreamLifSequencer (rtl/engine/stream_lif.py): the commands of a stream-LIF layer of n outputs started in
    cycle s, by cycle. Output k's period (T + 1 cycles) starts in s + 2 + k(T + 1); a last period (k = n) only writes.
    Returns {command: {cycle: value}} for stream_start, stream_next, lif_start, advance, lif_valid (value: the
    timestep), act_write (value: the output written) and done."""
    out = {k: {} for k in ("stream_start", "stream_next", "lif_start", "advance", "lif_valid", "act_write", "done")}
    out["stream_start"][s] = None
    out["stream_next"][s + 1] = None
    for k in range(n + 1):
        base = s + 2 + k * (T + 1)
        for p in range(T + 1 if k < n else 2):
            if p != T - 1:
                out["stream_next"][base + p] = None     # a row a cycle, two ahead of its timestep
        if k < n:
            out["lif_start"][base] = out["advance"][base] = None
            out["lif_valid"].update({base + 1 + t: t for t in range(T)})
        if k >= 1:
            out["act_write"][base + 1] = k - 1
    out["done"][s + 2 + n * (T + 1) + 1] = None
    return out


def head_z_schedule(tokens: int, T: int, groups: int, drain: int, s: int, token_stride: int) -> dict:
    """HeadZSequencer (rtl/engine/head_z.py): the commands of a head-Z layer of `groups` lane groups started in cycle
    s, by cycle, and the stream rows it reads with a caller's address register that stream_load loads and
    stream_next / stream_skip step (+1 / + token_stride - (T - 1)): group g reads rows g·T + n·token_stride + t.
    Returns {command: {cycle: value}} for acc_init, stream_load (value: the row loaded), stream_next, stream_skip,
    read (value: the row read), add (value: the row added), z_write (value: the group) and done."""
    out = {k: {} for k in ("acc_init", "stream_load", "stream_next", "stream_skip", "read", "add", "z_write",
                           "done")}
    per_group = tokens * T + drain + 2
    for g in range(groups):
        b = s + g * per_group
        out["acc_init"][b] = None
        out["stream_load"][b] = g * T
        for i in range(tokens * T):
            n, t = divmod(i, T)
            out["stream_next" if t != T - 1 else "stream_skip"][b + 1 + i] = None
            out["read"][b + 1 + i] = out["add"][b + 3 + i] = g * T + n * token_stride + t
        out["z_write"][b + tokens * T + drain + 1] = g
    out["done"][s + groups * per_group - 1] = None
    return out


def tap_flags(first: int, size: int) -> int:
    """Bit k: tap column (or kernel row) k of an output whose tap (0, 0) lies at input position `first` is inside a
    map of `size` (0 <= first + k < size); OutputLoop keeps these for the TapWalker."""
    return sum(1 << k for k in range(3) if 0 <= first + k < size)


def output_walk(e: dict, T: int) -> list[dict]:
    """OutputLoop (rtl/engine/output_loop.py): a layer's outputs in the order the core computes them (output lane
    group innermost, then column, then row), from its layer-table entry `e` (Ho, Wo, Gout, k3, s2, a0, XSTEP, YSTEP,
    hoff, DP, R, out_base, w_base, p_base, and Wi, Hi for the in-bounds flags). Each output: out_row, stream_row,
    group, weight_base, param_row, pos (its first input row), ix, iy (the input column and row of tap (0, 0)), xok,
    yok (tap_flags of ix in Wi, iy in Hi)."""
    pad, stride = (1 if e["k3"] else 0), (2 if e["s2"] else 1)
    groups = max(1, e["Gout"])
    outs = []
    for y in range(max(1, e["Ho"])):
        for x in range(max(1, e["Wo"])):
            for g in range(groups):
                # hoff 1: one input row per output group; hoff 2: DP rows every DP groups
                moved = g if e["hoff"] == 1 else (g // e["DP"]) * e["DP"] if e["hoff"] == 2 else 0
                n = len(outs)
                outs.append({"out_row": e["out_base"] + n, "stream_row": n * T, "group": g,
                             "weight_base": e["w_base"] + g * e["R"], "param_row": e["p_base"] + g,
                             "pos": e["a0"] + y * e["YSTEP"] + x * e["XSTEP"] + moved,
                             "ix": -pad + x * stride, "iy": -pad + y * stride,
                             "xok": tap_flags(-pad + x * stride, e["Wi"]),
                             "yok": tap_flags(-pad + y * stride, e["Hi"])})
    return outs


def group_walk(e: dict) -> list[dict]:
    """OutputLoop's next_group steps (the stream-LIF and head-Z layers): per output row, each output group with its
    parameter row; rows_last on the last group of the last row."""
    groups, rows = max(1, e["Gout"]), max(1, e["Ho"])
    return [{"group": g, "param_row": e["p_base"] + g, "group_last": g == groups - 1,
             "rows_last": g == groups - 1 and y == rows - 1} for y in range(rows) for g in range(groups)]


def tap_walk(pos: int, weight_base: int, ix: int, iy: int, width: int, height: int, k3: bool, groups: int,
             tap_col_step: int, kernel_row_step: int, group_step: int, weight_tap_step: int,
             weight_group_step: int) -> list[tuple[int, int, int, bool]]:
    """TapWalker (rtl/engine/tap_walker.py): the items of one output, in order, as (input row, weight row, input lane
    group, inside the map). Taps (3×3 if k3, else 1×1) row-major; tap (ky, kx) starts at row
    pos + ky·kernel_row_step + kx·tap_col_step and weight row weight_base + (tap index)·weight_tap_step; inside the
    map (0 <= ix + kx < width, 0 <= iy + ky < height) it gives one item per input lane group g (max(1, groups)),
    + g·group_step rows and + g·weight_group_step weight rows; outside it gives one item, group 0."""
    taps = 3 if k3 else 1
    items = []
    for ky in range(taps):
        for kx in range(taps):
            row = pos + ky * kernel_row_step + kx * tap_col_step
            weight = weight_base + (ky * taps + kx) * weight_tap_step
            if 0 <= ix + kx < width and 0 <= iy + ky < height:
                items += [(row + g * group_step, weight + g * weight_group_step, g, True)
                          for g in range(max(1, groups))]
            else:
                items.append((row, weight, 0, False))
    return items


def kv_channel_tokens(nz_words, offsets, present: int, heads: int, head_dim: int) -> list[int]:
    """KvTokenScanner (rtl/engine/kv_tokens.py): the row offsets of the present tokens (bit j of `present`) whose
    stored lane bits (nz_words[j]) have lane h·head_dim set for some head h, lowest token first: one per cycle, from
    the cycle after the load; the channel holds the scan max(1, len) cycles. The next channel's words are
    kv_shift_words(nz_words)."""
    lanes = [h * head_dim for h in range(heads)]
    return [int(offsets[j]) for j in range(len(nz_words))
            if (present >> j) & 1 and any((int(nz_words[j]) >> lane) & 1 for lane in lanes)]


def kv_layer(rows, lanes: int, T: int, heads_per_group: int, head_dim: int, tokens: int, channels: int,
             groups: int, dp: int, k_base: int, v_base: int) -> dict:
    """KvSequencer (rtl/engine/kv_sequencer.py): a Kᵀ·V layer over the activation RAM `rows` (row -> P·T-bit word,
    lane l's T-bit spike word at bits [l·T, (l+1)·T)). Lane group g's head starts at K row block
    k_base + (g // dp)·dp; channel i's K words are in block + (i >> log2 P) (one head per group) at lane i mod P, or
    at lanes h·d + i (a group of whole heads); token n's K row is that block + n·groups, its V row v_base + g +
    n·groups. Returns {"writes": [sums [P][T] per (group, channel), in order], "cycles": from the start cycle to
    done, "tokens": tokens named per (group, channel)}: per (group, K row block) N + 6 cycles, per channel
    1 + max(1, tokens named)."""
    P, d, H = lanes, head_dim, heads_per_group
    lp = P.bit_length() - 1

    def word(row, lane):
        return (int(rows.get(row, 0)) >> (lane * T)) & ((1 << T) - 1)
    writes, named, cycles = [], [], 0
    for g in range(groups):
        khead = k_base + (g // dp) * dp
        blocks = 1 if H > 1 else -(-channels // P)
        cycles += blocks * (tokens + 6)
        for i in range(channels):
            block = khead + (0 if H > 1 else i >> lp)
            kwords = [[word(block + n * groups, h * d + i if H > 1 else i % P) for h in range(H)]
                      for n in range(tokens)]
            hit = [n for n in range(tokens) if any(kwords[n])]
            named.append(len(hit))
            cycles += 1 + max(1, len(hit))
            sums = [[0] * T for _ in range(P)]
            for n in hit:
                for lane in range(P):
                    both = kwords[n][lane // d if H > 1 else 0] & word(v_base + g + n * groups, lane)
                    for t in range(T):
                        sums[lane][t] += (both >> t) & 1
            writes.append(sums)
    return {"writes": writes, "cycles": cycles, "tokens": named}


def kv_shift_words(nz_words) -> list[int]:
    """KvTokenScanner's shift: every token's lane bits move down one lane (the next K channel at lane 0)."""
    return [int(w) >> 1 for w in nz_words]


def replicated_register_step(d: bool, copies: int) -> int:
    """ReplicatedRegister (rtl/engine/fanout.py): its `copies` bits after an edge at which its input was d: every copy
    holds d (bit i is copy i)."""
    return (1 << copies) - 1 if d else 0


def lane_inputs_step(event: dict | None, kv_mask: int | None, hz_stream, lanes: int, T: int, head_dim: int,
                     heads_per_group: int = 1):
    """LaneInputs (rtl/engine/lane_inputs.py): which lane × timestep accumulators add what in the next cycle.
    event: {"word", "attn", "head", "weight_addend" [P], "kv_values" [T][P]} or None; kv_mask: a Kᵀ·V count's
    lane-major mask or None; hz_stream: head Z's stream values [P] or None (an event first, then a count, then
    head Z). Returns (add_en [P][T] booleans, addend [P][T] with None where add_en is clear)."""
    en = [[False] * T for _ in range(lanes)]
    addend = [[None] * T for _ in range(lanes)]
    for l in range(lanes):
        for t in range(T):
            if event is not None:
                in_head = heads_per_group == 1 or not event["attn"] or event["head"] == l // head_dim
                en[l][t] = bool((event["word"] >> t) & 1) and in_head
                value = event["kv_values"][t][l] if event["attn"] else event["weight_addend"][l]
            elif kv_mask is not None:
                en[l][t], value = bool((kv_mask >> (l * T + t)) & 1), 1
            elif hz_stream is not None:
                en[l][t], value = t == 0, hz_stream[l]
            else:
                value = None
            if en[l][t]:
                addend[l][t] = value
    return en, addend


def lane_accumulators_step(acc, held, init: bool, init_value, add_en, addend, snap: bool, rotate: bool,
                           width: int, rest_width: int | None = None, init_t0_only: bool = False):
    """LaneAccumulators (rtl/engine/accumulators.py), one clock edge: acc and held [P, T] signed registers,
    timestep 0 `width` bits, timesteps 1 .. T - 1 `rest_width` bits (default `width`); each wraps at its own width.

    acc: init: acc[l][0] <- init_value[l], acc[l][t >= 1] <- init_value[l] (0 with init_t0_only); else where
    add_en[l][t]: acc[l][t] += addend[l][t].
    held: snap: held <- acc (before this edge); else with rotate: held[l][t] <- held[l][(t + 1) % T] (the epilogues
    read timestep t at t = 0).
    Returns (next acc, next held, overflow): overflow is the guard check of the current acc (some value needs all
    the bits of its timestep's width: its top two bits differ), which the hardware registers at this edge."""
    acc = np.asarray(acc, dtype=np.int64)
    held = np.asarray(held, dtype=np.int64)
    T = acc.shape[1]
    widths = np.array([width] + [width if rest_width is None else rest_width] * (T - 1))
    overflow = bool((~_fits(acc, widths - 1)).any())
    if init:
        nxt = np.repeat(np.asarray(init_value, dtype=np.int64)[:, None], T, axis=1)
        if init_t0_only:
            nxt[:, 1:] = 0
    else:
        add_en = np.asarray(add_en, dtype=bool)
        nxt = np.where(add_en, acc + np.asarray(addend, dtype=np.int64), acc)
    nxt_held = acc.copy() if snap else (np.roll(held, -1, axis=1) if rotate else held)
    return _wrap(nxt, widths), _wrap(nxt_held, widths), overflow


def decode_layer_word(word: int, fields: list[str], widths: dict, signed_fields=("a0",)) -> dict:
    """LayerTable (rtl/engine/layer_table.py): the fields of one packed layer-table word, first field in the low
    bits, each `widths[f]` bits, the signed ones sign-extended."""
    out, off = {}, 0
    for f in fields:
        v = (int(word) >> off) & ((1 << widths[f]) - 1)
        if f in signed_fields and v >> (widths[f] - 1):
            v -= 1 << widths[f]
        out[f] = v
        off += widths[f]
    return out


def banked_rom_read(rows, addr: int) -> int:
    """BankedRom (rtl/engine/memories.py): the row at `addr` (BankedRom.LATENCY cycles after the address)."""
    return int(rows[addr])


def param_reads(rows, addrs, fetches, latency: int) -> list:
    """ParamReader (rtl/engine/params.py): the parameter row on its outputs in each cycle, given the address and
    fetch of every cycle: cycle c shows row addrs[c - latency] (None before any), with ready = fetches[c - latency].
    rows: per row, (bias [P], theta [P], lane shift [P])."""
    out = []
    for c in range(len(addrs) + latency):
        k = c - latency
        out.append(None if k < 0 else (rows[addrs[k]], bool(fetches[k])))
    return out


def logit_bank_step(logits, write_group: int, lanes_values, rotate: bool, lanes: int) -> list:
    """LogitBank (rtl/engine/logits.py): the K logits after one cycle: rotated by one (logit k takes k + 1) if
    rotate, else the lane groups whose bit is set in write_group take the lane values (logit k from lane k mod P)."""
    K = len(logits)
    if rotate:
        return [logits[(k + 1) % K] for k in range(K)]
    return [lanes_values[k % lanes] if (write_group >> (k // lanes)) & 1 else logits[k] for k in range(K)]


def ram_step(mem: list, reads, write, held):
    """SlicedRam (rtl/engine/memories.py), one clock edge. mem: the rows; reads: (addr, en) per read port;
    write: (addr, en, data); held: each port's data before the edge. Returns (each port's data after the edge,
    mem after it): an enabled port reads the row as it was before the edge (no write-through), a disabled one
    keeps its data."""
    out = [mem[a] if en else h for (a, en), h in zip(reads, held)]
    mem = list(mem)
    addr, en, data = write
    if en:
        mem[addr] = data
    return out, mem


def addend_shift(w, neg: bool, shift: int, width: int, lane_shift=0):
    """AddendShifter (rtl/engine/addend.py): each lane's addend ((neg ? -w : w) << lane_shift) << shift as a signed
    `width`-bit register holds it."""
    w = np.asarray(w, dtype=np.int64)
    return _wrap(((-w if neg else w) << np.asarray(lane_shift, dtype=np.int64)) << shift, width)


def stream_add(stream, branch, init: bool, width: int):
    """StreamAdder (rtl/engine/stream_adder.py): X_new = (init ? 0 : X) + branch per lane; returns (the `width`-bit
    values the stream RAM stores, overflow: some X_new does not fit `width` bits)."""
    total = (0 if init else np.asarray(stream, dtype=np.int64)) + np.asarray(branch, dtype=np.int64)
    return _wrap(total, width), bool((~_fits(total, width)).any())


LAYER_CONTROLLER_OUTPUTS = ("layer", "busy", "done", "cycles", "begin", "load", "kv_start", "stream_lif_start",
                            "head_z_start", "output_start", "first_output", "rows_run", "rows_hold", "tap_step",
                            "issue_open", "walk_start", "issue_next", "fetch_next", "pool_latch", "pool_write", "end_output",
                            "next_output", "argmax_valid", "argmax_index", "logit_rotate", "state")


def layer_controller_init() -> dict:
    """LayerController's registers after reset (see layer_controller_step)."""
    return {"state": "IDLE", "layer": 0, "layer_last": False, "gap": 0, "kidx": 0, "busy": False, "done": False,
            "cycles": 0, "first_output": False, "logit_rotate": False, "seam": 0, "fetch_next": False,
            "issue_step": False, "walk_start": False, "issue_open": True}


def layer_controller_step(r: dict, x: dict, layers: int, classes: int, spacing: int, param_wait: int,
                          seam: int = 2):
    """LayerController (rtl/engine/controller.py), one cycle: from its registers r and this cycle's inputs x
    (start, entry_op (an opcode name as in the plan), pooling, tap_in_bounds, tap_last, tap_done, rows_advance,
    rows_ending, last_output, issue_last_output, stream_lif_done, kv_done, head_z_done, pipeline_idle) returns (this
    cycle's outputs, the registers after the clock edge). Outputs: the strobes named in LAYER_CONTROLLER_OUTPUTS,
    the registers as they are in this cycle, and the state. An accumulating layer's outputs after the first follow
    the previous one's last item through the row pipeline after `seam` empty slots: the issue side's output loop
    steps the cycle after the last item was taken (issue_next) and the tap walker starts the cycle after that
    (walk_start), both registers; the walker's items wait (issue_open low) until the seam's slots are taken."""
    s, n = r["state"], dict(r)
    o = {k: False for k in LAYER_CONTROLLER_OUTPUTS}
    o.update({k: r[k] for k in ("layer", "busy", "done", "cycles", "first_output", "logit_rotate", "fetch_next",
                                "state")})
    o["argmax_index"] = r["kidx"] % (1 << max(1, (max(2, classes) - 1).bit_length()))
    if r["busy"]:
        n["cycles"] = (r["cycles"] + 1) & 0xFFFFFFFF
    if r["gap"]:
        n["gap"] = r["gap"] - 1
    n["fetch_next"] = n["issue_step"] = False
    n["walk_start"] = r["issue_step"]
    o.update(issue_next=r["issue_step"], walk_start=r["walk_start"], issue_open=r["issue_open"])

    def next_layer(may_be_last=False):
        if may_be_last and r["layer_last"]:
            n.update(kidx=0, logit_rotate=True, state="ARGMAX")
        else:
            n.update(layer=r["layer"] + 1, state="FETCH")

    def next_output(at_layer_end=next_layer):
        o["next_output"] = True
        if x["last_output"]:
            at_layer_end()
        else:
            n["state"] = "OUT_INIT"

    if s == "IDLE":
        if x["start"]:
            o["begin"] = True
            n.update(layer=0, cycles=0, busy=True, done=False, state="FETCH")
    elif s == "FETCH":
        n.update(layer_last=r["layer"] == layers - 1, state="LOAD")
    elif s == "LOAD":
        o["load"], n["first_output"], n["seam"], n["issue_open"] = True, True, 0, True
        op = x["entry_op"]
        o["kv_start"] = op == "kv"
        n["state"] = {"kv": "KV_RUN", "head_z": "HZ_START",
                      "stream_lif": "SL_WAIT" if param_wait else "SL_START"}.get(op, "OUT_INIT")
    elif s == "OUT_INIT":
        o["output_start"] = True
        n["state"] = "ROW_RD" if x["pooling"] else "ROWS"
    elif s == "ROWS":
        o["rows_run"], o["rows_hold"] = True, r["gap"] != 0
        o["tap_step"] = x["rows_advance"] and not x["tap_done"] and r["issue_open"]
        if x["rows_advance"]:
            if o["tap_step"] and x["tap_last"] and not x["issue_last_output"]:
                n.update(seam=1, issue_step=True, issue_open=False)
            if r["seam"] == seam:
                n.update(seam=0, issue_open=True)
            elif r["seam"]:
                n["seam"] = r["seam"] + 1
        if x["rows_ending"] and r["gap"] == 0:
            o["end_output"] = o["next_output"] = True
            n.update(gap=spacing - 1, first_output=False)
            if x["last_output"]:
                n["state"] = "LAYER_WAIT"
            else:
                n["fetch_next"] = True
    elif s == "LAYER_WAIT":
        if x["pipeline_idle"]:
            next_layer(may_be_last=True)
    elif s == "ROW_RD":
        if x["tap_in_bounds"]:
            n["state"] = "LATCH"
        else:
            o["tap_step"] = True
            if x["tap_last"]:
                n["state"] = "WRITE"
    elif s == "LATCH":
        o["pool_latch"] = o["tap_step"] = True
        n["state"] = "WRITE" if x["tap_last"] else "ROW_RD"
    elif s == "WRITE":
        o["pool_write"] = o["issue_next"] = True
        next_output()
    elif s == "SL_WAIT":
        n["state"] = "SL_START"
    elif s == "SL_START":
        o["stream_lif_start"], n["state"] = True, "SL_RUN"
    elif s == "SL_RUN":
        if x["stream_lif_done"]:
            next_layer()
    elif s == "KV_RUN":
        if x["kv_done"]:
            n["state"] = "LAYER_WAIT"
    elif s == "HZ_START":
        o["head_z_start"], n["state"] = True, "HZ_RUN"
    elif s == "HZ_RUN":
        if x["head_z_done"]:
            next_layer()
    elif s == "ARGMAX":
        if r["kidx"] < classes:
            o["argmax_valid"] = True
            n["kidx"] = r["kidx"] + 1
            if r["kidx"] == classes - 1:
                n["logit_rotate"] = False
        else:
            n["state"] = "ARGMAX_DONE"
    elif s == "ARGMAX_DONE":
        n.update(busy=False, done=True, state="IDLE")
    n["layer"] %= 1 << max(1, layers.bit_length())
    return o, n
