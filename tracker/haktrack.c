/* haktrack.c - libhaktrack.so, the allocation tracker.
 *
 * Preloaded in front of any allocator, it records every call of the malloc
 * family and forwards it to the next definition (dlsym(RTLD_NEXT)). The
 * file format is in trace_format.h; the options are the table in
 * options.c, set through the environment (hakmem-trace record sets them).
 *
 * Recording, per thread, without locks or shared writes on the hot path:
 *   - a thread's first call registers it: an mmap'd ht_thread with its
 *     buffer, an index from one atomic counter, its own file, and a push
 *     onto the registry list (the only shared writes);
 *   - each call appends one record (a 48-byte unit) to the thread's buffer;
 *     a full buffer is written to the thread's file by the thread itself:
 *     encoded as small integers and deltas (stacks as new frame nodes),
 *     then compressed into zstd frames (trace_format.h, version 3);
 *   - at thread exit (a pthread key destructor, re-armed so that it runs in
 *     the last round) the rest is written and the file closed; later calls
 *     of that thread (other destructors) are appended one by one;
 *   - at process exit (this library's destructor), _exit/_Exit and exec,
 *     every registered thread's buffer is written, running or blocked, and
 *     from then on each thread writes every record at once ("direct").
 *   The buffer is written under a per-thread flag lock that only the owner
 *   (buffer full) and an exit flush ever take; the owner publishes each
 *   record with a release store of its position, so an exit flush writes
 *   every record published before it and the owner writes the rest.
 *
 * Sampled mode keeps no shared state: a call is drawn by the thread's own
 * countdown (one in N calls, random gaps), and a block is tracked when a
 * hash of its address (keyed by a per-instance salt) falls in the lowest
 * 1/N of the range, so the free side knows, from the pointer alone, that
 * the allocation was recorded. Large blocks (at least the threshold asked
 * for, or malloc_usable_size at least that) are always both; a free asks
 * the next allocator for the block's usable size once the process has
 * tracked a large block (one flag, written once). The record flags say
 * which sample a record belongs to (trace_format.h).
 *
 * No malloc inside the tracker: the buffers, the tables and zstd's
 * compression context (through ZSTD_customMem) are mmap'd, so a flush is
 * safe wherever it runs (a signal handler calling _exit, a forked child).
 *
 * Bootstrap: until dlsym has resolved the next functions, allocations (made
 * by dlsym itself) come from a static area; they are never passed to the
 * next free. Calls made while this library is working for the same thread
 * (libunwind, dlsym, the allocator's own calls) pass through unrecorded.
 *
 * fork: the child is a new instance with its own files (its header names the
 * parent); the forking thread's records made before the fork stay with the
 * parent, the other threads do not exist in the child. A child that ends in
 * _exit or exec gets its records written there; one that calls execl/execle/
 * execlp (glibc calls execve internally, past this library) or is killed
 * loses what its buffer held.
 */
#define UNW_LOCAL_ONLY
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_createCCtx_advanced: memory from mmap */
#include "options.h"
#include "trace_format.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libunwind.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define HT_EXPORT __attribute__((visibility("default")))
#define HT_LIKELY(x) __builtin_expect(!!(x), 1)
#define HT_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* A thread's buffer: 1 MiB of units; flushed when fewer than
 * HT_ROOM units are left (room for the largest stack definition and an
 * event). */
#define HT_BUF_UNITS ((1024u << 10) / HT_UNIT)
#define HT_ROOM (2u + (HT_MAX_FRAMES + HT_FRAMES_PER_UNIT - 1) / HT_FRAMES_PER_UNIT + 2u)
#define HT_BOOT_BYTES (64u << 10)
/* Encoded records are compressed into one zstd frame per HT_ENC_BYTES at
 * most (a frame's records never straddle it); after thread exit the
 * buffers shrink to the tail's. */
#define HT_ENC_BYTES (256u << 10)
#define HT_TAIL_ENC (HT_ROOM * HT_REC_MAX + HT_REC_STACK_MAX)
#define HT_ZSTD_LEVEL 1
#define HT_PLAIN_FRAMES 16

/* ---- options ------------------------------------------------------------ */

/* The values of the table in options.c (HT_OPT_DIR, a path, is g_dir). */
static uint64_t g_opt[HT_OPT_COUNT];

/* ---- the next definitions ----------------------------------------------- */

static struct {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*reallocarray)(void *, size_t, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*malloc_usable_size)(void *);
    void (*_exit)(int);
    void (*_Exit)(int);
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execv)(const char *, char *const[]);
    int (*execvp)(const char *, char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
} next;

static _Atomic int g_ready;     /* next.* resolved */
static _Atomic int g_resolving; /* dlsym in progress */

/* ---- bootstrap area ------------------------------------------------------ */

static _Alignas(64) unsigned char g_boot[HT_BOOT_BYTES];
static _Atomic size_t g_boot_used;

static bool ht_is_boot(const void *p)
{
    return (const unsigned char *)p >= g_boot && (const unsigned char *)p < g_boot + sizeof g_boot;
}

/* Each boot block is preceded by 16 bytes holding its size. */
static void *ht_boot_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    for (;;) {
        size_t used = atomic_load(&g_boot_used);
        size_t start = (used + 16 + align - 1) & ~(align - 1);
        if (n > sizeof g_boot || start + n > sizeof g_boot)
            return NULL;
        if (atomic_compare_exchange_weak(&g_boot_used, &used, start + n)) {
            memcpy(g_boot + start - sizeof(size_t), &n, sizeof n);
            return g_boot + start;
        }
    }
}

static size_t ht_boot_size(const void *p)
{
    size_t n;
    memcpy(&n, (const unsigned char *)p - sizeof n, sizeof n);
    return n;
}

/* ---- process state ----------------------------------------------------- */

typedef struct ht_thread {
    struct ht_thread *next;  /* registry link, set before publication */
    ht_event *buf;           /* the buffer (the tail array once dead) */
    _Atomic uint32_t pos;    /* units filled; written by the owner only */
    uint32_t written;        /* units of buf already in the file (lock) */
    uint32_t flush_at;
    atomic_flag lock;        /* held while writing buf out */
    _Atomic int direct;      /* write every record at once */
    int dead;                /* thread exited, file closed */
    int fd;
    uint32_t index;
    uint32_t exit_rounds;
    pid_t tid;
    uint64_t events;         /* event records made (not stack definitions) */
    uint64_t countdown;      /* sampled: calls left before the next sample */
    uint64_t rng;
    uint64_t *stack_keys;    /* open addressing: frame hash -> id */
    uint32_t *stack_ids;
    uint32_t stack_mask, stack_count;
    /* the encoder (under lock): version 3's previous values, the frame
     * nodes written so far ((parent, address) -> node, open addressing) */
    uint64_t prev_seq, prev_ptr, prev_addr, prev_mark;
    uint64_t mark_coarse;    /* CLOCK_MONOTONIC_COARSE at the last time mark */
    uint64_t *node_addr;
    uint32_t *node_parent, *node_id;
    uint32_t node_mask, node_count;
    unsigned char *enc, *zout; /* encoded records, their zstd frame */
    size_t enc_cap, zout_cap;
    unsigned char *prev;     /* the records of the file's last frame (the
                                next frame's prefix; NULL after death) */
    size_t prev_len;
    uint32_t plain_frames;   /* frames still to compress without
                                long-distance matching (ht_emit) */
    ZSTD_CCtx *zc;           /* NULL after death: one per write then */
    size_t map_bytes;        /* the mmap holding this struct, buf, enc, zout */
    ht_event tail[HT_ROOM];  /* after death: room for one call's records */
    unsigned char tail_enc[HT_TAIL_ENC];
    unsigned char tail_zout[ZSTD_COMPRESSBOUND(HT_TAIL_ENC)];
    char path[PATH_MAX];
} ht_thread;

