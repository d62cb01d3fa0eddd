/* trace_read.c - see trace_read.h. */
#include "trace_read.h"

#include "../symbolizer/debuginfo.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

void tr_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fprintf(stderr, "hakmem-trace: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

void *tr_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        tr_die(1, "out of memory (%zu bytes)", n);
    return p;
}

void *tr_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        tr_die(1, "out of memory (%zu bytes)", n);
    return q;
}

static char *tr_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(tr_xmalloc(n), s, n);
}

const char *tr_op_name(uint8_t op)
{
    switch (op) {
    case HT_OP_MALLOC: return "malloc";
    case HT_OP_FREE: return "free";
    case HT_OP_CALLOC: return "calloc";
    case HT_OP_REALLOC: return "realloc";
    case HT_OP_REALLOCARRAY: return "reallocarray";
    case HT_OP_POSIX_MEMALIGN: return "posix_memalign";
    case HT_OP_ALIGNED_ALLOC: return "aligned_alloc";
    case HT_OP_MEMALIGN: return "memalign";
    case HT_OP_VALLOC: return "valloc";
    case HT_OP_PVALLOC: return "pvalloc";
    case HT_OP_USABLE_SIZE: return "malloc_usable_size";
    case HT_OP_STACK: return "stack";
    case HT_OP_END: return "end";
    default: return "?";
    }
}

/* ---- one file's records --------------------------------------------------- */

