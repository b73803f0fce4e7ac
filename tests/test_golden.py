"""golden/ against independent references: float LIF equations, float64 attention, max-pool, naive convolution,
brute-force width analysis, and the model file's error handling."""
import itertools
import os
import zipfile

import numpy as np
import pytest

from golden import compare, inference, intmodel as im, primitives as P, widths
from golden.errors import ArtifactError, ConfigError, InputError, IntModelError, WidthError

pytestmark = pytest.mark.unit


def float_lif(x, v_th):
    """spikingjelly MultiStepLIFNode (τ=2, decay_input, hard reset to 0) in float64."""
    v = np.zeros(x.shape[1:])
    out = []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) / 2.0
        s = h >= v_th
        v = np.where(s, 0.0, h)
        out.append(s.astype(np.uint8))
    return np.stack(out)


@pytest.mark.parametrize("T", [1, 2, 4, 6])
def test_lif_matches_float_equations(T):
    rng = np.random.default_rng(T)
    x = rng.integers(-40, 60, size=(T, 500, 8))
    theta = rng.integers(1, 40 << T, size=8)
    scale = 2.0 ** -5  # any power-of-two scale: LIF is positively homogeneous
    ref = float_lif(x * scale, theta * scale / (1 << T))
    assert np.array_equal(P.lif(x, theta, T), ref)


def test_lif_spike_exactly_at_threshold_and_negative_membrane():
    T = 4
    # step 1: U_H = (0 + 2·16) / 2 = 16, so theta 16 fires and theta 17 does not.
    assert P.lif(np.array([[2]] * T)[:1], 16, T)[0, 0] == 1
    assert P.lif(np.array([[2]] * T)[:1], 17, T)[0, 0] == 0
    # A negative input drives the membrane below zero (no lower bound), which delays the next spike.
    x = np.array([-8, 6, 6, 6])
    s, u_h, u = P.lif_trace(x, 40, T)
    assert u_h[0] == -64 and u[0] == -64
    assert list(s) == list(float_lif(x.astype(float), 40 / 16))
    assert list(u_h) == [-64, 16, 56, 48]  # 56 >= 40 fires at step 2, then restarts from 0
    assert list(s) == [0, 0, 1, 1]


def test_pack_unpack_words_roundtrip():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 2, size=(5, 3, 7))
    words = P.pack_words(s)
    assert words.max() < 32 and np.array_equal(P.unpack_words(words, 5), s)
    assert P.pack_words(np.ones((4, 1)))[0] == 15


def test_attention_matches_float64_and_attn_lif():
    rng = np.random.default_rng(3)
    T, B, C, N, heads = 4, 3, 16, 9, 4
    q, k, v = (rng.integers(0, 2, size=(T, B, C, N)) for _ in range(3))
    kv, y = P.attention(q, k, v, heads)
    d = C // heads
    for t, b, h in itertools.product(range(T), range(B), range(heads)):
        Q = q[t, b, h * d:(h + 1) * d].T.astype(np.float64)   # [N, d]
        K = k[t, b, h * d:(h + 1) * d].T.astype(np.float64)
        V = v[t, b, h * d:(h + 1) * d].T.astype(np.float64)
        assert np.array_equal(kv[t, b, h], K.T @ V)
        assert np.array_equal(y[t, b, h * d:(h + 1) * d].T * 0.125, Q @ (K.T @ V) * 0.125)
    ref = float_lif(y * 0.125, 0.5)
    assert np.array_equal(P.lif(y, P.attn_theta(T), T), ref)


