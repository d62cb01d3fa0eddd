/*
 * context.c — what a reader needs to trust a result: the machine, the build,
 * and, for every allocator, its library, version and whether its preload
 * takes (checked once up front by running this binary as `hakbench probe`
 * under the preload; every run is verified again on its own). The facts are
 * gathered here; rows.c writes them.
 */
#include "hakbench.h"

#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The probe's whole output: one line, and a hakmem option table of a few
 * lines of about 120 characters. */
#define PROBE_OUTPUT_MAX 16384

/* The line after which the probe prints a hakmem library's option table. */
#define OPTIONS_MARKER "@options"

/* A library's revision.json: one small object. */
#define REVISION_MAX 4096

/* `hakbench probe`: runs under the preload and reports what serves malloc,
 * hakmem's version and variant, and (a hakmem library) its option table
 * with the values in force under this environment, which every run
 * inherits:
 *     <malloc's object>\t<hak_version>\t<hak_variant>
 *     @options
 *     <hak_options_print's output> */
int hb_probe_main(void)
{
    void *p = malloc(64); /* make sure the allocator is initialised */
    free(p);
    Dl_info info;
    const char *from = "";
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    if (sym && dladdr(sym, &info) && info.dli_fname) from = info.dli_fname;
    const char *(*ver)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "hak_version");
    const char *(*var)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "hak_variant");
    void (*print_options)(FILE *) = (void (*)(FILE *))dlsym(RTLD_DEFAULT, "hak_options_print");
    printf("%s\t%s\t%s\n", from, ver ? ver() : "", var ? var() : "");
    if (print_options) {
        printf("%s\n", OPTIONS_MARKER);
        fflush(stdout);
        print_options(stdout);
    }
    fflush(stdout);
    return 0;
}

/* Reads hak_options_print's table: a header line `option value default
 * environment meaning`, then one option a line, the meaning last (it may
 * hold spaces). A line that does not read so is named in options_error. */
static void parse_options(hb_alloc *a, char *table)
{
    int cap = 0;
    bool header = true;
    for (char *l = strtok(table, "\n"); l; l = strtok(NULL, "\n")) {
        if (header) {
            header = false;
            if (strncmp(l, "option", 6) != 0) {
                hb_fmt(a->options_error, sizeof a->options_error, "no header line, got: %s", l);
                return;
            }
            continue;
        }
        if (a->noptions == cap) {
            cap = cap ? 2 * cap : 8;
            hb_option *o = realloc(a->options, (size_t)cap * sizeof *o);
            if (!o) { perror("hakbench: realloc"); exit(1); }
            a->options = o;
        }
        hb_option *o = &a->options[a->noptions];
        memset(o, 0, sizeof *o);
        int off = 0;
        if (sscanf(l, "%47s %31s %31s %63s %n", o->name, o->value, o->def, o->env, &off) < 4) {
            hb_fmt(a->options_error, sizeof a->options_error, "unreadable option line: %s", l);
            continue;
        }
        hb_fmt(o->meaning, sizeof o->meaning, "%s", l + off);
        a->noptions++;
    }
}

static void shell_quote(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    if (cap < 3) { out[0] = '\0'; return; }
    out[o++] = '\'';
    for (; *s && o + 6 < cap; s++) {
        if (*s == '\'') { memcpy(out + o, "'\\''", 4); o += 4; }
        else out[o++] = *s;
    }
    out[o++] = '\'';
    out[o] = '\0';
}

static void package_version(const char *real, char *out, size_t cap)
{
    char q[PATH_MAX + 16], cmd[2 * PATH_MAX], pkg[256];
    shell_quote(q, sizeof q, real);
    snprintf(cmd, sizeof cmd, "dpkg-query -S %s 2>/dev/null | head -1 | cut -d: -f1", q);
    hb_cmd_line(cmd, pkg, sizeof pkg);
    if (!pkg[0] || strchr(pkg, '\'')) return;
    snprintf(cmd, sizeof cmd, "dpkg-query -W -f='${Version}' '%s' 2>/dev/null", pkg);
    char ver[128];
    hb_cmd_line(cmd, ver, sizeof ver);
    if (ver[0]) hb_fmt(out, cap, "%s %s", pkg, ver);
}

