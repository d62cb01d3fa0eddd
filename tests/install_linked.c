/* install_linked.c — a program linked with an installed hakmem through
 * `pkg-config --cflags --libs hakmem` (tests/install.sh builds it).
 * Usage: install_linked VARIANT
 * Calls the API directly, prints "variant <name> version <version>", and exits
 * 0 when hak_variant() is VARIANT, the installed header and the library agree
 * on the version, and malloc is hakmem's too (linking libhakmem replaces it:
 * hak_malloc_usable_size stops the program on a pointer hakmem does not own). */
#include <hakmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s VARIANT\n", argv[0]);
    return 2;
  }
  printf("variant %s version %s\n", hak_variant(), hak_version());
  int ok = 1;
  if (strcmp(hak_variant(), argv[1]) != 0) {
    fprintf(stderr, "install_linked: hak_variant() is %s, not %s\n", hak_variant(), argv[1]);
    ok = 0;
  }
  if (strcmp(hak_version(), HAK_VERSION_STRING) != 0) {
    fprintf(stderr, "install_linked: the library is %s, the header %s\n", hak_version(), HAK_VERSION_STRING);
    ok = 0;
  }
  char *p = hak_malloc(100), *q = malloc(1000);
  if (p == NULL || q == NULL || hak_malloc_usable_size(p) < 100 || hak_malloc_usable_size(q) < 1000) {
    fprintf(stderr, "install_linked: allocation failed\n");
    ok = 0;
  } else {
    memset(p, 1, 100);
    memset(q, 2, 1000);
  }
  free(q);
  hak_free(p);
  return ok ? 0 : 1;
}
