/* hakmem.h — the public interface of the hakmem allocator.
 *
 * Every function here is exported under its hak_ name; the libhakmem.so built
 * by `make` also exports the standard malloc names (malloc, free, ...) so that
 * it can replace the system allocator through LD_PRELOAD. A build with
 * HAK_PREFIX_ONLY defined (used by the sanitizer tests) exports only these. */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAK_VERSION_STRING "0.1.0"

void  *hak_malloc(size_t size);
void   hak_free(void *p);
void  *hak_calloc(size_t count, size_t size);
void  *hak_realloc(void *p, size_t size);
void  *hak_reallocarray(void *p, size_t count, size_t size);
int    hak_posix_memalign(void **out, size_t alignment, size_t size);
void  *hak_aligned_alloc(size_t alignment, size_t size);
void  *hak_memalign(size_t alignment, size_t size);
void  *hak_valloc(size_t size);
void  *hak_pvalloc(size_t size);
size_t hak_malloc_usable_size(const void *p);

/* What this library is: "0.1.0" and the variant name it was built as. */
const char *hak_version(void);
const char *hak_variant(void);

/* Return the calling thread's cached blocks, empty slabs, free medium pages and
 * cached large mappings to the OS, as far as the variant's policy allows. */
void hak_flush(void);

/* Process-wide statistics (hak_stats_get), gathered from the allocator's
 * structures when asked (taking its locks), so that they cost the fast paths
 * nothing. Exact while no other thread allocates; a snapshot otherwise.
 * The first group partitions the mapped address space: its parts sum to
 * mapped_bytes. */
#define HAK_STATS_CLASSES 85
typedef struct hak_class_stats_s {
  size_t block_size;         /* bytes per block                                    */
  size_t slabs;              /* slabs of the class (owned by a thread or abandoned) */
  size_t in_use;             /* blocks held by the program                         */
  size_t in_magazines;       /* free blocks in thread magazines                    */
  size_t in_transfer;        /* free blocks in the transfer cache                  */
  size_t free_in_slabs;      /* free blocks in its slabs (remote frees included)   */
  size_t slab_bytes;         /* memory of its slabs                                */
} hak_class_stats_t;

typedef struct hak_stats_s {
  size_t in_use_bytes;          /* held by the program: usable size of every live block */
  size_t magazine_bytes;        /* free small blocks in thread magazines               */
  size_t transfer_bytes;        /* free small blocks in the transfer cache             */
  size_t slab_free_bytes;       /* free small blocks in slabs                          */
  size_t slab_tail_bytes;       /* slab memory past its last whole block               */
  size_t pool_bytes;            /* empty slabs kept for reuse                          */
  size_t superslab_free_bytes;  /* SuperSlab units in no slab ...                      */
  size_t superslab_dirty_bytes; /*   ... of which still committed                      */
  size_t medium_free_bytes;     /* free pages of medium chunks ...                     */
  size_t medium_dirty_bytes;    /*   ... of which still committed                      */
  size_t large_cache_bytes;     /* freed large blocks kept for reuse (arenas' free runs) */
  size_t large_dirty_bytes;     /*   ... of which still committed                      */
  size_t metadata_bytes;        /* descriptors, heaps, page-map leaves, SuperSlab headers */
  size_t mapped_bytes;          /* address space mapped from the OS (the sum of the above) */
  /* The bytes in use by tier: small blocks, medium blocks (whole pages),
   * large blocks (whole units); they sum to in_use_bytes. */
  size_t small_in_use_bytes, medium_in_use_bytes, large_in_use_bytes;
  /* Of the mapped bytes, those resident in memory now (mincore), by part; the
   * rest was returned to the OS or never touched. */
  size_t resident_bytes;
  size_t process_rss_bytes;     /* the whole process's RSS (/proc/self/statm); 0: unreadable */
  struct {
    size_t slabs;             /* small blocks: in use, in magazines, free, tails     */
    size_t pool, superslab_free, medium, large, large_cache, metadata;
  } resident;
  /* What there is. */
  size_t slabs, pooled_slabs, superslabs, medium_chunks, large_blocks, large_cached, heaps;
  /* Cumulative, since start or the last hak_reset. Small allocations are
   * counted where they reach slabs (refills, flushes), not one by one. */
  struct {
    unsigned long long refills, refill_blocks;     /* magazine refills, blocks taken from slabs */
    unsigned long long flushes, flush_blocks;      /* magazine flushes, blocks sent back         */
    unsigned long long remote_frees;               /* blocks sent to a slab of another thread   */
    unsigned long long transfer_in, transfer_out;  /* blocks put into, taken from the transfer cache */
    unsigned long long remote_collected;           /* ... collected by the slab's owner         */
    unsigned long long slabs_new, slabs_adopted;   /* slabs made or taken from the pool; adopted */
    unsigned long long medium_allocs, medium_frees, medium_bytes;   /* bytes: usable, allocated */
    unsigned long long large_allocs, large_frees, large_bytes;
    unsigned long long os_maps, os_unmaps, os_decommits, os_moves;  /* system calls           */
    unsigned long long released_bytes;             /* unmapped or decommitted                   */
    unsigned long long moved_bytes, decommitted_bytes; /* moved by mremap; decommitted (MADV_DONTNEED) */
    unsigned long long scavenger_passes, scavenger_released_bytes;
    unsigned long long reentrant_allocs, deferred_frees; /* re-entrant calls (signal handlers): direct blocks, deferred frees */
  } total;
  hak_class_stats_t cls[HAK_STATS_CLASSES];
} hak_stats_t;

