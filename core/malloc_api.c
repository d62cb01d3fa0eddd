/* malloc_api.c — the exported malloc API: malloc, free, calloc, realloc,
 * reallocarray, the aligned functions, malloc_usable_size (and their
 * HAK_TRACE_SOURCE forms), with their fast paths; the hooks around each call;
 * the checked build's checks around each call. The rest of the control API
 * (statistics, reset, profiles, hooks' installation) is api.c.
 *
 * Fast paths (everything else is out of line, top down in observe.c,
 * realloc.c, alloc.c and free.c):
 *   malloc: size <= HAK_SMALL_MAX -> class (arithmetic: hak_mag_index) -> pop
 *           the calling thread's magazine. No lock, no atomic, no call.
 *   free:   page-map entry (two loads), whose tag is the block's class (0 for
 *           anything but a small block) -> p is the start of a block (one
 *           multiply) -> the calling thread's magazine of that class has room
 *           and p is not the block on top (the cheap double-free check) ->
 *           push, whichever thread owns the slab (hak_free_push, internal.h;
 *           a flush sends it on, types.h I4). No lock, no atomic, no call, and
 *           the slab's descriptor is not read.
 * A thread that has not allocated yet points at hak_heap_empty, whose
 * magazines are empty with no room, so both fast paths fail over to the slow
 * path without a NULL test. Magazines: types.h (a NULL sentinel below each
 * makes "empty" the popped value itself).
 *
 * Observers (hooks.c, profile.c, leakcheck.c) close every thread's gate while
 * they watch, so every call comes to a slow path here: the hooks run here
 * (hooked_*: the hooked call re-enters the API, inside the hook's mark), the
 * profiler and leak checker in observe.c. The fast paths do not change.
 *
 * Re-entrant calls (reentry.c): a signal handler's call that finds the thread
 * inside a slow path takes no lock; the frees it deferred are made here, by
 * drain, when the call that was interrupted is done (README, "Signal
 * handlers").
 *
 * Every function is in section hak_text, so that a captured call stack can
 * leave hakmem's frames out (stack.c); each is defined under its hak_ name and
 * exported; unless built with HAK_PREFIX_ONLY, the standard names are exported
 * as aliases of the same code, so LD_PRELOAD replaces the system allocator. */
#include <errno.h>
#include <string.h>

#include "hakmem.h"
#include "internal.h"

#define HAK_API HAK_EXPORT HAK_TEXT

/* True when this call must run the hooks: some are installed and the thread
 * is not already inside a hooked call (then it is marked as inside). */
static inline HAK_TEXT bool hooks_start(void) {
  return hak_unlikely(hak_observers_get() & HAK_OBS_HOOKS) && hak_hooks_enter();
}
/* Where a fast path failed (malloc, free): someone watches. A checked build
 * tells the observers around its own checks instead (hak_malloc, hak_free),
 * so that the checks see each call once. */
static inline HAK_TEXT bool observed_slow(void) { return !config_check && hak_unlikely(hak_observers_get() != 0); }

/* ---- frees deferred by re-entrant calls ---------------------------------------------- */
static hak_tls bool draining; /* this thread is making its deferred frees */

/* Makes the frees that re-entrant calls deferred while the thread was inside a
 * slow path, each as a free with its tracking (hooks and checks ran when it
 * was called). A handler may defer more meanwhile: the loop takes them too. */
static HAK_TEXT hak_noinline void free_deferred(void) {
  draining = true;
  for (void *p; (p = hak_deferred_take()) != NULL;)
    while (p != NULL) {
      void *next = *(void **)p;
      /* Checked builds: the link was written over the pattern that
       * hak_check_on_free filled a small block with; put it back. */
      if (config_check) memset(p, HAK_CHECK_FREED_BYTE, sizeof next);
      hak_free_tracked(p);
      p = next;
    }
  draining = false;
}
/* The end of every slow path of the API: the deferred frees, once the thread
 * is out of every slow path. */
static inline HAK_TEXT void drain(void) {
  if (hak_unlikely(hak_tls_deferred != NULL) && hak_tls_depth == 0 && !draining) free_deferred();
}

