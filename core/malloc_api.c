/* malloc_api.c — the exported malloc API: its fast paths and the tier router.
 *
 * Fast paths (everything else is out of line in heap.c, medium.c, large.c):
 *   malloc: size <= HAK_SMALL_MAX -> class (arithmetic) -> pop the calling
 *           thread's magazine. No lock, no atomic, no call.
 *   free:   page-map entry (two loads), whose tag is the block's class (0 for
 *           anything but a small block) -> p is the start of a block (its
 *           offset in the slab, a mask, times the class's reciprocal: one
 *           multiply, internal.h) -> the calling thread's magazine of that
 *           class has room and p is not the block on top (the cheap
 *           double-free check) -> push, whichever thread owns the slab (a
 *           flush sends it back, types.h I4). No lock, no atomic, no call,
 *           and the slab's descriptor is not read.
 * A thread that has not allocated yet points at hak_heap_empty, whose
 * magazines are empty with no room, so both fast paths fail over to the slow
 * path without a NULL test. Magazines: types.h (a NULL sentinel below each
 * makes "empty" the popped value itself).
 *
 * Re-entrant calls (reentry.c): every section of a slow path that takes a
 * lock or rewrites a magazine runs between depth_enter and depth_leave; a
 * call that finds the thread inside one (a signal handler's) takes no lock
 * and touches no magazine: its allocation is a direct block, its free waits
 * on the thread's deferred list until depth_leave (free_reentrant). The
 * fast paths carry no mark (README, "Signal handlers").
 *
 * Observers (hooks.c, profile.c, leakcheck.c) close every thread's gate while
 * they watch, so every call comes to a slow path here, which tells them
 * (observed_*): the fast paths do not change. Every function of this file is
 * placed in the section hak_text, so that a captured call stack can leave
 * hakmem's frames out (stack.c).
 *
 * Every function is defined under its hak_ name and exported; unless built
 * with HAK_PREFIX_ONLY, the standard names are exported as aliases of the same
 * code, so LD_PRELOAD replaces the system allocator. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "hakmem.h"
#include "internal.h"

#define HAK_API __attribute__((visibility("default"))) HAK_TEXT

/* ---- observers: hooks (hooks.c), the profiler and the leak checker (stack.c) ------- */
static inline HAK_TEXT unsigned observers(void) { return atomic_load_explicit(&hak_observers, memory_order_relaxed); }
/* The observers, for an observed path: before initialisation (HAK_OBS_INIT)
 * it initialises first, so the options have turned them on. */
static HAK_TEXT hak_noinline unsigned observers_init(void) {
  hak_init_slow();
  return observers() & ~HAK_OBS_INIT; /* still set while initialisation allocates */
}
static inline HAK_TEXT unsigned observers_now(void) {
  unsigned obs = observers();
  return hak_unlikely(obs & HAK_OBS_INIT) ? observers_init() : obs;
}
/* True when this call must run the hooks: some are installed and the thread
 * is not already inside a hooked call (then it is marked as inside). Only the
 * slow paths ask: with hooks installed, every thread's gate is closed, so
 * every call comes here (heap.c). */
static inline HAK_TEXT bool hooks_start(void) {
  return hak_unlikely(observers() & HAK_OBS_HOOKS) && hak_hooks_enter();
}
/* Where a fast path failed (malloc, free): someone watches. A checked build
 * tells the observers around its own checks instead (hak_malloc, hak_free),
 * so that the checks see each call once. */
static inline HAK_TEXT bool observed_slow(void) { return !config_check && hak_unlikely(observers() != 0); }

/* A slow path's first duty, with the caller's gate (malloc's, or free's)
 * closed: drain its heap when hak_reset asked, and reopen the gate when its
 * observers went away. */
static inline HAK_TEXT void gate_check(void) {
  if (hak_unlikely(hak_gate() != hak_tls_heap) &&
      (atomic_load_explicit(&hak_gates_closed, memory_order_relaxed) == 0 ||
       atomic_load_explicit(&hak_tls_heap->flush_wanted, memory_order_relaxed)))
    hak_gate_reopen(false);
}
static inline HAK_TEXT void free_gate_check(void) {
  if (hak_unlikely(hak_free_gate() != hak_tls_heap) &&
      (atomic_load_explicit(&hak_free_gates_closed, memory_order_relaxed) == 0 ||
       atomic_load_explicit(&hak_tls_heap->flush_wanted, memory_order_relaxed)))
    hak_gate_reopen(true);
}

