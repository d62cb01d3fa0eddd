/* internal.h — declarations shared between core files, grouped by the file
 * that defines them, and the small inline helpers of the hot paths.
 *
 * Calls go one way, from the API down: a file uses (calls, or reads the data
 * of) only files on levels below its own; no two files of a level use each
 * other, so there is no cycle. `make check-layers` (scripts/check-layers)
 * checks every build's objects against this table:
 *   api.c                             the control API: statistics, reset, flush, profiles, hooks
 *   malloc_api.c                      the malloc API: fast paths, hooks around calls, checked build
 *   observe.c                         what the heap profiler and the leak checker see of the calls
 *   realloc.c                         moving a block to a new size
 *   alloc.c  free.c                   the tier router and allocation slow paths; every case of free
 *   init.c                            initialisation and fork
 *   check.c  hooks.c                  the checked build; the hooks' table
 *   profile.c  leakcheck.c            the heap profiler, the leak checker
 *   stack.c  symbols.c                call stacks, naming frames
 *   scavenger.c                       the scavenger thread; giving free memory back
 *   stats.c  validate.c               statistics, validators
 *   heap.c                            thread heaps, magazines, remote free
 *   transfer.c                        the transfer cache between magazines
 *   slab.c                            slabs
 *   pool.c                            the empty-slab pool
 *   superslab.c  medium.c  large.c    SuperSlabs, medium chunks, large blocks
 *   arena.c                           large blocks reused in place: reserved arenas, runs by address
 *   reentry.c                         re-entrant calls: the depth mark, direct blocks
 *   meta.c  pagemap.c                 descriptors, the page map
 *   os.c                              the OS: mappings, huge pages, NUMA
 *   options.c  fatal.c  size_class.c  run-time options, the fatal report, size classes
 *   out.c  observers.c  clock.c  signal_flag.c  reports without malloc; who watches; the tick clock;
 *                                     a signal that raises a flag
 *
 * Lock order (a thread may take a lock only if it holds none listed after it):
 *  -5. check_lock           (leakcheck.c) one leak check at a time (at exit or hak_leak_check)
 *  -4. pass_lock            (scavenger.c) a scavenger tick (a leak check's scan holds it)
 *  -3. prof_lock            (profile.c) the heap profile's buckets and sampled blocks
 *  -2. leak table shards    (leakcheck.c) the blocks' records, one lock per shard
 *  -1. stack table shards   (stack.c)  the call stacks kept
 *   0. stats_lock           (stats.c)  the statistics' snapshot and reset zero
 *   1. hak_heap_list_lock   (heap.c)   the list of all heaps
 *   1b. h->lock             (heap.c)   one heap's slabs (owner vs scavenger and statistics)
 *   2. hak_abandoned_lock   (heap.c)   abandoned slabs, per class
 *   2b. hak_xfer_lock       (transfer.c) the transfer cache
 *   3. hak_pool_lock        (pool.c)   empty-slab pool, SuperSlabs
 *   4. hak_medium_lock      (medium.c) medium chunks
 *   5. hak_large_lock       (large.c)  large-mapping cache
 *   6. hak_meta_lock        (meta.c)   descriptor arena
 * The page map and the OS layer take no locks.
 *
 * fork(): the prepare handler (init.c) takes -3 to 0, 1, 2, 2b, 3, 4, 5, 6 in
 * this order (and waits until no thread is unwinding its stack: stack.c), so
 * that in the child every global structure (heap list, abandoned
 * lists, pool and SuperSlabs, medium chunks, large cache, descriptor arena) is
 * as some thread left it when it released the lock; parent and child release
 * them (the child re-initialises them). Taking the heap list lock also waits
 * for the scavenger's pass over the heaps, which holds it. The heap locks (1b)
 * are not taken: the child does not use other threads' heaps as they are.
 * What the child relies on besides the locks:
 *   - its own heap (the forking thread's) is consistent: that thread is in
 *     fork(), not in the allocator;
 *   - remote-free stacks are changed by single atomic steps, so every push
 *     either happened or did not;
 *   - each other heap's in_slabs flag (I6) tells whether its slabs are
 *     consistent: if clear, the slabs are abandoned for adoption; if set, the
 *     heap becomes an orphan (types.h) and is never touched again;
 *   - no other thread's magazine is read (the fast paths change magazines
 *     without any flag); their blocks stay in use, never handed out again;
 *   - blocks or spans a dead thread held between two locked steps (a slab
 *     taken from the pool but not yet on its lists, a large mapping not yet
 *     registered) are leaked in the child, never handed out twice.
 * heap.c (hak_heap_fork_child) carries this out. */
#ifndef HAK_INTERNAL_H
#define HAK_INTERNAL_H

#include <signal.h>

#include "hakmem.h"
#include "size_class.h"
#include "types.h"

#define hak_likely(x)   __builtin_expect(!!(x), 1)
#define hak_unlikely(x) __builtin_expect(!!(x), 0)
#define hak_noinline    __attribute__((noinline))
#define hak_cold        __attribute__((cold, noinline))
/* A function whose reads of other threads' data are deliberately unlocked
 * snapshots (statistics): not instrumented under ThreadSanitizer. */
#define hak_racy_read   __attribute__((no_sanitize_thread, noinline))
#define hak_tls         __thread __attribute__((tls_model("initial-exec")))
/* Large zeroed arrays that a plain run never writes (the page map's empty
 * leaf, the profiler's and leak checker's tables): in .lbss, after .bss, so
 * that they do not spread the small variables every run writes over more
 * pages (each page of .bss written costs 4 KiB of RSS). */
#define HAK_BSS_LARGE   __attribute__((section(".lbss")))

/* Policy constants of the variant, as typed constants so every path
 * type-checks whatever the variant (STYLE: config_* over #ifdef). */
