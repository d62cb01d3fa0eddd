/* options.c - the tracker's option table (options.h). */
#include "options.h"

#include "trace_format.h"

#include <string.h>

static const char *const mode_words[] = { "full", "sampled", NULL }; /* HT_MODE_FULL, HT_MODE_SAMPLED */

const ht_option_desc ht_options[HT_OPT_COUNT] = {
    [HT_OPT_DIR] = { "dir", 0, 0, 0, NULL, "haktrack.out", "where the files go (created if missing)" },
    [HT_OPT_MODE] = { "mode", HT_MODE_FULL, 0, 1, mode_words, NULL, "full or sampled (0 or 1 also accepted)" },
    [HT_OPT_THRESHOLD] = { "threshold", 65536, 1, UINT64_MAX, NULL, NULL,
                           "sampled: every block of at least this many bytes is recorded" },
    [HT_OPT_EVERY] = { "every", 128, 1, 1u << 30, NULL, NULL,
                       "sampled: one in this many smaller calls (random gaps of this mean) and blocks "
                       "(by address)" },
    [HT_OPT_STACKS] = { "stacks", 0, 0, 1, NULL, NULL, "1: the call stack of every recorded allocation (libunwind)" },
    [HT_OPT_DEPTH] = { "depth", 24, 1, HT_MAX_FRAMES, NULL, NULL, "frames kept per stack (at most 64)" },
};

_Static_assert(HT_MODE_FULL == 0 && HT_MODE_SAMPLED == 1, "mode_words are indexed by the mode");
_Static_assert(HT_MAX_FRAMES == 64, "the depth option's meaning says at most 64");

#define ENV_PREFIX "HAKTRACK_"

const char *ht_option_env(ht_option_id o, char out[HT_ENV_MAX])
{
    size_t n = strlen(ENV_PREFIX);
    memcpy(out, ENV_PREFIX, n);
    for (const char *c = ht_options[o].name; *c && n + 1 < HT_ENV_MAX; c++)
        out[n++] = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
    out[n] = 0;
    return out;
}

bool ht_option_parse(ht_option_id o, const char *s, uint64_t *out)
{
    const ht_option_desc *d = &ht_options[o];
    for (uint64_t w = 0; d->words && d->words[w]; w++)
        if (strcmp(s, d->words[w]) == 0) {
            *out = w;
            return true;
        }
    if (!*s)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v < d->min || v > d->max)
        return false;
    *out = v;
    return true;
}

const char *ht_option_default(ht_option_id o, char *buf, unsigned n)
{
    const ht_option_desc *d = &ht_options[o];
    if (d->text_def)
        return d->text_def;
    if (d->words)
        return d->words[d->def];
    char digits[24], *p = digits + sizeof digits;
    uint64_t v = d->def;
    *--p = 0;
    do
        *--p = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    size_t len = (size_t)(digits + sizeof digits - p);
    if (len > n)
        return "?";
    memcpy(buf, p, len);
    return buf;
}
