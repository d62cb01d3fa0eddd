/* mix.c - a small multi-threaded program for the tracker's tests
 * (tests/tracker.sh): recorded, compiled and replayed under every
 * allocator, and run with a trace directory on a full disk.
 *
 *   tracker_mix [ROUNDS]
 *
 * Two producer threads allocate blocks (malloc, calloc, aligned_alloc,
 * posix_memalign, realloc chains) and hand half of them to two consumer
 * threads through a locked queue; consumers check and free them, the
 * producers free the rest. Prints a checksum of the work, which does not
 * depend on the allocator or on the tracker.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QCAP 256

typedef struct item {
    unsigned char *p;
    size_t n;
} item;

static item g_q[QCAP];
static int g_head, g_count, g_done;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_nonempty = PTHREAD_COND_INITIALIZER, g_nonfull = PTHREAD_COND_INITIALIZER;
static int g_rounds;
static uint64_t g_sum[4];

static void push(item it)
{
    pthread_mutex_lock(&g_mu);
    while (g_count == QCAP)
        pthread_cond_wait(&g_nonfull, &g_mu);
    g_q[(g_head + g_count++) % QCAP] = it;
    pthread_cond_signal(&g_nonempty);
    pthread_mutex_unlock(&g_mu);
}

static int pop(item *it)
{
    pthread_mutex_lock(&g_mu);
    while (g_count == 0 && g_done < 2)
        pthread_cond_wait(&g_nonempty, &g_mu);
    if (g_count == 0) {
        pthread_mutex_unlock(&g_mu);
        return 0;
    }
    *it = g_q[g_head];
    g_head = (g_head + 1) % QCAP;
    g_count--;
    pthread_cond_signal(&g_nonfull);
    pthread_mutex_unlock(&g_mu);
    return 1;
}

static unsigned char *fill(unsigned char *p, size_t n, unsigned char v)
{
    if (!p)
        abort();
    memset(p, v, n);
    return p;
}

static void *producer(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t x = 88172645463325252ULL + (uint64_t)id, sum = 0;
    for (int r = 0; r < g_rounds; r++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = 16 + x % 2000;
        unsigned char v = (unsigned char)(x >> 40);
        unsigned char *p;
        switch (r % 5) {
        case 0: p = fill(malloc(n), n, v); break;
        case 1: p = calloc(1, n); if (!p || p[n - 1]) abort(); fill(p, n, v); break;
        case 2: p = fill(aligned_alloc(64, (n + 63) & ~(size_t)63), n, v); break;
        case 3: { void *q; if (posix_memalign(&q, 256, n)) abort(); p = fill(q, n, v); break; }
        default: { /* a realloc chain: 8 growths */
            p = fill(malloc(8), 8, v);
            size_t m = 8;
            for (int k = 0; k < 8; k++) {
                p = realloc(p, m * 2);
                if (!p) abort();
                memset(p + m, v, m);
                m *= 2;
            }
            n = m;
        }
        }
        sum += n * v;
        if (r % 2)
            push((item){ p, n });
        else
            free(p);
    }
    pthread_mutex_lock(&g_mu);
    g_done++;
    pthread_cond_broadcast(&g_nonempty);
    pthread_mutex_unlock(&g_mu);
    g_sum[id] = sum;
    return NULL;
}

static void *consumer(void *arg)
{
    int id = (int)(intptr_t)arg;
    item it;
    uint64_t sum = 0;
    while (pop(&it)) {
        for (size_t k = 0; k < it.n; k++)
            if (it.p[k] != it.p[0])
                abort();
        sum += it.n * it.p[0];
        free(it.p);
    }
    g_sum[id] = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    g_rounds = argc > 1 ? atoi(argv[1]) : 4000;
    pthread_t th[4];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, producer, (void *)(intptr_t)i);
    for (int i = 2; i < 4; i++)
        pthread_create(&th[i], NULL, consumer, (void *)(intptr_t)i);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    printf("mix: %d rounds, checksum %llu\n", g_rounds,
           (unsigned long long)(g_sum[0] + g_sum[1] + g_sum[2] + g_sum[3]));
    return 0;
}
