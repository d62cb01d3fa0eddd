/* churn.c - a long run of allocations for the tracker's sampled-mode tests
 * (tests/tracker.sh).
 *
 *   tracker_churn LIVE ROUNDS [MAXSIZE [notouch]]
 *
 * Keeps LIVE blocks (16 to MAXSIZE - 1 bytes, default 4096, sizes from a
 * fixed xorshift) in a ring; each round frees and replaces every one of them (LIVE frees and
 * LIVE mallocs) and is timed. Prints "round <r> <ns per free+malloc>" per
 * round, then "calls <mallocs> <frees> live <blocks> <bytes>" and exits
 * with the ring still allocated (those blocks are never freed). The ring
 * itself is mmap'd: every malloc-family call is one of the counted ones.
 * Each block's first byte is written, unless "notouch" (for a test
 * allocator whose blocks are never backed).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef struct slot {
    void *p;
    size_t n;
} slot;

static uint64_t g_x = 88172645463325252ULL;
static size_t g_max = 4096;
static int g_touch = 1;

static size_t next_size(void)
{
    g_x ^= g_x << 13, g_x ^= g_x >> 7, g_x ^= g_x << 17;
    return 16 + g_x % (g_max - 16);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A new block of a random size in slot x, touched unless notouch. */
static void fill(slot *x)
{
    x->n = next_size();
    if (!(x->p = malloc(x->n)))
        abort();
    if (g_touch)
        *(char *)x->p = 1;
}

int main(int argc, char **argv)
{
    long live = argc > 1 ? atol(argv[1]) : 0, rounds = argc > 2 ? atol(argv[2]) : -1;
    if (argc > 3)
        g_max = (size_t)atol(argv[3]);
    if (argc > 4 && strcmp(argv[4], "notouch") == 0)
        g_touch = 0;
    else if (argc > 4)
        g_max = 0; /* an unknown word: the usage below */
    if (live < 1 || rounds < 0 || g_max <= 16) {
        fprintf(stderr, "usage: tracker_churn LIVE ROUNDS [MAXSIZE [notouch]]\n");
        return 2;
    }
    slot *ring = mmap(NULL, (size_t)live * sizeof *ring, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    double *ns = mmap(NULL, (size_t)(rounds + 1) * sizeof *ns, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ring == MAP_FAILED || ns == MAP_FAILED)
        return 1;
    uint64_t mallocs = 0, frees = 0, bytes = 0;
    for (long k = 0; k < live; k++) {
        fill(&ring[k]);
        bytes += ring[k].n;
        mallocs++;
    }
    for (long r = 0; r < rounds; r++) {
        double t0 = now_ns();
        for (long k = 0; k < live; k++) {
            free(ring[k].p);
            bytes -= ring[k].n;
            fill(&ring[k]);
            bytes += ring[k].n;
        }
        ns[r] = (now_ns() - t0) / (double)live;
        mallocs += (uint64_t)live;
        frees += (uint64_t)live;
    }
    for (long r = 0; r < rounds; r++)
        printf("round %ld %.1f\n", r, ns[r]);
    printf("calls %llu %llu live %ld %llu\n", (unsigned long long)mallocs, (unsigned long long)frees, live,
           (unsigned long long)bytes);
    return 0;
}
