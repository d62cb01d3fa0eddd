/* trace_format.h - the on-disk formats of the allocation tracker: the trace
 * files libhaktrack.so writes (one per thread) and the replay file
 * `hakmem-trace compile` makes of them for workloads/replay.
 *
 * Glossary
 *   instance   one process image being traced: a pid and the monotonic time
 *              it started (a forked child is a new instance; so is a program
 *              after exec, which keeps its pid).
 *   record     one call (ht_event), an END or FORK mark, a stack definition,
 *              or (version 3) a frame node.
 *   unit       version 2: 48 bytes, the size of every record; a stack
 *              definition takes one unit plus ceil(frames / 6) units of
 *              frames. libhaktrack.so still fills its buffer with units and
 *              encodes them when it writes.
 *   epoch      CLOCK_MONOTONIC nanoseconds at an instance's start; times
 *              are nanoseconds since it.
 *   order      (version 3) a record's number in its instance: one counter
 *              for all its threads, taken after an allocating call returns
 *              and before a free starts (see "Time order" below). Records
 *              carry their order; time marks carry time.
 *   time mark  (version 3) the exact time of the record after it in the
 *              file; written before a thread's first record, whenever the
 *              coarse clock (CLOCK_MONOTONIC_COARSE, a few ms) has ticked
 *              since the thread's last mark, and before each END. A
 *              record's time is read from the marks of all threads by
 *              linear interpolation in order.
 *   slot       in a replay file, the number standing for a block: the
 *              pointer of the trace becomes a slot, reused only by the
 *              thread that freed it.
 *
 * Trace file: <dir>/<pid>-<epoch>-<thread index>.htrk, one per thread:
 *   header (ht_header, 256 bytes, uncompressed), then the records in the
 *   order the thread made its calls. Little-endian, the writer's native
 *   layout (x86-64). An HT_OP_END record marks each flush at thread or
 *   process exit; records after it (frees made by late destructors) are
 *   valid. Two versions:
 *
 *   Version 3 (what libhaktrack.so writes): zstd frames, one or more per
 *   write of the thread's buffer, each with its content size and a
 *   checksum, each holding whole records. A frame is compressed with the
 *   previous frame's content as its prefix (ZSTD_CCtx_refPrefix; the
 *   reader passes the same to ZSTD_DCtx_refPrefix), except a file's first
 *   frame and frames written after the thread's exit (a prefix given to
 *   those is unused). A killed program leaves its
 *   complete frames readable; a reader drops a partial frame at the end
 *   (and says so). The records, each a byte b (b & 0x3f the operation,
 *   b & 0x40 "extended", b & 0x80 zero) then unsigned LEB128 varints ("v")
 *   and zigzag varints ("z": n >= 0 as 2n, n < 0 as -2n - 1):
 *     call, END, FORK: z order - the previous such record's order (0 at
 *       first); p ptr; v size; v stack (only when the header has
 *       HT_F_STACKS); when extended: one byte flags, v start, v old_size,
 *       then aux: p relative to ptr for realloc/reallocarray, else v.
 *       "p x relative to y": 0 when x is 0, else z (x - y) + 1; ptr is
 *       relative to the previous non-zero ptr of the file (0 at first).
 *       Fields the record does not show are 0; "extended" is set when one
 *       of flags, start, old_size, aux is not.
 *     HT_REC_NODE: v parent node (0: the root), z address - the previous
 *       node's address (0 at first): node 1, 2, ... in order, each frame
 *       written once; a node is a frame under its caller (the root's
 *       children are the outermost frames).
 *     HT_REC_TIME: z time - the previous mark's time (0 at first): a time
 *       mark, the time of the next call or END record of the file.
 *     HT_OP_STACK: v stack id, v node: the stack's innermost frame; its
 *       frames are the node and its ancestors, innermost first. The hash
 *       (the aux of a version 2 definition) is ht_stack_hash of them.
 *
 *   Version 2 (tests/tracker/make_trace.py, make_sampled.py and older
 *   traces; still read): uncompressed units: events (ht_event) and stack
 *   definitions. A file ends at any unit boundary; a killed program may
 *   leave a partial unit at the end, which readers drop (and say so).
 *
 * Time order: an allocation's order (version 2: its time) is taken after the
 * call returns, a free's before the call, and a realloc records both
 * (order = after, `start` = the difference from the order taken at the
 * call's start; version 2: ns). So a block freed by one thread and handed
 * out to another always has the smaller number on its free, and merging the
 * threads' files by order gives one in which no pointer is live twice.
 * Version 2 ordered by time, which needs a clock read per call and, at
 * nanoseconds, made up nearly all of a compressed trace's bytes; version
 * 3's order differs by 1 from record to record in a one-thread program.
 */
#ifndef HT_TRACE_FORMAT_H
#define HT_TRACE_FORMAT_H

#include <stdint.h>

