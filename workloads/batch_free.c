/* batch_free - many threads, batched frees: producers allocate, consumers
 * free, in the style of xmalloc-test (Lever & Boreham, "malloc()
 * Performance in a Multithreaded Linux Environment", USENIX 2000; the copy
 * in daanx/mimalloc-bench), written afresh from its description.
 *
 * Producers allocate objects (`--size` bytes, or with --size 0 a size from
 * the ladder 8, 12, 16, 24, ... 1536, 2048: powers of two and 1.5 times
 * powers of two), write them, and collect their addresses in a batch record
 * (malloc'd too) of `batch` objects. A full record goes onto one shared
 * stack (last in, first out, a mutex and two condition variables) holding at
 * most `queue` records; a producer waits while it is full. Consumers pop a
 * record, check and free every object in it, then free the record. The
 * figure is frees per second: objects freed over the timed span (from the
 * start barrier until every thread has finished). Unlike the original, the
 * amount of work is fixed (`batches` records per producer) rather than a
 * time bound, so the checksum covers all of it.
 *
 * Determinism: object k of producer p has tag base(p) + k x golden, and
 * with --size 0 its size comes from the tag, so a consumer knows both from
 * (p, k). Each object contributes mix(tag ^ size) to an order-independent
 * sum; producers and consumers must agree (else exit 3), and the checksum
 * folds that sum, which depends only on the seed and the parameters.
 *
 * --floor: a record and its objects live in one slab of a pool set aside
 * before timing (one place of the largest size per object); a producer
 * takes a slab where it would malloc the record, object mallocs are places
 * in it, object frees do nothing, the consumer puts the slab back where it
 * would free the record. The pool has a slab for every record that can be
 * in flight: queue on the stack, one per consumer, one per producer. */
#include "common.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static wl_opt opts[] = {
    { "producers", WL_INT, 2, 1, 256, "threads that allocate", 0, 0 },
    { "consumers", WL_INT, 2, 1, 256, "threads that free", 0, 0 },
    { "batches", WL_INT, 3000, 1, 1e9, "batch records each producer fills", 0, 0 },
    { "batch", WL_INT, 4096, 1, 1 << 20, "objects per batch record", 0, 0 },
    { "queue", WL_INT, 100, 1, 1 << 20, "records the shared stack holds at most", 0, 0 },
    { "size", WL_INT, 64, 0, 1 << 20,
      "object size in bytes; 0: sizes from the ladder 8, 12, 16, 24 .. 1536, 2048", 0, 0 },
    { "seed", WL_INT, 1, 0, 9.2e18, "random seed", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "batch_free",
    "Producers allocate objects in batches, consumers free whole batches (xmalloc-test style).",
    opts, NULL,
};

/* The --size 0 ladder: 8, 12, 16, 24, ..., 1536, 2048. */
#define LADDER 17
static uint32_t g_ladder[LADDER];

typedef struct record {
    struct record *next; /* on the shared stack */
    uint32_t n;          /* objects */
    uint32_t producer;
    uint64_t first;      /* the producer's index of obj[0] */
    void *obj[];
} record;

static uint64_t g_batches, g_batch, g_size, g_seed;
static uint32_t g_nprod, g_ncons;
static uint64_t *g_tag_base;     /* per producer */
static wl_slab_pool g_slabs; /* --floor */

/* The shared stack. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_not_full = PTHREAD_COND_INITIALIZER;
static record *g_top;
static uint64_t g_depth, g_limit;
static uint32_t g_producers_done;

static inline uint64_t object_tag(uint32_t p, uint64_t k)
{
    return g_tag_base[p] + k * 0x9e3779b97f4a7c15ULL;
}

static inline uint32_t object_size(uint64_t tag)
{
    return g_size ? (uint32_t)g_size : g_ladder[wl_mix64(tag) % LADDER];
}

static inline size_t record_size(uint64_t n)
{
    return sizeof(record) + n * sizeof(void *);
}

static void push(record *r)
{
    pthread_mutex_lock(&g_mu);
    while (g_depth >= g_limit)
        pthread_cond_wait(&g_not_full, &g_mu);
    r->next = g_top;
    g_top = r;
    g_depth++;
    pthread_cond_signal(&g_not_empty);
    pthread_mutex_unlock(&g_mu);
}

/* NULL once every producer is done and the stack is empty. */
static record *pop(void)
{
    pthread_mutex_lock(&g_mu);
    while (!g_top && g_producers_done < g_nprod)
        pthread_cond_wait(&g_not_empty, &g_mu);
    record *r = g_top;
    if (r) {
        g_top = r->next;
        g_depth--;
        pthread_cond_signal(&g_not_full);
    }
    pthread_mutex_unlock(&g_mu);
    return r;
}

