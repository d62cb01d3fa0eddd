/* options.c — hakmem's run-time options: one table (name, default, range,
 * meaning), read once at initialisation. The environment variable of an
 * option is always HAKMEM_ followed by its name in capitals (stats ->
 * HAKMEM_STATS), so name and variable cannot drift. This is the only file
 * that reads the environment. hak_options_print() lists the table;
 * HAKMEM_VERBOSE=1 prints it at start-up.
 *
 * A value is one of the option's words or a decimal number (digits, a minus
 * sign first at most: no spaces, no '+', nothing after it) in the option's
 * range, and, for options that accept only some of the range, one of those
 * (allowed). Anything else is reported on stderr, in one line saying what
 * is accepted, and the default is used. */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem.h"
#include "internal.h"

typedef struct hak_option_desc_s {
  const char *name;
  long        def;
  long        min, max;
  const char *const *words; /* optional: words[v] names value v, accepted as well as v */
  const char *meaning;
  bool        is_text;      /* a text value (a path): min and max unused */
  /* optional: NULL when v (in [min, max]) is accepted, else what is ("is not <that>") */
  const char *(*allowed)(long v);
} hak_option_desc_t;

static const char *const stats_words[] = {"off", "text", "json", NULL};
static const char *const off_on_words[] = {"off", "on", NULL};

/* The statistics signal and the heap profiler's: one whose arrival decides
 * nothing about the program's fate unless it asks, so that hakmem may take
 * it: SIGUSR1, SIGUSR2 and the real-time signals. Not SIGINT, SIGTERM, SIGSEGV, ...: a
 * handler that only raises a flag would keep a program alive that should
 * stop (a fault returns to the faulting instruction for ever). */
static const char *signal_allowed(long v) {
  static char text[160];
  if (v == 0 || v == SIGUSR1 || v == SIGUSR2 || (v >= SIGRTMIN && v <= SIGRTMAX)) return NULL;
  snprintf(text, sizeof text, "0 (off), %d (SIGUSR1), %d (SIGUSR2) or a real-time signal (%d to %d): other signals "
           "decide a program's fate", SIGUSR1, SIGUSR2, (int)SIGRTMIN, (int)SIGRTMAX);
  return text;
}

/* The least profile interval, 64 MiB: a dump happens at a sample, so an
 * interval below the sampling rate (512 KiB by default) dumps at every
 * sample (a program allocating 2 GB wrote some 3,400 files with an interval
 * of 1); from 64 MiB on, a dump holds some 128 new samples at the default
 * rate, and the files number at most 16 per GiB allocated. */
#define PROFILE_INTERVAL_MIN ((long)64 << 20)
static const char *interval_allowed(long v) {
  return v == 0 || v >= PROFILE_INTERVAL_MIN ? NULL : "0 (off) or at least 67108864 (64 MiB): a shorter interval "
                                                       "writes a file at nearly every sample";
}

/* The least in-use interval, 16 MiB. A dump happens at a sample, when the
 * in-use estimate exceeds the high-water mark (the most in use at a dump)
 * by the interval, so the files number at most peak in-use / interval over
 * the whole run: 64 per GiB of peak from 16 MiB on (1,024 per GiB at 1 MiB),
 * and each step spans some 32 samples at the default rate, enough for the
 * growth to stand out of the estimate's sampling noise (one sample moves it
 * by about the rate, 512 KiB). */
#define PROFILE_INUSE_INTERVAL_MIN ((long)16 << 20)
static const char *inuse_interval_allowed(long v) {
  return v == 0 || v >= PROFILE_INUSE_INTERVAL_MIN ? NULL : "0 (off) or at least 16777216 (16 MiB): a shorter interval "
                                                             "writes a file every few samples while memory grows";
}

