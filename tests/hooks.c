/* hooks.c — allocation hooks (hak_hook_add / hak_hook_remove), run under
 * LD_PRELOAD of a hakmem build: every kind of call is reported with its
 * arguments, before and after; several hooks run in registration order; an
 * allocation made inside a hook is not reported; adding and removing while
 * other threads allocate is safe, calls that start after hak_hook_add
 * returns are reported, and none after hak_hook_remove returns. */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hakmem.h"

static int (*hook_add)(const hak_hooks_t *);
static int (*hook_remove)(int);

/* ---- a recording hook ---------------------------------------------------------- */
typedef struct rec_s {
  const char *what;
  void *p, *q;
  size_t size, align;
} rec_t;

#define LOG_MAX 64
/* volatile: glibc declares malloc and free as leaf functions (they call back
 * into no other unit), so without it the compiler may move these stores
 * across the very calls whose hooks read them. */
static _Thread_local volatile rec_t log_[LOG_MAX];
static _Thread_local volatile int log_n;
static _Thread_local volatile int log_on;

static void put(const char *what, void *p, void *q, size_t size, size_t align) {
  if (!log_on || log_n >= LOG_MAX) return;
  int i = log_n;
  log_[i].what = what;
  log_[i].p = p;
  log_[i].q = q;
  log_[i].size = size;
  log_[i].align = align;
  log_n = i + 1;
}
static void r_malloc_before(size_t size, void *arg) { (void)arg; put("malloc_before", NULL, NULL, size, 0); }
static void r_malloc_after(void *p, size_t size, void *arg) { (void)arg; put("malloc_after", p, NULL, size, 0); }
static void r_free_before(void *p, void *arg) { (void)arg; put("free_before", p, NULL, 0, 0); }
static void r_free_after(void *p, void *arg) { (void)arg; put("free_after", p, NULL, 0, 0); }
static void r_realloc_before(void *p, size_t size, void *arg) { (void)arg; put("realloc_before", p, NULL, size, 0); }
static void r_realloc_after(void *old, void *p, size_t size, void *arg) { (void)arg; put("realloc_after", old, p, size, 0); }
static void r_aligned_before(size_t align, size_t size, void *arg) { (void)arg; put("aligned_before", NULL, NULL, size, align); }
static void r_aligned_after(void *p, size_t align, size_t size, void *arg) { (void)arg; put("aligned_after", p, NULL, size, align); }

static int logged(int i, const char *what, void *p, size_t size) {
  return i < log_n && strcmp((const char *)log_[i].what, what) == 0 && (p == NULL || log_[i].p == p) &&
         (size == (size_t)-1 || log_[i].size == size);
}

