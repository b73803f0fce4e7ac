"""flow.py report: the HTML references only files that exist, every plot is there, missing stages are named."""
import json
import os
import re
from html.parser import HTMLParser

import numpy as np
import pytest

import flow
from golden.intmodel import make_config, random_intmodel, save, save_testset

pytestmark = pytest.mark.unit

PLOTS = ("accuracy_history.png", "firing_rates.png", "layer_inputs.png", "attention_maps.png", "energy_per_layer.png")
CORE_PLOTS = ("cycles_per_layer.png", "latency_histogram.png")


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.anchors = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if key in a:
                self.refs.append(a[key])
        if "id" in a:
            self.anchors.add(a["id"])


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    d = build / "p"
    model = random_intmodel(make_config(), seed=2)
    save(model, str(d / "intmodel.zip"))
    rng = np.random.default_rng(0)
    save_testset(str(d / "testset.npz"), rng.integers(0, 17, size=(24, 1, 8, 8)), rng.integers(0, 10, size=24))
    (d / "metrics.json").write_text(json.dumps({
        "intmodel_sha256": model.sha256, "float_test_accuracy": 0.9512, "int_test_accuracy": 0.9388, "golden_equals_torch": True,
        "history": [{"phase": "qat", "train_accuracy": 0.5, "loss": 2.0}, {"phase": "qat", "train_accuracy": 0.8, "loss": 1.0},
                    {"phase": "fold"}, {"phase": "finetune", "train_accuracy": 0.9, "loss": 0.9}]}))
    return build


def run_report(build):
    assert flow.main(["report", "--build", str(build), "--preset", "p", "--images", "20"]) == 0
    out = build / "p" / "report"
    return out, (out / "index.html").read_text()


def test_html_references_only_existing_files_and_every_plot(preset):
    out, text = run_report(preset)
    links = Links()
    links.feed(text)
    files = [r for r in links.refs if not r.startswith("#")]
    internal = [r[1:] for r in links.refs if r.startswith("#")]
    assert sorted(files) == sorted(PLOTS)
    for name in files:
        assert not re.match(r"^[a-z]+:", name) and not name.startswith("/"), "only relative, offline references"
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000, name
    assert internal and set(internal) <= links.anchors


def test_missing_stages_are_named_with_their_command(preset):
    _, text = run_report(preset)
    assert "not run yet: run <code>python flow.py synth --preset p</code>" in text
    assert "not run yet: run <code>make sim PRESET=p</code>" in text or "cycle model" in text.lower()
    assert "+1.24 points" in text                        # 95.12 % float vs 93.88 % integer


def test_fig3_check_binary_inputs_everywhere_but_first_conv_and_head(preset):
    _, text = run_report(preset)
    rows = re.findall(r"<tr><td>([^<]+)</td><td>[\d,]+</td><td>[^<]+</td><td>(binary|multi-valued)</td><td>(\w+)</td>",
                      text)
    kinds = {name: kind for name, kind, _ in rows}
    assert kinds["tok0 (pixels)"] == "multi-valued" and kinds["head (Z)"] == "multi-valued"
    assert all(kind == "binary" for name, kind in kinds.items() if not name.startswith(("tok0", "head")))
    assert all(check == "ok" for _, _, check in rows)


def test_same_inputs_give_identical_files(preset):
    out, first = run_report(preset)
    images = {p: (out / p).read_bytes() for p in PLOTS + ("report.json",)}
    _, second = run_report(preset)
    assert first == second
    assert all((out / p).read_bytes() == data for p, data in images.items())