void hak_stats_get(hak_stats_t *out);
/* Prints the statistics: fmt 0 text (laid out like gperftools' GetStats),
 * 1 one JSON object with every figure. */
void hak_stats_print(FILE *out, int fmt);
/* Gives back to the OS everything free that the allocator holds: the calling
 * thread's magazines (and their arrays' pages), every thread's empty slabs
 * and, in bitmap variants, the free pages of partly used slabs, the pooled
 * slabs, SuperSlabs and medium chunks, the large cache. Other threads'
 * magazines are theirs (used without locks): each other live thread is asked
 * to give back its magazines, their arrays' pages, its empty slabs and the
 * pool at its next malloc or free, whatever it is; a thread that makes no
 * further call keeps them. Zeroes the cumulative counters. Safe while other
 * threads allocate. Returns the bytes still in use by the program (0: the
 * process is back at its starting footprint, but for the page-map leaves and
 * the heaps of threads that live on). */
size_t hak_reset(void);

/* Allocation hooks: callbacks told of every call. Any pointer may be NULL
 * (that event is not wanted); arg is passed back to each. malloc and calloc
 * report as malloc (calloc with the product of its arguments); the aligned
 * functions (posix_memalign, aligned_alloc, memalign, valloc, pvalloc) as
 * aligned; realloc and reallocarray as realloc (its internal malloc and free
 * are not reported). An allocation made inside a hook calls no hook. */
typedef struct hak_hooks_s {
  void (*malloc_before)(size_t size, void *arg);
  void (*malloc_after)(void *p, size_t size, void *arg);       /* p may be NULL */
  void (*free_before)(void *p, void *arg);
  void (*free_after)(void *p, void *arg);
  void (*realloc_before)(void *p, size_t size, void *arg);
  void (*realloc_after)(void *old, void *p, size_t size, void *arg);
  void (*aligned_before)(size_t align, size_t size, void *arg);
  void (*aligned_after)(void *p, size_t align, size_t size, void *arg);
  void *arg;
} hak_hooks_t;
/* Installs a copy of *hooks (several run in the order they were added);
 * returns its id, or -1 when 16 are installed already. Thread-safe, also while
 * other threads allocate; calls that start after it returns are reported. */
int hak_hook_add(const hak_hooks_t *hooks);
/* Removes hook id; once it returns, the hook is called no more (so a hook must
 * not remove hooks). 0, or -1 for an unknown id. With no hook installed the
 * fast paths cost what they cost without hooks. */
int hak_hook_remove(int id);

/* The heap profiler (off unless HAKMEM_PROFILE=<prefix> or started here).
 * Samples allocations every HAKMEM_PROFILE_RATE bytes on average (512 KiB)
 * and writes gperftools' heap profile format (google-pprof --text prog file).
 * hak_profile_start: a fresh profile, written to <prefix>.<pid>.0001.heap,
 * .0002, ... (never over an existing file) by hak_profile_dump(NULL), every
 * HAKMEM_PROFILE_INTERVAL bytes if set, and at exit; 0, or -1 with errno
 * EINVAL (no prefix, or too long).
 * hak_profile_stop: no more sampling; the profile is dropped. hak_profile_dump:
 * the profile now to path (NULL: the next numbered file); 0, or -1 with errno
 * (EINVAL: no profile is being taken). */
int hak_profile_start(const char *prefix);
void hak_profile_stop(void);
int hak_profile_dump(const char *path);

