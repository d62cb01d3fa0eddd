/* compile.c - hakmem-trace compile: a full-mode trace into a replay file
 * (format in trace_format.h) for workloads/replay.
 *
 * One pass over the instance's merged events (trace_read.h):
 *   - each block gets a slot; a freed slot goes on the freeing thread's free
 *     list and only that thread reuses it, so reuse never needs a wait;
 *   - every event remembers the last event that touched its slot; when that
 *     was another thread's, the event waits for it (wait_thread,
 *     wait_index) and that event is marked HR_PUBLISH. Waits point back in
 *     recorded time, so they never form a cycle;
 *   - live bytes are counted as the report counts them, so the header's
 *     peak is the report's peak.
 * Not replayed, and counted in `skipped`: failed calls, free(NULL), frees of
 * pointers the trace never saw allocated, malloc_usable_size. A pointer
 * allocated again while the trace still holds it live (its free was not
 * recorded) is first freed by the allocating thread. valloc and pvalloc are
 * replayed as posix_memalign(page size, n).
 */
#include "compile.h"

#include "trace_read.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct cblk {
    uint64_t size, last_idx;
    uint32_t slot, last_thread;
} cblk;

typedef struct cthread {
    hr_event *ev;
    uint64_t n, cap, alloc_bytes;
    uint32_t *free_slots;
    uint64_t nfree, capfree;
} cthread;

typedef struct cstate {
    tr_instance *in;
    cthread *th;
    cblk *blks;
    uint64_t nblks, capblks, free_blk;
    tr_map ptrs;
    uint64_t *pending; /* per thread: the block its realloc in progress gave up */
    uint64_t slots, skipped, waits, implicit_frees, usable;
    int64_t live, peak;
} cstate;

static uint64_t cblk_new(cstate *c)
{
    if (c->free_blk != UINT64_MAX) {
        uint64_t i = c->free_blk;
        c->free_blk = c->blks[i].last_idx;
        return i;
    }
    if (c->nblks == c->capblks) {
        c->capblks = c->capblks ? c->capblks * 2 : 4096;
        c->blks = tr_xrealloc(c->blks, c->capblks * sizeof *c->blks);
    }
    return c->nblks++;
}

static void cblk_release(cstate *c, uint64_t i)
{
    c->blks[i].last_idx = c->free_blk;
    c->free_blk = i;
}

static uint32_t slot_new(cstate *c, uint32_t th)
{
    cthread *t = &c->th[th];
    if (t->nfree)
        return t->free_slots[--t->nfree];
    if (c->slots >= UINT32_MAX)
        tr_die(1, "more than 2^32 live blocks at once: too many for a replay file");
    return (uint32_t)c->slots++;
}

static void slot_free(cstate *c, uint32_t th, uint32_t slot)
{
    cthread *t = &c->th[th];
    if (t->nfree == t->capfree) {
        t->capfree = t->capfree ? t->capfree * 2 : 1024;
        t->free_slots = tr_xrealloc(t->free_slots, t->capfree * sizeof *t->free_slots);
    }
    t->free_slots[t->nfree++] = slot;
}

/* Appends an event to thread th; with b, waits for b's last toucher when
 * that is another thread, and makes this event b's last toucher. */
static void emit(cstate *c, uint32_t th, uint8_t op, uint32_t slot, uint64_t size, uint64_t arg,
                 uint64_t time, cblk *b)
{
    cthread *t = &c->th[th];
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 4096;
        t->ev = tr_xrealloc(t->ev, t->cap * sizeof *t->ev);
    }
    hr_event *e = &t->ev[t->n];
    memset(e, 0, sizeof *e);
    e->time = time;
    e->size = size;
    e->arg = arg;
    e->slot = slot;
    e->op = op;
    if (b && b->last_thread != th) {
        e->wait_thread = (uint16_t)(b->last_thread + 1);
        e->wait_index = b->last_idx;
        c->th[b->last_thread].ev[b->last_idx].flags |= HR_PUBLISH;
        c->waits++;
    }
    if (b) {
        b->last_thread = th;
        b->last_idx = t->n;
    }
    t->n++;
}

static void live_add(cstate *c, int64_t d)
{
    c->live += d;
    if (c->live > c->peak)
        c->peak = c->live;
}

static void free_block(cstate *c, uint32_t th, uint64_t bi, uint64_t time)
{
    cblk *b = &c->blks[bi];
    emit(c, th, HR_FREE, b->slot, 0, 0, time, b);
    slot_free(c, th, b->slot);
    live_add(c, -(int64_t)b->size);
    cblk_release(c, bi);
}

