"""Whole-core regression: the generated core under Verilator against golden (logits, class, every layer's spike
words), the cycle model against the RTL's cycle counter, and the width checks (the core's sticky overflow flag).

The checks run in the fast harness (sim/harness.py). CI runs a few images per model, the digits subset in two
shards; `make sim FULL=1` (pytest --full) runs the whole digits test set. The same harness also runs whole cores
under Icarus (cross-simulator check), and the cocotb bench must agree with the harness. Every core is generated and
simulated in a temporary directory: the tests never touch a user's build/<preset>/rtl or sim (`python flow.py sim`
writes build/<preset>/sim/results.json).
"""
import os

import numpy as np
import pytest

from golden import intmodel as im
from rtl.gen import generate
from sim.check import check_images

pytestmark = pytest.mark.sim


# Shapes no one trained: T, tokenizer stages (pools, a one-stage tokenizer), heads, blocks, weight bits, lanes.
RANDOM_SHAPES = {
    "pool2-heads2-w4": dict(config=dict(T=4, input_bits=4, in_channels=1, image_size=[8, 8],
                                        tokenizer=[{"out": 8, "pool": False}, {"out": 16, "pool": True},
                                                   {"out": 32, "pool": False}],
                                        embed_dim=32, heads=2, blocks=1, mlp_hidden=64, num_classes=10,
                                        weight_bits=4), lanes=8, firing=0.2, seed=11),
    "T3-rgb-2blocks": dict(config=dict(T=3, input_bits=3, in_channels=3, image_size=[6, 6],
                                       tokenizer=[{"out": 4, "pool": False}, {"out": 8, "pool": True},
                                                  {"out": 16, "pool": True}],
                                       embed_dim=16, heads=2, blocks=2, mlp_hidden=32, num_classes=4,
                                       weight_bits=8), lanes=4, firing=0.4, seed=12),
    "T2-one-stage-1head": dict(config=dict(T=2, input_bits=6, in_channels=2, image_size=[4, 4],
                                           tokenizer=[{"out": 16, "pool": False}], embed_dim=16, heads=1,
                                           blocks=1, mlp_hidden=48, num_classes=3, weight_bits=6),
                               lanes=16, firing=0.1, seed=13),
    # one timestep, no encoder block (the tokenizer writes the stream the head reads), one lane
    "T1-0blocks-1lane": dict(config=dict(T=1, input_bits=4, in_channels=1, image_size=[6, 6],
                                         tokenizer=[{"out": 4, "pool": False}, {"out": 6, "pool": True}],
                                         embed_dim=6, heads=2, blocks=0, mlp_hidden=8, num_classes=3,
                                         weight_bits=5), lanes=1, firing=0.3, seed=14),
    # one timestep with an encoder block: the stream LIF's outputs two cycles apart, the tightest parameter read
    "T1-1block-2lanes": dict(config=dict(T=1, input_bits=3, in_channels=1, image_size=[4, 4],
                                         tokenizer=[{"out": 4, "pool": False}, {"out": 8, "pool": True}],
                                         embed_dim=8, heads=2, blocks=1, mlp_hidden=8, num_classes=3,
                                         weight_bits=5), lanes=2, firing=0.3, seed=17),
    # sixteen timesteps, three blocks, odd head dimension (d = 3)
    "T16-3blocks-odd-d": dict(config=dict(T=16, input_bits=3, in_channels=1, image_size=[4, 4],
                                          tokenizer=[{"out": 4, "pool": False}, {"out": 6, "pool": True}],
                                          embed_dim=6, heads=2, blocks=3, mlp_hidden=12, num_classes=5,
                                          weight_bits=4), lanes=1, firing=0.3, seed=15),
    # 64 lanes wider than a head (d = 32): one lane group holds both heads
    "64lanes-2heads": dict(config=dict(T=2, input_bits=4, in_channels=1, image_size=[4, 4],
                                       tokenizer=[{"out": 16, "pool": False}, {"out": 64, "pool": True}],
                                       embed_dim=64, heads=2, blocks=1, mlp_hidden=64, num_classes=10,
                                       weight_bits=6), lanes=64, firing=0.2, seed=16),
}


def _random_case(name, work):
    spec = RANDOM_SHAPES[name]
    model = im.random_intmodel(im.make_config(**spec["config"]), seed=spec["seed"], firing=spec["firing"])
    rtl_dir = str(work / "rtl")
    generate(model, spec["lanes"], rtl_dir)
    return model, rtl_dir


def _assert_clean(summary):
    bad = [r for r in summary["per_image"] if r["mismatch"]]
    assert not bad, f"{len(bad)} image(s) differ; first: image {bad[0]['image']}: {bad[0]['mismatch']}"
    assert all(r["cycles"] == r["exp_cycles"] for r in summary["per_image"])


@pytest.mark.parametrize("name", sorted(RANDOM_SHAPES))
def test_random_models_bit_exact_and_cycle_exact(name, tmp_path):
    model, rtl_dir = _random_case(name, tmp_path)
    rng = np.random.default_rng(5)
    top = (1 << model.input_bits) - 1
    images = rng.integers(0, top + 1, size=(3, *model.input_shape))
    images[0] = top                       # every pixel bit set: the widest first-conv accumulation
    images[1] = 0                         # silent input: only biases drive the network
    summary = check_images(model, rtl_dir, images, str(tmp_path / "sim"))
    _assert_clean(summary)


