/* mir - a compiler middle-end.
 *
 * Per function: build basic blocks (a control-flow graph with predecessor
 * and successor arrays) and instructions in doubly linked lists. An
 * instruction is a small node whose size depends on its opcode (a trailing
 * payload models immediates, call-site and debug data); its operand array
 * and the use list of the value it defines grow by realloc as operands are
 * added (phi nodes get one operand per predecessor, calls one per argument).
 * Then `passes` passes run in turn:
 *   dce      delete instructions without uses and side effects, mid-list,
 *            removing them from their operands' use lists (which shrink by
 *            realloc when they become sparse);
 *   combine  replace some arithmetic instructions with a new instruction of
 *            another opcode and size, moving every use over;
 *   insert   insert copies after some instructions and move half of the uses
 *            to the copy.
 * Finally the function is "emitted" (its instruction stream folded into the
 * checksum, which uses ids, never addresses) and freed, or kept alive in a
 * ring of `keep` functions and freed when evicted. Module-level data lives
 * for the whole run: a symbol table (array grown by realloc, one name per
 * function and some globals).
 *
 * Honest memory: every node is fully written; array capacity is zeroed when
 * it grows (wl_zero_spare: whole with --verify full, its touch subset
 * otherwise); payloads carry the tag pattern (wl_block_write, checked by
 * wl_block_verify before free) and every instruction and block a check
 * word; with --verify full, symbol names are re-hashed before they are
 * freed. Mismatch exits 3.
 *
 * --floor: every malloc, realloc and free goes to one floor context.
 *
 * --classic: allocate a 256 KiB block, write and check every byte, free it;
 * classic-iters times (one op = one such cycle). */
#include "common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static wl_opt opts[] = {
    { "functions", WL_INT, 20000, 1, 1e9, "functions compiled", 0, 0 },
    { "blocks", WL_INT, 16, 1, 1 << 16, "mean basic blocks per function", 0, 0 },
    { "insns", WL_INT, 10, 1, 1 << 16, "mean instructions per block", 0, 0 },
    { "passes", WL_INT, 3, 0, 1000, "passes per function (dce, combine, insert, dce, ...)", 0, 0 },
    { "keep", WL_INT, 8, 0, 1 << 20, "functions kept alive, replaced round-robin", 0, 0 },
    { "seed", WL_INT, 1, 0, 9.2e18, "random seed", 0, 0 },
    { "classic", WL_FLAG, 0, 0, 1, "allocate, touch and free one 256 KiB block repeatedly", 0, 0 },
    { "classic-iters", WL_INT, 100, 1, 1e12, "cycles in --classic mode", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "mir", "Compiler middle-end: build CFG and instructions, run passes that edit them, free.",
    opts, NULL,
};

/* ---- counted allocation ------------------------------------------------ */

static wl_live g_live;
static uint64_t g_ops;

static void *m_alloc(size_t n)
{
    g_ops++;
    return wl_malloc(&g_live, n);
}

static void m_free(void *p, size_t n)
{
    g_ops++;
    wl_free(&g_live, p, n);
}

/* Resize an array of `elem`-byte items from *cap to new_cap items; new
 * capacity is zeroed. */
static void *m_resize(void *p, uint32_t *cap, uint32_t new_cap, size_t elem)
{
    size_t old_n = (size_t)*cap * elem, new_n = (size_t)new_cap * elem;
    char *q;
    g_ops++;
    if (!p) {
        q = wl_malloc(&g_live, new_n);
        wl_zero_spare(q, 0, new_n);
    } else {
        q = wl_realloc(&g_live, p, old_n, new_n);
        wl_zero_spare(q, old_n, new_n);
    }
    *cap = new_cap;
    return q;
}

/* Append to a pointer array, doubling from 2. */
#define PUSH(arr, n, cap, x)                                                       \
    do {                                                                           \
        if ((n) == (cap))                                                          \
            (arr) = m_resize((arr), &(cap), (cap) ? (cap) * 2 : 2, sizeof *(arr)); \
        (arr)[(n)++] = (x);                                                        \
    } while (0)

/* ---- IR ---------------------------------------------------------------- */

enum {
    OP_CONST, OP_ADD, OP_SUB, OP_MUL, OP_SHL, OP_LOAD, OP_STORE, OP_CALL,
    OP_PHI, OP_COPY, OP_BR, OP_RET, OP_COUNT
};

