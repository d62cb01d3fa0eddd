/* tiny_mt - tiny on N threads: each thread runs the same batch loop on its
 * own random stream. The threads' working sets are independent and run
 * side by side, so peak_live_bytes is the sum of the per-thread peaks (each
 * exact). ns_per_pair is wall seconds x threads / total pairs,
 * the per-thread cost of one pair, comparable with tiny's. */
#include "common.h"
#include "small_batches.h"

#include <pthread.h>
#include <stdlib.h>

static wl_opt opts[] = {
    { "threads", WL_INT, 2, 1, 256, "threads", 0, 0 },
    { "pairs", WL_INT, 20000000, 1, 1e12, "malloc+free pairs per thread", 0, 0 },
    SB_OPTIONS,
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "tiny_mt", "tiny on N threads: small-block alloc/free batches, LIFO and random order.",
    opts, NULL,
};

/* Written on every step by its thread: one cache line apart (wl_calloc_lines). */
typedef struct worker {
    _Alignas(WL_LINE) pthread_t th;
    double t_start, t_end;
    sb_state st;
} worker;

static sb_params g_params;
static void *worker_main(void *arg)
{
    worker *w = arg;
    wl_start_wait();
    w->t_start = wl_now();
    sb_run(&w->st, &g_params);
    w->t_end = wl_now();
    return NULL;
}

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    sb_read_params(&spec, &g_params);
    int nt = (int)wl_int(&spec, "threads");
    uint64_t seed = (uint64_t)wl_int(&spec, "seed");

    worker *ws = wl_calloc_lines((size_t)nt, sizeof *ws);
    for (int t = 0; t < nt; t++)
        sb_init(&ws[t].st, &g_params, seed, (uint64_t)t, NULL);
    wl_start_line((unsigned)nt);
    for (int t = 0; t < nt; t++)
        wl_thread_start(&ws[t].th, worker_main, &ws[t]);
    wl_start_wait();
    for (int t = 0; t < nt; t++)
        pthread_join(ws[t].th, NULL);
    /* timed from the first thread starting to the last one finishing */
    double t0 = ws[0].t_start, t1 = ws[0].t_end;
    for (int t = 1; t < nt; t++) {
        if (ws[t].t_start < t0)
            t0 = ws[t].t_start;
        if (ws[t].t_end > t1)
            t1 = ws[t].t_end;
    }
    double secs = t1 - t0;

    uint64_t sum = 0;
    int64_t final_live = 0, peak_live = 0;
    for (int t = 0; t < nt; t++) {
        sum = wl_fold(sum, ws[t].st.checksum);
        final_live += ws[t].st.live.cur;
        peak_live += ws[t].st.live.peak;
        sb_done(&ws[t].st);
    }
    uint64_t total_pairs = (uint64_t)g_params.pairs * (uint64_t)nt;
    wl_report r = {
        .threads = nt,
        .ops = 2 * total_pairs,
        .op_unit = "malloc or free",
        .seconds = secs,
        .peak_live_bytes = peak_live,
        .final_live_bytes = final_live,
        .checksum = sum,
    };
    r.extra[0].name = "ns_per_pair";
    r.extra[0].value = secs * 1e9 * nt / (double)total_pairs;
    free(ws);
    wl_start_line_done();
    wl_report_print(&r);
    return 0;
}
