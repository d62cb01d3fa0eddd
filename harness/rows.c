/*
 * rows.c — raw.jsonl: every row the runner writes, next to the schema name.
 * A row is one JSON object on one line, appended with one write(2) as soon
 * as it is known, so an interrupted run keeps every row that finished.
 *
 *   context  the first row: machine, build, runner settings, allocators,
 *            cases
 *   skip     a case whose workload binary is missing
 *   run      one run (written by hb_write_run)
 *   end      the last row: counts, wall time, interrupted or not
 *
 * The fields are documented in harness/README.md ("raw.jsonl"); a change
 * that a reader of the old rows cannot follow gets a new schema name.
 */
#include "hakbench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HB_SCHEMA "hakmem-bench/1"

/* A run row's timeline keeps at most this many points (each the maximum of
 * the samples it stands for): enough for a plot, and a row stays small. */
#define TIMELINE_MAX_POINTS 300

/* Pages are counted in 4 KiB pages, as the page costs are priced. */
#define HB_PAGE_BYTES 4096.0

/* mem.peak / mem.final keys, in the order of the HB_F_* fields. */
static const char *const field_key[HB_F_N] = {
    "rss_kib", "pss_kib", "pss_anon_kib", "private_dirty_kib", "anonymous_kib", "anon_huge_kib",
    "lazyfree_kib", "swap_kib",
};

/* Numbers copied from the workload's result line into the row (null when
 * the line lacks them). */
static const char *const result_keys[] = {
    "ops", "seconds", "ns_per_op", "ops_per_sec", "ns_per_pair", "peak_live_bytes", "final_live_bytes", "threads",
};

const char *hb_status_name(hb_status s)
{
    switch (s) {
    case HB_OK: return "ok";
    case HB_FAILED: return "failed";
    case HB_INVALID: return "invalid";
    }
    return "?";
}

static const char *mode_name(hb_mode m)
{
    return m == HB_MODE_CALLGRIND ? "callgrind" : m == HB_MODE_STATS ? "stats" : "measure";
}

static void row_open(hb_jbuf *b, const char *type)
{
    jb_init(b);
    jb_open(b, NULL, '{');
    jb_str(b, "type", type);
    jb_str(b, "schema", HB_SCHEMA);
}

static void row_write(int fd, hb_jbuf *b)
{
    jb_close(b, '}');
    jb_finish_line(b);
    if (!hb_write_all(fd, b->p, b->len)) { perror("hakbench: writing raw.jsonl"); exit(1); }
    jb_free(b);
}

/* A fact that could not be read ("") is written as null. */
static void str_or_null(hb_jbuf *b, const char *key, const char *s)
{
    jb_str(b, key, s[0] ? s : NULL);
}

/* The arguments the workload was given: a floor run's end with --floor. */
static void write_args(hb_jbuf *b, const hb_case *c, bool floor_run)
{
    jb_open(b, "args", '[');
    for (int k = 1; k < c->argc; k++) jb_str(b, NULL, c->argv[k]);
    if (floor_run) jb_str(b, NULL, HB_FLOOR_FLAG);
    jb_close(b, ']');
}

static const char *kind_name(hb_kind k)
{
    switch (k) {
    case HB_KIND_REFERENCE: return "reference";
    case HB_KIND_HAKMEM: return "hakmem";
    case HB_KIND_FLOOR: return "floor";
    }
    return "?";
}

/* An option's value as printed: a number when it is an integer. */
static void option_value(hb_jbuf *b, const char *key, const char *v)
{
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*v && !*end) jb_int(b, key, x);
    else jb_str(b, key, v);
}

/* A hakmem library's option table, as the probe read it. */
static void write_options(hb_jbuf *b, const hb_alloc *a)
{
    if (!a->options) {
        jb_null(b, "options");
    } else {
        jb_open(b, "options", '[');
        for (int i = 0; i < a->noptions; i++) {
            const hb_option *o = &a->options[i];
            jb_open(b, NULL, '{');
            jb_str(b, "name", o->name);
            option_value(b, "value", o->value);
            option_value(b, "default", o->def);
            jb_str(b, "env", o->env);
            jb_str(b, "meaning", o->meaning);
            jb_close(b, '}');
        }
        jb_close(b, ']');
    }
    if (a->options_error[0]) jb_str(b, "options_error", a->options_error);
}

