/* broken_malloc.c — a deliberately broken allocator for testing the tests:
 * preloaded over glibc, every 200th malloc returns the most recent block that
 * is still live and large enough (a block handed out twice). The stress test
 * must catch it. */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdlib.h>

static _Atomic unsigned long calls;
static void *_Atomic last;
static _Atomic size_t last_size;

void *malloc(size_t n) {
  static void *(*real)(size_t);
  if (real == NULL) real = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
  unsigned long k = atomic_fetch_add(&calls, 1);
  void *prev = atomic_load(&last);
  if (k % 200 == 199 && prev != NULL && n <= atomic_load(&last_size)) return prev;
  void *p = real(n);
  atomic_store(&last_size, n);
  atomic_store(&last, p);
  return p;
}

void free(void *p) {
  static void (*real)(void *);
  if (real == NULL) real = (void (*)(void *))dlsym(RTLD_NEXT, "free");
  void *expected = p;
  atomic_compare_exchange_strong(&last, &expected, NULL);
  real(p);
}
