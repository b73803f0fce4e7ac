"""Fuzz (issue 13): random and hostile configurations, model files, test sets and core manifests. Each is either
accepted, and then lays out as a valid core (plan and widths; Verilog for a few), or refused with one user-error
sentence and nothing written. Seeded, so a failure reproduces; the counts are printed (pytest -s) and asserted."""
import copy
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import flow
from golden import intmodel as im
from flowerrors import USER_ERRORS
from golden.errors import GoldenError

pytestmark = pytest.mark.unit

TINY = dict(T=2, input_bits=3, in_channels=1, image_size=[4, 4],
            tokenizer=[{"out": 4, "pool": False}, {"out": 8, "pool": True}], embed_dim=8, heads=2, blocks=1,
            mlp_hidden=8, num_classes=3, weight_bits=4)
HOSTILE = [None, -1, 0, 1.5, True, "8", [], {}, [1], 2 ** 40, float("nan"), -(2 ** 63), "", [None, None]]


def sentence(exc):
    msg = str(exc)
    assert isinstance(exc, USER_ERRORS), f"{type(exc).__name__}: {msg}"
    assert msg and "\n" not in msg and msg.endswith(".") and len(msg) < 600, msg


def files(d):
    return sorted(str(p.relative_to(d)) for p in Path(d).rglob("*"))


def random_config(rng):
    """Mostly small valid-looking configurations, with one to three fields made hostile in half of them."""
    stages = [{"out": int(rng.integers(1, 9)), "pool": False}]
    for _ in range(int(rng.integers(0, 3))):
        stages.append({"out": int(rng.integers(1, 17)), "pool": bool(rng.integers(0, 2))})
    heads = int(rng.choice([1, 2, 4]))
    c = stages[-1]["out"] = heads * int(rng.integers(1, 5))
    cfg = {"T": int(rng.integers(1, 6)), "input_bits": int(rng.integers(1, 7)), "in_channels": int(rng.integers(1, 3)),
           "image_size": [int(rng.integers(1, 7)), int(rng.integers(1, 7))], "tokenizer": stages, "embed_dim": c,
           "heads": heads, "blocks": int(rng.integers(0, 3)), "mlp_hidden": int(rng.integers(1, 17)),
           "num_classes": int(rng.integers(2, 6)), "weight_bits": int(rng.integers(2, 9))}
    if rng.random() < 0.5:
        for _ in range(int(rng.integers(1, 4))):
            kind = rng.integers(0, 6)
            key = str(rng.choice(list(cfg)))
            if kind == 0:
                cfg[key] = HOSTILE[int(rng.integers(len(HOSTILE)))]
            elif kind == 1:
                cfg.pop(key)
            elif kind == 2:
                cfg["extra_" + key] = 1
            elif kind == 3:
                cfg["image_size"] = [int(v) for v in rng.integers(-3, 5, size=int(rng.integers(0, 4)))]
            elif kind == 4:
                cfg["tokenizer"] = [HOSTILE[int(rng.integers(len(HOSTILE)))]] + stages[1:]
            else:
                cfg[key] = int(rng.integers(-5, 70000))
    return cfg


def random_arrays(config, rng):
    out = {}
    for k, shape in im.array_shapes(config).items():
        if k.endswith("theta"):
            out[k] = rng.integers(1, 200, size=shape)
        else:
            w = 1 << (config["weight_bits"] - 1)
            out[k] = rng.integers(-w + 1, w, size=shape)
    return out


def check_accepted_model(model, rng):
    """An accepted model lays out as a core: a plan for a lane count that divides d, widths that are positive."""
    from rtl.engine_plan import build_plan
    lanes = int(rng.choice([p for p in (1, 2, 4, 8) if model.d % p == 0]))
    plan = build_plan(model, lanes)
    assert all(isinstance(v, int) and v >= 1 for v in plan.widths.values()), plan.widths
    assert plan.dims["layers"] == len(plan.layers) >= 3 and plan.act_rows >= 1
    assert all(len(row) == lanes for row in plan.weight_rows)
    return plan


