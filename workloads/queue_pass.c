/* queue_pass - random-size blocks passed between threads through queues, in
 * the style of rptest (Mattias Jansson's rpmalloc benchmark, as modified in
 * daanx/mimalloc-bench to touch what it allocates), written afresh from its
 * description.
 *
 * Each of `threads` threads owns an array of `slots` block pointers and runs
 * `loops` loops. One loop:
 *   1. free: step through the array with one prime stride and free the
 *      blocks found, `ops` x 0.8 x U[0.30, 0.99] steps;
 *   2. take the thread's inbox (every parcel other threads sent it) and
 *      free every block of every parcel, then the parcel;
 *   3. allocate: step through the array with another prime stride,
 *      `ops` x U[0.30, 0.99] steps, each freeing the block found and
 *      allocating a new one there;
 *   4. every `cross_rate`-th loop, allocate as many blocks again into a
 *      parcel (a record and its pointer array, two more mallocs) and push it
 *      onto the inbox of another thread, round robin (a lock-free stack:
 *      push by compare-and-swap, take all by exchange). Unlike rptest, an
 *      inbox holds about `pending` parcels at most: a sender whose target
 *      is full empties its own inbox and yields until there is room. So a
 *      thread the scheduler holds back does not pile up hundreds of MiB
 *      of another thread's blocks, and time and peak memory measure the
 *      allocator rather than scheduling luck.
 * Sizes lie in [min, max] with a falling density, as rptest's "linear"
 * mode: min + (max - min) x u x |v + w - 1| (u, v, w uniform), mean about
 * a sixth of the range. When its loops are done a thread keeps emptying
 * its inbox until every thread is done, then frees its array. The timed
 * span runs from the start barrier until every thread has finished.
 *
 * Determinism: block k of thread t has tag base(t) + k x golden and its
 * size is a function of the tag, so the receiver of a parcel knows both
 * from (sender, first k). Loop op counts come from the thread's stream.
 * Each block contributes mix(tag ^ size) to an order-independent sum of
 * blocks made and one of blocks freed; they must agree (else exit 3) and
 * the checksum folds them, so it depends only on seed and parameters.
 *
 * --floor: each thread has floor bins (prefaulted for its array at the
 * largest size plus a few parcels). The receiver of a parcel checks its
 * blocks as usual but, where it would free them, pushes the whole parcel
 * back onto the sender's return stack (one compare-and-swap); the sender
 * takes its returns at the start of each loop and puts every block and the
 * parcel into its own bins. So each thread's bins only ever hold its own
 * memory and stay single-owner, and a thread that runs ahead of its
 * receiver does not leave its memory stranded in another thread's bins. */
#include "common.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static wl_opt opts[] = {
    { "threads", WL_INT, 2, 1, 256, "threads, each with its own array", 0, 0 },
    { "loops", WL_INT, 20000, 1, 1e9, "loops per thread", 0, 0 },
    { "slots", WL_INT, 1000, 1, 1 << 24, "blocks in each thread's array", 0, 0 },
    { "ops", WL_INT, 100, 1, 1 << 20,
      "allocations per loop are ops x U[0.30, 0.99], frees 0.8 times that", 0, 0 },
    { "cross-rate", WL_INT, 2, 0, 1 << 20,
      "send a parcel to another thread every N-th loop (0: never)", 0, 0 },
    { "pending", WL_INT, 16, 1, 1 << 20, "parcels an inbox holds (about) at most", 0, 0 },
    { "min-size", WL_INT, 8, 1, 1 << 30, "smallest block in bytes", 0, 0 },
    { "max-size", WL_INT, 16000, 1, 1 << 30, "largest block in bytes (inclusive)", 0, 0 },
    { "seed", WL_INT, 1, 0, 9.2e18, "random seed", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "queue_pass",
    "Threads allocate and free random-size blocks and pass some to each other (rptest style).",
    opts, NULL,
};

