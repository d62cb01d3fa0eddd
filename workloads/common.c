/* common.c - option parsing, JSON report, live-byte accounting, block
 * fill/check and the dladdr check shared by every workload. See common.h. */
#include "common.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <unistd.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static wl_spec *g_spec;

bool wl_verify_full;
bool wl_floor_on;

/* Options every workload takes, listed after its own in --help and in the
 * report's params. */
static const char *const verify_choices[] = { "touch", "full", NULL };
static wl_opt common_opts[] = {
    { "verify", WL_CHOICE, 0, 0, 1,
      "touch: write the first and last 8 bytes and one byte per 4 KiB page of "
      "every block, check the first 8 before free; full: write and check every byte", 0, 0 },
    { "floor", WL_FLAG, 0, 0, 1,
      "replace malloc/free/realloc by a trivial internal recycle, to time the "
      "workload's own work (its cost floor)", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static const char *const *choices_of(const wl_opt *o)
{
    return o == &common_opts[0] ? verify_choices : NULL;
}

static const char *workload_name(void)
{
    return g_spec ? g_spec->name : "workload";
}

/* The first error reported wins: a second thread finding a fault at the same
 * moment (both threads of random_xthread checking blocks) waits here for the
 * first one's exit, so stderr gets one whole message (one write) and exit runs
 * once. */
static _Noreturn void die(int code, const char *prefix, const char *fmt, va_list ap)
{
    static atomic_flag reporting = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&reporting))
        for (;;)
            pause();
    char msg[1024];
    int n = snprintf(msg, sizeof msg, "%s: %s", workload_name(), prefix);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof msg - 1) {
        int m = vsnprintf(msg + n, sizeof msg - 1 - (size_t)n, fmt, ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n > sizeof msg - 2)
        n = (int)sizeof msg - 2;
    msg[n++] = '\n';
    fflush(stdout);
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = write(STDERR_FILENO, msg + off, (size_t)n - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    exit(code);
}

void wl_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    die(WL_EXIT_USAGE, "", fmt, ap);
}

void wl_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    die(WL_EXIT_SYSTEM, "", fmt, ap);
}

void wl_corrupted(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    die(WL_EXIT_CORRUPTION, "corrupted block ", fmt, ap);
}

/* ---- options ---------------------------------------------------------- */

/* Compare an option name with user text of length n, '_' matching '-'. */
static bool name_matches(const char *name, const char *text, size_t n)
{
    if (strlen(name) != n)
        return false;
    for (size_t k = 0; k < n; k++) {
        char c = text[k] == '_' ? '-' : text[k];
        if (c != name[k])
            return false;
    }
    return true;
}

static wl_opt *find_n(wl_spec *spec, const char *text, size_t n)
{
    for (wl_opt *o = spec->opts; o->name; o++)
        if (name_matches(o->name, text, n))
            return o;
    for (wl_opt *o = common_opts; o->name; o++)
        if (name_matches(o->name, text, n))
            return o;
    return NULL;
}

wl_opt *wl_opt_find(wl_spec *spec, const char *name)
{
    wl_opt *o = find_n(spec, name, strlen(name));
    if (!o)
        wl_fatal("internal error: no option '%s'", name);
    return o;
}

int64_t wl_int(wl_spec *spec, const char *name)
{
    return wl_opt_find(spec, name)->i;
}

double wl_real(wl_spec *spec, const char *name)
{
    return wl_opt_find(spec, name)->d;
}

static void print_value(FILE *f, const wl_opt *o, double v)
{
    if (o->kind == WL_REAL)
        fprintf(f, "%g", v);
    else
        fprintf(f, "%" PRId64, (int64_t)v);
}

