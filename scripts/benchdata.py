"""benchdata — what scripts/report.py and scripts/compare share: the
raw.jsonl reader, the figure table, the statistics and the summary.

A benchmark run's only output is <run>/raw.jsonl (schema hakmem-bench/1,
written by build/harness/hakbench, documented in harness/README.md). Figures
per workload case x allocator are taken over the ok repetitions: median, min,
max and MAD (median absolute deviation). Each allocator's median is divided
by the best reference allocator's median for that case ("ratio"; for
lower-is-better figures < 1 beats the best reference, for higher-is-better
figures > 1 does), and the geometric mean of the ratios across cases sums an
allocator up in one number per figure.

Every figure is one row of FIGURES: how it is read from a row, how it is
shown, and where it appears. Nothing else names a figure by hand.

The floor (allocator kind "floor": every case run with the workload's
--floor, no preload) is not an allocator: its cells are kept, but it is not
in `available`, never a reference or a best, has no ratio and no geometric
mean. `above_floor` sets each allocator's time per op against it: what the
allocator adds to the workload's own cost.

Three more things a summary carries when its run has them:
- `load`: how busy the machine was (the runner's load_start and end load
  rows) and, when it was, the headline that says time figures are
  unreliable.
- `ab` (a run of `hakbench ab`): per workload, B's time per op against A's:
  the Hodges-Lehmann ratio B/A with its distribution-free (Mann-Whitney)
  confidence interval over the interleaved repetitions, and a verdict.
- `shards` (a run joined by scripts/merge.py): the shards and their hosts.
  When one case ran on several hosts, its rows are split by host (the
  label becomes `<label>@<host>`), so no ratio ever sets runs of two
  machines against each other.
"""
import functools
import json
import math
import os
import sys
from dataclasses import dataclass
from typing import Callable, Optional

SCHEMA = "hakmem-bench/1"
SUMMARY_SCHEMA = "hakmem-bench-summary/1"

# Against a few KiB of live data, RSS / live bytes measures the program's own
# footprint, not the allocator: fragmentation is only reported from 1 MiB live.
MIN_FRAG_LIVE = 1 << 20


class RawError(Exception):
    """A raw.jsonl that cannot be read: the message says where and why."""


# ---- the figure table --------------------------------------------------------

@dataclass(frozen=True)
class Figure:
    key: str
    title: str              # a heading: "time per op"
    short: str              # a column heading; with the unit it reads as one
    unit: str               # after scaling
    better: str             # "lower" or "higher"
    scale: float            # the raw value is divided by this for display
    fmt: str                # format of the scaled value
    get: Callable           # an ok row -> its value, or None
    mode: str = "measure"   # which rows have it: "measure" or "callgrind"
    headline: bool = False  # a table of its own and a column "at a glance"
    other: bool = False     # a column of "Other figures"
    plot: bool = False      # a bar plot per workload
    compared: bool = False  # compare shows it by default
    noise: bool = False     # its spread is stated under "Machine and noise"
    floor: bool = False     # the floor's value is shown beside the allocators' (a time, not memory)

    def text(self, v):
        return "–" if v is None else self.fmt.format(v / self.scale)

    def best(self, values):
        return (min if self.better == "lower" else max)(values)


def _field(key):
    return lambda row: row.get(key)


def _positive(get):
    """A value that is not there when it is 0 (a run with no sample)."""
    return lambda row: get(row) or None


def _mem(which, key):
    return _positive(lambda row: ((row.get("mem") or {}).get(which) or {}).get(key))


def _idle(key):
    return lambda row: (row.get("idle") or {}).get(key)


def _fragmentation(row):
    if (row.get("peak_live_bytes") or 0) < MIN_FRAG_LIVE:
        return None
    return row.get("fragmentation")


def _peak_rss(row):
    peak = row.get("peak_rss_kib")
    if peak is None:  # rows from before the runner wrote peak_rss_kib
        peak = max(_mem("peak", "rss_kib")(row) or 0, row.get("maxrss_kib") or 0)
    return peak or None


