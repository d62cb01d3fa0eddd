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

/* Queues are each written by their own threads: one cache line apart
 * (wl_calloc_lines). */
typedef struct queue {
    _Alignas(WL_LINE) pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    batch **ring;  /* NULL entries are end markers */
    uint32_t cap, head, count;
} queue;

static uint64_t g_seed, g_blocks, g_batch, g_min, g_max;
static uint32_t g_nprod, g_ncons;
static queue *g_queues;
static wl_slab_pool g_slabs; /* --floor */

static inline size_t record_size(uint32_t n)
{
    return sizeof(batch) + n * sizeof(item);
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
    wl_role *me = arg;
    wl_rng r = wl_rng_stream(g_seed, me->index);
    uint64_t tag_base = wl_next(&r);
    wl_start_wait();
    uint64_t done = 0, k = 0;
    while (done < g_blocks) {
        uint32_t n = (uint32_t)(g_blocks - done < g_batch ? g_blocks - done : g_batch);
        batch *b = wl_batch_record_new(&g_slabs, &me->live, record_size(n));
        b->n = n;
        b->producer = me->index;
        for (uint32_t j = 0; j < n; j++) {
            uint32_t s = (uint32_t)wl_range(&r, g_min, g_max);
            uint64_t tag = tag_base + (done + j) * 0x9e3779b97f4a7c15ULL;
            void *p = wl_batch_block_new(&g_slabs, &me->live, b, j, s);
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
    wl_role *me = arg;
    queue *q = &g_queues[me->index];
    uint32_t ends = 0;
    wl_start_wait();
    while (ends < g_nprod) {
        batch *b = queue_get(q);
        if (!b) {
            ends++;
            continue;
        }
        for (uint32_t j = 0; j < b->n; j++) {
            item *it = &b->items[j];
            wl_block_verify(it->p, it->size, it->tag, "xthread block");
            wl_batch_block_free(&me->live, it->p, it->size);
            me->sum += block_hash(it->tag, it->size);
        }
        me->blocks += b->n;
        me->batches++;
        wl_batch_record_free(&g_slabs, &me->live, b, record_size(b->n));
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
    wl_team team;
    wl_team_init(&team, g_nprod, g_ncons);
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
    wl_slab_pool_init(&g_slabs, (size_t)g_ncons * qcap + g_ncons + g_nprod, record_size((uint32_t)g_batch),
                      g_batch, g_max, "--batch, --queue or --max-size");
    double secs = wl_team_run(&team, producer, consumer);
    const wl_role_totals *made = &team.made, *freed = &team.freed;
    if (made->sum != freed->sum)
        wl_corrupted("(xthread): consumers saw checksum %016" PRIx64 ", producers made %016" PRIx64,
                     freed->sum, made->sum);
    for (uint32_t c = 0; c < g_ncons; c++) {
        free(g_queues[c].ring);
        pthread_mutex_destroy(&g_queues[c].mu);
        pthread_cond_destroy(&g_queues[c].not_empty);
        pthread_cond_destroy(&g_queues[c].not_full);
    }
    free(g_queues);
    wl_team_done(&team);
    wl_slab_pool_done(&g_slabs);

    wl_report rep = {
        .threads = nt,
        .ops = 2 * (made->blocks + made->batches),
        .op_unit = "malloc or free (blocks and batch records)",
        .seconds = secs,
        .peak_live_bytes = atomic_load(&team.live.peak),
        .final_live_bytes = made->live + freed->live,
        .checksum = wl_fold(0, made->sum),
    };
    rep.extra[0].name = "producers";
    rep.extra[0].value = g_nprod;
    rep.extra[1].name = "consumers";
    rep.extra[1].value = g_ncons;
    rep.extra[2].name = "blocks";
    rep.extra[2].value = (double)made->blocks;
    wl_report_print(&rep);
    return 0;
}