static void *producer(void *arg)
{
    wl_role *me = arg;
    uint64_t k = 0;
    wl_start_wait();
    for (uint64_t b = 0; b < g_batches; b++) {
        record *r = wl_batch_record_new(&g_slabs, &me->live, record_size(g_batch));
        r->n = (uint32_t)g_batch;
        r->producer = me->index;
        r->first = k;
        for (uint32_t j = 0; j < r->n; j++, k++) {
            uint64_t tag = object_tag(me->index, k);
            uint32_t s = object_size(tag);
            void *p = wl_batch_block_new(&g_slabs, &me->live, r, j, s);
            wl_block_write(p, s, tag);
            r->obj[j] = p;
            me->sum += wl_mix64(tag ^ s);
        }
        me->blocks += r->n;
        me->batches++;
        push(r);
    }
    wl_live_flush(&me->live);
    pthread_mutex_lock(&g_mu);
    g_producers_done++;
    pthread_cond_broadcast(&g_not_empty);
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

static void *consumer(void *arg)
{
    wl_role *me = arg;
    wl_start_wait();
    for (record *r; (r = pop()) != NULL;) {
        for (uint32_t j = 0; j < r->n; j++) {
            uint64_t tag = object_tag(r->producer, r->first + j);
            uint32_t s = object_size(tag);
            wl_block_verify(r->obj[j], s, tag, "batch_free object");
            wl_batch_block_free(&me->live, r->obj[j], s);
            me->sum += wl_mix64(tag ^ s);
        }
        me->blocks += r->n;
        me->batches++;
        wl_batch_record_free(&g_slabs, &me->live, r, record_size(r->n));
    }
    wl_live_flush(&me->live);
    return NULL;
}

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    g_nprod = (uint32_t)wl_int(&spec, "producers");
    g_ncons = (uint32_t)wl_int(&spec, "consumers");
    g_batches = (uint64_t)wl_int(&spec, "batches");
    g_batch = (uint64_t)wl_int(&spec, "batch");
    g_limit = (uint64_t)wl_int(&spec, "queue");
    g_size = (uint64_t)wl_int(&spec, "size");
    g_seed = (uint64_t)wl_int(&spec, "seed");
    for (int e = 3, k = 0; k < LADDER; e++) {
        g_ladder[k++] = 1u << e;
        if (k < LADDER)
            g_ladder[k++] = 3u << (e - 1);
    }
    uint32_t largest = g_size ? (uint32_t)g_size : g_ladder[LADDER - 1];

    g_tag_base = calloc(g_nprod, sizeof *g_tag_base);
    wl_team team;
    wl_team_init(&team, g_nprod, g_ncons);
    if (!g_tag_base)
        wl_fatal("out of memory");
    for (uint32_t p = 0; p < g_nprod; p++) {
        wl_rng r = wl_rng_stream(g_seed, p);
        g_tag_base[p] = wl_next(&r);
    }
    wl_slab_pool_init(&g_slabs, (size_t)g_limit + g_ncons + g_nprod, record_size(g_batch), g_batch, largest,
                      "--batch, --queue or --size");

    uint32_t nt = g_nprod + g_ncons;
    double secs = wl_team_run(&team, producer, consumer);
    const wl_role_totals *made = &team.made, *freed = &team.freed;
    uint64_t objects = made->blocks;
    if (made->sum != freed->sum || made->blocks != freed->blocks)
        wl_corrupted("(batch_free): consumers freed %" PRIu64 " objects summing to %016" PRIx64
                     ", producers made %" PRIu64 " summing to %016" PRIx64,
                     freed->blocks, freed->sum, made->blocks, made->sum);
    wl_slab_pool_done(&g_slabs);
    wl_team_done(&team);
    free(g_tag_base);

    double frees_per_sec = (double)objects / (secs > 0 ? secs : 1e-9);
    printf("batch_free: %" PRIu64 " objects freed in %.3f s by %u consumers: %.3f M frees per second\n",
           objects, secs, g_ncons, frees_per_sec * 1e-6);
    wl_report rep = {
        .threads = nt,
        .ops = 2 * (objects + made->batches),
        .op_unit = "malloc or free (objects and batch records)",
        .seconds = secs,
        .peak_live_bytes = atomic_load(&team.live.peak),
        .final_live_bytes = made->live + freed->live,
        .checksum = wl_fold(wl_fold(0, made->sum), objects),
    };
    rep.extra[0].name = "frees_per_sec";
    rep.extra[0].value = frees_per_sec;
    rep.extra[1].name = "producers";
    rep.extra[1].value = g_nprod;
    rep.extra[2].name = "consumers";
    rep.extra[2].value = g_ncons;
    rep.extra[3].name = "objects";
    rep.extra[3].value = (double)objects;
    wl_report_print(&rep);
    return 0;
}
