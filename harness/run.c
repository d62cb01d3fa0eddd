/*
 * run.c — one run: a fresh process under one allocator, measured from the
 * outside. Three steps, one function each:
 *
 *   spawn_and_watch  The child is forked into its own process group with
 *                    LD_PRELOAD set (unset for "system"), stdout on a pipe
 *                    and stderr in a log file. The parent loops on poll(2)
 *                    over the pipe with a timeout equal to the sampling
 *                    interval: at each tick it reads the RSS from
 *                    /proc/<pid>/statm, and now and then (and at every
 *                    `@phase` marker) the whole of /proc/<pid>/smaps_rollup;
 *                    every stdout line is handled as it arrives, so markers
 *                    get the runner's timestamp and a full sample of their
 *                    own. wait4(2) gives the exit status and
 *                    rusage. A run past its time limit gets SIGKILL on its
 *                    whole process group.
 *   classify         ok, failed or invalid, and why (hb_verdict).
 *   hb_write_run     the row (rows.c).
 *
 * hakmem's own account (stats runs, HB_MODE_STATS): the child also gets
 * HAKMEM_STATS=json, HAKMEM_STATS_PEAK=1 and HAKMEM_STATS_FILE=<log>.stats,
 * so the library writes, at exit, its statistics with the figures at the
 * process's peak RSS; the row keeps where the memory was (rows.c). Taking
 * the figures at the peak walks the allocator's structures as the RSS
 * grows, which slows the run (burst_idle: about 1.3x): a stats run is
 * never timed, and the timed repetitions run as a user's program would.
 * A stats run without complete statistics is failed.
 *
 * Verification: the workload's last stdout line is a JSON object whose
 * `malloc_from` names the object that served malloc; its realpath must equal
 * the allocator's (libc's for system), and for a preloaded library the
 * library must also appear in /proc/<pid>/maps. A floor run (the case's
 * arguments and --floor, no preload) has libc as its malloc_from and must
 * say `"floor": true`: the workload's own word that no malloc was timed.
 */
#include "hakbench.h"
#include "../workloads/exit_status.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

volatile int hb_interrupted;

/* Callgrind runs a program some 20-100 times slower than natively (valgrind
 * manual); the callgrind suite keeps its cases small, so 40 times the time
 * limit is ample for it and still ends a run that hangs. */
#define CALLGRIND_TIME_FACTOR 40
/* /proc/<pid>/maps is read at samples until the preloaded library is seen,
 * at most this many conclusive times: a preload that takes is mapped before
 * main, so the first conclusive read sees it; later ones cover a slow start. */
#define MAPS_MAX_TRIES 50
/* A stdout line longer than this is truncated: the result is one short
 * JSON object, and a runaway line must not take the runner's memory. */
#define MAX_LINE_BYTES (1u << 20)
/* After stdout reaches EOF the exit is polled every millisecond, so wall
 * time is not rounded up to a whole sampling interval. */
#define EXIT_POLL_NS 1000000L

/* Reading /proc/<pid>/smaps_rollup walks every mapping and page table of the
 * process holding its mmap lock for reading; an mmap, munmap or mremap of the
 * process waits meanwhile, and so do its page faults queued behind that
 * writer. Read every 10 ms, it slowed an allocator with thousands of
 * mappings by 15x (burst_idle under mini_magazine: 170 ns/op alone, 2565
 * under the runner). So the RSS comes from /proc/<pid>/statm (counters, no
 * walk and no lock) at every tick, and the whole rollup only at phase
 * markers and when FULL_READ_SHARE times the last full read's duration
 * (at least FULL_READ_MIN_S) has passed: the runner holds the lock at most
 * 1 / FULL_READ_SHARE of the time. */
#define FULL_READ_SHARE 100
#define FULL_READ_MIN_S 0.1


/* smaps_rollup lines, in the order of the HB_F_* fields. */
static const char *const field_src[HB_F_N] = {
    "Rss:", "Pss:", "Pss_Anon:", "Private_Dirty:", "Anonymous:", "AnonHugePages:", "LazyFree:", "Swap:",
};

