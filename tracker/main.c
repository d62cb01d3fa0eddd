/* main.c - the hakmem-trace command: record, report, compile, dump.
 *
 *   hakmem-trace record [options] -- program args...
 *   hakmem-trace report DIR [--pid N] [--no-html]
 *   hakmem-trace compile DIR [--pid N] [-o FILE]
 *   hakmem-trace dump DIR
 *   hakmem-trace folded DIR [--pid N] [--by calls|bytes|peak|leaked]
 *   hakmem-trace diff A B [--pid N] [--pid-b N] [--json]
 *
 * Exit codes: 0 done; 1 unreadable or corrupt input, or a failed write;
 * 2 bad command line. record exits with the program's status (128 + signal
 * when it was killed).
 */
#include "compile.h"
#include "options.h"
#include "report.h"
#include "trace_read.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Before the tracker's options. */
static const char usage_head[] =
    "usage: hakmem-trace record [options] -- program args...   run a program under the tracker\n"
    "       hakmem-trace report DIR [--pid N] [--no-html]        DIR/trace.json and DIR/trace.html\n"
    "       hakmem-trace compile DIR [--pid N] [-o FILE]         a replay file (default DIR/trace.replay)\n"
    "       hakmem-trace dump DIR                                every record as one text line\n"
    "       hakmem-trace folded DIR [--pid N] [--by calls|bytes|peak|leaked]\n"
    "                                                            call stacks for flame graphs (default: calls)\n"
    "       hakmem-trace diff A B [--pid N] [--pid-b N] [--json]  allocation sites of trace B against A\n"
    "\n"
    "record options:\n"
    "  --out DIR          where the trace files go (default trace-<date>-<time>); must hold no trace yet\n"
    "  --preset NAME      replay: full mode, no stacks (default; what compile needs)\n"
    "                     overview: sampled (every block >= 64 KiB, 1 in 128 below), stacks\n"
    "                     leaks: full mode with stacks (every block's site, frees included)\n"
    "  --mode full|sampled, --threshold BYTES, --every N, --stacks, --no-stacks, --depth N\n"
    "                     override the preset (sampled: every block >= threshold, 1 in N below it)\n"
    "  --sample N         short for --mode sampled --every N\n"
    "  --preload LIB      put LIB behind the tracker (an allocator to record over); LD_PRELOAD\n"
    "                     already set is kept behind both\n"
    "  --quiet            no summary line\n";

/* After the tracker's options (the table of options.c). */
static const char usage_tail[] =
    "report: --pid picks the process shown in detail (default: the one with the most records);\n"
    "  diff: --pid picks A's process, --pid-b B's (same default).\n"
    "  every process is in trace.json. compile: --pid picks the process to replay (same default).\n"
    "See README.md, \"Allocation traces\", for the file formats.\n";

/* The usage text, the tracker's options in it: each option's variable
 * (derived from its name), default and meaning. */
static void print_usage(FILE *f)
{
    fputs(usage_head, f);
    fputs("\nthe tracker's options, in the environment (record sets them from the options above):\n", f);
    for (int k = 0; k < HT_OPT_COUNT; k++) {
        char env[HT_ENV_MAX], def[24];
        fprintf(f, "  %-19s %-13s %s\n", ht_option_env((ht_option_id)k, env),
                ht_option_default((ht_option_id)k, def, sizeof def), ht_options[k].meaning);
    }
    fputs("\n", f);
    fputs(usage_tail, f);
}

static _Noreturn void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "hakmem-trace: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (hakmem-trace --help)\n");
    exit(2);
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        usage_error("%s needs a number", opt);
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1024 * 1024, end++;
    else if (*end == 'g' || *end == 'G')
        mul = 1024 * 1024 * 1024, end++;
    if (errno || *end || v > max / mul || v * mul < min)
        usage_error("bad value for %s", opt);
    return v * mul;
}

/* The directory this program lives in (libhaktrack.so is beside it). */
static void exe_dir(char *buf, size_t n)
{
    ssize_t k = readlink("/proc/self/exe", buf, n - 1);
    if (k <= 0)
        tr_die(1, "cannot read /proc/self/exe");
    buf[k] = 0;
    char *s = strrchr(buf, '/');
    if (s)
        *s = 0;
}