def _minflt_per_op(row):
    """The process's minor faults per op of the workload: the runner's
    minflt_per_op, or (rows from before the runner wrote it) minflt / ops."""
    v = row.get("minflt_per_op")
    if v is None and row.get("minflt") is not None and row.get("ops"):
        v = row["minflt"] / row["ops"]
    return v


MIB = 1024.0
FIGURES = [
    Figure("ns_per_op", "time per op", "time", "ns/op", "lower", 1.0, "{:.2f}", _field("ns_per_op"),
           headline=True, plot=True, compared=True, noise=True, floor=True),
    Figure("ops_per_sec", "throughput", "throughput", "Mops/s", "higher", 1e6, "{:.2f}", _field("ops_per_sec"),
           headline=True, floor=True),
    Figure("peak_rss_kib", "peak RSS", "peak RSS", "MiB", "lower", MIB, "{:.1f}", _peak_rss,
           headline=True, plot=True, compared=True, noise=True),
    Figure("fragmentation", "fragmentation (peak RSS / peak live bytes)", "fragmentation", "x", "lower", 1.0,
           "{:.2f}", _fragmentation, headline=True),
    Figure("idle_rss_kib", "RSS at the end of the idle period", "idle RSS", "MiB", "lower", MIB, "{:.1f}",
           _idle("rss_at_idle_end_kib"), headline=True, plot=True, compared=True),
    Figure("idle_rss_nolazy_kib", "RSS - LazyFree at the end of the idle period", "idle Rss−LazyFree", "MiB",
           "lower", MIB, "{:.1f}", _idle("rss_nolazy_at_idle_end_kib"), headline=True),
    Figure("user_s", "user CPU", "user", "s", "lower", 1.0, "{:.3f}", _field("user_s"), other=True),
    Figure("sys_s", "system CPU", "sys", "s", "lower", 1.0, "{:.3f}", _field("sys_s"), other=True),
    Figure("minflt", "minor page faults", "minor", "faults", "lower", 1.0, "{:.0f}", _field("minflt"),
           other=True),
    Figure("final_rss_kib", "RSS at the last sample", "final RSS", "MiB", "lower", MIB, "{:.1f}",
           _mem("final", "rss_kib"), other=True),
    Figure("peak_nolazy_kib", "peak RSS - LazyFree", "peak Rss−LazyFree", "MiB", "lower", MIB, "{:.1f}",
           _mem("peak", "rss_nolazy_kib"), other=True),
    Figure("minflt_per_op", "minor page faults per op", "faults/op", "faults/op", "lower", 1.0, "{:.4g}",
           _minflt_per_op),
    Figure("instr_per_op", "instructions per op (callgrind)", "instructions", "instr/op", "lower", 1.0, "{:.1f}",
           _field("instr_per_op"), mode="callgrind", headline=True, plot=True, compared=True, noise=True),
]
FIG = {f.key: f for f in FIGURES}

# The figure the floor is set against in `above_floor`.
FLOOR_FIGURE = "ns_per_op"


def figures_of(row):
    """The figures one ok row contributes, as {key: value}. A stats row
    (hakmem's own account, untimed) contributes none: see memory_breakdown."""
    mode = row.get("mode") or "measure"
    out = {}
    for f in FIGURES:
        if f.mode == mode:
            v = f.get(row)
            if v is not None:
                out[f.key] = v
    return out


# ---- hakmem's own account of its memory (stats rows) ------------------------------

# The parts a stats row's resident memory is split into, in the order they
# are stacked, with their titles. They sum to the process's RSS at the
# moment the figures were taken.
MEMORY_PARTS = [
    ("in_use", "in use by the program (usable sizes)"),
    ("thread_cache", "cached (magazines, transfer cache)"),
    ("slab_free", "free in slabs"),
    ("pooled", "pooled"),
    ("medium_free", "medium free"),
    ("large_cache", "large cache"),
    ("metadata", "metadata"),
    ("outside", "outside hakmem"),
]


