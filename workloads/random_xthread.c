/* random_xthread - threads allocating random sizes, some blocks freed by
 * another thread, some allocated by calloc: the pattern of a benchmark
 * written outside this project (issue 24: "2 threads allocating random
 * sizes of 8-16,000 bytes, some freed by the other thread, calloc'd").
 *
 * Each of `threads` threads owns an array of `slots` slots and makes
 * `steps` steps. One step:
 *   1. take the inbox: free every block other threads sent this one
 *      (checked first, as any block before its free);
 *   2. pick a random slot; if it holds a block, free it, or with
 *      probability `remote-fraction` send it to the next thread (thread
 *      t + 1 mod threads) to free;
 *   3. allocate a block of a size uniform in [min, max] into the slot: by
 *      calloc with probability `calloc-fraction` (its memory checked to be
 *      zero: with --verify touch the bytes touch writes, with full every
 *      byte), else by malloc; then write it (wl_block_write).
 * An inbox is a ring of `pending` blocks written by one sender and read by
 * one receiver (release/acquire on its two counters, no lock). A sender
 * whose target's ring is full takes its own inbox and yields until there is
 * room, so two threads waiting on each other both make progress. When its
 * steps are done a thread frees its array, then keeps taking its inbox
 * until every thread is done. The timed span runs from the start barrier
 * until every thread has finished.
 *
 * Determinism: every decision (slot, size, calloc or not, sent or not) comes
 * from the thread's own stream, so each thread makes the same requests in
 * every run; only when a sent block is freed depends on scheduling. Each
 * block contributes mix(tag ^ size) to an order-independent sum of blocks
 * made and one of blocks freed; they must agree (else exit 3), and the
 * checksum folds them with the counts of blocks, callocs and blocks sent.
 *
 * --floor: each thread has floor bins (prefaulted for its array and two
 * rings of blocks at the largest size); a calloc is a bin's block zeroed
 * with memset. The receiver of a block checks it as usual but, where it
 * would free it, pushes it back onto its sender's return stack (one
 * compare-and-swap; the block's first 16 bytes hold the link and the size,
 * a floor block has at least 16); the sender puts its returns into its own
 * bins at the start of each step. So each thread's bins hold only its own
 * memory and stay single-owner. */
#include "common.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static wl_opt opts[] = {
    { "threads", WL_INT, 2, 2, 256, "threads, each with its own array; each sends to the next", 0, 0 },
    { "steps", WL_INT, 500000, 1, 1e12, "steps per thread (each frees the block found, if any, and allocates)", 0, 0 },
    { "slots", WL_INT, 1000, 1, 1 << 24, "blocks in each thread's array", 0, 0 },
    { "remote-fraction", WL_REAL, 0.25, 0, 1, "share of the frees sent to the next thread to make", 0, 0 },
    { "calloc-fraction", WL_REAL, 0.25, 0, 1, "share of the allocations made by calloc", 0, 0 },
    { "pending", WL_INT, 256, 1, 1 << 20, "blocks an inbox holds at most", 0, 0 },
    { "min-size", WL_INT, 8, 1, 1 << 30, "smallest block in bytes", 0, 0 },
    { "max-size", WL_INT, 16000, 1, 1 << 30, "largest block in bytes (inclusive)", 0, 0 },
    { "seed", WL_INT, 1, 0, 9.2e18, "random seed", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "random_xthread",
    "Threads allocate random sizes (malloc or calloc) and free some of each other's blocks.",
    opts, NULL,
};

typedef struct block {
    void *p;
    uint64_t tag;
    uint64_t size;
} block;

/* --floor: a block on its way back to the thread that made it. */
typedef struct returned {
    struct returned *next;
    uint64_t size;
} returned;

/* Each thread's state; the parts other threads write (its inbox's tail,
 * its return stack) and the part its sender reads (the inbox's head) each
 * on a line of their own. */
typedef struct worker {
    _Alignas(WL_LINE) pthread_t th;
    uint32_t index;
    wl_rng rng;
    block *slot;          /* the array (not timed: allocated before the start) */
    block *ring;          /* the inbox: `pending` entries */
    uint64_t serial;      /* blocks this thread has made */
    wl_live live;
    uint64_t made, freed; /* sums of mix(tag ^ size) */
    uint64_t blocks_made, blocks_freed, callocs, sent, calls;
    _Alignas(WL_LINE) _Atomic uint64_t tail; /* written by the sender */
    _Alignas(WL_LINE) _Atomic uint64_t head; /* written by this thread */
    _Alignas(WL_LINE) returned *_Atomic returns; /* --floor */
} worker;

