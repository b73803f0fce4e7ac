"""Inputs that must not break the flow (issue 13): each case ends in one sentence naming the fix, exit 2, and
nothing written or changed."""
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import flow
from golden import artifacts
from golden import intmodel as im
from flowerrors import FlowError
from golden.errors import ConfigError, DatasetError, IntModelError

pytestmark = pytest.mark.unit

TINY = dict(T=2, input_bits=3, in_channels=1, image_size=[4, 4],
            tokenizer=[{"out": 4, "pool": False}, {"out": 8, "pool": True}], embed_dim=8, heads=2, blocks=1,
            mlp_hidden=8, num_classes=3, weight_bits=4)


def run(capsys, *argv):
    rc = flow.main(list(argv))
    return rc, capsys.readouterr().err


def one_sentence(err, stage):
    assert err.startswith(f"flow.py {stage}: error: ") and "Traceback" not in err, err
    assert err.count("\n") == 1 and err.rstrip().endswith("."), err
    advice_exists(err)


def advice_exists(text):
    """Every `python flow.py CMD --opt ...` the message advises must name a command and options that exist."""
    for cmd in re.findall(r"`(python flow\.py [^`]+)`", text):
        for part in cmd.split(" && "):
            words = shlex.split(part)[2:]
            module_name, _ = flow.STAGES[words[0]]
            import argparse
            import importlib
            parser = argparse.ArgumentParser(add_help=False)     # `--help` is advice that exists on every stage
            parser.add_argument("--help", action="store_true")
            importlib.import_module(module_name).add_arguments(parser)
            _, unknown = parser.parse_known_args(words[1:])
            assert not unknown, f"{part!r} advises options that do not exist: {unknown}"


def snapshot(directory):
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(Path(directory).rglob("*")) if p.is_file()}


def write_model_file(path, config, arrays, meta=None, extra_members=None, dtype="<i8", declared="int64"):
    """A model zip written by hand (bypassing IntModel's checks), with a valid hash over what it holds."""
    meta = meta or {}
    manifest = {"format": im.FORMAT_NAME, "version": im.FORMAT_VERSION, "config": config, "meta": meta,
                "arrays": {k: {"dtype": declared, "shape": list(np.shape(v))} for k, v in arrays.items()},
                "sha256": im.content_hash(config, arrays), "meta_sha256": im.meta_hash(meta)}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(im.MANIFEST, json.dumps(manifest))
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.save(buf, np.asarray(a).astype(dtype), allow_pickle=False)
            z.writestr(name + ".npy", buf.getvalue())
        for name, body in (extra_members or {}).items():
            z.writestr(name, body)
    return path


def zero_arrays(config):
    return {k: (np.ones(s, dtype=np.int64) if k.endswith("theta") else np.zeros(s, dtype=np.int64))
            for k, s in im.array_shapes(config).items()}


@pytest.fixture
def tiny_model():
    return im.random_intmodel(im.make_config(**TINY), seed=1)


# ------------------------------------------------------------------ configurations


def test_blocks_0_with_a_one_stage_tokenizer_is_refused(tmp_path, capsys):
    with pytest.raises(ConfigError, match="no spiking layer; add a transformer block or a tokenizer stage"):
        im.make_config(blocks=0, tokenizer=[{"out": 16, "pool": False}], embed_dim=16)
    config = {**im.make_config(**TINY), "blocks": 0, "tokenizer": [{"out": 8, "pool": False}]}
    path = write_model_file(tmp_path / "m.zip", config, zero_arrays(config))
    rc, err = run(capsys, "gen-rtl", "--model", str(path), "--out", str(tmp_path / "rtl"))
    assert rc == 2
    one_sentence(err, "gen-rtl")
    assert "no spiking layer" in err and not (tmp_path / "rtl").exists()
    # blocks=0 with two stages has a LIF and is a valid (if small) model
    cfg = im.make_config(**{**TINY, "blocks": 0})
    from rtl.engine_plan import build_plan
    assert build_plan(im.IntModel(cfg, zero_arrays(cfg)), 2).widths["stream"] >= 1