typedef struct parcel {
    struct parcel *next; /* on the receiver's inbox */
    void **ptr;          /* malloc'd: count block pointers */
    uint32_t count;
    uint32_t sender;
    uint64_t first;      /* the sender's index of ptr[0]'s block */
} parcel;

/* Each thread's state; the inbox, written by other threads, on its own line. */
typedef struct worker {
    _Alignas(WL_LINE) pthread_t th;
    uint32_t index;
    wl_rng rng;
    void **ptr;          /* the array (not timed: calloc'd before the start) */
    uint64_t *tag;
    uint32_t *size;
    uint64_t next_block; /* index of the next block this thread allocates */
    wl_live live;
    uint64_t made, freed;          /* sums of mix(tag ^ size) */
    uint64_t blocks_made, blocks_freed, calls;
    _Alignas(WL_LINE) parcel *_Atomic inbox;
    _Atomic uint64_t pending;   /* parcels pushed and not yet taken */
    parcel *_Atomic returns;    /* --floor: parcels sent back to be recycled */
} worker;

static uint64_t g_loops, g_slots, g_ops, g_cross, g_pending, g_min, g_range, g_seed;
static uint32_t g_nt, g_alloc_stride, g_free_stride;
static uint64_t *g_tag_base;
static worker *g_workers;
static wl_live_shared g_live_shared;
static _Atomic uint32_t g_done;

static inline uint64_t block_tag(uint32_t t, uint64_t k)
{
    return g_tag_base[t] + k * 0x9e3779b97f4a7c15ULL;
}

/* The size of a block, from its tag: min + range x u x |v + w - 1|. */
static inline uint32_t block_size(uint64_t tag)
{
    uint64_t z = wl_mix64(tag ^ 0x5bd1e9955bd1e995ULL);
    double u = (double)(z & 0x1fffff) / 2097152.0;
    double v = (double)((z >> 21) & 0x1fffff) / 2097152.0;
    double w = (double)((z >> 42) & 0x1fffff) / 2097152.0;
    double t = v + w - 1.0;
    double f = u * (t < 0 ? -t : t);
    return (uint32_t)(g_min + (uint64_t)((double)(g_range + 1) * f));
}

static void *new_block(worker *me, uint64_t *tag_out, uint32_t *size_out)
{
    uint64_t tag = block_tag(me->index, me->next_block++);
    uint32_t s = block_size(tag);
    void *p = wl_malloc(&me->live, s);
    wl_block_write(p, s, tag);
    me->made += wl_mix64(tag ^ s);
    me->blocks_made++;
    me->calls++;
    *tag_out = tag;
    *size_out = s;
    return p;
}

static void free_block(worker *me, void *p, uint64_t tag, uint32_t s)
{
    wl_block_verify(p, s, tag, "queue_pass block");
    wl_free(&me->live, p, s);
    me->freed += wl_mix64(tag ^ s);
    me->blocks_freed++;
    me->calls++;
}

static void free_slot(worker *me, uint64_t i)
{
    if (me->ptr[i]) {
        free_block(me, me->ptr[i], me->tag[i], me->size[i]);
        me->ptr[i] = NULL;
    }
}

static void push(parcel *_Atomic *stack, parcel *p)
{
    parcel *head = atomic_load_explicit(stack, memory_order_relaxed);
    do
        p->next = head;
    while (!atomic_compare_exchange_weak_explicit(stack, &head, p, memory_order_release,
                                                  memory_order_relaxed));
}

/* Free every parcel in the inbox (--floor: check the blocks, count them
 * freed, send the parcel back to its sender). */