/* Where a run's files go: <out>/logs/<base>.{out,err,callgrind}. */
typedef struct {
    char base[PATH_MAX];     /* relative to the result directory */
    char out[PATH_MAX], err[PATH_MAX], cg[PATH_MAX], stats[PATH_MAX];
} run_paths;

/* The library's statistics file is read up to this size (one JSON line of
 * some 20 KB per process that exits under the preload). */
#define STATS_MAX_BYTES (4u << 20)

/* The watcher's state: the observation it fills, and what it needs to fill
 * it (the child, the allocator, stdout's line buffer and log). */
typedef struct {
    hb_observation *ob;
    pid_t pid;
    double t0;
    double next_full;    /* when the next full read of smaps_rollup is due */
    double full_at;      /* and one more at this time (1 s into an idle period) */
    int statm_fd;        /* /proc/<pid>/statm, kept open; -1: not yet opened */
    const hb_alloc *alloc;
    char *line;
    size_t linelen, linecap;
    int outlog;
} watcher;

/* ---- spawn and watch ------------------------------------------------------ */

static bool read_rollup(pid_t pid, hb_rollup *r)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    long n = hb_read_file(path, buf, sizeof buf);
    if (n <= 0) return false;
    memset(r, 0, sizeof *r);
    bool any = false;
    for (char *l = buf; l && *l; ) {
        char *nl = strchr(l, '\n');
        for (int f = 0; f < HB_F_N; f++) {
            size_t k = strlen(field_src[f]);
            if (strncmp(l, field_src[f], k) == 0) { r->v[f] = strtol(l + k, NULL, 10); any = true; }
        }
        l = nl ? nl + 1 : NULL;
    }
    return any;
}

/* What one read of /proc/<pid>/maps says about the preloaded library. The
 * dynamic loader maps the preloads before the libraries the program needs,
 * so a read is conclusive once libc is mapped; before that (the loader is
 * still at work) or after (the process is exiting, its maps are empty) it
 * proves nothing either way. */
typedef enum { MAPS_INCONCLUSIVE, MAPS_WITHOUT_LIB, MAPS_WITH_LIB } maps_answer;

static bool same_file(const char *mapped, const char *want)
{
    char rp[PATH_MAX];
    return strcmp(mapped, want) == 0 || (realpath(mapped, rp) && strcmp(rp, want) == 0);
}

static maps_answer read_maps(pid_t pid, const char *lib)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) return MAPS_INCONCLUSIVE;
    char line[4096 + 256];
    bool found = false, libc = false;
    const char *libc_path = hb_libc_path();
    while (!found && fgets(line, sizeof line, f)) {
        char *p = strchr(line, '/');
        if (!p) continue;
        p[strcspn(p, "\n")] = '\0';
        if (same_file(p, lib)) found = true;
        else if (!libc && same_file(p, libc_path)) libc = true;
    }
    fclose(f);
    return found ? MAPS_WITH_LIB : libc ? MAPS_WITHOUT_LIB : MAPS_INCONCLUSIVE;
}

/* The process's RSS in KiB from /proc/<pid>/statm (its second field, in
 * pages); 0 when it cannot be read. */