@pytest.mark.parametrize("size,match", [([0, 4], "out of range; use 1..4096"), ([-2, 4], "out of range"),
                                        ([4], r"is not \[H, W\]"), ([4.5, 4], "not an integer"),
                                        ("8x8", r"is not \[H, W\]"), ([True, 4], "not an integer")])
def test_image_size_is_checked(tmp_path, capsys, size, match):
    with pytest.raises(ConfigError, match=match):
        im.make_config(image_size=size)
    config = {**im.make_config(**TINY), "image_size": size}
    arrays = zero_arrays(im.make_config(**TINY))
    path = write_model_file(tmp_path / "m.zip", config, arrays)
    rc, err = run(capsys, "gen-rtl", "--model", str(path), "--out", str(tmp_path / "rtl"))
    assert rc == 2
    one_sentence(err, "gen-rtl")
    assert not (tmp_path / "rtl").exists()


def test_train_quant_refuses_a_bad_image_size_before_writing(tmp_path, capsys):
    rc, err = run(capsys, "train-quant", "--set", "image_size=[0,4]", "--out", str(tmp_path / "o"))
    assert rc == 2
    one_sentence(err, "train-quant")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ the model file


def test_loader_refuses_an_extra_member(tmp_path, tiny_model):
    path = tmp_path / "m.zip"
    im.save(tiny_model, str(path))
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("payload.npy", b"x")
    with pytest.raises(IntModelError, match=r"holds member\(s\) \['payload.npy'\] that its manifest does not list"):
        im.load(str(path))


def test_loader_refuses_int32_arrays_declared_int64(tmp_path, tiny_model):
    path = write_model_file(tmp_path / "m.zip", tiny_model.config, tiny_model.arrays, tiny_model.meta, dtype="<i4")
    with pytest.raises(IntModelError, match="is int32 but the manifest says int64"):
        im.load(str(path))
    path = write_model_file(tmp_path / "n.zip", tiny_model.config, tiny_model.arrays, tiny_model.meta,
                            declared="int32")
    with pytest.raises(IntModelError, match="not declared as int64"):
        im.load(str(path))


def test_meta_is_covered_by_the_hash(tmp_path, tiny_model):
    path = tmp_path / "m.zip"
    im.save(tiny_model, str(path))
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    manifest = json.loads(members[im.MANIFEST])
    manifest["meta"] = {"preset": "someone-else"}
    members[im.MANIFEST] = json.dumps(manifest).encode()
    with zipfile.ZipFile(tmp_path / "edited.zip", "w") as z:
        for name, body in members.items():
            z.writestr(name, body)
    with pytest.raises(IntModelError, match="fails its meta hash check"):
        im.load(str(tmp_path / "edited.zip"))
    # meta is provenance, not identity: the same network under other meta is the same model for every stage
    other = im.IntModel(tiny_model.config, tiny_model.arrays, {"preset": "someone-else"})
    assert other.sha256 == tiny_model.sha256


def test_docs_describe_what_is_hashed(tiny_model, tmp_path):
    """docs/intmodel.md's recipes, written out here from the text, give the hashes the code writes."""
    text = (Path(__file__).parent.parent / "docs" / "intmodel.md").read_text()
    assert "canonical JSON (sorted keys, no spaces) of `config`" in text and "`meta_sha256`" in text
    assert "dtype string" not in text
    canonical = dict(sort_keys=True, separators=(",", ":"))
    h = hashlib.sha256(json.dumps(tiny_model.config, **canonical).encode())
    for name in sorted(tiny_model.arrays):
        a = tiny_model.arrays[name].astype("<i8")
        h.update(name.encode() + b"\0" + str(a.shape).encode() + b"\0" + a.tobytes())
    im.save(tiny_model, str(tmp_path / "m.zip"))
    with zipfile.ZipFile(tmp_path / "m.zip") as z:
        manifest = json.loads(z.read(im.MANIFEST))
    assert manifest["sha256"] == h.hexdigest() == tiny_model.sha256
    assert manifest["meta_sha256"] == hashlib.sha256(json.dumps(tiny_model.meta, **canonical).encode()).hexdigest()