/* payload bytes per opcode (immediates, call-site data, branch hints) */
static const uint32_t op_payload[OP_COUNT] = { 8, 0, 0, 0, 8, 8, 8, 32, 0, 0, 16, 0 };
static const int op_side_effect[OP_COUNT] = { 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1 };

typedef struct insn insn;
typedef struct block block;

struct insn {
    insn *prev, *next;
    block *bb;
    insn **ops;   /* operands (values used), grown by realloc */
    insn **uses;  /* instructions using this value, grown by realloc */
    uint64_t tag; /* payload fill tag */
    uint32_t id, nops, opcap, nuses, ucap, payload;
    uint16_t op, check;
    unsigned char data[]; /* payload bytes */
};

struct block {
    insn *head, *tail;
    block **preds, **succs;
    uint32_t id, ninsns, npreds, pcap, nsuccs, scap;
    uint64_t check;
};

typedef struct func {
    uint32_t id, nblocks, bcap, next_id;
    uint32_t sym;     /* index in the symbol table */
    block **blocks;   /* grown by realloc */
    uint64_t tag_base;
} func;

typedef struct symbol {
    char *name;
    uint32_t len;
    uint32_t hash;
} symbol;

static symbol *g_syms;
static uint32_t g_nsyms, g_symcap;

static uint16_t insn_check(const insn *i)
{
    return (uint16_t)wl_mix64((uint64_t)i->id << 8 | i->op);
}

static uint64_t block_check(const block *b)
{
    return wl_mix64((uint64_t)b->id + 0x1234567ULL);
}

static void verify_insn(const insn *i, const char *what)
{
    if (i->op >= OP_COUNT || i->check != insn_check(i) || i->nops > i->opcap ||
        i->nuses > i->ucap)
        wl_corrupted("(mir %s, id %u): header check failed", what, i->id);
}

/* ---- construction ------------------------------------------------------ */

static insn *new_insn(func *f, wl_rng *r, uint16_t op)
{
    uint32_t payload = op_payload[op] + (wl_below(r, 4) == 0 ? 16 : 0); /* debug loc */
    size_t size = sizeof(insn) + payload;
    insn *i = m_alloc(size);
    memset(i, 0, sizeof *i);
    i->id = f->next_id++;
    i->op = op;
    i->payload = payload;
    i->tag = f->tag_base + (uint64_t)i->id * 0x9e3779b97f4a7c15ULL;
    i->check = insn_check(i);
    wl_block_write(i->data, payload, i->tag);
    return i;
}

static void add_operand(insn *user, insn *def)
{
    PUSH(user->ops, user->nops, user->opcap, def);
    PUSH(def->uses, def->nuses, def->ucap, user);
}

/* Remove one occurrence of `user` from def's use list; shrink when sparse. */
static void drop_use(insn *def, insn *user)
{
    for (uint32_t k = 0; k < def->nuses; k++) {
        if (def->uses[k] == user) {
            def->uses[k] = def->uses[--def->nuses];
            def->uses[def->nuses] = NULL;
            if (def->nuses == 0) {
                m_free(def->uses, (size_t)def->ucap * sizeof *def->uses);
                def->uses = NULL;
                def->ucap = 0;
            } else if (def->ucap >= 8 && def->nuses <= def->ucap / 4) {
                def->uses = m_resize(def->uses, &def->ucap, def->ucap / 2, sizeof *def->uses);
            }
            return;
        }
    }
    wl_corrupted("(mir use list of id %u): user %u missing", def->id, user->id);
}

static void link_after(block *b, insn *pos, insn *i)
{
    i->bb = b;
    i->prev = pos;
    i->next = pos ? pos->next : b->head;
    if (i->next)
        i->next->prev = i;
    else
        b->tail = i;
    if (pos)
        pos->next = i;
    else
        b->head = i;
    b->ninsns++;
}

static void unlink_insn(insn *i)
{
    block *b = i->bb;
    if (i->prev)
        i->prev->next = i->next;
    else
        b->head = i->next;
    if (i->next)
        i->next->prev = i->prev;
    else
        b->tail = i->prev;
    b->ninsns--;
}

/* Free an instruction that has no uses left: drop it from its operands'
 * use lists, check the payload, free its arrays and itself. */