static void empty_inbox(worker *me)
{
    parcel *p = atomic_exchange_explicit(&me->inbox, NULL, memory_order_acquire);
    uint64_t taken = 0;
    for (parcel *q = p; q; q = q->next)
        taken++;
    if (taken)
        atomic_fetch_sub_explicit(&me->pending, taken, memory_order_relaxed);
    while (p) {
        parcel *next = p->next;
        for (uint32_t j = 0; j < p->count; j++) {
            uint64_t tag = block_tag(p->sender, p->first + j);
            uint32_t s = block_size(tag);
            if (me->live.floor) {
                wl_block_verify(p->ptr[j], s, tag, "queue_pass block");
                wl_live_add(&me->live, -(int64_t)s);
                me->freed += wl_mix64(tag ^ s);
                me->blocks_freed++;
                me->calls++;
            } else {
                free_block(me, p->ptr[j], tag, s);
            }
        }
        me->calls += 2;
        if (me->live.floor) {
            wl_live_add(&me->live, -(int64_t)((size_t)p->count * sizeof *p->ptr + sizeof *p));
            push(&g_workers[p->sender].returns, p);
        } else {
            wl_free(&me->live, p->ptr, (size_t)p->count * sizeof *p->ptr);
            wl_free(&me->live, p, sizeof *p);
        }
        p = next;
    }
}

/* --floor: put the blocks of returned parcels, and the parcels, into this
 * thread's bins. */
static void take_returns(worker *me)
{
    wl_floor *f = me->live.floor;
    parcel *p = atomic_exchange_explicit(&me->returns, NULL, memory_order_acquire);
    while (p) {
        parcel *next = p->next;
        for (uint32_t j = 0; j < p->count; j++)
            wl_floor_free(f, p->ptr[j], block_size(block_tag(me->index, p->first + j)));
        wl_floor_free(f, p->ptr, (size_t)p->count * sizeof *p->ptr);
        wl_floor_free(f, p, sizeof *p);
        p = next;
    }
}

static void *worker_main(void *arg)
{
    worker *me = arg;
    uint64_t alloc_i = 0, free_i = 0;
    uint32_t to = me->index;
    wl_start_wait();
    for (uint64_t loop = 0; loop < g_loops; loop++) {
        if (me->live.floor)
            take_returns(me);
        uint64_t allocs = g_ops * wl_range(&me->rng, 30, 99) / 100;
        uint64_t frees = g_ops * 8 * wl_range(&me->rng, 30, 99) / 1000;
        for (uint64_t k = 0; k < frees; k++) {
            free_slot(me, free_i);
            free_i = (free_i + g_free_stride) % g_slots;
        }
        empty_inbox(me);
        for (uint64_t k = 0; k < allocs; k++) {
            free_slot(me, alloc_i);
            me->ptr[alloc_i] = new_block(me, &me->tag[alloc_i], &me->size[alloc_i]);
            alloc_i = (alloc_i + g_alloc_stride) % g_slots;
        }
        if (g_cross && g_nt > 1 && loop % g_cross == 0 && allocs > 0) {
            parcel *p = wl_malloc(&me->live, sizeof *p);
            p->ptr = wl_malloc(&me->live, allocs * sizeof *p->ptr);
            me->calls += 2;
            p->count = (uint32_t)allocs;
            p->sender = me->index;
            p->first = me->next_block;
            for (uint64_t j = 0; j < allocs; j++) {
                uint64_t tag;
                uint32_t s;
                p->ptr[j] = new_block(me, &tag, &s);
            }
            to = (to + 1) % g_nt;
            if (to == me->index)
                to = (to + 1) % g_nt;
            worker *w = &g_workers[to];
            while (atomic_load_explicit(&w->pending, memory_order_relaxed) >= g_pending) {
                empty_inbox(me);
                sched_yield();
            }
            atomic_fetch_add_explicit(&w->pending, 1, memory_order_relaxed);
            push(&w->inbox, p);
        }
    }
    /* done sending: keep receiving until every thread is done too */
    atomic_fetch_add_explicit(&g_done, 1, memory_order_acq_rel);
    while (atomic_load_explicit(&g_done, memory_order_acquire) < g_nt) {
        empty_inbox(me);
        nanosleep(&(struct timespec){ 0, 100 * 1000 }, NULL);
    }
    empty_inbox(me);
    for (uint64_t i = 0; i < g_slots; i++)
        free_slot(me, i);
    wl_live_flush(&me->live);
    return NULL;
}