def split_resident(s):
    """One set of hakmem's figures (a row's hakmem_stats.end or .peak) as
    resident bytes per MEMORY_PARTS key. hakmem reports residency (mincore)
    per kind of memory, not per block: the resident memory of slabs is given
    first to the blocks in use, then to the blocks cached in magazines and
    the transfer cache (all were written when handed out), the rest to free
    blocks; that of medium chunks
    first to the runs in use. "outside" is the process's RSS that is not
    hakmem's (program, libraries, stacks, libc's own), when the set carries
    the process's RSS (process_rss_bytes); else None."""
    res = s.get("resident") or {}
    slabs, medium = res.get("slabs", 0), res.get("medium", 0)
    small_used = min(s.get("small_in_use_bytes", 0), slabs)
    mags = min(s.get("magazine_bytes", 0) + s.get("transfer_bytes", 0), slabs - small_used)
    medium_used = min(s.get("medium_in_use_bytes", 0), medium)
    out = {
        "in_use": small_used + medium_used + res.get("large", 0),
        "thread_cache": mags,
        "slab_free": slabs - small_used - mags,
        "pooled": res.get("pool", 0) + res.get("superslab_free", 0),
        "medium_free": medium - medium_used,
        "large_cache": res.get("large_cache", 0),
        "metadata": res.get("metadata", 0),
    }
    rss = s.get("process_rss_bytes")
    out["outside"] = max(rss - sum(out.values()), 0) if rss else None
    return out


def memory_breakdown(rows):
    """{label: {allocator: {...}}} from the ok stats rows: the run's peak RSS
    and the program's peak live bytes (the workload's count), and at the
    peak RSS and at exit hakmem's figures and their split (split_resident)."""
    out = {}
    for r in rows:
        hs = r.get("hakmem_stats")
        if r.get("mode") != "stats" or r.get("status") != "ok" or not isinstance(hs, dict) or "end" not in hs:
            continue
        cell = {"peak_rss_kib": _peak_rss(r), "peak_live_bytes": r.get("peak_live_bytes"),
                "final_live_bytes": r.get("final_live_bytes")}
        for when in ("peak", "end"):
            s = hs.get(when)
            cell[when] = None if s is None else {"figures": s, "parts": split_resident(s)}
        out.setdefault(r["label"], {})[r["allocator"]] = cell
    return out


# ---- page-table work (faults, moved and decommitted pages per op) -------------------

# The machine's page costs (the context's page_costs), in the order a report
# names them: (key, what the write came after).
PAGE_COSTS = [
    ("resident", "a resident write (pages mapped and written)"),
    ("munmap", "after munmap (a fresh mapping: a page fault per page)"),
    ("dontneed", "after MADV_DONTNEED (a page fault per page)"),
    ("move_2m", "after an mremap move to a 2 MiB-aligned address"),
    ("move_64k", "after an mremap move to an address 64 KiB past 2 MiB"),
]


def page_work(rows, cells):
    """{label: {allocator: {"minflt_per_op": the cell's stats or None,
    "moved_pages_per_op", "decommitted_pages_per_op": from the allocator's
    ok stats row (hakmem variants), None when the row or the figure is
    missing, "stats_row": whether there was one}}}. Faults per op come from
    the timed runs (medians over the repetitions); moved and decommitted
    pages from the one stats run per case and hakmem variant, whose library
    counts them cumulatively (total.moved_bytes, total.decommitted_bytes)."""
    out = {}
    for label, byalloc in cells.items():
        for alloc, c in byalloc.items():
            if "minflt_per_op" in c:
                out.setdefault(label, {})[alloc] = {"minflt_per_op": c["minflt_per_op"], "stats_row": False,
                                                    "moved_pages_per_op": None, "decommitted_pages_per_op": None}
    for r in rows:
        if r.get("mode") != "stats" or r.get("status") != "ok":
            continue
        cell = out.setdefault(r["label"], {}).setdefault(r["allocator"], {"minflt_per_op": None})
        cell["stats_row"] = True
        for k in ("moved_pages_per_op", "decommitted_pages_per_op"):
            cell[k] = r.get(k)
    return out


# ---- reading -------------------------------------------------------------------

