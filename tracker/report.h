/* report.h - hakmem-trace report: the figures of a trace as trace.json. */
#ifndef TR_REPORT_H
#define TR_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Reads every file of dir and writes json_path. pid 0: the instance with
 * the most records is the main one (its headline goes to head). Returns 0,
 * or an exit code after printing why (1: unreadable or corrupt input). */
int report_run(const char *dir, const char *json_path, uint64_t pid, char *head, size_t headn,
               double seconds[2], uint64_t *records);

/* hakmem-trace folded: each call stack of the process (pid 0: the one
 * with the most records) as "root;...;caller VALUE" on out, frames named by
 * function, the allocator's own frames left out; VALUE by report_folded_key
 * of "calls", "bytes", "peak" or "leaked" (-1 for another name). Stacks
 * with 0 are left out. Returns 0, or an exit code after printing why. */
int report_folded_key(const char *name);
int report_folded(const char *dir, uint64_t pid, int by, FILE *out);

/* hakmem-trace diff: the allocation sites of process a_pid of a_dir and
 * b_pid of b_dir (0: the one with the most records), joined by function
 * and module: calls, bytes, peak, never freed and temporary of each side
 * and their change, as JSON (schema hakmem-trace-diff/1) or a text table
 * of the sites that changed. Returns 0, or an exit code after printing why. */
int report_diff(const char *a_dir, uint64_t a_pid, const char *b_dir, uint64_t b_pid, bool json, FILE *out);

#endif /* TR_REPORT_H */
