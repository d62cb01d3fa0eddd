/*
 * main.c — hakbench's command line, the allocator and suite files, and the
 * matrix loop: repetitions outermost, then suite cases, then allocators
 * (rotated by one each repetition), so that drift on a noisy machine hits
 * every allocator alike. The floor (hakbench.h) is one more allocator in
 * that rotation, added after --alloc has chosen the real ones.
 */
#include "hakbench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_REPS 5        /* enough for a median and a MAD; make bench uses it */
#define DEFAULT_TIMEOUT_S 60  /* far above any standard-suite run (seconds each); ends a hang */
#define DEFAULT_SAMPLE_MS 10  /* 100 RSS samples a second: sees phases of 10 ms and longer */
#define STR_(x) #x
#define STR(x) STR_(x)

static const char usage[] =
    "usage: hakbench run --suite FILE [options]    run a suite, write <out>/raw.jsonl\n"
    "       hakbench list [--allocators FILE] [--hakmem LIST]   show allocators\n"
    "       hakbench --help\n"
    "\n"
    "run options:\n"
    "  --suite FILE          suite file: one `label workload args...` per line\n"
    "  --out DIR             result directory (default results/<timestamp>-<name>);\n"
    "                        must not already hold a raw.jsonl\n"
    "  --name NAME           run name used in the default directory (default: suite name)\n"
    "  --allocators FILE     allocator table (default harness/allocators.tsv)\n"
    "  --hakmem LIST|all     add hakmem variants from <build>/<v>/libhakmem.so\n"
    "  --build-dir DIR       where hakmem variants are built (default build)\n"
    "  --alloc LIST          only these allocators (comma-separated names); the\n"
    "                        floor runs either way\n"
    "  --no-floor            no floor runs (by default every case also runs once per\n"
    "                        repetition with --floor appended and no preload: the\n"
    "                        workload's own cost, recorded as allocator `floor`)\n"
    "  --workload-dir DIR    workload binaries (default build/workloads)\n"
    "  --reps N              repetitions (default " STR(DEFAULT_REPS) ")\n"
    "  --timeout SEC         per-run time limit (default " STR(DEFAULT_TIMEOUT_S) ")\n"
    "  --sample-ms N         smaps_rollup sampling interval (default " STR(DEFAULT_SAMPLE_MS) ")\n"
    "  --no-stats            no stats pass (by default, after the repetitions, each\n"
    "                        case runs once more under each hakmem variant, untimed,\n"
    "                        with HAKMEM_STATS=json: hakmem's account of where its\n"
    "                        memory is, at the peak RSS and at exit)\n"
    "  --callgrind FILE      after the repetitions, run each case of this suite once\n"
    "                        per allocator (not the floor) under valgrind\n"
    "                        --tool=callgrind (instructions per op; use small parameters)\n"
    "  --callgrind-only      skip the timed repetitions (needs --callgrind)\n"
    "  --quiet               no per-run progress lines\n"
    "\n"
    "Rows are appended to raw.jsonl as soon as each run ends; exit status is 0 when\n"
    "the matrix completed (failed and invalid runs are recorded, not fatal), 2 for\n"
    "bad arguments, 130 when interrupted.\n";

static void die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "hakbench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see hakbench --help)\n");
    exit(2);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
    return s;
}

static bool in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p; ) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* ---- allocators ---------------------------------------------------------- */

#define MAX_ALLOCS 64
static hb_alloc allocs[MAX_ALLOCS];
static int nalloc;

static hb_alloc *add_alloc(const char *name, const char *lib, const char *desc, hb_kind kind)
{
    if (nalloc == MAX_ALLOCS) die_usage("too many allocators (max 64)%s", "");
    for (int i = 0; i < nalloc; i++)
        if (strcmp(allocs[i].name, name) == 0) die_usage("allocator '%s' is listed twice", name);
    hb_alloc *a = &allocs[nalloc++];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    snprintf(a->lib, sizeof a->lib, "%s", lib);
    snprintf(a->desc, sizeof a->desc, "%s", desc);
    a->kind = kind;
    a->system = strcmp(lib, "system") == 0;
    return a;
}

