/* replay - re-executes a program's recorded allocations (a replay file made
 * by `hakmem-trace compile`, format in tracker/trace_format.h).
 *
 * One thread per recorded thread, each doing its recorded calls in order;
 * a block is a slot. An event another thread must wait for carries the
 * index of the event it waits for (a free or realloc of a block that
 * another thread allocated or last reallocated): the waiter spins briefly,
 * then sleeps on the other thread's progress word (futex), which that
 * thread publishes after each event someone waits for.
 *
 * Every block is written at allocation (--verify touch: head, tail, one
 * byte per page; full: every byte) and checked before it is freed; after a
 * realloc the kept prefix is checked and the new part written; calloc's
 * memory is checked to be zero, aligned calls' results to be aligned.
 *
 * Live bytes: peak_live_bytes is the trace's own peak (requested sizes in
 * recorded order), recomputed from the file's events before timing and
 * checked against the file's header; replay_peak_live_bytes is what this
 * run's interleaving of threads reached (per-thread counts folded in 64 KiB
 * batches: exact for one thread, within threads x 64 KiB otherwise, and it
 * may differ more when threads overlap differently than they did).
 *
 * --floor: each thread has floor bins; a block freed by another thread goes
 * into that thread's bins. Aligned calls take size + alignment bytes from
 * the bins and align inside them. */
#include "common.h"

#include "../tracker/trace_format.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static wl_opt opts[] = {
    { "seed", WL_INT, 1, 0, 9.2e18, "seed of the block tags (the trace fixes every request)", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "replay",
    "Replays a recorded program's allocations: --trace FILE (required), a replay file made by "
    "`hakmem-trace compile`.",
    opts, NULL,
};

#define CHUNK 1024 /* events read at once per thread */

typedef struct slot {
    void *p;
    uint64_t size;
    uint64_t tag;
} slot;

typedef struct floor_raw { /* --floor: what the bins handed out for the slot */
    void *raw;
    uint64_t n;
} floor_raw;

typedef struct rthread {
    _Alignas(WL_LINE) pthread_t th;
    uint32_t index;
    hr_thread info;
    wl_live live;
    uint64_t h, ops, deps, waits, blocked;
    hr_event *buf;
    _Alignas(WL_LINE) _Atomic uint32_t done; /* events done, published when waited for */
    _Atomic uint32_t sleepers;
} rthread;

static const char *g_path;
static int g_fd;
static hr_header g_h;
static rthread *g_th;
static slot *g_slots;
static floor_raw *g_raw;
static uint64_t g_seed;
static wl_live_shared g_live_shared;
static pthread_barrier_t g_start;

/* ---- reading the file ---------------------------------------------------- */