static HAK_TEXT hak_noinline void *hooked_malloc(size_t size) {
  hak_hooks_malloc_before(size);
  void *p = hak_malloc(size);
  hak_hooks_malloc_after(p, size);
  hak_hooks_leave();
  return p;
}

/* ---- the depth mark (reentry.c) --------------------------------------------------- */
static HAK_TEXT void free_tracked(void *p);
static hak_tls bool draining; /* this thread is making its deferred frees */

/* Makes the frees that re-entrant calls deferred while the thread was inside
 * a slow path, each as a free with its tracking (hooks and checks ran when it
 * was called). A handler may defer more meanwhile: the loop takes them too. */
static HAK_TEXT hak_noinline void free_deferred(void) {
  draining = true;
  for (void *p; (p = hak_deferred_take()) != NULL;)
    while (p != NULL) {
      void *next = *(void **)p;
      free_tracked(p);
      p = next;
    }
  draining = false;
}
static inline HAK_TEXT void depth_enter(void) { hak_depth_enter(); }
/* The deferred frees, made once the thread is out of every slow path and
 * of the busy parts of the tracking. */
static inline HAK_TEXT void drain_deferred(void) {
  if (hak_unlikely(hak_tls_deferred != NULL) && hak_tls_depth == 0 && !draining) free_deferred();
}
static inline HAK_TEXT void depth_leave(void) {
  if (hak_depth_leave()) drain_deferred();
}

/* ---- tracking: the heap profiler (profile.c) and the leak checker (leakcheck.c) ---- */
/* The tracking takes the profiler's and leak checker's locks: it runs inside
 * the depth mark, and a re-entrant call is not tracked (its allocation is a
 * direct block nobody tracks; its free is tracked when it is made, deferred).
 * hak_track_busy marks calls that are hakmem's own, made with every signal
 * blocked (the scavenger thread's start, the tracking's own API and exit
 * reports): not tracked either. */

/* p (size bytes) was just allocated; sampled: the profiler chose it
 * (sample_now). p may be NULL (a failed call). */
static HAK_TEXT hak_noinline void track_alloc_slow(void *p, size_t size, bool sampled) {
  if (p == NULL || hak_track_busy || hak_reentered()) return;
  unsigned obs = observers();
  bool leaks = obs & HAK_OBS_LEAKS;
  sampled = sampled && (obs & HAK_OBS_PROFILE);
  if (!leaks && !sampled) return;
  depth_enter();
  void *frames[HAK_STACK_MAX];
  int n = hak_stack_capture(frames, HAK_STACK_MAX);
  const hak_stack_t *st = hak_stack_intern(frames, n, hak_src_file, hak_src_line);
  if (leaks) hak_leak_alloc(p, size, st);
  if (sampled) hak_prof_sample(p, size, st);
  depth_leave();
}

/* p is about to be freed (not re-entrant: those are tracked when made). */
static HAK_TEXT hak_noinline void track_free_slow(void *p, unsigned obs) {
  if (hak_track_busy) return;
  depth_enter();
  if (obs & HAK_OBS_LEAKS) hak_leak_free(p, NULL);
  if (obs & HAK_OBS_PROFILE) hak_prof_free(p);
  depth_leave();
}

/* The profiler's countdown: true when this allocation of size bytes is to
 * be sampled (profile.c), decided before it is made, so that an allocation
 * that is not a sample is served as usual (a thread's first countdown starts
 * at 0 and is drawn at its first allocation: hak_prof_redraw). */
static inline HAK_TEXT bool sample_now(size_t size, unsigned obs) {
  return (obs & HAK_OBS_PROFILE) && hak_unlikely((hak_prof_left -= (int64_t)size) < 0) && hak_prof_redraw(size);
}
/* The tracking of an allocation of size bytes at p (NULL: it failed): the
 * out-of-line part when it is sampled or the leak checker keeps every block. */
