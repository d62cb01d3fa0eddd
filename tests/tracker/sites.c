/* sites.c - allocation sites with known figures, for the tracker report's
 * allocation sites (stacks merged by the function that called the
 * allocator), peak memory consumers, temporary allocations, the folded
 * export and the diff of two traces (tests/tracker.sh). In this order:
 *
 *   keep_from_a(), keep_from_b(): 30 and 10 calls of alloc_here(), which
 *       mallocs 64 bytes, kept to the end: one site, alloc_here, two
 *       stacks, 40 calls, 2,560 bytes, never freed;
 *   hold_big(): 4 blocks of 100,000 bytes, all live at once (the process's
 *       peak: 402,560 bytes live), then freed;
 *   temporaries(n): n times malloc(24) then free it at once: n temporary
 *       allocations (default n = 1000);
 *   pairs(): 50 times malloc(40), malloc(48), free the first, free the
 *       second: no temporary allocation;
 *   keep_small(): 50 blocks of 1,000 bytes, never freed.
 *
 * Peak live bytes: 402,560, held by hold_big (400,000) and alloc_here
 * (2,560). Never freed: keep_small 50,000, alloc_here 2,560. Prints "ok".
 * usage: tracker_sites [n]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void *alloc_here(void);
void keep_from_a(void **v);
void keep_from_b(void **v);
void hold_big(void);
void temporaries(long n);
void pairs(void);
void keep_small(void **v);

static inline __attribute__((always_inline)) void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        exit(1);
    *(volatile char *)p = 1;
    return p;
}

__attribute__((noinline)) void *alloc_here(void)
{
    return xmalloc(64);
}

__attribute__((noinline)) void keep_from_a(void **v)
{
    for (int i = 0; i < 30; i++)
        v[i] = alloc_here();
}

__attribute__((noinline)) void keep_from_b(void **v)
{
    for (int i = 0; i < 10; i++)
        v[i] = alloc_here();
}

__attribute__((noinline)) void hold_big(void)
{
    void *v[4];
    for (int i = 0; i < 4; i++)
        v[i] = xmalloc(100000);
    for (int i = 0; i < 4; i++)
        free(v[i]);
}

__attribute__((noinline)) void temporaries(long n)
{
    for (long i = 0; i < n; i++)
        free(xmalloc(24));
}

__attribute__((noinline)) void pairs(void)
{
    for (int i = 0; i < 50; i++) {
        void *p = xmalloc(40), *q = xmalloc(48);
        free(p);
        free(q);
    }
}

__attribute__((noinline)) void keep_small(void **v)
{
    for (int i = 0; i < 50; i++)
        v[i] = xmalloc(1000);
}

static void *kept[90];

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    keep_from_a(kept);
    keep_from_b(kept + 30);
    hold_big();
    temporaries(n);
    pairs();
    keep_small(kept + 40);
    printf("ok\n");
    return 0;
}