def load_raw(run_dir):
    """Returns (context, rows, skips, end) from <run_dir>/raw.jsonl; end is
    None when the run did not finish. Raises RawError."""
    path = os.path.join(run_dir, "raw.jsonl") if os.path.isdir(run_dir) else run_dir
    context, rows, skips, end, unreadable = None, [], [], None, []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise RawError(f"{path}: {e.strerror}") from e
    with f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                unreadable.append(f"{path}:{n}: skipping unreadable line ({e})")
                continue
            if not isinstance(row, dict) or row.get("schema") != SCHEMA:
                got = row.get("schema") if isinstance(row, dict) else type(row).__name__
                raise RawError(f"{path}:{n}: schema {got!r}, expected {SCHEMA!r}")
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
        raise RawError(f"{path}: no context row")
    # An interrupted run may leave a partial last line: say so, go on.
    for msg in unreadable:
        print(f"{os.path.basename(sys.argv[0])}: {msg}", file=sys.stderr)
    return context, rows, skips, end


# ---- statistics -----------------------------------------------------------------

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


# ---- A/B: the shift between two samples -------------------------------------------

@functools.lru_cache(maxsize=None)
def mw_null_counts(n, m):
    """How many of the C(n+m, n) equally likely arrangements of two samples
    of sizes n and m give each Mann-Whitney U, 0..n*m (no ties)."""
    if n == 0 or m == 0:
        return (1,)
    a = mw_null_counts(n - 1, m)  # the largest value is in the first sample: U grows by m
    b = mw_null_counts(n, m - 1)
    out = [0] * (n * m + 1)
    for u, c in enumerate(a):
        out[u + m] += c
    for u, c in enumerate(b):
        out[u] += c
    return tuple(out)


def mann_whitney_p(a, b):
    """Two-sided p-value of the Mann-Whitney U test (exact for small
    samples without ties, normal approximation otherwise)."""
    n1, n2 = len(a), len(b)
    pooled = sorted((v, i) for i, v in enumerate(a + b))
    ranks = [0.0] * (n1 + n2)
    i = 0
    while i < len(pooled):  # average ranks for ties
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[pooled[k][1]] = (i + j) / 2.0 + 1
        i = j + 1
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2.0
    u = min(u1, n1 * n2 - u1)
    ties = len(set(a + b)) < n1 + n2
    if not ties and n1 * n2 <= EXACT_MAX:
        counts = mw_null_counts(n1, n2)
        tail = sum(c for k, c in enumerate(counts) if k <= u + 1e-9)
        return min(1.0, 2.0 * tail / math.comb(n1 + n2, n1))
    mu = n1 * n2 / 2.0
    sigma = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0)
    z = (abs(u - mu) - 0.5) / sigma if sigma else 0.0
    return math.erfc(max(z, 0.0) / math.sqrt(2))


# Above this many pairs the U distribution is taken as normal.
EXACT_MAX = 900


def shift_interval(a, b, confidence):
    """The shift of b against a: the Hodges-Lehmann estimate (the median
    of the n*m differences y - x) and its distribution-free interval at
    `confidence` from the Mann-Whitney U distribution: the k-th smallest and
    the k-th largest difference, k one more than the largest u with
    P(U <= u) <= (1 - confidence) / 2. Returns (estimate, low, high,
    achieved confidence); low, high and achieved are None when the samples
    are too small for that level."""
    n, m = len(a), len(b)
    d = sorted(y - x for x in a for y in b)
    est = median(d)
    half = (1.0 - confidence) / 2.0
    if n * m <= EXACT_MAX:
        counts = mw_null_counts(n, m)
        total = math.comb(n + m, n)
        cum, k = 0, 0
        for u, c in enumerate(counts):
            cum += c
            if cum / total > half:
                break
            k = u + 1
        if k == 0:
            return est, None, None, None
        achieved = 1.0 - 2.0 * sum(counts[:k]) / total
    else:
        z = _normal_quantile(1.0 - half)
        k = int(math.floor(n * m / 2.0 - z * math.sqrt(n * m * (n + m + 1) / 12.0)))
        if k < 1:
            return est, None, None, None
        achieved = confidence
    return est, d[k - 1], d[n * m - k], achieved


def _normal_quantile(p):
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2)) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def reps_needed(confidence):
    """The fewest repetitions a side for which an interval at `confidence`
    exists: 2 / C(2n, n) <= 1 - confidence."""
    n = 1
    while 2.0 / math.comb(2 * n, n) > 1.0 - confidence:
        n += 1
    return n


AB_FIGURE = "ns_per_op"


