/* tiny - single-threaded alloc/free of small blocks in batches (LIFO and
 * random order); the fast-path yardstick. Reports ns per malloc+free pair. */
#include "common.h"
#include "small_batches.h"

#include <stdlib.h>

static wl_opt opts[] = {
    { "pairs", WL_INT, 40000000, 1, 1e12, "malloc+free pairs", 0, 0 },
    SB_OPTIONS,
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "tiny", "Single-threaded alloc/free of small blocks in batches, LIFO and random order.",
    opts, NULL,
};

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    sb_params p;
    sb_read_params(&spec, &p);
    static sb_state st;
    sb_init(&st, &p, (uint64_t)wl_int(&spec, "seed"), 0, NULL);

    double t0 = wl_now();
    sb_run(&st, &p);
    double secs = wl_now() - t0;

    wl_report r = {
        .threads = 1,
        .ops = 2 * (uint64_t)p.pairs,
        .op_unit = "malloc or free",
        .seconds = secs,
        .peak_live_bytes = st.live.peak,
        .final_live_bytes = st.live.cur,
        .checksum = st.checksum,
    };
    r.extra[0].name = "ns_per_pair";
    r.extra[0].value = secs * 1e9 / (double)p.pairs;
    sb_done(&st);
    wl_report_print(&r);
    return 0;
}
