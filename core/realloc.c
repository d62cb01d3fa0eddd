/* realloc.c — moving a block to a new size, as no observer sees it (the
 * observers see a realloc as a whole: observe.c): within its tier when the
 * tier can resize it in place, else a new block, the copy and the old block's
 * free. Every function is in section hak_text (stack.c). */
#include <string.h>

#include "internal.h"

#define REALLOC_PATH HAK_TEXT

/* realloc within p's tier, without copying: the block's new address, or NULL
 * when it must be allocated elsewhere and copied (always, for a re-entrant
 * call: the tiers' locks). */
static REALLOC_PATH void *realloc_in_tier(void *p, hak_span_t *span, size_t old, size_t size) {
  if (span->kind != HAK_SPAN_SLAB && hak_reentered()) return NULL;
  switch (span->kind) {
  case HAK_SPAN_SLAB: /* the same block when it fits and would not waste more than half */
    return size <= old && (size > old / 2 || old <= 16) ? p : NULL;
  case HAK_SPAN_MEDIUM: {
    if (hak_tier_of(size, 1) != HAK_TIER_MEDIUM) return NULL;
    hak_depth_enter();
    bool done = hak_medium_resize_in_place((hak_chunk_t *)span, p, size);
    (void)hak_depth_leave();
    return done ? p : NULL;
  }
  case HAK_SPAN_LARGE: {
    if (hak_tier_of(size, 1) != HAK_TIER_LARGE) return NULL;
    hak_depth_enter();
    void *q = hak_large_realloc((hak_large_t *)span, p, size);
    (void)hak_depth_leave();
    return q;
  }
  default: return NULL;
  }
}

/* The new block of a move: a profiler sample gets a page run of its own, as
 * a sampled malloc does; a checked build's carries its canary and trailer; a
 * small one is a pop from the thread's own magazine of its class (the tier
 * router would find the same class, at twice the cost: python's replay moves
 * 28.6 K blocks of 0.5-8 KiB). */
static REALLOC_PATH void *alloc_new(size_t size, bool sample) {
  if (config_check) return hak_alloc_checked(16, size, false, "realloc()");
  bool zeroed;
  if (sample) return hak_alloc_sampled(size, 1, &zeroed);
  if (size <= HAK_SMALL_MAX) return hak_alloc_class_in(hak_tls_heap, hak_size_class(size));
  return hak_route(size, 1, &zeroed, hak_tls_heap);
}

/* The old block of a move goes as an untracked free does (its tracking, if
 * any, was the realloc's): into the thread's own magazine when that has room
 * (a re-entrant call: hak_free_reentrant), else by its span. */
static inline REALLOC_PATH void free_old(void *p) {
  if (hak_reentered()) hak_free_reentrant(p);
  else if (!hak_free_push(p, true)) hak_free_span(p);
}

/* realloc of live block p to size (neither NULL nor 0): in p's tier when it
 * can (never in a checked build, so that a stale pointer to the old block is
 * caught, nor for a sample), else a new block, the copy and p's free. NULL:
 * out of memory, p untouched, errno ENOMEM. */
REALLOC_PATH void *hak_realloc_untracked(void *p, size_t size, bool sample) {
  hak_span_t *span = hak_pagemap_lookup(p);
  size_t old = hak_usable_size(p, span, "realloc()");
  void *q = config_check || sample ? NULL : realloc_in_tier(p, span, old, size);
  if (q != NULL) return q;
  q = alloc_new(size, sample);
  if (q == NULL) return NULL;
  memcpy(q, p, old < size ? old : size);
  if (config_check) hak_check_on_free(p, "realloc()");
  free_old(p);
  return q;
}
