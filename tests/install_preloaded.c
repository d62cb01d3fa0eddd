/* install_preloaded.c — a program that knows nothing of hakmem, run through
 * the installed `hakmem` command (tests/install.sh). Prints
 *   variant <what hak_variant(), found with dlsym, says>
 *   preload <LD_PRELOAD>
 * after some allocation (so the statistics have something to say). Exits 1
 * when no hakmem is loaded or malloc is not hakmem's (hak_malloc_usable_size,
 * found the same way, stops the program on a pointer hakmem does not own). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  const char *(*variant)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "hak_variant");
  size_t (*usable)(const void *) = (size_t(*)(const void *))dlsym(RTLD_DEFAULT, "hak_malloc_usable_size");
  const char *preload = getenv("LD_PRELOAD");
  printf("variant %s\npreload %s\n", variant ? variant() : "(none)", preload ? preload : "(unset)");
  if (variant == NULL || usable == NULL) return 1;
  enum { N = 10000 };
  static char *blocks[N];
  for (int i = 0; i < N; i++) {
    blocks[i] = malloc(16 + (size_t)i % 2000);
    if (blocks[i] == NULL) return 1;
    memset(blocks[i], i & 0xff, 16);
  }
  int ok = usable(blocks[N - 1]) >= 16 + (N - 1) % 2000;
  for (int i = 0; i < N; i += 2) free(blocks[i]);
  return ok ? 0 : 1;
}
