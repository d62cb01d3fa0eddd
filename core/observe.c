/* observe.c — what the heap profiler (profile.c) and the leak checker
 * (leakcheck.c) see of the calls: the slow paths that every malloc, free and
 * realloc takes while one of them watches (they close the threads' gates,
 * heap.c, so no call takes a fast path; hooks are run above, malloc_api.c).
 *
 *   hak_observed_malloc, hak_observed_routed  the profiler's countdown first
 *           (a sample is decided before the block is made: a small sample gets
 *           a page run of its own, alloc.c), the allocation from the thread's
 *           own heap, then its tracking: its stack captured and kept
 *           (stack.c), given to the leak checker (every block) and the
 *           profiler (samples);
 *   hak_free_tracked      the tracking of a free, then the free (free.c);
 *   hak_tracked_realloc   a realloc as one free and one allocation;
 *   hak_track_alloc, hak_track_free  the checked build's tracking, around its
 *           own checks (malloc_api.c).
 * The tracking takes the profiler's and leak checker's locks: it runs under
 * the depth mark, and a re-entrant call (a signal handler's) is not tracked:
 * its allocation is a direct block nobody tracks, its free is deferred and
 * tracked when it is made (malloc_api.c). hak_track_busy marks calls that are
 * hakmem's own, made with every signal blocked (the scavenger thread's start,
 * the tracking's own API and exit reports): not tracked either. Every function
 * is in section hak_text (stack.c). */
#include "internal.h"

#define OBSERVED_PATH HAK_TEXT

/* The observers, for an observed path, when initialisation has not run yet
 * (HAK_OBS_INIT): it runs first, so that the options have turned them on. */
OBSERVED_PATH hak_noinline unsigned hak_observers_init(void) {
  hak_init_slow();
  return hak_observers_get() & ~HAK_OBS_INIT; /* still set while initialisation allocates */
}

/* ---- tracking ------------------------------------------------------------------- */
/* p (size bytes) was just allocated; sampled: the profiler chose it
 * (sample_now). p may be NULL (a failed call). */
static OBSERVED_PATH hak_noinline void track_alloc_slow(void *p, size_t size, bool sampled) {
  if (p == NULL || hak_track_busy || hak_reentered()) return;
  unsigned obs = hak_observers_get();
  bool leaks = obs & HAK_OBS_LEAKS;
  sampled = sampled && (obs & HAK_OBS_PROFILE);
  if (!leaks && !sampled) return;
  hak_depth_enter();
  void *frames[HAK_STACK_MAX];
  int n = hak_stack_capture(frames, HAK_STACK_MAX);
  const hak_stack_t *st = hak_stack_intern(frames, n, hak_src_file, hak_src_line);
  if (leaks) hak_leak_alloc(p, size, st);
  if (sampled) hak_prof_sample(p, size, st);
  (void)hak_depth_leave();
}

/* p is about to be freed (not re-entrant: those are tracked when made). */
static OBSERVED_PATH hak_noinline void track_free_slow(void *p, unsigned obs) {
  if (hak_track_busy) return;
  hak_depth_enter();
  if (obs & HAK_OBS_LEAKS) hak_leak_free(p, NULL);
  if (obs & HAK_OBS_PROFILE) hak_prof_free(p);
  (void)hak_depth_leave();
}

/* The profiler's countdown: true when this allocation of size bytes is to be
 * sampled (profile.c), decided before it is made, so that an allocation that
 * is not a sample is served as usual (a thread's first countdown starts at 0
 * and is drawn at its first allocation: hak_prof_redraw). */
static inline OBSERVED_PATH bool sample_now(size_t size, unsigned obs) {
  return (obs & HAK_OBS_PROFILE) && hak_unlikely((hak_prof_left -= (int64_t)size) < 0) && hak_prof_redraw(size);
}
/* The tracking of an allocation of size bytes at p (NULL: it failed): the
 * out-of-line part when it is sampled or the leak checker keeps every block. */
