"""The report's benchmark figures over a whole image set: confusion matrix, per-class accuracy, firing rate per spike
layer and the latency distribution (cycles per inference from the exact cycle model, and µs at a clock).

One streamed pass of the golden integer model (golden/inference.py) over the images, in chunks so that a 10,000-image
test set never holds more than one chunk's trace: per chunk it keeps the predicted classes, the count of 1s of every
LIF output (golden/graph.py names them: `Step.spikes`) and, when the core's manifest is at hand, each image's cycles
from hls_models/engine_cycles.py. `stats()` turns that into the plain numbers written to report.json; the *_html and
latency_* functions render them. numpy only, plus matplotlib for the one histogram.

docs/bench/report_digits.json is report.json of the shipped digits model (tests/test_report.py recomputes it); store
another preset's the same way: `python flow.py report --preset P && cp build/P/report/report.json
docs/bench/report_P.json`.
"""
from __future__ import annotations

import html as _html
import time

import numpy as np

CHUNK = 128                        # images per golden pass with traces (Fashion-MNIST: ~1.7 MB of trace per image)
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
HIST_BINS = 40
PROGRESS_SECONDS = 5               # a progress line at most this often, and only when the pass takes longer


def spike_layers(model) -> list[str]:
    """Trace keys of every LIF output (the spike layers), in execution order."""
    from golden.graph import steps
    return [s.spikes for s in steps(model) if s.spikes]


def dataset_of(preset: str, model, metrics: dict | None) -> str | None:
    """The dataset a model was trained on: training's metrics, else the preset's recipe (the model's own `meta`
    preset when the folder is named otherwise)."""
    ds = ((metrics or {}).get("train_config") or {}).get("dataset")
    if ds:
        return ds
    from quant.presets import PRESETS
    for name in (preset, (model.meta or {}).get("preset")):
        if name in PRESETS:
            return PRESETS[name]["train"].get("dataset", "digits")
    return None


