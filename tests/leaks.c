/* leaks.c — small programs whose leaks the leak checker must count as
 * valgrind's memcheck does (tests/leakcheck.sh runs each scenario under both
 * and compares definitely lost, indirectly lost, possibly lost and still
 * reachable, bytes and blocks).
 *
 *   leaks SCENARIO     direct | indirect | cycle | possible | reachable |
 *                      tiers | threads | thread-exit | thread-blocked | clean |
 *                      source | big-root | big-root-churn | tree |
 *                      check-midrun | check-threads | ignore
 *
 * tree: a root block of 64 bytes holding four children of 64 bytes, each
 * holding a grandchild of 176 bytes, all lost: 1,024 bytes, 64 direct and
 * 960 indirect. The root is the child block with the highest address, so
 * that each child is reached, as a clique of its own with its grandchild,
 * before the root's clique takes them in (memcheck's order of cliques).
 * The last three run under hakmem only (tests/leakcheck.sh), calling its API
 * through dlsym, and print what it returned on stdout:
 * check-midrun: the tree and a direct leak of 24 bytes, then hak_leak_check,
 * again from a deeper frame (over the stack the first used), then more
 * allocations, all freed: the second check and the exit check must say the
 * same as the first.
 * check-threads: the tree, then hak_leak_check three times while two
 * threads allocate and free blocks of every tier (some unmapped at once) and
 * a third calls hak_leak_check too, at the same time.
 * ignore: hak_leak_ignore on a table of three blocks (which stay reachable
 * through it), on a lone block, and on what is not a live block.
 *
 * thread-exit: a thread leaks a block and exits; the only copy of its
 * address is left in the dead thread's stack, which glibc keeps mapped (for
 * the next thread): definitely lost for memcheck, which scans a stack only
 * above its stack pointer. thread-blocked: a thread leaks a block in a deep
 * frame that has returned (a stale copy below its stack pointer), holds
 * another in a live frame, and is blocked in read() when main exits.
 * big-root (not compared with memcheck: tests/leakcheck.sh runs it under
 * hakmem only): 64 MiB mapped by the program, full of pointers into 10,000
 * live blocks, so that the exit check scans it for a second or so, while
 * 4,000 small and 4,000 100 KB blocks just freed are given back to the OS by
 * hakmem's scavenger meanwhile. big-root-churn: the same while a thread of
 * the program allocates and frees 1 MiB blocks all through the check.
 *
 * Every leak is made in a function of its own, and the stack below main is
 * cleared before it returns, so that no stale copy of a pointer is left in a
 * dead frame (both checkers scan the stack conservatively). No freed address
 * stays in a live variable (hakmem reuses freed addresses at once, memcheck
 * delays it). The source scenario is built with HAK_TRACE_SOURCE and linked
 * with libhakmem.a (tests/tests.mk). */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <dlfcn.h>
#include <errno.h>
#include "../core/hakmem.h" /* the leak checker's API: its types (the calls through dlsym) */
#ifdef HAK_TRACE_SOURCE
#define ALLOC(n) hak_malloc(n)
#else
#define ALLOC(n) malloc(n)
#endif

#define NOINLINE __attribute__((noinline))

struct node {
  struct node *next;
  char payload[40];
};

/* Volatile: a store to a static that is never read may be dropped. */
static void *volatile reach_global;          /* still reachable through a global */
static struct node *volatile reach_list;     /* ... and a list hanging from one */
static char *volatile interior;              /* only a pointer into a block: possibly lost */
static void *volatile sink;

static NOINLINE void touch(void *p, size_t n) {
  if (p == NULL) {
    fprintf(stderr, "leaks: out of memory\n");
    exit(2);
  }
  memset(p, 0x5a, n);
  sink = NULL;
}

/* x->next = n, out of line: the compiler may not drop the store to a block
 * that is never read again. */
static NOINLINE void link_to(struct node *x, struct node *n) { x->next = n; }

