/* xthread - producer/consumer: every block is freed by a thread other than
 * the one that allocated it.
 *
 * Each producer allocates `blocks` blocks of random size in [min, max],
 * writes every byte, and gathers them into batch records of `batch` blocks
 * (the record itself is malloc'd by the producer and freed by the consumer,
 * so it crosses threads too). Batch k of producer p goes to the bounded
 * queue of consumer (p + k) mod consumers; a full queue blocks the producer.
 * Consumers check every block and free it. When done, each producer puts an
 * end marker on every queue.
 *
 * Checksum: each block contributes mix(tag ^ size); consumers add these up
 * (order-independent, so the result does not depend on scheduling) and the
 * total must equal what the producers produced, else exit 3.
 *
 * --floor: a batch is a slab from a pool set aside before timing (the
 * record, then one max-size place per block); the producer takes a slab
 * where it would malloc the record, block mallocs are places in it, block
 * frees do nothing, and the consumer puts the slab back where it would free
 * the record. The pool has a slab for every batch that can be in flight:
 * consumers x queue queued, one per consumer being freed, one per producer
 * being filled. */
#include "common.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static wl_opt opts[] = {
    { "producers", WL_INT, 1, 1, 512, "threads that allocate", 0, 0 },
    { "consumers", WL_INT, 1, 1, 512, "threads that free", 0, 0 },
    { "blocks", WL_INT, 4000000, 1, 1e12, "blocks allocated per producer", 0, 0 },
    { "batch", WL_INT, 64, 1, 1 << 20, "blocks per batch record passed through a queue", 0, 0 },
    { "queue", WL_INT, 16, 1, 1 << 20, "capacity of each consumer's queue, in batches", 0, 0 },
    { "min-size", WL_INT, 16, 1, 1 << 30, "smallest block in bytes", 0, 0 },
    { "max-size", WL_INT, 512, 1, 1 << 30, "largest block in bytes (inclusive)", 0, 0 },
    { "seed", WL_INT, 1, 0, 9.2e18, "random seed", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "xthread", "Producers allocate, consumers free: every block crosses threads via bounded queues.",
    opts, NULL,
};

typedef struct item {
    void *p;
    uint64_t tag;
    uint32_t size;
} item;

typedef struct batch {
    uint32_t n;
    uint32_t producer;
    item items[];
} batch;

/* Queues and roles are each written by their own threads: one cache line
 * apart (wl_calloc_lines). */
typedef struct queue {
    _Alignas(WL_LINE) pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    batch **ring;  /* NULL entries are end markers */
    uint32_t cap, head, count;
} queue;

typedef struct role {
    _Alignas(WL_LINE) pthread_t th;
    uint32_t index;
    wl_live live;
    uint64_t sum;      /* sum of mix(tag ^ size) produced or consumed */
    uint64_t blocks, batches;
} role;

static uint64_t g_seed, g_blocks, g_batch, g_min, g_max;
static uint32_t g_nprod, g_ncons;
static queue *g_queues;
static wl_live_shared g_live_shared;
static pthread_barrier_t g_start;
static wl_slab_pool g_slabs;         /* --floor */
static size_t g_rec_bytes, g_stride; /* --floor: slab layout */

static inline size_t record_size(uint32_t n)
{
    return sizeof(batch) + n * sizeof(item);
}

static batch *batch_new(role *me, uint32_t n)
{
    if (!wl_floor_on)
        return wl_malloc(&me->live, record_size(n));
    wl_live_add(&me->live, (int64_t)record_size(n));
    return wl_slab_get(&g_slabs);
}

static void *block_new(role *me, batch *b, uint32_t j, uint32_t size)
{
    if (!wl_floor_on)
        return wl_malloc(&me->live, size);
    wl_live_add(&me->live, size);
    return (char *)b + g_rec_bytes + (size_t)j * g_stride;
}

static void block_free(role *me, void *p, uint32_t size)
{
    if (!wl_floor_on)
        wl_free(&me->live, p, size);
    else
        wl_live_add(&me->live, -(int64_t)size);
}

static void batch_free(role *me, batch *b)
{
    size_t rec = record_size(b->n);
    if (!wl_floor_on) {
        wl_free(&me->live, b, rec);
        return;
    }
    wl_live_add(&me->live, -(int64_t)rec);
    wl_slab_put(&g_slabs, b);
}

static void queue_put(queue *q, batch *b)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == q->cap)
        pthread_cond_wait(&q->not_full, &q->mu);
    q->ring[(q->head + q->count) % q->cap] = b;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

static batch *queue_get(queue *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == 0)
        pthread_cond_wait(&q->not_empty, &q->mu);
    batch *b = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return b;
}

static inline uint64_t block_hash(uint64_t tag, uint32_t size)
{
    return wl_mix64(tag ^ size);
}

static void *producer(void *arg)
{
    role *me = arg;
    wl_rng r = wl_rng_stream(g_seed, me->index);
    uint64_t tag_base = wl_next(&r);
    pthread_barrier_wait(&g_start);
    uint64_t done = 0, k = 0;
    while (done < g_blocks) {
        uint32_t n = (uint32_t)(g_blocks - done < g_batch ? g_blocks - done : g_batch);
        batch *b = batch_new(me, n);
        b->n = n;
        b->producer = me->index;
        for (uint32_t j = 0; j < n; j++) {
            uint32_t s = (uint32_t)wl_range(&r, g_min, g_max);
            uint64_t tag = tag_base + (done + j) * 0x9e3779b97f4a7c15ULL;
            void *p = block_new(me, b, j, s);
            wl_block_write(p, s, tag);
            b->items[j] = (item){ p, tag, s };
            me->sum += block_hash(tag, s);
        }
        queue_put(&g_queues[(me->index + k) % g_ncons], b);
        done += n;
        me->blocks += n;
        me->batches++;
        k++;
    }
    for (uint32_t c = 0; c < g_ncons; c++)
        queue_put(&g_queues[c], NULL);
    wl_live_flush(&me->live);
    return NULL;
}

