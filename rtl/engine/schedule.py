"""The engine's schedule: every fixed latency and cycle cost of the core's loop nest, in one place. gen-rtl writes
`timing()` into manifest.json; hls_models/engine_cycles.py composes it with an image's events into the exact cycle
count of an inference (the tests compare it with the RTL's cycle counter), and the core (core.py) builds its
controller from the same numbers."""
from __future__ import annotations

from .addend import AddendShifter
from .epilogue import EpilogueKind, OutputEpilogue
from .head_z import HeadZSequencer
from .kv_sequencer import KvSequencer
from .memories import BankedRom
from .stream_lif import StreamLifSequencer

# Cycles from the SCAN cycle that issues an event to the first cycle its addend is visible in the accumulators:
# SCAN's event register, the row + index add (the ROM address register), the weight ROM (BankedRom.LATENCY),
# the addend shifter (negate, shift: AddendShifter.LATENCY), the addend register, the accumulate.
ACC_LATENCY = 2 + BankedRom.LATENCY + AddendShifter.LATENCY + 2
# Cycles the controller waits between the cycle after the last SCAN of an output and its epilogue.
DRAIN = ACC_LATENCY - 2

# LAYER_WAIT sees the pipelines idle a cycle after they are (a register: core.py)
IDLE_FLAG_LATENCY = 1

DEBUG_READ_LATENCY = 3      # dbg_addr register, the RAM's synchronous read, the data register (shared with Kᵀ·V)
# Kᵀ·V, from the cycle its token scanner names a token to the first cycle the token's counts are in the accumulators
KV_ACC_LATENCY = KvSequencer.ACC_LATENCY


def param_read_latency(T):
    """Cycles from a parameter-RAM address to its row at the readers: 3 (the RAM, its output register, a register
    beside it), fewer when T < 3: the stream LIF starts an output every T + 1 cycles and reads its thresholds at the
    start, T + 1 cycles after the address steps, which leaves room for min(3, T) cycles of read."""
    return min(3, T)


def stream_lif_param_wait(T):
    """Cycles a stream-LIF layer waits after LOAD before its sequencer starts: its first output reads its thresholds
    two cycles after the start, param_read_latency cycles after LOAD set the parameter address."""
    return max(0, param_read_latency(T) - 2)


def output_spacing(T):
    """Least cycles between the last SCAN cycles of two outputs of an accumulating layer: the snapshot of an output
    reads its context ACC_LATENCY cycles after its last SCAN (the next output must not have replaced it yet), and the
    epilogue must be back to idle before the next snapshot."""
    return max([ACC_LATENCY] + [OutputEpilogue.cycles(kind, T) for kind in EpilogueKind])


def output_seam():
    """Empty slots in the row pipeline between the last item of an accumulating output and the next output's first:
    one for the issue side's output loop to step, one for the tap walker to start from it. Two slots also keep the
    next output's first event (the earliest, two cycles after the end) a slot behind the end-of-output marker, whose
    snapshot initialises the accumulators."""
    return 2


def timing(T):
    """The schedule's cycle costs (manifest.json -> `timing`; hls_models/engine_cycles.py builds the exact cycle
    count of an inference from these and the image's events, and the tests compare it with the RTL's counter).
    Each number is the length of a fixed sequence of controller states below."""
    return {
        "acc_latency": ACC_LATENCY,            # SCAN cycle of an event -> first cycle its addend is in the acc
        "drain": DRAIN,                        # wait between the cycle after an output's last SCAN and its epilogue
        "layer_fetch": 2,                      # FETCH, LOAD
        "output_start": 1,                     # OUT_INIT (a pooled output; an accumulating layer's first)
        "row_fill": 4,                         # ROWS: issue, RAM read, row register, mask register before the
                                               # layer's first scan
        "output_seam": output_seam(),          # empty slots between two accumulating outputs' items
        "row_min": 1,                          # a row (or a bubble) holds the scanner max(row_min, events) cycles
        "tap_outside": 1,                      # a kernel tap outside the input map: one bubble item
        "pool_row": 2,                         # pooling: ROW_RD, LATCH (the OR needs no scan)
        "pool_tap_outside": 1,                 # pooling: ROW_RD only
        "epilogue": {"pool_write": 1},         # WRITE
        # accumulating layers: an output's epilogue runs beside the next output's scan (see the docstring)
        "output_spacing": output_spacing(T),   # cycles from an output's last SCAN cycle to the next one's, at least
        # the last output's snapshot, its epilogue (OutputEpilogue's schedule), LAYER_WAIT's registered idle flag,
        # then FETCH
        "layer_tail": {name: ACC_LATENCY + OutputEpilogue.cycles(kind, T) + IDLE_FLAG_LATENCY
                       for name, kind in (("lif", EpilogueKind.LIF), ("stream_add", EpilogueKind.STREAM_ADD),
                                          ("head_write", EpilogueKind.HEAD))},
        "stream_lif_output": StreamLifSequencer.period(T),    # the outputs back to back
        # start, the first read, the last output's write, and a wait for the first output's thresholds
        "stream_lif_fixed": StreamLifSequencer.FIXED_CYCLES + stream_lif_param_wait(T),
        "kv_block_token": 1,                   # KVA: one K row per token, per (lane group, K row block)
        "kv_block_fixed": 6,                   # KV_INIT, KVA_WAIT (3), KV_NEXT (2) per (lane group, K row block)
        "kv_channel_fixed": 1,                 # KV_CH per K channel; KV_SCAN holds max(row_min, tokens with a
                                               # non-zero K word) cycles; the channel's write overlaps the next
        # LAYER_WAIT: the last channel's snapshot and write (its marker is two stages on when the last block's
        # KV_NEXT ends), then the registered idle flag
        "kv_tail": KV_ACC_LATENCY + IDLE_FLAG_LATENCY,
        "head_z_value": 1,                     # HeadZSequencer: a stream row read per (token, timestep)
        "head_z_group_fixed": HeadZSequencer.group_cycles(0, T, DRAIN),   # its init, drain and Z write per group
        "argmax_class": 1, "argmax_fixed": 2,  # ARGMAX per class, ARGMAX's last cycle, ARGMAX_DONE
        "debug_read": DEBUG_READ_LATENCY,      # dbg_addr at edge c -> dbg_data after edge c + debug_read
    }
