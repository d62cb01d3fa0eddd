/* fork.c — fork, system() and posix_spawn in a threaded program, run under
 * LD_PRELOAD of a hakmem variant (or of nothing, for the system malloc).
 *
 * While churn threads allocate and free in a loop (bursts of 600 blocks of
 * 48 bytes, so that frees overflow the magazine and flushes to the slabs are
 * under way at any moment, plus mixed small, medium and large sizes), the
 * program forks many times. Every child runs child_work(): it allocates
 * blocks of the churned size and others, writes a distinct pattern into each,
 * checks that no two blocks overlap and that every pattern is intact, frees
 * them, frees blocks the parent allocated before the fork, starts a thread
 * that allocates, and exits 0. A child that dies (for example of a "double
 * free" report from a dead thread's half-done flush replayed in the child),
 * or that sees a block handed out twice, is counted lost.
 *
 *   fork         400 forks from the main thread, two 48-byte churners and
 *                one mixed-size churner running
 *   thread-fork  100 forks from a thread that is not the main thread
 *   nested       a child that forks again (a grandchild of a threaded parent)
 *   system       system() from a thread while the churners run
 *   spawn        posix_spawn() from a thread while the churners run
 * Usage: fork [--forks N] (default 400). */
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

extern char **environ;

static atomic_int stop;
static int opt_forks = 400;
#define THREAD_FORKS 100 /* forks from a thread that is not the main thread */
#define NESTED_FORKS 50  /* forks by a child of the threaded parent */

/* The burst pattern of the issue report: 600 mallocs of 48 bytes, then 600 frees. */
static void *churn_bursts(void *arg) {
  (void)arg;
  static _Thread_local void *p[600];
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    for (int i = 0; i < 600; i++) {
      p[i] = malloc(48);
      memset(p[i], 0x5a, 48);
    }
    for (int i = 0; i < 600; i++) free(p[i]);
  }
  return NULL;
}

/* Random sizes from 1 B to 700 KB: slabs, medium runs and large mappings. */
static void *churn_mixed(void *arg) {
  uint64_t s = (uintptr_t)arg + 1;
  void *keep[64] = {0};
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    int i = (int)(test_rand(&s) % 64);
    free(keep[i]);
    uint64_t r = test_rand(&s);
    size_t n = r % 5 == 0 ? (size_t)(r >> 8) % 700000 + 1 : (size_t)(r >> 8) % 2000 + 1;
    keep[i] = malloc(n);
    memset(keep[i], 1, n);
  }
  for (int i = 0; i < 64; i++) free(keep[i]);
  return NULL;
}

typedef struct span_s {
  uintptr_t start, end;
} span_t;

static int span_cmp(const void *a, const void *b) {
  const span_t *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

static void *thread_alloc(void *arg) {
  (void)arg;
  void *p[500];
  for (int i = 0; i < 500; i++) {
    p[i] = malloc((size_t)(i % 40) * 24 + 1);
    if (p[i] == NULL) return (void *)1;
    memset(p[i], 3, (size_t)(i % 40) * 24 + 1);
  }
  for (int i = 0; i < 500; i++) free(p[i]);
  return NULL;
}

#define CHILD_BLOCKS 1200
/* What every child does; returns 0 when everything it saw was sound. */
static int child_work(void **parent_blocks, int nparent) {
  static unsigned char *b[CHILD_BLOCKS];
  static size_t n[CHILD_BLOCKS];
  static span_t spans[CHILD_BLOCKS];
  void *one = malloc(48);
  if (one == NULL) return 10;
  free(one);
  for (int i = 0; i < CHILD_BLOCKS; i++) {
    n[i] = i < 1000 ? 48 : (size_t)(i % 97) * 131 + (i % 50 == 0 ? 200000 : 1);
    b[i] = malloc(n[i]);
    if (b[i] == NULL) return 11;
    memset(b[i], (int)(i * 7 + 1), n[i]);
    spans[i].start = (uintptr_t)b[i];
    spans[i].end = (uintptr_t)b[i] + n[i];
  }
  qsort(spans, CHILD_BLOCKS, sizeof spans[0], span_cmp);
  for (int i = 1; i < CHILD_BLOCKS; i++)
    if (spans[i].start < spans[i - 1].end) return 12; /* two live blocks overlap */
  for (int i = 0; i < CHILD_BLOCKS; i++)
    for (size_t k = 0; k < n[i]; k++)
      if (b[i][k] != (unsigned char)(i * 7 + 1)) return 13; /* pattern broken */
  for (int i = 0; i < CHILD_BLOCKS; i++) free(b[i]);
  for (int i = 0; i < nparent; i++) free(parent_blocks[i]);
  pthread_t t;
  void *ret = (void *)1;
  if (pthread_create(&t, NULL, thread_alloc, NULL) != 0 || pthread_join(t, &ret) != 0 || ret != NULL) return 14;
  return 0;
}

/* Forks `count` times from the calling thread; returns the children lost. */
static int fork_many(int count, const char *what) {
  void *parent_blocks[64];
  int lost = 0;
  for (int f = 0; f < count; f++) {
    for (int i = 0; i < 64; i++) parent_blocks[i] = malloc((size_t)i * 97 + 1);
    pid_t pid = fork();
    if (pid == 0) _exit(child_work(parent_blocks, 64));
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      if (lost < 5) fprintf(stderr, "%s %d: child status %#x\n", what, f, status);
      lost++;
    }
    for (int i = 0; i < 64; i++) free(parent_blocks[i]);
  }
  return lost;
}

