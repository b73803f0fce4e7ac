"""Integer export of the folded model (docs/intmodel.md), and QONNX export.

Every weight scale is a power of two 2^e, so each conversion below is exact:

* a layer reading spikes: w_int = w/2^e, b_int = round(b/2^e) (the fine-tune already used exactly this bias),
  and the LIF after it gets θ = ceil(V_th·2^T / 2^e) = 2^(T-e) (U_H is an integer, so ceil loses nothing);
* tok0 reads raw pixels (the 1/(2^B-1) input scaling is folded into its weights), so the same rule holds;
* residual stream: channel c's scale is the finest among its writers, e_X[c] = min e_w[c]; each writer's
  integers are shifted left by e_w[c] - e_X[c]; the stream LIFs get θ = 2^(T - e_X[c]);
* attention needs nothing (θ = 4·2^T is a constant of the format);
* head: one scale 2^e_h; with e_min = min_c e_X[c], head.w[k,c] = W_int[k,c] << (e_X[c] - e_min) and
  head.b = round(b·T·N / 2^(e_h + e_min)) (the integer head sums over T and N where the float one averages).

The one inexact step, and only when asked (`head_weight_bits`): head.w saturates at that many bits. The alignment
shifts above can push a few head weights past the width of every other layer's (whose common power of two per
output channel the core takes out), and the core's weight ROM is as wide as its widest weight. The integer
accuracy measured after export includes the saturation; meta["head_saturated"] counts the weights it changed.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from golden.artifacts import atomic_path
from golden import graph
from golden.intmodel import IntModel, ModelShape
from golden.widths import check_hw_limits

from .model import Spikingformer, scale_exponent, weight_scale


def _int_layer(layer):
    """(w_int int64, e int64 per output channel, b_int int64 or None) of a Brevitas layer."""
    qw = layer.quant_weight()
    scale = qw.scale.detach().reshape(-1)
    view = (-1,) + (1,) * (qw.value.dim() - 1)
    w = torch.round(qw.value.detach() / scale.view(view) if scale.numel() > 1 else qw.value.detach() / scale)
    b = None
    if layer.bias is not None:
        b = torch.round(layer.bias.detach() / scale).to(torch.int64).numpy()
    if w.dim() == 3:  # 1x1 Conv1d over tokens: [Cout, Cin, 1] -> [Cout, Cin]
        w = w[..., 0]
    e = scale_exponent(scale).numpy()
    if e.size == 1:
        e = np.full(w.shape[0], int(e[0]), dtype=np.int64)
    return w.to(torch.int64).numpy(), e, b


def _theta(e: np.ndarray, T: int) -> np.ndarray:
    """ceil(2^T / 2^e) for V_th = 1, per channel."""
    return np.where(e <= T, np.left_shift(1, np.clip(T - e, 0, 62)), 1).astype(np.int64)


def _shift(a: np.ndarray, by: np.ndarray) -> np.ndarray:
    view = (-1,) + (1,) * (a.ndim - 1)
    return np.left_shift(a, by.reshape(view))


@torch.no_grad()
def to_intmodel(model: Spikingformer, meta: dict | None = None, check_limits: bool = True,
                head_weight_bits: int = 0) -> IntModel:
    """The IntModel of a folded model; refuses (golden.errors.WidthError) one the hardware could not hold."""
    if not model.folded:
        raise ValueError("export needs the folded model (quant.model.fold)")
    cfg = model.config
    T = cfg["T"]
    arrays: dict[str, np.ndarray] = {}
    # the torch layer of every weight step of the layer graph (golden.graph), by the step's name
    layers = {f"tok{i}": layer for i, layer in enumerate(model.tok)}
    layers.update({f"blk{j}.{name}": getattr(blk, name) for j, blk in enumerate(model.blocks)
                   for name in ("q", "k", "v", "proj", "fc1", "fc2")})
    writers = {}
    stream_thetas = []
    for step in graph.steps(ModelShape(cfg)):
        if step.op == "stream_lif":
            stream_thetas.append(step.theta)        # the stream's scale is known once every writer is read
        elif step.weighted and step.op != "head":
            w, e, b = _int_layer(layers[step.name])
            if step.stream:
                writers[step.name] = (w, e, b)
            else:
                arrays[step.name + ".w"], arrays[step.name + ".b"], arrays[step.theta] = w, b, _theta(e, T)
    e_x = np.min(np.stack([e for _, e, _ in writers.values()]), axis=0)
    for name, (w, e, b) in writers.items():
        arrays[name + ".w"] = _shift(w, e - e_x)
        arrays[name + ".b"] = _shift(b, e - e_x)
    for key in stream_thetas:
        arrays[key] = _theta(e_x, T)
    # Check the float model agrees on the stream scale (it computes it the same way).
    assert np.array_equal(scale_exponent(model.stream_scale()).numpy(), e_x)

    hw, _, _ = _int_layer(model.head)
    e_min = int(e_x.min())
    head_w = np.left_shift(hw, (e_x - e_min)[None, :])
    saturated = 0
    if head_weight_bits:
        top = (1 << (head_weight_bits - 1)) - 1
        saturated = int(((head_w > top) | (head_w < -top - 1)).sum())
        head_w = np.clip(head_w, -top - 1, top)
    arrays["head.w"] = head_w
    grid = model.head_bias_grid()
    arrays["head.b"] = torch.round(model.head.bias.detach() / grid).to(torch.int64).numpy()

    info = {"source": "quant/export.py", "stream_exponents": [int(v) for v in e_x],
            "head_exponent": int(scale_exponent(weight_scale(model.head))[0]),
            **({"head_weight_bits": head_weight_bits, "head_saturated": saturated} if head_weight_bits else {}),
            **(meta or {})}
    im = IntModel(cfg, arrays, info)
    if check_limits:
        check_hw_limits(im)
    return im


def export_qonnx(model: Spikingformer, path: str) -> str:
    """QONNX of the whole folded spiking network (T unrolled, LIFs as compare/select, biases pre-rounded).

    Written to a temp file and renamed. Returns a note on what the file contains.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # brevitas.export warns about optional kernels it does not need here
        from brevitas.export import export_qonnx as brevitas_export_qonnx

    m = copy.deepcopy(model).cpu().eval()
    with torch.no_grad():
        for layer in [*m.tok, *[getattr(b, n) for b in m.blocks for n in ("q", "k", "v", "proj", "fc1", "fc2")]]:
            scale = weight_scale(layer)
            layer.bias.copy_(torch.round(layer.bias / scale) * scale)
        grid = m.head_bias_grid()
        m.head.bias.copy_(torch.round(m.head.bias / grid) * grid)
    m.export_mode = True
    m.set_plain_spikes(True)
    cin, (h, w) = m.config["in_channels"], m.config["image_size"]
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter writes one self-contained file (dynamo lifts weights into graph inputs).
        brevitas_export_qonnx(m, input_t=torch.zeros(1, cin, h, w), export_path=tmp, dynamo=False)
    return "whole folded spiking network, batch 1, T unrolled; input: raw pixel integers as float"
