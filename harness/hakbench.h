/*
 * hakbench — the benchmark runner: runs workloads under allocators and
 * records one JSON row per run.
 *
 * Glossary
 *   allocator  a name plus a shared library injected with LD_PRELOAD, or
 *              "system" (no preload: glibc's malloc).
 *   floor      a pseudo-allocator, on unless --no-floor: every case once
 *              more per repetition with --floor appended and no preload, so
 *              the workload serves the malloc/free/realloc of its timed work
 *              from a trivial recycle of its own and its figure is the cost
 *              no allocator can change. Never a reference: the report sets
 *              it beside the allocators, never among them.
 *   suite      a text file of runs: `label workload args...` per line.
 *   run        one fresh process: one suite line under one allocator, one
 *              repetition. It ends as ok, failed (signal, exit status,
 *              timeout) or invalid (the intended allocator did not serve it,
 *              or the workload printed no result line).
 *   job        a run to do: case, allocator, repetition, sequence number,
 *              mode (measure or callgrind).
 *   observation  what the runner saw of a run from the outside: exit
 *              status, rusage, RSS samples, phases, the result line.
 *   verdict    what it concludes: ok, failed or invalid, and why.
 *   settings   what changes an allocator's behaviour besides its build: the
 *              allocator environment variables every run inherits, and a
 *              hakmem library's option table (hak_options_print) in force.
 *   shard      some of a suite's cases under every allocator (run --shard
 *              I/N: case k, from 0, is in shard (k mod N) + 1), so that a
 *              matrix can be spread over machines while every comparison
 *              stays on one; scripts/merge.py joins the shards' files.
 *   revision   a hakmem library built from a git revision in its own
 *              worktree (scripts/revbuild, for ab and run --rev), with
 *              revision.json beside it.
 *   load       how busy the machine is: other processes' CPU time and
 *              runnable count (/proc/stat), before the first run and around
 *              each run; "busy" above the HB_BUSY_* thresholds.
 *   raw.jsonl  the only output: a context row, one row per run (appended as
 *              soon as the run ends), and an end row. Reports are derived
 *              from it by the Python scripts in scripts/.
 *
 * Files (each calls only files listed below it)
 *   main.c     command line, allocator and suite files, the matrix loop
 *   run.c      one run: spawn and watch (fork/exec, pipe, smaps_rollup
 *              sampling, wait4), classify
 *   context.c  machine, build and environment facts; the allocator probe;
 *              the machine's load
 *   rows.c     every raw.jsonl row writer, next to the schema name
 *   json.c     a small JSON writer and a validating reader
 *   pagecost.c what the machine charges for page-table work, per 4 KiB page
 *   util.c     general helpers (clock, formatting, small file and command I/O)
 */
#ifndef HAKBENCH_H
#define HAKBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <sys/resource.h>

/* ---- json.c ------------------------------------------------------------ */

/* A growable text buffer for writing JSON. Objects and arrays are closed with
 * jb_close, which drops a trailing comma, so every element writer may simply
 * append "value," without tracking position. */
typedef struct hb_jbuf {
    char *p;
    size_t len, cap;
} hb_jbuf;

void jb_init(hb_jbuf *b);
void jb_free(hb_jbuf *b);
void jb_raw(hb_jbuf *b, const char *s, size_t n);
void jb_rawz(hb_jbuf *b, const char *s);
void jb_open(hb_jbuf *b, const char *key, char bracket); /* key may be NULL */
void jb_close(hb_jbuf *b, char bracket);
void jb_str(hb_jbuf *b, const char *key, const char *val); /* NULL -> null */
void jb_strn(hb_jbuf *b, const char *key, const char *val, size_t n);
void jb_int(hb_jbuf *b, const char *key, long long v);
void jb_num(hb_jbuf *b, const char *key, double v); /* non-finite -> null */
void jb_bool(hb_jbuf *b, const char *key, bool v);
void jb_null(hb_jbuf *b, const char *key);
void jb_rawval(hb_jbuf *b, const char *key, const char *json, size_t n);
/* Ends the buffer: removes a trailing comma, appends '\n', NUL-terminates. */
void jb_finish_line(hb_jbuf *b);

