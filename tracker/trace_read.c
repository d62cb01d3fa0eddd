/* trace_read.c - see trace_read.h. */
#include "trace_read.h"

#include "../symbolizer/debuginfo.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void tr_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fprintf(stderr, "hakmem-trace: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

void *tr_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        tr_die(1, "out of memory (%zu bytes)", n);
    return p;
}

void *tr_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        tr_die(1, "out of memory (%zu bytes)", n);
    return q;
}

static char *tr_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(tr_xmalloc(n), s, n);
}

const char *tr_op_name(uint8_t op)
{
    switch (op) {
    case HT_OP_MALLOC: return "malloc";
    case HT_OP_FREE: return "free";
    case HT_OP_CALLOC: return "calloc";
    case HT_OP_REALLOC: return "realloc";
    case HT_OP_REALLOCARRAY: return "reallocarray";
    case HT_OP_POSIX_MEMALIGN: return "posix_memalign";
    case HT_OP_ALIGNED_ALLOC: return "aligned_alloc";
    case HT_OP_MEMALIGN: return "memalign";
    case HT_OP_VALLOC: return "valloc";
    case HT_OP_PVALLOC: return "pvalloc";
    case HT_OP_USABLE_SIZE: return "malloc_usable_size";
    case HT_OP_STACK: return "stack";
    case HT_OP_END: return "end";
    default: return "?";
    }
}

/* ---- one file ---------------------------------------------------------- */

static bool bad(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool bad(const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hakmem-trace: %s: ", path);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return false;
}

/* Maps and checks one file: header, then every unit's shape. */
static bool load_file(tr_file *f)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bad(f->path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return bad(f->path, "cannot stat: %s", strerror(errno));
    }
    if ((size_t)st.st_size < HT_HEADER_SIZE) {
        close(fd);
        if (st.st_size >= 8) {
            char m[8];
            if (pread(fd, m, 8, 0) == 8 && memcmp(m, HT_MAGIC, 8) != 0)
                return bad(f->path, "not a hakmem trace file (no HAKTRACE header)");
        }
        return bad(f->path, "not a hakmem trace file: %lld bytes, shorter than the %d-byte header",
                   (long long)st.st_size, HT_HEADER_SIZE);
    }
    f->map_size = (size_t)st.st_size;
    f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED)
        return bad(f->path, "cannot map: %s", strerror(errno));
    memcpy(&f->h, f->map, sizeof f->h);
    if (memcmp(f->h.magic, HT_MAGIC, 8) != 0)
        return bad(f->path, "not a hakmem trace file (no HAKTRACE header)");
    if (f->h.version != HT_VERSION)
        return bad(f->path, "trace format version %u; this reader knows version %d",
                   f->h.version, HT_VERSION);
    if (f->h.header_size != HT_HEADER_SIZE || f->h.unit_size != HT_UNIT || f->h.mode > 1)
        return bad(f->path, "corrupt header (header size %u, unit %u, mode %u)",
                   f->h.header_size, f->h.unit_size, f->h.mode);
    f->h.exe[sizeof f->h.exe - 1] = 0;
    f->h.comm[sizeof f->h.comm - 1] = 0;
    uint8_t flag_mask = f->h.mode == HT_MODE_SAMPLED ? HT_EV_ALL : 0;
    size_t body = f->map_size - HT_HEADER_SIZE;
    f->units = (const ht_event *)(f->map + HT_HEADER_SIZE);
    f->nunits = body / HT_UNIT;
    f->cut_bytes = body % HT_UNIT;
    for (uint64_t k = 0; k < f->nunits; k++) {
        const ht_event *e = &f->units[k];
        uint64_t off = HT_HEADER_SIZE + k * HT_UNIT;
        if (e->reserved16 || (e->flags & ~flag_mask) || (e->old_size && !flag_mask))
            return bad(f->path, "corrupt record at byte %" PRIu64 " (reserved fields or flags set)", off);
        if (e->op == HT_OP_STACK) {
            uint64_t n = e->size, units = 1 + (n + HT_FRAMES_PER_UNIT - 1) / HT_FRAMES_PER_UNIT;
            if (n == 0 || n > HT_MAX_FRAMES || e->stack == 0)
                return bad(f->path, "corrupt stack record at byte %" PRIu64, off);
            if (k + units > f->nunits) { /* cut in the middle of its frames */
                f->cut_bytes += (f->nunits - k) * HT_UNIT;
                f->nunits = k;
                break;
            }
            if (e->stack > f->nstack_ids)
                f->nstack_ids = e->stack;
            k += units - 1;
            continue;
        }
        if (e->op == HT_OP_END) {
            f->has_end = true;
            f->ended_events = e->size;
            continue;
        }
        if (e->op < HT_OP_MALLOC || e->op > HT_OP_LAST_CALL)
            return bad(f->path, "corrupt record at byte %" PRIu64 " (operation %u)", off, e->op);
        if (e->stack && !(f->h.flags & HT_F_STACKS))
            return bad(f->path, "corrupt record at byte %" PRIu64 " (stack id without stacks)", off);
        f->events++;
        f->last_time = e->time;
    }
    return true;
}

