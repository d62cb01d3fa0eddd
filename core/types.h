/* types.h — hakmem's data structures, constants and invariants.
 *
 * Glossary
 *   unit        64 KiB of address space, aligned to 64 KiB. Every mapping hakmem
 *               makes is a whole number of units, so a unit never holds anything
 *               but hakmem memory of one span.
 *   span        anything that owns units: a slab, a medium chunk, a large
 *               mapping or a direct block. Every span starts with a hak_span_t
 *               header naming its kind.
 *   tag         the low 7 bits of a page-map entry: a slab's class + 1, 0 for
 *               every other span, so free's fast path learns a block's class
 *               (and its magazine) without reading the slab's descriptor.
 *   page map    two-level radix table from unit number to span (pagemap.c); the
 *               O(1), lock-free way from any pointer to its span, and the test
 *               of whether hakmem owns a pointer at all. A large range is in it
 *               by its first unit only (large.c): a pointer further into a
 *               large block finds no span.
 *   size class  one of HAK_CLASS_COUNT block sizes for small objects
 *               (size_class.h); 16-byte steps up to 1 KiB, four per doubling
 *               above, up to HAK_SMALL_MAX.
 *   slab        1 or 4 units holding blocks of one size class (slab.c). Its
 *               descriptor lives outside the blocks, so block i sits at
 *               base + i * size and a power-of-two-multiple size is naturally
 *               aligned.
 *   heap        one per thread that allocates (heap.c): a magazine per class
 *               and the slabs the thread owns.
 *   magazine    a bounded array stack of free blocks of one class, private to a
 *               heap: the fast path pops and pushes here and nothing else.
 *   gate        the heap a thread's fast paths use (heap.c): its own, or the
 *               empty heap when every call must take a slow path (hooks or
 *               the profiler or leak checker watch, hak_reset asked the thread
 *               to drain). malloc and free each read a gate of their own.
 *   observer    what watches every call and so keeps the gates closed: hooks,
 *               the heap profiler, the leak checker (observers.c, observe.c).
 *   transfer cache  blocks freed by threads that do not own their slab, handed
 *               whole from the flushing thread's magazine to the next thread
 *               that refills that class (transfer.c; hybrid).
 *   mini-magazine  a slab's own intrusive LIFO free list (s->free), in the list
 *               variants: it refills the thread's magazine in batches and takes
 *               its flushes (the name of the mini_magazine variant).
 *   refill      moving a batch of free blocks from a class's slabs into its
 *               empty magazine (heap.c, mag_refill); flush: the reverse, half of
 *               a full magazine back to its slabs (mag_flush).
 *   bump        in a list slab, the index of the first block never handed out;
 *               blocks past it are taken without touching their memory.
 *   bitmap      in a bitmap slab, one bit per block, set when free, with a
 *               summary word (which bitmap words are non-empty) and a hint.
 *   SuperSlab   2 MiB-aligned region of 32 units, carved into slabs whose
 *               descriptors live in its header (superslab.c); free units are
 *               dirty (committed) until decommitted.
 *   dirty       free memory still committed (counts in RSS); decommit
 *               (MADV_DONTNEED) makes it clean, reading as zero.
 *   scavenger   the background thread of dynamic-flush variants that gives free
 *               memory back when the process idles (scavenger.c).
 *   checked build  a variant built with CHECK=1 (check.c): every free and
 *               allocation verified, at a cost.
 *   validator   a function that walks a structure and names the first broken
 *               invariant, or returns NULL (validate.c).
 *   remote free a free by a thread that does not own the block's slab. The block
 *               goes into the freeing thread's magazine like any other
 *               (free.c); when that magazine is flushed (heap.c,
 *               flush_foreign) it goes to the transfer cache, or is pushed on
 *               its slab's lock-free xfree stack (remote_free.h), whose owner
 *               takes the whole stack at once when it refills.
 *   abandoned   a slab whose owning thread exited while blocks were still live;
 *               any heap that needs a slab of that class adopts it.
 *   orphan      in a forked child, the heap of a thread that does not exist in
 *               the child and was changing its slabs at the fork (I6): its
 *               slabs and blocks are never used again in the child.
 *   pool        empty slabs kept for reuse by any size class, up to a bound; past
 *               it they go back to the OS.
 *   medium      sizes above HAK_SMALL_MAX up to HAK_MEDIUM_MAX: runs of 4 KiB
 *               pages inside 4 MiB chunks, coalesced on free (medium.c).
 *   large       sizes above HAK_MEDIUM_MAX, and alignments above
 *               HAK_MEDIUM_MAX_ALIGN: their own mapping, with a small bounded
 *               cache of freed mappings (large.c).
 *   depth mark  a per-thread counter, above 0 while the thread is inside a
 *               slow-path section that takes a lock or rewrites a magazine
 *               (malloc_api.c brackets them; reentry.c).
 *   re-entrant call  a malloc, free or realloc made while the thread's depth
 *               mark is set: by a signal handler that interrupted it, or by
 *               code hakmem runs there. It takes no lock (reentry.c).
 *   direct block  a re-entrant call's allocation: a mapping of its own with
 *               its header at the start, one page-map entry (reentry.c).
 *   deferred free  a re-entrant call's free of a block it cannot free
 *               without a lock: kept on the thread's deferred list, made when
 *               the thread leaves the slow path.
 *   closed magazine  one a slow path is rewriting: limit then top set to its
 *               base (heap.c, mag_close), so the fast paths, which a signal
 *               handler may run at any moment, find it empty and full.
 *
 * Invariants
 *   I1  For a slab s: s->used + (blocks on s->free) + (capacity - s->bump)
 *       == s->capacity. used counts blocks held by the program, by magazines
 *       and on s->xfree (a remote free cannot touch used; the owner subtracts
 *       when it collects). hak_slab_validate() checks this.
 *   I2  Only the owning heap touches s->free, s->bump, s->used, the bitmap and
 *       the slab's list links (also the scavenger, in dynamic-flush variants,
 *       holding that heap's lock, which the owner takes for the same work;
 *       the statistics read them holding it);
 *       other threads touch only s->xfree (atomic push). An ownerless slab
 *       (abandoned or pooled) is touched only under the lock of the list it
 *       is on: hak_abandoned_sweep and adoption hold the abandoned lock, the
 *       pool holds the pool lock.
 *   I3  s->span.owner changes only from NULL to a heap (adoption, under the
 *       abandoned-list lock) or from the owning heap to NULL (abandonment, by
 *       the owner). So "s->span.owner == me" is stable for the thread that asks.
 *   I4  A block sits in at most one of: the program, one magazine, the
 *       transfer cache, s->free, s->xfree. A block in a magazine or in the
 *       transfer cache is counted in its slab's used; the slab may belong to
 *       another heap (a block freed by a thread that does not own its slab
 *       goes into that thread's magazine; a flush sends it back to its slab
 *       when the slab is the flushing heap's, else to the transfer cache or,
 *       when that has no room, by a remote free).
 *   I5  Page-map entries of a span are set before any of its memory is handed
 *       out and cleared only after all of it has been returned.
 *   I6  A heap's owner sets h->in_slabs before it changes any slab of the heap
 *       or the heap's slab lists and clears it after (release order), so that
 *       after fork() the child can tell, for each heap of a thread that does
 *       not exist in it, whether that heap's slabs are consistent. Magazines
 *       are changed by the fast paths without it, so a child never trusts a
 *       dead thread's magazine (heap.c, fork).
 *   I7  A slab's page-map entries carry the tag of its class while it has one
 *       (from hak_slab_init until hak_slab_release), tag 0 otherwise; medium
 *       chunks and large ranges always have tag 0.
 */
