"""Stored results and the README: README's results table must say what the stored results say.

docs/bench/synth_results.json (`make bench`) records, per lane count, the model and Verilog hashes it was measured on;
docs/bench/digits_seeds.json (`python flow.py seeds --out docs/bench/digits_seeds.json`) the accuracy of the default
recipe over several training seeds. Every stored result that names a core (synthesis, cycle table, report) must
describe a core that gen-rtl still generates from the shipped model: a change to the RTL or the model makes the
stored figures stale, and the test says which file to regenerate and how.
"""
import json
import re
from pathlib import Path

import pytest


ROOT = Path(__file__).parent.parent
BENCH = ROOT / "docs" / "bench" / "synth_results.json"
SEEDS = ROOT / "docs" / "bench" / "digits_seeds.json"
README = ROOT / "README.md"
# Stored result -> the command that regenerates it.
STORED_CORES = {
    "synth_results.json": "make bench (or python flow.py bench --out docs/bench/synth_results.json "
                          "--cycles-out docs/bench/cycles.json)",
    "cycles.json": "make bench (or python flow.py bench --cycles-only --cycles-out docs/bench/cycles.json)",
    "report_digits.json": "python flow.py report --preset digits && cp build/digits/report/report.json "
                          "docs/bench/report_digits.json",
    "fashion_mnist_synth.json": "python flow.py gen-rtl --preset fashion-mnist --lanes 8 && python flow.py synth "
                                "--preset fashion-mnist --seeds 3 --jobs 2 --seed-timeout 25 && cp "
                                "build/fashion-mnist/synth/ecp5/report.json docs/bench/fashion_mnist_synth.json",
}


def readme_row(label: str) -> str:
    rows = [ln for ln in README.read_text().splitlines() if ln.startswith(f"| {label}")]
    assert len(rows) == 1, f"README.md has {len(rows)} results rows starting with {label!r}"
    return rows[0]


@pytest.mark.unit
def test_readme_synthesis_rows_match_the_stored_benchmark():
    bench = json.loads(BENCH.read_text())
    points = {p["lanes"]: p for p in bench["points"]}
    row = readme_row("ECP5-85F speed 6")
    p16 = points[int(re.search(r"ECP5-85F speed 6, (\d+) lanes", row).group(1))]["synth"]
    assert f"**{p16['fmax_mhz']:.1f} MHz** median of {len(p16['fmax_per_seed'])} seeds" in row, row
    for value, unit in ((p16["lut"], "LUT4"), (p16["ff"], "FF"), (p16["bram"], "DP16KD")):
        assert f"{value:,} {unit}" in row, (unit, row)
    assert f"({100 * p16['lut'] / 83640:.1f} %)" in row
    row = readme_row("resource model vs synthesis")
    lanes = sorted(points)
    for key in ("lut", "ff", "bram"):
        cell = re.search(rf"{key.upper()} ([^,|]+) %", row).group(1)
        want = " / ".join(f"{100 * points[n]['relative_error'][key]:+.1f}".replace("-", "−") for n in lanes)
        assert cell.strip() == want, (key, cell, want)


@pytest.mark.unit
def test_readme_accuracy_row_matches_the_seed_sweep():
    seeds = json.loads(SEEDS.read_text())
    assert seeds["preset"] == "digits" and len(seeds["runs"]) >= 2
    row = readme_row("digits accuracy")
    for key, label in (("float_test_accuracy", "float"), ("int_test_accuracy", "integer")):
        s = seeds["summary"][key]
        assert f"{label} {100 * s['mean']:.2f} ± {100 * s['std']:.2f} %" in row, (label, row)
    assert f"over {len(seeds['runs'])} training seeds" in row and "`python flow.py seeds`" in row
    default = next(r for r in seeds["runs"] if r["seed"] == 0)
    assert f"seed 0, the default model: float {100 * default['float_test_accuracy']:.2f} %, integer " \
           f"{100 * default['int_test_accuracy']:.2f} %" in row, row


@pytest.mark.unit
def test_readme_fashion_mnist_rows_match_the_shipped_model():
    metrics = json.loads((ROOT / "models" / "fashion-mnist" / "metrics.json").read_text())
    row = readme_row("fashion-mnist test accuracy")
    assert f"float QAT {100 * metrics['float_test_accuracy']:.2f} %" in row, row
    assert f"**integer {100 * metrics['int_test_accuracy']:.2f} %**" in row, row
    assert metrics["test_images"] == 10000 and metrics["golden_equals_torch"]
    assert f"{metrics['params']:,}" in readme_row("fashion-mnist parameters")


@pytest.mark.unit
def test_readme_fashion_mnist_synthesis_row_matches_the_stored_report():
    synth = json.loads((ROOT / "docs" / "bench" / "fashion_mnist_synth.json").read_text())
    row = readme_row("fashion-mnist on ECP5-85F")
    assert f"{synth['lanes']} lanes" in row, row
    assert f"**Fmax {synth['fmax_mhz']:.1f} MHz, median of {len(synth['fmax_per_seed'])} seeds**" in row, row
    per_seed = " / ".join(f"{f:.1f}" for f in synth["fmax_per_seed"])
    assert per_seed in row, (per_seed, row)
    for value, unit in ((synth["lut"], "LUT4"), (synth["ff"], "FF"), (synth["bram"], "DP16KD"), (synth["dsp"], "DSP")):
        assert f"{value:,} {unit}" in row, (unit, row)
    assert f"({100 * synth['bram'] / synth['capacity']['bram']:.1f} %" in row, row
    cycles = readme_row("fashion-mnist cycles per inference")
    assert f"at {synth['fmax_mhz']:.1f} MHz" in cycles, cycles


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(STORED_CORES))
def test_stored_results_describe_rtl_that_gen_rtl_generates_today(name, tmp_path):
    from golden.intmodel import load
    from rtl.gen import generate
    stored = json.loads((ROOT / "docs" / "bench" / name).read_text())
    preset = stored["preset"]
    model = load(str(ROOT / "models" / preset / "intmodel.zip"))
    model_hash = stored.get("intmodel_sha256", stored.get("model_sha256"))
    assert model_hash == model.sha256, \
        f"docs/bench/{name} was measured on model {model_hash[:12]}, not the shipped {model.sha256[:12]}; " \
        f"rerun `{STORED_CORES[name]}`"
    points = stored["points"] if "points" in stored else [stored]
    assert points
    for point in points:
        lanes = point["lanes"]
        manifest = generate(model, lanes, str(tmp_path / f"P{lanes}"))
        assert point.get("verilog_sha256") == manifest["verilog_sha256"], \
            f"docs/bench/{name} ({lanes} lanes) describes Verilog that gen-rtl no longer generates; " \
            f"rerun `{STORED_CORES[name]}`"