void hb_probe_alloc(hb_alloc *a, const char *self)
{
    a->available = true;
    if (a->kind == HB_KIND_FLOOR) { /* no preload: libc serves what malloc is called outside the timed work */
        snprintf(a->real, sizeof a->real, "%s", hb_libc_path());
        snprintf(a->served_by, sizeof a->served_by, "%s", a->real);
        a->preload_ok = true;
        return;
    }
    if (a->system) {
        snprintf(a->real, sizeof a->real, "%s", hb_libc_path());
        snprintf(a->version, sizeof a->version, "glibc %s", gnu_get_libc_version());
        snprintf(a->served_by, sizeof a->served_by, "%s", a->real);
        a->preload_ok = true;
        return;
    }
    if (access(a->lib, R_OK) != 0 || !realpath(a->lib, a->real)) {
        a->available = false;
        hb_fmt(a->skip_reason, sizeof a->skip_reason, "library not found: %s%s", a->lib,
                 a->kind == HB_KIND_HAKMEM ? " (build it with make VARIANT=...)" : " (make deps-bench installs it)");
        return;
    }
    if (a->kind == HB_KIND_HAKMEM) {
        char cf[PATH_MAX];
        snprintf(cf, sizeof cf, "%s", a->real);
        char *slash = strrchr(cf, '/');
        if (slash) {
            snprintf(slash, sizeof cf - (size_t)(slash - cf), "/cflags");
            if (hb_read_file(cf, a->cflags, sizeof a->cflags) > 0) a->cflags[strcspn(a->cflags, "\n")] = '\0';
            /* Which revision it was built from (scripts/revbuild writes it):
             * one JSON object, kept as it is. */
            char rev[REVISION_MAX];
            snprintf(slash, sizeof cf - (size_t)(slash - cf), "/revision.json");
            long n = hb_read_file(cf, rev, sizeof rev);
            while (n > 0 && (rev[n - 1] == '\n' || rev[n - 1] == ' ')) rev[--n] = '\0';
            if (n > 0 && json_object_valid(rev, (size_t)n)) a->revision = strdup(rev);
            else if (n != -1) fprintf(stderr, "hakbench: %s is not one JSON object; its revision is not recorded\n", cf);
        }
    }
    char qlib[PATH_MAX + 16], qself[PATH_MAX + 16], cmd[3 * PATH_MAX], out[PROBE_OUTPUT_MAX];
    shell_quote(qlib, sizeof qlib, a->real);
    shell_quote(qself, sizeof qself, self);
    snprintf(cmd, sizeof cmd, "LD_PRELOAD=%s %s probe 2>/dev/null", qlib, qself);
    hb_cmd_output(cmd, out, sizeof out);
    char *table = strstr(out, "\n" OPTIONS_MARKER "\n");
    if (table) {
        *table = '\0';
        parse_options(a, table + strlen("\n" OPTIONS_MARKER "\n"));
        if (!a->options) a->options = calloc(1, sizeof *a->options); /* an empty table is still one */
    }
    char *line = out;
    line[strcspn(line, "\n")] = '\0';
    char *from = strtok(line, "\t"), *ver = strtok(NULL, "\t"), *var = strtok(NULL, "\t");
    char rp[PATH_MAX];
    if (from && realpath(from, rp)) snprintf(a->served_by, sizeof a->served_by, "%s", rp);
    else if (from) snprintf(a->served_by, sizeof a->served_by, "%s", from);
    a->preload_ok = strcmp(a->served_by, a->real) == 0;
    if (ver && *ver) snprintf(a->version, sizeof a->version, "hakmem %s%s%s", ver, var && *var ? " " : "", var ? var : "");
    else package_version(a->real, a->version, sizeof a->version);
}

/* ---- the environment -------------------------------------------------------- */

/* Environment variables that change an allocator's behaviour. Every run
 * inherits the runner's environment, so the context row records each one
 * that is set. LD_PRELOAD is not among them: the runner sets it for each
 * run to the allocator's library. */
static const char *const allocator_env[] = {
    "HAKMEM_",         /* hakmem's options */
    "MALLOC_",         /* jemalloc's MALLOC_CONF; glibc's MALLOC_ARENA_MAX, MALLOC_CHECK_, ... */
    "MIMALLOC_",       /* mimalloc's options */
    "TCMALLOC_",       /* gperftools tcmalloc's options */
    "GLIBC_TUNABLES=", /* glibc's tunables, glibc.malloc.* among them */
    "LD_",             /* the dynamic loader: LD_LIBRARY_PATH, LD_BIND_NOW, ... */
};

