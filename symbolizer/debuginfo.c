/* debuginfo.c - see debuginfo.h. One libdwfl session per object, opened at
 * its first lookup and kept (a report asks about the same few objects over
 * and over). The object is reported at bias 0, so its addresses are the
 * link-time ones (what nm and addr2line show); its DWARF comes from the file
 * itself or from a separate debug file found the standard way (build id,
 * .gnu_debuglink, /usr/lib/debug). The inline chain is the nest of DWARF
 * scopes around the address: each inlined subroutine's call file and line
 * name the line in the function it was inlined into. */
#include "debuginfo.h"

#include <dwarf.h>
#include <stdbool.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>

typedef struct object {
    char *path;
    Dwfl *dwfl;        /* NULL: not readable as ELF */
    Dwfl_Module *mod;
} object;

typedef struct name {
    struct name *next;
    size_t len;
    char text[];
} name;

struct sym_debuginfo {
    name *names;       /* file names made absolute */
    object *objs;
    unsigned n, cap;
};

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
};

sym_debuginfo *sym_debuginfo_new(void)
{
    return calloc(1, sizeof(sym_debuginfo));
}

static object *object_of(sym_debuginfo *d, const char *path)
{
    for (unsigned i = 0; i < d->n; i++)
        if (strcmp(d->objs[i].path, path) == 0)
            return &d->objs[i];
    if (d->n == d->cap) {
        unsigned cap = d->cap ? d->cap * 2 : 16;
        object *o = realloc(d->objs, cap * sizeof *o);
        if (!o)
            return NULL;
        d->objs = o;
        d->cap = cap;
    }
    object *o = &d->objs[d->n];
    memset(o, 0, sizeof *o);
    o->path = strdup(path);
    if (!o->path)
        return NULL;
    d->n++;
    o->dwfl = dwfl_begin(&callbacks);
    if (o->dwfl) {
        /* base 0 with add_p_vaddr: the module's addresses are its link-time ones */
        o->mod = dwfl_report_elf(o->dwfl, path, path, -1, 0, true);
        dwfl_report_end(o->dwfl, NULL, NULL);
        if (!o->mod) {
            dwfl_end(o->dwfl);
            o->dwfl = NULL;
        }
    }
    return o;
}

/* A function's name: its linkage name (the symbol's) when DWARF gives one,
 * else its name; from the abstract origin for an inlined instance. */
static const char *die_name(Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &a));
    if (!n)
        n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a));
    if (!n)
        n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
    return n ? n : "??";
}

static const char *call_file(Dwarf_Die *cu, Dwarf_Die *inlined, int *line)
{
    Dwarf_Attribute a;
    Dwarf_Word file = 0, ln = 0;
    Dwarf_Files *files;
    size_t nfiles;
    *line = 0;
    if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &a), &file) != 0 ||
        dwarf_getsrcfiles(cu, &files, &nfiles) != 0 || file >= nfiles)
        return NULL;
    if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &a), &ln) == 0)
        *line = (int)ln;
    return dwarf_filesrc(files, file, NULL, NULL);
}

/* The first function (subprogram or inlined instance) of scopes[from..n). */
static bool first_function(Dwarf_Die *scopes, int n, int from, Dwarf_Die *out)
{
    for (int i = from; i < n; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine) {
            *out = scopes[i];
            return true;
        }
    }
    return false;
}

/* A file name of the CU made absolute with its compilation directory, kept
 * for the session (the answers point at it). */
static const char *joined(sym_debuginfo *d, Dwarf_Die *cu, const char *file)
{
    Dwarf_Attribute a;
    const char *dir = file[0] == '/' ? NULL : dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &a));
    size_t nd = dir ? strlen(dir) : 0, nf = strlen(file);
    for (name *x = d->names; x; x = x->next)
        if (x->len == nd + !!nd + nf && (!nd || (memcmp(x->text, dir, nd) == 0 && x->text[nd] == '/')) &&
            memcmp(x->text + nd + !!nd, file, nf) == 0)
            return x->text;
    name *x = malloc(sizeof *x + nd + 1 + nf + 1);
    if (!x)
        return file;
    x->len = nd + !!nd + nf;
    if (nd) {
        memcpy(x->text, dir, nd);
        x->text[nd] = '/';
    }
    memcpy(x->text + nd + !!nd, file, nf + 1);
    x->next = d->names;
    d->names = x;
    return x->text;
}

int sym_debuginfo_lookup(sym_debuginfo *d, const char *path, uint64_t vaddr, sym_source *out, int max,
                         const char **symbol)
{
    if (symbol)
        *symbol = NULL;
    object *o = d ? object_of(d, path) : NULL;
    if (!o || !o->dwfl || max <= 0)
        return 0;
    Dwarf_Addr addr = vaddr;
    if (symbol)
        *symbol = dwfl_module_addrname(o->mod, addr);
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = dwfl_module_addrdie(o->mod, addr, &bias);
    Dwfl_Line *ln = dwfl_module_getsrc(o->mod, addr);
    int lineno = 0;
    const char *file = ln ? dwfl_lineinfo(ln, NULL, &lineno, NULL, NULL, NULL) : NULL;
    if (!cu || !file)
        return 0;
    Dwarf_Die *scopes = NULL, fn;
    int nscopes = dwarf_getscopes(cu, addr - bias, &scopes);
    bool found = first_function(scopes, nscopes, 0, &fn);
    free(scopes);
    int n = 0;
    out[n++] = (sym_source){ symbol && *symbol ? *symbol : "??", joined(d, cu, file), lineno };
    while (found) {
        out[n - 1].function = die_name(&fn);
        if (dwarf_tag(&fn) != DW_TAG_inlined_subroutine || n == max)
            break;
        /* inlined: the next function out holds the call, at its call line */
        int call_line;
        const char *cf = call_file(cu, &fn, &call_line);
        int m = dwarf_getscopes_die(&fn, &scopes);
        found = first_function(scopes, m, 1, &fn);
        free(scopes);
        if (!found)
            break; /* the caller's scope was not found: keep what is known */
        out[n++] = (sym_source){ "??", cf ? joined(d, cu, cf) : NULL, call_line };
    }
    return n;
}

void sym_debuginfo_free(sym_debuginfo *d)
{
    if (!d)
        return;
    for (unsigned i = 0; i < d->n; i++) {
        if (d->objs[i].dwfl)
            dwfl_end(d->objs[i].dwfl);
        free(d->objs[i].path);
    }
    while (d->names) {
        name *x = d->names;
        d->names = x->next;
        free(x);
    }
    free(d->objs);
    free(d);
}
