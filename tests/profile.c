/* profile.c — the program the heap profiler's test profiles
 * (tests/profile.sh): three functions allocate 60 %, 30 % and 10 % of its
 * bytes, each in blocks of its own size (48 B, 4000 B, 100000 B: a small, a
 * larger small and a medium block).
 *
 *   profile inuse N PATH     N x 12,000,000 bytes; the blocks stay live;
 *                            hak_profile_dump(PATH) (the profiler is on from
 *                            HAKMEM_PROFILE)
 *   profile alloc N PREFIX   hak_profile_start(PREFIX), then every block is
 *                            freed at once (short-lived): only the allocated
 *                            space shows them; the profile is dumped at exit
 *   profile fork PREFIX      hak_profile_start(PREFIX), 12 MB allocated and
 *                            held, then a forked child allocates 12 MB more
 *                            and exits: its profile is PREFIX.<child>.0001.heap,
 *                            the parent's PREFIX.<parent>.0001.heap (both
 *                            pids printed)
 *   profile exclusive PREFIX hak_profile_start(PREFIX); the file the next dump
 *                            would take, PREFIX.<pid>.0001.heap, made first by
 *                            the program: hak_profile_dump(NULL) must leave it
 *                            as it is and write PREFIX.<pid>.0002.heap
 *   profile signals N        N x 10,800,000 bytes (small blocks) allocated and freed while a
 *                            timer signal (every 50 us) allocates and frees in
 *                            its handler: the tracking code is interrupted in
 *                            the middle, and must neither deadlock nor lose a
 *                            block (run with the profiler or leak checker on)
 *   profile api              hak_profile_dump without a profile, and
 *                            hak_profile_start without a prefix, fail with EINVAL
 *   profile steps            in use, in blocks of 128 KiB (alloc_step): up to
 *                            40 MiB, down to 8 MiB, up to 40 MiB again, then
 *                            up to 60 MiB (the dumps of HAKMEM_PROFILE_INUSE_INTERVAL)
 *   profile idle MS [SIG AT]  8 MiB in use, then MS ms asleep, allocating
 *                            nothing (the dumps of HAKMEM_PROFILE_TIME_INTERVAL);
 *                            with SIG and AT: kill(self, SIG) after AT ms of it
 *   profile signal SIG N PREFIX  N times: 8 MiB more in use, kill(self, SIG),
 *                            then asleep until PREFIX.<pid>.<n>.heap exists
 *                            (HAKMEM_PROFILE=PREFIX, HAKMEM_PROFILE_SIGNAL=SIG):
 *                            each must come within 1 s while the program
 *                            allocates nothing, and no other dump in the
 *                            500 ms after the last
 * Run under LD_PRELOAD of libhakmem.so (the hak_ functions by dlsym). */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int (*profile_start)(const char *);
static int (*profile_dump)(const char *);
static void *volatile sink;

static void **keep;
static size_t nkeep;

/* Each allocates bytes in blocks of size; keep: hold them (else free each at once). */
static __attribute__((noinline)) void use(void *p, size_t size, int hold) { /* hold <= 0: free at once */
  if (p == NULL) {
    fprintf(stderr, "profile: out of memory\n");
    exit(2);
  }
  ((char *)p)[size - 1] = 1;
  if (hold > 0) keep[nkeep++] = p;
  else free(p);
}

static __attribute__((noinline)) void alloc_sixty(size_t bytes, int hold) {
  for (size_t done = 0; done < bytes; done += 48) use(malloc(48), 48, hold);
}
static __attribute__((noinline)) void alloc_thirty(size_t bytes, int hold) {
  for (size_t done = 0; done < bytes; done += 4000) use(malloc(4000), 4000, hold);
}
static __attribute__((noinline)) void alloc_ten(size_t bytes, int hold) {
  for (size_t done = 0; done < bytes; done += 100000) use(malloc(100000), 100000, hold);
}

/* Interleaved in slices of 12,000,000 bytes (whole blocks of each size), so
 * that the shares are exact and hold over the run. */
