/* larson - the Larson & Krishnan server benchmark (ISMM 1998), written
 * afresh from its published description.
 *
 * Model: `threads` arrays ("lineages") of `chunks_per_thread` slots.
 * Warm-up (main thread, not timed), as in the original: allocate
 * threads x chunks_per_thread blocks of random size in [min_size, max_size),
 * shuffle them across all arrays (a random permutation), then replace a
 * random block 4 x threads x chunks_per_thread times (free it, allocate a
 * new one); so every array holds blocks allocated by main at scattered
 * times, next to blocks of the other arrays. Then one worker thread per
 * array runs rounds x chunks_per_thread steps; a step picks a random slot,
 * checks and frees its block, and allocates a new block of random size in
 * [min_size, max_size) into it, writing it (wl_block_write: with the default
 * --verify touch its first and last 8 bytes, where the original writes two
 * bytes at the start). Thread lineage, as in the original: when a worker
 * finishes its steps it starts a successor thread that inherits the array
 * (its live blocks) and the random stream, then exits; the successor reaps
 * it. So blocks are freed by threads other than the one that allocated
 * them, and the warm-up blocks by threads other than main.
 *
 * Time mode (--generations 0, the default and the classic form): the run
 * stops `seconds` after the workers start; workers notice the stop flag at
 * the next step. The classic line reports allocations per second over the
 * timed part (warm-up excluded) and, as the original, "relative time"
 * 1e9 / throughput. The checksum covers only the warm-up (sizes and tags of
 * the threads x chunks_per_thread blocks it leaves), since the amount of
 * later work depends on speed.
 * Generation mode (--generations N): each array runs exactly N thread
 * generations, no time bound; the checksum covers every block allocated and
 * freed, so it is the same under every allocator.
 *
 * Determinism: the warm-up draws from its own stream, lineage t from stream
 * t of the seed; the stream moves with the array from thread to thread, so
 * the request sequence of each array depends only on the seed and the
 * parameters.
 *
 * --floor: main's warm-up and each lineage have their own floor bins (a
 * lineage's move with its array); a lineage frees blocks of main's into its
 * own bins and allocates from them. */