def ab_verdicts(context, cells, labels):
    """The A/B table of a run of `hakbench ab` (context["ab"]), or None.
    Per workload with ok runs of both: A's and B's time per op, the ratio
    B/A (Hodges-Lehmann, on the logarithms, so the interval is one of
    ratios) with its interval, and the verdict: "faster" or "slower" when
    the interval lies wholly below or above 1, "no difference detected"
    otherwise. The confidence is family-wise over the workloads (Bonferroni:
    each interval at 1 - (1 - confidence) / workloads). With callgrind
    rows, both instruction counts per op."""
    ab = context.get("ab")
    if not ab:
        return None
    a, b = ab["a"], ab["b"]
    conf = ab.get("confidence") or 0.95
    revs = {x["name"]: x.get("revision") for x in context.get("allocators", [])}
    f = FIG[AB_FIGURE]
    compared = [l for l in labels if f.key in cells.get(l, {}).get(a, {}) and f.key in cells.get(l, {}).get(b, {})]
    each = 1.0 - (1.0 - conf) / max(len(compared), 1)
    rows = []
    for label in labels:
        ca, cb = cells.get(label, {}).get(a, {}), cells.get(label, {}).get(b, {})
        row = {"label": label}
        if label in compared:
            va, vb = ca[f.key]["values"], cb[f.key]["values"]
            est, lo, hi, achieved = shift_interval([math.log(x) for x in va if x > 0],
                                                   [math.log(x) for x in vb if x > 0], each)
            row.update({
                "a": {k: ca[f.key][k] for k in ("median", "n", "rel_mad")},
                "b": {k: cb[f.key][k] for k in ("median", "n", "rel_mad")},
                "ratio": math.exp(est),
                "low": None if lo is None else math.exp(lo),
                "high": None if hi is None else math.exp(hi),
                "achieved_confidence": achieved,
            })
            if lo is None:
                row["verdict"] = f"too few repetitions (at least {reps_needed(each)} a side for this level)"
            elif hi < 0:
                row["verdict"] = "faster" if f.better == "lower" else "slower"
            elif lo > 0:
                row["verdict"] = "slower" if f.better == "lower" else "faster"
            else:
                row["verdict"] = "no difference detected"
        ia, ib = ca.get("instr_per_op"), cb.get("instr_per_op")
        if ia or ib:
            row["instr_a"] = ia["median"] if ia else None
            row["instr_b"] = ib["median"] if ib else None
            row["instr_ratio"] = ib["median"] / ia["median"] if ia and ib and ia["median"] else None
        if "ratio" in row or "instr_a" in row:
            rows.append(row)
    return {
        "a": a, "b": b, "a_revision": revs.get(a), "b_revision": revs.get(b),
        "figure": f.key, "confidence": conf, "per_workload_confidence": each, "workloads_compared": len(compared),
        "method": "Hodges-Lehmann ratio B/A of the time per op over the interleaved repetitions, with the "
                  "distribution-free Mann-Whitney interval on the logarithms; family-wise confidence over the "
                  "workloads (Bonferroni)",
        "rows": rows,
        "geomean_ratio": geomean([r["ratio"] for r in rows if "ratio" in r]),
        "verdicts": {v: sum(1 for r in rows if r.get("verdict") == v)
                     for v in ("faster", "slower", "no difference detected")},
    }


# ---- how busy the machine was ---------------------------------------------------------

def load_summary_of(context, end):
    """{"start", "during": the runner's rows, "busy", "headline": the
    sentence a report opens with when the machine was busy, else None}."""
    start = context.get("load_start")
    during = (end or {}).get("load")
    if start is None and during is None:
        return {"start": None, "during": None, "busy": None, "headline": None}
    busy = bool((start or {}).get("busy") or (during or {}).get("busy"))
    parts = []
    if start and start.get("measured"):
        parts.append(f"{start.get('other_runnable', 0):.1f} other runnable processes at the start "
                     f"(other processes used {start.get('other_cpus', 0):.2f} CPUs just before the first run)")
    if during and during.get("measured"):
        cores = during.get("cores") or context.get("cores")
        parts.append(f"other processes used {during.get('other_cpus', 0):.2f} of {cores} CPUs on average "
                     f"during the runs")
    headline = ("Time figures unreliable: " + "; ".join(parts) + ".") if busy else None
    return {"start": start, "during": during, "busy": busy, "headline": headline}


