/* compile.h - hakmem-trace compile: a full-mode trace into a replay file. */
#ifndef TR_COMPILE_H
#define TR_COMPILE_H

#include <stddef.h>
#include <stdint.h>

/* Compiles the instance pid of dir (0: the one with most records) into out.
 * Returns 0 (summary filled) or an exit code after printing why. */
int compile_run(const char *dir, const char *out, uint64_t pid, char *summary, size_t summary_n);

#endif /* TR_COMPILE_H */