static void destroy_insn(insn *i)
{
    verify_insn(i, "instruction");
    if (i->nuses)
        wl_corrupted("(mir instruction %u): freed with %u uses", i->id, i->nuses);
    for (uint32_t k = 0; k < i->nops; k++)
        drop_use(i->ops[k], i);
    if (i->ops)
        m_free(i->ops, (size_t)i->opcap * sizeof *i->ops);
    if (i->uses)
        m_free(i->uses, (size_t)i->ucap * sizeof *i->uses);
    wl_block_verify(i->data, i->payload, i->tag, "mir instruction payload");
    m_free(i, sizeof(insn) + i->payload);
}

static insn *pick_value(wl_rng *r, insn **vals, uint32_t nvals)
{
    /* mostly recent values, sometimes any earlier one */
    if (nvals > 24 && wl_below(r, 4) != 0)
        return vals[nvals - 1 - wl_below(r, 24)];
    return vals[wl_below(r, nvals)];
}

static void add_edge(block *from, block *to)
{
    PUSH(from->succs, from->nsuccs, from->scap, to);
    PUSH(to->preds, to->npreds, to->pcap, from);
}

static void build_function(func *f, wl_rng *r, uint32_t mean_blocks, uint32_t mean_insns)
{
    uint32_t nb = (uint32_t)wl_range(r, 1, 2 * (uint64_t)mean_blocks - 1);
    for (uint32_t k = 0; k < nb; k++) {
        block *b = m_alloc(sizeof *b);
        memset(b, 0, sizeof *b);
        b->id = k;
        b->check = block_check(b);
        PUSH(f->blocks, f->nblocks, f->bcap, b);
    }
    /* CFG: fall through to the next block, sometimes branch elsewhere */
    for (uint32_t k = 0; k + 1 < nb; k++) {
        add_edge(f->blocks[k], f->blocks[k + 1]);
        if (wl_below(r, 3) == 0)
            add_edge(f->blocks[k], f->blocks[wl_below(r, nb)]);
    }
    /* values defined so far, for operands (scratch, grown by realloc) */
    insn **vals = NULL;
    uint32_t nvals = 0, vcap = 0;
    for (uint32_t k = 0; k < nb; k++) {
        block *b = f->blocks[k];
        insn *i;
        /* arguments / constants so that every block has values to use */
        for (int c = 0; c < 2; c++) {
            i = new_insn(f, r, OP_CONST);
            link_after(b, b->tail, i);
            PUSH(vals, nvals, vcap, i);
        }
        if (b->npreds >= 2) {
            i = new_insn(f, r, OP_PHI);
            link_after(b, b->tail, i);
            for (uint32_t p = 0; p < b->npreds; p++)
                add_operand(i, pick_value(r, vals, nvals));
            PUSH(vals, nvals, vcap, i);
        }
        uint32_t ni = (uint32_t)wl_range(r, 1, 2 * (uint64_t)mean_insns - 1);
        for (uint32_t n = 0; n < ni; n++) {
            uint64_t x = wl_below(r, 100);
            uint16_t op = x < 15 ? OP_CONST : x < 35 ? OP_ADD : x < 45 ? OP_SUB
                        : x < 55 ? OP_MUL : x < 70 ? OP_LOAD : x < 85 ? OP_STORE : OP_CALL;
            i = new_insn(f, r, op);
            link_after(b, b->tail, i);
            uint32_t nops = op == OP_CONST ? 0 : op == OP_LOAD ? 1
                          : op == OP_CALL ? (uint32_t)wl_below(r, 7) : 2;
            for (uint32_t o = 0; o < nops; o++)
                add_operand(i, pick_value(r, vals, nvals));
            if (op != OP_STORE)
                PUSH(vals, nvals, vcap, i);
        }
        i = new_insn(f, r, b->nsuccs ? OP_BR : OP_RET);
        link_after(b, b->tail, i);
        add_operand(i, pick_value(r, vals, nvals));
    }
    if (vals)
        m_free(vals, (size_t)vcap * sizeof *vals);
}

/* ---- passes ------------------------------------------------------------ */

static uint64_t pass_dce(func *f)
{
    uint64_t removed = 0;
    for (uint32_t k = 0; k < f->nblocks; k++) {
        block *b = f->blocks[k];
        /* backwards, so chains of dead values go in one sweep */
        for (insn *i = b->tail, *prev; i; i = prev) {
            prev = i->prev;
            if (i->nuses == 0 && !op_side_effect[i->op]) {
                unlink_insn(i);
                destroy_insn(i);
                removed++;
            }
        }
    }
    return removed;
}

