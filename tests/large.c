/* large.c — large blocks, under LD_PRELOAD of a hakmem build.
 *
 *   large huge     requests of 2^40, about 1 TiB (2^40 + 12345, 10^12), 2^44
 *                  and 2^46 bytes by malloc, calloc, realloc (of NULL, of a
 *                  small and of a large block), posix_memalign, aligned_alloc,
 *                  memalign and valloc each return within 10 ms: NULL with
 *                  ENOMEM (a failed realloc leaves its block as it was), or a
 *                  block that is writable at its first and last page (calloc's
 *                  reading zero there) and is freed within 10 ms too. The time
 *                  is the thread's CPU time (user and system), which a busy
 *                  machine does not stretch: the fault was work (seconds of
 *                  it, filling the page map unit by unit), not waiting. Also
 *                  calloc(2 GiB) while freed blocks of 8 and 16 MiB are cached:
 *                  within 10 ms, zero at its first, middle and last page (a
 *                  fresh mapping, not cached pages moved in and then cleared).
 *   large refused  with the kernel's overcommit heuristic or strict accounting
 *                  (vm.overcommit_memory 0 or 2), each of those requests that
 *                  is larger than RAM + swap fails with ENOMEM, as under glibc:
 *                  hakmem charges a large block's memory to the commit count.
 *                  SKIP (exit 77) under overcommit_memory=1, where the kernel
 *                  backs any request.
 *   large blocks   blocks of 64 MiB and 1 GiB work (every page of the first,
 *                  every 64 KiB unit of the second written and read back);
 *                  realloc from 64 to 128 MiB keeps the contents; free, realloc
 *                  and malloc_usable_size of pointers inside large blocks (in
 *                  the first unit, the second, the middle, the last unit, the
 *                  part a realloc grew) are each stopped in a child with
 *                  "invalid pointer"; hak_validate() stays quiet.
 *   large cache    the large cache stays within its bound when a free lowers
 *                  it (dynamic flush: the bound counts the live large bytes):
 *                  malloc(64 MiB), realloc to 128 MiB, free, then 20,000
 *                  malloc/free of 16 bytes (a checked build validates its
 *                  structures every 16,384 calls) ends normally; so do frees
 *                  of 100 and then 200 MiB; hak_validate() is quiet after each.
 *   large leak     under HAKMEM_LEAKCHECK=1, a 3 MiB block held only by a
 *                  pointer 1 MiB into it (past the first unit, which is all the
 *                  page map holds of a large block) is possibly lost, not
 *                  definitely lost, as memcheck counts it.
 * Exit 0 when every check passed, 1 when one failed, 77: SKIP (the reason on
 * a line "SKIP: ..."). */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define MIB ((size_t)1 << 20)
#define UNIT ((size_t)65536)
#define PAGE ((size_t)4096)
#define LIMIT_NS 10000000L /* 10 ms */

static const char *(*validate)(void);
static void *volatile keep; /* stops the compiler reasoning about a block */

static long cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* ---- huge requests -------------------------------------------------------------- */
static const size_t huge_sizes[] = {(size_t)1 << 40, ((size_t)1 << 40) + 12345, (size_t)1000000000000,
                                    (size_t)1 << 44, (size_t)1 << 46};
#define NSIZES (sizeof huge_sizes / sizeof huge_sizes[0])
enum { F_MALLOC, F_CALLOC, F_CALLOC_PAGES, F_REALLOC_NULL, F_REALLOC_SMALL, F_REALLOC_LARGE, F_MEMALIGN_64,
       F_MEMALIGN_1M, F_ALIGNED_4K, F_ALIGNED_2M, F_MEMALIGN, F_VALLOC, NFUNCS };
static const char *const func_name[NFUNCS] = {
    "malloc(n)", "calloc(1, n)", "calloc(n / 4096, 4096)", "realloc(NULL, n)", "realloc(100-byte block, n)",
    "realloc(1 MiB block, n)", "posix_memalign(64, n)", "posix_memalign(1 MiB, n)", "aligned_alloc(4096, n)",
    "aligned_alloc(2 MiB, n)", "memalign(64 KiB, n)", "valloc(n)"};