static void load_allocators(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) { fprintf(stderr, "hakbench: cannot open allocator table %s: %s\n", path, strerror(errno)); exit(2); }
    char line[8192];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *l = trim(line);
        if (!*l || *l == '#') continue;
        char *name = strtok(l, " \t");
        char *lib = strtok(NULL, " \t");
        char *desc = strtok(NULL, "");
        if (!name || !lib) {
            fprintf(stderr, "hakbench: %s:%d: expected `name<TAB>library|system<TAB>description`\n", path, lineno);
            exit(2);
        }
        if (strcmp(name, HB_FLOOR_NAME) == 0) {
            fprintf(stderr, "hakbench: %s:%d: the name '%s' is reserved for the floor runs\n", path, lineno, name);
            exit(2);
        }
        add_alloc(name, lib, desc ? trim(desc) : "", HB_KIND_REFERENCE);
    }
    fclose(f);
}

static void add_hakmem(const char *list, const char *build)
{
    char lib[PATH_MAX], name[64], desc[128];
    if (strcmp(list, "all") == 0) {
        DIR *d = opendir(build);
        struct dirent *e;
        char *names[MAX_ALLOCS];
        int n = 0;
        while (d && (e = readdir(d)) && n < MAX_ALLOCS) {
            snprintf(lib, sizeof lib, "%s/%s/libhakmem.so", build, e->d_name);
            if (e->d_name[0] != '.' && access(lib, R_OK) == 0) names[n++] = strdup(e->d_name);
        }
        if (d) closedir(d);
        for (int i = 0; i < n; i++) /* stable order */
            for (int j = i + 1; j < n; j++)
                if (strcmp(names[j], names[i]) < 0) { char *t = names[i]; names[i] = names[j]; names[j] = t; }
        for (int i = 0; i < n; i++) {
            snprintf(lib, sizeof lib, "%s/%s/libhakmem.so", build, names[i]);
            snprintf(name, sizeof name, "hakmem-%s", names[i]);
            snprintf(desc, sizeof desc, "hakmem, variant %s", names[i]);
            add_alloc(name, lib, desc, HB_KIND_HAKMEM);
            free(names[i]);
        }
        return;
    }
    char *copy = strdup(list);
    for (char *v = strtok(copy, ","); v; v = strtok(NULL, ",")) {
        snprintf(lib, sizeof lib, "%s/%s/libhakmem.so", build, v);
        snprintf(name, sizeof name, "hakmem-%s", v);
        snprintf(desc, sizeof desc, "hakmem, variant %s", v);
        add_alloc(name, lib, desc, HB_KIND_HAKMEM);
    }
    free(copy);
}

/* Moves hakmem variants first, keeps file order otherwise. */
static void order_allocs(void)
{
    hb_alloc tmp[MAX_ALLOCS];
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < nalloc; i++)
            if ((allocs[i].kind == HB_KIND_HAKMEM) == (pass == 0)) tmp[k++] = allocs[i];
    memcpy(allocs, tmp, sizeof(hb_alloc) * (size_t)nalloc);
}

/* ---- suites -------------------------------------------------------------- */

#define MAX_CASES 256
static hb_case cases[MAX_CASES];
static int ncase;

static hb_case cg_cases[MAX_CASES];
static int ncg;

/* A case whose workload binary does not exist is kept and marked missing:
 * the matrix runs without it and the context row and one `skip` row say so. */
static int load_suite(const char *path, const char *wdir, hb_case *out, int max)
{
    int n = 0;
    FILE *f = fopen(path, "re");
    if (!f) { fprintf(stderr, "hakbench: cannot open suite %s: %s\n", path, strerror(errno)); exit(2); }
    char line[8192];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *l = trim(line);
        if (!*l || *l == '#') continue;
        if (n == max) { fprintf(stderr, "hakbench: %s: more than %d cases\n", path, max); exit(2); }
        hb_case *c = &out[n];
        memset(c, 0, sizeof *c);
        char *label = strtok(l, " \t"), *wl = strtok(NULL, " \t");
        if (!label || !wl) {
            fprintf(stderr, "hakbench: %s:%d: expected `label workload args...`\n", path, lineno);
            exit(2);
        }
        if (strlen(label) >= sizeof c->label || strlen(wl) >= sizeof c->workload || strchr(wl, '/')) {
            fprintf(stderr, "hakbench: %s:%d: bad label or workload name (max 63 characters, no '/')\n", path, lineno);
            exit(2);
        }
        for (int i = 0; i < n; i++)
            if (strcmp(out[i].label, label) == 0) {
                fprintf(stderr, "hakbench: %s:%d: label '%s' used twice\n", path, lineno, label);
                exit(2);
            }
        hb_fmt(c->label, sizeof c->label, "%s", label);
        hb_fmt(c->workload, sizeof c->workload, "%s", wl);
        char bin[PATH_MAX], rp[PATH_MAX];
        if (!hb_fmt(bin, sizeof bin, "%s/%s", wdir, wl)) { fprintf(stderr, "hakbench: workload path too long\n"); exit(2); }
        if (access(bin, X_OK) != 0) {
            c->missing = true;
            hb_fmt(c->missing_reason, sizeof c->missing_reason,
                   "workload binary %s not found (make workloads builds it)", bin);
            fprintf(stderr, "hakbench: %s:%d: %s; its runs are skipped\n", path, lineno, c->missing_reason);
        }
        c->argv[c->argc++] = strdup(realpath(bin, rp) ? rp : bin);
        for (char *arg = strtok(NULL, " \t"); arg; arg = strtok(NULL, " \t")) {
            if (c->argc == HB_MAX_ARGS) { fprintf(stderr, "hakbench: %s:%d: too many arguments\n", path, lineno); exit(2); }
            if (strcmp(arg, HB_FLOOR_FLAG) == 0) {
                fprintf(stderr, "hakbench: %s:%d: %s in a suite line: the runner adds the floor runs itself "
                        "(allocator `%s`; --no-floor turns them off)\n", path, lineno, HB_FLOOR_FLAG, HB_FLOOR_NAME);
                exit(2);
            }
            c->argv[c->argc++] = strdup(arg);
        }
        c->argv[c->argc] = NULL;
        n++;
    }
    fclose(f);
    if (n == 0) { fprintf(stderr, "hakbench: suite %s has no cases\n", path); exit(2); }
    return n;
}

