/* stats.c — process-wide statistics: where every mapped byte is, what is
 * resident, what happened so far, per size class; printed as text (laid out
 * like gperftools' GetStats) or as one JSON object; hak_reset.
 *
 * Nothing is counted on the fast paths: each part accounts for itself when
 * asked (heap.c: heaps, magazines, slabs; slab.c and superslab.c: the pool
 * and the SuperSlabs; medium.c, large.c, meta.c, pagemap.c, scavenger.c),
 * taking its locks in the lock order, and residency comes from mincore.
 * Cumulative counters are the per-thread counters of the slow paths
 * (atomics written only by their own thread, HAK_STAT_ADD) and the tiers'
 * counts; hak_reset takes their current values as the new zero rather than
 * writing other threads' counters.
 *
 * At exit (HAKMEM_STATS=text|json), to HAKMEM_STATS_FILE or stderr; on the
 * signal HAKMEM_STATS_SIGNAL, at the next slow path or scavenger tick (a
 * signal handler may not take the allocator's locks: it only raises a flag).
 * The signal is SIGUSR1, SIGUSR2 or a real-time one (options.c). A handler
 * the program had installed for it before hakmem's (at hakmem's
 * initialisation) is called from hakmem's, with the same arguments, mask
 * and flags (SA_RESTART, SA_NODEFER, SA_RESETHAND, SA_ONSTACK as it asked);
 * one the program installs later replaces hakmem's, as any sigaction does:
 * then the signal is the program's alone, and no statistics come of it. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hakmem.h"
#include "internal.h"

/* stats_lock guards the cumulative counters at the last hak_reset (zero
 * before) and the one snapshot buffer of hak_stats_print and hak_reset (static:
 * too big for some threads' stacks, and never memory that the figures would
 * then describe). Taken before any other lock of the allocator; held across
 * fork (hak_stats_fork_*). */
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_stats_t snapshot;
/* Set while this thread prints: a malloc of the printing (a stdio buffer)
 * must not print again when the statistics signal comes meanwhile. */
static hak_tls bool printing;
static __typeof__(((hak_stats_t *)0)->total) zero;
/* With HAKMEM_STATS and HAKMEM_STATS_PEAK set: the figures when the
 * process's RSS was highest.
 * A slow path (where the RSS grows: fresh blocks and pages come through the
 * slow paths) reads the RSS (/proc/self/statm) when PEAK_CHECK_NS have passed
 * since the last reading; past the peak's by 1/32 (at least PEAK_STEP_MIN) it
 * takes the figures again. peak under stats_lock. */
static hak_stats_t peak;
static bool have_peak;
static _Atomic bool peak_on;
static _Atomic size_t peak_next;
static _Atomic uint64_t peak_checked_ns;
#define PEAK_CHECK_NS 1000000u
#define PEAK_STEP_MIN ((size_t)256 << 10)

/* Mappings of hakmem's own outside the tiers' bookkeeping (the scavenger's
 * stack), counted as metadata; and the scavenger's passes that released
 * memory, with the bytes released meanwhile (by any thread: the OS layer
 * counts bytes, not who released them). */
#define EXTRA_REGIONS 4
static struct { const void *p; size_t bytes; } extra[EXTRA_REGIONS];
static _Atomic unsigned extra_regions;
static _Atomic uint64_t scavenge_passes, scavenge_released;

void hak_stats_add_metadata(const void *p, size_t bytes) {
  unsigned i = atomic_load(&extra_regions);
  if (i == EXTRA_REGIONS) return;
  extra[i].p = p;
  extra[i].bytes = bytes;
  atomic_store(&extra_regions, i + 1);
}

void hak_stats_count_scavenge(size_t released) {
  atomic_fetch_add(&scavenge_passes, 1);
  atomic_fetch_add(&scavenge_released, released);
}

