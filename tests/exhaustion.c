/* exhaustion.c — running out of memory, under LD_PRELOAD of a hakmem build.
 *
 *   huge       requests no mapping could hold (SIZE_MAX, PTRDIFF_MAX + 1,
 *              overflowing calloc and reallocarray, huge aligned requests,
 *              realloc to SIZE_MAX) fail at once with NULL and ENOMEM
 *              (posix_memalign: ENOMEM), and map nothing: hakmem's mmap count
 *              and mapped bytes do not change.
 *   rlimit     in a child with RLIMIT_AS lowered to 256 MiB above what it uses,
 *              two threads allocate with every function of the API, sizes
 *              from 16 B to 4 MiB, until the calls fail: every failure is NULL
 *              with ENOMEM, every success a usable block (pattern written and
 *              checked); then half is freed and allocation succeeds again,
 *              runs out again, and after everything is freed a fresh set of
 *              blocks of every tier can be had. A 60 s alarm catches a hang.
 * Usage: exhaustion (exit 0 when every check passed). */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "hakmem.h"

static void (*stats_get)(hak_stats_t *);

static void test_huge(void) {
  hak_stats_t before, after;
  char *keep = malloc(100); /* the thread's heap, a slab, the scavenger: set up before counting */
  memset(keep, 7, 100);
  stats_get(&before);
  void *p = (void *)1;
  int bad = 0;
#define HUGE(expr)                                                                 \
  do {                                                                             \
    errno = 0;                                                                     \
    void *r = (expr);                                                              \
    if (r != NULL || errno != ENOMEM) {                                            \
      fprintf(stderr, "exhaustion: %s gave %p, errno %d\n", #expr, r, errno);     \
      bad++;                                                                       \
    }                                                                              \
  } while (0)
  HUGE(malloc(SIZE_MAX));
  HUGE(malloc(SIZE_MAX - 4096));
  HUGE(malloc((size_t)PTRDIFF_MAX + 1));
  HUGE(malloc((size_t)PTRDIFF_MAX));
  HUGE(calloc(SIZE_MAX / 2, 3));
  HUGE(calloc((size_t)1 << 32, (size_t)1 << 32));
  HUGE(calloc(1, SIZE_MAX));
  HUGE(reallocarray(NULL, SIZE_MAX / 4, 8));
  HUGE(aligned_alloc(64, SIZE_MAX - 10));
  HUGE(aligned_alloc(1u << 20, (size_t)PTRDIFF_MAX + 1));
  HUGE(memalign(4096, SIZE_MAX));
  HUGE(valloc(SIZE_MAX));
  HUGE(pvalloc(SIZE_MAX));
  HUGE(pvalloc(SIZE_MAX - 4095));
  HUGE(realloc(keep, SIZE_MAX));
  HUGE(realloc(keep, (size_t)PTRDIFF_MAX + 1));
  HUGE(reallocarray(keep, SIZE_MAX / 2, 3));
  CHECK(keep[0] == 7 && keep[99] == 7, "a failed realloc leaves the block as it was");
  int rc = posix_memalign(&p, 64, SIZE_MAX);
  if (rc != ENOMEM || p != (void *)1) bad++;
  rc = posix_memalign(&p, 1u << 20, (size_t)PTRDIFF_MAX + 1);
  if (rc != ENOMEM || p != (void *)1) bad++;
  CHECK(bad == 0, "requests beyond any mapping fail with ENOMEM (%d did not)", bad);
  stats_get(&after);
  free(keep);
  CHECK(after.total.os_maps == before.total.os_maps && after.mapped_bytes == before.mapped_bytes,
        "huge requests map nothing (mmaps %llu -> %llu, mapped %zu -> %zu)", before.total.os_maps,
        after.total.os_maps, before.mapped_bytes, after.mapped_bytes);
}

#define SLOTS 200000
typedef struct worker_s {
  uint64_t seed;
  void *p[SLOTS];
  size_t n[SLOTS];
  int count;
  long failures, bad_errno, corrupt, successes;
  long first_failures, first_successes; /* at the end of the first round */
} worker_t;

static size_t pick_size(uint64_t *s) {
  uint64_t r = test_rand(s);
  switch (r % 8) {
  case 0: return 40000 + (r >> 8) % 400000;           /* medium */
  case 1: return (1u << 20) + (r >> 8) % (3u << 20);  /* large */
  default: return 16 + (r >> 8) % 3000;               /* small */
  }
}

/* One allocation with the k-th function of the API; NULL on failure, with the
 * failure checked. */
static void *alloc_with(worker_t *w, unsigned k, size_t n) {
  void *p = NULL;
  errno = 0;
  int err;
  switch (k % 8) {
  case 0: p = malloc(n); break;
  case 1: p = calloc(1, n); break;
  case 2: p = realloc(NULL, n); break;
  case 3: p = reallocarray(NULL, 1, n); break;
  case 4:
    err = posix_memalign(&p, 256, n);
    if (err != 0) {
      if (err != ENOMEM) w->bad_errno++;
      w->failures++;
      return NULL;
    }
    break;
  case 5: p = aligned_alloc(4096, n); break;
  case 6: p = memalign(64, n); break;
  default: p = valloc(n); break;
  }
  if (p == NULL) {
    w->failures++;
    if (errno != ENOMEM) w->bad_errno++;
    return NULL;
  }
  w->successes++;
  return p;
}

static void fill(void *p, size_t n, int i) {
  memset(p, i * 7 + 3, n < 256 ? n : 256);
  if (n > 256) memset((char *)p + n - 64, i * 7 + 3, 64);
}
static int intact(const void *p, size_t n, int i) {
  const unsigned char *b = p;
  size_t head = n < 256 ? n : 256;
  for (size_t k = 0; k < head; k++)
    if (b[k] != (unsigned char)(i * 7 + 3)) return 0;
  if (n > 256)
    for (size_t k = n - 64; k < n; k++)
      if (b[k] != (unsigned char)(i * 7 + 3)) return 0;
  return 1;
}

/* Allocates until 200 calls in a row have failed (or the slots are full). */
static void exhaust(worker_t *w) {
  int fails_in_row = 0;
  unsigned k = 0;
  while (fails_in_row < 200 && w->count < SLOTS) {
    size_t n = pick_size(&w->seed);
    void *p = alloc_with(w, k++, n);
    if (p == NULL) {
      fails_in_row++;
      continue;
    }
    fails_in_row = 0;
    fill(p, n, w->count);
    w->p[w->count] = p;
    w->n[w->count] = n;
    w->count++;
  }
}

static void check_and_free(worker_t *w, int from) {
  for (int i = from; i < w->count; i++) {
    if (!intact(w->p[i], w->n[i], i)) w->corrupt++;
    free(w->p[i]);
  }
  w->count = from;
}

/* Both threads run out, both free half, both allocate again: the second
 * round must succeed at first (recovery) and run out again. */
static pthread_barrier_t phase, start;
static void *worker(void *arg) {
  worker_t *w = arg;
  pthread_barrier_wait(&start); /* the limit is set after both threads exist */
  exhaust(w);
  pthread_barrier_wait(&phase);
  w->first_failures = w->failures;
  check_and_free(w, w->count / 2);
  pthread_barrier_wait(&phase);
  w->first_successes = w->successes;
  exhaust(w);
  check_and_free(w, 0);
  return NULL;
}

static long vm_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmSize: %ld kB", &kib) == 1) break;
  if (f) fclose(f);
  return kib;
}