/* ---- instances and stacks ------------------------------------------------ */

static int cmp_file_ptr(const void *a, const void *b)
{
    const tr_file *x = *(tr_file *const *)a, *y = *(tr_file *const *)b;
    return x->h.thread_index < y->h.thread_index ? -1 : x->h.thread_index > y->h.thread_index;
}

static void build_sites(tr_instance *in)
{
    tr_map by_hash;
    tr_map_init(&by_hash);
    uint32_t cap = 16;
    in->sites = tr_xmalloc(cap * sizeof *in->sites);
    in->nsites = 1;
    for (uint32_t i = 0; i < in->nfiles; i++) {
        tr_file *f = in->files[i];
        f->site_of = calloc((size_t)f->nstack_ids + 1, sizeof *f->site_of);
        if (!f->site_of)
            tr_die(1, "out of memory");
        for (uint64_t k = 0; k < f->nunits; k++) {
            const ht_event *e = &f->units[k];
            if (e->op != HT_OP_STACK)
                continue;
            uint64_t *v = tr_map_get(&by_hash, e->aux);
            uint32_t site;
            if (v) {
                site = (uint32_t)*v;
            } else {
                if (in->nsites == cap) {
                    cap *= 2;
                    in->sites = tr_xrealloc(in->sites, cap * sizeof *in->sites);
                }
                site = in->nsites++;
                in->sites[site] = (tr_site){ e->aux, (uint32_t)e->size, (const uint64_t *)(e + 1) };
                tr_map_put(&by_hash, e->aux, site);
            }
            f->site_of[e->stack] = site;
            k += (e->size + HT_FRAMES_PER_UNIT - 1) / HT_FRAMES_PER_UNIT;
        }
    }
    tr_map_free(&by_hash);
}

static int cmp_inst(const void *a, const void *b)
{
    const tr_instance *x = a, *y = b;
    return x->epoch < y->epoch ? -1 : x->epoch > y->epoch;
}

/* Every *.htrk file of the run's directory, not yet read; false (with a
 * message) when there is none or the directory cannot be read. */
static bool list_files(tr_run *run)
{
    const char *dir = run->dir;
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "hakmem-trace: %s: cannot open the trace directory: %s\n", dir, strerror(errno));
        return false;
    }
    uint32_t cap = 16;
    run->files = tr_xmalloc(cap * sizeof *run->files);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".htrk") != 0)
            continue;
        if (run->nfiles == cap) {
            cap *= 2;
            run->files = tr_xrealloc(run->files, cap * sizeof *run->files);
        }
        tr_file *f = &run->files[run->nfiles++];
        memset(f, 0, sizeof *f);
        f->path = tr_xmalloc(strlen(dir) + n + 2);
        sprintf(f->path, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (run->nfiles == 0) {
        fprintf(stderr, "hakmem-trace: %s: no trace files (*.htrk) in this directory\n", dir);
        return false;
    }
    return true;
}