static char g_dir[PATH_MAX - 64];
static char g_exe[128];
static _Atomic int g_on;        /* recording */
static _Atomic int g_warned;    /* the one message was printed */
static pid_t g_pid;
static uint64_t g_epoch, g_epoch_rt, g_parent_epoch;
static uint32_t g_flags;
static _Atomic uint32_t g_nthreads;
static ht_thread *_Atomic g_threads;
static pthread_key_t g_key;
static uint64_t g_salt;          /* sampled: the key of the address hash */
static uint64_t g_track_below;   /* sampled: a block is tracked when its hash is below */
static _Atomic int g_large_seen; /* sampled: a large block was tracked (written once) */
static char g_comm[16];

static __thread ht_thread *t_self __attribute__((tls_model("initial-exec")));
static __thread int t_busy __attribute__((tls_model("initial-exec")));

/* ---- small helpers (no malloc, no stdio) ------------------------------ */

static uint64_t ht_clock(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t ht_now(void)
{
    return ht_clock(CLOCK_MONOTONIC) - g_epoch;
}

/* The process's record order (trace_format.h): one counter for every
 * thread, taken after an allocating call returns and before a free's call
 * starts, so a block freed by one thread and handed out to another has the
 * smaller number on its free (the allocator's own synchronisation orders
 * the two increments). 0 is never a record's. */
static _Atomic uint64_t g_seq;

static inline uint64_t ht_seq(void)
{
    return atomic_fetch_add_explicit(&g_seq, 1, memory_order_relaxed) + 1;
}

static char *ht_cat(char *d, const char *end, const char *s)
{
    while (*s && d < end - 1)
        *d++ = *s++;
    *d = 0;
    return d;
}

static char *ht_cat_u64(char *d, const char *end, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0 && d < end - 1)
        *d++ = tmp[--n];
    *d = 0;
    return d;
}

static bool ht_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

static void ht_say(const char *a, const char *b, const char *c)
{
    char msg[PATH_MAX + 256], *e = msg + sizeof msg, *d = msg;
    d = ht_cat(d, e, "haktrack: ");
    d = ht_cat(d, e, a);
    d = ht_cat(d, e, b);
    d = ht_cat(d, e, c);
    d = ht_cat(d, e, "\n");
    ssize_t ignored = write(2, msg, (size_t)(d - msg));
    (void)ignored;
}

/* Recording stops for good, with one message; the program goes on. */
static void ht_stop(const char *what, int err)
{
    atomic_store(&g_on, 0);
    if (atomic_exchange(&g_warned, 1))
        return;
    char m[PATH_MAX + 64], *e = m + sizeof m, *d = m;
    d = ht_cat(d, e, what);
    d = ht_cat(d, e, g_dir);
    d = ht_cat(d, e, ": ");
    ht_cat(d, e, strerror(err));
    ht_say(m, "; recording stops, the program goes on", "");
}

#define ht_mix ht_hash_mix /* trace_format.h: the stack hash's mixer */

/* ---- files -------------------------------------------------------------- */

static char *ht_instance_path(char *buf, size_t size, const char *suffix)
{
    char *e = buf + size, *d = buf;
    d = ht_cat(d, e, g_dir);
    d = ht_cat(d, e, "/");
    d = ht_cat_u64(d, e, (uint64_t)g_pid);
    d = ht_cat(d, e, "-");
    d = ht_cat_u64(d, e, g_epoch);
    return ht_cat(d, e, suffix);
}

/* Open the thread's file and write its header; false (recording stopped)
 * on failure. */
static bool ht_open_file(ht_thread *t)
{
    char *d = ht_instance_path(t->path, sizeof t->path, "-");
    d = ht_cat_u64(d, t->path + sizeof t->path, t->index);
    ht_cat(d, t->path + sizeof t->path, ".htrk");
    int fd = open(t->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT && mkdir(g_dir, 0755) == 0)
        fd = open(t->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        ht_stop("cannot create a trace file in ", errno);
        return false;
    }
    ht_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, HT_MAGIC, 8);
    h.version = HT_VERSION;
    h.header_size = HT_HEADER_SIZE;
    h.unit_size = 0; /* version 3: zstd frames, not units */
    h.flags = g_flags;
    h.mode = (uint32_t)g_opt[HT_OPT_MODE];
    h.thread_index = t->index;
    h.pid = (uint64_t)g_pid;
    h.ppid = (uint64_t)getppid();
    h.tid = (uint64_t)t->tid;
    h.epoch_ns = g_epoch;
    h.epoch_realtime_ns = g_epoch_rt;
    h.thread_start_ns = ht_now();
    h.sample_threshold = g_opt[HT_OPT_THRESHOLD];
    h.sample_every = g_opt[HT_OPT_EVERY];
    h.parent_epoch_ns = g_parent_epoch;
    memcpy(h.exe, g_exe, sizeof h.exe);
    h.sample_salt = g_salt;
    memcpy(h.comm, g_comm, sizeof h.comm);
    if (!ht_write_all(fd, &h, sizeof h)) {
        ht_stop("cannot write a trace file in ", errno ? errno : ENOSPC);
        close(fd);
        return false;
    }
    t->fd = fd;
    return true;
}

/* A copy of /proc/self/maps for symbolizing stacks. */
static void ht_write_maps(void)
{
    if (!g_opt[HT_OPT_STACKS] || !atomic_load(&g_on))
        return;
    char path[PATH_MAX];
    ht_instance_path(path, sizeof path, ".maps");
    int in = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return;
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out >= 0) {
        char buf[4096];
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0)
            if (!ht_write_all(out, buf, (size_t)n))
                break;
        close(out);
    }
    close(in);
}

/* ---- version 3 encoding (trace_format.h) ------------------------------ */

static void *ht_zalloc(void *opaque, size_t n)
{
    (void)opaque;
    size_t bytes = n + 64;
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    memcpy(m, &bytes, sizeof bytes);
    return (char *)m + 64;
}

static void ht_zfree(void *opaque, void *p)
{
    (void)opaque;
    if (!p)
        return;
    size_t bytes;
    memcpy(&bytes, (char *)p - 64, sizeof bytes);
    munmap((char *)p - 64, bytes);
}