static void print_opt_help(const wl_opt *o)
{
    char left[64];
    const char *const *ch = choices_of(o);
    if (ch) {
        size_t n = (size_t)snprintf(left, sizeof left, "--%s ", o->name);
        for (const char *const *c = ch; *c && n < sizeof left; c++)
            n += (size_t)snprintf(left + n, sizeof left - n, "%s%s", c == ch ? "" : "|", *c);
        printf("  %-24s %s (default %s)\n", left, o->help, ch[(int64_t)o->def]);
        return;
    }
    snprintf(left, sizeof left, "--%s%s", o->name,
             o->kind == WL_FLAG ? "" : o->kind == WL_REAL ? " X" : " N");
    printf("  %-24s %s", left, o->help);
    if (o->kind == WL_FLAG) {
        printf(" (flag, default off)\n");
    } else {
        printf(" (default ");
        print_value(stdout, o, o->def);
        printf(", range ");
        print_value(stdout, o, o->min);
        printf("..");
        print_value(stdout, o, o->max);
        printf(")\n");
    }
}

static _Noreturn void print_help(const wl_spec *spec)
{
    printf("usage: %s [options]\n", spec->name);
    if (spec->positional) {
        printf("   or: %s", spec->name);
        for (const char *const *p = spec->positional; *p; p++)
            printf(" %s", *p);
        printf("\n");
    }
    printf("%s\n\noptions (--name N or --name=N; integers accept k/m/g suffixes):\n",
           spec->summary);
    for (const wl_opt *o = spec->opts; o->name; o++)
        print_opt_help(o);
    printf("\ncommon options (every workload):\n");
    for (const wl_opt *o = common_opts; o->name; o++)
        print_opt_help(o);
    printf("  %-24s %s\n", "--help", "this text");
    printf("\nThe last line of output is one JSON object (see workloads/README.md).\n");
    exit(WL_EXIT_OK);
}

static void set_value(wl_opt *o, const char *text)
{
    char *end;
    if (o->kind == WL_CHOICE) {
        const char *const *ch = choices_of(o);
        for (int64_t k = 0; ch[k]; k++)
            if (strcmp(text, ch[k]) == 0) {
                o->i = k;
                return;
            }
        char names[128] = "";
        for (const char *const *c = ch; *c; c++) {
            if (c != ch)
                strncat(names, ", ", sizeof names - strlen(names) - 1);
            strncat(names, *c, sizeof names - strlen(names) - 1);
        }
        wl_usage_error("--%s must be one of %s, got '%s'", o->name, names, text);
    }
    if (o->kind == WL_FLAG) {
        if (strcmp(text, "0") == 0)
            o->i = 0;
        else if (strcmp(text, "1") == 0)
            o->i = 1;
        else
            wl_usage_error("--%s is a flag; it takes no value or =0/=1, got '%s'",
                           o->name, text);
        return;
    }
    if (*text == '\0')
        wl_usage_error("--%s needs a number, got an empty string", o->name);
    errno = 0;
    double v;
    if (o->kind == WL_INT) {
        long long n = strtoll(text, &end, 10);
        if (end == text || (*end && end[1]) ||
            (*end && !strchr("kKmMgG", *end)))
            wl_usage_error("--%s needs an integer, got '%s'", o->name, text);
        if (errno == ERANGE)
            wl_usage_error("--%s: '%s' is out of range", o->name, text);
        int shift = 0;
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: break;
        }
        if (shift && (n > (INT64_MAX >> shift) || n < -(INT64_MAX >> shift)))
            wl_usage_error("--%s: '%s' is out of range", o->name, text);
        o->i = (int64_t)n * ((int64_t)1 << shift);
        v = (double)o->i;
    } else {
        v = strtod(text, &end);
        if (end == text || *end)
            wl_usage_error("--%s needs a number, got '%s'", o->name, text);
        if (errno == ERANGE || !isfinite(v))
            wl_usage_error("--%s: '%s' is out of range", o->name, text);
        o->d = v;
    }
    if (v < o->min || v > o->max) {
        char lo[40], hi[40];
        if (o->kind == WL_REAL) {
            snprintf(lo, sizeof lo, "%g", o->min);
            snprintf(hi, sizeof hi, "%g", o->max);
        } else {
            snprintf(lo, sizeof lo, "%" PRId64, (int64_t)o->min);
            snprintf(hi, sizeof hi, "%" PRId64, (int64_t)o->max);
        }
        wl_usage_error("--%s must be between %s and %s, got '%s'", o->name, lo, hi, text);
    }
}