static NOINLINE void leak_direct_small(void) { touch(ALLOC(24), 24); }
static NOINLINE void leak_direct_page(void) { touch(ALLOC(4096), 4096); }
static NOINLINE void leak_direct_many(void) {
  for (int i = 0; i < 10; i++) touch(ALLOC(100), 100);
}
static NOINLINE void freed_ok(void) {
  for (int i = 0; i < 50; i++) {
    void *p = ALLOC((size_t)(16 + i));
    touch(p, 16);
    free(p);
  }
}

/* A list of n nodes whose head is lost: one direct, n - 1 indirect. */
static NOINLINE void leak_list(int n) {
  struct node *head = NULL;
  for (int i = 0; i < n; i++) {
    struct node *x = ALLOC(sizeof *x);
    touch(x, sizeof *x);
    link_to(x, head);
    head = x;
  }
  sink = NULL;
}

/* A binary tree of depth d, root lost: one direct, the rest indirect. */
static NOINLINE void *tree(int d) {
  void **t = ALLOC(3 * sizeof(void *));
  touch(t, 3 * sizeof(void *));
  t[0] = d > 0 ? tree(d - 1) : NULL;
  t[1] = d > 0 ? tree(d - 1) : NULL;
  return t;
}
static NOINLINE void leak_tree(void) { sink = tree(4); sink = NULL; }

/* Two blocks pointing at each other, neither reachable: memcheck calls the
 * first in address order definitely lost and the other indirectly. */
static NOINLINE void leak_cycle(void) {
  struct node *a = ALLOC(sizeof *a), *b = ALLOC(sizeof *b);
  touch(a, sizeof *a);
  touch(b, sizeof *b);
  link_to(a, b);
  link_to(b, a);
}

static NOINLINE void make_possible(void) {
  char *p = ALLOC(256);
  touch(p, 256);
  interior = p + 64; /* only an interior pointer survives */
  struct node *x = ALLOC(sizeof *x); /* reached only from the possibly lost block */
  touch(x, sizeof *x);
  memcpy(p + 128, &x, sizeof x);
}

static NOINLINE void make_reachable(void) {
  void *g = ALLOC(333);
  touch(g, 333);
  reach_global = g;
  for (int i = 0; i < 5; i++) {
    struct node *x = ALLOC(sizeof *x);
    touch(x, sizeof *x);
    link_to(x, reach_list);
    reach_list = x;
  }
  static void *volatile in_function;
  in_function = calloc(7, 9);
  touch(in_function, 63);
}

/* Every tier and most allocation functions. */
static NOINLINE void leak_tiers(void) {
  touch(ALLOC(40000), 40000);                 /* medium */
  touch(ALLOC(3 << 20), 3 << 20);             /* large */
  void *a = NULL;
  if (posix_memalign(&a, 256, 1000) != 0) a = NULL;
  touch(a, 1000);
  touch(aligned_alloc(4096, 8192), 8192);
  touch(calloc(3, 1000), 3000);
  char *r = ALLOC(10);
  touch(r, 10);
  r = realloc(r, 50000);                      /* moved: the old block is freed */
  touch(r, 50000);
  char *s = strdup("a string that leaks");
  touch(s, 5);
}

static void *thread_main(void *arg) {
  (void)arg;
  touch(ALLOC(1234), 1234);                   /* leaked by a thread */
  void *g = ALLOC(77);                        /* kept reachable by it */
  touch(g, 77);
  reach_global = g;
  return NULL;
}
static NOINLINE void threads(void) {
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, thread_main, NULL);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
}

/* thread-exit: the address lives only in the thread's frame (volatile: in
 * its stack, not a register) when the thread returns. */
static void *thread_exit_main(void *arg) {
  (void)arg;
  void *volatile p = ALLOC(2222);
  touch(p, 2222);
  return NULL;
}
static NOINLINE void thread_exit(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, thread_exit_main, NULL) != 0 || pthread_join(t, NULL) != 0) exit(2);
}

