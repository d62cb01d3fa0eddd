#!/usr/bin/python3
"""report.py — turn a benchmark run's raw.jsonl into summary.json, report.md
and a self-contained report.html (plots embedded as base64 PNG).

    /usr/bin/python3 scripts/report.py results/<run> [--no-plots]

Reads only <run>/raw.jsonl (schema hakmem-bench/1, written by
build/harness/hakbench). Figures per workload case x allocator are taken over
the ok repetitions: median, min, max and MAD (median absolute deviation).
Each allocator's median is divided by the best reference allocator's median
for that case ("ratio"; lower-is-better figures: < 1 beats the best
reference; higher-is-better figures: > 1 beats it), and the geometric mean of
the ratios across cases summarises an allocator in one number per figure.

Plots need matplotlib (Debian: python3-matplotlib); without it the report is
written without plots and says so.
"""
import base64
import html
import io
import json
import math
import os
import sys

SCHEMA = "hakmem-bench/1"

# figure key -> (title, unit, better, scale, format). better: "lower" or
# "higher". scale divides the raw value for display.
FIGURES = {
    "ns_per_op": ("time per op", "ns/op", "lower", 1.0, "{:.2f}"),
    "ops_per_sec": ("throughput", "Mops/s", "higher", 1e6, "{:.2f}"),
    "peak_rss_kib": ("peak RSS", "MiB", "lower", 1024.0, "{:.1f}"),
    "fragmentation": ("fragmentation (peak RSS / peak live bytes)", "x", "lower", 1.0, "{:.2f}"),
    "idle_rss_kib": ("RSS at the end of the idle period", "MiB", "lower", 1024.0, "{:.1f}"),
    "idle_rss_nolazy_kib": ("RSS - LazyFree at the end of the idle period", "MiB", "lower", 1024.0, "{:.1f}"),
    "final_rss_kib": ("RSS at the last sample", "MiB", "lower", 1024.0, "{:.1f}"),
    "user_s": ("user CPU", "s", "lower", 1.0, "{:.3f}"),
    "sys_s": ("system CPU", "s", "lower", 1.0, "{:.3f}"),
    "minflt": ("minor page faults", "k", "lower", 1000.0, "{:.1f}"),
    "instr_per_op": ("instructions per op (callgrind)", "instr/op", "lower", 1.0, "{:.1f}"),
}
# The headline: one table each, in this order.
MIN_FRAG_LIVE = 1 << 20
HEADLINE = ["ns_per_op", "ops_per_sec", "peak_rss_kib", "fragmentation", "idle_rss_kib",
            "idle_rss_nolazy_kib", "instr_per_op"]


# ---- reading --------------------------------------------------------------

def load_raw(run_dir):
    """Returns (context, rows, skips, end) from <run_dir>/raw.jsonl."""
    path = os.path.join(run_dir, "raw.jsonl") if os.path.isdir(run_dir) else run_dir
    context, rows, skips, end = None, [], [], None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                # An interrupted run may leave a partial last line.
                print(f"report: {path}:{n}: skipping unreadable line ({e})", file=sys.stderr)
                continue
            if row.get("schema") != SCHEMA:
                raise SystemExit(f"report: {path}:{n}: schema {row.get('schema')!r}, expected {SCHEMA!r}")
            t = row.get("type")
            if t == "context":
                context = row
            elif t == "run":
                rows.append(row)
            elif t == "skip":
                skips.append(row)
            elif t == "end":
                end = row
    if context is None:
        raise SystemExit(f"report: {path}: no context row")
    return context, rows, skips, end


def figures_of(row):
    """The figures one ok row contributes, as {key: value}."""
    out = {}
    if row.get("mode") == "callgrind":
        if row.get("instr_per_op") is not None:
            out["instr_per_op"] = row["instr_per_op"]
        return out
    for k in ("ns_per_op", "ops_per_sec", "user_s", "sys_s", "minflt"):
        if row.get(k) is not None:
            out[k] = row[k]
    # Against a few KiB of live data, RSS / live bytes measures the program's
    # own footprint, not the allocator: only report it from 1 MiB live.
    if row.get("fragmentation") is not None and (row.get("peak_live_bytes") or 0) >= MIN_FRAG_LIVE:
        out["fragmentation"] = row["fragmentation"]
    peak = row.get("peak_rss_kib")
    if peak is None:
        peak = max((row.get("mem") or {}).get("peak", {}).get("rss_kib") or 0, row.get("maxrss_kib") or 0)
    if peak:
        out["peak_rss_kib"] = peak
    fin = (row.get("mem") or {}).get("final", {}).get("rss_kib")
    if fin:
        out["final_rss_kib"] = fin
    idle = row.get("idle") or {}
    if idle.get("rss_at_idle_end_kib") is not None:
        out["idle_rss_kib"] = idle["rss_at_idle_end_kib"]
    if idle.get("rss_nolazy_at_idle_end_kib") is not None:
        out["idle_rss_nolazy_kib"] = idle["rss_nolazy_at_idle_end_kib"]
    return out


