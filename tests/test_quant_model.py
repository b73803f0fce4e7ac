"""quant/ model: the paper's parameter count, presets and overrides, the float LIF against the integer contract,
BN folding arithmetic, power-of-two scales."""
import numpy as np
import pytest
import torch

from golden import primitives as P
from flowerrors import FlowError
from golden.errors import ConfigError
from quant import presets
from quant.model import (LIF, Spikingformer, fold, lif_kernels_in_use, parameter_count, scale_exponent, use_compiled_lif,
                         weight_count, weight_scale)

pytestmark = pytest.mark.unit


def test_cifar10_4_384_has_the_papers_parameter_count():
    cfg, _ = presets.resolve("cifar10-4-384")
    assert parameter_count(Spikingformer(cfg)) == 9_320_122


def test_digits_default_fits_on_chip():
    cfg, train = presets.resolve("digits")
    assert train["dataset"] == "digits"
    assert weight_count(Spikingformer(cfg)) <= 300_000


def test_overrides_scale_the_tokenizer_and_reject_unknown_keys():
    cfg, train = presets.resolve("digits", ["embed_dim=32", "lr=0.01"], weight_bits=4, epochs=3)
    assert [s["out"] for s in cfg["tokenizer"]] == [8, 16, 32]
    assert cfg["embed_dim"] == 32 and cfg["mlp_hidden"] == 128 and cfg["weight_bits"] == 4
    assert train["lr"] == 0.01 and train["epochs"] == 3
    with pytest.raises(FlowError, match="unknown setting 'embed'"):
        presets.resolve("digits", ["embed=32"])
    with pytest.raises(FlowError, match="unknown preset 'mnist'; choose one of: digits"):
        presets.resolve("mnist")
    with pytest.raises(ConfigError, match="not divisible"):
        presets.resolve("digits", ["heads=5"])


@pytest.mark.parametrize("T", [1, 4, 6])
def test_float_lif_equals_integer_lif_on_power_of_two_grids(T):
    # A layer with scale 2^e feeding the float LIF (V_th 1) is the integer LIF with θ = 2^(T-e).
    rng = np.random.default_rng(T)
    for e in (-7, -3, 0):
        acc = rng.integers(-300, 300, size=(T, 64, 5))
        x = torch.tensor(acc * 2.0 ** e, dtype=torch.float32)
        theta = np.full(5, 1 << (T - e) if e <= T else 1)
        assert np.array_equal(LIF(1.0)(x).numpy(), P.lif(acc, theta, T))
        # the training path (one autograd node for all timesteps) computes the same spikes
        assert np.array_equal(LIF(1.0)(x.requires_grad_()).detach().numpy(), P.lif(acc, theta, T))


def test_lif_surrogate_gradient_is_the_sigmoid_derivative():
    x = torch.tensor([[0.4, 2.0, -1.0]], requires_grad=True)   # one step: h = x/2
    LIF(1.0)(x).sum().backward()
    sg = torch.sigmoid(4 * (x.detach() / 2 - 1))
    assert torch.allclose(x.grad, 4 * sg * (1 - sg) / 2)


class _StepSpike(torch.autograd.Function):
    """Reference: one timestep's Heaviside with the sigmoid surrogate, for autograd through a Python loop."""

    @staticmethod
    def forward(ctx, h, v_th):
        ctx.save_for_backward(h)
        ctx.v_th = v_th
        return (h >= v_th).to(h.dtype)

    @staticmethod
    def backward(ctx, grad):
        (h,) = ctx.saved_tensors
        sg = torch.sigmoid(4.0 * (h - ctx.v_th))
        return grad * 4.0 * sg * (1 - sg), None


def _lif_by_autograd_loop(x, v_th):
    v, out = torch.zeros_like(x[0]), []
    for t in range(x.shape[0]):
        h = (v + x[t]) * 0.5
        s = _StepSpike.apply(h, v_th)
        v = h * (1.0 - s.detach())
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("T,v_th", [(1, 1.0), (4, 1.0), (6, 0.5)])
def test_lif_gradients_equal_autograd_through_the_timestep_loop(T, v_th):
    # The fused backward must be the loop's gradient bit for bit (the same arithmetic in the same order), with
    # upstream gradients on every timestep's spikes so the membrane path carries gradient across steps.
    gen = torch.Generator().manual_seed(T)
    x0 = torch.randn(T, 32, 7, generator=gen) * 2
    upstream = torch.randn(T, 32, 7, generator=gen)
    grads = []
    for fn in (lambda x: LIF(v_th)(x), lambda x: _lif_by_autograd_loop(x, v_th)):
        x = x0.clone().requires_grad_()
        s = fn(x)
        (s * upstream).sum().backward()
        grads.append((s.detach(), x.grad))
    assert torch.equal(grads[0][0], grads[1][0])
    assert grads[0][1].abs().sum() > 0 and torch.equal(grads[0][1], grads[1][1])


