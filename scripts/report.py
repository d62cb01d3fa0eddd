#!/usr/bin/python3
"""report.py — turn a benchmark run's raw.jsonl into summary.json, report.md
and a self-contained report.html, with the plots as PNG files in
<run>/plots/ (shown in report.md, embedded in report.html).

    /usr/bin/python3 scripts/report.py results/<run> [--no-plots] [--no-history] [--history=FILE]

Every run it renders is also added to the history (scripts/history.py:
history.jsonl beside the run directory, or FILE; a run already there is not
added twice); --no-history leaves it out.

The figures and the statistics are benchdata's (scripts/benchdata.py, shared
with scripts/compare). The floor (each workload run with its --floor, no
allocator in its timed work) is shown beside the allocators, never among
them: a column of its own in the time and throughput tables and plots, and
the section "What the allocator can change". The report is one list of sections (a title,
paragraphs, a list, a table, notes, plots), built once from the summary and
written by two emitters, Markdown and HTML, that only format what the
sections hold: what one shows, the other shows too.

Plots need matplotlib (Debian: python3-matplotlib); without it the report is
written without plots and says so.
"""
import base64
import html
import io
import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import List, Optional

import benchdata
from benchdata import FIG, FIGURES

PLOT_DIR = "plots"


# ---- the report model --------------------------------------------------------

@dataclass
class Cell:
    """A table cell with a figure: the value, whether it is the best of its
    row, and small print after it (spread, ratio)."""
    text: str
    best: bool = False
    note: str = ""


@dataclass
class Table:
    columns: List[tuple]   # (heading, numeric: right-aligned)
    rows: List[list]       # each cell a str (may hold `code`) or a Cell


@dataclass
class Plot:
    title: str
    file: str              # relative to the run directory
    png: bytes


@dataclass
class Section:
    title: str
    level: int = 2
    text: List[str] = field(default_factory=list)    # paragraphs before the rest
    items: List[tuple] = field(default_factory=list)  # a list: (lead or None, text)
    table: Optional[Table] = None
    notes: List[str] = field(default_factory=list)   # paragraphs after the table
    plots: List[Plot] = field(default_factory=list)


# ---- what the report says ---------------------------------------------------------

def ratio_text(g):
    return "–" if g is None else f"{g:.2f}×"


def figure_cell(f, c, best):
    note = []
    if c.get("rel_mad") is not None and c["n"] >= 2:
        note.append(f"±{100 * c['rel_mad']:.0f}%")
    if c.get("ratio_to_best_reference") is not None:
        note.append(f"{c['ratio_to_best_reference']:.2f}×")
    return Cell(f.text(c["median"]), c["median"] == best, ", ".join(note))