/* One request of n bytes with function f: its result, errno (posix_memalign's
 * return value), and the CPU time it took. old: the block a realloc is given. */
static char *request(int f, size_t n, char *old, int *err, long *ns) {
  void *p = NULL;
  errno = 0;
  long t0 = cpu_ns();
  switch (f) {
  case F_MALLOC: p = malloc(n); break;
  case F_CALLOC: p = calloc(1, n); break;
  case F_CALLOC_PAGES: p = calloc(n / 4096, 4096); break;
  case F_REALLOC_NULL: p = realloc(NULL, n); break;
  case F_REALLOC_SMALL: case F_REALLOC_LARGE: p = realloc(old, n); break;
  case F_MEMALIGN_64: errno = posix_memalign(&p, 64, n); break;
  case F_MEMALIGN_1M: errno = posix_memalign(&p, MIB, n); break;
  case F_ALIGNED_4K: p = aligned_alloc(4096, n); break;
  case F_ALIGNED_2M: p = aligned_alloc(2 * MIB, n); break;
  case F_MEMALIGN: p = memalign(UNIT, n); break;
  default: p = valloc(n); break;
  }
  *ns = cpu_ns() - t0;
  *err = errno;
  return p;
}

static size_t ram_and_swap(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  char line[256];
  unsigned long long kib, total = 0;
  while (f != NULL && fgets(line, sizeof line, f))
    if (sscanf(line, "MemTotal: %llu kB", &kib) == 1 || sscanf(line, "SwapTotal: %llu kB", &kib) == 1) total += kib;
  if (f != NULL) fclose(f);
  return (size_t)total * 1024;
}

static int overcommit_mode(void) {
  FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
  int mode = -1;
  if (f != NULL && fscanf(f, "%d", &mode) != 1) mode = -1;
  if (f != NULL) fclose(f);
  return mode;
}

/* Every huge request with every function. refused: the requests above
 * RAM + swap must fail (checked); otherwise each either fails at once or
 * gives a usable block. Returns how many requests were refused as they must. */
static int huge_requests(bool refused) {
  size_t backable = ram_and_swap();
  int must = 0;
  for (unsigned s = 0; s < NSIZES; s++) {
    size_t n = huge_sizes[s];
    if (refused && n <= backable) continue;
    for (int f = 0; f < NFUNCS; f++) {
      char *old = NULL;
      size_t old_n = f == F_REALLOC_SMALL ? 100 : f == F_REALLOC_LARGE ? MIB : 0;
      if (old_n != 0) {
        old = malloc(old_n);
        if (old == NULL) {
          CHECK(0, "%s: the block to realloc could not be had", func_name[f]);
          continue;
        }
        memset(old, 0x5c, old_n);
      }
      size_t want = f == F_CALLOC_PAGES ? n / 4096 * 4096 : n; /* the bytes asked for */
      int err;
      long ns;
      char *p = request(f, n, old, &err, &ns);
      if (!refused)
        CHECK(ns <= LIMIT_NS, "%s with n = %zu returns within 10 ms of CPU time (%.3f ms, %s)", func_name[f], n,
              ns / 1e6, p != NULL ? "a block" : "NULL");
      if (p == NULL) {
        CHECK(err == ENOMEM, "%s with n = %zu fails with ENOMEM (errno %d)", func_name[f], n, err);
        if (old != NULL)
          CHECK(old[0] == 0x5c && old[old_n - 1] == 0x5c, "a failed %s leaves its block as it was", func_name[f]);
        free(old);
        must++;
        continue;
      }
      CHECK(!refused, "%s of %zu bytes, more than RAM + swap (%zu), is refused under overcommit_memory=%d", func_name[f],
            n, backable, overcommit_mode());
      if (old != NULL) CHECK(p[0] == 0x5c && p[old_n - 1] == 0x5c, "%s keeps the block's contents", func_name[f]);
      if (f == F_CALLOC || f == F_CALLOC_PAGES)
        CHECK(p[PAGE] == 0 && p[want - 1] == 0, "calloc's huge block reads zero");
      char *last = p + ((want - 1) & ~(PAGE - 1));
      p[old_n] = 1; /* the first page, past what realloc kept */
      *last = 2;
      p[want - 1] = 3;
      CHECK(p[old_n] == 1 && *last == 2 && p[want - 1] == 3, "%s of %zu bytes is writable at its first and last page",
            func_name[f], n);
      long t0 = cpu_ns();
      free(p);
      ns = cpu_ns() - t0;
      CHECK(ns <= LIMIT_NS, "free of a block of %zu bytes returns within 10 ms of CPU time (%.3f ms)", n, ns / 1e6);
    }
  }
  return must;
}