static bool dir_has_trace(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    struct dirent *de;
    bool found = false;
    while (!found && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        found = n > 5 && strcmp(de->d_name + n - 5, ".htrk") == 0;
    }
    closedir(d);
    return found;
}

/* What record was asked for: its command line, the preset applied. */
typedef struct record_args {
    const char *out, *preload, *mode, *preset;
    int stacks, quiet;
    uint64_t threshold, every, depth; /* 0: not given (the tracker's default) */
    int program;                      /* argv index of the program to run */
} record_args;

/* A number for option o of the tracker, within o's range. */
static uint64_t parse_option(const char *opt, const char *s, ht_option_id o)
{
    return parse_u64(opt, s, ht_options[o].min, ht_options[o].max);
}

/* record's options, up to "--" or the first word that is not one. */
static void parse_record_args(int argc, char **argv, record_args *ra)
{
    *ra = (record_args){ .stacks = -1, .preset = "replay" };
    int i = 2;
    for (; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-')
            break;
        if (strcmp(a, "--out") == 0 && v) ra->out = v, i++;
        else if (strcmp(a, "--preset") == 0 && v) ra->preset = v, i++;
        else if (strcmp(a, "--mode") == 0 && v) ra->mode = v, i++;
        else if (strcmp(a, "--threshold") == 0) ra->threshold = parse_option(a, v, HT_OPT_THRESHOLD), i++;
        else if (strcmp(a, "--every") == 0) ra->every = parse_option(a, v, HT_OPT_EVERY), i++;
        else if (strcmp(a, "--sample") == 0) ra->every = parse_option(a, v, HT_OPT_EVERY), ra->mode = "sampled", i++;
        else if (strcmp(a, "--depth") == 0) ra->depth = parse_option(a, v, HT_OPT_DEPTH), i++;
        else if (strcmp(a, "--stacks") == 0) ra->stacks = 1;
        else if (strcmp(a, "--no-stacks") == 0) ra->stacks = 0;
        else if (strcmp(a, "--preload") == 0 && v) ra->preload = v, i++;
        else if (strcmp(a, "--quiet") == 0) ra->quiet = 1;
        else usage_error("record: unknown option or missing value: %s", a);
    }
    if (i >= argc)
        usage_error("record: no program to run%s", "");
    ra->program = i;
}

/* The preset's mode and stacks, where --mode and --stacks did not say. */
static void apply_preset(record_args *ra)
{
    const char *pmode;
    int pstacks;
    if (strcmp(ra->preset, "replay") == 0) pmode = "full", pstacks = 0;
    else if (strcmp(ra->preset, "overview") == 0) pmode = "sampled", pstacks = 1;
    else if (strcmp(ra->preset, "leaks") == 0) pmode = "full", pstacks = 1;
    else usage_error("record: unknown preset '%s' (replay, overview or leaks)", ra->preset);
    if (!ra->mode)
        ra->mode = pmode;
    if (strcmp(ra->mode, "full") != 0 && strcmp(ra->mode, "sampled") != 0)
        usage_error("record: --mode must be full or sampled, not '%s'", ra->mode);
    if (ra->stacks < 0)
        ra->stacks = pstacks;
}

/* The output directory (--out, or trace-<date>-<time> in defout), holding
 * no trace yet, created; its absolute path into absout. */
static void make_out_dir(record_args *ra, char defout[64], char absout[PATH_MAX])
{
    if (!ra->out) {
        time_t now = time(NULL);
        strftime(defout, 64, "trace-%Y%m%d-%H%M%S", localtime(&now));
        ra->out = defout;
    }
    if (dir_has_trace(ra->out))
        usage_error("record: %s already holds a trace; remove it or choose another --out", ra->out);
    if (mkdir(ra->out, 0755) != 0 && errno != EEXIST)
        tr_die(1, "record: cannot create %s: %s", ra->out, strerror(errno));
    if (!realpath(ra->out, absout))
        tr_die(1, "record: %s: %s", ra->out, strerror(errno));
}

/* The first of this program's directory + each of rel[] that is readable,
 * into buf; false (buf: the first) when none is. */
