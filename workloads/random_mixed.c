/* random_mixed - a working set of slots; each step picks a random slot and
 * frees its block if it holds one, or allocates a block of random size in
 * [min, max] if it is empty. Sizes and slots come from one seeded stream.
 * --floor: floor bins prefaulted for every slot full at the largest size. */
#include "common.h"

#include <stdlib.h>

static wl_opt opts[] = {
    { "slots", WL_INT, 8192, 1, 1 << 26, "number of slots in the working set", 0, 0 },
    { "steps", WL_INT, 20000000, 1, 1e12, "steps (one malloc or one free each)", 0, 0 },
    { "min-size", WL_INT, 16, 1, 1 << 30, "smallest block in bytes", 0, 0 },
    { "max-size", WL_INT, 1040, 1, 1 << 30, "largest block in bytes (inclusive)", 0, 0 },
    { "seed", WL_INT, 1, 0, 9.2e18, "random seed", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "random_mixed",
    "Working set of slots: each step frees a random slot if full, else allocates into it.",
    opts, NULL,
};

typedef struct slot {
    void *p;
    uint32_t size;
    uint64_t tag;
} slot;

static uint64_t release(wl_live *live, slot *s, uint64_t h)
{
    wl_block_verify(s->p, s->size, s->tag, "random_mixed slot");
    wl_free(live, s->p, s->size);
    s->p = NULL;
    return wl_fold(h, s->tag ^ s->size);
}

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    uint64_t nslots = (uint64_t)wl_int(&spec, "slots");
    uint64_t steps = (uint64_t)wl_int(&spec, "steps");
    uint64_t lo, hi;
    wl_size_range(&spec, &lo, &hi);
    wl_rng r = wl_rng_stream((uint64_t)wl_int(&spec, "seed"), 0);
    slot *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        wl_fatal("out of memory for %llu slots", (unsigned long long)nslots);
    wl_live live = { 0 };
    wl_live_floor(&live, nslots * wl_floor_class_size(wl_floor_class(hi)));
    uint64_t h = 0, tag_base = wl_next(&r);

    double t0 = wl_now();
    for (uint64_t k = 0; k < steps; k++) {
        slot *s = &slots[wl_below(&r, nslots)];
        if (s->p) {
            h = release(&live, s, h);
        } else {
            s->size = (uint32_t)wl_range(&r, lo, hi);
            s->tag = tag_base + k * 0x9e3779b97f4a7c15ULL;
            s->p = wl_malloc(&live, s->size);
            wl_block_write(s->p, s->size, s->tag);
        }
    }
    double secs = wl_now() - t0;
    int64_t final_live = live.cur;
    for (uint64_t k = 0; k < nslots; k++)
        if (slots[k].p)
            h = release(&live, &slots[k], h);
    free(slots);
    wl_live_floor_done(&live);

    wl_report rep = {
        .threads = 1,
        .ops = steps,
        .op_unit = "malloc or free",
        .seconds = secs,
        .peak_live_bytes = live.peak,
        .final_live_bytes = final_live,
        .checksum = h,
    };
    wl_report_print(&rep);
    return 0;
}