static inline OBSERVED_PATH void track_done(void *p, size_t size, unsigned obs, bool sample) {
  if (hak_unlikely(sample || (obs & HAK_OBS_LEAKS))) track_alloc_slow(p, size, sample);
  if (obs & HAK_OBS_LEAKS) hak_stack_scrub(); /* no copy of p left below the program's frames */
}

OBSERVED_PATH void hak_track_alloc(void *p, size_t size, unsigned obs) {
  track_done(p, size, obs, sample_now(size, obs));
}

OBSERVED_PATH void hak_track_free(void *p, unsigned obs) {
  if (p == NULL || !(obs & HAK_OBS_TRACK)) return;
  if (!(obs & HAK_OBS_LEAKS) && !hak_prof_maybe_sampled(p)) return;
  track_free_slow(p, obs);
  if (obs & HAK_OBS_LEAKS) hak_stack_scrub();
}

/* ---- the observed paths ------------------------------------------------------------ */
/* A malloc of size bytes while someone watches (its hooks ran above): the
 * allocation from the thread's own heap, behind its closed gate, and its
 * tracking. */
OBSERVED_PATH hak_noinline void *hak_observed_malloc(size_t size, unsigned obs) {
  bool sample = sample_now(size, obs);
  if (hak_likely(!sample) && size <= HAK_SMALL_MAX) { /* the common case: a pop from the own magazine */
    void *p = hak_mag_pop(&hak_tls_heap->mag[hak_mag_index(size)]);
    if (hak_likely(p != NULL)) {
      if (hak_unlikely(obs & HAK_OBS_LEAKS)) track_done(p, size, obs, false);
      return p;
    }
  }
  bool zeroed;
  void *p = sample ? hak_alloc_sampled(size, 1, &zeroed) : hak_route(size, 1, &zeroed, hak_tls_heap);
  track_done(p, size, obs, sample);
  return p;
}

/* Any other request while someone watches (its hooks ran above): a malloc
 * above the small sizes, calloc's, or an aligned one. */
OBSERVED_PATH hak_noinline void *hak_observed_routed(size_t size, size_t align, bool *zeroed, unsigned obs) {
  bool sample = sample_now(size, obs);
  void *p = sample ? hak_alloc_sampled(size, align, zeroed) : hak_route(size, align, zeroed, hak_tls_heap);
  track_done(p, size, obs, sample);
  return p;
}

/* A free (hooks and checks done) with its tracking: the observed path's, and a
 * deferred free's when it is made. */
OBSERVED_PATH void hak_free_tracked(void *p) {
  unsigned obs = hak_observers_get();
  if (hak_unlikely(obs & HAK_OBS_TRACK)) hak_track_free(p, obs);
  if (hak_free_push(p, true)) return;
  hak_free_span(p);
}

/* realloc while the profiler or the leak checker watches: the old block's
 * record goes before the call (its address may be handed out again as soon as
 * it is freed) and the new block is tracked after it, as one free and one
 * allocation, with the realloc's stack; the profiler's countdown decides first
 * whether the new block is a sample. A failed call gives the old block its
 * record back. */
OBSERVED_PATH hak_noinline void *hak_tracked_realloc(void *p, size_t size, unsigned obs) {
  hak_leak_rec_t old = {NULL, 0};
  hak_depth_enter();
  if (obs & HAK_OBS_LEAKS) hak_leak_free(p, &old);
  if (obs & HAK_OBS_PROFILE) hak_prof_free(p);
  (void)hak_depth_leave();
  bool sample = sample_now(size, obs);
  void *q = hak_realloc_untracked(p, size, sample);
  if (q == NULL && old.stack != NULL) {
    hak_depth_enter();
    hak_leak_alloc(p, old.size, old.stack);
    (void)hak_depth_leave();
  }
  track_done(q, size, obs, sample);
  return q;
}
