/*
 * main.c — hakbench's command line, the allocator and suite files, and the
 * matrix loop: repetitions outermost, then suite cases, then allocators
 * (rotated by one each repetition), so that drift on a noisy machine hits
 * every allocator alike. The floor (hakbench.h) is one more allocator in
 * that rotation, added after --alloc has chosen the real ones.
 *
 * Besides `run` and `list`:
 *   plan   splits a suite into shards: case k (from 0) goes to shard
 *          (k mod N) + 1, so every shard has every allocator of its cases
 *          and each comparison stays on one machine; `run --shard i/N`
 *          runs one, and `merge` (scripts/merge.py) joins their rows.
 *   ab     builds two revisions (scripts/revbuild: each in its own git
 *          worktree under build/rev/<sha>/) and runs them as two
 *          allocators of one interleaved matrix; scripts/report.py gives
 *          the verdict per workload.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_REPS 5        /* enough for a median and a MAD; make bench uses it */
#define DEFAULT_TIMEOUT_S 60  /* far above any standard-suite run (seconds each); ends a hang */
#define DEFAULT_SAMPLE_MS 10  /* 100 RSS samples a second: sees phases of 10 ms and longer */
/* An A/B run's repetitions: with 7 a side, the exact Mann-Whitney interval
 * exists down to a per-workload level of 1 - 0.0012 (2/C(14,7)), so 95 %
 * family-wise over up to 40 workloads (Bonferroni) still has one. */
#define AB_DEFAULT_REPS 7
#define AB_DEFAULT_CONFIDENCE 0.95
#define STR_(x) #x
#define STR(x) STR_(x)

static const char usage[] =
    "usage: hakbench run --suite FILE [options]    run a suite, write <out>/raw.jsonl\n"
    "       hakbench list [--allocators FILE] [--hakmem LIST]   show allocators\n"
    "       hakbench plan --suite FILE --shards N [--callgrind FILE]\n"
    "                                      the shards of a suite, as JSON on stdout\n"
    "       hakbench run --suite FILE --shard I/N [options]   run shard I of N\n"
    "       hakbench merge --out DIR SHARD_DIR...   join shards' raw.jsonl into one run\n"
    "                                      (scripts/merge.py; every shard of one plan)\n"
    "       hakbench ab [--a REV] [--b REV] [ab options] [run options]\n"
    "                                      two revisions as two allocators of one run\n"
    "       hakbench pagecost                this machine's page costs (what `run` records\n"
    "                                      in its context row), as one JSON object\n"
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
    "  --lib NAME=PATH       add a hakmem library by path as allocator NAME (repeatable)\n"
    "  --shard I/N           run only shard I of N of the suite (and of --callgrind):\n"
    "                        case k (from 0) is in shard (k mod N) + 1\n"
    "  --rev REV             add hakmem-<variant> built from revision REV of --repo\n"
    "                        (scripts/revbuild; --variant, --repo, --rev-dir as for ab)\n"
    "\n"
    "ab options (the rest are run options; ab runs no floor and no stats pass\n"
    "unless asked, and " STR(AB_DEFAULT_REPS) " repetitions by default):\n"
    "  --a REV               revision A (default main)\n"
    "  --b REV               revision B (default: the working tree, uncommitted and\n"
    "                        untracked files included)\n"
    "  --variant V           the hakmem variant built for both (default hybrid)\n"
    "  --repo DIR            the git repository (default .)\n"
    "  --rev-dir DIR         where revisions are built (default build/rev)\n"
    "  --references          also run the reference allocators of --allocators\n"
    "  --floor, --stats      also the floor runs, the stats pass\n"
    "  --confidence C        family-wise confidence of the verdicts, in (0, 1)\n"
    "                        (default 0.95; recorded for scripts/report.py)\n"
    "\n"
    "Before the first run the runner looks at the machine for half a second\n"
    "(/proc/stat: other processes' CPU time and runnable count); a busy machine is\n"
    "said on stderr and in the context and end rows (load_start, load).\n"
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

/* --lib NAME=PATH: a hakmem library by path (a revision's build, a copy). */
static void add_lib(const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) die_usage("--lib needs NAME=PATH, got '%s'", spec);
    char name[64], desc[256];
    if ((size_t)(eq - spec) >= sizeof name || memchr(spec, '/', (size_t)(eq - spec)))
        die_usage("--lib: bad allocator name in '%s' (max 63 characters, no '/')", spec);
    hb_fmt(name, sizeof name, "%.*s", (int)(eq - spec), spec);
    if (strcmp(name, HB_FLOOR_NAME) == 0) die_usage("--lib: the name '%s' is reserved for the floor runs", name);
    hb_fmt(desc, sizeof desc, "hakmem library %s", eq + 1);
    add_alloc(name, eq + 1, desc, HB_KIND_HAKMEM);
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

