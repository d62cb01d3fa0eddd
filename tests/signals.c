/* signals.c — signal handlers that allocate, at any moment (tests/signals.sh).
 *
 *   signals [--seconds S] [--interval US] [--seed N]
 *
 * Two threads churn blocks of every tier (small, medium, large, aligned,
 * calloc'd, realloc'd across tiers, some handed to the other thread to
 * free) while a timer signal every --interval microseconds (50) lands on
 * either of them. Its handler allocates sizes the threads use and sizes they
 * never use, in every tier (malloc, calloc, memalign, realloc), writes each
 * block, checks them and frees them, the last allocated first: the rule of
 * README's "Signal handlers". The signal lands anywhere: in the program, in
 * hakmem's fast paths, inside its slow paths with their locks held, inside
 * the profiler's or leak checker's tracking (run it under HAKMEM_PROFILE or
 * HAKMEM_LEAKCHECK=1 too).
 *
 * Every block carries its size and a seed in its first 16 bytes and a
 * pattern from the seed after them and in its last 64 bytes; every block is
 * checked before it is freed or resized and at the end, so a block handed
 * out twice (to a thread and a handler, or to two threads) shows. After the
 * run: hak_validate() must find nothing wrong. A hang is the caller's to
 * catch (timeout). Prints the handler runs and hakmem's count of re-entrant
 * calls (allocations served without a lock, frees deferred); exit 0 when
 * every check passed, 1 on a corrupted block, 2 on bad usage.
 * Run under LD_PRELOAD of a hakmem library (the hak_ functions by dlsym). */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "hakmem.h"

#define SLOTS 512
#define SHARED 64
#define HANDLER_BLOCKS 9

static atomic_int failures;
static atomic_long handled;
static _Atomic(void *) shared[SHARED]; /* blocks handed between the threads */
static volatile sig_atomic_t stop;

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

static void fail(const char *what, const void *p, size_t size) {
  if (atomic_fetch_add(&failures, 1) >= 20) return; /* the first 20 are told */
  char msg[160];
  int n = snprintf(msg, sizeof msg, "signals: %s: block %p of %zu bytes\n", what, p, size);
  if (write(2, msg, (size_t)n) < 0) { /* nothing more to do */
  }
}

/* The pattern of block p: size and seed in its first 16 bytes, then bytes
 * from the seed up to 64 in, and in its last 64 bytes. */
static void fill(unsigned char *p, size_t size, uint64_t seed) {
  if (size < 16) return;
  memcpy(p, &size, 8);
  memcpy(p + 8, &seed, 8);
  size_t head = size < 64 ? size : 64, tail = size > 128 ? size - 64 : head;
  for (size_t i = 16; i < head; i++) p[i] = (unsigned char)(mix(seed + i) >> 56);
  for (size_t i = tail; i < size; i++) p[i] = (unsigned char)(mix(seed + i) >> 56);
}

static size_t check(const unsigned char *p, size_t want, const char *who) {
  size_t size;
  uint64_t seed;
  memcpy(&size, p, 8);
  memcpy(&seed, p + 8, 8);
  if (want != 0 && size != want) {
    fail(who, p, want);
    return want;
  }
  size_t head = size < 64 ? size : 64, tail = size > 128 ? size - 64 : head;
  for (size_t i = 16; i < head; i++)
    if (p[i] != (unsigned char)(mix(seed + i) >> 56)) {
      fail(who, p, size);
      return size;
    }
  for (size_t i = tail; i < size; i++)
    if (p[i] != (unsigned char)(mix(seed + i) >> 56)) {
      fail(who, p, size);
      return size;
    }
  return size;
}

/* ---- the handler ------------------------------------------------------------------ */
static _Atomic uint64_t handler_seq;

/* Sizes the threads use (24, 4000, 100000, 600000) and sizes they never use
 * (72, 20000 aligned to 4096, 300000, 4 MiB), each tier; a calloc; a realloc
 * from a small size into the medium tier. */
