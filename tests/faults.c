/* faults.c — out of memory inside the allocator: every mmap the allocator
 * makes, failed in turn.
 *
 * Built with the core's sources and -DHAK_FAULT_INJECTION=1, whose OS layer
 * can be told to fail the n-th mmap from now (hak_os_fail_after). A scenario
 * reaches every place that maps memory: a thread's first allocation (its
 * heap), small blocks of one-unit and four-unit slabs (slabs or SuperSlabs,
 * their descriptors), medium blocks (a chunk), large and aligned blocks, calloc,
 * realloc growing a block across tiers, and in dynamic-flush variants the
 * scavenger's stack. A dry run counts the scenario's mmaps; then for each n in
 * turn, in a fresh child process, the n-th mmap fails (once, or that one and
 * every later one: "sticky"). The child checks:
 *   - every call that fails returns NULL with errno ENOMEM (posix_memalign
 *     returns ENOMEM), every call that succeeds returns a usable block;
 *   - nothing crashes or hangs (20 s alarm);
 *   - with the failures stopped, the blocks it got are intact, the validators
 *     find every structure sound after they are freed (hak_validate), and the
 *     whole scenario then succeeds: allocation recovers.
 * In dynamic-flush variants, the first mmap is the scavenger's stack: when it
 * fails, every allocation of the scenario must still succeed.
 * Usage: faults (prints one line per mode and a summary). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "hakmem.h"
#include "internal.h"

#define MAX_BLOCKS 4096

typedef struct scenario_s {
  void *p[MAX_BLOCKS];
  size_t n[MAX_BLOCKS];
  int count;
  int failed;       /* calls that returned NULL / ENOMEM */
  int bad_errno;    /* calls that failed without ENOMEM */
} scenario_t;

static void record(scenario_t *s, void *p, size_t n, int err) {
  if (p == NULL) {
    s->failed++;
    if (err != ENOMEM) s->bad_errno++;
    return;
  }
  memset(p, (int)(s->count * 13 + 1), n);
  s->p[s->count] = p;
  s->n[s->count] = n;
  s->count++;
}

#define TRY(s, expr, n)                                                        \
  do {                                                                         \
    errno = 0;                                                                 \
    void *p_ = (expr);                                                         \
    record(s, p_, n, errno);                                                   \
  } while (0)

static void *scenario_thread(void *arg) {
  scenario_t *s = arg;
  for (int i = 0; i < 2000; i++) TRY(s, hak_malloc(48), 48);       /* one-unit slabs */
  for (int i = 0; i < 60; i++) TRY(s, hak_malloc(9000), 9000);     /* four-unit slabs */
  for (int i = 0; i < 12; i++) TRY(s, hak_malloc(100000), 100000); /* medium chunk(s) */
  for (int i = 0; i < 4; i++) TRY(s, hak_malloc(3u << 20), 3u << 20); /* large mappings */
  TRY(s, hak_calloc(1000, 70), 70000);
  TRY(s, hak_calloc(3, 1u << 20), 3u << 20);
  TRY(s, hak_aligned_alloc(1u << 20, 5000), 5000);
  TRY(s, hak_memalign(4096, 200000), 200000);
  TRY(s, hak_valloc(70000), 70000);
  void *a = NULL;
  errno = 0;
  int rc = hak_posix_memalign(&a, 65536, 300000);
  record(s, rc == 0 ? a : NULL, 300000, rc == 0 ? 0 : rc);
  /* realloc across tiers: small -> medium -> large, the contents kept */
  char *r = hak_malloc(100);
  if (r == NULL) {
    record(s, NULL, 0, errno);
    return NULL;
  }
  memset(r, 0x5a, 100);
  size_t steps[] = {5000, 300000, 2u << 20, 9u << 20};
  for (unsigned k = 0; k < sizeof steps / sizeof steps[0]; k++) {
    errno = 0;
    char *q = hak_realloc(r, steps[k]);
    if (q == NULL) {
      s->failed++;
      if (errno != ENOMEM) s->bad_errno++;
      continue; /* r is still valid */
    }
    r = q;
    for (int i = 0; i < 100; i++)
      if (r[i] != 0x5a) s->bad_errno += 1000; /* contents lost: counted as a hard failure */
  }
  s->p[s->count] = r;
  s->n[s->count] = 100; /* only the first 100 bytes are known */
  memset(r, (int)(s->count * 13 + 1), 100);
  s->count++;
  return NULL;
}

