/*
 * badopts — a test allocator for the harness: an LD_PRELOAD library that
 * serves malloc (from glibc's __libc_malloc) and exports a hakmem-style
 * hak_options_print whose table has one good line and one line that cannot
 * be read, so the runner must record the first and name the second.
 */
#include <stdio.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t n);

void *malloc(size_t n) { return __libc_malloc(n); }

void hak_options_print(FILE *out);
void hak_options_print(FILE *out)
{
    fprintf(out, "%-16s %6s %8s  %-16s %s\n", "option", "value", "default", "environment", "meaning");
    fprintf(out, "%-16s %6d %8d  %-16s %s\n", "good", 7, 3, "HAKMEM_GOOD", "an option that reads");
    fprintf(out, "broken\n");
}
