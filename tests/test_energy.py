"""Energy model (paper method) and the executed-SOP count, on models whose activity is known by construction."""
import numpy as np
import pytest

from golden import inference
from golden.intmodel import IntModel, make_config, random_intmodel
from hls_models import energy

pytestmark = pytest.mark.unit

# Default digits shape: 1x8x8 input, tokenizer 16 (8x8) -> pool 32 (4x4) -> 64 (4x4), N = 16, C = 64, 4 heads,
# 1 block, MLP 256, 10 classes, T = 4.


def images(n=3, seed=1):
    return np.random.default_rng(seed).integers(0, 17, size=(n, 1, 8, 8))


def with_arrays(model, **changes):
    arrays = dict(model.arrays)
    for name, fn in changes.items():
        for key in list(arrays):
            if key.endswith(name):
                arrays[key] = fn(arrays[key])
    return IntModel(model.config, arrays)


def test_silent_network_costs_only_the_mac_layers():
    model = with_arrays(random_intmodel(make_config(), seed=3), theta=lambda a: np.full_like(a, 1 << 40))
    e = energy.estimate(model, images())
    first_conv = 16 * 1 * 9 * 8 * 8          # Cout · Cin · 3·3 · H·W, once (the pixels repeat over T)
    head = 10 * 64
    assert e["ac_ops"] == 0 and e["executed_sops"] == 0
    assert e["mac_ops"] == first_conv + head
    assert e["energy_pj"] == pytest.approx(4.6 * (first_conv + head))


def test_always_firing_network_costs_every_dense_op():
    model = with_arrays(random_intmodel(make_config(), seed=4),
                        theta=lambda a: np.ones_like(a), **{".w": lambda a: np.zeros_like(a),
                                                            ".b": lambda a: np.full_like(a, 5)})
    e = energy.estimate(model, images(2))
    assert all(rate == 1.0 for rate in e["firing_rates"].values())
    T, N = 4, 16
    tokenizer = 32 * 16 * 9 * 4 * 4 + 64 * 32 * 9 * 4 * 4      # the two spike convs, after the pool
    block = 4 * 64 * 64 * N + 2 * 256 * 64 * N                  # q, k, v, proj; fc1, fc2
    ssa = 4 * N * 16 ** 2 * (1 + 1)                            # heads · N · d² · (min(fr_K, fr_V) + fr_Q)
    assert e["ac_ops"] == T * (tokenizer + block + ssa)
    assert e["energy_pj"] == pytest.approx(0.9 * T * (tokenizer + block + ssa) + 4.6 * (16 * 9 * 64 + 640))


def brute_force_executed(model, trace):
    """Count additions spike by spike with explicit loops (independent of the vectorised model)."""
    total = 0
    for i in range(1, len(model.stages)):
        s = trace[f"tok{i}.pooled"] if model.stages[i]["pool"] else trace[f"tok{i-1}.spikes"]
        cout = model.stage_shapes[i][1]
        _, _, _, h, w = s.shape
        for t, b, c, y, x in zip(*np.nonzero(s)):
            outputs = sum(1 for dy in (-1, 0, 1) for dx in (-1, 0, 1) if 0 <= y + dy < h and 0 <= x + dx < w)
            total += outputs * cout
    for j in range(model.blocks):
        p = f"blk{j}."
        c, ch, d = model.C, model.mlp_hidden, model.d
        total += 3 * int(trace[p + "ssa_spikes"].sum()) * c + int(trace[p + "attn_spikes"].sum()) * c
        total += int(trace[p + "mlp_spikes"].sum()) * ch + int(trace[p + "fc1.spikes"].sum()) * c
        q, k, v = (trace[p + f"{x}.spikes"] for x in "qkv")
        T, B, _, N = q.shape
        for t in range(T):
            for b in range(B):
                for hd in range(model.heads):
                    sl = slice(hd * d, (hd + 1) * d)
                    for n in range(N):
                        total += int(k[t, b, sl, n].sum()) * int(v[t, b, sl, n].sum())
                        total += int(q[t, b, sl, n].sum()) * d
    return total


def test_executed_sops_match_a_spike_by_spike_count():
    model = random_intmodel(make_config(), seed=5, firing=0.2)
    x = images(2, seed=7)
    trace = inference.run(model, x, trace=True).trace
    e = energy.estimate(model, x, trace)
    assert 0 < e["executed_sops"] < e["dense_sops"]
    assert e["executed_sops"] * 2 == brute_force_executed(model, trace)


def test_core_efficiency_divides_by_cycles():
    e = {"executed_sops": 1000.0}
    out = energy.core_efficiency(e, cycles=500, fmax_mhz=100.0)
    assert out["sops_per_cycle"] == 2.0 and out["latency_us"] == 5.0 and out["gsops"] == pytest.approx(0.2)
