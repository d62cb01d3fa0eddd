/* large - large blocks from 64 KiB to 32 MiB (log-uniform) in a few slots;
 * each step picks a slot: an empty slot gets a new block; a full one is
 * grown with realloc (two times in three; by 1.25x to 2x, capped at the
 * maximum) or freed. After a realloc the old prefix is checked and the new
 * part written (wl_block_write_range), so every page asked for is touched.
 * --floor: each slot has a buffer of the maximum size, prefaulted before
 * timing; malloc and realloc return the slot's buffer, free does nothing
 * (wl_slots, common.h). */
#include "common.h"

#include <stdlib.h>

static wl_opt opts[] = {
    { "steps", WL_INT, 1500, 1, 1e12, "steps (one malloc, realloc or free each)", 0, 0 },
    { "slots", WL_INT, 8, 1, 1 << 20, "number of slots", 0, 0 },
    { "min-size", WL_INT, 65536, 1, 1LL << 40, "smallest new block in bytes", 0, 0 },
    { "max-size", WL_INT, 33554432, 1, 1LL << 40, "largest block in bytes (inclusive)", 0, 0 },
    { "seed", WL_INT, 1, 0, 9.2e18, "random seed", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "large", "Large blocks (64 KiB to 32 MiB) allocated, grown with realloc and freed.",
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
    uint64_t h = 0, tag_base = wl_next(&r), grows = 0;

    double t0 = wl_now();
    for (uint64_t k = 0; k < steps; k++) {
        wl_slot *s = &ss.slot[wl_below(&r, nslots)];
        uint64_t action = wl_below(&r, 3);
        if (!s->p) {
            size_t size = (size_t)wl_log_range(&r, lo, hi);
            wl_slot_fill(&ss, s, size, tag_base + k * 0x9e3779b97f4a7c15ULL);
        } else if (action < 2 && s->size < hi) {
            size_t old = s->size;
            size_t grown = (size_t)((double)old * (1.25 + 0.75 * wl_unit(&r)));
            if (grown <= old)
                grown = old + 1;
            if (grown > hi)
                grown = (size_t)hi;
            wl_slot_grow(&ss, s, grown, "large block after realloc");
            h = wl_fold(h, grown);
            grows++;
        } else {
            h = wl_slot_release(&ss, s, h, "large block");
        }
    }
    double secs = wl_now() - t0;
    int64_t final_live = ss.live.cur;
    h = wl_slots_release_all(&ss, h, "large block");
    wl_slots_done(&ss);

    wl_report rep = {
        .threads = 1,
        .ops = steps,
        .op_unit = "malloc, realloc or free",
        .seconds = secs,
        .peak_live_bytes = ss.live.peak,
        .final_live_bytes = final_live,
        .checksum = h,
    };
    rep.extra[0].name = "reallocs";
    rep.extra[0].value = (double)grows;
    wl_report_print(&rep);
    return 0;
}