static pthread_t churners[3];
static void churn_start(void) {
  atomic_store(&stop, 0);
  pthread_create(&churners[0], NULL, churn_bursts, NULL);
  pthread_create(&churners[1], NULL, churn_bursts, NULL);
  pthread_create(&churners[2], NULL, churn_mixed, (void *)7);
  usleep(20000); /* let them get going */
}
static void churn_stop(void) {
  atomic_store(&stop, 1);
  for (int i = 0; i < 3; i++) pthread_join(churners[i], NULL);
}

static void *thread_fork(void *arg) {
  *(int *)arg = fork_many(THREAD_FORKS, "thread-fork");
  return NULL;
}

static void *thread_system(void *arg) {
  int bad = 0;
  for (int i = 0; i < 20; i++) {
    int rc = system("exit 3");
    bad += !(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 3);
  }
  *(int *)arg = bad;
  return NULL;
}

static void *thread_spawn(void *arg) {
  int bad = 0;
  for (int i = 0; i < 20; i++) {
    pid_t pid;
    char *argv[] = {"/bin/sh", "-c", "exit 4", NULL};
    int status = 0;
    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0 || waitpid(pid, &status, 0) != pid ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 4)
      bad++;
  }
  *(int *)arg = bad;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--forks") == 0) opt_forks = atoi(argv[2]);
  else if (argc != 1) {
    fprintf(stderr, "usage: fork [--forks N]\n");
    return 2;
  }
  churn_start();
  int lost = fork_many(opt_forks, "fork");
  CHECK(lost == 0, "fork from the main thread while 3 threads churn: %d of %d children lost", lost, opt_forks);

  pthread_t t;
  int tlost = -1;
  pthread_create(&t, NULL, thread_fork, &tlost);
  pthread_join(t, NULL);
  CHECK(tlost == 0, "fork from a second thread while 3 threads churn: %d of %d children lost", tlost, THREAD_FORKS);

  /* nested: the child of a threaded parent starts churners of its own and forks again */
  pid_t pid = fork();
  if (pid == 0) {
    churn_start();
    int l = fork_many(NESTED_FORKS, "nested");
    churn_stop();
    _exit(l == 0 ? 0 : 20);
  }
  int status = 0;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "fork in a child of a threaded process: status %#x", status);

  int sbad = -1, pbad = -1;
  pthread_create(&t, NULL, thread_system, &sbad);
  pthread_join(t, NULL);
  CHECK(sbad == 0, "system() from a thread while 3 threads churn: %d of 20 failed", sbad);
  pthread_create(&t, NULL, thread_spawn, &pbad);
  pthread_join(t, NULL);
  CHECK(pbad == 0, "posix_spawn() from a thread while 3 threads churn: %d of 20 failed", pbad);
  churn_stop();
  printf("fork: %d forks from main, %d from a thread, %d nested, 20 system, 20 posix_spawn; lost %d\n",
         opt_forks, THREAD_FORKS, NESTED_FORKS, lost + (tlost > 0 ? tlost : 0));
  return check_report("fork");
}
