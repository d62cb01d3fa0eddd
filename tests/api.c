/* api.c — conformance of the exported malloc API, run under
 * LD_PRELOAD=build/<variant>/libhakmem.so: every function and its edge cases,
 * alignments from 1 to 1 MiB, usable sizes, errno on failure, a 5 GiB block,
 * and each misuse the README says is stopped, with its one-line report (the
 * release build's list; with a <variant>-check argument, the checked build's
 * too), each committed in a child process.
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
  void *s = malloc(100);
  if (checked) CHECK(malloc_usable_size(s) == 100, "checked build: the usable size is the size asked for");
  void *s2 = realloc(s, 90);
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

/* ---- misuse: README, "Misuse: what is stopped" ------------------------------------------ */
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

/* The calls that take a pointer: g_call says which one commits the misuse. */
static const char *const call_names[] = {"free()", "realloc()", "malloc_usable_size()"};
enum { N_CALLS = 3 };
static int g_call;
static void *volatile keep;
static void misuse_call(void *p) {
  if (g_call == 0) free(p);
  else if (g_call == 1) keep = realloc(p, 100);
  else keep = (void *)malloc_usable_size(p);
}
/* expect_fatal for each call: "hakmem: <call>: <fault> 0x". */
static void expect_fatal_calls(void (*fn)(void), const char *fault) {
  for (g_call = 0; g_call < N_CALLS; g_call++) {
    char expect[128];
    snprintf(expect, sizeof expect, "hakmem: %s: %s 0x", call_names[g_call], fault);
    expect_fatal(fn, expect);
  }
}

/* The pointer, hidden from the compiler's bounds and lifetime analysis. */
static char *launder(void *p) {
  keep = p;
  return keep;
}
/* hakmem's hak_flush (every magazine of the thread back to its slabs, empty
 * slabs, cached ranges and the transfer cache back to the OS), found at run
 * time since the program knows nothing of hakmem. */
static void flush(void) {
  void (*f)(void) = (void (*)(void))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_flush");
  if (f == NULL) {
    fprintf(stderr, "no hak_flush\n");
    _exit(3);
  }
  f();
}
static void (*thread_fn)(void);
static void *thread_main(void *arg) {
  (void)arg;
  thread_fn();
  return NULL;
}
/* Runs fn in a new thread (a heap of its own) and waits for it to exit. */
static void in_thread(void (*fn)(void)) {
  pthread_t t;
  thread_fn = fn;
  if (pthread_create(&t, NULL, thread_main, NULL) == 0) pthread_join(t, NULL);
}

/* Pointers outside hakmem's memory. */
static char not_ours[64];
static void on_stack(void) {
  char local[64];
  misuse_call(launder(local + 16));
}
static void on_static(void) { misuse_call(not_ours + 16); }
static void on_libc_block(void) { /* a block of glibc's own malloc */
  void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  void *(*libc_malloc)(size_t) = libc ? (void *(*)(size_t))(uintptr_t)dlsym(libc, "malloc") : NULL;
  if (libc_malloc == NULL || libc_malloc == malloc) _exit(3);
  misuse_call(libc_malloc(64));
}
static void small_gone_thread(void) { /* its slab empty, then the pool's memory back to the OS */
  char *x = launder(malloc(48));
  free(x);
  flush();
  misuse_call(x);
}
static void on_small_gone(void) {
  flush();
  in_thread(small_gone_thread);
}
static void on_medium_gone(void) { /* its chunk empty, then back to the OS */
  char *p = launder(malloc(100000));
  free(p);
  flush();
  misuse_call(p);
}
static void on_large_gone(void) {
  char *p = launder(malloc(3u << 20));
  free(p);
  flush();
  misuse_call(p);
}

/* A pointer inside a block: g_size bytes asked, g_off bytes in. */
static size_t g_size, g_off;
static void inside_block(void) {
  char *p = malloc(g_size);
  misuse_call(p + g_off);
}

/* Double frees. */
static void free_twice(void) { /* the same block twice in a row */
  void *p = malloc(32);
  free(p);
  free(p);
}
static void *g_block;
static void free_block_twice(void) {
  free(g_block);
  free(g_block);
}
static void free_twice_not_owner(void) { /* a thread frees another's block twice */
  g_block = malloc(48);
  in_thread(free_block_twice);
}
static void free_medium_twice(void) {
  void *p = malloc(100000);
  free(p);
  free(p);
}
static void free_medium_merged(void) { /* freed twice after its run merged with the free run before it */
  char *b[16];
  for (int i = 0; i < 16; i++) b[i] = malloc(100000);
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++)
      if (b[j] == b[i] + 102400) { /* 25 pages: b[j]'s run follows b[i]'s */
        free(b[i]);
        free(b[j]);
        free(b[j]);
        _exit(0);
      }
  fprintf(stderr, "no two neighbouring runs among 16\n");
  _exit(3);
}
static void free_large_twice(void) {
  void *p = malloc(3u << 20);
  free(p);
  free(p);
}

