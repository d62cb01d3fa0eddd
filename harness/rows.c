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

#include <stdio.h>
#include <stdlib.h>

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

static void write_args(hb_jbuf *b, const hb_case *c)
{
    jb_open(b, "args", '[');
    for (int k = 1; k < c->argc; k++) jb_str(b, NULL, c->argv[k]);
    jb_close(b, ']');
}

static void write_allocator(hb_jbuf *b, const hb_alloc *a)
{
    jb_open(b, NULL, '{');
    jb_str(b, "name", a->name);
    jb_str(b, "kind", a->kind == HB_KIND_HAKMEM ? "hakmem" : "reference");
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
    jb_close(b, '}');
}

void hb_write_context(int fd, const hb_opts *o, const hb_machine *m, const hb_matrix *mx)
{
    hb_jbuf b;
    row_open(&b, "context");
    jb_str(&b, "suite", o->suite_name);
    jb_str(&b, "suite_file", o->suite_file);
    jb_str(&b, "started", m->started);
    jb_str(&b, "host", m->host);

    /* machine */
    jb_str(&b, "cpu_model", m->cpu_model);
    jb_int(&b, "cores", m->cores);
    if (m->have_uname) {
        jb_str(&b, "kernel", m->kernel);
        jb_str(&b, "kernel_version", m->kernel_version);
    }
    str_or_null(&b, "thp_enabled", m->thp_enabled);
    str_or_null(&b, "thp_defrag", m->thp_defrag);
    str_or_null(&b, "cpu_governor", m->cpu_governor);
    str_or_null(&b, "aslr", m->aslr);
    str_or_null(&b, "loadavg_start", m->loadavg_start);
    jb_int(&b, "mem_total_kib", m->mem_total_kib);
    jb_str(&b, "glibc", m->glibc);

    /* build */
    jb_str(&b, "compiler", m->compiler);
    str_or_null(&b, "git_commit", m->git_commit);
    jb_bool(&b, "git_dirty", m->git_dirty);

    /* runner settings */
    jb_open(&b, "runner", '{');
    jb_int(&b, "reps", o->reps);
    jb_num(&b, "timeout_s", o->timeout_s);
    jb_int(&b, "sample_ms", o->sample_ms);
    jb_str(&b, "callgrind_suite", o->callgrind_suite);
    jb_str(&b, "order", "repetition > case > allocator (rotated by one each repetition)");
    jb_close(&b, '}');

    jb_open(&b, "allocators", '[');
    for (int i = 0; i < mx->nalloc; i++) write_allocator(&b, &mx->allocs[i]);
    jb_close(&b, ']');

    jb_open(&b, "cases", '[');
    for (int i = 0; i < mx->ncase; i++) {
        const hb_case *c = &mx->cases[i];
        jb_open(&b, NULL, '{');
        jb_str(&b, "label", c->label);
        jb_str(&b, "workload", c->workload);
        jb_bool(&b, "missing", c->missing);
        write_args(&b, c);
        jb_close(&b, '}');
    }
    jb_close(&b, ']');
    row_write(fd, &b);
}

void hb_write_skip(int fd, const hb_case *c, const char *mode)
{
    hb_jbuf b;
    row_open(&b, "skip");
    jb_str(&b, "mode", mode);
    jb_str(&b, "label", c->label);
    jb_str(&b, "workload", c->workload);
    jb_str(&b, "reason", c->missing_reason);
    row_write(fd, &b);
}

void hb_write_end(int fd, const hb_tally *t, double wall_s, bool interrupted, const char *loadavg)
{
    hb_jbuf b;
    row_open(&b, "end");
    jb_int(&b, "ok", t->ok);
    jb_int(&b, "failed", t->failed);
    jb_int(&b, "invalid", t->invalid);
    jb_num(&b, "wall_s", wall_s);
    jb_bool(&b, "interrupted", interrupted);
    str_or_null(&b, "loadavg_end", loadavg);
    row_write(fd, &b);
}
