/* reentry.c — calls that re-enter hakmem: a malloc, free or realloc made on
 * a thread that is already inside one of hakmem's slow paths, where it may
 * hold a lock or be changing a magazine. A signal handler that allocates
 * makes such calls (so does code hakmem itself runs there, such as the
 * unwinder). glibc stops or deadlocks there; hakmem serves them without
 * taking any lock:
 *
 *   - the depth mark (hak_tls_depth): every slow-path section that takes a
 *     lock or rewrites a magazine runs between hak_depth_enter and
 *     hak_depth_leave (malloc_api.c says which); a call that finds the mark
 *     set is re-entrant. The mark is a plain per-thread counter: a handler
 *     that interrupts its increment or decrement runs to its end and leaves
 *     it as it found it, so no atomic operation is needed; compiler fences
 *     keep the mark before the locks it announces;
 *   - a re-entrant allocation is a mapping of its own (a direct block):
 *     whole units from the OS layer, this file's header at the start, the
 *     block after it, and one page-map entry, the block's own unit, pointing
 *     at the header. The OS layer and the page map take no locks. Its free
 *     (from anywhere, at any depth) unmaps it, or keeps it in the freeing
 *     thread's small cache of direct mappings (DIRECT_CACHE_SLOTS mappings
 *     of at most DIRECT_CACHE_MAX bytes, DIRECT_CACHE_BYTES in all, taken
 *     and put back with single atomic exchanges), from which the thread's next re-entrant allocation
 *     that fits is served without a system call or a page fault (a handler
 *     that allocates at every signal would otherwise pay both each time);
 *     the cache goes back to the OS at thread exit, hak_flush and hak_reset;
 *   - a re-entrant free of any other block is deferred: the block goes on the
 *     thread's deferred list (linked through its first word) and is freed,
 *     with whatever the observers see of it, when the thread leaves the slow
 *     path it was in (malloc_api.c, depth_leave). A block already on the list
 *     is a double free, found as it is pushed.
 * The fast paths (a magazine pop or push) are not marked: see the README's
 * "Signal handlers" for what a handler may therefore do.
 *
 * No lock. The deferred list is changed by the thread and by handlers that
 * interrupt it, with compare-and-swap so an interrupted push is retried. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "internal.h"

hak_tls unsigned hak_tls_depth;
hak_tls void *hak_tls_deferred; /* blocks whose free waits, newest first */

/* Live direct blocks, the cached mappings, and the re-entrant calls so far,
 * for the statistics. */
static _Atomic size_t direct_count, direct_bytes, cached_count, cached_bytes;
static _Atomic uint64_t reentrant_allocs, deferred_frees;

#define DIRECT_CACHE_SLOTS 16
#define DIRECT_CACHE_MAX   ((size_t)1 << 20)   /* the largest mapping kept */
#define DIRECT_CACHE_BYTES ((size_t)4 << 20)   /* all those one thread keeps */
static hak_tls hak_direct_t *direct_cache[DIRECT_CACHE_SLOTS];
static hak_tls size_t direct_cache_bytes;     /* changed with atomic adds: handlers nest */

/* A cached mapping of at least need bytes (and not more than twice as many),
 * taken out of the cache; NULL if none. */