/* Reader: json_object_valid checks that [s, s+n) is exactly one JSON object
 * (surrounding whitespace allowed). json_get finds a top-level member of such
 * an object and returns its raw value span. */
bool json_object_valid(const char *s, size_t n);
bool json_get(const char *s, size_t n, const char *key, const char **val, size_t *vlen);
bool json_get_num(const char *s, size_t n, const char *key, double *out);
/* Copies a string member, unescaped, into out (truncated to cap-1). */
bool json_get_str(const char *s, size_t n, const char *key, char *out, size_t cap);

/* ---- allocators and suites (main.c) ------------------------------------- */

typedef enum {
    HB_KIND_REFERENCE,   /* allocators.tsv */
    HB_KIND_HAKMEM,      /* build/<variant>/libhakmem.so */
    HB_KIND_FLOOR,       /* the floor: the workload's --floor, no preload */
} hb_kind;

/* The floor's allocator name; allocators.tsv may not use it. */
#define HB_FLOOR_NAME "floor"
/* The flag the runner appends to a case's arguments for a floor run. */
#define HB_FLOOR_FLAG "--floor"

/* One row of a hakmem library's option table (hak_options_print), as the
 * probe saw it: the effective value under the runner's environment. */
typedef struct hb_option {
    char name[48];
    char value[32];      /* as printed: an integer */
    char def[32];        /* the default, as printed */
    char env[64];        /* the environment variable that sets it */
    char meaning[256];
} hb_option;

typedef struct hb_alloc {
    char name[64];
    char lib[4096];      /* as written: path or "system" */
    char real[4096];     /* realpath of the library; libc's for system */
    char desc[256];
    hb_kind kind;
    bool system;
    bool available;
    char skip_reason[256];
    char version[128];   /* from the probe / package manager, may be empty */
    char served_by[4096];/* what the probe saw serving malloc under this preload */
    bool preload_ok;     /* served_by is the intended library */
    char cflags[1024];   /* hakmem variants: build/<v>/cflags */
    hb_option *options;  /* the library's option table; NULL: it has none */
    int noptions;
    char options_error[256]; /* a line of the table that could not be read */
    char *revision;      /* <library's dir>/revision.json (scripts/revbuild), raw JSON; NULL: none */
} hb_alloc;

#define HB_MAX_ARGS 48
typedef struct hb_case {
    char label[64];
    char workload[64];
    char *argv[HB_MAX_ARGS + 2]; /* argv[0] = workload path; NULL-terminated */
    int argc;
    bool missing;        /* the workload binary does not exist: runs skipped */
    char missing_reason[PATH_MAX + 64];
    int index;           /* its place among the suite's cases, from 0 (a shard keeps it) */
} hb_case;

/* ---- run.c: one run ------------------------------------------------------ */

typedef struct hb_opts {
    const char *out_dir;
    const char *suite_name;
    const char *suite_file;
    const char *callgrind_suite; /* NULL: no callgrind pass */
    double timeout_s;
    int sample_ms;
    int reps;
    bool floor;          /* the floor runs are part of the matrix */
    bool stats;          /* the stats pass: each case once per hakmem variant, untimed */
    bool quiet;
    int shard, nshards;  /* this run is shard `shard` (1..nshards) of a plan; 0: the whole suite */
    int suite_cases;     /* cases in the whole suite (a shard runs some of them) */
    double confidence;   /* an A/B run: the family-wise confidence of its verdicts; 0: not an A/B run */
    const char *ab_a, *ab_b; /* an A/B run: the two allocators' names */
} hb_opts;

typedef struct hb_tally {
    int ok, failed, invalid;
    double other_cpu_s;  /* summed over the runs: CPU seconds other processes took */
    double runs_wall_s;  /* summed over the runs */
} hb_tally;