static void test_events(void) {
  hak_hooks_t h = {r_malloc_before, r_malloc_after, r_free_before, r_free_after, r_realloc_before,
                   r_realloc_after, r_aligned_before, r_aligned_after, NULL};
  int id = hook_add(&h);
  CHECK(id >= 0, "hak_hook_add returns an id (%d)", id);
  size_t sizes[] = {24, 5000, 100000, 3u << 20}; /* small, larger small, medium, large */
  for (unsigned k = 0; k < 4; k++) {
    log_n = 0;
    log_on = 1;
    void *p = malloc(sizes[k]);
    free(p);
    log_on = 0;
    CHECK(log_n == 4 && logged(0, "malloc_before", NULL, sizes[k]) && logged(1, "malloc_after", p, sizes[k]) &&
              logged(2, "free_before", p, (size_t)-1) && logged(3, "free_after", p, (size_t)-1),
          "malloc(%zu) and free: 4 events in order (got %d)", sizes[k], log_n);
  }
  log_n = 0;
  log_on = 1;
  void *c = calloc(10, 30);
  void *r = realloc(c, 5000);
  void *a = NULL;
  int rc = posix_memalign(&a, 4096, 300);
  void *v = aligned_alloc(64, 128);
  free(r);
  free(a);
  free(v);
  log_on = 0;
  CHECK(log_n == 14, "calloc, realloc, posix_memalign, aligned_alloc, 3 frees: 14 events (got %d)", log_n);
  CHECK(logged(0, "malloc_before", NULL, 300) && logged(1, "malloc_after", c, 300), "calloc reports as malloc of 300");
  CHECK(logged(2, "realloc_before", c, 5000) && logged(3, "realloc_after", c, 5000) && log_[3].q == r,
        "realloc reports old and new pointer and size (and not its inner malloc and free)");
  CHECK(rc == 0 && logged(4, "aligned_before", NULL, 300) && log_[4].align == 4096 && logged(5, "aligned_after", a, 300),
        "posix_memalign reports as aligned");
  CHECK(logged(6, "aligned_before", NULL, 128) && log_[6].align == 64 && logged(7, "aligned_after", v, 128),
        "aligned_alloc reports as aligned");
  CHECK(logged(8, "free_before", r, (size_t)-1) && logged(12, "free_before", v, (size_t)-1), "the frees");
  /* The other aligned functions and reallocarray. */
  long page = sysconf(_SC_PAGESIZE);
  log_n = 0;
  log_on = 1;
  void *m = memalign(32, 200);
  static volatile uintptr_t m_addr; /* compared after reallocarray, never dereferenced */
  m_addr = (uintptr_t)m;
  void *m_was = (void *)m_addr;
  void *va = valloc(300);
  void *pv = pvalloc(100);
  void *ra = reallocarray(m, 10, 100);
  free(va);
  free(pv);
  free(ra);
  log_on = 0;
  CHECK(log_n == 14, "memalign, valloc, pvalloc, reallocarray, 3 frees: 14 events (got %d)", log_n);
  CHECK(m_was != NULL && logged(0, "aligned_before", NULL, 200) && log_[0].align == 32 &&
            logged(1, "aligned_after", m_was, 200) && log_[1].align == 32,
        "memalign(32, 200) reports as aligned (32, 200)");
  CHECK(va != NULL && logged(2, "aligned_before", NULL, 300) && log_[2].align == (size_t)page &&
            logged(3, "aligned_after", va, 300) && log_[3].align == (size_t)page,
        "valloc(300) reports as aligned to the page (%ld), 300 bytes", page);
  CHECK(pv != NULL && logged(4, "aligned_before", NULL, (size_t)page) && log_[4].align == (size_t)page &&
            logged(5, "aligned_after", pv, (size_t)page),
        "pvalloc(100) reports as aligned to the page, its size rounded up to the page (%ld)", page);
  CHECK(ra != NULL && logged(6, "realloc_before", m_was, 1000) && logged(7, "realloc_after", m_was, 1000) && log_[7].q == ra,
        "reallocarray(p, 10, 100) reports as realloc of 1000 bytes (old and new pointer; not its inner malloc and "
        "free)");
  CHECK(logged(8, "free_before", va, (size_t)-1) && logged(9, "free_after", va, (size_t)-1) &&
            logged(10, "free_before", pv, (size_t)-1) && logged(12, "free_before", ra, (size_t)-1),
        "the frees");
  CHECK(hook_remove(id) == 0, "hak_hook_remove");
  log_n = 0;
  log_on = 1;
  free(malloc(10));
  log_on = 0;
  CHECK(log_n == 0, "no events once the hook is removed (got %d)", log_n);
  CHECK(hook_remove(id) == -1 && hook_remove(99) == -1, "removing an unknown id fails");
}

/* ---- order, and allocations inside a hook --------------------------------------- */
static _Thread_local volatile char order[16];
static _Thread_local volatile int order_n;
static void a_before(size_t size, void *arg) {
  (void)size;
  int n = order_n;
  if (n < 15) {
    order[n] = *(const char *)arg;
    order_n = n + 1;
  }
  void *inner = malloc(77); /* must not be reported */
  free(inner);
}

