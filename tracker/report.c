/* report.c - hakmem-trace report: one pass over each instance's merged
 * events, figures into trace.json (its layout is in README.md, "The trace
 * report"); trace_html.py draws trace.html from it.
 *
 * Per instance: counts per operation and per thread, bytes allocated, live
 * bytes over time (peak and final), a size histogram (powers of two), a
 * lifetime histogram of freed blocks (powers of two of ns), the
 * cross-thread matrix (allocating thread x freeing thread), realloc chains
 * (a block's life through its reallocs: moves and bytes copied), call
 * sites (with stacks), blocks never freed, anomalies (frees of pointers
 * never seen, allocations of a pointer still live) and hints.
 *
 * Two roles of a record: the call figures (calls per operation and thread,
 * allocations, sizes, bytes asked for, sites by count and bytes) and the
 * heap figures (blocks: live bytes, lifetimes, frees, who frees what,
 * realloc chains, blocks never freed). In full mode every record has both.
 * In sampled mode a record has the roles its flags give (trace_format.h):
 * the call figures come from the drawn calls, the heap figures from the
 * tracked blocks, each weighted by sample_every unless large, and all are
 * estimates (the JSON says so). A block that a realloc moves between a
 * tracked and an untracked address counts in the heap figures only while
 * tracked, and its lifetime is not counted.
 */
#include "report.h"

#include "trace_read.h"

#include <inttypes.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBUCKETS 1000     /* points of the live-bytes timeline */
#define NHIST 48          /* power-of-two histogram buckets */
#define MAXT 64           /* threads shown in the matrix (the rest fold into the last) */
#define TOP 20
#define SMALL_BYTES 256
#define LARGE_BYTES (64u << 10)
#define SHORT_NS 1000000u /* 1 ms */

typedef struct blk {
    uint64_t size, t_alloc, first_size, copied;
    uint32_t thread, site, reallocs, moves;
    uint32_t owner;    /* the stack of the call that last made it (malloc or realloc): heaptrack's owner */
    uint64_t seq;      /* the number of the call that last made it (1, 2, ...) */
    uint32_t weight;
    uint32_t next_free;
    uint32_t partial;  /* sampled: entered the heap figures at a realloc (lifetime unknown) */
    uint8_t half;      /* sampled: the half of the tracked addresses its address is in (heap_half) */
} blk;

typedef struct site_stat {
    /* calls to allocation functions made here (every successful allocating
     * call, a realloc's too: heaptrack's count), by kind, and the bytes they
     * asked for (a realloc's new size in full) */
    uint64_t calls, kind[HT_OP_LAST_CALL + 1], call_bytes;
    /* figures of the blocks allocated here */
    uint64_t allocs, bytes, frees, live_blocks, live_bytes, small, large_short, large_short_bytes;
    uint64_t reallocs, moves, copied;
    uint64_t lifetimes; /* frees whose lifetime is known */
    double lifetime_sum;
    /* the bytes of the blocks this stack owns (blk.owner): now (at the
     * end, never freed) and at the process's peak, kept lazily: at_peak is
     * taken at the site's first change after a new peak (epoch) */
    int64_t owned, at_peak;
    uint64_t epoch, owned_blocks_end;
    uint64_t temporary; /* blocks it owned, freed with no other allocation or free between (full mode) */
    /* sampled mode: the variances of calls, call_bytes, live_bytes and owned
     * at the end (the sums of hvar(weight) * x^2 over its drawn items) */
    double var_calls, var_call_bytes, var_live, var_owned;
    uint64_t small_calls, live_sampled, owned_sampled; /* drawn small allocating calls; sampled blocks live
                                                          at the end, by site and by owner */
    double small_bytes;                              /* those calls' bytes (unweighted) */
} site_stat;

/* An allocation site: the stacks merged by their first frame outside an
 * allocator's library: its function (module+offset when it has no symbol)
 * and, where the object has debug information, the call's file:line, as
 * heaptrack_print merges them ("" without). */
typedef struct msite {
    char *function, *module, *source;
    uint64_t calls, kind[HT_OP_LAST_CALL + 1], call_bytes, leaked_blocks, temporary;
    int64_t peak, leaked;
    double var_calls, var_call_bytes, var_leaked; /* sampled mode */
    uint64_t small_calls, owned_sampled;
    double small_bytes;
    uint32_t first_stack, nstacks; /* its stacks: first_stack, then next_stack[] */
} msite;

typedef struct thread_stat {
    uint64_t ops[HT_OP_LAST_CALL + 1];
    uint64_t alloc_bytes, foreign_frees;
} thread_stat;

typedef struct chain {
    uint64_t copied, first_size, last_size;
    uint64_t seq;      /* its block's (ties: the earlier first) */
    uint32_t thread, site, reallocs, moves;
} chain;

/* Sampled mode's error (README, "The report"): each estimate is a
 * Horvitz-Thompson sum, sum of x * weight over the drawn items; its
 * variance estimate is the sum over them of weight * (weight - 1) * x^2
 * (weight 1/p; a large item has weight 1 and adds none). The heap figures
 * at one moment draw distinct live addresses, so the sum holds for them
 * too. The peak is the maximum over time, which the sum does not hold for
 * (the highest of many noisy points is biased upward): the tracked
 * addresses are split in two halves by a hash of the address, each half
 * (weight doubled) picks the moment of its own highest estimate and the
 * other half estimates the live bytes at that moment, unbiased since the
 * halves are drawn independently; the peak is the mean of the two (the
 * highest of the timeline ran +12 % over on make_sampled.py's population,
 * the higher of the halves +16 %, their mean -4 %). */
typedef struct sampling {
    double ops[HT_OP_LAST_CALL + 1], calls, kind[HT_OP_LAST_CALL + 1], call_bytes, allocs, alloc_bytes,
        call_frees;
    double small_calls, small_bytes; /* sampled allocating calls drawn and their bytes (unweighted) */
    int64_t half_live[2]; /* live bytes * weight of the sampled blocks in each half */
    double half_sq[2];    /* and the sum of their sizes squared */
    uint64_t live_sampled; /* sampled blocks live */
    double live_sq;        /* the sum of their sizes squared */
    int64_t half_max[2];   /* the highest estimate of each half so far */
    int64_t cross[2];      /* the other half's estimate at that moment */
    double cross_var[2];
    uint64_t cross_time[2];
    bool seen[2];
} sampling;

typedef struct analysis {
    tr_instance *in;
    tr_map ptrs;
    blk *blks;
    uint32_t nblks, capblks, free_blk;
    uint64_t ops[HT_OP_LAST_CALL + 1];
    uint64_t calls, call_kind[HT_OP_LAST_CALL + 1], call_bytes; /* calls to allocation functions */
    uint64_t allocs, frees, call_frees, alloc_bytes, failed, free_null, unmatched_frees, unmatched_reallocs,
        realloc_while_live, alloc_while_live;
    int64_t live, peak;
    uint64_t peak_time;
    int64_t tl_max[NBUCKETS];
    int64_t tl_last[NBUCKETS];
    uint64_t bucket_ns;
    uint64_t size_hist[NHIST], size_hist_bytes[NHIST];
    uint64_t life_hist[NHIST];
    uint64_t freed_blocks; /* frees whose lifetime is known */
    double life_sum;
    uint64_t *matrix; /* MAXT x MAXT */
    thread_stat *threads;
    site_stat *sites;
    uint64_t chains, chain_reallocs, chain_moves, chain_copied, chain_len_hist[NHIST];
    chain top_chains[TOP];
    uint32_t ntop_chains;
    uint64_t small_allocs, large_allocs, large_short, large_short_bytes;
    uint64_t live_blocks_end, live_bytes_end;
    blk leaks[TOP];
    uint32_t nleaks;
    bool estimated;
    uint32_t *pending; /* during the pass, per thread: the block its realloc in progress gave up */
    uint64_t peak_epoch; /* new peaks of live bytes so far */
    uint64_t seq, temporary; /* calls that made a block; temporary allocations (full mode) */
    sampling smp;        /* sampled mode: the variances and the peak's halves */
    uint64_t *last_seq;  /* per thread: the block its last allocating call made, 0 after a free */
    msite *msites;       /* allocation sites, after the pass (merge_sites) */
    uint32_t nmsites, *next_stack;
} analysis;

static unsigned log2_bucket(uint64_t v)
{
    unsigned b = v ? 64u - (unsigned)__builtin_clzll(v) : 0;
    return b < NHIST ? b : NHIST - 1;
}

static uint32_t blk_new(analysis *a)
{
    if (a->free_blk != UINT32_MAX) {
        uint32_t i = a->free_blk;
        a->free_blk = a->blks[i].next_free;
        return i;
    }
    if (a->nblks == a->capblks) {
        a->capblks = a->capblks ? a->capblks * 2 : 4096;
        a->blks = tr_xrealloc(a->blks, (size_t)a->capblks * sizeof *a->blks);
    }
    return a->nblks++;
}

static void blk_release(analysis *a, uint32_t i)
{
    a->blks[i].next_free = a->free_blk;
    a->free_blk = i;
}

/* The variance factor of an item of this weight: weight * (weight - 1). */
static inline double hvar(uint32_t weight)
{
    return (double)weight * (double)(weight - 1);
}

/* Which half of the tracked addresses p is in: a bit of a hash of the
 * address unlike the tracker's (murmur3's finalizer), so the halves split
 * the tracked addresses at random whatever their sizes. */
static inline uint8_t heap_half(uint64_t p)
{
    p ^= p >> 33;
    p *= 0xff51afd7ed558ccdull;
    p ^= p >> 33;
    p *= 0xc4ceb9fe1a85ec53ull;
    p ^= p >> 33;
    return (uint8_t)(p & 1);
}

/* A sampled block (weight > 1) enters (sign 1) or leaves (-1) the live
 * heap: its half's live bytes and the sums of sizes squared. */
static inline void heap_sampled(analysis *a, const blk *b, int sign)
{
    if (b->weight <= 1)
        return;
    sampling *m = &a->smp;
    double sq = (double)b->size * (double)b->size * sign;
    m->half_live[b->half] += sign * (int64_t)(b->size * b->weight);
    m->half_sq[b->half] += sq;
    m->live_sq += sq;
    m->live_sampled += (uint64_t)(int64_t)sign;
}

/* Sampled mode, after a change of the live bytes at t: each half's
 * estimate (its sampled blocks at twice their weight, the large ones as
 * they are) and, at a new high of one, the other's estimate then. */
static void halves_peak(analysis *a, uint64_t t)
{
    sampling *m = &a->smp;
    double v2 = hvar(2 * (uint32_t)a->in->sample_every);
    for (int h = 0; h < 2; h++) {
        int64_t est = a->live + m->half_live[h] - m->half_live[1 - h];
        if (m->seen[h] && est <= m->half_max[h])
            continue;
        m->seen[h] = true;
        m->half_max[h] = est;
        m->cross[h] = a->live + m->half_live[1 - h] - m->half_live[h];
        m->cross_var[h] = v2 * (m->half_sq[1 - h] > 0 ? m->half_sq[1 - h] : 0);
        m->cross_time[h] = t;
    }
}