/* thread-blocked: the leak's address is left in a frame some 4 KiB below
 * the frame the thread then blocks in, far below what read() uses. */
static int blocked_pipe[2];
static atomic_int blocked_tid;
static NOINLINE void leak_deep(int depth) {
  volatile char pad[1024];
  pad[0] = (char)depth;
  if (depth > 0) {
    leak_deep(depth - 1);
  } else {
    void *volatile p = ALLOC(3333);
    touch(p, 3333);
  }
  __asm__ volatile("" : : "r"(pad) : "memory");
}
static void *thread_blocked_main(void *arg) {
  (void)arg;
  void *volatile held = ALLOC(444);
  touch(held, 444);
  leak_deep(4); /* last: hakmem's malloc clears the dead stack below its caller */
  /* No copy in a scratch register either (memcheck reads the registers). */
#if defined(__x86_64__)
  __asm__ volatile("xor %%eax, %%eax; xor %%ecx, %%ecx; xor %%edx, %%edx; xor %%esi, %%esi; xor %%edi, %%edi;"
                   "xor %%r8d, %%r8d; xor %%r9d, %%r9d; xor %%r10d, %%r10d; xor %%r11d, %%r11d"
                   : : : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory");
#endif
  atomic_store(&blocked_tid, (int)gettid());
  char c;
  while (read(blocked_pipe[0], &c, 1) != 0) {} /* nobody writes: blocked until the process exits */
  return held;
}
/* Waits until the thread sits in read() (syscall 0 in /proc/.../syscall). */
static NOINLINE void thread_blocked(void) {
  pthread_t t;
  if (pipe(blocked_pipe) != 0 || pthread_create(&t, NULL, thread_blocked_main, NULL) != 0) exit(2);
  const struct timespec ms = {0, 1000000};
  while (atomic_load(&blocked_tid) == 0) nanosleep(&ms, NULL);
  char path[64], buf[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", atomic_load(&blocked_tid));
  for (;;) {
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    if (n < 0) break; /* no such file here: the thread is given the time below */
    buf[n] = '\0';
    if (strncmp(buf, "0 ", 2) == 0) return;
    nanosleep(&ms, NULL);
  }
  const struct timespec s = {0, 200000000};
  nanosleep(&s, NULL);
}

/* big-root: see the head of the file. churn: a thread of the program also
 * allocates 200 blocks of 1 MiB and frees them, again and again, all
 * through the exit check (large blocks: past the large cache's 64 ranges,
 * a free unmaps). */
static void **volatile big_keep;
static void *churn_main(void *arg) {
  (void)arg;
  static void *p[200];
  for (;;) {
    for (int i = 0; i < 200; i++) touch(p[i] = ALLOC((size_t)1 << 20), 64);
    for (int i = 0; i < 200; i++) free(p[i]); /* beyond the cache's 64 ranges: unmapped */
  }
  return NULL;
}
static NOINLINE void big_root(bool churn) {
  size_t bytes = (size_t)64 << 20, nkeep = 10000;
  big_keep = ALLOC(nkeep * sizeof *big_keep);
  touch(big_keep, nkeep * sizeof *big_keep);
  for (size_t i = 0; i < nkeep; i++) touch(big_keep[i] = ALLOC(16), 16);
  uintptr_t *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) exit(2);
  for (size_t i = 0; i < bytes / sizeof *m; i++) m[i] = (uintptr_t)big_keep[(i * 7919) % nkeep] + 8;
  static void *small[4000], *medium[4000];
  for (int i = 0; i < 4000; i++) {
    touch(small[i] = ALLOC(48), 48);
    touch(medium[i] = ALLOC(100000), 100);
  }
  for (int i = 0; i < 4000; i++) {
    free(small[i]);
    free(medium[i]);
  }
  memset(small, 0, sizeof small);
  memset(medium, 0, sizeof medium);
  pthread_t t;
  if (churn && pthread_create(&t, NULL, churn_main, NULL) != 0) exit(2);
}

/* tree: see the head of the file. */
static NOINLINE void leak_tree_figures(void) {
  void **b[5];
  for (int i = 0; i < 5; i++) touch(b[i] = ALLOC(64), 64);
  int root = 0;
  for (int i = 1; i < 5; i++)
    if ((uintptr_t)b[i] > (uintptr_t)b[root]) root = i;
  for (int i = 0, k = 0; i < 5; i++) {
    if (i == root) continue;
    void *grandchild = ALLOC(176);
    touch(grandchild, 176);
    b[i][0] = grandchild;
    b[root][k++] = b[i];
  }
  memset(b, 0, sizeof b);
  __asm__ volatile("" : : "r"(b) : "memory");
}

/* The leak checker's calls (hakmem.h), found in the preloaded library. */
static size_t (*leak_check)(hak_leak_counts_t *);
static int (*leak_ignore)(const void *);
static NOINLINE void find_api(void) {
  leak_check = (size_t(*)(hak_leak_counts_t *))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_leak_check");
  leak_ignore = (int (*)(const void *))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_leak_ignore");
  if (leak_check == NULL || leak_ignore == NULL) {
    fprintf(stderr, "leaks: hakmem is not preloaded (no hak_leak_check)\n");
    exit(2);
  }
  printf("leaks: hak_leak_check found\n"); /* stdout's buffer: allocated now, before any check */
  fflush(stdout);
}

static NOINLINE void midrun_check(const char *what) {
  hak_leak_counts_t c;
  memset(&c, 0xff, sizeof c);
  size_t lost = leak_check(&c);
  printf("%s: returned %zu checked %d definitely %zu/%zu indirectly %zu/%zu possibly %zu/%zu reachable %zu/%zu "
         "suppressed %zu/%zu ignored %zu/%zu\n", what, lost, c.checked, c.definite_bytes, c.definite_blocks,
         c.indirect_bytes, c.indirect_blocks, c.possible_bytes, c.possible_blocks, c.reachable_bytes,
         c.reachable_blocks, c.suppressed_bytes, c.suppressed_blocks, c.ignored_bytes, c.ignored_blocks);
  fflush(stdout);
}

/* The same from a frame 16 KiB deeper: the stack the first check used, dead
 * since, lies between this frame and main's, scanned as the thread's stack. */
static NOINLINE void midrun_check_deep(const char *what) {
  volatile char pad[16384];
  pad[0] = 0;
  midrun_check(what);
  __asm__ volatile("" : : "r"(pad) : "memory");
}

static atomic_bool churn_stop;
static void *check_main(void *arg) {
  (void)arg;
  midrun_check("check-threads");
  return NULL;
}
static void *churn_tiers_main(void *arg) {
  (void)arg;
  static const size_t sizes[] = {16, 200, 40000, (size_t)3 << 20};
  for (unsigned i = 0; !atomic_load(&churn_stop); i++) {
    void *p = ALLOC(sizes[i % 4]);
    touch(p, 16);
    free(p);
  }
  return NULL;
}

/* ignore: prints each call's result as "<case> <return> <errno name>". */
static NOINLINE void ignore_case(const char *name, const void *p) {
  errno = 0;
  int r = leak_ignore(p);
  printf("ignore %s %d %s\n", name, r, r == 0 ? "-" : errno == EINVAL ? "EINVAL" : "other");
}
static NOINLINE void ignore_blocks(void) {
  void **table = ALLOC(4 * sizeof(void *)); /* 32 bytes, ignored: its three blocks stay reachable */
  touch(table, 4 * sizeof(void *));
  for (int i = 0; i < 3; i++) touch(table[i] = ALLOC(48), 48);
  table[3] = NULL;
  ignore_case("table", table);
  ignore_case("table-again", table);
  void *lone = ALLOC(100); /* ignored, nothing in it */
  touch(lone, 100);
  ignore_case("lone", lone);
  ignore_case("null", NULL);
  int local;
  ignore_case("stack", &local);
  ignore_case("interior", (char *)table + 8);
  void *freed = ALLOC(40); /* ignored, freed: the block at its address next is not */
  touch(freed, 40);
  ignore_case("before-free", freed);
  volatile uintptr_t freed_at = (uintptr_t)freed; /* (the address only, not used as a pointer) */
  free(freed);
  ignore_case("freed", (void *)freed_at);
  touch(ALLOC(40), 40); /* leaked (likely at the same address) */
  char *moved = ALLOC(16); /* ignored, then moved by realloc: leaked */
  touch(moved, 16);
  ignore_case("before-realloc", moved);
  moved = realloc(moved, 100000);
  touch(moved, 100000);
  void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ignore_case("mmap", page);
  munmap(page, 4096);
  leak_direct_small(); /* not ignored: reported */
  fflush(stdout);
}

static NOINLINE void clean(void) {
  void *p[20];
  for (int i = 0; i < 20; i++) touch(p[i] = ALLOC((size_t)(i * 100 + 1)), 1);
  for (int i = 0; i < 20; i++) free(p[i]);
}

/* Clears the stack below the caller: no stale pointer left for the scan. */
static NOINLINE void clear_stack(void) {
  char area[32768];
  explicit_bzero(area, sizeof area);
  __asm__ volatile("" : : "r"(area) : "memory");
}

int main(int argc, char **argv) {
  const char *s = argc == 2 ? argv[1] : "";
  if (strcmp(s, "direct") == 0) {
    leak_direct_small();
    leak_direct_page();
    leak_direct_many();
    freed_ok();
  } else if (strcmp(s, "indirect") == 0) {
    leak_list(8);
    leak_tree();
  } else if (strcmp(s, "cycle") == 0) {
    leak_cycle();
  } else if (strcmp(s, "possible") == 0) {
    make_possible();
  } else if (strcmp(s, "reachable") == 0) {
    make_reachable();
  } else if (strcmp(s, "tiers") == 0) {
    leak_tiers();
  } else if (strcmp(s, "threads") == 0) {
    threads();
  } else if (strcmp(s, "thread-exit") == 0) {
    thread_exit();
  } else if (strcmp(s, "thread-blocked") == 0) {
    thread_blocked();
  } else if (strcmp(s, "big-root") == 0 || strcmp(s, "big-root-churn") == 0) {
    big_root(strcmp(s, "big-root-churn") == 0);
  } else if (strcmp(s, "clean") == 0) {
    clean();
  } else if (strcmp(s, "tree") == 0) {
    leak_tree_figures();
  } else if (strcmp(s, "check-midrun") == 0) {
    find_api();
    leak_tree_figures();
    leak_direct_small();
    clear_stack();
    midrun_check("check-midrun");
    midrun_check_deep("check-midrun");
    freed_ok(); /* the program goes on: more calls, all freed */
    clean();
  } else if (strcmp(s, "check-threads") == 0) {
    find_api();
    leak_tree_figures();
    pthread_t t[3];
    for (int i = 0; i < 2; i++)
      if (pthread_create(&t[i], NULL, churn_tiers_main, NULL) != 0) exit(2);
    if (pthread_create(&t[2], NULL, check_main, NULL) != 0) exit(2);
    clear_stack();
    for (int i = 0; i < 3; i++) midrun_check("check-threads");
    pthread_join(t[2], NULL);
    atomic_store(&churn_stop, true);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  } else if (strcmp(s, "ignore") == 0) {
    find_api();
    ignore_blocks();
  } else if (strcmp(s, "source") == 0) {
    leak_direct_small();
    leak_list(3);
  } else {
    fprintf(stderr, "usage: leaks direct|indirect|cycle|possible|reachable|tiers|threads|thread-exit|"
                    "thread-blocked|clean|source|big-root|big-root-churn|tree|check-midrun|check-threads|ignore\n");
    return 2;
  }
  clear_stack();
  return 0;
}
