/*
 * run.c — one run: a fresh process under one allocator, measured from the
 * outside.
 *
 * The child is forked into its own process group with LD_PRELOAD set (unset
 * for "system"), stdout on a pipe and stderr in a log file. The parent loops
 * on poll(2) over the pipe with a timeout equal to the sampling interval: at
 * each tick it reads /proc/<pid>/smaps_rollup, and every stdout line is
 * handled as it arrives, so `@phase` markers get the runner's timestamp and
 * an RSS sample of their own. wait4(2) gives the exit status and rusage. A
 * run past its time limit gets SIGKILL on its whole process group.
 *
 * Verification: the workload's last stdout line is a JSON object whose
 * `malloc_from` names the object that served malloc; its realpath must equal
 * the allocator's (libc's for system), and for a preloaded library the
 * library must also appear in /proc/<pid>/maps.
 */
#include "hakbench.h"

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

/* smaps_rollup fields we keep, in KiB. */
enum { F_RSS, F_PSS, F_PSS_ANON, F_PRIV_DIRTY, F_ANON, F_ANON_HUGE, F_LAZYFREE, F_SWAP, F_N };
static const char *const field_src[F_N] = {
    "Rss:", "Pss:", "Pss_Anon:", "Private_Dirty:", "Anonymous:", "AnonHugePages:", "LazyFree:", "Swap:",
};
static const char *const field_key[F_N] = {
    "rss_kib", "pss_kib", "pss_anon_kib", "private_dirty_kib", "anonymous_kib", "anon_huge_kib",
    "lazyfree_kib", "swap_kib",
};

typedef struct { long v[F_N]; } rollup;
typedef struct { double t; long rss, rss_nolazy; } sample;

#define MAX_PHASES 32
typedef struct {
    char name[32];
    double t;        /* runner clock, seconds since fork */
    double wt;       /* the workload's own timestamp, or NAN */
    long rss, rss_nolazy;
} phase;

typedef struct {
    pid_t pid;
    double t0;
    const hb_alloc *alloc;
    /* memory */
    sample *samples;
    size_t nsamples, cap;
    rollup peak, last;
    long peak_nolazy;
    bool have_last;
    bool maps_seen;
    int maps_tries;
    /* stdout */
    char *line;
    size_t linelen, linecap;
    char *result;    /* last non-empty, non-marker line */
    size_t resultlen;
    int outlog;
    phase phases[MAX_PHASES];
    int nphases;
} runstate;

static bool read_rollup(pid_t pid, rollup *r)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    long n = hb_read_file(path, buf, sizeof buf);
    if (n <= 0) return false;
    memset(r, 0, sizeof *r);
    bool any = false;
    for (char *l = buf; l && *l; ) {
        char *nl = strchr(l, '\n');
        for (int f = 0; f < F_N; f++) {
            size_t k = strlen(field_src[f]);
            if (strncmp(l, field_src[f], k) == 0) { r->v[f] = strtol(l + k, NULL, 10); any = true; }
        }
        l = nl ? nl + 1 : NULL;
    }
    return any;
}

static bool maps_has(pid_t pid, const char *lib)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) return false;
    char line[4096 + 256];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *p = strchr(line, '/');
        if (!p) continue;
        p[strcspn(p, "\n")] = '\0';
        if (strcmp(p, lib) == 0) found = true;
        else {
            char rp[PATH_MAX];
            if (realpath(p, rp) && strcmp(rp, lib) == 0) found = true;
        }
    }
    fclose(f);
    return found;
}

static void take_sample(runstate *s)
{
    rollup r;
    double t = hb_now() - s->t0;
    if (!read_rollup(s->pid, &r) || r.v[F_RSS] == 0) return; /* not yet (or no longer) mapped */
    long nolazy = r.v[F_RSS] - r.v[F_LAZYFREE];
    for (int f = 0; f < F_N; f++)
        if (r.v[f] > s->peak.v[f]) s->peak.v[f] = r.v[f];
    if (nolazy > s->peak_nolazy) s->peak_nolazy = nolazy;
    s->last = r;
    s->have_last = true;
    if (s->nsamples == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        sample *p = realloc(s->samples, cap * sizeof *p);
        if (!p) return;
        s->samples = p; s->cap = cap;
    }
    s->samples[s->nsamples++] = (sample){ t, r.v[F_RSS], nolazy };
    if (!s->alloc->system && !s->maps_seen && s->maps_tries < 50 && t > 0.002) {
        s->maps_tries++;
        s->maps_seen = maps_has(s->pid, s->alloc->real);
    }
}