/* calloc of a block far above the cache's bound, with dirty ranges cached. */
static void calloc_beside_cache(void) {
  char *c[3];
  for (int i = 0; i < 3; i++) {
    size_t n = (size_t)(8 << (i % 2)) * MIB;
    c[i] = malloc(n);
    if (c[i] != NULL) memset(c[i], 0xc5, n);
  }
  for (int i = 0; i < 3; i++) free(c[i]);
  size_t n = 2048 * MIB;
  long t0 = cpu_ns();
  char *p = calloc(1, n);
  long ns = cpu_ns() - t0;
  CHECK(p != NULL, "calloc(1, 2 GiB)");
  if (p == NULL) return;
  CHECK(ns <= LIMIT_NS, "calloc(1, 2 GiB) beside cached ranges returns within 10 ms of CPU time (%.3f ms)", ns / 1e6);
  CHECK(p[0] == 0 && p[n / 2] == 0 && p[n - 1] == 0, "calloc(1, 2 GiB) reads zero");
  free(p);
}

static int test_refused(void) {
  int mode = overcommit_mode();
  if (mode == 1) {
    printf("SKIP: vm.overcommit_memory=1: the kernel backs any request, so none is refused\n");
    return 77;
  }
  size_t backable = ram_and_swap();
  if (backable == 0 || backable >= huge_sizes[NSIZES - 1]) {
    printf("SKIP: RAM + swap (%zu bytes) is not below the largest request\n", backable);
    return 77;
  }
  int refused = huge_requests(true);
  printf("large: overcommit_memory=%d, RAM + swap %zu MiB: %d requests refused\n", mode, backable >> 20, refused);
  return check_report("large refused");
}

/* ---- usable large blocks, and pointers inside them -------------------------------- */
/* Runs fn in a child and checks that it dies of SIGABRT with one line on
 * stderr starting with expect (as tests/api.c). */
static void expect_fatal(void (*fn)(void), const char *what, const char *expect) {
  int pipefd[2];
  if (pipe(pipefd) != 0) {
    CHECK(0, "%s: pipe() failed, the misuse could not be tried", what);
    return;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    fn();
    _exit(0);
  }
  close(pipefd[1]);
  char buf[512] = {0};
  size_t n = 0;
  ssize_t r;
  while (n < sizeof(buf) - 1 && (r = read(pipefd[0], buf + n, sizeof(buf) - 1 - n)) > 0) n += (size_t)r;
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "%s: the child died of SIGABRT (status %#x)", what,
        status);
  CHECK(strncmp(buf, expect, strlen(expect)) == 0 && strchr(buf, '\n') == buf + strlen(buf) - 1,
        "%s: one line starting '%s', got '%s'", what, expect, buf);
}

static char *big(size_t n) {
  char *p = malloc(n);
  if (p == NULL) _exit(3);
  keep = p;
  return keep;
}
static void free_first_unit(void) { free(big(64 * MIB) + PAGE); }
static void free_second_unit(void) { free(big(64 * MIB) + UNIT); }
static void free_middle(void) { free(big(64 * MIB) + 32 * MIB + 16); }
static void free_last_unit(void) { free(big(64 * MIB) + 64 * MIB - 16); }
static void free_gib_middle(void) { free(big(1024 * MIB) + 512 * MIB); }
static void realloc_inside(void) { keep = realloc(big(64 * MIB) + MIB, 100); }
static void usable_inside(void) { keep = (void *)malloc_usable_size(big(64 * MIB) + MIB); }
static void free_grown_part(void) { /* inside the part a realloc added */
  char *p = realloc(big(64 * MIB), 128 * MIB);
  if (p == NULL) _exit(3);
  free(p + 100 * MIB);
}

