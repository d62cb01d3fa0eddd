"""stats_exit.py VARIANT TEXT JSON — checks the statistics a program that knows
nothing of hakmem wrote at exit through the environment (tests/core.sh runs
it under LD_PRELOAD with HAKMEM_STATS and HAKMEM_STATS_FILE):
  TEXT: two runs appended to one file, the second with HAKMEM_STATS_PEAK=1:
        three reports (now, now, at the peak of the process's RSS), each of
        the variant, in the gperftools layout: the first line 'Bytes in use by
        application', the parts summing to the 'Bytes mapped (Total)' line,
        resident + returned = mapped, as many MALLOC figures as the JSON has,
        a size-class table with at least one row;
  JSON: one run with HAKMEM_STATS_PEAK=1: one object per line, of the
        variant, its parts summing to mapped_bytes, every size class listed,
        and a "peak" object with the same members and the same sum.
Prints what it checked; exits 1 with the first failure."""
import json
import re
import sys

variant, text_path, json_path = sys.argv[1:4]
PARTS = ["in_use_bytes", "magazine_bytes", "transfer_bytes", "slab_free_bytes", "slab_tail_bytes", "pool_bytes",
         "superslab_free_bytes", "medium_free_bytes", "large_cache_bytes", "metadata_bytes"]
CLASSES = 85  # HAK_STATS_CLASSES


def fail(msg):
    sys.exit(f"stats_exit: {msg}")


# ---- JSON ----
lines = [l for l in open(json_path).read().splitlines() if l.strip()]
if len(lines) != 1:
    fail(f"JSON: {len(lines)} lines, expected one object from one run")
d = json.loads(lines[0])
if d.get("variant") != variant:
    fail(f"JSON: variant {d.get('variant')!r}, expected {variant!r}")


def check_obj(o, what):
    missing = [k for k in PARTS + ["mapped_bytes", "resident_bytes", "process_rss_bytes", "resident", "total",
                                   "classes"] if k not in o]
    if missing:
        fail(f"JSON {what}: missing {missing}")
    if sum(o[k] for k in PARTS) != o["mapped_bytes"] or o["mapped_bytes"] == 0:
        fail(f"JSON {what}: the parts sum to {sum(o[k] for k in PARTS)}, mapped_bytes {o['mapped_bytes']}")
    if sum(o["resident"].values()) != o["resident_bytes"] or o["resident_bytes"] > o["mapped_bytes"]:
        fail(f"JSON {what}: resident by part does not sum to resident_bytes, or exceeds mapped")
    if len(o["classes"]) != CLASSES:
        fail(f"JSON {what}: {len(o['classes'])} size classes, expected {CLASSES}")


check_obj(d, "at exit")
if "peak" not in d:
    fail("JSON: no peak object with HAKMEM_STATS_PEAK=1")
check_obj(d["peak"], "at the peak")
if set(d["peak"]) - {"at"} != set(d) - {"hakmem", "variant", "peak"}:
    fail("JSON: the peak object's members differ from the top level's")
# The text's figures: the top level's numbers, the returned line, resident.*, total.*
figures = sum(isinstance(v, int) for v in d.values()) + 1 + len(d["resident"]) + len(d["total"])

# ---- text ----
text = open(text_path).read()
heads = list(re.finditer(r"^hakmem [0-9.]+, variant (\S+): (.*)$", text, re.M))
whens = [h.group(2) for h in heads]
if len(heads) != 3 or whens[:2] != ["now", "now"] or not whens[2].startswith("at the peak of the process's RSS"):
    fail(f"text: reports {whens}, expected now (run 1), now and at the peak (run 2, appended)")
for i, h in enumerate(heads):
    if h.group(1) != variant:
        fail(f"text report {i}: variant {h.group(1)}, expected {variant}")
    body = text[h.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)]
    rows = re.findall(r"^MALLOC: ([ +=]) +(\d+) \( *[\d.]+ MiB\) (.*)$", body, re.M)
    nums = re.findall(r"^MALLOC:\s*[+=]?\s*(\d+)", body, re.M)
    if len(nums) != figures:
        fail(f"text report {i}: {len(nums)} MALLOC figures, the JSON has {figures}")
    if not rows or rows[0][2] != "Bytes in use by application" or rows[0][0] != " ":
        fail(f"text report {i}: the first line is not 'Bytes in use by application'")
    total = next((int(n) for s, n, label in rows if s == "=" and label == "Bytes mapped (Total)"), None)
    parts = []
    for s, n, label in rows:
        if s == "=":
            break
        parts.append(int(n))
    if total is None or len(parts) != len(PARTS) or sum(parts) != total:
        fail(f"text report {i}: {len(parts)} parts summing to {sum(parts)}, Bytes mapped (Total) {total}")
    lab = {label: int(n) for s, n, label in rows}
    if lab["Bytes resident in memory"] + lab["Bytes returned to the OS or never touched"] != total:
        fail(f"text report {i}: resident + returned != mapped")
    if not re.search(r"^class +size +slabs +in use +magazines +transfer +free +MiB$", body, re.M) or \
            not re.search(r"^ +\d+ +\d+ +\d+ +\d+ +\d+ +\d+ +\d+ +[\d.]+$", body, re.M):
        fail(f"text report {i}: no size-class table with a row")
print(f"stats_exit: JSON (with peak) and 3 text reports of {variant}: {figures} figures each, parts sum to mapped "
      f"({d['mapped_bytes']} bytes at exit)")