static void write_allocator(hb_jbuf *b, const hb_alloc *a)
{
    jb_open(b, NULL, '{');
    jb_str(b, "name", a->name);
    jb_str(b, "kind", kind_name(a->kind));
    jb_str(b, "library", a->lib);
    str_or_null(b, "realpath", a->real);
    jb_str(b, "description", a->desc);
    jb_str(b, "status", a->available ? "available" : "skipped");
    jb_str(b, "skip_reason", a->available ? NULL : a->skip_reason);
    str_or_null(b, "version", a->version);
    if (a->kind == HB_KIND_HAKMEM) str_or_null(b, "cflags", a->cflags);
    if (a->available) {
        str_or_null(b, "probe_malloc_from", a->served_by);
        jb_bool(b, "probe_preload_ok", a->preload_ok);
    }
    if (a->kind == HB_KIND_HAKMEM && a->available) write_options(b, a);
    if (a->revision) jb_rawval(b, "revision", a->revision, strlen(a->revision));
    jb_close(b, '}');
}

/* The machine and the build. */
static void write_machine(hb_jbuf *b, const hb_machine *m)
{
    jb_str(b, "cpu_model", m->cpu_model);
    jb_int(b, "cores", m->cores);
    if (m->have_uname) {
        jb_str(b, "kernel", m->kernel);
        jb_str(b, "kernel_version", m->kernel_version);
    }
    str_or_null(b, "thp_enabled", m->thp_enabled);
    str_or_null(b, "thp_defrag", m->thp_defrag);
    str_or_null(b, "cpu_governor", m->cpu_governor);
    str_or_null(b, "aslr", m->aslr);
    str_or_null(b, "loadavg_start", m->loadavg_start);
    jb_int(b, "mem_total_kib", m->mem_total_kib);
    jb_str(b, "glibc", m->glibc);
    jb_str(b, "compiler", m->compiler);
    str_or_null(b, "git_commit", m->git_commit);
    jb_bool(b, "git_dirty", m->git_dirty);
}

/* The allocator settings every run inherits, {name: value}. */
static void write_environment(hb_jbuf *b, const hb_machine *m)
{
    jb_open(b, "environment", '{');
    for (int i = 0; i < m->nenv; i++) {
        const char *eq = strchr(m->env[i], '=');
        char name[256];
        hb_fmt(name, sizeof name, "%.*s", (int)(eq - m->env[i]), m->env[i]);
        jb_str(b, name, eq + 1);
    }
    jb_close(b, '}');
}

static void write_runner(hb_jbuf *b, const hb_opts *o)
{
    jb_open(b, "runner", '{');
    jb_int(b, "reps", o->reps);
    jb_num(b, "timeout_s", o->timeout_s);
    jb_int(b, "sample_ms", o->sample_ms);
    jb_str(b, "callgrind_suite", o->callgrind_suite);
    jb_bool(b, "floor", o->floor);
    jb_bool(b, "stats", o->stats);
    jb_str(b, "order", "repetition > case > allocator (rotated by one each repetition)");
    jb_close(b, '}');
}

/* A shard of a plan (hakbench plan / run --shard i/N): which one, and how
 * many cases the whole suite has. */
static void write_shard(hb_jbuf *b, const hb_opts *o)
{
    if (!o->nshards) return;
    jb_open(b, "shard", '{');
    jb_int(b, "index", o->shard);
    jb_int(b, "count", o->nshards);
    jb_int(b, "suite_cases", o->suite_cases);
    jb_str(b, "rule", "case k of the suite (from 0) is in shard (k mod count) + 1");
    jb_close(b, '}');
}

/* An A/B run (hakbench ab): which allocator is A and which B, and the
 * family-wise confidence its verdicts are given at. */
static void write_ab(hb_jbuf *b, const hb_opts *o)
{
    if (!o->ab_a) return;
    jb_open(b, "ab", '{');
    jb_str(b, "a", o->ab_a);
    jb_str(b, "b", o->ab_b);
    jb_num(b, "confidence", o->confidence);
    jb_close(b, '}');
}

