/* api.c — conformance of the exported malloc API, run under
 * LD_PRELOAD=build/<variant>/libhakmem.so: every function and its edge cases,
 * alignments from 1 to 1 MiB, usable sizes, errno on failure, a 5 GiB block,
 * and each misuse the README says is stopped, with its one-line report (the
 * release build's list; with a <variant>-check argument, the checked build's
 * too).
 * Usage: api <variant>   (checks that hakmem of that variant is the malloc).
 * Exit status 0: every check passed; 77: all passed but one could not run
 * here (SKIP, with the reason); 1: a check failed.
 * Also linked statically with libhakmem.a (and -rdynamic) as api-static. */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

typedef const char *(*name_fn)(void);

static int all_bytes(const unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return 0;
  return 1;
}

/* hakmem of the expected variant serves malloc: malloc and hak_variant come
 * from the same object (libhakmem.so under LD_PRELOAD, or the executable
 * when linked with libhakmem.a). */
static void test_identity(const char *variant) {
  Dl_info mi, vi;
  void *m = dlsym(RTLD_DEFAULT, "malloc");
  name_fn v = (name_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "hak_variant");
  name_fn ver = (name_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "hak_version");
  CHECK(v != NULL && strcmp(v(), variant) == 0, "hak_variant() is %s", v ? v() : "(missing)");
  CHECK(ver != NULL && strlen(ver()) > 0, "hak_version() exists");
  CHECK(m != NULL && v != NULL && dladdr(m, &mi) && dladdr((void *)(uintptr_t)v, &vi) &&
            strcmp(mi.dli_fname, vi.dli_fname) == 0,
        "malloc comes from %s, hakmem from %s", m && dladdr(m, &mi) ? mi.dli_fname : "?",
        v && dladdr((void *)(uintptr_t)v, &vi) ? vi.dli_fname : "?");
}

static void test_malloc_free(void) {
  void *a = malloc(0), *b = malloc(0);
  CHECK(a != NULL && b != NULL && a != b, "malloc(0) gives unique pointers");
  free(a);
  free(b);
  free(NULL);
  for (size_t n = 1; n <= (8u << 20); n = n * 3 / 2 + 1) {
    unsigned char *p = malloc(n);
    CHECK(p != NULL, "malloc(%zu)", n);
    if (p == NULL) continue;
    CHECK(((uintptr_t)p & 15) == 0, "malloc(%zu) is 16-byte aligned", n);
    CHECK(malloc_usable_size(p) >= n, "usable(%zu) = %zu", n, malloc_usable_size(p));
    memset(p, 0xab, malloc_usable_size(p));
    free(p);
  }
  CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) == 0");
  errno = 0;
  void *huge = malloc(SIZE_MAX - 4096);
  CHECK(huge == NULL && errno == ENOMEM, "malloc(huge) fails with ENOMEM (errno %d)", errno);
  errno = 0;
  huge = malloc((size_t)1 << 50);
  CHECK(huge == NULL && errno == ENOMEM, "malloc(1 PiB) fails with ENOMEM (errno %d)", errno);
  /* free keeps errno, on every tier */
  size_t sizes[] = {8, 40000, 600000, 5u << 20};
  for (unsigned i = 0; i < 4; i++) {
    void *p = malloc(sizes[i]);
    errno = 1234;
    free(p);
    CHECK(errno == 1234, "free preserves errno (size %zu)", sizes[i]);
  }
}

static void test_calloc(void) {
  size_t sizes[] = {1, 16, 100, 1000, 5000, 40000, 300000, 700000, 3u << 20};
  for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    /* dirty the memory first so that reuse must be cleared */
    unsigned char *d = malloc(sizes[i]);
    memset(d, 0xff, sizes[i]);
    free(d);
    unsigned char *p = calloc(1, sizes[i]);
    CHECK(p != NULL && all_bytes(p, sizes[i], 0), "calloc(1, %zu) is zeroed", sizes[i]);
    free(p);
  }
  errno = 0;
  CHECK(calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM, "calloc overflow gives ENOMEM");
  void *z = calloc(0, 10);
  CHECK(z != NULL, "calloc(0, n) is a freeable pointer");
  free(z);
}