/* ---- allocation ------------------------------------------------------------------ */
static HAK_TEXT hak_noinline void *hooked_malloc(size_t size) {
  hak_hooks_malloc_before(size);
  void *p = hak_malloc(size);
  hak_hooks_malloc_after(p, size);
  hak_hooks_leave();
  return p;
}

/* A malloc of size bytes while someone watches: the hooks first (they call
 * hak_malloc again, which comes back here inside the hooked call), else the
 * observed path (observe.c). */
static HAK_TEXT hak_noinline void *observed_malloc(size_t size) {
  unsigned obs = hak_observers_now();
  if ((obs & HAK_OBS_HOOKS) && hak_hooks_enter()) return hooked_malloc(size);
  return hak_observed_malloc(size, obs);
}

/* Any other request while someone watches: a plain malloc above the small
 * sizes (hooks, then observed), calloc's, or an aligned one (its hooks ran in
 * the API function). */
static HAK_TEXT hak_noinline void *observed_routed(size_t size, size_t align, bool *zeroed) {
  unsigned obs = hak_observers_now();
  if (align == 1 && (obs & HAK_OBS_HOOKS) && hak_hooks_enter()) {
    *zeroed = false;
    return hooked_malloc(size);
  }
  return hak_observed_routed(size, align, zeroed, obs);
}

/* The fast path of a small malloc failed: its magazine was empty, or someone
 * watches. The class is computed here again (off the fast path). */
static HAK_TEXT hak_noinline void *alloc_small_miss(size_t size) {
  void *p = observed_slow() ? observed_malloc(size) : hak_alloc_small_slow(hak_size_class(size));
  drain();
  return p;
}

/* Any request but a small malloc: by its tier (alloc.c). */
static HAK_TEXT hak_noinline void *alloc_routed(size_t size, size_t align, bool *zeroed) {
  void *p = observed_slow() ? observed_routed(size, align, zeroed) : hak_route(size, align, zeroed, hak_gate());
  drain();
  return p;
}

/* malloc's fast path. The class is computed again on the slow path, so that
 * the fast path keeps nothing live across the magazine test; each branch
 * gives hak_mag_index a size it knows the range of, so up to 1 KiB it is a
 * shift and nothing more. */
static inline HAK_TEXT void *alloc_inline(size_t size) {
  hak_mag_t *m;
  if (hak_likely(size <= 1024)) /* the common case */
    m = &hak_gate()->mag[hak_mag_index(size)];
  else if (size <= HAK_SMALL_MAX)
    m = &hak_gate()->mag[hak_mag_index(size)];
  else {
    bool zeroed;
    return alloc_routed(size, 1, &zeroed);
  }
  void *p = hak_mag_pop(m);
  if (hak_likely(p != NULL)) return p;
  return alloc_small_miss(size);
}

/* Memory of at least size bytes, zeroed. Medium and large memory fresh from
 * the OS is known to be zero and is not cleared again. */
static HAK_TEXT hak_noinline void *alloc_zeroed(size_t size) {
  bool zeroed = false;
  void *p = size <= HAK_SMALL_MAX ? alloc_inline(size) : alloc_routed(size, 1, &zeroed);
  if (p != NULL && !zeroed) memset(p, 0, size);
  return p;
}

static HAK_TEXT hak_noinline void *alloc_aligned(size_t align, size_t size) {
  if (align <= 16) return alloc_inline(size);
  bool zeroed;
  return alloc_routed(size, align, &zeroed);
}

/* The checked build's allocation (alloc.c, check.c) and its tracking. */
static HAK_TEXT hak_noinline void *checked_alloc(size_t align, size_t size, bool zero, const char *call) {
  void *p = hak_alloc_checked(align, size, zero, call);
  unsigned obs = hak_observers_get();
  if (hak_unlikely(obs & HAK_OBS_TRACK)) hak_track_alloc(p, size, obs);
  drain();
  return p;
}

HAK_API void *hak_malloc(size_t size) {
  if (config_check && hooks_start()) return hooked_malloc(size);
  if (config_check) return checked_alloc(16, size, false, "malloc()");
  return alloc_inline(size);
}

/* ---- free (its cases: free.c) -------------------------------------------------------- */
static HAK_TEXT hak_noinline void hooked_free(void *p) {
  hak_hooks_free_before(p);
  hak_free(p);
  hak_hooks_free_after(p);
  hak_hooks_leave();
}