static bool bad(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool bad(const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hakmem-trace: %s: ", path);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return false;
}

#define HT_LIKELY_R(x) __builtin_expect(!!(x), 1)
#define TR_CHUNK (1365u * HT_UNIT)   /* bytes read at once (whole units) */
#define TR_FRAME_MAX (64u << 20)     /* larger frames are corrupt (the writer's are 256 KiB) */

struct tr_stream {
    const tr_file *f;
    uint64_t off;            /* file offset of in[in_len] */
    uint64_t end;            /* bytes of the file to read */
    unsigned char *in;       /* file bytes read, in[in_pos, in_len) not used yet */
    size_t in_pos, in_len, in_cap;
    uint64_t rec_off;        /* v2: file offset of the next unit; v3: of the next frame */
    bool eof;                /* in holds the file up to end */
    bool skim;               /* version 3, the first reading: calls are
                                counted, not returned; their marks kept
                                below (a call's fields after its order are
                                skipped) */
    uint64_t skim_events;
    tr_mark *skim_marks;
    uint32_t skim_nmarks, skim_capmarks;
    /* version 3 */
    ZSTD_DCtx *dctx;
    unsigned char *out;      /* the current frame's records */
    size_t out_pos, out_len, out_cap;
    unsigned char *prev;     /* the previous frame's: the next one's prefix */
    size_t prev_len, prev_cap;
    uint64_t frame_off;      /* file offset of the current frame */
    uint64_t prev_time, prev_ptr, prev_addr; /* prev_time: v3, the order */
    uint64_t prev_mark;      /* the last time mark's ns */
    bool mark_pending;       /* a mark not yet given to a record */
    uint64_t *node_addr;     /* the frame nodes, 1 ... nnodes */
    uint32_t *node_parent;
    uint32_t nnodes, capnodes;
    uint64_t frames[HT_MAX_FRAMES];
};

/* Makes at least `need` bytes available in in[in_pos ...] when the file
 * has them; the bytes available. -1 (with a message) on a read error. */
static int64_t stream_fill(tr_stream *s, size_t need)
{
    size_t avail = s->in_len - s->in_pos;
    if (avail >= need || s->eof)
        return (int64_t)avail;
    if (s->in_pos) {
        memmove(s->in, s->in + s->in_pos, avail);
        s->in_len = avail;
        s->in_pos = 0;
    }
    if (need > s->in_cap) {
        s->in_cap = need > 2 * s->in_cap ? need : 2 * s->in_cap;
        s->in = tr_xrealloc(s->in, s->in_cap);
    }
    /* opened for each read: a run may hold more files than descriptors */
    int fd = open(s->f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        bad(s->f->path, "cannot open: %s", strerror(errno));
        return -1;
    }
    while (s->in_len < need || (s->in_len < s->in_cap && s->in_len < TR_CHUNK)) {
        size_t want = s->in_cap - s->in_len;
        if (want > s->end - s->off)
            want = (size_t)(s->end - s->off);
        ssize_t r = want ? pread(fd, s->in + s->in_len, want, (off_t)s->off) : 0;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            bad(s->f->path, "cannot read: %s", strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0) {
            s->eof = true;
            break;
        }
        s->in_len += (size_t)r;
        s->off += (uint64_t)r;
    }
    close(fd);
    return (int64_t)(s->in_len - s->in_pos);
}

/* Closed streams' buffers and contexts, kept for the next ones (fresh
 * ones cost page faults: a walk opens one stream per thread file). */
typedef struct stream_bufs {
    unsigned char *in, *out, *prev;
    size_t in_cap, out_cap, prev_cap;
    ZSTD_DCtx *dctx;
} stream_bufs;
#define TR_POOL 64
static stream_bufs g_pool[TR_POOL];
static uint32_t g_npool;

tr_stream *tr_stream_open(const tr_file *f)
{
    tr_stream *s = calloc(1, sizeof *s);
    if (!s)
        tr_die(1, "out of memory");
    s->f = f;
    s->off = s->rec_off = s->frame_off = HT_HEADER_SIZE;
    s->end = f->data_end ? f->data_end : f->size;
    if (g_npool) {
        stream_bufs *b = &g_pool[--g_npool];
        s->in = b->in;
        s->in_cap = b->in_cap;
        s->out = b->out;
        s->out_cap = b->out_cap;
        s->prev = b->prev;
        s->prev_cap = b->prev_cap;
        s->dctx = b->dctx;
    } else {
        s->in_cap = TR_CHUNK;
        s->in = tr_xmalloc(s->in_cap);
    }
    if (f->h.version != HT_VERSION_UNITS && !s->dctx && !(s->dctx = ZSTD_createDCtx()))
        tr_die(1, "out of memory");
    return s;
}

void tr_stream_close(tr_stream *s)
{
    if (!s)
        return;
    if (g_npool < TR_POOL) {
        g_pool[g_npool++] = (stream_bufs){ s->in, s->out, s->prev, s->in_cap, s->out_cap, s->prev_cap, s->dctx };
    } else {
        ZSTD_freeDCtx(s->dctx);
        free(s->in);
        free(s->out);
        free(s->prev);
    }
    free(s->node_addr);
    free(s->node_parent);
    free(s->skim_marks);
    free(s);
}

static void stream_pool_free(void)
{
    while (g_npool) {
        stream_bufs *b = &g_pool[--g_npool];
        ZSTD_freeDCtx(b->dctx);
        free(b->in);
        free(b->out);
        free(b->prev);
    }
}

/* Version 2: the next unit's record. 1: a record, 0: the end, -1: corrupt
 * (said). */
static int stream_next_v2(tr_stream *s, ht_event *e, const uint64_t **frames)
{
    const tr_file *f = s->f;
    int64_t avail = stream_fill(s, HT_UNIT * (2 + HT_MAX_FRAMES / HT_FRAMES_PER_UNIT));
    if (avail < HT_UNIT)
        return avail < 0 ? -1 : 0;
    memcpy(e, s->in + s->in_pos, sizeof *e);
    uint64_t off = s->rec_off;
    uint8_t flag_mask = f->h.mode == HT_MODE_SAMPLED ? HT_EV_ALL : 0;
    if (e->reserved16 || (e->flags & ~flag_mask) || (e->old_size && !flag_mask))
        return bad(f->path, "corrupt record at byte %" PRIu64 " (reserved fields or flags set)", off), -1;
    uint64_t units = 1;
    if (e->op == HT_OP_STACK) {
        uint64_t n = e->size;
        units = 1 + (n + HT_FRAMES_PER_UNIT - 1) / HT_FRAMES_PER_UNIT;
        if (n == 0 || n > HT_MAX_FRAMES || e->stack == 0)
            return bad(f->path, "corrupt stack record at byte %" PRIu64, off), -1;
        if ((uint64_t)avail < units * HT_UNIT)
            return 0; /* cut in the middle of its frames */
        memcpy(s->frames, s->in + s->in_pos + HT_UNIT, n * sizeof(uint64_t));
        if (frames)
            *frames = s->frames;
    } else if (e->op != HT_OP_END) {
        if (e->op < HT_OP_MALLOC || e->op > HT_OP_LAST_CALL)
            return bad(f->path, "corrupt record at byte %" PRIu64 " (operation %u)", off, e->op), -1;
        if (e->stack && !(f->h.flags & HT_F_STACKS))
            return bad(f->path, "corrupt record at byte %" PRIu64 " (stack id without stacks)", off), -1;
    }
    s->in_pos += units * HT_UNIT;
    s->rec_off += units * HT_UNIT;
    return 1;
}

/* Version 3: reads the next zstd frame into out. 1: read, 0: the end (a
 * partial frame is left), -1: corrupt (said). */
static int stream_frame(tr_stream *s)
{
    const tr_file *f = s->f;
    s->frame_off = s->rec_off;
    size_t need = 32; /* more than a frame header (at most 18 bytes) */
    size_t csize;
    for (;;) {
        int64_t avail = stream_fill(s, need);
        if (avail <= 0)
            return avail < 0 ? -1 : 0;
        csize = ZSTD_findFrameCompressedSize(s->in + s->in_pos, (size_t)avail);
        if (!ZSTD_isError(csize))
            break;
        if (ZSTD_getErrorCode(csize) != ZSTD_error_srcSize_wrong)
            return bad(f->path, "corrupt compressed data in the frame at byte %" PRIu64 ": %s", s->frame_off,
                       ZSTD_getErrorName(csize)), -1;
        if ((size_t)avail < need || s->eof)
            return 0; /* the file ends inside this frame */
        if (need > TR_FRAME_MAX)
            return bad(f->path, "corrupt compressed data in the frame at byte %" PRIu64 ": over %u bytes",
                       s->frame_off, TR_FRAME_MAX), -1;
        need = (size_t)avail * 2;
    }
    const unsigned char *src = s->in + s->in_pos;
    /* the frame just read is this one's prefix (trace_format.h) */
    unsigned char *x = s->prev;
    size_t xcap = s->prev_cap;
    s->prev = s->out;
    s->prev_cap = s->out_cap;
    s->prev_len = s->out_len;
    s->out = x;
    s->out_cap = xcap;
    s->out_pos = s->out_len = 0;
    unsigned long long content = ZSTD_getFrameContentSize(src, csize);
    if (content == ZSTD_CONTENTSIZE_UNKNOWN || content == ZSTD_CONTENTSIZE_ERROR || content > TR_FRAME_MAX)
        return bad(f->path, "corrupt compressed data in the frame at byte %" PRIu64 ": no valid content size",
                   s->frame_off), -1;
    if (content > s->out_cap) {
        s->out_cap = (size_t)content;
        free(s->out);
        s->out = tr_xmalloc(s->out_cap);
    }
    size_t r = s->prev_len ? ZSTD_DCtx_refPrefix(s->dctx, s->prev, s->prev_len) : 0;
    if (!ZSTD_isError(r))
        r = ZSTD_decompressDCtx(s->dctx, s->out, s->out_cap, src, csize);
    if (ZSTD_isError(r) || r != content)
        return bad(f->path, "corrupt compressed data in the frame at byte %" PRIu64 ": %s", s->frame_off,
                   ZSTD_isError(r) ? ZSTD_getErrorName(r) : "content size differs"), -1;
    s->in_pos += csize;
    s->rec_off += csize;
    s->out_pos = 0;
    s->out_len = r;
    return 1;
}

/* A varint at *pp (before end); false past the end. */
static inline bool get_v(const unsigned char **pp, const unsigned char *end, uint64_t *v)
{
    const unsigned char *p = *pp;
    if (HT_LIKELY_R(p < end && *p < 0x80)) {
        *v = *p;
        *pp = p + 1;
        return true;
    }
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64 && p < end; shift += 7) {
        unsigned char b = *p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            *pp = p;
            return true;
        }
    }
    return false;
}

static inline uint64_t unzigzag(uint64_t z)
{
    return (z >> 1) ^ (0 - (z & 1));
}