/* A compression context whose memory comes from mmap; NULL on failure. */
static ZSTD_CCtx *ht_zcreate(void)
{
    ZSTD_customMem mem = { ht_zalloc, ht_zfree, NULL };
    ZSTD_CCtx *zc = ZSTD_createCCtx_advanced(mem);
    if (zc && (ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, HT_ZSTD_LEVEL)) ||
               ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_checksumFlag, 1)))) {
        ZSTD_freeCCtx(zc);
        zc = NULL;
    }
    return zc;
}

static inline unsigned char *ht_put_v(unsigned char *d, uint64_t v)
{
    while (v >= 0x80) {
        *d++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *d++ = (unsigned char)v;
    return d;
}

static inline unsigned char *ht_put_z(unsigned char *d, uint64_t x, uint64_t y)
{
    uint64_t n = x - y; /* as a signed difference */
    return ht_put_v(d, (n << 1) ^ (uint64_t)((int64_t)n >> 63));
}

/* "p x relative to y" */
static inline unsigned char *ht_put_p(unsigned char *d, uint64_t x, uint64_t y)
{
    if (!x)
        return ht_put_v(d, 0);
    uint64_t n = x - y;
    return ht_put_v(d, ((n << 1) ^ (uint64_t)((int64_t)n >> 63)) + 1);
}

static void ht_node_table_grow(ht_thread *t)
{
    uint32_t cap = t->node_mask ? (t->node_mask + 1) * 2 : 1024;
    size_t ab = (size_t)cap * sizeof(uint64_t), pb = (size_t)cap * sizeof(uint32_t);
    void *m = mmap(NULL, ab + 2 * pb, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return;
    uint64_t *addr = m;
    uint32_t *parent = (uint32_t *)((char *)m + ab), *id = (uint32_t *)((char *)m + ab + pb);
    for (uint32_t k = 0; t->node_mask && k <= t->node_mask; k++) {
        if (!t->node_id[k])
            continue;
        uint32_t i = (uint32_t)ht_mix(t->node_addr[k] ^ ((uint64_t)t->node_parent[k] << 40)) & (cap - 1);
        while (id[i])
            i = (i + 1) & (cap - 1);
        addr[i] = t->node_addr[k];
        parent[i] = t->node_parent[k];
        id[i] = t->node_id[k];
    }
    if (t->node_mask)
        munmap(t->node_addr, (size_t)(t->node_mask + 1) * (sizeof(uint64_t) + 2 * sizeof(uint32_t)));
    t->node_addr = addr;
    t->node_parent = parent;
    t->node_id = id;
    t->node_mask = cap - 1;
}

/* The node of frame addr under parent, writing it when new; 0 when the
 * table cannot grow. */
static uint32_t ht_node(ht_thread *t, uint32_t parent, uint64_t addr, unsigned char **d)
{
    if (t->node_count * 2 >= t->node_mask) {
        ht_node_table_grow(t);
        if (t->node_count * 2 >= t->node_mask)
            return 0;
    }
    uint32_t i = (uint32_t)ht_mix(addr ^ ((uint64_t)parent << 40)) & t->node_mask;
    while (t->node_id[i]) {
        if (t->node_addr[i] == addr && t->node_parent[i] == parent)
            return t->node_id[i];
        i = (i + 1) & t->node_mask;
    }
    uint32_t id = ++t->node_count;
    t->node_addr[i] = addr;
    t->node_parent[i] = parent;
    t->node_id[i] = id;
    unsigned char *p = *d;
    *p++ = HT_REC_NODE;
    p = ht_put_v(p, parent);
    p = ht_put_z(p, addr, t->prev_addr);
    t->prev_addr = addr;
    *d = p;
    return id;
}

/* Encodes the record at buf[u] (a stack definition: its frame units too)
 * at d; the units it took in *units. NULL when a stack's frames cannot be
 * kept (no memory). */
static unsigned char *ht_encode(ht_thread *t, const ht_event *e, uint32_t *units, unsigned char *d)
{
    if (e->op == HT_OP_STACK) {
        uint32_t n = (uint32_t)e->size;
        *units = 1 + (n + HT_FRAMES_PER_UNIT - 1) / HT_FRAMES_PER_UNIT;
        const uint64_t *frames = (const uint64_t *)(e + 1);
        uint32_t node = 0;
        for (uint32_t k = n; k-- > 0;)
            if (!(node = ht_node(t, node, frames[k], &d)))
                return NULL;
        *d++ = HT_OP_STACK;
        d = ht_put_v(d, e->stack);
        return ht_put_v(d, node);
    }
    *units = 1;
    if (e->op == HT_REC_TIME) {
        *d++ = HT_REC_TIME;
        d = ht_put_z(d, e->time, t->prev_mark);
        t->prev_mark = e->time;
        return d;
    }
    bool ext = e->flags || e->start || e->old_size || e->aux;
    *d++ = (unsigned char)(e->op | (ext ? HT_REC_EXT : 0));
    d = ht_put_z(d, e->time, t->prev_seq);
    t->prev_seq = e->time;
    d = ht_put_p(d, e->ptr, t->prev_ptr);
    if (e->ptr)
        t->prev_ptr = e->ptr;
    d = ht_put_v(d, e->size);
    if (g_flags & HT_F_STACKS)
        d = ht_put_v(d, e->stack);
    if (ext) {
        *d++ = e->flags;
        d = ht_put_v(d, e->start);
        d = ht_put_v(d, e->old_size);
        if (e->op == HT_OP_REALLOC || e->op == HT_OP_REALLOCARRAY)
            d = ht_put_p(d, e->aux, e->ptr);
        else
            d = ht_put_v(d, e->aux);
    }
    return d;
}

/* Compresses t->enc[0, n) into one frame and writes it to fd. The frame
 * continues the file's previous one (its records are the prefix: a
 * program's calls repeat, and a frame holds some 20,000 of them); the
 * records just written become the next frame's prefix. */
static bool ht_emit(ht_thread *t, int fd, size_t n)
{
    ZSTD_CCtx *zc = t->zc ? t->zc : ht_zcreate();
    if (!zc) {
        errno = ENOMEM;
        return false;
    }
    /* Long-distance matching finds a program's repeated calls (sqlite3's
     * trace: 5x smaller) but costs a sixth more time on records that do not
     * repeat (random sizes: no smaller); a frame that shrinks less than 4x
     * turns it off for the next HT_PLAIN_FRAMES frames. */
    bool ldm = t->plain_frames == 0;
    size_t z = ZSTD_CCtx_setParameter(zc, ZSTD_c_enableLongDistanceMatching, ldm);
    if (!ZSTD_isError(z) && t->prev_len && zc == t->zc)
        z = ZSTD_CCtx_refPrefix(zc, t->prev, t->prev_len);
    if (!ZSTD_isError(z))
        z = ZSTD_compress2(zc, t->zout, t->zout_cap, t->enc, n);
    if (!ZSTD_isError(z) && zc == t->zc) {
        if (!ldm)
            t->plain_frames--;
        else if (z * 4 > n && n >= HT_ENC_BYTES / 2)
            t->plain_frames = HT_PLAIN_FRAMES;
    }
    if (zc != t->zc)
        ZSTD_freeCCtx(zc);
    if (ZSTD_isError(z)) {
        errno = ENOMEM; /* a context that could not grow */
        return false;
    }
    if (!ht_write_all(fd, t->zout, z))
        return false;
    if (t->prev && zc == t->zc) {
        unsigned char *x = t->prev;
        t->prev = t->enc;
        t->prev_len = n;
        t->enc = x;
    }
    return true;
}

/* Writes buf[written, pos) out, and an END record when `end` (not after
 * thread exit). Caller holds t->lock. */
static void ht_write_out(ht_thread *t, bool end)
{
    if (!atomic_load(&g_on))
        return;
    uint32_t pos = atomic_load_explicit(&t->pos, memory_order_acquire);
    end = end && !t->dead && t->fd >= 0;
    if (pos <= t->written && !end)
        return;
#ifdef HT_TEST_DISCARD
    /* test build only: records are made but not written (the end records
     * still count them), so a test can sample millions of blocks */
    t->written = pos;
    if (!end)
        return;
#endif
    int fd = t->dead ? open(t->path, O_WRONLY | O_APPEND | O_CLOEXEC) : t->fd;
    bool ok = fd >= 0;
    unsigned char *d = t->enc, *limit = t->enc + t->enc_cap - HT_REC_STACK_MAX - HT_REC_MAX;
    for (uint32_t u = t->written, k; ok && u < pos; u += k) {
        d = ht_encode(t, &t->buf[u], &k, d);
        if (!d) {
            errno = ENOMEM;
            ok = false;
        } else if (d >= limit) {
            ok = ht_emit(t, fd, (size_t)(d - t->enc));
            d = t->enc;
        }
    }
    if (ok && end) {
        ht_event e;
        uint32_t k;
        memset(&e, 0, sizeof e);
        e.op = HT_REC_TIME; /* the END record's time, exactly */
        e.time = ht_now();
        d = ht_encode(t, &e, &k, d);
        e.op = HT_OP_END;
        e.time = ht_seq();
        e.size = t->events;
        d = ht_encode(t, &e, &k, d);
    }
    if (ok && d > t->enc)
        ok = ht_emit(t, fd, (size_t)(d - t->enc));
    if (t->dead && fd >= 0)
        close(fd);
    if (!ok && atomic_load(&g_on))
        ht_stop("cannot write the trace to ", errno ? errno : ENOSPC);
    t->written = pos;
}

static void ht_lock(ht_thread *t)
{
    while (atomic_flag_test_and_set_explicit(&t->lock, memory_order_acquire))
        sched_yield();
}

static void ht_unlock(ht_thread *t)
{
    atomic_flag_clear_explicit(&t->lock, memory_order_release);
}

/* The owner's flush: buffer full, or direct mode. */
static void ht_flush_own(ht_thread *t)
{
    ht_lock(t);
    ht_write_out(t, false);
    if (atomic_load_explicit(&t->pos, memory_order_relaxed) >= t->flush_at || t->dead) {
        atomic_store_explicit(&t->pos, 0, memory_order_relaxed);
        t->written = 0;
    }
    ht_unlock(t);
}

/* Process exit, _exit, exec: every live thread's records are written, and
 * each record after this is written at once. */
static void ht_flush_all(void)
{
    if (!atomic_load(&g_ready))
        return;
    int saved = errno;
    int busy = t_busy;
    t_busy = 1;
    for (ht_thread *t = atomic_load(&g_threads); t; t = t->next) {
        ht_lock(t);
        if (!t->dead) {
            ht_write_out(t, true);
            atomic_store(&t->direct, 1);
        }
        ht_unlock(t);
    }
    ht_write_maps();
    t_busy = busy;
    errno = saved;
}

/* ---- registering a thread ------------------------------------------------ */

static void ht_thread_exit(void *arg);

static ht_thread *ht_register(void)
{
    size_t hdr = (sizeof(ht_thread) + 4095) / 4096 * 4096, zcap = ZSTD_COMPRESSBOUND(HT_ENC_BYTES);
    size_t bytes = hdr + (size_t)HT_BUF_UNITS * HT_UNIT + 2 * HT_ENC_BYTES + (zcap + 4095) / 4096 * 4096;
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        ht_stop("out of memory for a thread's buffer, writing to ", ENOMEM);
        return NULL;
    }
    ht_thread *t = m;
    t->map_bytes = bytes;
    t->buf = (ht_event *)((char *)m + hdr);
    t->enc = (unsigned char *)t->buf + (size_t)HT_BUF_UNITS * HT_UNIT;
    t->enc_cap = HT_ENC_BYTES;
    t->zout = t->enc + HT_ENC_BYTES;
    t->zout_cap = zcap;
    t->prev = t->zout + (zcap + 4095) / 4096 * 4096;
    t->prev_len = 0;
    t->flush_at = HT_BUF_UNITS - HT_ROOM;
    t->tid = (pid_t)syscall(SYS_gettid);
    t->index = atomic_fetch_add(&g_nthreads, 1);
    t->rng = ht_mix(((uint64_t)g_pid << 32) ^ t->index ^ g_epoch);
    t->countdown = 1 + t->rng % (2 * g_opt[HT_OPT_EVERY]);
    t->fd = -1;
    atomic_flag_clear(&t->lock);
    if (!(t->zc = ht_zcreate())) {
        munmap(m, bytes);
        ht_stop("out of memory for a thread's compression context, writing to ", ENOMEM);
        return NULL;
    }
    if (!ht_open_file(t)) {
        ZSTD_freeCCtx(t->zc);
        munmap(m, bytes);
        return NULL;
    }
    ht_thread *head = atomic_load(&g_threads);
    do
        t->next = head;
    while (!atomic_compare_exchange_weak(&g_threads, &head, t));
    pthread_setspecific(g_key, t);
    t_self = t;
    return t;
}

/* pthread key destructor: re-armed until the last round, so that other
 * keys' destructors run before the file is closed. */
static void ht_thread_exit(void *arg)
{
    ht_thread *t = arg;
    if (++t->exit_rounds < PTHREAD_DESTRUCTOR_ITERATIONS) {
        pthread_setspecific(g_key, t);
        return;
    }
    int saved = errno;
    t_busy = 1;
    ht_lock(t);
    if (!t->dead) {
        ht_write_out(t, true);
        if (t->fd >= 0)
            close(t->fd);
        t->fd = -1;
        t->dead = 1;
        char *old = (char *)t->buf;
        t->buf = t->tail;
        atomic_store(&t->pos, 0);
        t->written = 0;
        t->flush_at = HT_ROOM;
        atomic_store(&t->direct, 1);
        /* buf, enc and zout (one range) give way to the small tail buffers */
        munmap(old, (size_t)((char *)t + t->map_bytes - old));
        t->enc = t->tail_enc;
        t->enc_cap = sizeof t->tail_enc;
        t->prev = NULL; /* the frames after death stand alone */
        t->prev_len = 0;
        t->zout = t->tail_zout;
        t->zout_cap = sizeof t->tail_zout;
        ZSTD_freeCCtx(t->zc);
        t->zc = NULL;
    }
    ht_unlock(t);
    t_busy = 0;
    errno = saved;
}

/* ---- sampled mode ---------------------------------------------------- */

/* The thread's countdown: true once in `every` calls on average. */
static inline bool ht_draw(ht_thread *t)
{
    if (--t->countdown)
        return false;
    t->rng = ht_mix(t->rng + 0x9e3779b97f4a7c15ULL);
    t->countdown = 1 + t->rng % (2 * g_opt[HT_OPT_EVERY] - 1);
    return true;
}

/* A block at p is tracked (if it is not large) when this holds: the same
 * answer at its allocation, realloc and free, in any thread. */
static inline bool ht_hash_tracked(const void *p)
{
    return ht_mix((uint64_t)(uintptr_t)p ^ g_salt) < g_track_below;
}

/* The live block p is large by its usable size. */
static inline bool ht_usable_large(void *p)
{
    return next.malloc_usable_size && next.malloc_usable_size(p) >= g_opt[HT_OPT_THRESHOLD];
}

/* A new block p of n bytes asked for with alignment a: HT_EV_CALL |
 * HT_EV_BLOCK when it is large, HT_EV_BLOCK when its address is tracked,
 * else 0. The usable size is asked only when max(n, a) is at least a
 * quarter of the threshold (no allocator rounds a request up 4-fold), so
 * a small call pays for one hash. */
static inline uint8_t ht_new_block(void *p, size_t n, size_t a)
{
    uint64_t thr = g_opt[HT_OPT_THRESHOLD];
    if (n >= thr || ((n >= thr / 4 || a >= thr / 4) && ht_usable_large(p))) {
        if (HT_UNLIKELY(!atomic_load_explicit(&g_large_seen, memory_order_relaxed)))
            atomic_store_explicit(&g_large_seen, 1, memory_order_relaxed);
        return HT_EV_CALL | HT_EV_BLOCK;
    }
    return ht_hash_tracked(p) ? HT_EV_BLOCK : 0;
}

/* The flags of an allocation's record (0: not recorded). */
static inline uint8_t ht_sample_alloc(ht_thread *t, void *p, size_t n, size_t a)
{
    uint8_t fl = ht_new_block(p, n, a);
    if (fl & HT_EV_CALL)
        return fl;
    if (ht_draw(t))
        fl |= HT_EV_CALL;
    return fl ? fl | HT_EV_SAMPLED : 0;
}

/* Whether the live block p is large (asked only once a large block was
 * tracked: a large block's allocation happens before its free, and the
 * program's own hand-over of the pointer orders the flag's store before
 * this load). */
static inline bool ht_block_large(void *p)
{
    return atomic_load_explicit(&g_large_seen, memory_order_relaxed) && ht_usable_large(p);
}

/* The flags of a free's record (0: not recorded). */
static inline uint8_t ht_sample_free(ht_thread *t, void *p)
{
    if (ht_block_large(p))
        return HT_EV_CALL | HT_EV_BLOCK;
    uint8_t fl = HT_EV_SAMPLED;
    if (ht_draw(t))
        fl |= HT_EV_CALL;
    if (ht_hash_tracked(p))
        fl |= HT_EV_BLOCK;
    return fl == HT_EV_SAMPLED ? 0 : fl;
}

/* ---- stacks -------------------------------------------------------------- */

static void ht_stack_table_grow(ht_thread *t)
{
    uint32_t cap = t->stack_mask ? (t->stack_mask + 1) * 2 : 1024;
    size_t kb = (size_t)cap * sizeof(uint64_t), ib = (size_t)cap * sizeof(uint32_t);
    void *m = mmap(NULL, kb + ib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return;
    uint64_t *keys = m;
    uint32_t *ids = (uint32_t *)((char *)m + kb);
    for (uint32_t k = 0; t->stack_mask && k <= t->stack_mask; k++) {
        if (!t->stack_keys[k])
            continue;
        uint32_t i = (uint32_t)ht_mix(t->stack_keys[k]) & (cap - 1);
        while (keys[i])
            i = (i + 1) & (cap - 1);
        keys[i] = t->stack_keys[k];
        ids[i] = t->stack_ids[k];
    }
    if (t->stack_mask)
        munmap(t->stack_keys, (size_t)(t->stack_mask + 1) * (sizeof(uint64_t) + sizeof(uint32_t)));
    t->stack_keys = keys;
    t->stack_ids = ids;
    t->stack_mask = cap - 1;
}

/* The id of the current call stack in this thread's file, writing its
 * definition first when it is new. Called straight from an exported
 * function: frames 0 and 1 are this function and that one. */
static __attribute__((noinline)) uint32_t ht_stack(ht_thread *t)
{
    void *fr[HT_MAX_FRAMES + 2];
    int n = unw_backtrace(fr, (int)g_opt[HT_OPT_DEPTH] + 2) - 2;
    if (n <= 0)
        return 0;
    uint64_t h = 0x84222325cbf29ce4ULL;
    for (int k = 0; k < n; k++)
        h = ht_mix(h ^ (uint64_t)(uintptr_t)fr[k + 2]);
    h |= 1; /* never 0, the empty key */
    if (t->stack_count * 2 >= t->stack_mask) {
        ht_stack_table_grow(t);
        if (t->stack_count * 2 >= t->stack_mask)
            return 0;
    }
    uint32_t i = (uint32_t)ht_mix(h) & t->stack_mask;
    while (t->stack_keys[i]) {
        if (t->stack_keys[i] == h)
            return t->stack_ids[i];
        i = (i + 1) & t->stack_mask;
    }
    uint32_t id = ++t->stack_count;
    t->stack_keys[i] = h;
    t->stack_ids[i] = id;
    uint32_t pos = atomic_load_explicit(&t->pos, memory_order_relaxed);
    ht_event *e = &t->buf[pos];
    memset(e, 0, sizeof *e);
    e->op = HT_OP_STACK;
    e->stack = id;
    e->size = (uint64_t)n;
    e->aux = h;
    uint32_t units = 1 + ((uint32_t)n + HT_FRAMES_PER_UNIT - 1) / HT_FRAMES_PER_UNIT;
    uint64_t *frames = (uint64_t *)(e + 1);
    memset(frames, 0, (size_t)(units - 1) * HT_UNIT);
    for (int k = 0; k < n; k++)
        frames[k] = (uint64_t)(uintptr_t)fr[k + 2];
    atomic_store_explicit(&t->pos, pos + units, memory_order_release);
    return id;
}

/* ---- the recording path -------------------------------------------------- */

static void ht_resolve(void);

/* Enter the tracker for one call: false when this call is not recorded
 * (recording off, or a call made from inside the tracker). */
static inline bool ht_enter(ht_thread **tp)
{
    if (t_busy || !atomic_load_explicit(&g_on, memory_order_relaxed))
        return false;
    t_busy = 1;
    ht_thread *t = t_self;
    if (HT_UNLIKELY(!t)) {
        int saved = errno; /* creating the file may fail on the way (mkdir) */
        t = ht_register();
        errno = saved;
        if (!t) {
            t_busy = 0;
            return false;
        }
    }
    *tp = t;
    return true;
}

static inline void ht_leave(void)
{
    t_busy = 0;
}

/* A time mark before the record about to be made: its time, exactly
 * (trace_format.h). Out of line: taken once per coarse clock tick. */
static __attribute__((noinline)) void ht_mark(ht_thread *t, uint64_t coarse)
{
    t->mark_coarse = coarse;
    uint32_t pos = atomic_load_explicit(&t->pos, memory_order_relaxed);
    ht_event *e = &t->buf[pos];
    memset(e, 0, sizeof *e);
    e->op = HT_REC_TIME;
    e->time = ht_now();
    atomic_store_explicit(&t->pos, pos + 1, memory_order_release);
}

/* Records one call whose order number is seq (ht_seq). */
static inline void ht_commit(ht_thread *t, uint8_t op, uint64_t seq, const void *ptr,
                             uint64_t size, uint64_t aux, uint32_t stack, uint8_t flags,
                             uint32_t start, uint32_t old_size)
{
    uint64_t coarse = ht_clock(CLOCK_MONOTONIC_COARSE);
    if (HT_UNLIKELY(coarse != t->mark_coarse))
        ht_mark(t, coarse);
    ht_event *e = &t->buf[atomic_load_explicit(&t->pos, memory_order_relaxed)];
    e->time = seq;
    e->ptr = (uint64_t)(uintptr_t)ptr;
    e->size = size;
    e->aux = aux;
    e->start = start;
    e->stack = stack;
    e->op = op;
    e->flags = flags;
    e->reserved16 = 0;
    e->old_size = old_size;
#ifdef HT_TEST_DROP_EVERY
    /* test build only: an injected fault that loses one event in N */
    if ((t->events + 1) % HT_TEST_DROP_EVERY == 0) {
        t->events++;
        return;
    }
#endif
    uint32_t pos = atomic_load_explicit(&t->pos, memory_order_relaxed) + 1;
#ifdef HT_TEST_DUP_EVERY
    /* test build only: an injected fault that writes one free or realloc
     * in N twice (the buffer's room holds the extra unit) */
    if ((op == HT_OP_FREE || op == HT_OP_REALLOC) && (t->events + 1) % HT_TEST_DUP_EVERY == 0) {
        t->buf[pos] = *e;
        pos++;
    }
#endif
    atomic_store_explicit(&t->pos, pos, memory_order_release);
    t->events++;
    if (HT_UNLIKELY(pos >= t->flush_at || atomic_load_explicit(&t->direct, memory_order_relaxed)))
        ht_flush_own(t);
}

/* An allocation that returned p (or failed). Always inlined into the
 * exported function, so that ht_stack sees it as its caller. */
#define HT_RECORD_ALLOC(t, op, p, n, aux)                                           \
    do {                                                                            \
        uint8_t fl_ = 0;                                                            \
        if (g_opt[HT_OPT_MODE] == HT_MODE_SAMPLED) { /* aux: calloc's count */   \
            size_t al_ = (op) == HT_OP_CALLOC ? 0 : (aux);                          \
            if (!(p) || !(fl_ = ht_sample_alloc((t), (p), (n), al_)))               \
                break;                                                              \
        }                                                                           \
        uint64_t seq_ = ht_seq();                                                   \
        uint32_t st_ = g_opt[HT_OPT_STACKS] ? ht_stack(t) : 0;                   \
        ht_commit((t), (op), seq_, (p), (n), (aux), st_, fl_, 0, 0);                \
    } while (0)

/* ---- the exported functions --------------------------------------------- */

HT_EXPORT void *malloc(size_t n)
{
    if (HT_UNLIKELY(!atomic_load_explicit(&g_ready, memory_order_acquire))) {
        ht_resolve();
        if (!g_ready)
            return ht_boot_alloc(n, 16);
    }
    ht_thread *t;
    if (!ht_enter(&t))
        return next.malloc(n);
    void *p = next.malloc(n);
    int e = errno;
    HT_RECORD_ALLOC(t, HT_OP_MALLOC, p, n, 0);
    ht_leave();
    errno = e;
    return p;
}

HT_EXPORT void *calloc(size_t k, size_t n)
{
    if (HT_UNLIKELY(!atomic_load_explicit(&g_ready, memory_order_acquire))) {
        ht_resolve();
        if (!g_ready) {
            size_t b;
            return __builtin_mul_overflow(k, n, &b) ? NULL : ht_boot_alloc(b, 16);
        }
    }
    ht_thread *t;
    if (!ht_enter(&t))
        return next.calloc(k, n);
    void *p = next.calloc(k, n);
    int e = errno;
    size_t b;
    if (__builtin_mul_overflow(k, n, &b))
        b = SIZE_MAX;
    HT_RECORD_ALLOC(t, HT_OP_CALLOC, p, b, k);
    ht_leave();
    errno = e;
    return p;
}

HT_EXPORT void free(void *p)
{
    if (HT_UNLIKELY(!p || ht_is_boot(p) || !atomic_load_explicit(&g_ready, memory_order_acquire))) {
        if (p && !ht_is_boot(p) && next.free)
            next.free(p);
        if (!p && g_ready) {
            ht_thread *t;
            if (g_opt[HT_OPT_MODE] == HT_MODE_FULL && ht_enter(&t)) {
                ht_commit(t, HT_OP_FREE, ht_seq(), NULL, 0, 0, 0, 0, 0, 0);
                ht_leave();
            }
        }
        return;
    }
    ht_thread *t;
    if (!ht_enter(&t)) {
        next.free(p);
        return;
    }
    int e = errno;
    uint8_t fl = 0;
    if (g_opt[HT_OPT_MODE] == HT_MODE_SAMPLED && !(fl = ht_sample_free(t, p))) {
        next.free(p);
        ht_leave();
        errno = e;
        return;
    }
    uint64_t seq = ht_seq();
    next.free(p);
    ht_commit(t, HT_OP_FREE, seq, p, 0, 0, 0, fl, 0, 0);
    ht_leave();
    errno = e;
}

/* realloc and reallocarray: old released at the call's start, new born
 * after it. In sampled mode a realloc is recorded when it is drawn or
 * large (the new size), when its old block was tracked or when its new
 * one is. */
static inline __attribute__((always_inline)) void *ht_realloc_common(ht_thread *t, uint8_t op, void *p, size_t n, size_t k,
                                      size_t b)
{
    bool sampled = g_opt[HT_OPT_MODE] == HT_MODE_SAMPLED, drawn = false;
    uint8_t fl = 0;
    uint64_t old_size = 0;
    if (sampled) {
        if (p && (ht_hash_tracked(p) || ht_block_large(p)))
            fl = HT_EV_OLD_BLOCK;
        drawn = b < g_opt[HT_OPT_THRESHOLD] && ht_draw(t);
        if (drawn && p && next.malloc_usable_size) /* what a move copies, at most */
            old_size = next.malloc_usable_size(p);
    }
    /* The call's start is taken when the old block's release may be
     * recorded (in sampled mode: when it is tracked; else start is 0). */
    uint64_t t0 = !sampled || fl ? ht_seq() : 0;
    void *q = op == HT_OP_REALLOC ? next.realloc(p, n) : next.reallocarray(p, k, n);
    int e = errno;
    bool rec = true;
    if (sampled) {
        uint8_t nf = q ? ht_new_block(q, b, 0) : b >= g_opt[HT_OPT_THRESHOLD] ? HT_EV_CALL : 0;
        if (!(nf & HT_EV_CALL)) /* not large: the call and block stand for `every` */
            nf |= HT_EV_SAMPLED | (drawn ? HT_EV_CALL : 0);
        fl |= nf;
        rec = (fl & ~HT_EV_SAMPLED) != 0;
    }
    if (rec) {
        uint64_t t1 = ht_seq();
        if (!t0)
            t0 = t1;
        uint32_t st = g_opt[HT_OPT_STACKS] && q ? ht_stack(t) : 0;
        uint64_t d = t1 - t0;
        ht_commit(t, op, t1, q, b, (uint64_t)(uintptr_t)p, st, fl, d > UINT32_MAX ? UINT32_MAX : (uint32_t)d,
                  (fl & HT_EV_CALL) && old_size ? (old_size > UINT32_MAX ? UINT32_MAX : (uint32_t)old_size) : 0);
    }
    errno = e;
    return q;
}

HT_EXPORT void *realloc(void *p, size_t n)
{
    if (HT_UNLIKELY(!atomic_load_explicit(&g_ready, memory_order_acquire) || ht_is_boot(p))) {
        if (!g_ready)
            ht_resolve();
        if (!g_ready) {
            void *q = ht_boot_alloc(n, 16);
            if (q && p)
                memcpy(q, p, ht_boot_size(p) < n ? ht_boot_size(p) : n);
            return q;
        }
        if (ht_is_boot(p)) {
            void *q = malloc(n);
            if (q)
                memcpy(q, p, ht_boot_size(p) < n ? ht_boot_size(p) : n);
            return q;
        }
    }
    ht_thread *t;
    if (!ht_enter(&t))
        return next.realloc(p, n);
    void *q = ht_realloc_common(t, HT_OP_REALLOC, p, n, 1, n);
    ht_leave();
    return q;
}

HT_EXPORT void *reallocarray(void *p, size_t k, size_t n)
{
    size_t b;
    if (__builtin_mul_overflow(k, n, &b))
        b = SIZE_MAX;
    if (HT_UNLIKELY(!atomic_load_explicit(&g_ready, memory_order_acquire) || ht_is_boot(p) ||
                    !next.reallocarray)) {
        if (b == SIZE_MAX) {
            errno = ENOMEM;
            return NULL;
        }
        return realloc(p, b);
    }
    ht_thread *t;
    if (!ht_enter(&t))
        return next.reallocarray(p, k, n);
    void *q = ht_realloc_common(t, HT_OP_REALLOCARRAY, p, n, k, b);
    ht_leave();
    return q;
}

HT_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (HT_UNLIKELY(!atomic_load_explicit(&g_ready, memory_order_acquire))) {
        ht_resolve();
        if (!g_ready) {
            void *p = ht_boot_alloc(n, align);
            if (!p)
                return ENOMEM;
            *out = p;
            return 0;
        }
    }
    ht_thread *t;
    if (!ht_enter(&t))
        return next.posix_memalign(out, align, n);
    int r = next.posix_memalign(out, align, n);
    int e = errno;
    void *p = r == 0 ? *out : NULL;
    HT_RECORD_ALLOC(t, HT_OP_POSIX_MEMALIGN, p, n, align);
    ht_leave();
    errno = e;
    return r;
}

/* aligned_alloc, memalign, valloc, pvalloc: one shape. */
#define HT_ALIGNED_FN(name, op, params, args, align_expr, size_expr)                   \
    HT_EXPORT void *name params                                                        \
    {                                                                                  \
        if (HT_UNLIKELY(!atomic_load_explicit(&g_ready, memory_order_acquire))) {      \
            ht_resolve();                                                              \
            if (!g_ready)                                                              \
                return ht_boot_alloc((size_expr), (align_expr));                       \
        }                                                                              \
        ht_thread *t;                                                                  \
        if (!next.name) {                                                              \
            errno = ENOMEM;                                                            \
            return NULL;                                                               \
        }                                                                              \
        if (!ht_enter(&t))                                                             \
            return next.name args;                                                     \
        void *p = next.name args;                                                      \
        int e = errno;                                                                 \
        HT_RECORD_ALLOC(t, op, p, (size_expr), (align_expr));                          \
        ht_leave();                                                                    \
        errno = e;                                                                     \
        return p;                                                                      \
    }

HT_ALIGNED_FN(aligned_alloc, HT_OP_ALIGNED_ALLOC, (size_t a, size_t n), (a, n), a, n)
HT_ALIGNED_FN(memalign, HT_OP_MEMALIGN, (size_t a, size_t n), (a, n), a, n)
HT_ALIGNED_FN(valloc, HT_OP_VALLOC, (size_t n), (n), (size_t)sysconf(_SC_PAGESIZE), n)
HT_ALIGNED_FN(pvalloc, HT_OP_PVALLOC, (size_t n), (n), (size_t)sysconf(_SC_PAGESIZE), n)

HT_EXPORT size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    if (ht_is_boot(p))
        return ht_boot_size(p);
    if (HT_UNLIKELY(!atomic_load_explicit(&g_ready, memory_order_acquire) || !next.malloc_usable_size))
        return 0;
    ht_thread *t;
    if (g_opt[HT_OPT_MODE] != HT_MODE_FULL || !ht_enter(&t))
        return next.malloc_usable_size(p);
    size_t n = next.malloc_usable_size(p);
    int e = errno;
    ht_commit(t, HT_OP_USABLE_SIZE, ht_seq(), p, n, 0, 0, 0, 0, 0);
    ht_leave();
    errno = e;
    return n;
}

