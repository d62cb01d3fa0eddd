/* options.c — a program for the run-time options' tests (tests/core.sh):
 * what an option may not do to a program's fate, and what a statistics
 * signal does with the program's own handler.
 *
 *   options noop             allocates a little and exits 0 (bad values: the
 *                            message, and the default taken)
 *   options segv             writes through a null pointer: must die of SIGSEGV
 *   options sigint           raise(SIGINT): must die of SIGINT
 *   options stats SIG FILE   raise(SIG), then slow-path calls: the statistics
 *                            must be in FILE (HAKMEM_STATS_SIGNAL=SIG,
 *                            HAKMEM_STATS_FILE=FILE)
 *   options chain FILE       (options-static only: linked with libhakmem.a) a
 *                            handler for SIGUSR1 installed by a constructor
 *                            that runs before hakmem's initialisation:
 *                            raise(SIGUSR1) must run it once, with its
 *                            siginfo, and write the statistics to FILE
 *                            (HAKMEM_STATS_SIGNAL=10)
 *   options profile-chain PREFIX  (options-static only) the same handler with
 *                            the heap profiler's signal (HAKMEM_PROFILE=PREFIX,
 *                            HAKMEM_PROFILE_SIGNAL=10): raise(SIGUSR1) must run
 *                            it once, with its siginfo, and the next sample
 *                            write PREFIX.<pid>.0001.heap (tests/profile.sh)
 *   options after FILE       a handler for SIGUSR2 installed after hakmem's
 *                            (HAKMEM_STATS_SIGNAL=12) replaces it: raise(SIGUSR2)
 *                            runs the program's handler, FILE stays empty
 * Exit status 0 when the mode's expectation holds (the dying modes: they
 * return 3 if they survive). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t hits, hits_info;
static void *volatile sink;
static int *volatile nowhere; /* NULL, which the compiler cannot see */

static void counting_handler(int sig, siginfo_t *info, void *ctx) {
  (void)ctx;
  hits++;
  if (info != NULL && info->si_signo == sig) hits_info++;
}

static void install(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = counting_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

#ifdef OPTIONS_STATIC
/* Before every constructor of default priority, hakmem's among them. */
__attribute__((constructor(101))) static void install_early(void) { install(SIGUSR1); }
#endif

/* Slow-path calls, where hakmem looks at the flag its handler raised. */
static void allocate(void) {
  for (int i = 0; i < 20000; i++) {
    sink = malloc((size_t)(i % 4000) + 1);
    free(sink);
  }
}

/* Lines of statistics ("MALLOC: ...") in path. */
static int stats_lines(const char *path) {
  FILE *f = fopen(path, "r");
  char line[256];
  int n = 0;
  while (f != NULL && fgets(line, sizeof line, f) != NULL) n += strncmp(line, "MALLOC:", 7) == 0;
  if (f != NULL) fclose(f);
  return n;
}

int main(int argc, char **argv) {
  const char *mode = argc >= 2 ? argv[1] : "";
  if (strcmp(mode, "noop") == 0) {
    allocate();
    return 0;
  }
  if (strcmp(mode, "segv") == 0) {
    allocate();
    *nowhere = 1;
    return 3;
  }
  if (strcmp(mode, "sigint") == 0) {
    allocate();
    raise(SIGINT);
    return 3;
  }
  if (strcmp(mode, "stats") == 0 && argc == 4) {
    raise(atoi(argv[2]));
    allocate();
    int n = stats_lines(argv[3]);
    printf("stats on signal %s: %d lines\n", argv[2], n);
    return n > 40 ? 0 : 1;
  }
#ifdef OPTIONS_STATIC
  if (strcmp(mode, "chain") == 0 && argc == 3) {
    raise(SIGUSR1);
    allocate();
    int n = stats_lines(argv[2]);
    printf("chain: the program's handler ran %d times (%d with its siginfo); %d lines of statistics\n", (int)hits,
           (int)hits_info, n);
    return hits == 1 && hits_info == 1 && n > 40 ? 0 : 1;
  }
  if (strcmp(mode, "profile-chain") == 0 && argc == 3) {
    char path[4096];
    snprintf(path, sizeof path, "%s.%d.0001.heap", argv[2], (int)getpid());
    raise(SIGUSR1);
    allocate(); /* some 40 MB: samples, at the first of which the dump is written */
    int dumped = access(path, F_OK) == 0;
    printf("profile-chain: the program's handler ran %d times (%d with its siginfo); %s %s\n", (int)hits,
           (int)hits_info, path, dumped ? "written" : "missing");
    return hits == 1 && hits_info == 1 && dumped ? 0 : 1;
  }
#endif
  if (strcmp(mode, "after") == 0 && argc == 3) {
    install(SIGUSR2);
    raise(SIGUSR2);
    allocate();
    int n = stats_lines(argv[2]);
    printf("after: the program's handler ran %d times; %d lines of statistics\n", (int)hits, n);
    return hits == 1 && n == 0 ? 0 : 1;
  }
  fprintf(stderr, "usage: options noop|segv|sigint | options stats SIG FILE | options chain|after FILE | "
                  "options profile-chain PREFIX\n");
  return 2;
}