# ---- statistics -----------------------------------------------------------

def median(xs):
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return None
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def mad(xs):
    m = median(xs)
    return median([abs(x - m) for x in xs]) if xs else None


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    if not xs:
        return None
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def stats(values):
    m = median(values)
    d = mad(values)
    return {
        "n": len(values), "median": m, "min": min(values), "max": max(values), "mad": d,
        "rel_mad": (d / m) if m else None, "values": values,
    }


# ---- summary ----------------------------------------------------------------

def summarize(context, rows, skips, end):
    allocs = context.get("allocators", [])
    alloc_names = [a["name"] for a in allocs]
    available = [a["name"] for a in allocs if a.get("status") == "available"]
    reference = [a["name"] for a in allocs if a.get("kind") == "reference" and a.get("status") == "available"]
    labels = [c["label"] for c in context.get("cases", [])]
    for r in rows:  # callgrind-only cases, or cases not in the context
        if r["label"] not in labels:
            labels.append(r["label"])
    workload_of = {c["label"]: c["workload"] for c in context.get("cases", [])}
    for r in rows:
        workload_of.setdefault(r["label"], r.get("workload"))

    values = {}  # (label, alloc, fig) -> [values]
    counts = {"ok": 0, "failed": 0, "invalid": 0}
    problems = []
    for r in rows:
        st = r.get("status")
        counts[st] = counts.get(st, 0) + 1
        if st != "ok":
            problems.append({
                "status": st, "label": r["label"], "allocator": r["allocator"], "rep": r.get("rep"),
                "mode": r.get("mode"), "reason": r.get("reason"), "signal": r.get("signal"),
                "log": r.get("log"),
            })
            continue
        for k, v in figures_of(r).items():
            values.setdefault((r["label"], r["allocator"], k), []).append(v)

    cells = {}
    for (label, alloc, fig), vs in values.items():
        cells.setdefault(label, {}).setdefault(alloc, {})[fig] = stats(vs)

    best_ref = {}
    for label in labels:
        for fig, (_, _, better, _, _) in FIGURES.items():
            cands = [(cells[label][a][fig]["median"], a) for a in reference
                     if fig in cells.get(label, {}).get(a, {})]
            cands = [c for c in cands if c[0] is not None]
            if not cands:
                continue
            v, a = (min if better == "lower" else max)(cands)
            best_ref.setdefault(label, {})[fig] = {"allocator": a, "median": v}
            for alloc in cells.get(label, {}):
                c = cells[label][alloc].get(fig)
                if c and v:
                    c["ratio_to_best_reference"] = c["median"] / v

    geo = {}
    for alloc in alloc_names:
        for fig in FIGURES:
            rs = [cells[l][alloc][fig].get("ratio_to_best_reference") for l in labels
                  if fig in cells.get(l, {}).get(alloc, {})]
            g = geomean(rs)
            if g is not None:
                geo.setdefault(alloc, {})[fig] = {"geomean_ratio": g, "cases": len([r for r in rs if r])}

    # Noise: the relative MAD of ns/op (or the first figure present) over all cells.
    noise = {}
    for fig in ("ns_per_op", "peak_rss_kib", "instr_per_op"):
        rel = [(c[fig]["rel_mad"], l, a) for l, byalloc in cells.items() for a, c in byalloc.items()
               if fig in c and c[fig]["rel_mad"] is not None and c[fig]["n"] >= 2]
        if rel:
            rel.sort()
            noise[fig] = {"median_rel_mad": median([r[0] for r in rel]), "max_rel_mad": rel[-1][0],
                          "max_at": {"label": rel[-1][1], "allocator": rel[-1][2]}, "cells": len(rel)}

    return {
        "schema": "hakmem-bench-summary/1",
        "raw_schema": context.get("schema"),
        "suite": context.get("suite"),
        "started": context.get("started"),
        "machine": {k: context.get(k) for k in ("host", "cpu_model", "cores", "kernel", "thp_enabled", "thp_defrag",
                                                "cpu_governor", "mem_total_kib", "glibc", "compiler",
                                                "git_commit", "git_dirty", "loadavg_start")},
        "loadavg_end": (end or {}).get("loadavg_end"),
        "wall_s": (end or {}).get("wall_s"),
        "interrupted": (end or {}).get("interrupted") if end else True,
        "runner": context.get("runner"),
        "allocators": allocs,
        "available": available,
        "reference": reference,
        "cases": labels,
        "workload_of": workload_of,
        "counts": counts,
        "problems": problems,
        "skipped_cases": [{"label": s["label"], "workload": s["workload"], "mode": s.get("mode"),
                           "reason": s.get("reason")} for s in skips],
        "figures": {k: {"title": t, "unit": u, "better": b} for k, (t, u, b, _, _) in FIGURES.items()},
        "cells": cells,
        "best_reference": best_ref,
        "geomean": geo,
        "noise": noise,
    }