#ifndef HAK_TYPES_H
#define HAK_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "variant.h"

#define HAK_UNIT_SHIFT     16
#define HAK_UNIT_SIZE      ((size_t)1 << HAK_UNIT_SHIFT)          /* 64 KiB */
#define HAK_PAGE_SIZE      ((size_t)4096)
#define HAK_ADDR_BITS      47

#define HAK_SMALL_MAX      ((size_t)32768)      /* largest small (slab) size   */
#define HAK_MEDIUM_MAX     ((size_t)512 * 1024) /* largest medium (run) size   */
#define HAK_MEDIUM_MAX_ALIGN HAK_UNIT_SIZE      /* medium runs align up to this */
#define HAK_CHUNK_SIZE     ((size_t)4 << 20)    /* a medium chunk              */
#define HAK_CHUNK_PAGES    (HAK_CHUNK_SIZE / HAK_PAGE_SIZE)
#define HAK_MAX_REQUEST    (((size_t)1 << HAK_ADDR_BITS) - HAK_UNIT_SIZE * 2)

#define HAK_CLASS_COUNT    85

_Static_assert((HAK_UNIT_SIZE & (HAK_UNIT_SIZE - 1)) == 0, "unit is a power of two");
_Static_assert(HAK_CHUNK_SIZE % HAK_UNIT_SIZE == 0, "chunk is whole units");
_Static_assert(HAK_MEDIUM_MAX * 4 <= HAK_CHUNK_SIZE, "a chunk holds at least four of the largest medium runs");
_Static_assert(HAK_SMALL_MAX < HAK_MEDIUM_MAX, "tiers are ordered");
_Static_assert(HAK_CHUNK_PAGES <= 0x7ff, "page-run lengths fit the 11-bit field of medium.c");

