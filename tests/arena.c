/* arena.c — large blocks reused in place (variants with an arena,
 * core/arena.c), under LD_PRELOAD of such a build. Blocks of m MiB less
 * 16 KiB take runs of m MiB in the release and the checked builds alike, so
 * addresses can be predicted:
 *   - reuse: a written block freed and asked for again comes back at the
 *     same address, with its pages (at most a tenth of them fault again), no
 *     page moved by mremap, none decommitted;
 *   - calloc of a run freed dirty reads zero;
 *   - coalescing: two neighbours freed serve one block of both sizes at the
 *     first one's address;
 *   - the best fit: with holes of 2 and 8 MiB, 2 MiB goes into the first and
 *     6 MiB into the second;
 *   - realloc grows in place over a free neighbour, and otherwise moves the
 *     block's pages (stats: moved bytes) keeping its contents (the checked
 *     builds' realloc copies: there only the contents are checked);
 *   - alignment: 2 MiB-aligned large blocks;
 *   - pages go back later, not at once: right after a free the freed bytes
 *     are still committed (large_dirty_bytes); within 5 s (the scavenger:
 *     one second unused, or idle) they are not; after hak_flush nothing is
 *     free in an arena (empty arenas unmapped: large_cache_bytes 0);
 *   - a double free is stopped (a child, "double free"), also when the
 *     run's pages were decommitted in between (hak_flush);
 *   - hak_validate() is quiet after every step.
 * Exit 0 when every check passed, 1 otherwise. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../core/hakmem.h"
#include "check.h"

#define MIB ((size_t)1 << 20)
#define BLOCK(m) ((m) * MIB - 16 * 1024) /* a run of m MiB */

static void *volatile keep[3]; /* blocks the compiler may not reason away */
static const char *(*validate)(void);
static void (*stats_get)(hak_stats_t *);
static void (*flush)(void);

static long minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

static void write_all(char *p, size_t n, int v) {
  for (size_t i = 0; i < n; i += 4096) p[i] = (char)v;
  p[n - 1] = (char)v;
}

static bool all_zero(const char *p, size_t n) {
  for (size_t i = 0; i < n; i += 512)
    if (p[i] != 0) return false;
  return p[n - 1] == 0;
}

static void valid(const char *when) {
  const char *err = validate();
  CHECK(err == NULL, "hak_validate() after %s: %s", when, err);
}

static hak_stats_t stats(void) {
  hak_stats_t s;
  stats_get(&s);
  return s;
}

static void reuse(void) {
  char *a = malloc(BLOCK(16));
  write_all(a, BLOCK(16), 1);
  free(a);
  hak_stats_t s0 = stats();
  long f0 = minflt();
  char *b = malloc(BLOCK(16));
  write_all(b, BLOCK(16), 2);
  long faults = minflt() - f0;
  hak_stats_t s1 = stats();
  CHECK(b == a, "a freed 16 MiB block asked for again comes back in place (%p, was %p)", (void *)b, (void *)a);
  CHECK(faults <= (long)(BLOCK(16) / 4096 / 10), "its pages are still there: %ld faults writing 16 MiB", faults);
  CHECK(s1.total.moved_bytes == s0.total.moved_bytes && s1.total.decommitted_bytes == s0.total.decommitted_bytes,
        "no page moved or decommitted (moved %llu -> %llu, decommitted %llu -> %llu)", s0.total.moved_bytes,
        s1.total.moved_bytes, s0.total.decommitted_bytes, s1.total.decommitted_bytes);
  free(b);
  char *c = calloc(1, BLOCK(16));
  CHECK(c == a && all_zero(c, BLOCK(16)), "calloc of the dirty run: in place (%p) and zero", (void *)c);
  free(c);
  valid("reuse");
}

static void coalesce_and_fit(void) {
  char *a = malloc(BLOCK(4)), *b = malloc(BLOCK(4)), *c = malloc(BLOCK(4));
  CHECK(b == a + 4 * MIB && c == b + 4 * MIB, "three 4 MiB blocks side by side (%p %p %p)", (void *)a, (void *)b,
        (void *)c);
  write_all(a, BLOCK(4), 1);
  write_all(b, BLOCK(4), 1);
  free(a);
  free(b);
  valid("two neighbours freed");
  char *d = malloc(BLOCK(8));
  CHECK(d == a, "the two merged serve 8 MiB at the first one's address (%p, want %p)", (void *)d, (void *)a);
  free(d);
  free(c);
  /* holes of 2 and 8 MiB between live blocks */
  char *h2 = malloc(BLOCK(2)), *y = malloc(BLOCK(4)), *h8 = malloc(BLOCK(8)), *z = malloc(BLOCK(4));
  write_all(h2, BLOCK(2), 1);
  write_all(h8, BLOCK(8), 1);
  free(h2);
  free(h8);
  char *e = malloc(BLOCK(2)), *f = malloc(BLOCK(6));
  CHECK(e == h2, "2 MiB goes into the 2 MiB hole (%p, want %p)", (void *)e, (void *)h2);
  CHECK(f == h8, "6 MiB goes into the 8 MiB hole (%p, want %p)", (void *)f, (void *)h8);
  valid("best fit");
  free(e);
  free(f);
  free(y);
  free(z);
  valid("coalesce and fit");
}