def test_compiled_lif_kernels_give_the_same_spikes_and_close_gradients():
    # Training compiles the LIF loops (torch.compile); its spikes must be exact, its gradients equal to rounding.
    gen = torch.Generator().manual_seed(5)
    x0 = torch.randn(4, 16, 8, 6, 6, generator=gen) * 2
    upstream = torch.randn(x0.shape, generator=gen)
    results = {}
    try:
        for compiled in (False, True):
            use_compiled_lif(compiled)
            assert lif_kernels_in_use() == ("compiled" if compiled else "eager")
            x = x0.clone().requires_grad_()
            s = LIF(1.0)(x)
            (s * upstream).sum().backward()
            with torch.no_grad():
                s_eval = LIF(1.0)(x0)
            results[compiled] = (s.detach(), s_eval, x.grad)
    finally:
        use_compiled_lif(False)
    (s0, e0, g0), (s1, e1, g1) = results[False], results[True]
    assert torch.equal(s0, s1) and torch.equal(e0, e1) and torch.equal(s0, e0)
    assert g0.abs().sum() > 0 and torch.allclose(g0, g1, rtol=1e-5, atol=1e-7)


def test_weight_scales_are_powers_of_two_and_clip_less_than_one_step():
    torch.manual_seed(0)
    cfg, _ = presets.resolve("digits", weight_bits=4)
    m = Spikingformer(cfg)
    for layer in [*m.tok, m.blocks[0].q, m.blocks[0].fc2, m.head]:
        s = weight_scale(layer)
        assert torch.equal(s, 2.0 ** scale_exponent(s).double().float())
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        peak = w.abs().max(1).values if s.numel() > 1 else w.abs().max()
        assert torch.all(peak / s <= 8.0) and torch.all(peak / s > 4.0)
        assert 4 <= int(layer.quant_weight().int().abs().max()) <= 7


def test_per_timestep_logits_average_to_the_logits():
    """The per-timestep loss trains on each timestep's logits; inference and export read their mean."""
    torch.manual_seed(2)
    cfg, _ = presets.resolve("digits", ["embed_dim=16"])
    model = Spikingformer(cfg).eval()
    with torch.no_grad():   # BN gains that make every layer spike, so the timesteps differ
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                m.weight.uniform_(1, 4)
                m.bias.uniform_(-0.5, 1)
    u = torch.randint(0, 17, (5, 1, 8, 8)).float()
    with torch.no_grad():
        per_step = model(u, per_timestep=True)
        logits = model(u)
    assert per_step.shape == (cfg["T"], 5, cfg["num_classes"])
    assert not torch.allclose(per_step[0], per_step[-1])   # the timesteps differ, so the mean is not trivial
    assert torch.allclose(per_step.mean(0), logits, atol=1e-5)


def test_fold_reproduces_conv_plus_bn_in_eval_mode():
    torch.manual_seed(1)
    cfg, _ = presets.resolve("digits", ["embed_dim=16"])
    qat = Spikingformer(cfg)
    with torch.no_grad():  # non-trivial BN statistics and affine parameters
        for bn in [*qat.tok_bn, qat.blocks[0].fc1_bn]:
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(-2, 2)
            bn.bias.uniform_(-1, 1)
    qat.eval()
    folded = fold(qat)
    u = torch.randint(0, 17, (3, 1, 8, 8)).float()
    with torch.no_grad():
        # tok0: BN(conv(u / 31)) == conv'(u) + b'  (input scaling folded in)
        ref = qat.tok_bn[0](torch.nn.functional.conv2d(u / 31, qat.tok[0].weight, padding=1))
        got = torch.nn.functional.conv2d(u, folded.tok[0].weight, folded.tok[0].bias, padding=1)
        assert torch.allclose(ref, got, atol=1e-5)
        s = (torch.rand(5, cfg["embed_dim"], 16) < 0.3).float()
        blk, fblk = qat.blocks[0], folded.blocks[0]
        ref = blk.fc1_bn(torch.nn.functional.conv1d(s, blk.fc1.weight, blk.fc1.bias))
        got = torch.nn.functional.conv1d(s, fblk.fc1.weight, fblk.fc1.bias)
        assert torch.allclose(ref, got, atol=1e-5)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.modules())