void wl_parse(wl_spec *spec, int argc, char **argv)
{
    g_spec = spec;
    for (wl_opt *o = spec->opts; o->name; o++) {
        o->i = (int64_t)o->def;
        o->d = o->def;
    }
    for (wl_opt *o = common_opts; o->name; o++) {
        o->i = (int64_t)o->def;
        o->d = o->def;
    }
    const char *pos[16];
    int npos = 0;
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            print_help(spec);
        if (a[0] == '-' && a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t n = eq ? (size_t)(eq - name) : strlen(name);
            wl_opt *o = find_n(spec, name, n);
            if (!o)
                wl_usage_error("unknown option '%.*s' (see --help)", (int)(n + 2), a);
            if (eq)
                set_value(o, eq + 1);
            else if (o->kind == WL_FLAG)
                o->i = 1;
            else if (k + 1 < argc)
                set_value(o, argv[++k]);
            else
                wl_usage_error("--%s needs a value", o->name);
        } else if (a[0] == '-' && a[1] != '\0' && !(a[1] >= '0' && a[1] <= '9')) {
            wl_usage_error("unknown option '%s' (see --help)", a);
        } else {
            if (!spec->positional)
                wl_usage_error("unexpected argument '%s' (options are --name N; see --help)", a);
            if (npos == (int)(sizeof pos / sizeof pos[0]))
                wl_usage_error("too many arguments");
            pos[npos++] = a;
        }
    }
    if (npos > 0) {
        int want = 0;
        while (spec->positional[want])
            want++;
        if (npos != want) {
            char names[256] = "";
            for (int k = 0; k < want; k++) {
                strncat(names, spec->positional[k], sizeof names - strlen(names) - 2);
                if (k + 1 < want)
                    strncat(names, " ", sizeof names - strlen(names) - 1);
            }
            wl_usage_error("expected %d positional arguments (%s), got %d", want, names, npos);
        }
        for (int k = 0; k < npos; k++)
            set_value(wl_opt_find(spec, spec->positional[k]), pos[k]);
    }
    wl_verify_full = strcmp(verify_choices[common_opts[0].i], "full") == 0;
    wl_floor_on = common_opts[1].i != 0;
}

/* ---- random ----------------------------------------------------------- */

uint64_t wl_log_range(wl_rng *r, uint64_t lo, uint64_t hi)
{
    if (lo >= hi)
        return lo;
    double l = log((double)lo), h = log((double)hi + 1.0);
    uint64_t v = (uint64_t)exp(l + (h - l) * wl_unit(r));
    if (v < lo)
        v = lo;
    if (v > hi)
        v = hi;
    return v;
}

/* ---- checksums -------------------------------------------------------- */

uint64_t wl_hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t w;
        memcpy(&w, b + k, 8);
        h = wl_fold(h, w);
    }
    uint64_t w = 0;
    for (; k < n; k++)
        w = (w << 8) | b[k];
    return wl_fold(h, w ^ ((uint64_t)n << 56));
}

/* ---- blocks ----------------------------------------------------------- */

static inline unsigned char tag_byte(uint64_t tag, size_t k)
{
    return k < 8 ? (unsigned char)(tag >> (8 * k)) : (unsigned char)(tag >> 56);
}

void wl_block_fill(void *p, size_t n, uint64_t tag)
{
    unsigned char *b = p;
    if (n >= 8) {
        memcpy(b, &tag, 8); /* little-endian: byte k = tag >> 8k */
        memset(b + 8, (int)tag_byte(tag, 8), n - 8);
    } else {
        for (size_t k = 0; k < n; k++)
            b[k] = tag_byte(tag, k);
    }
}

