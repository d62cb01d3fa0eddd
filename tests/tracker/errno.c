/* errno.c - the tracker keeps errno as the allocator left it
 * (tests/tracker.sh).
 *
 *   tracker_errno
 *
 * In the main thread and in a new one (whose first call makes the tracker
 * register it and create its file), 20000 rounds of malloc, calloc,
 * realloc, posix_memalign, aligned_alloc, memalign, malloc_usable_size and
 * free, each made with errno set to EILSEQ beforehand, which the call must
 * leave as it is (glibc's calls do on success; the tracker's own writes,
 * file creation and clock reads must not show); the rounds fill the
 * tracker's buffer several times. Then a malloc that must fail must leave
 * ENOMEM. Prints "errno kept in N calls" or the first call that changed
 * it, and exits 1.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *g_bad;
static int g_bad_errno;
static long g_calls;

#define CALL(what, expr)                                                                  \
    do {                                                                                  \
        errno = EILSEQ;                                                                   \
        expr;                                                                             \
        __atomic_add_fetch(&g_calls, 1, __ATOMIC_RELAXED);                                \
        if (errno != EILSEQ && !g_bad) {                                                  \
            g_bad = what;                                                                 \
            g_bad_errno = errno;                                                          \
        }                                                                                 \
    } while (0)

static void *rounds(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        void *p, *q, *r, *s, *m;
        size_t n = 16 + (size_t)i % 3000;
        CALL("malloc", p = malloc(n));
        CALL("calloc", q = calloc(4, n));
        CALL("realloc", p = realloc(p, n * 2));
        CALL("posix_memalign", if (posix_memalign(&r, 64, n)) abort());
        CALL("aligned_alloc", s = aligned_alloc(128, 1024));
        CALL("memalign", m = memalign(256, n));
        if (!p || !q || !s || !m)
            abort();
        size_t u;
        CALL("malloc_usable_size", u = malloc_usable_size(p));
        if (u < n * 2)
            abort();
        CALL("free", free(p));
        CALL("free", free(q));
        CALL("free", free(r));
        CALL("free", free(s));
        CALL("free", free(m));
        CALL("free(NULL)", free(NULL));
    }
    return NULL;
}

int main(void)
{
    pthread_t th;
    rounds(NULL);
    if (pthread_create(&th, NULL, rounds, NULL) != 0 || pthread_join(th, NULL) != 0)
        return 2;
    errno = 0;
    volatile size_t huge = SIZE_MAX / 2;
    void *p = malloc(huge);
    if (p || errno != ENOMEM) {
        printf("a failed malloc left errno %d (%s), not ENOMEM\n", errno, strerror(errno));
        return 1;
    }
    if (g_bad) {
        printf("%s changed errno from EILSEQ to %d (%s)\n", g_bad, g_bad_errno, strerror(g_bad_errno));
        return 1;
    }
    printf("errno kept in %ld calls\n", g_calls);
    return 0;
}
