/* json - JSON document processing.
 *
 * Per document: generate deterministic JSON text (nested objects and arrays,
 * keys from a vocabulary, strings of realistic lengths with escapes and
 * UTF-8, integers and reals) into a buffer that grows by realloc; parse it
 * with a recursive-descent parser into a DOM (one small node per value,
 * member and element arrays that grow by realloc, a malloc'd copy of every
 * string and key); walk and query the tree; serialize it back and compare
 * with the text (the generator writes the canonical form, so the two must
 * be equal byte for byte); then free the tree, or keep it alive in a ring of
 * `keep` slots, evicting the oldest (which is serialized again and checked
 * against the hash of its text before it is freed). Document sizes are
 * log-uniform between doc-bytes/8 and 4 x doc-bytes.
 *
 * Honest memory: every node and string is fully written; the unused
 * capacity of a buffer or array is zeroed when it grows (wl_zero_spare:
 * whole with --verify full, its touch subset otherwise). Every node carries
 * a check word, checked when it is walked and freed; with --verify full,
 * before a string or key is freed its hash is also checked against the one
 * taken at parse time. Any mismatch exits 3.
 *
 * --floor: every malloc, realloc and free goes to one floor context
 * (prefaulted for the kept documents plus the largest document's tree).
 *
 * --classic: allocate a 64 KiB block, write and check every byte, free it;
 * classic-iters times (one op = one such cycle). */
#include "common.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static wl_opt opts[] = {
    { "docs", WL_INT, 2000, 1, 1e9, "documents processed", 0, 0 },
    { "doc-bytes", WL_INT, 24576, 64, 1 << 28,
      "mean document text size (each is 1/8x to 4x, log-uniform)", 0, 0 },
    { "keep", WL_INT, 16, 0, 1 << 20, "documents kept alive, replaced round-robin", 0, 0 },
    { "seed", WL_INT, 1, 0, 9.2e18, "random seed", 0, 0 },
    { "classic", WL_FLAG, 0, 0, 1, "allocate, touch and free one 64 KiB block repeatedly", 0, 0 },
    { "classic-iters", WL_INT, 1000, 1, 1e12, "cycles in --classic mode", 0, 0 },
    { NULL, WL_INT, 0, 0, 0, NULL, 0, 0 },
};

static wl_spec spec = {
    "json", "JSON documents: generate, parse into a DOM, query, serialize, free; some kept alive.",
    opts, NULL,
};

/* ---- counted allocation ------------------------------------------------ */

static wl_live g_live;
static uint64_t g_ops;

static void *j_alloc(size_t n)
{
    g_ops++;
    return wl_malloc(&g_live, n);
}

static void *j_grow(void *p, size_t old_n, size_t new_n)
{
    g_ops++;
    char *q = wl_realloc(&g_live, p, old_n, new_n);
    wl_zero_spare(q, old_n, new_n);
    return q;
}

static void j_free(void *p, size_t n)
{
    g_ops++;
    wl_free(&g_live, p, n);
}

/* ---- text buffer ------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_reserve(buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    b->p = b->p ? j_grow(b->p, b->cap, cap) : j_alloc(cap);
    if (b->cap == 0)
        wl_zero_spare(b->p, 0, cap);
    b->cap = cap;
}

static void buf_put(buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void buf_putc(buf *b, char c)
{
    buf_reserve(b, 1);
    b->p[b->len++] = c;
}

static void buf_release(buf *b)
{
    if (b->p)
        j_free(b->p, b->cap);
    *b = (buf){ 0 };
}

/* Canonical forms, shared by the generator and the serializer. */
static void put_string(buf *b, const char *s, size_t n)
{
    buf_putc(b, '"');
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            buf_put(b, esc, 2);
        } else if (c == '\n') {
            buf_put(b, "\\n", 2);
        } else if (c == '\t') {
            buf_put(b, "\\t", 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            buf_put(b, esc, 6);
        } else {
            buf_putc(b, (char)c);
        }
    }
    buf_putc(b, '"');
}