def test_synth_results_appear_in_the_page(preset):
    import shutil
    from golden.intmodel import load
    from rtl.gen import generate
    manifest = generate(load(str(preset / "p" / "intmodel.zip")), 16, str(preset / "p" / "rtl"))
    synth_dir = preset / "p" / "synth" / "ecp5"
    synth_dir.mkdir(parents=True, exist_ok=True)
    (synth_dir / "report.json").write_text(json.dumps({
        "status": "ok", "device": "LFE5U-85F-6CABGA381", "lut": 12345, "ff": 678, "bram": 9, "dsp": 0,
        "capacity": {"lut": 83640, "ff": 83640, "bram": 208, "dsp": 156}, "verilog_sha256": manifest["verilog_sha256"],
        "model_sha256": manifest["model_sha256"],
        "fmax_mhz": 111.5, "fmax_per_seed": [110.0, 111.5, 113.0], "critical_path": {"delay_ns": 8.9, "logic_levels": 7}}))
    try:
        out, text = run_report(preset)
        assert all((out / name).read_bytes()[:4] == b"\x89PNG" for name in CORE_PLOTS)
    finally:
        os.unlink(synth_dir / "report.json")
        shutil.rmtree(preset / "p" / "rtl")
        for name in CORE_PLOTS:
            (preset / "p" / "report" / name).unlink()
    assert "<td>12,345 (14.8 %)</td>" in text and "111.5" in text
    assert "not run yet: run <code>python flow.py synth" not in text
    # latency and throughput at the stored Fmax, with its source; fixed and event cycles per layer
    assert "at the stored Fmax of 111.5 MHz (median of 3 place-and-route seed(s)" in text
    assert "<th>fixed</th><th>event-driven</th>" in text


