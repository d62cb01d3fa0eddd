/* large_reuse - large blocks allocated, touched and freed in a loop, in the
 * style of mimalloc-bench's malloc-large ("large blocks between 5 and
 * 25 MiB with up to 20 live at any time"), written afresh from that
 * description with sizes from 1 MiB to 32 MiB.
 *
 * `slots` slots, all filled first (timed); then each of `steps` steps picks
 * a random slot, checks and frees its block and allocates a new one of a
 * size uniform in [min, max], writing every page of it (wl_block_write:
 * with --verify touch one byte per 4 KiB page and 8 bytes at each end; with
 * full every byte). Finally every slot is freed (timed). This is where an
 * allocator that returns large blocks to the system on every free pays a
 * page fault per 4 KiB page on every reuse, and one that keeps them does
 * not.
 *
 * Determinism: slots, sizes and tags come from one seeded stream; the
 * checksum folds the tag and size of every block freed.
 *
 * --floor: each slot has a buffer of the largest size, mapped and faulted
 * in before timing; malloc returns the slot's buffer and free does nothing,
 * so the floor is the touching alone, without page faults (wl_slots,
 * common.h). */
#include "common.h"

#include <stdlib.h>

static wl_opt opts[] = {
    { "steps", WL_INT, 600, 0, 1e12, "free-and-allocate steps after the slots are filled", 0, 0 },
    { "slots", WL_INT, 8, 1, 1 << 16, "blocks live at once", 0, 0 },
    { "min-size", WL_INT, 1 << 20, 1, 1LL << 40, "smallest block in bytes", 0, 0 },
    { "max-size", WL_INT, 32 << 20, 1, 1LL << 40, "largest block in bytes (inclusive)", 0, 0 },
    { "seed", WL_INT, 1, 0, 9.2e18, "random seed", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "large_reuse", "Large blocks (1 to 32 MiB) allocated, every page touched, freed, in a loop.",
    opts, NULL,
};

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    uint64_t steps = (uint64_t)wl_int(&spec, "steps");
    uint64_t nslots = (uint64_t)wl_int(&spec, "slots");
    uint64_t lo, hi;
    wl_size_range(&spec, &lo, &hi);
    wl_rng r = wl_rng_stream((uint64_t)wl_int(&spec, "seed"), 0);
    wl_slots ss;
    wl_slots_init(&ss, nslots, hi);
    uint64_t h = 0, tag_base = wl_next(&r), serial = 0;

    double t0 = wl_now();
    for (uint64_t k = 0; k < nslots; k++) {
        size_t size = (size_t)wl_range(&r, lo, hi);
        wl_slot_fill(&ss, &ss.slot[k], size, tag_base + serial++ * 0x9e3779b97f4a7c15ULL);
    }
    for (uint64_t k = 0; k < steps; k++) {
        wl_slot *s = &ss.slot[wl_below(&r, nslots)];
        h = wl_slot_release(&ss, s, h, "large_reuse block");
        size_t size = (size_t)wl_range(&r, lo, hi);
        wl_slot_fill(&ss, s, size, tag_base + serial++ * 0x9e3779b97f4a7c15ULL);
    }
    h = wl_slots_release_all(&ss, h, "large_reuse block");
    double secs = wl_now() - t0;
    int64_t final_live = ss.live.cur; /* 0: the final frees are timed too */
    wl_slots_done(&ss);

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
