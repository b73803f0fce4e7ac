"""The Spikingformer of docs/model.md in torch, with Brevitas power-of-two weight quantisation.

Two forms share one class:

* QAT form (`folded=False`): Conv/Linear (Brevitas, POT per-channel scales) followed by BatchNorm, exactly the
  reference architecture (its parameter count is the paper's).
* Folded form (`folded=True`): BN folded into the conv, every conv has a bias that is rounded (straight-through)
  onto the grid of its own weight scale, the head bias onto the logit grid. Every value then is an integer times
  a power of two, so this float model computes exactly what the exported integer model computes (see export.py).

Layout is [T, B, C, H, W] in the tokenizer and [T, B, C, N] after it; convs/BN run on [T*B, ...].
"""
from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from brevitas.core.function_wrapper import CeilSte
from brevitas.inject.enum import RestrictValueType
from brevitas.nn import QuantConv1d, QuantConv2d, QuantLinear
from brevitas.quant import Int8WeightPerChannelFloat, Int8WeightPerTensorFloat
from torch import nn

SURROGATE_ALPHA = 4.0
ATTN_SCALE = 0.125
ATTN_VTH = 0.5


class PotWeightPerChannel(Int8WeightPerChannelFloat):
    """Per-output-channel scale 2^e, e = ceil(log2(max|w| / 2^(b-1))): the largest weight lands in
    (2^(b-2), 2^(b-1)] and is clipped to 2^(b-1)-1 at most (narrow range), i.e. by less than one step."""
    restrict_scaling_type = RestrictValueType.POWER_OF_TWO
    restrict_value_float_to_int_impl = CeilSte


class PotWeightPerTensor(Int8WeightPerTensorFloat):
    """One scale 2^e for the head: all logits must share a scale for the argmax to survive export."""
    restrict_scaling_type = RestrictValueType.POWER_OF_TWO
    restrict_value_float_to_int_impl = CeilSte


def _lif_forward(x, v_th: float):
    """(H, S) of all timesteps of x [T, ...]."""
    v = torch.zeros_like(x[0])
    hs, ss = [], []
    for t in range(x.shape[0]):
        h = (v + x[t]) * 0.5
        s = (h >= v_th).to(h.dtype)
        v = h * (1.0 - s)
        hs.append(h)
        ss.append(s)
    return torch.stack(hs), torch.stack(ss)


def _lif_backward(grad_s, h, s, v_th: float):
    """dL/dx [T, ...] from dL/dS: the surrogate at every step plus the membrane carried back through V[t] = H[t]·(1 - S[t])."""
    steps = h.shape[0]
    grads = [None] * steps
    for t in range(steps - 1, -1, -1):
        sg = torch.sigmoid(SURROGATE_ALPHA * (h[t] - v_th))
        grad_h = grad_s[t] * SURROGATE_ALPHA * sg * (1 - sg)
        if t < steps - 1:
            grad_h = grad_h + grads[t + 1] * (1.0 - s[t])
        grads[t] = grad_h * 0.5
    return torch.stack(grads)


_EAGER_KERNELS = (_lif_forward, _lif_backward)
_lif_kernels = _EAGER_KERNELS


def use_compiled_lif(enabled: bool) -> None:
    """Train with the LIF's timestep loop compiled by torch.compile (one fused loop forward, one backward).

    Eager, every operation of every timestep reads and writes a whole [B, C, H, W] tensor (about ten per
    timestep forward and backward): 3x slower than the fused loops on tok0 of Fashion-MNIST. The compiled
    kernels compute the same spikes (the forward is the same IEEE operations); gradients agree with the eager
    ones to rounding. If compilation fails (no C++ compiler), training continues with the eager kernels.
    """
    global _lif_kernels
    _lif_kernels = tuple(torch.compile(k, dynamic=True) for k in _EAGER_KERNELS) if enabled else _EAGER_KERNELS


def lif_kernels_in_use() -> str:
    return "eager" if _lif_kernels is _EAGER_KERNELS else "compiled"


