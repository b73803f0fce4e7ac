"""Export is faithful: golden == torch integer inference layer by layer and timestep by timestep on the whole
digits test set, and the folded float model's spikes and predictions equal the integer model's."""
import collections
import os

import numpy as np
import pytest
import torch

from golden import inference
from golden.compare import first_mismatch
from golden.errors import WidthError
from golden.intmodel import make_config, random_intmodel
from quant import data, int_infer, presets, train as train_mod
from quant.export import export_qonnx, to_intmodel
from quant.model import Spikingformer, fold

SMALL = ["embed_dim=32", "heads=4", "blocks=2"]


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()


def trained(tmp_path_factory, digits, weight_bits):
    model_cfg, train_cfg = presets.resolve("digits", SMALL, weight_bits=weight_bits, epochs=2, finetune_epochs=1)
    out = tmp_path_factory.mktemp(f"train{weight_bits}")
    return train_mod.train(model_cfg, train_cfg, digits, str(out), log=open(os.devnull, "w")), out


@pytest.fixture(scope="module")
def trained8(tmp_path_factory, digits):
    return trained(tmp_path_factory, digits, 8)


@pytest.fixture(scope="module")
def trained4(tmp_path_factory, digits):
    return trained(tmp_path_factory, digits, 4)


@pytest.mark.unit
def test_digits_split_is_the_fixed_stratified_one(digits):
    xtr, ytr, xte, yte = digits
    assert (len(xtr), len(xte)) == (1437, 360)
    assert xte.shape[1:] == (1, 8, 8) and 0 <= xte.min() and xte.max() == 16
    # stratified: every class keeps 20 % of its images, to within rounding
    assert np.all(np.abs(np.bincount(yte) - 0.2 * np.bincount(np.concatenate([ytr, yte]))) < 1)


@pytest.mark.train
@pytest.mark.parametrize("fixture", ["trained8", "trained4"])
def test_golden_equals_torch_integer_inference_on_the_whole_test_set(fixture, digits, request):
    result, _ = request.getfixturevalue(fixture)
    m = to_intmodel(result.model)
    xte = digits[2]
    ref = inference.run(m, xte, trace=True)
    logits, trace = int_infer.run(m, xte, trace=True)
    assert set(trace) == set(ref.trace)
    assert first_mismatch(ref.trace, trace, inference.layer_order(m)) is None
    assert np.array_equal(logits, ref.logits)
    # the model is not degenerate: layers fire but not always
    for key in ("tok0.spikes", "blk0.q.spikes", "blk1.fc1.spikes"):
        assert 0.01 < ref.trace[key].mean() < 0.9


@pytest.mark.train
@pytest.mark.parametrize("fixture", ["trained8", "trained4"])
def test_folded_float_model_spikes_equal_the_integer_model(fixture, digits, request):
    result, _ = request.getfixturevalue(fixture)
    m = to_intmodel(result.model)
    xte = digits[2]
    ref = inference.run(m, xte, trace=True)
    spikes = {}
    with torch.no_grad():
        float_logits = result.model.eval()(torch.as_tensor(xte).float(), trace=spikes)
    assert len(spikes) == sum(k.endswith(("spikes", "pooled")) for k in ref.trace)
    for key, value in spikes.items():
        assert np.array_equal(value.numpy().astype(np.int64), ref.trace[key]), key
    # logits differ only by the positive scale 2^(e_h + e_min) / (T·N)
    scale = 2.0 ** (m.meta["head_exponent"] + min(m.meta["stream_exponents"])) / (m.T * m.tokens)
    assert np.allclose(float_logits.numpy(), ref.logits * scale, rtol=1e-5, atol=1e-4)
    assert result.folded_test_accuracy == pytest.approx(np.mean(ref.classes == digits[3]))


@pytest.mark.train
def test_weight_bits_reach_the_exported_integers(trained4, trained8):
    m4, m8 = to_intmodel(trained4[0].model), to_intmodel(trained8[0].model)
    for name in ("tok0.w", "tok1.w", "blk0.q.w", "blk1.fc1.w"):
        assert np.abs(m4[name]).max() <= 7
        assert 7 < np.abs(m8[name]).max() <= 127
    assert m4.config["weight_bits"] == 4


@pytest.mark.unit
def test_random_intmodels_golden_equals_torch():
    configs = [make_config(), make_config(T=2, blocks=2, weight_bits=4),
               make_config(T=6, image_size=[9, 7], tokenizer=[{"out": 8, "pool": False}, {"out": 16, "pool": True},
                                                               {"out": 16, "pool": True}], embed_dim=16, heads=2,
                           mlp_hidden=24, in_channels=2)]
    rng = np.random.default_rng(0)
    for seed, cfg in enumerate(configs):
        m = random_intmodel(cfg, seed=seed)
        x = rng.integers(0, 1 << cfg["input_bits"], size=(40, cfg["in_channels"], *cfg["image_size"]))
        ref = inference.run(m, x, trace=True)
        logits, trace = int_infer.run(m, x, trace=True)
        assert first_mismatch(ref.trace, trace, inference.layer_order(m)) is None
        assert np.array_equal(logits, ref.logits)