static void gather(hak_stats_t *st) {
  memset(st, 0, sizeof *st);
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) st->cls[c].block_size = hak_class_size[c];
  hak_heap_stats_t h = {0};
  uint64_t medium[3], large[3];
  uint64_t xfer[2];
  hak_heaps_account(st, &h);
  hak_xfer_account(st, xfer);
  hak_pool_account(st);
  hak_medium_account(st, medium);
  hak_large_account(st, large);
  hak_meta_account(st);
  hak_pagemap_account(st);
  hak_reentry_account(st);
  for (unsigned i = 0; i < extra_regions; i++) {
    st->metadata_bytes += extra[i].bytes;
    st->resident.metadata += hak_os_resident(extra[i].p, extra[i].bytes);
  }
  st->mapped_bytes = atomic_load(&hak_os_counters.mapped_bytes);
  /* Small blocks: a magazine's blocks are counted in their slab's used. */
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    hak_class_stats_t *k = &st->cls[c];
    size_t cached = k->in_magazines + k->in_transfer;
    k->in_use = k->in_use > cached ? k->in_use - cached : 0;
    st->slabs += k->slabs;
    st->in_use_bytes += k->in_use * k->block_size;
    st->small_in_use_bytes += k->in_use * k->block_size;
    st->magazine_bytes += k->in_magazines * k->block_size;
    st->transfer_bytes += k->in_transfer * k->block_size;
    st->slab_free_bytes += k->free_in_slabs * k->block_size;
  }
  st->process_rss_bytes = hak_os_process_rss();
  st->resident_bytes = st->resident.slabs + st->resident.pool + st->resident.superslab_free + st->resident.medium +
                       st->resident.large + st->resident.large_cache + st->resident.metadata;
  st->total.refills = atomic_load(&h.refills);
  st->total.refill_blocks = atomic_load(&h.refill_blocks);
  st->total.flushes = atomic_load(&h.flushes);
  st->total.flush_blocks = atomic_load(&h.flush_blocks);
  st->total.remote_frees = atomic_load(&h.remote_frees);
  st->total.remote_collected = atomic_load(&h.remote_collected);
  st->total.transfer_in = xfer[0];
  st->total.transfer_out = xfer[1];
  st->total.slabs_new = atomic_load(&h.slabs_new);
  st->total.slabs_adopted = atomic_load(&h.slabs_adopted);
  st->total.medium_allocs = medium[0];
  st->total.medium_frees = medium[1];
  st->total.medium_bytes = medium[2];
  st->total.large_allocs = large[0];
  st->total.large_frees = large[1];
  st->total.large_bytes = large[2];
  st->total.os_maps = atomic_load(&hak_os_counters.map_calls);
  st->total.os_unmaps = atomic_load(&hak_os_counters.unmap_calls);
  st->total.os_decommits = atomic_load(&hak_os_counters.decommit_calls);
  st->total.os_moves = atomic_load(&hak_os_counters.move_calls);
  st->total.released_bytes = atomic_load(&hak_os_counters.released_bytes);
  st->total.moved_bytes = atomic_load(&hak_os_counters.moved_bytes);
  st->total.decommitted_bytes = atomic_load(&hak_os_counters.decommitted_bytes);
  st->total.scavenger_passes = atomic_load(&scavenge_passes);
  st->total.scavenger_released_bytes = atomic_load(&scavenge_released);
}

/* The cumulative counters, all unsigned long long, as an array (for reset). */
#define TOTAL_COUNT (sizeof(zero) / sizeof(unsigned long long))
_Static_assert(sizeof(zero) % sizeof(unsigned long long) == 0, "the totals are all unsigned long long");

/* The figures now, cumulative counters since the last reset; stats_lock held. */
static void gather_since_reset(hak_stats_t *out) {
  gather(out);
  unsigned long long *t = (unsigned long long *)&out->total, *z = (unsigned long long *)&zero;
  for (size_t i = 0; i < TOTAL_COUNT; i++) t[i] -= z[i];
}

/* hak_stats_get (api.c: initialised, signals blocked). */
void hak_stats_snapshot(hak_stats_t *out) {
  pthread_mutex_lock(&stats_lock);
  gather_since_reset(out);
  pthread_mutex_unlock(&stats_lock);
}

void hak_stats_fork_prepare(void) { pthread_mutex_lock(&stats_lock); }
void hak_stats_fork_parent(void) { pthread_mutex_unlock(&stats_lock); }
void hak_stats_fork_child(void) { pthread_mutex_init(&stats_lock, NULL); }

/* Keeps the figures now as the peak when the RSS (rss bytes) is past the
 * peak's by a step (so the peak is the first time the RSS came within a step
 * of its highest, not the exit of a program that keeps its memory) and the
 * program still holds at least PEAK_KEEP_IN_USE of the bytes it held at the
 * peak kept (a program whose RSS creeps up to its end would otherwise be seen
 * at its peak while it frees everything); either way the next check waits for
 * another step. stats_lock held. */