/* Instances: files with the same pid and epoch, counted (their files are
 * gathered by gather_instance_files), in order of their epochs. */
static void group_instances(tr_run *run)
{
    run->inst = calloc(run->nfiles, sizeof *run->inst);
    if (!run->inst)
        tr_die(1, "out of memory");
    for (uint32_t i = 0; i < run->nfiles; i++) {
        tr_file *f = &run->files[i];
        tr_instance *in = NULL;
        for (uint32_t k = 0; k < run->ninst && !in; k++)
            if (run->inst[k].pid == f->h.pid && run->inst[k].epoch == f->h.epoch_ns)
                in = &run->inst[k];
        if (!in) {
            in = &run->inst[run->ninst++];
            in->pid = f->h.pid;
            in->ppid = f->h.ppid;
            in->epoch = f->h.epoch_ns;
            in->parent_epoch = f->h.parent_epoch_ns;
            in->flags = f->h.flags;
            in->mode = f->h.mode;
            in->sample_threshold = f->h.sample_threshold;
            in->sample_every = f->h.sample_every;
            in->exe = f->h.exe;
            in->comm = f->h.comm;
        }
        in->nfiles++;
    }
    qsort(run->inst, run->ninst, sizeof *run->inst, cmp_inst);
}

/* An instance's files, one per thread in thread order, its record count,
 * last time, call sites and maps file; false (with a message) when its
 * files disagree. */
static bool gather_instance_files(tr_run *run, tr_instance *in)
{
    in->files = tr_xmalloc(in->nfiles * sizeof *in->files);
    in->nfiles = 0;
    for (uint32_t i = 0; i < run->nfiles; i++) {
        tr_file *f = &run->files[i];
        if (f->h.pid != in->pid || f->h.epoch_ns != in->epoch)
            continue;
        if (f->h.mode != in->mode || f->h.flags != in->flags)
            return bad(f->path, "its mode or flags differ from the other files of process %" PRIu64, in->pid);
        in->files[in->nfiles++] = f;
        in->events += f->events;
        if (f->last_time > in->last_time)
            in->last_time = f->last_time;
    }
    qsort(in->files, in->nfiles, sizeof *in->files, cmp_file_ptr);
    for (uint32_t i = 0; i < in->nfiles; i++) {
        if (i && in->files[i]->h.thread_index == in->files[i - 1]->h.thread_index)
            return bad(in->files[i]->path, "a second file for thread %u of process %" PRIu64,
                       in->files[i]->h.thread_index, in->pid);
        in->files[i]->thread = i;
    }
    build_sites(in);
    snprintf(in->maps_path, sizeof in->maps_path, "%s/%" PRIu64 "-%" PRIu64 ".maps", run->dir, in->pid,
             in->epoch);
    if (access(in->maps_path, R_OK) != 0)
        in->maps_path[0] = 0;
    return true;
}

bool tr_open(const char *dir, tr_run *run)
{
    memset(run, 0, sizeof *run);
    run->dir = dir;
    if (!list_files(run))
        return false;
    for (uint32_t i = 0; i < run->nfiles; i++)
        if (!load_file(&run->files[i]))
            return false;
    group_instances(run);
    for (uint32_t k = 0; k < run->ninst; k++)
        if (!gather_instance_files(run, &run->inst[k]))
            return false;
    return true;
}

tr_instance *tr_pick_instance(tr_run *run, uint64_t pid)
{
    tr_instance *in = NULL;
    for (uint32_t k = 0; k < run->ninst; k++) {
        tr_instance *x = &run->inst[k];
        if (pid ? x->pid == pid && !in : !in || x->events > in->events)
            in = x;
    }
    if (pid && !in)
        fprintf(stderr, "hakmem-trace: %s: no process %" PRIu64 " in this trace\n", run->dir, pid);
    return in;
}