/* How busy the machine was (start: just before the first run; end: over
 * the runs). */
static void write_load(hb_jbuf *b, const char *key, const hb_load *l, bool start)
{
    jb_open(b, key, '{');
    jb_bool(b, "measured", l->ok);
    if (l->ok) {
        jb_num(b, start ? "window_s" : "runs_wall_s", round(l->window_s * 1000) / 1000);
        jb_num(b, "other_cpu_s", round(l->other_cpu_s * 1000) / 1000);
        jb_num(b, "other_cpus", round(l->other_cpus * 1000) / 1000);
        if (start) jb_num(b, "other_runnable", round(l->other_runnable * 100) / 100);
    }
    jb_int(b, "cores", l->cores);
    jb_bool(b, "busy", l->busy);
    str_or_null(b, "loadavg", l->loadavg);
    jb_open(b, "thresholds", '{');
    jb_num(b, "other_cpus", HB_BUSY_OTHER_CPUS);
    if (start) jb_num(b, "other_runnable", HB_BUSY_OTHER_RUNNABLE);
    jb_close(b, '}');
    char say[512];
    hb_load_say(l, start, say, sizeof say);
    jb_str(b, "said", say);
    jb_close(b, '}');
}

static void write_cases(hb_jbuf *b, const hb_matrix *mx)
{
    jb_open(b, "cases", '[');
    for (int i = 0; i < mx->ncase; i++) {
        const hb_case *c = &mx->cases[i];
        jb_open(b, NULL, '{');
        jb_str(b, "label", c->label);
        jb_str(b, "workload", c->workload);
        jb_int(b, "index", c->index);
        jb_bool(b, "missing", c->missing);
        write_args(b, c, false);
        jb_close(b, '}');
    }
    jb_close(b, ']');
}

void hb_write_pagecost(hb_jbuf *b, const char *key, const hb_pagecost *pc)
{
    jb_open(b, key, '{');
    if (!pc->ok) {
        jb_str(b, "error", pc->error);
        jb_close(b, '}');
        return;
    }
    jb_str(b, "unit", "us per 4 KiB page written");
    for (int m = 0; m < HB_PAGECOST_MODES; m++) jb_num(b, hb_pagecost_mode[m], round(pc->us_per_page[m] * 1e4) / 1e4);
    jb_open(b, "min", '{');
    for (int m = 0; m < HB_PAGECOST_MODES; m++) jb_num(b, hb_pagecost_mode[m], round(pc->min_us[m] * 1e4) / 1e4);
    jb_close(b, '}');
    jb_open(b, "max", '{');
    for (int m = 0; m < HB_PAGECOST_MODES; m++) jb_num(b, hb_pagecost_mode[m], round(pc->max_us[m] * 1e4) / 1e4);
    jb_close(b, '}');
    jb_int(b, "region_bytes", (long long)pc->region_bytes);
    jb_int(b, "reps", pc->reps);
    jb_str(b, "statistic", "median over the repetitions (min and max beside it)");
    jb_num(b, "seconds", round(pc->seconds * 1e4) / 1e4);
    jb_str(b, "method", "each repetition: the five modes in turn, each one memset of the region after its "
                        "preparation (untimed); transparent huge pages off for the region (MADV_NOHUGEPAGE)");
    jb_close(b, '}');
}

void hb_write_context(int fd, const hb_opts *o, const hb_machine *m, const hb_matrix *mx, const hb_load *start)
{
    hb_jbuf b;
    row_open(&b, "context");
    jb_str(&b, "suite", o->suite_name);
    jb_str(&b, "suite_file", o->suite_file);
    jb_str(&b, "started", m->started);
    jb_str(&b, "host", m->host);
    write_machine(&b, m);
    hb_write_pagecost(&b, "page_costs", &m->pagecost);
    write_environment(&b, m);
    write_runner(&b, o);
    write_shard(&b, o);
    write_ab(&b, o);
    write_load(&b, "load_start", start, true);
    jb_open(&b, "allocators", '[');
    for (int i = 0; i < mx->nalloc; i++) write_allocator(&b, &mx->allocs[i]);
    jb_close(&b, ']');
    write_cases(&b, mx);
    row_write(fd, &b);
}

