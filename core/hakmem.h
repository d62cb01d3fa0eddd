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

/* Process-wide statistics (bytes are exact; counts are summed over threads). */
typedef struct hak_stats_s {
  size_t mapped_bytes;       /* address space currently mapped from the OS        */
  size_t slab_count;         /* slabs currently owned, abandoned or pooled         */
  size_t pooled_slab_count;  /* empty slabs kept for reuse                          */
  size_t medium_chunk_count; /* medium chunks mapped                                */
  size_t large_count;        /* live large/huge direct mappings                     */
  size_t large_cached_bytes; /* bytes held in the large-mapping cache               */
  size_t os_map_calls;       /* mmap calls so far                                   */
  size_t os_unmap_calls;     /* munmap calls so far                                 */
  size_t os_decommit_calls;  /* madvise(MADV_DONTNEED) calls so far                 */
  struct {                   /* per-thread counters, summed over live and exited threads */
    unsigned long long refills;          /* magazine refills from slabs             */
    unsigned long long flushes;          /* magazine flushes back to slabs          */
    unsigned long long slabs_new;        /* slabs taken from the pool or the OS     */
    unsigned long long slabs_adopted;    /* slabs of exited threads adopted         */
    unsigned long long remote_frees;     /* frees pushed to another thread's slab   */
    unsigned long long remote_collected; /* remote frees collected by owners        */
  } heap;
} hak_stats_t;

void hak_stats_get(hak_stats_t *out);
/* Prints the statistics as text, or as one JSON object when json != 0. */
void hak_stats_print(FILE *out, int json);
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
