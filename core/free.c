/* free.c — every case of free, each a named function, once the fast path
 * (hak_free_push, internal.h: a push onto the calling thread's magazine) could
 * not take the block:
 *   free_small      a small block: into the calling thread's magazine, whoever
 *                   owns its slab (heap.c, hak_heap_free_small), flushing half
 *                   of a full magazine first. The block of another thread's
 *                   slab (a cross-thread free) rides in the magazine like any
 *                   other; the flush sends it on (heap.c, flush_foreign): to
 *                   the transfer cache, or onto its slab's remote-free stack,
 *                   which the owner collects at its next refill.
 *   free_medium     a page run of a medium chunk (medium.c).
 *   free_large      a large block: to the large cache or the OS (large.c).
 *   free_direct     a re-entrant call's block: unmapped or kept (reentry.c).
 *   free_invalid    a pointer hakmem does not own, or no span's: stops.
 *   hak_free_reentrant  a free made while the thread is inside a slow path
 *                   (a signal handler's): the own magazine when it is open,
 *                   else the deferred list (reentry.c).
 * And what the other paths need of a block: its usable size.
 *
 * Every function is in section hak_text (stack.c). */
#include <errno.h>

#include "internal.h"

#define FREE_PATH HAK_TEXT

static FREE_PATH _Noreturn void free_invalid(const void *p) { hak_fatal("free()", "invalid pointer", p); }

static FREE_PATH void free_small(void *p, hak_slab_t *s) { hak_heap_free_small(p, s); }
static FREE_PATH void free_medium(void *p, hak_chunk_t *c) { hak_medium_free(c, p, "free()"); }
static FREE_PATH void free_large(void *p, hak_large_t *l) { hak_large_free(l, p, "free()"); }
static FREE_PATH void free_direct(void *p, hak_direct_t *d) { hak_direct_free(d, p, "free()"); }

/* free when no magazine push would do: the span is looked up again, so that
 * the fast path keeps nothing for this call. Under the depth mark: every case
 * but free_direct takes a lock. */
FREE_PATH void hak_free_span(void *p) {
  hak_span_t *span = hak_pagemap_lookup(p);
  if (span == NULL) {
    if (p == NULL) return;
    free_invalid(p);
  }
  int saved = errno;
  hak_depth_enter();
  switch (span->kind) {
  case HAK_SPAN_SLAB: free_small(p, (hak_slab_t *)span); break;
  case HAK_SPAN_MEDIUM: free_medium(p, (hak_chunk_t *)span); break;
  case HAK_SPAN_LARGE: free_large(p, (hak_large_t *)span); break;
  case HAK_SPAN_DIRECT: free_direct(p, (hak_direct_t *)span); break;
  default: free_invalid(p);
  }
  (void)hak_depth_leave();
  errno = saved;
}

/* A re-entrant free (the thread is inside a slow path): a small block goes
 * into the thread's own magazine when that is open (a slow path rewrites only
 * magazines it has closed: heap.c) and no observer must see the free first; a
 * direct block goes back at once; any other block, once known to be the start
 * of a live block (no lock is needed for that), waits on the deferred list and
 * is freed, tracked, when the thread is out of its slow paths (malloc_api.c). */
FREE_PATH hak_noinline void hak_free_reentrant(void *p) {
  if (!(hak_observers_get() & HAK_OBS_TRACK) && hak_free_push(p, true)) return;
  hak_span_t *span = hak_pagemap_lookup(p);
  if (span == NULL) {
    if (p == NULL) return;
    free_invalid(p);
  }
  int saved = errno;
  if (span->kind == HAK_SPAN_DIRECT) free_direct(p, (hak_direct_t *)span);
  else {
    if (!config_check) (void)hak_usable_size(p, span, "free()"); /* checked builds: hak_check_on_free did */
    hak_defer_free(p, "free()");
  }
  errno = saved;
}

/* Usable size of block p, which must be the start of a live block (no lock:
 * a re-entrant call may ask). In a checked build, the size that was asked for. */
FREE_PATH size_t hak_usable_size_span(const void *p, hak_span_t *span, const char *call) {
  if (config_check) return hak_check_requested(p, call);
  if (span == NULL) hak_fatal(call, "invalid pointer", p);
  switch (span->kind) {
  case HAK_SPAN_SLAB: {
    hak_slab_t *s = (hak_slab_t *)span;
    if (s->cls >= HAK_CLASS_COUNT || !hak_slab_is_block_start(s, p)) hak_fatal(call, "invalid pointer", p);
    return s->block_size;
  }
  case HAK_SPAN_MEDIUM: return hak_medium_usable((hak_chunk_t *)span, p, call);
  case HAK_SPAN_LARGE: return hak_large_usable((hak_large_t *)span, p, call);
  case HAK_SPAN_DIRECT: return hak_direct_usable((hak_direct_t *)span, p, call);
  default: hak_fatal(call, "invalid pointer", p);
  }
}
