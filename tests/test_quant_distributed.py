"""torchrun: data-parallel training in 2 processes on loopback (gloo), rank 0 writes the artifacts."""
import json
import os
import subprocess
import sys

import pytest

from golden import intmodel as im

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--epochs", "1", "--finetune-epochs", "1", "--set", "embed_dim=16", "--set", "heads=2",
        "--set", "mlp_hidden=32", "--set", "warmup_epochs=0", "--no-qonnx"]


@pytest.mark.train
def test_torchrun_two_processes_train_one_epoch_and_the_result_loads(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "flow.py", "train-quant", "--preset", "digits", "--out", str(tmp_path), *TINY],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "torchrun: rank 0 of 2 (gloo)" in proc.stderr and "torchrun: rank 1 of 2 (gloo)" in proc.stderr
    model = im.load(str(tmp_path / "intmodel.zip"))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["intmodel_sha256"] == model.sha256 and metrics["golden_equals_torch"]
    assert [h["phase"] for h in metrics["history"]] == ["qat", "fold", "finetune"]
    assert all(h["loss"] == h["loss"] for h in metrics["history"] if "loss" in h)      # finite, not NaN
    # only rank 0 wrote: one checkpoint, no temp files left by a second writer
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "intmodel.zip", "metrics.json",
                                                          "testset.npz"]
