#!/usr/bin/python3
"""symbolize_check.py - the frames of a leak report or of hakmem-trace's
trace.json against addr2line, for tests/symbolize.sh.

  symbolize_check.py leak REPORT PROG FUNC...
  symbolize_check.py trace TRACE_JSON PROG FUNC...

Every frame in PROG must carry exactly the source addr2line -f -i gives for
the byte before its return address: " at FILE:LINE" for the function the
symbol table names, ", inlined: F at FILE:LINE, ..." for the functions
inlined there (outermost first), and nothing when addr2line knows no line.
Each FUNC must be among the functions named in PROG's frames. Prints one
line per mismatch and exits 1; "N frames of PROG checked" otherwise."""
import json
import os
import re
import subprocess
import sys

FRAME_LEAK = re.compile(r"^\s+#\d+ 0x[0-9a-f]+ in (\S+) \((.*)\+0x([0-9a-f]+)\)(.*)$")
FRAME_TRACE = re.compile(r"^(\S+)\+0x([0-9a-f]+) \(([^)]*)\)(.*)$")


def addr2line(prog, addr):
    out = subprocess.run(["addr2line", "-f", "-i", "-e", prog, "0x%x" % addr],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    chain = []
    for func, where in zip(out[0::2], out[1::2]):
        where = re.sub(r" \(discriminator \d+\)$", "", where)
        chain.append((func, where))
    return chain  # innermost first


def expected_suffix(chain):
    if not chain or chain[0][1].startswith("??") or chain[0][1].endswith((":?", ":0")):  # no line
        return ""
    s = " at " + chain[-1][1]
    inner = list(reversed(chain[:-1]))
    if inner:
        s += ", inlined: " + ", ".join("%s at %s" % c for c in inner)
    return s


def symbol_values(prog):
    vals = {}
    for line in subprocess.run(["nm", prog], capture_output=True, text=True, check=True).stdout.splitlines():
        p = line.split()
        if len(p) == 3 and p[1] in "tTwW":
            vals[p[2]] = int(p[0], 16)
    return vals


def main():
    kind, path, prog, want = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4:])
    frames = []  # (text, function, address)
    if kind == "leak":
        for line in open(path):
            m = FRAME_LEAK.match(line.rstrip("\n"))
            if m and m.group(2) == prog:
                frames.append((line.strip(), m.group(1), int(m.group(3), 16), m.group(4)))
    else:
        j = json.load(open(path))
        vals = symbol_values(prog)
        for inst in j["instances"]:
            for site in inst.get("top_sites_by_bytes", []):
                for f in site["frames"]:
                    m = FRAME_TRACE.match(f)
                    if m and m.group(3) == os.path.basename(prog) and m.group(1) in vals:
                        frames.append((f, m.group(1), vals[m.group(1)] + int(m.group(2), 16), m.group(4)))
    bad = 0
    for text, func, addr, suffix in frames:
        exp = expected_suffix(addr2line(prog, addr - 1))
        if suffix != exp:
            print("frame %r: expected the suffix %r (addr2line)" % (text, exp))
            bad += 1
    named = {f[1] for f in frames}
    for w in sorted(want - named):
        print("no frame of %s in %s names %s (frames: %s)" % (prog, path, w, sorted(named)))
        bad += 1
    if bad:
        sys.exit(1)
    print("%d frames of %s checked" % (len(frames), prog))


main()