static void live_add(analysis *a, int64_t d, uint64_t t)
{
    a->live += d;
    if (a->estimated)
        halves_peak(a, t);
    if (a->live > a->peak) {
        a->peak = a->live;
        a->peak_time = t;
        a->peak_epoch++;
    }
    uint64_t b = t / a->bucket_ns;
    if (b >= NBUCKETS)
        b = NBUCKETS - 1;
    if (a->live > a->tl_max[b])
        a->tl_max[b] = a->live;
    a->tl_last[b] = a->live;
}

/* Stack site's owned bytes change by d (before live_add of the same
 * change): the first change since the last new peak saves what it held at
 * that peak. Site 0 (no stack) is a sink like any other. */
static inline void owned_add(analysis *a, uint32_t site, int64_t d)
{
    site_stat *s = &a->sites[site];
    if (s->epoch != a->peak_epoch) {
        s->at_peak = s->owned;
        s->epoch = a->peak_epoch;
    }
    s->owned += d;
}

static uint32_t site_of(const analysis *a, const ht_event *e, uint32_t thread)
{
    if (!e->stack)
        return 0;
    const tr_file *f = a->in->files[thread];
    return e->stack <= f->nstack_ids ? f->site_of[e->stack] : 0;
}

/* Before in the top chains: copied more, or as much and made earlier (the
 * list does not depend on the pointer map's order). */
static inline bool chain_before(const chain *x, const chain *y)
{
    return x->copied > y->copied || (x->copied == y->copied && x->seq < y->seq);
}

static void chain_end(analysis *a, const blk *b)
{
    if (!b->reallocs)
        return;
    a->chains++;
    a->chain_len_hist[log2_bucket(b->reallocs)]++;
    chain c = { b->copied, b->first_size, b->size, b->seq, b->thread, b->site, b->reallocs, b->moves };
    uint32_t n = a->ntop_chains;
    if (n == TOP && !chain_before(&c, &a->top_chains[n - 1]))
        return;
    if (n < TOP)
        a->ntop_chains++;
    uint32_t i = a->ntop_chains - 1;
    while (i > 0 && chain_before(&c, &a->top_chains[i - 1])) {
        a->top_chains[i] = a->top_chains[i - 1];
        i--;
    }
    a->top_chains[i] = c;
}

/* Thread th frees block bi (a free, or a realloc giving it up): a
 * temporary allocation when the thread's last allocating call made it, with
 * no other free since (heaptrack's rule, in the thread's own order). Not
 * counted in sampled mode (the calls between are not all recorded). */
static void free_in_thread(analysis *a, uint32_t bi, uint32_t th)
{
    const blk *b = &a->blks[bi];
    if (a->last_seq[th] == b->seq && !a->estimated) {
        a->temporary += b->weight;
        a->sites[b->owner].temporary += b->weight;
    }
    a->last_seq[th] = 0;
}

/* A block ends (free or realloc to 0) at time t in thread th. */
static void block_freed(analysis *a, uint32_t bi, uint64_t t, uint32_t th)
{
    blk *b = &a->blks[bi];
    uint64_t life = t > b->t_alloc ? t - b->t_alloc : 0;
    a->frees += b->weight;
    if (!b->partial) {
        a->freed_blocks += b->weight;
        a->life_hist[log2_bucket(life)] += b->weight;
        a->life_sum += (double)life * b->weight;
    }
    uint32_t x = b->thread < MAXT ? b->thread : MAXT - 1, y = th < MAXT ? th : MAXT - 1;
    a->matrix[x * MAXT + y] += b->weight;
    if (b->thread != th)
        a->threads[th].foreign_frees += b->weight;
    if (b->size >= LARGE_BYTES && life < SHORT_NS && !b->partial) {
        a->large_short += b->weight;
        a->large_short_bytes += b->size * b->weight;
    }
    if (b->site) {
        site_stat *s = &a->sites[b->site];
        s->frees += b->weight;
        if (!b->partial) {
            s->lifetimes += b->weight;
            s->lifetime_sum += (double)life * b->weight;
        }
        if (b->size >= LARGE_BYTES && life < SHORT_NS && !b->partial) {
            s->large_short += b->weight;
            s->large_short_bytes += b->size * b->weight;
        }
    }
    heap_sampled(a, b, -1);
    owned_add(a, b->owner, -(int64_t)(b->size * b->weight));
    live_add(a, -(int64_t)(b->size * b->weight), t);
    chain_end(a, b);
    blk_release(a, bi);
}

/* A tracked block leaves the heap figures without a free: a realloc moved
 * it to an untracked address (sampled mode). */
static void block_dropped(analysis *a, uint32_t bi, uint64_t t)
{
    blk *b = &a->blks[bi];
    heap_sampled(a, b, -1);
    owned_add(a, b->owner, -(int64_t)(b->size * b->weight));
    live_add(a, -(int64_t)(b->size * b->weight), t);
    chain_end(a, b);
    blk_release(a, bi);
}

/* A successful call to an allocation function (malloc, calloc, realloc,
 * reallocarray, the aligned ones) asking for size bytes: the figure heaptrack
 * calls "calls to allocation functions" and its bytes, in total and at the
 * call's own site (a realloc's site is where realloc was called, not where
 * the block began). */
static void count_call(analysis *a, const tr_item *it, uint64_t size, uint32_t weight)
{
    uint8_t op = it->e->op <= HT_OP_LAST_CALL ? it->e->op : 0;
    uint32_t site = site_of(a, it->e, it->thread);
    double v = hvar(weight);
    a->calls += weight;
    a->call_kind[op] += weight;
    a->call_bytes += size * weight;
    a->smp.calls += v;
    a->smp.kind[op] += v;
    a->smp.call_bytes += v * (double)size * (double)size;
    if (site) {
        site_stat *s = &a->sites[site];
        s->calls += weight;
        s->kind[op] += weight;
        s->call_bytes += size * weight;
        s->var_calls += v;
        s->var_call_bytes += v * (double)size * (double)size;
    }
}

/* An allocating call, in the call figures. */
static void call_alloc(analysis *a, const tr_item *it, uint64_t size, uint32_t weight)
{
    uint32_t site = site_of(a, it->e, it->thread);
    a->allocs += weight;
    a->alloc_bytes += size * weight;
    a->smp.allocs += hvar(weight);
    a->smp.alloc_bytes += hvar(weight) * (double)size * (double)size;
    if (weight > 1 && site) {
        a->sites[site].small_calls++;
        a->sites[site].small_bytes += (double)size;
    }
    if (weight > 1) {
        a->smp.small_calls++;
        a->smp.small_bytes += (double)size;
    }
    a->threads[it->thread].alloc_bytes += size * weight;
    a->size_hist[log2_bucket(size)] += weight;
    a->size_hist_bytes[log2_bucket(size)] += size * weight;
    if (size <= SMALL_BYTES)
        a->small_allocs += weight;
    if (size >= LARGE_BYTES)
        a->large_allocs += weight;
    if (site) {
        site_stat *s = &a->sites[site];
        s->allocs += weight;
        s->bytes += size * weight;
        if (size <= SMALL_BYTES)
            s->small += weight;
    }
}

/* A new block, in the heap figures. */
static void block_new(analysis *a, const tr_item *it, uint64_t size, uint32_t weight, bool partial)
{
    const ht_event *e = it->e;
    bool live;
    uint64_t *slot = tr_map_slot(&a->ptrs, e->ptr, &live);
    if (live) { /* a free we never saw */
        a->alloc_while_live++;
        block_freed(a, (uint32_t)*slot, it->time, it->thread);
    }
    uint32_t bi = blk_new(a);
    blk *b = &a->blks[bi];
    uint32_t site = site_of(a, e, it->thread);
    *b = (blk){ .size = size, .t_alloc = it->time, .first_size = size, .thread = it->thread,
                .site = site, .owner = site, .weight = weight, .partial = partial, .seq = ++a->seq,
                .half = heap_half(e->ptr) };
    heap_sampled(a, b, 1);
    a->last_seq[it->thread] = b->seq;
    *slot = bi;
    owned_add(a, site, (int64_t)(size * weight));
    live_add(a, (int64_t)(size * weight), it->time);
}

static void analysis_init(analysis *a, tr_instance *in)
{
    memset(a, 0, sizeof *a);
    a->in = in;
    a->free_blk = UINT32_MAX;
    a->bucket_ns = in->last_time / NBUCKETS + 1;
    for (int i = 0; i < NBUCKETS; i++)
        a->tl_max[i] = a->tl_last[i] = -1;
    tr_map_init(&a->ptrs);
    a->matrix = calloc(MAXT * MAXT, sizeof *a->matrix);
    a->threads = calloc(in->nfiles ? in->nfiles : 1, sizeof *a->threads);
    a->sites = calloc(in->nsites ? in->nsites : 1, sizeof *a->sites);
    if (!a->matrix || !a->threads || !a->sites)
        tr_die(1, "out of memory");
    a->estimated = in->mode == HT_MODE_SAMPLED;
    a->pending = tr_xmalloc((in->nfiles ? in->nfiles : 1) * sizeof *a->pending);
    a->last_seq = calloc(in->nfiles ? in->nfiles : 1, sizeof *a->last_seq);
    if (!a->last_seq)
        tr_die(1, "out of memory");
}

/* The roles of one record (trace_format.h): in full mode every record has
 * every role and weight 1. */
typedef struct roles {
    bool sampled;      /* the instance is a sampled trace */
    uint32_t weight;   /* how many calls or blocks the record stands for */
    bool call;         /* in the call figures */
    bool tracked;      /* its ptr is in the heap figures */
    bool old_tracked;  /* a realloc's old pointer is in the heap figures */
} roles;

static roles roles_of(const analysis *a, const ht_event *e)
{
    bool sampled = a->in->mode == HT_MODE_SAMPLED;
    return (roles){
        .sampled = sampled,
        .weight = (e->flags & HT_EV_SAMPLED) ? (uint32_t)a->in->sample_every : 1,
        .call = !sampled || (e->flags & HT_EV_CALL),
        .tracked = !sampled || (e->flags & HT_EV_BLOCK),
        .old_tracked = !sampled || (e->flags & HT_EV_OLD_BLOCK),
    };
}

/* An allocating call (not realloc). */
static void analyse_alloc(analysis *a, const tr_item *it, roles r)
{
    const ht_event *e = it->e;
    if (!e->ptr) {
        a->failed += r.call ? r.weight : 0;
        return;
    }
    if (r.call) {
        count_call(a, it, e->size, r.weight);
        call_alloc(a, it, e->size, r.weight);
    }
    if (r.tracked)
        block_new(a, it, e->size, r.weight, false);
}

