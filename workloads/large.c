/* large - large blocks from 64 KiB to 32 MiB (log-uniform) in a few slots;
 * each step picks a slot: an empty slot gets a new block; a full one is
 * grown with realloc (two times in three; by 1.25x to 2x, capped at the
 * maximum) or freed. After a realloc the old prefix is checked and the new
 * part written (wl_block_write_range), so every page asked for is touched.
 * --floor: each slot has a buffer of the maximum size, prefaulted before
 * timing; malloc and realloc return the slot's buffer, free does nothing. */
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

typedef struct slot {
    void *p;
    size_t size;
    uint64_t tag;
} slot;

/* --floor: one buffer of g_floor_stride bytes per slot. */
static char *g_floor_buf;
static size_t g_floor_stride;

static void *slot_malloc(wl_live *live, slot *slots, slot *s, size_t n)
{
    if (!g_floor_buf)
        return wl_malloc(live, n);
    wl_live_add(live, (int64_t)n);
    return g_floor_buf + (size_t)(s - slots) * g_floor_stride;
}

static void *slot_realloc(wl_live *live, slot *s, size_t old_n, size_t new_n)
{
    if (!g_floor_buf)
        return wl_realloc(live, s->p, old_n, new_n);
    wl_live_add(live, (int64_t)new_n - (int64_t)old_n);
    return s->p;
}

static uint64_t release(wl_live *live, slot *s, uint64_t h)
{
    wl_block_verify(s->p, s->size, s->tag, "large block");
    if (g_floor_buf)
        wl_live_add(live, -(int64_t)s->size);
    else
        wl_free(live, s->p, s->size);
    s->p = NULL;
    return wl_fold(h, s->tag ^ s->size);
}

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    uint64_t steps = (uint64_t)wl_int(&spec, "steps");
    uint64_t nslots = (uint64_t)wl_int(&spec, "slots");
    uint64_t lo, hi;
    wl_size_range(&spec, &lo, &hi);
    wl_rng r = wl_rng_stream((uint64_t)wl_int(&spec, "seed"), 0);
    slot *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        wl_fatal("out of memory for %llu slots", (unsigned long long)nslots);
    wl_live live = { 0 };
    uint64_t h = 0, tag_base = wl_next(&r), grows = 0;
    if (wl_floor_on) {
        g_floor_stride = (size_t)(hi + WL_PAGE - 1) / WL_PAGE * WL_PAGE;
        if (nslots > SIZE_MAX / g_floor_stride)
            wl_usage_error("--floor: %llu slots of %llu bytes do not fit in memory",
                           (unsigned long long)nslots, (unsigned long long)hi);
        g_floor_buf = wl_map_prefaulted(nslots * g_floor_stride);
    }

    double t0 = wl_now();
    for (uint64_t k = 0; k < steps; k++) {
        slot *s = &slots[wl_below(&r, nslots)];
        uint64_t action = wl_below(&r, 3);
        if (!s->p) {
            s->size = (size_t)wl_log_range(&r, lo, hi);
            s->tag = tag_base + k * 0x9e3779b97f4a7c15ULL;
            s->p = slot_malloc(&live, slots, s, s->size);
            wl_block_write(s->p, s->size, s->tag);
        } else if (action < 2 && s->size < hi) {
            size_t old = s->size;
            size_t grown = (size_t)((double)old * (1.25 + 0.75 * wl_unit(&r)));
            if (grown <= old)
                grown = old + 1;
            if (grown > hi)
                grown = (size_t)hi;
            s->p = slot_realloc(&live, s, old, grown);
            wl_block_verify(s->p, old, s->tag, "large block after realloc");
            wl_block_write_range(s->p, old, grown, s->tag);
            s->size = grown;
            h = wl_fold(h, grown);
            grows++;
        } else {
            h = release(&live, s, h);
        }
    }
    double secs = wl_now() - t0;
    int64_t final_live = live.cur;
    for (uint64_t k = 0; k < nslots; k++)
        if (slots[k].p)
            h = release(&live, &slots[k], h);
    free(slots);
    if (g_floor_buf)
        wl_unmap(g_floor_buf, nslots * g_floor_stride);

    wl_report rep = {
        .threads = 1,
        .ops = steps,
        .op_unit = "malloc, realloc or free",
        .seconds = secs,
        .peak_live_bytes = live.peak,
        .final_live_bytes = final_live,
        .checksum = h,
    };
    rep.extra[0].name = "reallocs";
    rep.extra[0].value = (double)grows;
    wl_report_print(&rep);
    return 0;
}
