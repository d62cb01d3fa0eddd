/* realloc_sites.c - call sites with known counts, for the tracker report's
 * "top sites by count" and "by bytes" (tests/tracker.sh): grow_by_realloc()
 * mallocs 16 bytes and grows the block by realloc, 16 bytes a time,
 * 10,000 times (to 160,016 bytes); malloc_a_hundred() mallocs 100 blocks of
 * 32 bytes and frees them. By calls to allocation functions (heaptrack's
 * count) the realloc call in grow_by_realloc is the busiest site, 10,000
 * calls and 800,240,000 bytes asked for (16 x (2 + 3 + ... + 10,001)); the
 * malloc in malloc_a_hundred makes 100 calls. Prints "ok <checksum>".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

unsigned char *grow_by_realloc(void);
uint64_t malloc_a_hundred(void);

#define GROWTHS 10000
#define STEP 16

__attribute__((noinline)) unsigned char *grow_by_realloc(void)
{
    unsigned char *p = malloc(STEP);
    if (!p)
        exit(1);
    p[0] = 1;
    for (size_t i = 1; i <= GROWTHS; i++) {
        unsigned char *q = realloc(p, (i + 1) * STEP);
        if (!q)
            exit(1);
        p = q;
        p[i * STEP] = (unsigned char)i;
    }
    return p;
}

__attribute__((noinline)) uint64_t malloc_a_hundred(void)
{
    void *v[100];
    uint64_t sum = 0;
    for (int i = 0; i < 100; i++) {
        v[i] = malloc(32);
        if (!v[i])
            exit(1);
        sum += (uintptr_t)v[i] & 0xff;
    }
    for (int i = 0; i < 100; i++)
        free(v[i]);
    return sum;
}

int main(void)
{
    uint64_t sum = malloc_a_hundred();
    unsigned char *p = grow_by_realloc();
    sum += p[GROWTHS * STEP];
    free(p);
    printf("ok %llu\n", (unsigned long long)(sum & 0xffff));
    return 0;
}
