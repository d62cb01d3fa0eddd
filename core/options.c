/* options.c — hakmem's run-time options: one table (name, default, environment
 * variable, meaning), read once at initialisation. This is the only file that
 * calls getenv. hak_options_print() lists the table; HAKMEM_VERBOSE=1 prints it
 * at start-up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem.h"
#include "internal.h"

typedef struct hak_option_desc_s {
  const char *name;
  long        def;
  long        min, max;
  const char *env;
  const char *meaning;
} hak_option_desc_t;

static const hak_option_desc_t option_table[HAK_OPT_COUNT] = {
  [HAK_OPT_STATS_AT_EXIT] = {"stats_at_exit", 0, 0, 2, "HAKMEM_STATS",
                             "print statistics to stderr at exit (1 text, 2 JSON)"},
  [HAK_OPT_VERBOSE]       = {"verbose", 0, 0, 1, "HAKMEM_VERBOSE",
                             "print the version, variant and this table at start-up"},
  [HAK_OPT_IDLE_MS]       = {"idle_ms", 200, 10, 600000, "HAKMEM_IDLE_MS",
                             "dynamic_flush, hybrid: ms without allocator activity before free memory goes back to the OS"},
};

static long option_value[HAK_OPT_COUNT];

long hak_option(hak_option_t o) { return option_value[o]; }

extern char **environ;

/* A HAKMEM_ variable that names no option is a typo: say so, with the list. */
static void check_unknown(void) {
  for (char **e = environ; e != NULL && *e != NULL; e++) {
    if (strncmp(*e, "HAKMEM_", 7) != 0) continue;
    size_t len = strcspn(*e, "=");
    bool known = false;
    for (int i = 0; i < HAK_OPT_COUNT && !known; i++)
      known = strlen(option_table[i].env) == len && strncmp(*e, option_table[i].env, len) == 0;
    if (known) continue;
    fprintf(stderr, "hakmem: unknown option %.*s (ignored); options:", (int)len, *e);
    for (int i = 0; i < HAK_OPT_COUNT; i++) fprintf(stderr, " %s", option_table[i].env);
    fputc('\n', stderr);
  }
}

void hak_options_init(void) {
  check_unknown();
  for (int i = 0; i < HAK_OPT_COUNT; i++) {
    const hak_option_desc_t *d = &option_table[i];
    option_value[i] = d->def;
    const char *s = getenv(d->env);
    if (s == NULL || *s == '\0') continue;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || v < d->min || v > d->max) {
      fprintf(stderr, "hakmem: %s=%s is not a number in [%ld, %ld]; using %ld\n", d->env, s, d->min,
              d->max, d->def);
      continue;
    }
    option_value[i] = v;
  }
}

__attribute__((visibility("default"))) void hak_options_print(FILE *out) {
  fprintf(out, "%-16s %6s %8s  %-16s %s\n", "option", "value", "default", "environment", "meaning");
  for (int i = 0; i < HAK_OPT_COUNT; i++) {
    const hak_option_desc_t *d = &option_table[i];
    fprintf(out, "%-16s %6ld %8ld  %-16s %s\n", d->name, option_value[i], d->def, d->env, d->meaning);
  }
}
