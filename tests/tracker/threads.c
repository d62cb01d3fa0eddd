/* threads.c - the tracker's event-count test program (tests/tracker.sh).
 *
 *   tracker_threads N STUCK
 *
 * Starts N threads at once (a barrier); thread i makes a fixed sequence of
 * calls whose sizes only this program uses (check_threads.py derives the
 * same sequence from i), so the checker can compare what each thread did
 * with what its trace file holds, call by call. STUCK of the threads
 * (the last ones) never exit: they block after their calls while main
 * calls exit(), so their records must come from the exit flush.
 * Prints "thread <i> <tid>" for each thread, then "done".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_barrier_t g_start, g_done;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_never = PTHREAD_COND_INITIALIZER;
static int g_n, g_stuck;
static long *g_tid;

/* The sequence of thread i (check_threads.py mirrors it). */
static unsigned iterations(int i)
{
    return 600 + 10u * (unsigned)i;
}

static void *run(void *arg)
{
    int i = (int)(long)arg;
    g_tid[i] = syscall(SYS_gettid);
    pthread_barrier_wait(&g_start);
    for (unsigned j = 0; j < iterations(i); j++) {
        char *p = malloc(3000 + j % 50);
        char *q = calloc(3, 1100 + (unsigned)i % 7);
        if (!p || !q)
            abort();
        p[0] = (char)j;
        p = realloc(p, 3500 + j % 13);
        if (!p)
            abort();
        if (j % 5 == 0) {
            void *r;
            if (posix_memalign(&r, 64, 3700) != 0)
                abort();
            free(r);
        }
        free(q);
        free(p);
    }
    pthread_barrier_wait(&g_done);
    if (i >= g_n - g_stuck) {
        pthread_mutex_lock(&g_mu);
        for (;;)
            pthread_cond_wait(&g_never, &g_mu);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    g_n = argc > 1 ? atoi(argv[1]) : 100;
    g_stuck = argc > 2 ? atoi(argv[2]) : 0;
    if (g_n < 1 || g_stuck < 0 || g_stuck > g_n) {
        fprintf(stderr, "usage: tracker_threads N STUCK\n");
        return 2;
    }
    g_tid = calloc((size_t)g_n, sizeof *g_tid);
    pthread_t *th = calloc((size_t)g_n, sizeof *th);
    pthread_barrier_init(&g_start, NULL, (unsigned)g_n);
    pthread_barrier_init(&g_done, NULL, (unsigned)g_n + 1);
    for (int i = 0; i < g_n; i++)
        if (pthread_create(&th[i], NULL, run, (void *)(long)i) != 0)
            return 1;
    pthread_barrier_wait(&g_done);
    for (int i = 0; i < g_n - g_stuck; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < g_n; i++)
        printf("thread %d %ld\n", i, g_tid[i]);
    printf("done\n");
    fflush(stdout);
    exit(0); /* the stuck threads are still blocked */
}