/* Span tags. The page map keeps, in the low bits of each span pointer, a
 * 7-bit tag: for a slab of class c, c + 1; for anything else (a medium chunk,
 * a large range, a pooled slab), 0. So free's fast path learns a block's
 * class without reading the slab's descriptor. Span descriptors are
 * HAK_SPAN_ALIGN-aligned so that the tag fits. */
#define HAK_SPAN_ALIGN  128
#define HAK_TAG_MASK    ((uintptr_t)HAK_SPAN_ALIGN - 1)
#define HAK_TAG_COUNT   128                 /* tags 0..127; heaps keep a magazine per tag */
#define HAK_CLASS_TAG(c) ((c) + 1u)

typedef enum hak_span_kind_e {
  HAK_SPAN_SLAB = 1,
  HAK_SPAN_MEDIUM = 2,
  HAK_SPAN_LARGE = 3,
  HAK_SPAN_DIRECT = 4,                /* a re-entrant call's block (reentry.c) */
} hak_span_kind_t;

struct hak_heap_s;

/* Every span starts with this header. owner is the heap owning a slab (I3);
 * it is NULL for every other span, so "span->owner == my heap" alone tells
 * the free fast path that p is in a slab it owns. */
typedef struct hak_span_s {
  uint8_t kind;                       /* hak_span_kind_t                       */
  _Atomic(struct hak_heap_s *) owner; /* slabs: owning heap or NULL; else NULL */
} hak_span_t;

/* A block on a free list or on the xfree stack stores the link in its first word. */
typedef struct hak_block_s {
  struct hak_block_s *next;
} hak_block_t;

/* Bitmap words of a slab descriptor: 64 words cover the largest capacity
 * (64 KiB of 16-byte blocks); one unused word when the variant keeps lists. */
#define HAK_SLAB_BITMAP_WORDS (HAK_CONFIG_SLAB_BITMAP ? 64 : 1)
#define HAK_CHECK_WORDS       (HAK_CHECK ? 64 : 1)
#define HAK_SUPERSLAB_SIZE    ((size_t)2 << 20)
#define HAK_SUPERSLAB_UNITS   ((unsigned)(HAK_SUPERSLAB_SIZE / HAK_UNIT_SIZE))
struct hak_superslab_s;

/* A slab descriptor is laid out by who touches it, one cache line each:
 * line 0 its identity (owner, class, base, reciprocal), written only when the
 * slab changes hands or class; line 1 the owner's bookkeeping; line 2 the
 * remote-free stack alone, since other threads write it (so their frees
 * never evict the owner's lines). */
