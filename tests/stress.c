/* stress.c — multi-threaded allocator stress with corruption detection.
 *
 * Worker threads allocate blocks of random sizes (1 B to --max-size, mostly
 * small), fill every byte with a pattern derived from a unique block id, and
 * check the whole pattern before freeing. About a quarter of the frees are
 * handed to another thread through a shared exchange, so blocks cross threads
 * all the time; workers also realloc, calloc (checking zeroes) and allocate
 * aligned. Workers end and new ones start throughout the run, leaving blocks
 * in the exchange that outlive the thread that allocated them. A block handed
 * out twice, or overwritten by the allocator, breaks a pattern: the program
 * reports it and exits 1. With --validate, hakmem's validators then walk
 * every structure (make test runs it with 100 threads at once). With
 * --stats, one more thread reads hakmem's statistics (hak_stats_get, and
 * hak_stats_print into /dev/null) and calls hak_reset over and over while
 * the workers run, which must disturb no block.
 *
 * Built two ways: plain (run under LD_PRELOAD of any malloc) and with
 * -DSTRESS_PREFIX, calling hakmem's hak_ entry points directly, for the
 * ThreadSanitizer and UBSan builds. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

#ifdef STRESS_PREFIX
#include "hakmem.h"
#define MALLOC hak_malloc
#define FREE hak_free
#define CALLOC hak_calloc
#define REALLOC hak_realloc
#define POSIX_MEMALIGN hak_posix_memalign
#else
#define MALLOC malloc
#define FREE free
#define CALLOC calloc
#define REALLOC realloc
#define POSIX_MEMALIGN posix_memalign
#endif

typedef struct block_s {
  unsigned char *p;
  size_t size;
  uint64_t id;
  unsigned tid; /* the worker that allocated it */
} block_t;

static unsigned opt_threads = 4, opt_workers = 16, opt_slots = 2000, opt_cross = 25, opt_validate, opt_stats;
static unsigned long opt_ops = 50000;
static size_t opt_max = 4u << 20;
static unsigned long long opt_seed = 1;

static _Atomic uint64_t next_id = 1;
static _Atomic unsigned long failures, total_ops, cross_frees, frees, remote_frees;
static _Thread_local unsigned my_tid; /* worker number; 0 is the main thread */

#define EXCHANGE 1024
static pthread_mutex_t xlock = PTHREAD_MUTEX_INITIALIZER;
static block_t exchange[EXCHANGE];
static unsigned xcount;

#define rnd test_rand

/* The pattern: 8-byte words id*K ^ offset, little-endian, so that byte i of a
 * block does not depend on the block's size (realloc keeps a prefix). */
static inline uint64_t word(uint64_t id, size_t i) { return id * 0x9e3779b97f4a7c15ull ^ i; }
static inline unsigned char pat(uint64_t id, size_t i) {
  return (unsigned char)(word(id, i & ~(size_t)7) >> (8 * (i & 7)));
}

static void fill(const block_t *b) {
  size_t i = 0;
  for (; i + 8 <= b->size; i += 8) {
    uint64_t w = word(b->id, i);
    memcpy(b->p + i, &w, 8);
  }
  for (; i < b->size; i++) b->p[i] = pat(b->id, i);
}

/* Checks the first n bytes of b's pattern. */
static int intact(const block_t *b, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n && i + 8 <= b->size; i += 8) {
    uint64_t w;
    memcpy(&w, b->p + i, 8);
    if (w != word(b->id, i)) goto bad;
  }
  for (; i < n; i++)
    if (b->p[i] != pat(b->id, i)) goto bad;
  return 1;
bad:
  fprintf(stderr, "stress: block %p (id %llu, %zu bytes) corrupted at byte %zu\n", (void *)b->p,
          (unsigned long long)b->id, b->size, i);
  atomic_fetch_add(&failures, 1);
  return 0;
}

static size_t random_size(uint64_t *s) {
  uint64_t r = rnd(s) % 100;
  size_t max = r < 90 ? 1024 : r < 98 ? 65536 : opt_max;
  if (max > opt_max) max = opt_max;
  return 1 + rnd(s) % max;
}

static void release(block_t *b) {
  if (intact(b, b->size)) FREE(b->p);
  b->p = NULL;
  atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
  if (b->tid != my_tid) atomic_fetch_add_explicit(&remote_frees, 1, memory_order_relaxed);
}

/* Hands b to whichever thread takes it next; false when the exchange is full. */
static int deposit(block_t *b) {
  pthread_mutex_lock(&xlock);
  int ok = xcount < EXCHANGE;
  if (ok) exchange[xcount++] = *b;
  pthread_mutex_unlock(&xlock);
  if (ok) b->p = NULL;
  return ok;
}

/* Takes a block another thread allocated, searching from a random place of
 * the exchange (a stack would mostly give a thread back its own block). */