static const bool config_slab_bitmap = HAK_CONFIG_SLAB_BITMAP;
static const bool config_superslab = HAK_CONFIG_SUPERSLAB;
static const bool config_dynamic_flush = HAK_CONFIG_DYNAMIC_FLUSH;
static const size_t config_pool_max_bytes = HAK_CONFIG_POOL_MAX_BYTES;
static const size_t config_medium_dirty_max = HAK_CONFIG_MEDIUM_DIRTY_MAX_BYTES;
static const size_t config_superslab_dirty_max = HAK_CONFIG_SUPERSLAB_DIRTY_MAX_BYTES;
static const unsigned config_large_cache_entries = HAK_CONFIG_LARGE_CACHE_ENTRIES;
static const size_t config_large_cache_max = HAK_CONFIG_LARGE_CACHE_MAX_BYTES;
static const bool config_large_arena = HAK_CONFIG_LARGE_ARENA;
static const size_t config_transfer_max_bytes = HAK_CONFIG_TRANSFER_MAX_BYTES;
static const bool config_check = HAK_CHECK;
#ifndef HAK_FAULT_INJECTION
#define HAK_FAULT_INJECTION 0
#endif
static const bool config_fault_injection = HAK_FAULT_INJECTION; /* tests only: os.c */

static inline size_t hak_align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }
static inline bool hak_is_pow2(size_t a) { return a != 0 && (a & (a - 1)) == 0; }

/* ---- observers.c: who watches the calls ------------------------------------------ */
/* Any bit set closes the gates, so every call takes a slow path, which tells
 * them. */
#define HAK_OBS_HOOKS   1u  /* hooks.c */
#define HAK_OBS_PROFILE 2u  /* profile.c */
#define HAK_OBS_LEAKS   4u  /* leakcheck.c */
#define HAK_OBS_TRACK   (HAK_OBS_PROFILE | HAK_OBS_LEAKS)
#define HAK_OBS_INIT    8u  /* until initialisation is done: the first calls come
                               to the observed paths, which initialise first, so
                               that the call that starts the leak checker is tracked */
extern _Atomic unsigned hak_observers;
extern hak_tls bool hak_track_busy;      /* this thread's calls are hakmem's own: not tracked */
extern hak_tls const char *hak_src_file; /* HAK_TRACE_SOURCE: the call being made */
extern hak_tls int hak_src_line;
static inline unsigned hak_observers_get(void) { return atomic_load_explicit(&hak_observers, memory_order_relaxed); }

/* ---- clock.c: the scavenger's tick clock ------------------------------------------ */
#define HAK_TICKS_PER_SECOND 10
extern _Atomic uint32_t hak_clock_tick;   /* advanced by the scavenger every 100 ms */

/* ---- os.c: the one place that talks to the OS about memory ---------------- */
void *hak_os_map_aligned(size_t size, size_t align); /* whole units, zeroed */
void *hak_os_map_accounted(size_t size, size_t align); /* the same, charged to the commit count: large blocks */
void  hak_os_unmap(void *p, size_t size);
void  hak_os_decommit(void *p, size_t size);       /* MADV_DONTNEED: leaves RSS now */
bool  hak_os_map_fixed(void *p, size_t size);     /* a hole mapped afresh, MAP_FIXED */
bool  hak_os_grow_in_place(void *p, size_t old_size, size_t new_size);
bool  hak_os_move(void *src, size_t size, void *dst, size_t dst_size); /* pages to dst, no copy or fault */
size_t hak_os_resident(const void *p, size_t size); /* mincore: bytes resident now */
/* Huge pages and NUMA (os.c says how they are used). */
#define HAK_HUGE_PAGE_SIZE  ((size_t)2 << 20)
#define HAK_NUMA_MAX_NODES  16u
#define HAK_NUMA_MAX_CPUS   1024u
typedef enum { HAK_THP_NEVER, HAK_THP_MADVISE, HAK_THP_ALWAYS } hak_thp_mode_t;
void  hak_os_init(void);                 /* THP mode, the option, the NUMA topology */
hak_thp_mode_t hak_os_thp_mode(void);    /* the system's THP mode */
bool  hak_os_thp_on(void);               /* huge-page advice in use */
size_t hak_os_huge_align(size_t size, size_t align); /* align, raised to 2 MiB when huge pages apply */
void  hak_os_advise_huge(void *p, size_t size);      /* MADV_HUGEPAGE when huge pages apply */
unsigned hak_os_numa_nodes(void);        /* 1 on a machine without NUMA */
unsigned hak_os_node(void);              /* the calling thread's node (0 without NUMA) */
void  hak_os_bind(void *p, size_t size, unsigned node); /* prefer node's memory for the range */
/* Tests: a simulated topology (cpu c on node map[c]); nodes 0: the machine's own again. */
void  hak_os_topology_simulate(unsigned nodes, const uint8_t *map, unsigned ncpus);
typedef struct hak_os_counters_s {
  _Atomic size_t mapped_bytes, map_calls, unmap_calls, decommit_calls, move_calls, released_bytes;
  _Atomic size_t moved_bytes, decommitted_bytes;        /* pages moved by mremap; decommitted (MADV_DONTNEED) */
  _Atomic size_t huge_advised_bytes;                  /* advised MADV_HUGEPAGE */
  _Atomic size_t bound_bytes[HAK_NUMA_MAX_NODES];     /* bound to each node (hak_os_bind) */
} hak_os_counters_t;
extern hak_os_counters_t hak_os_counters;
/* Test builds (-DHAK_FAULT_INJECTION=1): the n-th mmap from now fails (n = 0:
 * the next one); sticky: it and every later one, until n = -1. */
size_t hak_os_process_rss(void); /* the process's resident bytes now (/proc/self/statm); 0: unknown */
void hak_os_fail_after(long n, bool sticky);
void hak_os_track_own(void);          /* from now on, remember which units hakmem maps (leak checker) */
bool hak_os_owns(const void *p);      /* p's unit was mapped by hakmem and not unmapped since */

/* ---- pagemap.c: unit -> span ----------------------------------------------- */
#define HAK_PM_LEAF_BITS 20
#define HAK_PM_ROOT_BITS (HAK_ADDR_BITS - HAK_UNIT_SHIFT - HAK_PM_LEAF_BITS)
/* A leaf entry: a span pointer with its tag (types.h) in the low bits. */
typedef _Atomic(uintptr_t) hak_pm_leaf_t[1u << HAK_PM_LEAF_BITS];
/* Root entries are leaf addresses relative to the shared empty leaf, so the
 * root starts as zero (.bss: no relocations to apply at load, no pages until
 * used) and yet every entry points at a leaf. */
