#!/usr/bin/python3
"""trace_html.py - draws trace.html from trace.json (written by
`hakmem-trace report`). Reads only the JSON; the page is self-contained
(plots embedded as base64 PNG).

usage: /usr/bin/python3 tracker/trace_html.py trace.json trace.html
"""
import base64
import html
import io
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402


def human_bytes(v):
    v = float(v)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(v) < 1024 or unit == "GiB":
            return ("%.0f %s" if unit == "B" else "%.1f %s") % (v, unit)
        v /= 1024
    return "%.1f TiB" % v


def human_count(v):
    v = float(v)
    for div, unit in ((1e9, " G"), (1e6, " M"), (1e3, " K")):
        if v >= div:
            return "%.2f%s" % (v / div, unit)
    return "%.0f" % v


def figure(m, key, fmt):
    """A figure of m (an instance's total, or a site's) in fmt (human_bytes
    or human_count): as it is when exact; "~X ± Y (95 %)" when sampled
    (m["ci95"][key], Y the interval's upper half)."""
    ci = m.get("ci95", {}).get(key)
    if ci is None:
        return fmt(m[key])
    return "~%s \u00b1 %s (95 %%)" % (fmt(m[key]), fmt(max(ci[1] - m[key], 0)))


def bucket_label(i, unit):
    """Power-of-two bucket i holds values in [2^(i-1), 2^i); unit "B"
    (bytes), "ns" (time) or "" (a plain count)."""
    if i == 0:
        return "0"
    lo = 1 << (i - 1)
    if unit == "B":
        return human_bytes(lo).replace(".0 ", " ")
    if unit == "":
        return human_count(lo).replace(".00 ", " ").replace(".0 ", " ")
    ns = float(lo)
    for div, u in ((1e9, "s"), (1e6, "ms"), (1e3, "us")):
        if ns >= div:
            return "%.3g %s" % (ns / div, u)
    return "%.0f ns" % ns


def png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return '<img src="data:image/png;base64,%s">' % base64.b64encode(buf.getvalue()).decode()