/* ---- exit and exec: write everything first ------------------------------- */

HT_EXPORT void _exit(int status)
{
    ht_flush_all();
    if (!next._exit)
        next._exit = (void (*)(int))dlsym(RTLD_NEXT, "_exit");
    next._exit(status);
    for (;;)
        syscall(SYS_exit_group, status);
}

HT_EXPORT void _Exit(int status)
{
    ht_flush_all();
    if (!next._Exit)
        next._Exit = (void (*)(int))dlsym(RTLD_NEXT, "_Exit");
    next._Exit(status);
    for (;;)
        syscall(SYS_exit_group, status);
}

HT_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    ht_flush_all();
    return next.execve(path, argv, envp);
}

HT_EXPORT int execv(const char *path, char *const argv[])
{
    ht_flush_all();
    return next.execv(path, argv);
}

HT_EXPORT int execvp(const char *file, char *const argv[])
{
    ht_flush_all();
    return next.execvp(file, argv);
}

HT_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    ht_flush_all();
    return next.execvpe(file, argv, envp);
}

HT_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    ht_flush_all();
    return next.fexecve(fd, argv, envp);
}

/* ---- start-up, fork ------------------------------------------------------ */

static void ht_start_instance(void)
{
    g_pid = getpid();
    g_epoch = ht_clock(CLOCK_MONOTONIC);
    g_epoch_rt = ht_clock(CLOCK_REALTIME);
}