#define HT_MAGIC "HAKTRACE"
#define HT_VERSION 3       /* written; version 2 is still read */
#define HT_VERSION_UNITS 2 /* uncompressed units */
#define HT_UNIT 48
#define HT_HEADER_SIZE 256
#define HT_FRAMES_PER_UNIT 6
#define HT_MAX_FRAMES 64

/* Operations (ht_event.op). */
enum ht_op {
    HT_OP_MALLOC = 1,         /* ptr = malloc(size) */
    HT_OP_FREE = 2,           /* free(ptr) */
    HT_OP_CALLOC = 3,         /* ptr = calloc(aux, size / aux); size = total */
    HT_OP_REALLOC = 4,        /* ptr = realloc(aux, size) */
    HT_OP_REALLOCARRAY = 5,   /* ptr = reallocarray(aux, n, s); size = n * s */
    HT_OP_POSIX_MEMALIGN = 6, /* posix_memalign(&ptr, aux, size) */
    HT_OP_ALIGNED_ALLOC = 7,  /* ptr = aligned_alloc(aux, size) */
    HT_OP_MEMALIGN = 8,       /* ptr = memalign(aux, size) */
    HT_OP_VALLOC = 9,         /* ptr = valloc(size); aux = page size */
    HT_OP_PVALLOC = 10,       /* ptr = pvalloc(size); aux = page size */
    HT_OP_USABLE_SIZE = 11,   /* size = malloc_usable_size(ptr) (full mode) */
    HT_OP_LAST_CALL = 11,
    HT_OP_STACK = 32,         /* stack definition: stack = id, size = frames,
                                 aux = hash of the frames; frames follow */
    HT_OP_FORK = 33,          /* this thread forked: aux = child's pid */
    HT_OP_END = 34,           /* flush at exit: size = events written so far
                                 in this file, aux = events this thread could
                                 not record (recording stopped) */
    HT_REC_NODE = 35,         /* version 3: a frame node (see above) */
    HT_REC_TIME = 36,         /* version 3: a time mark (see above); in the
                                 writer's buffer, a unit with time = ns */
};

/* Version 3's record byte. */
#define HT_REC_OP 0x3f
#define HT_REC_EXT 0x40
/* The most bytes one encoded record takes (a call: 1 + 3 * 10 + 5 + 1 +
 * 5 + 5 + 10), and one stack definition with its nodes. */
#define HT_REC_MAX 64
#define HT_REC_STACK_MAX (11 + HT_MAX_FRAMES * 16)

/* ht_event.flags (sampled mode; full-mode records have none). In sampled
 * mode a call is recorded for two reasons, each a sample of its own:
 *   - the call is drawn (a per-thread countdown, random gaps of mean
 *     sample_every; or the block is large): HT_EV_CALL, the record counts in
 *     the call figures (calls per operation, sizes, bytes asked for);
 *   - the block is tracked (its address hashes below 2^64 / sample_every,
 *     with the instance's sample_salt; or it is large): HT_EV_BLOCK, its
 *     free is recorded too, and the record counts in the heap figures (live
 *     bytes, lifetimes, blocks never freed, who frees what). A realloc
 *     whose old block was tracked carries HT_EV_OLD_BLOCK.
 * Large: at least sample_threshold bytes asked for, or malloc_usable_size
 * at least that. Every large call and block is recorded (weight 1); the
 * others stand for sample_every calls or blocks (HT_EV_SAMPLED). */
#define HT_EV_SAMPLED 1   /* weight sample_every (else 1) */
#define HT_EV_CALL 2      /* a sample of the calls */
#define HT_EV_BLOCK 4     /* ptr is a tracked block (its free is recorded) */
#define HT_EV_OLD_BLOCK 8 /* realloc: the old block (aux) was tracked */
#define HT_EV_ALL 15

typedef struct ht_event {
    uint64_t time;   /* version 2: ns since the instance's epoch; version 3:
                        the record's order (see above) */
    uint64_t ptr;    /* block returned, or freed; 0 when the call failed */
    uint64_t size;   /* bytes asked for (calloc, reallocarray: the product,
                        UINT64_MAX when it overflows); 0 for free */
    uint64_t aux;    /* realloc: old pointer; aligned calls: alignment;
                        calloc: element count */
    uint32_t start;  /* realloc: from the call's start to `time` (v2: ns;
                        v3: in order) */
    uint32_t stack;  /* the file's stack id, 0 when none was recorded */
    uint8_t op;      /* enum ht_op */
    uint8_t flags;   /* HT_EV_* */
    uint16_t reserved16;
    uint32_t old_size; /* sampled mode, a drawn realloc: malloc_usable_size of
                          the old block (at most 2^32 - 1), else 0 */
} ht_event;
_Static_assert(sizeof(ht_event) == HT_UNIT, "a trace record is one unit");

/* ht_header.flags */
#define HT_F_STACKS 1      /* allocations carry stack ids */
#define HT_F_SAMPLED 2     /* sampled mode (not replayable) */
#define HT_F_FORK_CHILD 4  /* the instance is a forked child */