/* The checked builds' realloc allocates, copies and frees (core/check.c). */
static void reallocs(bool checked) {
  char *p = malloc(BLOCK(4)), *q = malloc(BLOCK(4));
  CHECK(q == p + 4 * MIB, "two 4 MiB blocks side by side");
  memset(p, 7, BLOCK(4));
  free(q);
  char *r = realloc(p, BLOCK(8));
  CHECK(r != NULL && r[0] == 7 && r[BLOCK(4) - 1] == 7, "realloc to 8 MiB keeps the contents");
  CHECK(checked || r == p, "realloc grows in place over the free neighbour (%p, was %p)", (void *)r, (void *)p);
  char *live = malloc(BLOCK(4)); /* after r: r cannot grow in place any more */
  CHECK(checked || live == r + 8 * MIB, "a block right after it (%p)", (void *)live);
  hak_stats_t s0 = stats();
  char *m = realloc(r, BLOCK(32));
  hak_stats_t s1 = stats();
  bool kept = m != NULL && m != r;
  for (size_t i = 0; kept && i < BLOCK(4); i += 4096) kept = m[i] == 7;
  CHECK(kept, "realloc to 32 MiB moves it (%p, was %p) keeping the contents", (void *)m, (void *)r);
  CHECK(checked || s1.total.moved_bytes - s0.total.moved_bytes >= BLOCK(8),
        "... by moving its pages, not copying them (%llu bytes moved)", s1.total.moved_bytes - s0.total.moved_bytes);
  char *back = calloc(1, BLOCK(8));
  CHECK(back != NULL && all_zero(back, BLOCK(8)), "calloc after the move reads zero");
  valid("reallocs");
  free(back);
  free(m);
  free(live);
  char *al;
  CHECK(posix_memalign((void **)&al, 2 * MIB, BLOCK(3)) == 0 && ((uintptr_t)al & (2 * MIB - 1)) == 0,
        "posix_memalign(2 MiB, 3 MiB) is 2 MiB-aligned (%p)", (void *)al);
  free(al);
  valid("aligned");
}

static void giving_back(void) {
  char *a = malloc(BLOCK(8));
  write_all(a, BLOCK(8), 3);
  free(a);
  hak_stats_t s = stats();
  CHECK(s.large_dirty_bytes >= BLOCK(8), "right after a free its pages are still committed (%zu dirty bytes)",
        s.large_dirty_bytes);
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do {
    usleep(100000);
    s = stats();
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while (s.large_dirty_bytes != 0 && t.tv_sec - t0.tv_sec < 5);
  CHECK(s.large_dirty_bytes == 0, "within 5 s the scavenger gives them back (%zu dirty bytes left)",
        s.large_dirty_bytes);
  char *b = malloc(BLOCK(8));
  write_all(b, BLOCK(8), 1);
  free(b);
  flush();
  s = stats();
  CHECK(s.large_cache_bytes == 0 && s.large_dirty_bytes == 0 && s.large_blocks == 0,
        "after hak_flush nothing is free in an arena (%zu free, %zu dirty)", s.large_cache_bytes, s.large_dirty_bytes);
  valid("flush");
}

/* A child frees the middle one of three 4 MiB blocks twice, with
 * hak_flush() between the frees when flushed (the run's pages decommitted;
 * the run keeps its descriptor, its neighbours being live): "double free". */
static void double_free(bool flushed) {
  int fd[2];
  if (pipe(fd) != 0) return;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 2);
    keep[0] = malloc(BLOCK(4));
    keep[1] = malloc(BLOCK(4));
    keep[2] = malloc(BLOCK(4));
    free(keep[1]);
    if (flushed) flush();
    free(keep[1]);
    _exit(0);
  }
  close(fd[1]);
  char buf[4096];
  ssize_t n, got = 0;
  while (got < (ssize_t)sizeof buf - 1 && (n = read(fd[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0) got += n;
  buf[got] = 0;
  close(fd[0]);
  int st;
  waitpid(pid, &st, 0);
  CHECK(WIFSIGNALED(st) && strstr(buf, "double free") != NULL, "a double free of an arena block%s is stopped: %s",
        flushed ? ", its pages decommitted in between," : "", buf);
}

int main(void) {
  validate = (const char *(*)(void))dlsym(RTLD_DEFAULT, "hak_validate");
  stats_get = (void (*)(hak_stats_t *))dlsym(RTLD_DEFAULT, "hak_stats_get");
  flush = (void (*)(void))dlsym(RTLD_DEFAULT, "hak_flush");
  if (validate == NULL || stats_get == NULL || flush == NULL) {
    printf("not under a hakmem build\n");
    return 1;
  }
  reuse();
  coalesce_and_fit();
  const char *(*variant)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "hak_variant");
  reallocs(variant != NULL && strstr(variant(), "-check") != NULL);
  giving_back();
  double_free(false);
  double_free(true);
  return check_report("arena");
}