static void put_number(buf *b, double d)
{
    char tmp[40];
    int n;
    if (d == trunc(d) && fabs(d) < 1e15)
        n = snprintf(tmp, sizeof tmp, "%.0f", d);
    else
        n = snprintf(tmp, sizeof tmp, "%.17g", d);
    buf_put(b, tmp, (size_t)n);
}

/* ---- generator --------------------------------------------------------- */

#define VOCAB 96
static char g_vocab[VOCAB][16];
static size_t g_vocab_len[VOCAB];

static void make_vocab(wl_rng *r)
{
    for (int k = 0; k < VOCAB; k++) {
        size_t n = (size_t)wl_range(r, 2, 14);
        for (size_t i = 0; i < n; i++)
            g_vocab[k][i] = (char)('a' + wl_below(r, 26));
        if (n > 4 && wl_below(r, 3) == 0)
            g_vocab[k][wl_range(r, 1, n - 2)] = '_';
        g_vocab[k][n] = '\0';
        g_vocab_len[k] = n;
    }
}

static void gen_string(buf *b, wl_rng *r)
{
    char s[2048];
    size_t n = wl_below(r, 20) == 0 ? (size_t)wl_log_range(r, 120, 2000)
                                     : (size_t)wl_log_range(r, 1, 120);
    size_t k = 0;
    while (k < n) {
        uint64_t x = wl_below(r, 200);
        if (x < 150) {
            s[k++] = (char)('a' + x % 26);
        } else if (x < 175) {
            s[k++] = ' ';
        } else if (x < 188) {
            s[k++] = (char)('0' + x % 10);
        } else if (x < 194) {
            static const char special[] = "\"\\\n\t\x01/.,:-";
            s[k++] = special[x % (sizeof special - 1)];
        } else if (k + 2 <= n) {
            s[k++] = (char)0xc3; /* U+00E0..U+00FF as UTF-8 */
            s[k++] = (char)(0xa0 + x % 32);
        } else {
            s[k++] = 'z';
        }
    }
    put_string(b, s, n);
}

static double gen_number(wl_rng *r)
{
    uint64_t kind = wl_below(r, 4);
    double sign = wl_below(r, 5) == 0 ? -1.0 : 1.0;
    if (kind < 2)
        return sign * (double)wl_log_range(r, 1, 1000000000);
    if (kind == 2)
        return sign * (double)wl_below(r, 1000000) / 1000.0;
    return sign * wl_unit(r) * pow(10.0, (double)wl_range(r, 0, 12)) + 0.5;
}

static void gen_value(buf *b, wl_rng *r, int depth, size_t budget);

static void gen_key(buf *b, wl_rng *r)
{
    uint64_t k = wl_below(r, VOCAB);
    put_string(b, g_vocab[k], g_vocab_len[k]);
    buf_putc(b, ':');
}

static void gen_container(buf *b, wl_rng *r, int depth, size_t budget, int is_object)
{
    size_t start = b->len;
    size_t n = (size_t)wl_log_range(r, 1, is_object ? 12 : 24);
    size_t child = budget / n;
    buf_putc(b, is_object ? '{' : '[');
    for (size_t k = 0; k < n && b->len - start < budget; k++) {
        if (k)
            buf_putc(b, ',');
        if (is_object)
            gen_key(b, r);
        gen_value(b, r, depth + 1, child);
    }
    buf_putc(b, is_object ? '}' : ']');
}

static void gen_value(buf *b, wl_rng *r, int depth, size_t budget)
{
    uint64_t x = wl_below(r, 100);
    int nest = depth < 8 && budget > 64;
    if (nest && x < 18) {
        gen_container(b, r, depth, budget, 1);
    } else if (nest && x < 30) {
        gen_container(b, r, depth, budget, 0);
    } else if (x < 62) {
        gen_string(b, r);
    } else if (x < 88) {
        put_number(b, gen_number(r));
    } else if (x < 94) {
        if (wl_below(r, 2))
            buf_put(b, "true", 4);
        else
            buf_put(b, "false", 5);
    } else {
        buf_put(b, "null", 4);
    }
}

