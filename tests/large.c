/* large.c — large blocks, under LD_PRELOAD of a hakmem build.
 *
 *   large cache    the large cache stays within its bound when a free lowers
 *                  it (dynamic flush: the bound counts the live large bytes):
 *                  malloc(64 MiB), realloc to 128 MiB, free, then 20,000
 *                  malloc/free of 16 bytes (a checked build validates its
 *                  structures every 16,384 calls) ends normally; so do frees
 *                  of 100 and then 200 MiB; hak_validate() is quiet after each.
 * Exit 0 when every check passed, 1 when one failed. */
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define MIB ((size_t)1 << 20)

static const char *(*validate)(void);
static void *volatile keep; /* stops the compiler reasoning about a block */

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

int main(int argc, char **argv) {
  const char *mode = argc == 2 ? argv[1] : "";
  validate = (const char *(*)(void))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_validate");
  CHECK(validate != NULL, "hakmem serves malloc (hak_validate is present)");
  if (validate == NULL) return check_report("large");
  if (strcmp(mode, "cache") == 0) test_cache();
  else {
    fprintf(stderr, "usage: large cache\n");
    return 2;
  }
  return check_report(mode);
}