static void symtabs_free(void);

void tr_close(tr_run *run)
{
    symtabs_free();
    for (uint32_t i = 0; i < run->nfiles; i++) {
        tr_file *f = &run->files[i];
        if (f->map && f->map != MAP_FAILED)
            munmap((void *)f->map, f->map_size);
        free(f->site_of);
        free(f->path);
    }
    for (uint32_t k = 0; k < run->ninst; k++) {
        free(run->inst[k].files);
        free(run->inst[k].sites);
    }
    free(run->files);
    free(run->inst);
    memset(run, 0, sizeof *run);
}

/* ---- the walk ------------------------------------------------------------ */

/* Moves a cursor to its next call record; false at the end of the file. */
static bool cursor_settle(const tr_file *f, tr_cursor *c)
{
    while (c->pos < f->nunits) {
        const ht_event *e = &f->units[c->pos];
        if (e->op == HT_OP_STACK) {
            c->pos += 1 + (e->size + HT_FRAMES_PER_UNIT - 1) / HT_FRAMES_PER_UNIT;
            continue;
        }
        if (e->op == HT_OP_END) {
            c->pos++;
            continue;
        }
        if (tr_is_realloc_op(e->op) && e->aux && c->phase == 0) {
            uint64_t start = e->start > e->time ? e->time : e->start;
            c->key = e->time - start;
        } else {
            if (c->phase == 0 && !(tr_is_realloc_op(e->op) && e->aux))
                c->phase = 1;
            c->key = e->time;
        }
        return true;
    }
    return false;
}

static inline bool heap_less(const tr_walk *w, uint32_t a, uint32_t b)
{
    uint64_t ka = w->cur[a].key, kb = w->cur[b].key;
    return ka < kb || (ka == kb && a < b);
}

static void heap_down(tr_walk *w, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->nheap && heap_less(w, w->heap[l], w->heap[m]))
            m = l;
        if (r < w->nheap && heap_less(w, w->heap[r], w->heap[m]))
            m = r;
        if (m == i)
            return;
        uint32_t t = w->heap[i];
        w->heap[i] = w->heap[m];
        w->heap[m] = t;
        i = m;
    }
}

void tr_walk_init(tr_walk *w, tr_instance *in)
{
    w->in = in;
    w->cur = calloc(in->nfiles ? in->nfiles : 1, sizeof *w->cur);
    w->heap = tr_xmalloc((in->nfiles ? in->nfiles : 1) * sizeof *w->heap);
    if (!w->cur)
        tr_die(1, "out of memory");
    w->nheap = 0;
    for (uint32_t i = 0; i < in->nfiles; i++)
        if (cursor_settle(in->files[i], &w->cur[i]))
            w->heap[w->nheap++] = i;
    for (uint32_t i = w->nheap / 2; i-- > 0;)
        heap_down(w, i);
}

bool tr_walk_next(tr_walk *w, tr_item *it)
{
    if (w->nheap == 0)
        return false;
    uint32_t fi = w->heap[0];
    const tr_file *f = w->in->files[fi];
    tr_cursor *c = &w->cur[fi];
    const ht_event *e = &f->units[c->pos];
    it->e = e;
    it->key = c->key;
    it->thread = fi;
    if (tr_is_alloc_op(e->op)) {
        it->kind = TR_ALLOC;
    } else if (e->op == HT_OP_FREE) {
        it->kind = TR_FREE;
    } else if (tr_is_realloc_op(e->op)) {
        it->kind = c->phase == 0 ? TR_REALLOC_OLD : TR_REALLOC_NEW;
    } else {
        it->kind = TR_OTHER;
    }
    if (it->kind == TR_REALLOC_OLD) {
        c->phase = 1;
        c->key = e->time;
    } else {
        c->pos++;
        c->phase = 0;
        if (!cursor_settle(f, c)) {
            w->heap[0] = w->heap[--w->nheap];
        }
    }
    if (w->nheap)
        heap_down(w, 0);
    return true;
}