/* A document: a top-level object of records until the target size. */
static void gen_document(buf *b, wl_rng *r, size_t target)
{
    buf_putc(b, '{');
    for (size_t k = 0; b->len < target; k++) {
        if (k)
            buf_putc(b, ',');
        gen_key(b, r);
        gen_container(b, r, 1, (size_t)wl_log_range(r, 64, target / 4 + 64),
                      wl_below(r, 3) != 0);
    }
    buf_putc(b, '}');
}

/* ---- DOM --------------------------------------------------------------- */

enum { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jnode jnode;

typedef struct jmember {
    char *key;      /* NUL-terminated copy, klen + 1 bytes */
    jnode *val;
    uint32_t klen;
    uint32_t khash; /* low bits of the key's hash, checked before free */
} jmember;

struct jnode {
    uint32_t type;
    uint32_t check; /* node_check(type, n), set when the node is complete */
    uint32_t n;     /* string length, or element / member count */
    uint32_t cap;   /* capacity of elems / mem */
    uint64_t hash;  /* strings: hash of the bytes */
    union {
        double num;
        char *str;
        jnode **elems;
        jmember *mem;
    } u;
};

static uint32_t node_check(uint32_t type, uint32_t n)
{
    return (uint32_t)wl_mix64(((uint64_t)type << 32 | n) + 0x51ed27b3ULL);
}

static void verify_node(const jnode *n)
{
    if (n->type > J_OBJ || n->check != node_check(n->type, n->n) ||
        ((n->type == J_ARR || n->type == J_OBJ) && n->n > n->cap))
        wl_corrupted("(json node, %zu bytes): check word does not match", sizeof *n);
}

static jnode *new_node(uint32_t type)
{
    jnode *n = j_alloc(sizeof *n);
    *n = (jnode){ .type = type };
    return n;
}

static void seal(jnode *n)
{
    n->check = node_check(n->type, n->n);
}

/* ---- parser ------------------------------------------------------------ */

typedef struct parser {
    const char *start, *p, *end;
    int depth;
} parser;

#define MAX_DEPTH 64

static _Noreturn void parse_fail(const parser *ps, const char *what)
{
    wl_corrupted("(json text, offset %zu of %zu): %s", (size_t)(ps->p - ps->start),
                 (size_t)(ps->end - ps->start), what);
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\t' || *ps->p == '\r'))
        ps->p++;
}

static void expect(parser *ps, char c)
{
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != c)
        parse_fail(ps, "unexpected character");
    ps->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static unsigned read_u4(parser *ps, const char *q)
{
    if (ps->end - q < 4)
        parse_fail(ps, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(q[k]);
        if (h < 0)
            parse_fail(ps, "bad \\u escape");
        v = v << 4 | (unsigned)h;
    }
    return v;
}

static size_t utf8_len(unsigned cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
}

static size_t utf8_put(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    o[0] = (char)(0xe0 | cp >> 12);
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

/* Parse a string literal at ps->p (the opening quote) into a fresh copy. */
static char *parse_string(parser *ps, uint32_t *len_out)
{
    expect(ps, '"');
    /* pass 1: decoded length and closing quote */
    size_t n = 0;
    const char *q = ps->p;
    for (;;) {
        if (q >= ps->end)
            parse_fail(ps, "unterminated string");
        unsigned char c = (unsigned char)*q;
        if (c == '"')
            break;
        if (c < 0x20)
            parse_fail(ps, "control character in string");
        if (c == '\\') {
            if (q + 1 >= ps->end)
                parse_fail(ps, "unterminated escape");
            char e = q[1];
            if (e == 'u') {
                n += utf8_len(read_u4(ps, q + 2));
                q += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                parse_fail(ps, "bad escape");
            q += 2;
            n++;
            continue;
        }
        q++;
        n++;
    }
    if (n > UINT32_MAX - 1)
        parse_fail(ps, "string too long");
    /* pass 2: decode */
    char *s = j_alloc(n + 1), *o = s;
    while (*ps->p != '"') {
        char c = *ps->p;
        if (c != '\\') {
            *o++ = c;
            ps->p++;
            continue;
        }
        char e = ps->p[1];
        ps->p += 2;
        switch (e) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            o += utf8_put(o, read_u4(ps, ps->p));
            ps->p += 4;
            break;
        default: *o++ = e; break;
        }
    }
    *o = '\0';
    ps->p++;
    *len_out = (uint32_t)n;
    return s;
}

static int is_digit(const parser *ps, const char *q)
{
    return q < ps->end && *q >= '0' && *q <= '9';
}

static double parse_number(parser *ps)
{
    const char *q = ps->p;
    if (q < ps->end && *q == '-')
        q++;
    if (!is_digit(ps, q))
        parse_fail(ps, "bad number");
    while (is_digit(ps, q))
        q++;
    if (q < ps->end && *q == '.') {
        q++;
        if (!is_digit(ps, q))
            parse_fail(ps, "bad fraction");
        while (is_digit(ps, q))
            q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-'))
            q++;
        if (!is_digit(ps, q))
            parse_fail(ps, "bad exponent");
        while (is_digit(ps, q))
            q++;
    }
    char tmp[64];
    size_t n = (size_t)(q - ps->p);
    if (n >= sizeof tmp)
        parse_fail(ps, "number too long");
    memcpy(tmp, ps->p, n);
    tmp[n] = '\0';
    ps->p = q;
    return strtod(tmp, NULL);
}

static void *grow_array(void *arr, uint32_t *cap, size_t elem)
{
    uint32_t old = *cap, now = old ? old * 2 : 4;
    void *q;
    if (old == 0) {
        q = j_alloc(now * elem);
        wl_zero_spare(q, 0, now * elem);
    } else {
        q = j_grow(arr, old * elem, now * elem);
    }
    *cap = now;
    return q;
}

static int literal(parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, word, n) == 0) {
        ps->p += n;
        return 1;
    }
    return 0;
}