static void analyse_free(analysis *a, const tr_item *it, roles r)
{
    const ht_event *e = it->e;
    uint64_t bi;
    if (e->ptr && r.call) {
        a->call_frees += r.weight;
        a->smp.call_frees += hvar(r.weight);
    }
    if (!e->ptr)
        a->free_null++;
    else if (!r.tracked)
        return;
    else if (tr_map_take(&a->ptrs, e->ptr, &bi)) {
        free_in_thread(a, (uint32_t)bi, it->thread);
        block_freed(a, (uint32_t)bi, it->time, it->thread);
    }
    else
        a->unmatched_frees++;
}

/* A realloc gives up its old block: taken out of the map until its result. */
static void analyse_realloc_old(analysis *a, const tr_item *it, roles r)
{
    uint64_t bi;
    a->pending[it->thread] = UINT32_MAX;
    if (!r.old_tracked)
        return;
    if (tr_map_take(&a->ptrs, it->e->aux, &bi))
        a->pending[it->thread] = (uint32_t)bi;
    else
        a->unmatched_reallocs++;
}

/* A realloc's result without a known old block: realloc(NULL, n); a
 * realloc of a block never seen (full mode: counted as an allocation); or
 * of an untracked block. */
static void realloc_without_block(analysis *a, const tr_item *it, roles r)
{
    const ht_event *e = it->e;
    if (e->ptr) {
        if (r.call && (!e->aux || !r.sampled))
            call_alloc(a, it, e->size, r.weight);
        if (r.tracked)
            block_new(a, it, e->size, r.weight, r.sampled && e->aux);
    } else if (e->size && r.call) {
        a->failed += r.weight;
    }
}

/* A realloc of tracked block b to size bytes: its growth counts as
 * allocated, at the old block's weight (the tracked sample is of the old
 * addresses), whether or not the new address is tracked. */
static void realloc_growth(analysis *a, const blk *b, uint64_t size, uint32_t thread)
{
    if (size <= b->size)
        return;
    a->alloc_bytes += (size - b->size) * b->weight;
    a->threads[thread].alloc_bytes += (size - b->size) * b->weight;
    a->smp.alloc_bytes += hvar(b->weight) * (double)(size - b->size) * (double)(size - b->size);
}

/* Block bi resized by a realloc to e->size at e->ptr (moved when that is
 * not the old pointer): its chain, its site and the live bytes. */
static void realloc_block(analysis *a, const tr_item *it, roles r, uint32_t bi)
{
    const ht_event *e = it->e;
    blk *b = &a->blks[bi];
    uint64_t old;
    if (tr_map_take(&a->ptrs, e->ptr, &old)) {
        a->alloc_while_live++;
        block_freed(a, (uint32_t)old, it->time, it->thread);
        b = &a->blks[bi];
    }
    free_in_thread(a, bi, it->thread); /* heaptrack: a realloc frees, then allocates */
    b->seq = ++a->seq;
    a->last_seq[it->thread] = b->seq;
    b->reallocs++;
    if (e->ptr != e->aux) {
        uint64_t c = b->size < e->size ? b->size : e->size;
        b->moves++;
        b->copied += c;
        if (!r.sampled) {
            a->chain_moves += r.weight;
            a->chain_copied += c * r.weight;
        }
    }
    a->chain_reallocs += r.weight;
    if (b->site) {
        a->sites[b->site].reallocs += r.weight;
        a->sites[b->site].moves += e->ptr != e->aux ? r.weight : 0;
        a->sites[b->site].copied += e->ptr != e->aux ? (b->size < e->size ? b->size : e->size) * r.weight : 0;
    }
    owned_add(a, b->owner, -(int64_t)(b->size * b->weight));
    b->owner = site_of(a, e, it->thread); /* heaptrack: the new block is the realloc call's */
    owned_add(a, b->owner, (int64_t)(e->size * r.weight));
    realloc_growth(a, b, e->size, it->thread);
    heap_sampled(a, b, -1);
    int64_t d = (int64_t)(e->size * r.weight) - (int64_t)(b->size * b->weight);
    b->size = e->size;
    b->weight = r.weight;
    b->half = heap_half(e->ptr);
    heap_sampled(a, b, 1);
    live_add(a, d, it->time);
    tr_map_put(&a->ptrs, e->ptr, bi);
}

/* A realloc's result. */
static void analyse_realloc_new(analysis *a, const tr_item *it, roles r)
{
    const ht_event *e = it->e;
    uint32_t bi = e->aux ? a->pending[it->thread] : UINT32_MAX;
    if (r.call && e->ptr)
        count_call(a, it, e->size, r.weight);
    /* sampled: moves and bytes copied from the drawn calls (a moved
     * block rarely lands on a tracked address) */
    if (r.sampled && r.call && e->aux && e->ptr && e->ptr != e->aux) {
        a->chain_moves += r.weight;
        a->chain_copied += (e->old_size < e->size ? e->old_size : e->size) * r.weight;
    }
    if (bi == UINT32_MAX)
        realloc_without_block(a, it, r);
    else if (!e->ptr && e->size) { /* failed: the old block lives on */
        a->failed += r.call ? r.weight : 0;
        tr_map_put(&a->ptrs, e->aux, bi);
    } else if (!e->ptr) { /* realloc(p, 0) freed it */
        free_in_thread(a, bi, it->thread);
        block_freed(a, bi, it->time, it->thread);
    }
    else if (!r.tracked) { /* moved to an untracked address */
        realloc_growth(a, &a->blks[bi], e->size, it->thread);
        block_dropped(a, bi, it->time);
    }
    else
        realloc_block(a, it, r, bi);
}

/* Before in the list of blocks never freed: larger, or as large and
 * allocated earlier (the list does not depend on the pointer map's order). */
static inline bool leak_before(const blk *x, const blk *y)
{
    return x->size > y->size || (x->size == y->size && x->seq < y->seq);
}

/* The TOP largest blocks never freed, largest first. */
static void leak_insert(analysis *a, const blk *b)
{
    uint32_t n = a->nleaks;
    if (n == TOP && !leak_before(b, &a->leaks[n - 1]))
        return;
    if (n < TOP)
        a->nleaks++;
    uint32_t k = a->nleaks - 1;
    while (k > 0 && leak_before(b, &a->leaks[k - 1])) {
        a->leaks[k] = a->leaks[k - 1];
        k--;
    }
    a->leaks[k] = *b;
}

/* What is still live at the end: never freed. */
static void count_never_freed(analysis *a)
{
    for (uint64_t i = 0; i <= a->ptrs.mask; i++) {
        if (!a->ptrs.e[i].key)
            continue;
        blk *b = &a->blks[a->ptrs.e[i].val];
        a->live_blocks_end += b->weight;
        a->live_bytes_end += b->size * b->weight;
        chain_end(a, b);
        if (b->site) {
            a->sites[b->site].live_blocks += b->weight;
            a->sites[b->site].live_bytes += b->size * b->weight;
            a->sites[b->site].var_live += hvar(b->weight) * (double)b->size * (double)b->size;
            a->sites[b->site].live_sampled += b->weight > 1;
        }
        a->sites[b->owner].owned_blocks_end += b->weight;
        a->sites[b->owner].var_owned += hvar(b->weight) * (double)b->size * (double)b->size;
        a->sites[b->owner].owned_sampled += b->weight > 1;
        leak_insert(a, b);
    }
    /* the sites unchanged since the last peak hold now what they held then */
    for (uint32_t si = 0; si < (a->in->nsites ? a->in->nsites : 1); si++)
        if (a->sites[si].epoch != a->peak_epoch) {
            a->sites[si].at_peak = a->sites[si].owned;
            a->sites[si].epoch = a->peak_epoch;
        }
}

/* One pass over the instance's merged events, then what is left live. */
static void analyse(analysis *a, tr_instance *in)
{
    analysis_init(a, in);
    tr_walk w;
    tr_walk_init(&w, in);
    tr_item it;
    while (tr_walk_next(&w, &it)) {
        const ht_event *e = it.e;
        roles r = roles_of(a, e);
        if (it.kind != TR_REALLOC_OLD && r.call) {
            a->ops[e->op] += r.weight;
            a->smp.ops[e->op] += hvar(r.weight);
            a->threads[it.thread].ops[e->op] += r.weight;
        }
        switch (it.kind) {
        case TR_ALLOC: analyse_alloc(a, &it, r); break;
        case TR_FREE: analyse_free(a, &it, r); break;
        case TR_REALLOC_OLD: analyse_realloc_old(a, &it, r); break;
        case TR_REALLOC_NEW: analyse_realloc_new(a, &it, r); break;
        default: break;
        }
    }
    tr_walk_done(&w);
    free(a->pending);
    a->pending = NULL;
    count_never_freed(a);
}

static void analysis_free(analysis *a)
{
    tr_map_free(&a->ptrs);
    free(a->blks);
    free(a->matrix);
    free(a->threads);
    free(a->sites);
    for (uint32_t i = 0; i < a->nmsites; i++) {
        free(a->msites[i].function);
        free(a->msites[i].module);
        free(a->msites[i].source);
    }
    free(a->msites);
    free(a->next_stack);
    free(a->last_seq);
}

/* ---- JSON ------------------------------------------------------------------ */

/* A JSON string: runs of plain characters written at once. */
static void jstr(FILE *f, const char *s)
{
    putc_unlocked('"', f);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c != '"' && c != '\\' && c >= 0x20)
            continue;
        fwrite(run, 1, (size_t)(s - run), f);
        if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else {
            putc_unlocked('\\', f);
            putc_unlocked((int)c, f);
        }
        run = s + 1;
    }
    fwrite(run, 1, (size_t)(s - run), f);
    putc_unlocked('"', f);
}

/* A list element: the comma (unless first) and the number, without printf
 * (the timelines and histograms are most of the output). */
static void jnum(FILE *f, bool first, int64_t v)
{
    char buf[24], *e = buf + sizeof buf, *d = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do
        *--d = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--d = '-';
    if (!first)
        *--d = ',';
    fwrite(d, 1, (size_t)(e - d), f);
}

static void human_bytes(char *buf, size_t n, double v)
{
    const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int k = 0;
    while (v >= 1024 && k < 4) {
        v /= 1024;
        k++;
    }
    snprintf(buf, n, k ? "%.1f %s" : "%.0f %s", v, u[k]);
}

