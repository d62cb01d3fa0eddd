/* common.h - shared pieces of the workload programs.
 *
 * Glossary
 *   option   one entry of a workload's option table: name, kind, default,
 *            range, help; the table is the single source for parsing,
 *            --help and the "params" object of the JSON report.
 *   stream   a deterministic random sequence (splitmix64) derived from the
 *            seed and a stream number (one per thread or per role).
 *   tag      a 64-bit value derived deterministically from the request;
 *            stored in the first 8 bytes of a block, its low byte fills the
 *            rest. wl_block_check verifies both before the block is freed.
 *   live     bytes currently allocated, counted as requested sizes.
 *   verify   how much of a block the workload writes and checks (--verify):
 *            full writes every byte and checks every byte before free;
 *            touch writes the tag in the first 8 bytes, the fill byte in
 *            the last 8 bytes and one byte in every 4 KiB page between, and
 *            checks the first 8 bytes before free. Both write the same
 *            pattern (touch writes a subset of it), so both share one check.
 *   floor    --floor: every malloc, free and realloc of the timed work goes
 *            to a trivial recycle inside the workload instead of the
 *            process's malloc (wl_floor bins, or slabs and slot buffers set
 *            aside before timing), so the run measures the workload's own
 *            cost: the part of a figure no allocator can change.
 *
 * Invariants
 *   - checksums never depend on addresses, timing, the allocator, --verify
 *     or --floor;
 *   - every page of a block (and its first and last 8 bytes) is written
 *     before the block counts as live; with --verify full every byte;
 *   - errors in user input exit WL_EXIT_USAGE (2), corrupted blocks
 *     WL_EXIT_CORRUPTION (3): exit_status.h, shared with the harness.
 */
#ifndef WL_COMMON_H
#define WL_COMMON_H

#include "exit_status.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A cache line: per-thread state is kept this far apart. */
#define WL_LINE 64

/* ---- options ---------------------------------------------------------- */

typedef enum wl_opt_kind {
    WL_INT,  /* int64, accepts k/m/g binary suffixes */
    WL_REAL, /* double */
    WL_FLAG, /* no value; --name=0 / --name=1 also accepted */
    WL_CHOICE /* one word from a fixed list (common options only); i = index */
} wl_opt_kind;

typedef struct wl_opt {
    const char *name;  /* without the leading "--", words separated by '-' */
    wl_opt_kind kind;
    double def;        /* default value */
    double min, max;   /* inclusive range (ignored for flags) */
    const char *help;
    /* filled by wl_parse */
    int64_t i;         /* value for WL_INT and WL_FLAG */
    double d;          /* value for WL_REAL */
} wl_opt;

typedef struct wl_spec {
    const char *name;         /* workload name, used in messages and JSON */
    const char *summary;      /* one line for --help */
    wl_opt *opts;             /* table, terminated by an entry with name NULL */
    const char *const *positional; /* optional: names taking positional args
                                      (all or none), NULL-terminated */
} wl_spec;

/* Parse argv into the table and the common options (--verify, --floor, which
 * every workload takes); prints help and exits 0 on --help; exits
 * WL_EXIT_USAGE with one line on stderr on any bad input. Remembers the spec
 * for wl_usage_error and the report. */
void wl_parse(wl_spec *spec, int argc, char **argv);
wl_opt *wl_opt_find(wl_spec *spec, const char *name);
int64_t wl_int(wl_spec *spec, const char *name);
/* The --min-size and --max-size options (inclusive range); exits with a usage
 * error when min is larger than max. */
void wl_size_range(wl_spec *spec, uint64_t *lo, uint64_t *hi);
double wl_real(wl_spec *spec, const char *name);

/* "<workload>: <message>" on stderr, exit WL_EXIT_USAGE (bad input). */
_Noreturn void wl_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* "<workload>: <message>" on stderr, exit WL_EXIT_SYSTEM (out of memory, a
 * failed system call, an internal error). */
