/* frag - fragmentation stress: fill many slots with mixed-size blocks, then
 * each round free a random half and refill those slots with sizes skewed the
 * other way (even rounds toward small, odd rounds toward large, log scale),
 * so an allocator must reuse holes of the wrong size. Compare RSS with
 * peak_live_bytes to see how well holes are reused.
 * --floor: floor bins prefaulted for twice the mean live bytes (the bins
 * keep blocks of the sizes skewed away from, so they grow past it). */
#include "common.h"

#include <math.h>
#include <stdlib.h>

static wl_opt opts[] = {
    { "blocks", WL_INT, 100000, 2, 1 << 26, "number of live blocks (slots)", 0, 0 },
    { "rounds", WL_INT, 30, 0, 1 << 20, "free-half-and-refill rounds", 0, 0 },
    { "min-size", WL_INT, 16, 1, 1 << 30, "smallest block in bytes", 0, 0 },
    { "max-size", WL_INT, 4096, 1, 1 << 30, "largest block in bytes (inclusive)", 0, 0 },
    { "seed", WL_INT, 1, 0, 9.2e18, "random seed", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "frag", "Mixed-size blocks; free a random half, refill with other sizes, repeat.",
    opts, NULL,
};

typedef struct slot {
    void *p;
    uint32_t size;
    uint64_t tag;
} slot;

/* Size for round r: log-uniform in [lo, hi], skewed toward small (even r > 0)
 * or large (odd r); round 0 is unskewed. */
static uint32_t round_size(wl_rng *r, uint64_t lo, uint64_t hi, int64_t round)
{
    double u = wl_unit(r);
    if (round > 0)
        u = (round & 1) ? sqrt(u) : u * u;
    double l = log((double)lo), h = log((double)hi + 1.0);
    uint64_t s = (uint64_t)exp(l + (h - l) * u);
    return (uint32_t)(s < lo ? lo : s > hi ? hi : s);
}

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    uint64_t n = (uint64_t)wl_int(&spec, "blocks");
    int64_t rounds = wl_int(&spec, "rounds");
    uint64_t lo, hi;
    wl_size_range(&spec, &lo, &hi);
    if (hi > UINT32_MAX)
        wl_usage_error("--max-size must be below 4 GiB");
    wl_rng r = wl_rng_stream((uint64_t)wl_int(&spec, "seed"), 0);
    slot *slots = calloc(n, sizeof *slots);
    uint32_t *order = malloc(n * sizeof *order);
    if (!slots || !order)
        wl_fatal("out of memory for %llu slots", (unsigned long long)n);
    for (uint64_t k = 0; k < n; k++)
        order[k] = (uint32_t)k;
    wl_live live = { 0 };
    double mean = ((double)hi - (double)lo) / (log((double)hi + 1.0) - log((double)lo) + 1e-9);
    wl_live_floor(&live, (size_t)(2.0 * (double)n * (mean > (double)lo ? mean : (double)lo)));
    uint64_t h = 0, ops = 0, serial = 0, tag_base = wl_next(&r);

    double t0 = wl_now();
    for (uint64_t k = 0; k < n; k++) {
        slot *s = &slots[k];
        s->size = round_size(&r, lo, hi, 0);
        s->tag = tag_base + serial++ * 0x9e3779b97f4a7c15ULL;
        s->p = wl_malloc(&live, s->size);
        wl_block_write(s->p, s->size, s->tag);
        ops++;
    }
    for (int64_t round = 1; round <= rounds; round++) {
        /* pick a random half: partial Fisher-Yates over the slot order */
        uint64_t half = n / 2;
        for (uint64_t k = 0; k < half; k++) {
            uint64_t j = k + wl_below(&r, n - k);
            uint32_t t = order[k];
            order[k] = order[j];
            order[j] = t;
            slot *s = &slots[order[k]];
            wl_block_verify(s->p, s->size, s->tag, "frag block");
            h = wl_fold(h, s->tag ^ s->size);
            wl_free(&live, s->p, s->size);
            ops++;
        }
        for (uint64_t k = 0; k < half; k++) {
            slot *s = &slots[order[k]];
            s->size = round_size(&r, lo, hi, round);
            s->tag = tag_base + serial++ * 0x9e3779b97f4a7c15ULL;
            s->p = wl_malloc(&live, s->size);
            wl_block_write(s->p, s->size, s->tag);
            ops++;
        }
    }
    double secs = wl_now() - t0;
    int64_t final_live = live.cur;
    for (uint64_t k = 0; k < n; k++) {
        wl_block_verify(slots[k].p, slots[k].size, slots[k].tag, "frag block");
        h = wl_fold(h, slots[k].tag ^ slots[k].size);
        wl_free(&live, slots[k].p, slots[k].size);
    }
    free(slots);
    free(order);
    wl_live_floor_done(&live);

    wl_report rep = {
        .threads = 1,
        .ops = ops,
        .op_unit = "malloc or free",
        .seconds = secs,
        .peak_live_bytes = live.peak,
        .final_live_bytes = final_live,
        .checksum = h,
    };
    wl_report_print(&rep);
    return 0;
}