/* A free while someone watches: the hooks (which call hak_free again), else
 * the tracking and the free (observe.c), or, re-entrant, free.c's. */
static HAK_TEXT hak_noinline void observed_free(void *p) {
  unsigned obs = hak_observers_now();
  if ((obs & HAK_OBS_HOOKS) && hak_hooks_enter()) {
    hooked_free(p);
    return;
  }
  if (hak_reentered()) hak_free_reentrant(p);
  else hak_free_tracked(p);
}

/* The fast path of free failed: p is not a small block, its magazine is
 * full, p is on its top, or someone watches. */
static HAK_TEXT hak_noinline void free_slow(void *p) {
  if (hak_reentered()) {
    if (observed_slow()) observed_free(p); /* the hooks */
    else hak_free_reentrant(p);
    return;
  }
  hak_depth_enter();
  hak_free_gate_check();
  (void)hak_depth_leave();
  if (observed_slow()) observed_free(p);
  else hak_free_span(p);
  drain();
}

/* The checked build's free: the hooks, the checks (check.c), the tracking,
 * then the free itself. */
static HAK_TEXT hak_noinline void checked_free(void *p) {
  if (hooks_start()) {
    hooked_free(p);
    return;
  }
  if (p == NULL) return;
  hak_check_on_free(p, "free()"); /* re-entrant: without the validators, which take locks */
  if (hak_reentered()) { /* tracked when it is made */
    hak_free_reentrant(p);
    return;
  }
  unsigned obs = hak_observers_get();
  if (hak_unlikely(obs & HAK_OBS_TRACK)) hak_track_free(p, obs);
  if (hak_likely(hak_free_push(p, false))) return;
  free_slow(p);
}

HAK_API void hak_free(void *p) {
  if (config_check) {
    checked_free(p);
    return;
  }
  if (hak_likely(hak_free_push(p, false))) return;
  free_slow(p);
}

/* ---- the rest of the API ----------------------------------------------------------- */
HAK_API void *hak_calloc(size_t count, size_t size) {
  size_t n;
  if (hak_unlikely(__builtin_mul_overflow(count, size, &n))) {
    errno = ENOMEM;
    return NULL;
  }
  if (hooks_start()) { /* calloc is reported as malloc of its product */
    hak_hooks_malloc_before(n);
    void *p = hak_calloc(count, size);
    hak_hooks_malloc_after(p, n);
    hak_hooks_leave();
    return p;
  }
  if (config_check) return checked_alloc(16, n, true, "calloc()");
  return alloc_zeroed(n);
}

HAK_API size_t hak_malloc_usable_size(const void *p) {
  if (p == NULL) return 0;
  return hak_usable_size(p, hak_pagemap_lookup(p), "malloc_usable_size()");
}

/* realloc(p, 0) frees p and returns NULL, as glibc does. The move itself:
 * realloc.c; as the profiler and leak checker see it: observe.c. */
HAK_API void *hak_realloc(void *p, size_t size) {
  unsigned obs = hak_observers_get();
  if ((obs & HAK_OBS_HOOKS) && hak_hooks_enter()) {
    hak_hooks_realloc_before(p, size);
    void *q = hak_realloc(p, size);
    hak_hooks_realloc_after(p, q, size);
    hak_hooks_leave();
    return q;
  }
  if (p == NULL) return hak_malloc(size);
  if (size == 0) {
    if (config_check) (void)hak_check_requested(p, "realloc()"); /* a freed block is realloc's fault */
    hak_free(p);
    return NULL;
  }
  void *q = hak_unlikely(obs & HAK_OBS_TRACK) && !hak_reentered() && !hak_track_busy
                ? hak_tracked_realloc(p, size, obs)
                : hak_realloc_untracked(p, size, false);
  drain();
  return q;
}

HAK_API void *hak_reallocarray(void *p, size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return NULL;
  }
  return hak_realloc(p, n);
}

static HAK_TEXT void *aligned_api(size_t align, size_t size, const char *call) {
  if (hooks_start()) {
    hak_hooks_aligned_before(align, size);
    void *p = aligned_api(align, size, call);
    hak_hooks_aligned_after(p, align, size);
    hak_hooks_leave();
    return p;
  }
  if (config_check) return checked_alloc(align, size, false, call);
  return alloc_aligned(align, size);
}