/* A new block at ptr in thread th (the caller has emitted nothing yet). */
static cblk *new_block(cstate *c, uint32_t th, uint64_t ptr, uint64_t size, uint64_t time)
{
    uint64_t old;
    if (tr_map_take(&c->ptrs, ptr, &old)) {
        c->implicit_frees++;
        free_block(c, th, old, time);
    }
    uint64_t bi = cblk_new(c);
    cblk *b = &c->blks[bi];
    b->size = size;
    b->slot = slot_new(c, th);
    b->last_thread = th;
    b->last_idx = UINT64_MAX;
    tr_map_put(&c->ptrs, ptr, bi);
    c->th[th].alloc_bytes += size;
    live_add(c, (int64_t)size);
    return b;
}

static uint8_t replay_op(uint8_t op, uint64_t *arg, const ht_event *e)
{
    switch (op) {
    case HT_OP_MALLOC: *arg = 0; return HR_MALLOC;
    case HT_OP_CALLOC: *arg = e->aux; return HR_CALLOC;
    case HT_OP_ALIGNED_ALLOC: *arg = e->aux; return HR_ALIGNED_ALLOC;
    case HT_OP_MEMALIGN: *arg = e->aux; return HR_MEMALIGN;
    default: *arg = e->aux; return HR_POSIX_MEMALIGN; /* posix_memalign, valloc, pvalloc */
    }
}

static bool write_all(FILE *f, const void *p, size_t n)
{
    return fwrite(p, 1, n, f) == n;
}

/* Whether the instance can become a replay file: 0, or 2 after saying why. */
static int check_replayable(const tr_instance *in, const char *dir)
{
    if (in->mode != HT_MODE_FULL) {
        fprintf(stderr, "hakmem-trace: %s: a sampled trace cannot be replayed; record it in full mode "
                        "(--preset replay)\n", dir);
        return 2;
    }
    if (in->nfiles >= UINT16_MAX) {
        fprintf(stderr, "hakmem-trace: %s: %u threads, more than a replay file holds\n", dir, in->nfiles);
        return 2;
    }
    return 0;
}

static void cstate_init(cstate *c, tr_instance *in)
{
    memset(c, 0, sizeof *c);
    c->in = in;
    c->free_blk = UINT64_MAX;
    c->th = calloc(in->nfiles, sizeof *c->th);
    c->pending = tr_xmalloc(in->nfiles * sizeof *c->pending);
    if (!c->th)
        tr_die(1, "out of memory");
    tr_map_init(&c->ptrs);
}

static void cstate_free(cstate *c)
{
    for (uint32_t i = 0; i < c->in->nfiles; i++) {
        free(c->th[i].ev);
        free(c->th[i].free_slots);
    }
    free(c->th);
    free(c->blks);
    free(c->pending);
    tr_map_free(&c->ptrs);
}

/* An allocating call: a new block, replayed by the same call. */
static void compile_alloc(cstate *c, const tr_item *it)
{
    const ht_event *e = it->e;
    if (!e->ptr) {
        c->skipped++;
        return;
    }
    uint64_t arg;
    uint8_t op = replay_op(e->op, &arg, e);
    cblk *b = new_block(c, it->thread, e->ptr, e->size, it->time);
    emit(c, it->thread, op, b->slot, e->size, arg, it->time, b);
}

/* free: of a block the trace knows, else not replayed. */
static void compile_free(cstate *c, const tr_item *it)
{
    uint64_t bi;
    if (it->e->ptr && tr_map_take(&c->ptrs, it->e->ptr, &bi))
        free_block(c, it->thread, bi, it->time);
    else
        c->skipped++;
}

/* A realloc's result: realloc(NULL, n) or of an unknown pointer is a new
 * block; a failed one leaves the old block; realloc(p, 0) frees it; else
 * the block moves to its new pointer (which may be the old one). */
static void compile_realloc(cstate *c, const tr_item *it)
{
    const ht_event *e = it->e;
    uint32_t th = it->thread;
    uint64_t bi = e->aux ? c->pending[th] : UINT64_MAX;
    if (bi == UINT64_MAX) { /* realloc(NULL, n), or of a pointer never seen */
        if (e->ptr) {
            cblk *b = new_block(c, th, e->ptr, e->size, it->time);
            emit(c, th, HR_REALLOC_NEW, b->slot, e->size, 0, it->time, b);
        } else {
            c->skipped++;
        }
        return;
    }
    if (!e->ptr && e->size) { /* failed: the old block lives on */
        tr_map_put(&c->ptrs, e->aux, bi);
        c->skipped++;
        return;
    }
    if (!e->ptr) { /* realloc(p, 0) freed it: replayed as free */
        free_block(c, th, bi, it->time);
        return;
    }
    uint64_t old;
    if (tr_map_take(&c->ptrs, e->ptr, &old)) {
        c->implicit_frees++;
        free_block(c, th, old, it->time);
    }
    cblk *b = &c->blks[bi];
    emit(c, th, HR_REALLOC, b->slot, e->size, 0, it->time, b);
    live_add(c, (int64_t)e->size - (int64_t)b->size);
    if (e->size > b->size)
        c->th[th].alloc_bytes += e->size - b->size;
    b->size = e->size;
    tr_map_put(&c->ptrs, e->ptr, bi);
}

