/*
 * fakewl — a fake workload for the harness tests. It follows the workload
 * contract (workloads/README.md): options --name N, bad input -> one line on
 * stderr and exit WL_EXIT_USAGE (2), the LAST stdout line is one JSON object with workload,
 * params, seed, floor, threads, ops, op_unit, seconds, ns_per_op, ops_per_sec,
 * peak_live_bytes, final_live_bytes, checksum, malloc_from.
 *
 *   --ops N         malloc+free pairs (default 100000; ops = 2N)
 *   --size N        block size (default 64)
 *   --sleep-ms N    sleep this long after the work (for time limits)
 *   --phases        print @phase markers (start, idle_start, idle_end)
 *   --no-result     print no JSON line
 *   --floor         the cost floor: the timed work takes its blocks from a
 *                   free stack of 65 blocks malloc'd before timing and
 *                   gives them back there, so no malloc or free is timed;
 *                   the result says "floor": true
 *   --ignore-floor  (tests) accept --floor but call malloc and free as
 *                   usual and say "floor": false, as a workload that
 *                   ignored the flag would
 *   --no-floor-key  (tests) leave "floor" out of the result, as a workload
 *                   older than --floor would
 *   --seed N        accepted, stored in the result
 */
#include "../../workloads/exit_status.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long num(const char *opt, const char *s)
{
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || *end || v < 0) {
        fprintf(stderr, "fakewl: %s needs a non-negative integer\n", opt);
        exit(WL_EXIT_USAGE);
    }
    return v;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) { }
}

/* The floor's recycle: KEEP blocks live at a time plus the one being made. */
#define KEEP 64
static char *floor_stack[KEEP + 1];
static int floor_top;

static char *get_block(int floor, size_t size)
{
    return floor ? floor_stack[--floor_top] : malloc(size);
}

static void put_block(int floor, char *p)
{
    if (!p) return;
    if (floor) floor_stack[floor_top++] = p;
    else free(p);
}

int main(int argc, char **argv)
{
    long ops = 100000, size = 64, sleep_for = 0, seed = 1;
    int phases = 0, result = 1, floor = 0, ignore_floor = 0, floor_key = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--ops") == 0) { ops = num(a, v); i++; }
        else if (strcmp(a, "--size") == 0) { size = num(a, v); i++; }
        else if (strcmp(a, "--sleep-ms") == 0) { sleep_for = num(a, v); i++; }
        else if (strcmp(a, "--seed") == 0) { seed = num(a, v); i++; }
        else if (strcmp(a, "--phases") == 0) phases = 1;
        else if (strcmp(a, "--no-result") == 0) result = 0;
        else if (strcmp(a, "--floor") == 0) floor = 1;
        else if (strcmp(a, "--ignore-floor") == 0) ignore_floor = 1;
        else if (strcmp(a, "--no-floor-key") == 0) floor_key = 0;
        else { fprintf(stderr, "fakewl: unknown option '%s'\n", a); return 2; }
    }
    if (size < 1) { fprintf(stderr, "fakewl: --size must be >= 1\n"); return 2; }
    if (ignore_floor) floor = 0;
    if (floor)
        for (floor_top = 0; floor_top < KEEP + 1; floor_top++)
            if (!(floor_stack[floor_top] = malloc((size_t)size))) { fprintf(stderr, "fakewl: out of memory\n"); return 1; }
    if (phases) { printf("@phase start 0\n"); fflush(stdout); }
    double t0 = now();
    unsigned long sum = 0;
    char *keep[KEEP] = { 0 };
    for (long i = 0; i < ops; i++) {
        char *p = get_block(floor, (size_t)size);
        if (!p) { fprintf(stderr, "fakewl: out of memory\n"); return 1; }
        memset(p, (int)(i & 0xff), (size_t)size);
        sum += (unsigned char)p[size - 1];
        put_block(floor, keep[i % KEEP]);
        keep[i % KEEP] = p;
    }
    for (int i = 0; i < KEEP; i++) put_block(floor, keep[i]);
    double secs = now() - t0;
    if (floor)
        while (floor_top) free(floor_stack[--floor_top]);
    if (phases) { printf("@phase idle_start %.3f\n", now() - t0); fflush(stdout); }
    if (sleep_for) sleep_ms(sleep_for);
    if (phases) { printf("@phase idle_end %.3f\n", now() - t0); fflush(stdout); }
    printf("fakewl: %ld pairs of %ld bytes in %.3f s\n", ops, size, secs);
    if (!result) return 0;
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    const char *from = sym && dladdr(sym, &info) && info.dli_fname ? info.dli_fname : "?";
    double nops = 2.0 * (double)ops;
    printf("{\"workload\":\"fakewl\",\"params\":{\"ops\":%ld,\"size\":%ld,\"sleep-ms\":%ld},\"seed\":%ld,%s"
           "\"threads\":1,\"ops\":%.0f,\"op_unit\":\"malloc or free\",\"seconds\":%.9f,\"ns_per_op\":%.6f,"
           "\"ops_per_sec\":%.1f,\"peak_live_bytes\":%ld,\"final_live_bytes\":0,\"checksum\":\"%016lx\","
           "\"malloc_from\":\"%s\"}\n",
           ops, size, sleep_for, seed, !floor_key ? "" : floor ? "\"floor\":true," : "\"floor\":false,", nops, secs, nops > 0 ? secs * 1e9 / nops : 0.0,
           secs > 0 ? nops / secs : 0.0, 64 * size, sum, from);
    return 0;
}