# ---- rendering helpers ----------------------------------------------------

def fmt(fig, v):
    if v is None:
        return "–"
    _, _, _, scale, f = FIGURES[fig]
    return f.format(v / scale)


def table_data(summary, fig):
    """Rows of (label, [(text, is_best, ratio)...]) for one figure, plus the
    geomean row; None when no cell has this figure."""
    allocs = summary["available"]
    better = FIGURES[fig][2]
    rows = []
    for label in summary["cases"]:
        byalloc = summary["cells"].get(label, {})
        meds = {a: byalloc[a][fig]["median"] for a in allocs if fig in byalloc.get(a, {})}
        if not meds:
            continue
        best = (min if better == "lower" else max)(meds.values())
        cells = []
        for a in allocs:
            c = byalloc.get(a, {}).get(fig)
            if not c:
                cells.append(None)
                continue
            cells.append({"text": fmt(fig, c["median"]), "best": c["median"] == best,
                          "ratio": c.get("ratio_to_best_reference"), "rel_mad": c.get("rel_mad"), "n": c["n"]})
        rows.append((label, cells))
    if not rows:
        return None
    geo = []
    for a in allocs:
        g = summary["geomean"].get(a, {}).get(fig)
        geo.append(g["geomean_ratio"] if g else None)
    return rows, geo


def cell_md(c):
    if c is None:
        return "–"
    t = f"**{c['text']}**" if c["best"] else c["text"]
    extra = []
    if c["rel_mad"] is not None and c["n"] >= 2:
        extra.append(f"±{100 * c['rel_mad']:.0f}%")
    if c["ratio"] is not None:
        extra.append(f"{c['ratio']:.2f}×")
    return t + (" (" + ", ".join(extra) + ")" if extra else "")


def glance_rows(summary):
    """[(allocator, [(column, text)...])] for the headline figures present."""
    figs = [f for f in HEADLINE if any(f in g for g in summary["geomean"].values())]
    if not figs:
        return []
    out = []
    for a in summary["available"]:
        cols = []
        for f in figs:
            g = summary["geomean"].get(a, {}).get(f)
            cols.append((SHORT[f], ratio_text(g["geomean_ratio"] if g else None)))
        out.append((a, cols))
    return out


SHORT = {"ns_per_op": "time", "ops_per_sec": "throughput", "peak_rss_kib": "peak RSS",
         "fragmentation": "fragmentation", "idle_rss_kib": "idle RSS", "idle_rss_nolazy_kib": "idle Rss−LazyFree",
         "instr_per_op": "instructions"}


def ratio_text(g):
    return "–" if g is None else f"{g:.2f}×"


def machine_lines(summary):
    m = summary["machine"]
    r = summary.get("runner") or {}
    lines = [
        f"CPU {m.get('cpu_model')} ({m.get('cores')} cores), {(m.get('mem_total_kib') or 0) / 1048576:.1f} GiB RAM; "
        f"{m.get('kernel')}; THP {m.get('thp_enabled')} (defrag {m.get('thp_defrag')}); "
        f"governor {m.get('cpu_governor') or 'n/a'}; glibc {m.get('glibc')}; {m.get('compiler')}.",
        f"git {str(m.get('git_commit') or 'unknown')[:12]}{' (uncommitted changes)' if m.get('git_dirty') else ''}; "
        f"suite `{summary.get('suite')}`, {r.get('reps')} repetitions, allocators interleaved "
        f"({r.get('order')}); RSS sampled every {r.get('sample_ms')} ms; time limit {r.get('timeout_s')} s per run.",
        f"Load average at start {m.get('loadavg_start')}, at end {summary.get('loadavg_end')}; "
        f"wall time {summary['wall_s']:.0f} s." if summary.get("wall_s") is not None else
        f"Load average at start {m.get('loadavg_start')}; the run did not finish (no end row).",
    ]
    return lines