/* A block-aligned pointer that hakmem never handed out: in a new thread
 * (after hak_flush, so its first refill takes a fresh slab), the block after
 * the first one malloc returns: magazines hand a batch out from its highest
 * block down, so p - q is the block size and p + (p - q) lies past every
 * block the slab has handed out. */
static char *fresh_neighbour(void) {
  char *p = malloc(48), *q = malloc(48);
  return p + (p - q);
}
static void neighbour_flush_thread(void) {
  free(fresh_neighbour());
  flush();
}
static void neighbour_at_flush(void) {
  flush();
  in_thread(neighbour_flush_thread);
}
static void neighbour_exit_thread(void) { free(fresh_neighbour()); }
static void neighbour_at_exit(void) {
  flush();
  in_thread(neighbour_exit_thread);
}
static void *g_many[3000];
static void neighbour_full_thread(void) { /* then frees fill the magazine, again and again */
  free(fresh_neighbour());
  for (int i = 0; i < 3000; i++) free(g_many[i]);
}
static void neighbour_when_full(void) {
  flush();
  for (int i = 0; i < 3000; i++) g_many[i] = malloc(48);
  in_thread(neighbour_full_thread);
}
static void neighbour_call_thread(void) { /* stopped at the call, or not at all: no exit, no flush */
  misuse_call(fresh_neighbour());
  _exit(0);
}
static void neighbour_call(void) {
  flush();
  in_thread(neighbour_call_thread);
}