def test_version_1_files_are_read_without_their_unchecked_meta(tmp_path, tiny_model):
    """Version 1 had no check over meta: such a file still loads (same identity), its meta is dropped."""
    path = tmp_path / "m.zip"
    im.save(im.IntModel(tiny_model.config, tiny_model.arrays, {"preset": "x"}), str(path))
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    manifest = json.loads(members[im.MANIFEST])
    manifest["version"] = 1
    del manifest["meta_sha256"]
    manifest["meta"] = {"preset": "edited"}
    members[im.MANIFEST] = json.dumps(manifest).encode()
    with zipfile.ZipFile(tmp_path / "v1.zip", "w") as z:
        for name, body in members.items():
            z.writestr(name, body)
    old = im.load(str(tmp_path / "v1.zip"))
    assert old.sha256 == tiny_model.sha256 and old.meta == {}
    manifest["version"] = 3
    members[im.MANIFEST] = json.dumps(manifest).encode()
    with zipfile.ZipFile(tmp_path / "v3.zip", "w") as z:
        for name, body in members.items():
            z.writestr(name, body)
    with pytest.raises(IntModelError, match="format version 3 but this flow reads version 2; re-export it with "
                                            "`python flow.py train-quant --preset digits`"):
        im.load(str(tmp_path / "v3.zip"), command="python flow.py train-quant --preset digits")


# ------------------------------------------------------------------ a preset folder in the project's build/


@pytest.fixture
def project_preset(tiny_model):
    """build/<unique preset>/ inside the project (sim and the defaults resolve there), removed afterwards."""
    name = f"test-bad-input-{os.getpid()}"
    d = Path(artifacts.preset_dir(name))
    shutil.rmtree(d, ignore_errors=True)
    im.save(tiny_model, str(d / "intmodel.zip"))
    rng = np.random.default_rng(0)
    im.save_testset(str(d / "testset.npz"), rng.integers(0, 8, size=(5, 1, 4, 4)), rng.integers(0, 3, size=5))
    yield name, d
    shutil.rmtree(d, ignore_errors=True)


def generate_core(d, model, lanes=2):
    from rtl.gen import generate
    return generate(model, lanes, str(d / "rtl"))


