/* alloc.c — the allocation slow paths and the tier router.
 *
 * The fast path (malloc_api.c) pops the calling thread's magazine of a small
 * size's class; everything else comes here:
 *   hak_alloc_small_slow  the magazine was empty: a refill (heap.c);
 *   hak_route             any request by its tier (hak_tier_of, internal.h):
 *                         small from a magazine of the heap given, medium a
 *                         page run (medium.c), large a mapping (large.c);
 *   hak_alloc_sampled     a profiler sample: a page run of its own;
 *   hak_alloc_checked     the checked build's allocation (check.c).
 * What takes a lock runs under the depth mark; a re-entrant call (a signal
 * handler's: reentry.c) gets a direct block instead. Every function is in
 * section hak_text (stack.c). */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define ALLOC_PATH HAK_TEXT

/* What every slow path that allocates does first, outside the depth mark:
 * initialisation, the statistics' poll, the scavenger's start (each guards
 * itself: signals blocked while they hold their locks). */
static inline ALLOC_PATH void slow_start(void) {
  if (hak_init_state != HAK_INIT_DONE) hak_init_slow();
  hak_stats_poll();
  if (config_dynamic_flush) hak_scavenger_start();
}

/* Ends the fast path of small class c: the magazine was empty. A re-entrant
 * call gets a direct block aligned as the class's blocks are. */
ALLOC_PATH hak_noinline void *hak_alloc_small_slow(unsigned c) {
  if (hak_reentered()) return hak_direct_alloc(hak_class_size[c], hak_class_size[c] & -hak_class_size[c]);
  slow_start();
  hak_depth_enter();
  hak_gate_check();
  void *p = hak_heap_alloc_small(c);
  (void)hak_depth_leave();
  if (hak_unlikely(p == NULL)) errno = ENOMEM;
  return p;
}

/* The tier router: the one place that serves a request by its tier (every
 * request but a plain small malloc, which the fast path takes straight to its
 * class). Small: the first class at least as large whose size is a multiple of
 * align (blocks sit at multiples of their size from a unit-aligned base), from
 * heap h's magazines. Medium: a page run aligned up to HAK_MEDIUM_MAX_ALIGN.
 * Large: a mapping aligned as asked. Requests beyond any possible mapping fail
 * here, before anything is initialised or mapped. *zeroed: the memory is
 * known to read as zero. */
ALLOC_PATH void *hak_route(size_t size, size_t align, bool *zeroed, hak_heap_t *h) {
  *zeroed = false;
  if (hak_unlikely(size > HAK_MAX_REQUEST)) {
    errno = ENOMEM;
    return NULL;
  }
  hak_tier_t tier = hak_tier_of(size, align);
  if (tier == HAK_TIER_SMALL) return hak_alloc_class_in(h, hak_small_class(size < align ? align : size, align));
  if (hak_reentered()) { /* fresh from the OS: zero */
    void *p = hak_direct_alloc(size, align);
    *zeroed = p != NULL;
    return p;
  }
  slow_start();
  hak_depth_enter();
  void *p = tier == HAK_TIER_MEDIUM ? hak_medium_alloc(size > HAK_SMALL_MAX ? size : HAK_SMALL_MAX + 1, align, zeroed)
                                    : hak_large_alloc(size, align, zeroed);
  (void)hak_depth_leave();
  if (hak_unlikely(p == NULL)) errno = ENOMEM;
  return p;
}

/* A sampled allocation (profile.c): a small one gets a page run of its own
 * (medium.c), whose page-map tag is 0, so that its free fails free's fast
 * path even while the free gate is open, and the profiler sees it; a larger
 * one is served as usual (its free is never a fast one). */
ALLOC_PATH hak_noinline void *hak_alloc_sampled(size_t size, size_t align, bool *zeroed) {
  if (hak_tier_of(size, align) != HAK_TIER_SMALL || hak_reentered()) return hak_route(size, align, zeroed, hak_tls_heap);
  slow_start();
  hak_depth_enter();
  void *p = hak_medium_alloc(size ? size : 1, align, zeroed);
  (void)hak_depth_leave();
  if (hak_unlikely(p == NULL)) errno = ENOMEM;
  return p;
}

/* The checked build's allocation: HAK_CHECK_TAIL more bytes than asked (its
 * canary and trailer), registered by hak_check_on_alloc; a calloc's memory
 * cleared after the check of the freed pattern, unless it is medium or large
 * memory fresh from the OS. Not tracked (the caller does that). */
ALLOC_PATH void *hak_alloc_checked(size_t align, size_t size, bool zero, const char *call) {
  if (size > HAK_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  size_t n = size + HAK_CHECK_TAIL;
  bool zeroed = false;
  void *p = align <= 16 && n <= HAK_SMALL_MAX ? hak_alloc_class_in(hak_gate(), hak_size_class(n))
                                               : hak_route(n, align < 16 ? 16 : align, &zeroed, hak_gate());
  p = hak_check_on_alloc(p, size, call);
  if (zero && p != NULL && !zeroed) memset(p, 0, size);
  return p;
}