/* Runs the scenario in a new thread (so that a heap is created). */
static void run_scenario(scenario_t *s) {
  memset(s, 0, sizeof *s);
  pthread_t t;
  if (pthread_create(&t, NULL, scenario_thread, s) != 0 || pthread_join(t, NULL) != 0) s->bad_errno += 100000;
}

static int blocks_intact(const scenario_t *s) {
  for (int i = 0; i < s->count; i++) {
    const unsigned char *b = s->p[i];
    for (size_t k = 0; k < s->n[i]; k++)
      if (b[k] != (unsigned char)(i * 13 + 1)) return 0;
  }
  return 1;
}

static void free_all(scenario_t *s) {
  for (int i = 0; i < s->count; i++) hak_free(s->p[i]);
  s->count = 0;
}

/* Child exit codes. */
enum { CHILD_OK = 0, CHILD_BAD_ERRNO = 10, CHILD_CORRUPT = 11, CHILD_INVALID = 12, CHILD_NO_RECOVERY = 13,
       CHILD_SCAVENGER = 14 };

static int child(long n, bool sticky) {
  static scenario_t s;
  alarm(20);
  hak_os_fail_after(n, sticky);
  run_scenario(&s);
  hak_os_fail_after(-1, false);
  if (s.bad_errno) return CHILD_BAD_ERRNO;
  if (!blocks_intact(&s)) return CHILD_CORRUPT;
  if (n == 0 && !sticky && config_dynamic_flush && s.failed != 0) return CHILD_SCAVENGER;
  free_all(&s);
  hak_flush();
  const char *err = hak_validate();
  if (err != NULL) {
    fprintf(stderr, "faults: n=%ld%s: %s\n", n, sticky ? " sticky" : "", err);
    return CHILD_INVALID;
  }
  run_scenario(&s);
  if (s.failed || s.bad_errno || !blocks_intact(&s)) return CHILD_NO_RECOVERY;
  free_all(&s);
  err = hak_validate();
  if (err != NULL) {
    fprintf(stderr, "faults: n=%ld%s after recovery: %s\n", n, sticky ? " sticky" : "", err);
    return CHILD_INVALID;
  }
  return CHILD_OK;
}

/* The scenario's mmap count, from a dry run in a child (fresh allocator). */
static long count_mmaps(void) {
  int fd[2];
  if (pipe(fd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    static scenario_t s;
    size_t before = atomic_load(&hak_os_counters.map_calls);
    run_scenario(&s);
    long n = (long)(atomic_load(&hak_os_counters.map_calls) - before);
    if (s.failed || s.bad_errno) n = -1;
    if (write(fd[1], &n, sizeof n) != sizeof n) _exit(1);
    _exit(0);
  }
  close(fd[1]);
  long n = -1;
  if (read(fd[0], &n, sizeof n) != sizeof n) n = -1;
  close(fd[0]);
  waitpid(pid, NULL, 0);
  return n;
}

int main(void) {
  long total = count_mmaps();
  CHECK(total > 5, "the scenario maps memory (%ld mmaps)", total);
  if (total <= 5) return check_report("faults");
  for (int sticky = 0; sticky < 2; sticky++) {
    int bad = 0, codes[16] = {0};
    for (long n = 0; n <= total + 1; n++) {
      pid_t pid = fork();
      if (pid == 0) _exit(child(n, sticky));
      int status = 0;
      waitpid(pid, &status, 0);
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
      if (code != CHILD_OK) {
        if (bad < 5)
          fprintf(stderr, "faults: mmap %ld%s failed: child %s %d\n", n, sticky ? " and later" : "",
                  WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? code : code - 128);
        bad++;
        codes[code < 16 ? code : 15]++;
      }
    }
    CHECK(bad == 0, "%s: of %ld injected failures, %d went wrong", sticky ? "sticky" : "single", total + 2, bad);
    printf("faults: %s failure of each of the scenario's %ld mmaps: %d went wrong\n",
           sticky ? "sticky" : "single", total, bad);
  }
  return check_report("faults");
}
