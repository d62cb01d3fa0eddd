/* report.h - hakmem-trace report: the figures of a trace as trace.json. */
#ifndef TR_REPORT_H
#define TR_REPORT_H

#include <stddef.h>
#include <stdint.h>

/* Reads every file of dir and writes json_path. pid 0: the instance with
 * the most records is the main one (its headline goes to head). Returns 0,
 * or an exit code after printing why (1: unreadable or corrupt input). */
int report_run(const char *dir, const char *json_path, uint64_t pid, char *head, size_t headn,
               double seconds[2], uint64_t *records);

#endif /* TR_REPORT_H */
