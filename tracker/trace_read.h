/* trace_read.h - reading a trace directory: validating its files, grouping
 * them into instances (process images), merging an instance's threads into
 * one time order, a pointer map, and naming stack frames.
 *
 * Files are streamed, never held whole: tr_open reads each once (checks
 * every record, counts them, keeps the stack definitions), and each walk
 * reads them again, holding one buffer (version 3: one zstd frame and its
 * records) per file.
 *
 * The merge ("walk") yields items keyed by (time, thread index): an
 * allocation at its time, a free at its time, and a realloc twice - its
 * release of the old block at the call's start, its new block at the end
 * (TR_REALLOC_NEW). Live bytes are counted at the items with a size
 * change: allocations, frees and TR_REALLOC_NEW (new - old at once), so
 * report and compile agree on the trace's peak to the byte.
 */
#ifndef TR_TRACE_READ_H
#define TR_TRACE_READ_H

#include "trace_format.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One stack definition of a file: its frames are tr_file.frames[first ..
 * first + nframes), innermost first. */
typedef struct tr_stack_def {
    uint64_t hash;
    uint32_t id, nframes;
    uint64_t first;
} tr_stack_def;

/* A time mark (version 3): the record of that order was made at ns. */
typedef struct tr_mark {
    uint64_t order, ns;
    double slope;     /* ns per order up to the next mark (the instance's
                         table only) */
} tr_mark;

typedef struct tr_file {
    char *path;
    ht_header h;
    uint64_t size;             /* bytes on disk when read */
    uint64_t data_end;         /* the header and every complete record (v2:
                                  unit; v3: zstd frame) */
    uint64_t cut_bytes;        /* bytes dropped at the end: a partial record
                                  or frame */
    uint64_t events;           /* event records (calls) */
    uint64_t ended_events;     /* events the last END record counted */
    bool has_end;              /* an END record was written */
    uint64_t last_time;        /* version 2; version 3: its last mark's */
    tr_mark *marks;            /* version 3: its time marks, in order */
    uint32_t nmarks;
    tr_stack_def *stacks;      /* its stack definitions, in file order */
    uint32_t nstacks;
    uint64_t *frames;          /* their frames */
    uint32_t *site_of;         /* the file's stack id -> instance site index */
    uint32_t nstack_ids;
    uint32_t thread;           /* index within the instance (sorted) */
} tr_file;

typedef struct tr_site {
    uint64_t hash;
    uint32_t nframes;
    const uint64_t *frames;    /* points into a file's frames */
} tr_site;

typedef struct tr_instance {
    uint64_t pid, ppid, epoch, parent_epoch;
    uint32_t flags, mode;
    uint64_t sample_threshold, sample_every;
    const char *exe;
    const char *comm;          /* the name it was run by ("" when unknown) */
    tr_file **files;           /* sorted by thread index */
    uint32_t nfiles;
    uint64_t events, last_time;
    tr_mark *marks;            /* version 3: every file's marks, by order,
                                  times made non-decreasing */
    uint64_t nmarks;
    bool by_order;             /* version 3: records carry order, not time */
    tr_site *sites;            /* distinct stacks, index 0 unused */
    uint32_t nsites;
    char maps_path[4096];      /* "" when there is none */
} tr_instance;

typedef struct tr_run {
    const char *dir;
    tr_file *files;
    uint32_t nfiles;
    tr_instance *inst;
    uint32_t ninst;
} tr_run;

/* Reads every *.htrk file of dir. On a foreign, corrupt or unreadable file
 * prints "hakmem-trace: <file>: <what>" and returns false. */
bool tr_open(const char *dir, tr_run *run);
void tr_close(tr_run *run);

/* The process a command works on: pid, or with pid 0 the one with the most
 * records (the earliest of equals). NULL, after printing "hakmem-trace:
 * <dir>: no process <pid> in this trace", when pid is not in the run. */
tr_instance *tr_pick_instance(tr_run *run, uint64_t pid);

/* The time (ns since the epoch) of the record of that order: itself for
 * version 2; version 3: interpolated between the marks around it. *hint
 * (0 at first) keeps the place for the next call: cheap when orders come
 * in increasing order. */
uint64_t tr_time_at(const tr_instance *in, uint64_t order, uint64_t *hint);

/* ---- one file's records, in file order ------------------------------------ */

typedef struct tr_stream tr_stream;