/* ---- commands ------------------------------------------------------------ */

static void on_signal(int sig)
{
    (void)sig;
    hb_interrupted = 1;
}

static long parse_long(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "hakbench: %s needs an integer in [%ld, %ld], got '%s'\n", opt, lo, hi, s);
        exit(2);
    }
    return v;
}

static void mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') { *p = '\0'; mkdir(tmp, 0755); *p = '/'; }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "hakbench: cannot create %s: %s\n", path, strerror(errno));
        exit(2);
    }
}

static const char *self_exe(void)
{
    static char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    return self;
}

/* The command line of `run` and `list`. */
typedef struct {
    bool list;
    const char *suite, *cgsuite, *out, *name, *table, *hakmem, *build, *only, *wdir;
    bool callgrind_only;
    hb_opts o;
} cli;

static const char floor_desc[] =
    "the cost floor: the workload with --floor (every malloc, free and realloc of its timed work served by "
    "a trivial recycle set up before timing), no preload";

static void parse_args(int argc, char **argv, cli *c)
{
    *c = (cli){ .table = "harness/allocators.tsv", .build = "build", .wdir = "build/workloads",
                .o = { .timeout_s = DEFAULT_TIMEOUT_S, .sample_ms = DEFAULT_SAMPLE_MS, .reps = DEFAULT_REPS,
                       .floor = true, .stats = true } };
    c->list = strcmp(argv[1], "list") == 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) die_usage("option %s needs a value", a); i++; } while (0)
        if (strcmp(a, "--suite") == 0) { NEEDV(); c->suite = v; }
        else if (strcmp(a, "--out") == 0) { NEEDV(); c->out = v; }
        else if (strcmp(a, "--name") == 0) { NEEDV(); c->name = v; }
        else if (strcmp(a, "--allocators") == 0) { NEEDV(); c->table = v; }
        else if (strcmp(a, "--hakmem") == 0) { NEEDV(); c->hakmem = v; }
        else if (strcmp(a, "--build-dir") == 0) { NEEDV(); c->build = v; }
        else if (strcmp(a, "--alloc") == 0) { NEEDV(); c->only = v; }
        else if (strcmp(a, "--workload-dir") == 0) { NEEDV(); c->wdir = v; }
        else if (strcmp(a, "--reps") == 0) { NEEDV(); c->o.reps = (int)parse_long(a, v, 1, 1000); }
        else if (strcmp(a, "--timeout") == 0) { NEEDV(); c->o.timeout_s = (double)parse_long(a, v, 1, 86400); }
        else if (strcmp(a, "--sample-ms") == 0) { NEEDV(); c->o.sample_ms = (int)parse_long(a, v, 1, 1000); }
        else if (strcmp(a, "--callgrind") == 0) { NEEDV(); c->cgsuite = v; }
        else if (strcmp(a, "--callgrind-only") == 0) c->callgrind_only = true;
        else if (strcmp(a, "--no-floor") == 0) c->o.floor = false;
        else if (strcmp(a, "--no-stats") == 0) c->o.stats = false;
        else if (strcmp(a, "--quiet") == 0) c->o.quiet = true;
        else die_usage("unknown option '%s'", a);