extern _Atomic(intptr_t) hak_pagemap_root[1u << HAK_PM_ROOT_BITS];
extern hak_pm_leaf_t hak_pagemap_empty_leaf;
bool hak_pagemap_reserve(const void *base, size_t size); /* map the leaves; false: no memory */
/* Points the units of [base, base + size) at span (reserved first) with tag,
 * or clears them (span NULL). */
void hak_pagemap_set(void *base, size_t size, hak_span_t *span, unsigned tag);

/* The entry of p: its span and tag, 0 when hakmem does not own p. Lock-free,
 * two loads; every root entry points at a leaf (the shared empty leaf until
 * one is mapped), so there is no test between them. */
static inline uintptr_t hak_pagemap_entry(const void *p) {
  uintptr_t a = (uintptr_t)p;
  intptr_t rel = atomic_load_explicit(
      &hak_pagemap_root[(a >> (HAK_UNIT_SHIFT + HAK_PM_LEAF_BITS)) & ((1u << HAK_PM_ROOT_BITS) - 1)],
      memory_order_acquire);
  hak_pm_leaf_t *leaf = (hak_pm_leaf_t *)((uintptr_t)&hak_pagemap_empty_leaf + (uintptr_t)rel);
  return atomic_load_explicit(&(*leaf)[(a >> HAK_UNIT_SHIFT) & ((1u << HAK_PM_LEAF_BITS) - 1)],
                              memory_order_acquire);
}

/* Span owning p, or NULL when hakmem does not own p or when p lies in a
 * large block past its first unit (the page map holds a large range by its
 * first unit only: large.c). */
static inline hak_span_t *hak_pagemap_lookup(const void *p) {
  return (hak_span_t *)(hak_pagemap_entry(p) & ~HAK_TAG_MASK);
}

/* Block arithmetic by a 64-bit reciprocal instead of a division. With
 * recip = floor((2^64 - 1) / size) + 1 = 2^64 / size + e, 0 <= e <= 1, the
 * product of an offset off = i * size + r (0 <= r < size) and recip is
 *   off * recip = i * 2^64 + r * 2^64 / size + off * e,
 * where off * e < off < 2^18 and r * 2^64 / size is 0 for r == 0 and at least
 * 2^64 / 2^15 = 2^49 otherwise. So the high 64 bits of the product are the
 * index i, and the low 64 bits are below 2^18 exactly when p is the start of
 * a block: the free fast path tests that with one multiply and one shift. */
static inline uint64_t hak_recip_of(uint32_t size) { return HAK_RECIP(size); }
/* Low word of (p - base) * recip: below 2^32 iff p starts a block of s. */
static inline uint64_t hak_slab_frac(const hak_slab_t *s, const void *p) {
  return (uint64_t)((const char *)p - s->base) * s->recip;
}
static inline bool hak_slab_is_block_start(const hak_slab_t *s, const void *p) {
  return (hak_slab_frac(s, p) >> 32) == 0;
}
/* Index of the block of s that p points into. */
static inline size_t hak_slab_index(const hak_slab_t *s, const void *p) {
  return (size_t)(((unsigned __int128)(uint64_t)((const char *)p - s->base) * s->recip) >> 64);
}
_Static_assert(HAK_UNIT_SIZE * 4 <= ((size_t)1 << 18) && HAK_SMALL_MAX <= ((size_t)1 << 15),
               "slab offsets (< 2^18) and block sizes (<= 2^15) keep the reciprocal exact");

/* ---- reentry.c: calls that re-enter hakmem (a signal handler's) -------------- */
/* The depth mark: > 0 while the thread is inside a slow-path section that
 * takes a lock or rewrites a magazine (malloc_api.c brackets them). A plain
 * counter: a handler that interrupts its change leaves it as it found it;
 * the signal fences keep it before the locks it announces. */
extern hak_tls unsigned hak_tls_depth;
extern hak_tls void *hak_tls_deferred;  /* frees deferred by re-entrant calls */
static inline bool hak_reentered(void) { return hak_unlikely(hak_tls_depth != 0); }
static inline void hak_depth_enter(void) {
  hak_tls_depth++;
  atomic_signal_fence(memory_order_seq_cst);
}
static inline bool hak_depth_leave(void) { /* true: the thread is out of every slow path */
  atomic_signal_fence(memory_order_seq_cst);
  return --hak_tls_depth == 0;
}
void  *hak_direct_alloc(size_t size, size_t align); /* no lock; NULL (errno ENOMEM): no memory */
void   hak_direct_free(hak_direct_t *d, void *p, const char *call);
size_t hak_direct_usable(hak_direct_t *d, const void *p, const char *call);
void   hak_direct_cache_release(void); /* the calling thread's cached direct mappings go back */
void   hak_reentry_account(hak_stats_t *st);
void   hak_defer_free(void *p, const char *call); /* onto the deferred list; fatal if on it already */
void  *hak_deferred_take(void);                   /* the whole list (linked by first words), emptied */
/* Cold operations (statistics, reset, profiles, the exit checks, fork,
 * thread exit) run with every signal blocked instead: no handler runs while
 * they hold their locks, and what they allocate is served as usual. */
void   hak_signals_block(sigset_t *old);
void   hak_signals_restore(const sigset_t *old);

/* ---- meta.c: descriptors (slabs, chunks, large, heaps) from the OS -------- */
void *hak_meta_alloc(size_t size);   /* zeroed, HAK_SPAN_ALIGN-aligned; NULL when out of memory */
void  hak_meta_free(void *p, size_t size);

/* ---- fatal.c: the bottom of every call chain --------------------------------- */
/* Stops the program with "hakmem: <call>: <what> <p>" (no address when p is NULL). */
_Noreturn void hak_fatal(const char *call, const char *what, const void *p);