static jnode *parse_value(parser *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end)
        parse_fail(ps, "unexpected end of text");
    char c = *ps->p;
    jnode *n;
    if (c == '{' || c == '[') {
        if (++ps->depth > MAX_DEPTH)
            parse_fail(ps, "nesting too deep");
        ps->p++;
        int obj = c == '{';
        n = new_node(obj ? J_OBJ : J_ARR);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
            ps->p++;
        } else {
            for (;;) {
                if (n->n == n->cap) {
                    if (obj)
                        n->u.mem = grow_array(n->u.mem, &n->cap, sizeof(jmember));
                    else
                        n->u.elems = grow_array(n->u.elems, &n->cap, sizeof(jnode *));
                }
                if (obj) {
                    jmember *m = &n->u.mem[n->n];
                    skip_ws(ps);
                    m->key = parse_string(ps, &m->klen);
                    m->khash = (uint32_t)wl_hash_bytes(0, m->key, m->klen);
                    expect(ps, ':');
                    m->val = parse_value(ps);
                } else {
                    n->u.elems[n->n] = parse_value(ps);
                }
                n->n++;
                skip_ws(ps);
                if (ps->p < ps->end && *ps->p == ',') {
                    ps->p++;
                    continue;
                }
                expect(ps, obj ? '}' : ']');
                break;
            }
        }
        ps->depth--;
    } else if (c == '"') {
        n = new_node(J_STR);
        n->u.str = parse_string(ps, &n->n);
        n->hash = wl_hash_bytes(0, n->u.str, n->n);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        n = new_node(J_NUM);
        n->u.num = parse_number(ps);
    } else if (literal(ps, "true")) {
        n = new_node(J_TRUE);
    } else if (literal(ps, "false")) {
        n = new_node(J_FALSE);
    } else if (literal(ps, "null")) {
        n = new_node(J_NULL);
    } else {
        parse_fail(ps, "unexpected character");
    }
    seal(n);
    return n;
}