def test_exploration_plot_and_table_appear_in_the_page(preset):
    import shutil
    from tools.explore import pareto, plot
    explore_dir = preset / "p" / "explore"
    explore_dir.mkdir(parents=True, exist_ok=True)
    points = [{"lanes": 2, "cycles": 900_000.0, "lut": 5000, "ff": 2800, "bram": 60},
              {"lanes": 4, "cycles": 300_000.0, "lut": 7400, "ff": 4200, "bram": 64, "synth_lut": 7654,
               "synth_ff": 4100, "synth_bram": 63, "fmax_mhz": 101.25, "latency_us": 2963.0},
              {"lanes": 8, "cycles": 400_000.0, "lut": 9000, "ff": 6000, "bram": 70}]
    front = pareto(points)
    plot(points, front, str(explore_dir / "pareto.png"))
    from golden.intmodel import load
    (explore_dir / "explore.json").write_text(json.dumps({"points": points, "pareto_lanes": [q["lanes"] for q in front],
                                                          "model_sha256": load(str(preset / "p" / "intmodel.zip")).sha256}))
    try:
        out, text = run_report(preset)
    finally:
        shutil.rmtree(explore_dir)
    links = Links()
    links.feed(text)
    assert "pareto.png" in links.refs and (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert "Pareto lanes [2, 4]" in text                 # 8 lanes: more LUTs and more cycles than 4
    assert "<td>7,654</td>" in text and "<td>101.2</td>" in text and "<td>2,963</td>" in text
    (out / "pareto.png").unlink()


def test_missing_model_is_a_one_line_error(tmp_path, capsys):
    assert flow.main(["report", "--build", str(tmp_path), "--preset", "none"]) == 2
    err = capsys.readouterr().err
    assert "train-quant" in err and err.count("\n") == 1


# ------------------------------------------------------------------------------------------------ benchmark figures
# The confusion matrix, per-class accuracy, firing rates and latency distribution (tools/report_bench.py), on the
# shipped digits model and the first BENCH_N digits test images, each against an independent computation.

BENCH_N = 48
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from golden.intmodel import load
    from quant.data import load_digits
    from rtl.gen import generate
    model = load(os.path.join(ROOT, "models", "digits", "intmodel.zip"))
    _, _, x, y = load_digits()
    x, y = x[:BENCH_N], y[:BENCH_N]
    build = tmp_path_factory.mktemp("digits-build")
    d = build / "digits"
    save(model, str(d / "intmodel.zip"))
    save_testset(str(d / "testset.npz"), x, y)
    manifest = generate(model, 16, str(d / "rtl"))
    return {"model": model, "x": x, "y": y, "manifest": manifest, "build": build}


@pytest.fixture(scope="module")
def digits_pass(digits):
    from tools import report_bench
    # chunks of 5: the counts must add up across chunk boundaries (48 = 9 × 5 + 3)
    return report_bench.run_pass(digits["model"], digits["x"], digits["y"], digits["manifest"], chunk=5)


def test_confusion_matrix_and_per_class_accuracy_match_golden_predictions(digits, digits_pass):
    from golden.inference import run
    from tools import report_bench
    model, x, y = digits["model"], digits["x"], digits["y"]
    pred = np.array([int(run(model, x[i:i + 1]).classes[0]) for i in range(len(x))])   # one image at a time
    b = report_bench.stats(digits_pass, [str(c) for c in range(10)])
    cm = np.array(b["confusion"])
    assert cm.shape == (10, 10) and cm.sum() == BENCH_N
    assert np.trace(cm) == b["correct"] == int((pred == y).sum())
    assert b["accuracy"] == pytest.approx((pred == y).mean())
    for c, row in enumerate(b["per_class"]):
        assert row["images"] == int((y == c).sum()) == cm[c].sum()
        assert row["correct"] == int(((y == c) & (pred == c)).sum())
        assert row["accuracy"] == (pytest.approx(row["correct"] / row["images"]) if row["images"] else None)
        predicted = int((pred == c).sum())
        assert row["precision"] == (pytest.approx(row["correct"] / predicted) if predicted else None)
        for p in range(10):
            assert cm[c, p] == int(((y == c) & (pred == p)).sum())
    assert sum(r["correct"] for r in b["per_class"]) == b["correct"]


def test_firing_rates_equal_an_independent_count(digits, digits_pass):
    from golden.graph import steps
    from golden.inference import run
    from tools import report_bench
    model, x = digits["model"], digits["x"]
    b = report_bench.stats(digits_pass, [str(c) for c in range(10)])
    layers = [s for s in steps(model) if s.spikes]
    assert [r["layer"] for r in b["firing_rates"]] == [s.spikes for s in layers]
    # independent: per image, per timestep, the 1s of each LIF output over its cout × positions neurons
    ones = {s.spikes: 0 for s in layers}
    for i in range(len(x)):
        tr = run(model, x[i:i + 1], trace=True).trace
        for s in layers:
            v = tr[s.spikes]
            assert set(np.unique(v)) <= {0, 1}
            ones[s.spikes] += sum(int(v[t].sum()) for t in range(model.T))
    for s, r in zip(layers, b["firing_rates"]):
        neurons = s.cout * int(np.prod(s.shape))
        assert r["neurons"] == neurons
        assert r["spikes"] == ones[s.spikes]
        assert r["rate"] == pytest.approx(ones[s.spikes] / (len(x) * model.T * neurons))
        assert 0.0 <= r["rate"] <= 1.0
    assert any(r["rate"] > 0 for r in b["firing_rates"])


def test_firing_rate_on_a_hand_made_case():
    from tools import report_bench
    passed = {"classes": np.array([0, 1]), "labels": np.array([0, 0]), "T": 2, "cycles": None,
              "ones": {"a.spikes": 3, "b.spikes": 0}, "total": {"a.spikes": 2 * 2 * 6, "b.spikes": 2 * 2 * 4}}
    b = report_bench.stats(passed, ["x", "y"])
    assert b["firing_rates"] == [{"layer": "a.spikes", "rate": 3 / 24, "spikes": 3, "neurons": 6},
                                 {"layer": "b.spikes", "rate": 0.0, "spikes": 0, "neurons": 4}]
    assert b["confusion"] == [[1, 1], [0, 0]] and b["per_class"][1]["accuracy"] is None
    assert b["latency"] is None
    from flowerrors import FlowError
    with pytest.raises(FlowError, match="labels run from 0 to 2 but the model has 2 classes"):
        report_bench.stats({**passed, "labels": np.array([0, 2])}, ["x", "y"])


def test_latency_statistics_equal_the_cycle_model(digits, digits_pass):
    from hls_models import engine_cycles
    from tools import report_bench
    model, x, manifest = digits["model"], digits["x"], digits["manifest"]
    from golden.inference import run
    ref = run(model, x, trace=True)
    cycles = np.array([engine_cycles.exp_cycles(model, ref, i, manifest) for i in range(len(x))])
    assert list(digits_pass["cycles"]) == list(cycles)
    b = report_bench.stats(digits_pass, [str(c) for c in range(10)], clock=(50.0, "test"))
    lat = b["latency"]
    c = lat["cycles"]
    assert c["min"] == cycles.min() and c["max"] == cycles.max()
    assert c["mean"] == pytest.approx(cycles.mean()) and c["std"] == pytest.approx(cycles.std())
    for p in report_bench.PERCENTILES:
        assert c[f"p{p}"] == pytest.approx(np.percentile(cycles, p))
    assert c["min"] <= c["p1"] <= c["p50"] <= c["p99"] <= c["max"]
    assert lat["clock_mhz"] == 50.0 and lat["us"]["mean"] == pytest.approx(cycles.mean() / 50.0)
    assert lat["us"]["max"] == pytest.approx(cycles.max() / 50.0)
    h = lat["histogram"]
    assert sum(h["counts"]) == len(x) and len(h["edges"]) == len(h["counts"]) + 1
    assert h["edges"][0] == cycles.min() and h["edges"][-1] == cycles.max()


def test_sharded_pass_equals_one_process_and_reports_progress(digits, digits_pass, monkeypatch):
    from tools import report_bench
    monkeypatch.setattr(report_bench, "PROGRESS_SECONDS", 0)
    lines = []
    one = report_bench.run_pass(digits["model"], digits["x"][:12], digits["y"][:12], digits["manifest"], chunk=5,
                                progress=lines.append)
    assert lines[-1].startswith("report: benchmark pass 12/12 images") and len(lines) == 3     # chunks 5, 5, 2
    sharded = report_bench.run_pass(digits["model"], digits["x"], digits["y"], digits["manifest"], chunk=7, jobs=3)
    for key in ("classes", "labels", "cycles"):
        assert list(sharded[key]) == list(digits_pass[key])
        assert list(one[key]) == list(digits_pass[key][:12])
    assert sharded["ones"] == digits_pass["ones"] and sharded["total"] == digits_pass["total"]


def test_core_agreement_counts_the_simulated_images():
    from tools.report_bench import core_agreement
    sim = {"mismatches": 0, "per_image": [{"image": 0, "class": 3, "cycles": 100}, {"image": 1, "class": 5, "cycles": 90},
                                          {"image": 7, "class": 1, "cycles": 1}]}          # image 7: not in this set
    assert core_agreement(sim, np.array([3, 4]), np.array([100, 90]), np.array([3, 5])) == \
        {"images": 2, "same_class": 1, "mismatches": 0, "same_cycles": 2, "file": "sim/results.json", "subset": "all",
         "cycles": {"mean": 95.0, "min": 90, "max": 100}, "core_correct": 2, "golden_correct": 1}
    assert core_agreement(None, np.array([3]), None) is None


def test_a_stratified_simulation_is_mapped_to_its_test_images(digits, digits_pass, tmp_path):
    """results-stratified<N>.json rows are positions in the subset; image_indices places them in the test set. Stale
    files (another core) and other simulators' cross-checks are not read; the largest current run wins."""
    from tools.report_bench import core_agreement, simulation
    model, manifest = digits["model"], digits["manifest"]
    classes, cycles, labels = digits_pass["classes"], digits_pass["cycles"], digits_pass["labels"]
    idx = [3, 17, 30]
    rows = [{"image": k, "class": int(classes[i]), "cycles": int(cycles[i])} for k, i in enumerate(idx)]
    rows[1]["class"] = (rows[1]["class"] + 1) % 10              # the core disagrees on test image 17
    own = {"model_sha256": model.sha256, "verilog_sha256": manifest["verilog_sha256"], "mismatches": 1}
    (tmp_path / "results-stratified3.json").write_text(json.dumps({**own, "subset": "stratified", "image_indices": idx,
                                                                   "per_image": rows}))
    (tmp_path / "results-first2.json").write_text(json.dumps({**own, "image_indices": [0, 1], "per_image": rows[:2]}))
    big = [{"image": k, "class": 0, "cycles": 1} for k in range(10)]
    (tmp_path / "results-first10.json").write_text(json.dumps({**own, "verilog_sha256": "0" * 64, "per_image": big}))
    (tmp_path / "results-stratified10-icarus.json").write_text(json.dumps({**own, "per_image": big}))
    sim = simulation(str(tmp_path), model.sha256, manifest["verilog_sha256"])
    assert sim["file"] == "sim/results-stratified3.json" and [r["index"] for r in sim["rows"]] == idx
    core = core_agreement(sim, classes, cycles, labels)
    assert core["images"] == 3 and core["same_class"] == 2 and core["same_cycles"] == 3
    assert core["golden_correct"] == int(sum(classes[i] == labels[i] for i in idx))
    assert core["core_correct"] == int(sum(r["class"] == labels[i] for r, i in zip(rows, idx)))
    assert simulation(str(tmp_path), model.sha256, None) is None
    assert simulation(str(tmp_path / "none"), model.sha256, manifest["verilog_sha256"]) is None


def test_class_names_come_from_the_dataset():
    from golden.intmodel import load
    from quant.data import CLASS_NAMES, class_names
    from tools.report_bench import dataset_of
    model = load(os.path.join(ROOT, "models", "digits", "intmodel.zip"))
    assert dataset_of("fashion-mnist", model, None) == "fashion-mnist"
    assert dataset_of("digits", model, {"train_config": {"dataset": "cifar10"}}) == "cifar10"
    assert dataset_of("elsewhere", model, None) == "digits"                 # the model's meta names its preset
    names = class_names("fashion-mnist", 10)
    assert names[0] == "T-shirt/top" and names[9] == "Ankle boot" and len(set(names)) == 10
    assert class_names("digits", 10) == [str(i) for i in range(10)]
    assert class_names("fashion-mnist", 3) == ["0", "1", "2"] and class_names(None, 2) == ["0", "1"]
    assert all(len(v) == 10 for v in CLASS_NAMES.values())


def test_report_writes_the_benchmark_figures_on_digits(digits, digits_pass):
    from tools import report_bench
    build = digits["build"]
    assert flow.main(["report", "--build", str(build), "--preset", "digits", "--images", "8",
                      "--clock-mhz", "40"]) == 0
    out = build / "digits" / "report"
    b = json.loads((out / "report.json").read_text())
    expect = report_bench.stats(digits_pass, [str(c) for c in range(10)], clock=(40.0, "--clock-mhz"))
    for key in ("confusion", "per_class", "firing_rates", "accuracy", "correct", "latency"):
        assert b[key] == json.loads(json.dumps(expect[key])), key
    assert b["images"] == BENCH_N and b["dataset"] == "digits" and b["model_sha256"] == digits["model"].sha256
    assert b["source"] == f"the golden integer model over all {BENCH_N} test images"
    text = (out / "index.html").read_text()
    for anchor in ("confusion-matrix-and-per-class-accuracy", "firing-rates", "latency-distribution"):
        assert f'id="{anchor}"' in text
    assert f"<b>{b['correct']} of {BENCH_N} correct" in text
    assert "Time at <b>40.0 MHz</b> (--clock-mhz)" in text
    assert (out / "latency_histogram.png").read_bytes()[:4] == b"\x89PNG"
    assert "A simulation of the current core" in text and b["core"] is None
    assert flow.main(["report", "--build", str(build), "--preset", "digits", "--images", "8",
                      "--clock-mhz", "40", "--bench-images", "10"]) == 0
    assert json.loads((out / "report.json").read_text())["images"] == 10
    assert "over the first 10 of the 48 test images" in (out / "index.html").read_text()
    # a simulation of the whole test set: the core's figures appear beside golden's
    sim_dir = build / "digits" / "sim"
    sim_dir.mkdir()
    rows = [{"image": i, "class": int(c), "cycles": int(n)} for i, (c, n) in
            enumerate(zip(digits_pass["classes"], digits_pass["cycles"]))]
    (sim_dir / "results.json").write_text(json.dumps({
        "model_sha256": digits["model"].sha256, "verilog_sha256": digits["manifest"]["verilog_sha256"],
        "images": BENCH_N, "mismatches": 0, "per_image": rows}))
    try:
        assert flow.main(["report", "--build", str(build), "--preset", "digits", "--images", "8"]) == 0
    finally:
        import shutil
        shutil.rmtree(sim_dir)
    b = json.loads((out / "report.json").read_text())
    assert b["core"]["same_class"] == b["core"]["same_cycles"] == BENCH_N and b["core"]["core_correct"] == b["correct"]
    text = (out / "index.html").read_text()
    assert f"<b>{b['correct']} of {BENCH_N} correct ({100 * b['accuracy']:.2f} %)</b>, golden {b['correct']}" in text
    assert f"(the RTL simulation ran {BENCH_N} of them: its class equals golden&#x27;s on {BENCH_N}" in text
    # no synthesis in this build and no --clock-mhz: the stored benchmark's Fmax when it measured this very Verilog,
    # else the board top's default clock
    with open(os.path.join(ROOT, "docs", "bench", "synth_results.json")) as f:
        same = [pt for pt in json.load(f)["points"]
                if pt.get("manifest", {}).get("verilog_sha256") == digits["manifest"]["verilog_sha256"]]
    if same:
        assert f"stored benchmark docs/bench/synth_results.json, {same[0]['lanes']} lanes" in text
        assert f"Time at <b>{same[0]['synth']['fmax_mhz']:.1f} MHz</b>" in text
    else:
        assert "board top&#x27;s default core clock" in text


@pytest.mark.parametrize("option", [["--bench-images", "0"], ["--clock-mhz", "0"], ["--clock-mhz", "nan"], ["--jobs", "0"]])
def test_bad_benchmark_options_are_one_line_errors(digits, option, capsys):
    assert flow.main(["report", "--build", str(digits["build"]), "--preset", "digits", *option]) == 2
    err = capsys.readouterr().err
    assert option[0] in err and err.count("\n") == 1


def test_stored_digits_figures_regenerate(digits):
    """docs/bench/report_digits.json (the README's digits benchmark figures) is what the report computes for the
    shipped model on its whole test set, and its accuracy is the one training measured. The latency figures belong to
    the core they were computed for: compared when the generator still makes that core (a changed engine makes
    another one; then regenerate the file with the command below)."""
    from quant.data import class_names, load_digits
    from tools import report_bench
    stored = json.loads(open(os.path.join(ROOT, "docs", "bench", "report_digits.json")).read())
    redo = "python flow.py report --preset digits && cp build/digits/report/report.json docs/bench/report_digits.json"
    assert stored["model_sha256"] == digits["model"].sha256, f"stale: run `{redo}`"
    same_core = stored["verilog_sha256"] == digits["manifest"]["verilog_sha256"] and stored["lanes"] == 16
    _, _, x, y = load_digits()
    passed = report_bench.run_pass(digits["model"], x, y, digits["manifest"] if same_core else None, chunk=256)
    lat = stored["latency"]
    b = report_bench.stats(passed, class_names("digits", 10), clock=(lat["clock_mhz"], lat["clock_source"]))
    keys = ["images", "correct", "accuracy", "confusion", "per_class", "firing_rates", "class_names"]
    for key in keys + (["latency"] if same_core else []):
        assert stored[key] == json.loads(json.dumps(b[key])), f"{key} differs: run `{redo}`"
    metrics = json.loads(open(os.path.join(ROOT, "models", "digits", "metrics.json")).read())
    assert stored["accuracy"] == pytest.approx(metrics["int_test_accuracy"]) and stored["images"] == len(y)