/* The child of a fork is a new instance: new files; the records that were
 * in the forking thread's buffer belong to the parent, the other threads
 * do not exist here. */
static void ht_atfork_child(void)
{
    if (!atomic_load(&g_on))
        return;
    int saved = errno;
    int busy = t_busy;
    t_busy = 1;
    g_parent_epoch = g_epoch;
    g_flags |= HT_F_FORK_CHILD;
    ht_start_instance();
    ht_thread *self = t_self;
    for (ht_thread *t = atomic_load(&g_threads), *nx; t; t = nx) {
        nx = t->next;
        if (t->fd >= 0)
            close(t->fd);
        t->fd = -1;
        if (t != self && !t->dead) {
            ZSTD_freeCCtx(t->zc);
            munmap(t, t->map_bytes); /* never used again here */
        }
    }
    atomic_store(&g_threads, NULL);
    atomic_store(&g_nthreads, 0);
    if (self && !self->dead) {
        atomic_store(&self->pos, 0);
        self->written = 0;
        self->events = 0;
        self->exit_rounds = 0;
        atomic_flag_clear(&self->lock);
        atomic_store(&self->direct, 0);
        self->tid = (pid_t)syscall(SYS_gettid);
        self->index = atomic_fetch_add(&g_nthreads, 1);
        if (self->stack_mask)
            memset(self->stack_keys, 0, (size_t)(self->stack_mask + 1) * sizeof(uint64_t));
        self->stack_count = 0;
        if (self->node_mask)
            memset(self->node_id, 0, (size_t)(self->node_mask + 1) * sizeof(uint32_t));
        self->node_count = 0;
        self->prev_seq = self->prev_ptr = self->prev_addr = self->prev_mark = self->mark_coarse = 0;
        self->prev_len = 0; /* a new file: its first frame has no prefix */
        if (ht_open_file(self)) {
            self->next = NULL;
            atomic_store(&g_threads, self);
        } else {
            t_self = NULL;
        }
    } else {
        t_self = NULL;
    }
    t_busy = busy;
    errno = saved;
}

