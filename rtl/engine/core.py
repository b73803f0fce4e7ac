"""SpikeEngine: one programmable, event-driven, accumulate-only layer engine for a whole Spikingformer.

Built from the components of this package (each with a golden twin and a unit test, docs/engine.md): the layer
table (LayerTable), the memories (BankedRom, SlicedRam), the row scanner (RowScanner), the addends
(AddendShifter), the P x T lane accumulators (LaneAccumulators), the LIF epilogue (LifLanes), the stream adder
(StreamAdder), the argmax (ArgmaxUnit) and the loop nest (LayerController); this file holds the memories, the
layer registers and the wiring between them.

A controller walks the layer table (a ROM written by gen-rtl, see rtl/engine_plan.py and docs/engine.md) with
one shared loop nest: output position → output lane group → kernel tap → input row. Each input row (P T-bit
spike words, one pixel, or one Z value) is scanned by a priority encoder that emits one event per cycle for every
non-zero word (or set bit, in the bit-serial layers), so a silent row costs one cycle. A row issuer reads the next
rows while one is scanned (ROWS state: issuer, RAM read, row register, scanner; the whole pipeline stalls while the
scanner holds a row with events left), so a row costs max(1, events) cycles, and the next output's rows follow the
current one's through the pipeline (the tap walker and its copy of the output loop run an output ahead of the
scanner, the epilogue and theirs).
An event reads one weight row (P weights) and adds it into the T accumulators of every lane where the word's bit
t is set (time-inner dataflow). The epilogue then runs the LIF over the T sums (no membrane memory), adds them into
the residual-stream RAM, or writes the logits. It runs beside the next output's scan: an end-of-output marker
follows the output's last event down the event pipeline and, at the accumulators, copies them into their held copy
and initialises them for the next output; a second state machine runs the epilogue from the held copy.

Timing discipline (for Fmax): every block-RAM address comes from a register and every block-RAM output is
registered before any logic; memories deeper than one block RAM are sliced (or, the weight ROM, banked) so no
multiplexer sits behind a RAM. The event path is a pipeline SCAN → row + index → address → weight-RAM read → bank registers →
bank select → negate → shift → addend (or KV value) → accumulate, so an event issued by SCAN in cycle c is
visible in the accumulators from cycle c + ACC_LATENCY; the marker of an output whose last scan cycle is e snaps in
cycle e + ACC_LATENCY. Kᵀ·V and head Z wait DRAIN = ACC_LATENCY - 2 cycles before they write.
Overflow checks use a guard bit and run a cycle behind.

Cycle cost (exact): `timing()` (schedule.py) lists every fixed cost; gen-rtl writes it into manifest.json and
`hls_models/engine_cycles.py` composes it with the image's events (the tests compare it with the RTL):
  per layer: 2 (fetch) ; per output (position, group) of an accumulating layer its scan Σ_taps [1 if out of
  bounds else Σ_rows max(1, nnz(row))]: the layer's first output 1 + 4 (row pipeline fill) + scan, every later one
  max(output_spacing(T), 2 + scan) (its rows follow the previous output's through the row pipeline after a 2-slot
  seam); then the layer's tail (ACC_LATENCY + T + 3 LIF | ACC_LATENCY + T + 4 stream add |
  ACC_LATENCY + 2 head write, each + 1 for LAYER_WAIT's registered idle flag). pooling outputs:
  1 + Σ_taps [1 | 2 per row] + 1. stream LIF: T + 1 per output (back to back) + 4 per layer. KV: N + 6 per
  (group, K row block), 1 + max(1, tokens with a non-zero K word) per (group, K channel) (channels back to back),
  KV_ACC_LATENCY + 1 per layer. head Z: (N·T + DRAIN + 2) per group. argmax: K + 2 cycles.
There is no multiplier: the bit-serial layers (first conv over pixel bits, head over the bits of Z) shift-add.
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..engine_plan import Plan
from .accumulators import LaneAccumulators
from .addend import AddendShifter
from .argmax import ArgmaxUnit
from .controller import LayerController
from .epilogue import EpilogueKind, OutputEpilogue
from .events import EventPipeline
from .fanout import ReplicatedRegister
from .head_z import HeadZSequencer
from .kv_sequencer import KvSequencer
from .lane_inputs import LaneInputs
from .logits import LogitBank
from .layer_table import LayerTable, Opcode, layer_field_widths
from .lif import LifLanes
from .output_loop import OutputLoop
from .params import ParamReader
from .memories import RAM_COLLISIONS, BankedRom, RamRead, RamWrite, RomRead, SlicedRam, memory_layout
from .row_pipeline import RowPipeline, RowSource
from .stream_adder import StreamAdder
from .stream_lif import StreamLifSequencer
from .tap_walker import TapWalker, tap_position_width
from .schedule import ACC_LATENCY, DRAIN, param_read_latency, timing
from .util import bits as _bits
from .util import pack as _pack
from .util import fits as _fits

class SpikeEngine(wiring.Component):
    """The whole core. Ports:

    in_valid/in_ready/in_data: load the image's pixels (channel, row, column order) while idle.
    start: begin an inference; busy while running; done rises when the class is ready and stays until start.
    pred_class, logit_sel -> logit (combinational readout), cycles (cycles of the last inference),
    overflow (sticky: some value left its analysed width — never expected), dbg_addr -> dbg_data (activation RAM
    row, DEBUG_READ_LATENCY = 3 cycles: the address is registered before the RAM and the data after it, so the
    read-out port adds no path from the core's inputs into the RAM's address logic; valid while idle, as Kᵀ·V
    reads V rows through this port) for checking every layer's spike words.
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

    def field_widths(self):
        return layer_field_widths(self.plan)

    def elaborate(self, platform):
        m = Module()
        plan, P, T = self.plan, self.P, self.T
        W, D = plan.widths, plan.dims
        # ---------------------------------------------------------------- memories
        m.submodules.layer_table = layer_table = LayerTable(plan)
        img_mem = memory.Memory(shape=unsigned(W["pixel"]), depth=D["pixels"], init=[], attrs=RAM_COLLISIONS)
        WB = W["weight"]
        w_rows = [_pack(r, WB) for r in plan.weight_rows] or [0]
        layout = memory_layout(plan, layer_table.layout.size)
        BANK_ROWS = layout["weights"]["bank_rows"]
        bank_sw = layout["weights"]["bank_slice"]
        BW, TW, LSW = W["bias"], W["theta"], W["lane_shift"]
        # the parameter rows (bias, threshold, lane shift per lane), read param_read_latency cycles after the address
        m.submodules.params = params = ParamReader(P, W, plan.param_rows, param_read_latency(T))
        SW = W["stream"]
        KW = W["kv"]
        ZW = W["z"]
        z_mem = memory.Memory(shape=unsigned(P * ZW), depth=max(1, D["z_rows"]), init=[], attrs=RAM_COLLISIONS)
        for name, mem in [("image", img_mem), ("z", z_mem)]:
            m.submodules[name] = mem
        # the activation RAM (a second read port for the debug read-out), the residual stream and the KV RAM
        m.submodules.act = act_ram = SlicedRam(P * T, D["act_rows"], read_ports=2, name="act")
        m.submodules.stream = s_ram = SlicedRam(P * SW, D["stream_rows"], name="stream")
        m.submodules.kv = kv_ram = SlicedRam(P * T * KW, D["kv_rows"], name="kv")

        def ports(ram, name, n_read=1):
            aw = len(ram.write.addr)
            reads = [RamRead(aw, ram.width).create(path=(f"{name}_read{i}",)) for i in range(n_read)]
            write = RamWrite(aw, ram.width).create(path=(f"{name}_write",))
            for req, port in zip(reads, ram.read):
                wiring.connect(m, req, port)
            wiring.connect(m, write, ram.write)
            return reads + [write]
        img_rd, img_wr = img_mem.read_port(), img_mem.write_port()
        act_rd, act_dbg, act_ram_wr = ports(act_ram, "act", 2)
        # The activation RAM's writers (pooling, stream LIF, epilogue) fill a write request, registered here before
        # the RAM: its block RAMs sit all over the die, and the writers' multiplexers in front of their address and
        # data pins were the Fashion-MNIST core's worst paths. A row is written a cycle after its request; every
        # reader of a layer's output starts at least three cycles after the layer's last request (FETCH, LOAD,
        # OUT_INIT), so nothing reads a row before it is written.
        act_wr = RamWrite(len(act_ram.write.addr), act_ram.width).create(path=("act_write_req",))
        m.d.sync += [act_ram_wr.addr.eq(act_wr.addr), act_ram_wr.data.eq(act_wr.data), act_ram_wr.en.eq(act_wr.en)]
        s_rd, s_wr = ports(s_ram, "stream")
        kv_rd, kv_wr = ports(kv_ram, "kv")
        z_rd, z_wr = z_mem.read_port(), z_mem.write_port()

        # the core's side of every RAM's compute read port and write port, for tests/test_engine_collisions.py
        self.ram_ports = {"image": (img_rd, img_wr), "act": (act_rd, act_ram_wr), "stream": (s_rd, s_wr),
                          "kv": (kv_rd, kv_wr), "z": (z_rd, z_wr), "act_v": (act_dbg, act_ram_wr)}

        dbg_addr = Signal.like(self.dbg_addr, name="dbg_addr_q")
        m.d.sync += dbg_addr.eq(self.dbg_addr)
        m.d.comb += act_dbg.addr.eq(dbg_addr)

        # ---------------------------------------------------------------- layer registers
        L = Signal(layer_table.layout, name="layer")   # the current layer's entry
        lt_fields = layer_table.entry                      # the entry being fetched (FETCH -> LOAD)

        AW = W["acc"] + 1          # one guard bit: overflow is the guard differing from the sign
        MW = W["membrane"]
        ADW = _bits(max(D["act_rows"], D["weight_rows"], D["pixels"], D["stream_rows"], D["kv_rows"],
                        D["param_rows"], 2)) + 2  # signed address arithmetic with headroom
        lp = _bits(P) - 1  # log2(P)
        MASKW = max(P, W["pixel"], ZW)
        SHW = _bits(MASKW - 1)

        # the P lanes x T timestep accumulators, the LIF and the argmax
        m.submodules.accumulators = lanes = LaneAccumulators(P, T, AW, W["acc_rest"] + 1)
        acc = [[lanes.acc[l][t] for t in range(T)] for l in range(P)]
        held = [[lanes.held[l][t] for t in range(T)] for l in range(P)]
        m.submodules.lif = lif = LifLanes(P, T, max(AW, W["stream"]), TW, MW)
        m.submodules.epilogue = epilogue = OutputEpilogue(P, T, ADW, 16, TW, head_groups=-(-self.K // P))
        m.submodules.stream_lif = stream_lif = StreamLifSequencer(T)
        m.submodules.head_z = head_z = HeadZSequencer(T, DRAIN, ADW)
        m.submodules.argmax = argmax = ArgmaxUnit(self.K, W["logit"])
        snap = Signal()         # the end-of-output marker reached the accumulators: held <- acc, acc <- next bias
        # the epilogue reads timestep t from held[l][0] and rotates the held copy by one: no t-indexed
        # multiplexer (its select fans out to every lane) in front of the LIF and the stream adder
        bias_gate = Signal()
        bias_t0_only = Signal()   # the head's bias: timestep 0 alone (the others are narrower)
        bias_q = [Signal(signed(BW), name=f"bias_{l}") for l in range(P)]
        m.submodules.logits = logits = LogitBank(self.K, P, W["logit"])
        overflow = Signal()
        m.d.comb += self.overflow.eq(overflow)
        bad = [lanes.overflow]   # registered overflow detectors, OR-ed into the sticky flag a cycle later

        # the loop nest over the layer table: it commands the units below, one layer after the other
        m.submodules.controller = ctrl = LayerController(len(plan.layers), self.K, T)
        # the layer's outputs in order, each with its rows; kept up to date by commands from the loop nest, so
        # that an output starts in one cycle (OUT_INIT)
        position_width = tap_position_width(layer_table.widths)
        # Two copies of the loop: the issue side's names the output whose rows the tap walker issues, the end side's
        # (`outputs`) the output the scanner finishes and the epilogue writes; the issue side runs up to an output
        # ahead (LayerController). Each copy keeps only what its side reads.
        m.submodules.output_loop = outputs = OutputLoop(layer_table.layout, T, ADW, position_width)
        m.submodules.issue_loop = issue_outputs = OutputLoop(layer_table.layout, T, ADW, position_width)
        m.d.comb += [outputs.layer.eq(L), outputs.entry.eq(lt_fields),
                     issue_outputs.layer.eq(L), issue_outputs.entry.eq(lt_fields)]
        # the input rows of the current output, tap by tap and input lane group by group
        m.submodules.tap_walker = walker = TapWalker(layer_table.layout, ADW + 2, ADW)
        m.d.comb += walker.layer.eq(L)
        row_addr = walker.row_addr
        # the row pipeline (ROWS): the walker's items (a row read, or a bubble for a tap outside the map) through
        # the RAMs and three stages into the scanner, one event per cycle; it holds the RAMs' reads while it stalls
        m.submodules.rows = rows = RowPipeline(P, T, MASKW, ADW, W["pixel"], ZW)
        m.d.comb += [rows.issue_valid.eq(~walker.done & ctrl.issue_open), rows.issue_bubble.eq(~walker.in_bounds),
                     rows.issue_last.eq(walker.last), rows.hold.eq(ctrl.rows_hold),
                     rows.issue_wrow.eq(walker.weight_row), rows.issue_lane.eq(walker.group[:lp] if lp else 0)]
        pool_pend = Signal()   # act_q holds a pooled row still to be OR-ed into pool_row
        pool_row = Signal(P * T)
        # lanes wider than a head (P > d): a lane group holds P / d whole heads; a Q·KV event then adds only into
        # the lanes of the head of its Q channel (the event's head), and Kᵀ·V selects each head's K word on its own
        d = D["d"]
        heads_per_group = P // d if P > d else 1
        ld = (d - 1).bit_length() if heads_per_group > 1 else 0   # log2(d): d divides the power of two P
        HB = _bits(heads_per_group - 1)
        # the event pipeline: SCAN's event -> weight-ROM address -> ROM -> addend shifter -> the addend register;
        # the K.V value RAM reads the address ADD - 3 stages on, so that its registered value (kvq2) meets the event
        ROM_L = BankedRom.LATENCY
        ADD = ROM_L + AddendShifter.LATENCY
        m.submodules.kv_seq = kv_seq = KvSequencer(P, T, D["N"], d, heads_per_group, ADW)
        m.submodules.events = events = EventPipeline(T, SHW, HB, ADW, SHW, ROM_L, AddendShifter.LATENCY, ADD - 3)
        assert events.add_stage + 4 == ACC_LATENCY
        m.d.comb += snap.eq(events.snap)
        # the weight ROM, banked; the event pipeline reads it through weight_read
        m.submodules.weights = weights = BankedRom(w_rows, P * WB, BANK_ROWS, bank_sw, ADW, name="weights")
        weight_read = RomRead(ADW, P * WB).create(path=("weight_read",))
        wiring.connect(m, weight_read, weights.read)
        wq = weight_read.data
        # registers right behind a block RAM have no reset, so they become its output register (docs/synth.md)
        kvq = Signal(P * T * KW, reset_less=True)
        kvq2 = Signal(P * T * KW)
        # the addends of the event's weight row (negate, shift), then the stream adder of the stream writers
        m.submodules.addends = addends = AddendShifter(P, WB, SHW, AW, LSW)
        m.submodules.stream_adder = stream_adder = StreamAdder(P, SW, AW)
        # stream and activation read registers
        s_addr = Signal(ADW)
        s_q = Signal(P * SW, reset_less=True)
        act_q = Signal(P * T, reset_less=True)
        vq = Signal(P * T, reset_less=True)   # the read-out port's registered row (the V row in Kᵀ·V)
        vq2 = Signal(P * T)
        hz_step = Signal(ADW)   # RS - (T - 1): from the last timestep of token n to the first of token n + 1
        ld_addr = Signal(range(D["pixels"] + 1))
        busy = ctrl.busy

        m.d.comb += [self.busy.eq(busy), self.done.eq(ctrl.done), self.cycles.eq(ctrl.cycles),
                     self.pred_class.eq(argmax.best), self.logit.eq(logits.logit), logits.sel.eq(self.logit_sel)]

        # image load port
        m.d.comb += [self.in_ready.eq(~busy), img_wr.addr.eq(ld_addr), img_wr.data.eq(self.in_data),
                     img_wr.en.eq(self.in_valid & ~busy)]
        with m.If(self.in_valid & ~busy):
            m.d.sync += ld_addr.eq(Mux(ld_addr == D["pixels"] - 1, 0, ld_addr + 1))

        # ---------------------------------------------------------------- RAM ports: registered addresses and data
        row_addr_u = row_addr[:ADW]
        # The activation RAM always reads row_addr (the K·V loop steers it to its K and V rows too): a read nobody
        # latches costs nothing, while a per-state multiplexer with the tap's in-bounds flags in its select, in
        # front of the address of 32 block RAMs spread over the die, was the Fashion-MNIST core's critical path.
        m.d.comb += act_rd.addr.eq(row_addr_u)
        m.d.comb += [kv_rd.addr.eq(events.value_addr), params.addr.eq(outputs.param_row), s_rd.addr.eq(s_addr),
                     img_rd.addr.eq(row_addr_u), z_rd.addr.eq(walker.group >> lp), layer_table.index.eq(ctrl.layer)]
        m.d.comb += weight_read.addr.eq(events.rom_addr)
        m.d.sync += [kvq.eq(kv_rd.data), kvq2.eq(kvq), s_q.eq(s_rd.data)]
        with m.If(~rows.stall):
            m.d.sync += act_q.eq(act_rd.data)
        m.d.comb += [act_rd.en.eq(~rows.stall), img_rd.en.eq(~rows.stall), z_rd.en.eq(~rows.stall)]
        m.d.comb += [rows.act_row.eq(act_q), rows.pixel.eq(img_rd.data), rows.z_row.eq(z_rd.data)]
        m.d.sync += pool_pend.eq(0)
        with m.If(pool_pend):
            m.d.sync += pool_row.eq(pool_row | act_q)
        s_vals = [s_q[l * SW:(l + 1) * SW].as_signed() for l in range(P)]
        # The adder runs every cycle and SW writes only the sums of its window: an enable from the FSM's timestep
        # compare in front of every sum bit was the critical path (92 MHz on the 16-lane digits core).
        m.d.comb += [stream_adder.add.eq(1), stream_adder.init.eq(L["stream_init"])]
        m.d.comb += [stream_adder.stream[l].eq(s_vals[l]) for l in range(P)]
        m.d.comb += [stream_adder.branch[l].eq(held[l][0]) for l in range(P)]

        # ---------------------------------------------------------------- event pipeline and accumulators
        # the next output's lane shifts take over where the marker passes: the events behind it are the next output's
        lane_shift_next = [Signal(LSW, name=f"lane_shift_next_{l}") for l in range(P)]
        with m.If(events.switch):
            m.d.sync += [addends.lane_shift[l].eq(lane_shift_next[l]) for l in range(P)]
        m.d.comb += [addends.neg.eq(events.shifter_neg), addends.shift.eq(events.shifter_shift)]
        m.d.comb += [addends.weights[l].eq(wq[l * WB:(l + 1) * WB]) for l in range(P)]
        # Kᵀ·V: KvSequencer runs the layer; it reads K rows through row_addr, V rows through the read-out port
        m.d.comb += [kv_seq.act_row.eq(act_q), kv_seq.v_row.eq(vq2)]
        m.d.comb += [walker.load.eq(kv_seq.k_load), walker.load_addr.eq(kv_seq.k_addr)]
        with m.If(kv_seq.v_load):
            m.d.sync += dbg_addr.eq(kv_seq.v_addr)
        with m.If(kv_seq.write):
            m.d.comb += [kv_wr.addr.eq(kv_seq.write_row), kv_wr.en.eq(1),
                         kv_wr.data.eq(Cat(*[held[l][tt][:KW] for tt in range(T) for l in range(P)]))]
        m.d.sync += [vq.eq(act_dbg.data), vq2.eq(vq)]
        m.d.comb += self.dbg_data.eq(vq)
        m.submodules.lane_inputs = lane_inputs = LaneInputs(P, T, AW, KW, SW, d, heads_per_group)
        # The selects that reach every lane come from one register per lane (ReplicatedRegister), each loaded with
        # the value the single register would take: the same cycle, P short nets instead of one across the lanes.
        def per_lane(name, next_value):
            copies = m.submodules[name] = ReplicatedRegister(P)
            m.d.comb += copies.d.eq(next_value)
            return copies.q
        m.d.comb += [lane_inputs.event_valid.eq(per_lane("event_valid_copies", events.add_v_next)),
                     lane_inputs.event_word.eq(events.add_word),
                     lane_inputs.event_attn.eq(per_lane("event_attn_copies", events.add_attn_next)),
                     lane_inputs.weight_addend.eq(addends.addend),
                     lane_inputs.kv_values.eq(kvq2), lane_inputs.kv_add.eq(per_lane("kv_add_copies", kv_seq.add_next)),
                     lane_inputs.kv_mask.eq(kv_seq.add_mask),
                     lane_inputs.hz_add.eq(per_lane("hz_add_copies", head_z.add_next)),
                     lanes.add_en.eq(lane_inputs.add_en), lanes.addend.eq(lane_inputs.addend)]
        m.d.comb += [lane_inputs.stream[l].eq(s_vals[l]) for l in range(P)]
        if heads_per_group > 1:
            m.d.comb += lane_inputs.event_head.eq(events.add_head)
        for l in range(P):
            m.d.comb += lanes.init_value[l].eq(Mux(bias_gate, bias_q[l], 0))
        # the accumulators start a layer's first output (its parameters have arrived), a Kᵀ·V layer or a head-Z group
        acc_init_next = kv_seq.acc_init | head_z.acc_init | (params.ready & ctrl.first_output)
        snap_next = events.snap_next | kv_seq.snap_next
        m.d.comb += [lanes.init.eq(per_lane("acc_init_copies", acc_init_next | snap_next)),
                     lanes.init_t0_only.eq(bias_t0_only), lanes.snap.eq(per_lane("snap_copies", snap_next)),
                     lanes.rotate.eq(per_lane("rotate_copies", epilogue.rotate_next))]

        # ---------------------------------------------------------------- LIF: one timestep per cycle
        bad.append(lif.overflow)
        lif_from_stream = Signal()   # the layer is a stream LIF: the LIF's inputs come from the stream

        with m.If(busy):
            m.d.sync += overflow.eq(overflow | Cat(*bad).any())

        # ---------------------------------------------------------------- helpers for the loop nest
        op = L["op"]
        is_bitserial = (op == Opcode.CONV_IN) | (op == Opcode.HEAD)
        m.d.comb += rows.source.eq(Mux(op == Opcode.CONV_IN, RowSource.PIXEL,
                                       Mux(op == Opcode.HEAD, RowSource.Z, RowSource.SPIKES)))
        m.d.comb += outputs.group_steps.eq((op == Opcode.STREAM_LIF) | (op == Opcode.HEAD_Z))

        # only LAYER_WAIT may end the model (LayerController), so the plan must end with an accumulating layer
        assert plan.layers[-1]["op"] == Opcode.HEAD.value, "the plan must end with the head"
        # LAYER_WAIT reads the pipelines' and the epilogue's idle flags from one register (IDLE_FLAG_LATENCY): their
        # busy bits sit across the die and, read directly, were the 16-lane core's worst path into the controller's
        # next-state logic; an end-of-output marker entering, or Kᵀ·V's last channel scanned, in this cycle counts as
        # busy (their busy flags rise a cycle later)
        pipeline_idle = Signal()
        m.d.sync += pipeline_idle.eq(~(events.busy | kv_seq.busy | events.mark | kv_seq.done) & epilogue.idle)
        m.d.comb += [ctrl.start.eq(self.start), ctrl.entry_op.eq(lt_fields["op"]), ctrl.pooling.eq(op == Opcode.POOL),
                     ctrl.tap_in_bounds.eq(walker.in_bounds), ctrl.tap_last.eq(walker.last),
                     ctrl.tap_done.eq(walker.done), ctrl.rows_advance.eq(rows.advance), ctrl.rows_ending.eq(rows.ending),
                     ctrl.last_output.eq(outputs.last_output), ctrl.issue_last_output.eq(issue_outputs.last_output),
                     ctrl.stream_lif_done.eq(stream_lif.done),
                     ctrl.kv_done.eq(kv_seq.done), ctrl.head_z_done.eq(head_z.done),
                     # (KV_NEXT's two cycles hold the last K channel's marker until it has left the token scanner)
                     ctrl.pipeline_idle.eq(pipeline_idle)]
        m.d.comb += [walker.step.eq(ctrl.tap_step), rows.run.eq(ctrl.rows_run), outputs.next_output.eq(ctrl.next_output),
                     issue_outputs.next_output.eq(ctrl.issue_next),
                     stream_lif.start.eq(ctrl.stream_lif_start), head_z.start.eq(ctrl.head_z_start),
                     kv_seq.start.eq(ctrl.kv_start)]

        # the scanner's events into the event pipeline (the row pipeline has events in ROWS alone)
        onehot, lowest = rows.event_onehot, rows.event_index
        m.d.comb += [events.issue.eq(rows.event_valid),
                     events.attn.eq(op == Opcode.ATTN),
                     events.neg.eq((op == Opcode.HEAD) & onehot[ZW - 1]),
                     events.shift.eq(Mux(is_bitserial, lowest, 0)),
                     events.word.eq(Mux(op == Opcode.CONV_IN, (1 << T) - 1,
                                        Mux(op == Opcode.HEAD, 1, rows.event_word))),
                     events.base.eq(rows.event_wrow), events.off.eq(Mux(is_bitserial, 0, lowest))]
        if heads_per_group > 1:
            # Q channel (head, i): KV row group·d + i, lanes of that head only
            with m.If(op == Opcode.ATTN):
                m.d.comb += [events.off.eq(lowest[:ld]), events.head.eq(lowest[ld:])]
        p_bias, p_theta, p_shift = params.bias, params.theta, params.lane_shift
        sw_bad = Signal()
        hz_bad = Signal()
        m.d.sync += [sw_bad.eq(0), hz_bad.eq(0)]
        bad += [sw_bad, hz_bad]

        # the bias and lane shifts of the output OUT_INIT started, read from the parameter RAM param_read_latency
        # cycles later (the output loop advanced its parameter row with the output): the previous output's snapshot
        # initialises the accumulators with them (after its events), the first output of a layer here
        with m.If(params.ready):
            m.d.sync += [bias_q[l].eq(p_bias[l]) for l in range(P)]
            m.d.sync += [lane_shift_next[l].eq(p_shift[l]) for l in range(P)]
            with m.If(ctrl.first_output):
                m.d.sync += [addends.lane_shift[l].eq(p_shift[l]) for l in range(P)]

        with m.If(ctrl.begin):
            m.d.sync += [overflow.eq(0), ld_addr.eq(0)]

        # a layer's entry into the layer registers
        with m.If(ctrl.load):
            m.d.sync += [L.eq(lt_fields), lif_from_stream.eq(lt_fields["op"] == Opcode.STREAM_LIF),
                         hz_step.eq(lt_fields["RS"] - (T - 1))]
            m.d.comb += [outputs.load.eq(1), issue_outputs.load.eq(1),
                         kv_seq.tokens.eq(lt_fields["N"]), kv_seq.channels.eq(lt_fields["d"]),
                         kv_seq.groups.eq(lt_fields["Gout"]), kv_seq.dp.eq(lt_fields["DP"]),
                         kv_seq.k_base.eq(lt_fields["k_base"]), kv_seq.v_base.eq(lt_fields["v_base"])]
        with m.If(ctrl.kv_start | ctrl.head_z_start):
            m.d.sync += bias_gate.eq(0)

        # an output starts: its walk, its parameters, an empty pooled row and an empty row pipeline
        with m.If(ctrl.output_start):
            m.d.sync += [bias_gate.eq((op == Opcode.ACC) | is_bitserial), bias_t0_only.eq(op == Opcode.HEAD),
                         pool_row.eq(0)]
            m.d.comb += [params.fetch.eq(1), rows.clear.eq(1)]
        # the issue side's output: started by OUT_INIT (pooled outputs, an accumulating layer's first) or in the
        # seam behind the previous output's last item
        with m.If(ctrl.output_start | ctrl.walk_start):
            m.d.comb += [walker.start.eq(1), walker.pos.eq(issue_outputs.pos),
                         walker.weight_base.eq(issue_outputs.weight_base), walker.xok.eq(issue_outputs.xok),
                         walker.yok.eq(issue_outputs.yok)]
        # the next output to end reads its parameters the cycle after the previous one ended, as an output that
        # OUT_INIT starts does
        with m.If(ctrl.fetch_next):
            m.d.comb += params.fetch.eq(1)

        # pooling: a row inside the map is in act_q from the cycle after LATCH and is OR-ed into pool_row then; after
        # the walk's last item the pooled row is written
        with m.If(ctrl.pool_latch):
            m.d.sync += pool_pend.eq(1)
        with m.If(ctrl.pool_write):
            m.d.comb += [act_wr.addr.eq(outputs.out_row), act_wr.en.eq(1),
                         act_wr.data.eq(pool_row | Mux(pool_pend, act_q, 0))]

        # an accumulating layer's output ends: the marker follows its last event down the pipeline; the snapshot
        # (ACC_LATENCY cycles on) starts its epilogue from the context captured here, while the next output scans
        with m.If(ctrl.end_output):
            m.d.comb += [events.mark.eq(1), epilogue.capture.eq(1), epilogue.capture_row.eq(outputs.out_row),
                         epilogue.capture_srow.eq(outputs.stream_row), epilogue.capture_group.eq(outputs.group)]
            m.d.comb += [epilogue.capture_theta[l].eq(p_theta[l]) for l in range(P)]

        # argmax, ties to the lowest index: done is visible argmax_fixed + 1 cycles after the last logit's cycle, so
        # the class must be in `best` then
        assert ArgmaxUnit.LATENCY <= timing(T)["argmax_fixed"] + 1
        m.d.comb += [argmax.valid.eq(ctrl.argmax_valid), argmax.index.eq(ctrl.argmax_index),
                     argmax.value.eq(logits.first)]

        # ---------------------------------------------------------------- the LIF's inputs
        # The LIF serves either the stream LIF (a layer of its own) or the epilogue (accumulating layers), never
        # both in one layer, so its inputs are picked by a flag set with the layer: the two sequencers' states reach
        # it only as valid, step and start. (Picking them by whichever sequencer's valid was high put the epilogue's
        # state decode in front of the LIF's subtract and membrane registers: the Fashion-MNIST core's worst path.)
        m.d.comb += [lif.x[l].eq(Mux(lif_from_stream, s_vals[l], held[l][0])) for l in range(P)]
        m.d.comb += [lif.theta[l].eq(Mux(lif_from_stream, p_theta[l], epilogue.lif_theta[l])) for l in range(P)]
        m.d.comb += [lif.valid.eq(stream_lif.lif_valid | epilogue.lif_valid),
                     lif.start.eq(stream_lif.lif_start | epilogue.lif_start),
                     lif.step.eq(Mux(lif_from_stream, stream_lif.lif_step, epilogue.lif_step))]

        # ---------------------------------------------------------------- stream LIF layers
        # the sequencer's commands: the stream rows into the LIF, its spike words into the activation RAM, the
        # output counters (the parameter RAM then reads the next output's thresholds)
        m.d.comb += stream_lif.last.eq(outputs.rows_last)
        with m.If(stream_lif.stream_start):
            m.d.sync += s_addr.eq(outputs.stream_row)
        with m.If(stream_lif.stream_next):
            m.d.sync += s_addr.eq(s_addr + 1)
        with m.If(stream_lif.act_write):
            m.d.comb += [act_wr.addr.eq(outputs.out_row), act_wr.en.eq(1), act_wr.data.eq(lif.spikes.as_value()),
                         outputs.next_out_row.eq(1)]
        with m.If(stream_lif.advance):
            m.d.comb += outputs.next_group.eq(1)

        # ---------------------------------------------------------------- head Z layers
        # the sequencer's commands: clear the accumulators, the stream rows into timestep 0's accumulators (the adder
        # mux above), the group's sums into the Z RAM
        m.d.comb += [head_z.tokens.eq(L["N"]), head_z.last.eq(outputs.group_last)]
        with m.If(head_z.stream_load):
            m.d.sync += s_addr.eq(head_z.stream_row)
        with m.If(head_z.stream_next):
            m.d.sync += s_addr.eq(s_addr + 1)
        with m.If(head_z.stream_skip):
            m.d.sync += s_addr.eq(s_addr + hz_step)
        with m.If(head_z.z_write):
            m.d.comb += [z_wr.addr.eq(outputs.group), z_wr.en.eq(1), outputs.next_group.eq(1),
                         z_wr.data.eq(Cat(*[acc[l][0][:ZW] for l in range(P)]))]
            m.d.sync += hz_bad.eq(Cat(~_fits(acc[l][0], ZW) for l in range(P)).any())

        # ---------------------------------------------------------------- epilogue of the accumulating layers
        # It starts at the snapshot of an output (held <- acc) and runs while the controller scans the next output;
        # output_spacing() keeps one epilogue from catching up with the next. The stream read-address register
        # stays here (one register in front of the RAM, shared with the stream LIF and head Z loops above).
        m.d.comb += [epilogue.start.eq(snap),
                     epilogue.kind.eq(Mux(op == Opcode.HEAD, EpilogueKind.HEAD,
                                          Mux(L["to_stream"], EpilogueKind.STREAM_ADD, EpilogueKind.LIF)))]
        with m.If(epilogue.act_write):
            m.d.comb += [act_wr.addr.eq(epilogue.act_row), act_wr.en.eq(1), act_wr.data.eq(lif.spikes.as_value())]
        with m.If(epilogue.stream_start):
            m.d.sync += s_addr.eq(epilogue.stream_row)
        with m.If(epilogue.stream_next):
            m.d.sync += s_addr.eq(s_addr + 1)
        # the stream adder adds every cycle (see above); the epilogue writes the sums of its timesteps
        with m.If(epilogue.stream_write):
            m.d.comb += [s_wr.addr.eq(epilogue.stream_write_row), s_wr.en.eq(1),
                         s_wr.data.eq(stream_adder.sum.as_value())]
            m.d.sync += sw_bad.eq(stream_adder.overflow)
        m.d.comb += [logits.rotate.eq(ctrl.logit_rotate), logits.write_group.eq(epilogue.head_write_group)]
        m.d.comb += [logits.lanes[l].eq(held[l][0]) for l in range(P)]
        # which layers use each RAM's reads: a read in another layer lands in a register nobody reads, so a
        # collision there is harmless (tests/test_engine_collisions.py checks the others never happen)
        self.ram_reads_used = {
            "image": op == Opcode.CONV_IN,
            "act": (op != Opcode.CONV_IN) & (op != Opcode.HEAD) & (op != Opcode.HEAD_Z) & (op != Opcode.STREAM_LIF),
            "stream": Const(1), "kv": op == Opcode.ATTN, "z": op == Opcode.HEAD, "act_v": op == Opcode.KV}

        return m