/* Misuse only the checked build stops. */
static void free_twice_not_adjacent(void) { /* free(x); free(y); free(x) */
  void *x = malloc(48), *y = malloc(48);
  free(x);
  free(y);
  free(x);
}
static void free_block(void) { free(g_block); }
static void free_twice_other_thread(void) { /* another thread frees it first */
  g_block = malloc(48);
  in_thread(free_block);
  free(g_block);
}
static void free_twice_after_flush(void) { /* the first free reached the slab */
  void *x = malloc(48), *many[600];
  free(x);
  for (int i = 0; i < 600; i++) many[i] = malloc(48);
  for (int i = 0; i < 600; i++) free(many[i]);
  free(x);
}
static void alloc_free_block(void) {
  g_block = malloc(48);
  free(g_block);
}
static void freed_slab_emptied(void) { /* the thread's exit empties the slab, which waits in the pool */
  flush();
  in_thread(alloc_free_block);
  misuse_call(g_block);
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
static void write_past_large_4095(void) { /* the last byte of the canary's 4 KiB */
  char *p = launder(malloc(3u << 20));
  p[(3u << 20) + 4095] = 1;
  free(p);
}
static void write_past_trailer(void) { /* the block's last byte: 40000 asked, 10 pages */
  char *p = launder(malloc(40000));
  p[40959] = 1;
  free(p);
}
static void write_past_realloc(void) {
  char *p = launder(malloc(100));
  p[100] = 1;
  keep = realloc(p, 200);
}
static void write_past_usable(void) {
  char *p = launder(malloc(100));
  p[100] = 1;
  keep = (void *)malloc_usable_size(p);
}
static void realloc_freed(void) {
  void *p = malloc(100);
  free(p);
  keep = realloc(p, 200);
}
static void realloc_zero_freed(void) {
  void *p = malloc(100);
  free(p);
  keep = realloc(p, 0);
}
static void usable_freed(void) {
  void *p = malloc(100);
  free(p);
  keep = (void *)malloc_usable_size(p);
}
/* A write g_off bytes into a freed block of g_size bytes, found when the
 * block is handed out again (the next malloc of its size). */
static void write_after_free(void) {
  char *p = launder(malloc(g_size));
  free(p);
  p = launder(p);
  p[g_off] = 1;
  keep = malloc(g_size);
}
/* The same, the block back in its slab first (with a neighbour kept, so that
 * the slab stays): in a list variant, bytes 0-7 hold its free-list link. */
static void until_handed_out(void *x) {
  for (int i = 0; i < 100000; i++)
    if ((keep = malloc(64)) == x) break;
}
static void write_after_free_in_slab(void) {
  flush();
  char *a[4];
  for (int i = 0; i < 4; i++) a[i] = launder(malloc(64));
  free(a[1]);
  flush();
  a[1][0] = 1;
  until_handed_out(a[1]);
}
/* The same, the block freed by another thread: that thread's exit sends it
 * home as a remote free (its link in bytes 0-7) or, in hybrid, through the
 * transfer cache. */
static void write_after_free_remote(void) {
  flush();
  char *a[4];
  for (int i = 0; i < 4; i++) a[i] = launder(malloc(64));
  g_block = a[1];
  in_thread(free_block);
  a[1][0] = 1;
  until_handed_out(a[1]);
}

static void test_fatal(const char *variant, bool checked) {
  /* Bitmap variants keep a slab's free blocks in a bitmap, the others in a list. */
  bool bitmap = strncmp(variant, "bitmap", 6) == 0 || strncmp(variant, "hybrid", 6) == 0 ||
                strncmp(variant, "large_mappings", 14) == 0; /* large_mappings: hybrid with the large mappings of before */
  /* What the release build stops (README, "Misuse"), and the checked build too. */
  expect_fatal_calls(on_stack, "invalid pointer");
  expect_fatal_calls(on_static, "invalid pointer");
  expect_fatal_calls(on_libc_block, "invalid pointer");
  expect_fatal_calls(on_small_gone, "invalid pointer");
  expect_fatal_calls(on_medium_gone, "invalid pointer");
  expect_fatal_calls(on_large_gone, "invalid pointer");
  const size_t inside[][2] = {{64, 16}, {64, 8}, {64, 48}, {20000, 4096}, {100000, 4096}, {3u << 20, 65536}};
  for (unsigned k = 0; k < sizeof inside / sizeof inside[0]; k++) {
    g_size = inside[k][0];
    g_off = inside[k][1];
    expect_fatal_calls(inside_block, "invalid pointer");
  }
  expect_fatal(free_twice, "hakmem: free(): double free 0x");
  expect_fatal(free_twice_not_owner, "hakmem: free(): double free 0x");
  expect_fatal(free_medium_twice, "hakmem: free(): double free 0x");
  expect_fatal(free_medium_merged, "hakmem: free(): invalid pointer 0x");
  expect_fatal(free_large_twice, "hakmem: free(): double free 0x");
  /* A block hakmem never handed out: the release build stops it when the
   * magazine's blocks go back to their slab; the checked build at the call. */
  const char *never = checked ? "hakmem: free(): invalid pointer 0x"
                      : bitmap ? "hakmem: free(): double free or invalid pointer 0x"
                               : "hakmem: free(): invalid pointer 0x";
  expect_fatal(neighbour_at_flush, never);
  expect_fatal(neighbour_at_exit, never);
  expect_fatal(neighbour_when_full, never);
  if (!checked) return;
  expect_fatal_calls(neighbour_call, "invalid pointer");
  expect_fatal(free_twice_not_adjacent, "hakmem: free(): double free 0x");
  expect_fatal(free_twice_other_thread, "hakmem: free(): double free 0x");
  expect_fatal(free_twice_after_flush, "hakmem: free(): double free 0x");
  g_call = 0;
  expect_fatal(freed_slab_emptied, "hakmem: free(): double free 0x");
  g_call = 1;
  expect_fatal(freed_slab_emptied, "hakmem: realloc(): freed block 0x");
  g_call = 2;
  expect_fatal(freed_slab_emptied, "hakmem: malloc_usable_size(): freed block 0x");
  expect_fatal(write_past_small, "hakmem: free(): write past the end of the block at 0x");
  expect_fatal(write_past_medium, "hakmem: free(): write past the end of the block at 0x");
  expect_fatal(write_past_large, "hakmem: free(): write past the end of the block at 0x");
  expect_fatal(write_past_large_4095, "hakmem: free(): write past the end of the block at 0x");
  expect_fatal(write_past_trailer, "hakmem: free(): write past the end of the block (trailer overwritten) at 0x");
  expect_fatal(write_past_realloc, "hakmem: realloc(): write past the end of the block at 0x");
  expect_fatal(write_past_usable, "hakmem: malloc_usable_size(): write past the end of the block at 0x");
  expect_fatal(realloc_freed, "hakmem: realloc(): freed block 0x");
  expect_fatal(realloc_zero_freed, "hakmem: realloc(): freed block 0x");
  expect_fatal(usable_freed, "hakmem: malloc_usable_size(): freed block 0x");
  /* Every byte of a freed small block: bytes 0-7, the rest of a 64-byte
   * block, and bytes past 4 KiB of a 20000-byte one. */
  const size_t written[][2] = {{64, 0}, {64, 7}, {64, 8}, {64, 63}, {20000, 4096}, {20000, 19999}};
  for (unsigned k = 0; k < sizeof written / sizeof written[0]; k++) {
    g_size = written[k][0];
    g_off = written[k][1];
    expect_fatal(write_after_free, "hakmem: malloc(): write to a freed block found when reusing it at 0x");
  }
  expect_fatal(write_after_free_in_slab, "hakmem: malloc(): write to a freed block found when reusing it at 0x");
  expect_fatal(write_after_free_remote, strncmp(variant, "hybrid", 6) == 0 || strncmp(variant, "large_mappings", 14) == 0
                                            ? "hakmem: malloc(): write to a freed block found when reusing it at 0x"
                                            : "hakmem: remote free: write to a freed block found at 0x");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: api <variant>\n");
    return 2;
  }
  /* A checked build (<variant>-check) stops more misuse, always moves a
   * block on realloc and gives the requested size as usable. */
  bool checked = strstr(argv[1], "-check") != NULL;
  test_identity(argv[1]);
  test_malloc_free();
  test_calloc();
  test_realloc(checked);
  test_aligned();
  test_big_block(checked);
  test_fatal(argv[1], checked);
  int rc = check_report("api");
  return rc == 0 && skipped ? 77 : rc; /* 77: a check could not run here (SKIP) */
}