static jnode *parse_document(const char *text, size_t len)
{
    parser ps = { text, text, text + len, 0 };
    jnode *root = parse_value(&ps);
    skip_ws(&ps);
    if (ps.p != ps.end)
        parse_fail(&ps, "trailing characters");
    return root;
}

/* ---- walk, query, serialize, free ------------------------------------- */

typedef struct stats {
    uint64_t nodes, strings, str_bytes, numbers, containers, members, lookups, hits;
    double numsum;
    int max_depth;
} stats;

/* Linear key lookup, as a DOM accessor would do it. */
static const jnode *obj_get(const jnode *o, const char *key, size_t klen)
{
    for (uint32_t k = 0; k < o->n; k++)
        if (o->u.mem[k].klen == klen && memcmp(o->u.mem[k].key, key, klen) == 0)
            return o->u.mem[k].val;
    return NULL;
}

static void walk(const jnode *n, int depth, stats *st)
{
    verify_node(n);
    st->nodes++;
    if (depth > st->max_depth)
        st->max_depth = depth;
    switch (n->type) {
    case J_NUM:
        st->numbers++;
        st->numsum += n->u.num;
        break;
    case J_STR:
        st->strings++;
        st->str_bytes += n->n;
        break;
    case J_ARR:
        st->containers++;
        for (uint32_t k = 0; k < n->n; k++)
            walk(n->u.elems[k], depth + 1, st);
        break;
    case J_OBJ: {
        st->containers++;
        st->members += n->n;
        uint64_t q = st->nodes % VOCAB;
        const jnode *v = obj_get(n, g_vocab[q], g_vocab_len[q]);
        st->lookups++;
        if (v) {
            st->hits++;
            if (v->type == J_NUM)
                st->numsum += v->u.num;
            else if (v->type == J_STR)
                st->str_bytes += v->n;
        }
        for (uint32_t k = 0; k < n->n; k++)
            walk(n->u.mem[k].val, depth + 1, st);
        break;
    }
    default:
        break;
    }
}

static void serialize(buf *b, const jnode *n)
{
    switch (n->type) {
    case J_NULL: buf_put(b, "null", 4); break;
    case J_FALSE: buf_put(b, "false", 5); break;
    case J_TRUE: buf_put(b, "true", 4); break;
    case J_NUM: put_number(b, n->u.num); break;
    case J_STR: put_string(b, n->u.str, n->n); break;
    case J_ARR:
        buf_putc(b, '[');
        for (uint32_t k = 0; k < n->n; k++) {
            if (k)
                buf_putc(b, ',');
            serialize(b, n->u.elems[k]);
        }
        buf_putc(b, ']');
        break;
    default:
        buf_putc(b, '{');
        for (uint32_t k = 0; k < n->n; k++) {
            if (k)
                buf_putc(b, ',');
            put_string(b, n->u.mem[k].key, n->u.mem[k].klen);
            buf_putc(b, ':');
            serialize(b, n->u.mem[k].val);
        }
        buf_putc(b, '}');
        break;
    }
}

static void free_node(jnode *n)
{
    verify_node(n);
    switch (n->type) {
    case J_STR:
        if (wl_verify_full &&
            (wl_hash_bytes(0, n->u.str, n->n) != n->hash || n->u.str[n->n] != '\0'))
            wl_corrupted("(json string, %u bytes): contents changed", n->n + 1);
        j_free(n->u.str, (size_t)n->n + 1);
        break;
    case J_ARR:
        for (uint32_t k = 0; k < n->n; k++)
            free_node(n->u.elems[k]);
        if (n->cap)
            j_free(n->u.elems, n->cap * sizeof(jnode *));
        break;
    case J_OBJ:
        for (uint32_t k = 0; k < n->n; k++) {
            jmember *m = &n->u.mem[k];
            if (wl_verify_full && (uint32_t)wl_hash_bytes(0, m->key, m->klen) != m->khash)
                wl_corrupted("(json key, %u bytes): contents changed", m->klen + 1);
            j_free(m->key, (size_t)m->klen + 1);
            free_node(m->val);
        }
        if (n->cap)
            j_free(n->u.mem, n->cap * sizeof(jmember));
        break;
    default:
        break;
    }
    j_free(n, sizeof *n);
}