def noise_lines(summary):
    out = []
    n = summary["noise"]
    names = {"ns_per_op": "time per op", "peak_rss_kib": "peak RSS", "instr_per_op": "instructions per op"}
    for fig in ("ns_per_op", "peak_rss_kib", "instr_per_op"):
        if fig in n:
            x = n[fig]
            out.append(f"{names[fig]}: median relative MAD {100 * x['median_rel_mad']:.1f}% over {x['cells']} cells, "
                       f"worst {100 * x['max_rel_mad']:.1f}% ({x['max_at']['label']} / {x['max_at']['allocator']})")
    if out:
        out.append("Differences smaller than about three times the MAD are within the noise of this machine; "
                   "use `scripts/compare` to test a change.")
    else:
        out.append("Too few repetitions to state the noise (need at least 2 ok runs per cell).")
    return out


def problem_lines(summary):
    out = []
    for a in summary["allocators"]:
        if a.get("status") != "available":
            out.append(("skipped", f"allocator {a['name']}: {a.get('skip_reason')}"))
    for s in summary["skipped_cases"]:
        out.append(("skipped", f"case {s['label']} ({s['mode']}): {s['reason']}"))
    for p in summary["problems"]:
        sig = f", signal {p['signal']}" if p.get("signal") else ""
        mode = " (callgrind)" if p.get("mode") == "callgrind" else ""
        out.append((p["status"], f"{p['label']} / {p['allocator']} rep {p['rep']}{mode}: {p['reason']}{sig} "
                                 f"(log {p.get('log')})"))
    return out


# ---- report.md --------------------------------------------------------------

def render_md(summary):
    allocs = summary["available"]
    L = []
    L.append(f"# Allocator benchmark: {summary.get('suite')} ({summary.get('started')})")
    L.append("")
    L.append("## Machine and noise")
    L.append("")
    for l in machine_lines(summary):
        L.append(f"- {l}")
    for l in noise_lines(summary):
        L.append(f"- {l}")
    c = summary["counts"]
    L.append(f"- Runs: {c.get('ok', 0)} ok, {c.get('failed', 0)} failed, {c.get('invalid', 0)} invalid"
             f"{'; the run was interrupted' if summary.get('interrupted') else ''}.")
    L.append("")
    L.append("## Allocators")
    L.append("")
    L.append("| allocator | kind | version | library | status |")
    L.append("|---|---|---|---|---|")
    for a in summary["allocators"]:
        status = a.get("status")
        if status == "available" and a.get("probe_preload_ok") is False:
            status = "available, but the probe saw malloc from " + str(a.get("probe_malloc_from"))
        lib = a.get("realpath") or a.get("library")
        if a.get("cflags"):
            lib += f" (cflags: `{a['cflags']}`)"
        L.append(f"| {a['name']} | {a.get('kind')} | {a.get('version') or '–'} | {lib} | {status} |")
    L.append("")
    L.append("## Headline")
    L.append("")
    L.append("Each cell: median over the ok repetitions (**best** in bold), ± relative MAD, and the ratio to the "
             "best reference allocator for that workload. The geomean row is the geometric mean of the ratios.")
    L.append("")
    glance = glance_rows(summary)
    if glance:
        L.append("### At a glance: geometric mean of the ratios to the best reference allocator")
        L.append("")
        L.append("| allocator | " + " | ".join(h for h, _ in glance[0][1]) + " |")
        L.append("|---|" + "---:|" * len(glance[0][1]))
        for a, cols in glance:
            L.append(f"| {a} | " + " | ".join(v for _, v in cols) + " |")
        L.append("")
        L.append("Ratios: time, RSS, fragmentation and instructions below 1.00× and throughput above 1.00× beat "
                 "the best reference allocator.")
        L.append("")
    for fig in HEADLINE:
        td = table_data(summary, fig)
        if not td:
            continue
        rows, geo = td
        title, unit, better = FIGURES[fig][0], FIGURES[fig][1], FIGURES[fig][2]
        L.append(f"### {title} ({unit}, {better} is better)")
        L.append("")
        L.append("| workload | " + " | ".join(allocs) + " |")
        L.append("|---|" + "---:|" * len(allocs))
        for label, cells in rows:
            L.append(f"| {label} | " + " | ".join(cell_md(x) for x in cells) + " |")
        if len(rows) > 1:
            L.append("| geomean ratio | " + " | ".join(ratio_text(g) for g in geo) + " |")
        L.append("")
    L.append("## Other figures (medians)")
    L.append("")
    L.append("| workload | allocator | user s | sys s | minor faults | final RSS MiB | peak Rss−LazyFree MiB |")
    L.append("|---|---|---:|---:|---:|---:|---:|")
    for label in summary["cases"]:
        for a in allocs:
            c = summary["cells"].get(label, {}).get(a)
            if not c or "user_s" not in c:
                continue
            L.append(f"| {label} | {a} | {fmt('user_s', c['user_s']['median'])} | {fmt('sys_s', c['sys_s']['median'])} | "
                     f"{c['minflt']['median']:.0f} | "
                     f"{fmt('final_rss_kib', c.get('final_rss_kib', {}).get('median'))} | "
                     f"{fmt('peak_rss_kib', c.get('peak_nolazy_kib', {}).get('median'))} |")
    L.append("")
    L.append("## Skipped, failed and invalid runs")
    L.append("")
    probs = problem_lines(summary)
    if not probs:
        L.append("None.")
    for st, text in probs:
        L.append(f"- {st}: {text}")
    L.append("")
    L.append("Raw rows: `raw.jsonl` (schema " + str(summary.get("raw_schema")) + "); aggregates: `summary.json`; "
             "plots: `report.html`.")
    L.append("")
    return "\n".join(L)