void wl_block_fill_range(void *p, size_t from, size_t to, uint64_t tag)
{
    unsigned char *b = p;
    size_t k = from;
    for (; k < to && k < 8; k++)
        b[k] = tag_byte(tag, k);
    if (k < to)
        memset(b + k, (int)tag_byte(tag, 8), to - k);
}

/* The first min(8, n) bytes (the tag), byte by byte: the first wrong one is
 * reported as corruption. */
static void check_head_bytes(const unsigned char *b, size_t n, uint64_t tag, const char *what)
{
    size_t head = n < 8 ? n : 8;
    for (size_t k = 0; k < head; k++)
        if (b[k] != tag_byte(tag, k))
            wl_corrupted("(%s, %zu bytes): byte %zu is 0x%02x, expected 0x%02x",
                         what, n, k, b[k], tag_byte(tag, k));
}

void wl_block_check(const void *p, size_t n, uint64_t tag, const char *what)
{
    const unsigned char *b = p;
    check_head_bytes(b, n, tag, what);
    if (n <= 8)
        return;
    unsigned char fb = tag_byte(tag, 8);
    uint64_t want = 0x0101010101010101ULL * fb;
    size_t k = 8;
    for (; k + 32 <= n; k += 32) {
        uint64_t w[4];
        memcpy(w, b + k, 32);
        if (((w[0] ^ want) | (w[1] ^ want) | (w[2] ^ want) | (w[3] ^ want)) != 0)
            break;
    }
    for (; k < n; k++)
        if (b[k] != fb)
            wl_corrupted("(%s, %zu bytes): byte %zu is 0x%02x, expected 0x%02x",
                         what, n, k, b[k], fb);
}

void wl_touch_pages(unsigned char *b, size_t end, unsigned char fill)
{
    for (size_t k = WL_PAGE; k < end; k += WL_PAGE)
        b[k] = fill;
}

void wl_block_touch_range(void *p, size_t from, size_t to, uint64_t tag)
{
    unsigned char *b = p;
    if (to < 16) {
        wl_block_fill_range(p, from, to, tag);
        return;
    }
    if (from < 8)
        wl_block_fill_range(p, from, 8, tag);
    size_t tail = to - 8;
    size_t k = from < WL_PAGE ? WL_PAGE : (from + WL_PAGE - 1) / WL_PAGE * WL_PAGE;
    for (; k < tail; k += WL_PAGE)
        b[k] = (unsigned char)(tag >> 56);
    wl_block_fill_range(p, from > tail ? from : tail, to, tag);
}

void wl_zero_spare(void *p, size_t from, size_t to)
{
    unsigned char *b = p;
    if (from >= to)
        return;
    if (wl_verify_full || to < 16) {
        memset(b + from, 0, to - from);
        return;
    }
    if (from < 8)
        memset(b + from, 0, 8 - from);
    size_t tail = to - 8;
    size_t k = from < WL_PAGE ? WL_PAGE : (from + WL_PAGE - 1) / WL_PAGE * WL_PAGE;
    for (; k < tail; k += WL_PAGE)
        b[k] = 0;
    size_t t0 = from > tail ? from : tail;
    memset(b + t0, 0, to - t0);
}

void wl_block_head_mismatch(const void *p, size_t n, uint64_t tag, const char *what)
{
    check_head_bytes(p, n, tag, what);
    wl_fatal("internal error: head of %s reported wrong but matches", what);
}

/* ---- live bytes ------------------------------------------------------- */

