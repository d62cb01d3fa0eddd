/*
 * json.c — just enough JSON for the runner: a writer for rows and a strict
 * validator/reader for the one-line object each workload prints last.
 */
#include "hakbench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer -------------------------------------------------------------- */

void jb_init(hb_jbuf *b) { b->p = NULL; b->len = b->cap = 0; }
void jb_free(hb_jbuf *b) { free(b->p); jb_init(b); }

void jb_raw(hb_jbuf *b, const char *s, size_t n)
{
    if (b->len + n + 2 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (b->len + n + 2 > cap) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { perror("hakbench: realloc"); exit(1); }
        b->p = p; b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void jb_rawz(hb_jbuf *b, const char *s) { jb_raw(b, s, strlen(s)); }

static void jb_escaped(hb_jbuf *b, const char *s, size_t n)
{
    jb_raw(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        if (c == '"' || c == '\\') { tmp[0] = '\\'; tmp[1] = (char)c; jb_raw(b, tmp, 2); }
        else if (c == '\n') jb_raw(b, "\\n", 2);
        else if (c == '\t') jb_raw(b, "\\t", 2);
        else if (c == '\r') jb_raw(b, "\\r", 2);
        else if (c < 0x20 || c == 0x7f) { snprintf(tmp, sizeof tmp, "\\u%04x", c); jb_raw(b, tmp, 6); }
        else jb_raw(b, (const char *)&s[i], 1);
    }
    jb_raw(b, "\"", 1);
}

static void jb_key(hb_jbuf *b, const char *key)
{
    if (!key) return;
    jb_escaped(b, key, strlen(key));
    jb_raw(b, ":", 1);
}

static void jb_drop_comma(hb_jbuf *b)
{
    if (b->len && b->p[b->len - 1] == ',') b->p[--b->len] = '\0';
}

void jb_open(hb_jbuf *b, const char *key, char bracket)
{
    jb_key(b, key);
    jb_raw(b, &bracket, 1);
}

void jb_close(hb_jbuf *b, char bracket)
{
    jb_drop_comma(b);
    jb_raw(b, &bracket, 1);
    jb_raw(b, ",", 1);
}

void jb_strn(hb_jbuf *b, const char *key, const char *val, size_t n)
{
    jb_key(b, key);
    jb_escaped(b, val, n);
    jb_raw(b, ",", 1);
}

void jb_str(hb_jbuf *b, const char *key, const char *val)
{
    if (!val) { jb_null(b, key); return; }
    jb_strn(b, key, val, strlen(val));
}

void jb_int(hb_jbuf *b, const char *key, long long v)
{
    char tmp[32];
    jb_key(b, key);
    snprintf(tmp, sizeof tmp, "%lld,", v);
    jb_rawz(b, tmp);
}

void jb_num(hb_jbuf *b, const char *key, double v)
{
    char tmp[40];
    if (!isfinite(v)) { jb_null(b, key); return; }
    jb_key(b, key);
    snprintf(tmp, sizeof tmp, "%.9g,", v);
    jb_rawz(b, tmp);
}

void jb_bool(hb_jbuf *b, const char *key, bool v)
{
    jb_key(b, key);
    jb_rawz(b, v ? "true," : "false,");
}

void jb_null(hb_jbuf *b, const char *key)
{
    jb_key(b, key);
    jb_rawz(b, "null,");
}

void jb_rawval(hb_jbuf *b, const char *key, const char *json, size_t n)
{
    jb_key(b, key);
    jb_raw(b, json, n);
    jb_raw(b, ",", 1);
}

void jb_finish_line(hb_jbuf *b)
{
    jb_drop_comma(b);
    jb_raw(b, "\n", 1);
}

/* ---- reader -------------------------------------------------------------- */

typedef struct { const char *p, *end; int depth; } cur;

static void ws(cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool lit(cur *c, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0) return false;
    c->p += n;
    return true;
}

static bool str(cur *c)
{
    if (c->p >= c->end || *c->p != '"') return false;
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"') return true;
        if (ch < 0x20) return false;
        if (ch == '\\') {
            if (c->p >= c->end) return false;
            char e = *c->p++;
            if (e == 'u') {
                for (int i = 0; i < 4; i++, c->p++)
                    if (c->p >= c->end || !strchr("0123456789abcdefABCDEF", *c->p) || !*c->p) return false;
            } else if (!strchr("\"\\/bfnrt", e) || !e) return false;
        }
    }
    return false;
}

static bool num(cur *c)
{
    const char *s = c->p;
    if (c->p < c->end && *c->p == '-') c->p++;
    const char *d = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    if (c->p == d) return false;
    if (c->p < c->end && *c->p == '.') {
        c->p++; d = c->p;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
        if (c->p == d) return false;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
        d = c->p;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
        if (c->p == d) return false;
    }
    return c->p > s;
}

static bool value(cur *c);

static bool container(cur *c, char open, char close)
{
    if (++c->depth > 64) return false;
    c->p++; /* open */
    (void)open;
    ws(c);
    if (c->p < c->end && *c->p == close) { c->p++; c->depth--; return true; }
    for (;;) {
        ws(c);
        if (close == '}') {
            if (!str(c)) return false;
            ws(c);
            if (c->p >= c->end || *c->p != ':') return false;
            c->p++;
            ws(c);
        }
        if (!value(c)) return false;
        ws(c);
        if (c->p >= c->end) return false;
        if (*c->p == ',') { c->p++; continue; }
        if (*c->p == close) { c->p++; c->depth--; return true; }
        return false;
    }
}

static bool value(cur *c)
{
    ws(c);
    if (c->p >= c->end) return false;
    switch (*c->p) {
    case '{': return container(c, '{', '}');
    case '[': return container(c, '[', ']');
    case '"': return str(c);
    case 't': return lit(c, "true");
    case 'f': return lit(c, "false");
    case 'n': return lit(c, "null");
    default: return num(c);
    }
}

bool json_object_valid(const char *s, size_t n)
{
    cur c = { s, s + n, 0 };
    ws(&c);
    if (c.p >= c.end || *c.p != '{') return false;
    if (!value(&c)) return false;
    ws(&c);
    return c.p == c.end;
}

bool json_get(const char *s, size_t n, const char *key, const char **val, size_t *vlen)
{
    cur c = { s, s + n, 0 };
    size_t klen = strlen(key);
    ws(&c);
    if (c.p >= c.end || *c.p != '{') return false;
    c.p++;
    for (;;) {
        ws(&c);
        const char *k = c.p;
        if (!str(&c)) return false;
        bool match = (size_t)(c.p - k) == klen + 2 && memcmp(k + 1, key, klen) == 0;
        ws(&c);
        if (c.p >= c.end || *c.p != ':') return false;
        c.p++;
        ws(&c);
        const char *v = c.p;
        if (!value(&c)) return false;
        if (match) { *val = v; *vlen = (size_t)(c.p - v); return true; }
        ws(&c);
        if (c.p >= c.end || *c.p != ',') return false;
        c.p++;
    }
}

bool json_get_num(const char *s, size_t n, const char *key, double *out)
{
    const char *v;
    size_t vl;
    if (!json_get(s, n, key, &v, &vl) || vl == 0 || vl > 60) return false;
    if (!(v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))) return false;
    char tmp[64];
    memcpy(tmp, v, vl);
    tmp[vl] = '\0';
    *out = strtod(tmp, NULL);
    return true;
}

bool json_get_str(const char *s, size_t n, const char *key, char *out, size_t cap)
{
    const char *v;
    size_t vl, o = 0;
    if (cap == 0 || !json_get(s, n, key, &v, &vl) || vl < 2 || v[0] != '"') return false;
    for (size_t i = 1; i + 1 < vl && o + 1 < cap; i++) {
        char ch = v[i];
        if (ch == '\\' && i + 2 < vl) {
            char e = v[++i];
            switch (e) {
            case 'n': ch = '\n'; break;
            case 't': ch = '\t'; break;
            case 'r': ch = '\r'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'u': ch = '?'; i += 4; break; /* paths are ASCII; keep it simple */
            default: ch = e; break;
            }
        }
        out[o++] = ch;
    }
    out[o] = '\0';
    return true;
}
