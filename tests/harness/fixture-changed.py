#!/usr/bin/python3
"""fixture-changed.py BASE OUT — writes BASE (a raw.jsonl) to OUT with two
known changes, far beyond any noise, for testing scripts/compare:

  - tiny under hakmem-test takes twice as long: ns_per_op x 2, ops_per_sec / 2;
  - burst_idle under jemalloc keeps a tenth of the RSS at the end of its idle
    period: idle.rss_at_idle_end_kib and idle.rss_nolazy_at_idle_end_kib / 10.

Every other field of every row is copied as it is; the script fails when a
change finds no row to apply to.
"""
import json
import sys


def main(argv):
    if len(argv) != 3:
        print("usage: fixture-changed.py BASE OUT", file=sys.stderr)
        return 2
    changed = {"time": 0, "idle": 0}
    out = []
    with open(argv[1], encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row.get("type") == "run" and row.get("status") == "ok":
                who = (row["label"], row["allocator"])
                if who == ("tiny", "hakmem-test"):
                    row["ns_per_op"] *= 2
                    row["ops_per_sec"] /= 2
                    changed["time"] += 1
                elif who == ("burst_idle", "jemalloc"):
                    row["idle"]["rss_at_idle_end_kib"] //= 10
                    row["idle"]["rss_nolazy_at_idle_end_kib"] //= 10
                    changed["idle"] += 1
            out.append(json.dumps(row, separators=(",", ":")))
    missing = [k for k, n in changed.items() if n == 0]
    if missing:
        print(f"fixture-changed.py: no row for the {', '.join(missing)} change in {argv[1]}", file=sys.stderr)
        return 1
    with open(argv[2], "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