static int corrupt_v3(tr_stream *s, const char *what)
{
    bad(s->f->path, "corrupt record in the frame at byte %" PRIu64 " (%s)", s->frame_off, what);
    return -1;
}

/* Skimming: the pending time mark is the one of the record of order
 * s->prev_time. False (said) past 2^32 marks. */
static bool skim_mark(tr_stream *s)
{
    s->mark_pending = false;
    if (s->skim_nmarks == UINT32_MAX) {
        bad(s->f->path, "over 2^32 time marks");
        return false;
    }
    if (s->skim_nmarks == s->skim_capmarks) {
        s->skim_capmarks = s->skim_capmarks ? 2 * s->skim_capmarks : 64;
        s->skim_marks = tr_xrealloc(s->skim_marks, s->skim_capmarks * sizeof *s->skim_marks);
    }
    s->skim_marks[s->skim_nmarks++] = (tr_mark){ s->prev_time, s->prev_mark, 0 };
    return true;
}

/* Version 3: the next record (trace_format.h). 1: a record, 0: the end,
 * -1: corrupt (said). */
static int stream_next_v3(tr_stream *s, ht_event *e, const uint64_t **frames)
{
    const tr_file *f = s->f;
    const bool stacks = f->h.flags & HT_F_STACKS;
    const uint8_t flag_mask = f->h.mode == HT_MODE_SAMPLED ? HT_EV_ALL : 0;
    for (;;) {
        while (s->out_pos == s->out_len) {
            int r = stream_frame(s);
            if (r <= 0)
                return r;
        }
        const unsigned char *p = s->out + s->out_pos, *end = s->out + s->out_len;
        unsigned char b = *p++;
        uint8_t op = b & HT_REC_OP;
        bool ext = b & HT_REC_EXT;
        if (s->skim && op >= HT_OP_MALLOC && op <= HT_OP_LAST_CALL) {
            /* the order, then as many varints as the record has (the
             * flags byte, below 0x80, ends like one) */
            uint64_t t;
            if (!get_v(&p, end, &t))
                return corrupt_v3(s, "a record runs past its frame");
            s->prev_time += unzigzag(t);
            if (s->mark_pending && !skim_mark(s))
                return -1;
            for (unsigned k = 2 + stacks + (ext ? 4 : 0); k; p++) {
                if (p == end)
                    return corrupt_v3(s, "a record runs past its frame");
                k -= *p < 0x80;
            }
            s->out_pos = (size_t)(p - s->out);
            s->skim_events++;
            continue;
        }
        memset(e, 0, sizeof *e);
        e->op = op;
        if (b & 0x80)
            return corrupt_v3(s, "a reserved bit set");
        if (op == HT_REC_TIME) {
            uint64_t d;
            if (ext || !get_v(&p, end, &d))
                return corrupt_v3(s, "a time mark");
            s->out_pos = (size_t)(p - s->out);
            s->prev_mark += unzigzag(d);
            s->mark_pending = true;
            continue;
        }
        if (op == HT_REC_NODE || op == HT_OP_STACK) {
            uint64_t a, c;
            if (ext || !get_v(&p, end, &a) || !get_v(&p, end, &c))
                return corrupt_v3(s, op == HT_REC_NODE ? "a frame node" : "a stack definition");
            s->out_pos = (size_t)(p - s->out);
            if (op == HT_REC_NODE) {
                if (a > s->nnodes || s->nnodes == UINT32_MAX - 1)
                    return corrupt_v3(s, "a frame node under a node not yet written");
                if (s->nnodes + 1 >= s->capnodes) {
                    s->capnodes = s->capnodes ? s->capnodes * 2 : 1024;
                    s->node_addr = tr_xrealloc(s->node_addr, s->capnodes * sizeof *s->node_addr);
                    s->node_parent = tr_xrealloc(s->node_parent, s->capnodes * sizeof *s->node_parent);
                }
                s->nnodes++;
                s->prev_addr += unzigzag(c);
                s->node_addr[s->nnodes] = s->prev_addr;
                s->node_parent[s->nnodes] = (uint32_t)a;
                continue;
            }
            if (a == 0 || a > UINT32_MAX || c == 0 || c > s->nnodes)
                return corrupt_v3(s, "a stack definition of a node not yet written");
            uint32_t n = 0;
            for (uint64_t k = c; k; k = s->node_parent[k]) {
                if (n == HT_MAX_FRAMES)
                    return corrupt_v3(s, "a stack of over 64 frames");
                s->frames[n++] = s->node_addr[k];
            }
            e->stack = (uint32_t)a;
            e->size = n;
            e->aux = ht_stack_hash(s->frames, n);
            if (frames)
                *frames = s->frames;
            return 1;
        }
        if ((op < HT_OP_MALLOC || op > HT_OP_LAST_CALL) && op != HT_OP_END) {
            char what[32];
            snprintf(what, sizeof what, "operation %u", op);
            return corrupt_v3(s, what);
        }
        uint64_t t, ptr, stack = 0, start = 0, old_size = 0;
        if (!get_v(&p, end, &t) || !get_v(&p, end, &ptr) || !get_v(&p, end, &e->size) ||
            (stacks && !get_v(&p, end, &stack)))
            return corrupt_v3(s, "a record runs past its frame");
        e->time = s->prev_time += unzigzag(t);
        if (s->mark_pending && s->skim && !skim_mark(s))
            return -1;
        s->mark_pending = false; /* a walk reads the times from the instance's marks */
        if (ptr)
            e->ptr = s->prev_ptr += unzigzag(ptr - 1);
        if (ext) {
            uint64_t aux;
            if (p == end)
                return corrupt_v3(s, "a record runs past its frame");
            e->flags = *p++;
            if (!get_v(&p, end, &start) || !get_v(&p, end, &old_size) || !get_v(&p, end, &aux))
                return corrupt_v3(s, "a record runs past its frame");
            if (op == HT_OP_REALLOC || op == HT_OP_REALLOCARRAY)
                e->aux = aux ? e->ptr + unzigzag(aux - 1) : 0;
            else
                e->aux = aux;
        }
        s->out_pos = (size_t)(p - s->out);
        if (stack > UINT32_MAX || start > UINT32_MAX || old_size > UINT32_MAX || (e->flags & ~flag_mask) ||
            (old_size && !flag_mask))
            return corrupt_v3(s, "a field out of range, or flags set");
        e->stack = (uint32_t)stack;
        e->start = (uint32_t)start;
        e->old_size = (uint32_t)old_size;
        return 1;
    }
}