static long read_statm_rss(watcher *w)
{
    if (w->statm_fd < 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/statm", (int)w->pid);
        w->statm_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (w->statm_fd < 0) return 0;
    }
    char buf[256];
    ssize_t n = pread(w->statm_fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = '\0';
    long size, resident;
    if (sscanf(buf, "%ld %ld", &size, &resident) != 2) return 0;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* One sample: the RSS (statm), and with full (a phase marker, or a full read
 * due) every field of smaps_rollup. Between full reads, Rss - LazyFree uses
 * the last LazyFree read. */
static void take_sample(watcher *w, bool full)
{
    hb_observation *ob = w->ob;
    double now = hb_now(), t = now - w->t0;
    full = full || now >= w->next_full || (w->full_at > 0 && t >= w->full_at);
    if (full && w->full_at > 0 && t >= w->full_at) w->full_at = 0;
    hb_rollup r = ob->last;
    if (full) {
        double t1 = hb_now();
        if (!read_rollup(w->pid, &r) || r.v[HB_F_RSS] == 0) return; /* not yet (or no longer) mapped */
        double took = hb_now() - t1;
        w->next_full = hb_now() + (took * FULL_READ_SHARE > FULL_READ_MIN_S ? took * FULL_READ_SHARE : FULL_READ_MIN_S);
        ob->full_reads++;
        for (int f = 0; f < HB_F_N; f++)
            if (f != HB_F_RSS && r.v[f] > ob->peak.v[f]) ob->peak.v[f] = r.v[f];
    } else {
        if (!ob->have_last) return; /* the first sample is a full one */
        long rss = read_statm_rss(w);
        if (rss == 0) return;
        r.v[HB_F_RSS] = rss;
    }
    if (r.v[HB_F_RSS] > ob->peak.v[HB_F_RSS]) ob->peak.v[HB_F_RSS] = r.v[HB_F_RSS];
    long nolazy = r.v[HB_F_RSS] - r.v[HB_F_LAZYFREE];
    if (nolazy > ob->peak_nolazy) ob->peak_nolazy = nolazy;
    ob->last = r;
    ob->have_last = true;
    if (ob->nsamples == ob->cap) {
        size_t cap = ob->cap ? ob->cap * 2 : 1024;
        hb_sample *p = realloc(ob->samples, cap * sizeof *p);
        if (!p) return;
        ob->samples = p; ob->cap = cap;
    }
    ob->samples[ob->nsamples++] = (hb_sample){ t, r.v[HB_F_RSS], nolazy };
    if (!w->alloc->system && !ob->maps_seen && ob->maps_tries < MAPS_MAX_TRIES) {
        maps_answer m = read_maps(w->pid, w->alloc->real);
        if (m != MAPS_INCONCLUSIVE) ob->maps_tries++;
        ob->maps_seen = m == MAPS_WITH_LIB;
    }
}

static void handle_line(watcher *w, char *l, size_t n)
{
    hb_observation *ob = w->ob;
    while (n && (l[n - 1] == '\r' || l[n - 1] == ' ')) l[--n] = '\0';
    if (n == 0) return;
    if (strncmp(l, "@phase ", 7) == 0) {
        if (ob->nphases == HB_MAX_PHASES) return;
        hb_phase *p = &ob->phases[ob->nphases++];
        p->t = hb_now() - w->t0;
        p->wt = NAN;
        char name[32] = "";
        double wt;
        int k = sscanf(l + 7, "%31s %lf", name, &wt);
        snprintf(p->name, sizeof p->name, "%s", name);
        if (k == 2) p->wt = wt;
        take_sample(w, true);
        if (strcmp(p->name, "idle_start") == 0) w->full_at = p->t + 1.0; /* rows.c: 1 s into the idle period */
        p->rss = ob->have_last ? ob->last.v[HB_F_RSS] : -1;
        p->rss_nolazy = ob->have_last ? ob->last.v[HB_F_RSS] - ob->last.v[HB_F_LAZYFREE] : -1;
        return;
    }
    if (l[0] == '@') return; /* other markers: ignore */
    char *copy = realloc(ob->result, n + 1);
    if (!copy) return;
    memcpy(copy, l, n + 1);
    ob->result = copy;
    ob->resultlen = n;
}

/* Reads what is available; returns false at EOF or error. */
static bool pump(watcher *w, int fd)
{
    char buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return true;
        if (n <= 0) {
            if (w->linelen) { w->line[w->linelen] = '\0'; handle_line(w, w->line, w->linelen); w->linelen = 0; }
            return false;
        }
        if (w->outlog >= 0) hb_write_all(w->outlog, buf, (size_t)n);
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                if (w->line) { w->line[w->linelen] = '\0'; handle_line(w, w->line, w->linelen); }
                w->linelen = 0;
                continue;
            }
            if (w->linelen + 2 > w->linecap) {
                if (w->linecap >= MAX_LINE_BYTES) continue; /* absurd line: truncate */
                size_t cap = w->linecap ? w->linecap * 2 : 4096;
                char *p = realloc(w->line, cap);
                if (!p) continue;
                w->line = p; w->linecap = cap;
            }
            w->line[w->linelen++] = buf[i];
        }
    }
}

