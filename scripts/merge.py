#!/usr/bin/python3
"""merge.py — joins the shards of one plan into one run directory.

    /usr/bin/python3 scripts/merge.py --out DIR SHARD_DIR...
    build/harness/hakbench merge --out DIR SHARD_DIR...      (the same)

Each SHARD_DIR holds the raw.jsonl of one `hakbench run --shard I/N` (a
shard = some of the suite's cases x every allocator, interleaved on one
machine as an unsharded run is). The shards must be every shard of one plan:
the same N, each I from 1 to N once, the same suite and repetitions, and each
finished (an end row, not interrupted). DIR gets a raw.jsonl (schema
hakmem-bench/1) that scripts/report.py reads like any run's:

- context: the first shard's, with every shard's cases in suite order,
  `shards` (per shard: index, host, started, its directory relative to DIR,
  the machine facts and how busy it was at the start), `merged` (count,
  hosts), the allocators of all shards (available where any shard had it;
  `unavailable_on` names the shards that lacked it), and a `load_start` that
  is busy when any shard's was;
- run and skip rows: as the shards wrote them, each with `shard` and `host`
  added, `seq` renumbered over the whole file and `log` made relative to
  DIR;
- end: the counts summed, `wall_s` the longest shard's (they ran side by
  side), `load` over all the shards' runs.

The report then shows each case's host and sets allocators against each
other only within one host (scripts/benchdata.py). Exit status 0, 2 for bad
arguments or shards that are not one complete plan.
"""
import json
import os
import sys

SCHEMA = "hakmem-bench/1"
MACHINE_KEYS = ("cpu_model", "cores", "kernel", "thp_enabled", "cpu_governor", "mem_total_kib", "glibc",
                "compiler", "git_commit", "git_dirty", "loadavg_start")


class MergeError(Exception):
    pass


def read_shard(d):
    path = os.path.join(d, "raw.jsonl")
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        raise MergeError(f"{path}: {e.strerror}") from e
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise MergeError(f"{path}:{n}: unreadable line ({e})") from e
        if not isinstance(row, dict) or row.get("schema") != SCHEMA:
            raise MergeError(f"{path}:{n}: not a {SCHEMA} row")
        rows.append(row)
    if not rows or rows[0].get("type") != "context":
        raise MergeError(f"{path}: no context row")
    ctx = rows[0]
    sh = ctx.get("shard")
    if not isinstance(sh, dict):
        raise MergeError(f"{path}: not a shard (run without --shard I/N)")
    end = rows[-1] if rows[-1].get("type") == "end" else None
    if end is None:
        raise MergeError(f"{path}: shard {sh['index']}/{sh['count']} did not finish (no end row)")
    if end.get("interrupted"):
        raise MergeError(f"{path}: shard {sh['index']}/{sh['count']} was interrupted")
    return {"dir": d, "context": ctx, "shard": sh, "body": rows[1:-1], "end": end}


def check_plan(shards):
    count = {s["shard"]["count"] for s in shards}
    if len(count) != 1:
        raise MergeError(f"the shards come from plans of different sizes: {sorted(count)}")
    n = count.pop()
    got = sorted(s["shard"]["index"] for s in shards)
    if got != list(range(1, n + 1)):
        missing = sorted(set(range(1, n + 1)) - set(got))
        twice = sorted({i for i in got if got.count(i) > 1})
        what = (f"missing shard(s) {', '.join(f'{i}/{n}' for i in missing)}" if missing else "") + \
               ("; " if missing and twice else "") + \
               (f"shard(s) given twice: {', '.join(f'{i}/{n}' for i in twice)}" if twice else "")
        raise MergeError(f"not every shard of one plan of {n}: {what}")
    first = shards[0]["context"]
    for s in shards[1:]:
        c = s["context"]
        for key, what in (("suite", "suite"), ("suite_file", "suite file")):
            if c.get(key) != first.get(key):
                raise MergeError(f"shard {s['shard']['index']} ran {what} {c.get(key)!r}, shard "
                                 f"{shards[0]['shard']['index']} {first.get(key)!r}")
        for key in ("reps", "floor", "stats", "callgrind_suite"):
            a, b = (first.get("runner") or {}).get(key), (c.get("runner") or {}).get(key)
            if a != b:
                raise MergeError(f"shard {s['shard']['index']} has runner.{key} {b!r}, shard "
                                 f"{shards[0]['shard']['index']} {a!r}")
        if c["shard"].get("suite_cases") != first["shard"].get("suite_cases"):
            raise MergeError("the shards' suites have different numbers of cases")
    return n


def merged_allocators(shards):
    out, seen = [], {}
    for s in shards:
        for a in s["context"].get("allocators", []):
            name = a["name"]
            if name not in seen:
                seen[name] = dict(a)
                seen[name]["unavailable_on"] = []
                out.append(seen[name])
            if a.get("status") != "available":
                seen[name]["unavailable_on"].append(s["shard"]["index"])
            elif seen[name].get("status") != "available":
                keep = seen[name]["unavailable_on"]
                seen[name].clear()
                seen[name].update(a)
                seen[name]["unavailable_on"] = keep
    for a in out:
        if not a["unavailable_on"]:
            del a["unavailable_on"]
    return out