static const hak_option_desc_t option_table[HAK_OPT_COUNT] = {
  [HAK_OPT_STATS]   = {"stats", 0, 0, 2, stats_words, "statistics at exit: off, text or json (0, 1, 2)", false},
  [HAK_OPT_STATS_FILE] = {"stats_file", 0, 0, 0, NULL, "write the statistics to this file instead of stderr", true},
  [HAK_OPT_STATS_SIGNAL] = {"stats_signal", 0, 0, 64, NULL,
                            "0 (off) or SIGUSR1, SIGUSR2 or a real-time signal (10, 12, 34-64): on that signal, "
                            "statistics at the allocator's next slow path (or scavenger tick); a handler the program "
                            "had for it still runs", false, signal_allowed},
  [HAK_OPT_STATS_PEAK] = {"stats_peak", 0, 0, 1, NULL,
                          "1: the statistics also give the figures at the process's peak RSS (slower: the "
                          "structures are walked each time the RSS grows by 1/32)", false},
  [HAK_OPT_VERBOSE] = {"verbose", 0, 0, 1, NULL, "print the version, variant and this table at start-up", false},
  [HAK_OPT_IDLE_MS] = {"idle_ms", 200, 10, 600000, NULL,
                       "dynamic_flush, hybrid: ms without allocator activity before free memory goes back to the OS",
                       false},
  [HAK_OPT_THP] = {"thp", 0, 0, 1, off_on_words,
                   "on: SuperSlabs and large blocks of 2 MiB or more 2 MiB-aligned and advised as transparent huge "
                   "pages, when the system's THP mode is always or madvise (off, on or 0, 1)", false},
  [HAK_OPT_PROFILE] = {"profile", 0, 0, 0, NULL,
                       "heap profiler on: write <prefix>.<pid>.0001.heap, ... (google-pprof's format) at exit and on "
                       "demand", true},
  [HAK_OPT_PROFILE_RATE] = {"profile_rate", 512 * 1024, 1, (long)1 << 40, NULL,
                            "heap profiler: mean bytes allocated between two samples", false},
  [HAK_OPT_PROFILE_INTERVAL] = {"profile_interval", 0, 0, (long)1 << 50, NULL,
                                "heap profiler: also dump every this many bytes allocated (0: never; at least 64 MiB)",
                                false, interval_allowed},
  [HAK_OPT_PROFILE_INUSE_INTERVAL] = {"profile_inuse_interval", 0, 0, (long)1 << 50, NULL,
                                      "heap profiler: also dump when the bytes in use exceed the most in use at a dump "
                                      "by this many (0: never; at least 16 MiB)", false, inuse_interval_allowed},
  [HAK_OPT_PROFILE_TIME_INTERVAL] = {"profile_time_interval", 0, 0, 31536000, NULL,
                                     "heap profiler: also dump when this many seconds have passed since the last dump "
                                     "(0: never)", false},
  [HAK_OPT_PROFILE_SIGNAL] = {"profile_signal", 0, 0, 64, NULL,
                              "heap profiler: 0 (off) or SIGUSR1, SIGUSR2 or a real-time signal (10, 12, 34-64), not "
                              "stats_signal's: on that signal, a dump at the next sample (or scavenger tick); a handler "
                              "the program had for it still runs", false, signal_allowed},
  [HAK_OPT_LEAKCHECK] = {"leakcheck", 0, 0, 1, NULL,
                         "1: keep every allocation's call stack and report the leaks at exit", false},
  [HAK_OPT_LEAKCHECK_FILE] = {"leakcheck_file", 0, 0, 0, NULL, "the leak report to this file instead of stderr", true},
  [HAK_OPT_LEAKCHECK_SUPPRESS] = {"leakcheck_suppress", 0, 0, 0, NULL,
                                  "a file of function or object patterns (leak:<glob>) whose leaks are not reported",
                                  true},
  [HAK_OPT_LEAKCHECK_EXITCODE] = {"leakcheck_exitcode", 23, 0, 255, NULL,
                                  "exit status when a leak is reported (0: the program's own)", false},
  [HAK_OPT_LEAKCHECK_REACHABLE] = {"leakcheck_reachable", 0, 0, 1, NULL,
                                   "1: the leak report also lists the still reachable blocks by call stack, with "
                                   "their stacks (0: only counted)", false},
  [HAK_OPT_LEAKCHECK_SYMBOLIZER] = {"leakcheck_symbolizer", 0, 0, 0, NULL,
                                    "the leak report's file:line from this program (default: hakmem-symbolize "
                                    "next to libhakmem.so), or off",
                                    true},
};

#define ENV_PREFIX "HAKMEM_"
#define ENV_NAME_MAX 64 /* longer than any option name, with the prefix */

static long option_value[HAK_OPT_COUNT];
static const char *option_text[HAK_OPT_COUNT]; /* text options: the environment's string, or NULL */

long hak_option(hak_option_t o) { return option_value[o]; }
const char *hak_option_text(hak_option_t o) { return option_text[o]; }