static void read_exact(void *buf, size_t n, uint64_t off)
{
    char *b = buf;
    while (n) {
        ssize_t r = pread(g_fd, b, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            wl_fatal("%s: read failed: %s", g_path, strerror(errno));
        if (r == 0)
            wl_usage_error("%s: cut short (not a complete replay file)", g_path);
        b += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
}

/* A thread's events, CHUNK at a time. */
typedef struct stream {
    hr_event *buf;
    uint64_t next, total, base; /* next event index; buf holds [base, base + n) */
    uint32_t n;
    uint64_t off;
} stream;

static const hr_event *stream_get(stream *s, uint64_t i)
{
    if (i < s->base || i >= s->base + s->n) {
        uint64_t left = s->total - i;
        s->n = (uint32_t)(left < CHUNK ? left : CHUNK);
        s->base = i;
        read_exact(s->buf, (size_t)s->n * sizeof(hr_event), s->off + i * sizeof(hr_event));
    }
    return &s->buf[i - s->base];
}

static void *map_zeroed(size_t bytes)
{
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        wl_fatal("mmap of %zu bytes failed: %s", bytes, strerror(errno));
    return p;
}

static void load(void)
{
    g_fd = open(g_path, O_RDONLY | O_CLOEXEC);
    if (g_fd < 0)
        wl_usage_error("%s: cannot open: %s", g_path, strerror(errno));
    struct stat st;
    if (fstat(g_fd, &st) != 0 || (size_t)st.st_size < sizeof g_h)
        wl_usage_error("%s: not a replay file (too short)", g_path);
    read_exact(&g_h, sizeof g_h, 0);
    if (memcmp(g_h.magic, HR_MAGIC, 8) != 0)
        wl_usage_error("%s: not a replay file (make one with hakmem-trace compile)", g_path);
    if (g_h.version != HR_VERSION)
        wl_usage_error("%s: replay format version %u, this replay reads %d", g_path, g_h.version, HR_VERSION);
    if (g_h.threads == 0 || g_h.threads >= UINT16_MAX || g_h.slots > UINT32_MAX)
        wl_usage_error("%s: corrupt header (%u threads, %" PRIu64 " slots)", g_path, g_h.threads, g_h.slots);
    g_th = wl_calloc_lines(g_h.threads, sizeof *g_th);
    uint64_t total = 0;
    for (uint32_t i = 0; i < g_h.threads; i++) {
        rthread *t = &g_th[i];
        read_exact(&t->info, sizeof t->info, sizeof g_h + (uint64_t)i * sizeof(hr_thread));
        uint64_t end = t->info.offset + t->info.events * sizeof(hr_event);
        if (t->info.events >= UINT32_MAX || t->info.offset < sizeof g_h || end > (uint64_t)st.st_size ||
            end < t->info.offset)
            wl_usage_error("%s: corrupt thread table (thread %u)", g_path, i);
        t->index = i;
        t->buf = map_zeroed(CHUNK * sizeof(hr_event));
        total += t->info.events;
    }
    if (total != g_h.events)
        wl_usage_error("%s: corrupt header (%" PRIu64 " events, threads hold %" PRIu64 ")", g_path,
                       g_h.events, total);
}

/* ---- the trace's peak, recomputed before timing ----------------------------- */

static void check_peak(void)
{
    uint32_t n = g_h.threads;
    stream *s = calloc(n, sizeof *s);
    uint32_t *heap = calloc(n, sizeof *heap);
    uint64_t *size = map_zeroed((size_t)g_h.slots * sizeof *size);
    if (!s || !heap)
        wl_fatal("out of memory");
    uint32_t nh = 0;
    for (uint32_t i = 0; i < n; i++) {
        s[i] = (stream){ .buf = g_th[i].buf, .total = g_th[i].info.events, .off = g_th[i].info.offset };
        if (s[i].total)
            heap[nh++] = i;
    }
#define KEY(i) (stream_get(&s[i], s[i].next)->time)
#define LESS(a, b) (KEY(a) < KEY(b) || (KEY(a) == KEY(b) && (a) < (b)))
    /* a binary heap by (time, thread); a thread's events stay in order */
    for (uint32_t k = nh / 2; k-- > 0;)
        for (uint32_t i = k;;) {
            uint32_t l = 2 * i + 1, r = l + 1, m = i;
            if (l < nh && LESS(heap[l], heap[m])) m = l;
            if (r < nh && LESS(heap[r], heap[m])) m = r;
            if (m == i) break;
            uint32_t t = heap[i]; heap[i] = heap[m]; heap[m] = t; i = m;
        }
    int64_t live = 0, peak = 0;
    while (nh) {
        uint32_t ti = heap[0];
        const hr_event *e = stream_get(&s[ti], s[ti].next);
        if (e->slot >= g_h.slots || e->op < HR_MALLOC || e->op > HR_OP_LAST ||
            e->wait_thread > g_h.threads || (e->wait_thread && e->wait_index >= g_th[e->wait_thread - 1].info.events))
            wl_usage_error("%s: corrupt event %" PRIu64 " of thread %u", g_path, s[ti].next, ti);
        if (e->op == HR_FREE) {
            live -= (int64_t)size[e->slot];
            size[e->slot] = 0;
        } else {
            live += (int64_t)e->size - (int64_t)(e->op == HR_REALLOC ? size[e->slot] : 0);
            size[e->slot] = e->size;
        }
        if (live > peak)
            peak = live;
        if (++s[ti].next == s[ti].total)
            heap[0] = heap[--nh];
        for (uint32_t i = 0;;) {
            uint32_t l = 2 * i + 1, r = l + 1, m = i;
            if (l < nh && LESS(heap[l], heap[m])) m = l;
            if (r < nh && LESS(heap[r], heap[m])) m = r;
            if (m == i) break;
            uint32_t t = heap[i]; heap[i] = heap[m]; heap[m] = t; i = m;
        }
    }
#undef LESS
#undef KEY
    if ((uint64_t)peak != g_h.peak_live_bytes || (uint64_t)live != g_h.final_live_bytes)
        wl_usage_error("%s: its events reach a peak of %" PRId64 " live bytes and end with %" PRId64
                       ", its header says %" PRIu64 " and %" PRIu64 ": not a consistent replay file",
                       g_path, peak, live, g_h.peak_live_bytes, g_h.final_live_bytes);
    munmap(size, g_h.slots ? (size_t)g_h.slots * sizeof *size : 1);
    free(s);
    free(heap);
}

/* ---- waiting for another thread --------------------------------------------- */

static void wait_for(rthread *me, rthread *t, uint32_t need)
{
    me->waits++;
    for (int k = 0; k < 200; k++) {
        if (atomic_load_explicit(&t->done, memory_order_acquire) >= need)
            return;
        __builtin_ia32_pause();
    }
    me->blocked++;
    atomic_fetch_add(&t->sleepers, 1);
    for (;;) {
        uint32_t d = atomic_load(&t->done);
        if (d >= need)
            break;
        syscall(SYS_futex, &t->done, FUTEX_WAIT_PRIVATE, d, NULL, NULL, 0);
    }
    atomic_fetch_sub(&t->sleepers, 1);
}

static void publish(rthread *t, uint32_t done)
{
    atomic_store(&t->done, done);
    if (atomic_load(&t->sleepers))
        syscall(SYS_futex, &t->done, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* ---- the calls ------------------------------------------------------------ */

static _Noreturn void failed(const rthread *t, uint64_t i, const hr_event *e)
{
    wl_fatal("thread %u event %" PRIu64 ": the allocator returned NULL for %" PRIu64 " bytes (op %u)", t->index,
             i, e->size, e->op);
}

static void check_zero(const unsigned char *p, uint64_t n, const rthread *t, uint64_t i)
{
    uint64_t end = wl_verify_full ? n : (n < 8 ? n : 8);
    for (uint64_t k = 0; k < end; k++)
        if (p[k])
            wl_corrupted("(calloc of %" PRIu64 " bytes, thread %u event %" PRIu64 "): byte %" PRIu64 " is not zero",
                         n, t->index, i, k);
}

static void *floor_aligned(rthread *t, uint64_t align, uint64_t n, floor_raw *r)
{
    r->n = n + align;
    r->raw = wl_floor_alloc(t->live.floor, r->n);
    return (void *)(((uintptr_t)r->raw + align - 1) & ~(uintptr_t)(align - 1));
}

static void *do_alloc(rthread *t, uint64_t i, const hr_event *e)
{
    void *p = NULL;
    uint64_t align = e->arg;
    if (e->op != HR_MALLOC && e->op != HR_CALLOC && e->op != HR_REALLOC_NEW) {
        if (align < sizeof(void *))
            align = sizeof(void *);
        if (align & (align - 1)) /* a recorded memalign may round up */
            align = 1ULL << (64 - __builtin_clzll(align));
    }
    if (t->live.floor) {
        floor_raw *r = &g_raw[e->slot];
        if (e->op == HR_MALLOC || e->op == HR_CALLOC || e->op == HR_REALLOC_NEW) {
            r->n = e->size;
            r->raw = p = wl_floor_alloc(t->live.floor, e->size);
            if (e->op == HR_CALLOC)
                memset(p, 0, e->size);
        } else {
            p = floor_aligned(t, align, e->size, r);
        }
    } else {
        switch (e->op) {
        case HR_MALLOC: p = malloc(e->size); break;
        case HR_REALLOC_NEW: p = realloc(NULL, e->size); break;
        case HR_CALLOC: p = e->arg ? calloc(e->arg, e->size / e->arg) : calloc(0, 0); break;
        case HR_ALIGNED_ALLOC: p = aligned_alloc(e->arg, e->size); break;
        case HR_MEMALIGN: p = memalign(e->arg, e->size); break;
        default: if (posix_memalign(&p, e->arg, e->size) != 0) p = NULL; break;
        }
        /* aligned_alloc or memalign with an argument this allocator refuses
         * (glibc accepts more): the same request through posix_memalign */
        if (!p && (e->op == HR_ALIGNED_ALLOC || e->op == HR_MEMALIGN) && posix_memalign(&p, align, e->size) != 0)
            p = NULL;
    }
    if (!p && e->size)
        failed(t, i, e);
    if (e->op == HR_CALLOC && p)
        check_zero(p, e->size, t, i);
    if (e->op != HR_MALLOC && e->op != HR_CALLOC && e->op != HR_REALLOC_NEW && ((uintptr_t)p & (align - 1)))
        wl_corrupted("(thread %u event %" PRIu64 ", op %u, %" PRIu64 " bytes): %p is not aligned to %" PRIu64,
                     t->index, i, e->op, e->size, p, align);
    return p;
}

static void do_free(rthread *t, slot *s, uint32_t n)
{
    wl_block_verify(s->p, s->size, s->tag, "replayed block");
    if (t->live.floor) {
        floor_raw *r = &g_raw[n];
        wl_floor_free(t->live.floor, r->raw, r->n);
    } else {
        free(s->p);
    }
    wl_live_add(&t->live, -(int64_t)s->size);
    s->p = NULL;
}

static void do_realloc(rthread *t, uint64_t i, const hr_event *e, slot *s)
{
    uint64_t old = s->size, keep = old < e->size ? old : e->size;
    void *q;
    if (t->live.floor) {
        floor_raw *r = &g_raw[e->slot];
        if (r->raw == s->p) {
            q = wl_floor_realloc(t->live.floor, s->p, r->n, e->size);
        } else { /* an aligned block: a plain one now */
            q = wl_floor_alloc(t->live.floor, e->size);
            memcpy(q, s->p, keep);
            wl_floor_free(t->live.floor, r->raw, r->n);
        }
        r->raw = q;
        r->n = e->size;
    } else {
        q = realloc(s->p, e->size);
        if (!q && e->size)
            failed(t, i, e);
    }
    wl_block_verify(q, keep, s->tag, "replayed block after realloc");
    if (e->size > old)
        wl_block_write_range(q, old, e->size, s->tag);
    wl_live_add(&t->live, (int64_t)e->size - (int64_t)old);
    s->p = q;
    s->size = e->size;
}

static void *run_thread(void *arg)
{
    rthread *t = arg;
    stream st = { .buf = t->buf, .total = t->info.events, .off = t->info.offset };
    uint64_t h = wl_mix64(t->index + 1);
    if (st.total)
        stream_get(&st, 0); /* the first chunk is read before timing */
    pthread_barrier_wait(&g_start);
    for (uint64_t i = 0; i < st.total; i++) {
        const hr_event *e = stream_get(&st, i);
        if (e->wait_thread) {
            rthread *o = &g_th[e->wait_thread - 1];
            t->deps++;
            if (atomic_load_explicit(&o->done, memory_order_acquire) <= e->wait_index)
                wait_for(t, o, (uint32_t)e->wait_index + 1);
        }
        slot *s = &g_slots[e->slot];
        switch (e->op) {
        case HR_FREE:
            do_free(t, s, e->slot);
            break;
        case HR_REALLOC:
            do_realloc(t, i, e, s);
            break;
        default:
            s->p = do_alloc(t, i, e);
            s->size = e->size;
            s->tag = wl_mix64(g_seed ^ ((uint64_t)t->index << 40) ^ i) | 1;
            wl_block_write(s->p, e->size, s->tag);
            wl_live_add(&t->live, (int64_t)e->size);
            break;
        }
        h = wl_fold(h, (uint64_t)e->op << 56 ^ e->size);
        if (e->flags & HR_PUBLISH)
            publish(t, (uint32_t)(i + 1));
    }
    wl_live_flush(&t->live);
    t->h = h;
    t->ops = st.total;
    return NULL;
}

/* --trace FILE (or --trace=FILE) is taken out before the common parser,
 * which knows numbers and flags only. */
static int take_trace_arg(int argc, char **argv)
{
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && (strcmp(argv[i], "--trace") == 0 || strcmp(argv[i], "-trace") == 0)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "replay: --trace needs a file\n");
                exit(WL_EXIT_USAGE);
            }
            g_path = argv[++i];
            continue;
        }
        if (i > 0 && strncmp(argv[i], "--trace=", 8) == 0) {
            g_path = argv[i] + 8;
            continue;
        }
        argv[n++] = argv[i];
    }
    argv[n] = NULL;
    return n;
}