def _call_kernel(i: int, *args):
    global _lif_kernels
    try:
        return _lif_kernels[i](*args)
    except Exception as exc:  # torch.compile's failures have no common base class
        if _lif_kernels is _EAGER_KERNELS:
            raise
        print(f"torch.compile cannot build the LIF kernels here ({type(exc).__name__}); training continues with "
              "the eager kernels, about 1.5x slower.", file=sys.stderr)
        _lif_kernels = _EAGER_KERNELS
        return _lif_kernels[i](*args)


class LIFSteps(torch.autograd.Function):
    """The LIF of every timestep as one autograd node: spikes [T, ...] of inputs x [T, ...]. Heaviside forward,
    sigmoid surrogate gradient α·σ(αz)(1-σ(αz)) with z = H - v_th, reset detached:
    dH[t] = dS[t]·α·σ'(H[t] - v_th) + dV[t]·(1 - S[t]), dX[t] = dV[t-1] = dH[t]·0.5.

    Autograd through a Python loop over `x[t]` allocates a zero gradient of the whole [T, ...] input per timestep
    and stacks the spikes (a fifth of a Fashion-MNIST training step on 2 cores went there). With the eager
    kernels the gradients are bit-identical to that loop's (tests/test_quant_model.py compares both).
    """

    @staticmethod
    def forward(ctx, x, v_th: float):
        h, s = _call_kernel(0, _flat(x), v_th)
        ctx.save_for_backward(h, s)
        ctx.v_th = v_th
        return s.view(x.shape)

    @staticmethod
    def backward(ctx, grad_s):
        h, s = ctx.saved_tensors
        return _call_kernel(1, _flat(grad_s), h, s, ctx.v_th).view(grad_s.shape), None


def _flat(x):
    """[T, n]: one tensor shape for every layer, so torch.compile builds each kernel once per threshold."""
    return x.reshape(x.shape[0], -1)


class LIF(nn.Module):
    """Multi-step LIF, τ = 2, decay_input, hard reset to 0, detach_reset, over the leading time axis.

    H = (V + X)/2 is exact in floating point for the folded model's power-of-two grids, so its spikes equal
    the integer LIF's (docs/intmodel.md).
    """

    def __init__(self, v_th: float = 1.0):
        super().__init__()
        self.v_th = v_th
        self.plain = False  # True while exporting: a comparison instead of the autograd Function

    def forward(self, x):
        if not self.plain:
            if torch.is_grad_enabled() and x.requires_grad:
                return LIFSteps.apply(x, self.v_th)
            return _call_kernel(0, _flat(x), self.v_th)[1].view(x.shape)
        # export: the comparison loop alone, so the traced QONNX graph holds no membrane tensors it does not use
        v = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            h = (v + x[t]) * 0.5
            s = (h >= self.v_th).to(h.dtype)
            v = h * (1.0 - s)
            spikes.append(s)
        return torch.stack(spikes)


def round_ste(x):
    return x + (torch.round(x) - x).detach()


def weight_scale(layer) -> torch.Tensor:
    """The layer's quantised weight scale, flattened to [Cout] (or [1] per tensor), detached."""
    return layer.quant_weight().scale.detach().reshape(-1)


def scale_exponent(scale: torch.Tensor) -> torch.Tensor:
    return torch.round(torch.log2(scale)).to(torch.int64)