/* HAKMEM_<NAME>: the option's environment variable. */
static const char *env_name(const hak_option_desc_t *d, char out[ENV_NAME_MAX]) {
  size_t n = strlen(ENV_PREFIX);
  memcpy(out, ENV_PREFIX, n);
  for (const char *c = d->name; *c != '\0' && n + 1 < ENV_NAME_MAX; c++) out[n++] = (char)toupper((unsigned char)*c);
  out[n] = '\0';
  return out;
}

extern char **environ;

/* The value s names: one of d's words, or a decimal number (an optional
 * minus sign, then digits only) in its range; false when s is neither. */
static bool parse_value(const hak_option_desc_t *d, const char *s, long *out) {
  for (long w = 0; d->words != NULL && d->words[w] != NULL; w++)
    if (strcmp(s, d->words[w]) == 0) {
      *out = w;
      return true;
    }
  const char *digits = s[0] == '-' ? s + 1 : s;
  if (!isdigit((unsigned char)digits[0])) return false; /* strtol would skip spaces and take '+' */
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < d->min || v > d->max) return false;
  *out = v;
  return true;
}

/* A HAKMEM_ variable that names no option is a typo: say so, with the list. */
static void check_unknown(void) {
  char env[ENV_NAME_MAX];
  for (char **e = environ; e != NULL && *e != NULL; e++) {
    if (strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0) continue;
    size_t len = strcspn(*e, "=");
    bool known = false;
    for (int i = 0; i < HAK_OPT_COUNT && !known; i++) {
      env_name(&option_table[i], env);
      known = strlen(env) == len && strncmp(*e, env, len) == 0;
    }
    if (known) continue;
    hak_out_t o = {.fd = 2};
    hak_out_printf(&o, "hakmem: unknown option %.*s (ignored); options:", (int)len, *e);
    for (int i = 0; i < HAK_OPT_COUNT; i++) hak_out_printf(&o, " %s", env_name(&option_table[i], env));
    hak_out_write(&o, "\n", 1);
    hak_out_flush(&o);
  }
}

void hak_options_init(void) {
  check_unknown();
  char env[ENV_NAME_MAX];
  for (int i = 0; i < HAK_OPT_COUNT; i++) {
    const hak_option_desc_t *d = &option_table[i];
    option_value[i] = d->def;
    const char *s = getenv(env_name(d, env));
    if (s == NULL || *s == '\0') continue;
    if (d->is_text) {
      option_text[i] = s;
      continue;
    }
    long v;
    if (!parse_value(d, s, &v)) {
      hak_out_error("hakmem: %s='%s' is not %s in [%ld, %ld]; using %ld\n", env, s,
              d->words ? "a known word or a number" : "a number", d->min, d->max, d->def);
      continue;
    }
    const char *accepted = d->allowed != NULL ? d->allowed(v) : NULL;
    if (accepted != NULL) {
      hak_out_error("hakmem: %s='%s' is not %s; using %ld\n", env, s, accepted, d->def);
      continue;
    }
    option_value[i] = v;
  }
}

/* Line i of the table (-1: its heading) into buf. */
static void table_line(int i, char *buf, size_t size) {
  char env[ENV_NAME_MAX];
  if (i < 0) {
    snprintf(buf, size, "%-18s %6s %8s  %-26s %s\n", "option", "value", "default", "environment", "meaning");
    return;
  }
  const hak_option_desc_t *d = &option_table[i];
  if (d->is_text)
    snprintf(buf, size, "%-18s %6s %8s  %-26s %s\n", d->name, option_text[i] ? option_text[i] : "-", "-",
             env_name(d, env), d->meaning);
  else
    snprintf(buf, size, "%-18s %6ld %8ld  %-26s %s\n", d->name, option_value[i], d->def, env_name(d, env), d->meaning);
}

/* The table with the values in force: to a stdio stream (hak_options_print,
 * api.c), or to stderr without stdio (HAKMEM_VERBOSE at start-up, init.c:
 * inside the first malloc, as every message of the slow paths is written). */
void hak_options_write(FILE *out) {
  char line[512];
  for (int i = -1; i < HAK_OPT_COUNT; i++) {
    table_line(i, line, sizeof line);
    fputs(line, out);
  }
}
void hak_options_report(void) {
  char line[512];
  hak_out_t o = {.fd = 2};
  for (int i = -1; i < HAK_OPT_COUNT; i++) {
    table_line(i, line, sizeof line);
    hak_out_write(&o, line, strlen(line));
  }
  hak_out_flush(&o);
}