HAK_API int hak_posix_memalign(void **out, size_t align, size_t size) {
  if (!hak_is_pow2(align) || align % sizeof(void *) != 0) return EINVAL;
  int saved = errno;
  void *p = aligned_api(align, size, "posix_memalign()");
  errno = saved;
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

/* memalign and aligned_alloc as glibc 2.36: an alignment above 2^63 fails
 * with EINVAL; one that is not a power of two is rounded up to one (so one in
 * (2^62, 2^63] becomes 2^63, which no mapping can satisfy: ENOMEM). */
static HAK_TEXT void *memalign_common(size_t align, size_t size, const char *call) {
  if (align > ((size_t)1 << 63)) {
    errno = EINVAL;
    return NULL;
  }
  if (!hak_is_pow2(align)) {
    size_t a = 1;
    while (a < align) a <<= 1;
    align = a;
  }
  return aligned_api(align, size, call);
}

HAK_API void *hak_memalign(size_t align, size_t size) { return memalign_common(align, size, "memalign()"); }

HAK_API void *hak_aligned_alloc(size_t align, size_t size) {
  return memalign_common(align, size, "aligned_alloc()");
}

HAK_API void *hak_valloc(size_t size) { return aligned_api(HAK_PAGE_SIZE, size, "valloc()"); }

HAK_API void *hak_pvalloc(size_t size) {
  if (size > HAK_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  return aligned_api(HAK_PAGE_SIZE, size ? hak_align_up(size, HAK_PAGE_SIZE) : HAK_PAGE_SIZE, "pvalloc()");
}

/* ---- HAK_TRACE_SOURCE (hakmem.h) -------------------------------------------------- */
/* The call's source location rides in the thread's hak_src_file and
 * hak_src_line while the call runs; the tracking keeps it with the stack. */
#define AT(call)                  \
  hak_src_file = file;            \
  hak_src_line = line;            \
  __typeof__(call) r_ = call;     \
  hak_src_file = NULL;            \
  return r_

HAK_API void *hak_malloc_at(size_t size, const char *file, int line) { AT(hak_malloc(size)); }
HAK_API void *hak_calloc_at(size_t count, size_t size, const char *file, int line) { AT(hak_calloc(count, size)); }
HAK_API void *hak_realloc_at(void *p, size_t size, const char *file, int line) { AT(hak_realloc(p, size)); }
HAK_API void *hak_reallocarray_at(void *p, size_t count, size_t size, const char *file, int line) {
  AT(hak_reallocarray(p, count, size));
}
HAK_API int hak_posix_memalign_at(void **out, size_t align, size_t size, const char *file, int line) {
  AT(hak_posix_memalign(out, align, size));
}
HAK_API void *hak_aligned_alloc_at(size_t align, size_t size, const char *file, int line) {
  AT(hak_aligned_alloc(align, size));
}
HAK_API void *hak_memalign_at(size_t align, size_t size, const char *file, int line) { AT(hak_memalign(align, size)); }
HAK_API void *hak_valloc_at(size_t size, const char *file, int line) { AT(hak_valloc(size)); }
HAK_API void *hak_pvalloc_at(size_t size, const char *file, int line) { AT(hak_pvalloc(size)); }

/* ---- the standard names ---------------------------------------------------------- */
#ifndef HAK_PREFIX_ONLY
#define HAK_ALIAS(name, target) __typeof__(target) name __attribute__((alias(#target), visibility("default")))
HAK_ALIAS(malloc, hak_malloc);
HAK_ALIAS(free, hak_free);
HAK_ALIAS(calloc, hak_calloc);
HAK_ALIAS(realloc, hak_realloc);
HAK_ALIAS(reallocarray, hak_reallocarray);
HAK_ALIAS(posix_memalign, hak_posix_memalign);
HAK_ALIAS(aligned_alloc, hak_aligned_alloc);
HAK_ALIAS(memalign, hak_memalign);
HAK_ALIAS(valloc, hak_valloc);
HAK_ALIAS(pvalloc, hak_pvalloc);
HAK_ALIAS(malloc_usable_size, hak_malloc_usable_size);
#endif
