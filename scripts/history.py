#!/usr/bin/python3
"""history.py — what every benchmark run found, across commits.

    /usr/bin/python3 scripts/history.py add results/<run> [--history FILE]
    /usr/bin/python3 scripts/history.py html [--history FILE] [--out FILE] [--no-plots]

`add` appends one line (schema hakmem-history/1) to the history file: the
run's revision, variant(s), machine, whether the machine was busy, and per
workload each allocator's median time per op and peak RSS with their spread
and ratio to the best reference allocator (an A/B run: its verdicts). The
default file is history.jsonl beside the run directory (results/ for
results/<run>); a run already in it (same directory name and start time) is
not added twice. scripts/report.py calls `add` for every run it renders, so
every `make bench`, `make ablation`, `make ab`, `./larson.sh` and merged
Slurm run is in it.

`html` (make history) writes a self-contained page (default: history.html
beside the history file) with the report's own model and emitters
(scripts/report.py): per suite and workload, each hakmem variant's ratio to
the best reference over the runs in time order, labelled by commit, with its
spread (the fastest and slowest repetition over the reference's median), so
a regression shows as a step; runs on a busy machine drawn hollow; then the
same figures as tables, and every A/B run's verdicts. A history.md with the
same sections is written beside it.
"""
import json
import os
import sys

import benchdata
import report
from report import Cell, Plot, Section, Table

SCHEMA = "hakmem-history/1"
FIGS = ("ns_per_op", "peak_rss_kib")


def default_history(run_dir):
    return os.path.join(os.path.dirname(os.path.abspath(run_dir.rstrip("/"))), "history.jsonl")


def entry_of(run_dir, summary, history_path):
    """The history line of one rendered run."""
    m = summary["machine"]
    allocs = {a["name"]: {"kind": a.get("kind"), "revision": a.get("revision")}
              for a in summary["allocators"] if a.get("status") == "available"}
    work = {}
    for label in summary["cases"]:
        for alloc, cell in summary["cells"].get(label, {}).items():
            for fk in FIGS:
                c = cell.get(fk)
                if not c:
                    continue
                x = {k: c[k] for k in ("median", "min", "max", "n", "rel_mad")}
                best = (summary["best_reference"].get(label) or {}).get(fk)
                if best and best["median"] and c.get("ratio_to_best_reference") is not None:
                    x.update({"ratio": c["ratio_to_best_reference"], "ratio_min": c["min"] / best["median"],
                              "ratio_max": c["max"] / best["median"], "best_reference": best["allocator"]})
                work.setdefault(label, {}).setdefault(alloc, {})[fk] = x
    ab = summary.get("ab")
    kind = "ab" if ab else "merged" if summary.get("shards") else "run"
    # The commit measured: the hakmem libraries' revision when they were
    # built from one (make bench REV=..., revbuild's revision.json), else the
    # runner's own checkout.
    revs = {(a.get("revision") or {}).get("commit") for a in summary["allocators"]
            if a.get("kind") == "hakmem" and a.get("status") == "available"}
    measured = revs.pop() if len(revs) == 1 and None not in revs else None
    return {
        "schema": SCHEMA,
        "run": os.path.basename(os.path.abspath(run_dir.rstrip("/"))),
        "run_dir": os.path.relpath(os.path.abspath(run_dir), os.path.dirname(os.path.abspath(history_path))),
        "started": summary.get("started"),
        "suite": summary.get("suite"),
        "kind": kind,
        "hosts": summary.get("hosts"),
        "cpu_model": m.get("cpu_model"),
        "cores": m.get("cores"),
        "git_commit": m.get("git_commit"),
        "git_dirty": m.get("git_dirty"),
        "revision": measured,
        "busy": (summary.get("load") or {}).get("busy"),
        "load_headline": (summary.get("load") or {}).get("headline"),
        "reps": (summary.get("runner") or {}).get("reps"),
        "allocators": allocs,
        "reference": summary.get("reference"),
        "workloads": work,
        "geomean": {a: g["ns_per_op"]["geomean_ratio"] for a, g in summary.get("geomean", {}).items()
                    if "ns_per_op" in g},
        "ab": None if not ab else {
            "a": ab["a"], "b": ab["b"], "confidence": ab["confidence"], "geomean_ratio": ab.get("geomean_ratio"),
            "rows": {r["label"]: {k: r.get(k) for k in ("ratio", "low", "high", "verdict", "instr_a", "instr_b")}
                     for r in ab["rows"]},
        },
    }