static bool beside_exe(char *buf, size_t n, const char *const *rel, int nrel)
{
    char dir[PATH_MAX];
    exe_dir(dir, sizeof dir);
    for (int i = 0; i < nrel; i++) {
        int k = snprintf(buf, n, "%s/%s", dir, rel[i]);
        if (k > 0 && (size_t)k < n && access(buf, R_OK) == 0)
            return true;
    }
    if (snprintf(buf, n, "%s/%s", dir, rel[0]) < 0)
        buf[0] = 0;
    return false;
}

/* LD_PRELOAD for the program: libhaktrack.so (beside this program in the
 * build tree, in ../lib/hakmem/ when installed), then --preload, then the
 * LD_PRELOAD already set. */
static char *tracker_preload(const char *preload)
{
    static const char *const where[] = { "libhaktrack.so", "../lib/hakmem/libhaktrack.so" };
    char lib[PATH_MAX];
    if (!beside_exe(lib, sizeof lib, where, 2))
        tr_die(1, "record: %s is missing (make tracker builds it)", lib);
    const char *old = getenv("LD_PRELOAD");
    size_t n = strlen(lib) + (preload ? strlen(preload) : 0) + (old ? strlen(old) : 0) + 4;
    char *pre = tr_xmalloc(n);
    snprintf(pre, n, "%s%s%s%s%s", lib, preload ? " " : "", preload ? preload : "", old && *old ? " " : "",
             old ? old : "");
    return pre;
}

static void set_option(ht_option_id o, const char *value)
{
    char env[HT_ENV_MAX];
    setenv(ht_option_env(o, env), value, 1);
}

/* A number given on the command line (0: not given, the variable left as it is). */
static void set_option_number(ht_option_id o, uint64_t v)
{
    char num[32];
    if (!v)
        return;
    snprintf(num, sizeof num, "%" PRIu64, v);
    set_option(o, num);
}

/* The environment the program runs in: the preload and the tracker's options. */
static void set_tracker_env(const record_args *ra, const char *pre, const char *absout)
{
    setenv("LD_PRELOAD", pre, 1);
    set_option(HT_OPT_DIR, absout);
    set_option(HT_OPT_MODE, ra->mode);
    set_option(HT_OPT_STACKS, ra->stacks ? "1" : "0");
    set_option_number(HT_OPT_THRESHOLD, ra->threshold);
    set_option_number(HT_OPT_EVERY, ra->every);
    set_option_number(HT_OPT_DEPTH, ra->depth);
}

/* Runs argv[0] and waits for it (this process ignores SIGINT and SIGQUIT
 * meanwhile, so they reach the program only); its wait status. */
static int run_program(char **argv)
{
    pid_t pid = fork();
    if (pid < 0)
        tr_die(1, "record: fork: %s", strerror(errno));
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "hakmem-trace: record: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            tr_die(1, "record: waitpid: %s", strerror(errno));
    return st;
}

/* The trace files in dir: how many and their bytes. */
static void count_trace_files(const char *dir, uint64_t *files, uint64_t *bytes)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    *files = *bytes = 0;
    while (d && (de = readdir(d)) != NULL) {
        size_t k = strlen(de->d_name);
        if (k > 5 && strcmp(de->d_name + k - 5, ".htrk") == 0) {
            char p[PATH_MAX + 256];
            struct stat sb;
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            if (stat(p, &sb) == 0)
                *bytes += (uint64_t)sb.st_size;
            (*files)++;
        }
    }
    if (d)
        closedir(d);
}

