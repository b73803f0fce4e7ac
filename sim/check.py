"""The checker: the core's results against golden traces and the cycle model, image by image.

Two benches feed it. The fast harness (sim/harness.py, default) runs whole shards of images inside Verilator or
Icarus and compares every image there (class, logits, cycles, overflow flag, every activation-RAM row); only the
images that differ come back with their rows, which this checker decodes so the report names the first layer,
timestep, token and channel. The cocotb bench (sim/tb_engine.py, bench="cocotb") reads everything of every image
through Python and is kept as the reference (and for waveforms).
"""
from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import numpy as np

from flowerrors import FlowError
from golden import compare
from golden.artifacts import atomic_write
from golden.inference import run
from hls_models.engine_cycles import exp_cycles

from .engine_sim import decode_rows, run_images


def image_problem(one: dict, rec: dict, exp_class: int, expected_cycles: int, manifest: dict) -> str | None:
    """The first difference of one image's record from its golden trace `one` (batch of 1), or None."""
    if rec.get("timeout"):
        return "the core did not raise done within the harness's cycle limit"
    if "rows" in rec:
        dut = decode_rows(rec["rows"], manifest)
    else:
        dut = {}
    dut["logits"] = np.asarray([rec["logits"]], dtype=np.int64)
    problem = compare.first_mismatch(one, dut)
    if problem is None and rec["class"] != exp_class:
        problem = f"class: expected {exp_class}, got {rec['class']}"
    if problem is None and rec["overflow"]:
        problem = "the core's overflow flag is set: a value left its analysed width"
    if problem is None and rec["cycles"] != expected_cycles:
        problem = f"cycles: the model predicts {expected_cycles}, the RTL took {rec['cycles']}"
    return problem


# images per harness run: enough to amortise the simulator's start (milliseconds), few enough that a long
# regression reports progress every shard even on one worker
SHARD_IMAGES = 100


def shards_of(n: int, count: int) -> list[list[int]]:
    """Image indices split into `count` contiguous shards of near-equal size (none empty)."""
    count = max(1, min(count, n))
    bounds = np.linspace(0, n, count + 1).round().astype(int)
    return [list(range(bounds[i], bounds[i + 1])) for i in range(count)]