#define SLICE 12000000
static void run(size_t slices, int hold) {
  for (size_t i = 0; i < slices; i++) {
    alloc_sixty(SLICE / 10 * 6, hold);
    alloc_thirty(SLICE / 10 * 3, hold);
    if (hold >= 0) alloc_ten(SLICE / 10, hold);
  }
}

/* In use in blocks of 128 KiB, held in keep[] (mapped, so not in the profile):
 * up to bytes, allocating or freeing the last ones. */
#define STEP_BLOCK (128 * 1024)
static __attribute__((noinline)) void alloc_step(size_t bytes) {
  while (nkeep * STEP_BLOCK < bytes) use(malloc(STEP_BLOCK), STEP_BLOCK, 1);
  while (nkeep * STEP_BLOCK > bytes) free(keep[--nkeep]);
}
#define MIB ((size_t)1 << 20)

static void nap(long ms) {
  struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static volatile sig_atomic_t handled;
static void on_alarm(int sig) {
  (void)sig;
  void *a = malloc(24), *b = malloc(5000);
  if (a != NULL) ((char *)a)[0] = 1;
  free(b);
  free(a);
  handled++;
}

int main(int argc, char **argv) {
  profile_start = (int (*)(const char *))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_profile_start");
  profile_dump = (int (*)(const char *))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_profile_dump");
  if (profile_start == NULL || profile_dump == NULL) {
    fprintf(stderr, "profile: hakmem is not preloaded (no hak_profile_start)\n");
    return 2;
  }
  if (argc == 2 && strcmp(argv[1], "api") == 0) {
    int r1 = profile_dump("/nonexistent/x"), e1 = errno;
    int r2 = profile_start(NULL), e2 = errno;
    int r3 = profile_start(""), e3 = errno;
    printf("dump without a profile: %d %s; start(NULL): %d %s; start(\"\"): %d %s\n", r1, strerror(e1), r2,
           strerror(e2), r3, strerror(e3));
    return r1 == -1 && e1 == EINVAL && r2 == -1 && e2 == EINVAL && r3 == -1 && e3 == EINVAL ? 0 : 1;
  }
  if (argc >= 2 && (strcmp(argv[1], "steps") == 0 || strcmp(argv[1], "idle") == 0 || strcmp(argv[1], "signal") == 0)) {
    keep = mmap(NULL, 4096 * sizeof *keep, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (keep == MAP_FAILED) return 2;
  }
  if (argc == 2 && strcmp(argv[1], "steps") == 0) {
    alloc_step(40 * MIB);
    alloc_step(8 * MIB);
    alloc_step(40 * MIB);
    alloc_step(60 * MIB);
    printf("steps: 40, 8, 40, 60 MiB in use\n");
    return 0;
  }
  if ((argc == 3 || argc == 5) && strcmp(argv[1], "idle") == 0) {
    long ms = atol(argv[2]), at = argc == 5 ? atol(argv[4]) : ms;
    alloc_step(8 * MIB);
    nap(at);
    if (argc == 5) kill(getpid(), atoi(argv[3]));
    nap(ms - at);
    printf("idle: %s ms asleep\n", argv[2]);
    return 0;
  }
  if (argc == 5 && strcmp(argv[1], "signal") == 0) {
    int sig = atoi(argv[2]), n = atoi(argv[3]);
    char path[4096];
    double worst = 0;
    for (int i = 1; i <= n; i++) {
      alloc_step((size_t)i * 8 * MIB);
      snprintf(path, sizeof path, "%s.%d.%04d.heap", argv[4], (int)getpid(), i);
      double t0 = mono_ms(), waited = 0;
      kill(getpid(), sig);
      while (access(path, F_OK) != 0 && (waited = mono_ms() - t0) < 1000) nap(5); /* idle: no allocation */
      if (access(path, F_OK) != 0) {
        printf("signal: no %s within 1 s of signal %d\n", path, i);
        return 1;
      }
      if (waited > worst) worst = waited;
    }
    nap(500);
    snprintf(path, sizeof path, "%s.%d.%04d.heap", argv[4], (int)getpid(), n + 1);
    bool extra = access(path, F_OK) == 0;
    printf("signal: %d dumps, each within %.0f ms of its signal; %s\n", n, worst,
           extra ? "and one more" : "no other in 500 ms");
    return extra ? 1 : 0;
  }
  if (argc == 3 && strcmp(argv[1], "signals") == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    /* hakmem's malloc, like glibc's, is not async-signal-safe: a handler
     * that needs a magazine refill while the code it interrupted holds its
     * heap's lock would wait for ever. The handler's sizes are allocated
     * once before, so their magazines hold blocks and it never refills. */
    on_alarm(0);
    struct itimerval it = {{0, 50}, {0, 50}};
    setitimer(ITIMER_REAL, &it, NULL);
    /* No medium block meanwhile (hold -1: alloc_ten left out): a handler's
     * allocation that the profiler samples takes the medium tier's lock,
     * which the interrupted code may hold in a medium malloc or free. */
    run((size_t)strtoul(argv[2], NULL, 10), -1);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("signals: %d handled\n", (int)handled);
    return handled > 10 ? 0 : 1;
  }
  if (argc == 3 && strcmp(argv[1], "fork") == 0) {
    keep = mmap(NULL, 2 * (SLICE / 48 + 1024) * sizeof *keep, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (keep == MAP_FAILED || profile_start(argv[2]) != 0) return 2;
    run(1, 1);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      run(1, 1);
      exit(0);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 1;
    printf("parent %d child %d\n", (int)getpid(), (int)pid);
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "exclusive") == 0) {
    char taken[4096], next[4096], head[64] = "";
    snprintf(taken, sizeof taken, "%s.%d.0001.heap", argv[2], (int)getpid());
    snprintf(next, sizeof next, "%s.%d.0002.heap", argv[2], (int)getpid());
    FILE *f = fopen(taken, "w");
    if (f == NULL || fputs("taken\n", f) < 0 || fclose(f) != 0 || profile_start(argv[2]) != 0) return 2;
    sink = malloc(1000);
    int r = profile_dump(NULL);
    f = fopen(taken, "r");
    bool kept = f != NULL && fgets(head, sizeof head, f) != NULL && strcmp(head, "taken\n") == 0;
    if (f != NULL) fclose(f);
    f = fopen(next, "r");
    bool wrote = f != NULL && fgets(head, sizeof head, f) != NULL && strncmp(head, "heap profile:", 13) == 0;
    if (f != NULL) fclose(f);
    printf("exclusive: dump %d; %s %s; %s %s\n", r, taken, kept ? "kept" : "overwritten or gone", next,
           wrote ? "written" : "missing");
    return r == 0 && kept && wrote ? 0 : 1;
  }
  if (argc != 4 || (strcmp(argv[1], "inuse") != 0 && strcmp(argv[1], "alloc") != 0)) {
    fprintf(stderr, "usage: profile inuse|alloc N PATH | profile fork|exclusive PREFIX | profile signals N | profile api | "
                    "profile steps | profile idle MS [SIG AT] | profile signal SIG N PREFIX\n");
    return 2;
  }
  size_t slices = (size_t)strtoul(argv[2], NULL, 10), total = slices * SLICE;
  int hold = strcmp(argv[1], "inuse") == 0;
  /* the array of blocks held is mapped, not allocated: it is not in the profile */
  keep = mmap(NULL, (total / 48 + 1024) * sizeof *keep, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (keep == MAP_FAILED) return 2;
  if (!hold && profile_start(argv[3]) != 0) {
    perror("hak_profile_start");
    return 1;
  }
  run(slices, hold);
  if (hold && profile_dump(argv[3]) != 0) {
    perror("hak_profile_dump");
    return 1;
  }
  printf("profile: %s %zu bytes done\n", argv[1], total);
  sink = keep;
  return 0;
}