static inline HAK_TEXT void track_done(void *p, size_t size, unsigned obs, bool sample) {
  if (hak_unlikely(sample || (obs & HAK_OBS_LEAKS))) track_alloc_slow(p, size, sample);
  if (obs & HAK_OBS_LEAKS) hak_stack_scrub(); /* no copy of p left below the program's frames */
}
static inline HAK_TEXT void track_alloc(void *p, size_t size, unsigned obs) {
  track_done(p, size, obs, sample_now(size, obs));
}
/* Before p is freed. */
static inline HAK_TEXT void track_free(void *p, unsigned obs) {
  if (p == NULL || !(obs & HAK_OBS_TRACK)) return;
  if (!(obs & HAK_OBS_LEAKS) && !hak_prof_maybe_sampled(p)) return;
  track_free_slow(p, obs);
  if (obs & HAK_OBS_LEAKS) hak_stack_scrub();
}

/* ---- allocation ------------------------------------------------------------------ */
/* What every slow path that allocates does first, outside the depth mark:
 * initialisation, the statistics' poll, the scavenger's start (each guards
 * itself: signals blocked while they hold their locks). */
static inline HAK_TEXT void slow_start(void) {
  if (hak_init_state != HAK_INIT_DONE) hak_init_slow();
  hak_stats_poll();
  if (config_dynamic_flush) hak_scavenger_start();
}

/* Ends the fast path of small class c: the magazine was empty. A re-entrant
 * call gets a direct block aligned as the class's blocks are. */
static HAK_TEXT hak_noinline void *alloc_small_slow(unsigned c) {
  if (hak_reentered()) return hak_direct_alloc(hak_class_size[c], hak_class_size[c] & -hak_class_size[c]);
  slow_start();
  depth_enter();
  gate_check();
  void *p = hak_heap_alloc_small(c);
  depth_leave();
  if (hak_unlikely(p == NULL)) errno = ENOMEM;
  return p;
}

static HAK_TEXT void *observed_malloc(size_t size);

/* The same for a small size, its class computed here (off the fast path). */
static HAK_TEXT hak_noinline void *alloc_small_miss(size_t size) {
  if (observed_slow()) return observed_malloc(size); /* only malloc comes here outside a hooked call */
  return alloc_small_slow(hak_size_class(size));
}

/* A pop from magazine m, or NULL when it is empty (its sentinel is NULL). */
static inline HAK_TEXT void *mag_pop(hak_mag_t *m) {
  void **top = m->top;
  void *p = top[-1];
  if (hak_likely(p != NULL)) m->top = top - 1;
  return p;
}

/* A block of small class c: a pop from magazine c of heap h (the gate, or
 * the thread's own heap behind a closed gate). */
static inline HAK_TEXT void *alloc_class_in(hak_heap_t *h, unsigned c) {
  void *p = mag_pop(&h->mag[HAK_CLASS_TAG(c)]);
  if (hak_likely(p != NULL)) return p;
  return alloc_small_slow(c);
}

/* The tier router: the one place that decides small, medium or large (for
 * every request but a plain small malloc, which alloc_inline takes straight to
 * its class). align is a power of two. Small: the first class at least as
 * large whose size is a multiple of align (blocks sit at multiples of their
 * size from a unit-aligned base), from heap h's magazines. Medium: a page run
 * aligned up to HAK_MEDIUM_MAX_ALIGN. Otherwise a large mapping aligned as
 * asked. Requests beyond any possible mapping fail here, before anything is
 * initialised or mapped. *zeroed: the memory is known to read as zero. */
static inline HAK_TEXT void *route(size_t size, size_t align, bool *zeroed, hak_heap_t *h) {
  *zeroed = false;
  if (hak_unlikely(size > HAK_MAX_REQUEST)) {
    errno = ENOMEM;
    return NULL;
  }
  size_t n = size < align ? align : size;
  if (n <= HAK_SMALL_MAX) {
    for (unsigned c = hak_size_class(n); c < HAK_CLASS_COUNT; c++)
      if (hak_class_size[c] % align == 0) return alloc_class_in(h, c);
  }
  if (hak_reentered()) { /* fresh from the OS: zero */
    void *p = hak_direct_alloc(size, align);
    *zeroed = p != NULL;
    return p;
  }
  slow_start();
  depth_enter();
  void *p;
  if (align <= HAK_MEDIUM_MAX_ALIGN && size <= HAK_MEDIUM_MAX)
    p = hak_medium_alloc(size > HAK_SMALL_MAX ? size : HAK_SMALL_MAX + 1, align, zeroed);
  else
    p = hak_large_alloc(size, align, zeroed);
  depth_leave();
  if (hak_unlikely(p == NULL)) errno = ENOMEM;
  return p;
}