void hb_write_skip(int fd, const hb_case *c, hb_mode mode)
{
    hb_jbuf b;
    row_open(&b, "skip");
    jb_str(&b, "mode", mode_name(mode));
    jb_str(&b, "label", c->label);
    jb_str(&b, "workload", c->workload);
    jb_str(&b, "reason", c->missing_reason);
    row_write(fd, &b);
}

/* ---- run rows ---------------------------------------------------------------- */

static long sample_at_or_after(const hb_observation *ob, double t, bool nolazy)
{
    for (size_t i = 0; i < ob->nsamples; i++)
        if (ob->samples[i].t >= t) return nolazy ? ob->samples[i].rss_nolazy : ob->samples[i].rss;
    return -1;
}

static const hb_phase *find_phase(const hb_observation *ob, const char *name)
{
    for (int i = 0; i < ob->nphases; i++)
        if (strcmp(ob->phases[i].name, name) == 0) return &ob->phases[i];
    return NULL;
}

/* burst_idle's idle period, from its idle_start / idle_end markers. */
static void write_idle(hb_jbuf *b, const hb_observation *ob)
{
    const hb_phase *st = find_phase(ob, "start"), *is = find_phase(ob, "idle_start"),
                   *ie = find_phase(ob, "idle_end");
    if (!is) return;
    jb_open(b, "idle", '{');
    if (st) { jb_int(b, "rss_before_burst_kib", st->rss); jb_int(b, "rss_nolazy_before_burst_kib", st->rss_nolazy); }
    long r1 = sample_at_or_after(ob, is->t + 1.0, false), r1n = sample_at_or_after(ob, is->t + 1.0, true);
    if (r1 >= 0 && (!ie || ie->t >= is->t + 1.0)) {
        jb_int(b, "rss_1s_after_idle_start_kib", r1);
        jb_int(b, "rss_nolazy_1s_after_idle_start_kib", r1n);
    } else {
        jb_null(b, "rss_1s_after_idle_start_kib");
        jb_null(b, "rss_nolazy_1s_after_idle_start_kib");
    }
    if (ie) { jb_int(b, "rss_at_idle_end_kib", ie->rss); jb_int(b, "rss_nolazy_at_idle_end_kib", ie->rss_nolazy); }
    double tend = ie ? ie->t : INFINITY;
    long mn = -1, mx = -1;
    double sum = 0;
    long cnt = 0;
    for (size_t i = 0; i < ob->nsamples; i++) {
        const hb_sample *p = &ob->samples[i];
        if (p->t < is->t || p->t > tend) continue;
        if (mn < 0 || p->rss < mn) mn = p->rss;
        if (p->rss > mx) mx = p->rss;
        sum += (double)p->rss;
        cnt++;
    }
    if (cnt) {
        jb_int(b, "rss_idle_min_kib", mn);
        jb_int(b, "rss_idle_max_kib", mx);
        jb_num(b, "rss_idle_mean_kib", sum / (double)cnt);
    }
    jb_close(b, '}');
}

static void write_timeline_series(hb_jbuf *b, const char *key, const hb_observation *ob, size_t step, bool nolazy)
{
    jb_open(b, key, '[');
    for (size_t i = 0; i < ob->nsamples; i += step) {
        long mx = 0;
        for (size_t j = i; j < i + step && j < ob->nsamples; j++) {
            long v = nolazy ? ob->samples[j].rss_nolazy : ob->samples[j].rss;
            if (v > mx) mx = v;
        }
        jb_int(b, NULL, mx);
    }
    jb_close(b, ']');
}

static void write_timeline(hb_jbuf *b, const hb_observation *ob)
{
    size_t n = ob->nsamples;
    size_t step = n > TIMELINE_MAX_POINTS ? (n + TIMELINE_MAX_POINTS - 1) / TIMELINE_MAX_POINTS : 1;
    jb_open(b, "timeline", '{');
    jb_open(b, "t_s", '[');
    for (size_t i = 0; i < n; i += step) jb_num(b, NULL, round(ob->samples[i].t * 1e4) / 1e4);
    jb_close(b, ']');
    write_timeline_series(b, "rss_kib", ob, step, false);
    write_timeline_series(b, "rss_nolazy_kib", ob, step, true);
    jb_close(b, '}');
}