/* plan only reads the labels: no word about missing binaries. */
static bool suite_quiet;

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
        c->index = n;
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
            if (!suite_quiet) fprintf(stderr, "hakbench: %s:%d: %s; its runs are skipped\n", path, lineno, c->missing_reason);
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

/* The command line of `run`, `list`, `plan` and `ab`. */
typedef struct {
    const char *cmd;
    bool list;
    const char *suite, *cgsuite, *out, *name, *table, *hakmem, *build, *only, *wdir;
    const char *libs[MAX_ALLOCS];
    int nlibs;
    bool callgrind_only;
    int plan_shards;     /* plan --shards N */
    /* ab */
    bool ab;
    const char *rev_a, *rev_b; /* rev_b NULL: the working tree */
    const char *rev;           /* run --rev: hakmem-<variant> built from this revision */
    const char *variant, *repo, *rev_dir;
    bool references;
    hb_opts o;
} cli;

static const char floor_desc[] =
    "the cost floor: the workload with --floor (every malloc, free and realloc of its timed work served by "
    "a trivial recycle set up before timing), no preload";

/* --shard I/N */
static void parse_shard(const char *v, hb_opts *o)
{
    int i, n, off = 0;
    if (sscanf(v, "%d/%d%n", &i, &n, &off) != 2 || v[off] || n < 1 || n > MAX_CASES || i < 1 || i > n)
        die_usage("--shard needs I/N with 1 <= I <= N <= 256, got '%s'", v);
    o->shard = i;
    o->nshards = n;
}

static double parse_confidence(const char *v)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x > 0 && x < 1)) die_usage("--confidence needs a number in (0, 1), got '%s'", v);
    return x;
}

static void parse_args(int argc, char **argv, cli *c)
{
    *c = (cli){ .cmd = argv[1], .table = "harness/allocators.tsv", .build = "build", .wdir = "build/workloads",
                .rev_a = "main", .variant = "hybrid", .repo = ".", .rev_dir = "build/rev",
                .o = { .timeout_s = DEFAULT_TIMEOUT_S, .sample_ms = DEFAULT_SAMPLE_MS, .reps = DEFAULT_REPS,
                       .floor = true, .stats = true } };
    c->list = strcmp(argv[1], "list") == 0;
    c->ab = strcmp(argv[1], "ab") == 0;
    bool plan = strcmp(argv[1], "plan") == 0;
    if (c->ab) {
        c->o.reps = AB_DEFAULT_REPS;
        c->o.floor = c->o.stats = false;
        c->o.confidence = AB_DEFAULT_CONFIDENCE;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) die_usage("option %s needs a value", a); i++; } while (0)
        if (strcmp(a, "--suite") == 0) { NEEDV(); c->suite = v; }
        else if (strcmp(a, "--callgrind") == 0) { NEEDV(); c->cgsuite = v; }
        else if (plan && strcmp(a, "--shards") == 0) { NEEDV(); c->plan_shards = (int)parse_long(a, v, 1, MAX_CASES); }
        else if (plan) die_usage("plan: unknown option '%s' (plan takes --suite, --shards, --callgrind)", a);
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
        else if (strcmp(a, "--callgrind-only") == 0) c->callgrind_only = true;
        else if (strcmp(a, "--no-floor") == 0) c->o.floor = false;
        else if (strcmp(a, "--no-stats") == 0) c->o.stats = false;
        else if (strcmp(a, "--quiet") == 0) c->o.quiet = true;
        else if (strcmp(a, "--lib") == 0) {
            NEEDV();
            if (c->nlibs == MAX_ALLOCS) die_usage("too many --lib options (max 64)%s", "");
            c->libs[c->nlibs++] = v;
        }
        else if (strcmp(a, "--shard") == 0) { NEEDV(); parse_shard(v, &c->o); }
        else if (c->ab && strcmp(a, "--a") == 0) { NEEDV(); c->rev_a = v; }
        else if (c->ab && strcmp(a, "--b") == 0) { NEEDV(); c->rev_b = v; }
        else if (!c->ab && strcmp(a, "--rev") == 0) { NEEDV(); c->rev = v; }
        else if (strcmp(a, "--variant") == 0) { NEEDV(); c->variant = v; }
        else if (strcmp(a, "--repo") == 0) { NEEDV(); c->repo = v; }
        else if (strcmp(a, "--rev-dir") == 0) { NEEDV(); c->rev_dir = v; }
        else if (c->ab && strcmp(a, "--references") == 0) c->references = true;
        else if (c->ab && strcmp(a, "--floor") == 0) c->o.floor = true;
        else if (c->ab && strcmp(a, "--stats") == 0) c->o.stats = true;
        else if (c->ab && strcmp(a, "--confidence") == 0) { NEEDV(); c->o.confidence = parse_confidence(v); }
        else die_usage("unknown option '%s'", a);