void wl_live_flush(wl_live *l)
{
    if (!l->shared || l->pending == 0)
        return;
    int64_t cur = atomic_fetch_add_explicit(&l->shared->cur, l->pending,
                                            memory_order_relaxed) + l->pending;
    l->pending = 0;
    int64_t peak = atomic_load_explicit(&l->shared->peak, memory_order_relaxed);
    while (cur > peak &&
           !atomic_compare_exchange_weak_explicit(&l->shared->peak, &peak, cur,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

void wl_out_of_memory(size_t old_n, size_t new_n)
{
    if (old_n)
        wl_fatal("out of memory: realloc(%zu -> %zu) returned NULL", old_n, new_n);
    wl_fatal("out of memory: malloc(%zu) returned NULL", new_n);
}

void wl_live_floor(wl_live *l, size_t reserve)
{
    if (wl_floor_on)
        l->floor = wl_floor_new(reserve);
}

void wl_live_floor_done(wl_live *l)
{
    if (l->floor)
        wl_floor_delete(l->floor);
    l->floor = NULL;
}

/* ---- floor ------------------------------------------------------------ */

void *wl_map_prefaulted(size_t bytes)
{
    if (bytes > WL_FLOOR_MAX_MAP)
        wl_usage_error("--floor would set aside %.1f GiB at once (at most %.0f GiB); "
                       "use smaller sizes or counts", (double)bytes / (1ULL << 30),
                       (double)WL_FLOOR_MAX_MAP / (1ULL << 30));
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED)
        wl_fatal("--floor: mmap of %zu bytes failed: %s", bytes, strerror(errno));
    return p;
}

void wl_unmap(void *p, size_t bytes)
{
    if (p && munmap(p, bytes) != 0)
        wl_fatal("munmap of %zu bytes failed: %s", bytes, strerror(errno));
}

/* Each chunk starts with this header; blocks follow it. */
typedef struct floor_chunk {
    void *next;
    size_t bytes;
} floor_chunk;

#define FLOOR_CHUNK_MIN ((size_t)64 << 20)

static void floor_map_chunk(wl_floor *f, size_t bytes)
{
    bytes = (bytes + sizeof(floor_chunk) + WL_PAGE - 1) / WL_PAGE * WL_PAGE;
    floor_chunk *c = wl_map_prefaulted(bytes);
    c->next = f->chunks;
    c->bytes = bytes;
    f->chunks = c;
    f->mapped += bytes;
    f->cur = (char *)c + 64; /* blocks start on a cache line */
    f->end = (char *)c + bytes;
}

wl_floor *wl_floor_new(size_t reserve)
{
    wl_floor *f = wl_calloc_lines(1, sizeof *f);
    floor_map_chunk(f, reserve < ((size_t)1 << 20) ? (size_t)1 << 20 : reserve);
    return f;
}

void *wl_floor_grow(wl_floor *f, size_t class_size)
{
    floor_map_chunk(f, class_size > FLOOR_CHUNK_MIN ? class_size : FLOOR_CHUNK_MIN);
    void *p = f->cur;
    f->cur += class_size;
    return p;
}

void wl_floor_delete(wl_floor *f)
{
    for (floor_chunk *c = f->chunks, *next; c; c = next) {
        next = c->next;
        wl_unmap(c, c->bytes);
    }
    free(f);
}

/* ---- batches ---------------------------------------------------------- */

void wl_slab_pool_init(wl_slab_pool *sp, size_t count, size_t record_bytes, uint64_t blocks,
                       uint64_t largest, const char *smaller)
{
    if (!wl_floor_on)
        return;
    sp->rec_bytes = (record_bytes + WL_LINE - 1) / WL_LINE * WL_LINE;
    sp->stride = ((size_t)largest + 15) / 16 * 16;
    double set_aside = (double)count * ((double)sp->rec_bytes + (double)blocks * (double)sp->stride);
    if (set_aside > 4.0 * (1ULL << 30))
        wl_usage_error("--floor would set aside %.1f GiB of slabs; use a smaller %s",
                       set_aside / (1ULL << 30), smaller);
    size_t bytes, slab_bytes = sp->rec_bytes + (size_t)blocks * sp->stride;
    slab_bytes = (slab_bytes + WL_LINE - 1) / WL_LINE * WL_LINE;
    if (count == 0 || __builtin_mul_overflow(count, slab_bytes, &bytes))
        wl_fatal("--floor: %zu slabs of %zu bytes are too many", count, slab_bytes);
    pthread_mutex_init(&sp->mu, NULL);
    sp->base = wl_map_prefaulted(bytes);
    sp->slab_bytes = slab_bytes;
    sp->count = count;
    sp->free = malloc(count * sizeof *sp->free);
    if (!sp->free)
        wl_fatal("out of memory for the floor's slab pool");
    for (size_t k = 0; k < count; k++)
        sp->free[k] = sp->base + (count - 1 - k) * slab_bytes;
    sp->nfree = count;
}

void *wl_slab_get(wl_slab_pool *sp)
{
    pthread_mutex_lock(&sp->mu);
    if (sp->nfree == 0)
        wl_fatal("internal error: --floor slab pool of %zu slabs ran dry", sp->count);
    void *s = sp->free[--sp->nfree];
    pthread_mutex_unlock(&sp->mu);
    return s;
}

void wl_slab_put(wl_slab_pool *sp, void *slab)
{
    pthread_mutex_lock(&sp->mu);
    sp->free[sp->nfree++] = slab;
    pthread_mutex_unlock(&sp->mu);
}

void wl_slab_pool_done(wl_slab_pool *sp)
{
    if (!wl_floor_on)
        return;
    if (sp->nfree != sp->count)
        wl_fatal("internal error: %zu of %zu floor slabs not returned",
                 sp->count - sp->nfree, sp->count);
    wl_unmap(sp->base, sp->count * sp->slab_bytes);
    free(sp->free);
    pthread_mutex_destroy(&sp->mu);
}

void wl_team_init(wl_team *t, uint32_t producers, uint32_t consumers)
{
    *t = (wl_team){ .producers = producers, .consumers = consumers };
    t->role = wl_calloc_lines((size_t)producers + consumers, sizeof *t->role);
}

double wl_team_run(wl_team *t, void *(*producer)(void *), void *(*consumer)(void *))
{
    uint32_t nt = t->producers + t->consumers;
    wl_start_line(nt);
    for (uint32_t k = 0; k < nt; k++) {
        wl_role *ro = &t->role[k];
        ro->index = k < t->producers ? k : k - t->producers;
        ro->live = (wl_live){ .shared = &t->live };
        wl_thread_start(&ro->th, k < t->producers ? producer : consumer, ro);
    }
    wl_start_wait();
    double t0 = wl_now();
    for (uint32_t k = 0; k < nt; k++)
        pthread_join(t->role[k].th, NULL);
    double secs = wl_now() - t0;
    wl_start_line_done();
    for (uint32_t k = 0; k < nt; k++) {
        wl_role_totals *to = k < t->producers ? &t->made : &t->freed;
        to->sum += t->role[k].sum;
        to->blocks += t->role[k].blocks;
        to->batches += t->role[k].batches;
        to->live += t->role[k].live.cur;
    }
    return secs;
}

void wl_team_done(wl_team *t)
{
    free(t->role);
    t->role = NULL;
}

/* ---- slots of large blocks -------------------------------------------- */

void wl_slots_init(wl_slots *ss, uint64_t n, uint64_t largest)
{
    *ss = (wl_slots){ .n = n };
    ss->slot = calloc(n, sizeof *ss->slot);
    if (!ss->slot)
        wl_fatal("out of memory for %llu slots", (unsigned long long)n);
    if (!wl_floor_on)
        return;
    ss->floor_stride = (size_t)(largest + WL_PAGE - 1) / WL_PAGE * WL_PAGE;
    if (n > SIZE_MAX / ss->floor_stride)
        wl_usage_error("--floor: %llu slots of %llu bytes do not fit in memory",
                       (unsigned long long)n, (unsigned long long)largest);
    ss->floor_buf = wl_map_prefaulted(n * ss->floor_stride);
}

void wl_slot_fill(wl_slots *ss, wl_slot *s, size_t size, uint64_t tag)
{
    s->size = size;
    s->tag = tag;
    if (ss->floor_buf) {
        s->p = ss->floor_buf + (size_t)(s - ss->slot) * ss->floor_stride;
        wl_live_add(&ss->live, (int64_t)size);
    } else {
        s->p = wl_malloc(&ss->live, size);
    }
    wl_block_write(s->p, s->size, s->tag);
}

void wl_slot_grow(wl_slots *ss, wl_slot *s, size_t size, const char *what)
{
    size_t old = s->size;
    if (ss->floor_buf)
        wl_live_add(&ss->live, (int64_t)size - (int64_t)old);
    else
        s->p = wl_realloc(&ss->live, s->p, old, size);
    wl_block_verify(s->p, old, s->tag, what);
    wl_block_write_range(s->p, old, size, s->tag);
    s->size = size;
}

uint64_t wl_slot_release(wl_slots *ss, wl_slot *s, uint64_t h, const char *what)
{
    wl_block_verify(s->p, s->size, s->tag, what);
    if (ss->floor_buf)
        wl_live_add(&ss->live, -(int64_t)s->size);
    else
        wl_free(&ss->live, s->p, s->size);
    s->p = NULL;
    return wl_fold(h, s->tag ^ s->size);
}

uint64_t wl_slots_release_all(wl_slots *ss, uint64_t h, const char *what)
{
    for (uint64_t k = 0; k < ss->n; k++)
        if (ss->slot[k].p)
            h = wl_slot_release(ss, &ss->slot[k], h, what);
    return h;
}

void wl_slots_done(wl_slots *ss)
{
    free(ss->slot);
    if (ss->floor_buf)
        wl_unmap(ss->floor_buf, ss->n * ss->floor_stride);
    ss->slot = NULL;
    ss->floor_buf = NULL;
}

/* ---- threads ---------------------------------------------------------- */

void wl_thread_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
    int e = pthread_create(th, NULL, fn, arg);
    if (e)
        wl_fatal("pthread_create: %s", strerror(e));
}

static pthread_barrier_t g_start_line;

void wl_start_line(unsigned threads)
{
    pthread_barrier_init(&g_start_line, NULL, threads + 1);
}

void wl_start_wait(void)
{
    pthread_barrier_wait(&g_start_line);
}

void wl_start_line_done(void)
{
    pthread_barrier_destroy(&g_start_line);
}

/* ---- timing ----------------------------------------------------------- */

double wl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- report ----------------------------------------------------------- */

const char *wl_malloc_from(void)
{
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info info;
    if (sym && dladdr(sym, &info) && info.dli_fname && info.dli_fname[0])
        return info.dli_fname;
    return "unknown";
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double v)
{
    if (!isfinite(v))
        v = 0;
    if (v == floor(v) && fabs(v) < 1e15)
        fprintf(f, "%.0f", v);
    else
        fprintf(f, "%.9g", v);
}

void wl_report_print(const wl_report *r)
{
    const wl_spec *spec = g_spec;
    double secs = r->seconds > 0 ? r->seconds : 1e-9;
    double ns_per_op = r->ops ? secs * 1e9 / (double)r->ops : 0;
    double ops_per_sec = (double)r->ops / secs;
    const char *from = wl_malloc_from();

    const char *verify = verify_choices[common_opts[0].i];

    printf("%s: %" PRIu64 " ops (%s) in %.3f s, %.2f ns/op, peak live %" PRId64
           " bytes, verify %s%s, malloc from %s\n",
           spec->name, r->ops, r->op_unit, r->seconds, ns_per_op,
           r->peak_live_bytes, verify, wl_floor_on ? ", FLOOR (no malloc in the timed work)" : "",
           from);

    printf("{\"workload\":");
    json_string(stdout, spec->name);
    printf(",\"params\":{");
    bool first = true;
    for (int table = 0; table < 2; table++) {
        for (const wl_opt *o = table ? common_opts : spec->opts; o->name; o++) {
            printf("%s", first ? "" : ",");
            first = false;
            json_string(stdout, o->name);
            if (o->kind == WL_FLAG)
                printf(":%s", o->i ? "true" : "false");
            else if (o->kind == WL_REAL)
                printf(":%.9g", o->d);
            else if (o->kind == WL_CHOICE)
                printf(":\"%s\"", choices_of(o)[o->i]);
            else
                printf(":%" PRId64, o->i);
        }
    }
    printf("},\"seed\":%" PRId64, wl_opt_find(g_spec, "seed")->i);
    printf(",\"verify\":\"%s\",\"floor\":%s", verify, wl_floor_on ? "true" : "false");
    printf(",\"threads\":%" PRId64, r->threads);
    printf(",\"ops\":%" PRIu64 ",\"op_unit\":", r->ops);
    json_string(stdout, r->op_unit);
    printf(",\"seconds\":");
    json_number(stdout, r->seconds);
    printf(",\"ns_per_op\":");
    json_number(stdout, ns_per_op);
    printf(",\"ops_per_sec\":");
    json_number(stdout, ops_per_sec);
    printf(",\"peak_live_bytes\":%" PRId64 ",\"final_live_bytes\":%" PRId64,
           r->peak_live_bytes, r->final_live_bytes);
    printf(",\"checksum\":\"%016" PRIx64 "\"", r->checksum);
    for (size_t k = 0; k < sizeof r->extra / sizeof r->extra[0] && r->extra[k].name; k++) {
        printf(",");
        json_string(stdout, r->extra[k].name);
        printf(":");
        json_number(stdout, r->extra[k].value);
    }
    printf(",\"malloc_from\":");
    json_string(stdout, from);
    printf("}\n");
    fflush(stdout);
}

void *wl_calloc_lines(size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes) || bytes > SIZE_MAX - WL_LINE)
        wl_fatal("per-thread state of %zu x %zu bytes is too large", n, size);
    bytes = (bytes + WL_LINE - 1) / WL_LINE * WL_LINE;
    void *p = aligned_alloc(WL_LINE, bytes ? bytes : WL_LINE);
    if (p == NULL)
        wl_fatal("out of memory for per-thread state");
    memset(p, 0, bytes);
    return p;
}