/* 1: a record, 0: the end, -1: corrupt (said). */
static int stream_read(tr_stream *s, ht_event *e, const uint64_t **frames)
{
    return s->f->h.version == HT_VERSION_UNITS ? stream_next_v2(s, e, frames) : stream_next_v3(s, e, frames);
}

bool tr_stream_next(tr_stream *s, ht_event *e, const uint64_t **frames)
{
    int r = stream_read(s, e, frames);
    if (r < 0)
        tr_die(1, "%s: it no longer reads as it did at first (changed, or a record the first reading skimmed is corrupt)", s->f->path);
    return r > 0;
}

/* Reads and checks one file: header, then every record; keeps its counts
 * and stack definitions. */
static bool load_file(tr_file *f)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bad(f->path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return bad(f->path, "cannot stat: %s", strerror(errno));
    }
    f->size = (uint64_t)st.st_size;
    ssize_t got = pread(fd, &f->h, sizeof f->h, 0);
    close(fd);
    if (got >= 8 && memcmp(f->h.magic, HT_MAGIC, 8) != 0)
        return bad(f->path, "not a hakmem trace file (no HAKTRACE header)");
    if (got < (ssize_t)sizeof f->h)
        return bad(f->path, "not a hakmem trace file: %lld bytes, shorter than the %d-byte header",
                   (long long)st.st_size, HT_HEADER_SIZE);
    if (f->h.version != HT_VERSION && f->h.version != HT_VERSION_UNITS)
        return bad(f->path, "trace format version %u; this reader knows versions %d and %d", f->h.version,
                   HT_VERSION_UNITS, HT_VERSION);
    uint32_t unit = f->h.version == HT_VERSION_UNITS ? HT_UNIT : 0;
    if (f->h.header_size != HT_HEADER_SIZE || f->h.unit_size != unit || f->h.mode > 1)
        return bad(f->path, "corrupt header (header size %u, unit %u, mode %u)",
                   f->h.header_size, f->h.unit_size, f->h.mode);
    f->h.exe[sizeof f->h.exe - 1] = 0;
    f->h.comm[sizeof f->h.comm - 1] = 0;
    tr_stream *s = tr_stream_open(f);
    s->skim = f->h.version != HT_VERSION_UNITS; /* calls counted, marks kept, not returned */
    ht_event e;
    const uint64_t *frames;
    uint32_t cap = 0;
    uint64_t fcap = 0, nframes = 0;
    int r;
    while ((r = stream_read(s, &e, &frames)) > 0) {
        if (e.op == HT_OP_STACK) {
            if (f->nstacks == cap) {
                cap = cap ? cap * 2 : 64;
                f->stacks = tr_xrealloc(f->stacks, cap * sizeof *f->stacks);
            }
            if (nframes + e.size > fcap) {
                fcap = fcap ? fcap * 2 : 1024;
                f->frames = tr_xrealloc(f->frames, fcap * sizeof *f->frames);
            }
            memcpy(f->frames + nframes, frames, e.size * sizeof *frames);
            f->stacks[f->nstacks++] = (tr_stack_def){ e.aux, e.stack, (uint32_t)e.size, nframes };
            nframes += e.size;
            if (e.stack > f->nstack_ids)
                f->nstack_ids = e.stack;
        } else if (e.op == HT_OP_END) {
            f->has_end = true;
            f->ended_events = e.size;
        } else {
            f->events++;
            if (f->h.version == HT_VERSION_UNITS)
                f->last_time = e.time;
        }
    }
    if (s->skim) {
        f->events += s->skim_events;
        f->marks = s->skim_marks;
        f->nmarks = s->skim_nmarks;
        if (f->nmarks)
            f->last_time = f->marks[f->nmarks - 1].ns;
        s->skim_marks = NULL;
    }
    f->data_end = s->rec_off;
    f->cut_bytes = f->size - f->data_end;
    tr_stream_close(s);
    return r == 0;
}

/* ---- instances and stacks ------------------------------------------------ */

static int cmp_file_ptr(const void *a, const void *b)
{
    const tr_file *x = *(tr_file *const *)a, *y = *(tr_file *const *)b;
    return x->h.thread_index < y->h.thread_index ? -1 : x->h.thread_index > y->h.thread_index;
}

static void build_sites(tr_instance *in)
{
    tr_map by_hash;
    tr_map_init(&by_hash);
    uint32_t cap = 16;
    in->sites = tr_xmalloc(cap * sizeof *in->sites);
    in->nsites = 1;
    for (uint32_t i = 0; i < in->nfiles; i++) {
        tr_file *f = in->files[i];
        f->site_of = calloc((size_t)f->nstack_ids + 1, sizeof *f->site_of);
        if (!f->site_of)
            tr_die(1, "out of memory");
        for (uint32_t k = 0; k < f->nstacks; k++) {
            const tr_stack_def *d = &f->stacks[k];
            uint64_t *v = tr_map_get(&by_hash, d->hash);
            uint32_t site;
            if (v) {
                site = (uint32_t)*v;
            } else {
                if (in->nsites == cap) {
                    cap *= 2;
                    in->sites = tr_xrealloc(in->sites, cap * sizeof *in->sites);
                }
                site = in->nsites++;
                in->sites[site] = (tr_site){ d->hash, d->nframes, f->frames + d->first };
                tr_map_put(&by_hash, d->hash, site);
            }
            f->site_of[d->id] = site;
        }
    }
    tr_map_free(&by_hash);
}

static int cmp_inst(const void *a, const void *b)
{
    const tr_instance *x = a, *y = b;
    return x->epoch < y->epoch ? -1 : x->epoch > y->epoch;
}

/* Every *.htrk file of the run's directory, not yet read; false (with a
 * message) when there is none or the directory cannot be read. */