typedef enum {
    HB_MODE_MEASURE,     /* timed, RSS sampled */
    HB_MODE_CALLGRIND,   /* under valgrind --tool=callgrind: instructions */
    HB_MODE_STATS,       /* a hakmem variant asked for its own account of its memory:
                            not timed (its figures are in no table of times) */
} hb_mode;

typedef enum {
    HB_OK,               /* ran to exit 0, and the intended allocator served it */
    HB_FAILED,           /* signal, non-zero exit, time limit, cannot execute */
    HB_INVALID,          /* ran, but nothing proves the intended allocator served it */
} hb_status;

/* One run to do: a case under an allocator. */
typedef struct hb_job {
    const hb_case *c;
    const hb_alloc *a;
    int rep;             /* repetition; 0 for callgrind */
    int seq;             /* 1, 2, ... over the whole file; names the logs */
    hb_mode mode;
} hb_job;

/* Runs one job and appends its row to raw_fd. Returns false only when the
 * runner itself was interrupted (SIGINT/SIGTERM): that run gets no row. */
bool hb_run(const hb_opts *o, int raw_fd, const hb_job *j, hb_tally *t);

/* Set by the SIGINT/SIGTERM handler. */
extern volatile int hb_interrupted;

/* The smaps_rollup fields the runner keeps, in KiB. */
enum { HB_F_RSS, HB_F_PSS, HB_F_PSS_ANON, HB_F_PRIV_DIRTY, HB_F_ANON, HB_F_ANON_HUGE, HB_F_LAZYFREE,
       HB_F_SWAP, HB_F_N };
typedef struct hb_rollup { long v[HB_F_N]; } hb_rollup;
typedef struct hb_sample { double t; long rss, rss_nolazy; } hb_sample;

#define HB_MAX_PHASES 32 /* `@phase` markers kept per run; burst_idle prints 5 */
typedef struct hb_phase {
    char name[32];
    double t;            /* runner clock, seconds since fork */
    double wt;           /* the workload's own timestamp, or NAN */
    long rss, rss_nolazy;/* sampled when the marker arrived; -1: no sample */
} hb_phase;

/* What the runner saw of one run, from the outside. */
typedef struct hb_observation {
    double wall_s;
    double limit_s;      /* the time limit this run had */
    int exec_errno;      /* execve failed with this errno; 0: it ran */
    bool timed_out;      /* killed at the time limit */
    bool interrupted;    /* the runner was interrupted: the run was killed */
    int wait_status;     /* from wait4 */
    struct rusage ru;
    int interval_ms;     /* sampling interval */
    hb_sample *samples;
    size_t nsamples, cap;
    hb_rollup peak;      /* per-field maxima over the samples (RSS: all; the rest: full reads) */
    hb_rollup last;      /* the last sample (its RSS; the other fields of the last full read) */
    long full_reads;     /* samples that read all of smaps_rollup */
    long peak_nolazy;    /* max of Rss - LazyFree */
    long peak_rss_kib;   /* max(sampled Rss, ru_maxrss): sampling can miss a spike */
    bool have_last;
    bool maps_seen;      /* the preloaded library was seen in /proc/<pid>/maps */
    int maps_tries;      /* conclusive reads of the maps (libc was mapped) */
    char *result;        /* the last stdout line that is not a marker, or NULL */
    size_t resultlen;
    hb_phase phases[HB_MAX_PHASES];
    int nphases;
    /* hakmem's account of its memory (stats runs): the last line of its
     * HAKMEM_STATS_FILE, or why there is none. */
    bool stats_asked;
    char *stats;
    size_t statslen;
    char stats_error[256];
    /* CPU seconds other processes took while the run lived: the machine's
     * busy time (/proc/stat) less the run's and the runner's own; NAN when
     * /proc/stat could not be read. */
    double other_cpu_s;
} hb_observation;