static void handle_line(runstate *s, char *l, size_t n)
{
    while (n && (l[n - 1] == '\r' || l[n - 1] == ' ')) l[--n] = '\0';
    if (n == 0) return;
    if (strncmp(l, "@phase ", 7) == 0) {
        if (s->nphases == MAX_PHASES) return;
        phase *p = &s->phases[s->nphases++];
        p->t = hb_now() - s->t0;
        p->wt = NAN;
        char name[32] = "";
        double wt;
        int k = sscanf(l + 7, "%31s %lf", name, &wt);
        snprintf(p->name, sizeof p->name, "%s", name);
        if (k == 2) p->wt = wt;
        take_sample(s);
        p->rss = s->have_last ? s->last.v[F_RSS] : -1;
        p->rss_nolazy = s->have_last ? s->last.v[F_RSS] - s->last.v[F_LAZYFREE] : -1;
        return;
    }
    if (l[0] == '@') return; /* other markers: ignore */
    char *copy = realloc(s->result, n + 1);
    if (!copy) return;
    memcpy(copy, l, n + 1);
    s->result = copy;
    s->resultlen = n;
}

/* Reads what is available; returns false at EOF or error. */
static bool pump(runstate *s, int fd)
{
    char buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return true;
        if (n <= 0) {
            if (s->linelen) { s->line[s->linelen] = '\0'; handle_line(s, s->line, s->linelen); s->linelen = 0; }
            return false;
        }
        if (s->outlog >= 0) hb_write_all(s->outlog, buf, (size_t)n);
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                if (s->line) { s->line[s->linelen] = '\0'; handle_line(s, s->line, s->linelen); }
                s->linelen = 0;
                continue;
            }
            if (s->linelen + 2 > s->linecap) {
                if (s->linecap >= (1u << 20)) continue; /* absurd line: truncate */
                size_t cap = s->linecap ? s->linecap * 2 : 4096;
                char *p = realloc(s->line, cap);
                if (!p) continue;
                s->line = p; s->linecap = cap;
            }
            s->line[s->linelen++] = buf[i];
        }
    }
}

static char **make_env(const hb_alloc *a, char **preload)
{
    size_t n = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env) { perror("hakbench: calloc"); exit(1); }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0) env[k++] = environ[i];
    if (!a->system) {
        size_t len = strlen(a->real) + 12;
        env[k] = malloc(len);
        if (!env[k]) { perror("hakbench: malloc"); exit(1); }
        snprintf(env[k], len, "LD_PRELOAD=%s", a->real);
        *preload = env[k];
        k++;
    }
    env[k] = NULL;
    return env;
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

static long sample_at_or_after(const runstate *s, double t, bool nolazy)
{
    for (size_t i = 0; i < s->nsamples; i++)
        if (s->samples[i].t >= t) return nolazy ? s->samples[i].rss_nolazy : s->samples[i].rss;
    return -1;
}

static const phase *find_phase(const runstate *s, const char *name)
{
    for (int i = 0; i < s->nphases; i++)
        if (strcmp(s->phases[i].name, name) == 0) return &s->phases[i];
    return NULL;
}

