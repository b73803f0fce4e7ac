"""quant/ model: the paper's parameter count, presets and overrides, the float LIF against the integer contract,
BN folding arithmetic, power-of-two scales."""
import numpy as np
import pytest
import torch

from golden import primitives as P
from flowerrors import FlowError
from golden.errors import ConfigError
from quant import presets
from quant.model import LIF, Spikingformer, fold, parameter_count, scale_exponent, weight_count, weight_scale

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
        spikes_float = LIF(1.0)(torch.tensor(acc * 2.0 ** e, dtype=torch.float32)).numpy()
        theta = np.full(5, 1 << (T - e) if e <= T else 1)
        assert np.array_equal(spikes_float, P.lif(acc, theta, T))


def test_lif_surrogate_gradient_is_the_sigmoid_derivative():
    x = torch.tensor([[0.4, 2.0, -1.0]], requires_grad=True)   # one step: h = x/2
    LIF(1.0)(x).sum().backward()
    sg = torch.sigmoid(4 * (x.detach() / 2 - 1))
    assert torch.allclose(x.grad, 4 * sg * (1 - sg) / 2)


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