static uint64_t g_steps, g_slots, g_pending, g_min, g_max, g_seed;
static double g_remote, g_calloc;
static uint32_t g_nt;
static worker *g_workers;
static wl_live_shared g_live_shared;
static _Atomic uint32_t g_done;

static void check_zero(const unsigned char *b, uint64_t n)
{
    /* touch: the bytes touch writes (first and last 8, one per page) */
    if (wl_verify_full || n < 16) {
        for (uint64_t k = 0; k < n; k++)
            if (b[k])
                goto bad;
        return;
    }
    for (uint64_t k = 0; k < 8; k++)
        if (b[k] || b[n - 8 + k])
            goto bad;
    for (uint64_t k = WL_PAGE; k < n - 8; k += WL_PAGE)
        if (b[k])
            goto bad;
    return;
bad:
    wl_corrupted("(random_xthread calloc of %" PRIu64 " bytes): its memory is not zero", n);
}

static void free_block(worker *me, const block *b)
{
    wl_block_verify(b->p, b->size, b->tag, "random_xthread block");
    wl_free(&me->live, b->p, b->size);
    me->freed += wl_mix64(b->tag ^ b->size);
    me->blocks_freed++;
    me->calls++;
}

/* A block another thread made, freed here (--floor: checked, counted and
 * sent back to its maker's return stack). */
static void free_received(worker *me, const block *b, uint32_t maker)
{
    if (!me->live.floor) {
        free_block(me, b);
        return;
    }
    wl_block_verify(b->p, b->size, b->tag, "random_xthread block");
    wl_live_add(&me->live, -(int64_t)b->size);
    me->freed += wl_mix64(b->tag ^ b->size);
    me->blocks_freed++;
    me->calls++;
    returned *r = b->p, *_Atomic *stack = &g_workers[maker].returns;
    r->size = b->size;
    r->next = atomic_load_explicit(stack, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(stack, &r->next, r, memory_order_release,
                                                  memory_order_relaxed))
        ;
}

/* --floor: the blocks other threads freed, into this thread's bins. */
static void take_returns(worker *me)
{
    returned *r = atomic_exchange_explicit(&me->returns, NULL, memory_order_acquire);
    while (r) {
        returned *next = r->next;
        wl_floor_free(me->live.floor, r, r->size);
        r = next;
    }
}

/* Free every block in the inbox. */
static void take_inbox(worker *me)
{
    uint64_t head = atomic_load_explicit(&me->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&me->tail, memory_order_acquire);
    if (head == tail)
        return;
    uint32_t maker = (me->index + g_nt - 1) % g_nt;
    for (; head != tail; head++)
        free_received(me, &me->ring[head % g_pending], maker);
    atomic_store_explicit(&me->head, head, memory_order_release);
}

static void send(worker *me, const block *b)
{
    worker *to = &g_workers[(me->index + 1) % g_nt];
    uint64_t tail = atomic_load_explicit(&to->tail, memory_order_relaxed);
    while (tail - atomic_load_explicit(&to->head, memory_order_acquire) >= g_pending) {
        take_inbox(me);
        if (me->live.floor)
            take_returns(me);
        sched_yield();
    }
    to->ring[tail % g_pending] = *b;
    atomic_store_explicit(&to->tail, tail + 1, memory_order_release);
    me->sent++;
}

static void *floor_calloc(wl_live *l, size_t n)
{
    void *p = wl_malloc(l, n);
    memset(p, 0, n);
    return p;
}

static void new_block(worker *me, block *b)
{
    uint64_t size = wl_range(&me->rng, g_min, g_max);
    uint64_t tag = wl_mix64(g_seed ^ wl_mix64(me->index + 1)) + me->serial++ * 0x9e3779b97f4a7c15ULL;
    if (g_calloc > 0 && wl_unit(&me->rng) < g_calloc) {
        void *p;
        if (me->live.floor) {
            p = floor_calloc(&me->live, size);
        } else {
            p = calloc(1, size);
            if (!p)
                wl_fatal("out of memory: calloc(1, %" PRIu64 ") returned NULL", size);
            wl_live_add(&me->live, (int64_t)size);
        }
        check_zero(p, size);
        b->p = p;
        me->callocs++;
    } else {
        b->p = wl_malloc(&me->live, size);
    }
    wl_block_write(b->p, size, tag);
    b->tag = tag;
    b->size = size;
    me->made += wl_mix64(tag ^ size);
    me->blocks_made++;
    me->calls++;
}