static void *consumer(void *arg)
{
    role *me = arg;
    queue *q = &g_queues[me->index];
    uint32_t ends = 0;
    pthread_barrier_wait(&g_start);
    while (ends < g_nprod) {
        batch *b = queue_get(q);
        if (!b) {
            ends++;
            continue;
        }
        for (uint32_t j = 0; j < b->n; j++) {
            item *it = &b->items[j];
            wl_block_verify(it->p, it->size, it->tag, "xthread block");
            block_free(me, it->p, it->size);
            me->sum += block_hash(it->tag, it->size);
        }
        me->blocks += b->n;
        me->batches++;
        batch_free(me, b);
    }
    wl_live_flush(&me->live);
    return NULL;
}

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    g_nprod = (uint32_t)wl_int(&spec, "producers");
    g_ncons = (uint32_t)wl_int(&spec, "consumers");
    g_blocks = (uint64_t)wl_int(&spec, "blocks");
    g_batch = (uint64_t)wl_int(&spec, "batch");
    wl_size_range(&spec, &g_min, &g_max);
    g_seed = (uint64_t)wl_int(&spec, "seed");
    uint32_t qcap = (uint32_t)wl_int(&spec, "queue");

    g_queues = wl_calloc_lines(g_ncons, sizeof *g_queues);
    role *roles = wl_calloc_lines((size_t)g_nprod + g_ncons, sizeof *roles);
    for (uint32_t c = 0; c < g_ncons; c++) {
        queue *q = &g_queues[c];
        pthread_mutex_init(&q->mu, NULL);
        pthread_cond_init(&q->not_empty, NULL);
        pthread_cond_init(&q->not_full, NULL);
        q->cap = qcap;
        q->ring = calloc(qcap, sizeof *q->ring);
        if (!q->ring)
            wl_fatal("out of memory");
    }
    uint32_t nt = g_nprod + g_ncons;
    if (wl_floor_on) {
        g_rec_bytes = (record_size((uint32_t)g_batch) + WL_LINE - 1) / WL_LINE * WL_LINE;
        g_stride = (size_t)(g_max + 15) / 16 * 16;
        size_t count = (size_t)g_ncons * qcap + g_ncons + g_nprod;
        double bytes = (double)count * ((double)g_rec_bytes + (double)g_batch * (double)g_stride);
        if (bytes > 4.0 * (1ULL << 30))
            wl_usage_error("--floor would set aside %.1f GiB of slabs; use a smaller --batch, "
                           "--queue or --max-size", bytes / (1ULL << 30));
        wl_slab_pool_init(&g_slabs, count, g_rec_bytes + (size_t)g_batch * g_stride);
    }
    pthread_barrier_init(&g_start, NULL, nt + 1);
    for (uint32_t t = 0; t < nt; t++) {
        role *ro = &roles[t];
        ro->index = t < g_nprod ? t : t - g_nprod;
        ro->live = (wl_live){ .shared = &g_live_shared };
        int e = pthread_create(&ro->th, NULL, t < g_nprod ? producer : consumer, ro);
        if (e)
            wl_fatal("pthread_create: %s", strerror(e));
    }
    pthread_barrier_wait(&g_start);
    double t0 = wl_now();
    for (uint32_t t = 0; t < nt; t++)
        pthread_join(roles[t].th, NULL);
    double secs = wl_now() - t0;

    uint64_t produced = 0, consumed = 0, blocks = 0, batches = 0;
    int64_t final_live = 0;
    for (uint32_t t = 0; t < nt; t++) {
        if (t < g_nprod) {
            produced += roles[t].sum;
            blocks += roles[t].blocks;
            batches += roles[t].batches;
        } else {
            consumed += roles[t].sum;
        }
        final_live += roles[t].live.cur;
    }
    if (produced != consumed)
        wl_corrupted("(xthread): consumers saw checksum %016" PRIx64 ", producers made %016" PRIx64,
                     consumed, produced);
    for (uint32_t c = 0; c < g_ncons; c++) {
        free(g_queues[c].ring);
        pthread_mutex_destroy(&g_queues[c].mu);
        pthread_cond_destroy(&g_queues[c].not_empty);
        pthread_cond_destroy(&g_queues[c].not_full);
    }
    free(g_queues);
    free(roles);
    pthread_barrier_destroy(&g_start);
    if (wl_floor_on)
        wl_slab_pool_done(&g_slabs);

    wl_report rep = {
        .threads = nt,
        .ops = 2 * (blocks + batches),
        .op_unit = "malloc or free (blocks and batch records)",
        .seconds = secs,
        .peak_live_bytes = atomic_load(&g_live_shared.peak),
        .final_live_bytes = final_live,
        .checksum = wl_fold(0, produced),
    };
    rep.extra[0].name = "producers";
    rep.extra[0].value = g_nprod;
    rep.extra[1].name = "consumers";
    rep.extra[1].value = g_ncons;
    rep.extra[2].name = "blocks";
    rep.extra[2].value = (double)blocks;
    wl_report_print(&rep);
    return 0;
}
