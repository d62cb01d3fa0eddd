/* leaks.c — small programs whose leaks the leak checker must count as
 * valgrind's memcheck does (tests/leakcheck.sh runs each scenario under both
 * and compares definitely lost, indirectly lost, possibly lost and still
 * reachable, bytes and blocks).
 *
 *   leaks SCENARIO     direct | indirect | cycle | possible | reachable |
 *                      tiers | threads | thread-exit | thread-blocked | clean |
 *                      source | big-root | big-root-churn
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
#ifdef HAK_TRACE_SOURCE
#include "hakmem.h"
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
  } else if (strcmp(s, "source") == 0) {
    leak_direct_small();
    leak_list(3);
  } else {
    fprintf(stderr, "usage: leaks direct|indirect|cycle|possible|reachable|tiers|threads|thread-exit|"
                    "thread-blocked|clean|source|big-root|big-root-churn\n");
    return 2;
  }
  clear_stack();
  return 0;
}