def machine_lines(summary):
    m = summary["machine"]
    r = summary.get("runner") or {}
    return [
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


def settings_lines(summary):
    """The settings that were not the allocators' defaults: the allocator
    environment every run inherited, and hakmem options off their default."""
    env = summary.get("environment")
    if env is None:
        return ["Allocator settings: not recorded (the runner that wrote this raw.jsonl did not record them)."]
    if env:
        out = ["Allocator environment, inherited by every run: "
               + ", ".join(f"`{k}={v}`" for k, v in env.items()) + "."]
    else:
        out = ["Allocator environment: none set (no `HAKMEM_*`, `MALLOC_*`, `MIMALLOC_*`, `TCMALLOC_*`, "
               "`GLIBC_TUNABLES` or `LD_*` variable)."]
    for a in summary["allocators"]:
        if a.get("kind") != "hakmem" or a.get("status") != "available" or "options" not in a:
            continue
        opts = a["options"]
        if opts is None:
            out.append(f"{a['name']}: no option table (the library has no `hak_options_print`).")
            continue
        changed = [o for o in opts if o.get("value") != o.get("default")]
        if changed:
            out.append(f"{a['name']} options not at their default: " + ", ".join(
                f"`{o['name']}` {o['value']} (default {o['default']}, `{o['env']}`)" for o in changed) + ".")
        else:
            out.append(f"{a['name']}: every option at its default.")
        if a.get("options_error"):
            out.append(f"{a['name']}: option table partly unreadable: {a['options_error']}.")
    return out


def noise_lines(summary):
    out = []
    for f in FIGURES:
        x = summary["noise"].get(f.key)
        if x:
            out.append(f"{f.title}: median relative MAD {100 * x['median_rel_mad']:.1f}% over {x['cells']} cells, "
                       f"worst {100 * x['max_rel_mad']:.1f}% ({x['max_at']['label']} / {x['max_at']['allocator']})")
    if out:
        out.append("Differences smaller than about three times the MAD are within the noise of this machine; "
                   "use `scripts/compare` to test a change.")
    else:
        out.append("Too few repetitions to state the noise (need at least 2 ok runs per cell).")
    return out


def load_lines(summary):
    """What the runner saw of the machine's load, in its own words."""
    ld = summary.get("load") or {}
    if ld.get("busy") is None:
        return ["Machine load: not measured (this raw.jsonl was written before the runner measured it)."]
    out = []
    if ld.get("start"):
        out.append(f"Machine load before the first run: {ld['start'].get('said')}.")
    if ld.get("during"):
        out.append(f"Machine load during the runs: {ld['during'].get('said')}.")
    return out


def us_text(x):
    return "–" if x is None else f"{x:.3g}"


def page_cost_line(summary):
    """The machine's page costs (the runner measures them once per run), in
    one line: what a write of a 4 KiB page costs after each kind of
    page-table work."""
    pc = summary.get("page_costs")
    if pc is None:
        return "Page costs: not measured (this raw.jsonl was written before the runner measured them)."
    if pc.get("error"):
        return f"Page costs: could not be measured ({pc['error']})."
    costs = "; ".join(f"{what} {us_text(pc.get(k))}" for k, what in benchdata.PAGE_COSTS)
    where = ""
    if len(summary.get("hosts") or []) > 1 and summary.get("shards"):
        # a merged run keeps the first shard's context (scripts/merge.py)
        where = (f" These are the first shard's host's ({summary['shards'][0].get('host')}); each shard's raw.jsonl "
                 f"has its own host's.")
    return (f"Page costs, µs per 4 KiB page written (median of {pc.get('reps')} writes of "
            f"{(pc.get('region_bytes') or 0) >> 20} MiB, measured once before the first run in "
            f"{1000 * (pc.get('seconds') or 0):.0f} ms): {costs}.{where}")


def machine_section(summary):
    c = summary["counts"]
    runs = (f"Runs: {c.get('ok', 0)} ok, {c.get('failed', 0)} failed, {c.get('invalid', 0)} invalid"
            f"{'; the run was interrupted' if summary.get('interrupted') else ''}.")
    lines = (machine_lines(summary) + [page_cost_line(summary)] + load_lines(summary) + settings_lines(summary)
             + noise_lines(summary) + [runs])
    return Section("Machine and noise", items=[(None, l) for l in lines])


def busy_section(summary):
    """The report's first words when the machine was busy."""
    head = (summary.get("load") or {}).get("headline")
    if not head:
        return None
    return Section("Time figures unreliable: the machine was busy",
                   text=[f"**{head}**", "Other processes took CPU time while the runs were timed, so times and "
                         "throughputs (and any ratio of them) carry their noise; counts (instructions, page faults) "
                         "and memory figures are less affected. The runner's own words are under \"Machine and "
                         "noise\"."])


def subject_text(s, limit=100):
    s = str(s)
    return s if len(s) <= limit else s[:limit - 1].rstrip() + "…"


def revision_text(name, rev):
    if not rev:
        return f"`{name}`"
    rev = dict(rev, subject=subject_text(rev.get("subject")))
    t = f"`{name}`: {rev.get('requested')} = commit {str(rev.get('commit'))[:12]}"
    if rev.get("worktree_changes"):
        t += (f", the working tree of {str(rev.get('base'))[:12]} with its uncommitted changes included "
              f"(\"{rev.get('subject')}\" and what is not committed)")
    else:
        t += f" (\"{rev.get('subject')}\")"
    return t


def ratio_interval(r):
    if r.get("low") is None:
        return "–"
    return f"{r['low']:.3f}–{r['high']:.3f}"


def ab_section(summary):
    """The A/B verdict table of a `hakbench ab` run."""
    ab = summary.get("ab")
    if not ab:
        return None
    f = FIG[ab["figure"]]
    conf, each = ab["confidence"], ab["per_workload_confidence"]
    instr = any("instr_a" in r for r in ab["rows"])
    rows = []
    for r in ab["rows"]:
        row = [r["label"]]
        if "ratio" in r:
            row += [Cell(f.text(r["a"]["median"]), False, f"±{100 * (r['a']['rel_mad'] or 0):.0f}%, n={r['a']['n']}"),
                    Cell(f.text(r["b"]["median"]), False, f"±{100 * (r['b']['rel_mad'] or 0):.0f}%, n={r['b']['n']}"),
                    f"{r['ratio']:.3f}", ratio_interval(r),
                    f"**{r['verdict']}**" if r["verdict"] in ("faster", "slower") else r["verdict"]]
        else:
            row += ["–", "–", "–", "–", "no timed runs of both"]
        if instr:
            ia, ib, ir = r.get("instr_a"), r.get("instr_b"), r.get("instr_ratio")
            row += ["–" if ia is None else f"{ia:.1f}", "–" if ib is None else f"{ib:.1f}",
                    "–" if ir is None else f"{ir:.3f}"]
        rows.append(row)
    if ab.get("geomean_ratio"):
        rows.append(["geomean", "", "", f"{ab['geomean_ratio']:.3f}", "", ""] + (["", "", ""] if instr else []))
    cols = [("workload", False), (f"A {f.unit}", True), (f"B {f.unit}", True), ("B/A", True),
            (f"interval ({100 * each:.4g} %)", True), ("verdict", False)]
    if instr:
        cols += [("A instr/op", True), ("B instr/op", True), ("instr B/A", True)]
    v = ab["verdicts"]
    text = [f"A is {revision_text(ab['a'], ab.get('a_revision'))}.",
            f"B is {revision_text(ab['b'], ab.get('b_revision'))}.",
            f"Both ran in one matrix, interleaved (repetition > case > allocator, the order rotated each "
            f"repetition). Per workload: the ratio B/A of the {f.title} (Hodges–Lehmann: the median of all "
            f"ratios of a B run to an A run) and its distribution-free interval (Mann–Whitney, on the logarithms). "
            f"The verdict is \"faster\" or \"slower\" when the whole interval lies below or above 1, \"no "
            f"difference detected\" otherwise. The intervals are at {100 * each:.4g} % each, so that all "
            f"{ab['workloads_compared']} hold together at {100 * conf:.4g} % (Bonferroni).",
            f"Verdicts: {v['faster']} faster, {v['slower']} slower, {v['no difference detected']} no difference "
            f"detected."]
    notes = []
    if instr:
        notes.append("Instructions per op (callgrind, whole process, one run each) are deterministic: on a busy "
                     "machine they are the figure to trust; a time verdict that disagrees with them is worth a "
                     "second run on a quiet machine.")
    if (summary.get("load") or {}).get("busy"):
        notes.append("The machine was busy (see the top of the report): the intervals are honest about the noise "
                     "they saw, but wider than on a quiet machine.")
    return Section("A/B: B against A", text=text, table=Table(cols, rows), notes=notes)


def shards_section(summary):
    """A merged run: its shards, their hosts and cases."""
    sh = summary.get("shards")
    if not sh:
        return None
    rows = []
    for s in sh:
        c = s.get("counts") or {}
        ld = s.get("load_start") or {}
        rows.append([f"{s['index']}/{s['count']}", str(s.get("host")), ", ".join(s.get("cases") or []),
                     f"{c.get('ok', 0)} ok, {c.get('failed', 0)} failed, {c.get('invalid', 0)} invalid",
                     str(s.get("started")), "busy" if ld.get("busy") else "quiet" if ld.get("measured") else "–",
                     f"`{s.get('dir')}`"])
    hosts = summary.get("hosts") or []
    text = [f"This run joins {len(sh)} shards (`hakbench merge`), run on {len(hosts)} host(s): "
            f"{', '.join(str(h) for h in hosts)}. A shard is some of the suite's cases under every allocator, "
            f"interleaved on one machine, so every ratio in this report sets runs of one host against each other; "
            f"a case that ran on two hosts is shown once per host (`case@host`)."]
    cols = [("shard", False), ("host", False), ("cases", False), ("runs", False), ("started", False),
            ("load at start", False), ("directory", False)]
    return Section("Shards and hosts", text=text, table=Table(cols, rows))


def ab_title(summary):
    ab = summary.get("ab")
    return f"A/B: {ab['b']} against {ab['a']}: {summary.get('suite')}" if ab else None


def allocators_section(summary):
    rows = []
    for a in summary["allocators"]:
        if a.get("kind") == "floor":
            rows.append([a["name"], "floor", "–", "no preload: the workload's `--floor` recycle", str(a.get("status"))])
            continue
        status = a.get("status")
        if status == "available" and a.get("probe_preload_ok") is False:
            status = "available, but the probe saw malloc from " + str(a.get("probe_malloc_from"))
        lib = a.get("realpath") or a.get("library")
        if a.get("cflags"):
            lib += f" (cflags: `{a['cflags']}`)"
        rows.append([a["name"], str(a.get("kind")), a.get("version") or "–", str(lib), str(status)])
    cols = [("allocator", False), ("kind", False), ("version", False), ("library", False), ("status", False)]
    return Section("Allocators", table=Table(cols, rows))


def glance_section(summary):
    figs = [f for f in FIGURES if f.headline and any(f.key in g for g in summary["geomean"].values())]
    if not figs:
        return None
    rows = []
    for a in summary["available"]:
        geo = summary["geomean"].get(a, {})
        rows.append([a] + [ratio_text(geo[f.key]["geomean_ratio"] if f.key in geo else None) for f in figs])
    return Section("At a glance: geometric mean of the ratios to the best reference allocator", level=3,
                   table=Table([("allocator", False)] + [(f.short, True) for f in figs], rows),
                   notes=["Ratios: time, RSS, fragmentation and instructions below 1.00× and throughput above "
                          "1.00× beat the best reference allocator."])


def floor_cell(f, c):
    """The floor's figure: its median and spread; never a best, no ratio."""
    if not c:
        return "–"
    return Cell(f.text(c["median"]), False, f"±{100 * c['rel_mad']:.0f}%" if c.get("rel_mad") is not None
                and c["n"] >= 2 else "")


def floor_column(summary, f):
    """Whether figure f's table gets a floor column: the figure is one the
    floor is shown beside and some case has the floor's value."""
    fl = summary.get("floor")
    return bool(f.floor and fl and any(f.key in summary["cells"].get(l, {}).get(fl, {}) for l in summary["cases"]))


def figure_section(summary, f):
    """One headline figure: a row per case, a column per allocator (and one
    for the floor, after them, when it has the figure)."""
    allocs = summary["available"]
    fl = summary.get("floor") if floor_column(summary, f) else None
    rows = []
    for label in summary["cases"]:
        byalloc = summary["cells"].get(label, {})
        meds = [byalloc[a][f.key]["median"] for a in allocs if f.key in byalloc.get(a, {})]
        if not meds:
            continue
        best = f.best(meds)
        rows.append([label] + [figure_cell(f, byalloc[a][f.key], best) if f.key in byalloc.get(a, {}) else "–"
                               for a in allocs]
                    + ([floor_cell(f, byalloc.get(fl, {}).get(f.key))] if fl else []))
    if not rows:
        return None
    if len(rows) > 1:
        geo = [summary["geomean"].get(a, {}).get(f.key) for a in allocs]
        rows.append(["geomean ratio"] + [ratio_text(g["geomean_ratio"] if g else None) for g in geo]
                    + (["–"] if fl else []))
    notes = [f"{fl}: the workload's own cost (its `--floor` run, no allocator in its timed work; see \"What the "
             f"allocator can change\"), not an allocator: never in bold, no ratio, not in the geomean."] if fl else []
    return Section(f"{f.title} ({f.unit}, {f.better} is better)", level=3,
                   table=Table([("workload", False)] + [(a, True) for a in allocs] + ([(fl, True)] if fl else []),
                               rows), notes=notes)


def pct(x):
    return "–" if x is None else f"{100 * x:.0f}%"


def floor_sections(summary):
    """"What the allocator can change": per case the floor's time per op, the
    fastest allocator's and the difference; then every allocator's time above
    the floor. A section that says why when there is no floor figure; none
    when the run has no time per op at all."""
    f = FIG[benchdata.FLOOR_FIGURE]
    timed = [l for l in summary["cases"]
             if any(f.key in summary["cells"].get(l, {}).get(a, {}) for a in summary["available"])]
    if not timed:
        return []
    title = "What the allocator can change"
    af = summary.get("above_floor") or {}
    if not af:
        if summary.get("floor_ran") is False:
            why = "the run was made without floor runs (`--no-floor`)."
        elif summary.get("floor") is None:
            why = "this raw.jsonl was written before the runner made floor runs."
        else:
            why = "every floor run failed or was invalid (see \"Skipped, failed and invalid runs\")."
        return [Section(title, text=[f"No floor figures: {why}"])]
    fl = summary["floor"]
    rows = []
    for label in timed:
        x = af.get(label)
        if not x:
            continue
        b = x["best"]
        rows.append([label, floor_cell(f, summary["cells"][label][fl][f.key]), b["allocator"], f.text(b["median"]),
                     f.text(b["median"] - x["floor"]["median"]), pct(x["floor_share_of_best"])])
    missing = [l for l in timed if l not in af]
    text = [f"The floor is each workload run once more per repetition with `--floor`: every malloc, free and "
            f"realloc of its timed work goes to a trivial recycle set up before timing, everything else (random "
            f"numbers, writing and checking blocks, queues, threads) stays. Its time per op is the workload's own "
            f"cost, which no allocator can change; what lies above it is the allocator's part. Medians over the ok "
            f"repetitions, in {f.unit}."]
    notes = [f"No floor figure for {', '.join(missing)}: the floor runs of these cases failed or were invalid "
             f"(see \"Skipped, failed and invalid runs\")."] if missing else []
    first = Section(title, text=text, notes=notes, table=Table(
        [("workload", False), (f"floor {f.unit}", True), ("fastest allocator", False), (f"its {f.unit}", True),
         (f"difference {f.unit}", True), ("floor's share of its time", True)], rows))

    allocs = summary["available"]
    rows, negative = [], False
    for label in timed:
        x = af.get(label)
        if not x:
            continue
        row = [label]
        for a in allocs:
            c = x["allocators"].get(a)
            if c is None:
                row.append("–")
                continue
            negative |= c["above_floor"] < 0
            row.append(Cell(f.text(c["above_floor"]), a == x["best"]["allocator"], pct(c["share_above_floor"])))
        rows.append(row)
    notes = ["Each cell: the allocator's median time per op minus the floor's, and in brackets that difference as "
             "a share of the allocator's time (**lowest** in bold). The floor's spread is in the table above: a "
             "difference within a few times it is noise."]
    if negative:
        notes.append("A negative figure: the allocator's median fell below the floor's (noise, or on that workload "
                     "the floor's recycle costs more than the allocator).")
    second = Section(f"Time above the floor ({f.unit}, lower is better)", level=3,
                     table=Table([("workload", False)] + [(a, True) for a in allocs], rows), notes=notes)
    return [first, second]


def mib_text(b):
    return "–" if b is None else f"{b / 1048576:.1f}"


def memory_sections(summary):
    """"Where hakmem's memory is": per case and hakmem variant, its own
    account (the stats runs) of the resident memory at the process's peak
    RSS and at exit, split into MEMORY_PARTS; or why there is none."""
    title = "Where hakmem's memory is"
    mem = summary.get("memory") or {}
    hakmem = [a["name"] for a in summary["allocators"] if a.get("kind") == "hakmem" and a.get("status") == "available"]
    if not hakmem:
        return []
    if not mem:
        if summary.get("stats_ran") is False:
            why = "the run was made without the stats pass (`--no-stats`)."
        elif summary.get("stats_ran") is None:
            why = "this raw.jsonl was written before the runner made stats runs."
        else:
            why = "every stats run failed (see \"Skipped, failed and invalid runs\")."
        return [Section(title, text=[f"No figures: {why}"])]
    parts = benchdata.MEMORY_PARTS
    text = ["After the timed repetitions, each case runs once more under each hakmem variant, untimed, with "
            "`HAKMEM_STATS=json HAKMEM_STATS_PEAK=1`: the library writes its own account of its memory at exit and "
            "as it was when the process's RSS was highest. Its resident memory (mincore) is split by kind; "
            "within slabs it is given first to the blocks in use, then to the blocks cached in thread magazines "
            "and the transfer cache (all were written when handed out), the rest to free blocks; within medium chunks first to the runs in "
            "use. \"outside hakmem\" is the rest of the process's RSS: the program, its libraries and stacks, and "
            "what a workload maps for itself (burst_idle's arrays of pointers and sizes, for one). "
            "\"pooled\" is empty slabs and SuperSlab units kept for reuse. MiB; the parts sum to the RSS at the "
            "moment the figures were taken."]
    rows = []
    for label in summary["cases"]:
        for a in hakmem:
            c = mem.get(label, {}).get(a)
            if not c:
                continue
            at = c.get("peak") or c.get("end")
            rss, live = c.get("peak_rss_kib"), c.get("peak_live_bytes")
            p = at["parts"]
            rows.append([label, a + ("" if c.get("peak") else " (at exit: no peak figures)"),
                         mib_text(rss * 1024 if rss else None), mib_text(live),
                         mib_text(rss * 1024 - live if rss and live else None),
                         mib_text(at["figures"].get("process_rss_bytes"))] + [mib_text(p[k]) for k, _ in parts])
    cols = ([("workload", False), ("allocator", False), ("peak RSS", True), ("program's peak live", True),
             ("peak RSS − live", True), ("RSS then", True)] + [(t, True) for _, t in parts])
    notes = ["peak RSS − live is the fragmentation figure's excess (peak RSS over the bytes the program itself had "
             "live at its peak); the columns after \"RSS then\" say where it went. The stats run's peak RSS can "
             "differ a little from the timed runs'."]
    first = Section(title, text=text, table=Table(cols, rows), notes=notes)
    rows = []
    for label in summary["cases"]:
        for a in hakmem:
            c = mem.get(label, {}).get(a)
            if not c or not c.get("end"):
                continue
            p = c["end"]["parts"]
            rows.append([label, a, mib_text(c["end"]["figures"].get("process_rss_bytes"))]
                        + [mib_text(p[k]) for k, _ in parts])
    cols = [("workload", False), ("allocator", False), ("RSS at exit", True)] + [(t, True) for _, t in parts]
    second = Section("At exit", level=3, table=Table(cols, rows),
                     notes=["What each variant still held when the process exited, after the program's last "
                            "frees."])
    return [first, second]


def page_work_section(summary):
    """"Page-table work per operation": per workload and allocator, the
    process's minor faults per op (timed runs), and for hakmem variants the
    4 KiB pages its statistics say it moved with mremap and decommitted with
    MADV_DONTNEED, per op (the stats run); the page costs to price them."""
    pw = summary.get("page_work") or {}
    f = FIG["minflt_per_op"]
    hakmem = {a["name"] for a in summary["allocators"] if a.get("kind") == "hakmem"}
    rows, uncounted = [], False
    for label in summary["cases"]:
        byalloc = pw.get(label, {})
        meds = [byalloc[a]["minflt_per_op"]["median"] for a in summary["available"]
                if (byalloc.get(a) or {}).get("minflt_per_op")]
        best = f.best(meds) if meds else None
        for a in summary["available"]:
            c = byalloc.get(a)
            if not c:
                continue
            row = [label, a, figure_cell(f, c["minflt_per_op"], best) if c.get("minflt_per_op") else "–"]
            for k in ("moved_pages_per_op", "decommitted_pages_per_op"):
                if a not in hakmem or not c.get("stats_row"):
                    row.append("–")
                elif c.get(k) is None:
                    row.append("not counted")
                    uncounted = True
                else:
                    row.append(f.text(c[k]))
            rows.append(row)
    if not rows:
        return None
    text = ["The page-table work behind the time figures, as counts that travel between machines: the process's "
            "minor page faults per op (timed runs, medians; **fewest** in bold, ± relative MAD, ratio to the best "
            "reference allocator) and, for hakmem variants, the 4 KiB pages its own statistics say it moved with "
            "mremap and decommitted with MADV_DONTNEED, per op (the stats run; cumulative over the whole process, "
            "like the faults).", page_cost_line(summary)]
    notes = ["To price a count with this machine's costs: a minor fault costs about a write after munmap or "
             "MADV_DONTNEED less a resident write; a moved page costs, at its first write, a write after a move less "
             "a resident write (the 2 MiB-aligned figure where the move kept its huge-page alignment, else the "
             "64 KiB one). Decommitted pages are paid as faults when they are written again (already in the fault "
             "count); they say where the faults come from."]
    if uncounted:
        notes.append("not counted: the variant's statistics do not carry the figure (`total.moved_bytes`, "
                     "`total.decommitted_bytes`: libraries older than those counters).")
    if not any(c.get("stats_row") for byalloc in pw.values() for a, c in byalloc.items() if a in hakmem) and hakmem:
        notes.append("No stats run (`--no-stats`, or written before the runner made them): no moved or decommitted "
                     "pages.")
    cols = [("workload", False), ("allocator", False), (f"minor faults/op", True), ("pages moved/op", True),
            ("pages decommitted/op", True)]
    return Section("Page-table work per operation", text=text, table=Table(cols, rows), notes=notes)


def other_section(summary):
    figs = [f for f in FIGURES if f.other]
    rows = []
    for label in summary["cases"]:
        for a in summary["available"]:
            c = summary["cells"].get(label, {}).get(a)
            if not c or "user_s" not in c:
                continue
            rows.append([label, a] + [f.text(c.get(f.key, {}).get("median")) for f in figs])
    cols = [("workload", False), ("allocator", False)] + [(f"{f.short} {f.unit}", True) for f in figs]
    return Section("Other figures (medians)", table=Table(cols, rows))


def problem_items(summary):
    out = []
    for a in summary["allocators"]:
        if a.get("status") != "available":
            out.append(("skipped", f"allocator {a['name']}: {a.get('skip_reason')}"))
    for s in summary["skipped_cases"]:
        out.append(("skipped", f"case {s['label']} ({s['mode']}): {s['reason']}"))
    for p in summary["problems"]:
        sig = f", signal {p['signal']}" if p.get("signal") else ""
        mode = f" ({p['mode']})" if p.get("mode") in ("callgrind", "stats") else ""
        out.append((p["status"], f"{p['label']} / {p['allocator']} rep {p['rep']}{mode}: {p['reason']}{sig} "
                                 f"(log {p.get('log')})"))
    return out


def plot_sections(plots, no_plots_why):
    if plots is None:
        return [Section("Plots", text=[f"No plots: {no_plots_why}."])]
    if not plots:
        return [Section("Plots", text=["No plots: no figure has values to draw."])]
    return [Section("Plots")] + [Section(p.title, level=3, plots=[p]) for p in plots]


def build_report(summary, plots, no_plots_why):
    """The report: its title and its sections, in order."""
    title = ab_title(summary) or f"Allocator benchmark: {summary.get('suite')}"
    sections = [s for s in (busy_section(summary), ab_section(summary)) if s]
    sections += [machine_section(summary), allocators_section(summary)]
    sections += [s for s in (shards_section(summary),) if s]
    sections += [
                Section("Headline", text=["Each cell: median over the ok repetitions (**best** in bold), ± relative "
                                          "MAD, and the ratio to the best reference allocator for that workload. "
                                          "The geomean row is the geometric mean of the ratios."])]
    sections += [s for s in [glance_section(summary)] + [figure_section(summary, f) for f in FIGURES if f.headline]
                 if s]
    sections += floor_sections(summary)
    sections += memory_sections(summary)
    sections += [s for s in (page_work_section(summary),) if s]
    sections.append(other_section(summary))
    sections += plot_sections(plots, no_plots_why)
    items = problem_items(summary)
    files = (f"Raw rows: `raw.jsonl` (schema {summary.get('raw_schema')}); aggregates: `summary.json`"
             + (f"; plots: `{PLOT_DIR}/*.png`, embedded in `report.html`." if plots else "."))
    sections.append(Section("Skipped, failed and invalid runs", text=[] if items else ["None."], items=items,
                            notes=[files]))
    return title, str(summary.get("started")), sections


# ---- the Markdown emitter ---------------------------------------------------------------

def md_cell(c):
    if isinstance(c, Cell):
        t = f"**{c.text}**" if c.best else c.text
        return t + (f" ({c.note})" if c.note else "")
    return c


def render_markdown(title, subtitle, sections):
    L = [f"# {title} ({subtitle})", ""]
    for s in sections:
        L += ["#" * s.level + " " + s.title, ""]
        for p in s.text:
            L += [p, ""]
        if s.items:
            L += [f"- {lead}: {text}" if lead else f"- {text}" for lead, text in s.items] + [""]
        if s.table:
            t = s.table
            L.append("| " + " | ".join(h for h, _ in t.columns) + " |")
            L.append("|" + "".join("---:|" if num else "---|" for _, num in t.columns))
            L += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in t.rows]
            L.append("")
        for n in s.notes:
            L += [n, ""]
        for p in s.plots:
            L += [f"![{p.title}]({p.file})", ""]
    return "\n".join(L)