/* The one pass over the instance's merged events. */
static void compile_events(cstate *c)
{
    tr_walk w;
    tr_walk_init(&w, c->in);
    tr_item it;
    while (tr_walk_next(&w, &it)) {
        switch (it.kind) {
        case TR_ALLOC:
            compile_alloc(c, &it);
            break;
        case TR_FREE:
            compile_free(c, &it);
            break;
        case TR_REALLOC_OLD: {
            uint64_t bi;
            c->pending[it.thread] = tr_map_take(&c->ptrs, it.e->aux, &bi) ? bi : UINT64_MAX;
            break;
        }
        case TR_REALLOC_NEW:
            compile_realloc(c, &it);
            break;
        default:
            c->usable++;
            c->skipped++;
            break;
        }
    }
    tr_walk_done(&w);
}

static void fill_header(const cstate *c, hr_header *h)
{
    const tr_instance *in = c->in;
    memset(h, 0, sizeof *h);
    memcpy(h->magic, HR_MAGIC, 8);
    h->version = HR_VERSION;
    h->threads = in->nfiles;
    h->slots = c->slots;
    h->peak_live_bytes = (uint64_t)c->peak;
    h->final_live_bytes = (uint64_t)c->live;
    h->skipped = c->skipped;
    h->pid = in->pid;
    h->duration_ns = in->last_time;
    snprintf(h->program, sizeof h->program, "%s", in->exe);
}

/* The thread table: where each thread's events lie in the file (after the
 * header and the table); adds them up into h->events. */
static hr_thread *thread_table(const cstate *c, hr_header *h)
{
    uint32_t n = c->in->nfiles;
    hr_thread *tt = calloc(n, sizeof *tt);
    if (!tt)
        tr_die(1, "out of memory");
    uint64_t off = sizeof *h + (uint64_t)n * sizeof *tt;
    for (uint32_t i = 0; i < n; i++) {
        tt[i].offset = off;
        tt[i].events = c->th[i].n;
        tt[i].alloc_bytes = c->th[i].alloc_bytes;
        tt[i].tid = c->in->files[i]->h.tid;
        off += c->th[i].n * sizeof(hr_event);
        h->events += c->th[i].n;
    }
    return tt;
}

/* Header, thread table and events into out.tmp, renamed to out once all is
 * written: 0, or 1 after saying why. */
static int write_replay_file(const cstate *c, const char *out, const hr_header *h, const hr_thread *tt)
{
    uint32_t n = c->in->nfiles;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "hakmem-trace: %s: cannot write: %s\n", out, strerror(errno));
        return 1;
    }
    bool ok = write_all(f, h, sizeof *h) && write_all(f, tt, n * sizeof *tt);
    for (uint32_t i = 0; ok && i < n; i++)
        ok = write_all(f, c->th[i].ev, c->th[i].n * sizeof(hr_event));
    ok = fflush(f) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, out) != 0) {
        fprintf(stderr, "hakmem-trace: %s: write failed: %s\n", out, strerror(errno));
        unlink(tmp);
        return 1;
    }
    return 0;
}

static void format_summary(const cstate *c, const char *out, const hr_header *h, char *summary, size_t n)
{
    const tr_instance *in = c->in;
    snprintf(summary, n,
             "%s: %" PRIu64 " events of %s (pid %" PRIu64 ") in %u threads, %" PRIu64 " slots, %" PRIu64
             " cross-thread waits, peak live %" PRIu64 " bytes, %" PRIu64 " not replayed (%" PRIu64
             " malloc_usable_size), %" PRIu64 " frees inferred",
             out, h->events, in->exe, in->pid, in->nfiles, c->slots, c->waits, h->peak_live_bytes, c->skipped,
             c->usable, c->implicit_frees);
}

int compile_run(const char *dir, const char *out, uint64_t pid, char *summary, size_t summary_n)
{
    tr_run run;
    if (!tr_open(dir, &run))
        return 1;
    tr_instance *in = tr_pick_instance(&run, pid);
    int rc = in ? check_replayable(in, dir) : 2;
    if (rc == 0) {
        cstate c;
        cstate_init(&c, in);
        compile_events(&c);
        hr_header h;
        fill_header(&c, &h);
        hr_thread *tt = thread_table(&c, &h);
        rc = write_replay_file(&c, out, &h, tt);
        if (rc == 0)
            format_summary(&c, out, &h, summary, summary_n);
        free(tt);
        cstate_free(&c);
    }
    tr_close(&run);
    return rc;
}