static void on_signal(int sig) {
  (void)sig;
  int saved = errno;
  static const size_t sizes[HANDLER_BLOCKS] = {24, 72, 4000, 100000, 300000, 600000, (size_t)4 << 20, 20000, 3000};
  void *b[HANDLER_BLOCKS];
  uint64_t base = mix(atomic_fetch_add(&handler_seq, 1) + 0x5151);
  for (int i = 0; i < HANDLER_BLOCKS; i++) {
    size_t size = sizes[i];
    if (i == 7) {
      b[i] = memalign(4096, size);
      if (b[i] != NULL && ((uintptr_t)b[i] & 4095) != 0) fail("handler: memalign(4096) misaligned", b[i], size);
    } else if (i == 8) {
      b[i] = calloc(3, 1000);
      for (size_t k = 0; b[i] != NULL && k < size; k++)
        if (((unsigned char *)b[i])[k] != 0) {
          fail("handler: calloc'd memory is not zero", b[i], size);
          break;
        }
    } else {
      b[i] = malloc(size);
    }
    if (b[i] == NULL) {
      fail("handler: out of memory", NULL, size);
      errno = saved;
      return;
    }
    fill(b[i], size, base + (uint64_t)i);
  }
  /* b[1] grows from 72 bytes into the medium tier: its first 64 bytes move with it. */
  void *g = realloc(b[1], 70000);
  if (g == NULL) fail("handler: realloc failed", b[1], 70000);
  else {
    b[1] = g;
    unsigned char want[72]; /* what the 72-byte block held, of which realloc keeps all */
    fill(want, 72, base + 1);
    if (memcmp(want, g, 72) != 0) fail("handler: realloc lost the block's bytes", g, 72);
    fill(g, 70000, base + 1);
  }
  for (int i = HANDLER_BLOCKS - 1; i >= 0; i--) {
    (void)check(b[i], i == 1 ? 70000 : sizes[i], "handler: its own block changed under it");
    free(b[i]);
  }
  atomic_fetch_add(&handled, 1);
  errno = saved;
}

/* ---- the threads ---------------------------------------------------------------------- */
typedef struct { void *p; } slot_t;

static size_t draw_size(uint64_t r) {
  unsigned k = (unsigned)(r % 100);
  r >>= 8;
  if (k < 60) return 16 + r % 1009;             /* small */
  if (k < 75) return 24;                         /* a size the handler uses too */
  if (k < 85) return 1024 + r % 31745;          /* larger small */
  if (k < 90) return 4000;
  if (k < 96) return 32769 + r % 480000;        /* medium */
  if (k < 98) return 100000;
  if (k < 99) return 600000;
  return ((size_t)512 << 10) + r % ((size_t)3 << 20); /* large */
}

static void *allocate(uint64_t r, size_t size) {
  unsigned k = (unsigned)(r >> 40) % 16;
  void *p = NULL;
  if (k == 0) {
    size_t align = (size_t)64 << ((r >> 20) % 11); /* 64 .. 64 KiB */
    if (posix_memalign(&p, align, size) != 0) return NULL;
    if (((uintptr_t)p & (align - 1)) != 0) fail("posix_memalign misaligned", p, size);
  } else if (k == 1) {
    p = calloc(1, size);
    size_t n = size < 4096 ? size : 4096;
    for (size_t i = 0; p != NULL && i < n; i++)
      if (((unsigned char *)p)[i] != 0) {
        fail("calloc'd memory is not zero", p, size);
        break;
      }
  } else {
    p = malloc(size);
  }
  return p;
}

typedef struct { uint64_t seed; long ops; } worker_t;
static double seconds = 1;
static struct timespec start;

static bool time_is_up(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 >= seconds;
}