void tr_walk_done(tr_walk *w)
{
    free(w->cur);
    free(w->heap);
}

/* ---- pointer map (linear probing, backward-shift deletion) ----------------- */

void tr_map_init(tr_map *m)
{
    m->mask = 1023;
    m->count = 0;
    m->keys = calloc(m->mask + 1, sizeof *m->keys);
    m->vals = tr_xmalloc((m->mask + 1) * sizeof *m->vals);
    if (!m->keys)
        tr_die(1, "out of memory");
}

void tr_map_free(tr_map *m)
{
    free(m->keys);
    free(m->vals);
}

static inline uint64_t map_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

uint64_t *tr_map_get(tr_map *m, uint64_t key)
{
    for (uint64_t i = map_hash(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->keys[i] == key)
            return &m->vals[i];
        if (m->keys[i] == 0)
            return NULL;
    }
}

static void map_grow(tr_map *m)
{
    tr_map n;
    n.mask = m->mask * 2 + 1;
    n.count = 0;
    n.keys = calloc(n.mask + 1, sizeof *n.keys);
    n.vals = tr_xmalloc((n.mask + 1) * sizeof *n.vals);
    if (!n.keys)
        tr_die(1, "out of memory");
    for (uint64_t i = 0; i <= m->mask; i++)
        if (m->keys[i])
            tr_map_put(&n, m->keys[i], m->vals[i]);
    tr_map_free(m);
    *m = n;
}

void tr_map_put(tr_map *m, uint64_t key, uint64_t val)
{
    if ((m->count + 1) * 4 > (m->mask + 1) * 3)
        map_grow(m);
    uint64_t i = map_hash(key) & m->mask;
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & m->mask;
    if (!m->keys[i])
        m->count++;
    m->keys[i] = key;
    m->vals[i] = val;
}

bool tr_map_take(tr_map *m, uint64_t key, uint64_t *val)
{
    uint64_t i = map_hash(key) & m->mask;
    while (m->keys[i] != key) {
        if (m->keys[i] == 0)
            return false;
        i = (i + 1) & m->mask;
    }
    if (val)
        *val = m->vals[i];
    m->count--;
    /* backward shift: move later entries of the run into the hole */
    uint64_t hole = i;
    for (uint64_t j = (i + 1) & m->mask; m->keys[j]; j = (j + 1) & m->mask) {
        uint64_t home = map_hash(m->keys[j]) & m->mask;
        /* j's entry may move to hole if home is not in (hole, j] cyclically */
        bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            m->keys[hole] = m->keys[j];
            m->vals[hole] = m->vals[j];
            hole = j;
        }
    }
    m->keys[hole] = 0;
    return true;
}

/* ---- symbols --------------------------------------------------------------- */

typedef struct sym {
    uint64_t value, size;
    const char *name;
} sym;

/* A file's symbols, read once per run of this program (every process of a
 * trace maps the same libraries). */
typedef struct symtab {
    char *path;
    bool loaded, exec;  /* exec: ET_EXEC, symbols at absolute addresses */
    void *map;
    size_t map_size;
    sym *syms;
    size_t nsyms;
} symtab;

static symtab *g_tabs;
static uint32_t g_ntabs, g_captabs;
static sym_debuginfo *g_debuginfo; /* file:line from DWARF (symbolizer/debuginfo.c) */

typedef struct module {
    uint32_t tab;       /* g_tabs index */
    uint64_t base;      /* load address of file offset 0 in this process */
} module;

typedef struct mapping {
    uint64_t start, end;
    uint32_t module;
} mapping;