/* ---- slab.c ---------------------------------------------------------------- */
#define HAK_CLASS_POOLED 0xffu /* a pooled slab's class: no blocks, no fast path */
hak_slab_t *hak_slab_new(unsigned cls, hak_heap_t *owner); /* from pool or OS */
void hak_slab_init(hak_slab_t *s, unsigned cls);
unsigned hak_slab_take(hak_slab_t *s, void **out, unsigned want); /* owner only */
void hak_slab_put(hak_slab_t *s, void *p, const char *call);      /* owner only */
void hak_slab_push_remote(void *const *blocks, unsigned n); /* any slabs: remote frees, one CAS per run */
bool hak_slab_block_free(const hak_slab_t *s, const void *p); /* bitmap: p's bit is set (validators) */
unsigned hak_slab_collect(hak_slab_t *s);                         /* owner: take xfree */
size_t hak_slab_decommit_free(hak_slab_t *s); /* bitmap: decommit wholly free pages; owner/heap lock */
void hak_slab_release(hak_slab_t *s);        /* empty slab -> pool or OS */

/* Puts blocks[0..n), all within s's memory, back into s (owner): the same
 * checks as hak_slab_put for each. Inline: a magazine flush (heap.c) calls it
 * once per run of neighbouring blocks, and runs are often one or two blocks
 * long (frees in random order), so a call's own cost counted as much as its
 * work. Bitmap slabs gather each word's bits and store them once (summary
 * and hint once per run); one multiply per block gives its index (high half)
 * and whether p starts it (low half, above). */
static inline void hak_slab_put_run(hak_slab_t *s, void *const *blocks, unsigned n, const char *call) {
  if (hak_unlikely(s->cls == HAK_CLASS_POOLED)) hak_fatal(call, "double free or invalid pointer", blocks[0]);
  if (hak_unlikely(n > s->used)) hak_fatal(call, "double free detected in slab at", s->base);
  if (config_slab_bitmap) {
    size_t w = SIZE_MAX, min_w = s->hint;
    uint64_t acc = 0, words = 0;
    for (unsigned k = 0; k < n; k++) {
      void *p = blocks[k];
      unsigned __int128 prod = (unsigned __int128)(uint64_t)((const char *)p - s->base) * s->recip;
      size_t i = (size_t)(prod >> 64);
      if (hak_unlikely(((uint64_t)prod >> 32) != 0 || i >= s->bump)) hak_fatal(call, "invalid pointer", p);
      if (i / 64 != w) {
        if (w != SIZE_MAX) s->bits[w] |= acc;
        w = i / 64;
        acc = 0;
        words |= 1ull << w;
        if (w < min_w) min_w = w;
      }
      uint64_t bit = 1ull << (i % 64);
      if (hak_unlikely((s->bits[w] | acc) & bit)) hak_fatal(call, "double free or invalid pointer", p);
      acc |= bit;
    }
    s->bits[w] |= acc; /* n >= 1 */
    s->summary |= words;
    s->hint = (uint32_t)min_w;
  } else {
    for (unsigned k = 0; k < n; k++) {
      void *p = blocks[k];
      size_t i = hak_slab_index(s, p);
      if (hak_unlikely(!hak_slab_is_block_start(s, p) || i >= s->bump)) hak_fatal(call, "invalid pointer", p);
      hak_block_t *b = p;
      b->next = s->free;
      s->free = b;
    }
  }
  s->used -= n;
}
void hak_slab_check_block(hak_slab_t *s, const void *p, const char *call); /* owner */
void hak_slab_check_remote(hak_slab_t *s, const void *p, const char *call); /* anyone */

/* Validator: checks I1 and the free lists of a slab; returns NULL when sound,
 * or a static string naming the broken invariant. Owner (or quiescent) only. */
const char *hak_slab_validate(hak_slab_t *s);


/* ---- pool.c: where slab memory comes from and goes ------------------------- */
hak_slab_t *hak_pool_take(unsigned units, unsigned node); /* pooled or fresh; page map set, tag 0 */
void hak_pool_put(hak_slab_t *s);            /* empty, no class: pooled, or back to the OS */
void hak_pool_trim(size_t keep_bytes);
void hak_pool_decay(void);                   /* dynamic flush: SuperSlabs unused for a second go back */
size_t hak_pool_bytes(void);
size_t hak_pool_count(void);
const char *hak_pool_validate(void);         /* takes the pool lock; SuperSlabs too */
extern pthread_mutex_t hak_pool_lock;
extern _Atomic size_t hak_slab_total;         /* slabs with memory (validators' bound) */

/* ---- superslab.c (pool lock held) ------------------------------------------ */
hak_slab_t *hak_superslab_take(unsigned units, unsigned node); /* descriptor with units and base set; memory of node */
void hak_superslab_put(hak_slab_t *s);          /* units back (dirty); empty SuperSlab unmapped */
void hak_superslab_purge(void);                 /* unmap empty SuperSlabs, decommit dirty units */
void hak_superslab_decay(void);                 /* dynamic flush: the same for those unused a second */
const char *hak_superslab_validate(void);       /* unit maps, lists, dirty counts */

/* ---- transfer.c: free blocks handed between magazines ------------------------ */
unsigned hak_xfer_put(unsigned c, void *const *blocks, unsigned n); /* takes what fits; returns how many */
unsigned hak_xfer_take(unsigned c, void **out, unsigned want);      /* returns how many */
size_t hak_xfer_drain(void);   /* every block back to its slab (remote frees) */
void hak_xfer_fork_prepare(void);
void hak_xfer_fork_parent(void);
void hak_xfer_fork_child(void);
const char *hak_xfer_validate(void);

/* Sorts a few pointers in place (validators). */
static inline void hak_sort_ptrs(void **a, uint32_t n) {
  for (uint32_t i = 1; i < n; i++) {
    void *v = a[i];
    uint32_t j = i;
    for (; j > 0 && (uintptr_t)a[j - 1] > (uintptr_t)v; j--) a[j] = a[j - 1];
    a[j] = v;
  }
}

/* ---- heap.c ---------------------------------------------------------------- */
extern hak_tls hak_heap_t *hak_tls_heap;  /* the thread's heap (slow paths) */
extern hak_tls hak_heap_t *hak_tls_gate;  /* the fast paths' heap (heap.c: the gate) */
extern _Atomic unsigned hak_gates_closed;
/* The fast paths' heap: a plain load (heap.c says why); TSan builds, which
 * check every access, load it atomically. */