static bool list_files(tr_run *run)
{
    const char *dir = run->dir;
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "hakmem-trace: %s: cannot open the trace directory: %s\n", dir, strerror(errno));
        return false;
    }
    uint32_t cap = 16;
    run->files = tr_xmalloc(cap * sizeof *run->files);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".htrk") != 0)
            continue;
        if (run->nfiles == cap) {
            cap *= 2;
            run->files = tr_xrealloc(run->files, cap * sizeof *run->files);
        }
        tr_file *f = &run->files[run->nfiles++];
        memset(f, 0, sizeof *f);
        f->path = tr_xmalloc(strlen(dir) + n + 2);
        sprintf(f->path, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (run->nfiles == 0) {
        fprintf(stderr, "hakmem-trace: %s: no trace files (*.htrk) in this directory\n", dir);
        return false;
    }
    return true;
}

/* Instances: files with the same pid and epoch, counted (their files are
 * gathered by gather_instance_files), in order of their epochs. */
static void group_instances(tr_run *run)
{
    run->inst = calloc(run->nfiles, sizeof *run->inst);
    if (!run->inst)
        tr_die(1, "out of memory");
    for (uint32_t i = 0; i < run->nfiles; i++) {
        tr_file *f = &run->files[i];
        tr_instance *in = NULL;
        for (uint32_t k = 0; k < run->ninst && !in; k++)
            if (run->inst[k].pid == f->h.pid && run->inst[k].epoch == f->h.epoch_ns)
                in = &run->inst[k];
        if (!in) {
            in = &run->inst[run->ninst++];
            in->pid = f->h.pid;
            in->ppid = f->h.ppid;
            in->epoch = f->h.epoch_ns;
            in->parent_epoch = f->h.parent_epoch_ns;
            in->flags = f->h.flags;
            in->mode = f->h.mode;
            in->sample_threshold = f->h.sample_threshold;
            in->sample_every = f->h.sample_every;
            in->exe = f->h.exe;
            in->comm = f->h.comm;
        }
        in->nfiles++;
    }
    qsort(run->inst, run->ninst, sizeof *run->inst, cmp_inst);
}

static int cmp_mark(const void *a, const void *b)
{
    const tr_mark *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Version 3: the time marks of every file, by order; a mark earlier in
 * order but later in time (a thread paused between taking its order and
 * reading the clock) gives way to the next one's time. */
static void gather_marks(tr_instance *in)
{
    in->by_order = true;
    uint64_t n = 0;
    for (uint32_t i = 0; i < in->nfiles; i++)
        n += in->files[i]->nmarks;
    in->marks = tr_xmalloc((n ? n : 1) * sizeof *in->marks);
    in->nmarks = 0;
    for (uint32_t i = 0; i < in->nfiles; i++) {
        memcpy(in->marks + in->nmarks, in->files[i]->marks, in->files[i]->nmarks * sizeof *in->marks);
        in->nmarks += in->files[i]->nmarks;
    }
    qsort(in->marks, in->nmarks, sizeof *in->marks, cmp_mark);
    for (uint64_t k = in->nmarks; k-- > 1;)
        if (in->marks[k - 1].ns > in->marks[k].ns)
            in->marks[k - 1].ns = in->marks[k].ns;
    for (uint64_t k = 0; k + 1 < in->nmarks; k++) {
        tr_mark *m = &in->marks[k];
        uint64_t d = m[1].order - m->order;
        m->slope = d ? (double)(m[1].ns - m->ns) / (double)d : 0;
    }
    in->last_time = in->nmarks ? in->marks[in->nmarks - 1].ns : 0;
}

uint64_t tr_time_at(const tr_instance *in, uint64_t order, uint64_t *hint)
{
    if (!in->by_order)
        return order;
    if (!in->nmarks)
        return 0;
    const tr_mark *m = in->marks;
    uint64_t n = in->nmarks, j = *hint < n ? *hint : 0;
    for (int step = 0; step < 8 && j + 1 < n && m[j + 1].order <= order; step++)
        j++;
    if (m[j].order > order ? j > 0 : j + 1 < n && m[j + 1].order <= order) {
        /* far from the hint (another thread's marks between): the last
         * mark at or before order, or the first */
        uint64_t lo = 0, hi = n; /* m[lo].order <= order < m[hi].order */
        if (m[0].order > order) {
            hi = 0;
        } else {
            while (hi - lo > 1) {
                uint64_t mid = lo + (hi - lo) / 2;
                if (m[mid].order <= order)
                    lo = mid;
                else
                    hi = mid;
            }
        }
        j = lo;
    }
    *hint = j;
    if (order <= m[j].order || j + 1 == in->nmarks)
        return m[j].ns;
    uint64_t span = (uint64_t)((double)(order - m[j].order) * m[j].slope);
    uint64_t gap = m[j + 1].ns - m[j].ns;
    return m[j].ns + (span < gap ? span : gap);
}

/* An instance's files, one per thread in thread order, its record count,
 * last time, call sites and maps file; false (with a message) when its
 * files disagree. */
static bool gather_instance_files(tr_run *run, tr_instance *in)
{
    in->files = tr_xmalloc(in->nfiles * sizeof *in->files);
    in->nfiles = 0;
    for (uint32_t i = 0; i < run->nfiles; i++) {
        tr_file *f = &run->files[i];
        if (f->h.pid != in->pid || f->h.epoch_ns != in->epoch)
            continue;
        if (f->h.mode != in->mode || f->h.flags != in->flags)
            return bad(f->path, "its mode or flags differ from the other files of process %" PRIu64, in->pid);
        in->files[in->nfiles++] = f;
        in->events += f->events;
        if (f->last_time > in->last_time)
            in->last_time = f->last_time;
    }
    qsort(in->files, in->nfiles, sizeof *in->files, cmp_file_ptr);
    if (in->nfiles && in->files[0]->h.version != HT_VERSION_UNITS)
        gather_marks(in);
    for (uint32_t i = 0; i < in->nfiles; i++) {
        if (i && in->files[i]->h.thread_index == in->files[i - 1]->h.thread_index)
            return bad(in->files[i]->path, "a second file for thread %u of process %" PRIu64,
                       in->files[i]->h.thread_index, in->pid);
        in->files[i]->thread = i;
    }
    build_sites(in);
    snprintf(in->maps_path, sizeof in->maps_path, "%s/%" PRIu64 "-%" PRIu64 ".maps", run->dir, in->pid,
             in->epoch);
    if (access(in->maps_path, R_OK) != 0)
        in->maps_path[0] = 0;
    return true;
}

bool tr_open(const char *dir, tr_run *run)
{
    memset(run, 0, sizeof *run);
    run->dir = dir;
    if (!list_files(run))
        return false;
    for (uint32_t i = 0; i < run->nfiles; i++)
        if (!load_file(&run->files[i]))
            return false;
    group_instances(run);
    for (uint32_t k = 0; k < run->ninst; k++)
        if (!gather_instance_files(run, &run->inst[k]))
            return false;
    return true;
}

tr_instance *tr_pick_instance(tr_run *run, uint64_t pid)
{
    tr_instance *in = NULL;
    for (uint32_t k = 0; k < run->ninst; k++) {
        tr_instance *x = &run->inst[k];
        if (pid ? x->pid == pid && !in : !in || x->events > in->events)
            in = x;
    }
    if (pid && !in)
        fprintf(stderr, "hakmem-trace: %s: no process %" PRIu64 " in this trace\n", run->dir, pid);
    return in;
}

static void symtabs_free(void);

void tr_close(tr_run *run)
{
    symtabs_free();
    stream_pool_free();
    for (uint32_t i = 0; i < run->nfiles; i++) {
        tr_file *f = &run->files[i];
        free(f->stacks);
        free(f->frames);
        free(f->marks);
        free(f->site_of);
        free(f->path);
    }
    for (uint32_t k = 0; k < run->ninst; k++) {
        free(run->inst[k].files);
        free(run->inst[k].marks);
        free(run->inst[k].sites);
    }
    free(run->files);
    free(run->inst);
    memset(run, 0, sizeof *run);
}

/* ---- the walk ------------------------------------------------------------ */

/* The time of order for a cursor: from the interval between two marks
 * that its last call found, else tr_time_at (which moves it). */
static inline uint64_t cursor_time(const tr_instance *in, tr_cursor *c, uint64_t order)
{
    if (!in->by_order)
        return order;
    if (order - c->iv_lo < c->iv_hi - c->iv_lo) {
        uint64_t span = (uint64_t)((double)(order - c->iv_lo) * c->iv_slope);
        return c->iv_ns + (span < c->iv_gap ? span : c->iv_gap);
    }
    uint64_t t = tr_time_at(in, order, &c->hint);
    const tr_mark *m = in->marks;
    uint64_t j = c->hint;
    if (j + 1 < in->nmarks && m[j].order <= order) {
        c->iv_lo = m[j].order;
        c->iv_hi = m[j + 1].order;
        c->iv_ns = m[j].ns;
        c->iv_gap = m[j + 1].ns - m[j].ns;
        c->iv_slope = m[j].slope;
    }
    return t;
}

/* Moves a cursor to its next call record; false (the stream closed) at the
 * end of the file. */
static bool cursor_settle(const tr_instance *in, tr_cursor *c)
{
    while (c->s && tr_stream_next(c->s, &c->ev, NULL)) {
        const ht_event *e = &c->ev;
        if (e->op == HT_OP_STACK || e->op == HT_OP_END)
            continue;
        if (tr_is_realloc_op(e->op) && e->aux && c->phase == 0) {
            uint64_t start = e->start > e->time ? e->time : e->start;
            c->key = e->time - start;
        } else {
            if (c->phase == 0 && !(tr_is_realloc_op(e->op) && e->aux))
                c->phase = 1;
            c->key = e->time;
        }
        c->time = cursor_time(in, c, c->key);
        return true;
    }
    tr_stream_close(c->s);
    c->s = NULL;
    return false;
}

static inline bool heap_less(const tr_walk *w, uint32_t a, uint32_t b)
{
    uint64_t ka = w->cur[a].key, kb = w->cur[b].key;
    return ka < kb || (ka == kb && a < b);
}

static void heap_down(tr_walk *w, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->nheap && heap_less(w, w->heap[l], w->heap[m]))
            m = l;
        if (r < w->nheap && heap_less(w, w->heap[r], w->heap[m]))
            m = r;
        if (m == i)
            return;
        uint32_t t = w->heap[i];
        w->heap[i] = w->heap[m];
        w->heap[m] = t;
        i = m;
    }
}

