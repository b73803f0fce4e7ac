"""The layer graph: the integer model as one ordered list of steps, the single walk over the network.

Inference (golden/inference.py), the width analysis (golden/widths.py), the trace key order, the energy model
(hls_models/energy.py), the cycle model (hls_models/engine_cycles.py), the engine's layer table and memory map
(rtl/engine_plan.py), the integer export (quant/export.py, through a ModelShape of the config) and the report's
layer inputs all iterate `steps(model)` instead of spelling out the tokenizer stages and the `blk{j}.` layers again.
A step names its arrays and the trace keys it produces, in execution order:

  op            what it computes                                         trace keys it writes
  pixel_conv    acc = conv3x3(pixels, w) + b, the same at every t         NAME.acc
  spike_conv    [OR-pool, then] acc = conv3x3(spikes, w) + b              [NAME.pooled,] NAME.acc
  spike_linear  acc = W·spikes + b                                       NAME.acc
  stream_lif    spikes = LIF(stream)                                     `spikes`
  attention     KV, Y per head and timestep, then the attention LIF       blk{j}.kv, blk{j}.y, blk{j}.attn_spikes
  head          Z = Σ_t Σ_n stream, logits = W·Z + b                      head.z, logits

A weight step (pixel_conv, spike_conv, spike_linear) then either runs a LIF with θ from `theta` into `spikes`, or
writes the residual stream (`stream`: the stream's trace key after it; `stream_init` for the tokenizer's last
stage, which starts the stream, otherwise the accumulator is added to `stream_in`). docs/intmodel.md gives the
arithmetic of each step; tests/test_golden.py checks the graph against the model's arrays.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    op: str
    name: str                      # array prefix (tok1, blk0.q, head) or the step's own name (blk0.ssa, blk0.attn)
    src: str                       # trace key of the input ("pixels" for the first conv, the stream's key, ...)
    cin: int = 0                   # input channels (weight steps)
    cout: int = 0                  # output channels
    shape: tuple = ()              # output positions: (H, W) for convs, (N,) after the tokenizer
    pool: bool = False             # spike_conv: the input is OR-pooled (3×3, stride 2, pad 1) first
    theta: str | None = None       # array holding the LIF's θ (None: no LIF, or the attention's constant θ)
    spikes: str | None = None      # trace key of the LIF's output
    stream: str | None = None      # trace key of the residual stream this step writes
    stream_init: bool = False      # the step starts the stream instead of adding to it
    stream_in: str | None = None   # trace key of the stream it adds to

    @property
    def acc(self) -> str:
        return "logits" if self.op == "head" else f"{self.name}.acc"

    @property
    def pooled(self) -> str | None:
        return f"{self.name}.pooled" if self.pool else None

    @property
    def weighted(self) -> bool:
        """A layer with weights and bias arrays NAME.w, NAME.b (every op but stream_lif and attention)."""
        return self.op in ("pixel_conv", "spike_conv", "spike_linear", "head")

    @property
    def spike_input(self) -> bool:
        """Its input is strictly 0/1 (everything but the first conv and the head)."""
        return self.op in ("spike_conv", "spike_linear")

    def keys(self) -> list[str]:
        """The trace keys this step writes, in the order golden.inference records them."""
        if self.op == "head":
            return ["head.z", "logits"]
        if self.op == "stream_lif":
            return [self.spikes]
        if self.op == "attention":
            p = self.name[:-len("attn")]
            return [p + "kv", p + "y", p + "attn_spikes"]
        out = [self.pooled] if self.pool else []
        out.append(self.acc)
        if self.spikes:
            out.append(self.spikes)
        if self.stream:
            out.append(self.stream)
        return out


def steps(model) -> list[Step]:
    """The network of an IntModel (or anything with the same config properties), in execution order."""
    out: list[Step] = []
    shapes = model.stage_shapes
    last = len(shapes) - 1
    src = "pixels"
    for i, (cin, cout, h, w) in enumerate(shapes):
        lif = i < last
        out.append(Step("pixel_conv" if i == 0 else "spike_conv", f"tok{i}", src, cin, cout, (h, w),
                        pool=i > 0 and bool(model.stages[i]["pool"]),
                        theta=f"tok{i}.theta" if lif else None, spikes=f"tok{i}.spikes" if lif else None,
                        stream=None if lif else "stream.0", stream_init=not lif))
        src = f"tok{i}.spikes"
    c, n, ch = model.C, (model.tokens,), model.mlp_hidden
    stream = "stream.0"
    for j in range(model.blocks):
        p = f"blk{j}."
        out.append(Step("stream_lif", p + "ssa", stream, c, c, n, theta=p + "ssa_theta", spikes=p + "ssa_spikes"))
        for name in ("q", "k", "v"):
            out.append(Step("spike_linear", p + name, p + "ssa_spikes", c, c, n, theta=p + name + ".theta",
                            spikes=p + name + ".spikes"))
        out.append(Step("attention", p + "attn", p + "q.spikes", c, c, n, spikes=p + "attn_spikes"))
        out.append(Step("spike_linear", p + "proj", p + "attn_spikes", c, c, n, stream=p + "stream_mid",
                        stream_in=stream))
        out.append(Step("stream_lif", p + "mlp", p + "stream_mid", c, c, n, theta=p + "mlp_theta",
                        spikes=p + "mlp_spikes"))
        out.append(Step("spike_linear", p + "fc1", p + "mlp_spikes", c, ch, n, theta=p + "fc1.theta",
                        spikes=p + "fc1.spikes"))
        out.append(Step("spike_linear", p + "fc2", p + "fc1.spikes", ch, c, n, stream=p + "stream_out",
                        stream_in=p + "stream_mid"))
        stream = p + "stream_out"
    out.append(Step("head", "head", stream, c, model.num_classes))
    return out


def trace_keys(model) -> list[str]:
    """Every trace key in execution order (the order in which mismatches are reported)."""
    return [key for step in steps(model) for key in step.keys()]