/* Whether the run asks a hakmem variant for its statistics. */
static bool asks_stats(const hb_job *j)
{
    return j->mode == HB_MODE_STATS;
}

static char *env_string(const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 2;
    char *s = malloc(len);
    if (!s) { perror("hakbench: malloc"); exit(1); }
    snprintf(s, len, "%s=%s", name, value);
    return s;
}

/* The runner's environment with LD_PRELOAD replaced by the allocator's
 * library (removed for system) and, when stats_path is not NULL, hakmem's
 * statistics asked for in that file. The strings made here are in own[]
 * (NULL-terminated), for the caller to free. */
#define STATS_ENV_STRINGS 5 /* LD_PRELOAD, the three HAKMEM_ ones, NULL */
static char **make_env(const hb_alloc *a, const char *stats_path, char *own[STATS_ENV_STRINGS])
{
    size_t n = 0;
    while (environ[n]) n++;
    char **env = calloc(n + STATS_ENV_STRINGS, sizeof *env);
    if (!env) { perror("hakbench: calloc"); exit(1); }
    size_t k = 0, o = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "LD_PRELOAD=", 11) == 0) continue;
        if (stats_path && (strncmp(environ[i], "HAKMEM_STATS=", 13) == 0 ||
                           strncmp(environ[i], "HAKMEM_STATS_FILE=", 18) == 0 ||
                           strncmp(environ[i], "HAKMEM_STATS_PEAK=", 18) == 0)) continue;
        env[k++] = environ[i];
    }
    if (!a->system) env[k++] = own[o++] = env_string("LD_PRELOAD", a->real);
    if (stats_path) {
        env[k++] = own[o++] = env_string("HAKMEM_STATS", "json");
        env[k++] = own[o++] = env_string("HAKMEM_STATS_FILE", stats_path);
        env[k++] = own[o++] = env_string("HAKMEM_STATS_PEAK", "1");
    }
    own[o] = NULL;
    env[k] = NULL;
    return env;
}

/* The last line of the statistics file into ob->stats, or the reason in
 * ob->stats_error. */
static void read_stats(const char *path, hb_observation *ob)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        hb_fmt(ob->stats_error, sizeof ob->stats_error, "the library wrote no statistics (%s: %s)", path,
               strerror(errno));
        return;
    }
    char *buf = malloc(STATS_MAX_BYTES + 1);
    if (!buf) { perror("hakbench: malloc"); exit(1); }
    size_t n = fread(buf, 1, STATS_MAX_BYTES + 1, f);
    fclose(f);
    if (n > STATS_MAX_BYTES) {
        hb_fmt(ob->stats_error, sizeof ob->stats_error, "%s is larger than %u bytes", path, STATS_MAX_BYTES);
        free(buf);
        return;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) n--;
    size_t start = n;
    while (start > 0 && buf[start - 1] != '\n') start--;
    if (n == start || !json_object_valid(buf + start, n - start)) {
        hb_fmt(ob->stats_error, sizeof ob->stats_error, "the last line of %s is not one JSON object", path);
        free(buf);
        return;
    }
    memmove(buf, buf + start, n - start);
    buf[n - start] = '\0';
    ob->stats = buf;
    ob->statslen = n - start;
}