# ---- plots ------------------------------------------------------------------

def load_matplotlib():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except Exception as e:  # noqa: BLE001 - any import problem means no plots
        print(f"report: no plots ({e}); install python3-matplotlib", file=sys.stderr)
        return None


def png(plt, fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def color_map(allocs):
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf"]
    return {a: palette[i % len(palette)] for i, a in enumerate(allocs)}


def plot_bars(plt, summary, fig_key, colors):
    """One small panel per workload: a bar per allocator (median) with a
    min-max error bar."""
    labels = [l for l in summary["cases"] if any(fig_key in c for c in summary["cells"].get(l, {}).values())]
    if not labels:
        return None
    allocs = summary["available"]
    ncol = min(4, len(labels))
    nrow = (len(labels) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False)
    title, unit, better, scale, _ = FIGURES[fig_key]
    for i, label in enumerate(labels):
        ax = axes[i // ncol][i % ncol]
        xs, meds, lo, hi, cs = [], [], [], [], []
        for j, a in enumerate(allocs):
            c = summary["cells"].get(label, {}).get(a, {}).get(fig_key)
            if not c:
                continue
            xs.append(j)
            meds.append(c["median"] / scale)
            lo.append((c["median"] - c["min"]) / scale)
            hi.append((c["max"] - c["median"]) / scale)
            cs.append(colors[a])
        ax.bar(xs, meds, color=cs, yerr=[lo, hi], capsize=3)
        ax.set_xticks(range(len(allocs)))
        ax.set_xticklabels(allocs, rotation=45, ha="right", fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    for k in range(len(labels), nrow * ncol):
        axes[k // ncol][k % ncol].axis("off")
    fig.suptitle(f"{title} ({unit}, {better} is better); bars: median, whiskers: min–max", fontsize=10)
    fig.tight_layout()
    return png(plt, fig)


def median_row(rows):
    """The row whose ns/op is the median of its group (for a representative timeline)."""
    rs = sorted(rows, key=lambda r: r.get("ns_per_op") or 0)
    return rs[(len(rs) - 1) // 2] if rs else None


def plot_timeline(plt, summary, rows, label, colors):
    allocs = summary["available"]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    any_line = False
    for a in allocs:
        r = median_row([x for x in rows if x["label"] == label and x["allocator"] == a
                        and x.get("status") == "ok" and x.get("mode") == "measure"])
        if not r or not (r.get("timeline") or {}).get("t_s"):
            continue
        tl = r["timeline"]
        ax.plot(tl["t_s"], [v / 1024 for v in tl["rss_kib"]], label=a, color=colors[a], lw=1.3)
        if tl.get("rss_nolazy_kib") and tl["rss_nolazy_kib"] != tl["rss_kib"]:
            ax.plot(tl["t_s"], [v / 1024 for v in tl["rss_nolazy_kib"]], color=colors[a], lw=0.8, ls="--")
        for p in r.get("phases") or []:
            ax.axvline(p["t_s"], color=colors[a], lw=0.4, alpha=0.5)
        any_line = True
    if not any_line:
        plt.close(fig)
        return None
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("RSS MiB")
    ax.set_title(f"RSS over time: {label} (median run per allocator; dashed: Rss−LazyFree; thin lines: phases)",
                 fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return png(plt, fig)


def scaling_groups(summary, rows):
    """Workloads run at several thread counts: {workload: {threads: label}}."""
    groups = {}
    for r in rows:
        if r.get("status") != "ok" or r.get("mode") != "measure" or r.get("threads") is None:
            continue
        groups.setdefault(r["workload"], {}).setdefault(int(r["threads"]), set()).add(r["label"])
    return {w: g for w, g in groups.items() if len(g) >= 2}


def plot_scaling(plt, summary, rows, workload, group, colors):
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for a in summary["available"]:
        xs, ys = [], []
        for t in sorted(group):
            vals = [r["ops_per_sec"] for r in rows if r["workload"] == workload and r.get("threads") == t
                    and r["allocator"] == a and r.get("status") == "ok" and r.get("ops_per_sec")
                    and r.get("mode") == "measure"]
            if vals:
                xs.append(t)
                ys.append(median(vals) / 1e6)
        if xs:
            ax.plot(xs, ys, marker="o", label=a, color=colors[a])
    ax.set_xlabel("threads")
    ax.set_ylabel("Mops/s (median)")
    ax.set_xticks(sorted(group))
    ax.set_title(f"thread scaling: {workload}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return png(plt, fig)


def make_plots(summary, rows):
    plt = load_matplotlib()
    if plt is None:
        return None
    colors = color_map(summary["available"])
    plots = []
    for fig_key in ("ns_per_op", "peak_rss_kib", "idle_rss_kib", "instr_per_op"):
        p = plot_bars(plt, summary, fig_key, colors)
        if p:
            plots.append((FIGURES[fig_key][0], p))
    for label in summary["cases"]:
        wl = summary["workload_of"].get(label)
        if wl in ("burst_idle", "larson"):
            p = plot_timeline(plt, summary, rows, label, colors)
            if p:
                plots.append((f"RSS over time: {label}", p))
    for wl, group in sorted(scaling_groups(summary, rows).items()):
        plots.append((f"thread scaling: {wl}", plot_scaling(plt, summary, rows, wl, group, colors)))
    return plots


# ---- report.html ------------------------------------------------------------

CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:14px}
th,td{border:1px solid #ccc;padding:3px 8px}td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f2f2f2}td.best{font-weight:bold;background:#eef7ee}small{color:#666}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}code{background:#f4f4f4;padding:0 3px}
"""


def render_html(summary, plots):
    e = html.escape
    allocs = summary["available"]
    H = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(str(summary.get('suite')))} benchmark</title>"
         f"<style>{CSS}</style></head><body>"]
    H.append(f"<h1>Allocator benchmark: {e(str(summary.get('suite')))} <small>{e(str(summary.get('started')))}</small></h1>")
    H.append("<h2>Machine and noise</h2><ul>")
    for l in machine_lines(summary) + noise_lines(summary):
        H.append(f"<li>{e(l)}</li>")
    c = summary["counts"]
    H.append(f"<li>Runs: {c.get('ok', 0)} ok, {c.get('failed', 0)} failed, {c.get('invalid', 0)} invalid.</li></ul>")
    H.append("<h2>Allocators</h2><table><tr><th>allocator</th><th>kind</th><th>version</th><th>library</th>"
             "<th>status</th></tr>")
    for a in summary["allocators"]:
        lib = a.get("realpath") or a.get("library")
        if a.get("cflags"):
            lib += f" (cflags: {a['cflags']})"
        H.append(f"<tr><td>{e(a['name'])}</td><td>{e(str(a.get('kind')))}</td><td>{e(str(a.get('version') or '–'))}</td>"
                 f"<td>{e(str(lib))}</td><td>{e(str(a.get('status')))}</td></tr>")
    H.append("</table><h2>Headline</h2><p>Median over the ok repetitions (best in bold), ± relative MAD, ratio to "
             "the best reference allocator; the geomean row is the geometric mean of the ratios.</p>")
    glance = glance_rows(summary)
    if glance:
        H.append("<h3>At a glance: geometric mean of the ratios to the best reference allocator</h3><table>"
                 "<tr><th>allocator</th>" + "".join(f"<th>{e(h)}</th>" for h, _ in glance[0][1]) + "</tr>")
        for a, cols in glance:
            H.append(f"<tr><td>{e(a)}</td>" + "".join(f"<td class='n'>{e(v)}</td>" for _, v in cols) + "</tr>")
        H.append("</table>")
    for fig in HEADLINE:
        td = table_data(summary, fig)
        if not td:
            continue
        rows, geo = td
        title, unit, better = FIGURES[fig][0], FIGURES[fig][1], FIGURES[fig][2]
        H.append(f"<h3>{e(title)} ({e(unit)}, {better} is better)</h3><table><tr><th>workload</th>"
                 + "".join(f"<th>{e(a)}</th>" for a in allocs) + "</tr>")
        for label, cells in rows:
            H.append(f"<tr><td>{e(label)}</td>")
            for x in cells:
                if x is None:
                    H.append("<td class='n'>–</td>")
                    continue
                extra = []
                if x["rel_mad"] is not None and x["n"] >= 2:
                    extra.append(f"±{100 * x['rel_mad']:.0f}%")
                if x["ratio"] is not None:
                    extra.append(f"{x['ratio']:.2f}×")
                H.append(f"<td class='n{' best' if x['best'] else ''}'>{e(x['text'])}"
                         f"{' <small>' + e(', '.join(extra)) + '</small>' if extra else ''}</td>")
            H.append("</tr>")
        if len(rows) > 1:
            H.append("<tr><td><i>geomean ratio</i></td>" + "".join(f"<td class='n'>{ratio_text(g)}</td>" for g in geo)
                     + "</tr>")
        H.append("</table>")
    H.append("<h2>Plots</h2>")
    if plots is None:
        H.append("<p>No plots: matplotlib is not installed (Debian: python3-matplotlib).</p>")
    else:
        for title, data in plots:
            H.append(f"<h3>{e(title)}</h3><img alt='{e(title)}' src='data:image/png;base64,{data}'>")
    H.append("<h2>Skipped, failed and invalid runs</h2><ul>")
    probs = problem_lines(summary)
    if not probs:
        H.append("<li>None.</li>")
    for st, text in probs:
        H.append(f"<li><b>{e(st)}</b>: {e(text)}</li>")
    H.append("</ul></body></html>\n")
    return "\n".join(H)


# ---- main -------------------------------------------------------------------

def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    opts = [a for a in argv[1:] if a.startswith("--")]
    if len(args) != 1 or any(o not in ("--no-plots",) for o in opts):
        print("usage: report.py results/<run> [--no-plots]", file=sys.stderr)
        return 2
    run = args[0]
    if not os.path.exists(os.path.join(run, "raw.jsonl")):
        print(f"report: {run}/raw.jsonl not found", file=sys.stderr)
        return 2
    context, rows, skips, end = load_raw(run)
    # Rss - LazyFree at the peak is kept per cell too (not a headline figure).
    summary = summarize(context, rows, skips, end)
    for r in rows:
        if r.get("status") == "ok" and r.get("mode") == "measure":
            v = ((r.get("mem") or {}).get("peak") or {}).get("rss_nolazy_kib")
            if v:
                cell = summary["cells"].setdefault(r["label"], {}).setdefault(r["allocator"], {})
                cell.setdefault("_nolazy", []).append(v)
    for byalloc in summary["cells"].values():
        for c in byalloc.values():
            if "_nolazy" in c:
                c["peak_nolazy_kib"] = stats(c.pop("_nolazy"))
    with open(os.path.join(run, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, sort_keys=False)
        f.write("\n")
    with open(os.path.join(run, "report.md"), "w", encoding="utf-8") as f:
        f.write(render_md(summary))
    plots = None if "--no-plots" in opts else make_plots(summary, rows)
    with open(os.path.join(run, "report.html"), "w", encoding="utf-8") as f:
        f.write(render_html(summary, plots))
    print(f"report: {run}/report.md, {run}/report.html, {run}/summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