def test_fuzz_configs_models_testsets_manifests(tmp_path, capsys):
    rng = np.random.default_rng(13)
    counts = {"config": [0, 0], "model file": [0, 0], "test set": [0, 0], "manifest": [0, 0]}

    # ---- 1. configurations: the normaliser, then (accepted) a model and its plan
    plans = 0
    for i in range(500):
        cfg = random_config(rng)
        try:
            c = im.normalise_config(copy.deepcopy(cfg))
        except Exception as exc:           # noqa: BLE001 - anything but one golden refusal sentence fails below
            sentence(exc)
            assert isinstance(exc, GoldenError), type(exc).__name__    # the reference model's own refusal
            counts["config"][1] += 1
            continue
        counts["config"][0] += 1
        try:
            model = im.IntModel(c, random_arrays(c, rng))
            check_accepted_model(model, rng)
            plans += 1
        except USER_ERRORS as exc:          # a hardware limit (e.g. weights too wide for the core) is a refusal too
            sentence(exc)

    # ---- 2. model files: mutations of a valid file; load() accepts it unchanged or refuses it in one sentence
    base = im.random_intmodel(im.make_config(**TINY), seed=1)
    good = tmp_path / "good.zip"
    im.save(base, str(good))
    data = good.read_bytes()
    with zipfile.ZipFile(good) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    manifest = json.loads(members[im.MANIFEST])

    def rezip(mem):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name, body in mem.items():
                z.writestr(name, body)
        return buf.getvalue()

    def npy(a):
        buf = io.BytesIO()
        np.save(buf, a, allow_pickle=False)
        return buf.getvalue()

    names = sorted(base.arrays)
    for i in range(400):
        kind = i % 8
        if kind == 0:                                  # truncation
            blob = data[:int(rng.integers(0, len(data)))]
        elif kind == 1:                                # random byte flips
            b = bytearray(data)
            for pos in rng.integers(0, len(b), size=int(rng.integers(1, 6))):
                b[pos] ^= int(rng.integers(1, 256))
            blob = bytes(b)
        elif kind == 2:                                # an extra or a missing member
            mem = dict(members)
            if rng.random() < 0.5:
                mem[f"extra{i}.npy"] = npy(np.zeros(3, dtype=np.int64))
            else:
                mem.pop(str(rng.choice(names)) + ".npy")
            blob = rezip(mem)
        elif kind == 3:                                # an array of another dtype or shape
            mem = dict(members)
            name = str(rng.choice(names))
            a = base.arrays[name]
            a = [a.astype(np.int32), a.astype(np.float64), a.astype(np.uint8), a.reshape(-1), a.astype(bool),
                 np.zeros((0,), dtype=np.int64)][int(rng.integers(6))]
            mem[name + ".npy"] = npy(a)
            blob = rezip(mem)
        elif kind == 4:                                # the manifest edited
            m = copy.deepcopy(manifest)
            key = str(rng.choice(["config", "meta", "arrays", "sha256", "version", "format"]))
            m[key] = HOSTILE[int(rng.integers(len(HOSTILE)))] if rng.random() < 0.5 else m.get(key)
            if key == "config" and isinstance(m[key], dict):
                m[key] = random_config(rng)
            blob = rezip({**members, im.MANIFEST: json.dumps(m).encode()})
        elif kind == 5:                                # a manifest that is not JSON
            blob = rezip({**members, im.MANIFEST: bytes(rng.integers(0, 256, size=40, dtype=np.uint8))})
        elif kind == 6:                                # not a zip at all
            blob = bytes(rng.integers(0, 256, size=int(rng.integers(0, 300)), dtype=np.uint8))
        else:                                          # a consistent file (valid hash) around a random config
            cfg = random_config(rng)
            try:
                c = im.normalise_config(copy.deepcopy(cfg))
                arrays = random_arrays(c, rng)
            except GoldenError:
                c, arrays = cfg, {n: base.arrays[n] for n in names}
            m = {**manifest, "config": cfg, "meta": {"i": i},
                 "arrays": {k: {"dtype": "int64", "shape": list(v.shape)} for k, v in arrays.items()}}
            m["meta_sha256"] = im.meta_hash({"i": i})
            try:
                m["sha256"] = im.content_hash(c, arrays)
            except TypeError:
                m["sha256"] = "0"
            blob = rezip({im.MANIFEST: json.dumps(m).encode(), **{k + ".npy": npy(np.asarray(v, dtype="<i8"))
                                                                 for k, v in arrays.items()}})
        path = tmp_path / "m.zip"
        path.write_bytes(blob)
        try:
            model = im.load(str(path))
        except Exception as exc:           # noqa: BLE001
            sentence(exc)
            counts["model file"][1] += 1
            if i < 40:                      # the CLI on a few: exit 2, one line, nothing written
                out = tmp_path / "rtl-out"
                assert flow.main(["gen-rtl", "--model", str(path), "--lanes", "1", "--out", str(out)]) == 2
                err = capsys.readouterr().err
                assert err.count("\n") == 1 and not out.exists(), err
            continue
        counts["model file"][0] += 1
        try:
            check_accepted_model(model, rng)
        except USER_ERRORS as exc:
            sentence(exc)

    # ---- 3. test sets
    for i in range(200):
        kind = i % 5
        path = tmp_path / "t.npz"
        n = int(rng.integers(0, 4))
        if kind == 0:
            im.save_testset(str(path), rng.integers(0, 8, size=(max(1, n), 1, 4, 4)), rng.integers(0, 3, size=max(1, n)))
            blob = path.read_bytes()
            path.write_bytes(blob[:int(rng.integers(0, len(blob) + 1))])
        elif kind == 1:
            arrays = {str(rng.choice(["images", "labels", "x"])): rng.integers(0, 8, size=tuple(rng.integers(0, 4, size=int(rng.integers(0, 5)))))
                      for _ in range(int(rng.integers(0, 4)))}
            np.savez(path, **arrays)
        elif kind == 2:
            np.savez(path, images=rng.random((n, 1, 4, 4)), labels=rng.integers(0, 3, size=n))
        elif kind == 3:
            np.savez(path, images=rng.integers(0, 8, size=(n, 1, 4, 4)), labels=rng.integers(0, 3, size=int(rng.integers(0, 4))))
        else:
            path.write_bytes(bytes(rng.integers(0, 256, size=int(rng.integers(0, 400)), dtype=np.uint8)))
        try:
            images, labels = im.load_testset(str(path))
        except Exception as exc:           # noqa: BLE001
            sentence(exc)
            counts["test set"][1] += 1
            continue
        counts["test set"][0] += 1
        assert images.ndim == 4 and labels.ndim == 1 and len(images) == len(labels) >= 1
        assert images.dtype == labels.dtype == np.int64

    # ---- 4. core manifests, read by sim and synth (the report reads them the same way)
    from tools.synth import core_manifest
    from rtl.gen import generate
    from sim.cli import check_core
    d = tmp_path / "preset"
    real = generate(base, 2, str(d / "rtl"))
    text = json.dumps(real)
    for i in range(200):
        kind = i % 4
        if kind == 0:
            body = text[:int(rng.integers(0, len(text)))]
        elif kind == 1:
            m = copy.deepcopy(real)
            for key in rng.choice(list(m), size=int(rng.integers(1, 4)), replace=False):
                if rng.random() < 0.5:
                    m.pop(str(key))
                else:
                    m[str(key)] = HOSTILE[int(rng.integers(len(HOSTILE)))]
            body = json.dumps(m)
        elif kind == 2:
            body = json.dumps(HOSTILE[int(rng.integers(len(HOSTILE)))])
        else:
            body = text if rng.random() < 0.5 else json.dumps({**real, "verilog_sha256": "%064x" % i})
        (d / "rtl" / "manifest.json").write_text(body)
        before = files(d)
        try:
            check_core(str(d / "rtl"), base, "p")
            core_manifest(str(d), "p")
        except Exception as exc:           # noqa: BLE001
            sentence(exc)
            counts["manifest"][1] += 1
            assert files(d) == before
            continue
        counts["manifest"][0] += 1

    total = sum(a + r for a, r in counts.values())
    with capsys.disabled():
        print(f"\nfuzz: {total} cases; accepted / refused: " +
              ", ".join(f"{k} {a} / {r}" for k, (a, r) in counts.items()) + f"; {plans} accepted configs laid out")
    assert total >= 1000
    assert all(a > 0 and r > 0 for a, r in counts.values()), counts
    assert plans >= 100