static bool isalnum_ascii(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static void sanitize(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (; *src && o + 1 < cap; src++)
        dst[o++] = (isalnum_ascii(*src) || *src == '-' || *src == '_' || *src == '.') ? *src : '_';
    dst[o] = '\0';
}

static void make_paths(const hb_opts *o, const hb_job *j, run_paths *p)
{
    char label[64], aname[64];
    sanitize(label, sizeof label, j->c->label);
    sanitize(aname, sizeof aname, j->a->name);
    hb_fmt(p->base, sizeof p->base, "logs/%04d-%s-%s-r%d%s", j->seq, label, aname, j->rep,
           j->mode == HB_MODE_CALLGRIND ? "-callgrind" : j->mode == HB_MODE_STATS ? "-stats" : "");
    hb_fmt(p->out, sizeof p->out, "%s/%s.out", o->out_dir, p->base);
    hb_fmt(p->err, sizeof p->err, "%s/%s.err", o->out_dir, p->base);
    hb_fmt(p->cg, sizeof p->cg, "%s/%s.callgrind", o->out_dir, p->base);
    hb_fmt(p->stats, sizeof p->stats, "%s/%s.stats", o->out_dir, p->base);
}

/* Forks the child with stdout on *out_fd and stderr in the .err log;
 * returns its pid and the errno of a failed exec (0 when it ran). */
static pid_t spawn(const hb_job *j, const run_paths *p, char **env, int *out_fd, int *exec_errno)
{
    /* argv: for callgrind, valgrind in front */
    char *argv[HB_MAX_ARGS + 8];
    int ac = 0;
    char cgopt[PATH_MAX + 32];
    bool callgrind = j->mode == HB_MODE_CALLGRIND;
    if (callgrind) {
        snprintf(cgopt, sizeof cgopt, "--callgrind-out-file=%s", p->cg);
        argv[ac++] = "valgrind";
        argv[ac++] = "--tool=callgrind";
        argv[ac++] = "-q";
        argv[ac++] = cgopt;
    }
    for (int i = 0; i < j->c->argc; i++) argv[ac++] = j->c->argv[i];
    if (j->a->kind == HB_KIND_FLOOR) argv[ac++] = HB_FLOOR_FLAG;
    argv[ac] = NULL;

    int outp[2], execp[2];
    if (pipe2(outp, O_CLOEXEC) || pipe2(execp, O_CLOEXEC)) { perror("hakbench: pipe"); exit(1); }
    int errfd = open(p->err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (errfd < 0) { fprintf(stderr, "hakbench: cannot write %s: %s\n", p->err, strerror(errno)); exit(1); }
    pid_t pid = fork();
    if (pid < 0) { perror("hakbench: fork"); exit(1); }
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        dup2(outp[1], 1);
        dup2(errfd, 2);
        if (callgrind) execvpe(argv[0], argv, env);
        else execve(argv[0], argv, env);
        int e = errno;
        ssize_t wr = write(execp[1], &e, sizeof e);
        (void)wr;
        _exit(127);
    }
    setpgid(pid, pid);
    close(outp[1]);
    close(execp[1]);
    close(errfd);
    *exec_errno = 0;
    ssize_t n;
    do n = read(execp[0], exec_errno, sizeof *exec_errno); while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof *exec_errno) *exec_errno = 0;
    close(execp[0]);
    fcntl(outp[0], F_SETFL, fcntl(outp[0], F_GETFL) | O_NONBLOCK);
    *out_fd = outp[0];
    return pid;
}

/* Samples and reads stdout until the child is reaped; kills its process
 * group at the time limit or when the runner is interrupted. */