static void write_mem(hb_jbuf *b, const hb_observation *ob)
{
    jb_open(b, "mem", '{');
    jb_int(b, "samples", (long long)ob->nsamples);
    jb_int(b, "interval_ms", ob->interval_ms);
    jb_int(b, "full_reads", ob->full_reads);
    jb_open(b, "peak", '{');
    for (int f = 0; f < HB_F_N; f++) jb_int(b, field_key[f], ob->peak.v[f]);
    jb_int(b, "rss_nolazy_kib", ob->peak_nolazy);
    jb_close(b, '}');
    jb_open(b, "final", '{');
    for (int f = 0; f < HB_F_N; f++) jb_int(b, field_key[f], ob->last.v[f]);
    jb_int(b, "rss_nolazy_kib", ob->last.v[HB_F_RSS] - ob->last.v[HB_F_LAZYFREE]);
    jb_close(b, '}');
    jb_close(b, '}');
}

static void write_phases(hb_jbuf *b, const hb_observation *ob)
{
    jb_open(b, "phases", '[');
    for (int i = 0; i < ob->nphases; i++) {
        const hb_phase *p = &ob->phases[i];
        jb_open(b, NULL, '{');
        jb_str(b, "name", p->name);
        jb_num(b, "t_s", p->t);
        jb_num(b, "workload_t_s", p->wt);
        jb_int(b, "rss_kib", p->rss);
        jb_int(b, "rss_nolazy_kib", p->rss_nolazy);
        jb_close(b, '}');
    }
    jb_close(b, ']');
}