#define HAK_CACHE_LINE 64
typedef struct hak_slab_s {
  /* line 0: read by the slow paths first */
  _Alignas(HAK_SPAN_ALIGN) hak_span_t span; /* kind == HAK_SPAN_SLAB; must be first */
  uint8_t  units;                     /* 1 or 4 units                          */
  uint8_t  cls;                       /* size class                            */
  uint32_t block_size;                /* class size in bytes                   */
  uint64_t recip;                     /* 2^64 / block_size, rounded up (internal.h) */
  char    *base;                      /* first byte; 64 KiB aligned            */
  uint32_t capacity;                  /* blocks that fit                       */
  struct hak_superslab_s *ss;         /* superslab holding it (superslab variants) */
  /* line 1: the owner's bookkeeping */
  _Alignas(HAK_CACHE_LINE) uint32_t used; /* blocks out of the slab (I1)        */
  uint32_t bump;                      /* blocks never handed out start here    */
  uint8_t  in_full;                   /* on the owner's full list              */
  hak_block_t *free;                  /* owner-only LIFO free list             */
  struct hak_slab_s *next, *prev;     /* owner's class list, or pool/abandoned */
  /* Bitmap variants: bit i of bits[] set = block i is free in the slab; bit w
   * of summary set = bits[w] != 0; hint = lowest word that may be non-empty. */
  uint32_t hint;
  uint64_t summary;
  /* line 2: written by other threads */
  _Alignas(HAK_CACHE_LINE) _Atomic(hak_block_t *) xfree; /* remote frees (remote_free.h) */
  _Alignas(HAK_CACHE_LINE) uint64_t bits[HAK_SLAB_BITMAP_WORDS];
  /* Checked builds (check.c): bit i of chk_live set = block i is held by the
   * program; of chk_poison = block i was filled with the freed pattern and
   * nothing has touched it since. Written by any thread, atomically. */
  _Atomic uint64_t chk_live[HAK_CHECK_WORDS];
  _Atomic uint64_t chk_poison[HAK_CHECK_WORDS];
} hak_slab_t;
_Static_assert(sizeof(hak_span_t) + 4 + 4 + 8 + 8 + 4 + 8 <= HAK_CACHE_LINE, "free's fields fit line 0");
_Static_assert(HAK_SLAB_BITMAP_WORDS == 1 || HAK_SLAB_BITMAP_WORDS * 64 >= HAK_UNIT_SIZE / 16,
               "the bitmap covers the largest slab capacity");

/* A SuperSlab: 2 MiB, 2 MiB-aligned; this header sits in its unit 0, the
 * other units are carved into 1- and 4-unit slabs whose descriptors live in
 * the header (superslab.c). */
typedef struct hak_superslab_s {
  char    *base;                      /* == the header's own address (unit 0)    */
  uint32_t free_units;                /* bit u set = unit u is not in a slab     */
  uint32_t dirty_units;               /* free units not yet decommitted          */
  uint32_t touched_tick;              /* dynamic flush: hak_clock_tick of its last change */
  uint32_t node;                      /* NUMA node its memory comes from (os.c)   */
  struct hak_superslab_s *next, *prev;
  hak_slab_t slabs[HAK_SUPERSLAB_UNITS]; /* slabs[u]: the slab starting at unit u */
} hak_superslab_t;

/* A magazine: the free blocks of one class in base[0] .. top[-1], the newest
 * at top[-1], where base (hak_heap_t.mag_base) is its array. base[-1] is a
 * NULL sentinel, never written: an empty magazine reads NULL at top[-1], so
 * malloc's fast path pops with no count, and free's double-free test may read
 * top[-1] whatever the count. A push needs top < limit (base + capacity). */
typedef struct hak_mag_s {
  void **top;
  void **limit;
} hak_mag_t;
_Static_assert(sizeof(hak_mag_t) == 16, "malloc finds a magazine at 16 + ((size + 15) & ~15) (malloc_api.c)");
_Static_assert(HAK_CLASS_COUNT + 1 <= HAK_TAG_COUNT, "every class has a tag");

typedef struct hak_class_slabs_s {
  hak_slab_t *partial;                /* slabs that may have free blocks       */
  hak_slab_t *full;                   /* slabs with none, as far as we knew    */
} hak_class_slabs_t;

/* Per-thread counters: written only by the heap's thread (HAK_STAT_ADD, a
 * relaxed load and store, no read-modify-write), read by anyone summing them. */