static void test_order_and_recursion(void) {
  static const char A = 'A', B = 'B', C = 'C';
  hak_hooks_t ha = {.malloc_before = a_before, .arg = (void *)&A};
  hak_hooks_t hb = {.malloc_before = a_before, .arg = (void *)&B};
  hak_hooks_t hc = {.malloc_before = a_before, .arg = (void *)&C};
  int ia = hook_add(&ha), ib = hook_add(&hb), ic = hook_add(&hc);
  order_n = 0;
  void *p = malloc(50);
  order[order_n] = 0;
  CHECK(strcmp((const char *)order, "ABC") == 0, "three hooks run in registration order, once each (got '%s')",
        (const char *)order);
  free(p);
  hook_remove(ib);
  order_n = 0;
  p = malloc(50);
  order[order_n] = 0;
  CHECK(strcmp((const char *)order, "AC") == 0, "after removing the middle one: '%s'", (const char *)order);
  free(p);
  /* A hook added after a removal runs after those added before it, not in
   * the place the removed one had. */
  hook_remove(ia);
  ib = hook_add(&hb);
  order_n = 0;
  p = malloc(50);
  order[order_n] = 0;
  CHECK(strcmp((const char *)order, "CB") == 0, "a hook added after removals runs last: '%s'", (const char *)order);
  free(p);
  CHECK(ib != ia && ib != ic, "a new hook gets a new id (%d; the others %d, %d)", ib, ia, ic);
  CHECK(hook_remove(ia) == -1, "a removed id stays unknown");
  hook_remove(ib);
  hook_remove(ic);
  int ids[17], n = 0;
  while (n < 17 && (ids[n] = hook_add(&ha)) >= 0) n++;
  CHECK(n == 16, "16 hooks can be installed at once, and no more (%d)", n);
  while (n > 0) hook_remove(ids[--n]);
}

/* ---- threads -------------------------------------------------------------------- */
#define THREADS 4
static _Atomic unsigned long counted[THREADS];
static _Thread_local int my_id = -1;
static void count_before(size_t size, void *arg) {
  (void)size;
  (void)arg;
  if (my_id >= 0) atomic_fetch_add_explicit(&counted[my_id], 1, memory_order_relaxed);
}
static atomic_int stop, phase;
static _Atomic unsigned long done_after[THREADS];

static void *churn(void *arg) {
  my_id = (int)(uintptr_t)arg;
  void *keep[32] = {0};
  unsigned long i = 0;
  while (!atomic_load(&stop)) {
    free(keep[i % 32]);
    keep[i % 32] = malloc(16 + (i * 37) % 3000);
    i++;
    if (atomic_load(&phase) == 1 && atomic_load(&done_after[my_id]) == 0) {
      /* phase 1 began after hak_hook_add returned: the next 1000 calls must be reported */
      unsigned long before = atomic_load(&counted[my_id]);
      for (int k = 0; k < 1000; k++) free(malloc(40));
      atomic_store(&done_after[my_id], atomic_load(&counted[my_id]) - before);
    }
  }
  for (int k = 0; k < 32; k++) free(keep[k]);
  return NULL;
}

static void test_threads(void) {
  pthread_t t[THREADS];
  for (uintptr_t i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, churn, (void *)i);
  usleep(20000);
  hak_hooks_t hc = {.malloc_before = count_before};
  int bad = 0;
  for (int round = 0; round < 50; round++) { /* add and remove while the threads allocate */
    int id = hook_add(&hc);
    if (id < 0) bad++;
    usleep(200);
    if (hook_remove(id) != 0) bad++;
  }
  CHECK(bad == 0, "50 adds and removes while 4 threads allocate");
  int id = hook_add(&hc);
  atomic_store(&phase, 1);
  for (int w = 0; w < 2000; w++) {
    int all = 1;
    for (int i = 0; i < THREADS; i++) all &= atomic_load(&done_after[i]) != 0;
    if (all) break;
    usleep(1000);
  }
  for (int i = 0; i < THREADS; i++)
    CHECK(atomic_load(&done_after[i]) == 1000, "thread %d: its 1000 mallocs after hak_hook_add all reported (%lu)", i,
          atomic_load(&done_after[i]));
  hook_remove(id);
  unsigned long frozen[THREADS];
  for (int i = 0; i < THREADS; i++) frozen[i] = atomic_load(&counted[i]);
  usleep(20000); /* the threads go on allocating */
  int changed = 0;
  for (int i = 0; i < THREADS; i++) changed += atomic_load(&counted[i]) != frozen[i];
  CHECK(changed == 0, "no hook call after hak_hook_remove returned (%d threads still counted)", changed);
  atomic_store(&stop, 1);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
}

int main(void) {
  hook_add = (int (*)(const hak_hooks_t *))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_hook_add");
  hook_remove = (int (*)(int))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_hook_remove");
  CHECK(hook_add != NULL && hook_remove != NULL, "hakmem is preloaded (hak_hook_add found)");
  if (hook_add == NULL || hook_remove == NULL) return check_report("hooks");
  test_events();
  test_order_and_recursion();
  test_threads();
  return check_report("hooks");
}