@pytest.mark.unit
def test_export_refuses_a_model_beyond_the_hardware_widths():
    torch.manual_seed(0)
    cfg, _ = presets.resolve("digits", ["embed_dim=16"], weight_bits=16)
    m = fold(Spikingformer(cfg).eval())
    with torch.no_grad():  # stream channel 0: one huge writer and one tiny one -> a 40-bit alignment shift
        m.tok[-1].weight[0] = 1e4
        m.blocks[0].proj.weight[0] = 1e-8
    with pytest.raises(WidthError, match="bit .*hardware supports at most"):
        to_intmodel(m)


@pytest.mark.train
def test_qonnx_export_holds_every_quantised_layer(trained4, tmp_path):
    path = tmp_path / "m.onnx"
    export_qonnx(trained4[0].model, str(path))
    import onnx
    g = onnx.load(str(path))
    onnx.checker.check_model(g)
    quant = [n for n in g.graph.node if n.op_type == "Quant"]
    layers = 3 + 2 * 6 + 1   # tokenizer convs, 6 per block, head
    assert len(quant) == layers
    widths = {onnx.numpy_helper.to_array(i).item() for i in g.graph.initializer
              if any(i.name == n.input[3] for n in quant)}
    assert widths == {4.0}
    counts = collections.Counter(n.op_type for n in g.graph.node)
    assert counts["Einsum"] == 4 and counts["MaxPool"] == 1


@pytest.mark.unit
def test_chunked_export_check_equals_one_pass_and_names_the_image_range(monkeypatch):
    from quant.cli import evaluate_intmodel
    m = random_intmodel(make_config(), seed=4)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 1 << m.config["input_bits"], size=(23, m.config["in_channels"], *m.config["image_size"]))
    y = rng.integers(0, m.config["num_classes"], size=23)
    whole = evaluate_intmodel(m, x, y, chunk=100)
    parts = evaluate_intmodel(m, x, y, chunk=5)
    assert whole["golden_equals_torch"] and parts["golden_equals_torch"]
    assert whole["int_test_accuracy"] == parts["int_test_accuracy"]
    ref = inference.run(m, x, trace=True)
    assert whole["int_test_accuracy"] == float(np.mean(np.argmax(ref.logits, axis=1) == y))
    assert whole["per_layer_firing_rate"].keys() == parts["per_layer_firing_rate"].keys()
    for key, rate in whole["per_layer_firing_rate"].items():
        assert rate == pytest.approx(parts["per_layer_firing_rate"][key], abs=1e-12)
    real_run = int_infer.run

    def off_by_one_in_image_12(model, images, trace=False):     # a torch result wrong in one image only
        logits, tr = real_run(model, images, trace=trace)
        if len(images) == 5 and np.array_equal(images, x[10:15]):
            key = inference.layer_order(model)[0]
            tr[key] = np.array(tr[key]).copy()
            tr[key][(0, 2) + (0,) * (tr[key].ndim - 2)] ^= 1
        return logits, tr
    monkeypatch.setattr(int_infer, "run", off_by_one_in_image_12)
    bad = evaluate_intmodel(m, x, y, chunk=5)
    assert not bad["golden_equals_torch"] and bad["first_mismatch"].startswith("test images 10-14: layer ")


@pytest.mark.train
def test_head_weight_saturation_clips_only_the_wide_head_weights_and_stays_exact(trained8, digits):
    result, _ = trained8
    free = to_intmodel(result.model)
    head = free.arrays["head.w"]
    bits = int(np.abs(head).max()).bit_length() + 1          # the unsaturated head's signed width
    limit = bits - 1
    top = (1 << (limit - 1)) - 1
    wide = (head > top) | (head < -top - 1)
    clipped = to_intmodel(result.model, head_weight_bits=limit)
    w = clipped.arrays["head.w"]
    assert clipped.meta["head_saturated"] == int(wide.sum()) > 0
    assert w.max() <= top and w.min() >= -top - 1
    assert np.array_equal(w[~wide], head[~wide]) and np.all(np.abs(w[wide]) >= top)
    assert np.array_equal(np.sign(w[wide]), np.sign(head[wide]))
    for key in free.arrays:                                   # nothing but the head's weights changes
        if key != "head.w":
            assert np.array_equal(free.arrays[key], clipped.arrays[key]), key
    # a width the head already fits changes nothing
    assert np.array_equal(to_intmodel(result.model, head_weight_bits=bits).arrays["head.w"], head)
    xte = digits[2][:64]
    ref = inference.run(clipped, xte, trace=True)
    logits, trace = int_infer.run(clipped, xte, trace=True)
    assert first_mismatch(ref.trace, trace, inference.layer_order(clipped)) is None
    assert np.array_equal(logits, ref.logits)