/* What the runner concludes from an observation. */
typedef struct hb_verdict {
    hb_status status;
    char reason[512];    /* why not ok; "" when ok */
    int exit_code;       /* -1: none (killed, or never ran) */
    int signal;          /* 0: none */
    const char *expected;/* the library that must serve malloc (libc for system) */
    char malloc_from[PATH_MAX]; /* what the result line says served it; "" */
    bool verified;       /* malloc_from is the expected library */
    bool have_result;    /* the last stdout line is one JSON object */
    int floor_reported;  /* the result's "floor": 1 true, 0 false, -1 absent (or not a boolean) */
    long long instructions; /* callgrind total; -1: unknown */
    char stderr_tail[600];  /* not ok: the end of the run's stderr */
} hb_verdict;

/* ---- pagecost.c: the machine's page costs -------------------------------- */

/* The five costs, in this order (hb_pagecost_mode names them): a write to
 * resident pages, after munmap (a fresh mapping), after MADV_DONTNEED, after
 * an mremap move to a 2 MiB-aligned address, to one 64 KiB past 2 MiB. */
#define HB_PAGECOST_MODES 5
#define HB_PAGECOST_REGION ((size_t)4 << 20) /* bytes written per measurement */
#define HB_PAGECOST_REPS 7                  /* measurements per mode; the median is the figure */
extern const char *const hb_pagecost_mode[HB_PAGECOST_MODES];

typedef struct hb_pagecost {
    bool ok;                                /* false: error says why there are no figures */
    char error[128];
    double us_per_page[HB_PAGECOST_MODES];  /* median over the repetitions, µs per 4 KiB page */
    double min_us[HB_PAGECOST_MODES], max_us[HB_PAGECOST_MODES];
    size_t region_bytes;
    int reps;
    double seconds;                         /* the whole measurement, preparations included */
} hb_pagecost;

/* Measures the five costs (some tens of milliseconds; well under a second
 * even where a fault costs 10 µs). */
void hb_pagecost_measure(hb_pagecost *pc);

/* ---- context.c ---------------------------------------------------------- */

/* Fills version (and checks that the preload takes) by running this binary
 * as `hakbench probe` under the allocator. */
void hb_probe_alloc(hb_alloc *a, const char *self);
int hb_probe_main(void);

/* The machine and the build, read once before the first run. An empty
 * string is a fact that could not be read (written as null). */
typedef struct hb_machine {
    char started[40];          /* local time, ISO 8601 */
    char host[256];
    char cpu_model[256];
    long cores;
    bool have_uname;
    char kernel[256];          /* sysname release machine */
    char kernel_version[256];
    char thp_enabled[64], thp_defrag[64], cpu_governor[64], aslr[16];
    char loadavg_start[128];
    long long mem_total_kib;
    char glibc[32];
    char compiler[256];        /* first line of `$CC --version` */
    char git_commit[64];
    bool git_dirty;
    /* The environment variables that change an allocator's behaviour
     * (`NAME=value`, sorted), which every run inherits. */
    const char **env;
    int nenv;
    hb_pagecost pagecost;      /* what its page-table work costs, measured once */
} hb_machine;

void hb_machine_read(hb_machine *m);
/* /proc/loadavg as one line; "" when unreadable. */
void hb_loadavg(char *out, size_t cap);

/* ---- how busy the machine is (context.c) ---------------------------------------
 * Other processes' share of the machine, from /proc/stat: its busy CPU time
 * (user, nice, system, irq, softirq, steal) less the runner's and its runs'
 * own, and the runnable count (procs_running, less the runner reading it). */

/* Busy when other processes kept at least this many CPUs busy on average
 * (a quarter of one CPU: a 2-thread workload on 2 cores then shares a core
 * a quarter of the time), or when at least this many other processes were
 * runnable on average at the start. */
#define HB_BUSY_OTHER_CPUS 0.25
#define HB_BUSY_OTHER_RUNNABLE 1.0
/* The quiet look before the first run: /proc/stat read this many times,
 * HB_LOAD_STEP_MS apart, while the runner sleeps. */
