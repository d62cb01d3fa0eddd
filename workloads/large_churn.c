/* large_churn - a set of large blocks renewed one at a time: each step
 * allocates a new block and writes it before an old one is freed, so the
 * allocator never gets the old block back in time to hand it out again.
 * The pattern of a benchmark written outside this project (issue 24): 20
 * live blocks of 5 to 25 MiB, each new one allocated and written in full
 * before an old one is freed, 2,000 times.
 *
 * `live` blocks are allocated first (timed), each of a size uniform in
 * [min, max]. Then each of `steps` steps allocates a new block of such a
 * size into the one empty slot and writes it (wl_block_write: with --verify
 * touch one byte per 4 KiB page and 8 bytes at each end, with full every
 * byte), and only then checks and frees an old block: the oldest live one
 * (the default), or with --free-random one chosen at random among the
 * `live` older ones. So `live` + 1 blocks are live at the peak of each step.
 * Finally every block is freed (timed, so `final_live_bytes` is 0).
 *
 * Unlike large_reuse (which frees first, then allocates), a block freed
 * here can only serve the request after next: an allocator that returns a
 * freed large block to the system pays a page fault per 4 KiB page of
 * every new block, one that keeps it pays nothing, and one that builds a
 * block from cached pieces moved into place pays for each moved page at
 * its first write.
 *
 * Determinism: sizes, tags and (with --free-random) victims come from one
 * seeded stream; the checksum folds the tag and size of every block freed,
 * in order.
 *
 * --floor: each of the live + 1 slots has a buffer of the largest size,
 * mapped and faulted in before timing; malloc returns the slot's buffer and
 * free does nothing (wl_slots, common.h): the floor is the writing and
 * checking alone, without page faults. */
#include "common.h"

#include <stdlib.h>

static wl_opt opts[] = {
    { "live", WL_INT, 20, 1, 1 << 16, "blocks live between steps (one more during a step)", 0, 0 },
    { "steps", WL_INT, 2000, 0, 1e12, "steps: allocate and write a new block, then free an old one", 0, 0 },
    { "min-size", WL_INT, 5 << 20, 1, 1LL << 40, "smallest block in bytes", 0, 0 },
    { "max-size", WL_INT, 25 << 20, 1, 1LL << 40, "largest block in bytes (inclusive)", 0, 0 },
    { "free-random", WL_FLAG, 0, 0, 1, "free a random older block each step instead of the oldest", 0, 0 },
    { "seed", WL_INT, 1, 0, 9.2e18, "random seed", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "large_churn",
    "Large blocks (5 to 25 MiB) renewed one at a time: allocate and write a new one, then free an old one.",
    opts, NULL,
};

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    uint64_t live = (uint64_t)wl_int(&spec, "live");
    uint64_t steps = (uint64_t)wl_int(&spec, "steps");
    bool random_victim = wl_int(&spec, "free-random") != 0;
    uint64_t lo, hi;
    wl_size_range(&spec, &lo, &hi);
    wl_rng r = wl_rng_stream((uint64_t)wl_int(&spec, "seed"), 0);
    wl_slots ss;
    wl_slots_init(&ss, live + 1, hi);
    /* age[k]: the slot of the k-th oldest live block (k < live); the slot
     * left empty is `empty`. */
    uint64_t *age = malloc(live * sizeof *age);
    if (!age)
        wl_fatal("out of memory for %llu blocks", (unsigned long long)live);
    uint64_t h = 0, tag_base = wl_next(&r), serial = 0, empty = live;

    double t0 = wl_now();
    for (uint64_t k = 0; k < live; k++) {
        size_t size = (size_t)wl_range(&r, lo, hi);
        wl_slot_fill(&ss, &ss.slot[k], size, tag_base + serial++ * 0x9e3779b97f4a7c15ULL);
        age[k] = k;
    }
    for (uint64_t k = 0; k < steps; k++) {
        size_t size = (size_t)wl_range(&r, lo, hi);
        wl_slot_fill(&ss, &ss.slot[empty], size, tag_base + serial++ * 0x9e3779b97f4a7c15ULL);
        uint64_t v = random_victim ? wl_below(&r, live) : 0;
        uint64_t victim = age[v];
        h = wl_slot_release(&ss, &ss.slot[victim], h, "large_churn block");
        /* the victim leaves the age order; the new block is the youngest */
        memmove(&age[v], &age[v + 1], (live - 1 - v) * sizeof *age);
        age[live - 1] = empty;
        empty = victim;
    }
    h = wl_slots_release_all(&ss, h, "large_churn block");
    double secs = wl_now() - t0;
    int64_t final_live = ss.live.cur; /* 0: the final frees are timed too */
    wl_slots_done(&ss);
    free(age);

    wl_report rep = {
        .threads = 1,
        .ops = 2 * serial,
        .op_unit = "malloc or free",
        .seconds = secs,
        .peak_live_bytes = ss.live.peak,
        .final_live_bytes = final_live,
        .checksum = h,
    };
    rep.extra[0].name = "blocks";
    rep.extra[0].value = (double)serial;
    wl_report_print(&rep);
    return 0;
}