static void watch(watcher *w, int out_fd, int sample_ms)
{
    hb_observation *ob = w->ob;
    double interval = sample_ms / 1000.0;
    double next = 0, deadline = w->t0 + ob->limit_s;
    bool eof = false;
    double t_end = w->t0;
    for (;;) {
        double now = hb_now();
        if (hb_interrupted && !ob->interrupted) { kill(-w->pid, SIGKILL); ob->interrupted = true; }
        if (!ob->timed_out && now >= deadline) { kill(-w->pid, SIGKILL); ob->timed_out = true; }
        if (now >= next) {
            take_sample(w, false);
            next = now + interval;
        }
        pid_t r = wait4(w->pid, &ob->wait_status, WNOHANG, &ob->ru);
        if (r == w->pid) { t_end = hb_now(); break; }
        if (r < 0 && errno != EINTR) { perror("hakbench: wait4"); exit(1); }
        int ms = (int)ceil((next - hb_now()) * 1000.0);
        if (ms < 0) ms = 0;
        if (ms > sample_ms) ms = sample_ms;
        if (!eof) {
            struct pollfd pfd = { out_fd, POLLIN, 0 };
            int pr = poll(&pfd, 1, ms);
            if (pr > 0) eof = !pump(w, out_fd);
        } else {
            struct timespec ts = { 0, (ms < 1 ? 1 : ms) * 1000000L };
            if (ts.tv_nsec > EXIT_POLL_NS) ts.tv_nsec = EXIT_POLL_NS;
            nanosleep(&ts, NULL);
        }
    }
    if (!eof) pump(w, out_fd);
    ob->wall_s = t_end - w->t0;
    ob->peak_rss_kib = ob->peak.v[HB_F_RSS] > ob->ru.ru_maxrss ? ob->peak.v[HB_F_RSS] : ob->ru.ru_maxrss;
}

/* Runs the job's process to its end and fills *ob. */
static void spawn_and_watch(const hb_opts *o, const hb_job *j, const run_paths *p, hb_observation *ob)
{
    memset(ob, 0, sizeof *ob);
    ob->limit_s = j->mode == HB_MODE_CALLGRIND ? o->timeout_s * CALLGRIND_TIME_FACTOR : o->timeout_s;
    ob->interval_ms = o->sample_ms;
    watcher w = { .ob = ob, .alloc = j->a, .statm_fd = -1 };
    w.outlog = open(p->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.outlog < 0) { fprintf(stderr, "hakbench: cannot write %s: %s\n", p->out, strerror(errno)); exit(1); }
    ob->stats_asked = asks_stats(j);
    if (ob->stats_asked) unlink(p->stats); /* a file from an earlier run into this directory */
    char *own[STATS_ENV_STRINGS];
    char **env = make_env(j->a, ob->stats_asked ? p->stats : NULL, own);
    int out_fd;
    /* The machine's busy time around the run, less the runner's and the
     * run's own (the child is reaped by then, so it is in the runner's
     * RUSAGE_CHILDREN): what other processes took meanwhile. */
    double busy0, busy1, self0 = hb_self_cpu();
    long running;
    bool busy_ok = hb_cpu_busy(&busy0, &running);
    w.t0 = hb_now();
    w.pid = spawn(j, p, env, &out_fd, &ob->exec_errno);
    watch(&w, out_fd, o->sample_ms);
    busy_ok = busy_ok && hb_cpu_busy(&busy1, &running);
    ob->other_cpu_s = busy_ok ? busy1 - busy0 - (hb_self_cpu() - self0) : NAN;
    close(out_fd);
    close(w.outlog);
    if (w.statm_fd >= 0) close(w.statm_fd);
    free(w.line);
    for (int i = 0; own[i]; i++) free(own[i]);
    free(env);
    if (ob->stats_asked && !ob->interrupted) read_stats(p->stats, ob);
}

static void observation_free(hb_observation *ob)
{
    free(ob->samples);
    free(ob->result);
    free(ob->stats);
}

/* ---- classify ------------------------------------------------------------- */

static const char *callgrind_total(const char *path, long long *total)
{
    FILE *f = fopen(path, "re");
    if (!f) return "callgrind wrote no output file";
    char line[1024];
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "totals:", 7) == 0 || strncmp(line, "summary:", 8) == 0) {
            *total = strtoll(strchr(line, ':') + 1, NULL, 10);
            found = true;
        }
    }
    fclose(f);
    return found ? NULL : "no totals line in callgrind output";
}