# ---- the HTML emitter -------------------------------------------------------------------

CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:14px}
th,td{border:1px solid #ccc;padding:3px 8px}td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f2f2f2}td.best{font-weight:bold;background:#eef7ee}small{color:#666}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}code{background:#f4f4f4;padding:0 3px}
"""


def inline_html(text):
    """Escapes text; `code` spans and **bold** become their HTML."""
    t = html.escape(text, quote=False)
    t = re.sub(r"`([^`]*)`", r"<code>\1</code>", t)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)


def html_cell(c, numeric):
    cls = "n" if numeric else ""
    if isinstance(c, Cell):
        cls += " best" if c.best else ""
        body = html.escape(c.text) + (f" <small>{html.escape(c.note)}</small>" if c.note else "")
    else:
        body = inline_html(c)
    return f"<td class='{cls.strip()}'>{body}</td>" if cls.strip() else f"<td>{body}</td>"


def render_html(title, subtitle, sections):
    e = html.escape
    H = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
         f"<style>{CSS}</style></head><body>",
         f"<h1>{e(title)} <small>{e(subtitle)}</small></h1>"]
    for s in sections:
        H.append(f"<h{s.level}>{e(s.title)}</h{s.level}>")
        H += [f"<p>{inline_html(p)}</p>" for p in s.text]
        if s.items:
            H.append("<ul>" + "".join(f"<li><b>{e(lead)}</b>: {inline_html(text)}</li>" if lead
                                      else f"<li>{inline_html(text)}</li>" for lead, text in s.items) + "</ul>")
        if s.table:
            t = s.table
            H.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h, _ in t.columns) + "</tr>")
            H += ["<tr>" + "".join(html_cell(c, num) for c, (_, num) in zip(row, t.columns)) + "</tr>"
                  for row in t.rows]
            H.append("</table>")
        H += [f"<p>{inline_html(n)}</p>" for n in s.notes]
        H += [f"<img alt='{e(p.title)}' src='data:image/png;base64,{base64.b64encode(p.png).decode('ascii')}'>"
              for p in s.plots]
    H.append("</body></html>\n")
    return "\n".join(H)


# ---- plots ------------------------------------------------------------------------------

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
    return buf.getvalue()


FLOOR_COLOR = "#b0b0b0"


def color_map(allocs, floor):
    """A colour per allocator; the floor's is a light grey (drawn hatched or
    dashed, so it reads as no allocator)."""
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf"]
    colors = {a: palette[i % len(palette)] for i, a in enumerate(allocs)}
    if floor:
        colors[floor] = FLOOR_COLOR
    return colors


def file_name(*parts):
    return os.path.join(PLOT_DIR, "-".join(re.sub(r"[^A-Za-z0-9_.-]", "_", str(p)) for p in parts) + ".png")


def plot_bars(plt, summary, f, colors):
    """One small panel per workload: a bar per allocator (median) with a
    min-max error bar; for a figure the floor is shown beside, a last,
    hatched bar for the floor."""
    fl = summary.get("floor") if floor_column(summary, f) else None
    allocs = summary["available"] + ([fl] if fl else [])
    labels = [l for l in summary["cases"] if any(f.key in summary["cells"].get(l, {}).get(a, {}) for a in allocs)]
    if not labels:
        return None
    ncol = min(4, len(labels))
    nrow = (len(labels) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False)
    for i, label in enumerate(labels):
        ax = axes[i // ncol][i % ncol]
        xs, meds, lo, hi, cs, hatched = [], [], [], [], [], []
        for j, a in enumerate(allocs):
            c = summary["cells"].get(label, {}).get(a, {}).get(f.key)
            if not c:
                continue
            xs.append(j)
            meds.append(c["median"] / f.scale)
            lo.append((c["median"] - c["min"]) / f.scale)
            hi.append((c["max"] - c["median"]) / f.scale)
            cs.append(colors[a])
            hatched.append(a == fl)
        bars = ax.bar(xs, meds, color=cs, yerr=[lo, hi], capsize=3)
        for bar, h in zip(bars, hatched):
            if h:
                bar.set_hatch("//")
        ax.set_xticks(range(len(allocs)))
        ax.set_xticklabels(allocs, rotation=45, ha="right", fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    for k in range(len(labels), nrow * ncol):
        axes[k // ncol][k % ncol].axis("off")
    fig.suptitle(f"{f.title} ({f.unit}, {f.better} is better); bars: median, whiskers: min–max"
                 + (f"; hatched: {fl}, the workload's own cost" if fl else ""), fontsize=10)
    fig.tight_layout()
    return Plot(f.title, file_name(f.key), png(plt, fig))


PART_COLORS = ["#4c72b0", "#dd8452", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#e0e0e0"]


def plot_memory(plt, summary):
    """One panel per case: a stacked bar per hakmem variant of where its
    resident memory was at the peak RSS (MEMORY_PARTS), a black tick at the
    program's peak live bytes."""
    mem = summary.get("memory") or {}
    labels = [l for l in summary["cases"] if any((c.get("peak") or c.get("end")) for c in mem.get(l, {}).values())]
    if not labels:
        return None
    parts = benchdata.MEMORY_PARTS
    ncol = min(4, len(labels))
    nrow = (len(labels) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 2.9 * nrow), squeeze=False)
    for i, label in enumerate(labels):
        ax = axes[i // ncol][i % ncol]
        allocs = [a for a in mem[label] if mem[label][a].get("peak") or mem[label][a].get("end")]
        for j, a in enumerate(allocs):
            c = mem[label][a]
            p = (c.get("peak") or c.get("end"))["parts"]
            bottom = 0.0
            for (k, t), color in zip(parts, PART_COLORS):
                v = (p.get(k) or 0) / 1048576
                ax.bar(j, v, bottom=bottom, color=color, label=t if i == 0 and j == 0 else None, width=0.6)
                bottom += v
            if c.get("peak_live_bytes"):
                live = c["peak_live_bytes"] / 1048576
                ax.plot([j - 0.38, j + 0.38], [live, live], color="black", lw=1.5)
        ax.set_xticks(range(len(allocs)))
        ax.set_xticklabels([a.replace("hakmem-", "") for a in allocs], rotation=30, ha="right", fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.set_ylabel("MiB", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for k in range(len(labels), nrow * ncol):
        axes[k // ncol][k % ncol].axis("off")
    fig.legend(loc="lower center", ncol=len(parts), fontsize=7, frameon=False)
    fig.suptitle("Where hakmem's memory is at the peak RSS (its own account, MiB); black line: the program's "
                 "peak live bytes", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return Plot("Where hakmem's memory is at the peak RSS", file_name("memory"), png(plt, fig))


def median_row(rows):
    """The row whose ns/op is the median of its group (for a representative timeline)."""
    rs = sorted(rows, key=lambda r: r.get("ns_per_op") or 0)
    return rs[(len(rs) - 1) // 2] if rs else None


def timeline_rows(summary, rows, label):
    """{allocator: the median ok run of this case that has a timeline}."""
    out = {}
    for a in summary["available"]:
        r = median_row([x for x in rows if x["label"] == label and x["allocator"] == a
                        and x.get("status") == "ok" and x.get("mode") == "measure"])
        if r and len((r.get("timeline") or {}).get("t_s") or []) >= 2:
            out[a] = r
    return out


def plot_timeline(plt, label, runs, colors):
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for a, r in runs.items():
        tl = r["timeline"]
        ax.plot(tl["t_s"], [v / 1024 for v in tl["rss_kib"]], label=a, color=colors[a], lw=1.3)
        if tl.get("rss_nolazy_kib") and tl["rss_nolazy_kib"] != tl["rss_kib"]:
            ax.plot(tl["t_s"], [v / 1024 for v in tl["rss_nolazy_kib"]], color=colors[a], lw=0.8, ls="--")
        for p in r.get("phases") or []:
            ax.axvline(p["t_s"], color=colors[a], lw=0.4, alpha=0.5)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("RSS MiB")
    ax.set_title(f"RSS over time: {label} (median run per allocator; dashed: Rss−LazyFree; thin lines: phases)",
                 fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return Plot(f"RSS over time: {label}", file_name("rss", label), png(plt, fig))


def scaling_groups(rows):
    """Workloads run at several thread counts: {workload: {threads: labels}}."""
    groups = {}
    for r in rows:
        if r.get("status") != "ok" or r.get("mode") != "measure" or r.get("threads") is None:
            continue
        groups.setdefault(r["workload"], {}).setdefault(int(r["threads"]), set()).add(r["label"])
    return {w: g for w, g in groups.items() if len(g) >= 2}


def plot_scaling(plt, summary, rows, workload, group, colors):
    f = FIG["ops_per_sec"]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    fl = summary.get("floor")
    for a in summary["available"] + ([fl] if fl else []):
        xs, ys = [], []
        for t in sorted(group):
            vals = [r["ops_per_sec"] for r in rows if r["workload"] == workload and r.get("threads") == t
                    and r["allocator"] == a and r.get("status") == "ok" and r.get("ops_per_sec")
                    and r.get("mode") == "measure"]
            if vals:
                xs.append(t)
                ys.append(benchdata.median(vals) / f.scale)
        if xs:
            ax.plot(xs, ys, marker="o", label=a + (" (the workload's own cost)" if a == fl else ""), color=colors[a],
                    ls="--" if a == fl else "-")
    ax.set_xlabel("threads")
    ax.set_ylabel(f"{f.unit} (median)")
    ax.set_xticks(sorted(group))
    ax.set_title(f"thread scaling: {workload}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return Plot(f"thread scaling: {workload}", file_name("scaling", workload), png(plt, fig))


def make_plots(summary, rows):
    """The plots: a bar plot per plotted figure, RSS over time for every case
    whose runs sampled it, thread scaling where a workload ran at several
    thread counts. None when matplotlib is missing."""
    plt = load_matplotlib()
    if plt is None:
        return None
    colors = color_map(summary["available"], summary.get("floor"))
    plots = [plot_bars(plt, summary, f, colors) for f in FIGURES if f.plot]
    plots.append(plot_memory(plt, summary))
    for label in summary["cases"]:
        runs = timeline_rows(summary, rows, label)
        if runs:
            plots.append(plot_timeline(plt, label, runs, colors))
    for wl, group in sorted(scaling_groups(rows).items()):
        plots.append(plot_scaling(plt, summary, rows, wl, group, colors))
    return [p for p in plots if p]


def write_plots(run, plots):
    """Writes the plots to <run>/plots/, after removing the PNG files an
    earlier rendering left there."""
    d = os.path.join(run, PLOT_DIR)
    if os.path.isdir(d):
        for name in os.listdir(d):
            if name.endswith(".png"):
                os.remove(os.path.join(d, name))
    for p in plots or []:
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(run, p.file), "wb") as f:
            f.write(p.png)


# ---- main -------------------------------------------------------------------------------

def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    opts = [a for a in argv[1:] if a.startswith("--")]
    hist = [o[len("--history="):] for o in opts if o.startswith("--history=")]
    if len(args) != 1 or any(o not in ("--no-plots", "--no-history") and not o.startswith("--history=") for o in opts) \
            or any(not h for h in hist):
        print("usage: report.py results/<run> [--no-plots] [--no-history] [--history=FILE]", file=sys.stderr)
        return 2
    run = args[0]
    if not os.path.exists(os.path.join(run, "raw.jsonl")):
        print(f"report: {run}/raw.jsonl not found", file=sys.stderr)
        return 2
    try:
        _, rows, summary = benchdata.load_summary(run)
    except benchdata.RawError as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    with open(os.path.join(run, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, sort_keys=False)
        f.write("\n")
    if "--no-plots" in opts:
        plots, why = None, "--no-plots was given"
    else:
        plots, why = make_plots(summary, rows), "matplotlib is not installed (Debian: python3-matplotlib)"
    write_plots(run, plots)
    title, subtitle, sections = build_report(summary, plots, why)
    with open(os.path.join(run, "report.md"), "w", encoding="utf-8") as f:
        f.write(render_markdown(title, subtitle, sections))
    with open(os.path.join(run, "report.html"), "w", encoding="utf-8") as f:
        f.write(render_html(title, subtitle, sections))
    print(f"report: {run}/report.md, {run}/report.html, {run}/summary.json")
    if "--no-history" not in opts:
        import history  # scripts/history.py; it imports this module, so not at the top
        try:
            path, added = history.add(run, summary, hist[-1] if hist else None)
        except (benchdata.RawError, OSError) as e:
            print(f"report: the history was not updated: {e}", file=sys.stderr)
            return 2
        print(f"report: {'added to' if added else 'already in'} the history {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