void tr_walk_init(tr_walk *w, tr_instance *in)
{
    w->in = in;
    w->cur = calloc(in->nfiles ? in->nfiles : 1, sizeof *w->cur);
    w->heap = tr_xmalloc((in->nfiles ? in->nfiles : 1) * sizeof *w->heap);
    if (!w->cur)
        tr_die(1, "out of memory");
    w->nheap = 0;
    for (uint32_t i = 0; i < in->nfiles; i++) {
        w->cur[i].s = tr_stream_open(in->files[i]);
        if (cursor_settle(in, &w->cur[i]))
            w->heap[w->nheap++] = i;
    }
    for (uint32_t i = w->nheap / 2; i-- > 0;)
        heap_down(w, i);
}

bool tr_walk_next(tr_walk *w, tr_item *it)
{
    if (w->nheap == 0)
        return false;
    uint32_t fi = w->heap[0];
    tr_cursor *c = &w->cur[fi];
    w->ev = c->ev;
    const ht_event *e = &w->ev;
    it->e = e;
    it->key = c->key;
    it->time = c->time;
    it->thread = fi;
    if (tr_is_alloc_op(e->op)) {
        it->kind = TR_ALLOC;
    } else if (e->op == HT_OP_FREE) {
        it->kind = TR_FREE;
    } else if (tr_is_realloc_op(e->op)) {
        it->kind = c->phase == 0 ? TR_REALLOC_OLD : TR_REALLOC_NEW;
    } else {
        it->kind = TR_OTHER;
    }
    if (it->kind == TR_REALLOC_OLD) {
        c->phase = 1;
        c->key = e->time;
        c->time = cursor_time(w->in, c, c->key);
    } else {
        c->phase = 0;
        if (!cursor_settle(w->in, c)) {
            w->heap[0] = w->heap[--w->nheap];
        }
    }
    if (w->nheap)
        heap_down(w, 0);
    return true;
}

void tr_walk_done(tr_walk *w)
{
    for (uint32_t i = 0; i < w->in->nfiles; i++)
        tr_stream_close(w->cur[i].s);
    free(w->cur);
    free(w->heap);
}