#undef NEEDV
    }
    if (c->callgrind_only) c->o.floor = c->o.stats = false; /* the callgrind pass only */
    if (c->ab && c->o.nshards) die_usage("ab runs the whole matrix on one machine; --shard is for run%s", "");
}

/* Where the scripts are: <repository>/scripts beside build/harness/hakbench,
 * else ./scripts. */
static void script_path(const char *name, char *out, size_t cap)
{
    char exe[PATH_MAX];
    hb_fmt(exe, sizeof exe, "%s", self_exe());
    for (int up = 0; up < 3; up++) {
        char *s = strrchr(exe, '/');
        if (!s) break;
        *s = '\0';
    }
    if (exe[0] && hb_fmt(out, cap, "%s/scripts/%s", exe, name) && access(out, X_OK) == 0) return;
    hb_fmt(out, cap, "scripts/%s", name);
}

/* Runs argv with stdout captured (stderr passes through); returns the exit
 * status (-1: it could not run) and the last line of stdout in out. */
static int run_capture(char *const argv[], char *out, size_t cap)
{
    int pfd[2];
    out[0] = '\0';
    if (pipe(pfd) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], argv);
        fprintf(stderr, "hakbench: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    /* The last non-empty line: cur collects the line being read. */
    char cur[PATH_MAX + 256], ch;
    size_t len = 0;
    ssize_t n;
    while ((n = read(pfd[0], &ch, 1)) == 1 || (n < 0 && errno == EINTR)) {
        if (n < 0) continue;
        if (ch == '\n') {
            if (len) { cur[len] = '\0'; hb_fmt(out, cap, "%s", cur); }
            len = 0;
        } else if (len + 1 < sizeof cur) {
            cur[len++] = ch;
        }
    }
    if (len) { cur[len] = '\0'; hb_fmt(out, cap, "%s", cur); }
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ab: builds one revision (scripts/revbuild) and adds it as an allocator,
 * named as revbuild says (hakmem-<variant>@<short sha>, +wt for a working
 * tree with changes), or `name` (run --rev: hakmem-<variant>, so that the
 * history keeps one series per variant across commits). Returns its name. */
static const char *add_revision(const cli *c, const char *rev, const char *name)
{
    char script[PATH_MAX], line[PATH_MAX + 128];
    script_path("revbuild", script, sizeof script);
    char *argv[16];
    int k = 0;
    argv[k++] = script;
    argv[k++] = "--repo"; argv[k++] = (char *)c->repo;
    argv[k++] = "--variant"; argv[k++] = (char *)c->variant;
    argv[k++] = "--rev-dir"; argv[k++] = (char *)c->rev_dir;
    argv[k++] = rev ? (char *)rev : "--worktree";
    argv[k] = NULL;
    fprintf(stderr, "hakbench: building %s (%s) with %s\n", rev ? rev : "the working tree", c->variant, script);
    int st = run_capture(argv, line, sizeof line);
    char *tab = strchr(line, '\t');
    if (st != 0 || !tab) {
        fprintf(stderr, "hakbench: ab: could not build %s (scripts/revbuild exit status %d)\n",
                rev ? rev : "the working tree", st);
        exit(2);
    }
    *tab = '\0';
    if (name) hb_fmt(line, sizeof line, "%s", name);
    for (int i = 0; i < nalloc; i++)
        if (strcmp(allocs[i].name, line) == 0)
            die_usage("ab: A and B are the same revision (%s): nothing to compare", line);
    char desc[256];
    hb_fmt(desc, sizeof desc, "hakmem %s at %s", c->variant, rev ? rev : "the working tree");
    hb_alloc *a = add_alloc(line, tab + 1, desc, HB_KIND_HAKMEM);
    return a->name;
}

/* The allocator table, the hakmem variants, --alloc; then each is probed. */
static void select_allocators(cli *c)
{
    if (c->ab) {
        c->o.ab_a = add_revision(c, c->rev_a, NULL);
        c->o.ab_b = add_revision(c, c->rev_b, NULL);
        if (strcmp(allocs[0].lib, allocs[1].lib) == 0)
            die_usage("ab: A and B are the same build (%s): nothing to compare", allocs[0].lib);
        if (c->references) load_allocators(c->table);
    } else {
        load_allocators(c->table);
    }
    if (c->rev) {
        char name[64];
        hb_fmt(name, sizeof name, "hakmem-%s", c->variant);
        add_revision(c, c->rev, name);
    }
    if (c->hakmem) add_hakmem(c->hakmem, c->build);
    for (int i = 0; i < c->nlibs; i++) add_lib(c->libs[i]);
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
/* A shard keeps the cases k with k mod N == I - 1 (hakbench plan prints
 * the same split). */
static int keep_shard(hb_case *cs, int n, const hb_opts *o)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!o->nshards || cs[i].index % o->nshards == o->shard - 1) cs[k++] = cs[i];
    return k;
}