int main(int argc, char **argv)
{
    argc = take_trace_arg(argc, argv);
    wl_parse(&spec, argc, argv);
    if (!g_path || !*g_path)
        wl_usage_error("--trace FILE is required (a replay file made by hakmem-trace compile)");
    g_seed = (uint64_t)wl_int(&spec, "seed");
    load();
    check_peak();
    g_slots = map_zeroed((size_t)g_h.slots * sizeof *g_slots);
    if (wl_floor_on) {
        g_raw = map_zeroed((size_t)g_h.slots * sizeof *g_raw);
        /* Bins keep freed blocks by class, so a thread may need all it
         * allocates: that much is prefaulted while it stays under 2 GiB in
         * all; else twice the peak, shared out by what each allocates (more
         * is mapped when a thread runs out). */
        uint64_t sum = 0;
        for (uint32_t i = 0; i < g_h.threads; i++)
            sum += g_th[i].info.alloc_bytes;
        for (uint32_t i = 0; i < g_h.threads; i++) {
            uint64_t want = g_th[i].info.alloc_bytes;
            if (sum > ((uint64_t)2 << 30))
                want = (uint64_t)(2.0 * (double)g_h.peak_live_bytes * (double)want / (double)sum);
            wl_live_floor(&g_th[i].live, (size_t)(want + ((uint64_t)1 << 20)));
        }
    }
    for (uint32_t i = 0; i < g_h.threads; i++)
        g_th[i].live.shared = &g_live_shared;
    if (pthread_barrier_init(&g_start, NULL, g_h.threads + 1) != 0)
        wl_fatal("pthread_barrier_init failed");
    for (uint32_t i = 0; i < g_h.threads; i++)
        if (pthread_create(&g_th[i].th, NULL, run_thread, &g_th[i]) != 0)
            wl_fatal("cannot start thread %u of %u", i, g_h.threads);
    pthread_barrier_wait(&g_start);
    double t0 = wl_now();
    for (uint32_t i = 0; i < g_h.threads; i++)
        pthread_join(g_th[i].th, NULL);
    double secs = wl_now() - t0;

    uint64_t h = 0, ops = 0, deps = 0, waits = 0, blocked = 0;
    int64_t final_live = 0;
    for (uint32_t i = 0; i < g_h.threads; i++) {
        h = wl_fold(h, g_th[i].h);
        ops += g_th[i].ops;
        deps += g_th[i].deps;
        waits += g_th[i].waits;
        blocked += g_th[i].blocked;
        final_live += g_th[i].live.cur;
    }
    if (final_live != (int64_t)g_h.final_live_bytes)
        wl_fatal("internal error: %" PRId64 " bytes live at the end, the trace ends with %" PRIu64, final_live,
                 g_h.final_live_bytes);
    /* one thread: its own count is exact; more: the batched shared count */
    int64_t run_peak = g_h.threads == 1 ? g_th[0].live.peak : atomic_load(&g_live_shared.peak);
    const char *prog = strrchr(g_h.program, '/') ? strrchr(g_h.program, '/') + 1 : g_h.program;
    printf("replay: %s (pid %" PRIu64 "), %u threads, %" PRIu64 " events, %" PRIu64 " on another thread's "
           "block (%" PRIu64 " waited, %" PRIu64 " slept), trace peak %" PRIu64 " live bytes, this run's %" PRId64 "\n",
           prog, g_h.pid, g_h.threads, g_h.events, deps, waits, blocked, g_h.peak_live_bytes, run_peak);
    wl_report rep = {
        .threads = g_h.threads,
        .ops = ops,
        .op_unit = "recorded malloc-family call",
        .seconds = secs,
        .peak_live_bytes = (int64_t)g_h.peak_live_bytes,
        .final_live_bytes = final_live,
        .checksum = h,
    };
    rep.extra[0].name = "replay_peak_live_bytes";
    rep.extra[0].value = (double)run_peak;
    rep.extra[1].name = "cross_thread_waits";   /* events on another thread's block */
    rep.extra[1].value = (double)deps;
    rep.extra[5].name = "waited";               /* of those, found not yet done */
    rep.extra[5].value = (double)waits;
    rep.extra[2].name = "slots";
    rep.extra[2].value = (double)g_h.slots;
    rep.extra[3].name = "not_replayed";
    rep.extra[3].value = (double)g_h.skipped;
    rep.extra[4].name = "recorded_seconds";
    rep.extra[4].value = (double)g_h.duration_ns / 1e9;
    wl_report_print(&rep);
    return 0;
}
