/*
 * pagecost.c — what this machine charges for the page-table work an
 * allocator causes, per 4 KiB page written, measured once per run so that a
 * reader can price the counts the rows carry (minor faults, pages moved and
 * decommitted per op). The five costs of ../shared/probes/pagecost.c, on a
 * smaller region with fewer repetitions, so the whole measurement takes a
 * few tens of milliseconds (some hundreds on a machine whose faults cost
 * 10 µs):
 *
 *   resident   write to pages already mapped and written (the floor)
 *   munmap     write to a fresh mapping after munmap (a page fault per page)
 *   dontneed   write after MADV_DONTNEED on the same mapping
 *   move_2m    write after mremap moved the region to a 2 MiB-aligned address
 *   move_64k   write after mremap moved it to an address 64 KiB past 2 MiB
 *
 * Each repetition makes the five measurements one after another (so a busy
 * spell of the machine touches every mode alike), each the time of one
 * memset of the whole region after its preparation (which is not timed);
 * the figure is the median over the repetitions. Transparent huge pages are
 * turned off for the region (MADV_NOHUGEPAGE), so a fault is one 4 KiB
 * page's, as the minor-fault counts count them. Calls only util.c.
 */
#include "hakbench.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PC_PAGE 4096
#define PC_2M ((size_t)2 << 20)

const char *const hb_pagecost_mode[HB_PAGECOST_MODES] = { "resident", "munmap", "dontneed", "move_2m",
                                                          "move_64k" };

static char *map_rw(size_t n)
{
    char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    madvise(p, n, MADV_NOHUGEPAGE); /* advice only: a kernel without THP refuses it, and that is fine */
    return p;
}

/* Moves the region [*a, *a + n) to a fresh place 2 MiB-aligned plus off,
 * inside a reservation whose rest is given back. */
static bool move_region(char **a, size_t n, size_t off)
{
    size_t span = n + 2 * PC_2M;
    char *r = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) return false;
    char *dst = (char *)(((uintptr_t)r + PC_2M - 1) & ~(uintptr_t)(PC_2M - 1)) + off;
    char *b = mremap(*a, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    if (b == MAP_FAILED) { munmap(r, span); return false; }
    if (dst > r) munmap(r, (size_t)(dst - r));
    if (dst + n < r + span) munmap(dst + n, (size_t)(r + span - (dst + n)));
    *a = b;
    return true;
}

static double write_all(char *a, size_t n, int byte)
{
    double t0 = hb_now();
    memset(a, byte, n);
    __asm__ volatile("" : : "r"(a) : "memory"); /* the writes happen here, not later or never */
    return hb_now() - t0;
}

static int by_value(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

void hb_pagecost_measure(hb_pagecost *pc)
{
    memset(pc, 0, sizeof *pc);
    pc->region_bytes = HB_PAGECOST_REGION;
    pc->reps = HB_PAGECOST_REPS;
    const size_t n = HB_PAGECOST_REGION, pages = n / PC_PAGE;
    double t0 = hb_now();
    double spent[HB_PAGECOST_MODES][HB_PAGECOST_REPS];
    char *reg[HB_PAGECOST_MODES] = { NULL };
    for (int m = 0; m < HB_PAGECOST_MODES; m++) {
        if (!(reg[m] = map_rw(n))) { hb_fmt(pc->error, sizeof pc->error, "mmap: %s", strerror(errno)); goto out; }
        memset(reg[m], 1, n);
    }
    for (int i = 0; i < HB_PAGECOST_REPS; i++) {
        for (int m = 0; m < HB_PAGECOST_MODES; m++) {
            char **a = &reg[m];
            switch (m) {
            case 1:
                munmap(*a, n);
                if (!(*a = map_rw(n))) { hb_fmt(pc->error, sizeof pc->error, "mmap: %s", strerror(errno)); goto out; }
                break;
            case 2:
                if (madvise(*a, n, MADV_DONTNEED) != 0) {
                    hb_fmt(pc->error, sizeof pc->error, "madvise(MADV_DONTNEED): %s", strerror(errno));
                    goto out;
                }
                break;
            case 3:
            case 4:
                if (!move_region(a, n, m == 3 ? 0 : 64 << 10)) {
                    hb_fmt(pc->error, sizeof pc->error, "mremap: %s", strerror(errno));
                    goto out;
                }
                break;
            default:
                break;
            }
            spent[m][i] = write_all(*a, n, i + 2) / (double)pages * 1e6;
        }
    }
    for (int m = 0; m < HB_PAGECOST_MODES; m++) {
        qsort(spent[m], HB_PAGECOST_REPS, sizeof spent[m][0], by_value);
        pc->us_per_page[m] = spent[m][HB_PAGECOST_REPS / 2];
        pc->min_us[m] = spent[m][0];
        pc->max_us[m] = spent[m][HB_PAGECOST_REPS - 1];
    }
    pc->ok = true;
out:
    for (int m = 0; m < HB_PAGECOST_MODES; m++)
        if (reg[m]) munmap(reg[m], n);
    pc->seconds = hb_now() - t0;
}