static bool allocator_setting(const char *var)
{
    if (strncmp(var, "LD_PRELOAD=", 11) == 0) return false;
    for (size_t i = 0; i < sizeof allocator_env / sizeof *allocator_env; i++)
        if (strncmp(var, allocator_env[i], strlen(allocator_env[i])) == 0) return true;
    return false;
}

static int by_string(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static void read_env(hb_machine *m)
{
    size_t n = 0;
    while (environ[n]) n++;
    m->env = calloc(n + 1, sizeof *m->env);
    if (!m->env) { perror("hakbench: calloc"); exit(1); }
    for (size_t i = 0; i < n; i++)
        if (allocator_setting(environ[i]) && strchr(environ[i], '=')) m->env[m->nenv++] = environ[i];
    qsort(m->env, (size_t)m->nenv, sizeof *m->env, by_string);
}

/* ---- machine and build ---------------------------------------------------- */

/* The first line of a small kernel file; for a `[selected] other` list (THP
 * settings), the selected word. "" when the file cannot be read. */
static void read_setting(const char *path, bool bracketed, char *out, size_t cap)
{
    char buf[512];
    out[0] = '\0';
    if (hb_read_file(path, buf, sizeof buf) <= 0) return;
    buf[strcspn(buf, "\n")] = '\0';
    if (bracketed) {
        char *l = strchr(buf, '['), *r = l ? strchr(l, ']') : NULL;
        if (l && r) { *r = '\0'; hb_fmt(out, cap, "%s", l + 1); return; }
    }
    hb_fmt(out, cap, "%s", buf);
}

void hb_loadavg(char *out, size_t cap)
{
    read_setting("/proc/loadavg", false, out, cap);
}

void hb_machine_read(hb_machine *m)
{
    memset(m, 0, sizeof *m);
    time_t now = time(NULL);
    strftime(m->started, sizeof m->started, "%Y-%m-%dT%H:%M:%S%z", localtime(&now));
    gethostname(m->host, sizeof m->host);
    m->host[sizeof m->host - 1] = '\0';

    hb_cmd_line("grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'", m->cpu_model,
                sizeof m->cpu_model);
    m->cores = sysconf(_SC_NPROCESSORS_ONLN);
    struct utsname u;
    if (uname(&u) == 0) {
        m->have_uname = true;
        hb_fmt(m->kernel, sizeof m->kernel, "%s %s %s", u.sysname, u.release, u.machine);
        hb_fmt(m->kernel_version, sizeof m->kernel_version, "%s", u.version);
    }
    read_setting("/sys/kernel/mm/transparent_hugepage/enabled", true, m->thp_enabled, sizeof m->thp_enabled);
    read_setting("/sys/kernel/mm/transparent_hugepage/defrag", true, m->thp_defrag, sizeof m->thp_defrag);
    read_setting("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", false, m->cpu_governor,
                 sizeof m->cpu_governor);
    read_setting("/proc/sys/kernel/randomize_va_space", false, m->aslr, sizeof m->aslr);
    hb_loadavg(m->loadavg_start, sizeof m->loadavg_start);
    char mem[64];
    hb_cmd_line("grep -m1 '^MemTotal' /proc/meminfo | awk '{print $2}'", mem, sizeof mem);
    m->mem_total_kib = atoll(mem);
    hb_fmt(m->glibc, sizeof m->glibc, "%s", gnu_get_libc_version());

    const char *cc = getenv("CC");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --version 2>/dev/null", cc && *cc && !strchr(cc, '\'') ? cc : "cc");
    hb_cmd_line(cmd, m->compiler, sizeof m->compiler);
    hb_cmd_line("git rev-parse HEAD 2>/dev/null", m->git_commit, sizeof m->git_commit);
    char dirty[256];
    hb_cmd_line("git status --porcelain --untracked-files=no 2>/dev/null | head -1", dirty, sizeof dirty);
    m->git_dirty = dirty[0] != '\0';
    read_env(m);
    hb_pagecost_measure(&m->pagecost);
}

/* ---- how busy the machine is ---------------------------------------------------- */

bool hb_cpu_busy(double *busy_s, long *running)
{
    char buf[8192];
    if (hb_read_file("/proc/stat", buf, sizeof buf) <= 0) return false;
    unsigned long long v[10] = { 0 };
    /* cpu  user nice system idle iowait irq softirq steal guest guest_nice
     * (guest time is already counted in user) */
    if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &v[6], &v[7]) < 8)
        return false;
    long hz = sysconf(_SC_CLK_TCK);
    *busy_s = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)(hz > 0 ? hz : 100);
    const char *r = strstr(buf, "\nprocs_running ");
    *running = r ? atol(r + 15) : -1;
    return true;
}