static void *worker_main(void *arg)
{
    worker *me = arg;
    wl_start_wait();
    for (uint64_t k = 0; k < g_steps; k++) {
        take_inbox(me);
        if (me->live.floor)
            take_returns(me);
        block *b = &me->slot[wl_below(&me->rng, g_slots)];
        if (b->p) {
            if (g_remote > 0 && wl_unit(&me->rng) < g_remote)
                send(me, b);
            else
                free_block(me, b);
            b->p = NULL;
        }
        new_block(me, b);
    }
    for (uint64_t i = 0; i < g_slots; i++)
        if (me->slot[i].p) {
            free_block(me, &me->slot[i]);
            me->slot[i].p = NULL;
        }
    /* done sending: keep receiving until every thread is done too */
    atomic_fetch_add_explicit(&g_done, 1, memory_order_acq_rel);
    while (atomic_load_explicit(&g_done, memory_order_acquire) < g_nt) {
        take_inbox(me);
        nanosleep(&(struct timespec){ 0, 50 * 1000 }, NULL);
    }
    take_inbox(me);
    wl_live_flush(&me->live);
    return NULL;
}

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    g_nt = (uint32_t)wl_int(&spec, "threads");
    g_steps = (uint64_t)wl_int(&spec, "steps");
    g_slots = (uint64_t)wl_int(&spec, "slots");
    g_pending = (uint64_t)wl_int(&spec, "pending");
    g_remote = wl_real(&spec, "remote-fraction");
    g_calloc = wl_real(&spec, "calloc-fraction");
    wl_size_range(&spec, &g_min, &g_max);
    g_seed = (uint64_t)wl_int(&spec, "seed");

    g_workers = wl_calloc_lines(g_nt, sizeof *g_workers);
    size_t largest = wl_floor_class_size(wl_floor_class((size_t)g_max));
    double reserve = ((double)g_slots + 2.0 * (double)g_pending + 64.0) * (double)largest;
    if (wl_floor_on && reserve * g_nt > (double)WL_FLOOR_MAX_MAP)
        wl_usage_error("--floor would set aside %.1f GiB; use smaller --slots, --pending or --max-size",
                       reserve * g_nt / (1ULL << 30));
    for (uint32_t t = 0; t < g_nt; t++) {
        worker *w = &g_workers[t];
        w->index = t;
        w->rng = wl_rng_stream(g_seed, t);
        w->slot = calloc(g_slots, sizeof *w->slot);
        w->ring = calloc(g_pending, sizeof *w->ring);
        if (!w->slot || !w->ring)
            wl_fatal("out of memory for %" PRIu64 " slots", g_slots);
        w->live = (wl_live){ .shared = &g_live_shared };
        wl_live_floor(&w->live, (size_t)reserve);
        atomic_init(&w->tail, 0);
        atomic_init(&w->head, 0);
        atomic_init(&w->returns, NULL);
    }
    wl_start_line(g_nt);
    for (uint32_t t = 0; t < g_nt; t++)
        wl_thread_start(&g_workers[t].th, worker_main, &g_workers[t]);
    wl_start_wait();
    double t0 = wl_now();
    for (uint32_t t = 0; t < g_nt; t++)
        pthread_join(g_workers[t].th, NULL);
    double secs = wl_now() - t0;

    uint64_t made = 0, freed = 0, blocks = 0, blocks_freed = 0, callocs = 0, sent = 0, calls = 0;
    int64_t final_live = 0;
    for (uint32_t t = 0; t < g_nt; t++) {
        worker *w = &g_workers[t];
        made += w->made;
        freed += w->freed;
        blocks += w->blocks_made;
        blocks_freed += w->blocks_freed;
        callocs += w->callocs;
        sent += w->sent;
        calls += w->calls;
        final_live += w->live.cur;
        wl_live_floor_done(&w->live);
        free(w->slot);
        free(w->ring);
    }
    if (made != freed || blocks != blocks_freed)
        wl_corrupted("(random_xthread): %" PRIu64 " blocks freed summing to %016" PRIx64
                     ", %" PRIu64 " made summing to %016" PRIx64,
                     blocks_freed, freed, blocks, made);
    free(g_workers);
    wl_start_line_done();

    wl_report rep = {
        .threads = g_nt,
        .ops = calls,
        .op_unit = "malloc, calloc or free",
        .seconds = secs,
        .peak_live_bytes = atomic_load(&g_live_shared.peak),
        .final_live_bytes = final_live,
        .checksum = wl_fold(wl_fold(wl_fold(wl_fold(0, made), blocks), callocs), sent),
    };
    rep.extra[0].name = "blocks";
    rep.extra[0].value = (double)blocks;
    rep.extra[1].name = "callocs";
    rep.extra[1].value = (double)callocs;
    rep.extra[2].name = "sent";
    rep.extra[2].value = (double)sent;
    wl_report_print(&rep);
    return 0;
}