static void test_blocks(void) {
  /* 64 MiB: every page written, then read back */
  size_t n = 64 * MIB;
  unsigned char *p = malloc(n);
  CHECK(p != NULL, "malloc(64 MiB)");
  if (p == NULL) return;
  for (size_t i = 0; i < n; i += PAGE) p[i] = (unsigned char)(i / PAGE * 7 + 1);
  p[n - 1] = 0xee;
  size_t bad = 0;
  for (size_t i = 0; i < n; i += PAGE) bad += p[i] != (unsigned char)(i / PAGE * 7 + 1);
  CHECK(bad == 0 && p[n - 1] == 0xee, "every page of a 64 MiB block keeps what was written (%zu did not)", bad);
  CHECK(malloc_usable_size(p) >= n, "malloc_usable_size of a 64 MiB block is at least 64 MiB");
  /* realloc to 128 MiB keeps it all; the new part is writable */
  unsigned char *q = realloc(p, 2 * n);
  CHECK(q != NULL, "realloc(64 MiB block, 128 MiB)");
  if (q == NULL) {
    free(p);
    return;
  }
  bad = 0;
  for (size_t i = 0; i < n; i += PAGE) bad += q[i] != (unsigned char)(i / PAGE * 7 + 1);
  CHECK(bad == 0 && q[n - 1] == 0xee, "realloc to 128 MiB keeps every page (%zu did not)", bad);
  for (size_t i = n; i < 2 * n; i += PAGE) q[i] = 0x77;
  q[2 * n - 1] = 0x78;
  CHECK(q[n] == 0x77 && q[2 * n - 1] == 0x78 && malloc_usable_size(q) >= 2 * n, "the grown part is usable");
  const char *err = validate();
  CHECK(err == NULL, "hak_validate() with a live 128 MiB block: %s", err ? err : "quiet");
  free(q);
  /* 1 GiB: every unit written and read back */
  n = 1024 * MIB;
  p = malloc(n);
  CHECK(p != NULL, "malloc(1 GiB)");
  if (p != NULL) {
    for (size_t i = 0; i < n; i += UNIT) p[i] = (unsigned char)(i / UNIT * 13 + 5);
    p[n - 1] = 0xab;
    bad = 0;
    for (size_t i = 0; i < n; i += UNIT) bad += p[i] != (unsigned char)(i / UNIT * 13 + 5);
    CHECK(bad == 0 && p[n - 1] == 0xab, "every unit of a 1 GiB block keeps what was written (%zu did not)", bad);
    free(p);
  }
  err = validate();
  CHECK(err == NULL, "hak_validate() after freeing them: %s", err ? err : "quiet");

  expect_fatal(free_first_unit, "free(64 MiB block + 4 KiB)", "hakmem: free(): invalid pointer 0x");
  expect_fatal(free_second_unit, "free(64 MiB block + 64 KiB)", "hakmem: free(): invalid pointer 0x");
  expect_fatal(free_middle, "free(64 MiB block + 32 MiB + 16)", "hakmem: free(): invalid pointer 0x");
  expect_fatal(free_last_unit, "free(64 MiB block + 64 MiB - 16)", "hakmem: free(): invalid pointer 0x");
  expect_fatal(free_gib_middle, "free(1 GiB block + 512 MiB)", "hakmem: free(): invalid pointer 0x");
  expect_fatal(realloc_inside, "realloc(64 MiB block + 1 MiB, 100)", "hakmem: realloc(): invalid pointer 0x");
  expect_fatal(usable_inside, "malloc_usable_size(64 MiB block + 1 MiB)",
               "hakmem: malloc_usable_size(): invalid pointer 0x");
  expect_fatal(free_grown_part, "free(block realloc'd from 64 to 128 MiB + 100 MiB)",
               "hakmem: free(): invalid pointer 0x");
}

/* ---- the large cache's bound ------------------------------------------------------- */
static int cache_realloc_then_small(void) {
  char *p = malloc(64 * MIB);
  if (p == NULL) return 3;
  p[0] = 1;
  p = realloc(p, 128 * MIB);
  if (p == NULL) return 3;
  free(p);
  for (int i = 0; i < 20000; i++) {
    keep = malloc(16);
    free(keep);
  }
  const char *err = validate();
  if (err != NULL) fprintf(stderr, "hak_validate: %s\n", err);
  return err != NULL ? 1 : 0;
}