# ---- summary ----------------------------------------------------------------------

MACHINE_KEYS = ("host", "cpu_model", "cores", "kernel", "thp_enabled", "thp_defrag", "cpu_governor",
                "mem_total_kib", "glibc", "compiler", "git_commit", "git_dirty", "loadavg_start")


def _cells(rows):
    """{label: {allocator: {figure: stats}}} over the ok rows; the counts
    per status and the runs that were not ok."""
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
    return cells, counts, problems


def _ratios(cells, labels, reference, floor):
    """Adds ratio_to_best_reference to every cell but the floor's; returns
    the best reference per case and figure."""
    best_ref = {}
    for label in labels:
        for f in FIGURES:
            cands = [(cells[label][a][f.key]["median"], a) for a in reference
                     if f.key in cells.get(label, {}).get(a, {})]
            cands = [c for c in cands if c[0] is not None]
            if not cands:
                continue
            v, a = f.best(cands)
            best_ref.setdefault(label, {})[f.key] = {"allocator": a, "median": v}
            for alloc in cells.get(label, {}):
                if alloc == floor:
                    continue
                c = cells[label][alloc].get(f.key)
                if c and v:
                    c["ratio_to_best_reference"] = c["median"] / v
    return best_ref


def _geomeans(cells, labels, alloc_names):
    geo = {}
    for alloc in alloc_names:
        for f in FIGURES:
            rs = [cells[l][alloc][f.key].get("ratio_to_best_reference") for l in labels
                  if f.key in cells.get(l, {}).get(alloc, {})]
            g = geomean(rs)
            if g is not None:
                geo.setdefault(alloc, {})[f.key] = {"geomean_ratio": g, "cases": len([r for r in rs if r])}
    return geo


def _above_floor(cells, labels, allocs, floor):
    """Per case with a floor figure: the floor's time per op, the fastest
    allocator, and for each allocator its time above the floor (ns/op) and
    that as a share of its time. A difference below zero is kept as it is:
    the allocator's median fell below the floor's."""
    out = {}
    k = FLOOR_FIGURE
    for label in labels:
        byalloc = cells.get(label, {})
        fl = byalloc.get(floor, {}).get(k) if floor else None
        meds = {a: byalloc[a][k]["median"] for a in allocs if k in byalloc.get(a, {})}
        if not fl or not meds:
            continue
        f0 = fl["median"]
        best = FIG[k].best([(m, a) for a, m in meds.items()])
        out[label] = {
            "floor": {"median": f0, "rel_mad": fl["rel_mad"], "n": fl["n"]},
            "best": {"allocator": best[1], "median": best[0]},
            "floor_share_of_best": f0 / best[0] if best[0] else None,
            "allocators": {a: {"median": m, "above_floor": m - f0, "share_above_floor": (m - f0) / m if m else None}
                           for a, m in meds.items()},
        }
    return out


def _noise(cells):
    """The relative MAD of each noise figure over the cells with 2+ runs."""
    noise = {}
    for f in FIGURES:
        if not f.noise:
            continue
        rel = [(c[f.key]["rel_mad"], l, a) for l, byalloc in cells.items() for a, c in byalloc.items()
               if f.key in c and c[f.key]["rel_mad"] is not None and c[f.key]["n"] >= 2]
        if rel:
            rel.sort()
            noise[f.key] = {"median_rel_mad": median([r[0] for r in rel]), "max_rel_mad": rel[-1][0],
                            "max_at": {"label": rel[-1][1], "allocator": rel[-1][2]}, "cells": len(rel)}
    return noise


def _host(context, row):
    return row.get("host") or context.get("host")