static inline hak_heap_t *hak_gate(void) {
#if defined(__SANITIZE_THREAD__)
  return __atomic_load_n(&hak_tls_gate, __ATOMIC_RELAXED);
#else
  return hak_tls_gate;
#endif
}
extern hak_tls hak_heap_t *hak_tls_free_gate; /* free's fast path's heap */
extern _Atomic unsigned hak_free_gates_closed;
static inline hak_heap_t *hak_free_gate(void) {
#if defined(__SANITIZE_THREAD__)
  return __atomic_load_n(&hak_tls_free_gate, __ATOMIC_RELAXED);
#else
  return hak_tls_free_gate;
#endif
}
void hak_gates_close(bool frees); /* every malloc (and free) of every thread takes the slow path */
void hak_gates_open(bool frees);  /* undoes one hak_gates_close (gates reopen lazily) */
void hak_gate_reopen(bool free_gate); /* slow paths: drain if asked, reopen the caller's gate when allowed */
void hak_heaps_request_flush(void); /* hak_reset: other threads drain at their next call */
extern hak_heap_t hak_heap_empty;
void *hak_heap_alloc_small(unsigned cls);          /* magazine empty; NULL: out of memory */
void  hak_heap_free_small(void *p, hak_slab_t *s);  /* the fast path could not */
void  hak_heap_flush_thread(void);
void  hak_heap_trim_own(void);     /* after a flush: the magazine arrays' pages go back */
void  hak_abandoned_sweep(void);   /* abandoned slabs now empty -> pool */
uint64_t hak_heaps_activity(void);  /* refills + flushes of all heaps */
size_t hak_heaps_scavenge(bool idle_only); /* collect, release empty slabs, decommit free pages */
void  hak_heap_init(void);
void  hak_heap_fork_prepare(void);
void  hak_heap_fork_parent(void);
void  hak_heap_fork_child(void);
void  hak_heap_stats_sum(hak_heap_stats_t *out);
const char *hak_heap_validate_own(void);  /* the calling thread's heap */
const char *hak_heaps_validate(void);     /* every heap, abandoned slabs; others quiescent */

/* ---- medium.c -------------------------------------------------------------- */
void  *hak_medium_alloc(size_t size, size_t align, bool *zeroed);
void   hak_medium_free(hak_chunk_t *c, void *p, const char *call);
size_t hak_medium_usable(hak_chunk_t *c, const void *p, const char *call);
bool   hak_medium_resize_in_place(hak_chunk_t *c, void *p, size_t size);
void   hak_medium_purge(void);
size_t hak_medium_chunk_count(void);
uint64_t hak_medium_activity(void);  /* allocations + frees so far */
const char *hak_medium_validate(void);
extern pthread_mutex_t hak_medium_lock;

/* ---- arena.c (config_large_arena; hak_large_lock held) ---------------------- */
#define HAK_ARENA_BYTES     ((size_t)1 << 30)          /* address space reserved at a time */
#define HAK_ARENA_MAX_BLOCK (HAK_ARENA_BYTES / 4)      /* larger blocks: mappings of their own */
hak_large_t *hak_arena_take(size_t need, size_t align, bool *zeroed); /* NULL: none */
void   hak_arena_put(hak_large_t *l);                 /* a live run freed */
bool   hak_arena_resize(hak_large_t *l, size_t need); /* in place, or false */
bool   hak_arena_move(hak_large_t *l, char *dst);     /* its pages to dst; l freed */
void   hak_arena_decay(void);
void   hak_arena_bound(size_t bound);                 /* dirty free bytes within bound */
void   hak_arena_release(void);                       /* all dirty pages; empty arenas */
void   hak_arena_account(hak_stats_t *st);
size_t hak_arena_free_bytes(void);
const char *hak_arena_validate(void);

/* ---- large.c --------------------------------------------------------------- */
void  *hak_large_alloc(size_t size, size_t align, bool *zeroed);
void   hak_large_free(hak_large_t *l, void *p, const char *call);
size_t hak_large_usable(hak_large_t *l, const void *p, const char *call);
void  *hak_large_realloc(hak_large_t *l, void *p, size_t size); /* NULL: allocate and copy */
void   hak_large_cache_clear(void);
void   hak_large_decay(void);            /* dynamic flush: ranges unused for a second go back */
void   hak_large_cache_trim(size_t keep_bytes);
void   hak_large_counts(size_t *live, size_t *cached_bytes);
uint64_t hak_large_activity(void);   /* allocations + frees so far */
const char *hak_large_validate(void);
extern pthread_mutex_t hak_large_lock;

/* ---- meta.c lock ---------------------------------------------------------- */
extern pthread_mutex_t hak_meta_lock;

/* ---- scavenger.c (dynamic-flush variants) ---------------------------------- */
void hak_scavenger_start(void);           /* once, lazily; again in a forked child */
void hak_scavenger_fork_child(void);
void hak_scavenger_on_tick(void (*fn)(void)); /* fn at every tick (a layer above: profile.c) */
void hak_release_free(void);              /* everything free back to the OS (but own magazines) */
bool hak_scavenger_pause(void);           /* waits (2 s at most) for the tick under way; no tick until resumed */
void hak_scavenger_resume(void);

/* ---- check.c: the checked build (config_check) -------------------------------
 * Every allocation gets HAK_CHECK_TAIL more bytes than asked: the last 8 bytes
 * of its usable space (the trailer) hold the requested size with a check,
 * the bytes between the request and them (at least one) hold a canary. A
 * freed small block holds HAK_CHECK_FREED_BYTE in every byte, but for its
 * first word while that is a list's link (slab.c puts the pattern back). */
#define HAK_CHECK_TAIL 9
#define HAK_CHECK_FREED_BYTE 0xdfu
void  *hak_check_on_alloc(void *p, size_t req, const char *call); /* NULL stays NULL */
void   hak_check_on_free(void *p, const char *call);   /* before the block is freed */
size_t hak_check_requested(const void *p, const char *call); /* live block's size asked for */
/* Block i of s is held by the program (checked builds; chk_live in types.h). */
static inline bool hak_check_is_live(const hak_slab_t *s, size_t i) {
  return (atomic_load_explicit(&s->chk_live[i / 64], memory_order_relaxed) >> (i % 64)) & 1;
}