/* Move every use of `from` to `to`. */
static void move_uses(insn *from, insn *to, uint32_t keep_first)
{
    while (from->nuses > keep_first) {
        insn *user = from->uses[from->nuses - 1];
        for (uint32_t o = 0; o < user->nops; o++) {
            if (user->ops[o] == from) {
                user->ops[o] = to;
                break;
            }
        }
        drop_use(from, user);
        PUSH(to->uses, to->nuses, to->ucap, user);
    }
}

static uint64_t pass_combine(func *f, wl_rng *r)
{
    uint64_t replaced = 0;
    for (uint32_t k = 0; k < f->nblocks; k++) {
        block *b = f->blocks[k];
        for (insn *i = b->head, *next; i; i = next) {
            next = i->next;
            if ((i->op != OP_MUL && i->op != OP_ADD) || wl_below(r, 3) != 0)
                continue;
            /* mul -> shl (bigger node), add -> sub-of-negated (same shape) */
            insn *n = new_insn(f, r, i->op == OP_MUL ? OP_SHL : OP_SUB);
            for (uint32_t o = 0; o < i->nops; o++)
                add_operand(n, i->ops[o]);
            link_after(b, i, n);
            move_uses(i, n, 0);
            unlink_insn(i);
            destroy_insn(i);
            replaced++;
        }
    }
    return replaced;
}

static uint64_t pass_insert(func *f, wl_rng *r)
{
    uint64_t inserted = 0;
    for (uint32_t k = 0; k < f->nblocks; k++) {
        block *b = f->blocks[k];
        for (insn *i = b->head; i; i = i->next) {
            if (i->nuses < 2 || i->op == OP_PHI || wl_below(r, 3) != 0)
                continue;
            insn *c = new_insn(f, r, OP_COPY);
            link_after(b, i, c);
            move_uses(i, c, i->nuses / 2);
            add_operand(c, i);
            i = c;
            inserted++;
        }
    }
    return inserted;
}

/* ---- emit and free ----------------------------------------------------- */

static uint64_t emit(const func *f, uint64_t h)
{
    h = wl_fold(h, (uint64_t)f->id << 32 | f->nblocks);
    for (uint32_t k = 0; k < f->nblocks; k++) {
        const block *b = f->blocks[k];
        if (b->check != block_check(b))
            wl_corrupted("(mir block %u): check word failed", b->id);
        h = wl_fold(h, (uint64_t)b->ninsns << 32 | (uint64_t)b->npreds << 16 | b->nsuccs);
        for (const insn *i = b->head; i; i = i->next) {
            verify_insn(i, "instruction");
            uint64_t x = (uint64_t)i->id << 32 | (uint64_t)i->op << 24 | i->nuses;
            for (uint32_t o = 0; o < i->nops; o++)
                x = x * 31 + i->ops[o]->id;
            h = wl_fold(h, x);
        }
    }
    return h;
}

static void free_function(func *f)
{
    /* uses point across blocks: first forget all use lists, then free */
    for (uint32_t k = 0; k < f->nblocks; k++)
        for (insn *i = f->blocks[k]->head; i; i = i->next) {
            verify_insn(i, "instruction");
            if (i->uses)
                m_free(i->uses, (size_t)i->ucap * sizeof *i->uses);
            i->uses = NULL;
            i->nuses = i->ucap = 0;
        }
    for (uint32_t k = 0; k < f->nblocks; k++) {
        block *b = f->blocks[k];
        if (b->check != block_check(b))
            wl_corrupted("(mir block %u): check word failed", b->id);
        for (insn *i = b->head, *next; i; i = next) {
            next = i->next;
            if (i->ops)
                m_free(i->ops, (size_t)i->opcap * sizeof *i->ops);
            wl_block_verify(i->data, i->payload, i->tag, "mir instruction payload");
            m_free(i, sizeof(insn) + i->payload);
        }
        if (b->preds)
            m_free(b->preds, (size_t)b->pcap * sizeof *b->preds);
        if (b->succs)
            m_free(b->succs, (size_t)b->scap * sizeof *b->succs);
        m_free(b, sizeof *b);
    }
    m_free(f->blocks, (size_t)f->bcap * sizeof *f->blocks);
    m_free(f, sizeof *f);
}

/* ---- module-level symbols ---------------------------------------------- */