/* ---- pointer map (linear probing, backward-shift deletion) ----------------- */

void tr_map_init(tr_map *m)
{
    m->mask = 1023;
    m->count = 0;
    m->e = calloc(m->mask + 1, sizeof *m->e);
    if (!m->e)
        tr_die(1, "out of memory");
}

void tr_map_free(tr_map *m)
{
    free(m->e);
}

static inline uint64_t map_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

uint64_t *tr_map_get(tr_map *m, uint64_t key)
{
    for (uint64_t i = map_hash(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->e[i].key == key)
            return &m->e[i].val;
        if (m->e[i].key == 0)
            return NULL;
    }
}

/* At most half full: linear probing's runs stay short. */
static void map_grow(tr_map *m)
{
    tr_map n;
    n.mask = m->mask * 2 + 1;
    n.count = m->count;
    n.e = calloc(n.mask + 1, sizeof *n.e);
    if (!n.e)
        tr_die(1, "out of memory");
    for (uint64_t i = 0; i <= m->mask; i++) {
        if (!m->e[i].key)
            continue;
        uint64_t j = map_hash(m->e[i].key) & n.mask;
        while (n.e[j].key)
            j = (j + 1) & n.mask;
        n.e[j] = m->e[i];
    }
    tr_map_free(m);
    *m = n;
}

uint64_t *tr_map_slot(tr_map *m, uint64_t key, bool *found)
{
    if ((m->count + 1) * 2 > m->mask + 1)
        map_grow(m);
    uint64_t i = map_hash(key) & m->mask;
    while (m->e[i].key && m->e[i].key != key)
        i = (i + 1) & m->mask;
    *found = m->e[i].key != 0;
    if (!*found) {
        m->count++;
        m->e[i].key = key;
        m->e[i].val = 0;
    }
    return &m->e[i].val;
}

void tr_map_put(tr_map *m, uint64_t key, uint64_t val)
{
    bool found;
    *tr_map_slot(m, key, &found) = val;
}

bool tr_map_take(tr_map *m, uint64_t key, uint64_t *val)
{
    uint64_t i = map_hash(key) & m->mask;
    while (m->e[i].key != key) {
        if (m->e[i].key == 0)
            return false;
        i = (i + 1) & m->mask;
    }
    if (val)
        *val = m->e[i].val;
    m->count--;
    /* backward shift: move later entries of the run into the hole */
    uint64_t hole = i;
    for (uint64_t j = (i + 1) & m->mask; m->e[j].key; j = (j + 1) & m->mask) {
        uint64_t home = map_hash(m->e[j].key) & m->mask;
        /* j's entry may move to hole if home is not in (hole, j] cyclically */
        bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            m->e[hole] = m->e[j];
            hole = j;
        }
    }
    m->e[hole].key = 0;
    return true;
}

/* ---- symbols --------------------------------------------------------------- */

typedef struct sym {
    uint64_t value, size;
    const char *name;
} sym;

/* A file's symbols, read once per run of this program (every process of a
 * trace maps the same libraries). */
typedef struct symtab {
    char *path;
    bool loaded, exec;  /* exec: ET_EXEC, symbols at absolute addresses */
    void *map;
    size_t map_size;
    sym *syms;
    size_t nsyms;
} symtab;

static symtab *g_tabs;
static uint32_t g_ntabs, g_captabs;
static sym_debuginfo *g_debuginfo; /* file:line from DWARF (symbolizer/debuginfo.c) */

typedef struct module {
    uint32_t tab;       /* g_tabs index */
    uint64_t base;      /* load address of file offset 0 in this process */
} module;

typedef struct mapping {
    uint64_t start, end;
    uint32_t module;
} mapping;

struct tr_symbolizer {
    module *mods;
    uint32_t nmods;
    mapping *maps;
    uint32_t nmaps;
    /* names already made: address -> 1 + offset in names (a site's frames
     * repeat across sites, and file:line from DWARF is dear) */
    tr_map cache;
    char *names;
    size_t nnames, capnames;
};

static uint32_t symtab_of(const char *path)
{
    for (uint32_t i = 0; i < g_ntabs; i++)
        if (strcmp(g_tabs[i].path, path) == 0)
            return i;
    if (g_ntabs == g_captabs) {
        g_captabs = g_captabs ? g_captabs * 2 : 32;
        g_tabs = tr_xrealloc(g_tabs, g_captabs * sizeof *g_tabs);
    }
    memset(&g_tabs[g_ntabs], 0, sizeof g_tabs[g_ntabs]);
    g_tabs[g_ntabs].path = tr_strdup(path);
    return g_ntabs++;
}

static int cmp_sym(const void *a, const void *b)
{
    const sym *x = a, *y = b;
    return x->value < y->value ? -1 : x->value > y->value;
}

static void load_symbols(symtab *m)
{
    m->loaded = true;
    int fd = open(m->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(Elf64_Ehdr)) {
        close(fd);
        return;
    }
    m->map_size = (size_t)st.st_size;
    m->map = mmap(NULL, m->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        return;
    }
    const unsigned char *b = m->map;
    const Elf64_Ehdr *eh = m->map;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > m->map_size)
        return;
    m->exec = eh->e_type == ET_EXEC;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(b + eh->e_shoff);
    const Elf64_Shdr *tab = NULL;
    for (int pass = 0; pass < 2 && !tab; pass++)
        for (unsigned i = 0; i < eh->e_shnum; i++)
            if (sh[i].sh_type == (pass == 0 ? SHT_SYMTAB : SHT_DYNSYM) && sh[i].sh_entsize)
                tab = &sh[i];
    if (!tab || tab->sh_link >= eh->e_shnum || tab->sh_offset + tab->sh_size > m->map_size)
        return;
    const Elf64_Shdr *strs = &sh[tab->sh_link];
    if (strs->sh_offset + strs->sh_size > m->map_size)
        return;
    size_t n = tab->sh_size / sizeof(Elf64_Sym);
    const Elf64_Sym *s = (const Elf64_Sym *)(b + tab->sh_offset);
    m->syms = tr_xmalloc(n * sizeof *m->syms);
    for (size_t i = 0; i < n; i++) {
        if (ELF64_ST_TYPE(s[i].st_info) != STT_FUNC || !s[i].st_value || s[i].st_name >= strs->sh_size)
            continue;
        m->syms[m->nsyms++] = (sym){ s[i].st_value, s[i].st_size,
                                     (const char *)b + strs->sh_offset + s[i].st_name };
    }
    qsort(m->syms, m->nsyms, sizeof *m->syms, cmp_sym);
}