def read_history(path):
    """The entries of a history file, in file order. Raises benchdata.RawError."""
    out = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise benchdata.RawError(f"{path}: {e.strerror}") from e
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except ValueError as ex:
                raise benchdata.RawError(f"{path}:{n}: unreadable line ({ex})") from ex
            if not isinstance(e, dict) or e.get("schema") != SCHEMA:
                raise benchdata.RawError(f"{path}:{n}: schema {e.get('schema') if isinstance(e, dict) else None!r}, "
                                         f"expected {SCHEMA!r}")
            out.append(e)
    return out


def add(run_dir, summary, history_path=None):
    """Appends the run's entry unless the history has it; returns (path, added)."""
    path = history_path or default_history(run_dir)
    e = entry_of(run_dir, summary, path)
    if os.path.exists(path):
        for old in read_history(path):
            if old.get("run") == e["run"] and old.get("started") == e["started"]:
                return path, False
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(e, separators=(",", ":")) + "\n")
    return path, True


# ---- the page ------------------------------------------------------------------------------

def short(e):
    """The commit a run measured: its hakmem build's revision, else the
    runner's checkout (* when that had uncommitted changes)."""
    if e.get("revision"):
        return str(e["revision"])[:9]
    c = str(e.get("git_commit") or "unknown")[:9]
    return c + ("*" if e.get("git_dirty") else "")


def series_names(entries):
    """The hakmem allocators that have ratios somewhere, in first-seen order."""
    out = []
    for e in entries:
        for label, byalloc in e["workloads"].items():
            for a, figs in byalloc.items():
                if (e["allocators"].get(a) or {}).get("kind") == "hakmem" and "ratio" in figs.get("ns_per_op", {}) \
                        and a not in out:
                    out.append(a)
    return out


def plot_suite(plt, suite, entries, allocs):
    labels = []
    for e in entries:
        for l in e["workloads"]:
            if l not in labels and any("ratio" in (e["workloads"][l].get(a) or {}).get("ns_per_op", {})
                                       for a in allocs):
                labels.append(l)
    if not labels:
        return None
    ncol = min(3, len(labels))
    nrow = (len(labels) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 2.9 * nrow), squeeze=False)
    colors = report.color_map(allocs, None)
    xs = list(range(len(entries)))
    for i, label in enumerate(labels):
        ax = axes[i // ncol][i % ncol]
        for a in allocs:
            pts = [(x, e["workloads"].get(label, {}).get(a, {}).get("ns_per_op"), e.get("busy"))
                   for x, e in zip(xs, entries)]
            pts = [(x, c, b) for x, c, b in pts if c and "ratio" in c]
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1]["ratio"] for p in pts], color=colors[a], lw=1, label=a)
            for x, c, b in pts:
                ax.errorbar([x], [c["ratio"]], yerr=[[c["ratio"] - c["ratio_min"]], [c["ratio_max"] - c["ratio"]]],
                            fmt="o", color=colors[a], mfc="white" if b else colors[a], capsize=2, ms=4)
        ax.axhline(1.0, color="#999", lw=0.6, ls="--")
        ax.set_xticks(xs)
        ax.set_xticklabels([short(e) for e in entries], rotation=45, ha="right", fontsize=6)
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    for k in range(len(labels), nrow * ncol):
        axes[k // ncol][k % ncol].axis("off")
    handles, names = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="lower center", ncol=min(len(names), 5), fontsize=7, frameon=False)
    fig.suptitle(f"suite {suite}: time per op over the best reference's (below 1: faster), run by run; "
                 "whiskers: fastest and slowest repetition; hollow: busy machine", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.94))
    return Plot(f"suite {suite}: ratio to the best reference over commits", report.file_name("history", suite),
                report.png(plt, fig))


def ratio_cell(c):
    if not c or "ratio" not in c:
        return "–"
    return Cell(f"{c['ratio']:.2f}×", False, f"{c['ratio_min']:.2f}–{c['ratio_max']:.2f}")