/* The leak checker (on only with HAKMEM_LEAKCHECK=1; README, "The leak
 * checker"). The counts of a check, in memcheck's classes (bytes and blocks):
 * definitely lost (direct leaks), indirectly lost (reached only through
 * them), possibly lost (only pointers into them), still reachable, those of
 * leaks whose stack matched a suppression, and the blocks ignored
 * (hak_leak_ignore). */
typedef struct hak_leak_counts_s {
  int checked;                 /* 1: a check ran; 0: the checker is off (all 0) */
  size_t definite_bytes, definite_blocks;
  size_t indirect_bytes, indirect_blocks;
  size_t possible_bytes, possible_blocks;
  size_t reachable_bytes, reachable_blocks;
  size_t suppressed_bytes, suppressed_blocks;
  size_t ignored_bytes, ignored_blocks;
} hak_leak_counts_t;
/* A leak check now, as at exit (LeakSanitizer's
 * __lsan_do_recoverable_leak_check): the report to stderr or
 * HAKMEM_LEAKCHECK_FILE, *out (if not NULL) the counts; returns the bytes
 * definitely and indirectly lost (not suppressed). The process goes on as it
 * was: nothing is freed or forgotten, the exit check still runs, the exit
 * status is not touched. Other threads may run meanwhile (what they change
 * during the check may be seen half done); one check runs at a time. With
 * the checker off: 0, *out zeroed (checked 0), nothing printed. */
size_t hak_leak_check(hak_leak_counts_t *out);
/* Never report the block at p (the address an allocation returned), nor the
 * blocks reachable from it (LeakSanitizer's __lsan_ignore_object): it is a
 * root of the scan, counted as ignored. The mark goes with the block: freed,
 * or moved by realloc, it is gone. 0; -1 with errno EINVAL when p is not a
 * live block the checker knows (NULL, an address inside a block, a block
 * freed, memory hakmem never handed out).
 * With the checker off: 0, p not looked at. */
int hak_leak_ignore(const void *p);

/* The same calls, telling the heap profiler and the leak checker where in the
 * source they were made. Defining HAK_TRACE_SOURCE before including this
 * header turns hak_malloc(n) and its friends into them, with __FILE__ and
 * __LINE__ (file must be a string that lives as long as the program). */
void *hak_malloc_at(size_t size, const char *file, int line);
void *hak_calloc_at(size_t count, size_t size, const char *file, int line);
void *hak_realloc_at(void *p, size_t size, const char *file, int line);
void *hak_reallocarray_at(void *p, size_t count, size_t size, const char *file, int line);
int   hak_posix_memalign_at(void **out, size_t alignment, size_t size, const char *file, int line);
void *hak_aligned_alloc_at(size_t alignment, size_t size, const char *file, int line);
void *hak_memalign_at(size_t alignment, size_t size, const char *file, int line);
void *hak_valloc_at(size_t size, const char *file, int line);
void *hak_pvalloc_at(size_t size, const char *file, int line);
#ifdef HAK_TRACE_SOURCE
#define hak_malloc(n)                  hak_malloc_at((n), __FILE__, __LINE__)
#define hak_calloc(c, n)               hak_calloc_at((c), (n), __FILE__, __LINE__)
#define hak_realloc(p, n)              hak_realloc_at((p), (n), __FILE__, __LINE__)
#define hak_reallocarray(p, c, n)      hak_reallocarray_at((p), (c), (n), __FILE__, __LINE__)
#define hak_posix_memalign(o, a, n)    hak_posix_memalign_at((o), (a), (n), __FILE__, __LINE__)
#define hak_aligned_alloc(a, n)        hak_aligned_alloc_at((a), (n), __FILE__, __LINE__)
#define hak_memalign(a, n)             hak_memalign_at((a), (n), __FILE__, __LINE__)
#define hak_valloc(n)                  hak_valloc_at((n), __FILE__, __LINE__)
#define hak_pvalloc(n)                 hak_pvalloc_at((n), __FILE__, __LINE__)
#endif

/* Walks every structure of the allocator (heaps, magazines, slabs, the pool,
 * SuperSlabs, medium chunks, the large cache) and checks its invariants.
 * Returns NULL when all hold, else a static string naming the first broken
 * one. Other threads must not allocate or free while it runs. */
const char *hak_validate(void);
/* Prints the run-time option table (name, value, default, env var, meaning). */
void hak_options_print(FILE *out);

#ifdef __cplusplus
}
#endif
#endif
