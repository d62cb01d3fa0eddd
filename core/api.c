/* api.c — the control API: every exported entry point but the malloc family
 * (malloc_api.c). Statistics and reset, flush, validation, the heap profiler,
 * the leak checker's check and ignore, hooks, the options, the version and
 * variant.
 *
 * This file is the top of the core: it initialises first where a call needs
 * it (the only caller of initialisation besides the malloc path), and runs
 * each call with every signal blocked (reentry.c): these calls take the
 * allocator's locks, and a signal handler's malloc must never wait for one
 * held by the code it interrupted. They are not for signal handlers
 * themselves (README, "Signal handlers"). */
#include <errno.h>

#include "hakmem.h"
#include "internal.h"

#define HAK_API HAK_EXPORT

/* Initialised, with every signal blocked until control_end. */
static void control_begin(sigset_t *old) {
  if (hak_init_state != HAK_INIT_DONE) hak_init_slow();
  hak_signals_block(old);
}
static void control_end(const sigset_t *old) { hak_signals_restore(old); }

HAK_API const char *hak_version(void) { return HAK_VERSION_STRING; }
HAK_API const char *hak_variant(void) { return HAK_BUILD_NAME; }

/* The calling thread's magazines to their slabs, then everything free back to
 * the OS (scavenger.c: the sequence the scavenger and hak_reset use too). */
HAK_API void hak_flush(void) {
  sigset_t old;
  control_begin(&old);
  hak_heap_flush_thread();
  hak_release_free();
  control_end(&old);
}

HAK_API const char *hak_validate(void) {
  sigset_t old;
  control_begin(&old);
  const char *err = hak_validate_all();
  control_end(&old);
  return err;
}

HAK_API int hak_hook_add(const hak_hooks_t *hooks) {
  if (hooks == NULL) return -1;
  sigset_t old;
  control_begin(&old);
  int id = hak_hooks_install(hooks);
  control_end(&old);
  return id;
}

HAK_API int hak_hook_remove(int id) {
  sigset_t old;
  control_begin(&old);
  int r = hak_hooks_uninstall(id);
  control_end(&old);
  return r;
}

/* ---- statistics (stats.c) -------------------------------------------------------- */
HAK_API void hak_stats_get(hak_stats_t *out) {
  sigset_t old;
  control_begin(&old);
  hak_stats_snapshot(out);
  control_end(&old);
}

HAK_API void hak_stats_print(FILE *out, int fmt) {
  sigset_t old;
  control_begin(&old);
  hak_stats_write(out, fmt);
  control_end(&old);
}

/* Everything free back to the OS (the calling thread's magazines and their
 * arrays' pages, then the release sequence), each other live thread asked to
 * drain at its next call (heap.c), and the counters zeroed; the bytes still
 * in use. */
HAK_API size_t hak_reset(void) {
  sigset_t old;
  control_begin(&old);
  hak_heap_flush_thread();
  hak_heap_trim_own();
  hak_heaps_request_flush(); /* other threads' magazines: at their next call */
  hak_release_free();
  size_t live = hak_stats_zero();
  control_end(&old);
  return live;
}

/* ---- the heap profiler (profile.c) ------------------------------------------------ */
HAK_API int hak_profile_start(const char *path_prefix) {
  sigset_t old;
  control_begin(&old);
  int r = hak_prof_start(path_prefix);
  control_end(&old);
  return r;
}

HAK_API void hak_profile_stop(void) {
  sigset_t old;
  control_begin(&old);
  hak_prof_stop();
  control_end(&old);
}

HAK_API int hak_profile_dump(const char *path) {
  sigset_t old;
  control_begin(&old);
  int r = hak_prof_dump(path);
  control_end(&old);
  return r;
}

/* ---- the leak checker (leakcheck.c) ----------------------------------------------- */
HAK_API size_t hak_leak_check(hak_leak_counts_t *out) {
  sigset_t old;
  control_begin(&old);
  size_t lost = hak_leak_check_now(out);
  control_end(&old);
  return lost;
}

HAK_API int hak_leak_ignore(const void *p) {
  sigset_t old;
  control_begin(&old);
  int r = hak_leak_ignore_block(p);
  int err = errno;
  control_end(&old);
  errno = err;
  return r;
}

/* ---- the options (options.c) --------------------------------------------------------- */
HAK_API void hak_options_print(FILE *out) {
  if (hak_init_state != HAK_INIT_DONE) hak_init_slow();
  hak_options_write(out);
}