def test_cycles_fall_with_activity(tmp_path):
    """Event-driven: the same core takes fewer cycles on sparse input than on dense input."""
    model, rtl_dir = _random_case("pool2-heads2-w4", tmp_path)
    rng = np.random.default_rng(9)
    top = (1 << model.input_bits) - 1
    sparse = (rng.random((2, *model.input_shape)) < 0.1) * rng.integers(1, 3, size=(2, *model.input_shape))
    dense = rng.integers(top // 2, top + 1, size=(2, *model.input_shape))
    summary = check_images(model, rtl_dir, np.concatenate([sparse, dense]),
                           str(tmp_path / "sim"))
    _assert_clean(summary)
    cycles = [r["cycles"] for r in summary["per_image"]]
    assert max(cycles[:2]) < min(cycles[2:]), cycles



@pytest.fixture(scope="module")
def digits_core(digits_model, tmp_path_factory):
    """The default 16-lane core of the trained model, generated once for this module (one harness build)."""
    model, base = digits_model
    work = tmp_path_factory.mktemp("digits")
    generate(model, 16, str(work / "rtl"))
    return model, base, str(work / "rtl"), str(work / "sim")


@pytest.mark.train
def test_trained_digits_model_on_test_images(digits_core, full):
    model, base, rtl_dir, work = digits_core
    images, labels = im.load_testset(os.path.join(base, "testset.npz"))
    if not full:
        images, labels = images[:6], labels[:6]
    summary = check_images(model, rtl_dir, images, work, labels=labels, jobs=2)
    _assert_clean(summary)
    assert summary["mismatches"] == 0 and summary["images"] == len(images) and summary["workers"] == 2


def _records(summary):
    return [(r["image"], r["class"], r["cycles"], r["mismatch"]) for r in summary["per_image"]]


def test_whole_core_under_icarus_agrees_with_verilator(tmp_path):
    """Cross-simulator: the same harness and jobs under Icarus Verilog, the whole core (tokenizer, attention, the
    head, two encoder blocks, the full per-layer read-out) of a small random shape: Icarus runs the trained digits
    core at tens of cycles per second, so `flow.py sim --simulator icarus --images N` is for a few images of it."""
    model, rtl_dir = _random_case("T3-rgb-2blocks", tmp_path)
    images = np.random.default_rng(21).integers(0, 1 << model.input_bits, size=(2, *model.input_shape))
    work = str(tmp_path / "sim")
    ver = check_images(model, rtl_dir, images, work, results_name="xsim-verilator.json", full_readout=True)
    ica = check_images(model, rtl_dir, images, work, results_name="xsim-icarus.json", simulator="icarus",
                       full_readout=True)
    assert ica["simulator"] == "icarus" and ver["simulator"] == "verilator"
    assert ica["mismatches"] == 0 and ver["mismatches"] == 0
    assert _records(ica) == _records(ver)


def test_cocotb_bench_agrees_with_the_harness(tmp_path):
    """The Python-in-the-loop bench (kept for waveforms and as the speed reference) and the harness see the same
    core the same way."""
    model, rtl_dir = _random_case("T2-one-stage-1head", tmp_path)
    images = np.random.default_rng(8).integers(0, 1 << model.input_bits, size=(2, *model.input_shape))
    fast = check_images(model, rtl_dir, images, str(tmp_path / "sim"), results_name="harness.json")
    slow = check_images(model, rtl_dir, images, str(tmp_path / "sim"), results_name="cocotb.json", bench="cocotb")
    assert slow["bench"] == "cocotb" and fast["bench"] == "harness"
    assert _records(slow) == _records(fast) and fast["mismatches"] == 0


@pytest.mark.train
def test_mismatch_report_names_layer_timestep_token_channel(digits_model, tmp_path):
    """A core generated from a model with one flipped threshold must be caught, and the report must say where."""
    model, base = digits_model
    arrays = {k: v.copy() for k, v in model.arrays.items()}
    images, _ = im.load_testset(os.path.join(base, "testset.npz"))
    from golden.inference import run
    tr = run(model, images[:1], trace=True).trace
    # lower the threshold of a channel that is silent at some timestep, so that it fires in the altered core
    spikes = tr["blk0.q.spikes"][:, 0]                                  # [T, C, N]
    c = int(np.argmax((spikes.sum(axis=(0, 2)) < spikes.shape[0] * spikes.shape[2])))
    arrays["blk0.q.theta"][c] = 1
    altered = im.IntModel(model.config, arrays)
    rtl_dir = str(tmp_path / "rtl")
    generate(altered, 16, rtl_dir)
    summary = check_images(model, rtl_dir, images[:1], str(tmp_path / "sim"))
    msg = summary["per_image"][0]["mismatch"]
    assert msg and msg.startswith("layer blk0.q.spikes, timestep ") and f"channel {c}:" in msg, msg


@pytest.mark.train
def test_shipped_fashion_mnist_core_on_stratified_test_images(tmp_path):
    """The zoo's Fashion-MNIST model on its 8-lane core (the lane count that keeps it in the ECP5-85F's block RAM):
    one test image per class for four classes, bit-exact and cycle-exact (`flow.py sim --preset fashion-mnist
    --images 1000 --stratified` runs the benchmark subset)."""
    from quant import zoo
    assert zoo.provide("fashion-mnist", str(tmp_path / "build"))
    base = tmp_path / "build" / "fashion-mnist"
    model = im.load(str(base / "intmodel.zip"))
    images, labels = im.load_testset(str(base / "testset.npz"))
    idx = im.stratified_subset(labels, 4)
    generate(model, 8, str(tmp_path / "rtl"))
    summary = check_images(model, str(tmp_path / "rtl"), images[idx], str(tmp_path / "sim"), labels=labels[idx])
    _assert_clean(summary)
    assert summary["images"] == 4 and summary["mismatches"] == 0