#undef NEEDV
    }
    if (c->callgrind_only) c->o.floor = c->o.stats = false; /* the callgrind pass only */
}

/* The allocator table, the hakmem variants, --alloc; then each is probed. */
static void select_allocators(const cli *c)
{
    load_allocators(c->table);
    if (c->hakmem) add_hakmem(c->hakmem, c->build);
    order_allocs();
    if (c->only) {
        char *copy = strdup(c->only);
        for (char *n = strtok(copy, ","); n; n = strtok(NULL, ",")) {
            if (strcmp(n, HB_FLOOR_NAME) == 0) {
                fprintf(stderr, "hakbench: --alloc: '%s' is not an allocator to choose: the floor runs unless "
                        "--no-floor\n", n);
                exit(2);
            }
            bool found = false;
            for (int i = 0; i < nalloc; i++) found |= strcmp(allocs[i].name, n) == 0;
            if (!found) {
                fprintf(stderr, "hakbench: unknown allocator '%s'; known:", n);
                for (int i = 0; i < nalloc; i++) fprintf(stderr, " %s", allocs[i].name);
                fprintf(stderr, "\n");
                exit(2);
            }
        }
        free(copy);
        int k = 0;
        for (int i = 0; i < nalloc; i++)
            if (in_list(c->only, allocs[i].name)) allocs[k++] = allocs[i];
        nalloc = k;
    }
    if (c->o.floor) add_alloc(HB_FLOOR_NAME, "system", floor_desc, HB_KIND_FLOOR);
    const char *self = self_exe();
    for (int i = 0; i < nalloc; i++) hb_probe_alloc(&allocs[i], self);
}

static void print_allocators(void)
{
    for (int i = 0; i < nalloc; i++) {
        const hb_alloc *a = &allocs[i];
        if (a->kind == HB_KIND_FLOOR) {
            printf("%-22s %-9s %-10s %s\n", a->name, "floor", "ok", "no preload: the workload's --floor");
            continue;
        }
        printf("%-22s %-9s %-10s %s%s%s\n", a->name, a->kind == HB_KIND_HAKMEM ? "hakmem" : "reference",
               a->available ? (a->preload_ok ? "ok" : "NOT-TAKING") : "skipped",
               a->system ? "system" : a->lib, a->version[0] ? "  " : "", a->version);
        if (!a->available) printf("%22s   (%s)\n", "", a->skip_reason);
    }
}

/* Loads the suites, names the run and creates its directory; returns the
 * raw.jsonl descriptor. The names live in static storage. */
static int open_run(cli *c)
{
    static char suite_name[128], outbuf[PATH_MAX];
    if (c->callgrind_only && !c->cgsuite) die_usage("--callgrind-only needs --callgrind FILE%s", "");
    if (!c->suite && !c->callgrind_only) die_usage("run needs --suite FILE%s", "");
    if (c->suite) ncase = load_suite(c->suite, c->wdir, cases, MAX_CASES);
    else c->suite = c->cgsuite;
    if (c->cgsuite) ncg = load_suite(c->cgsuite, c->wdir, cg_cases, MAX_CASES);
    const char *b = strrchr(c->suite, '/');
    hb_fmt(suite_name, sizeof suite_name, "%s", b ? b + 1 : c->suite);
    char *dot = strrchr(suite_name, '.');
    if (dot) *dot = '\0';
    if (!c->out) {
        char ts[32];
        time_t now = time(NULL);
        strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", localtime(&now));
        hb_fmt(outbuf, sizeof outbuf, "results/%s-%s", ts, c->name ? c->name : suite_name);
        c->out = outbuf;
    }
    if (strlen(c->out) > PATH_MAX - 256) die_usage("--out path too long: %s", c->out);
    c->o.suite_name = suite_name;
    c->o.suite_file = c->suite;
    c->o.callgrind_suite = c->cgsuite;
    c->o.out_dir = c->out;
    char path[PATH_MAX];
    hb_fmt(path, sizeof path, "%s/raw.jsonl", c->out);
    if (access(path, F_OK) == 0) die_usage("%s already exists; choose a new --out directory", path);
    hb_fmt(path, sizeof path, "%s/logs", c->out);
    mkdirs(path);
    hb_fmt(path, sizeof path, "%s/raw.jsonl", c->out);
    int raw = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (raw < 0) { fprintf(stderr, "hakbench: cannot create %s: %s\n", path, strerror(errno)); exit(2); }
    return raw;
}

