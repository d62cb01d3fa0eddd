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

/* ---- tracking: the heap profiler (profile.c) and the leak checker (leakcheck.c) ---- */
/* A thread inside the tracking code is busy (stack.c): what it allocates
 * meanwhile is not tracked, what it frees waits until it leaves. */
static inline HAK_TEXT void track_enter(void) { hak_track_busy = true; }
static HAK_TEXT void free_span(void *p);
static inline HAK_TEXT bool free_push(void *p, bool own);
/* Leaves the tracking code. The frees postponed meanwhile (a signal
 * handler's, while the thread was busy) are tracked and made now, with
 * signals blocked so that no handler's malloc cuts one in two (hakmem's
 * malloc and free are not async-signal-safe, as glibc's are not; this keeps
 * the tracking from adding a hazard of its own). What a handler queues just
 * before the mark goes is taken too. */
static HAK_TEXT hak_noinline void free_postponed(void) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  for (void *p; (p = hak_track_postponed()) != NULL;) {
    unsigned obs = observers();
    if (obs & HAK_OBS_LEAKS) hak_leak_free(p, NULL);
    if (obs & HAK_OBS_PROFILE) hak_prof_free(p);
    if (config_check) hak_check_on_free(p, "free()");
    if (!free_push(p, true)) free_span(p);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}
static inline HAK_TEXT void track_leave(void) {
  for (;;) {
    if (hak_unlikely(hak_track_any_postponed())) free_postponed();
    hak_track_busy = false;
    if (hak_likely(!hak_track_any_postponed())) return;
    hak_track_busy = true;
  }
}

/* p (size bytes) was just allocated; sampled: the profiler's countdown ran
 * out on it. p may be NULL (a failed call): the countdown is drawn again. */
static HAK_TEXT hak_noinline void track_alloc_slow(void *p, size_t size, bool sampled) {
  if (sampled) sampled = hak_prof_redraw(size);
  if (p == NULL || hak_track_busy) return;
  unsigned obs = observers();
  bool leaks = obs & HAK_OBS_LEAKS;
  sampled = sampled && (obs & HAK_OBS_PROFILE);
  if (!leaks && !sampled) return;
  track_enter();
  void *frames[HAK_STACK_MAX];
  int n = hak_stack_capture(frames, HAK_STACK_MAX);
  const hak_stack_t *st = hak_stack_intern(frames, n, hak_src_file, hak_src_line);
  if (leaks) hak_leak_alloc(p, size, st);
  if (sampled) hak_prof_sample(p, size, st);
  track_leave();
}

/* p is about to be freed. False: the thread is busy and p was postponed
 * (the caller must not free it now). */
static HAK_TEXT hak_noinline bool track_free_slow(void *p, unsigned obs) {
  if (hak_track_busy) return !hak_track_postpone(p);
  track_enter();
  if (obs & HAK_OBS_LEAKS) hak_leak_free(p, NULL);
  if (obs & HAK_OBS_PROFILE) hak_prof_free(p);
  track_leave();
  return true;
}

/* The profiler's countdown: true when this allocation of size bytes is to
 * be sampled (profile.c). */
