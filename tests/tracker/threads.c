/* threads.c - the tracker's event-count test program (tests/tracker.sh).
 *
 *   tracker_threads N STUCK [log]
 *
 * Starts N threads at once (a barrier); thread i makes a fixed sequence of
 * calls whose sizes only this program uses (check_threads.py derives the
 * same sequence from i), so the checker can compare what each thread did
 * with what its trace file holds, call by call. STUCK of the threads
 * (the last ones) never exit: they block after their calls while main
 * calls exit(), so their records must come from the exit flush.
 * Prints "thread <i> <tid>" for each thread, then "done". With "log", each
 * thread also notes every call it makes (in memory from mmap, so that the
 * log itself calls no malloc) and main prints them after "done", one line
 * each: "call <tid> <op> <ptr> <size> <old ptr>" (check_sampled.py).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_barrier_t g_start, g_done;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_never = PTHREAD_COND_INITIALIZER;
static int g_n, g_stuck;
static long *g_tid;

typedef struct call {
    const char *op;
    void *p, *old;
    size_t n;
} call;
static call **g_log; /* per thread, when logging */

static void note(int i, unsigned *k, const char *op, void *p, size_t n, void *old)
{
    if (g_log)
        g_log[i][(*k)++] = (call){ op, p, old, n };
}

/* The sequence of thread i (check_threads.py mirrors it). */
static unsigned iterations(int i)
{
    return 600 + 10u * (unsigned)i;
}

static void *run(void *arg)
{
    int i = (int)(long)arg;
    unsigned k = 0;
    g_tid[i] = syscall(SYS_gettid);
    pthread_barrier_wait(&g_start);
    for (unsigned j = 0; j < iterations(i); j++) {
        char *p = malloc(3000 + j % 50);
        note(i, &k, "malloc", p, 3000 + j % 50, NULL);
        char *q = calloc(3, 1100 + (unsigned)i % 7);
        note(i, &k, "calloc", q, 3 * (1100 + (unsigned)i % 7), NULL);
        if (!p || !q)
            abort();
        p[0] = (char)j;
        char *old = p;
        p = realloc(p, 3500 + j % 13);
        note(i, &k, "realloc", p, 3500 + j % 13, old);
        if (!p)
            abort();
        if (j % 5 == 0) {
            void *r;
            if (posix_memalign(&r, 64, 3700) != 0)
                abort();
            note(i, &k, "posix_memalign", r, 3700, NULL);
            free(r);
            note(i, &k, "free", r, 0, NULL);
        }
        free(q);
        note(i, &k, "free", q, 0, NULL);
        free(p);
        note(i, &k, "free", p, 0, NULL);
    }
    if (g_log)
        g_log[i][k].op = NULL;
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
    if (g_n < 1 || g_stuck < 0 || g_stuck > g_n || (argc > 3 && strcmp(argv[3], "log") != 0)) {
        fprintf(stderr, "usage: tracker_threads N STUCK [log]\n");
        return 2;
    }
    if (argc > 3) {
        g_log = mmap(NULL, (size_t)g_n * sizeof *g_log, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        for (int i = 0; g_log != MAP_FAILED && i < g_n; i++) {
            g_log[i] = mmap(NULL, (iterations(i) * 7 + 1) * sizeof(call), PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (g_log[i] == MAP_FAILED)
                return 1;
        }
        if (g_log == MAP_FAILED)
            return 1;
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
    for (int i = 0; g_log && i < g_n; i++)
        for (call *c = g_log[i]; c->op; c++)
            printf("call %ld %s %p %zu %p\n", g_tid[i], c->op, c->p, c->n, c->old);
    fflush(stdout);
    exit(0); /* the stuck threads are still blocked */
}
