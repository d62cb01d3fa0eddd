"""stats_json.py TEXT JSON — checks two renderings of one statistics state
(tests/stats writes them with nothing allocated in between): the JSON parses,
every MALLOC figure of the text is the JSON figure of the same name, the
derived line (returned to the OS) is mapped - resident, the parts sum to the
mapped bytes, and the size-class table matches the JSON classes row by row.
Prints what it compared; exit 1 on the first mismatch."""
import json
import re
import sys

text = open(sys.argv[1]).read()
d = json.load(open(sys.argv[2]))

# The text's labels, in order, as they map to JSON paths (the text groups
# them the way gperftools' GetStats does; the JSON nests resident.* and total.*).
PARTS = ["in_use_bytes", "magazine_bytes", "transfer_bytes", "slab_free_bytes", "slab_tail_bytes", "pool_bytes",
         "superslab_free_bytes", "medium_free_bytes", "large_cache_bytes", "metadata_bytes"]
ORDER = (PARTS + ["mapped_bytes", "resident_bytes", "(returned)", "process_rss_bytes"] +
         ["resident." + k for k in ["slabs", "pool", "superslab_free", "medium", "large", "large_cache", "metadata"]] +
         ["small_in_use_bytes", "medium_in_use_bytes", "large_in_use_bytes",
          "superslab_dirty_bytes", "medium_dirty_bytes", "large_dirty_bytes"] +
         ["slabs", "pooled_slabs", "superslabs", "medium_chunks", "large_blocks", "large_cached", "heaps"] +
         ["total." + k for k in d["total"]])


def get(path):
    v = d
    for k in path.split("."):
        v = v[k]
    return v


nums = [int(m.group(1)) for m in re.finditer(r"^MALLOC:\s*[+=]?\s*(\d+)", text, re.M)]
if len(nums) != len(ORDER):
    sys.exit(f"the text has {len(nums)} MALLOC figures, the JSON names {len(ORDER)}")
for name, n in zip(ORDER, nums):
    want = d["mapped_bytes"] - d["resident_bytes"] if name == "(returned)" else get(name)
    if n != want:
        sys.exit(f"{name}: text {n}, JSON {want}")
if sum(d[k] for k in PARTS) != d["mapped_bytes"]:
    sys.exit("the JSON parts do not sum to mapped_bytes")
if d["small_in_use_bytes"] + d["medium_in_use_bytes"] + d["large_in_use_bytes"] != d["in_use_bytes"]:
    sys.exit("the bytes in use by tier do not sum to in_use_bytes")
rows = [tuple(int(x) for x in r.groups()) for r in
        re.finditer(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+[\d.]+$", text, re.M)]
want_rows = [(c["class"], c["block_size"], c["slabs"], c["in_use"], c["in_magazines"], c["in_transfer"],
              c["free_in_slabs"])
             for c in d["classes"] if c["slabs"] or c["in_magazines"] or c["in_transfer"]]
if rows != want_rows:
    sys.exit(f"class table: text {rows}, JSON {want_rows}")
if not rows:
    sys.exit("no size class in use: nothing compared")
print(f"{len(nums)} figures and {len(rows)} class rows agree; parts sum to {d['mapped_bytes']} bytes")