static int open_run(cli *c)
{
    static char suite_name[128], outbuf[PATH_MAX];
    if (c->callgrind_only && !c->cgsuite) die_usage("--callgrind-only needs --callgrind FILE%s", "");
    if (!c->suite && !c->callgrind_only) die_usage("%s needs --suite FILE", c->cmd);
    if (c->suite) ncase = load_suite(c->suite, c->wdir, cases, MAX_CASES);
    else c->suite = c->cgsuite;
    if (c->cgsuite) ncg = load_suite(c->cgsuite, c->wdir, cg_cases, MAX_CASES);
    c->o.suite_cases = c->callgrind_only ? ncg : ncase;
    if (c->o.nshards) {
        if (c->o.nshards > c->o.suite_cases) {
            fprintf(stderr, "hakbench: --shard %d/%d: the suite has only %d cases, so shard %d of %d would be empty\n",
                    c->o.shard, c->o.nshards, c->o.suite_cases, c->o.suite_cases + 1, c->o.nshards);
            exit(2);
        }
        ncase = keep_shard(cases, ncase, &c->o);
        ncg = keep_shard(cg_cases, ncg, &c->o);
    }
    const char *b = strrchr(c->suite, '/');
    hb_fmt(suite_name, sizeof suite_name, "%s", b ? b + 1 : c->suite);
    char *dot = strrchr(suite_name, '.');
    if (dot) *dot = '\0';
    if (!c->out) {
        char ts[32];
        time_t now = time(NULL);
        strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", localtime(&now));
        char shard[32] = "";
        if (c->o.nshards) hb_fmt(shard, sizeof shard, "-shard%dof%d", c->o.shard, c->o.nshards);
        hb_fmt(outbuf, sizeof outbuf, "results/%s-%s%s%s", ts, c->ab ? "ab-" : "", c->name ? c->name : suite_name,
               shard);
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

/* plan: which cases each of N shards runs, as one JSON object on stdout
 * (schema hakmem-bench-plan/1). */
static int plan_main(cli *c)
{
    if (!c->suite) die_usage("plan needs --suite FILE%s", "");
    if (!c->plan_shards) die_usage("plan needs --shards N%s", "");
    suite_quiet = true;
    ncase = load_suite(c->suite, c->wdir, cases, MAX_CASES);
    if (c->cgsuite) ncg = load_suite(c->cgsuite, c->wdir, cg_cases, MAX_CASES);
    int n = c->plan_shards;
    if (n > ncase) {
        fprintf(stderr, "hakbench: plan: %d shards for %d cases: a shard would be empty\n", n, ncase);
        return 2;
    }
    hb_jbuf b;
    jb_init(&b);
    jb_open(&b, NULL, '{');
    jb_str(&b, "schema", "hakmem-bench-plan/1");
    jb_str(&b, "suite_file", c->suite);
    jb_str(&b, "callgrind_suite", c->cgsuite);
    jb_int(&b, "cases", ncase);
    jb_int(&b, "count", n);
    jb_str(&b, "rule", "case k of the suite (from 0) is in shard (k mod count) + 1");
    jb_open(&b, "shards", '[');
    for (int s = 1; s <= n; s++) {
        jb_open(&b, NULL, '{');
        jb_int(&b, "index", s);
        char arg[32];
        hb_fmt(arg, sizeof arg, "%d/%d", s, n);
        jb_str(&b, "arg", arg);
        jb_open(&b, "cases", '[');
        for (int i = 0; i < ncase; i++)
            if (cases[i].index % n == s - 1) jb_str(&b, NULL, cases[i].label);
        jb_close(&b, ']');
        jb_open(&b, "callgrind_cases", '[');
        for (int i = 0; i < ncg; i++)
            if (cg_cases[i].index % n == s - 1) jb_str(&b, NULL, cg_cases[i].label);
        jb_close(&b, ']');
        jb_close(&b, '}');
    }
    jb_close(&b, ']');
    jb_close(&b, '}');
    jb_finish_line(&b);
    fputs(b.p, stdout);
    jb_free(&b);
    return 0;
}

/* merge: scripts/merge.py does the joining (it checks that the shards are
 * every shard of one plan, renumbers, keeps each row's host). */
static int merge_main(int argc, char **argv)
{
    char script[PATH_MAX];
    script_path("merge.py", script, sizeof script);
    char **av = calloc((size_t)argc + 2, sizeof *av);
    if (!av) { perror("hakbench: calloc"); return 1; }
    av[0] = "/usr/bin/python3";
    av[1] = script;
    for (int i = 2; i < argc; i++) av[i] = argv[i];
    execv(av[0], av);
    fprintf(stderr, "hakbench: merge: cannot run %s %s: %s\n", av[0], script, strerror(errno));
    return 2;
}

/* pagecost: the page costs `run` measures for its context row, as one JSON
 * object on stdout (schema hakmem-bench-pagecost/1). */
static int pagecost_main(int argc)
{
    if (argc > 2) die_usage("pagecost takes no arguments%s", "");
    hb_pagecost pc;
    hb_pagecost_measure(&pc);
    hb_jbuf b;
    jb_init(&b);
    jb_open(&b, NULL, '{');
    jb_str(&b, "schema", "hakmem-bench-pagecost/1");
    hb_write_pagecost(&b, "page_costs", &pc);
    jb_close(&b, '}');
    jb_finish_line(&b);
    fputs(b.p, stdout);
    jb_free(&b);
    return pc.ok ? 0 : 1;
}

/* The page costs in one line of stderr. */
static void say_pagecost(const hb_pagecost *pc)
{
    if (!pc->ok) {
        fprintf(stderr, "hakbench: the machine's page costs could not be measured: %s\n", pc->error);
        return;
    }
    fprintf(stderr, "hakbench: page costs, us per 4 KiB page written:");
    for (int m = 0; m < HB_PAGECOST_MODES; m++)
        fprintf(stderr, " %s %.3f%s", hb_pagecost_mode[m], pc->us_per_page[m], m + 1 < HB_PAGECOST_MODES ? "," : "");
    fprintf(stderr, " (measured in %.0f ms)\n", pc->seconds * 1e3);
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
    if (strcmp(cmd, "pagecost") == 0) return pagecost_main(argc);
    if (strcmp(cmd, "merge") == 0) return merge_main(argc, argv);
    if (strcmp(cmd, "run") != 0 && strcmp(cmd, "list") != 0 && strcmp(cmd, "plan") != 0 && strcmp(cmd, "ab") != 0)
        die_usage("unknown command '%s'; commands: run, list, plan, merge, ab, pagecost", cmd);

    cli c;
    parse_args(argc, argv, &c);
    if (strcmp(cmd, "plan") == 0) return plan_main(&c);
    if (c.ab && (!c.suite && !c.callgrind_only)) die_usage("ab needs --suite FILE%s", "");
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
    say_pagecost(&machine.pagecost);
    hb_load start, during;
    char say[512];
    hb_load_start(&start, machine.cores);
    hb_load_say(&start, true, say, sizeof say);
    fprintf(stderr, "hakbench: %s\n", say);
    hb_matrix mx = { allocs, nalloc, cases, ncase, cg_cases, ncg };
    hb_write_context(raw, &c.o, &machine, &mx, &start);
    hb_tally t = { 0, 0, 0, 0, 0 };
    double t0 = hb_now();
    bool done = run_matrix(&c, raw, &t);
    char load[128];
    hb_loadavg(load, sizeof load);
    hb_load_end(&during, machine.cores, t.other_cpu_s, t.runs_wall_s);
    hb_write_end(raw, &t, hb_now() - t0, !done, load, &during);
    close(raw);
    fprintf(stderr, "hakbench: %d ok, %d failed, %d invalid in %.0f s%s\n", t.ok, t.failed, t.invalid,
            hb_now() - t0, done ? "" : " (interrupted)");
    if (t.ok + t.failed + t.invalid) {
        hb_load_say(&during, false, say, sizeof say);
        fprintf(stderr, "hakbench: %s\n", say);
    }
    printf("%s\n", c.out);
    return done ? 0 : 130;
}