static void test_realloc(bool checked) {
  unsigned char *p = realloc(NULL, 10);
  CHECK(p != NULL, "realloc(NULL, n) is malloc");
  memcpy(p, "0123456789", 10);
  size_t steps[] = {20, 100, 1000, 9000, 40000, 200000, 600000, 2u << 20, 9u << 20, 700000, 50000, 500, 5};
  size_t have = 10;
  for (unsigned i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
    unsigned char *q = realloc(p, steps[i]);
    CHECK(q != NULL, "realloc to %zu", steps[i]);
    if (q == NULL) return;
    size_t keep = have < steps[i] ? have : steps[i];
    CHECK(memcmp(q, "0123456789", keep < 10 ? keep : 10) == 0, "realloc to %zu keeps the head", steps[i]);
    if (keep > 10) CHECK(all_bytes(q + 10, keep - 10, (unsigned char)(i + 1)), "realloc to %zu keeps the rest", steps[i]);
    if (steps[i] > 10) memset(q + 10, i + 2, steps[i] - 10);
    have = steps[i];
    p = q;
  }
  /* in place: shrinking a small block a little returns the same pointer */
  void *s = malloc(100), *s2 = realloc(s, 90);
  if (checked) CHECK(s2 != s, "checked build: realloc always moves the block");
  else CHECK(s2 == s, "small shrink stays in place");
  free(s2);
  errno = 0;
  void *r = realloc(p, SIZE_MAX - 100);
  CHECK(r == NULL && errno == ENOMEM && p[0] == '0', "failed realloc keeps the block and sets ENOMEM");
  CHECK(realloc(p, 0) == NULL, "realloc(p, 0) frees p and returns NULL (glibc)");
  errno = 0;
  void *ra = reallocarray(NULL, SIZE_MAX / 4, 8);
  CHECK(ra == NULL && errno == ENOMEM, "reallocarray overflow gives ENOMEM");
  ra = reallocarray(NULL, 10, 10);
  CHECK(ra != NULL && malloc_usable_size(ra) >= 100, "reallocarray(NULL, 10, 10)");
  free(ra);
}

static void test_aligned(void) {
  for (size_t a = 1; a <= (1u << 20); a <<= 1) {
    size_t sizes[] = {1, a / 2 + 1, a, 3 * a + 5, 70000};
    for (unsigned k = 0; k < 5; k++) {
      size_t n = sizes[k];
      void *p = NULL;
      int rc = posix_memalign(&p, a < sizeof(void *) ? sizeof(void *) : a, n);
      CHECK(rc == 0 && p != NULL && ((uintptr_t)p % (a < sizeof(void *) ? sizeof(void *) : a)) == 0,
            "posix_memalign(%zu, %zu) rc %d", a, n, rc);
      if (p) {
        CHECK(malloc_usable_size(p) >= n, "aligned usable");
        memset(p, 1, n);
        free(p);
      }
      p = aligned_alloc(a, n);
      CHECK(p != NULL && (uintptr_t)p % a == 0, "aligned_alloc(%zu, %zu) = %p", a, n, p);
      free(p);
      p = memalign(a, n);
      CHECK(p != NULL && (uintptr_t)p % a == 0, "memalign(%zu, %zu) = %p", a, n, p);
      free(p);
    }
  }
  void *p = (void *)0x1;
  CHECK(posix_memalign(&p, 24, 10) == EINVAL && p == (void *)0x1, "posix_memalign(24) is EINVAL");
  CHECK(posix_memalign(&p, 4, 10) == EINVAL, "posix_memalign(4) is EINVAL (not a multiple of void*)");
  CHECK(posix_memalign(&p, 0, 10) == EINVAL, "posix_memalign(0) is EINVAL");
  CHECK(posix_memalign(&p, 64, SIZE_MAX - 100) == ENOMEM, "posix_memalign(huge) is ENOMEM");
  void *v = valloc(100);
  CHECK(v != NULL && (uintptr_t)v % 4096 == 0, "valloc is page aligned");
  free(v);
  v = pvalloc(100);
  CHECK(v != NULL && (uintptr_t)v % 4096 == 0 && malloc_usable_size(v) >= 4096, "pvalloc rounds to a page");
  free(v);
  v = pvalloc(0);
  CHECK(v != NULL && malloc_usable_size(v) >= 4096, "pvalloc(0) is one page");
  free(v);
}

/* A block above 4 GiB (5 GiB): written at its first and last byte, its
 * usable size (the request, in a checked build, whose trailer must record
 * it whole), realloc'd down to 4 KiB and a 1 MiB block realloc'd up to
 * 5 GiB + 1, all freed. Only the touched pages become resident. Run in a
 * child, so that a false stop of a checked build is reported like any
 * failure. Needs 8 GiB of RAM and swap (SKIP otherwise). */
