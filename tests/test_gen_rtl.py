"""gen-rtl: deterministic output, layout invariants, no multipliers, clear errors."""
import json
import os
import re

import numpy as np
import pytest

from flowerrors import FlowError
from golden import intmodel as im
from golden.inference import run
from rtl.engine_plan import build_plan
from rtl.gen import generate

import flow

pytestmark = pytest.mark.unit


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


def test_lanes_and_head_dimension_must_divide_one_another():
    model = im.random_intmodel(seed=25)        # d = 16: every power of two works
    for lanes in (1, 8, 16, 32, 64):
        assert build_plan(model, lanes).lanes == lanes
    with pytest.raises(FlowError, match="not a power of two"):
        build_plan(model, 12)
    odd = im.random_intmodel(im.make_config(tokenizer=[{"out": 8, "pool": False}, {"out": 12, "pool": True}],
                                            embed_dim=12, heads=2, mlp_hidden=24), seed=25)    # d = 6
    with pytest.raises(FlowError, match="the head dimension 6 do not divide one another"):
        build_plan(odd, 4)


def test_gen_rtl_cli_errors_are_one_sentence(tmp_path, capsys):
    assert flow.main(["gen-rtl", "--model", str(tmp_path / "none.zip"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "train-quant" in err
    assert not os.path.exists(tmp_path / "o")


def test_manifest_memories_are_the_memories_in_the_verilog(tmp_path):
    """One source of truth: the resource model reads the memory parts from the manifest, so they must be exactly
    the memories the generated Verilog declares (depth x width, each part once per read-port copy it needs)."""
    manifest = generate(im.random_intmodel(seed=21), 8, str(tmp_path))
    text = (tmp_path / "core.v").read_text()
    declared = sorted((int(d) + 1, int(w) + 1) for w, d in
                      re.findall(r"^\s*reg \[(\d+):0\] \w+ \[(\d+):0\];", text, flags=re.M))
    listed = sorted((d, w) for mem in manifest["memories"].values() for d, w in mem["parts"])
    assert declared == listed


def test_manifest_layer_fields_are_the_widths_in_the_verilog(tmp_path):
    """The resource model reads the layer-table field widths and the tap positions' width from the manifest: they
    must be what the generated output loops declare for tap (0, 0)'s column and row, and wide enough for every
    layer's values."""
    manifest = generate(im.random_intmodel(seed=22), 8, str(tmp_path))
    text = (tmp_path / "core.v").read_text()
    fields = manifest["layer_fields"]
    for loop in ("issue_loop", "output_loop"):
        module = text[text.index(f"module \\spikingformer_core.{loop} "):]
        module = module[:module.index("endmodule")]
        for register in ("ix", "iy"):
            (msb,) = re.findall(rf"^\s*reg (?:signed )?\[(\d+):0\] {register} = ", module, flags=re.M)
            assert int(msb) + 1 == fields["position_width"], (loop, register)
    for layer in manifest["layer_table"]:
        for f in ("Wi", "Hi", "Wo", "Ho", "DP", "Gout", "Gin"):
            assert layer[f] < 2 ** fields["widths"][f]
        # a tap's column / row runs from -1 to the map size + 1, signed
        assert max(layer["Wi"], layer["Hi"]) + 1 < 2 ** (fields["position_width"] - 1)

def _timing_leaves(timing, prefix=()):
    for key, value in timing.items():
        if isinstance(value, dict):
            yield from _timing_leaves(value, prefix + (key,))
        else:
            yield prefix + (key,)


def test_cycle_model_reads_every_timing_figure_from_the_manifest(tmp_path):
    """The cycle model restates no latency: raising any one of the manifest's timing figures by one cycle changes
    its prediction (acc_latency is documentation: the schedule uses drain, which is derived from it; debug_read is
    the read-out port's latency, which the simulation harness reads, outside an inference)."""
    import copy
    from hls_models import engine_cycles
    model = im.random_intmodel(im.make_config(tokenizer=[{"out": 8, "pool": False}, {"out": 16, "pool": True}],
                                              embed_dim=16, heads=1, blocks=1, mlp_hidden=32, num_classes=4),
                               seed=3, firing=0.3)
    manifest = generate(model, 8, str(tmp_path))
    images = np.random.default_rng(1).integers(0, 1 << model.input_bits, size=(1, *model.input_shape))
    ref = run(model, images, trace=True)
    base = engine_cycles.exp_cycles(model, ref, 0, manifest)
    for path in _timing_leaves(manifest["timing"]):
        if path in {("acc_latency",), ("drain",), ("debug_read",)}:
            continue
        altered = copy.deepcopy(manifest)
        node = altered["timing"]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] += 1
        assert engine_cycles.exp_cycles(model, ref, 0, altered) > base, path


def test_cycle_model_refuses_a_manifest_from_an_older_generator(tmp_path):
    """A build/ core from before a timing figure existed: one sentence that names the figure and gen-rtl."""
    from golden.errors import ArtifactError
    from hls_models import engine_cycles
    model = im.random_intmodel(seed=5, firing=0.3)
    manifest = generate(model, 8, str(tmp_path))
    del manifest["timing"]["output_seam"]
    images = np.random.default_rng(0).integers(0, 1 << model.input_bits, size=(1, *model.input_shape))
    with pytest.raises(ArtifactError, match=r"no timing figure 'output_seam'.*rerun `python flow.py gen-rtl`"):
        engine_cycles.exp_cycles(model, run(model, images, trace=True), 0, manifest)


def test_event_bound_counts_the_events_entering_the_lanes(tmp_path):
    """layer_events against a direct count from the golden trace, and no layer faster than its event bound."""
    from golden.primitives import pack_words
    from hls_models import engine_cycles
    model = im.random_intmodel(seed=26, firing=0.3)
    lanes = 8
    manifest = generate(model, lanes, str(tmp_path))
    images = np.random.default_rng(2).integers(0, 1 << model.input_bits, size=(2, *model.input_shape))
    ref = run(model, images, trace=True)
    for i in range(2):
        events = engine_cycles.layer_events(model, ref, i, lanes)
        cycles = engine_cycles.layer_cycles(model, ref, i, manifest)
        assert set(events) == set(cycles) and all(cycles[k] >= events[k] for k in cycles)
        # fc1 reads mlp_spikes: every non-zero (channel, token) word enters once per output lane group
        words = pack_words(ref.trace["blk0.mlp_spikes"][:, i])               # [C, N]
        assert events["blk0.fc1"] == int((words != 0).sum()) * (-(-model.mlp_hidden // lanes))
        # the first conv: every set pixel bit, once per 3x3 tap that covers it, per output lane group
        px = ref.images[i]
        bits = sum(int(((px >> b) & 1).sum()) for b in range(model.input_bits))
        assert events["tok0"] <= 9 * bits * (-(-model.stage_shapes[0][1] // lanes)) and events["tok0"] > 0


def test_weight_rom_leaves_out_each_channels_common_power_of_two():
    # the shipped digits model: its stream writers carry the residual stream's scale alignment in their weights
    model = im.load(os.path.join(os.path.dirname(__file__), "..", "models", "digits", "intmodel.zip"))
    plan = build_plan(model, 8)
    from golden import graph
    from rtl.engine_plan import LANE_SHIFT_MAX
    shifted = 0
    for step in graph.steps(model):
        if not step.weighted:
            continue
        entry = next(e for e in plan.layers if e["name"] == step.name)
        w = model[step.name + ".w"]
        w = w.reshape(w.shape[0], w.shape[1], -1)          # [cout, cin, taps]
        for co in range(step.cout):
            g, lane = divmod(co, 8)
            shift = plan.param_rows[entry["p_base"] + g][2][lane]
            rows = [plan.weight_rows[entry["w_base"] + g * entry["R"] + tap * step.cin + ci][lane]
                    for tap in range(w.shape[2]) for ci in range(step.cin)]
            assert [r << shift for r in rows] == [int(w[co, ci, tap]) for tap in range(w.shape[2])
                                                  for ci in range(step.cin)], (step.name, co)
            # the largest such power: one more would not divide every weight (or the cap is reached)
            assert shift == LANE_SHIFT_MAX or any(r % 2 for r in rows) or not any(rows), (step.name, co, shift)
            shifted += shift > 0
    assert shifted > 0
    assert plan.widths["weight"] < max(int(np.abs(model[s.name + ".w"]).max()) for s in graph.steps(model)
                                       if s.weighted).bit_length() + 1