static inline HAK_TEXT bool sample_now(size_t size, unsigned obs) {
  return (obs & HAK_OBS_PROFILE) && (hak_prof_left -= (int64_t)size) < 0;
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
/* Before p is freed; false: postponed (track_free_slow). */
static inline HAK_TEXT bool track_free(void *p, unsigned obs) {
  if (p == NULL || !(obs & HAK_OBS_TRACK)) return true;
  if (!(obs & HAK_OBS_LEAKS) && !hak_prof_maybe_sampled(p)) return true;
  bool done = track_free_slow(p, obs);
  if (obs & HAK_OBS_LEAKS) hak_stack_scrub();
  return done;
}

/* An allocation for a watched call: what hakmem allocates meanwhile for
 * itself (the scavenger thread's start) is not the program's, so the thread
 * is marked busy (not tracked). */
#define UNTRACKED(expr)                 \
  ({                                    \
    bool busy_ = hak_track_busy;        \
    hak_track_busy = true;              \
    __typeof__(expr) r_ = (expr);       \
    hak_track_busy = busy_;             \
    r_;                                 \
  })

/* ---- allocation ------------------------------------------------------------------ */
/* Ends the fast path of small class c: the magazine was empty. */
static HAK_TEXT hak_noinline void *alloc_small_slow(unsigned c) {
  gate_check();
  if (hak_init_state != HAK_INIT_DONE) hak_init_slow();
  hak_stats_poll();
  if (config_dynamic_flush) hak_scavenger_start();
  void *p = hak_heap_alloc_small(c);
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
  if (hak_init_state != HAK_INIT_DONE) hak_init_slow();
  if (config_dynamic_flush) hak_scavenger_start();
  hak_stats_poll();
  void *p;
  if (align <= HAK_MEDIUM_MAX_ALIGN && size <= HAK_MEDIUM_MAX)
    p = hak_medium_alloc(size > HAK_SMALL_MAX ? size : HAK_SMALL_MAX + 1, align, zeroed);
  else
    p = hak_large_alloc(size, align, zeroed);
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
  if (size > HAK_SMALL_MAX || align > HAK_MEDIUM_MAX_ALIGN) return route(size, align, zeroed, hak_tls_heap);
  if (hak_init_state != HAK_INIT_DONE) hak_init_slow();
  if (config_dynamic_flush) hak_scavenger_start();
  sigset_t all, old; /* the medium tier's lock, held with no handler able to want it too */
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  void *p = hak_medium_alloc(size ? size : 1, align, zeroed);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
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
  void *p = UNTRACKED(sample                   ? alloc_sampled(size, 1, &zeroed)
                      : size <= HAK_SMALL_MAX ? alloc_class_in(hak_tls_heap, hak_size_class(size))
                                              : route(size, 1, &zeroed, hak_tls_heap));
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
  void *p = UNTRACKED(sample ? alloc_sampled(size, align, zeroed) : route(size, align, zeroed, hak_tls_heap));
  track_done(p, size, obs, sample);
  return p;
}

/* ---- the checked build (check.c) ------------------------------------------------- */
/* In a checked build every allocation asks for HAK_CHECK_TAIL more bytes (its
 * canary and trailer) and is registered by hak_check_on_alloc. */
static HAK_TEXT hak_noinline void *checked_alloc(size_t align, size_t size, bool zero, const char *call) {
  if (size > HAK_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  size_t n = size + HAK_CHECK_TAIL;
  void *p = hak_check_on_alloc(UNTRACKED(align > 16 ? alloc_aligned(align, n) : alloc_inline(n)), size, call);
  if (zero && p != NULL) memset(p, 0, size); /* after on_alloc has checked the freed pattern */
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
  switch (span->kind) {
  case HAK_SPAN_SLAB: hak_heap_free_small(p, (hak_slab_t *)span); break;
  case HAK_SPAN_MEDIUM: hak_medium_free((hak_chunk_t *)span, p, "free()"); break;
  case HAK_SPAN_LARGE: hak_large_free((hak_large_t *)span, p, "free()"); break;
  default: hak_fatal("free()", "invalid pointer", p);
  }
  errno = saved;
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
  bool sampled = (obs & HAK_OBS_PROFILE) && p != NULL && hak_prof_maybe_sampled(p);
  if (!track_free(p, obs)) return;
  if (free_push(p, true)) return;
  if (hak_likely(!sampled)) {
    free_span(p);
    return;
  }
  sigset_t all, old; /* a sample's page run: as alloc_sampled */
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  free_span(p);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static HAK_TEXT hak_noinline void free_slow(void *p) {
  free_gate_check();
  if (observed_slow()) {
    observed_free(p);
    return;
  }
  free_span(p);
}

HAK_API void hak_free(void *p) {
  if (config_check && hooks_start()) {
    hooked_free(p);
    return;
  }
  if (config_check && hak_unlikely(observers() & HAK_OBS_TRACK) && !track_free(p, observers())) return;
  if (config_check && p != NULL) hak_check_on_free(p, "free()");
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
  default: hak_fatal(call, "invalid pointer", p);
  }
}

HAK_API size_t hak_malloc_usable_size(const void *p) {
  if (p == NULL) return 0;
  return usable_size(p, hak_pagemap_lookup(p), "malloc_usable_size()");
}

/* realloc within p's tier, without copying: the block's new address, or
 * NULL when it must be allocated elsewhere and copied. */
static HAK_TEXT void *realloc_in_tier(void *p, hak_span_t *span, size_t old, size_t size) {
  switch (span->kind) {
  case HAK_SPAN_SLAB: /* same block when it fits and would not waste more than half */
    return size <= old && (size > old / 2 || old <= 16) ? p : NULL;
  case HAK_SPAN_MEDIUM:
    return size > HAK_SMALL_MAX && size <= HAK_MEDIUM_MAX &&
                   hak_medium_resize_in_place((hak_chunk_t *)span, p, size)
               ? p
               : NULL;
  case HAK_SPAN_LARGE:
    return size > HAK_MEDIUM_MAX ? hak_large_realloc((hak_large_t *)span, p, size) : NULL;
  default: return NULL;
  }
}

/* realloc(p, 0) frees p and returns NULL, as glibc does. A checked build
 * always moves the block, so that a stale pointer to the old one is caught. */
static HAK_TEXT void *tracked_realloc(void *p, size_t size, unsigned obs);

HAK_API void *hak_realloc(void *p, size_t size) {
  unsigned obs = observers();
  if (hak_unlikely(obs != 0)) {
    if ((obs & HAK_OBS_HOOKS) && hak_hooks_enter()) {
      hak_hooks_realloc_before(p, size);
      void *q = hak_realloc(p, size);
      hak_hooks_realloc_after(p, q, size);
      hak_hooks_leave();
      return q;
    }
    if ((obs & HAK_OBS_TRACK) && p != NULL && size != 0 && !hak_track_busy) return tracked_realloc(p, size, obs);
  }
  if (p == NULL) return hak_malloc(size);
  if (size == 0) {
    if (config_check) (void)hak_check_requested(p, "realloc()"); /* a freed block is realloc's fault */
    hak_free(p);
    return NULL;
  }
  hak_span_t *span = hak_pagemap_lookup(p);
  size_t old = usable_size(p, span, "realloc()");
  void *q = config_check ? NULL : realloc_in_tier(p, span, old, size);
  if (q != NULL) return q;
  q = hak_malloc(size);
  if (q == NULL) return NULL; /* p is untouched; errno is ENOMEM */
  memcpy(q, p, old < size ? old : size);
  hak_free(p);
  return q;
}

/* realloc while the profiler or the leak checker watches: the old block's
 * record goes before the call (its address may be handed out again as soon
 * as it is freed) and the new block is tracked after it, as one free and one
 * allocation, with the realloc's stack; the calls made inside are not
 * tracked themselves (the thread is busy: its free of the old block waits
 * until the end, and the profiler's countdown is put back as it was). A
 * failed call gives the old block its record back. */
static HAK_TEXT hak_noinline void *tracked_realloc(void *p, size_t size, unsigned obs) {
  hak_leak_rec_t old = {NULL, 0};
  int64_t left = hak_prof_left;
  track_enter();
  if (obs & HAK_OBS_LEAKS) hak_leak_free(p, &old);
  if (obs & HAK_OBS_PROFILE) hak_prof_free(p);
  void *q = hak_realloc(p, size);
  hak_prof_left = left;
  if (q == NULL && old.stack != NULL) hak_leak_alloc(p, old.size, old.stack);
  track_leave();
  track_alloc(q, size, obs);
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

HAK_API const char *hak_version(void) { return HAK_VERSION_STRING; }
HAK_API const char *hak_variant(void) { return HAK_BUILD_NAME; }

HAK_API void hak_flush(void) {
  if (hak_init_state != HAK_INIT_DONE) hak_init_slow();
  hak_heap_flush_thread();
  hak_xfer_drain();
  hak_abandoned_sweep();
  hak_pool_trim(0);
  hak_medium_purge();
  hak_large_cache_clear();
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
