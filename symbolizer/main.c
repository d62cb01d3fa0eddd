/* main.c - hakmem-symbolize: file:line for addresses in ELF objects, over a
 * line protocol, for the leak checker in libhakmem.so (core/symbols.c).
 *
 * Why a separate process: libhakmem.so is preloaded into any program, and
 * the leak report is written at exit with the checker's state held and
 * hakmem being the program's malloc. libdw allocates through malloc, keeps
 * large tables and would pull libdw, libelf and their compression libraries
 * into every preloaded process; a crash or a hang in it would be the
 * program's. So the core links none of it: like LSan with llvm-symbolizer,
 * it starts this program at the report (posix_spawn, one socket, no
 * environment, no allocation on the core's side) and falls back to its own
 * symbol-table names when the program is missing or fails. The DWARF
 * reading itself (debuginfo.c) is shared with hakmem-trace, which links it
 * directly.
 *
 * Protocol: one request per line, "OBJECT ADDRESS": the object's path, a
 * space, the link-time address (hex, 0x optional) of an instruction in it
 * (a return address minus one for a caller's frame). The answer: one line
 * per source frame, innermost first (an inlined function, then the
 * functions it was inlined into), "FUNCTION<TAB>FILE<TAB>LINE", then an
 * empty line. Without line information the one line is
 * "SYMBOL<TAB>??<TAB>0" (SYMBOL "??" when the symbol table has none). A
 * line that is not a request is said on stderr and answered with the empty
 * line alone.
 *
 * Exit codes: 0 at the end of the requests; 1 a failed write; 2 bad usage.
 */
#include "debuginfo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: hakmem-symbolize [--fd N]\n"
    "  reads lines \"OBJECT ADDRESS\" (the link-time address of an instruction, hex) and answers each\n"
    "  with lines \"FUNCTION<TAB>FILE<TAB>LINE\" (innermost first: inlined functions, then their callers)\n"
    "  and an empty line; \"SYMBOL<TAB>?\?<TAB>0\" when the object has no line information there\n"
    "  --fd N   requests from and answers to descriptor N (a socket) instead of stdin and stdout\n";

int main(int argc, char **argv)
{
    int fd = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            long v = strtol(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || v < 0 || v > 1 << 20) {
                fprintf(stderr, "hakmem-symbolize: --fd '%s' is not a descriptor number\n", argv[i]);
                return 2;
            }
            fd = (int)v;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "hakmem-symbolize: unknown argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    FILE *in = stdin, *out = stdout;
    if (fd >= 0) {
        int fd2 = dup(fd);
        in = fdopen(fd, "r");
        out = fd2 >= 0 ? fdopen(fd2, "w") : NULL;
        if (!in || !out) {
            fprintf(stderr, "hakmem-symbolize: --fd %d: %s\n", fd, strerror(errno));
            return 2;
        }
    }
    sym_debuginfo *d = sym_debuginfo_new();
    if (!d) {
        fprintf(stderr, "hakmem-symbolize: out of memory\n");
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long lineno = 0;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = 0;
        char *sp = strrchr(line, ' '), *end = NULL;
        unsigned long long addr = 0;
        if (sp && sp != line && sp[1]) {
            errno = 0;
            addr = strtoull(sp + 1, &end, 16);
        }
        if (!end || *end || errno) {
            fprintf(stderr, "hakmem-symbolize: line %lu: not \"OBJECT ADDRESS\": %s\n", lineno, line);
        } else {
            *sp = 0;
            sym_source src[SYM_SOURCE_MAX];
            const char *symbol;
            int n = sym_debuginfo_lookup(d, line, addr, src, SYM_SOURCE_MAX, &symbol);
            for (int k = 0; k < n; k++)
                fprintf(out, "%s\t%s\t%d\n", src[k].function, src[k].file ? src[k].file : "??",
                        src[k].file ? src[k].line : 0);
            if (n == 0)
                fprintf(out, "%s\t??\t0\n", symbol ? symbol : "??");
        }
        fputc('\n', out);
        if (fflush(out) != 0) {
            fprintf(stderr, "hakmem-symbolize: cannot write the answer: %s\n", strerror(errno));
            return 1;
        }
    }
    free(line);
    sym_debuginfo_free(d);
    return 0;
}