static void symtabs_free(void)
{
    for (uint32_t i = 0; i < g_ntabs; i++) {
        if (g_tabs[i].map)
            munmap(g_tabs[i].map, g_tabs[i].map_size);
        free(g_tabs[i].syms);
        free(g_tabs[i].path);
    }
    free(g_tabs);
    g_tabs = NULL;
    g_ntabs = g_captabs = 0;
    sym_debuginfo_free(g_debuginfo);
    g_debuginfo = NULL;
}

tr_symbolizer *tr_symbolizer_new(const char *maps_path)
{
    tr_symbolizer *s = calloc(1, sizeof *s);
    if (!s)
        tr_die(1, "out of memory");
    tr_map_init(&s->cache);
    FILE *f = maps_path && *maps_path ? fopen(maps_path, "r") : NULL;
    if (!f)
        return s;
    char line[8192];
    uint32_t mcap = 0, pcap = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long start, end, off;
        char perms[8];
        int pathpos = 0;
        if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &start, &end, perms, &off, &pathpos) < 4 ||
            !pathpos || line[pathpos] != '/')
            continue;
        char *path = line + pathpos;
        path[strcspn(path, "\n")] = 0;
        uint32_t tab = symtab_of(path), mi;
        for (mi = 0; mi < s->nmods; mi++)
            if (s->mods[mi].tab == tab)
                break;
        if (mi == s->nmods) {
            if (s->nmods == mcap) {
                mcap = mcap ? mcap * 2 : 16;
                s->mods = tr_xrealloc(s->mods, mcap * sizeof *s->mods);
            }
            s->mods[mi] = (module){ tab, start - off };
            s->nmods++;
        }
        if (off == 0)
            s->mods[mi].base = start;
        if (s->nmaps == pcap) {
            pcap = pcap ? pcap * 2 : 64;
            s->maps = tr_xrealloc(s->maps, pcap * sizeof *s->maps);
        }
        s->maps[s->nmaps++] = (mapping){ start, end, mi };
    }
    fclose(f);
    return s;
}

/* " at FILE:LINE" of the instruction at vaddr of the object at path, when its
 * DWARF has it, and ", inlined: F at FILE:LINE, ..." for the functions
 * inlined there, outermost first; nothing without line information. The
 * frames are return addresses: the caller asks about the byte before. */
static void append_source(const char *path, uint64_t vaddr, char *out, size_t size)
{
    if (!g_debuginfo)
        g_debuginfo = sym_debuginfo_new();
    sym_source src[SYM_SOURCE_MAX];
    int n = sym_debuginfo_lookup(g_debuginfo, path, vaddr, src, SYM_SOURCE_MAX, NULL);
    size_t len = 0;
    for (int k = n - 1; k >= 0 && len < size; k--) {
        const char *file = src[k].file ? src[k].file : "??";
        if (k == n - 1)
            len += (size_t)snprintf(out + len, size - len, " at %s:%d", file, src[k].line);
        else
            len += (size_t)snprintf(out + len, size - len, "%s %s at %s:%d", k == n - 2 ? ", inlined:" : ",",
                                    src[k].function, file, src[k].line);
    }
}

static const char *symbolize(tr_symbolizer *s, uint64_t addr, char *buf, size_t size);

const char *tr_symbolize(tr_symbolizer *s, uint64_t addr, char *buf, size_t size)
{
    if (!size)
        return buf;
    bool found;
    uint64_t *slot = addr ? tr_map_slot(&s->cache, addr, &found) : NULL;
    if (slot && found) {
        snprintf(buf, size, "%s", s->names + *slot - 1);
        return buf;
    }
    symbolize(s, addr, buf, size);
    if (slot) {
        size_t n = strlen(buf) + 1;
        if (s->nnames + n > s->capnames) {
            s->capnames = 2 * (s->nnames + n);
            s->names = tr_xrealloc(s->names, s->capnames);
        }
        memcpy(s->names + s->nnames, buf, n);
        *slot = s->nnames + 1;
        s->nnames += n;
    }
    return buf;
}

static const char *symbolize(tr_symbolizer *s, uint64_t addr, char *buf, size_t size)
{
    /* the mapping holding addr: /proc/self/maps lists them in address order */
    uint32_t lo0 = 0, hi0 = s->nmaps;
    while (lo0 < hi0) {
        uint32_t mid = (lo0 + hi0) / 2;
        if (s->maps[mid].start <= addr)
            lo0 = mid + 1;
        else
            hi0 = mid;
    }
    for (uint32_t i = lo0 ? lo0 - 1 : 0; i < lo0; i++) {
        if (addr < s->maps[i].start || addr >= s->maps[i].end)
            continue;
        const module *mod = &s->mods[s->maps[i].module];
        symtab *m = &g_tabs[mod->tab];
        if (!m->loaded)
            load_symbols(m);
        const char *base = strrchr(m->path, '/') ? strrchr(m->path, '/') + 1 : m->path;
        uint64_t rel = m->exec ? addr : addr - mod->base;
        /* last symbol with value <= rel */
        size_t lo = 0, hi = m->nsyms;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (m->syms[mid].value <= rel)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t len;
        if (lo > 0 && (!m->syms[lo - 1].size || rel < m->syms[lo - 1].value + m->syms[lo - 1].size + 16)) {
            const sym *y = &m->syms[lo - 1];
            len = (size_t)snprintf(buf, size, "%s+0x%" PRIx64 " (%s)", y->name, rel - y->value, base);
        } else {
            len = (size_t)snprintf(buf, size, "%s+0x%" PRIx64, base, rel);
        }
        if (len < size && rel)
            append_source(m->path, rel - 1, buf + len, size - len);
        return buf;
    }
    snprintf(buf, size, "0x%" PRIx64, addr);
    return buf;
}

void tr_symbolizer_free(tr_symbolizer *s)
{
    tr_map_free(&s->cache);
    free(s->names);
    free(s->mods);
    free(s->maps);
    free(s);
}