class Spikingformer(nn.Module):
    def __init__(self, config: dict, folded: bool = False):
        super().__init__()
        self.config = config
        self.folded = folded
        self.export_mode = False
        T, wb = config["T"], config["weight_bits"]
        self.T = T
        C, Ch, K = config["embed_dim"], config["mlp_hidden"], config["num_classes"]
        qargs = dict(weight_quant=PotWeightPerChannel, weight_bit_width=wb)

        self.tok = nn.ModuleList()
        self.tok_bn = nn.ModuleList()
        self.tok_lif = nn.ModuleList()
        cin = config["in_channels"]
        stages = config["tokenizer"]
        for i, st in enumerate(stages):
            self.tok.append(QuantConv2d(cin, st["out"], 3, padding=1, bias=folded, **qargs))
            self.tok_bn.append(nn.Identity() if folded else nn.BatchNorm2d(st["out"]))
            if i < len(stages) - 1:
                self.tok_lif.append(LIF())
            cin = st["out"]

        self.blocks = nn.ModuleList()
        for _ in range(config["blocks"]):
            blk = nn.Module()
            blk.ssa_lif = LIF()
            for name in ("q", "k", "v"):
                setattr(blk, name, QuantConv1d(C, C, 1, bias=folded, **qargs))
                setattr(blk, name + "_bn", nn.Identity() if folded else nn.BatchNorm1d(C))
                setattr(blk, name + "_lif", LIF())
            blk.attn_lif = LIF(ATTN_VTH)
            blk.proj = QuantConv1d(C, C, 1, bias=True, **qargs)
            blk.proj_bn = nn.Identity() if folded else nn.BatchNorm1d(C)
            blk.mlp_lif = LIF()
            blk.fc1 = QuantConv1d(C, Ch, 1, bias=True, **qargs)
            blk.fc1_bn = nn.Identity() if folded else nn.BatchNorm1d(Ch)
            blk.fc1_lif = LIF()
            blk.fc2 = QuantConv1d(Ch, C, 1, bias=True, **qargs)
            blk.fc2_bn = nn.Identity() if folded else nn.BatchNorm1d(C)
            self.blocks.append(blk)
        self.head = QuantLinear(C, K, bias=True, weight_quant=PotWeightPerTensor, weight_bit_width=wb)

    # ------------------------------------------------------------------ layers
    def stream_writers(self):
        return [self.tok[-1]] + [m for b in self.blocks for m in (b.proj, b.fc2)]

    def stream_scale(self) -> torch.Tensor:
        """Per channel, the finest scale among the layers writing the residual stream (docs/intmodel.md)."""
        return torch.stack([weight_scale(m) for m in self.stream_writers()]).min(dim=0).values

    def tokens(self) -> int:
        h, w = self.config["image_size"]
        for st in self.config["tokenizer"]:
            if st["pool"]:
                h, w = (h + 1) // 2, (w + 1) // 2
        return h * w

    def head_bias_grid(self) -> torch.Tensor:
        """Logit units: head scale · finest stream scale / (T·N) (the integer head sums instead of averaging)."""
        return weight_scale(self.head)[0] * self.stream_scale().min() / (self.T * self.tokens())

    def _layer(self, layer, x):
        if self.export_mode or not self.folded:
            return layer(x)
        qw = layer.quant_weight()
        scale = qw.scale.detach().reshape(-1)
        bias = round_ste(layer.bias / scale) * scale
        if isinstance(layer, QuantConv2d):
            return F.conv2d(x, qw.value, bias, padding=1)
        return F.conv1d(x, qw.value, bias)

    def _head(self, z):
        if self.export_mode or not self.folded:
            return self.head(z)
        grid = self.head_bias_grid()
        return F.linear(z, self.head.quant_weight().value, round_ste(self.head.bias / grid) * grid)

    # ------------------------------------------------------------------ forward
    def forward(self, u, trace: dict | None = None, per_timestep: bool = False):
        """u: images [B, Cin, H, W] holding unsigned integers (as float). Returns logits [B, K], or with
        `per_timestep` each timestep's logits [T, B, K], whose mean over T is the [B, K] result.

        With `trace` (a dict), the spike tensors are stored under golden's trace key names.
        """
        T = self.T
        rec = (lambda k, v: trace.__setitem__(k, v.detach())) if trace is not None else (lambda k, v: None)
        # QAT form: pixels scaled by 1/(2^B-1) (docs/intmodel.md); the folded form has that factor in tok0's weights.
        x = u if self.folded else u / float((1 << self.config["input_bits"]) - 1)
        y = self.tok_bn[0](self._layer(self.tok[0], x))
        y = y.unsqueeze(0).expand(T, *y.shape)  # static input: the same accumulator at every step
        stages = self.config["tokenizer"]
        for i in range(1, len(stages)):
            s = self.tok_lif[i - 1](y)
            rec(f"tok{i-1}.spikes", s)
            flat = s.flatten(0, 1)
            if stages[i]["pool"]:
                flat = F.max_pool2d(flat, 3, 2, 1)  # on 0/1 spikes: the OR of the window
                rec(f"tok{i}.pooled", flat.view(T, -1, *flat.shape[1:]))
            y = self.tok_bn[i](self._layer(self.tok[i], flat))
            y = y.view(T, -1, *y.shape[1:])
        x = y.flatten(3)  # [T, B, C, N]
        for j, blk in enumerate(self.blocks):
            p = f"blk{j}."
            s = blk.ssa_lif(x)
            rec(p + "ssa_spikes", s)
            qkv = []
            for name in ("q", "k", "v"):
                a = getattr(blk, name + "_bn")(self._layer(getattr(blk, name), s.flatten(0, 1)))
                sp = getattr(blk, name + "_lif")(a.view(x.shape[0], -1, *a.shape[1:]))
                rec(p + name + ".spikes", sp)
                qkv.append(sp)
            att = self.attention(*qkv)
            a = blk.attn_lif(att)
            rec(p + "attn_spikes", a)
            x = x + blk.proj_bn(self._layer(blk.proj, a.flatten(0, 1))).view(x.shape)
            s2 = blk.mlp_lif(x)
            rec(p + "mlp_spikes", s2)
            h = blk.fc1_bn(self._layer(blk.fc1, s2.flatten(0, 1)))
            h = blk.fc1_lif(h.view(x.shape[0], -1, *h.shape[1:]))
            rec(p + "fc1.spikes", h)
            x = x + blk.fc2_bn(self._layer(blk.fc2, h.flatten(0, 1))).view(x.shape)
        if per_timestep:
            return self._head(x.mean(dim=3))
        z = x.mean(dim=(0, 3))
        return self._head(z)

    def attention(self, q, k, v):
        """Q·(Kᵀ·V)·0.125 per head and timestep, no softmax; q, k, v [T, B, C, N]."""
        T, B, C, N = q.shape
        h = self.config["heads"]
        qh, kh, vh = (a.reshape(T, B, h, C // h, N) for a in (q, k, v))
        kv = torch.einsum("tbhin,tbhjn->tbhij", kh, vh)
        y = torch.einsum("tbhin,tbhij->tbhjn", qh, kv)
        return y.reshape(T, B, C, N) * ATTN_SCALE

    def set_plain_spikes(self, plain: bool):
        for m in self.modules():
            if isinstance(m, LIF):
                m.plain = plain


def parameter_count(model: nn.Module) -> int:
    """Conv, linear and BN weights and biases (quantiser state excluded), as the paper counts them."""
    total = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)):
            for p in (m.weight, m.bias):
                if p is not None:
                    total += p.numel()
    return total