struct tr_symbolizer {
    module *mods;
    uint32_t nmods;
    mapping *maps;
    uint32_t nmaps;
};

static uint32_t symtab_of(const char *path)
{
    for (uint32_t i = 0; i < g_ntabs; i++)
        if (strcmp(g_tabs[i].path, path) == 0)
            return i;
    if (g_ntabs == g_captabs) {
        g_captabs = g_captabs ? g_captabs * 2 : 32;
        g_tabs = tr_xrealloc(g_tabs, g_captabs * sizeof *g_tabs);
    }
    memset(&g_tabs[g_ntabs], 0, sizeof g_tabs[g_ntabs]);
    g_tabs[g_ntabs].path = tr_strdup(path);
    return g_ntabs++;
}

static int cmp_sym(const void *a, const void *b)
{
    const sym *x = a, *y = b;
    return x->value < y->value ? -1 : x->value > y->value;
}

static void load_symbols(symtab *m)
{
    m->loaded = true;
    int fd = open(m->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(Elf64_Ehdr)) {
        close(fd);
        return;
    }
    m->map_size = (size_t)st.st_size;
    m->map = mmap(NULL, m->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        return;
    }
    const unsigned char *b = m->map;
    const Elf64_Ehdr *eh = m->map;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > m->map_size)
        return;
    m->exec = eh->e_type == ET_EXEC;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(b + eh->e_shoff);
    const Elf64_Shdr *tab = NULL;
    for (int pass = 0; pass < 2 && !tab; pass++)
        for (unsigned i = 0; i < eh->e_shnum; i++)
            if (sh[i].sh_type == (pass == 0 ? SHT_SYMTAB : SHT_DYNSYM) && sh[i].sh_entsize)
                tab = &sh[i];
    if (!tab || tab->sh_link >= eh->e_shnum || tab->sh_offset + tab->sh_size > m->map_size)
        return;
    const Elf64_Shdr *strs = &sh[tab->sh_link];
    if (strs->sh_offset + strs->sh_size > m->map_size)
        return;
    size_t n = tab->sh_size / sizeof(Elf64_Sym);
    const Elf64_Sym *s = (const Elf64_Sym *)(b + tab->sh_offset);
    m->syms = tr_xmalloc(n * sizeof *m->syms);
    for (size_t i = 0; i < n; i++) {
        if (ELF64_ST_TYPE(s[i].st_info) != STT_FUNC || !s[i].st_value || s[i].st_name >= strs->sh_size)
            continue;
        m->syms[m->nsyms++] = (sym){ s[i].st_value, s[i].st_size,
                                     (const char *)b + strs->sh_offset + s[i].st_name };
    }
    qsort(m->syms, m->nsyms, sizeof *m->syms, cmp_sym);
}

static void symtabs_free(void)
{
    for (uint32_t i = 0; i < g_ntabs; i++) {
        if (g_tabs[i].map)
            munmap(g_tabs[i].map, g_tabs[i].map_size);
        free(g_tabs[i].syms);
        free(g_tabs[i].path);
    }
    free(g_tabs);
    g_tabs = NULL;
    g_ntabs = g_captabs = 0;
    sym_debuginfo_free(g_debuginfo);
    g_debuginfo = NULL;
}

