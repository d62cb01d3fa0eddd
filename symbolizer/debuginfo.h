/* debuginfo.h - the source of an address in an ELF object: function, file
 * and line from its DWARF (elfutils' libdw), with the functions inlined at
 * it. Shared by hakmem-symbolize (symbolizer/main.c) and hakmem-trace
 * (tracker/trace_read.c), which links it directly. */
#ifndef SYM_DEBUGINFO_H
#define SYM_DEBUGINFO_H

#include <stdint.h>

/* One frame of source: innermost first. Frame 0 is the function whose code
 * is at the address (perhaps inlined) and the line of that code; frame k+1
 * is the function frame k was inlined into, with the line of the inlined
 * call. The last frame is the function the symbol table names. */
typedef struct sym_source {
    const char *function; /* "??" when DWARF names none */
    const char *file;     /* NULL: no line information */
    int line;
} sym_source;

#define SYM_SOURCE_MAX 16

typedef struct sym_debuginfo sym_debuginfo;

sym_debuginfo *sym_debuginfo_new(void);
/* The frames at the link-time address vaddr (an instruction's, not a return
 * address) of the object at path, into out[max]; returns how many (0: the
 * object has no line information there, or cannot be read). The strings
 * live until sym_debuginfo_free. *symbol (may be NULL) gets the ELF symbol
 * holding vaddr, or NULL. */
int sym_debuginfo_lookup(sym_debuginfo *d, const char *path, uint64_t vaddr, sym_source *out, int max,
                         const char **symbol);
void sym_debuginfo_free(sym_debuginfo *d);

#endif /* SYM_DEBUGINFO_H */
