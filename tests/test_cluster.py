"""Distributed engines (cluster/): a 2-worker Dask LocalCluster on loopback gives the same results as one process,
for a sharded simulation and for an estimate-only exploration."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import cluster
from golden import intmodel as im
from flowerrors import FlowError
from rtl.gen import generate
from sim.check import check_images, shards_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the smallest shape of sim/test_engine.py
CONFIG = dict(T=2, input_bits=6, in_channels=2, image_size=[4, 4], tokenizer=[{"out": 16, "pool": False}],
              embed_dim=16, heads=1, blocks=1, mlp_hidden=48, num_classes=3, weight_bits=6)


def _square(x):
    return x * x


@pytest.mark.unit
def test_map_tasks_same_results_in_input_order_on_every_engine():
    items = list(range(7))
    expected = [x * x for x in items]
    assert cluster.map_tasks(_square, items) == expected
    assert cluster.map_tasks(_square, items, jobs=3) == expected
    assert cluster.map_tasks(_square, items, jobs=2, processes=True) == expected
    assert cluster.map_tasks(_square, items, jobs=2, scheduler="local") == expected


@pytest.mark.unit
def test_on_done_reports_every_task_once_with_its_result_on_every_engine():
    items = list(range(6))
    for kwargs in [{}, {"jobs": 3}, {"jobs": 2, "processes": True}, {"jobs": 2, "scheduler": "local"}]:
        seen = []
        cluster.map_tasks(_square, items, on_done=lambda i, r: seen.append((i, r)), **kwargs)
        assert sorted(seen) == [(x, x * x) for x in items], kwargs


@pytest.mark.unit
def test_bad_scheduler_and_jobs_are_user_errors():
    with pytest.raises(FlowError, match="not an address"):
        cluster.map_tasks(_square, [1], scheduler="myhost:8786")
    with pytest.raises(FlowError, match="--jobs 0 runs nothing"):
        cluster.map_tasks(_square, [1], jobs=0)


@pytest.mark.unit
def test_shards_cover_every_image_once():
    for n, count in [(1, 4), (5, 2), (360, 2), (7, 7), (10, 3)]:
        shards = shards_of(n, count)
        assert [i for s in shards for i in s] == list(range(n))
        assert len(shards) == min(n, count) and all(shards)


@pytest.mark.sim
def test_sharded_sim_on_a_dask_local_cluster_matches_one_process(tmp_path):
    model = im.random_intmodel(im.make_config(**CONFIG), seed=13, firing=0.1)
    rtl_dir = str(tmp_path / "rtl")
    generate(model, 16, rtl_dir)
    work = str(tmp_path / "sim")
    images = np.random.default_rng(3).integers(0, 64, size=(5, *model.input_shape))
    one = check_images(model, rtl_dir, images, work, results_name="cluster-1.json")
    messages = []
    dask = check_images(model, rtl_dir, images, work, results_name="cluster-dask.json", jobs=2, scheduler="local",
                        progress=messages.append)
    assert dask["workers"] == 2 and one["workers"] == 1
    # one progress line per finished shard, counting images: 2 or 3 first, whichever shard ends first, then 5
    done = [int(m.split("/")[0]) for m in messages if "images simulated" in m]
    assert done in ([2, 5], [3, 5]), messages
    assert one["mismatches"] == 0 and dask["mismatches"] == 0
    assert dask["per_image"] == one["per_image"]
    assert [r["cycles"] for r in one["per_image"]] == [r["exp_cycles"] for r in one["per_image"]]


@pytest.mark.unit
def test_estimate_only_explore_on_a_dask_local_cluster_matches_one_process(tmp_path):
    model = im.random_intmodel(im.make_config(**CONFIG), seed=13, firing=0.1)
    preset = tmp_path / "rand"
    preset.mkdir()
    im.save(model, str(preset / "intmodel.zip"))
    im.save_testset(str(preset / "testset.npz"),
                    np.random.default_rng(4).integers(0, 64, size=(3, *model.input_shape)), np.zeros(3, int))
    out = {}
    for name, extra in (("one", []), ("dask", ["--jobs", "2", "--scheduler", "local"])):
        proc = subprocess.run([sys.executable, "flow.py", "explore", "--preset", "rand", "--build", str(tmp_path),
                               "--lanes", "4", "8", "--synth", "0", "--images", "3", *extra],
                              cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[name] = json.loads((preset / "explore" / "explore.json").read_text())
        (preset / "explore" / "explore.json").unlink()
    assert [p["lanes"] for p in out["one"]["points"]] == [4, 8]
    assert out["dask"] == out["one"]