/* ---- driver ------------------------------------------------------------ */

typedef struct kept_doc {
    jnode *root;
    uint64_t text_hash;
    size_t text_len;
} kept_doc;

/* Serialize a kept document again, check it against its text, free it. */
static uint64_t evict(kept_doc *k, uint64_t h)
{
    buf out = { 0 };
    serialize(&out, k->root);
    if (out.len != k->text_len || wl_hash_bytes(0, out.p, out.len) != k->text_hash)
        wl_corrupted("(kept json document, %zu bytes of text): serialization changed",
                     k->text_len);
    buf_release(&out);
    free_node(k->root);
    k->root = NULL;
    return wl_fold(h, k->text_hash);
}

static uint64_t fold_stats(uint64_t h, const stats *st)
{
    uint64_t bits;
    memcpy(&bits, &st->numsum, sizeof bits);
    h = wl_fold(h, st->nodes);
    h = wl_fold(h, st->strings ^ st->str_bytes << 20);
    h = wl_fold(h, st->numbers ^ st->containers << 24 ^ st->members << 40);
    h = wl_fold(h, st->lookups ^ st->hits << 32 ^ (uint64_t)st->max_depth << 56);
    return wl_fold(h, bits);
}

int main(int argc, char **argv)
{
    wl_parse(&spec, argc, argv);
    if (wl_int(&spec, "classic"))
        return wl_run_classic(&spec, &g_live, 64 * 1024, "json classic block", "64 KiB malloc+touch+free cycle");
    int64_t docs = wl_int(&spec, "docs");
    uint64_t doc_bytes = (uint64_t)wl_int(&spec, "doc-bytes");
    size_t keep = (size_t)wl_int(&spec, "keep");
    wl_rng r = wl_rng_stream((uint64_t)wl_int(&spec, "seed"), 0);
    make_vocab(&r);
    kept_doc *kept = keep ? calloc(keep, sizeof *kept) : NULL;
    /* about 4x the text in live bytes for the largest documents (4x the mean) */
    wl_live_floor(&g_live, (keep + 2) * doc_bytes * 16);
    if (keep && !kept)
        wl_fatal("out of memory");
    uint64_t h = 0, text_bytes = 0, nodes = 0;
    size_t next_slot = 0;

    double t0 = wl_now();
    for (int64_t d = 0; d < docs; d++) {
        size_t target = (size_t)wl_log_range(&r, doc_bytes / 8, doc_bytes * 4);
        buf text = { 0 };
        gen_document(&text, &r, target);
        jnode *root = parse_document(text.p, text.len);
        stats st = { 0 };
        walk(root, 0, &st);
        buf out = { 0 };
        serialize(&out, root);
        if (out.len != text.len || memcmp(out.p, text.p, text.len) != 0)
            wl_corrupted("(json document %" PRId64 ", %zu bytes of text): serialized form differs",
                         d, text.len);
        uint64_t text_hash = wl_hash_bytes(0, text.p, text.len);
        h = fold_stats(wl_fold(h, text_hash), &st);
        text_bytes += text.len;
        nodes += st.nodes;
        size_t text_len = text.len;
        buf_release(&out);
        buf_release(&text);
        if (keep && wl_below(&r, 4) == 0) {
            kept_doc *k = &kept[next_slot++ % keep];
            if (k->root)
                h = evict(k, h);
            *k = (kept_doc){ root, text_hash, text_len };
        } else {
            free_node(root);
        }
    }
    double secs = wl_now() - t0;
    int64_t final_live = g_live.cur;
    for (size_t k = 0; k < keep; k++)
        if (kept[k].root)
            h = evict(&kept[k], h);
    free(kept);
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
    rep.extra[0].name = "text_bytes";
    rep.extra[0].value = (double)text_bytes;
    rep.extra[1].name = "nodes";
    rep.extra[1].value = (double)nodes;
    wl_report_print(&rep);
    return 0;
}
