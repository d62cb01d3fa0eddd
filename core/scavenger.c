/* scavenger.c — dynamic flush: a background thread that gives free memory
 * back to the OS when the process stops allocating (variants with
 * config_dynamic_flush).
 *
 * Started lazily by the first slow-path allocation, and again in a forked
 * child. Every tick (100 ms) it advances hak_clock_tick (the time base of the
 * adaptive magazine capacities in heap.c) and compares the allocator's
 * slow-path activity (refills and flushes of every heap, medium and large
 * operations) with the previous tick:
 *   - busy: every tick, heaps whose threads have been idle for a tick give
 *     back what their slabs hold free (remote frees collected, empty slabs to
 *     the pool, free pages decommitted), so that a thread that allocated and
 *     then only waits (a main thread) does not pin memory the busy threads
 *     have freed, and cached large ranges and SuperSlab memory not used for
 *     a second go back; once a second the empty-slab pool shrinks to half
 *     its size;
 *   - idle for idle_ms (option HAKMEM_IDLE_MS): once per idle period, it
 *     returns everything it can: empty abandoned slabs, empty slabs of every
 *     heap, free pages of partly used bitmap slabs (heap.c, slab.c), the pool,
 *     free medium pages, the large cache. Memory leaves RSS (MADV_DONTNEED or
 *     munmap), never lingering as LazyFree.
 * Thread magazines belong to their threads and stay as they are.
 *
 * Each tick's work runs under pass_lock, which hak_scavenger_pause takes to
 * hold the scavenger between two ticks: the leak checker's exit scan does,
 * so that no memory it may be reading is released by the scavenger
 * meanwhile (waiting at most 2 s for the tick under way). pass_lock comes
 * first in the lock order (internal.h): the scavenger takes it holding
 * nothing, every other lock inside it. */
#include <signal.h>
#include <time.h>

#include "internal.h"

static _Atomic int scavenger_started;
/* After a failed start, slow paths to skip before trying again. */
#define SCAVENGER_RETRY_INTERVAL 4096u
static _Atomic uint32_t retry_in;
/* The scavenger's stack comes from the OS layer (so that a failure to map it is
 * the allocator's out-of-memory case like any other, and tests can inject it).
 * It calls nothing deep: locks, list walks, madvise and munmap; one unit is
 * plenty. A forked child reuses it: the thread that ran on it does not exist
 * there. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SCAVENGER_STACK_BYTES (16 * HAK_UNIT_SIZE) /* sanitizer runtimes want about 1 MiB */
#else
#define SCAVENGER_STACK_BYTES HAK_UNIT_SIZE
#endif
static void *scavenger_stack;
static pthread_mutex_t pass_lock = PTHREAD_MUTEX_INITIALIZER;
/* A function of a layer above, called at every tick under pass_lock (set once:
 * the heap profiler's dumps asked for by its signal or timer, profile.c). */
static void (*_Atomic tick_hook)(void);
void hak_scavenger_on_tick(void (*fn)(void)) { atomic_store(&tick_hook, fn); }

/* Waits at most PAUSE_WAIT_S for the tick under way: a tick waits for heap
 * locks, and the caller may hold one (exit() from a signal handler that
 * interrupted the allocator). false: not paused (nothing to resume). */
#define PAUSE_WAIT_S 2
bool hak_scavenger_pause(void) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += PAUSE_WAIT_S;
  return pthread_mutex_timedlock(&pass_lock, &until) == 0;
}
void hak_scavenger_resume(void) { pthread_mutex_unlock(&pass_lock); }

/* The one sequence that gives everything free back to the OS (but the
 * calling thread's magazines, which hak_flush and hak_reset flush first): the
 * transfer cache's blocks to their slabs, empty abandoned slabs, every heap's
 * empty slabs and the free pages of partly used bitmap slabs, the pool, free
 * medium pages, the large cache, the calling thread's kept direct mappings.
 * The scavenger's idle release, hak_flush and hak_reset (api.c). */