static bool skipped;
static int big_block(bool checked) {
  size_t n = (size_t)5 << 30, m = (size_t)1 << 20;
  char *p = malloc(n);
  if (p == NULL) return 1;
  p[0] = 'a';
  p[n - 1] = 'z';
  size_t u = malloc_usable_size(p);
  if (checked ? u != n : u < n) return 2;
  char *q = realloc(p, 4096);
  if (q == NULL || q[0] != 'a') return 3;
  char *r = malloc(m);
  if (r == NULL) return 4;
  r[0] = 'b';
  r[m - 1] = 'y';
  char *s = realloc(r, n + 1);
  if (s == NULL || s[0] != 'b' || s[m - 1] != 'y') return 5;
  s[n] = 'z';
  u = malloc_usable_size(s);
  if (checked ? u != n + 1 : u < n + 1) return 6;
  free(s);
  free(q);
  return 0;
}
static void test_big_block(bool checked) {
  struct sysinfo si;
  if (sysinfo(&si) != 0 || ((uint64_t)si.totalram + si.totalswap) * si.mem_unit < ((uint64_t)8 << 30)) {
    printf("api: SKIP: a 5 GiB block needs 8 GiB of RAM and swap\n");
    skipped = true;
    return;
  }
  pid_t pid = fork();
  if (pid == 0) _exit(big_block(checked));
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "a 5 GiB block: malloc, first and last byte, usable size, realloc down and up, free (status %#x: "
        "exit 1-6 is the step that failed)", status);
}

/* Runs fn in a child and checks that it dies of SIGABRT with the expected
 * one-line message on stderr. */
static void expect_fatal(void (*fn)(void), const char *expect) {
  int pipefd[2];
  if (pipe(pipefd) != 0) {
    CHECK(0, "'%s': pipe() failed, the misuse could not be tried", expect);
    return;
  }
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
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "'%s': child died of SIGABRT (status %#x)",
        expect, status);
  CHECK(strncmp(buf, expect, strlen(expect)) == 0 && strchr(buf, '\n') == buf + strlen(buf) - 1,
        "one-line message starting '%s', got '%s'", expect, buf);
}

/* Each function commits one misuse; the comment says which. volatile
 * pointers keep the compiler from reasoning about the misuse. */
static char not_ours[64];
static void *volatile keep;
/* The pointer, hidden from the compiler's bounds and lifetime analysis. */
static char *launder(void *p) {
  keep = p;
  return keep;
}
static void free_stack_pointer(void) { /* a pointer hakmem never handed out */
  char local[64];
  keep = local;
  free((char *)keep + 16);
}
static void free_static_pointer(void) { free(not_ours + 16); }
static void free_twice(void) { /* the same block twice in a row */
  void *p = malloc(32);
  free(p);
  free(p);
}
static void free_interior_16(void) { /* 16 bytes into a 64-byte block */
  char *p = malloc(64);
  free(p + 16);
}
static void free_interior_48(void) {
  char *p = malloc(64);
  free(p + 48);
}
static void free_interior_8(void) {
  char *p = malloc(64);
  free(p + 8);
}
static void free_interior_large_class(void) { /* inside a 20000-byte block */
  char *p = malloc(20000);
  free(p + 4096);
}
static void realloc_interior(void) {
  char *p = malloc(64);
  keep = realloc(p + 16, 100);
}
static void usable_interior(void) {
  char *p = malloc(64);
  keep = (void *)malloc_usable_size(p + 16);
}
static void realloc_stack_pointer(void) {
  char local[64];
  keep = local;
  keep = realloc((char *)keep, 100);
}
static void free_medium_interior(void) {
  char *p = malloc(100000);
  free(p + 4096);
}
static void free_medium_twice(void) {
  void *p = malloc(100000);
  free(p);
  free(p);
}
static void free_large_twice(void) {
  void *p = malloc(3u << 20);
  free(p);
  free(p);
}
static void free_large_interior(void) {
  char *p = malloc(3u << 20);
  free(p + 65536);
}