/* The summary line: files, size, mode and how the program ended. */
static void print_record_summary(const record_args *ra, const char *absout, int st)
{
    uint64_t files, bytes;
    char num[32];
    count_trace_files(absout, &files, &bytes);
    snprintf(num, sizeof num, "%d", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    fprintf(stderr, "hakmem-trace: %" PRIu64 " trace files, %.1f MiB in %s (%s mode%s); %s %s\n", files,
            (double)bytes / 1048576.0, ra->out, ra->mode, ra->stacks ? ", stacks" : "",
            WIFEXITED(st) ? "program exited with" : "program killed by signal", num);
}

/* record: run a program under the tracker; its exit status (128 + signal
 * when it was killed). */
static int cmd_record(int argc, char **argv)
{
    record_args ra;
    char defout[64], absout[PATH_MAX];
    parse_record_args(argc, argv, &ra);
    apply_preset(&ra);
    make_out_dir(&ra, defout, absout);
    char *pre = tracker_preload(ra.preload);
    set_tracker_env(&ra, pre, absout);
    int st = run_program(argv + ra.program);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (!ra.quiet)
        print_record_summary(&ra, absout, st);
    free(pre);
    return rc;
}

static uint64_t opt_pid(int argc, char **argv, int *i)
{
    if (strcmp(argv[*i], "--pid") != 0)
        return 0;
    (*i)++;
    return parse_u64("--pid", *i < argc ? argv[*i] : NULL, 1, UINT32_MAX);
}

static int cmd_report(int argc, char **argv)
{
    const char *dir = NULL;
    uint64_t pid = 0;
    bool html = true;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--pid") == 0) pid = opt_pid(argc, argv, &i);
        else if (strcmp(argv[i], "--no-html") == 0) html = false;
        else if (argv[i][0] == '-' || dir) usage_error("report: unexpected argument %s", argv[i]);
        else dir = argv[i];
    }
    if (!dir)
        usage_error("report: no trace directory given%s", "");
    char json[PATH_MAX], page[PATH_MAX], head[1024] = "";
    snprintf(json, sizeof json, "%s/trace.json", dir);
    snprintf(page, sizeof page, "%s/trace.html", dir);
    double secs[2];
    uint64_t records;
    int rc = report_run(dir, json, pid, head, sizeof head, secs, &records);
    if (rc)
        return rc;
    printf("%s\n", head);
    /* wall time, and this process's CPU time (other load on the machine
     * stretches the first, hardly the second) */
    printf("read %" PRIu64 " records in %.3f s (%.1f M records/s; CPU %.3f s, %.1f M records/s)\n", records,
           secs[0], secs[0] > 0 ? (double)records / secs[0] / 1e6 : 0.0, secs[1],
           secs[1] > 0 ? (double)records / secs[1] / 1e6 : 0.0);
    printf("figures: %s\n", json);
    if (!html)
        return 0;
    /* the build tree's, the installed one, else the source tree's */
    static const char *const where[] = { "../tracker/trace_html.py", "../share/hakmem/trace_html.py" };
    char script[PATH_MAX];
    if (!beside_exe(script, sizeof script, where, 2))
        snprintf(script, sizeof script, "%s", HT_SOURCE_DIR "/trace_html.py");
    pid_t p = fork();
    if (p == 0) {
        execl("/usr/bin/python3", "python3", script, json, page, (char *)NULL);
        fprintf(stderr, "hakmem-trace: cannot run /usr/bin/python3 for the plots: %s\n", strerror(errno));
        _exit(127);
    }
    int st;
    if (p < 0 || waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "hakmem-trace: %s was not written (the plot script failed)\n", page);
        return 1;
    }
    printf("report: %s\n", page);
    return 0;
}

static int cmd_compile(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    uint64_t pid = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--pid") == 0) pid = opt_pid(argc, argv, &i);
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) out = argv[++i];
        else if (argv[i][0] == '-' || dir) usage_error("compile: unexpected argument %s", argv[i]);
        else dir = argv[i];
    }
    if (!dir)
        usage_error("compile: no trace directory given%s", "");
    char def[PATH_MAX], summary[2048];
    if (!out) {
        snprintf(def, sizeof def, "%s/trace.replay", dir);
        out = def;
    }
    int rc = compile_run(dir, out, pid, summary, sizeof summary);
    if (rc == 0)
        printf("%s\n", summary);
    return rc;
}