def _split_by_host(context, rows, labels, workload_of):
    """A case whose runs come from more than one host (a merged run whose
    shards overlapped, or files joined by hand) is split into one case per
    host, `<label>@<host>`, so its cells and ratios each hold one machine's
    runs."""
    hosts = {}
    for r in rows:
        hosts.setdefault(r["label"], set()).add(_host(context, r))
    multi = {l for l, h in hosts.items() if len(h) > 1}
    if not multi:
        return rows, labels, workload_of
    out = []
    for r in rows:
        if r["label"] in multi:
            r = dict(r, label=f"{r['label']}@{_host(context, r)}")
        out.append(r)
    new_labels = []
    for l in labels:
        if l in multi:
            for h in sorted(hosts[l], key=str):
                new_labels.append(f"{l}@{h}")
                workload_of[f"{l}@{h}"] = workload_of.get(l)
        else:
            new_labels.append(l)
    return out, new_labels, workload_of


def summarize(context, rows, skips, end):
    allocs = context.get("allocators", [])
    floors = [a["name"] for a in allocs if a.get("kind") == "floor" and a.get("status") == "available"]
    floor = floors[0] if floors else None
    alloc_names = [a["name"] for a in allocs if a.get("kind") != "floor"]
    available = [a["name"] for a in allocs if a.get("status") == "available" and a.get("kind") != "floor"]
    reference = [a["name"] for a in allocs if a.get("kind") == "reference" and a.get("status") == "available"]
    labels = [c["label"] for c in context.get("cases", [])]
    for r in rows:  # callgrind-only cases, or cases not in the context
        if r["label"] not in labels:
            labels.append(r["label"])
    workload_of = {c["label"]: c["workload"] for c in context.get("cases", [])}
    for r in rows:
        workload_of.setdefault(r["label"], r.get("workload"))

    rows, labels, workload_of = _split_by_host(context, rows, labels, workload_of)
    cells, counts, problems = _cells(rows)
    best_ref = _ratios(cells, labels, reference, floor)
    return {
        "schema": SUMMARY_SCHEMA,
        "raw_schema": context.get("schema"),
        "suite": context.get("suite"),
        "started": context.get("started"),
        "machine": {k: context.get(k) for k in MACHINE_KEYS},
        # None: written before the runner recorded the environment
        "environment": context.get("environment"),
        "loadavg_end": (end or {}).get("loadavg_end"),
        "wall_s": (end or {}).get("wall_s"),
        "interrupted": (end or {}).get("interrupted") if end else True,
        "runner": context.get("runner"),
        "allocators": allocs,
        "available": available,        # the allocators compared: the floor is not one
        "reference": reference,
        # the floor pseudo-allocator's name, or None; floor_ran: the runner's
        # runner.floor (None: written before the runner had floor runs)
        "floor": floor,
        "floor_ran": (context.get("runner") or {}).get("floor"),
        "cases": labels,
        "workload_of": workload_of,
        "counts": counts,
        "problems": problems,
        "skipped_cases": [{"label": s["label"], "workload": s["workload"], "mode": s.get("mode"),
                           "reason": s.get("reason")} for s in skips],
        "figures": {f.key: {"title": f.title, "unit": f.unit, "better": f.better} for f in FIGURES},
        "cells": cells,
        "best_reference": best_ref,
        "geomean": _geomeans(cells, labels, alloc_names),
        "above_floor": _above_floor(cells, labels, available, floor),
        # hakmem's account of its memory, from the stats runs (None: the
        # runner made none: --no-stats, or written before it had them)
        "memory": memory_breakdown(rows),
        # faults per op of every allocator, moved and decommitted pages per op
        # of hakmem variants, and the machine's page costs to price them (None:
        # written before the runner measured them)
        "page_work": page_work(rows, cells),
        "page_costs": context.get("page_costs"),
        "stats_ran": (context.get("runner") or {}).get("stats"),
        "noise": _noise(cells),
        "load": load_summary_of(context, end),
        "ab": ab_verdicts(context, cells, labels),
        # a merged run: its shards (scripts/merge.py) and the host of each case
        "shards": context.get("shards"),
        "hosts": (context.get("merged") or {}).get("hosts") or [context.get("host")],
        "host_of": {l: sorted({str(_host(context, r)) for r in rows if r["label"] == l}) for l in labels},
    }


def load_summary(run_dir):
    """(context, rows, summary) of a run directory. Raises RawError."""
    context, rows, skips, end = load_raw(run_dir)
    return context, rows, summarize(context, rows, skips, end)
