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
 * so the floor is the touching alone, without page faults. */
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

typedef struct slot {
    void *p;
    size_t size;
    uint64_t tag;
} slot;

static char *g_floor_buf; /* --floor: one buffer of g_stride bytes per slot */
static size_t g_stride;

static void fill(wl_live *live, slot *slots, slot *s, wl_rng *r, uint64_t lo, uint64_t hi,
                 uint64_t tag)
{
    s->size = (size_t)wl_range(r, lo, hi);
    s->tag = tag;
    if (g_floor_buf) {
        s->p = g_floor_buf + (size_t)(s - slots) * g_stride;
        wl_live_add(live, (int64_t)s->size);
    } else {
        s->p = wl_malloc(live, s->size);
    }
    wl_block_write(s->p, s->size, s->tag);
}

static uint64_t release(wl_live *live, slot *s, uint64_t h)
{
    wl_block_verify(s->p, s->size, s->tag, "large_reuse block");
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
    if (wl_floor_on) {
        g_stride = (size_t)(hi + WL_PAGE - 1) / WL_PAGE * WL_PAGE;
        if (nslots > SIZE_MAX / g_stride)
            wl_usage_error("--floor: %llu slots of %llu bytes do not fit in memory",
                           (unsigned long long)nslots, (unsigned long long)hi);
        g_floor_buf = wl_map_prefaulted(nslots * g_stride);
    }
    wl_live live = { 0 };
    uint64_t h = 0, tag_base = wl_next(&r), serial = 0;

    double t0 = wl_now();
    for (uint64_t k = 0; k < nslots; k++)
        fill(&live, slots, &slots[k], &r, lo, hi, tag_base + serial++ * 0x9e3779b97f4a7c15ULL);
    for (uint64_t k = 0; k < steps; k++) {
        slot *s = &slots[wl_below(&r, nslots)];
        h = release(&live, s, h);
        fill(&live, slots, s, &r, lo, hi, tag_base + serial++ * 0x9e3779b97f4a7c15ULL);
    }
    for (uint64_t k = 0; k < nslots; k++)
        h = release(&live, &slots[k], h);
    double secs = wl_now() - t0;
    int64_t final_live = live.cur; /* 0: the final frees are timed too */
    free(slots);
    if (g_floor_buf)
        wl_unmap(g_floor_buf, nslots * g_stride);

    wl_report rep = {
        .threads = 1,
        .ops = 2 * serial,
        .op_unit = "malloc or free",
        .seconds = secs,
        .peak_live_bytes = live.peak,
        .final_live_bytes = final_live,
        .checksum = h,
    };
    rep.extra[0].name = "blocks";
    rep.extra[0].value = (double)serial;
    wl_report_print(&rep);
    return 0;
}
