#!/usr/bin/python3
"""make_trace.py DIR - writes a small trace with known figures (the
aggregator and compile test in tests/tracker.sh): process 4242, two
threads, stacks, one realloc chain, a cross-thread free, a short-lived
large block, a free of an unknown pointer, free(NULL), a failed malloc;
thread 1's file has no end record and ends in 20 bytes of a cut record.

Known figures: 5 allocations, 3 frees, peak 77348 live bytes at 700 ns,
2348 bytes in 2 blocks never freed, one realloc chain (2 reallocs, 1 move,
100 bytes copied), cross-thread matrix [[2, 1], [0, 0]], 1 short-lived
large block (70000 bytes), 1 unmatched free, 1 free(NULL), 1 failed call.
"""
import os
import struct
import sys

MALLOC, FREE, CALLOC, REALLOC, STACK, END = 1, 2, 3, 4, 32, 34
PID, EPOCH = 4242, 1000


def header(thread, tid):
    h = struct.pack("<8sIIIIII", b"HAKTRACE", 2, 256, 48, 1, 0, thread)
    h += struct.pack("<QQQQQQQQQ", PID, 1, tid, EPOCH, 0, 0, 0, 0, 0)
    h += b"/usr/bin/fixed".ljust(128, b"\0") + bytes(8) + b"fixed".ljust(16, b"\0")
    assert len(h) == 256
    return h


def ev(op, time, ptr=0, size=0, aux=0, start=0, stack=0):
    return struct.pack("<QQQQIIBBHI", time, ptr, size, aux, start, stack, op, 0, 0, 0)


def stack_def(sid, frames, h):
    out = struct.pack("<QQQQIIBBHI", 0, 0, len(frames), h, 0, sid, STACK, 0, 0, 0)
    body = b"".join(struct.pack("<Q", f) for f in frames)
    body += bytes((-len(body)) % 48)
    return out + body


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    t0 = [stack_def(1, [0x1000, 0x2000], 0xabcdef1),
          ev(MALLOC, 100, 0x10000, 100, stack=1),
          ev(MALLOC, 200, 0x20000, 1000, stack=1),
          ev(CALLOC, 300, 0x30000, 5000, 5),
          ev(REALLOC, 400, 0x40000, 200, 0x10000, start=10),
          ev(REALLOC, 500, 0x40000, 300, 0x40000, start=10),
          ev(FREE, 600, 0x20000),
          ev(MALLOC, 700, 0x50000, 70000),
          ev(FREE, 800, 0x50000),
          ev(FREE, 900, 0xdead0),
          ev(FREE, 950, 0),
          ev(MALLOC, 1000, 0, 1 << 50),
          ev(END, 1001, 0, 11)]
    t1 = [ev(MALLOC, 650, 0x60000, 2048),
          ev(FREE, 1100, 0x30000)]
    with open(os.path.join(d, "%d-%d-0.htrk" % (PID, EPOCH)), "wb") as f:
        f.write(header(0, PID) + b"".join(t0))
    with open(os.path.join(d, "%d-%d-1.htrk" % (PID, EPOCH)), "wb") as f:
        f.write(header(1, PID + 1) + b"".join(t1) + ev(FREE, 1200, 0x60000)[:20])


if __name__ == "__main__":
    main()