static int rlimit_child(void) {
  alarm(60);
  static worker_t w[2];
  pthread_t t[2];
  for (int i = 0; i < 2; i++) w[i].seed = (uint64_t)i * 77 + 5;
  /* Threads first, held at a barrier until the limit is set: their stacks
   * must not count against it, and a thread that started early would use
   * the address space up before the other one could be created. */
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1u << 20);
  pthread_barrier_init(&phase, NULL, 2);
  pthread_barrier_init(&start, NULL, 3);
  for (int i = 0; i < 2; i++)
    if (pthread_create(&t[i], &attr, worker, &w[i]) != 0) return 21;
  long vm = vm_kib() + 2 * 1024; /* and slack */
  struct rlimit rl = {(rlim_t)(vm + 256 * 1024) * 1024, (rlim_t)(vm + 256 * 1024) * 1024};
  int limited = setrlimit(RLIMIT_AS, &rl);
  pthread_barrier_wait(&start);
  if (limited != 0) return 20; /* the caller _exits at once, threads and all */
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  int code = 0;
  long recovered = 0, failed_again = 0;
  for (int i = 0; i < 2; i++) {
    if (getenv("EXHAUSTION_VERBOSE"))
      fprintf(stderr, "thread %d: %ld ok, %ld failed, %ld bad errno, %ld corrupt\n", i, w[i].successes,
              w[i].failures, w[i].bad_errno, w[i].corrupt);
    recovered += w[i].successes - w[i].first_successes;
    failed_again += w[i].failures - w[i].first_failures;
    if (w[i].bad_errno) code = 23;                /* a failure without ENOMEM */
    else if (w[i].corrupt) code = 25;             /* a block lost its contents */
  }
  if (w[0].first_failures + w[1].first_failures == 0) code = 22; /* never ran out: nothing proved */
  else if (recovered == 0 || failed_again == 0) code = 24;       /* no recovery after freeing half */
  if (code) return code;
  /* everything freed: every tier works again */
  void *small[1000], *medium[20], *large[8];
  for (int i = 0; i < 1000; i++) if ((small[i] = malloc(100)) == NULL) return 26;
  for (int i = 0; i < 20; i++) if ((medium[i] = malloc(200000)) == NULL) return 26;
  for (int i = 0; i < 8; i++) if ((large[i] = malloc(4u << 20)) == NULL) return 26;
  for (int i = 0; i < 1000; i++) free(small[i]);
  for (int i = 0; i < 20; i++) free(medium[i]);
  for (int i = 0; i < 8; i++) free(large[i]);
  printf("exhaustion: thread 0: %ld blocks, %ld failed calls; thread 1: %ld blocks, %ld failed calls\n",
         w[0].successes, w[0].failures, w[1].successes, w[1].failures);
  fflush(stdout);
  return 0;
}

int main(void) {
  stats_get = (void (*)(hak_stats_t *))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_stats_get");
  CHECK(stats_get != NULL, "hakmem serves malloc (hak_stats_get is present)");
  if (stats_get == NULL) return check_report("exhaustion");
  test_huge();
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) _exit(rlimit_child());
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "RLIMIT_AS: two threads run out, every failure is ENOMEM, blocks intact, recovery (child %s %d)",
        WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  return check_report("exhaustion");
}
