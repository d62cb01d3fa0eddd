/* leak_ctor.c — a shared object whose constructor, run by the dynamic loader,
 * allocates a block and drops it: a leak whose stack passes through
 * ld-linux (tests/leakcheck.sh, the suppression file tests/leakcheck.supp). */
#include <stdlib.h>
#include <string.h>

void *volatile leak_ctor_sink;

__attribute__((constructor)) static void leak_at_load(void) {
  char *p = malloc(123);
  if (p != NULL) memset(p, 1, 123);
  leak_ctor_sink = p;
  leak_ctor_sink = NULL;
}
