"""The SpikeEngine core (rtl/engine/core.py) and its components, each a `wiring.Component` with a golden twin in
golden/ and a unit test in tests/test_engine_components.py:

  layer_table.LayerTable     layer-table ROM → decoded entry (Opcode, layer_entry_layout)
  output_loop.OutputLoop     a layer's outputs in order, with the rows each one reads and writes
  tap_walker.TapWalker       an output's input rows, tap by tap and input lane group by group
  scanner.RowScanner         a row's non-zero mask → one event per cycle, lowest first
  accumulators.LaneAccumulators   P lanes × T timestep accumulators (init, add, rotate, overflow guard)
  addend.AddendShifter       the event's weight row -> the lanes' addends (negate, shift)
  lif.LifLanes               the LIF epilogue, one timestep of P lanes per cycle
  stream_adder.StreamAdder   residual stream + branch, with the overflow check
  argmax.ArgmaxUnit          running argmax of the logits, ties to the lowest class
  kv_sequencer.KvSequencer   a Kᵀ·V layer, event-driven over tokens (with kv_tokens.KvTokenScanner)
  head_z.HeadZSequencer      a head-Z layer: the stream rows summed per lane group
  stream_lif.StreamLifSequencer   a stream-LIF layer, outputs back to back
  epilogue.OutputEpilogue    an accumulating output's LIF, stream add or logit write
  events.EventPipeline       an event from the scanner to the addend register, with the end-of-output marker
  fanout.ReplicatedRegister  a control bit in one register per lane, kept apart through synthesis
  memories.BankedRom         the banked weight ROM (read through a RomRead port, wiring.connect)
  memories.SlicedRam         the activation, stream and KV RAMs (RamRead / RamWrite ports)
  row_pipeline.RowPipeline   an output's input rows through the RAMs and three stages into the scanner
  schedule                   every fixed latency and cycle cost (manifest.json's timing)
"""
from .core import SpikeEngine
from .schedule import ACC_LATENCY, DRAIN, timing
from .util import pack as _pack
from .memories import BRAM_ASPECTS, memory_layout, slice_width, weight_banking
from .layer_table import Opcode, layer_field_widths
from .tap_walker import tap_position_width

__all__ = ["ACC_LATENCY", "BRAM_ASPECTS", "DRAIN", "SpikeEngine", "_pack", "memory_layout", "slice_width", "timing",
           "weight_banking", "Opcode", "layer_field_widths", "tap_position_width"]
