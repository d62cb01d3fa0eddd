/* broken_malloc.c — a deliberately broken allocator for testing the tests:
 * preloaded over glibc, every 200th malloc returns the most recent block that
 * is still live and large enough (a block handed out twice). The stress
 * test, the fuzzer and the workloads' verification must catch it.
 *
 * Only the tests' own check may catch it, never glibc: a block handed out
 * twice is freed twice, and glibc's double-free checks would abort the
 * program first ("free(): double free detected in tcache 2", "malloc():
 * unaligned tcache chunk detected") — so the first free of such a block is
 * dropped, and only the last goes to glibc. The choice of the block and a
 * free of it exclude each other (a spin lock): in a threaded program another
 * thread's free could otherwise hand glibc a block that is handed out again
 * a moment later. */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#define DUPS 64 /* blocks handed out twice and not yet freed twice, at most */

static atomic_flag lock = ATOMIC_FLAG_INIT;
static unsigned long calls;
static void *last;
static size_t last_size;
static void *dup[DUPS]; /* handed out twice, freed at most once so far */
static bool dup_freed[DUPS];

static void take(void) {
  while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire)) {
  }
}
static void give(void) { atomic_flag_clear_explicit(&lock, memory_order_release); }

void *malloc(size_t n) {
  static void *(*real)(size_t);
  if (real == NULL) real = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
  take();
  if (calls++ % 200 == 199 && last != NULL && n <= last_size) {
    for (int i = 0; i < DUPS; i++)
      if (dup[i] == NULL) {
        void *p = dup[i] = last;
        dup_freed[i] = false;
        last = NULL; /* not handed out a third time */
        give();
        return p;
      }
  }
  give();
  void *p = real(n);
  take();
  last_size = n;
  last = p;
  give();
  return p;
}

void free(void *p) {
  static void (*real)(void *);
  if (real == NULL) real = (void (*)(void *))dlsym(RTLD_NEXT, "free");
  if (p == NULL) return;
  take();
  if (last == p) last = NULL;
  for (int i = 0; i < DUPS; i++)
    if (dup[i] == p) {
      if (!dup_freed[i]) { /* the first of its two frees: glibc never sees it */
        dup_freed[i] = true;
        give();
        return;
      }
      dup[i] = NULL; /* the second: the block goes back */
      break;
    }
  give();
  real(p);
}
