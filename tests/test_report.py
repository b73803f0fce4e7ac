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
CORE_PLOTS = ("cycles_per_layer.png", "cycles_histogram.png")


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
    images = {p: (out / p).read_bytes() for p in PLOTS}
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