def weight_count(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)))


def _bn_factors(bn: nn.BatchNorm1d | nn.BatchNorm2d):
    sigma = torch.sqrt(bn.running_var + bn.eps)
    gain = bn.weight / sigma
    return gain, bn.bias - bn.running_mean * gain


@torch.no_grad()
def fold(qat: Spikingformer) -> Spikingformer:
    """The folded form of a trained QAT model: w' = w·γ/σ, b' = β − μγ/σ (+ conv bias·γ/σ).

    tok0 also absorbs the input scaling 1/(2^B-1), so the folded model reads raw pixel integers and its
    first accumulator is on a power-of-two grid too.
    """
    out = Spikingformer(qat.config, folded=True)
    pairs = [(qat.tok[i], qat.tok_bn[i], out.tok[i]) for i in range(len(qat.tok))]
    for bq, bo in zip(qat.blocks, out.blocks):
        for name in ("q", "k", "v", "proj", "fc1", "fc2"):
            pairs.append((getattr(bq, name), getattr(bq, name + "_bn"), getattr(bo, name)))
    for src, bn, dst in pairs:
        gain, shift = _bn_factors(bn)
        view = (-1,) + (1,) * (src.weight.dim() - 1)
        w = src.weight * gain.view(view)
        b = shift + (src.bias * gain if src.bias is not None else 0)
        if dst is out.tok[0]:
            w = w / float((1 << qat.config["input_bits"]) - 1)
        dst.weight.copy_(w)
        dst.bias.copy_(b)
    out.head.weight.copy_(qat.head.weight)
    out.head.bias.copy_(qat.head.bias)
    return out