int wl_run_classic(wl_spec *spec, wl_live *live, size_t size, const char *what,
                   const char *op_unit)
{
    int64_t iters = wl_int(spec, "classic-iters");
    wl_live_floor(live, size);
    wl_rng r = wl_rng_stream((uint64_t)wl_int(spec, "seed"), 1);
    uint64_t tag_base = wl_next(&r), h = 0;
    double t0 = wl_now();
    for (int64_t i = 0; i < iters; i++) {
        uint64_t tag = tag_base + (uint64_t)i * 0x9e3779b97f4a7c15ULL;
        char *p = wl_malloc(live, size);
        wl_block_write(p, size, tag);
        wl_block_verify(p, size, tag, what);
        wl_free(live, p, size);
        h = wl_fold(h, tag);
    }
    double secs = wl_now() - t0;
    wl_report rep = {
        .threads = 1,
        .ops = (uint64_t)iters,
        .op_unit = op_unit,
        .seconds = secs,
        .peak_live_bytes = live->peak,
        .final_live_bytes = live->cur,
        .checksum = h,
    };
    wl_live_floor_done(live);
    wl_report_print(&rep);
    return 0;
}

void wl_size_range(wl_spec *spec, uint64_t *lo, uint64_t *hi)
{
    *lo = (uint64_t)wl_int(spec, "min-size");
    *hi = (uint64_t)wl_int(spec, "max-size");
    if (*lo > *hi)
        wl_usage_error("--min-size (%llu) is larger than --max-size (%llu)",
                       (unsigned long long)*lo, (unsigned long long)*hi);
}
