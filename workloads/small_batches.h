/* small_batches.h - the batch loop shared by tiny and tiny_mt.
 *
 * One batch: allocate `batch` blocks (sizes from a precomputed table, so the
 * random generator stays out of the timed path), write each (wl_block_write),
 * then check and free them: even batches in LIFO order, odd batches in one
 * of a few precomputed random orders. A final partial batch is freed LIFO.
 * --floor: each stream has its own floor bins (prefaulted for one batch).
 * The checksum folds sizes and tags once per batch; it depends only on the
 * stream's seed and the parameters. */
#ifndef WL_SMALL_BATCHES_H
#define WL_SMALL_BATCHES_H

#include "common.h"

#include <stdlib.h>

/* The options of the batch loop after "pairs" (whose meaning differs: per
 * thread in tiny_mt), in both workloads' tables. */
#define SB_OPTIONS                                                                        \
    { "batch", WL_INT, 64, 1, 65535, "blocks allocated before they are freed", 0, 0 },    \
    { "min-size", WL_INT, 8, 1, 1 << 20, "smallest block in bytes", 0, 0 },               \
    { "max-size", WL_INT, 128, 1, 1 << 20, "largest block in bytes (inclusive)", 0, 0 },  \
    { "seed", WL_INT, 1, 0, 9.2e18, "random seed", 0, 0 }

#define SB_SIZES 4096 /* power of two */
#define SB_ORDERS 16

typedef struct sb_params {
    int64_t pairs, batch;
    uint64_t min_size, max_size;
} sb_params;

typedef struct sb_state {
    uint32_t sizes[SB_SIZES];
    uint16_t *orders;   /* SB_ORDERS permutations of [0, batch) */
    void **ptrs;
    uint64_t tag_base;
    wl_live live;
    uint64_t checksum;
} sb_state;

/* Set up a stream's tables (outside the timed part). */
static void sb_init(sb_state *st, const sb_params *p, uint64_t seed, uint64_t stream,
                    wl_live_shared *shared)
{
    wl_rng r = wl_rng_stream(seed, stream);
    for (int k = 0; k < SB_SIZES; k++)
        st->sizes[k] = (uint32_t)wl_range(&r, p->min_size, p->max_size);
    size_t b = (size_t)p->batch;
    st->orders = malloc(sizeof(uint16_t) * b * SB_ORDERS);
    st->ptrs = malloc(sizeof(void *) * b);
    if (!st->orders || !st->ptrs)
        wl_fatal("out of memory setting up batches");
    for (int o = 0; o < SB_ORDERS; o++) {
        uint16_t *perm = st->orders + (size_t)o * b;
        for (size_t k = 0; k < b; k++)
            perm[k] = (uint16_t)k;
        for (size_t k = b - 1; k > 0; k--) {
            size_t j = (size_t)wl_below(&r, k + 1);
            uint16_t t = perm[k];
            perm[k] = perm[j];
            perm[j] = t;
        }
    }
    st->tag_base = wl_next(&r);
    st->live = (wl_live){ .shared = shared };
    wl_live_floor(&st->live, b * wl_floor_class_size(wl_floor_class(p->max_size)));
    st->checksum = wl_fold(0, (uint64_t)stream);
}

static void sb_done(sb_state *st)
{
    wl_live_floor_done(&st->live);
    free(st->orders);
    free(st->ptrs);
}

static inline uint64_t sb_tag(const sb_state *st, uint64_t n)
{
    return st->tag_base + n * 0x9e3779b97f4a7c15ULL;
}

static inline void sb_release(sb_state *st, uint64_t first, size_t i, uint64_t *acc)
{
    uint64_t n = first + i;
    size_t s = st->sizes[n & (SB_SIZES - 1)];
    uint64_t tag = sb_tag(st, n);
    wl_block_verify(st->ptrs[i], s, tag, "small batch");
    wl_free(&st->live, st->ptrs[i], s);
    *acc += (uint64_t)s ^ tag;
}

/* Run p->pairs malloc+free pairs. */
static void sb_run(sb_state *st, const sb_params *p)
{
    uint64_t n = 0, batch_no = 0;
    size_t b = (size_t)p->batch;
    while (n < (uint64_t)p->pairs) {
        size_t cnt = b;
        if ((uint64_t)p->pairs - n < cnt)
            cnt = (size_t)((uint64_t)p->pairs - n);
        uint64_t acc = 0;
        for (size_t i = 0; i < cnt; i++) {
            uint64_t k = n + i;
            size_t s = st->sizes[k & (SB_SIZES - 1)];
            void *q = wl_malloc(&st->live, s);
            wl_block_write(q, s, sb_tag(st, k));
            st->ptrs[i] = q;
        }
        if ((batch_no & 1) == 0 || cnt < b) {
            for (size_t i = cnt; i-- > 0;)
                sb_release(st, n, i, &acc);
        } else {
            const uint16_t *perm = st->orders + ((batch_no >> 1) % SB_ORDERS) * b;
            for (size_t j = 0; j < cnt; j++)
                sb_release(st, n, perm[j], &acc);
        }
        st->checksum = wl_fold(st->checksum, acc);
        n += cnt;
        batch_no++;
    }
    wl_live_flush(&st->live);
}

/* The options common to tiny and tiny_mt (pairs default differs). */
static void sb_read_params(wl_spec *spec, sb_params *p)
{
    p->pairs = wl_int(spec, "pairs");
    p->batch = wl_int(spec, "batch");
    wl_size_range(spec, &p->min_size, &p->max_size);
}

#endif /* WL_SMALL_BATCHES_H */