static double seconds(struct timeval tv)
{
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* The workload's own figures, and the ones derived from them. */
static void write_figures(hb_jbuf *b, const hb_job *j, const hb_observation *ob, const hb_verdict *v)
{
    double x;
    for (size_t i = 0; i < sizeof result_keys / sizeof *result_keys; i++) {
        if (v->have_result && json_get_num(ob->result, ob->resultlen, result_keys[i], &x)) jb_num(b, result_keys[i], x);
        else jb_null(b, result_keys[i]);
    }
    /* Fragmentation is measured against the peak RSS: the larger of the
     * sampled peak and the kernel's high-water mark (sampling can miss a
     * short spike; a run shorter than one interval has no sample at all). */
    jb_int(b, "peak_rss_kib", ob->peak_rss_kib);
    if (v->have_result && json_get_num(ob->result, ob->resultlen, "peak_live_bytes", &x) && x > 0 && ob->peak_rss_kib > 0)
        jb_num(b, "fragmentation", (double)ob->peak_rss_kib * 1024.0 / x);
    else
        jb_null(b, "fragmentation");
    if (j->mode == HB_MODE_CALLGRIND) {
        if (v->instructions >= 0) jb_int(b, "instructions", v->instructions); else jb_null(b, "instructions");
        if (v->instructions >= 0 && v->have_result && json_get_num(ob->result, ob->resultlen, "ops", &x) && x > 0)
            jb_num(b, "instr_per_op", (double)v->instructions / x);
        else jb_null(b, "instr_per_op");
    }
}

/* hakmem's statistics figures the row keeps, at exit and at the peak RSS:
 * the parts of the mapped bytes, what of them is committed or resident, and
 * the resident bytes by part (the library's JSON names, core/hakmem.h). */
static const char *const stats_keys[] = {
    "in_use_bytes", "magazine_bytes", "transfer_bytes", "slab_free_bytes", "slab_tail_bytes", "pool_bytes", "superslab_free_bytes",
    "superslab_dirty_bytes", "medium_free_bytes", "medium_dirty_bytes", "large_cache_bytes", "large_dirty_bytes", "metadata_bytes",
    "mapped_bytes", "resident_bytes", "small_in_use_bytes", "medium_in_use_bytes", "large_in_use_bytes",
};

const char *hb_stats_missing(const char *s, size_t n)
{
    double x;
    const char *v;
    size_t vl;
    for (size_t i = 0; i < sizeof stats_keys / sizeof *stats_keys; i++)
        if (!json_get_num(s, n, stats_keys[i], &x)) return stats_keys[i];
    if (!json_get(s, n, "resident", &v, &vl) || vl == 0 || v[0] != '{') return "resident";
    if (json_get(s, n, "peak", &v, &vl) && vl > 0 && v[0] == '{') {
        if (!json_get_num(v, vl, "process_rss_bytes", &x)) return "peak.process_rss_bytes";
        const char *m = hb_stats_missing(v, vl);
        if (m) return m;
    }
    return NULL;
}

/* The cumulative counters of page-table work a set carries ("total":
 * system calls and bytes since the start); moved_bytes and
 * decommitted_bytes only from a library that counts them. */
static const char *const stats_total_keys[] = {
    "os_maps", "os_unmaps", "os_decommits", "os_moves", "released_bytes", "moved_bytes", "decommitted_bytes",
};

/* One set of figures (the object s, n bytes; hb_stats_missing found none
 * missing). */
static void write_stats_set(hb_jbuf *b, const char *key, const char *s, size_t n)
{
    jb_open(b, key, '{');
    double x;
    const char *v;
    size_t vl;
    for (size_t i = 0; i < sizeof stats_keys / sizeof *stats_keys; i++)
        if (json_get_num(s, n, stats_keys[i], &x)) jb_int(b, stats_keys[i], (long long)x);
    if (json_get_num(s, n, "process_rss_bytes", &x)) jb_int(b, "process_rss_bytes", (long long)x);
    if (json_get(s, n, "resident", &v, &vl)) jb_rawval(b, "resident", v, vl);
    if (json_get(s, n, "total", &v, &vl) && vl > 0 && v[0] == '{') {
        jb_open(b, "total", '{');
        for (size_t i = 0; i < sizeof stats_total_keys / sizeof *stats_total_keys; i++)
            if (json_get_num(v, vl, stats_total_keys[i], &x)) jb_int(b, stats_total_keys[i], (long long)x);
        jb_close(b, '}');
    }
    jb_close(b, '}');
}

/* Page-table work per op, so that it can be priced with the machine's page
 * costs (the context's page_costs): the process's minor faults per op of the
 * workload (not for callgrind rows: those are valgrind's), and in a stats
 * row the 4 KiB pages hakmem's statistics say it moved with mremap and
 * decommitted with MADV_DONTNEED (total.moved_bytes, total.decommitted_bytes,
 * cumulative over the process; null when the library does not count them). */
static void write_page_work(hb_jbuf *b, const hb_job *j, const hb_observation *ob, const hb_verdict *v)
{
    double ops = 0, x;
    const char *t;
    size_t tl;
    bool have_ops = v->have_result && json_get_num(ob->result, ob->resultlen, "ops", &ops) && ops > 0;
    if (j->mode == HB_MODE_CALLGRIND) return;
    if (have_ops) jb_num(b, "minflt_per_op", (double)ob->ru.ru_minflt / ops);
    else jb_null(b, "minflt_per_op");
    if (j->mode != HB_MODE_STATS) return;
    bool have_total = have_ops && ob->stats && json_get(ob->stats, ob->statslen, "total", &t, &tl) && tl > 0 && t[0] == '{';
    if (have_total && json_get_num(t, tl, "moved_bytes", &x)) jb_num(b, "moved_pages_per_op", x / HB_PAGE_BYTES / ops);
    else jb_null(b, "moved_pages_per_op");
    if (have_total && json_get_num(t, tl, "decommitted_bytes", &x)) jb_num(b, "decommitted_pages_per_op", x / HB_PAGE_BYTES / ops);
    else jb_null(b, "decommitted_pages_per_op");
}

/* "hakmem_stats" (stats runs): where a hakmem variant's memory was, by its
 * own account, at exit ("end") and at the process's peak RSS ("peak"; null
 * when the library took no figures during the run), or {"error": why not}
 * (the run is then failed, for that reason). */
static void write_hakmem_stats(hb_jbuf *b, const hb_observation *ob, const hb_verdict *v)
{
    if (!ob->stats_asked) return;
    jb_open(b, "hakmem_stats", '{');
    const char *pv;
    size_t pl;
    if (!ob->stats || v->status != HB_OK) {
        jb_str(b, "error", ob->stats ? v->reason : ob->stats_error[0] ? ob->stats_error : "no statistics");
    } else {
        write_stats_set(b, "end", ob->stats, ob->statslen);
        if (json_get(ob->stats, ob->statslen, "peak", &pv, &pl) && pl > 0 && pv[0] == '{')
            write_stats_set(b, "peak", pv, pl);
        else
            jb_null(b, "peak");
    }
    jb_close(b, '}');
}

void hb_write_run(int fd, const hb_job *j, const char *log, const hb_observation *ob, const hb_verdict *v)
{
    hb_jbuf b;
    row_open(&b, "run");
    jb_str(&b, "mode", mode_name(j->mode));
    jb_int(&b, "seq", j->seq);
    jb_int(&b, "rep", j->rep);
    jb_str(&b, "label", j->c->label);
    jb_str(&b, "workload", j->c->workload);
    write_args(&b, j->c, j->a->kind == HB_KIND_FLOOR);
    jb_str(&b, "allocator", j->a->name);
    jb_bool(&b, "floor", j->a->kind == HB_KIND_FLOOR);
    jb_str(&b, "status", hb_status_name(v->status));
    str_or_null(&b, "reason", v->reason);
    if (v->exit_code >= 0) jb_int(&b, "exit_code", v->exit_code); else jb_null(&b, "exit_code");
    if (v->signal) jb_int(&b, "signal", v->signal); else jb_null(&b, "signal");
    jb_num(&b, "wall_s", ob->wall_s);
    jb_num(&b, "user_s", seconds(ob->ru.ru_utime));
    jb_num(&b, "sys_s", seconds(ob->ru.ru_stime));
    jb_int(&b, "maxrss_kib", ob->ru.ru_maxrss);
    jb_int(&b, "minflt", ob->ru.ru_minflt);
    jb_int(&b, "majflt", ob->ru.ru_majflt);
    jb_int(&b, "nvcsw", ob->ru.ru_nvcsw);
    jb_int(&b, "nivcsw", ob->ru.ru_nivcsw);
    if (isfinite(ob->other_cpu_s)) jb_num(&b, "other_cpu_s", ob->other_cpu_s > 0 ? round(ob->other_cpu_s * 1000) / 1000 : 0);
    else jb_null(&b, "other_cpu_s");
    write_figures(&b, j, ob, v);
    write_page_work(&b, j, ob, v);
    write_mem(&b, ob);
    write_phases(&b, ob);
    write_idle(&b, ob);
    write_timeline(&b, ob);
    write_hakmem_stats(&b, ob, v);

    jb_open(&b, "verify", '{');
    jb_str(&b, "expected", v->expected);
    str_or_null(&b, "malloc_from", v->malloc_from);
    jb_bool(&b, "malloc_from_ok", v->verified);
    if (j->a->system) jb_null(&b, "maps_has_lib"); else jb_bool(&b, "maps_has_lib", ob->maps_seen);
    if (v->floor_reported < 0) jb_null(&b, "floor_reported"); else jb_bool(&b, "floor_reported", v->floor_reported);
    jb_close(&b, '}');

    jb_str(&b, "log", log);
    if (v->status != HB_OK) jb_str(&b, "stderr_tail", v->stderr_tail);
    if (v->have_result) jb_rawval(&b, "result", ob->result, ob->resultlen);
    else jb_null(&b, "result");
    row_write(fd, &b);
}

void hb_write_end(int fd, const hb_tally *t, double wall_s, bool interrupted, const char *loadavg,
                  const hb_load *during)
{
    hb_jbuf b;
    row_open(&b, "end");
    jb_int(&b, "ok", t->ok);
    jb_int(&b, "failed", t->failed);
    jb_int(&b, "invalid", t->invalid);
    jb_num(&b, "wall_s", wall_s);
    jb_bool(&b, "interrupted", interrupted);
    str_or_null(&b, "loadavg_end", loadavg);
    write_load(&b, "load", during, false);
    row_write(fd, &b);
}