static uint32_t add_symbol(wl_rng *r, const char *prefix, uint32_t id)
{
    char tmp[80];
    int n = snprintf(tmp, sizeof tmp, "%s%u_", prefix, id);
    uint32_t extra = (uint32_t)wl_range(r, 4, 40);
    for (uint32_t k = 0; k < extra && (size_t)n + 1 < sizeof tmp; k++)
        tmp[n++] = (char)('a' + wl_below(r, 26));
    tmp[n] = '\0';
    symbol s = { m_alloc((size_t)n + 1), (uint32_t)n, 0 };
    memcpy(s.name, tmp, (size_t)n + 1);
    s.hash = (uint32_t)wl_hash_bytes(0, s.name, s.len);
    PUSH(g_syms, g_nsyms, g_symcap, s);
    return g_nsyms - 1;
}

static uint64_t free_symbols(uint64_t h)
{
    for (uint32_t k = 0; k < g_nsyms; k++) {
        symbol *s = &g_syms[k];
        if (wl_verify_full &&
            ((uint32_t)wl_hash_bytes(0, s->name, s->len) != s->hash || s->name[s->len]))
            wl_corrupted("(mir symbol %u, %u bytes): name changed", k, s->len + 1);
        h = wl_fold(h, s->hash);
        m_free(s->name, (size_t)s->len + 1);
    }
    if (g_syms)
        m_free(g_syms, (size_t)g_symcap * sizeof *g_syms);
    g_syms = NULL;
    g_nsyms = g_symcap = 0;
    return h;
}

/* ---- driver ------------------------------------------------------------ */

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    if (wl_int(&spec, "classic"))
        return wl_run_classic(&spec, &g_live, 256 * 1024, "mir classic block", "256 KiB malloc+touch+free cycle");
    int64_t nfuncs = wl_int(&spec, "functions");
    uint32_t mean_blocks = (uint32_t)wl_int(&spec, "blocks");
    uint32_t mean_insns = (uint32_t)wl_int(&spec, "insns");
    int64_t passes = wl_int(&spec, "passes");
    size_t keep = (size_t)wl_int(&spec, "keep");
    wl_rng r = wl_rng_stream((uint64_t)wl_int(&spec, "seed"), 0);
    func **kept = keep ? calloc(keep, sizeof *kept) : NULL;
    /* the kept functions (about 512 bytes per instruction at most) and the
     * module's symbols */
    wl_live_floor(&g_live, 2 * ((keep + 2) * mean_blocks * mean_insns * 512 +
                                (size_t)nfuncs * 128));
    if (keep && !kept)
        wl_fatal("out of memory");
    uint64_t h = 0, insns_built = 0, edits = 0;
    size_t next_slot = 0;

    double t0 = wl_now();
    for (int64_t fi = 0; fi < nfuncs; fi++) {
        func *f = m_alloc(sizeof *f);
        memset(f, 0, sizeof *f);
        f->id = (uint32_t)fi;
        f->tag_base = wl_next(&r);
        f->sym = add_symbol(&r, "fn", f->id);
        for (uint64_t g = wl_below(&r, 3); g > 0; g--)
            add_symbol(&r, "global", f->id);
        build_function(f, &r, mean_blocks, mean_insns);
        insns_built += f->next_id;
        for (int64_t p = 0; p < passes; p++) {
            uint64_t n;
            switch (p % 3) {
            case 0: n = pass_dce(f); break;
            case 1: n = pass_combine(f, &r); break;
            default: n = pass_insert(f, &r); break;
            }
            edits += n;
            h = wl_fold(h, n);
        }
        h = emit(f, h);
        if (keep && wl_below(&r, 8) == 0) {
            func **slot = &kept[next_slot++ % keep];
            if (*slot) {
                h = emit(*slot, h);
                free_function(*slot);
            }
            *slot = f;
        } else {
            free_function(f);
        }
    }
    double secs = wl_now() - t0;
    int64_t final_live = g_live.cur;
    for (size_t k = 0; k < keep; k++)
        if (kept[k]) {
            h = emit(kept[k], h);
            free_function(kept[k]);
        }
    free(kept);
    h = free_symbols(h);
    wl_live_floor_done(&g_live);

    wl_report rep = {
        .threads = 1,
        .ops = g_ops,
        .op_unit = "malloc, realloc or free",
        .seconds = secs,
        .peak_live_bytes = g_live.peak,
        .final_live_bytes = final_live,
        .checksum = h,
    };
    rep.extra[0].name = "instructions";
    rep.extra[0].value = (double)insns_built;
    rep.extra[1].name = "edits";
    rep.extra[1].value = (double)edits;
    wl_report_print(&rep);
    return 0;
}