static void write_idle(hb_jbuf *b, const runstate *s)
{
    const phase *st = find_phase(s, "start"), *is = find_phase(s, "idle_start"),
                *ie = find_phase(s, "idle_end");
    if (!is) return;
    jb_open(b, "idle", '{');
    if (st) { jb_int(b, "rss_before_burst_kib", st->rss); jb_int(b, "rss_nolazy_before_burst_kib", st->rss_nolazy); }
    long r1 = sample_at_or_after(s, is->t + 1.0, false), r1n = sample_at_or_after(s, is->t + 1.0, true);
    if (r1 >= 0 && (!ie || ie->t >= is->t + 1.0)) { jb_int(b, "rss_1s_after_idle_start_kib", r1); jb_int(b, "rss_nolazy_1s_after_idle_start_kib", r1n); }
    else { jb_null(b, "rss_1s_after_idle_start_kib"); jb_null(b, "rss_nolazy_1s_after_idle_start_kib"); }
    if (ie) { jb_int(b, "rss_at_idle_end_kib", ie->rss); jb_int(b, "rss_nolazy_at_idle_end_kib", ie->rss_nolazy); }
    double tend = ie ? ie->t : INFINITY;
    long mn = -1, mx = -1;
    double sum = 0;
    long cnt = 0;
    for (size_t i = 0; i < s->nsamples; i++) {
        const sample *p = &s->samples[i];
        if (p->t < is->t || p->t > tend) continue;
        if (mn < 0 || p->rss < mn) mn = p->rss;
        if (p->rss > mx) mx = p->rss;
        sum += (double)p->rss;
        cnt++;
    }
    if (cnt) { jb_int(b, "rss_idle_min_kib", mn); jb_int(b, "rss_idle_max_kib", mx); jb_num(b, "rss_idle_mean_kib", sum / (double)cnt); }
    jb_close(b, '}');
}

static void write_timeline(hb_jbuf *b, const runstate *s)
{
    const size_t maxpts = 300;
    size_t step = s->nsamples > maxpts ? (s->nsamples + maxpts - 1) / maxpts : 1;
    jb_open(b, "timeline", '{');
    jb_open(b, "t_s", '[');
    for (size_t i = 0; i < s->nsamples; i += step) jb_num(b, NULL, round(s->samples[i].t * 1e4) / 1e4);
    jb_close(b, ']');
    jb_open(b, "rss_kib", '[');
    for (size_t i = 0; i < s->nsamples; i += step) {
        long mx = 0;
        for (size_t j = i; j < i + step && j < s->nsamples; j++)
            if (s->samples[j].rss > mx) mx = s->samples[j].rss;
        jb_int(b, NULL, mx);
    }
    jb_close(b, ']');
    jb_open(b, "rss_nolazy_kib", '[');
    for (size_t i = 0; i < s->nsamples; i += step) {
        long mx = 0;
        for (size_t j = i; j < i + step && j < s->nsamples; j++)
            if (s->samples[j].rss_nolazy > mx) mx = s->samples[j].rss_nolazy;
        jb_int(b, NULL, mx);
    }
    jb_close(b, ']');
    jb_close(b, '}');
}

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

