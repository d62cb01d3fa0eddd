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
 * Every function is defined under its hak_ name and exported; unless built
 * with HAK_PREFIX_ONLY, the standard names are exported as aliases of the same
 * code, so LD_PRELOAD replaces the system allocator. */
#include <errno.h>
#include <string.h>

#include "hakmem.h"
#include "internal.h"

#define HAK_API __attribute__((visibility("default")))

/* ---- hooks (hooks.c) ------------------------------------------------------------ */
/* True when this call must run the hooks: some are installed and the thread
 * is not already inside a hooked call (then it is marked as inside). Only the
 * slow paths ask: with hooks installed, every thread's gate is closed, so
 * every call comes here (heap.c). */
static inline bool hooks_start(void) {
  return hak_unlikely(atomic_load_explicit(&hak_hooks_on, memory_order_relaxed)) && hak_hooks_enter();
}
/* The same where a fast path failed (malloc, free). A checked build runs
 * malloc's and free's hooks around its own checks instead (hak_malloc,
 * hak_free), so that the checks see each call once. */
static inline bool hooks_start_slow(void) { return !config_check && hooks_start(); }

/* A slow path's first duty: with the caller's gate closed, drain its heap
 * when hak_reset asked, and reopen the gate when hooks went away. */
static inline void gate_check(void) {
  if (hak_unlikely(hak_gate() != hak_tls_heap) &&
      (atomic_load_explicit(&hak_gates_closed, memory_order_relaxed) == 0 ||
       atomic_load_explicit(&hak_tls_heap->flush_wanted, memory_order_relaxed)))
    hak_gate_reopen();
}

static hak_noinline void *hooked_malloc(size_t size) {
  hak_hooks_malloc_before(size);
  void *p = hak_malloc(size);
  hak_hooks_malloc_after(p, size);
  hak_hooks_leave();
  return p;
}

/* ---- allocation ------------------------------------------------------------------ */
/* Ends the fast path of small class c: the magazine was empty. */
static hak_noinline void *alloc_small_slow(unsigned c) {
  gate_check();
  if (hak_init_state != HAK_INIT_DONE) hak_init_slow();
  hak_stats_poll();
  if (config_dynamic_flush) hak_scavenger_start();
  void *p = hak_heap_alloc_small(c);
  if (hak_unlikely(p == NULL)) errno = ENOMEM;
  return p;
}

/* The same for a small size, its class computed here (off the fast path). */
static hak_noinline void *alloc_small_miss(size_t size) {
  if (hooks_start_slow()) return hooked_malloc(size); /* only malloc comes here outside a hooked call */
  return alloc_small_slow(hak_size_class(size));
}

/* A pop from magazine m, or NULL when it is empty (its sentinel is NULL). */
static inline void *mag_pop(hak_mag_t *m) {
  void **top = m->top;
  void *p = top[-1];
  if (hak_likely(p != NULL)) m->top = top - 1;
  return p;
}

/* A block of small class c: a pop from the calling thread's magazine. */
static inline void *alloc_class(unsigned c) {
  void *p = mag_pop(&hak_gate()->mag[HAK_CLASS_TAG(c)]);
  if (hak_likely(p != NULL)) return p;
  return alloc_small_slow(c);
}

/* The tier router: the one place that decides small, medium or large (for
 * every request but a plain small malloc, which alloc_inline takes straight to
 * its class). align is a power of two. Small: the first class at least as
 * large whose size is a multiple of align (blocks sit at multiples of their
 * size from a unit-aligned base). Medium: a page run aligned up to
 * HAK_MEDIUM_MAX_ALIGN. Otherwise a large mapping aligned as asked. Requests
 * beyond any possible mapping fail here, before anything is initialised or
 * mapped. *zeroed: the memory is known to read as zero. */
