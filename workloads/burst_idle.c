/* burst_idle - allocate a burst of small objects, free them all, then stay
 * idle without calling the allocator, printing a flushed marker line
 *   @phase <name> <seconds since start>
 * at start, burst_done, freed, idle_start and idle_end, so a harness
 * sampling RSS from outside can see how much memory the allocator keeps
 * while the program is idle. The pointer and size arrays are mmap'd (not
 * malloc'd) and unmapped before "freed", so they do not blur the picture.
 * `seconds` covers the burst and the frees, not the idle time.
 * --floor: floor bins prefaulted for the whole burst (sizes drawn ahead with
 * a copy of the random stream), unmapped before "freed". */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static wl_opt opts[] = {
    { "bytes", WL_INT, 268435456, 1, 1LL << 40, "total bytes requested by the burst", 0, 0 },
    { "min-size", WL_INT, 16, 1, 1 << 20, "smallest object in bytes", 0, 0 },
    { "max-size", WL_INT, 256, 1, 1 << 20, "largest object in bytes (inclusive)", 0, 0 },
    { "idle-seconds", WL_REAL, 3, 0, 86400, "seconds to stay idle after freeing", 0, 0 },
    { "seed", WL_INT, 1, 0, 9.2e18, "random seed", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "burst_idle", "Allocate a burst of small objects, free all, stay idle; prints phase markers.",
    opts, NULL,
};

static double g_t0;

static void phase(const char *name)
{
    printf("@phase %s %.3f\n", name, wl_now() - g_t0);
    fflush(stdout);
}

static void *map_array(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        wl_fatal("mmap of %zu bytes failed: %s", bytes, strerror(errno));
    return p;
}

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    uint64_t total = (uint64_t)wl_int(&spec, "bytes");
    uint64_t lo, hi;
    wl_size_range(&spec, &lo, &hi);
    double idle = wl_real(&spec, "idle-seconds");
    wl_rng r = wl_rng_stream((uint64_t)wl_int(&spec, "seed"), 0);
    uint64_t tag_base = wl_next(&r);

    size_t cap = (size_t)(total / lo + 1);
    size_t ptr_bytes = cap * sizeof(void *), size_bytes = cap * sizeof(uint32_t);

    g_t0 = wl_now();
    phase("start");
    /* Let a runner that samples RSS when it reads a marker take the "before"
     * figure before the burst begins (not part of the timed work). */
    nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
    void **ptrs = map_array(ptr_bytes);
    uint32_t *sizes = map_array(size_bytes);
    wl_live live = { 0 };
    if (wl_floor_on) {
        wl_rng ahead = r;
        size_t need = 0;
        for (uint64_t got = 0; got < total;) {
            uint64_t s = wl_range(&ahead, lo, hi);
            if (s > total - got)
                s = total - got;
            need += wl_floor_class_size(wl_floor_class((size_t)s));
            got += s;
        }
        wl_live_floor(&live, need);
    }
    uint64_t h = 0;
    size_t n = 0;
    double t_burst = wl_now();
    for (uint64_t got = 0; got < total; n++) {
        uint64_t s = wl_range(&r, lo, hi);
        if (s > total - got)
            s = total - got;
        sizes[n] = (uint32_t)s;
        ptrs[n] = wl_malloc(&live, (size_t)s);
        wl_block_write(ptrs[n], (size_t)s, tag_base + n * 0x9e3779b97f4a7c15ULL);
        got += s;
    }
    double burst_secs = wl_now() - t_burst;
    phase("burst_done");
    double t_free = wl_now();
    for (size_t k = 0; k < n; k++) {
        uint64_t tag = tag_base + k * 0x9e3779b97f4a7c15ULL;
        wl_block_verify(ptrs[k], sizes[k], tag, "burst object");
        h = wl_fold(h, tag ^ sizes[k]);
        wl_free(&live, ptrs[k], sizes[k]);
    }
    double free_secs = wl_now() - t_free;
    munmap(ptrs, ptr_bytes);
    munmap(sizes, size_bytes);
    wl_live_floor_done(&live);
    phase("freed");

    phase("idle_start");
    struct timespec ts = { (time_t)idle, (long)((idle - (double)(time_t)idle) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    phase("idle_end");

    wl_report rep = {
        .threads = 1,
        .ops = 2 * (uint64_t)n,
        .op_unit = "malloc or free",
        .seconds = burst_secs + free_secs,
        .peak_live_bytes = live.peak,
        .final_live_bytes = live.cur,
        .checksum = h,
    };
    rep.extra[0].name = "objects";
    rep.extra[0].value = (double)n;
    rep.extra[1].name = "burst_seconds";
    rep.extra[1].value = burst_secs;
    rep.extra[2].name = "free_seconds";
    rep.extra[2].value = free_secs;
    wl_report_print(&rep);
    return 0;
}