#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static wl_opt opts[] = {
    { "seconds", WL_REAL, 1, 0.001, 86400, "run time in time mode", 0, 0 },
    { "min-size", WL_INT, 8, 1, 1 << 30, "smallest block in bytes", 0, 0 },
    { "max-size", WL_INT, 1000, 2, 1 << 30, "sizes are drawn below this (exclusive)", 0, 0 },
    { "chunks-per-thread", WL_INT, 5000, 1, 1 << 24, "slots in each thread's array", 0, 0 },
    { "rounds", WL_INT, 100, 1, 1 << 24,
      "steps of one thread generation = rounds x chunks-per-thread", 0, 0 },
    { "seed", WL_INT, 4141, 0, 9.2e18, "random seed", 0, 0 },
    { "threads", WL_INT, 2, 1, 1024, "arrays, i.e. threads running at once", 0, 0 },
    { "generations", WL_INT, 0, 0, 1 << 30,
      "0: stop after --seconds; N: run exactly N thread generations per array", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static const char *const positional[] = {
    "seconds", "min-size", "max-size", "chunks-per-thread", "rounds", "seed", "threads", NULL,
};

static wl_spec spec = {
    "larson",
    "Larson & Krishnan server benchmark: random free+malloc per step, arrays handed to new threads.",
    opts, positional,
};

/* Written on every step by its thread: one cache line apart (wl_calloc_lines). */
typedef struct lineage {
    _Alignas(WL_LINE) uint64_t index;
    wl_rng rng;
    void **ptr;
    uint32_t *size;
    uint64_t *tag;
    uint64_t tag_base, tag_count;
    uint64_t gen;           /* thread generations finished */
    uint64_t mallocs, frees;
    uint64_t checksum;
    wl_live live;
    pthread_t prev;         /* previous thread, joined by the next one */
    int has_prev;
    pthread_t last;         /* the final thread, joined by main */
} lineage;

/* The warm-up's random stream (lineages use streams 0 .. threads-1). */
#define WARM_UP_STREAM 0xffffffffULL

static uint64_t g_chunks, g_steps, g_min, g_range, g_generations;
static _Atomic int g_stop;
static _Atomic uint64_t g_threads_started;
static wl_live_shared g_live_shared;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_active;

static inline uint64_t next_tag(lineage *l)
{
    return l->tag_base + (++l->tag_count) * 0x9e3779b97f4a7c15ULL;
}

static void fill_slot(lineage *l, uint64_t v)
{
    uint32_t s = (uint32_t)(g_min + wl_below(&l->rng, g_range));
    uint64_t tag = next_tag(l);
    void *p = wl_malloc(&l->live, s);
    wl_block_write(p, s, tag);
    l->ptr[v] = p;
    l->size[v] = s;
    l->tag[v] = tag;
}

static void release_slot(lineage *l, uint64_t v)
{
    wl_block_verify(l->ptr[v], l->size[v], l->tag[v], "larson slot");
    wl_free(&l->live, l->ptr[v], l->size[v]);
    l->ptr[v] = NULL;
}

/* The original's warm-up on all arrays at once (one lineage record for
 * main, whose arrays are the concatenation of every lineage's). */
static void warm_up(lineage *w, uint64_t n)
{
    for (uint64_t v = 0; v < n; v++)
        fill_slot(w, v);
    for (uint64_t k = n; k > 1; k--) {
        uint64_t j = wl_below(&w->rng, k);
        void *p = w->ptr[j];
        uint32_t s = w->size[j];
        uint64_t t = w->tag[j];
        w->ptr[j] = w->ptr[k - 1];
        w->size[j] = w->size[k - 1];
        w->tag[j] = w->tag[k - 1];
        w->ptr[k - 1] = p;
        w->size[k - 1] = s;
        w->tag[k - 1] = t;
    }
    for (uint64_t k = 0; k < 4 * n; k++) {
        uint64_t v = wl_below(&w->rng, n);
        release_slot(w, v);
        fill_slot(w, v);
    }
}

static void *worker(void *arg);

static void start_thread(lineage *l)
{
    pthread_t th;
    atomic_fetch_add_explicit(&g_threads_started, 1, memory_order_relaxed);
    wl_thread_start(&th, worker, l);
}

static void *worker(void *arg)
{
    lineage *l = arg;
    int timed = g_generations == 0, stopped = 0;
    uint64_t h = l->checksum;
    for (uint64_t k = 0; k < g_steps; k++) {
        if (timed && atomic_load_explicit(&g_stop, memory_order_relaxed)) {
            stopped = 1;
            break;
        }
        uint64_t v = wl_below(&l->rng, g_chunks);
        if (!timed)
            h = wl_fold(h, l->tag[v] ^ l->size[v]);
        release_slot(l, v);
        fill_slot(l, v);
        if (!timed)
            h = wl_fold(h, l->tag[v] ^ l->size[v]);
        l->frees++;
        l->mallocs++;
    }
    l->checksum = h;
    if (l->has_prev) {
        int e = pthread_join(l->prev, NULL);
        if (e)
            wl_fatal("pthread_join: %s", strerror(e));
    }
    l->gen++;
    if (!stopped && (timed ? !atomic_load(&g_stop) : l->gen < g_generations)) {
        /* hand the array to a new thread; this one touches l no more */
        l->prev = pthread_self();
        l->has_prev = 1;
        start_thread(l);
        return NULL;
    }
    wl_live_flush(&l->live);
    l->last = pthread_self();
    pthread_mutex_lock(&g_mu);
    g_active--;
    pthread_cond_signal(&g_cv);
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

static void sleep_until(double t)
{
    for (;;) {
        double left = t - wl_now();
        if (left <= 0)
            return;
        struct timespec ts = { (time_t)left, (long)((left - (double)(time_t)left) * 1e9) };
        if (nanosleep(&ts, NULL) != 0 && errno != EINTR)
            return;
    }
}

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    double seconds = wl_real(&spec, "seconds");
    uint64_t lo = (uint64_t)wl_int(&spec, "min-size"), hi = (uint64_t)wl_int(&spec, "max-size");
    if (lo >= hi)
        wl_usage_error("min-size (%" PRIu64 ") must be smaller than max-size (%" PRIu64
                       "); sizes are drawn from [min, max)", lo, hi);
    g_min = lo;
    g_range = hi - lo;
    g_chunks = (uint64_t)wl_int(&spec, "chunks-per-thread");
    g_steps = g_chunks * (uint64_t)wl_int(&spec, "rounds");
    g_generations = (uint64_t)wl_int(&spec, "generations");
    uint64_t seed = (uint64_t)wl_int(&spec, "seed");
    int nt = (int)wl_int(&spec, "threads");

    lineage *ls = wl_calloc_lines((size_t)nt + 1, sizeof *ls);
    size_t slot_bytes = wl_floor_class_size(wl_floor_class((size_t)hi - 1));
    /* warm-up: main allocates every array's blocks (record ls[nt]) */
    uint64_t all = g_chunks * (uint64_t)nt;
    lineage *w = &ls[nt];
    w->rng = wl_rng_stream(seed, WARM_UP_STREAM);
    w->tag_base = wl_next(&w->rng);
    w->live = (wl_live){ .shared = &g_live_shared };
    w->ptr = calloc(all, sizeof *w->ptr);
    w->size = calloc(all, sizeof *w->size);
    w->tag = calloc(all, sizeof *w->tag);
    if (!w->ptr || !w->size || !w->tag)
        wl_fatal("out of memory for %" PRIu64 " slots", all);
    wl_live_floor(&w->live, all * slot_bytes);
    warm_up(w, all);
    wl_live_flush(&w->live);
    for (int t = 0; t < nt; t++) {
        lineage *l = &ls[t];
        l->index = (uint64_t)t;
        l->rng = wl_rng_stream(seed, (uint64_t)t);
        l->tag_base = wl_next(&l->rng);
        l->live = (wl_live){ .shared = &g_live_shared };
        wl_live_floor(&l->live, g_chunks * slot_bytes);
        l->ptr = w->ptr + (uint64_t)t * g_chunks;
        l->size = w->size + (uint64_t)t * g_chunks;
        l->tag = w->tag + (uint64_t)t * g_chunks;
        uint64_t h = wl_fold(0, (uint64_t)t);
        for (uint64_t v = 0; v < g_chunks; v++)
            h = wl_fold(h, l->tag[v] ^ l->size[v]);
        l->checksum = h;
    }

    g_active = nt;
    double t0 = wl_now();
    for (int t = 0; t < nt; t++)
        start_thread(&ls[t]);
    if (g_generations == 0) {
        sleep_until(t0 + seconds);
        atomic_store(&g_stop, 1);
    }
    pthread_mutex_lock(&g_mu);
    while (g_active > 0)
        pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    double secs = wl_now() - t0;

    uint64_t mallocs = 0, frees = 0, sum = 0;
    int64_t final_live = 0;
    for (int t = 0; t < nt; t++) {
        lineage *l = &ls[t];
        int e = pthread_join(l->last, NULL);
        if (e)
            wl_fatal("pthread_join: %s", strerror(e));
        mallocs += l->mallocs;
        frees += l->frees;
        final_live += l->live.cur;
    }
    final_live += w->live.cur; /* lineages' counts go negative by the warm-up blocks they free */
    /* final check and free, not timed */
    for (int t = 0; t < nt; t++) {
        lineage *l = &ls[t];
        uint64_t h = l->checksum;
        for (uint64_t v = 0; v < g_chunks; v++) {
            if (g_generations)
                h = wl_fold(h, l->tag[v] ^ l->size[v]);
            release_slot(l, v);
        }
        wl_live_flush(&l->live);
        sum = wl_fold(sum, h);
        wl_live_floor_done(&l->live);
    }
    wl_live_floor_done(&w->live);
    free(w->ptr);
    free(w->size);
    free(w->tag);

    double allocs_per_sec = (double)mallocs / (secs > 0 ? secs : 1e-9);
    printf("Throughput = %.0f operations per second, relative time: %.3fs.\n",
           allocs_per_sec, 1e9 / (allocs_per_sec > 0 ? allocs_per_sec : 1));
    wl_report r = {
        .threads = nt,
        .ops = mallocs + frees,
        .op_unit = "malloc or free",
        .seconds = secs,
        .peak_live_bytes = atomic_load(&g_live_shared.peak),
        .final_live_bytes = final_live,
        .checksum = sum,
    };
    r.extra[0].name = "allocs_per_sec";
    r.extra[0].value = allocs_per_sec;
    r.extra[1].name = "thread_generations";
    r.extra[1].value = (double)atomic_load(&g_threads_started);
    free(ls);
    wl_report_print(&r);
    return 0;
}