def test_truncated_testset_is_one_sentence_for_sim_and_report(project_preset, tiny_model, capsys):
    name, d = project_preset
    generate_core(d, tiny_model)
    data = (d / "testset.npz").read_bytes()
    (d / "testset.npz").write_bytes(data[:len(data) // 2])
    before = snapshot(d)
    for stage in ("sim", "report"):
        rc, err = run(capsys, stage, "--preset", name)
        assert rc == 2, err
        one_sentence(err, stage)
        assert "corrupt or truncated" in err and f"train-quant --preset {name}" in err
        assert snapshot(d) == before


def test_testset_with_wrong_arrays_is_refused(tmp_path):
    np.savez(tmp_path / "a.npz", images=np.zeros((3, 1, 4, 4)), labels=np.zeros(3))
    with pytest.raises(DatasetError, match="not integers"):
        im.load_testset(str(tmp_path / "a.npz"))
    np.savez(tmp_path / "b.npz", images=np.zeros((3, 4, 4), dtype=int), labels=np.zeros(3, dtype=int))
    with pytest.raises(DatasetError, match=r"not \[N, Cin, H, W\]"):
        im.load_testset(str(tmp_path / "b.npz"))
    np.savez(tmp_path / "c.npz", pictures=np.zeros((3, 1, 4, 4), dtype=int))
    with pytest.raises(DatasetError, match="exactly the arrays images and labels"):
        im.load_testset(str(tmp_path / "c.npz"))


def test_corrupt_rtl_manifest_for_sim_synth_and_report(project_preset, tiny_model, capsys):
    name, d = project_preset
    generate_core(d, tiny_model)
    (d / "rtl" / "manifest.json").write_text('{"version": 1, "model_sha')
    before = snapshot(d)
    for stage in ("sim", "synth", "report"):
        rc, err = run(capsys, stage, "--preset", name)
        assert rc == 2, (stage, err)
        one_sentence(err, stage)
        assert "manifest" in err and f"gen-rtl --preset {name}" in err
        assert snapshot(d) == before


def test_edited_core_is_not_simulated_or_synthesised(project_preset, tiny_model, capsys):
    name, d = project_preset
    generate_core(d, tiny_model)
    with open(d / "rtl" / "core.v", "a") as f:
        f.write("// edited\n")
    before = snapshot(d)
    for stage in ("sim", "synth"):
        rc, err = run(capsys, stage, "--preset", name)
        assert rc == 2 and "not the Verilog its manifest describes" in err, err
        one_sentence(err, stage)
    assert snapshot(d) == before


def test_unwritable_build_folder(project_preset, tiny_model, capsys, monkeypatch, tmp_path):
    """A folder the stage may not write (read-only, full disk): one sentence, nothing changed. Permission bits do
    not stop root, so the refusal is injected where every artifact is written."""
    name, d = project_preset

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", kwargs.get("dir"))
    monkeypatch.setattr(artifacts.tempfile, "mkstemp", refuse)
    before = snapshot(d)
    for argv in (["gen-rtl", "--preset", name, "--lanes", "2"], ["report", "--preset", name, "--images", "2"]):
        rc, err = run(capsys, *argv)
        assert rc == 2, err
        one_sentence(err, argv[0])
        assert "Permission denied" in err and "make that folder writable" in err
    assert snapshot(d) == before
    # a build folder below a file: every stage meets an OSError before writing
    (tmp_path / "file").write_text("x")
    rc, err = run(capsys, "gen-rtl", "--preset", name, "--lanes", "2", "--out", str(tmp_path / "file" / "rtl"))
    assert rc == 2 and "--out" in err
    one_sentence(err, "gen-rtl")


def test_project_path_with_spaces_is_refused_up_front(project_preset, monkeypatch, capsys, tmp_path):
    name, d = project_preset
    import sim.cli
    spaced = str(tmp_path / "my projects" / "spikingformer-hw")
    monkeypatch.setattr(sim.cli, "PROJECT", spaced)
    rc, err = run(capsys, "sim", "--preset", name)
    assert rc == 2 and "contains a space, which GNU make" in err
    one_sentence(err, "sim")


def test_sim_negative_image_count_is_refused(project_preset, capsys):
    name, d = project_preset
    rc, err = run(capsys, "sim", "--preset", name, "--images", "-1")
    assert rc == 2 and "-1 is not a number of images" in err
    one_sentence(err, "sim")


# ------------------------------------------------------------------ fit and advice


def test_a_core_that_does_not_fit_is_said_at_generation_time():
    from tools import synth
    from rtl.cli import fit_note
    from rtl.engine_plan import build_plan
    from rtl.gen import manifest_of
    cfg = im.make_config(embed_dim=128, tokenizer=[{"out": 64, "pool": False}, {"out": 128, "pool": True}],
                         heads=4, blocks=2, mlp_hidden=1024)
    arrays = {k: np.where(np.arange(v.size).reshape(v.shape) % 2, 100, -100) if not k.endswith("theta") else v
              for k, v in zero_arrays(cfg).items()}          # 8-bit weights: about 308 DP16KD
    model = im.IntModel(cfg, arrays)
    manifest = manifest_of(model, build_plan(model, 16), "")
    note = fit_note(manifest)
    assert note and re.search(r"[\d,]+ block RAMs \(DP16KD\) of the 208 the LFE5U-85F-6CABGA381 has", note), note
    with pytest.raises(FlowError, match="place and route cannot succeed"):
        synth.check_fit(manifest, "ecp5")
    small = manifest_of(im.random_intmodel(seed=1), build_plan(im.random_intmodel(seed=1), 16), "")
    assert fit_note(small) is None
    synth.check_fit(small, "ecp5")


def test_stage_advice_names_options_that_exist(tmp_path, capsys):
    for stage in ("explore", "bench", "report", "gen-rtl", "sim", "synth"):
        rc, err = run(capsys, stage, "--preset", "nothing-here", *(["--build", str(tmp_path)] if stage in (
            "explore", "bench", "report", "synth") else []))
        assert rc == 2, (stage, err)
        one_sentence(err, stage)
        assert "--preset nothing-here" in err and "--model" not in err, err
    rc, err = run(capsys, "synth", "--preset", "x", "--verilog", str(tmp_path / "none.v"), "--seed-timeout", "-1",
                  "--out", str(tmp_path / "s"))
    assert rc == 2
    one_sentence(err, "synth")


def test_seed_timeout_message(tmp_path):
    from tools import synth
    v = tmp_path / "a.v"
    v.write_text("module a(); endmodule\n")
    with pytest.raises(FlowError, match=r"--seed-timeout -1 is not a time limit; .* --seed-timeout 0 for no limit"):
        synth.synthesise(str(v), "a", seeds=1, out_dir=str(tmp_path / "o"), seed_timeout_s=-60)


def test_paths_resolve_against_the_project_not_the_current_folder(project_preset, monkeypatch, capsys):
    name, d = project_preset
    docs = Path(artifacts.PROJECT) / "docs"
    monkeypatch.chdir(docs)
    rc, err = run(capsys, "gen-rtl", "--preset", name, "--lanes", "2")
    assert rc == 0, err
    assert (d / "rtl" / "manifest.json").exists() and not (docs / "build").exists()


def test_artifacts_are_0644(project_preset, tiny_model, capsys):
    name, d = project_preset
    old = os.umask(0o022)
    try:
        assert flow.main(["gen-rtl", "--preset", name, "--lanes", "2"]) == 0
        im.save(tiny_model, str(d / "again.zip"))
        artifacts.atomic_json(str(d / "x.json"), {"a": 1})
    finally:
        os.umask(old)
    for p in [d / "again.zip", d / "x.json", d / "testset.npz", *(d / "rtl").iterdir()]:
        assert oct(p.stat().st_mode & 0o777) == "0o644", p


def test_bench_does_not_rewrite_docs_by_default():
    import argparse
    from tools import bench
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert parser.parse_args([]).out is None          # main() resolves it to build/<preset>/bench/
    assert "--out docs/bench/synth_results.json" in (Path(artifacts.PROJECT) / "Makefile").read_text()


def test_sim_gates_refuses_a_missing_netlist_or_one_of_another_core(project_preset, tiny_model, capsys, tmp_path):
    name, d = project_preset
    generate_core(d, tiny_model)
    before = snapshot(d)
    rc, err = run(capsys, "sim", "--preset", name, "--gates", str(tmp_path / "netlist.json"))
    assert rc == 2 and "does not exist" in err and "flow.py synth" in err, err
    one_sentence(err, "sim")
    (tmp_path / "netlist.json").write_text("{}")
    (tmp_path / "report.json").write_text(json.dumps({"verilog_sha256": "0" * 64, "top": "spikingformer_core"}))
    rc, err = run(capsys, "sim", "--preset", name, "--gates", str(tmp_path / "netlist.json"))
    assert rc == 2 and "synthesised from another core" in err and "flow.py synth" in err, err
    one_sentence(err, "sim")
    assert snapshot(d) == before