#define HB_LOAD_STEPS 10
#define HB_LOAD_STEP_MS 50

/* The machine's busy CPU seconds since boot (all CPUs) and procs_running;
 * false when /proc/stat cannot be read. */
bool hb_cpu_busy(double *busy_s, long *running);
/* The runner's own CPU seconds so far (itself, and its reaped children). */
double hb_self_cpu(void);

typedef struct hb_load {
    bool ok;             /* /proc/stat was readable */
    double window_s;     /* start: how long it looked; end: the runs' wall time summed */
    double other_cpu_s;  /* CPU seconds other processes took meanwhile */
    double other_cpus;   /* other_cpu_s / window_s: CPUs kept busy by others on average */
    double other_runnable; /* start only: other runnable processes on average; NAN at the end */
    long cores;
    bool busy;
    char loadavg[128];
} hb_load;

/* The look before the first run (HB_LOAD_STEPS x HB_LOAD_STEP_MS). */
void hb_load_start(hb_load *l, long cores);
/* The figure over the runs: the sum of each run's other_cpu_s and wall time. */
void hb_load_end(hb_load *l, long cores, double other_cpu_s, double wall_s);
/* One line for stderr and the report: what was seen, and "time figures
 * unreliable" when busy. */
void hb_load_say(const hb_load *l, bool start, char *out, size_t cap);

/* ---- rows.c: raw.jsonl --------------------------------------------------- */

/* What a run file covers: the allocators (available or not) and the cases. */
typedef struct hb_matrix {
    hb_alloc *allocs;
    int nalloc;
    hb_case *cases;      /* the timed cases */
    int ncase;
    hb_case *cg_cases;   /* the callgrind cases */
    int ncg;
} hb_matrix;

/* The first row: machine, build, runner settings, allocators, cases, and
 * how busy the machine was just before the first run. */
void hb_write_context(int fd, const hb_opts *o, const hb_machine *m, const hb_matrix *mx, const hb_load *start);
/* The page costs as one JSON member named key (an object; {"error": why}
 * when they could not be measured). */
void hb_write_pagecost(hb_jbuf *b, const char *key, const hb_pagecost *pc);
/* A `skip` row for a case whose workload binary is missing. */
void hb_write_skip(int fd, const hb_case *c, hb_mode mode);
/* A `run` row; log is the run's log path without extension, relative to
 * the result directory. */
void hb_write_run(int fd, const hb_job *j, const char *log, const hb_observation *ob, const hb_verdict *v);
/* A stats run's JSON (the library's statistics line): the first figure the
 * row keeps that it lacks, or NULL when it has them all. */
const char *hb_stats_missing(const char *s, size_t n);
const char *hb_status_name(hb_status s);
/* The last row: counts, wall time, whether the runner was interrupted, the
 * load average at the end ("" when unreadable), how busy the machine was
 * during the runs. */
void hb_write_end(int fd, const hb_tally *t, double wall_s, bool interrupted, const char *loadavg,
                  const hb_load *during);

/* ---- util.c: general helpers; they call nothing else of the runner ---------- */
double hb_now(void); /* CLOCK_MONOTONIC seconds */
/* snprintf that may truncate on purpose (messages, bounded paths); returns
 * false when it did. Not the builtin, so -Wformat-truncation stays quiet. */
__attribute__((format(printf, 3, 4)))
bool hb_fmt(char *dst, size_t cap, const char *fmt, ...);
bool hb_write_all(int fd, const char *p, size_t n);
/* Reads a small file into buf (NUL-terminated); returns bytes or -1. */
long hb_read_file(const char *path, char *buf, size_t cap);
/* Runs a shell command and returns its first line of output (may be ""). */
void hb_cmd_line(const char *cmd, char *out, size_t cap);
/* Runs a shell command and returns all its output (truncated to cap-1). */
void hb_cmd_output(const char *cmd, char *out, size_t cap);
/* realpath of libc (what serves malloc for the "system" allocator). */
const char *hb_libc_path(void);

#endif