/* Misuse only the checked build stops. */
static void free_twice_not_adjacent(void) { /* free(x); free(y); free(x) */
  void *x = malloc(48), *y = malloc(48);
  free(x);
  free(y);
  free(x);
}
static void *free_in_thread(void *p) {
  free(p);
  return NULL;
}
static void free_twice_other_thread(void) { /* another thread frees it first */
  void *x = malloc(48);
  pthread_t t;
  pthread_create(&t, NULL, free_in_thread, x);
  pthread_join(t, NULL);
  free(x);
}
static void free_twice_after_flush(void) { /* the first free reached the slab */
  void *x = malloc(48), *many[600];
  free(x);
  for (int i = 0; i < 600; i++) many[i] = malloc(48);
  for (int i = 0; i < 600; i++) free(many[i]);
  free(x);
}
static void write_past_small(void) {
  char *p = launder(malloc(20));
  p[20] = 1;
  free(p);
}
static void write_past_medium(void) {
  char *p = launder(malloc(40000));
  p[40001] = 1;
  free(p);
}
static void write_past_large(void) {
  char *p = launder(malloc(3u << 20));
  p[3u << 20] = 1;
  free(p);
}
static void write_past_realloc(void) {
  char *p = launder(malloc(100));
  p[100] = 1;
  keep = realloc(p, 200);
}
static void realloc_freed(void) {
  void *p = malloc(100);
  free(p);
  keep = realloc(p, 200);
}
static void usable_freed(void) {
  void *p = malloc(100);
  free(p);
  keep = (void *)malloc_usable_size(p);
}
static void write_after_free(void) { /* found when the block is handed out again */
  char *p = launder(malloc(64));
  free(p);
  p = launder(p);
  p[20] = 1;
  keep = malloc(64);
}

static void test_fatal(bool checked) {
  /* What the release build stops (README, "Misuse"), and the checked build too. */
  expect_fatal(free_stack_pointer, "hakmem: free(): invalid pointer 0x");
  expect_fatal(free_static_pointer, "hakmem: free(): invalid pointer 0x");
  expect_fatal(free_twice, "hakmem: free(): double free 0x");
  expect_fatal(free_interior_16, "hakmem: free(): invalid pointer 0x");
  expect_fatal(free_interior_48, "hakmem: free(): invalid pointer 0x");
  expect_fatal(free_interior_8, "hakmem: free(): invalid pointer 0x");
  expect_fatal(free_interior_large_class, "hakmem: free(): invalid pointer 0x");
  expect_fatal(realloc_interior, "hakmem: realloc(): invalid pointer 0x");
  expect_fatal(usable_interior, "hakmem: malloc_usable_size(): invalid pointer 0x");
  expect_fatal(realloc_stack_pointer, "hakmem: realloc(): invalid pointer 0x");
  expect_fatal(free_medium_interior, "hakmem: free(): invalid pointer 0x");
  expect_fatal(free_medium_twice, "hakmem: free(): double free 0x");
  expect_fatal(free_large_twice, "hakmem: free(): double free 0x");
  expect_fatal(free_large_interior, "hakmem: free(): invalid pointer 0x");
  if (!checked) return;
  expect_fatal(free_twice_not_adjacent, "hakmem: free(): double free 0x");
  expect_fatal(free_twice_other_thread, "hakmem: free(): double free 0x");
  expect_fatal(free_twice_after_flush, "hakmem: free(): double free 0x");
  expect_fatal(write_past_small, "hakmem: free(): write past the end of the block at 0x");
  expect_fatal(write_past_medium, "hakmem: free(): write past the end of the block at 0x");
  expect_fatal(write_past_large, "hakmem: free(): write past the end of the block at 0x");
  expect_fatal(write_past_realloc, "hakmem: realloc(): write past the end of the block at 0x");
  expect_fatal(realloc_freed, "hakmem: realloc(): freed block 0x");
  expect_fatal(usable_freed, "hakmem: malloc_usable_size(): freed block 0x");
  expect_fatal(write_after_free, "hakmem: malloc(): write to a freed block found when reusing it at 0x");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: api <variant>\n");
    return 2;
  }
  /* A checked build (<variant>-check) stops more misuse and always moves a
   * block on realloc. */
  bool checked = strstr(argv[1], "-check") != NULL;
  test_identity(argv[1]);
  test_malloc_free();
  test_calloc();
  test_realloc(checked);
  test_aligned();
  test_big_block(checked);
  test_fatal(checked);
  int rc = check_report("api");
  return rc == 0 && skipped ? 77 : rc; /* 77: a check could not run here (SKIP) */
}