typedef struct hak_heap_stats_s {
  _Atomic uint64_t refills, refill_blocks, flushes, flush_blocks, slabs_new, slabs_adopted, remote_frees,
      remote_collected;
} hak_heap_stats_t;
#define HAK_STAT_ADD(h, field, n)                                                     \
  atomic_store_explicit(&(h)->stats.field,                                          \
                        atomic_load_explicit(&(h)->stats.field, memory_order_relaxed) + (n), \
                        memory_order_relaxed)

typedef struct hak_heap_s {
  /* First: the fast paths' only data. mag[HAK_CLASS_TAG(c)] is class c's
   * magazine; mag[0] and those past the last class never have room, so a
   * block whose tag is 0 (not a small block) always takes the slow path. */
  hak_mag_t mag[HAK_TAG_COUNT];
  void   **mag_base[HAK_CLASS_COUNT]; /* each magazine's array (sentinel at [-1]) */
  hak_class_slabs_t slabs[HAK_CLASS_COUNT];
  hak_heap_stats_t stats;             /* batched per thread; summed on request  */
  _Atomic uint8_t in_slabs;           /* owner is changing its slabs (fork: I6) */
  pthread_mutex_t lock;               /* owner vs scavenger and statistics     */
  struct hak_heap_s **gate;           /* the owner's gate (heap.c); NULL once it exits */
  _Atomic bool flush_wanted;          /* hak_reset asks the owner to drain (heap.c) */
  struct hak_heap_s **free_gate;      /* ... and its free gate                 */
  uint32_t mag_tick[HAK_CLASS_COUNT]; /* dynamic flush: tick of last refill    */
  uint32_t refill_tick[HAK_CLASS_COUNT]; /* hak_clock_tick + 1 at the last refill; 0: never */
  uint32_t flush_tick[HAK_CLASS_COUNT];  /* dynamic flush: hak_clock_tick + 1 at the last full magazine */
  uint64_t scavenger_seen;            /* dynamic flush: activity last seen     */
  struct hak_heap_s *next, *prev;     /* all heaps (heap list lock)            */
  size_t   map_bytes;                 /* size of this heap's own mapping       */
} hak_heap_t;

/* Medium chunk: 1024 pages; pg[] holds run boundary tags (medium.c). */
typedef struct hak_chunk_s {
  _Alignas(HAK_SPAN_ALIGN) hak_span_t span; /* kind == HAK_SPAN_MEDIUM          */
  char      *base;
  uint32_t   free_pages;
  uint32_t   dirty_pages;             /* free pages not yet decommitted        */
  struct hak_chunk_s *next, *prev;
  uint16_t   pg[HAK_CHUNK_PAGES];
} hak_chunk_t;

/* Large range descriptor: a live large block, or a cached free range. A
 * range may span several kernel mappings (large.c): cut[0..ncuts) are the
 * unit offsets, ascending, where a new one may start. */
#define HAK_LARGE_CUTS 7
typedef struct hak_large_s {
  _Alignas(HAK_SPAN_ALIGN) hak_span_t span; /* kind == HAK_SPAN_LARGE           */
  uint8_t    cached;                  /* in the large cache (an arena's free run), not live */
  uint8_t    ncuts;                   /* kernel mappings spanned, minus one    */
  uint8_t    in_arena;                /* a run of an arena (arena.c)            */
  uint32_t   cut[HAK_LARGE_CUTS];
  uint32_t   freed_tick;              /* cached: hak_clock_tick when it was freed */
  char      *base;                    /* range start == user pointer           */
  size_t     map_bytes;               /* range length (whole units)            */
  struct hak_large_s *next, *prev;    /* the cache, newest first; an arena's free runs */
  struct hak_arena_s *arena;          /* in_arena: its arena                    */
} hak_large_t;

/* A direct block (reentry.c): a mapping of its own, this header at its
 * start, the block at user; only the block's own unit is in the page map. */
typedef struct hak_direct_s {
  _Alignas(HAK_SPAN_ALIGN) hak_span_t span; /* kind == HAK_SPAN_DIRECT          */
  char      *user;                    /* the block                             */
  size_t     map_bytes;               /* the mapping, from this header         */
} hak_direct_t;

#endif