static hak_direct_t *cache_take(size_t need) {
  for (int i = 0; i < DIRECT_CACHE_SLOTS; i++) {
    hak_direct_t *d = __atomic_load_n(&direct_cache[i], __ATOMIC_RELAXED);
    if (d == NULL || d->map_bytes < need || d->map_bytes > 2 * need) continue;
    d = __atomic_exchange_n(&direct_cache[i], NULL, __ATOMIC_RELAXED);
    if (d == NULL) continue; /* a handler took it meanwhile */
    if (d->map_bytes >= need && d->map_bytes <= 2 * need) {
      __atomic_fetch_sub(&direct_cache_bytes, d->map_bytes, __ATOMIC_RELAXED);
      atomic_fetch_sub_explicit(&cached_count, 1, memory_order_relaxed);
      atomic_fetch_sub_explicit(&cached_bytes, d->map_bytes, memory_order_relaxed);
      return d;
    }
    hak_direct_t *none = NULL; /* a handler swapped in another one: back it goes */
    if (!__atomic_compare_exchange_n(&direct_cache[i], &none, d, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
      __atomic_fetch_sub(&direct_cache_bytes, d->map_bytes, __ATOMIC_RELAXED);
      atomic_fetch_sub_explicit(&cached_count, 1, memory_order_relaxed);
      atomic_fetch_sub_explicit(&cached_bytes, d->map_bytes, memory_order_relaxed);
      hak_os_unmap(d, d->map_bytes);
    }
  }
  return NULL;
}

/* Keeps mapping d for reuse; false when it does not fit the cache. */
static bool cache_put(hak_direct_t *d) {
  if (d->map_bytes > DIRECT_CACHE_MAX) return false;
  if (__atomic_add_fetch(&direct_cache_bytes, d->map_bytes, __ATOMIC_RELAXED) <= DIRECT_CACHE_BYTES)
    for (int i = 0; i < DIRECT_CACHE_SLOTS; i++) {
      hak_direct_t *none = NULL;
      if (__atomic_compare_exchange_n(&direct_cache[i], &none, d, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        atomic_fetch_add_explicit(&cached_count, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&cached_bytes, d->map_bytes, memory_order_relaxed);
        return true;
      }
    }
  __atomic_fetch_sub(&direct_cache_bytes, d->map_bytes, __ATOMIC_RELAXED);
  return false;
}

void hak_direct_cache_release(void) {
  for (int i = 0; i < DIRECT_CACHE_SLOTS; i++) {
    hak_direct_t *d = __atomic_exchange_n(&direct_cache[i], NULL, __ATOMIC_RELAXED);
    if (d == NULL) continue;
    __atomic_fetch_sub(&direct_cache_bytes, d->map_bytes, __ATOMIC_RELAXED);
    atomic_fetch_sub_explicit(&cached_count, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&cached_bytes, d->map_bytes, memory_order_relaxed);
    hak_os_unmap(d, d->map_bytes);
  }
}

/* ---- direct blocks ---------------------------------------------------------- */
void *hak_direct_alloc(size_t size, size_t align) {
  if (size > HAK_MAX_REQUEST || align > HAK_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  if (align < HAK_SPAN_ALIGN) align = HAK_SPAN_ALIGN;
  /* The header at the mapping's start, the block at the first multiple of
   * align past it; beyond a unit, the mapping itself is aligned to align. */
  size_t off = align, need = hak_align_up(off + (size ? size : 1), HAK_UNIT_SIZE);
  if (need < off) {
    errno = ENOMEM;
    return NULL;
  }
  hak_direct_t *d = align <= HAK_UNIT_SIZE ? cache_take(need) : NULL;
  char *base = (char *)d;
  if (d == NULL) {
    base = hak_os_map_accounted(need, align > HAK_UNIT_SIZE ? align : HAK_UNIT_SIZE);
    if (base == NULL) {
      errno = ENOMEM;
      return NULL;
    }
    d = (hak_direct_t *)base;
    d->map_bytes = need;
  }
  char *user = base + off;
  char *unit = (char *)((uintptr_t)user & ~(HAK_UNIT_SIZE - 1));
  if (!hak_pagemap_reserve(unit, HAK_UNIT_SIZE)) {
    hak_os_unmap(base, d->map_bytes);
    errno = ENOMEM;
    return NULL;
  }
  d->span.kind = HAK_SPAN_DIRECT;
  d->user = user;
  need = d->map_bytes;
  hak_pagemap_set(unit, HAK_UNIT_SIZE, &d->span, 0);
  atomic_fetch_add_explicit(&direct_count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&direct_bytes, need, memory_order_relaxed);
  atomic_fetch_add_explicit(&reentrant_allocs, 1, memory_order_relaxed);
  return user;
}

static void direct_check(const hak_direct_t *d, const void *p, const char *call) {
  if (p != d->user) hak_fatal(call, "invalid pointer", p);
}

void hak_direct_free(hak_direct_t *d, void *p, const char *call) {
  direct_check(d, p, call);
  size_t bytes = d->map_bytes;
  char *unit = (char *)((uintptr_t)p & ~(HAK_UNIT_SIZE - 1));
  /* Whoever frees it twice after this finds no span (or another one) at p. */
  hak_pagemap_set(unit, HAK_UNIT_SIZE, NULL, 0);
  atomic_fetch_sub_explicit(&direct_count, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&direct_bytes, bytes, memory_order_relaxed);
  if (!cache_put(d)) hak_os_unmap(d, bytes);
}

size_t hak_direct_usable(hak_direct_t *d, const void *p, const char *call) {
  direct_check(d, p, call);
  return d->map_bytes - (size_t)(d->user - (char *)d);
}

/* Statistics: direct blocks are counted as large blocks (each is a mapping
 * of its own), their headers with their bytes in use; the cached mappings
 * with the large cache (freed mappings kept for reuse). */
void hak_reentry_account(hak_stats_t *st) {
  size_t n = atomic_load_explicit(&direct_count, memory_order_relaxed);
  size_t bytes = atomic_load_explicit(&direct_bytes, memory_order_relaxed);
  st->large_blocks += n;
  st->in_use_bytes += bytes;
  st->large_in_use_bytes += bytes;
  st->large_cached += atomic_load_explicit(&cached_count, memory_order_relaxed);
  st->large_cache_bytes += atomic_load_explicit(&cached_bytes, memory_order_relaxed);
  st->total.reentrant_allocs = atomic_load_explicit(&reentrant_allocs, memory_order_relaxed);
  st->total.deferred_frees = atomic_load_explicit(&deferred_frees, memory_order_relaxed);
}

/* ---- deferred frees ----------------------------------------------------------- */
void hak_defer_free(void *p, const char *call) {
  void *head = __atomic_load_n(&hak_tls_deferred, __ATOMIC_RELAXED);
  for (;;) {
    /* The list is short (what handlers freed during one slow path); a block
     * on it twice would make it a cycle. */
    for (void *q = head; q != NULL; q = *(void **)q)
      if (q == p) hak_fatal(call, "double free", p);
    *(void **)p = head;
    if (__atomic_compare_exchange_n(&hak_tls_deferred, &head, p, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
      atomic_fetch_add_explicit(&deferred_frees, 1, memory_order_relaxed);
      return;
    }
  }
}

void *hak_deferred_take(void) { return __atomic_exchange_n(&hak_tls_deferred, NULL, __ATOMIC_RELAXED); }

/* ---- cold operations ---------------------------------------------------------- */
void hak_signals_block(sigset_t *old) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, old);
}

void hak_signals_restore(const sigset_t *old) { pthread_sigmask(SIG_SETMASK, old, NULL); }