def plot_timeline(m):
    tl = m.get("timeline", {})
    ys = tl.get("max", [])
    if not ys:
        return "<p>No events.</p>"
    step = tl["bucket_ns"] / 1e9
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot([i * step for i in range(len(ys))], [y / 1048576 for y in ys], lw=1.2)
    ax.axhline(m["peak_live_bytes"] / 1048576, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("live MiB (requested)")
    ax.set_title("Live bytes over time (peak %s)" % human_bytes(m["peak_live_bytes"]))
    return png(fig)


def fig_hist(counts, weights, unit, title, xlabel, what="blocks"):
    """A power-of-two histogram: bars count `what`, labelled in `unit` (see
    bucket_label); None when empty."""
    if not counts or not any(counts):
        return None
    fig, ax = plt.subplots(figsize=(9, 3))
    xs = range(len(counts))
    ax.bar(xs, counts, color="#4477aa", label=what)
    ax.set_ylabel(what)
    if weights:
        ax2 = ax.twinx()
        ax2.plot(xs, [w / 1048576 for w in weights], color="#cc6677", marker=".", label="MiB")
        ax2.set_ylabel("MiB", color="#cc6677")
    step = max(1, len(counts) // 12)
    ax.set_xticks(list(xs)[::step])
    ax.set_xticklabels([bucket_label(i, unit) for i in xs][::step], rotation=30, ha="right")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return fig


def plot_hist(*args, **kw):
    fig = fig_hist(*args, **kw)
    return png(fig) if fig else "<p>Nothing to show.</p>"


def fig_threads(m):
    """Calls per thread, stacked by kind; ticks at whole thread indices."""
    rows = m.get("per_thread", [])[:64]
    if not rows:
        return None
    groups = (("allocations", ("malloc", "calloc", "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc")),
              ("frees", ("free",)), ("reallocs", ("realloc", "reallocarray")), ("other", ("malloc_usable_size",)))
    fig, ax = plt.subplots(figsize=(9, 3))
    bottom = [0] * len(rows)
    for label, ops in groups:
        vals = [sum(r["ops"].get(o, 0) for o in ops) for r in rows]
        if any(vals):
            ax.bar(range(len(rows)), vals, bottom=bottom, label=label)
            bottom = [b + v for b, v in zip(bottom, vals)]
    step = -(-len(rows) // 16)
    ax.set_xticks(range(0, len(rows), step))
    ax.set_xticklabels([str(i) for i in range(0, len(rows), step)])
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("thread (index in order of first call)")
    ax.set_ylabel("calls")
    ax.set_title("Operations per thread")
    ax.legend(fontsize=8)
    return fig


def plot_threads(m):
    fig = fig_threads(m)
    return png(fig) if fig else ""


def plot_matrix(m):
    ct = m.get("cross_thread", {})
    mat = ct.get("matrix", [])
    if len(mat) < 2:
        return "<p>One thread: no cross-thread frees.</p>"
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    data = [[v if v > 0 else float("nan") for v in row] for row in mat]
    vmax = max(max(row) for row in mat) or 1
    im = ax.imshow(data, cmap="viridis", norm=LogNorm(vmin=1, vmax=max(vmax, 2)))
    fig.colorbar(im, ax=ax, label="blocks")
    ax.set_xlabel("freeing thread")
    ax.set_ylabel("allocating thread")
    title = "Who frees what who allocated"
    if ct.get("threads", 0) < len(m.get("per_thread", [])):
        title += " (threads >= %d folded)" % (ct["threads"] - 1)
    ax.set_title(title)
    return png(fig)


def table(headers, rows):
    out = ["<table><tr>%s</tr>" % "".join("<th>%s</th>" % html.escape(h) for h in headers)]
    for r in rows:
        out.append("<tr>%s</tr>" % "".join("<td>%s</td>" % c for c in r))
    out.append("</table>")
    return "\n".join(out)


def frames_cell(frames, n=6):
    shown = "<br>".join(html.escape(f) for f in frames[:n])
    if len(frames) > n:
        shown += "<br>... %d more" % (len(frames) - n)
    return '<span class="fr">%s</span>' % shown


def sites_table(sites):
    rows = []
    for s in sites:
        kinds = ", ".join("%s %s" % (k, human_count(v)) for k, v in sorted(s["kinds"].items(), key=lambda kv: -kv[1]))
        rows.append([figure(s, "calls", human_count), html.escape(kinds), figure(s, "bytes", human_bytes),
                     human_count(s["blocks"]), human_count(s["frees"]), figure(s, "live_bytes", human_bytes),
                     "%.1f us" % (s["mean_lifetime_ns"] / 1e3), frames_cell(s["frames"])])
    return table(["calls", "kinds", "bytes asked for", "new blocks", "frees", "never freed", "mean lifetime",
                  "call stack"], rows)


def allocation_sites_table(sites, temporary=False):
    """Allocation sites (stacks merged by the function that called the
    allocator), each with its largest stacks beneath."""
    rows = []
    for s in sites:
        where = html.escape(s["function"]) + (" <small>(%s)</small>" % html.escape(s["module"]) if s["module"] else "")
        if s.get("source"):
            where += " <small>at %s</small>" % html.escape(s["source"])
        stacks = "<br>".join("%s calls, %s: %s" % (human_count(t["calls"]), human_bytes(t["bytes"]),
                                                  " &lt; ".join(html.escape(f) for f in t["frames"][:4]))
                             for t in s["top_stacks"])
        rows.append([where, figure(s, "calls", human_count), figure(s, "bytes", human_bytes), human_bytes(s["peak"]),
                     figure(s, "leaked", human_bytes)] + ([human_count(s["temporary"])] if temporary else []) +
                    [str(s["stacks"]), '<span class="fr">%s</span>' % stacks])
    return table(["allocation site", "calls", "bytes asked for", "live at the peak", "never freed"] +
                 (["temporary"] if temporary else []) + ["stacks", "largest stacks"], rows)


def instance_section(m, main):
    h = []
    est = " (estimated from samples)" if m.get("estimated") else ""
    h.append("<h2>%s, pid %d%s</h2>" % (html.escape(m["name"]), m["pid"], " (main)" if main else ""))
    h.append('<p class="head">%s</p>' % html.escape(m["headline"]))
    ops = ", ".join("%s %s" % (k, human_count(v)) for k, v in sorted(m["ops"].items(), key=lambda kv: -kv[1]))
    facts = [
        ["mode", m["mode"] + (", stacks" if m["stacks"] else "") +
         (", every block >= %s and 1 in %d below" % (human_bytes(m["sample_threshold"]), m["sample_every"])
          if m["mode"] == "sampled" else "")],
        ["calls" + est, ops],
        ["calls to allocation functions" + est, "%s (%s), asking for %s" % (
            figure(m, "allocation_calls", human_count),
            ", ".join("%s %s" % (k, human_count(v)) for k, v in
                      sorted(m["allocation_call_kinds"].items(), key=lambda kv: -kv[1])),
            figure(m, "allocation_call_bytes", human_bytes))],
        ["frees" + est, figure(m, "frees", human_count)],
        ["allocated" + est, figure(m, "allocated_bytes", human_bytes)],
        ["peak live" + est, "%s at %.3f s" % (figure(m, "peak_live_bytes", human_bytes), m["peak_time_ns"] / 1e9)],
        ["never freed" + est, "%s blocks, %s" % (figure(m, "never_freed_blocks", human_count),
                                                 figure(m, "never_freed_bytes", human_bytes))],
        ["threads (exact)" if est else "threads", str(m["threads"])],
        ["anomalies", "%d frees of pointers never seen allocated, %d reallocs of such pointers, "
                      "%d allocations of a pointer still live, %d failed calls, %d free(NULL)" %
         (m["unmatched_frees"], m["unmatched_reallocs"], m["allocated_while_live"], m["failed_calls"], m["free_null"])],
    ]
    h.append(table(["", ""], [[html.escape(a), html.escape(b)] for a, b in facts]))
    if est:
        h.append("<p>Sampled trace: a figure marked ~ is an estimate from the samples, with its 95 %% confidence "
                 "interval (&plusmn; its upper half); the peak is estimated by two halves of the tracked "
                 "addresses cross-checking each other (README, \"The report\"). Exact: %s.</p>"
                 % html.escape(", ".join(m.get("exact", []))))
    if "timeline" not in m:
        return "\n".join(h)
    if m["hints"]:
        h.append("<h3>Hints</h3><ul>%s</ul>" % "".join(
            "<li><b>%s</b>: %s</li>" % (html.escape(x["kind"].replace("_", " ")), html.escape(x["text"]))
            for x in m["hints"]))
    h.append("<h3>Live bytes</h3>" + plot_timeline(m))
    h.append("<h3>Sizes</h3>" + plot_hist(m["size_hist"], m["size_hist_bytes"], "B",
                                         "Block sizes (bars: blocks, line: MiB)", "requested size (bucket start)"))
    h.append("<h3>Lifetimes of freed blocks</h3>" + plot_hist(m["lifetime_hist_ns"], None, "ns",
                                                            "Lifetime, allocation to free (mean %.1f us)" %
                                                            (m["mean_lifetime_ns"] / 1e3), "lifetime (bucket start)"))
    h.append("<h3>Threads</h3>" + plot_threads(m) + plot_matrix(m))
    rc = m["realloc_chains"]
    h.append("<h3>Realloc chains</h3><p>%s blocks were reallocated (%s reallocs, %s moves, %s copied).</p>" %
             (human_count(rc["chains"]), human_count(rc["reallocs"]), human_count(rc["moves"]),
              human_bytes(rc["copied_bytes"])))
    if rc["top"]:
        h.append(plot_hist(rc["length_hist"], None, "", "Reallocs per chain", "reallocs (bucket start)", "chains"))
        h.append(table(["first size", "last size", "reallocs", "moves", "copied", "thread", "site"],
                       [[str(c["first_size"]), str(c["last_size"]), str(c["reallocs"]), str(c["moves"]),
                         human_bytes(c["copied_bytes"]), str(c["thread"]), html.escape(c["site"] or "-")]
                        for c in rc["top"][:10]]))
    al = m.get("allocation_sites")
    if al:
        h.append("<h3>Allocation sites by calls</h3><p>%d sites: the stacks merged by the function that called "
                 "the allocator.</p>" % al["count"] + allocation_sites_table(al["by_calls"][:10]))
        h.append("<h3>Allocation sites by bytes asked for</h3>" + allocation_sites_table(al["by_bytes"][:10]))
        if al["by_peak"]:
            h.append("<h3>Peak memory consumers</h3><p>The bytes each site held when the process's live bytes "
                     "first reached their peak (%s at %.3f s).</p>" % (human_bytes(m["peak_live_bytes"]),
                                                                      m["peak_time_ns"] / 1e9)
                     + allocation_sites_table(al["by_peak"][:10]))
        if al.get("by_temporary"):
            h.append("<h3>Temporary allocations</h3><p>%s blocks were freed by their thread with no other "
                     "allocation or free between.</p>" % human_count(m["temporary_allocations"])
                     + allocation_sites_table(al["by_temporary"][:10], True))
        if al["by_leaked"]:
            h.append("<h3>Allocation sites by bytes never freed</h3>" + allocation_sites_table(al["by_leaked"][:10]))
    if m.get("top_sites_by_bytes"):
        h.append("<h3>Top call sites by bytes</h3>" + sites_table(m["top_sites_by_bytes"][:10]))
        h.append("<h3>Top call sites by count</h3>" + sites_table(m["top_sites_by_count"][:10]))
    elif not m["stacks"]:
        h.append("<p>No call stacks were recorded (record with --preset overview or leaks, or --stacks).</p>")
    nf = m["never_freed"]
    h.append("<h3>Blocks never freed</h3><p>%s blocks, %s.</p>" % (human_count(nf["blocks"]), human_bytes(nf["bytes"])))
    if m.get("top_sites_never_freed"):
        h.append(sites_table(m["top_sites_never_freed"][:10]))
    if nf["largest"]:
        h.append(table(["size", "thread", "allocated at", "site"],
                       [[human_bytes(b["size"]), str(b["thread"]), "%.3f s" % (b["time_ns"] / 1e9),
                         html.escape(b["site"] or "-")] for b in nf["largest"][:10]]))
    return "\n".join(h)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: trace_html.py trace.json trace.html")
    with open(sys.argv[1], encoding="utf-8") as f:
        j = json.load(f)
    if j.get("schema") != "hakmem-trace-report/1":
        sys.exit("trace_html.py: %s: not a hakmem-trace report" % sys.argv[1])
    insts = j["instances"]
    main_i = j["main"]
    body = ["<h1>Allocation trace: %s</h1>" % html.escape(j["dir"])]
    body.append("<p>%d files, %s records; %d processes. %s</p>" % (
        j["files"], human_count(j["records"]), len(insts),
        ("%d bytes after the last complete record were cut; %d files have no end record (killed?)" %
         (j["cut_bytes"], j["files_without_end"])) if j["cut_bytes"] or j["files_without_end"] else
        "Every file is complete."))
    if len(insts) > 1:
        body.append("<h2>Processes</h2>" + table(
            ["pid", "parent", "program", "threads", "allocation calls", "frees", "peak live", "never freed", ""],
            [[str(m["pid"]), str(m["ppid"]), html.escape(m["name"]), str(m["threads"]),
              human_count(m["allocation_calls"]), human_count(m["frees"]), human_bytes(m["peak_live_bytes"]),
              human_bytes(m["never_freed_bytes"]), "fork child" if m["fork_child"] else ""] for m in insts]))
    body.append(instance_section(insts[main_i], True))
    # the other processes in detail too, largest first, up to three
    others = sorted((m for i, m in enumerate(insts) if i != main_i), key=lambda m: -m["records"])[:3]
    for m in others:
        body.append(instance_section(m, False))
    page = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>hakmem-trace report</title>
<style>
body { font-family: sans-serif; max-width: 1000px; margin: 1em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
.fr { font-family: monospace; font-size: 0.85em; }
.head { background: #f3f3f3; padding: 0.5em; }
img { max-width: 100%%; }
</style></head><body>
%s
</body></html>
""" % "\n".join(body)
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(page)


if __name__ == "__main__":
    main()