def merged_load_start(shards):
    loads = [(s["shard"]["index"], s["context"].get("host"), s["context"].get("load_start") or {}) for s in shards]
    nums = lambda k: [l[k] for _, _, l in loads if isinstance(l.get(k), (int, float))]
    out = {
        "measured": all(l.get("measured") for _, _, l in loads),
        "busy": any(l.get("busy") for _, _, l in loads),
        "said": "; ".join(f"shard {i} on {h}: {l.get('said', 'not measured')}" for i, h, l in loads),
    }
    for k in ("other_cpus", "other_runnable"):
        if nums(k):
            out[k] = max(nums(k))  # the busiest shard's
    return out


def merged_load_end(shards):
    loads = [s["end"].get("load") or {} for s in shards]
    out = {"measured": all(l.get("measured") for l in loads), "busy": any(l.get("busy") for l in loads)}
    if out["measured"]:
        cpu = sum(l.get("other_cpu_s", 0) for l in loads)
        wall = sum(l.get("runs_wall_s", 0) for l in loads)
        out.update({"other_cpu_s": cpu, "runs_wall_s": wall, "other_cpus": cpu / wall if wall else 0})
    out["said"] = "; ".join(f"shard {s['shard']['index']}: {l.get('said', 'not measured')}"
                            for s, l in zip(shards, loads))
    return out


def merge(out_dir, shard_dirs):
    shards = sorted((read_shard(d) for d in shard_dirs), key=lambda s: s["shard"]["index"])
    n = check_plan(shards)
    os.makedirs(out_dir, exist_ok=True)
    raw = os.path.join(out_dir, "raw.jsonl")
    if os.path.exists(raw):
        raise MergeError(f"{raw} already exists; choose a new --out directory")

    ctx = dict(shards[0]["context"])
    ctx.pop("shard", None)
    ctx["cases"] = sorted((c for s in shards for c in s["context"].get("cases", [])), key=lambda c: c.get("index", 0))
    hosts = []
    for s in shards:
        h = s["context"].get("host")
        if h not in hosts:
            hosts.append(h)
    ctx["host"] = hosts[0] if len(hosts) == 1 else None
    ctx["merged"] = {"count": n, "hosts": hosts,
                     "rule": shards[0]["shard"].get("rule")}
    ctx["shards"] = [{
        "index": s["shard"]["index"], "count": n, "host": s["context"].get("host"),
        "started": s["context"].get("started"), "dir": os.path.relpath(s["dir"], out_dir),
        "cases": [c["label"] for c in s["context"].get("cases", [])],
        "machine": {k: s["context"].get(k) for k in MACHINE_KEYS},
        "load_start": s["context"].get("load_start"), "load": s["end"].get("load"),
        "wall_s": s["end"].get("wall_s"),
        "counts": {k: s["end"].get(k) for k in ("ok", "failed", "invalid")},
    } for s in shards]
    ctx["allocators"] = merged_allocators(shards)
    ctx["load_start"] = merged_load_start(shards)

    out = [ctx]
    seq = 0
    for s in shards:
        host = s["context"].get("host")
        for r in s["body"]:
            r = dict(r)
            r["shard"] = s["shard"]["index"]
            r["host"] = host
            if r.get("type") == "run":
                seq += 1
                r["seq"] = seq
                if r.get("log"):
                    r["log"] = os.path.relpath(os.path.join(s["dir"], r["log"]), out_dir)
            out.append(r)
    ends = [s["end"] for s in shards]
    end = {"type": "end", "schema": SCHEMA}
    for k in ("ok", "failed", "invalid"):
        end[k] = sum(e.get(k, 0) for e in ends)
    end["wall_s"] = max(e.get("wall_s") or 0 for e in ends)
    end["shards_wall_s"] = [e.get("wall_s") for e in ends]
    end["interrupted"] = False
    end["loadavg_end"] = ends[-1].get("loadavg_end")
    end["load"] = merged_load_end(shards)
    out.append(end)
    with open(raw, "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    return raw, n, seq, hosts


def main(argv):
    out, dirs = None, []
    it = iter(argv[1:])
    for a in it:
        if a == "--out":
            out = next(it, None)
            if not out:
                print("merge: --out needs a directory", file=sys.stderr)
                return 2
        elif a.startswith("-"):
            print(f"merge: unknown option {a}; usage: merge --out DIR SHARD_DIR...", file=sys.stderr)
            return 2
        else:
            dirs.append(a)
    if not out or not dirs:
        print("merge: usage: merge --out DIR SHARD_DIR...", file=sys.stderr)
        return 2
    try:
        raw, n, runs, hosts = merge(out, dirs)
    except MergeError as e:
        print(f"merge: {e}", file=sys.stderr)
        return 2
    print(f"merge: {n} shards, {runs} runs, host(s) {', '.join(str(h) for h in hosts)} -> {raw}", file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