static void *churn(void *arg) {
  worker_t *w = arg;
  slot_t *slot = calloc(SLOTS, sizeof *slot);
  if (slot == NULL) {
    fail("out of memory for the slots", NULL, 0);
    return NULL;
  }
  uint64_t s = w->seed;
  while (!stop) {
    if ((w->ops & 15) == 0 && time_is_up()) stop = 1;
    uint64_t r = mix(++s);
    slot_t *sl = &slot[r % SLOTS];
    if (sl->p != NULL) {
      (void)check(sl->p, 0, "a thread's block changed under it");
      unsigned k = (unsigned)(r >> 32) % 8;
      if (k == 0) { /* resize into any tier; the first 16 bytes move with it */
        size_t to = draw_size(mix(r));
        void *q = realloc(sl->p, to);
        if (q == NULL) fail("realloc failed", sl->p, to);
        else {
          fill(q, to, mix(r ^ 0xabcd));
          sl->p = q;
        }
      } else if (k == 1) { /* hand it to the other thread, take what it left */
        void *q = atomic_exchange(&shared[(r >> 16) % SHARED], sl->p);
        sl->p = NULL;
        if (q != NULL) {
          (void)check(q, 0, "a block handed over changed");
          free(q);
        }
      } else {
        free(sl->p);
        sl->p = NULL;
      }
    } else {
      size_t size = draw_size(r);
      void *p = allocate(mix(r + 1), size);
      if (p == NULL) fail("out of memory", NULL, size);
      else {
        fill(p, size, mix(r ^ 0x77));
        sl->p = p;
      }
    }
    w->ops++;
  }
  for (int i = 0; i < SLOTS; i++)
    if (slot[i].p != NULL) {
      (void)check(slot[i].p, 0, "a thread's block changed under it");
      free(slot[i].p);
    }
  free(slot);
  return NULL;
}

int main(int argc, char **argv) {
  long interval = 50;
  uint64_t seed = 1;
  for (int i = 1; i < argc; i++) {
    if (i + 1 < argc && strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[++i]);
    else if (i + 1 < argc && strcmp(argv[i], "--interval") == 0) interval = atol(argv[++i]);
    else if (i + 1 < argc && strcmp(argv[i], "--seed") == 0) seed = strtoull(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: signals [--seconds S] [--interval US] [--seed N]\n");
      return 2;
    }
  }
  if (seconds <= 0 || interval <= 0) {
    fprintf(stderr, "signals: --seconds and --interval must be positive\n");
    return 2;
  }
  void (*stats_get)(hak_stats_t *) = (void (*)(hak_stats_t *))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_stats_get");
  const char *(*validate)(void) = (const char *(*)(void))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_validate");
  if (stats_get == NULL || validate == NULL) {
    fprintf(stderr, "signals: hakmem is not preloaded (no hak_stats_get)\n");
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  worker_t w[2] = {{seed * 1000003u, 0}, {seed * 1000033u + 7, 0}};
  clock_gettime(CLOCK_MONOTONIC, &start);
  pthread_t t;
  if (pthread_create(&t, NULL, churn, &w[1]) != 0) {
    fprintf(stderr, "signals: cannot start a thread\n");
    return 2;
  }
  struct itimerval it = {{0, interval}, {0, interval}};
  setitimer(ITIMER_REAL, &it, NULL);
  churn(&w[0]);
  stop = 1;
  pthread_join(t, NULL);
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  for (int i = 0; i < SHARED; i++) {
    void *q = atomic_exchange(&shared[i], NULL);
    if (q != NULL) {
      (void)check(q, 0, "a block handed over changed");
      free(q);
    }
  }
  const char *err = validate();
  if (err != NULL) {
    fprintf(stderr, "signals: hak_validate: %s\n", err);
    atomic_fetch_add(&failures, 1);
  }
  hak_stats_t st;
  stats_get(&st);
  printf("signals: %ld handled, %ld operations, %llu re-entrant allocations, %llu deferred frees, %d failures\n",
         atomic_load(&handled), w[0].ops + w[1].ops, st.total.reentrant_allocs, st.total.deferred_frees,
         atomic_load(&failures));
  return atomic_load(&failures) ? 1 : 0;
}