def _harness_records(model, manifest, sources, images, ref, expected, work_dir, simulator, jobs, scheduler,
                     full_readout, progress, gates=False):
    from cluster import map_tasks

    from . import harness
    command = harness.build(sources, manifest, work_dir, simulator, progress=progress, gates=gates)
    bits, mask = harness.row_bits(manifest, ref.trace)
    shards = shards_of(len(images), max(jobs, -(-len(images) // SHARD_IMAGES)))
    texts = []
    for shard in shards:
        texts.append(harness.job_text(manifest, images[shard], shard, ref.classes[shard], ref.logits[shard],
                                      [expected[i] for i in shard], bits[shard], mask,
                                      flags=[1 if full_readout else 0] * len(shard)))
    os.makedirs(work_dir, exist_ok=True)
    task = functools.partial(_run_shard, command, manifest=manifest)
    started = time.time()
    checked = [0]

    def shard_done(index, out):
        checked[0] += len(shards[index])
        if len(shards) > 1:
            progress(f"{checked[0]}/{len(images)} images simulated ({time.time() - started:.0f} s)")
    outs = map_tasks(task, texts, jobs=jobs, scheduler=scheduler, key="sim-shard", on_done=shard_done)
    wall = time.time() - started
    records = {}
    for out in outs:
        records.update(out["records"])
    missing = [i for i in range(len(images)) if i not in records]
    if missing:
        raise RuntimeError(f"the harness returned no result for {len(missing)} image(s), first {missing[0]} "
                           f"(a timeout stops its shard); see the logs under {work_dir}")
    timing = {"wall_seconds": wall, "workers": min(jobs, len(shards)), "shards": len(shards),
              "worker_cycles_per_second": [o["cycles"] / o["seconds"] for o in outs if o["cycles"]],
              "worker_cycles_per_cpu_second": [o["cycles"] / max(o["cpu_seconds"], 1e-6) for o in outs
                                               if o["cycles"]]}
    return [records[i] for i in range(len(images))], timing


def _run_shard(command, text, manifest):
    from . import harness
    return harness.shard_task(command, text, manifest)


def check_images(model, rtl_dir: str, images, work_dir: str, labels=None, waves: bool = False,
                 results_name: str = "results.json", bench: str = "harness", simulator: str = "verilator",
                 jobs: int = 1, scheduler: str | None = None, full_readout: bool = False, progress=None,
                 junit: str | None = None, extra: dict | None = None, sources: list[str] | None = None) -> dict:
    """Simulate `images` on the core in rtl_dir; compare logits, class, every layer's spike words and the cycle
    count with golden and the cycle model. Writes work_dir/results_name (and a JUnit file, one testcase per
    image) and returns the summary. The summary records the model and core hashes and the `extra` fields.

    bench "harness" (default): sim/harness.py under `simulator` (verilator or icarus), the images split into
    `jobs` shards run by cluster.map_tasks (`scheduler`: see cluster/). bench "cocotb": sim/tb_engine.py under
    Verilator, one process (waves=True needs it). `sources` (harness bench): the Verilog files to simulate in place
    of rtl_dir/core.v, e.g. the synthesised netlist at gate level (tools/gatesim.py): same top, same ports."""
    progress = progress or (lambda message: None)
    work_dir = os.path.abspath(work_dir)
    manifest = json.loads(Path(os.path.join(rtl_dir, "manifest.json")).read_text())
    images = model.check_images(images)
    lanes = manifest["parameters"]["lanes"]
    t0, c0 = time.time(), time.process_time()
    ref = run(model, images, trace=True)
    expected = [exp_cycles(model, ref, i, manifest) for i in range(len(images))]
    golden_seconds, golden_cpu = time.time() - t0, time.process_time() - c0
    start = time.time()
    if sources and (bench == "cocotb" or waves):
        raise FlowError("a gate-level netlist runs on the harness bench only; drop --bench cocotb and --waves.")
    if bench == "cocotb" or waves:
        import resource
        bench = "cocotb"
        work_run = os.path.join(work_dir, "run")
        from .engine_sim import build
        build(os.path.abspath(os.path.join(rtl_dir, "core.v")), os.path.abspath(work_dir), waves)  # not timed
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t_sim = time.time()
        records = run_images(os.path.join(rtl_dir, "core.v"), manifest, images, work_run,
                             waves=waves, junit=os.path.join(work_dir, "junit-cocotb.xml"))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        total = sum(r["cycles"] for r in records)
        timing = {"workers": 1, "worker_cycles_per_second": [total / (time.time() - t_sim)],
                  "worker_cycles_per_cpu_second": [total / max(cpu, 1e-6)]}
        simulator = "verilator"
    else:
        records, timing = _harness_records(model, manifest, sources or [os.path.join(rtl_dir, "core.v")], images,
                                           ref, expected, work_dir, simulator, jobs, scheduler, full_readout,
                                           progress, gates=bool(sources))
    sim_seconds = time.time() - start
    per_image, mismatches = [], 0
    for i, rec in enumerate(records):
        if rec.get("status", 1) == 0:
            problem = None          # the harness compared everything against the same expected values
        else:
            one = {k: (v[:, i:i + 1] if v.ndim > 2 else v[i:i + 1]) for k, v in ref.trace.items()}
            problem = image_problem(one, rec, int(ref.classes[i]), expected[i], manifest)
            if problem is None and rec.get("status"):
                bad = [name for bit, name in sorted(_status_names().items()) if rec["status"] & bit]
                problem = f"the harness reports a difference in {', '.join(bad)} that the checker cannot place"
        mismatches += problem is not None
        per_image.append({"image": i, "class": rec.get("class"), "cycles": rec.get("cycles"),
                          "exp_cycles": expected[i], "label": None if labels is None else int(labels[i]),
                          "mismatch": problem})
    cycles = np.array([r["cycles"] or 0 for r in per_image])
    per_worker = timing.get("worker_cycles_per_second") or []
    per_cpu = timing.get("worker_cycles_per_cpu_second") or []
    summary = {
        "images": len(records), "mismatches": mismatches,
        "cycles_mean": float(cycles.mean()), "cycles_max": int(cycles.max()), "cycles_min": int(cycles.min()),
        "sim_seconds": sim_seconds, "sim_cycles_per_second": float(cycles.sum() / sim_seconds),
        "bench": bench, "simulator": simulator, "workers": timing["workers"], "scheduler": scheduler,
        "cycles_per_second_per_worker": float(np.mean(per_worker)) if per_worker else
        float(cycles.sum() / sim_seconds),
        "cycles_per_cpu_second_per_worker": float(np.mean(per_cpu)) if per_cpu else None,
        "golden_seconds": golden_seconds, "golden_cpu_seconds": golden_cpu,
        "harness_wall_seconds": timing.get("wall_seconds"),
        "lanes": lanes, "model_sha256": model.sha256, "verilog_sha256": manifest.get("verilog_sha256"),
        "accuracy": None if labels is None else float(np.mean([r["class"] == r["label"] for r in per_image])),
        "first_mismatch": next((r["mismatch"] for r in per_image if r["mismatch"]), None),
        "per_image": per_image,
    }
    summary.update(extra or {})
    path = os.path.join(work_dir, results_name)
    atomic_write(path, json.dumps(summary, indent=1) + "\n")
    junit = junit or os.path.join(work_dir, os.path.splitext(results_name)[0] + ".junit.xml")
    write_junit(junit, summary)
    summary["path"] = path
    summary["junit"] = junit
    return summary


def _status_names() -> dict:
    from .harness import STATUS_BITS
    return STATUS_BITS


def write_junit(path: str, summary: dict) -> None:
    """One JUnit testsuite, one testcase per image (a failure carries the checker's sentence)."""
    from xml.sax.saxutils import quoteattr
    cases = []
    for r in summary["per_image"]:
        name = quoteattr(f"image_{r['image']}")
        if r["mismatch"]:
            cases.append(f'  <testcase classname="sim.{summary["simulator"]}" name={name}>'
                         f'<failure message={quoteattr(r["mismatch"])}/></testcase>')
        else:
            cases.append(f'  <testcase classname="sim.{summary["simulator"]}" name={name}/>')
    text = (f'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="spikingformer_core" '
            f'tests="{summary["images"]}" failures="{summary["mismatches"]}" errors="0" '
            f'time="{summary["sim_seconds"]:.3f}">\n' + "\n".join(cases) + "\n</testsuite>\n")
    atomic_write(path, text)