static hak_noinline void *alloc_routed(size_t size, size_t align, bool *zeroed) {
  *zeroed = false;
  if (align == 1 && hooks_start_slow()) return hooked_malloc(size); /* a plain malloc above the small sizes */
  if (hak_unlikely(size > HAK_MAX_REQUEST)) {
    errno = ENOMEM;
    return NULL;
  }
  size_t n = size < align ? align : size;
  if (n <= HAK_SMALL_MAX) {
    for (unsigned c = hak_size_class(n); c < HAK_CLASS_COUNT; c++)
      if (hak_class_size[c] % align == 0) return alloc_class(c);
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

/* malloc's fast path. The class is computed again on the slow path, so that
 * the fast path keeps nothing live across the magazine test. */
static inline void *alloc_inline(size_t size) {
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
static hak_noinline void *alloc_zeroed(size_t size) {
  bool zeroed = false;
  void *p = size <= HAK_SMALL_MAX ? alloc_inline(size) : alloc_routed(size, 1, &zeroed);
  if (p != NULL && !zeroed) memset(p, 0, size);
  return p;
}

static hak_noinline void *alloc_aligned(size_t align, size_t size) {
  if (align <= 16) return alloc_inline(size);
  bool zeroed;
  return alloc_routed(size, align, &zeroed);
}

/* ---- the checked build (check.c) ------------------------------------------------- */
/* In a checked build every allocation asks for HAK_CHECK_TAIL more bytes (its
 * canary and trailer) and is registered by hak_check_on_alloc. */
static hak_noinline void *checked_alloc(size_t align, size_t size, bool zero, const char *call) {
  if (size > HAK_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  size_t n = size + HAK_CHECK_TAIL;
  void *p = hak_check_on_alloc(align > 16 ? alloc_aligned(align, n) : alloc_inline(n), size, call);
  if (zero && p != NULL) memset(p, 0, size); /* after on_alloc has checked the freed pattern */
  return p;
}

HAK_API void *hak_malloc(size_t size) {
  if (config_check && hooks_start()) return hooked_malloc(size);
  if (config_check) return checked_alloc(16, size, false, "malloc()");
  return alloc_inline(size);
}

/* ---- free ------------------------------------------------------------------------ */
/* free when the fast path could not: the span is looked up again, so that the
 * fast path keeps nothing for this call. */
static hak_noinline void hooked_free(void *p) {
  hak_hooks_free_before(p);
  hak_free(p);
  hak_hooks_free_after(p);
  hak_hooks_leave();
}

static hak_noinline void free_slow(void *p) {
  gate_check();
  if (hooks_start_slow()) {
    hooked_free(p);
    return;
  }
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

HAK_API void hak_free(void *p) {
  if (config_check && hooks_start()) {
    hooked_free(p);
    return;
  }
  if (config_check && p != NULL) hak_check_on_free(p, "free()");
  uintptr_t entry = hak_pagemap_entry(p);
  unsigned tag = (unsigned)(entry & HAK_TAG_MASK);
  const hak_tag_info_t *info = &hak_tag_info[tag];
  if (hak_likely((((uint64_t)((uintptr_t)p & info->mask) * info->recip) >> 32) == 0)) { /* a block start */
    hak_mag_t *m = &hak_gate()->mag[tag]; /* tag 0: never has room */
    void **top = m->top;
    if (hak_likely(top < m->limit && top[-1] != p)) {
      *top = p;
      m->top = top + 1;
      return;
    }
  }
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
static size_t usable_size(const void *p, hak_span_t *span, const char *call) {
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
static void *realloc_in_tier(void *p, hak_span_t *span, size_t old, size_t size) {
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
HAK_API void *hak_realloc(void *p, size_t size) {
  if (hooks_start()) {
    hak_hooks_realloc_before(p, size);
    void *q = hak_realloc(p, size);
    hak_hooks_realloc_after(p, q, size);
    hak_hooks_leave();
    return q;
  }
  if (p == NULL) return hak_malloc(size);
  if (size == 0) {
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

HAK_API void *hak_reallocarray(void *p, size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return NULL;
  }
  return hak_realloc(p, n);
}

static void *aligned_api(size_t align, size_t size, const char *call) {
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
static void *memalign_common(size_t align, size_t size, const char *call) {
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