/* ---- hooks.c: allocation hooks (only the slow paths call these) ----------------- */
int  hak_hooks_install(const hak_hooks_t *hooks);  /* hak_hook_add (api.c): the id, or -1 */
int  hak_hooks_uninstall(int id);                  /* hak_hook_remove: 0, or -1 */
bool hak_hooks_enter(void);   /* false if the thread is inside a hooked call already */
void hak_hooks_leave(void);
void hak_hooks_malloc_before(size_t size);
void hak_hooks_malloc_after(void *p, size_t size);
void hak_hooks_free_before(void *p);
void hak_hooks_free_after(void *p);
void hak_hooks_realloc_before(void *p, size_t size);
void hak_hooks_realloc_after(void *old, void *p, size_t size);
void hak_hooks_aligned_before(size_t align, size_t size);
void hak_hooks_aligned_after(void *p, size_t align, size_t size);

/* ---- stack.c: call stacks for the profiler and the leak checker ------------------ */
/* The code between the program's call and the tracking calls (the API and
 * its slow paths, malloc_api.c) sits in this section, so that a captured
 * stack can leave hakmem's own frames out (stack.c). */
#define HAK_TEXT __attribute__((section("hak_text")))
#define HAK_STACK_MAX 64
/* A distinct call stack, kept once for the life of the process: its frames
 * (return addresses, the program's call of malloc first) and, from code built
 * with HAK_TRACE_SOURCE, the source location of the call. */
typedef struct hak_stack_s {
  uint64_t hash;
  const char *file;   /* HAK_TRACE_SOURCE: __FILE__ of the call, or NULL */
  int line;
  uint32_t depth;
  void *frames[];
} hak_stack_t;
int  hak_stack_capture(void **frames, int max);
const hak_stack_t *hak_stack_intern(void *const *frames, int n, const char *file, int line); /* NULL: no memory */
void hak_stack_scrub(void);         /* clears the dead stack below the caller (leak checker) */
void hak_stack_init(void);
void hak_stack_fork_prepare(void);
void hak_stack_fork_parent(void);
void hak_stack_fork_child(void);

/* ---- profile.c: the sampling heap profiler --------------------------------------- */
/* Bytes this thread may still allocate before the next sample (the
 * countdown of an exponentially distributed interval). */
extern hak_tls int64_t hak_prof_left;
/* A counting filter of the sampled blocks alive: 0 at p's slot means p was not
 * sampled, so most frees look no further. */