/* Options from the environment; false (with one message) on a bad value. */
static bool ht_read_options(void)
{
    char env[HT_ENV_MAX];
    for (int k = 0; k < HT_OPT_COUNT; k++) {
        if (k == HT_OPT_DIR)
            continue;
        const char *s = getenv(ht_option_env((ht_option_id)k, env));
        g_opt[k] = ht_options[k].def;
        if (s && !ht_option_parse((ht_option_id)k, s, &g_opt[k])) {
            ht_say(env, " has a bad value: ", s);
            return false;
        }
    }
    const char *dir = getenv(ht_option_env(HT_OPT_DIR, env));
    if (!dir || !*dir)
        dir = ht_options[HT_OPT_DIR].text_def;
    if (strlen(dir) >= sizeof g_dir) {
        ht_say(env, " is too long: ", dir);
        return false;
    }
    strcpy(g_dir, dir);
    return true;
}

static void ht_resolve(void)
{
    int expected = 0;
    if (atomic_load(&g_ready) || !atomic_compare_exchange_strong(&g_resolving, &expected, 1))
        return;
#define HT_NEXT(f) next.f = (__typeof__(next.f))dlsym(RTLD_NEXT, #f)
    HT_NEXT(malloc);
    HT_NEXT(free);
    HT_NEXT(calloc);
    HT_NEXT(realloc);
    HT_NEXT(reallocarray);
    HT_NEXT(posix_memalign);
    HT_NEXT(aligned_alloc);
    HT_NEXT(memalign);
    HT_NEXT(valloc);
    HT_NEXT(pvalloc);
    HT_NEXT(malloc_usable_size);
    HT_NEXT(_exit);
    HT_NEXT(_Exit);
    HT_NEXT(execve);
    HT_NEXT(execv);
    HT_NEXT(execvp);
    HT_NEXT(execvpe);
    HT_NEXT(fexecve);
#undef HT_NEXT
    if (!next.malloc || !next.free || !next.calloc || !next.realloc || !next.posix_memalign) {
        ht_say("cannot find the next malloc, free, calloc, realloc or posix_memalign", "", "");
        _exit(127);
    }
    atomic_store_explicit(&g_ready, 1, memory_order_release);
}