/* The matrix: the timed repetitions, the stats pass (each case once per
 * hakmem variant), then the callgrind pass. Returns false when the runner
 * was interrupted. */
static bool run_matrix(const cli *c, int raw, hb_tally *t)
{
    const hb_opts *o = &c->o;
    int nrun = 0, ncgrun = 0;
    for (int i = 0; i < ncase; i++) {
        if (cases[i].missing) hb_write_skip(raw, &cases[i], HB_MODE_MEASURE);
        else nrun++;
    }
    for (int i = 0; i < ncg; i++) {
        if (cg_cases[i].missing) hb_write_skip(raw, &cg_cases[i], HB_MODE_CALLGRIND);
        else ncgrun++;
    }
    int navail = 0, avail[MAX_ALLOCS];
    for (int i = 0; i < nalloc; i++) {
        if (allocs[i].available) avail[navail++] = i;
        else fprintf(stderr, "hakbench: skipping %s: %s\n", allocs[i].name, allocs[i].skip_reason);
    }
    int reps = c->callgrind_only ? 0 : o->reps;
    int ncgalloc = navail - (o->floor ? 1 : 0); /* the floor has no callgrind run */
    int nhakmem = 0;
    for (int i = 0; i < nalloc; i++) nhakmem += allocs[i].available && allocs[i].kind == HB_KIND_HAKMEM;
    int nstats = o->stats ? nrun * nhakmem : 0;
    fprintf(stderr, "hakbench: %d runs (%d cases x %d allocators%s x %d reps%s%s) -> %s\n",
            reps * nrun * navail + nstats + ncgrun * ncgalloc, nrun, ncgalloc, o->floor ? " + floor" : "", reps,
            nstats ? " + stats" : "", c->cgsuite ? " + callgrind" : "", o->out_dir);

    int seq = 0;
    bool stop = false;
    for (int rep = 0; rep < reps && !stop; rep++)
        for (int i = 0; i < ncase && !stop; i++)
            for (int k = 0; k < navail && !stop; k++) {
                if (cases[i].missing) continue;
                hb_job j = { &cases[i], &allocs[avail[(k + rep) % navail]], rep, ++seq, HB_MODE_MEASURE };
                stop = !hb_run(o, raw, &j, t) || hb_interrupted;
            }
    for (int i = 0; i < ncase && o->stats && !stop; i++)
        for (int k = 0; k < nalloc && !stop; k++) {
            if (!allocs[k].available || allocs[k].kind != HB_KIND_HAKMEM || cases[i].missing) continue;
            hb_job j = { &cases[i], &allocs[k], 0, ++seq, HB_MODE_STATS };
            stop = !hb_run(o, raw, &j, t) || hb_interrupted;
        }
    for (int i = 0; i < ncg && !stop; i++)
        for (int k = 0; k < nalloc && !stop; k++) {
            if (!allocs[k].available || allocs[k].kind == HB_KIND_FLOOR || cg_cases[i].missing) continue;
            hb_job j = { &cg_cases[i], &allocs[k], 0, ++seq, HB_MODE_CALLGRIND };
            stop = !hb_run(o, raw, &j, t) || hb_interrupted;
        }
    return !stop;
}

int main(int argc, char **argv)
{
    if (argc < 2) { fputs(usage, stderr); return 2; }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "probe") == 0) return hb_probe_main();
    if (strcmp(cmd, "run") != 0 && strcmp(cmd, "list") != 0)
        die_usage("unknown command '%s'; commands: run, list", cmd);

    cli c;
    parse_args(argc, argv, &c);
    select_allocators(&c);
    if (c.list) {
        print_allocators();
        return 0;
    }
    int raw = open_run(&c);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    hb_machine machine;
    hb_machine_read(&machine);
    hb_matrix mx = { allocs, nalloc, cases, ncase, cg_cases, ncg };
    hb_write_context(raw, &c.o, &machine, &mx);
    hb_tally t = { 0, 0, 0 };
    double t0 = hb_now();
    bool done = run_matrix(&c, raw, &t);
    char load[128];
    hb_loadavg(load, sizeof load);
    hb_write_end(raw, &t, hb_now() - t0, !done, load);
    close(raw);
    fprintf(stderr, "hakbench: %d ok, %d failed, %d invalid in %.0f s%s\n", t.ok, t.failed, t.invalid,
            hb_now() - t0, done ? "" : " (interrupted)");
    printf("%s\n", c.out);
    return done ? 0 : 130;
}