static HAK_TEXT void *observed_routed(size_t size, size_t align, bool *zeroed);

static HAK_TEXT hak_noinline void *alloc_routed(size_t size, size_t align, bool *zeroed) {
  if (observed_slow()) return observed_routed(size, align, zeroed);
  return route(size, align, zeroed, hak_gate());
}

/* malloc's fast path. The class is computed again on the slow path, so that
 * the fast path keeps nothing live across the magazine test. */
static inline HAK_TEXT void *alloc_inline(size_t size) {
  hak_mag_t *m;
  if (hak_likely(size <= 1024)) /* the common case: a shift, no table */
    m = &hak_gate()->mag[(size + 31) >> 4]; /* HAK_CLASS_TAG((size + 15) >> 4) */
  else if (size <= HAK_SMALL_MAX)
    m = &hak_gate()->mag[HAK_CLASS_TAG(hak_size_class(size))];
  else {
    bool zeroed;
    return alloc_routed(size, 1, &zeroed);
  }
  void *p = mag_pop(m);
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

/* A sampled allocation (profile.c): a small one gets a page run of its own
 * (medium.c), whose page-map tag is 0, so that its free fails free's fast
 * path even while the free gate is open, and the profiler sees it; a larger
 * one is served as usual (its free is never a fast one). */
static HAK_TEXT hak_noinline void *alloc_sampled(size_t size, size_t align, bool *zeroed) {
  if (size > HAK_SMALL_MAX || align > HAK_MEDIUM_MAX_ALIGN || hak_reentered())
    return route(size, align, zeroed, hak_tls_heap);
  slow_start();
  depth_enter();
  void *p = hak_medium_alloc(size ? size : 1, align, zeroed);
  depth_leave();
  if (hak_unlikely(p == NULL)) errno = ENOMEM;
  return p;
}

/* A malloc of size bytes while someone watches: the hooks first (they call
 * hak_malloc again, which comes back here inside the hooked call), else the
 * allocation from the thread's own heap, behind its closed gate, and its
 * tracking. */
static HAK_TEXT hak_noinline void *observed_malloc(size_t size) {
  unsigned obs = observers_now();
  if ((obs & HAK_OBS_HOOKS) && hak_hooks_enter()) return hooked_malloc(size);
  bool sample = sample_now(size, obs);
  if (hak_likely(!sample) && size <= HAK_SMALL_MAX) { /* the common case: a pop from the own magazine */
    void *p = mag_pop(&hak_tls_heap->mag[size <= 1024 ? (size + 31) >> 4 : HAK_CLASS_TAG(hak_size_class(size))]);
    if (hak_likely(p != NULL)) {
      if (hak_unlikely(obs & HAK_OBS_LEAKS)) track_done(p, size, obs, false);
      return p;
    }
  }
  bool zeroed;
  void *p = sample                  ? alloc_sampled(size, 1, &zeroed)
            : size <= HAK_SMALL_MAX ? alloc_class_in(hak_tls_heap, hak_size_class(size))
                                    : route(size, 1, &zeroed, hak_tls_heap);
  track_done(p, size, obs, sample);
  return p;
}

/* Any other request reaching the router while someone watches: a plain
 * malloc above the small sizes (hooks, then tracked), calloc's, or an
 * aligned one (its hooks ran in the API function; tracked here). */
static HAK_TEXT hak_noinline void *observed_routed(size_t size, size_t align, bool *zeroed) {
  unsigned obs = observers_now();
  if (align == 1 && (obs & HAK_OBS_HOOKS) && hak_hooks_enter()) {
    *zeroed = false;
    return hooked_malloc(size);
  }
  bool sample = sample_now(size, obs);
  void *p = sample ? alloc_sampled(size, align, zeroed) : route(size, align, zeroed, hak_tls_heap);
  track_done(p, size, obs, sample);
  return p;
}

/* ---- the checked build (check.c) ------------------------------------------------- */
/* In a checked build every allocation asks for HAK_CHECK_TAIL more bytes (its
 * canary and trailer) and is registered by hak_check_on_alloc. */
static HAK_TEXT void *checked_alloc_untracked(size_t align, size_t size, bool zero, const char *call) {
  if (size > HAK_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  size_t n = size + HAK_CHECK_TAIL;
  bool zeroed = false; /* calloc: medium and large memory fresh from the OS is not cleared again */
  void *p = hak_check_on_alloc(align > 16        ? alloc_aligned(align, n)
                               : n > HAK_SMALL_MAX ? alloc_routed(n, 1, &zeroed)
                                                   : alloc_inline(n),
                               size, call);
  if (zero && p != NULL && !zeroed) memset(p, 0, size); /* after on_alloc has checked the freed pattern */
  return p;
}
static HAK_TEXT hak_noinline void *checked_alloc(size_t align, size_t size, bool zero, const char *call) {
  void *p = checked_alloc_untracked(align, size, zero, call);
  unsigned obs = observers();
  if (hak_unlikely(obs & HAK_OBS_TRACK)) track_alloc(p, size, obs);
  return p;
}

HAK_API void *hak_malloc(size_t size) {
  if (config_check && hooks_start()) return hooked_malloc(size);
  if (config_check) return checked_alloc(16, size, false, "malloc()");
  return alloc_inline(size);
}

/* ---- free ------------------------------------------------------------------------ */
static HAK_TEXT hak_noinline void hooked_free(void *p) {
  hak_hooks_free_before(p);
  hak_free(p);
  hak_hooks_free_after(p);
  hak_hooks_leave();
}

/* free's fast path: p is the start of a small block and the magazine of its
 * class has room: push. The magazine is the free gate's, or (own) the
 * thread's own heap's behind a closed gate; the heap is read only once p is known to
 * be a block start (as the fast path always did: one instruction fewer).
 * False: the slow path must do it. */
static inline HAK_TEXT bool free_push(void *p, bool own) {
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

/* free when no magazine push would do: the span is looked up again, so
 * that the fast path keeps nothing for this call. */
static HAK_TEXT void free_span(void *p) {
  hak_span_t *span = hak_pagemap_lookup(p);
  if (span == NULL) {
    if (p == NULL) return;
    hak_fatal("free()", "invalid pointer", p);
  }
  int saved = errno;
  depth_enter();
  switch (span->kind) {
  case HAK_SPAN_SLAB: hak_heap_free_small(p, (hak_slab_t *)span); break;
  case HAK_SPAN_MEDIUM: hak_medium_free((hak_chunk_t *)span, p, "free()"); break;
  case HAK_SPAN_LARGE: hak_large_free((hak_large_t *)span, p, "free()"); break;
  case HAK_SPAN_DIRECT: hak_direct_free((hak_direct_t *)span, p, "free()"); break;
  default: hak_fatal("free()", "invalid pointer", p);
  }
  depth_leave();
  errno = saved;
}

static HAK_TEXT size_t usable_size(const void *p, hak_span_t *span, const char *call);

/* A re-entrant free (the thread is inside a slow path): a small block goes
 * into the thread's own magazine when that is open (the slow path rewrites
 * only magazines it has closed: heap.c) and no observer must see the free
 * first; a direct block goes back at once; any other block, once known to be
 * the start of a live block (no lock is needed for that), waits on the
 * deferred list, and is freed, tracked, when the thread leaves the slow path. */
static HAK_TEXT hak_noinline void free_reentrant(void *p) {
  if (!(observers() & HAK_OBS_TRACK) && free_push(p, true)) return;
  hak_span_t *span = hak_pagemap_lookup(p);
  if (span == NULL) {
    if (p == NULL) return;
    hak_fatal("free()", "invalid pointer", p);
  }
  int saved = errno;
  if (span->kind == HAK_SPAN_DIRECT) hak_direct_free((hak_direct_t *)span, p, "free()");
  else {
    if (!config_check) (void)usable_size(p, span, "free()"); /* checked builds: hak_check_on_free did */
    hak_defer_free(p, "free()");
  }
  errno = saved;
}

/* A free (hooks and checks done) with its tracking: the observed path's,
 * and a deferred free's when it is made. */
static HAK_TEXT void free_tracked(void *p) {
  unsigned obs = observers();
  if (hak_unlikely(obs & HAK_OBS_TRACK)) track_free(p, obs);
  if (free_push(p, true)) return;
  free_span(p);
}

/* A free that no observer sees (its tracking was done, or is not wanted):
 * the inner free of a realloc. */
static HAK_TEXT void free_untracked(void *p) {
  if (hak_reentered()) free_reentrant(p);
  else if (!free_push(p, true)) free_span(p);
}

/* A free while someone watches: the hooks (which call hak_free again), else
 * the tracking, then the push into the thread's own magazine behind its
 * closed gate. */
static HAK_TEXT hak_noinline void observed_free(void *p) {
  unsigned obs = observers_now();
  if ((obs & HAK_OBS_HOOKS) && hak_hooks_enter()) {
    hooked_free(p);
    return;
  }
  if (hak_reentered()) free_reentrant(p);
  else free_tracked(p);
}

static HAK_TEXT hak_noinline void free_slow(void *p) {
  if (hak_reentered()) {
    if (observed_slow()) observed_free(p); /* the hooks */
    else free_reentrant(p);
    return;
  }
  depth_enter();
  free_gate_check();
  depth_leave();
  if (observed_slow()) {
    observed_free(p);
    return;
  }
  free_span(p);
}

/* The checked build's free: the hooks, the checks (check.c), the tracking,
 * then the free itself. */
static HAK_TEXT hak_noinline void checked_free(void *p) {
  if (hooks_start()) {
    hooked_free(p);
    return;
  }
  if (p == NULL) return;
  if (hak_reentered()) { /* checked now, without the validators; tracked when made */
    hak_check_on_free(p, "free()");
    free_reentrant(p);
    return;
  }
  hak_check_on_free(p, "free()");
  unsigned obs = observers();
  if (hak_unlikely(obs & HAK_OBS_TRACK)) track_free(p, obs);
  if (hak_likely(free_push(p, false))) return;
  free_slow(p);
}

HAK_API void hak_free(void *p) {
  if (config_check) {
    checked_free(p);
    return;
  }
  if (hak_likely(free_push(p, false))) return;
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

/* Usable size of block p, which must be the start of a live block. In a
 * checked build, the size that was asked for. */
static HAK_TEXT size_t usable_size(const void *p, hak_span_t *span, const char *call) {
  if (config_check) return hak_check_requested(p, call);
  if (span == NULL) hak_fatal(call, "invalid pointer", p);
  switch (span->kind) {
  case HAK_SPAN_SLAB: {
    hak_slab_t *s = (hak_slab_t *)span;
    if (s->cls >= HAK_CLASS_COUNT || !hak_slab_is_block_start(s, p))
      hak_fatal(call, "invalid pointer", p);
    return s->block_size;
  }
  case HAK_SPAN_MEDIUM: return hak_medium_usable((hak_chunk_t *)span, p, call);
  case HAK_SPAN_LARGE: return hak_large_usable((hak_large_t *)span, p, call);
  case HAK_SPAN_DIRECT: return hak_direct_usable((hak_direct_t *)span, p, call);
  default: hak_fatal(call, "invalid pointer", p);
  }
}

HAK_API size_t hak_malloc_usable_size(const void *p) {
  if (p == NULL) return 0;
  return usable_size(p, hak_pagemap_lookup(p), "malloc_usable_size()");
}

/* realloc within p's tier, without copying: the block's new address, or
 * NULL when it must be allocated elsewhere and copied (always, for a
 * re-entrant call: the tiers' locks). */
static HAK_TEXT void *realloc_in_tier(void *p, hak_span_t *span, size_t old, size_t size) {
  if (span->kind != HAK_SPAN_SLAB && hak_reentered()) return NULL;
  switch (span->kind) {
  case HAK_SPAN_SLAB: /* same block when it fits and would not waste more than half */
    return size <= old && (size > old / 2 || old <= 16) ? p : NULL;
  case HAK_SPAN_MEDIUM: {
    if (size <= HAK_SMALL_MAX || size > HAK_MEDIUM_MAX) return NULL;
    depth_enter();
    bool done = hak_medium_resize_in_place((hak_chunk_t *)span, p, size);
    depth_leave();
    return done ? p : NULL;
  }
  case HAK_SPAN_LARGE: {
    if (size <= HAK_MEDIUM_MAX) return NULL;
    depth_enter();
    void *q = hak_large_realloc((hak_large_t *)span, p, size);
    depth_leave();
    return q;
  }
  default: return NULL;
  }
}

/* The allocation of a realloc's new block, which no observer sees (the
 * realloc is tracked as a whole): a profiler sample gets a page run of its own
 * (alloc_sampled), as a sampled malloc does. */
static HAK_TEXT void *alloc_untracked(size_t size, bool sample) {
  if (config_check) return checked_alloc_untracked(16, size, false, "realloc()");
  bool zeroed;
  if (sample) return alloc_sampled(size, 1, &zeroed);
  if (size <= HAK_SMALL_MAX) return alloc_class_in(hak_tls_heap, hak_size_class(size));
  return route(size, 1, &zeroed, hak_tls_heap);
}

/* realloc of live block p to size (neither NULL nor 0) that no observer
 * sees: in p's tier when it can (never in a checked build, so that a stale
 * pointer to the old block is caught, nor for a sample), else a new block,
 * the copy and p's free. NULL: out of memory, p untouched, errno ENOMEM. */
static HAK_TEXT void *realloc_untracked(void *p, size_t size, bool sample) {
  hak_span_t *span = hak_pagemap_lookup(p);
  size_t old = usable_size(p, span, "realloc()");
  void *q = config_check || sample ? NULL : realloc_in_tier(p, span, old, size);
  if (q != NULL) return q;
  q = alloc_untracked(size, sample);
  if (q == NULL) return NULL;
  memcpy(q, p, old < size ? old : size);
  if (config_check) hak_check_on_free(p, "realloc()");
  free_untracked(p);
  return q;
}

/* realloc while the profiler or the leak checker watches: the old block's
 * record goes before the call (its address may be handed out again as soon
 * as it is freed) and the new block is tracked after it, as one free and one
 * allocation, with the realloc's stack; the profiler's countdown decides
 * first whether the new block is a sample. A failed call gives the old
 * block its record back. */
static HAK_TEXT hak_noinline void *tracked_realloc(void *p, size_t size, unsigned obs) {
  hak_leak_rec_t old = {NULL, 0};
  depth_enter();
  if (obs & HAK_OBS_LEAKS) hak_leak_free(p, &old);
  if (obs & HAK_OBS_PROFILE) hak_prof_free(p);
  depth_leave();
  bool sample = sample_now(size, obs);
  void *q = realloc_untracked(p, size, sample);
  if (q == NULL && old.stack != NULL) {
    depth_enter();
    hak_leak_alloc(p, old.size, old.stack);
    depth_leave();
  }
  track_done(q, size, obs, sample);
  return q;
}

/* realloc(p, 0) frees p and returns NULL, as glibc does. */
HAK_API void *hak_realloc(void *p, size_t size) {
  unsigned obs = observers();
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
  if (hak_unlikely(obs & HAK_OBS_TRACK) && !hak_reentered() && !hak_track_busy) return tracked_realloc(p, size, obs);
  return realloc_untracked(p, size, false);
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

HAK_API const char *hak_version(void) { return HAK_VERSION_STRING; }
HAK_API const char *hak_variant(void) { return HAK_BUILD_NAME; }

HAK_API void hak_flush(void) {
  if (hak_init_state != HAK_INIT_DONE) hak_init_slow();
  sigset_t old;
  hak_signals_block(&old);
  hak_heap_flush_thread();
  hak_xfer_drain();
  hak_abandoned_sweep();
  hak_pool_trim(0);
  hak_medium_purge();
  hak_large_cache_clear();
  hak_direct_cache_release();
  hak_signals_restore(&old);
}

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
