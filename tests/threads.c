/* threads.c — thread exit and fork, run under LD_PRELOAD of a hakmem variant.
 *
 * exit:  threads allocate blocks and exit while the blocks are still live;
 *        the main thread checks and frees them (remote frees into slabs whose
 *        owner is gone), then new threads allocate the same sizes (adopting
 *        those slabs). hakmem's statistics must show slabs adopted, and after
 *        hak_flush() the slab count must fall back.
 * fork:  while worker threads allocate and free in a loop (holding allocator
 *        locks at random moments), the main thread forks repeatedly; each
 *        child allocates, frees blocks the parent allocated, and exits 0. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "hakmem.h"

#define PER_THREAD 20000
static void *handed[8][PER_THREAD];

static void *alloc_and_exit(void *arg) {
  uintptr_t t = (uintptr_t)arg;
  for (int i = 0; i < PER_THREAD; i++) {
    size_t n = 16 + (size_t)(i % 64) * 16;
    handed[t][i] = malloc(n);
    memset(handed[t][i], (int)(t + 1), n);
  }
  return NULL;
}

static void test_thread_exit(void) {
  void (*stats_get)(hak_stats_t *) = (void (*)(hak_stats_t *))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_stats_get");
  void (*flush)(void) = (void (*)(void))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_flush");
  CHECK(stats_get != NULL && flush != NULL, "hakmem's hak_stats_get and hak_flush are present");
  if (stats_get == NULL || flush == NULL) return;
  for (int round = 0; round < 3; round++) {
    pthread_t t[8];
    for (uintptr_t i = 0; i < 8; i++) pthread_create(&t[i], NULL, alloc_and_exit, (void *)i);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    /* All 8 threads are gone; their blocks are live in abandoned slabs. */
    int bad = 0;
    for (int i = 0; i < 8; i++)
      for (int k = 0; k < PER_THREAD; k++) {
        unsigned char *p = handed[i][k];
        size_t n = 16 + (size_t)(k % 64) * 16;
        for (size_t j = 0; j < n; j++) bad += p[j] != (unsigned char)(i + 1);
        free(p);
      }
    CHECK(bad == 0, "round %d: %d corrupted bytes in blocks of exited threads", round, bad);
  }
  hak_stats_t s;
  stats_get(&s);
  CHECK(s.total.slabs_adopted > 0, "slabs of exited threads were adopted (%llu)", s.total.slabs_adopted);
  CHECK(s.total.remote_frees > 0, "frees of other threads' blocks went through the remote path");
  /* A background scavenger (dynamic-flush variants) may be moving empty
   * slabs to the pool at this moment; those it holds are flushed next round. */
  hak_stats_t after;
  for (int tries = 0; tries < 20; tries++) {
    flush();
    stats_get(&after);
    if ((after.slabs + after.pooled_slabs) * 65536 <= (16u << 20)) break;
    usleep(20000);
  }
  CHECK((after.slabs + after.pooled_slabs) * 65536 <= (16u << 20), "after everything is freed and flushed, %zu slabs remain (%zu pooled)",
        after.slabs + after.pooled_slabs, after.pooled_slabs);
}

static atomic_int stop;
static void *churn(void *arg) {
  uint64_t s = (uintptr_t)arg + 1;
  void *keep[64] = {0};
  while (!atomic_load(&stop)) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    int i = (int)(s >> 58);
    free(keep[i]);
    size_t n = (s >> 20) % 3 == 0 ? (s >> 24) % 700000 : (s >> 24) % 2000;
    keep[i] = malloc(n + 1);
    memset(keep[i], 1, n + 1);
  }
  for (int i = 0; i < 64; i++) free(keep[i]);
  return NULL;
}

static void test_fork(void) {
  pthread_t t[3];
  for (uintptr_t i = 0; i < 3; i++) pthread_create(&t[i], NULL, churn, (void *)i);
  void *parent_blocks[100];
  for (int i = 0; i < 100; i++) parent_blocks[i] = malloc((size_t)i * 97 + 1);
  int ok = 0;
  for (int f = 0; f < 40; f++) {
    pid_t pid = fork();
    if (pid == 0) {
      for (int i = 0; i < 100; i++) free(parent_blocks[i]);
      void *p[1000];
      for (int r = 0; r < 5; r++) {
        for (int i = 0; i < 1000; i++) p[i] = malloc((size_t)(i % 50) * 40 + (i % 7 == 0 ? 100000 : 1));
        for (int i = 0; i < 1000; i++) free(p[i]);
      }
      pthread_t ct;
      pthread_create(&ct, NULL, alloc_and_exit, (void *)0);
      pthread_join(ct, NULL);
      _exit(0);
    }
    int status = 0;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) ok++;
    else fprintf(stderr, "fork %d: child status %#x\n", f, status);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < 100; i++) free(parent_blocks[i]);
  CHECK(ok == 40, "children of a threaded process allocate and exit cleanly: %d of 40", ok);
}

int main(void) {
  test_thread_exit();
  test_fork();
  return check_report("threads");
}