#define PEAK_KEEP_IN_USE(b) ((b) / 4 * 3)
static void keep_peak(const hak_stats_t *now, size_t rss) {
  if (have_peak && rss <= atomic_load(&peak_next)) return;
  if (!have_peak || now->in_use_bytes >= PEAK_KEEP_IN_USE(peak.in_use_bytes)) {
    peak = *now;
    have_peak = true;
  }
  size_t step = rss / 32 > PEAK_STEP_MIN ? rss / 32 : PEAK_STEP_MIN;
  atomic_store(&peak_next, rss + step);
}

static void check_peak(void) {
  size_t rss = hak_os_process_rss();
  if (rss <= atomic_load_explicit(&peak_next, memory_order_relaxed)) return;
  sigset_t old;
  hak_signals_block(&old);
  pthread_mutex_lock(&stats_lock);
  gather_since_reset(&snapshot);
  keep_peak(&snapshot, rss);
  pthread_mutex_unlock(&stats_lock);
  hak_signals_restore(&old);
}

/* ---- printing -------------------------------------------------------------------- */
/* Every figure once: for the text layout and the JSON object alike (the JSON
 * key is the C field's name). */
#define HAK_PARTS(X)                                                                   \
  X(in_use_bytes, "Bytes in use by application")                                      \
  X(magazine_bytes, "Bytes free in thread magazines")                                 \
  X(transfer_bytes, "Bytes free in the transfer cache")                               \
  X(slab_free_bytes, "Bytes free in slabs")                                           \
  X(slab_tail_bytes, "Bytes past the last whole block of slabs")                      \
  X(pool_bytes, "Bytes in pooled empty slabs")                                        \
  X(superslab_free_bytes, "Bytes in SuperSlab units in no slab")                      \
  X(medium_free_bytes, "Bytes free in medium chunks")                                 \
  X(large_cache_bytes, "Bytes in the large cache and free in arenas")                 \
  X(metadata_bytes, "Bytes of metadata")
#define HAK_OTHER_BYTES(X)                                                             \
  X(small_in_use_bytes, "Bytes in use in small blocks")                               \
  X(medium_in_use_bytes, "Bytes in use in medium blocks")                             \
  X(large_in_use_bytes, "Bytes in use in large blocks")                               \
  X(superslab_dirty_bytes, "Bytes of SuperSlab units in no slab still committed")    \
  X(medium_dirty_bytes, "Bytes free in medium chunks still committed")               \
  X(large_dirty_bytes, "Bytes in the large cache and free in arenas still committed")
#define HAK_RESIDENT(X)                                                                \
  X(slabs, "in slabs") X(pool, "in pooled slabs") X(superslab_free, "in free SuperSlab units") \
  X(medium, "in medium chunks") X(large, "in large blocks") X(large_cache, "in the large cache") \
  X(metadata, "of metadata")
#define HAK_COUNTS(X)                                                                  \
  X(slabs, "Slabs owned or abandoned") X(pooled_slabs, "Pooled empty slabs")          \
  X(superslabs, "SuperSlabs") X(medium_chunks, "Medium chunks")                       \
  X(large_blocks, "Live large blocks") X(large_cached, "Cached large ranges") X(heaps, "Thread heaps")
#define HAK_TOTALS(X)                                                                  \
  X(refills, "Magazine refills") X(refill_blocks, "Blocks taken from slabs by refills") \
  X(flushes, "Magazine flushes") X(flush_blocks, "Blocks sent back to slabs by flushes") \
  X(remote_frees, "Blocks sent to a slab of another thread")                          \
  X(remote_collected, "Remote frees collected by slab owners")                        \
  X(transfer_in, "Blocks put into the transfer cache")                                \
  X(transfer_out, "Blocks taken from the transfer cache")                             \
  X(slabs_new, "Slabs made or taken from the pool") X(slabs_adopted, "Slabs adopted from exited threads") \
  X(medium_allocs, "Medium allocations") X(medium_frees, "Medium frees")             \
  X(medium_bytes, "Medium bytes allocated") X(large_allocs, "Large allocations")     \
  X(large_frees, "Large frees") X(large_bytes, "Large bytes allocated")              \
  X(os_maps, "mmap calls") X(os_unmaps, "munmap calls") X(os_decommits, "madvise(DONTNEED) calls") \
  X(os_moves, "mremap moves") X(released_bytes, "Bytes unmapped or decommitted")     \
  X(moved_bytes, "Bytes moved by mremap") X(decommitted_bytes, "Bytes decommitted (MADV_DONTNEED)") \
  X(scavenger_passes, "Scavenger passes that released memory")                        \
  X(scavenger_released_bytes, "Bytes released during scavenger passes")           \
  X(reentrant_allocs, "Re-entrant allocations (direct blocks)")                      \
  X(deferred_frees, "Frees deferred (re-entrant calls, the tracking's own)")

