"""gen-rtl: deterministic output, layout invariants, no multipliers, clear errors."""
import json
import os
import re

import numpy as np
import pytest

from golden import intmodel as im
from golden.errors import FlowError
from rtl.engine_plan import build_plan
from rtl.gen import generate

import flow


def test_gen_rtl_twice_gives_byte_identical_files(tmp_path):
    model = im.random_intmodel(seed=21)
    path = str(tmp_path / "m.zip")
    im.save(model, path)
    for out in ("a", "b"):
        assert flow.main(["gen-rtl", "--model", path, "--lanes", "8", "--out", str(tmp_path / out)]) == 0
    names = sorted(os.listdir(tmp_path / "a"))
    assert names == ["core.v", "manifest.json", "weights.hex"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["model_sha256"] == model.sha256 and manifest["top"] == "spikingformer_core"


def test_generated_verilog_has_no_multiplier(tmp_path):
    manifest = generate(im.random_intmodel(seed=22), 16, str(tmp_path))
    text = (tmp_path / "core.v").read_text()
    # Amaranth writes a data multiplication as `a * b`; there must be none in the core.
    assert not re.search(r"[\w\]\)]\s\*\s[\w\(]", text)
    assert manifest["dims"]["layers"] == 16


def test_weight_rom_layout_matches_the_model():
    model = im.random_intmodel(seed=23)
    plan = build_plan(model, 8)
    w = model["blk0.fc1.w"]                    # [Ch, C], 1x1: row = w_base + group·C + cin
    entry = next(e for e in plan.layers if e["name"] == "blk0.fc1")
    g, cin = 3, 17
    row = plan.weight_rows[entry["w_base"] + g * entry["R"] + cin]
    assert row == [int(v) for v in w[g * 8:(g + 1) * 8, cin]]
    w0 = model["tok1.w"]                       # 3x3: row = w_base + group·9·Cin + tap·Cin + cin
    entry = next(e for e in plan.layers if e["name"] == "tok1")
    cin_count = w0.shape[1]
    row = plan.weight_rows[entry["w_base"] + 1 * entry["R"] + 5 * cin_count + 2]
    assert row == [int(v) for v in w0[8:16, 2, 1, 2]]


def test_act_regions_do_not_overlap():
    plan = build_plan(im.random_intmodel(seed=24), 4)
    spans = sorted((r["base"], r["base"] + r["positions"] * r["groups"]) for r in plan.regions.values())
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    assert spans[-1][1] == plan.act_rows


def test_lanes_must_divide_the_head_dimension():
    model = im.random_intmodel(seed=25)        # d = 16
    with pytest.raises(FlowError, match="does not divide the head dimension 16"):
        build_plan(model, 32)
    with pytest.raises(FlowError, match="not a power of two"):
        build_plan(model, 12)


def test_gen_rtl_cli_errors_are_one_sentence(tmp_path, capsys):
    assert flow.main(["gen-rtl", "--model", str(tmp_path / "none.zip"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "train-quant" in err
    assert not os.path.exists(tmp_path / "o")