void hak_release_free(void) {
  hak_xfer_drain();
  hak_abandoned_sweep();
  hak_heaps_scavenge(false);
  hak_pool_trim(0);
  hak_medium_purge();
  hak_large_cache_clear();
  hak_direct_cache_release();
}


static void *scavenger_main(void *arg) {
  (void)arg;
  const struct timespec tick = {0, 1000000000L / HAK_TICKS_PER_SECOND};
  uint64_t last = (uint64_t)-1;
  unsigned idle_ticks = 0, busy_ticks = 0;
  bool scavenged = false;
  for (;;) {
    nanosleep(&tick, NULL);
    pthread_mutex_lock(&pass_lock);
    hak_stats_poll();
    void (*hook)(void) = atomic_load_explicit(&tick_hook, memory_order_acquire);
    if (hook != NULL) hook();
    size_t released_before = atomic_load(&hak_os_counters.released_bytes);
    atomic_fetch_add_explicit(&hak_clock_tick, 1, memory_order_relaxed);
    uint64_t now = hak_heaps_activity() + hak_medium_activity() + hak_large_activity();
    if (now != last) { /* busy */
      last = now;
      idle_ticks = 0;
      scavenged = false;
      hak_heaps_scavenge(true);
      hak_large_decay();
      hak_pool_decay();
      if (++busy_ticks % HAK_TICKS_PER_SECOND == 0) hak_pool_trim(hak_pool_bytes() / 2);
    } else { /* idle */
      busy_ticks = 0;
      idle_ticks++;
      if (!scavenged && idle_ticks * (1000u / HAK_TICKS_PER_SECOND) >= (unsigned long)hak_option(HAK_OPT_IDLE_MS)) {
        hak_release_free();
        scavenged = true;
      }
    }
    size_t gave = atomic_load(&hak_os_counters.released_bytes) - released_before;
    if (gave != 0) {
      hak_stats_count_scavenge(gave);
    }
    pthread_mutex_unlock(&pass_lock);
  }
  return NULL;
}

void hak_scavenger_start(void) {
  if (hak_likely(atomic_load_explicit(&scavenger_started, memory_order_relaxed))) return;
  uint32_t wait = atomic_load_explicit(&retry_in, memory_order_relaxed);
  if (wait > 0) {
    atomic_store_explicit(&retry_in, wait - 1, memory_order_relaxed);
    return;
  }
  int expected = 0;
  if (!atomic_compare_exchange_strong(&scavenger_started, &expected, 1)) return;
  if (scavenger_stack == NULL) {
    scavenger_stack = hak_os_map_aligned(SCAVENGER_STACK_BYTES, HAK_UNIT_SIZE);
    if (scavenger_stack != NULL) hak_stats_add_metadata(scavenger_stack, SCAVENGER_STACK_BYTES);
  }
  pthread_attr_t attr;
  bool ok = scavenger_stack != NULL && pthread_attr_init(&attr) == 0;
  if (ok) {
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    ok = pthread_attr_setstack(&attr, scavenger_stack, SCAVENGER_STACK_BYTES) == 0;
    if (ok) {
      /* The scavenger takes no signals meant for the program. */
      sigset_t all, old;
      sigfillset(&all);
      pthread_sigmask(SIG_SETMASK, &all, &old);
      pthread_t t;
      bool busy = hak_track_busy; /* what pthread_create allocates is hakmem's own: not tracked */
      hak_track_busy = true;
      ok = pthread_create(&t, &attr, scavenger_main, NULL) == 0;
      hak_track_busy = busy;
      pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_attr_destroy(&attr);
  }
  if (!ok) { /* allocation goes on without it; try again later */
    atomic_store(&retry_in, SCAVENGER_RETRY_INTERVAL);
    atomic_store(&scavenger_started, 0);
  }
}

/* The child of fork has no scavenger thread: the next slow path starts one.
 * pass_lock may have been held by the parent's scavenger, which is not here. */
void hak_scavenger_fork_child(void) {
  pthread_mutex_init(&pass_lock, NULL);
  atomic_store(&scavenger_started, 0);
}