def run_pass(model, images, labels, manifest: dict | None = None, chunk: int = CHUNK, progress=None,
             jobs: int = 1, scheduler: str | None = None) -> dict:
    """Golden predictions, per-layer spike counts and per-image cycles (None without a manifest) over `images`;
    with jobs > 1 (or a Dask scheduler) in that many contiguous shards side by side (cluster.map_tasks), merged in
    image order: the same numbers as one process."""
    if jobs > 1 or scheduler:
        import cluster
        n = len(images)
        jobs = max(1, min(jobs, n))
        bounds = [n * k // jobs for k in range(jobs + 1)]
        tasks = [(model, images[a:b], labels[a:b], manifest, chunk, f"shard {k + 1}/{jobs}: " if progress else None)
                 for k, (a, b) in enumerate(zip(bounds, bounds[1:])) if b > a]
        parts = cluster.map_tasks(_shard, tasks, jobs=jobs, scheduler=scheduler, key="report-shard", processes=True)
        return merge(parts)
    return _pass(model, images, labels, manifest, chunk, progress)


def _shard(task) -> dict:
    model, images, labels, manifest, chunk, tag = task
    return _pass(model, images, labels, manifest, chunk, (lambda m: print(m.replace("report: ", "report: " + tag)))
                 if tag else None)


def merge(parts: list[dict]) -> dict:
    """run_pass() results of consecutive image ranges as one."""
    keys = list(parts[0]["ones"])
    return {"classes": np.concatenate([p["classes"] for p in parts]),
            "labels": np.concatenate([p["labels"] for p in parts]),
            "ones": {k: sum(p["ones"][k] for p in parts) for k in keys},
            "total": {k: sum(p["total"][k] for p in parts) for k in keys},
            "cycles": None if parts[0]["cycles"] is None else np.concatenate([p["cycles"] for p in parts]),
            "T": parts[0]["T"]}


def _pass(model, images, labels, manifest, chunk, progress) -> dict:
    from golden import inference
    from hls_models import engine_cycles
    images = model.check_images(images)
    n = len(images)
    keys = spike_layers(model)
    ones = {k: 0 for k in keys}
    total = {k: 0 for k in keys}
    classes = np.zeros(n, dtype=np.int64)
    cycles = np.zeros(n, dtype=np.int64) if manifest else None
    widths = None
    if manifest:
        from golden.widths import analyze
        widths = analyze(model)
    t0 = last = time.time()
    for start in range(0, n, chunk):
        x = images[start:start + chunk]
        res = inference.run(model, x, trace=True)
        classes[start:start + len(x)] = res.classes
        for k in keys:
            s = res.trace[k]
            ones[k] += int(np.count_nonzero(s))
            total[k] += int(s.size)
        if manifest:
            for i in range(len(x)):
                cycles[start + i] = engine_cycles.exp_cycles(model, res, i, manifest, widths)
        done = start + len(x)
        now = time.time()
        if progress and (now - last >= PROGRESS_SECONDS or (done == n and now - t0 >= PROGRESS_SECONDS)):
            last = now
            rate = done / (now - t0)
            progress(f"report: benchmark pass {done:,}/{n:,} images ({rate:.0f} images/s, "
                     f"~{(n - done) / rate:.0f} s left)")
    return {"classes": classes, "labels": np.asarray(labels, dtype=np.int64)[:n], "ones": ones, "total": total,
            "cycles": cycles, "T": model.T}


def confusion(labels, classes, k: int) -> np.ndarray:
    """[true label, predicted class] counts."""
    return np.bincount(np.asarray(labels) * k + np.asarray(classes), minlength=k * k).reshape(k, k)


def distribution(values, clock_mhz: float | None = None) -> dict:
    """Mean, std, min, max and percentiles of per-image cycles (numpy's linear percentiles), a histogram, and the
    same in µs at `clock_mhz`."""
    v = np.asarray(values, dtype=np.int64)
    stats = {"mean": float(v.mean()), "std": float(v.std()), "min": int(v.min()), "max": int(v.max())}
    stats.update({f"p{p}": float(np.percentile(v, p)) for p in PERCENTILES})
    bins = max(1, min(HIST_BINS, int(v.max() - v.min()) + 1))
    counts, edges = np.histogram(v, bins=bins)
    out = {"cycles": stats, "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}}
    if clock_mhz:
        out["us"] = {key: val / clock_mhz for key, val in stats.items()}
    return out


def stats(passed: dict, class_names: list[str], clock: tuple[float, str] | None = None, sim: dict | None = None,
          source: str = "") -> dict:
    """report.json's benchmark part from run_pass()'s output."""
    k = len(class_names)
    labels, classes = passed["labels"], passed["classes"]
    n = len(classes)
    if n and (labels.min() < 0 or labels.max() >= k):
        from flowerrors import FlowError
        raise FlowError(f"the test set's labels run from {labels.min()} to {labels.max()} but the model has {k} "
                        "classes: the test set and the model come from different runs; rerun train-quant.")
    cm = confusion(labels, classes, k)
    correct = np.diag(cm)
    per_class = []
    for c in range(k):
        row, col = int(cm[c].sum()), int(cm[:, c].sum())
        per_class.append({"class": c, "name": class_names[c], "images": row, "correct": int(correct[c]),
                          "accuracy": float(correct[c] / row) if row else None,
                          "precision": float(correct[c] / col) if col else None})
    T = passed["T"]
    firing = [{"layer": key, "rate": passed["ones"][key] / passed["total"][key] if passed["total"][key] else 0.0,
               "spikes": int(passed["ones"][key]), "neurons": int(passed["total"][key] // max(1, n * T))}
              for key in passed["ones"]]
    out = {"images": int(n), "source": source, "class_names": list(class_names),
           "accuracy": float(correct.sum() / n) if n else None, "correct": int(correct.sum()),
           "confusion": cm.tolist(), "per_class": per_class, "firing_rates": firing, "timesteps": int(T)}
    if passed["cycles"] is not None:
        clock_mhz = clock[0] if clock else None
        out["latency"] = distribution(passed["cycles"], clock_mhz)
        out["latency"]["clock_mhz"] = clock_mhz
        out["latency"]["clock_source"] = clock[1] if clock else None
        out["latency"]["model"] = "hls_models/engine_cycles.py (exact cycle model)"
    else:
        out["latency"] = None
    out["core"] = core_agreement(sim, classes, passed["cycles"], labels)
    return out


def simulation(sim_dir: str, model_sha256: str, verilog_sha256: str | None) -> dict | None:
    """The current Verilator simulation covering the most test images: sim/results.json (the whole test set), else
    the largest results-stratified<N>.json or results-first<N>.json (`flow.py sim --images N [--stratified]`), made
    from this model and core. Its per-image rows get `index`, the image's place in the test set."""
    import glob
    import json
    import os
    import re
    from golden.artifacts import stale_reason
    if not verilog_sha256:
        return None
    best = None
    for path in sorted(glob.glob(os.path.join(sim_dir, "results*.json"))):
        name = os.path.basename(path)
        if not re.fullmatch(r"results(-(first|stratified)\d+)?\.json", name):
            continue                                     # another simulator's cross-check, or not a results file
        try:
            sim = json.loads(open(path, "rb").read().decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if not isinstance(sim, dict) or stale_reason(sim, model_sha256, verilog_sha256) or not sim.get("per_image"):
            continue
        indices = sim.get("image_indices") or list(range(len(sim["per_image"])))
        if len(indices) != len(sim["per_image"]):
            continue
        key = (len(indices), name == "results.json")
        if best is None or key > best[0]:
            rows = [{**r, "index": int(indices[r["image"]])} for r in sim["per_image"]
                    if isinstance(r.get("image"), int) and 0 <= r["image"] < len(indices)]
            best = (key, {"file": f"sim/{name}", "subset": sim.get("subset", "all" if name == "results.json" else
                                                                  "first"),
                          "mismatches": sim.get("mismatches"), "rows": rows})
    return best[1] if best else None


def core_agreement(sim: dict | None, classes, cycles, labels=None) -> dict | None:
    """How the RTL simulation's per-image classes and cycle counts compare with golden's classes and the cycle model
    on the images both cover (None without a simulation). `sim`: simulation()'s result, or a results.json whose
    rows are in test-set order."""
    rows = []
    for r in (sim or {}).get("rows") or (sim or {}).get("per_image") or []:
        i = r.get("index", r.get("image"))
        if isinstance(i, int) and 0 <= i < len(classes):
            rows.append((i, r))
    if not rows:
        return None
    same_class = sum(r.get("class") == int(classes[i]) for i, r in rows)
    out = {"images": len(rows), "same_class": int(same_class), "mismatches": (sim or {}).get("mismatches"),
           "file": (sim or {}).get("file", "sim/results.json"), "subset": (sim or {}).get("subset", "all")}
    if cycles is not None:
        out["same_cycles"] = int(sum(r.get("cycles") == int(cycles[i]) for i, r in rows))
    measured = [r.get("cycles") for _, r in rows if isinstance(r.get("cycles"), int)]
    if measured:
        out["cycles"] = {"mean": float(np.mean(measured)), "min": int(min(measured)), "max": int(max(measured))}
    if labels is not None:
        out["core_correct"] = int(sum(r.get("class") == int(labels[i]) for i, r in rows))
        out["golden_correct"] = int(sum(int(classes[i]) == int(labels[i]) for i, _ in rows))
    return out


# ------------------------------------------------------------------------------------------------ HTML

def _esc(x) -> str:
    return _html.escape(str(x))


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f} %"


def confusion_html(b: dict) -> str:
    """The confusion matrix as a heat-map table (cell shade: share of the true class's images), with each class's
    accuracy (recall) and precision beside it."""
    cm = np.asarray(b["confusion"])
    names = b["class_names"]
    head = "<th>true ↓ / predicted →</th>" + "".join(f"<th>{_esc(n)}</th>" for n in names) + \
           "<th>images</th><th>accuracy</th><th>precision</th>"
    rows = []
    for i, name in enumerate(names):
        total = max(1, int(cm[i].sum()))
        cells = []
        for j in range(len(names)):
            share = cm[i, j] / total
            colour = f"rgba(30,110,60,{share:.3f})" if i == j else f"rgba(190,40,30,{min(1.0, 3 * share):.3f})"
            fg = "#fff" if share > 0.55 else "#222" if cm[i, j] else "#bbb"
            cells.append(f'<td class="cm" style="background:{colour};color:{fg}" title="true {_esc(name)}, predicted '
                         f'{_esc(names[j])}: {cm[i, j]} of {int(cm[i].sum())}">{cm[i, j]}</td>')
        pc = b["per_class"][i]
        rows.append(f"<tr><td>{_esc(name)}</td>{''.join(cells)}<td>{pc['images']:,}</td><td>{_pct(pc['accuracy'])}"
                    f"</td><td>{_pct(pc['precision'])}</td></tr>")
    return (f'<table class="confusion"><tr>{head}</tr>{"".join(rows)}</table>'
            "<p>Rows: true class; columns: predicted class. Shade: share of the row's images (green on the diagonal, "
            "red off it, 3× stronger so rare confusions show). Accuracy is per true class (recall); precision per "
            "predicted class.</p>")


def per_class_html(b: dict) -> str:
    """Per-class accuracy as inline horizontal bars."""
    rows = []
    for pc in b["per_class"]:
        acc = pc["accuracy"] or 0.0
        rows.append(f'<tr><td>{_esc(pc["name"])}</td><td>{pc["correct"]:,} / {pc["images"]:,}</td>'
                    f'<td>{_pct(pc["accuracy"])}</td><td style="text-align:left;width:320px">'
                    f'<div style="background:#4a7;height:10px;width:{300 * acc:.1f}px"></div></td></tr>')
    return ("<table><tr><th>class</th><th>correct / images</th><th>accuracy</th><th></th></tr>" + "".join(rows) +
            "</table>")


def latency_rows(lat: dict) -> list[list]:
    c, us = lat["cycles"], lat.get("us")
    keys = ["mean", "std", "min"] + [f"p{p}" for p in PERCENTILES] + ["max"]
    rows = []
    for key in keys:
        label = key if not key.startswith("p") else f"percentile {key[1:]}" + (" (median)" if key == "p50" else "")
        row = [label, f"{c[key]:,.1f}" if isinstance(c[key], float) else f"{c[key]:,}"]
        row.append(f"{us[key]:,.2f}" if us else "-")
        rows.append(row)
    return rows


def latency_figure(page, lat: dict, images: int) -> str:
    import matplotlib.pyplot as plt
    h = lat["histogram"]
    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    ax.stairs(h["counts"], h["edges"], fill=True, color="#57a")
    c = lat["cycles"]
    for key, style in (("p50", "-"), ("p5", ":"), ("p95", ":")):
        ax.axvline(c[key], color="#c63", linestyle=style, linewidth=1)
    ax.set_xlabel("cycles per inference")
    ax.set_ylabel("images")
    ax.grid(alpha=0.3)
    if lat.get("clock_mhz"):
        mhz = lat["clock_mhz"]
        top = ax.secondary_xaxis("top", functions=(lambda x: x / mhz, lambda u: u * mhz))
        top.set_xlabel(f"µs at {mhz:.1f} MHz")
    return page.figure(fig, "latency_histogram.png",
                       f"Cycles per inference of each of the {images:,} images (exact cycle model; equal to the "
                       "RTL's cycle counter wherever simulated). Orange: median (solid), 5th and 95th percentiles "
                       "(dotted).")