/* Last `cap-1` bytes of a file. */
static void file_tail(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = end > (off_t)(cap - 1) ? end - (off_t)(cap - 1) : 0;
    ssize_t n = pread(fd, out, cap - 1, start);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
}

/* How the process ended: failed (with reason, signal, exit code) or not. */
static void classify_exit(const hb_job *j, const hb_observation *ob, hb_verdict *v)
{
    int st = ob->wait_status;
    if (ob->exec_errno) {
        v->status = HB_FAILED;
        hb_fmt(v->reason, sizeof v->reason, "cannot execute %s: %s",
               j->mode == HB_MODE_CALLGRIND ? "valgrind" : j->c->argv[0], strerror(ob->exec_errno));
    } else if (ob->timed_out) {
        v->status = HB_FAILED;
        v->signal = SIGKILL;
        hb_fmt(v->reason, sizeof v->reason, "timeout: killed after %.1f s", ob->limit_s);
    } else if (WIFSIGNALED(st)) {
        v->status = HB_FAILED;
        v->signal = WTERMSIG(st);
        const char *abbrev = sigabbrev_np(v->signal);
        hb_fmt(v->reason, sizeof v->reason, "killed by signal %d (SIG%s)%s", v->signal, abbrev ? abbrev : "?",
               WCOREDUMP(st) ? ", core dumped" : "");
    } else if (WEXITSTATUS(st) != 0) {
        v->status = HB_FAILED;
        v->exit_code = WEXITSTATUS(st);
        const char *meaning = wl_exit_meaning(v->exit_code);
        if (meaning) hb_fmt(v->reason, sizeof v->reason, "exit %d: %s", v->exit_code, meaning);
        else hb_fmt(v->reason, sizeof v->reason, "exit status %d", v->exit_code);
    } else {
        v->exit_code = 0;
    }
}

/* The result's "floor" member: 1 true, 0 false, -1 absent or not a boolean. */
static int result_floor(const hb_observation *ob)
{
    const char *val;
    size_t n;
    if (!json_get(ob->result, ob->resultlen, "floor", &val, &n)) return -1;
    if (n == 4 && memcmp(val, "true", 4) == 0) return 1;
    if (n == 5 && memcmp(val, "false", 5) == 0) return 0;
    return -1;
}

/* Whether the intended allocator served the run: an ok exit becomes
 * invalid when nothing proves it. For the floor, the intended "allocator" is
 * the workload's own recycle: the result must say so. */
static void classify_allocator(const hb_job *j, const hb_observation *ob, hb_verdict *v)
{
    const hb_alloc *a = j->a;
    char real[PATH_MAX] = "";
    v->expected = a->system ? hb_libc_path() : a->real;
    v->have_result = ob->result && json_object_valid(ob->result, ob->resultlen);
    v->floor_reported = v->have_result ? result_floor(ob) : -1;
    if (v->have_result && json_get_str(ob->result, ob->resultlen, "malloc_from", v->malloc_from, sizeof v->malloc_from)) {
        if (!realpath(v->malloc_from, real)) snprintf(real, sizeof real, "%s", v->malloc_from);
        v->verified = strcmp(real, v->expected) == 0;
    }
    if (v->status != HB_OK) return;
    if (!v->have_result) {
        v->status = HB_INVALID;
        hb_fmt(v->reason, sizeof v->reason, "no JSON result object on the last stdout line");
    } else if (!v->malloc_from[0]) {
        v->status = HB_INVALID;
        hb_fmt(v->reason, sizeof v->reason, "the result has no malloc_from: cannot prove which allocator ran");
    } else if (!v->verified) {
        v->status = HB_INVALID;
        hb_fmt(v->reason, sizeof v->reason, "malloc was served by %s, expected %s", real, v->expected);
    } else if (!a->system && j->mode != HB_MODE_CALLGRIND && !ob->maps_seen && ob->nsamples > 0 && ob->maps_tries > 0) {
        v->status = HB_INVALID;
        hb_fmt(v->reason, sizeof v->reason, "%s never appeared in /proc/<pid>/maps", a->real);
    } else if (a->kind == HB_KIND_FLOOR && v->floor_reported != 1) {
        v->status = HB_INVALID;
        hb_fmt(v->reason, sizeof v->reason, "a floor run whose result %s: nothing proves that its timed work "
               "called no malloc", v->floor_reported == 0 ? "says \"floor\": false" : "has no \"floor\": true");
    }
}