static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

static void print_text(FILE *out, const hak_stats_t *s, const char *when) {
  fprintf(out, "------------------------------------------------\n");
  fprintf(out, "hakmem %s, variant %s: %s\n", HAK_VERSION_STRING, HAK_BUILD_NAME, when);
  const char *sign = " ";
#define TEXT_PART(f, label)                                                                       \
  fprintf(out, "MALLOC: %s %14zu (%10.1f MiB) %s\n", sign, s->f, mib(s->f), label);             \
  sign = "+";
  HAK_PARTS(TEXT_PART)
  fprintf(out, "MALLOC:   ------------\n");
  fprintf(out, "MALLOC: = %14zu (%10.1f MiB) Bytes mapped (Total)\n", s->mapped_bytes, mib(s->mapped_bytes));
  fprintf(out, "MALLOC:   ------------\n");
  fprintf(out, "MALLOC:   %14zu (%10.1f MiB) Bytes resident in memory\n", s->resident_bytes, mib(s->resident_bytes));
  size_t gone = s->mapped_bytes > s->resident_bytes ? s->mapped_bytes - s->resident_bytes : 0;
  fprintf(out, "MALLOC:   %14zu (%10.1f MiB) Bytes returned to the OS or never touched\n", gone, mib(gone));
  fprintf(out, "MALLOC:   %14zu (%10.1f MiB) Process RSS (hakmem's and everything else's)\n", s->process_rss_bytes,
          mib(s->process_rss_bytes));
#define TEXT_RES(f, label) \
  fprintf(out, "MALLOC:   %14zu (%10.1f MiB)   resident %s\n", s->resident.f, mib(s->resident.f), label);
  HAK_RESIDENT(TEXT_RES)
#define TEXT_BYTES(f, label) fprintf(out, "MALLOC:   %14zu (%10.1f MiB) %s\n", s->f, mib(s->f), label);
  HAK_OTHER_BYTES(TEXT_BYTES)
  fprintf(out, "MALLOC:   ------------\n");
#define TEXT_COUNT(f, label) fprintf(out, "MALLOC:   %14zu              %s\n", s->f, label);
  HAK_COUNTS(TEXT_COUNT)
  fprintf(out, "MALLOC:   ------------ since start or the last hak_reset\n");
#define TEXT_TOTAL(f, label) fprintf(out, "MALLOC:   %14llu              %s\n", s->total.f, label);
  HAK_TOTALS(TEXT_TOTAL)
  fprintf(out, "------------------------------------------------\n");
  fprintf(out, "Size classes (blocks; MiB: the slabs' memory):\n");
  fprintf(out, "class %8s %7s %10s %10s %10s %10s %9s\n", "size", "slabs", "in use", "magazines", "transfer",
          "free", "MiB");
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    const hak_class_stats_t *k = &s->cls[c];
    if (k->slabs == 0 && k->in_magazines == 0 && k->in_transfer == 0) continue;
    fprintf(out, "%5u %8zu %7zu %10zu %10zu %10zu %10zu %9.2f\n", c, k->block_size, k->slabs, k->in_use,
            k->in_magazines, k->in_transfer, k->free_in_slabs, mib(k->slab_bytes));
  }
  fprintf(out, "------------------------------------------------\n");
}

/* Every figure as JSON members, each preceded by a comma. */
static void print_json_fields(FILE *out, const hak_stats_t *s) {
#define JSON_FIELD(f, label) fprintf(out, ",\"%s\":%zu", #f, s->f);
  HAK_PARTS(JSON_FIELD)
  fprintf(out, ",\"mapped_bytes\":%zu,\"resident_bytes\":%zu,\"process_rss_bytes\":%zu", s->mapped_bytes,
          s->resident_bytes, s->process_rss_bytes);
  HAK_OTHER_BYTES(JSON_FIELD)
  HAK_COUNTS(JSON_FIELD)
  const char *sep = "";
  fprintf(out, ",\"resident\":{");
#define JSON_RES(f, label) fprintf(out, "%s\"%s\":%zu", sep, #f, s->resident.f), sep = ",";
  HAK_RESIDENT(JSON_RES)
  sep = "";
  fprintf(out, "},\"total\":{");
#define JSON_TOTAL(f, label) fprintf(out, "%s\"%s\":%llu", sep, #f, s->total.f), sep = ",";
  HAK_TOTALS(JSON_TOTAL)
  fprintf(out, "},\"classes\":[");
  sep = "";
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    const hak_class_stats_t *k = &s->cls[c];
    fprintf(out,
            "%s{\"class\":%u,\"block_size\":%zu,\"slabs\":%zu,\"in_use\":%zu,\"in_magazines\":%zu,"
            "\"in_transfer\":%zu,\"free_in_slabs\":%zu,\"slab_bytes\":%zu}",
            sep, c, k->block_size, k->slabs, k->in_use, k->in_magazines, k->in_transfer, k->free_in_slabs,
            k->slab_bytes);
    sep = ",";
  }
  fprintf(out, "]");
}