static int cmd_dump(int argc, char **argv)
{
    if (argc != 3 || argv[2][0] == '-')
        usage_error("dump: give one trace directory%s", "");
    tr_run run;
    if (!tr_open(argv[2], &run))
        return 1;
    printf("# pid thread tid order op ptr size aux start stack flags time_ns\n");
    printf("# order: the record's place in its process (trace version 2: its time in ns); start: a realloc's\n"
           "# start, before order, in the same unit; time_ns: ns since the process's start\n");
    for (uint32_t k = 0; k < run.ninst; k++) {
        tr_instance *in = &run.inst[k];
        for (uint32_t i = 0; i < in->nfiles; i++) {
            const tr_file *f = in->files[i];
            printf("# file %s pid %" PRIu64 " epoch %" PRIu64 " ppid %" PRIu64 " thread %u tid %" PRIu64
                   " flags %u mode %u records %" PRIu64 " cut %" PRIu64 " ended %d threshold %" PRIu64
                   " every %" PRIu64 " salt 0x%" PRIx64 " exe %s\n",
                   f->path, in->pid, in->epoch, in->ppid, f->h.thread_index, f->h.tid, f->h.flags, f->h.mode,
                   f->events, f->cut_bytes, f->has_end, f->h.sample_threshold, f->h.sample_every,
                   f->h.sample_salt, f->h.exe);
            tr_stream *s = tr_stream_open(f);
            ht_event ev;
            uint64_t hint = 0;
            while (tr_stream_next(s, &ev, NULL)) {
                const ht_event *e = &ev;
                printf("%" PRIu64 " %u %" PRIu64 " %" PRIu64 " %s 0x%" PRIx64 " %" PRIu64 " 0x%" PRIx64
                       " %u %u %u %" PRIu64 "\n",
                       in->pid, f->h.thread_index, f->h.tid, e->time, tr_op_name(e->op), e->ptr, e->size,
                       e->aux, e->start, e->stack, e->flags, tr_time_at(in, e->time, &hint));
            }
            tr_stream_close(s);
        }
    }
    tr_close(&run);
    return ferror(stdout) ? 1 : 0;
}

/* folded: the call stacks, one line each, for flame graph tools. */
static int cmd_folded(int argc, char **argv)
{
    const char *dir = NULL;
    uint64_t pid = 0;
    int by = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--pid") == 0) pid = opt_pid(argc, argv, &i);
        else if (strcmp(argv[i], "--by") == 0) {
            if (i + 1 >= argc)
                usage_error("folded: --by needs calls, bytes, peak or leaked%s", "");
            by = report_folded_key(argv[++i]);
            if (by < 0)
                usage_error("folded: --by must be calls, bytes, peak or leaked, not '%s'", argv[i]);
        } else if (argv[i][0] == '-' || dir) usage_error("folded: unexpected argument %s", argv[i]);
        else dir = argv[i];
    }
    if (!dir)
        usage_error("folded: no trace directory given%s", "");
    return report_folded(dir, pid, by, stdout);
}

/* diff: what changed, by allocation site, from trace A to trace B. */
static int cmd_diff(int argc, char **argv)
{
    const char *dir[2] = { NULL, NULL };
    uint64_t pid[2] = { 0, 0 };
    bool json = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--pid") == 0) pid[0] = opt_pid(argc, argv, &i);
        else if (strcmp(argv[i], "--pid-b") == 0) {
            i++;
            pid[1] = parse_u64("--pid-b", i < argc ? argv[i] : NULL, 1, UINT32_MAX);
        } else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (argv[i][0] == '-' || dir[1]) usage_error("diff: unexpected argument %s", argv[i]);
        else dir[dir[0] ? 1 : 0] = argv[i];
    }
    if (!dir[1])
        usage_error("diff: give two trace directories, A and B%s", "");
    return report_diff(dir[0], pid[0], dir[1], pid[1], json, stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "record") == 0)
        return cmd_record(argc, argv);
    if (strcmp(argv[1], "report") == 0)
        return cmd_report(argc, argv);
    if (strcmp(argv[1], "compile") == 0)
        return cmd_compile(argc, argv);
    if (strcmp(argv[1], "dump") == 0)
        return cmd_dump(argc, argv);
    if (strcmp(argv[1], "folded") == 0)
        return cmd_folded(argc, argv);
    if (strcmp(argv[1], "diff") == 0)
        return cmd_diff(argc, argv);
    usage_error("unknown command '%s' (record, report, compile, dump, folded, diff)", argv[1]);
}