static void human_count(char *buf, size_t n, double v)
{
    if (v >= 1e9)
        snprintf(buf, n, "%.2f G", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, n, "%.2f M", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, n, "%.1f K", v / 1e3);
    else
        snprintf(buf, n, "%.0f", v);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* The name the program was run by (exe may be a link's target, as
 * redis-server's is redis-check-rdb on Debian). */
static const char *inst_name(const tr_instance *in)
{
    return in->comm && *in->comm ? in->comm : base_name(in->exe);
}

static void site_frames(FILE *f, tr_symbolizer *sym, const tr_site *s)
{
    char buf[512];
    fprintf(f, "[");
    for (uint32_t k = 0; k < s->nframes; k++) {
        if (k)
            fprintf(f, ",");
        jstr(f, tr_symbolize(sym, s->frames[k], buf, sizeof buf));
    }
    fprintf(f, "]");
}

static uint64_t site_key(const site_stat *s, int key)
{
    switch (key) {
    case 0: return s->call_bytes;
    case 1: return s->calls;
    case 2: return s->live_bytes;
    case 3: return s->small;
    case 4: return s->large_short;
    default: return s->copied;
    }
}

/* A running selection of the k largest: order[] holds the items and val[]
 * their values, *n of them, largest first (ties: the earlier item first).
 * Item i of value v goes in if there is room or it beats the last. A
 * selection, not a sort of every item. */
static void top_keep(uint32_t *order, uint64_t *val, uint32_t *n, uint32_t k, uint32_t i, uint64_t v)
{
    if (*n == k && v <= val[*n - 1])
        return;
    uint32_t j = *n < k ? (*n)++ : *n - 1;
    while (j > 0 && val[j - 1] < v) {
        order[j] = order[j - 1];
        val[j] = val[j - 1];
        j--;
    }
    order[j] = i;
    val[j] = v;
}

/* The TOP sites by a key into order, largest first (ties: the lower index
 * first); returns how many (all sites, when fewer). A selection, not a
 * sort of every site. */
static uint32_t top_by(const analysis *a, int key, uint32_t *order)
{
    uint32_t n = a->in->nsites > 1 ? a->in->nsites - 1 : 0, m = 0;
    uint64_t val[TOP];
    for (uint32_t si = 1; si <= n; si++)
        top_keep(order, val, &m, TOP, si, site_key(&a->sites[si], key));
    return m;
}

/* The calls per operation, as a JSON object {"malloc":N,...} (operations
 * with none left out). */
static void write_ops(FILE *f, const uint64_t *ops)
{
    fprintf(f, "{");
    for (int op = 1, first = 1; op <= HT_OP_LAST_CALL; op++)
        if (ops[op]) {
            fprintf(f, "%s\"%s\":%" PRIu64, first ? "" : ",", tr_op_name((uint8_t)op), ops[op]);
            first = 0;
        }
    fprintf(f, "}");
}

static void ci95(FILE *f, bool first, const char *name, double est, double var);

#define MIN_DRAWS 4u

/* Sampled mode: ,"ci95":{...} of a site's calls, bytes asked for and bytes
 * never freed (named `left`: live_bytes or leaked); its peak has none
 * (README, "The report"). As for the totals (write_sampling), the
 * variance of what is left counts at least MIN_DRAWS sampled blocks, the
 * missing ones of the mean size of the site's drawn small calls. */
static void site_ci95(FILE *f, const analysis *a, double calls, double var_calls, double bytes,
                      double var_bytes, const char *left, double leaked, double var_leaked,
                      uint64_t left_sampled, uint64_t small_calls, double small_bytes)
{
    if (!a->estimated)
        return;
    if (left_sampled < MIN_DRAWS && small_calls) {
        double mean = small_bytes / (double)small_calls;
        var_leaked += hvar((uint32_t)a->in->sample_every) * (double)(MIN_DRAWS - left_sampled) * mean * mean;
    }
    fprintf(f, ",\"ci95\":{");
    ci95(f, true, "calls", calls, var_calls);
    ci95(f, false, "bytes", bytes, var_bytes);
    ci95(f, false, left, leaked, var_leaked);
    fprintf(f, "}");
}

/* The top sites by one key, as a JSON list. */
static void top_sites(FILE *f, const analysis *a, tr_symbolizer *sym, int key, uint32_t *order,
                      const char *name)
{
    uint32_t n = top_by(a, key, order);
    fprintf(f, ",\"%s\":[", name);
    for (uint32_t i = 0, shown = 0; i < n && shown < TOP; i++) {
        const site_stat *s = &a->sites[order[i]];
        if (!site_key(s, key))
            break;
        fprintf(f, "%s{\"site\":%u,\"calls\":%" PRIu64 ",\"kinds\":", shown ? "," : "", order[i], s->calls);
        write_ops(f, s->kind);
        fprintf(f, ",\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 ",\"block_bytes\":%" PRIu64 ",\"frees\":%" PRIu64
                   ",\"live_blocks\":%" PRIu64 ",\"live_bytes\":%" PRIu64 ",\"small_allocs\":%" PRIu64
                   ",\"short_lived_large\":%" PRIu64 ",\"reallocs\":%" PRIu64 ",\"moves\":%" PRIu64
                   ",\"copied_bytes\":%" PRIu64 ",\"mean_lifetime_ns\":%.0f,\"frames\":",
                s->call_bytes, s->allocs, s->bytes, s->frees, s->live_blocks, s->live_bytes,
                s->small, s->large_short, s->reallocs, s->moves, s->copied,
                s->lifetimes ? s->lifetime_sum / (double)s->lifetimes : 0.0);
        site_frames(f, sym, &a->in->sites[order[i]]);
        site_ci95(f, a, (double)s->calls, s->var_calls, (double)s->call_bytes, s->var_call_bytes, "live_bytes",
                  (double)s->live_bytes, s->var_live, s->live_sampled, s->small_calls, s->small_bytes);
        fprintf(f, "}");
        shown++;
    }
    fprintf(f, "]");
}

/* A frame's name is in an allocator's library (the tracker's included). */
static bool in_allocator(const char *name)
{
    return strstr(name, "libhaktrack") || strstr(name, "libjemalloc") || strstr(name, "libmimalloc") ||
           strstr(name, "libtcmalloc") || strstr(name, "libhakmem");
}

/* The index of the frame that called the allocator: the first one not in an
 * allocator's library (the first frame when all are). */
static uint32_t caller_frame(tr_symbolizer *sym, const tr_site *s)
{
    char buf[512];
    for (uint32_t k = 0; k < s->nframes; k++)
        if (!in_allocator(tr_symbolize(sym, s->frames[k], buf, sizeof buf)))
            return k;
    return 0;
}

/* The function that called the allocator (first frame not in an allocator's
 * library), for hint text. */
static const char *site_caller(tr_symbolizer *sym, const tr_site *s, char *buf, size_t n)
{
    return s->nframes ? tr_symbolize(sym, s->frames[caller_frame(sym, s)], buf, n) : "?";
}

/* A frame's name without its offset: "func+0x1a (mod)" -> func, mod;
 * "mod+0x1234" and "0x7f..." (no symbol) stay whole, module "". */
/* A frame's name as tr_symbolize writes it ("fn+0x1c (module) at file:line,
 * inlined: ...", "module+0x1c", "0x1c") split into the function, the
 * module and the source (file:line of the call, "" when unknown). */
static void frame_function(const char *name, char *fn, size_t fnn, char *mod, size_t modn, char *src, size_t srcn)
{
    const char *at = strstr(name, " at ");
    size_t len = at ? (size_t)(at - name) : strlen(name);
    src[0] = 0;
    if (at) {
        const char *inl = strstr(at, ", inlined:");
        snprintf(src, srcn, "%.*s", (int)(inl ? inl - at - 4 : (ptrdiff_t)strlen(at + 4)), at + 4);
    }
    const char *paren = memmem(name, len, " (", 2);
    const char *off = paren ? memmem(name, (size_t)(paren - name), "+0x", 3) : NULL;
    mod[0] = 0;
    if (!paren || !off) {
        snprintf(fn, fnn, "%.*s", (int)len, name);
        return;
    }
    snprintf(fn, fnn, "%.*s", (int)(off - name), name);
    const char *end = memchr(paren, ')', len - (size_t)(paren - name));
    snprintf(mod, modn, "%.*s", (int)(end ? end - paren - 2 : (ptrdiff_t)(len - (size_t)(paren - name) - 2)), paren + 2);
}

static uint64_t str_hash(const char *s, uint64_t h)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* The allocation sites: each stack joins the site of its caller frame's
 * function; each caller address is named once. Sums the stacks' figures. */
static void merge_sites(analysis *a, tr_symbolizer *sym)
{
    const tr_instance *in = a->in;
    uint32_t n = in->nsites > 1 ? in->nsites - 1 : 0, cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    uint32_t *slots = tr_xmalloc(cap * sizeof *slots); /* msite index + 1, 0 empty */
    memset(slots, 0, cap * sizeof *slots);
    a->msites = tr_xmalloc((n ? n : 1) * sizeof *a->msites);
    a->next_stack = tr_xmalloc((in->nsites ? in->nsites : 1) * sizeof *a->next_stack);
    tr_map by_addr; /* caller address -> msite index + 1 */
    tr_map_init(&by_addr);
    char name[1024], fn[512], mod[256], src[512];
    for (uint32_t si = 1; si <= n; si++) {
        const tr_site *st = &in->sites[si];
        uint64_t addr = st->nframes ? st->frames[caller_frame(sym, st)] : 1;
        uint64_t *v = tr_map_get(&by_addr, addr);
        uint32_t m;
        if (v) {
            m = (uint32_t)*v - 1;
        } else {
            frame_function(st->nframes ? tr_symbolize(sym, addr, name, sizeof name) : "?", fn, sizeof fn, mod,
                           sizeof mod, src, sizeof src);
            uint32_t h = (uint32_t)str_hash(src, str_hash(mod, str_hash(fn, 0xcbf29ce484222325ull))) & (cap - 1);
            while (slots[h] && (strcmp(a->msites[slots[h] - 1].function, fn) != 0 ||
                                strcmp(a->msites[slots[h] - 1].module, mod) != 0 ||
                                strcmp(a->msites[slots[h] - 1].source, src) != 0))
                h = (h + 1) & (cap - 1);
            if (!slots[h]) {
                msite *ms = &a->msites[a->nmsites];
                *ms = (msite){ .function = strdup(fn), .module = strdup(mod), .source = strdup(src), .first_stack = 0 };
                if (!ms->function || !ms->module || !ms->source)
                    tr_die(1, "out of memory");
                slots[h] = ++a->nmsites;
            }
            m = slots[h] - 1;
            tr_map_put(&by_addr, addr, m + 1);
        }
        msite *ms = &a->msites[m];
        const site_stat *s = &a->sites[si];
        ms->calls += s->calls;
        for (int op = 0; op <= HT_OP_LAST_CALL; op++)
            ms->kind[op] += s->kind[op];
        ms->call_bytes += s->call_bytes;
        ms->peak += s->at_peak;
        ms->leaked += s->owned;
        ms->leaked_blocks += s->owned_blocks_end;
        ms->temporary += s->temporary;
        ms->var_calls += s->var_calls;
        ms->var_call_bytes += s->var_call_bytes;
        ms->var_leaked += s->var_owned;
        ms->small_calls += s->small_calls;
        ms->small_bytes += s->small_bytes;
        ms->owned_sampled += s->owned_sampled;
        a->next_stack[si] = ms->first_stack;
        ms->first_stack = si;
        ms->nstacks++;
    }
    tr_map_free(&by_addr);
    free(slots);
}

/* The figure of an allocation site (or a stack, for its stacks) that a
 * table ranks by. */
enum { MS_CALLS, MS_BYTES, MS_PEAK, MS_LEAKED, MS_TEMPORARY, MS_NKEYS };
static const char *const ms_table[MS_NKEYS] = { "by_calls", "by_bytes", "by_peak", "by_leaked", "by_temporary" };

static int64_t msite_key(const msite *m, int key)
{
    switch (key) {
    case MS_CALLS: return (int64_t)m->calls;
    case MS_BYTES: return (int64_t)m->call_bytes;
    case MS_PEAK: return m->peak;
    case MS_TEMPORARY: return (int64_t)m->temporary;
    default: return m->leaked;
    }
}

static int64_t stack_key(const site_stat *s, int key)
{
    switch (key) {
    case MS_CALLS: return (int64_t)s->calls;
    case MS_BYTES: return (int64_t)s->call_bytes;
    case MS_PEAK: return s->at_peak;
    case MS_TEMPORARY: return (int64_t)s->temporary;
    default: return s->owned;
    }
}

#define MS_STACKS 3 /* stacks shown beneath an allocation site */

/* The stacks of allocation site m with the most of key, largest first (at
 * most k into order); how many. */
static uint32_t top_stacks(const analysis *a, const msite *m, int key, uint32_t *order, uint32_t k)
{
    uint32_t n = 0;
    uint64_t val[MS_STACKS];
    for (uint32_t si = m->first_stack; si; si = a->next_stack[si]) {
        int64_t v = stack_key(&a->sites[si], key);
        if (v > 0)
            top_keep(order, val, &n, k < MS_STACKS ? k : MS_STACKS, si, (uint64_t)v);
    }
    return n;
}


/* The allocation sites with the most of each figure: "allocation_sites". */
static void write_allocation_sites(FILE *f, const analysis *a, tr_symbolizer *sym)
{
    fprintf(f, ",\"allocation_sites\":{\"count\":%u", a->nmsites);
    for (int key = 0; key < MS_NKEYS; key++) {
        uint32_t order[TOP], m = 0;
        uint64_t val[TOP];
        for (uint32_t i = 0; i < a->nmsites; i++) {
            int64_t v = msite_key(&a->msites[i], key);
            if (v > 0)
                top_keep(order, val, &m, TOP, i, (uint64_t)v);
        }
        fprintf(f, ",\"%s\":[", ms_table[key]);
        for (uint32_t i = 0; i < m; i++) {
            const msite *ms = &a->msites[order[i]];
            fprintf(f, "%s{\"function\":", i ? "," : "");
            jstr(f, ms->function);
            fprintf(f, ",\"module\":");
            jstr(f, ms->module);
            fprintf(f, ",\"source\":");
            if (*ms->source)
                jstr(f, ms->source);
            else
                fprintf(f, "null");
            fprintf(f, ",\"calls\":%" PRIu64 ",\"kinds\":", ms->calls);
            write_ops(f, ms->kind);
            fprintf(f, ",\"bytes\":%" PRIu64 ",\"peak\":%" PRId64 ",\"leaked\":%" PRId64
                       ",\"leaked_blocks\":%" PRIu64 ",\"temporary\":%" PRIu64 ",\"stacks\":%u",
                    ms->call_bytes, ms->peak, ms->leaked, ms->leaked_blocks, ms->temporary, ms->nstacks);
            site_ci95(f, a, (double)ms->calls, ms->var_calls, (double)ms->call_bytes, ms->var_call_bytes,
                      "leaked", (double)ms->leaked, ms->var_leaked, ms->owned_sampled, ms->small_calls,
                      ms->small_bytes);
            fprintf(f, ",\"top_stacks\":[");
            uint32_t so[MS_STACKS], ns = top_stacks(a, ms, key, so, MS_STACKS);
            for (uint32_t k = 0; k < ns; k++) {
                const site_stat *s = &a->sites[so[k]];
                fprintf(f, "%s{\"site\":%u,\"calls\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"peak\":%" PRId64
                           ",\"leaked\":%" PRId64 ",\"temporary\":%" PRIu64 ",\"frames\":",
                        k ? "," : "", so[k], s->calls, s->call_bytes, s->at_peak, s->owned, s->temporary);
                site_frames(f, sym, &a->in->sites[so[k]]);
                fprintf(f, "}");
            }
            fprintf(f, "]}");
        }
        fprintf(f, "]");
    }
    fprintf(f, "}");
}

typedef struct hint_list {
    FILE *f;
    int n;
} hint_list;

static void hint(hint_list *h, const char *kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void hint(hint_list *h, const char *kind, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(h->f, "%s{\"kind\":", h->n++ ? "," : "");
    jstr(h->f, kind);
    fprintf(h->f, ",\"text\":");
    jstr(h->f, text);
    fprintf(h->f, "}");
}

/* Hot small-allocation sites (with stacks), or else the share of small
 * allocations. */
static void hint_small(hint_list *h, const analysis *a, tr_symbolizer *sym, uint32_t *order, uint32_t nsites)
{
    char b1[64], b3[512];
    if (nsites) {
        uint32_t n = top_by(a, 3, order);
        for (uint32_t i = 0; i < n && i < 3; i++) {
            const site_stat *s = &a->sites[order[i]];
            if (!a->allocs || s->small * 20 < a->allocs || s->small < 1000)
                break;
            human_count(b1, sizeof b1, (double)s->small);
            hint(h, "hot_small_site",
                 "%s small allocations (<= %d B, %.0f%% of all) come from one call stack, at %s; "
                 "mean size %.0f B, mean lifetime %.1f us: a per-site pool or arena would serve them",
                 b1, SMALL_BYTES, 100.0 * (double)s->small / (double)a->allocs,
                 site_caller(sym, &a->in->sites[order[i]], b3, sizeof b3),
                 s->allocs ? (double)s->bytes / (double)s->allocs : 0.0,
                 s->lifetimes ? s->lifetime_sum / (double)s->lifetimes / 1e3 : 0.0);
        }
    } else if (a->allocs && a->small_allocs * 2 >= a->allocs) {
        hint(h, "hot_small",
             "%.0f%% of allocations are small (<= %d B); record with stacks (--preset overview) "
             "to see the sites",
             100.0 * (double)a->small_allocs / (double)a->allocs, SMALL_BYTES);
    }
}

/* Where most of a hint's figure comes from: prefix and the caller of the
 * top site by key, or "" without sites or when the top site has none. */
static void top_site_where(char *where, size_t n, const analysis *a, tr_symbolizer *sym, uint32_t *order,
                           uint32_t nsites, int key, const char *prefix)
{
    char b3[512];
    where[0] = 0;
    if (nsites && top_by(a, key, order) && site_key(&a->sites[order[0]], key))
        snprintf(where, n, "%s%s", prefix, site_caller(sym, &a->in->sites[order[0]], b3, sizeof b3));
}

static void hint_short_lived_large(hint_list *h, const analysis *a, tr_symbolizer *sym, uint32_t *order,
                                   uint32_t nsites)
{
    char b1[64], b2[64], where[600];
    if (!a->large_short || (a->large_short < 10 && a->large_short * 10 < a->large_allocs))
        return;
    human_count(b1, sizeof b1, (double)a->large_short);
    human_bytes(b2, sizeof b2, (double)a->large_short_bytes);
    top_site_where(where, sizeof where, a, sym, order, nsites, 4, "; most at ");
    hint(h, "short_lived_large",
         "%s blocks of %u KiB or more (%s, %.0f%% of the large ones) lived under 1 ms%s: an "
         "allocator that returns them to the system faults their pages in again on every reuse",
         b1, LARGE_BYTES >> 10, b2, a->large_allocs ? 100.0 * (double)a->large_short / (double)a->large_allocs : 0.0,
         where);
}

static void hint_copying_realloc(hint_list *h, const analysis *a, tr_symbolizer *sym)
{
    char b1[64], b2[64], b3[512];
    if (!a->ntop_chains || a->top_chains[0].moves < 4)
        return;
    const chain *c = &a->top_chains[0];
    human_bytes(b1, sizeof b1, (double)a->chain_copied);
    human_bytes(b2, sizeof b2, (double)c->copied);
    char where[600] = "";
    if (c->site)
        snprintf(where, sizeof where, " at %s", site_caller(sym, &a->in->sites[c->site], b3, sizeof b3));
    hint(h, "copying_realloc_chain",
         "realloc moved blocks %" PRIu64 " times and copied %s in all; the worst chain%s grew "
         "from %" PRIu64 " to %" PRIu64 " bytes in %u reallocs, %u of them moves (%s copied): "
         "growing by a factor, or reserving the final size, avoids the copies",
         a->chain_moves, b1, where, c->first_size, c->last_size, c->reallocs, c->moves, b2);
}

static void hint_cross_thread(hint_list *h, const analysis *a)
{
    char b1[64];
    uint64_t cross = 0, best = 0;
    uint32_t bx = 0, by = 0;
    for (uint32_t x = 0; x < MAXT; x++)
        for (uint32_t y = 0; y < MAXT; y++)
            if (x != y) {
                cross += a->matrix[x * MAXT + y];
                if (a->matrix[x * MAXT + y] > best) {
                    best = a->matrix[x * MAXT + y];
                    bx = x;
                    by = y;
                }
            }
    if (!a->frees || cross * 10 < a->frees)
        return;
    human_count(b1, sizeof b1, (double)cross);
    hint(h, "cross_thread",
         "%s blocks (%.0f%% of frees) are freed by a thread other than the one that allocated "
         "them; the busiest pair is thread %u -> thread %u (%" PRIu64 "): remote frees are "
         "what allocators with per-thread heaps pay for",
         b1, 100.0 * (double)cross / (double)a->frees, bx, by, best);
}

static void hint_never_freed(hint_list *h, const analysis *a, tr_symbolizer *sym, uint32_t *order,
                             uint32_t nsites)
{
    char b1[64], b2[64], where[600];
    if (!a->live_blocks_end)
        return;
    human_count(b1, sizeof b1, (double)a->live_blocks_end);
    human_bytes(b2, sizeof b2, (double)a->live_bytes_end);
    top_site_where(where, sizeof where, a, sym, order, nsites, 2, "; the most from ");
    hint(h, "never_freed", "%s blocks (%s) were never freed before the program ended%s", b1, b2, where);
}

/* The hints, as a JSON list, in this order. */
static void hints(FILE *f, const analysis *a, tr_symbolizer *sym, uint32_t *order)
{
    hint_list h = { f, 0 };
    uint32_t nsites = a->in->nsites > 1 ? a->in->nsites - 1 : 0;
    fprintf(f, ",\"hints\":[");
    hint_small(&h, a, sym, order, nsites);
    hint_short_lived_large(&h, a, sym, order, nsites);
    hint_copying_realloc(&h, a, sym);
    hint_cross_thread(&h, a);
    hint_never_freed(&h, a, sym, order, nsites);
    fprintf(f, "]");
}

static void hist(FILE *f, const char *name, const uint64_t *h)
{
    int last = NHIST - 1;
    while (last > 0 && !h[last])
        last--;
    fprintf(f, ",\"%s\":[", name);
    for (int i = 0; i <= last; i++)
        jnum(f, i == 0, (int64_t)h[i]);
    fprintf(f, "]");
}

/* The median lifetime of freed blocks, as the bounds of its histogram bucket. */
static void median_lifetime(char *med, size_t n, const analysis *a)
{
    uint64_t half = a->freed_blocks / 2, acc = 0;
    snprintf(med, n, "n/a");
    for (int i = 0; i < NHIST && a->freed_blocks; i++) {
        acc += a->life_hist[i];
        if (acc <= half)
            continue;
        double lo = i ? ldexp(1.0, i - 1) : 0, hi = ldexp(1.0, i);
        if (hi < 1e3)
            snprintf(med, n, "%.0f-%.0f ns", lo, hi);
        else if (hi < 1e6)
            snprintf(med, n, "%.1f-%.1f us", lo / 1e3, hi / 1e3);
        else
            snprintf(med, n, "%.1f-%.1f ms", lo / 1e6, hi / 1e6);
        return;
    }
}

/* The peak of live bytes shown: the highest live bytes in full mode; in
 * sampled mode the mean of the two halves' cross estimates (struct
 * sampling), its variance and the time of the higher one. */
static int64_t peak_shown(const analysis *a, double *var, uint64_t *t)
{
    const sampling *m = &a->smp;
    *var = 0;
    *t = a->peak_time;
    if (!a->estimated || !m->seen[0])
        return a->peak;
    int h = m->cross[1] > m->cross[0];
    *var = (m->cross_var[0] + m->cross_var[1]) / 2;
    *t = m->cross_time[h];
    return (m->cross[0] + m->cross[1]) / 2;
}

/* Frees: blocks freed (full mode); in sampled mode the drawn free calls
 * (tracked blocks' frees depend on how often their addresses recur). */
static uint64_t frees_shown(const analysis *a)
{
    return a->estimated ? a->call_frees : a->frees;
}

/* The calls to allocation functions by kind, largest first: "malloc 1.2 M,
 * realloc 30.0 K". */
static void kinds_text(char *buf, size_t n, const uint64_t *kind)
{
    bool done[HT_OP_LAST_CALL + 1] = { false };
    size_t len = 0;
    buf[0] = 0;
    for (;;) {
        int best = 0;
        for (int op = 1; op <= HT_OP_LAST_CALL; op++)
            if (kind[op] && !done[op] && (!best || kind[op] > kind[best]))
                best = op;
        if (!best || len >= n)
            return;
        char c[32];
        human_count(c, sizeof c, (double)kind[best]);
        len += (size_t)snprintf(buf + len, n - len, "%s%s %s", len ? ", " : "", tr_op_name((uint8_t)best), c);
        done[best] = true;
    }
}

static void headline(char *buf, size_t n, const analysis *a)
{
    const tr_instance *in = a->in;
    char calls[32], kinds[256], frees[32], peak[32], leak[32], alloc[32], cp[32], med[64], temp[64] = "";
    human_count(calls, sizeof calls, (double)a->calls);
    kinds_text(kinds, sizeof kinds, a->call_kind);
    human_count(frees, sizeof frees, (double)frees_shown(a));
    double pvar;
    uint64_t ptime;
    human_bytes(peak, sizeof peak, (double)peak_shown(a, &pvar, &ptime));
    human_bytes(leak, sizeof leak, (double)a->live_bytes_end);
    human_bytes(alloc, sizeof alloc, (double)a->alloc_bytes);
    human_bytes(cp, sizeof cp, (double)a->chain_copied);
    median_lifetime(med, sizeof med, a);
    const char *est = a->estimated ? "~" : "";
    if (!a->estimated) { /* temporary allocations: full mode only */
        char t[32];
        human_count(t, sizeof t, (double)a->temporary);
        snprintf(temp, sizeof temp, "%s temporary; ", t);
    }
    snprintf(buf, n,
             "%s (pid %" PRIu64 "): %s%s calls to allocation functions%s%s%s and %s%s frees in %u thread%s over "
             "%.3f s; %s%s allocated; peak live %s at %.3f s; %.0f%% of blocks <= %d B; median lifetime %s; "
             "%s never freed; realloc copied %s",
             inst_name(in), in->pid, est, calls, *kinds ? " (" : "", kinds, *kinds ? ")" : "", est, frees,
             in->nfiles, in->nfiles == 1 ? "" : "s", (double)in->last_time / 1e9, temp, alloc, peak,
             (double)ptime / 1e9,
             a->allocs ? 100.0 * (double)a->small_allocs / (double)a->allocs : 0.0, SMALL_BYTES, med,
             leak, cp);
}

/* The caller of a site as a JSON string, or null for no site. */
static void write_site_caller(FILE *f, tr_symbolizer *sym, const tr_instance *in, uint32_t site)
{
    char buf[512];
    if (site)
        jstr(f, site_caller(sym, &in->sites[site], buf, sizeof buf));
    else
        fprintf(f, "null");
}

/* Which process this is and how it was recorded, its headline. */
static void write_identity(FILE *f, const analysis *a, const char *head)
{
    const tr_instance *in = a->in;
    fprintf(f, "{\"pid\":%" PRIu64 ",\"ppid\":%" PRIu64 ",\"exe\":", in->pid, in->ppid);
    jstr(f, in->exe);
    fprintf(f, ",\"name\":");
    jstr(f, inst_name(in));
    fprintf(f, ",\"fork_child\":%s,\"mode\":\"%s\",\"stacks\":%s,\"estimated\":%s",
            (in->flags & HT_F_FORK_CHILD) ? "true" : "false", in->mode ? "sampled" : "full",
            (in->flags & HT_F_STACKS) ? "true" : "false", a->estimated ? "true" : "false");
    if (in->mode == HT_MODE_SAMPLED)
        fprintf(f, ",\"sample_threshold\":%" PRIu64 ",\"sample_every\":%" PRIu64, in->sample_threshold,
                in->sample_every);
    fprintf(f, ",\"headline\":");
    jstr(f, head);
    fprintf(f, ",\"threads\":%u,\"records\":%" PRIu64 ",\"duration_ns\":%" PRIu64, in->nfiles, in->events,
            in->last_time);
}

/* A figure's 95 % confidence interval from its estimate and variance:
 * "name":[lo,hi], the estimate -+ 1.96 standard deviations (lo at least 0). */
static void ci95(FILE *f, bool first, const char *name, double est, double var)
{
    double h = 1.96 * sqrt(var > 0 ? var : 0), lo = est - h;
    fprintf(f, "%s\"%s\":[%.0f,%.0f]", first ? "" : ",", name, lo > 0 ? lo : 0, est + h);
}

/* ci95 of the figures per operation, as write_ops writes them. */
static void ci95_ops(FILE *f, const char *name, const uint64_t *ops, const double *var)
{
    fprintf(f, ",\"%s\":{", name);
    for (int op = 1, first = 1; op <= HT_OP_LAST_CALL; op++)
        if (ops[op]) {
            ci95(f, first, tr_op_name((uint8_t)op), (double)ops[op], var[op]);
            first = 0;
        }
    fprintf(f, "}");
}

/* Sampled mode: which figures are exact ("exact") and the 95 % interval of
 * each estimated one ("ci95", keyed like the figures). */
static void write_sampling(FILE *f, const analysis *a)
{
    const sampling *m = &a->smp;
    double w = hvar((uint32_t)a->in->sample_every), pvar;
    uint64_t pt;
    int64_t peak = peak_shown(a, &pvar, &pt);
    fprintf(f, ",\"exact\":[\"threads\",\"records\",\"sample_threshold\",\"sample_every\"]"
               ",\"ci95\":{");
    ci95(f, true, "allocation_calls", (double)a->calls, m->calls);
    ci95(f, false, "allocation_call_bytes", (double)a->call_bytes, m->call_bytes);
    ci95(f, false, "allocations", (double)a->allocs, m->allocs);
    ci95(f, false, "frees", (double)a->call_frees, m->call_frees);
    ci95(f, false, "allocated_bytes", (double)a->alloc_bytes, m->alloc_bytes);
    ci95(f, false, "peak_live_bytes", (double)peak, pvar);
    /* What is live at the end is often a few blocks, none drawn: the
     * variance counts at least MIN_DRAWS blocks, the missing ones of the
     * drawn small calls' mean size (with none drawn, the count's interval
     * is then about a Poisson count's, 0 to 3.7 * sample_every). */
    double missing = m->live_sampled < MIN_DRAWS ? (double)(MIN_DRAWS - m->live_sampled) : 0;
    double mean = m->small_calls ? m->small_bytes / m->small_calls : 0;
    double end_var = w * (m->live_sq + missing * mean * mean);
    ci95(f, false, "final_live_bytes", (double)a->live, end_var);
    ci95(f, false, "never_freed_blocks", (double)a->live_blocks_end, w * ((double)m->live_sampled + missing));
    ci95(f, false, "never_freed_bytes", (double)a->live_bytes_end, end_var);
    ci95_ops(f, "ops", a->ops, m->ops);
    ci95_ops(f, "allocation_call_kinds", a->call_kind, m->kind);
    fprintf(f, "}");
}

/* The calls, the totals of the heap figures and the anomalies. */
static void write_totals(FILE *f, const analysis *a)
{
    double pvar;
    uint64_t ptime;
    int64_t peak = peak_shown(a, &pvar, &ptime);
    fprintf(f, ",\"ops\":");
    write_ops(f, a->ops);
    fprintf(f, ",\"allocation_calls\":%" PRIu64 ",\"allocation_call_kinds\":", a->calls);
    write_ops(f, a->call_kind);
    fprintf(f, ",\"allocation_call_bytes\":%" PRIu64, a->call_bytes);
    if (a->estimated)
        fprintf(f, ",\"temporary_allocations\":null");
    else
        fprintf(f, ",\"temporary_allocations\":%" PRIu64, a->temporary);
    fprintf(f, ",\"allocations\":%" PRIu64 ",\"frees\":%" PRIu64 ",\"allocated_bytes\":%" PRIu64
               ",\"peak_live_bytes\":%" PRId64 ",\"peak_time_ns\":%" PRIu64 ",\"final_live_bytes\":%" PRId64
               ",\"never_freed_blocks\":%" PRIu64 ",\"never_freed_bytes\":%" PRIu64 ",\"failed_calls\":%" PRIu64
               ",\"free_null\":%" PRIu64 ",\"unmatched_frees\":%" PRIu64 ",\"unmatched_reallocs\":%" PRIu64
               ",\"allocated_while_live\":%" PRIu64,
            a->allocs, frees_shown(a), a->alloc_bytes, peak, ptime, a->live, a->live_blocks_end,
            a->live_bytes_end, a->failed, a->free_null, a->unmatched_frees, a->unmatched_reallocs,
            a->alloc_while_live);
    if (a->estimated)
        write_sampling(f, a);
}

/* The instance's trace files, one per thread. */
static void write_files(FILE *f, const tr_instance *in)
{
    fprintf(f, ",\"files\":[");
    for (uint32_t i = 0; i < in->nfiles; i++) {
        const tr_file *t = in->files[i];
        fprintf(f, "%s{\"path\":", i ? "," : "");
        jstr(f, base_name(t->path));
        fprintf(f, ",\"thread\":%u,\"tid\":%" PRIu64 ",\"records\":%" PRIu64 ",\"ended\":%s,\"cut_bytes\":%" PRIu64 "}",
                t->h.thread_index, t->h.tid, t->events, t->has_end ? "true" : "false", t->cut_bytes);
    }
    fprintf(f, "]");
}

/* Live bytes over time: the highest in each bucket, forward-filled. */
static void write_timeline(FILE *f, const analysis *a)
{
    fprintf(f, ",\"timeline\":{\"bucket_ns\":%" PRIu64 ",\"max\":[", a->bucket_ns);
    int last = NBUCKETS - 1;
    while (last > 0 && a->tl_last[last] < 0)
        last--;
    int64_t carry = 0;
    for (int i = 0; i <= last; i++) {
        int64_t v = a->tl_max[i] >= 0 ? a->tl_max[i] : carry;
        if (a->tl_last[i] >= 0)
            carry = a->tl_last[i];
        jnum(f, i == 0, v);
    }
    fprintf(f, "]}");
}

static void write_per_thread(FILE *f, const analysis *a)
{
    const tr_instance *in = a->in;
    fprintf(f, ",\"per_thread\":[");
    for (uint32_t i = 0; i < in->nfiles; i++) {
        const thread_stat *t = &a->threads[i];
        fprintf(f, "%s{\"thread\":%u,\"tid\":%" PRIu64 ",\"ops\":", i ? "," : "", i, in->files[i]->h.tid);
        write_ops(f, t->ops);
        fprintf(f, ",\"allocated_bytes\":%" PRIu64 ",\"frees_of_other_threads_blocks\":%" PRIu64 "}",
                t->alloc_bytes, t->foreign_frees);
    }
    fprintf(f, "]");
}

/* Blocks by allocating thread x freeing thread (threads past MAXT - 1
 * folded into the last row and column). */
static void write_cross_thread(FILE *f, const analysis *a)
{
    const tr_instance *in = a->in;
    uint32_t mt = in->nfiles < MAXT ? in->nfiles : MAXT;
    fprintf(f, ",\"cross_thread\":{\"threads\":%u,\"folded_from\":%u,\"matrix\":[", mt,
            in->nfiles > MAXT ? MAXT - 1 : mt);
    for (uint32_t x = 0; x < mt; x++) {
        fprintf(f, "%s[", x ? "," : "");
        for (uint32_t y = 0; y < mt; y++)
            jnum(f, y == 0, (int64_t)a->matrix[x * MAXT + y]);
        fprintf(f, "]");
    }
    fprintf(f, "]}");
}

static void write_realloc_chains(FILE *f, const analysis *a, tr_symbolizer *sym)
{
    fprintf(f, ",\"realloc_chains\":{\"chains\":%" PRIu64 ",\"reallocs\":%" PRIu64 ",\"moves\":%" PRIu64
               ",\"copied_bytes\":%" PRIu64,
            a->chains, a->chain_reallocs, a->chain_moves, a->chain_copied);
    hist(f, "length_hist", a->chain_len_hist);
    fprintf(f, ",\"top\":[");
    for (uint32_t i = 0; i < a->ntop_chains; i++) {
        const chain *c = &a->top_chains[i];
        fprintf(f, "%s{\"thread\":%u,\"first_size\":%" PRIu64 ",\"last_size\":%" PRIu64 ",\"reallocs\":%u"
                   ",\"moves\":%u,\"copied_bytes\":%" PRIu64 ",\"site\":",
                i ? "," : "", c->thread, c->first_size, c->last_size, c->reallocs, c->moves, c->copied);
        write_site_caller(f, sym, a->in, c->site);
        fprintf(f, "}");
    }
    fprintf(f, "]}");
}

static void write_never_freed(FILE *f, const analysis *a, tr_symbolizer *sym)
{
    fprintf(f, ",\"never_freed\":{\"blocks\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"largest\":[",
            a->live_blocks_end, a->live_bytes_end);
    for (uint32_t i = 0; i < a->nleaks; i++) {
        const blk *b = &a->leaks[i];
        fprintf(f, "%s{\"size\":%" PRIu64 ",\"thread\":%u,\"time_ns\":%" PRIu64 ",\"site\":", i ? "," : "",
                b->size, b->thread, b->t_alloc);
        write_site_caller(f, sym, a->in, b->site);
        fprintf(f, "}");
    }
    fprintf(f, "]}");
}

/* Small and large allocations, the call sites and the hints. */
static void write_sites_and_hints(FILE *f, const analysis *a, tr_symbolizer *sym)
{
    const tr_instance *in = a->in;
    fprintf(f, ",\"small_allocations\":%" PRIu64 ",\"large_allocations\":%" PRIu64
               ",\"short_lived_large\":{\"blocks\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
            a->small_allocs, a->large_allocs, a->large_short, a->large_short_bytes);
    uint32_t order[TOP];
    fprintf(f, ",\"sites\":%u", in->nsites ? in->nsites - 1 : 0);
    if (in->nsites > 1) {
        top_sites(f, a, sym, 0, order, "top_sites_by_bytes");
        top_sites(f, a, sym, 1, order, "top_sites_by_count");
        top_sites(f, a, sym, 2, order, "top_sites_never_freed");
        write_allocation_sites(f, a, sym);
    }
    hints(f, a, sym, order);
}

/* One instance's object of trace.json; its headline into head. Without
 * detail, only its identity, totals and files. */
static void write_instance(FILE *f, analysis *a, bool detail, char *head, size_t headn)
{
    tr_symbolizer *sym = tr_symbolizer_new(a->in->maps_path);
    if (detail && a->in->nsites > 1)
        merge_sites(a, sym);
    headline(head, headn, a);
    write_identity(f, a, head);
    write_totals(f, a);
    write_files(f, a->in);
    if (detail) {
        write_timeline(f, a);
        hist(f, "size_hist", a->size_hist);
        hist(f, "size_hist_bytes", a->size_hist_bytes);
        hist(f, "lifetime_hist_ns", a->life_hist);
        fprintf(f, ",\"mean_lifetime_ns\":%.0f", a->freed_blocks ? a->life_sum / (double)a->freed_blocks : 0.0);
        write_per_thread(f, a);
        write_cross_thread(f, a);
        write_realloc_chains(f, a, sym);
        write_never_freed(f, a, sym);
        write_sites_and_hints(f, a, sym);
    }
    fprintf(f, "}");
    tr_symbolizer_free(sym);
}

int report_run(const char *dir, const char *json_path, uint64_t pid, char *head, size_t headn,
               double seconds[2], uint64_t *records)
{
    tr_run run;
    struct timespec t0, t1;
    struct timespec c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    if (!tr_open(dir, &run))
        return 1;
    /* The main instance: the one asked for, else the one with most records. */
    const tr_instance *main_in = tr_pick_instance(&run, pid);
    if (!main_in) {
        tr_close(&run);
        return 2;
    }
    uint32_t main_i = (uint32_t)(main_in - run.inst);
    FILE *f = fopen(json_path, "w");
    static char obuf[1 << 20];
    if (f)
        setvbuf(f, obuf, _IOFBF, sizeof obuf);
    if (!f) {
        fprintf(stderr, "hakmem-trace: %s: cannot write: %s\n", json_path, strerror(errno));
        tr_close(&run);
        return 1;
    }
    uint64_t total = 0, cut = 0, unended = 0;
    for (uint32_t i = 0; i < run.nfiles; i++) {
        total += run.files[i].events;
        cut += run.files[i].cut_bytes;
        unended += !run.files[i].has_end;
    }
    fprintf(f, "{\"schema\":\"hakmem-trace-report/1\",\"dir\":");
    jstr(f, dir);
    fprintf(f, ",\"files\":%u,\"records\":%" PRIu64 ",\"cut_bytes\":%" PRIu64 ",\"files_without_end\":%" PRIu64
               ",\"main\":%u,\"instances\":[",
            run.nfiles, total, cut, unended, main_i);
    char other_head[1024];
    for (uint32_t k = 0; k < run.ninst; k++) {
        analysis a;
        analyse(&a, &run.inst[k]);
        if (k)
            fprintf(f, ",");
        write_instance(f, &a, true, k == main_i ? head : other_head, k == main_i ? headn : sizeof other_head);
        analysis_free(&a);
    }
    fprintf(f, "]}\n");
    bool ok = fflush(f) == 0 && !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        fprintf(stderr, "hakmem-trace: %s: write failed\n", json_path);
        tr_close(&run);
        return 1;
    }
    for (uint32_t i = 0; i < run.nfiles; i++) {
        const tr_file *t = &run.files[i];
        if (t->cut_bytes)
            fprintf(stderr, "hakmem-trace: %s: cut short: %" PRIu64 " bytes after the last complete record were dropped\n",
                    t->path, t->cut_bytes);
        else if (!t->has_end)
            fprintf(stderr, "hakmem-trace: %s: no end record (the thread or program was killed?): read %" PRIu64
                            " records\n", t->path, t->events);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    seconds[0] = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    seconds[1] = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    *records = total;
    tr_close(&run);
    return 0;
}

/* ---- folded stacks ----------------------------------------------------------- */

static const char *const folded_by[] = { "calls", "bytes", "peak", "leaked" };
static const int folded_key[] = { MS_CALLS, MS_BYTES, MS_PEAK, MS_LEAKED };

int report_folded_key(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, folded_by[i]) == 0)
            return i;
    return -1;
}

int report_folded(const char *dir, uint64_t pid, int by, FILE *out)
{
    tr_run run;
    if (!tr_open(dir, &run))
        return 1;
    tr_instance *in = tr_pick_instance(&run, pid);
    if (!in) {
        tr_close(&run);
        return 2;
    }
    if (in->nsites <= 1) {
        fprintf(stderr, "hakmem-trace: %s: process %" PRIu64 " has no call stacks (record with --stacks or "
                        "--preset leaks)\n", dir, in->pid);
        tr_close(&run);
        return 1;
    }
    analysis a;
    analyse(&a, in);
    tr_symbolizer *sym = tr_symbolizer_new(in->maps_path);
    char name[1024], fn[512], mod[256], src[512];
    for (uint32_t si = 1; si < in->nsites; si++) {
        int64_t v = stack_key(&a.sites[si], folded_key[by]);
        const tr_site *st = &in->sites[si];
        if (v <= 0 || !st->nframes)
            continue;
        uint32_t first = caller_frame(sym, st);
        for (uint32_t k = st->nframes; k-- > first;) {
            frame_function(tr_symbolize(sym, st->frames[k], name, sizeof name), fn, sizeof fn, mod, sizeof mod, src,
                           sizeof src);
            for (char *c = fn; *c; c++)
                if (*c == ';' || *c == '\n')
                    *c = ':';
            fputs(fn, out);
            putc(k > first ? ';' : ' ', out);
        }
        fprintf(out, "%" PRId64 "\n", v);
    }
    tr_symbolizer_free(sym);
    analysis_free(&a);
    tr_close(&run);
    return fflush(out) == 0 && !ferror(out) ? 0 : 1;
}

/* ---- diff of two traces ------------------------------------------------------ */

/* One side of a diff: its run, process, figures and allocation sites. */
typedef struct diff_side {
    const char *dir;
    tr_run run;
    tr_instance *in;
    analysis a;
    bool open, analysed;
} diff_side;

static int diff_open(diff_side *d, const char *dir, uint64_t pid)
{
    d->dir = dir;
    if (!tr_open(dir, &d->run))
        return 1;
    d->open = true;
    d->in = tr_pick_instance(&d->run, pid);
    if (!d->in)
        return 2;
    if (d->in->nsites <= 1) {
        fprintf(stderr, "hakmem-trace: %s: process %" PRIu64 " has no call stacks (record with --stacks or "
                        "--preset leaks)\n", dir, d->in->pid);
        return 1;
    }
    analyse(&d->a, d->in);
    d->analysed = true;
    tr_symbolizer *sym = tr_symbolizer_new(d->in->maps_path);
    merge_sites(&d->a, sym);
    tr_symbolizer_free(sym);
    return 0;
}

static void diff_close(diff_side *d)
{
    if (d->analysed)
        analysis_free(&d->a);
    if (d->open)
        tr_close(&d->run);
}

enum { DF_CALLS, DF_BYTES, DF_PEAK, DF_LEAKED, DF_TEMPORARY, DF_N };
static const char *const df_name[DF_N] = { "calls", "bytes", "peak", "leaked", "temporary" };

static void msite_figures(const msite *m, int64_t *v)
{
    if (!m) {
        memset(v, 0, DF_N * sizeof *v);
        return;
    }
    v[DF_CALLS] = (int64_t)m->calls;
    v[DF_BYTES] = (int64_t)m->call_bytes;
    v[DF_PEAK] = m->peak;
    v[DF_LEAKED] = m->leaked;
    v[DF_TEMPORARY] = (int64_t)m->temporary;
}

static void total_figures(const analysis *a, int64_t *v)
{
    v[DF_CALLS] = (int64_t)a->calls;
    v[DF_BYTES] = (int64_t)a->call_bytes;
    double var;
    uint64_t t;
    v[DF_PEAK] = peak_shown(a, &var, &t);
    v[DF_LEAKED] = (int64_t)a->live_bytes_end;
    v[DF_TEMPORARY] = (int64_t)a->temporary;
}

/* A row of the diff: a site in A, B or both. */
typedef struct diff_row {
    const msite *a, *b;
    int64_t va[DF_N], vb[DF_N];
} diff_row;

static int64_t abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

/* Most changed first: bytes, then calls, peak, leaked; then by name. */
static int diff_row_cmp(const void *x, const void *y)
{
    const diff_row *p = x, *q = y;
    static const int order[] = { DF_BYTES, DF_CALLS, DF_PEAK, DF_LEAKED, DF_TEMPORARY };
    for (int k = 0; k < DF_N; k++) {
        int64_t dp = abs64(p->vb[order[k]] - p->va[order[k]]), dq = abs64(q->vb[order[k]] - q->va[order[k]]);
        if (dp != dq)
            return dp > dq ? -1 : 1;
    }
    const msite *mp = p->a ? p->a : p->b, *mq = q->a ? q->a : q->b;
    int c = strcmp(mp->function, mq->function);
    c = c ? c : strcmp(mp->module, mq->module);
    return c ? c : strcmp(mp->source, mq->source);
}

/* The sites of both sides, joined by function and module. */
static diff_row *diff_rows(const analysis *a, const analysis *b, uint32_t *nrows)
{
    uint32_t cap = 16, n = 0;
    while (cap < 2 * (a->nmsites + b->nmsites))
        cap *= 2;
    uint32_t *slots = calloc(cap, sizeof *slots); /* row index + 1 */
    diff_row *rows = tr_xmalloc(((size_t)a->nmsites + b->nmsites + 1) * sizeof *rows);
    if (!slots)
        tr_die(1, "out of memory");
    for (int side = 0; side < 2; side++) {
        const analysis *x = side ? b : a;
        for (uint32_t i = 0; i < x->nmsites; i++) {
            const msite *m = &x->msites[i];
            uint32_t h = (uint32_t)str_hash(m->source, str_hash(m->module, str_hash(m->function, 0xcbf29ce484222325ull))) &
                         (cap - 1);
            for (;; h = (h + 1) & (cap - 1)) {
                if (!slots[h]) {
                    rows[n] = (diff_row){ 0 };
                    slots[h] = ++n;
                    break;
                }
                const diff_row *r = &rows[slots[h] - 1];
                const msite *o = r->a ? r->a : r->b;
                if (strcmp(o->function, m->function) == 0 && strcmp(o->module, m->module) == 0 &&
                    strcmp(o->source, m->source) == 0)
                    break;
            }
            diff_row *r = &rows[slots[h] - 1];
            if (side)
                r->b = m;
            else
                r->a = m;
        }
    }
    free(slots);
    for (uint32_t i = 0; i < n; i++) {
        msite_figures(rows[i].a, rows[i].va);
        msite_figures(rows[i].b, rows[i].vb);
    }
    qsort(rows, n, sizeof *rows, diff_row_cmp);
    *nrows = n;
    return rows;
}

static bool diff_changed(const int64_t *va, const int64_t *vb)
{
    for (int k = 0; k < DF_N; k++)
        if (va[k] != vb[k])
            return true;
    return false;
}

static void diff_json_figures(FILE *f, const int64_t *va, const int64_t *vb)
{
    for (int k = 0; k < DF_N; k++)
        fprintf(f, "%s\"%s\":{\"a\":%" PRId64 ",\"b\":%" PRId64 ",\"delta\":%" PRId64 "}", k ? "," : "",
                df_name[k], va[k], vb[k], vb[k] - va[k]);
}

static void diff_json_side(FILE *f, const char *name, const diff_side *d)
{
    fprintf(f, "\"%s\":{\"dir\":", name);
    jstr(f, d->dir);
    fprintf(f, ",\"pid\":%" PRIu64 ",\"name\":", d->in->pid);
    jstr(f, inst_name(d->in));
    fprintf(f, "}");
}

static void diff_json(FILE *f, const diff_side *A, const diff_side *B, const diff_row *rows, uint32_t n)
{
    int64_t ta[DF_N], tb[DF_N];
    total_figures(&A->a, ta);
    total_figures(&B->a, tb);
    uint32_t changed = 0;
    for (uint32_t i = 0; i < n; i++)
        changed += diff_changed(rows[i].va, rows[i].vb);
    fprintf(f, "{\"schema\":\"hakmem-trace-diff/1\",");
    diff_json_side(f, "a", A);
    fprintf(f, ",");
    diff_json_side(f, "b", B);
    fprintf(f, ",\"totals\":{");
    diff_json_figures(f, ta, tb);
    fprintf(f, "},\"sites\":%u,\"changed\":%u,\"by_site\":[", n, changed);
    for (uint32_t i = 0; i < n; i++) {
        const msite *m = rows[i].a ? rows[i].a : rows[i].b;
        fprintf(f, "%s{\"function\":", i ? "," : "");
        jstr(f, m->function);
        fprintf(f, ",\"module\":");
        jstr(f, m->module);
        fprintf(f, ",\"source\":");
        if (*m->source)
            jstr(f, m->source);
        else
            fprintf(f, "null");
        fprintf(f, ",\"in\":\"%s\",", rows[i].a && rows[i].b ? "both" : rows[i].a ? "a" : "b");
        diff_json_figures(f, rows[i].va, rows[i].vb);
        fprintf(f, "}");
    }
    fprintf(f, "]}\n");
}

static void diff_text(FILE *f, const diff_side *A, const diff_side *B, const diff_row *rows, uint32_t n)
{
    int64_t ta[DF_N], tb[DF_N];
    total_figures(&A->a, ta);
    total_figures(&B->a, tb);
    fprintf(f, "a: %s (%s, pid %" PRIu64 ")\nb: %s (%s, pid %" PRIu64 ")\n", A->dir, inst_name(A->in), A->in->pid,
            B->dir, inst_name(B->in), B->in->pid);
    fprintf(f, "%-10s %14s %14s %14s\n", "total", "a", "b", "b - a");
    for (int k = 0; k < DF_N; k++)
        fprintf(f, "%-10s %14" PRId64 " %14" PRId64 " %+14" PRId64 "\n", df_name[k], ta[k], tb[k], tb[k] - ta[k]);
    uint32_t changed = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!diff_changed(rows[i].va, rows[i].vb))
            continue;
        if (!changed++)
            fprintf(f, "\nallocation sites that changed (b - a), most bytes first:\n%12s %14s %14s %14s %12s  %s\n",
                    "calls", "bytes", "peak", "leaked", "temporary", "site");
        const msite *m = rows[i].a ? rows[i].a : rows[i].b;
        fprintf(f, "%+12" PRId64 " %+14" PRId64 " %+14" PRId64 " %+14" PRId64 " %+12" PRId64 "  %s%s%s%s%s%s%s\n",
                rows[i].vb[DF_CALLS] - rows[i].va[DF_CALLS], rows[i].vb[DF_BYTES] - rows[i].va[DF_BYTES],
                rows[i].vb[DF_PEAK] - rows[i].va[DF_PEAK], rows[i].vb[DF_LEAKED] - rows[i].va[DF_LEAKED],
                rows[i].vb[DF_TEMPORARY] - rows[i].va[DF_TEMPORARY], m->function, *m->module ? " (" : "",
                m->module, *m->module ? ")" : "", *m->source ? " at " : "", m->source,
                rows[i].a && rows[i].b ? "" : rows[i].a ? " [a only]" : " [b only]");
    }
    fprintf(f, "%s%u of %u allocation sites changed\n", changed ? "" : "\n", changed, n);
}

int report_diff(const char *a_dir, uint64_t a_pid, const char *b_dir, uint64_t b_pid, bool json, FILE *out)
{
    diff_side A = { 0 }, B = { 0 };
    int rc = diff_open(&A, a_dir, a_pid);
    if (!rc)
        rc = diff_open(&B, b_dir, b_pid);
    if (!rc) {
        uint32_t n;
        diff_row *rows = diff_rows(&A.a, &B.a, &n);
        if (json)
            diff_json(out, &A, &B, rows, n);
        else
            diff_text(out, &A, &B, rows, n);
        free(rows);
        rc = fflush(out) == 0 && !ferror(out) ? 0 : 1;
    }
    diff_close(&B);
    diff_close(&A);
    return rc;
}