static void print_json(FILE *out, const hak_stats_t *s, const hak_stats_t *at_peak) {
  fprintf(out, "{\"hakmem\":\"%s\",\"variant\":\"%s\"", HAK_VERSION_STRING, HAK_BUILD_NAME);
  print_json_fields(out, s);
  if (at_peak != NULL) {
    fprintf(out, ",\"peak\":{\"at\":\"the peak of the process's RSS\"");
    print_json_fields(out, at_peak);
    fprintf(out, "}");
  }
  fprintf(out, "}\n");
}

/* hak_stats_print (api.c), and the statistics at exit and on the signal
 * (emit): the figures now, and at the peak when kept. Signals blocked while the
 * lock is held. */
void hak_stats_write(FILE *out, int fmt) {
  if (printing) return; /* a hook that prints, from inside this print's malloc */
  printing = true;
  sigset_t old;
  hak_signals_block(&old);
  pthread_mutex_lock(&stats_lock);
  gather_since_reset(&snapshot);
  const hak_stats_t *at_peak = have_peak ? &peak : NULL;
  if (fmt == 1) print_json(out, &snapshot, at_peak);
  else {
    print_text(out, &snapshot, "now");
    if (at_peak != NULL) {
      char when[96];
      snprintf(when, sizeof when, "at the peak of the process's RSS (%.1f MiB)", mib(at_peak->process_rss_bytes));
      print_text(out, at_peak, when);
    }
  }
  pthread_mutex_unlock(&stats_lock);
  fflush(out);
  hak_signals_restore(&old);
  printing = false;
}

/* ---- at exit, on a signal --------------------------------------------------------- */
static void emit(void) {
  long fmt = hak_option(HAK_OPT_STATS);
  const char *path = hak_option_text(HAK_OPT_STATS_FILE);
  FILE *f = path != NULL ? fopen(path, "a") : NULL;
  if (path != NULL && f == NULL) hak_out_error("hakmem: cannot open HAKMEM_STATS_FILE=%s; statistics on stderr\n", path);
  hak_stats_write(f != NULL ? f : stderr, fmt == 2 ? 1 : 0);
  if (f != NULL) fclose(f);
}

void hak_stats_at_exit(void) { emit(); }

static volatile sig_atomic_t stats_wanted;
void hak_stats_peak_init(void) { atomic_store(&peak_on, true); }

/* Catches the statistics signal (options.c accepts only those that decide
 * nothing about a program's fate; the program's handler is chained,
 * signal_flag.c). */
void hak_stats_signal_init(void) {
  long sig = hak_option(HAK_OPT_STATS_SIGNAL);
  if (sig > 0 && !hak_signal_flag_catch((int)sig, &stats_wanted))
    hak_out_error("hakmem: cannot catch signal %ld for statistics\n", sig);
}

/* Slow paths and the scavenger: print if a signal asked for it. */
void hak_stats_poll(void) {
  if (hak_likely(!stats_wanted && !atomic_load_explicit(&peak_on, memory_order_relaxed)) || printing) return;
  if (atomic_load_explicit(&peak_on, memory_order_relaxed)) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t last = atomic_load_explicit(&peak_checked_ns, memory_order_relaxed);
    if (now - last >= PEAK_CHECK_NS && atomic_compare_exchange_strong(&peak_checked_ns, &last, now)) {
      printing = true;
      check_peak();
      printing = false;
    }
  }
  if (stats_wanted) {
    stats_wanted = 0;
    emit();
  }
}

/* ---- reset ---------------------------------------------------------------------- */
/* hak_reset (api.c), once everything free went back: the cumulative counters
 * start again from now; the bytes still in use. */
size_t hak_stats_zero(void) {
  pthread_mutex_lock(&stats_lock);
  gather(&snapshot);
  zero = snapshot.total;
  size_t live = snapshot.in_use_bytes;
  pthread_mutex_unlock(&stats_lock);
  return live;
}