tr_symbolizer *tr_symbolizer_new(const char *maps_path)
{
    tr_symbolizer *s = calloc(1, sizeof *s);
    if (!s)
        tr_die(1, "out of memory");
    FILE *f = maps_path && *maps_path ? fopen(maps_path, "r") : NULL;
    if (!f)
        return s;
    char line[8192];
    uint32_t mcap = 0, pcap = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long start, end, off;
        char perms[8];
        int pathpos = 0;
        if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &start, &end, perms, &off, &pathpos) < 4 ||
            !pathpos || line[pathpos] != '/')
            continue;
        char *path = line + pathpos;
        path[strcspn(path, "\n")] = 0;
        uint32_t tab = symtab_of(path), mi;
        for (mi = 0; mi < s->nmods; mi++)
            if (s->mods[mi].tab == tab)
                break;
        if (mi == s->nmods) {
            if (s->nmods == mcap) {
                mcap = mcap ? mcap * 2 : 16;
                s->mods = tr_xrealloc(s->mods, mcap * sizeof *s->mods);
            }
            s->mods[mi] = (module){ tab, start - off };
            s->nmods++;
        }
        if (off == 0)
            s->mods[mi].base = start;
        if (s->nmaps == pcap) {
            pcap = pcap ? pcap * 2 : 64;
            s->maps = tr_xrealloc(s->maps, pcap * sizeof *s->maps);
        }
        s->maps[s->nmaps++] = (mapping){ start, end, mi };
    }
    fclose(f);
    return s;
}

/* " at FILE:LINE" of the instruction at vaddr of the object at path, when its
 * DWARF has it, and ", inlined: F at FILE:LINE, ..." for the functions
 * inlined there, outermost first; nothing without line information. The
 * frames are return addresses: the caller asks about the byte before. */
static void append_source(const char *path, uint64_t vaddr, char *out, size_t size)
{
    if (!g_debuginfo)
        g_debuginfo = sym_debuginfo_new();
    sym_source src[SYM_SOURCE_MAX];
    int n = sym_debuginfo_lookup(g_debuginfo, path, vaddr, src, SYM_SOURCE_MAX, NULL);
    size_t len = 0;
    for (int k = n - 1; k >= 0 && len < size; k--) {
        const char *file = src[k].file ? src[k].file : "??";
        if (k == n - 1)
            len += (size_t)snprintf(out + len, size - len, " at %s:%d", file, src[k].line);
        else
            len += (size_t)snprintf(out + len, size - len, "%s %s at %s:%d", k == n - 2 ? ", inlined:" : ",",
                                    src[k].function, file, src[k].line);
    }
}

const char *tr_symbolize(tr_symbolizer *s, uint64_t addr, char *buf, size_t size)
{
    /* the mapping holding addr: /proc/self/maps lists them in address order */
    uint32_t lo0 = 0, hi0 = s->nmaps;
    while (lo0 < hi0) {
        uint32_t mid = (lo0 + hi0) / 2;
        if (s->maps[mid].start <= addr)
            lo0 = mid + 1;
        else
            hi0 = mid;
    }
    for (uint32_t i = lo0 ? lo0 - 1 : 0; i < lo0; i++) {
        if (addr < s->maps[i].start || addr >= s->maps[i].end)
            continue;
        const module *mod = &s->mods[s->maps[i].module];
        symtab *m = &g_tabs[mod->tab];
        if (!m->loaded)
            load_symbols(m);
        const char *base = strrchr(m->path, '/') ? strrchr(m->path, '/') + 1 : m->path;
        uint64_t rel = m->exec ? addr : addr - mod->base;
        /* last symbol with value <= rel */
        size_t lo = 0, hi = m->nsyms;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (m->syms[mid].value <= rel)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t len;
        if (lo > 0 && (!m->syms[lo - 1].size || rel < m->syms[lo - 1].value + m->syms[lo - 1].size + 16)) {
            const sym *y = &m->syms[lo - 1];
            len = (size_t)snprintf(buf, size, "%s+0x%" PRIx64 " (%s)", y->name, rel - y->value, base);
        } else {
            len = (size_t)snprintf(buf, size, "%s+0x%" PRIx64, base, rel);
        }
        if (len < size && rel)
            append_source(m->path, rel - 1, buf + len, size - len);
        return buf;
    }
    snprintf(buf, size, "0x%" PRIx64, addr);
    return buf;
}

void tr_symbolizer_free(tr_symbolizer *s)
{
    free(s->mods);
    free(s->maps);
    free(s);
}
