/* exit_status.h - how a workload's process ends: the exit statuses of the
 * workload contract (workloads/README.md, "Rules every workload follows").
 *
 * The one place these numbers are written: workloads/common.c exits with
 * them (wl_usage_error, wl_fatal, wl_corrupted) and harness/run.c reads
 * them back into a failed run's reason. Plain C, no dependencies.
 */
#ifndef WL_EXIT_STATUS_H
#define WL_EXIT_STATUS_H

#include <stddef.h>

enum wl_exit_status {
    WL_EXIT_OK = 0,         /* done; the last stdout line is the JSON result */
    WL_EXIT_SYSTEM = 1,     /* not the input's fault: out of memory, a failed
                               system call, an internal error */
    WL_EXIT_USAGE = 2,      /* bad input: one line on stderr says what */
    WL_EXIT_CORRUPTION = 3, /* a block did not hold what was written to it */
};

/* What a failed run's status means, as the harness words it in a run's
 * reason ("exit 2: the workload rejected its arguments"); NULL for a status
 * that has no wording of its own (the harness says "exit status N"). */
static inline const char *wl_exit_meaning(int status)
{
    switch (status) {
    case WL_EXIT_USAGE: return "the workload rejected its arguments";
    case WL_EXIT_CORRUPTION: return "the workload detected heap corruption";
    default: return NULL;
    }
}

#endif /* WL_EXIT_STATUS_H */