#define HAK_PROF_FILTER_BITS 16
extern _Atomic uint16_t hak_prof_filter[1u << HAK_PROF_FILTER_BITS];
static inline size_t hak_prof_slot(const void *p) {
  return (size_t)(((uint64_t)(uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull >> (64 - HAK_PROF_FILTER_BITS));
}
static inline bool hak_prof_maybe_sampled(const void *p) {
  return atomic_load_explicit(&hak_prof_filter[hak_prof_slot(p)], memory_order_relaxed) != 0;
}
bool hak_prof_redraw(size_t size);   /* the countdown ran out at an allocation of size bytes: sample it? */
void hak_prof_sample(void *p, size_t size, const hak_stack_t *st);
void hak_prof_free(void *p);
void hak_prof_init(void);            /* HAKMEM_PROFILE: start at start-up */
int  hak_prof_start(const char *path_prefix); /* hak_profile_start (api.c): 0, or -1 with errno */
void hak_prof_stop(void);
int  hak_prof_dump(const char *path);          /* NULL: the next numbered file */
void hak_prof_fork_prepare(void);
void hak_prof_fork_parent(void);
void hak_prof_fork_child(void);

/* ---- leakcheck.c: the leak checker ------------------------------------------------ */
void hak_leak_alloc(void *p, size_t size, const hak_stack_t *st);
/* p is freed: its record goes; *old (if not NULL) gets the record's stack
 * and size, or stack NULL when p had none. */
typedef struct hak_leak_rec_s { const hak_stack_t *stack; size_t size; } hak_leak_rec_t;
void hak_leak_free(void *p, hak_leak_rec_t *old);
void hak_leak_init(void);            /* HAKMEM_LEAKCHECK: from start-up on */
size_t hak_leak_check_now(hak_leak_counts_t *out); /* hak_leak_check (api.c) */
int  hak_leak_ignore_block(const void *p);          /* hak_leak_ignore (api.c): 0, or -1 with errno */
void hak_leak_fork_prepare(void);
void hak_leak_fork_parent(void);
void hak_leak_fork_child(void);

/* ---- symbols.c: naming frames (leak report) ---------------------------------------- */
#define HAK_SOURCE_MAX 8
typedef struct hak_source_s {
  const char *function;  /* "??" when the DWARF names none */
  const char *file;      /* NULL when unknown */
  int line;
} hak_source_t;
typedef struct hak_frame_name_s {
  const char *function;  /* NULL when unknown */
  const char *object;    /* path of the object holding the address, or NULL */
  uintptr_t offset;      /* address minus the object's load base */
  uintptr_t address;     /* the address in the object's link-time addresses (minus its load bias) */
  bool in_main;          /* the object is the main program */
  /* hak_symbols_source: the source at the call, innermost first (functions
   * inlined there, then the one they are in); valid until its next call */
  unsigned nsource;      /* 0: no file:line */
  hak_source_t source[HAK_SOURCE_MAX];
} hak_frame_name_t;
void hak_symbols_lookup(const void *ip, hak_frame_name_t *out);
/* file:line of a frame hak_symbols_lookup named, from hakmem-symbolize (a
 * process of its own); when it cannot be had, hak_symbols_problem says why,
 * once (NULL after that, and with HAKMEM_LEAKCHECK_SYMBOLIZER=off). */
void hak_symbols_source(hak_frame_name_t *fn);
const char *hak_symbols_problem(void);
void hak_symbols_release(void);      /* unmaps the symbol tables read, ends hakmem-symbolize */

/* ---- signal_flag.c: a signal that only raises a flag ------------------------------ */
/* Catches sig so that it sets *flag, keeping the program's handler to call
 * after; false if it cannot (or sig is caught already). */
bool hak_signal_flag_catch(int sig, volatile sig_atomic_t *flag);

/* ---- out.c: writing reports without malloc ------------------------------------------ */
typedef struct hak_out_s {
  int fd;
  size_t len;
  bool failed;
  char buf[8192];
} hak_out_t;
void hak_out_printf(hak_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hak_out_write(hak_out_t *o, const char *s, size_t n);
void hak_out_flush(hak_out_t *o);
bool hak_out_copy_file(hak_out_t *o, const char *path); /* appends a file's contents */
void hak_out_error(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* to stderr */

/* ---- validate.c: every validator, in lock order -------------------------------- */
const char *hak_validate_own(void);  /* own heap, pool and SuperSlabs, medium, large */
const char *hak_validate_all(void);  /* every heap too: other threads quiescent */

/* ---- options.c ------------------------------------------------------------- */
typedef enum hak_option_e {
  HAK_OPT_STATS,           /* statistics at exit: off, text, json       */
  HAK_OPT_STATS_FILE,      /* ... to this file (a text option)          */
  HAK_OPT_STATS_SIGNAL,    /* ... on this signal too                    */
  HAK_OPT_STATS_PEAK,      /* ... with the figures at the peak RSS too  */
  HAK_OPT_VERBOSE,         /* print the variant and options at start-up */
  HAK_OPT_IDLE_MS,         /* dynamic flush: idle time before memory goes back */
  HAK_OPT_THP,             /* huge-page advice for SuperSlabs and large blocks */
  HAK_OPT_PROFILE,         /* heap profile: the files' path prefix (a text option) */
  HAK_OPT_PROFILE_RATE,    /* ... mean bytes between samples             */
  HAK_OPT_PROFILE_INTERVAL, /* ... a dump every this many bytes allocated */
  HAK_OPT_PROFILE_INUSE_INTERVAL, /* ... a dump when in use grows this much past the high-water mark */
  HAK_OPT_PROFILE_TIME_INTERVAL,  /* ... a dump every this many seconds      */
  HAK_OPT_PROFILE_SIGNAL,  /* ... a dump on this signal                  */
  HAK_OPT_LEAKCHECK,       /* the leak checker                           */
  HAK_OPT_LEAKCHECK_FILE,  /* ... its report to this file                */
  HAK_OPT_LEAKCHECK_SUPPRESS, /* ... leaks not reported (a file of patterns) */
  HAK_OPT_LEAKCHECK_EXITCODE, /* ... exit status when something leaked   */
  HAK_OPT_LEAKCHECK_REACHABLE, /* ... the still reachable blocks listed too */
  HAK_OPT_LEAKCHECK_SYMBOLIZER, /* ... file:line from this program, or off (a text option) */
  HAK_OPT_COUNT
} hak_option_t;
long hak_option(hak_option_t o);
const char *hak_option_text(hak_option_t o); /* text options; NULL when unset */
void hak_options_init(void);
void hak_options_write(FILE *out); /* the table with the values in force (hak_options_print) */
void hak_options_report(void);      /* ... to stderr without stdio (HAKMEM_VERBOSE) */

/* ---- statistics: each part accounts for itself (stats.c sums them) ----------- */
void hak_heaps_account(hak_stats_t *st, hak_heap_stats_t *totals); /* heap.c */
void hak_xfer_account(hak_stats_t *st, uint64_t totals[2]);     /* transfer.c: blocks in, out */
void hak_pool_account(hak_stats_t *st);                        /* pool.c, with the SuperSlabs */
void hak_superslab_account(hak_stats_t *st);                   /* superslab.c, pool lock held */
void hak_medium_account(hak_stats_t *st, uint64_t totals[3]);  /* allocs, frees, bytes */
void hak_large_account(hak_stats_t *st, uint64_t totals[3]);
void hak_meta_account(hak_stats_t *st);
void hak_pagemap_account(hak_stats_t *st);

/* ---- stats.c --------------------------------------------------------------- */
void hak_stats_at_exit(void);   /* atexit handler when HAKMEM_STATS is set */
void hak_stats_fork_prepare(void); /* the statistics lock across fork */
void hak_stats_fork_parent(void);
void hak_stats_fork_child(void);
void hak_stats_signal_init(void); /* HAKMEM_STATS_SIGNAL: catch it */
void hak_stats_peak_init(void);   /* HAKMEM_STATS_PEAK: keep the figures at the process's peak RSS */
void hak_stats_poll(void);        /* slow paths, scavenger: print if the signal came */
void hak_stats_count_scavenge(size_t released); /* the scavenger: a pass that gave memory back */
void hak_stats_add_metadata(const void *p, size_t bytes); /* a mapping of hakmem's own, counted as metadata */
void hak_stats_snapshot(hak_stats_t *out);      /* hak_stats_get (api.c) */
void hak_stats_write(FILE *out, int fmt);       /* hak_stats_print (api.c), at exit, on the signal */
size_t hak_stats_zero(void);      /* hak_reset (api.c): the counters start again; the bytes in use */

/* ---- init.c: called by the API (api.c, malloc_api.c) and its slow paths ------ */
typedef enum hak_init_state_e { HAK_INIT_NONE, HAK_INIT_RUNNING, HAK_INIT_DONE } hak_init_state_t;
extern _Atomic hak_init_state_t hak_init_state;
void hak_init_slow(void);

/* ---- the malloc path: malloc_api.c, observe.c, realloc.c, alloc.c, free.c ------ */
/* What the exported functions are marked with (api.c, malloc_api.c). */
#define HAK_EXPORT __attribute__((visibility("default")))

/* The one tier decision, for a request of size bytes aligned to align (a
 * power of two): small when a size class holds it (every class up to the
 * largest is a multiple of a power of two up to HAK_SMALL_MAX, so one does
 * whenever both fit), medium when a page run can (aligned up to
 * HAK_MEDIUM_MAX_ALIGN), large otherwise. */
typedef enum hak_tier_e { HAK_TIER_SMALL, HAK_TIER_MEDIUM, HAK_TIER_LARGE } hak_tier_t;
static inline hak_tier_t hak_tier_of(size_t size, size_t align) {
  if ((size < align ? align : size) <= HAK_SMALL_MAX) return HAK_TIER_SMALL;
  if (align <= HAK_MEDIUM_MAX_ALIGN && size <= HAK_MEDIUM_MAX) return HAK_TIER_MEDIUM;
  return HAK_TIER_LARGE;
}
/* The class of a small request of n bytes aligned to align: the first class at
 * least n bytes whose size is a multiple of align (blocks sit at multiples of
 * their size from a unit-aligned base). */
static inline unsigned hak_small_class(size_t n, size_t align) {
  unsigned c = hak_size_class(n);
  while (hak_class_size[c] % align != 0) c++;
  return c;
}
_Static_assert(HAK_SMALL_MAX == 32768, "the largest class is a multiple of every power of two up to it");
/* The magazine (its index in a heap's mag[], by tag) of a small malloc of size
 * bytes (at most HAK_SMALL_MAX): up to 1 KiB a shift, HAK_CLASS_TAG((size + 15)
 * >> 4); above, the class table. A caller that knows size <= 1024 gets the
 * shift alone. */
static inline unsigned hak_mag_index(size_t size) {
  return size <= 1024 ? (unsigned)((size + 31) >> 4) : HAK_CLASS_TAG(hak_size_class(size));
}
/* A pop from magazine m, or NULL when it is empty (its sentinel is NULL). */
static inline void *hak_mag_pop(hak_mag_t *m) {
  void **top = m->top;
  void *p = top[-1];
  if (hak_likely(p != NULL)) m->top = top - 1;
  return p;
}
/* free's fast path: p is the start of a small block and the magazine of its
 * class has room: push. The magazine is the free gate's, or (own) the thread's
 * own heap's behind a closed gate; the heap is read only once p is known to be
 * a block start (one instruction fewer). False: a slow path must do it. */
static inline bool hak_free_push(void *p, bool own) {
  uintptr_t entry = hak_pagemap_entry(p);
  unsigned tag = (unsigned)(entry & HAK_TAG_MASK);
  const hak_tag_info_t *info = &hak_tag_info[tag];
  if (hak_likely((((uint64_t)((uintptr_t)p & info->mask) * info->recip) >> 32) == 0)) { /* a block start */
    hak_mag_t *m = &(own ? hak_tls_heap : hak_free_gate())->mag[tag]; /* tag 0: never has room */
    void **top = m->top;
    if (hak_likely(top < m->limit && top[-1] != p)) {
      *top = p;
      m->top = top + 1;
      return true;
    }
  }
  return false;
}
/* A slow path's first duty, with the caller's gate (malloc's, or free's)
 * closed: drain its heap when hak_reset asked, and reopen the gate when its
 * observers went away (heap.c). */
static inline void hak_gate_check(void) {
  if (hak_unlikely(hak_gate() != hak_tls_heap) &&
      (atomic_load_explicit(&hak_gates_closed, memory_order_relaxed) == 0 ||
       atomic_load_explicit(&hak_tls_heap->flush_wanted, memory_order_relaxed)))
    hak_gate_reopen(false);
}
static inline void hak_free_gate_check(void) {
  if (hak_unlikely(hak_free_gate() != hak_tls_heap) &&
      (atomic_load_explicit(&hak_free_gates_closed, memory_order_relaxed) == 0 ||
       atomic_load_explicit(&hak_tls_heap->flush_wanted, memory_order_relaxed)))
    hak_gate_reopen(true);
}

/* alloc.c */
void *hak_alloc_small_slow(unsigned c);   /* magazine c empty; NULL (errno ENOMEM): no memory */
/* A block of small class c: a pop from magazine c of heap h (the gate, or the
 * thread's own heap behind a closed gate). */
static inline void *hak_alloc_class_in(hak_heap_t *h, unsigned c) {
  void *p = hak_mag_pop(&h->mag[HAK_CLASS_TAG(c)]);
  if (hak_likely(p != NULL)) return p;
  return hak_alloc_small_slow(c);
}
void *hak_route(size_t size, size_t align, bool *zeroed, hak_heap_t *h); /* *zeroed: reads as zero */
void *hak_alloc_sampled(size_t size, size_t align, bool *zeroed);
void *hak_alloc_checked(size_t align, size_t size, bool zero, const char *call);
/* free.c */
void   hak_free_span(void *p);
void   hak_free_reentrant(void *p);
size_t hak_usable_size_span(const void *p, hak_span_t *span, const char *call); /* every kind */
/* Usable size of block p of span (the start of a live block; fatal if not).
 * A slab's block, the common case of realloc and malloc_usable_size, inline;
 * anything else, and a pointer that fails the slab's checks, by
 * hak_usable_size_span (free.c), which stops it. */
static inline size_t hak_usable_size(const void *p, hak_span_t *span, const char *call) {
  if (!config_check && hak_likely(span != NULL) && span->kind == HAK_SPAN_SLAB) {
    const hak_slab_t *s = (const hak_slab_t *)span;
    if (hak_likely(s->cls < HAK_CLASS_COUNT && hak_slab_is_block_start(s, p))) return s->block_size;
  }
  return hak_usable_size_span(p, span, call);
}
/* realloc.c */
void *hak_realloc_untracked(void *p, size_t size, bool sample);
/* observe.c */
unsigned hak_observers_init(void);
/* The observers, for an observed path (initialised first: HAK_OBS_INIT). */
static inline unsigned hak_observers_now(void) {
  unsigned obs = hak_observers_get();
  return hak_unlikely(obs & HAK_OBS_INIT) ? hak_observers_init() : obs;
}
void *hak_observed_malloc(size_t size, unsigned obs);
void *hak_observed_routed(size_t size, size_t align, bool *zeroed, unsigned obs);
void  hak_free_tracked(void *p);
void *hak_tracked_realloc(void *p, size_t size, unsigned obs);
void  hak_track_alloc(void *p, size_t size, unsigned obs);
void  hak_track_free(void *p, unsigned obs);

#endif