def test_or_pool_is_max_pool_on_spikes():
    rng = np.random.default_rng(1)
    for h, w in [(8, 8), (7, 5), (1, 1), (32, 32)]:
        s = rng.integers(0, 2, size=(2, 3, h, w)).astype(np.uint8)
        pad = np.full((2, 3, h + 2, w + 2), -np.inf)
        pad[..., 1:-1, 1:-1] = s
        ref = np.zeros((2, 3, (h + 1) // 2, (w + 1) // 2))
        for y, x in itertools.product(range(ref.shape[2]), range(ref.shape[3])):
            ref[..., y, x] = pad[..., 2 * y:2 * y + 3, 2 * x:2 * x + 3].max(axis=(-1, -2))
        assert np.array_equal(P.or_pool(s), ref)
    words = rng.integers(0, 16, size=(6, 6))  # the pool also works on packed T-bit words
    assert np.array_equal(P.or_pool(words), P.pack_words(P.or_pool(P.unpack_words(words, 4))))


def naive_conv3x3(x, w, b):
    bsz, cin, h, wd = x.shape
    out = np.zeros((bsz, w.shape[0], h, wd), dtype=np.int64)
    for n, co, y, xx in itertools.product(range(bsz), range(w.shape[0]), range(h), range(wd)):
        acc = int(b[co])
        for ci, ky, kx in itertools.product(range(cin), range(3), range(3)):
            yy, xs = y + ky - 1, xx + kx - 1
            if 0 <= yy < h and 0 <= xs < wd:
                acc += int(w[co, ci, ky, kx]) * int(x[n, ci, yy, xs])
        out[n, co, y, xx] = acc
    return out


def test_convolutions_against_naive_loops():
    rng = np.random.default_rng(2)
    u = rng.integers(0, 32, size=(2, 3, 5, 6))
    w = rng.integers(-127, 128, size=(4, 3, 3, 3))
    b = rng.integers(-500, 500, size=4)
    ref = naive_conv3x3(u, w, b)
    assert np.array_equal(P.conv3x3(u, w, b), ref)
    assert np.array_equal(P.conv3x3_bitplanes(u, w, b, 5), ref)
    s = rng.integers(0, 2, size=(3, 2, 3, 5, 6))
    acc = P.spike_conv3x3(s, w, b)
    for t in range(3):
        assert np.array_equal(acc[t], naive_conv3x3(s[t], w, b))
    sl = rng.integers(0, 2, size=(2, 2, 7, 5))
    wl = rng.integers(-8, 8, size=(4, 7))
    acc = P.spike_linear(sl, wl, b)
    assert np.array_equal(acc, np.einsum("oc,tbcn->tbon", wl, sl) + b[:, None])


def test_exact_matmul_falls_back_to_integers_for_huge_values():
    a = np.array([[1 << 40, 1]], dtype=np.int64)
    b = np.array([[1 << 20], [3]], dtype=np.int64)
    assert P._exact_matmul(a, b)[0, 0] == (1 << 60) + 3


TINY = dict(T=2, input_bits=2, in_channels=1, image_size=[2, 2],
            tokenizer=[{"out": 2, "pool": False}, {"out": 2, "pool": False}], embed_dim=2, heads=1, blocks=1,
            mlp_hidden=2, num_classes=2, weight_bits=3)


def test_width_analysis_contains_every_value_brute_force():
    """All 4^4 images of a tiny model: every traced value lies inside the analysed range."""
    for seed in range(4):
        m = im.random_intmodel(im.make_config(**TINY), seed=seed, firing=0.4)
        ranges = widths.analyze(m)
        images = np.array(list(itertools.product(range(4), repeat=4))).reshape(-1, 1, 2, 2)
        tr = inference.run(m, images, trace=True).trace
        for key, value in tr.items():
            if key in ranges:
                assert ranges[key].lo <= value.min() and value.max() <= ranges[key].hi, key


def test_accumulator_range_is_tight_brute_force():
    rng = np.random.default_rng(5)
    w = rng.integers(-7, 8, size=(3, 6))
    b = rng.integers(-5, 6, size=3)
    lo, hi = widths.spike_layer_range(w, b)
    every = np.array(list(itertools.product((0, 1), repeat=6)))
    acc = every @ w.T + b
    assert np.array_equal(acc.min(0), lo) and np.array_equal(acc.max(0), hi)


def test_membrane_range_brute_force_over_all_input_sequences():
    T = 3
    for xlo, xhi, theta in [(-3, 4, 10), (0, 6, 1), (-5, -1, 3), (2, 9, 200)]:
        seqs = np.array(list(itertools.product(range(xlo, xhi + 1), repeat=T))).T  # [T, count]
        u = np.zeros(seqs.shape[1], dtype=np.int64)
        lo = hi = 0
        for t in range(T):
            total = u + (seqs[t] << T)
            lo, hi = min(lo, total.min()), max(hi, total.max())
            _, u, _ = P.lif_step(u, seqs[t], theta, T)
        slo, shi = widths.lif_membrane_range(xlo, xhi, theta, T)
        assert slo <= lo and hi <= shi            # sound
        # tight up to the parity the intervals ignore: the same register width as the brute force
        assert widths.signed_bits(int(slo), int(shi)) == widths.signed_bits(min(lo, 0), max(hi, 0))


def test_signed_bits():
    assert [widths.signed_bits(lo, hi) for lo, hi in [(0, 0), (-1, 0), (0, 1), (-128, 127), (-129, 0), (0, 128)]] \
        == [1, 1, 2, 8, 9, 9]


def test_hw_limits_refuse_too_wide_weights():
    m = im.random_intmodel(im.make_config(**TINY), seed=0)
    m.arrays["head.w"] = m.arrays["head.w"] << 20
    with pytest.raises(WidthError, match="head.w needs .*-bit weights.*--weight-bits"):
        widths.check_hw_limits(m)


def test_model_file_roundtrip_and_determinism(tmp_path):
    m = im.random_intmodel(seed=3)
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    im.save(m, str(a))
    im.save(im.load(str(a)), str(b))
    assert a.read_bytes() == b.read_bytes()
    m2 = im.load(str(b))
    assert m2.sha256 == m.sha256 and m2.config == m.config


def test_model_file_errors(tmp_path):
    m = im.random_intmodel(im.make_config(**TINY), seed=0)
    path = tmp_path / "m.zip"
    im.save(m, str(path))
    data = path.read_bytes()
    (tmp_path / "trunc.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(IntModelError, match="corrupt or truncated.*train-quant"):
        im.load(str(tmp_path / "trunc.zip"))
    flipped = bytearray(data)
    with zipfile.ZipFile(path) as z:     # a byte in the middle of the largest array's (deflated) data
        big = max(z.infolist(), key=lambda i: i.compress_size)
    pos = big.header_offset + 30 + len(big.filename) + big.compress_size // 2
    flipped[pos] ^= 0xFF
    (tmp_path / "flip.zip").write_bytes(bytes(flipped))
    with pytest.raises(IntModelError):
        im.load(str(tmp_path / "flip.zip"))
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(tmp_path / "v9.zip", "w") as out:
        for info in z.infolist():
            body = z.read(info)
            if info.filename == im.MANIFEST:
                body = body.replace(b'"version": 2', b'"version": 9')
            out.writestr(info, body)
    with pytest.raises(IntModelError, match="format version 9 but this flow reads version 2"):
        im.load(str(tmp_path / "v9.zip"))
    with pytest.raises(IntModelError, match="does not exist"):
        im.load(str(tmp_path / "missing.zip"))


def test_atomic_save_keeps_old_file_on_failure(tmp_path, monkeypatch):
    m = im.random_intmodel(im.make_config(**TINY), seed=0)
    path = tmp_path / "m.zip"
    im.save(m, str(path))
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "save", boom)
    with pytest.raises(ArtifactError, match="cannot write in"):
        im.save(im.random_intmodel(im.make_config(**TINY), seed=1), str(path))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.zip"]


def test_bad_images_are_refused():
    m = im.random_intmodel(im.make_config(**TINY), seed=0)
    with pytest.raises(InputError, match="shape .* expects"):
        inference.run(m, np.zeros((1, 1, 3, 3), dtype=int))
    with pytest.raises(InputError, match="0..3"):
        inference.run(m, np.full((1, 1, 2, 2), 4))
    with pytest.raises(InputError, match="integers"):
        inference.run(m, np.full((1, 1, 2, 2), 0.5))


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown configuration key"):
        im.make_config(colour=3)
    with pytest.raises(ConfigError, match="divisible"):
        im.make_config(heads=5)
    with pytest.raises(ConfigError, match="cannot pool"):
        im.make_config(tokenizer=[{"out": 8, "pool": True}])


def test_first_mismatch_names_layer_timestep_token_channel():
    m = im.random_intmodel(seed=2)
    images = np.random.default_rng(0).integers(0, 17, size=(2, 1, 8, 8))
    ref = inference.run(m, images, trace=True).trace
    assert compare.first_mismatch(ref, ref) is None
    dut = {k: v.copy() for k, v in ref.items()}
    dut["tok1.spikes"][3, 1, 5, 2, 1] ^= 1     # later timestep, earlier layer: reported first
    dut["blk0.fc1.spikes"][0, 0, 9, 4] ^= 1
    msg = compare.first_mismatch(ref, dut)
    assert msg.startswith("layer tok1.spikes, timestep 3, image 1, token 9 (y 2, x 1), channel 5")


def test_batched_inference_equals_per_image():
    m = im.random_intmodel(seed=4)
    images = np.random.default_rng(1).integers(0, 17, size=(7, 1, 8, 8))
    whole = inference.run(m, images, trace=True, batch=3)
    for i in range(7):
        one = inference.run(m, images[i], trace=True)
        assert np.array_equal(one.logits[0], whole.logits[i])
        assert np.array_equal(one.trace["blk0.attn_spikes"][:, 0], whole.trace["blk0.attn_spikes"][:, i])


def test_layer_graph_names_every_array_once_and_every_trace_key():
    """golden/graph.py is the one walk over the network: its weight steps and thresholds cover exactly the arrays
    of the model format, and its trace keys are exactly what inference records."""
    from golden.graph import steps, trace_keys
    for cfg in (im.make_config(), im.make_config(T=3, in_channels=3, image_size=[6, 6], blocks=2, heads=2,
                                                 tokenizer=[{"out": 4, "pool": False}, {"out": 8, "pool": True},
                                                            {"out": 16, "pool": True}], embed_dim=16, mlp_hidden=32)):
        model = im.random_intmodel(cfg, seed=1)
        named = []
        for step in steps(model):
            if step.weighted:
                named += [step.name + ".w", step.name + ".b"]
            if step.theta:
                named.append(step.theta)
        assert sorted(named) == sorted(model.arrays) and len(set(named)) == len(named)
        images = np.zeros((1, *model.input_shape), dtype=np.int64)
        assert list(inference.run(model, images, trace=True).trace) == trace_keys(model)


def test_stratified_subset_is_class_balanced_fixed_and_fills_short_classes():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 10, size=2000)
    idx = im.stratified_subset(labels, 1003)
    assert len(idx) == 1003 and len(set(idx.tolist())) == 1003 and np.all(np.diff(idx) > 0)
    counts = np.bincount(labels[idx], minlength=10)
    assert sorted(counts.tolist()) == [100] * 7 + [101] * 3
    for c in range(10):     # each class contributes its first images in test-set order
        assert np.array_equal(idx[labels[idx] == c], np.flatnonzero(labels == c)[:counts[c]])
    assert np.array_equal(idx, im.stratified_subset(labels.copy(), 1003))
    short = np.array([0] * 3 + [1] * 50 + [2] * 50)
    idx = im.stratified_subset(short, 30)
    assert len(idx) == 30 and np.bincount(short[idx]).tolist()[0] == 3
    assert np.array_equal(im.stratified_subset(labels, 5000), np.arange(2000))