enum ht_mode { HT_MODE_FULL = 0, HT_MODE_SAMPLED = 1 };

typedef struct ht_header {
    char magic[8];              /* "HAKTRACE" */
    uint32_t version;           /* HT_VERSION */
    uint32_t header_size;       /* HT_HEADER_SIZE */
    uint32_t unit_size;         /* version 2: HT_UNIT; version 3: 0 */
    uint32_t flags;             /* HT_F_* */
    uint32_t mode;              /* enum ht_mode */
    uint32_t thread_index;      /* 0, 1, ... in order of first call, per instance */
    uint64_t pid, ppid, tid;
    uint64_t epoch_ns;          /* CLOCK_MONOTONIC at the instance's start */
    uint64_t epoch_realtime_ns; /* CLOCK_REALTIME at the same moment */
    uint64_t thread_start_ns;   /* ns since epoch of this thread's first call */
    uint64_t sample_threshold;  /* sampled: blocks >= this are all recorded */
    uint64_t sample_every;      /* sampled: 1 in this many below it */
    uint64_t parent_epoch_ns;   /* forked child: the parent instance's epoch */
    char exe[128];              /* /proc/self/exe at the instance's start (cut) */
    uint64_t sample_salt;       /* sampled: the key of the address hash */
    char comm[16];              /* /proc/self/comm (the name the program was run
                                   by: exe may be a link's target) */
} ht_header;
_Static_assert(sizeof(ht_header) == HT_HEADER_SIZE, "header size");

/* The hash of a stack's frames, innermost first (never 0): the aux of its
 * definition; equal stacks of any thread of an instance are one site. */
static inline uint64_t ht_hash_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t ht_stack_hash(const uint64_t *frames, uint32_t n)
{
    uint64_t h = 0x84222325cbf29ce4ULL;
    for (uint32_t k = 0; k < n; k++)
        h = ht_hash_mix(h ^ frames[k]);
    return h | 1;
}

/* The maps file of an instance, <dir>/<pid>-<epoch>.maps: a copy of
 * /proc/self/maps taken at exit (and before exec), for symbolizing stacks. */

/* ---- replay file (hakmem-trace compile -> workloads/replay) ------------- */

#define HR_MAGIC "HAKRPLAY"
#define HR_VERSION 1

enum hr_op {
    HR_MALLOC = 1,         /* slot = malloc(size) */
    HR_CALLOC = 2,         /* slot = calloc(arg, size / arg) */
    HR_REALLOC = 3,        /* slot = realloc(slot, size) (same slot) */
    HR_FREE = 4,           /* free(slot) */
    HR_POSIX_MEMALIGN = 5, /* posix_memalign(&slot, arg, size) (also valloc, pvalloc) */
    HR_ALIGNED_ALLOC = 6,  /* slot = aligned_alloc(arg, size) */
    HR_MEMALIGN = 7,       /* slot = memalign(arg, size) */
    HR_REALLOC_NEW = 8,    /* slot = realloc(NULL, size) */
    HR_OP_LAST = 8,
};

/* hr_event.flags */
#define HR_PUBLISH 1  /* another thread waits for this event: announce it */

typedef struct hr_event {
    uint64_t time;        /* recorded ns since the instance's epoch */
    uint64_t size;        /* bytes asked for (calloc: the product) */
    uint64_t arg;         /* alignment, or calloc's element count */
    uint64_t wait_index;  /* with wait_thread: that thread's event index that
                             must be done before this one */
    uint32_t slot;
    uint16_t wait_thread; /* 0: no wait; else the thread's index + 1 */
    uint8_t op;           /* enum hr_op */
    uint8_t flags;        /* HR_* */
} hr_event;
_Static_assert(sizeof(hr_event) == 40, "replay event size");

typedef struct hr_thread {
    uint64_t offset;        /* byte offset of its first event in the file */
    uint64_t events;        /* number of events */
    uint64_t alloc_bytes;   /* bytes it allocates in all (for --floor) */
    uint64_t tid;           /* recorded kernel thread id */
} hr_thread;

typedef struct hr_header {
    char magic[8];            /* "HAKRPLAY" */
    uint32_t version;         /* HR_VERSION */
    uint32_t threads;         /* hr_thread entries after the header */
    uint64_t slots;           /* slots used (0 .. slots - 1) */
    uint64_t events;          /* events in all threads */
    uint64_t peak_live_bytes; /* the trace's peak of live bytes asked for, in
                                 recorded order */
    uint64_t final_live_bytes;/* live at the end of the trace (never freed) */
    uint64_t skipped;         /* trace events not replayed (failed calls,
                                 frees of unknown pointers, free(NULL)) */
    uint64_t pid;             /* the traced instance */
    uint64_t duration_ns;     /* recorded span */
    char program[128];        /* exe of the traced instance */
    uint8_t reserved[56];
} hr_header;
_Static_assert(sizeof(hr_header) == 256, "replay header size");

#endif /* HT_TRACE_FORMAT_H */