_Noreturn void wl_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* "<workload>: corrupted block ..." on stderr, exit WL_EXIT_CORRUPTION. */
_Noreturn void wl_corrupted(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* The common options, set by wl_parse. */
extern bool wl_verify_full; /* --verify full (default: touch) */
extern bool wl_floor_on;    /* --floor */

/* ---- random streams (splitmix64) -------------------------------------- */

typedef struct wl_rng { uint64_t s; } wl_rng;

static inline uint64_t wl_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Stream `stream` of seed `seed`: independent sequences per thread/role. */
static inline wl_rng wl_rng_stream(uint64_t seed, uint64_t stream)
{
    wl_rng r = { wl_mix64(seed ^ wl_mix64(stream + 0x632be59bd9b4e019ULL)) };
    return r;
}

static inline uint64_t wl_next(wl_rng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return wl_mix64(r->s);
}

/* Uniform in [0, n) (n > 0), multiply-shift. */
static inline uint64_t wl_below(wl_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)wl_next(r) * n) >> 64);
}

/* Uniform in [lo, hi] inclusive. */
static inline uint64_t wl_range(wl_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + wl_below(r, hi - lo + 1);
}

/* Uniform double in [0, 1). */
static inline double wl_unit(wl_rng *r)
{
    return (double)(wl_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Log-uniform integer in [lo, hi] (lo >= 1). */
uint64_t wl_log_range(wl_rng *r, uint64_t lo, uint64_t hi);

/* ---- checksums -------------------------------------------------------- */

/* Order-dependent fold of a 64-bit value into a running hash. */
static inline uint64_t wl_fold(uint64_t h, uint64_t x)
{
    return wl_mix64(h ^ (x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}

uint64_t wl_hash_bytes(uint64_t h, const void *p, size_t n);

/* ---- blocks: write and check ------------------------------------------ */

/* The pattern of a block of n bytes with tag t: byte k is byte k of t
 * (little-endian) for k < 8, else the fill byte t >> 56. */

/* Write every byte of p[0..n) with the pattern. */
void wl_block_fill(void *p, size_t n, uint64_t tag);
/* Write bytes [from, to) with the pattern (used after a realloc growth). */
void wl_block_fill_range(void *p, size_t from, size_t to, uint64_t tag);
/* Check p[0..n) against the pattern; on mismatch report `what` and exit
 * WL_EXIT_CORRUPTION. */
void wl_block_check(const void *p, size_t n, uint64_t tag, const char *what);

#define WL_PAGE 4096
/* The fill byte at every multiple of WL_PAGE in [WL_PAGE, end). */
void wl_touch_pages(unsigned char *b, size_t end, unsigned char fill);

/* The touch subset of the pattern: the first 8 bytes, the last 8 bytes and
 * one byte in every 4 KiB page, so every page and cache line at either end
 * is written (blocks under 16 bytes are written whole). */
static inline void wl_block_touch(void *p, size_t n, uint64_t tag)
{
    if (n < 16) {
        wl_block_fill(p, n, tag);
        return;
    }
    unsigned char *b = p;
    uint64_t tail = 0x0101010101010101ULL * (tag >> 56);
    memcpy(b, &tag, 8);
    memcpy(b + n - 8, &tail, 8);
    if (n > WL_PAGE + 8)
        wl_touch_pages(b, n - 8, (unsigned char)(tag >> 56));
}

/* The touch subset restricted to [from, to) of a block that is now `to`
 * bytes long (after a realloc growth from `from` bytes). */
void wl_block_touch_range(void *p, size_t from, size_t to, uint64_t tag);

/* Reports a wrong head (first min(8, n) bytes) and exits WL_EXIT_CORRUPTION. */
_Noreturn void wl_block_head_mismatch(const void *p, size_t n, uint64_t tag,
                                      const char *what);

/* Check the first min(8, n) bytes (the tag) against the pattern. */
static inline void wl_block_check_head(const void *p, size_t n, uint64_t tag,
                                       const char *what)
{
    uint64_t w = 0;
    if (n >= 8) {
        memcpy(&w, p, 8);
        if (w == tag)
            return;
    } else {
        memcpy(&w, p, n);
        if (w == (tag & ((1ULL << (8 * n)) - 1)))
            return;
    }
    wl_block_head_mismatch(p, n, tag, what);
}

/* What the workloads call: the whole pattern with --verify full, the touch
 * subset otherwise. */
static inline void wl_block_write(void *p, size_t n, uint64_t tag)
{
    if (wl_verify_full)
        wl_block_fill(p, n, tag);
    else
        wl_block_touch(p, n, tag);
}

static inline void wl_block_write_range(void *p, size_t from, size_t to, uint64_t tag)
{
    if (wl_verify_full)
        wl_block_fill_range(p, from, to, tag);
    else
        wl_block_touch_range(p, from, to, tag);
}

/* Before a block is freed: every byte with --verify full, else its head. */
static inline void wl_block_verify(const void *p, size_t n, uint64_t tag, const char *what)
{
    if (wl_verify_full)
        wl_block_check(p, n, tag, what);
    else
        wl_block_check_head(p, n, tag, what);
}

/* Spare capacity [from, to) of a growable buffer or array that is now `to`
 * bytes long (json, mir): with --verify full it is zeroed; with touch, only
 * the bytes the touch subset covers (first and last 8, one per page) are
 * zeroed, so its pages are real but it costs no memset. */
void wl_zero_spare(void *p, size_t from, size_t to);

/* ---- floor: the trivial recycle of --floor ----------------------------- */

/* Memory set aside for --floor: mapped and faulted in (MAP_POPULATE) before
 * timing, so using it costs no page fault. Fatal on failure; more than
 * WL_FLOOR_MAX_MAP bytes at once is refused as bad input (WL_EXIT_USAGE). */
#define WL_FLOOR_MAX_MAP ((size_t)4 << 30)
void *wl_map_prefaulted(size_t bytes);
void wl_unmap(void *p, size_t bytes);

/* Size classes of the floor bins: 16-byte steps up to 1 KiB, then eight per
 * doubling (at most 12.5 % rounding). */
#define WL_FLOOR_CLASSES 320

static inline unsigned wl_floor_class(size_t n)
{
    if (n <= 1024)
        return n ? (unsigned)((n + 15) >> 4) : 1;
    unsigned e = 63 - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
    return 65 + (e - 10) * 8 + (unsigned)(((n - 1) >> (e - 3)) & 7);
}

static inline size_t wl_floor_class_size(unsigned c)
{
    if (c <= 64)
        return (size_t)c * 16;
    unsigned e = 10 + (c - 65) / 8, sub = (c - 65) % 8;
    return (size_t)(9 + sub) << (e - 3);
}

/* One context's floor allocator (a thread's, or a larson lineage's): LIFO
 * free lists by class, fed by bumping through prefaulted chunks. Owned by
 * one thread at a time; no locks, no atomics. A block freed into a context
 * may have come from another context's chunk. */
typedef struct wl_floor {
    _Alignas(WL_LINE) void *bin[WL_FLOOR_CLASSES];
    char *cur, *end;      /* bump region in the newest chunk */
    void *chunks;         /* list of mapped chunks, for wl_floor_delete */
    uint64_t mapped;      /* bytes mapped so far */
} wl_floor;

/* A context with `reserve` bytes prefaulted; more chunks (64 MiB or the
 * class size, prefaulted) are mapped when it runs out. */
wl_floor *wl_floor_new(size_t reserve);
void wl_floor_delete(wl_floor *f);
void *wl_floor_grow(wl_floor *f, size_t class_size);

static inline void *wl_floor_alloc(wl_floor *f, size_t n)
{
    unsigned c = wl_floor_class(n);
    void *p = f->bin[c];
    if (p) {
        f->bin[c] = *(void **)p;
        return p;
    }
    size_t s = wl_floor_class_size(c);
    if ((size_t)(f->end - f->cur) < s)
        return wl_floor_grow(f, s);
    p = f->cur;
    f->cur += s;
    return p;
}

static inline void wl_floor_free(wl_floor *f, void *p, size_t n)
{
    unsigned c = wl_floor_class(n);
    *(void **)p = f->bin[c];
    f->bin[c] = p;
}

/* Same class: same block; else a new block, the common prefix copied. */
static inline void *wl_floor_realloc(wl_floor *f, void *p, size_t old_n, size_t new_n)
{
    if (wl_floor_class(old_n) == wl_floor_class(new_n))
        return p;
    void *q = wl_floor_alloc(f, new_n);
    memcpy(q, p, old_n < new_n ? old_n : new_n);
    wl_floor_free(f, p, old_n);
    return q;
}

/* ---- live bytes ------------------------------------------------------- */

/* Per-thread (or whole-program) counter. cur/peak are exact for the owner;
 * with a shared counter attached, changes are folded into it in batches. */
typedef struct wl_live_shared {
    _Atomic int64_t cur;
    _Atomic int64_t peak;
} wl_live_shared;

typedef struct wl_live {
    int64_t cur, peak;
    int64_t pending;           /* not yet folded into shared */
    wl_live_shared *shared;    /* NULL for single-threaded use */
    wl_floor *floor;           /* --floor: this context's recycle; NULL: malloc */
} wl_live;

#define WL_LIVE_BATCH ((int64_t)64 * 1024)

void wl_live_flush(wl_live *l);

static inline void wl_live_add(wl_live *l, int64_t n)
{
    l->cur += n;
    if (l->cur > l->peak)
        l->peak = l->cur;
    if (l->shared) {
        l->pending += n;
        if (l->pending >= WL_LIVE_BATCH || l->pending <= -WL_LIVE_BATCH)
            wl_live_flush(l);
    }
}

/* ---- allocation helpers (WL_EXIT_SYSTEM on NULL; count live bytes) ---- */

/* The calls a workload's timed work makes: the process's malloc, free and
 * realloc, or with l->floor set (--floor) that context's floor bins. */

_Noreturn void wl_out_of_memory(size_t old_n, size_t new_n);

static inline void *wl_malloc(wl_live *l, size_t n)
{
    void *p = l->floor ? wl_floor_alloc(l->floor, n) : malloc(n);
    if (__builtin_expect(p == NULL, 0))
        wl_out_of_memory(0, n);
    wl_live_add(l, (int64_t)n);
    return p;
}

static inline void *wl_realloc(wl_live *l, void *p, size_t old_n, size_t new_n)
{
    void *q = l->floor ? wl_floor_realloc(l->floor, p, old_n, new_n) : realloc(p, new_n);
    if (__builtin_expect(q == NULL, 0))
        wl_out_of_memory(old_n, new_n);
    wl_live_add(l, (int64_t)new_n - (int64_t)old_n);
    return q;
}

static inline void wl_free(wl_live *l, void *p, size_t n)
{
    if (l->floor)
        wl_floor_free(l->floor, p, n);
    else
        free(p);
    wl_live_add(l, -(int64_t)n);
}

/* A floor context for `l` when --floor is on (reserve: bytes to prefault),
 * else nothing; wl_live_floor_done releases it. */
void wl_live_floor(wl_live *l, size_t reserve);
void wl_live_floor_done(wl_live *l);

/* n zeroed elements of size bytes starting on a cache line, for per-thread
 * state that each thread writes on every step (declare the struct with
 * _Alignas(WL_LINE) on its first member so elements never share a line:
 * false sharing would measure the workload, not the allocator). Fatal on
 * overflow or out of memory. */
void *wl_calloc_lines(size_t n, size_t size);

/* ---- batches: producer/consumer workloads (xthread, batch_free) -------- */

/* A producer fills a batch: a record (the blocks' addresses and whatever
 * the workload keeps with them) and its blocks; a consumer frees the blocks
 * and then the record. Under --floor a batch lives in one slab of a pool
 * set aside before timing: the record first (rounded up to a cache line),
 * then one place of the largest block size (rounded up to 16 bytes) per
 * block. The producer takes a slab where it would malloc the record, block
 * mallocs are places in it, block frees do nothing, and the consumer puts
 * the slab back where it would free the record: one mutex-protected pop or
 * push per batch. The pool holds as many slabs as batches can be in flight,
 * so it never runs dry (a fatal internal error if it does). Live bytes are
 * counted the same either way. */
typedef struct wl_slab_pool {
    pthread_mutex_t mu;
    char *base;
    size_t slab_bytes, count;
    void **free;
    size_t nfree;
    size_t rec_bytes, stride; /* a slab: the record, then places of stride bytes */
} wl_slab_pool;

/* With --floor, sets aside `count` slabs for records of up to record_bytes
 * followed by up to `blocks` blocks of up to `largest` bytes; more than 4 GiB
 * is refused as bad input, naming `smaller`, the options that shrink it.
 * Without --floor, does nothing. */
void wl_slab_pool_init(wl_slab_pool *sp, size_t count, size_t record_bytes, uint64_t blocks,
                       uint64_t largest, const char *smaller);
void *wl_slab_get(wl_slab_pool *sp);
void wl_slab_put(wl_slab_pool *sp, void *slab);
/* Unmaps the slabs (all must be back); nothing without --floor. */
void wl_slab_pool_done(wl_slab_pool *sp);

static inline void *wl_batch_record_new(wl_slab_pool *sp, wl_live *l, size_t record_bytes)
{
    if (!wl_floor_on)
        return wl_malloc(l, record_bytes);
    wl_live_add(l, (int64_t)record_bytes);
    return wl_slab_get(sp);
}

/* Block j of the batch whose record is `record`. */
static inline void *wl_batch_block_new(const wl_slab_pool *sp, wl_live *l, void *record, uint32_t j,
                                       size_t size)
{
    if (!wl_floor_on)
        return wl_malloc(l, size);
    wl_live_add(l, (int64_t)size);
    return (char *)record + sp->rec_bytes + (size_t)j * sp->stride;
}

static inline void wl_batch_block_free(wl_live *l, void *p, size_t size)
{
    if (!wl_floor_on)
        wl_free(l, p, size);
    else
        wl_live_add(l, -(int64_t)size);
}

static inline void wl_batch_record_free(wl_slab_pool *sp, wl_live *l, void *record, size_t record_bytes)
{
    if (!wl_floor_on) {
        wl_free(l, record, record_bytes);
        return;
    }
    wl_live_add(l, -(int64_t)record_bytes);
    wl_slab_put(sp, record);
}

/* The threads of a producer/consumer workload: each a role, written by its
 * own thread on every step (one cache line apart). */
typedef struct wl_role {
    _Alignas(WL_LINE) pthread_t th;
    uint32_t index;           /* among the producers, or among the consumers */
    wl_live live;             /* folded into the team's shared counter */
    uint64_t sum;             /* sum of mix(tag ^ size) of the blocks made or freed */
    uint64_t blocks, batches; /* made or freed */
} wl_role;

/* What the producers, or the consumers, did in all. */
typedef struct wl_role_totals {
    uint64_t sum, blocks, batches;
    int64_t live;             /* live bytes left (frees count negative) */
} wl_role_totals;

typedef struct wl_team {
    wl_role *role;            /* the producers, then the consumers */
    uint32_t producers, consumers;
    wl_live_shared live;      /* the peak is the workload's peak_live_bytes */
    wl_role_totals made, freed; /* filled by wl_team_run */
} wl_team;

void wl_team_init(wl_team *t, uint32_t producers, uint32_t consumers);
/* Starts every role, producer(role) or consumer(role) (each calls
 * wl_start_wait() before its work), and waits for all; returns the seconds
 * from the start line until the last has finished, and fills made and freed. */
double wl_team_run(wl_team *t, void *(*producer)(void *), void *(*consumer)(void *));
void wl_team_done(wl_team *t);

/* ---- slots of large blocks (large, large_reuse) ------------------------ */

/* A slot holds one block or none. Under --floor each slot has a buffer of
 * the largest size, mapped and faulted in before timing: a malloc or realloc
 * in a slot returns its buffer and a free does nothing, so the floor is the
 * writing and checking alone, without page faults. Live bytes are counted
 * the same either way. */
typedef struct wl_slot {
    void *p;
    size_t size;
    uint64_t tag;
} wl_slot;

typedef struct wl_slots {
    wl_slot *slot;       /* n slots, empty at first */
    uint64_t n;
    wl_live live;
    char *floor_buf;     /* --floor: one buffer of floor_stride bytes per slot */
    size_t floor_stride;
} wl_slots;

/* n empty slots for blocks of up to `largest` bytes. */
void wl_slots_init(wl_slots *ss, uint64_t n, uint64_t largest);
/* A new block of `size` bytes with `tag` in the empty slot s, written
 * (wl_block_write). */
void wl_slot_fill(wl_slots *ss, wl_slot *s, size_t size, uint64_t tag);
/* s's block grown to `size` bytes by realloc: the old part checked (`what`
 * names it in a corruption message), the new part written. */
void wl_slot_grow(wl_slots *ss, wl_slot *s, size_t size, const char *what);
/* s's block checked and freed, s left empty; returns h folded with the
 * block's tag ^ size. */
uint64_t wl_slot_release(wl_slots *ss, wl_slot *s, uint64_t h, const char *what);
/* Every full slot released, in slot order. */
uint64_t wl_slots_release_all(wl_slots *ss, uint64_t h, const char *what);
/* The slots and the floor's buffers given back (the blocks must be). */
void wl_slots_done(wl_slots *ss);

/* ---- threads ---------------------------------------------------------- */

/* pthread_create; "pthread_create: <reason>" and WL_EXIT_SYSTEM if it fails. */
void wl_thread_start(pthread_t *th, void *(*fn)(void *), void *arg);

/* The start line of a multi-threaded workload, so the timed span begins
 * when every thread exists: wl_start_line(n) before starting n threads;
 * each thread calls wl_start_wait() before its work, and so does the main
 * thread once it has started them all (then it takes the time). */
void wl_start_line(unsigned threads);
void wl_start_wait(void);
void wl_start_line_done(void);

/* ---- timing ----------------------------------------------------------- */

double wl_now(void); /* CLOCK_MONOTONIC seconds */

/* ---- report ----------------------------------------------------------- */

typedef struct wl_report {
    int64_t threads;
    uint64_t ops;
    const char *op_unit;
    double seconds;
    int64_t peak_live_bytes;
    int64_t final_live_bytes;
    uint64_t checksum;
    /* extra numeric keys, e.g. ns_per_pair; name NULL ends the list */
    struct { const char *name; double value; } extra[8];
} wl_report;

/* Path of the shared object serving malloc (dlsym(RTLD_DEFAULT) + dladdr). */
const char *wl_malloc_from(void);

/* Print the final JSON line (last line of stdout) and flush. */
void wl_report_print(const wl_report *r);

/* The --classic mode of json and mir, the shape of earlier published
 * figures: spec's "classic-iters" times, allocate one block of `size` bytes,
 * write it and check it (wl_block_write / wl_block_verify), free it; prints
 * the report. `what` names the
 * block in a corruption message, `op_unit` the op in the report. */
int wl_run_classic(wl_spec *spec, wl_live *live, size_t size, const char *what,
                   const char *op_unit);

#endif /* WL_COMMON_H */