static bool run_common(const hb_opts *o, int raw_fd, const hb_case *c, const hb_alloc *a,
                       int rep, int seq, hb_tally *t, bool callgrind)
{
    char label[64], aname[64], base[PATH_MAX], outpath[PATH_MAX], errpath[PATH_MAX], cgpath[PATH_MAX];
    sanitize(label, sizeof label, c->label);
    sanitize(aname, sizeof aname, a->name);
    snprintf(base, sizeof base, "logs/%04d-%s-%s-r%d%s", seq, label, aname, rep, callgrind ? "-callgrind" : "");
    hb_fmt(outpath, sizeof outpath, "%s/%s.out", o->out_dir, base);
    hb_fmt(errpath, sizeof errpath, "%s/%s.err", o->out_dir, base);
    hb_fmt(cgpath, sizeof cgpath, "%s/%s.callgrind", o->out_dir, base);

    /* argv: optionally valgrind in front */
    char *argv[HB_MAX_ARGS + 8];
    int ac = 0;
    char cgopt[PATH_MAX + 32];
    if (callgrind) {
        snprintf(cgopt, sizeof cgopt, "--callgrind-out-file=%s", cgpath);
        argv[ac++] = "valgrind";
        argv[ac++] = "--tool=callgrind";
        argv[ac++] = "-q";
        argv[ac++] = cgopt;
    }
    for (int i = 0; i < c->argc; i++) argv[ac++] = c->argv[i];
    argv[ac] = NULL;

    char *preload = NULL;
    char **env = make_env(a, &preload);
    int outp[2], execp[2];
    if (pipe2(outp, O_CLOEXEC) || pipe2(execp, O_CLOEXEC)) { perror("hakbench: pipe"); exit(1); }
    int errfd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int outlog = open(outpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (errfd < 0 || outlog < 0) { fprintf(stderr, "hakbench: cannot write logs in %s/logs: %s\n", o->out_dir, strerror(errno)); exit(1); }

    runstate s;
    memset(&s, 0, sizeof s);
    s.alloc = a;
    s.outlog = outlog;
    s.t0 = hb_now();
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
        ssize_t w = write(execp[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    setpgid(pid, pid);
    s.pid = pid;
    close(outp[1]);
    close(execp[1]);
    close(errfd);
    int exec_errno = 0;
    {
        ssize_t n;
        do n = read(execp[0], &exec_errno, sizeof exec_errno); while (n < 0 && errno == EINTR);
        if (n != (ssize_t)sizeof exec_errno) exec_errno = 0;
        close(execp[0]);
    }
    fcntl(outp[0], F_SETFL, fcntl(outp[0], F_GETFL) | O_NONBLOCK);

    double timeout = callgrind ? o->timeout_s * 40 : o->timeout_s;
    double interval = o->sample_ms / 1000.0;
    double next = 0, deadline = s.t0 + timeout;
    bool eof = false, timed_out = false, interrupted = false;
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    double t_end = 0;
    for (;;) {
        double now = hb_now();
        if (hb_interrupted && !interrupted) { kill(-pid, SIGKILL); interrupted = true; }
        if (!timed_out && now >= deadline) { kill(-pid, SIGKILL); timed_out = true; }
        if (now >= next) {
            take_sample(&s);
            next = now + interval;
        }
        pid_t r = wait4(pid, &status, WNOHANG, &ru);
        if (r == pid) { t_end = hb_now(); break; }
        if (r < 0 && errno != EINTR) { perror("hakbench: wait4"); exit(1); }
        int ms = (int)ceil((next - hb_now()) * 1000.0);
        if (ms < 0) ms = 0;
        if (ms > o->sample_ms) ms = o->sample_ms;
        if (!eof) {
            struct pollfd pfd = { outp[0], POLLIN, 0 };
            int pr = poll(&pfd, 1, ms);
            if (pr > 0) eof = !pump(&s, outp[0]);
        } else {
            struct timespec ts = { 0, (ms < 1 ? 1 : ms) * 1000000L };
            if (ts.tv_nsec > 1000000L) ts.tv_nsec = 1000000L; /* poll the exit every ms after EOF */
            nanosleep(&ts, NULL);
        }
    }
    if (!eof) pump(&s, outp[0]);
    close(outp[0]);
    close(outlog);
    free(preload);
    free(env);

    if (interrupted) {
        free(s.samples); free(s.line); free(s.result);
        return false;
    }

    double wall = t_end - s.t0;
    /* ---- classification ---- */
    const char *status_s = "ok";
    char reason[512] = "";
    int sig = 0, code = -1;
    if (exec_errno) {
        status_s = "failed";
        hb_fmt(reason, sizeof reason, "cannot execute %s: %s", argv[0], strerror(exec_errno));
    } else if (timed_out) {
        status_s = "failed";
        sig = SIGKILL;
        hb_fmt(reason, sizeof reason, "timeout: killed after %.1f s", timeout);
    } else if (WIFSIGNALED(status)) {
        status_s = "failed";
        sig = WTERMSIG(status);
        hb_fmt(reason, sizeof reason, "killed by signal %d (SIG%s%s)%s", sig,
                 sigabbrev_np(sig) ? sigabbrev_np(sig) : "?", "",
                 WCOREDUMP(status) ? ", core dumped" : "");
    } else if (WEXITSTATUS(status) != 0) {
        code = WEXITSTATUS(status);
        status_s = "failed";
        if (code == 2) hb_fmt(reason, sizeof reason, "exit 2: the workload rejected its arguments");
        else if (code == 3) hb_fmt(reason, sizeof reason, "exit 3: the workload detected heap corruption");
        else hb_fmt(reason, sizeof reason, "exit status %d", code);
    } else {
        code = 0;
    }

    bool have_result = s.result && json_object_valid(s.result, s.resultlen);
    char malloc_from[PATH_MAX] = "", malloc_real[PATH_MAX] = "";
    bool verified = false;
    const char *expected = a->system ? hb_libc_path() : a->real;
    if (have_result && json_get_str(s.result, s.resultlen, "malloc_from", malloc_from, sizeof malloc_from)) {
        if (!realpath(malloc_from, malloc_real)) snprintf(malloc_real, sizeof malloc_real, "%s", malloc_from);
        verified = strcmp(malloc_real, expected) == 0;
    }
    if (strcmp(status_s, "ok") == 0) {
        if (!have_result) {
            status_s = "invalid";
            hb_fmt(reason, sizeof reason, "no JSON result object on the last stdout line");
        } else if (!malloc_from[0]) {
            status_s = "invalid";
            hb_fmt(reason, sizeof reason, "the result has no malloc_from: cannot prove which allocator ran");
        } else if (!verified) {
            status_s = "invalid";
            hb_fmt(reason, sizeof reason, "malloc was served by %s, expected %s", malloc_real, expected);
        } else if (!a->system && !callgrind && !s.maps_seen && s.nsamples > 0 && s.maps_tries > 0) {
            status_s = "invalid";
            hb_fmt(reason, sizeof reason, "%s never appeared in /proc/<pid>/maps", a->real);
        }
    }
    long long instructions = -1;
    if (callgrind && strcmp(status_s, "ok") == 0) {
        const char *err = callgrind_total(cgpath, &instructions);
        if (err) { status_s = "failed"; hb_fmt(reason, sizeof reason, "%s", err); }
    }

    long peak_rss = s.peak.v[F_RSS] > ru.ru_maxrss ? s.peak.v[F_RSS] : ru.ru_maxrss;

    /* ---- the row ---- */
    hb_jbuf b;
    jb_init(&b);
    jb_open(&b, NULL, '{');
    jb_str(&b, "type", "run");
    jb_str(&b, "schema", HB_SCHEMA);
    jb_str(&b, "mode", callgrind ? "callgrind" : "measure");
    jb_int(&b, "seq", seq);
    jb_int(&b, "rep", rep);
    jb_str(&b, "label", c->label);
    jb_str(&b, "workload", c->workload);
    jb_open(&b, "args", '[');
    for (int i = 1; i < c->argc; i++) jb_str(&b, NULL, c->argv[i]);
    jb_close(&b, ']');
    jb_str(&b, "allocator", a->name);
    jb_str(&b, "status", status_s);
    jb_str(&b, "reason", reason[0] ? reason : NULL);
    if (code >= 0) jb_int(&b, "exit_code", code); else jb_null(&b, "exit_code");
    if (sig) jb_int(&b, "signal", sig); else jb_null(&b, "signal");
    jb_num(&b, "wall_s", wall);
    jb_num(&b, "user_s", (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6);
    jb_num(&b, "sys_s", (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    jb_int(&b, "maxrss_kib", ru.ru_maxrss);
    jb_int(&b, "minflt", ru.ru_minflt);
    jb_int(&b, "majflt", ru.ru_majflt);
    jb_int(&b, "nvcsw", ru.ru_nvcsw);
    jb_int(&b, "nivcsw", ru.ru_nivcsw);

    double v;
    const char *numkeys[] = { "ops", "seconds", "ns_per_op", "ops_per_sec", "ns_per_pair",
                              "peak_live_bytes", "final_live_bytes", "threads" };
    for (size_t i = 0; i < sizeof numkeys / sizeof *numkeys; i++) {
        if (have_result && json_get_num(s.result, s.resultlen, numkeys[i], &v)) jb_num(&b, numkeys[i], v);
        else jb_null(&b, numkeys[i]);
    }
    /* Peak RSS: the larger of the sampled peak and the kernel's high-water
     * mark (sampling can miss a short spike; a run shorter than one interval
     * has no sample at all). Fragmentation is measured against it. */
    jb_int(&b, "peak_rss_kib", peak_rss);
    double live = 0;
    if (have_result && json_get_num(s.result, s.resultlen, "peak_live_bytes", &live) && live > 0 && peak_rss > 0)
        jb_num(&b, "fragmentation", (double)peak_rss * 1024.0 / live);
    else
        jb_null(&b, "fragmentation");
    if (callgrind) {
        double ops = 0;
        if (instructions >= 0) jb_int(&b, "instructions", instructions); else jb_null(&b, "instructions");
        if (instructions >= 0 && have_result && json_get_num(s.result, s.resultlen, "ops", &ops) && ops > 0)
            jb_num(&b, "instr_per_op", (double)instructions / ops);
        else jb_null(&b, "instr_per_op");
    }

    jb_open(&b, "mem", '{');
    jb_int(&b, "samples", (long long)s.nsamples);
    jb_int(&b, "interval_ms", o->sample_ms);
    jb_open(&b, "peak", '{');
    for (int f = 0; f < F_N; f++) jb_int(&b, field_key[f], s.peak.v[f]);
    jb_int(&b, "rss_nolazy_kib", s.peak_nolazy);
    jb_close(&b, '}');
    jb_open(&b, "final", '{');
    for (int f = 0; f < F_N; f++) jb_int(&b, field_key[f], s.last.v[f]);
    jb_int(&b, "rss_nolazy_kib", s.last.v[F_RSS] - s.last.v[F_LAZYFREE]);
    jb_close(&b, '}');
    jb_close(&b, '}');

    jb_open(&b, "phases", '[');
    for (int i = 0; i < s.nphases; i++) {
        jb_open(&b, NULL, '{');
        jb_str(&b, "name", s.phases[i].name);
        jb_num(&b, "t_s", s.phases[i].t);
        jb_num(&b, "workload_t_s", s.phases[i].wt);
        jb_int(&b, "rss_kib", s.phases[i].rss);
        jb_int(&b, "rss_nolazy_kib", s.phases[i].rss_nolazy);
        jb_close(&b, '}');
    }
    jb_close(&b, ']');
    write_idle(&b, &s);
    write_timeline(&b, &s);

    jb_open(&b, "verify", '{');
    jb_str(&b, "expected", expected);
    jb_str(&b, "malloc_from", malloc_from[0] ? malloc_from : NULL);
    jb_bool(&b, "malloc_from_ok", verified);
    if (a->system) jb_null(&b, "maps_has_lib"); else jb_bool(&b, "maps_has_lib", s.maps_seen);
    jb_close(&b, '}');

    jb_str(&b, "log", base);
    if (strcmp(status_s, "ok") != 0) {
        char tail[600];
        file_tail(errpath, tail, sizeof tail);
        jb_str(&b, "stderr_tail", tail);
    }
    if (have_result) jb_rawval(&b, "result", s.result, s.resultlen);
    else jb_null(&b, "result");
    jb_close(&b, '}');
    jb_finish_line(&b);
    if (!hb_write_all(raw_fd, b.p, b.len)) { perror("hakbench: writing raw.jsonl"); exit(1); }
    jb_free(&b);

    if (strcmp(status_s, "ok") == 0) t->ok++;
    else if (strcmp(status_s, "failed") == 0) t->failed++;
    else t->invalid++;

    if (!o->quiet) {
        char fig[128] = "";
        double nsop;
        if (callgrind && instructions >= 0) {
            double ops;
            if (have_result && json_get_num(s.result, s.resultlen, "ops", &ops) && ops > 0)
                snprintf(fig, sizeof fig, "%.1f instr/op", (double)instructions / ops);
        } else if (have_result && json_get_num(s.result, s.resultlen, "ns_per_op", &nsop)) {
            snprintf(fig, sizeof fig, "%8.2f ns/op  peak %7.1f MiB", nsop, peak_rss / 1024.0);
        }
        fprintf(stderr, "  [%4d] r%d %-18s %-22s %-7s %6.2fs %s%s%s\n", seq, rep, c->label, a->name,
                status_s, wall, fig, reason[0] ? "  " : "", reason);
    }
    free(s.samples); free(s.line); free(s.result);
    return true;
}

bool hb_run_one(const hb_opts *o, int raw_fd, const hb_case *c, const hb_alloc *a,
                int rep, int seq, hb_tally *t)
{
    return run_common(o, raw_fd, c, a, rep, seq, t, false);
}

void hb_callgrind_one(const hb_opts *o, int raw_fd, const hb_case *c, const hb_alloc *a, int seq,
                      hb_tally *t)
{
    run_common(o, raw_fd, c, a, 0, seq, t, true);
}