double hb_self_cpu(void)
{
    struct rusage s, c;
    getrusage(RUSAGE_SELF, &s);
    getrusage(RUSAGE_CHILDREN, &c);
    return (double)s.ru_utime.tv_sec + s.ru_utime.tv_usec / 1e6 + (double)s.ru_stime.tv_sec + s.ru_stime.tv_usec / 1e6
           + (double)c.ru_utime.tv_sec + c.ru_utime.tv_usec / 1e6 + (double)c.ru_stime.tv_sec + c.ru_stime.tv_usec / 1e6;
}

void hb_load_start(hb_load *l, long cores)
{
    memset(l, 0, sizeof *l);
    l->cores = cores;
    l->other_runnable = NAN;
    hb_loadavg(l->loadavg, sizeof l->loadavg);
    double b0, b1, t0 = hb_now(), s0 = hb_self_cpu();
    long run, runsum = 0;
    int nrun = 0;
    if (!hb_cpu_busy(&b0, &run)) return;
    for (int i = 0; i < HB_LOAD_STEPS; i++) {
        struct timespec ts = { 0, HB_LOAD_STEP_MS * 1000000L };
        nanosleep(&ts, NULL);
        if (!hb_cpu_busy(&b1, &run)) return;
        if (run > 0) { runsum += run - 1; nrun++; } /* the runner is running while it reads */
    }
    l->ok = true;
    l->window_s = hb_now() - t0;
    l->other_cpu_s = b1 - b0 - (hb_self_cpu() - s0);
    if (l->other_cpu_s < 0) l->other_cpu_s = 0; /* /proc/stat counts in ticks */
    l->other_cpus = l->other_cpu_s / l->window_s;
    l->other_runnable = nrun ? (double)runsum / nrun : NAN;
    l->busy = l->other_cpus >= HB_BUSY_OTHER_CPUS || (nrun && l->other_runnable >= HB_BUSY_OTHER_RUNNABLE);
}

void hb_load_end(hb_load *l, long cores, double other_cpu_s, double wall_s)
{
    memset(l, 0, sizeof *l);
    l->cores = cores;
    l->other_runnable = NAN;
    hb_loadavg(l->loadavg, sizeof l->loadavg);
    l->ok = isfinite(other_cpu_s) && wall_s > 0;
    if (!l->ok) return;
    l->window_s = wall_s;
    l->other_cpu_s = other_cpu_s < 0 ? 0 : other_cpu_s;
    l->other_cpus = l->other_cpu_s / wall_s;
    l->busy = l->other_cpus >= HB_BUSY_OTHER_CPUS;
}

void hb_load_say(const hb_load *l, bool start, char *out, size_t cap)
{
    if (!l->ok) {
        hb_fmt(out, cap, "how busy the machine was %s is unknown (/proc/stat unreadable)",
               start ? "at the start" : "during the runs");
        return;
    }
    if (start)
        hb_fmt(out, cap, "%s%.1f other runnable processes; other processes used %.2f of %ld CPUs over %.1f s "
               "before the first run (load average %s)", l->busy ? "busy machine, time figures unreliable: " : "",
               isfinite(l->other_runnable) ? l->other_runnable : 0.0, l->other_cpus, l->cores, l->window_s,
               l->loadavg[0] ? l->loadavg : "unknown");
    else
        hb_fmt(out, cap, "%sother processes used %.2f of %ld CPUs on average during the runs (%.1f CPU s over %.1f s)",
               l->busy ? "busy machine, time figures unreliable: " : "", l->other_cpus, l->cores, l->other_cpu_s, l->window_s);
}