static int withdraw(block_t *out, uint64_t r) {
  pthread_mutex_lock(&xlock);
  int ok = 0;
  for (unsigned k = 0; k < xcount && !ok; k++) {
    unsigned i = (unsigned)((r + k) % xcount);
    if (exchange[i].tid == my_tid) continue;
    *out = exchange[i];
    exchange[i] = exchange[--xcount];
    ok = 1;
  }
  pthread_mutex_unlock(&xlock);
  return ok;
}

static void new_block(block_t *b, uint64_t *s) {
  size_t n = random_size(s);
  uint64_t kind = rnd(s) % 16;
  b->id = atomic_fetch_add(&next_id, 1);
  b->size = n;
  b->tid = my_tid;
  if (kind == 0) {
    b->p = CALLOC(1, n);
    if (b->p != NULL)
      for (size_t i = 0; i < n; i++)
        if (b->p[i] != 0) {
          fprintf(stderr, "stress: calloc(%zu) byte %zu is not zero\n", n, i);
          atomic_fetch_add(&failures, 1);
          break;
        }
  } else if (kind == 1) {
    size_t align = (size_t)8 << (rnd(s) % 10); /* 8 .. 4096 */
    void *p = NULL;
    if (POSIX_MEMALIGN(&p, align, n) != 0) p = NULL;
    if (p != NULL && ((uintptr_t)p & (align - 1)) != 0) {
      fprintf(stderr, "stress: posix_memalign(%zu) gave %p\n", align, p);
      atomic_fetch_add(&failures, 1);
    }
    b->p = p;
  } else {
    b->p = MALLOC(n);
  }
  if (b->p == NULL) {
    fprintf(stderr, "stress: allocation of %zu bytes failed\n", n);
    atomic_fetch_add(&failures, 1);
    return;
  }
  fill(b);
}

static void *worker(void *arg) {
  my_tid = (unsigned)(uintptr_t)arg + 1;
  uint64_t s = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + opt_seed;
  block_t *slots = CALLOC(opt_slots, sizeof(block_t));
  unsigned long ops = 0;
  for (unsigned long i = 0; i < opt_ops; i++) {
    block_t *b = &slots[rnd(&s) % opt_slots];
    uint64_t r = rnd(&s) % 16;
    if (b->p == NULL) {
      new_block(b, &s);
    } else if (rnd(&s) % 100 < opt_cross) {
      if (!deposit(b)) release(b);
      atomic_fetch_add_explicit(&cross_frees, 1, memory_order_relaxed);
    } else if (r < 1) {
      size_t n = random_size(&s);
      if (intact(b, b->size)) {
        unsigned char *q = REALLOC(b->p, n);
        if (q == NULL) {
          fprintf(stderr, "stress: realloc to %zu failed\n", n);
          atomic_fetch_add(&failures, 1);
        } else {
          block_t nb = {q, n, b->id, b->tid};
          intact(&nb, n < b->size ? n : b->size);
          *b = nb;
          fill(b);
        }
      }
    } else {
      release(b);
    }
    block_t x;
    if (rnd(&s) % 100 < opt_cross && withdraw(&x, rnd(&s))) release(&x);
    ops++;
  }
  /* Leave about half of the live blocks to other threads. */
  for (unsigned i = 0; i < opt_slots; i++)
    if (slots[i].p != NULL && (i % 2 == 0 || !deposit(&slots[i]))) release(&slots[i]);
  FREE(slots);
  atomic_fetch_add(&total_ops, ops);
  return NULL;
}

/* hakmem's validators over every heap, slab, SuperSlab, medium chunk and the
 * large cache, once every worker is gone (hak_validate needs other threads
 * quiet). Under LD_PRELOAD, found with dlsym. */
static void validate(void) {
#ifdef STRESS_PREFIX
  const char *(*fn)(void) = hak_validate;
#else
  const char *(*fn)(void) = (const char *(*)(void))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_validate");
#endif
  const char *err = fn != NULL ? fn() : "hak_validate is not there (is hakmem preloaded?)";
  if (err != NULL) {
    fprintf(stderr, "stress: validation: %s\n", err);
    atomic_fetch_add(&failures, 1);
  } else {
    printf("stress: hak_validate: every heap, magazine, slab, SuperSlab, medium chunk and the large cache sound\n");
  }
}

/* --stats: statistics and hak_reset from a thread of its own until the
 * workers are done. Under LD_PRELOAD, found with dlsym. */
