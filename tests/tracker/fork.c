/* fork.c - the tracker's fork test program (tests/tracker.sh).
 *
 *   tracker_fork MODE      MODE: _exit, exit or exec (how the child ends)
 *
 * The parent keeps a helper thread allocating (4004-byte blocks) the whole
 * time, allocates 1000 blocks of 4001 bytes, forks; the child allocates
 * 500 blocks of 4002 bytes, frees 250, and ends with _exit(0), exit(0) or
 * execv("/bin/true"); the parent waits, allocates 300 blocks of 4003 bytes
 * and frees everything. Prints "parent <pid> child <pid>".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int g_stop;

static void *helper(void *arg)
{
    (void)arg;
    while (!atomic_load(&g_stop)) {
        void *p = malloc(4004);
        free(p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "_exit";
    if (strcmp(mode, "_exit") != 0 && strcmp(mode, "exit") != 0 && strcmp(mode, "exec") != 0) {
        fprintf(stderr, "usage: tracker_fork _exit|exit|exec\n");
        return 2;
    }
    pthread_t th;
    pthread_create(&th, NULL, helper, NULL);
    static void *kept[1000], *late[300];
    for (int i = 0; i < 1000; i++)
        kept[i] = malloc(4001);
    fflush(stdout);
    pid_t c = fork();
    if (c < 0)
        return 1;
    if (c == 0) {
        static void *mine[500];
        for (int i = 0; i < 500; i++)
            mine[i] = malloc(4002);
        for (int i = 0; i < 250; i++)
            free(mine[i]);
        if (strcmp(mode, "_exit") == 0)
            _exit(0);
        if (strcmp(mode, "exit") == 0)
            exit(0);
        char *args[] = { "true", NULL };
        execv("/bin/true", args);
        _exit(127);
    }
    int st;
    waitpid(c, &st, 0);
    for (int i = 0; i < 300; i++)
        late[i] = malloc(4003);
    for (int i = 0; i < 300; i++)
        free(late[i]);
    for (int i = 0; i < 1000; i++)
        free(kept[i]);
    atomic_store(&g_stop, 1);
    pthread_join(th, NULL);
    printf("parent %d child %d\n", (int)getpid(), (int)c);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