def build_page(entries, plots_on):
    """Title, subtitle, sections."""
    entries = sorted(entries, key=lambda e: str(e.get("started")))
    suites = []
    for e in entries:
        if e.get("suite") not in suites:
            suites.append(e.get("suite"))
    busy = sum(1 for e in entries if e.get("busy"))
    sections = [Section("About", text=[
        f"{len(entries)} runs from {entries[0].get('started') if entries else '–'} to "
        f"{entries[-1].get('started') if entries else '–'}, in time order; {busy} of them on a busy machine "
        f"(time figures unreliable: hollow points, `busy` in the tables). Each point is one run: a hakmem "
        f"variant's median time per op over the best reference allocator's median for that workload, its "
        f"whiskers the fastest and the slowest repetition over the same median. A regression shows as a step. "
        f"Commits marked * had uncommitted changes. Runs of other machines are listed with their host: compare "
        f"a step only within one host."])]
    plt = report.load_matplotlib() if plots_on else None
    for suite in suites:
        es = [e for e in entries if e.get("suite") == suite and e.get("kind") != "ab"]
        allocs = series_names(es)
        if not allocs:
            continue
        labels = []
        for e in es:
            for l in e["workloads"]:
                if l not in labels:
                    labels.append(l)
        rows = []
        for e in es:
            for a in allocs:
                if a not in e["workloads"].get(labels[0], {}) and not any(a in e["workloads"].get(l, {}) for l in labels):
                    continue
                g = e.get("geomean", {}).get(a)
                rows.append([str(e.get("started")), f"`{short(e)}`", a, ", ".join(str(h) for h in e.get("hosts") or []),
                             "busy" if e.get("busy") else "quiet" if e.get("busy") is False else "–"]
                            + [ratio_cell(e["workloads"].get(l, {}).get(a, {}).get("ns_per_op")) for l in labels]
                            + ["–" if g is None else f"{g:.2f}×"])
        cols = ([("started", False), ("commit", False), ("allocator", False), ("host", False), ("load", False)]
                + [(l, True) for l in labels] + [("geomean", True)])
        sec = Section(f"Suite {suite}: time per op over the best reference", table=Table(cols, rows),
                      notes=["Each cell: the ratio, and the range from the fastest to the slowest repetition."])
        if plt:
            p = plot_suite(plt, suite, es, allocs)
            if p:
                sec.plots.append(p)
        sections.append(sec)
    abs_ = [e for e in entries if e.get("kind") == "ab" and e.get("ab")]
    if abs_:
        rows = []
        for e in abs_:
            ab = e["ab"]
            for label, r in ab["rows"].items():
                if r.get("ratio") is None:
                    continue
                rows.append([str(e.get("started")), f"`{ab['b']}` / `{ab['a']}`", label, f"{r['ratio']:.3f}",
                             "–" if r.get("low") is None else f"{r['low']:.3f}–{r['high']:.3f}", r.get("verdict") or "–",
                             "busy" if e.get("busy") else "quiet" if e.get("busy") is False else "–"])
        sections.append(Section("A/B runs", table=Table(
            [("started", False), ("B / A", False), ("workload", False), ("B/A", True), ("interval", True),
             ("verdict", False), ("load", False)], rows)))
    if plots_on and plt is None:
        sections.append(Section("Plots", text=["No plots: matplotlib is not installed (Debian: python3-matplotlib)."]))
    return "hakmem benchmark history", f"{len(entries)} runs", sections


def main(argv):
    args = argv[1:]
    if not args or args[0] not in ("add", "html"):
        print("usage: history.py add RUN [--history FILE] | history.py html [--history FILE] [--out FILE] [--no-plots]",
              file=sys.stderr)
        return 2
    cmd, rest = args[0], args[1:]
    opts = {"--history": None, "--out": None}
    pos, no_plots = [], False
    it = iter(rest)
    for a in it:
        if a in opts:
            opts[a] = next(it, None)
            if not opts[a]:
                print(f"history: {a} needs a value", file=sys.stderr)
                return 2
        elif a == "--no-plots":
            no_plots = True
        elif a.startswith("-"):
            print(f"history: unknown option {a}", file=sys.stderr)
            return 2
        else:
            pos.append(a)
    try:
        if cmd == "add":
            if len(pos) != 1:
                print("history: add needs one run directory", file=sys.stderr)
                return 2
            _, _, summary = benchdata.load_summary(pos[0])
            path, added = add(pos[0], summary, opts["--history"])
            print(f"history: {'added to' if added else 'already in'} {path}")
            return 0
        path = opts["--history"] or "results/history.jsonl"
        entries = read_history(path)
    except benchdata.RawError as e:
        print(f"history: {e}", file=sys.stderr)
        return 2
    out = opts["--out"] or os.path.join(os.path.dirname(path) or ".", "history.html")
    title, subtitle, sections = build_page(entries, not no_plots)
    with open(out, "w", encoding="utf-8") as f:
        f.write(report.render_html(title, subtitle, sections))
    md = os.path.splitext(out)[0] + ".md"
    with open(md, "w", encoding="utf-8") as f:
        f.write(report.render_markdown(title, subtitle, [
            Section(s.title, s.level, s.text, s.items, s.table, s.notes, []) for s in sections]))
    print(f"history: {out} ({len(entries)} runs), {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