static _Atomic int workers_done;
static unsigned long stats_calls, resets;
static void *stats_thread(void *arg) {
  (void)arg;
#ifdef STRESS_PREFIX
  void (*get)(hak_stats_t *) = hak_stats_get;
  void (*print)(FILE *, int) = hak_stats_print;
  size_t (*reset)(void) = hak_reset;
#else
  void (*get)(void *) = (void (*)(void *))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_stats_get");
  void (*print)(FILE *, int) = (void (*)(FILE *, int))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_stats_print");
  size_t (*reset)(void) = (size_t(*)(void))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_reset");
#endif
  if (get == NULL || print == NULL || reset == NULL) {
    fprintf(stderr, "stress: --stats: hak_stats_get, hak_stats_print or hak_reset is not there (is hakmem preloaded?)\n");
    atomic_fetch_add(&failures, 1);
    return NULL;
  }
  static _Alignas(64) unsigned char st[1 << 16]; /* a hak_stats_t (not on this thread's stack) */
#ifdef STRESS_PREFIX
  _Static_assert(sizeof(hak_stats_t) <= sizeof st, "room for the statistics");
#endif
  FILE *null = fopen("/dev/null", "w");
  while (!atomic_load(&workers_done)) {
    get((void *)st);
    stats_calls++;
    if (stats_calls % 8 == 0 && null != NULL) print(null, (int)(stats_calls / 8 % 2));
    if (stats_calls % 4 == 0) {
      reset();
      resets++;
    }
  }
  if (null != NULL) fclose(null);
  return NULL;
}

static int parse(const char *arg, const char *name, unsigned long long min, unsigned long long max,
                 unsigned long long *out) {
  size_t len = strlen(name);
  if (strncmp(arg, name, len) != 0 || arg[len] != '=') return 0;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(arg + len + 1, &end, 10);
  if (errno || *end || end == arg + len + 1 || v < min || v > max) {
    fprintf(stderr, "stress: %s must be a number in [%llu, %llu]\n", name, min, max);
    exit(2);
  }
  *out = v;
  return 1;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    unsigned long long v;
    if (parse(argv[i], "--threads", 1, 256, &v)) opt_threads = (unsigned)v;
    else if (parse(argv[i], "--workers", 1, 100000, &v)) opt_workers = (unsigned)v;
    else if (parse(argv[i], "--ops", 1, 1000000000, &v)) opt_ops = (unsigned long)v;
    else if (parse(argv[i], "--slots", 1, 1000000, &v)) opt_slots = (unsigned)v;
    else if (parse(argv[i], "--max-size", 16, 1ull << 30, &v)) opt_max = (size_t)v;
    else if (parse(argv[i], "--seed", 0, ~0ull, &v)) opt_seed = v;
    else if (parse(argv[i], "--cross-percent", 0, 100, &v)) opt_cross = (unsigned)v;
    else if (strcmp(argv[i], "--validate") == 0) opt_validate = 1;
    else if (strcmp(argv[i], "--stats") == 0) opt_stats = 1;
    else {
      fprintf(stderr, "usage: stress [--threads=N] [--workers=N] [--ops=N] [--slots=N] [--max-size=B] [--seed=S]\n"
                      "              [--cross-percent=P] [--validate] [--stats]\n"
                      "  %u threads run at once; %u workers in all, each doing --ops=%lu steps; P%% of the\n"
                      "  frees of a live block are handed to another thread; --validate: at the end, hakmem's\n"
                      "  validators walk every structure (hak_validate); --stats: another thread reads the\n"
                      "  statistics and calls hak_reset throughout\n",
              opt_threads, opt_workers, opt_ops);
      return 2;
    }
  }
  if (opt_workers < opt_threads) opt_workers = opt_threads;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_t *t = CALLOC(opt_threads, sizeof(pthread_t)), stats_tid;
  if (opt_stats) pthread_create(&stats_tid, NULL, stats_thread, NULL);
  unsigned started = 0;
  for (; started < opt_threads; started++) pthread_create(&t[started], NULL, worker, (void *)(uintptr_t)started);
  /* Replace workers as they end, so threads start and exit mid-run. */
  for (unsigned k = 0; started < opt_workers; k = (k + 1) % opt_threads, started++) {
    pthread_join(t[k], NULL);
    pthread_create(&t[k], NULL, worker, (void *)(uintptr_t)started);
  }
  for (unsigned k = 0; k < opt_threads; k++) pthread_join(t[k], NULL);
  if (opt_stats) {
    atomic_store(&workers_done, 1);
    pthread_join(stats_tid, NULL);
    if (resets == 0) {
      fprintf(stderr, "stress: --stats: the workers ended before hak_reset was called once\n");
      atomic_fetch_add(&failures, 1);
    }
    printf("stress: --stats: %lu statistics queries and %lu hak_reset calls while the workers ran\n", stats_calls,
           resets);
  }
  block_t x;
  while (withdraw(&x, 0)) release(&x);
  FREE(t);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  if (opt_validate) validate();
  printf("stress: %u workers (%u at once), %lu steps, %lu of %lu frees (%.0f%%) by another thread, %.2f s, "
         "%lu failures\n",
         opt_workers, opt_threads, (unsigned long)total_ops, (unsigned long)remote_frees, (unsigned long)frees,
         frees ? 100.0 * (double)remote_frees / (double)frees : 0.0, secs, (unsigned long)failures);
  return failures ? 1 : 0;
}
