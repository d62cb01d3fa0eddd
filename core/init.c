/* init.c — initialisation and fork.
 *
 * Initialisation runs once, from the library constructor or the first
 * allocation that reaches the tier router (malloc_api.c), whichever comes
 * first; the router is the only caller, so no lower tier ever calls up here.
 * It reads the options, creates the thread-exit key (heap.c), registers the
 * fork handlers and the statistics at exit, and starts the leak checker and
 * the heap profiler when their options ask.
 *
 * fork(): the handlers take every global lock in the order of internal.h
 * before the fork, release them in the parent and re-initialise them in the
 * child, then let heap.c give the child the heaps of threads that do not exist
 * there (internal.h says what the child relies on). */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "hakmem.h"
#include "internal.h"

_Atomic hak_init_state_t hak_init_state = HAK_INIT_NONE;
static hak_tls bool in_init; /* this thread is running hak_init_slow */
static hak_tls sigset_t fork_mask; /* the forking thread's signal mask before fork */

/* Every signal is blocked from prepare to parent and child: a handler's
 * malloc would otherwise wait for the locks prepare holds. */
static void fork_prepare(void) {
  if (hak_init_state != HAK_INIT_DONE) return;
  hak_signals_block(&fork_mask);
  hak_prof_fork_prepare();              /* -3 profiler */
  hak_leak_fork_prepare();              /* -2 leak checker */
  hak_stack_fork_prepare();             /* -1 unwinders, stack table */
  hak_stats_fork_prepare();             /* 0 statistics */
  hak_heap_fork_prepare();              /* 1 heap list, 2 abandoned */
  hak_xfer_fork_prepare();              /* 2b transfer cache */
  pthread_mutex_lock(&hak_pool_lock);   /* 3 */
  pthread_mutex_lock(&hak_medium_lock); /* 4 */
  pthread_mutex_lock(&hak_large_lock);  /* 5 */
  pthread_mutex_lock(&hak_meta_lock);   /* 6 */
}

static void fork_parent(void) {
  if (hak_init_state != HAK_INIT_DONE) return;
  pthread_mutex_unlock(&hak_meta_lock);
  pthread_mutex_unlock(&hak_large_lock);
  pthread_mutex_unlock(&hak_medium_lock);
  pthread_mutex_unlock(&hak_pool_lock);
  hak_xfer_fork_parent();
  hak_heap_fork_parent();
  hak_stats_fork_parent();
  hak_stack_fork_parent();
  hak_leak_fork_parent();
  hak_prof_fork_parent();
  hak_signals_restore(&fork_mask);
}

static void fork_child(void) {
  if (hak_init_state != HAK_INIT_DONE) return;
  pthread_mutex_init(&hak_meta_lock, NULL);
  pthread_mutex_init(&hak_large_lock, NULL);
  pthread_mutex_init(&hak_medium_lock, NULL);
  pthread_mutex_init(&hak_pool_lock, NULL);
  hak_xfer_fork_child();
  hak_heap_fork_child();
  if (config_dynamic_flush) hak_scavenger_fork_child();
  hak_stats_fork_child();
  hak_stack_fork_child();
  hak_leak_fork_child();
  hak_prof_fork_child();
  hak_signals_restore(&fork_mask);
}

/* pthread_atfork and atexit may allocate: that allocation re-enters here on
 * the same thread (in_init) and proceeds without waiting. Other threads wait
 * until initialisation is complete. */
hak_cold void hak_init_slow(void) {
  if (hak_init_state == HAK_INIT_DONE || in_init) return;
  hak_init_state_t expected = HAK_INIT_NONE;
  if (!atomic_compare_exchange_strong(&hak_init_state, &expected, HAK_INIT_RUNNING)) {
    while (atomic_load(&hak_init_state) != HAK_INIT_DONE) sched_yield();
    return;
  }
  in_init = true;
  hak_options_init();
  hak_os_init();
  if (hak_option(HAK_OPT_LEAKCHECK)) hak_leak_init(); /* before anything is mapped */
  hak_heap_init();
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  if (hak_option(HAK_OPT_STATS)) {
    atexit(hak_stats_at_exit);
    if (hak_option(HAK_OPT_STATS_PEAK)) hak_stats_peak_init();
  }
  hak_stats_signal_init();
  if (hak_option(HAK_OPT_LEAKCHECK) || hak_option_text(HAK_OPT_PROFILE) != NULL) hak_stack_init();
  hak_prof_init();
  if (hak_option(HAK_OPT_VERBOSE)) {
    hak_out_error("hakmem %s, variant %s\n", HAK_VERSION_STRING, HAK_BUILD_NAME);
    hak_options_report();
  }
  in_init = false;
  atomic_fetch_and(&hak_observers, ~HAK_OBS_INIT);
  atomic_store(&hak_init_state, HAK_INIT_DONE);
}

__attribute__((constructor)) static void hak_constructor(void) { hak_init_slow(); }
