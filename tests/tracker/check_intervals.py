#!/usr/bin/python3
"""check_intervals.py FULL_JSON SAMPLED_JSON LOW HIGH - the sampled
processes of SAMPLED_JSON (tests/tracker/make_sampled.py) against the exact
figures of FULL_JSON: for each estimated figure, in how many processes its
95 % interval (ci95) holds the exact value; each rate must be at least LOW
and their mean at most HIGH (intervals too wide fail too; the call figures
come from a countdown more regular than independent draws, so theirs run
above 95 %). The mean of the peak estimates must be within 8 % of the
exact peak (the timeline's highest point, the old estimate, runs +12 %). Exact figures (threads, records, sample_every) must carry no
interval, be listed in "exact" (threads: equal to the full trace's); the full trace
must have no intervals at all. The sites' intervals (calls, bytes asked
for, bytes never freed: of the top sites by count and of the allocation
sites by calls) are held to the same rates, site by site. Prints one line
per figure, then "ok" or "bad <n>"; exit 0 only when all holds.
"""
import json
import sys

FIGURES = ["peak_live_bytes", "allocated_bytes", "allocation_calls", "allocation_call_bytes", "allocations",
           "frees", "final_live_bytes", "never_freed_blocks", "never_freed_bytes"]
EXACT = ["threads", "records", "sample_every"]


def main():
    full = json.load(open(sys.argv[1]))["instances"][0]
    insts = json.load(open(sys.argv[2]))["instances"]
    low, high = float(sys.argv[3]), float(sys.argv[4])
    bad = 0
    if "ci95" in full or "exact" in full:
        print("the full trace carries intervals")
        bad += 1
    rates = []
    for k in FIGURES:
        hit = 0
        for m in insts:
            lo, hi = m["ci95"][k]
            hit += lo <= full[k] <= hi
        rate = hit / len(insts)
        rates.append(rate)
        ok = low <= rate
        bad += not ok
        print("%s %s: %d of %d intervals hold the exact %d (%.1f %%)" % ("ok" if ok else "BAD", k, hit, len(insts),
                                                                       full[k], 100 * rate))
    # the sites: (list, key, figure, its name in ci95)
    for lst, key, figs in (("top_sites_by_count", lambda x: tuple(x["frames"]), ("calls", "bytes", "live_bytes")),
                           ("allocation_sites", lambda x: x["function"], ("calls", "bytes", "leaked"))):
        def sites(m):
            got = m[lst]["by_calls"] if lst == "allocation_sites" else m[lst]
            return {key(x): x for x in got}
        exact = sites(full)
        if len(exact) != 3:
            print("BAD %s: %d sites in the full trace, 3 expected" % (lst, len(exact)))
            bad += 1
            continue
        for k, x in sorted(exact.items()):
            if "ci95" in x:
                print("BAD %s: the full trace's site %s carries intervals" % (lst, k))
                bad += 1
            for fig in figs:
                want = x[fig] if fig != "bytes" or lst == "allocation_sites" else x["bytes"]
                hit = n = 0
                for m in insts:
                    y = sites(m).get(k)
                    if y is None:  # a site with no drawn call: its interval is [0, 0]
                        hit += want == 0
                    else:
                        lo, hi = y["ci95"][fig]
                        hit += lo <= want <= hi
                    n += 1
                rate = hit / n
                rates.append(rate)
                ok = low <= rate
                bad += not ok
                print("%s %s %s %s: %d of %d intervals hold the exact %d (%.1f %%)" %
                      ("ok" if ok else "BAD", lst, k, fig, hit, n, want, 100 * rate))
    bias = sum(m["peak_live_bytes"] for m in insts) / len(insts) / full["peak_live_bytes"] - 1
    print("%s peak estimates' mean %+.1f %% off the exact peak (at most 8 %%)" % ("ok" if abs(bias) <= 0.08 else "BAD",
                                                                          100 * bias))
    bad += abs(bias) > 0.08
    mean = sum(rates) / len(rates)
    print("%s mean rate %.1f %% (at most %.1f %%)" % ("ok" if mean <= high else "BAD", 100 * mean, 100 * high))
    bad += mean > high
    for m in insts:
        for k in EXACT:
            if k in m["ci95"] or k not in m.get("exact", []) or (k == "threads" and m[k] != full[k]):
                print("BAD exact figure %s of pid %d: %s, in ci95: %s" % (k, m["pid"], m[k], k in m["ci95"]))
                bad += 1
                break
    print("ok" if not bad else "bad %d" % bad)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