static int cache_two_frees(void) {
  char *a = malloc(100 * MIB), *b = malloc(200 * MIB);
  if (a == NULL || b == NULL) return 3;
  a[0] = b[0] = 1;
  free(a);
  free(b);
  const char *err = validate();
  if (err != NULL) fprintf(stderr, "hak_validate: %s\n", err);
  return err != NULL ? 1 : 0;
}

/* Runs fn in a child (a fresh large cache: nothing cached before) and checks
 * that it exits 0, not killed by the checked build's validation. */
static void in_child(int (*fn)(void), const char *what) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) _exit(fn());
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: ends normally, hak_validate() quiet (child %s %d)", what,
        WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void test_cache(void) {
  in_child(cache_realloc_then_small, "malloc(64 MiB), realloc to 128 MiB, free, 20,000 malloc/free of 16 bytes");
  in_child(cache_two_frees, "malloc 100 and 200 MiB, free both");
}

/* ---- the leak checker and pointers past a large block's first unit ---------------- */
static char *volatile inside; /* the only pointer to the block: 1 MiB into it */

static __attribute__((noinline)) void leak_inside(void) {
  char *p = malloc(3 * MIB);
  if (p == NULL) _exit(3);
  memset(p, 0x5a, 3 * MIB);
  inside = p + MIB;
  keep = NULL;
}

static __attribute__((noinline)) void clear_stack(void) { /* no stale copy of p below main */
  char area[32768];
  explicit_bzero(area, sizeof area);
  __asm__ volatile("" : : "r"(area) : "memory");
}

static void test_leak(void) {
  int pipefd[2];
  if (pipe(pipefd) != 0) {
    CHECK(0, "pipe() failed, the leak check could not be run");
    return;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    setenv("HAKMEM_LEAKCHECK", "1", 1);
    execl("/proc/self/exe", "large", "leak-child", (char *)NULL);
    _exit(127);
  }
  close(pipefd[1]);
  char buf[8192] = {0};
  size_t n = 0;
  ssize_t r;
  while (n < sizeof(buf) - 1 && (r = read(pipefd[0], buf + n, sizeof(buf) - 1 - n)) > 0) n += (size_t)r;
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const char *line = strstr(buf, "hakmem: leak check: ");
  unsigned long long d, db, ib, ibn, pb, pbn;
  int got = line != NULL ? sscanf(line,
                                  "hakmem: leak check: definitely lost %llu bytes in %llu blocks, indirectly lost "
                                  "%llu bytes in %llu blocks, possibly lost %llu bytes in %llu blocks",
                                  &d, &db, &ib, &ibn, &pb, &pbn)
                         : 0;
  CHECK(got == 6 && d == 0 && pb == 3 * MIB && pbn == 1,
        "a 3 MiB block held only by a pointer 1 MiB into it is possibly lost (3145728 bytes in 1 block), not "
        "definitely lost; the checker said: %.300s",
        line != NULL ? line : buf);
}

int main(int argc, char **argv) {
  const char *mode = argc == 2 ? argv[1] : "";
  if (strcmp(mode, "leak-child") == 0) { /* run by test_leak under the leak checker */
    leak_inside();
    clear_stack();
    return 0;
  }
  validate = (const char *(*)(void))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_validate");
  CHECK(validate != NULL, "hakmem serves malloc (hak_validate is present)");
  if (validate == NULL) return check_report("large");
  if (strcmp(mode, "huge") == 0) {
    calloc_beside_cache();
    huge_requests(false);
  }
  else if (strcmp(mode, "refused") == 0) return test_refused();
  else if (strcmp(mode, "blocks") == 0) test_blocks();
  else if (strcmp(mode, "cache") == 0) test_cache();
  else if (strcmp(mode, "leak") == 0) test_leak();
  else {
    fprintf(stderr, "usage: large huge|refused|blocks|cache|leak\n");
    return 2;
  }
  return check_report(mode);
}
