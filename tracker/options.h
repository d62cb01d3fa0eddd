/* options.h - the tracker's options: one table (name, default, range,
 * meaning) in options.c. The environment variable of an option is always
 * HAKTRACK_ followed by its name in capitals (mode -> HAKTRACK_MODE), so
 * name and variable cannot drift: libhaktrack.so reads the variables at
 * start-up, hakmem-trace record sets them from its command line, and
 * hakmem-trace --help lists the table. Plain C, no allocation (the preload
 * reads its options before it can allocate).
 */
#ifndef HT_OPTIONS_H
#define HT_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum ht_option_id {
    HT_OPT_DIR,       /* a path (text) */
    HT_OPT_MODE,
    HT_OPT_THRESHOLD,
    HT_OPT_EVERY,
    HT_OPT_STACKS,
    HT_OPT_DEPTH,
    HT_OPT_COUNT
} ht_option_id;

typedef struct ht_option_desc {
    const char *name;
    uint64_t def, min, max;    /* numeric options: default and inclusive range */
    const char *const *words;  /* optional: words[v] names value v (accepted as well as v) */
    const char *text_def;      /* text options (a path): the default; def, min, max unused */
    const char *meaning;
} ht_option_desc;

extern const ht_option_desc ht_options[HT_OPT_COUNT];

/* Long enough for HAKTRACK_ and any option's name. */
#define HT_ENV_MAX 32

/* HAKTRACK_<NAME>: option o's environment variable, written into out. */
const char *ht_option_env(ht_option_id o, char out[HT_ENV_MAX]);

/* The value s gives numeric option o: one of its words, or a decimal
 * number (digits only) in its range. False if it is neither. */
bool ht_option_parse(ht_option_id o, const char *s, uint64_t *out);

/* Option o's default as text: the path, the word, or the number. */
const char *ht_option_default(ht_option_id o, char *buf, unsigned n);

#endif /* HT_OPTIONS_H */
