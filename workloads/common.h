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
 *
 * Invariants
 *   - checksums never depend on addresses, timing or the allocator;
 *   - every byte of a block is written before the block counts as live;
 *   - errors in user input exit 2, corrupted blocks exit 3.
 */
#ifndef WL_COMMON_H
#define WL_COMMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- options ---------------------------------------------------------- */

typedef enum wl_opt_kind {
    WL_INT,  /* int64, accepts k/m/g binary suffixes */
    WL_REAL, /* double */
    WL_FLAG  /* no value; --name=0 / --name=1 also accepted */
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

/* Parse argv into the table; prints help and exits 0 on --help; exits 2 with
 * one line on stderr on any bad input. Remembers the spec for wl_usage_error
 * and the report. */
void wl_parse(wl_spec *spec, int argc, char **argv);
wl_opt *wl_opt_find(wl_spec *spec, const char *name);
int64_t wl_int(wl_spec *spec, const char *name);
/* The --min-size and --max-size options (inclusive range); exits with a usage
 * error when min is larger than max. */
void wl_size_range(wl_spec *spec, uint64_t *lo, uint64_t *hi);
double wl_real(wl_spec *spec, const char *name);

/* "<workload>: <message>" on stderr, exit 2 (bad input). */
_Noreturn void wl_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* "<workload>: <message>" on stderr, exit 1 (system failure, e.g. ENOMEM). */
_Noreturn void wl_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* "<workload>: corrupted block ..." on stderr, exit 3. */
_Noreturn void wl_corrupted(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

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

/* ---- blocks: fill and check ------------------------------------------- */

/* Write every byte of p[0..n): the tag in the first min(8, n) bytes, then
 * its low byte. */
void wl_block_fill(void *p, size_t n, uint64_t tag);
/* Write bytes [from, to) the way wl_block_fill would have (used after a
 * realloc growth). */
void wl_block_fill_range(void *p, size_t from, size_t to, uint64_t tag);
/* Check p[0..n) against the fill; on mismatch report `what` and exit 3. */
void wl_block_check(const void *p, size_t n, uint64_t tag, const char *what);

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

/* ---- allocation helpers (exit 1 on NULL; count live bytes) ------------ */

void *wl_malloc(wl_live *l, size_t n);

/* n zeroed elements of size bytes starting on a cache line, for per-thread
 * state that each thread writes on every step (declare the struct with
 * _Alignas(WL_LINE) on its first member so elements never share a line:
 * false sharing would measure the workload, not the allocator). Fatal on
 * overflow or out of memory. */
#define WL_LINE 64
void *wl_calloc_lines(size_t n, size_t size);
void *wl_realloc(wl_live *l, void *p, size_t old_n, size_t new_n);
void wl_free(wl_live *l, void *p, size_t n);

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
 * touch and check every byte, free it; prints the report. `what` names the
 * block in a corruption message, `op_unit` the op in the report. */
int wl_run_classic(wl_spec *spec, wl_live *live, size_t size, const char *what,
                   const char *op_unit);

#endif /* WL_COMMON_H */
