#!/usr/bin/python3
"""make_sampled.py FULL_DIR SAMPLED_DIR N - a known population of calls
(one thread, fixed seed) written once as a full-mode trace (FULL_DIR: its
report gives the exact figures) and N times as sampled traces of it
(SAMPLED_DIR: N processes, pids 5001.., each with its own salt and
countdown), drawn as libhaktrack draws (trace_format.h, tracker/haktrack.c):
a block at or above the threshold is recorded with all its calls, a smaller
one when the hash of its address with the salt is below 2^64 / every, and
each thread's countdown (gaps uniform in 1 .. 2 * every - 1) draws the
calls. Each allocating call has one of three stacks, by the size it asks
for (small, medium, large): the sites' intervals are checked too. Addresses are reused last-freed first per size class, as allocators
do, so the tracked addresses hold many blocks over time (tests/tracker.sh:
the report's intervals must cover the exact figures at about their rate).
"""
import os
import random
import struct
import sys

MALLOC, FREE, REALLOC, STACK, END = 1, 2, 4, 32, 34
SAMPLED, CALL, BLOCK, OLD_BLOCK = 1, 2, 4, 8
THRESHOLD, EVERY = 4096, 16
M = (1 << 64) - 1


def mix(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)


def header(pid, mode, salt):
    h = struct.pack("<8sIIIIII", b"HAKTRACE", 2, 256, 48, (2 if mode else 0) | 1, mode, 0)
    h += struct.pack("<QQQQQQQQQ", pid, 1, pid, 1000, 0, 0, THRESHOLD, EVERY, 0)
    h += b"/usr/bin/population".ljust(128, b"\0") + struct.pack("<Q", salt) + b"population".ljust(16, b"\0")
    assert len(h) == 256
    return h


def ev(op, time, ptr=0, size=0, aux=0, flags=0, old_size=0, stack=0):
    return struct.pack("<QQQQIIBBHI", time, ptr, size, aux, 0, stack, op, flags, 0, old_size)


def site(n):
    """The stack of an allocating call asking for n bytes: 1, 2 or 3."""
    return 1 if n <= 256 else 2 if n <= 2048 else 3


def stack_defs():
    """Version 2 definitions of stacks 1-3: two frames each."""
    out = b""
    for sid in (1, 2, 3):
        frames = [0x1000 * sid + 0x10, 0x500]
        out += struct.pack("<QQQQIIBBHI", 0, 0, len(frames), 0xabc000 + sid, 0, sid, STACK, 0, 0, 0)
        body = b"".join(struct.pack("<Q", f) for f in frames)
        out += body + bytes((-len(body)) % 48)
    return out


def population(seed=1, steps=6000):
    """The calls: (op, ptr, size, old ptr, old size), in order."""
    rng = random.Random(seed)
    free_lists, bump, live, calls = {}, 0x10000000, [], []

    def new_addr(n):
        nonlocal bump
        cls = n.bit_length()
        if free_lists.get(cls):
            return free_lists[cls].pop()
        bump += (n + 15) // 16 * 16 + 16
        return bump

    def release(p, n):
        free_lists.setdefault(n.bit_length(), []).append(p)

    for i in range(steps):
        grow = 0.62 if i < steps // 2 else 0.48
        r = rng.random()
        if r < 0.05 and live:  # realloc: grows by half, moves half the time
            k = rng.randrange(len(live))
            p, n = live[k]
            m = n + n // 2 + 1
            q = p if rng.random() < 0.5 and m.bit_length() == n.bit_length() else new_addr(m)
            if q != p:
                release(p, n)
            live[k] = (q, m)
            calls.append((REALLOC, q, m, p, n))
        elif r < grow or not live:
            u = rng.random()
            n = (rng.randint(16, 256) if u < 0.70 else rng.randint(257, 2048) if u < 0.95 else
                 rng.randint(2049, THRESHOLD - 1) if u < 0.99 else rng.randint(THRESHOLD, 4 * THRESHOLD))
            p = new_addr(n)
            live.append((p, n))
            calls.append((MALLOC, p, n, 0, 0))
        else:
            p, n = live.pop(rng.randrange(len(live)))
            release(p, n)
            calls.append((FREE, p, 0, 0, n))
    return calls


def sampled_records(calls, salt, rng_seed):
    """The records libhaktrack would write for calls in sampled mode."""
    rng = random.Random(rng_seed)
    countdown = 1 + rng.randrange(2 * EVERY)
    below = M // EVERY
    sizes, out = {}, []

    def draw():
        nonlocal countdown
        countdown -= 1
        if countdown:
            return False
        countdown = 1 + rng.randrange(2 * EVERY - 1)
        return True

    def tracked(p):
        return mix(p ^ salt) < below

    for t, (op, p, n, old, old_n) in enumerate(calls, 1):
        time = 1000 * t
        if op == MALLOC:
            sizes[p] = n
            if n >= THRESHOLD:
                out.append(ev(MALLOC, time, p, n, flags=CALL | BLOCK, stack=site(n)))
                continue
            fl = (BLOCK if tracked(p) else 0) | (CALL if draw() else 0)
            if fl:
                out.append(ev(MALLOC, time, p, n, flags=fl | SAMPLED, stack=site(n)))
        elif op == FREE:
            if sizes.pop(p) >= THRESHOLD:
                out.append(ev(FREE, time, p, flags=CALL | BLOCK))
                continue
            fl = (CALL if draw() else 0) | (BLOCK if tracked(p) else 0)
            if fl:
                out.append(ev(FREE, time, p, flags=fl | SAMPLED))
        else:
            was = sizes.pop(old)
            fl = OLD_BLOCK if was >= THRESHOLD or tracked(old) else 0
            drawn = n < THRESHOLD and draw()
            sizes[p] = n
            nf = CALL | BLOCK if n >= THRESHOLD else (BLOCK if tracked(p) else 0) | SAMPLED | (CALL if drawn else 0)
            fl |= nf
            if fl & ~SAMPLED:
                out.append(ev(REALLOC, time, p, n, old, fl, was if drawn else 0, stack=site(n)))
    out.append(ev(END, 1000 * (len(calls) + 1), 0, len(out)))
    return out


def main():
    full_dir, samp_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    calls = population()
    os.makedirs(full_dir, exist_ok=True)
    os.makedirs(samp_dir, exist_ok=True)
    full = [ev(op, 1000 * t, p, n_, old, stack=site(n_) if op != FREE else 0)
            for t, (op, p, n_, old, _) in enumerate(calls, 1)]
    with open(os.path.join(full_dir, "5000-1000-0.htrk"), "wb") as f:
        f.write(header(5000, 0, 0) + stack_defs() + b"".join(full) + ev(END, 1000 * (len(calls) + 1), 0, len(full)))
    seeds = random.Random(2)
    for i in range(n):
        salt = seeds.getrandbits(64)
        with open(os.path.join(samp_dir, "%d-1000-0.htrk" % (5001 + i)), "wb") as f:
            f.write(header(5001 + i, 1, salt) + stack_defs() +
                    b"".join(sampled_records(calls, salt, seeds.getrandbits(32))))


if __name__ == "__main__":
    main()