static void classify(const hb_job *j, const run_paths *p, const hb_observation *ob, hb_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->status = HB_OK;
    v->exit_code = -1;
    v->instructions = -1;
    classify_exit(j, ob, v);
    classify_allocator(j, ob, v);
    if (j->mode == HB_MODE_CALLGRIND && v->status == HB_OK) {
        const char *err = callgrind_total(p->cg, &v->instructions);
        if (err) { v->status = HB_FAILED; hb_fmt(v->reason, sizeof v->reason, "%s", err); }
    }
    if (j->mode == HB_MODE_STATS && v->status == HB_OK) {
        const char *missing = ob->stats ? hb_stats_missing(ob->stats, ob->statslen) : NULL;
        if (!ob->stats) {
            v->status = HB_FAILED;
            hb_fmt(v->reason, sizeof v->reason, "%s", ob->stats_error);
        } else if (missing) {
            v->status = HB_FAILED;
            hb_fmt(v->reason, sizeof v->reason, "the library's statistics lack %s", missing);
        }
    }
    if (v->status != HB_OK) file_tail(p->err, v->stderr_tail, sizeof v->stderr_tail);
}

/* ---- one run ---------------------------------------------------------------- */

static void count(hb_tally *t, hb_status s)
{
    switch (s) {
    case HB_OK: t->ok++; break;
    case HB_FAILED: t->failed++; break;
    case HB_INVALID: t->invalid++; break;
    }
}

static void print_progress(const hb_job *j, const hb_observation *ob, const hb_verdict *v)
{
    char fig[128] = "";
    double x;
    if (j->mode == HB_MODE_STATS) {
        if (ob->stats) snprintf(fig, sizeof fig, "statistics: %zu bytes of JSON", ob->statslen);
    } else if (j->mode == HB_MODE_CALLGRIND) {
        if (v->instructions >= 0 && v->have_result && json_get_num(ob->result, ob->resultlen, "ops", &x) && x > 0)
            snprintf(fig, sizeof fig, "%.1f instr/op", (double)v->instructions / x);
    } else if (v->have_result && json_get_num(ob->result, ob->resultlen, "ns_per_op", &x)) {
        snprintf(fig, sizeof fig, "%8.2f ns/op  peak %7.1f MiB", x, ob->peak_rss_kib / 1024.0);
    }
    fprintf(stderr, "  [%4d] r%d %-18s %-22s %-7s %6.2fs %s%s%s\n", j->seq, j->rep, j->c->label, j->a->name,
            hb_status_name(v->status), ob->wall_s, fig, v->reason[0] ? "  " : "", v->reason);
}

bool hb_run(const hb_opts *o, int raw_fd, const hb_job *j, hb_tally *t)
{
    run_paths p;
    hb_observation ob;
    hb_verdict v;
    make_paths(o, j, &p);
    spawn_and_watch(o, j, &p, &ob);
    if (ob.interrupted) {
        observation_free(&ob);
        return false;
    }
    classify(j, &p, &ob, &v);
    hb_write_run(raw_fd, j, p.base, &ob, &v);
    count(t, v.status);
    t->other_cpu_s += ob.other_cpu_s; /* NAN once /proc/stat could not be read: unknown stays unknown */
    t->runs_wall_s += ob.wall_s;
    if (!o->quiet) print_progress(j, &ob, &v);
    observation_free(&ob);
    return true;
}