/* Reads a file that tr_open read, again from its start (up to data_end). */
tr_stream *tr_stream_open(const tr_file *f);
/* The next record into *e: a call, an END record, or a stack definition
 * (op HT_OP_STACK, stack = its id, size = frames, aux = ht_stack_hash of
 * them; *frames, when frames is not NULL, the frames innermost first,
 * valid until the next call). False at the end. A file that changed since
 * tr_open exits with a message naming it. */
bool tr_stream_next(tr_stream *s, ht_event *e, const uint64_t **frames);
void tr_stream_close(tr_stream *s);

/* ---- the walk ------------------------------------------------------------ */

enum tr_kind {
    TR_ALLOC,         /* any allocating call (ptr may be 0: failed) */
    TR_FREE,          /* free (ptr may be 0) */
    TR_REALLOC_OLD,   /* a realloc gives up its old block (aux != 0) */
    TR_REALLOC_NEW,   /* a realloc's result (ptr 0: failed or size 0) */
    TR_OTHER,         /* malloc_usable_size */
};

typedef struct tr_item {
    const ht_event *e;  /* valid until the next tr_walk_next */
    uint64_t key;     /* its place in the merge: order (version 2: time) */
    uint64_t time;    /* ns since the epoch (version 3: from the marks) */
    uint32_t thread;  /* file index within the instance */
    uint8_t kind;     /* enum tr_kind */
} tr_item;

typedef struct tr_cursor {
    tr_stream *s;     /* NULL at the end of the file */
    ht_event ev;      /* the record under the cursor */
    uint64_t key, time;
    uint64_t hint;    /* version 3: the mark at or before key */
    uint64_t iv_lo, iv_hi, iv_ns, iv_gap; /* version 3: the marks' interval
                                             of the last key (empty at first) */
    double iv_slope;
    uint8_t phase;    /* realloc: 0 release next, 1 result next */
} tr_cursor;

typedef struct tr_walk {
    tr_instance *in;
    tr_cursor *cur;
    uint32_t *heap;   /* file indices, min-heap by (key, index) */
    uint32_t nheap;
    ht_event ev;      /* the item's record (its cursor has moved on) */
} tr_walk;

void tr_walk_init(tr_walk *w, tr_instance *in);
bool tr_walk_next(tr_walk *w, tr_item *it);
void tr_walk_done(tr_walk *w);

static inline bool tr_is_alloc_op(uint8_t op)
{
    return op == HT_OP_MALLOC || op == HT_OP_CALLOC || (op >= HT_OP_POSIX_MEMALIGN && op <= HT_OP_PVALLOC);
}

static inline bool tr_is_realloc_op(uint8_t op)
{
    return op == HT_OP_REALLOC || op == HT_OP_REALLOCARRAY;
}

/* ---- pointer map: u64 key (non-zero) -> u64 value --------------------------- */

typedef struct tr_map_entry {
    uint64_t key, val; /* key 0: empty */
} tr_map_entry;

typedef struct tr_map {
    tr_map_entry *e;
    uint64_t mask, count;
} tr_map;

void tr_map_init(tr_map *m);
void tr_map_free(tr_map *m);
/* Pointer to the value for key, or NULL. */
uint64_t *tr_map_get(tr_map *m, uint64_t key);
void tr_map_put(tr_map *m, uint64_t key, uint64_t val);
/* The value slot of key, inserted (value 0, *found false) when missing;
 * valid until the map next changes. */
uint64_t *tr_map_slot(tr_map *m, uint64_t key, bool *found);
/* Removes key; true (and *val) when it was there. */
bool tr_map_take(tr_map *m, uint64_t key, uint64_t *val);

/* ---- names of frames ------------------------------------------------------- */

/* "function+0x1a (libfoo.so.1)" or "0x7f... (module+0x1234)" into buf. */
typedef struct tr_symbolizer tr_symbolizer;
tr_symbolizer *tr_symbolizer_new(const char *maps_path);
const char *tr_symbolize(tr_symbolizer *s, uint64_t addr, char *buf, size_t size);
void tr_symbolizer_free(tr_symbolizer *s);

/* Names of operations. */
const char *tr_op_name(uint8_t op);

/* Fatal helpers for the command line: "hakmem-trace: ..." and exit. */
_Noreturn void tr_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void *tr_xmalloc(size_t n);
void *tr_xrealloc(void *p, size_t n);

#endif /* TR_TRACE_READ_H */