__attribute__((constructor)) static void ht_init(void)
{
    t_busy = 1;
    ht_resolve();
    ht_start_instance();
    ssize_t n = readlink("/proc/self/exe", g_exe, sizeof g_exe - 1);
    g_exe[n > 0 ? n : 0] = 0;
    int cfd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (cfd >= 0) {
        ssize_t k = read(cfd, g_comm, sizeof g_comm - 1);
        g_comm[k > 0 ? k : 0] = 0;
        g_comm[strcspn(g_comm, "\n")] = 0;
        close(cfd);
    }
    if (!ht_read_options()) {
        t_busy = 0;
        return;
    }
    if (g_opt[HT_OPT_MODE] == HT_MODE_SAMPLED) {
        g_flags |= HT_F_SAMPLED;
        g_salt = ht_mix(g_epoch_rt ^ ((uint64_t)g_pid << 40) ^ g_epoch);
        g_track_below = UINT64_MAX / g_opt[HT_OPT_EVERY];
    }
    if (g_opt[HT_OPT_STACKS])
        g_flags |= HT_F_STACKS;
    if (pthread_key_create(&g_key, ht_thread_exit) != 0 ||
        pthread_atfork(NULL, NULL, ht_atfork_child) != 0) {
        ht_say("cannot set up thread exit or fork handling; not recording", "", "");
        t_busy = 0;
        return;
    }
    if (g_opt[HT_OPT_STACKS]) {
        /* libunwind sets itself up on its first use: do that now. */
        void *fr[4];
        unw_backtrace(fr, 4);
    }
    atomic_store(&g_on, 1);
    t_busy = 0;
}

__attribute__((destructor)) static void ht_fini(void)
{
    ht_flush_all();
}