/* The smallest prime from `from` on that does not divide n. */
static uint32_t stride_prime(uint32_t from, uint64_t n)
{
    for (uint32_t p = from;; p++) {
        int prime = p > 1;
        for (uint32_t d = 2; d * d <= p && prime; d++)
            prime = p % d != 0;
        if (prime && n % p != 0)
            return p;
    }
}

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    g_nt = (uint32_t)wl_int(&spec, "threads");
    g_loops = (uint64_t)wl_int(&spec, "loops");
    g_slots = (uint64_t)wl_int(&spec, "slots");
    g_ops = (uint64_t)wl_int(&spec, "ops");
    g_cross = (uint64_t)wl_int(&spec, "cross-rate");
    g_pending = (uint64_t)wl_int(&spec, "pending");
    uint64_t lo, hi;
    wl_size_range(&spec, &lo, &hi);
    if (hi > UINT32_MAX)
        wl_usage_error("--max-size must be below 4 GiB");
    g_min = lo;
    g_range = hi - lo;
    g_seed = (uint64_t)wl_int(&spec, "seed");
    g_alloc_stride = stride_prime(7, g_slots);
    g_free_stride = stride_prime(g_alloc_stride + 1, g_slots);

    g_tag_base = calloc(g_nt, sizeof *g_tag_base);
    g_workers = wl_calloc_lines(g_nt, sizeof *g_workers);
    if (!g_tag_base)
        wl_fatal("out of memory");
    size_t largest = wl_floor_class_size(wl_floor_class((size_t)hi));
    for (uint32_t t = 0; t < g_nt; t++) {
        worker *w = &g_workers[t];
        w->index = t;
        w->rng = wl_rng_stream(g_seed, t);
        g_tag_base[t] = wl_next(&w->rng);
        w->ptr = calloc(g_slots, sizeof *w->ptr);
        w->tag = calloc(g_slots, sizeof *w->tag);
        w->size = calloc(g_slots, sizeof *w->size);
        if (!w->ptr || !w->tag || !w->size)
            wl_fatal("out of memory for %" PRIu64 " slots", g_slots);
        w->live = (wl_live){ .shared = &g_live_shared };
        wl_live_floor(&w->live, (g_slots + 4 * g_ops) * largest);
        atomic_init(&w->inbox, NULL);
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

    uint64_t made = 0, freed = 0, blocks = 0, blocks_freed = 0, calls = 0;
    int64_t final_live = 0;
    for (uint32_t t = 0; t < g_nt; t++) {
        worker *w = &g_workers[t];
        made += w->made;
        freed += w->freed;
        blocks += w->blocks_made;
        blocks_freed += w->blocks_freed;
        calls += w->calls;
        final_live += w->live.cur;
        wl_live_floor_done(&w->live);
        free(w->ptr);
        free(w->tag);
        free(w->size);
    }
    if (made != freed || blocks != blocks_freed)
        wl_corrupted("(queue_pass): %" PRIu64 " blocks freed summing to %016" PRIx64
                     ", %" PRIu64 " made summing to %016" PRIx64,
                     blocks_freed, freed, blocks, made);
    free(g_workers);
    free(g_tag_base);
    wl_start_line_done();

    wl_report rep = {
        .threads = g_nt,
        .ops = calls,
        .op_unit = "malloc or free (blocks and parcels)",
        .seconds = secs,
        .peak_live_bytes = atomic_load(&g_live_shared.peak),
        .final_live_bytes = final_live,
        .checksum = wl_fold(wl_fold(0, made), blocks),
    };
    rep.extra[0].name = "blocks";
    rep.extra[0].value = (double)blocks;
    wl_report_print(&rep);
    return 0;
}
