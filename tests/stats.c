/* stats.c — hakmem's statistics against programs whose allocations are known,
 * under LD_PRELOAD of a hakmem build:
 *   - N blocks of size S raise the bytes in use by N x the usable size, in
 *     every tier (small: the class size; medium: whole pages; large: whole
 *     units), and the size class's count by N; freeing them brings both back;
 *   - the parts (in use, magazines, free in slabs, ...) sum to the mapped bytes,
 *     and the resident bytes by part sum to the resident bytes;
 *   - hak_reset: after everything is freed it returns the bytes still in use
 *     (what libc itself holds), gives the rest back (at most 256 KiB of
 *     hakmem's memory stays resident; resident and mapped figures printed),
 *     and zeroes the cumulative counters;
 *   - blocks of another thread's slabs freed here go to the transfer cache
 *     (hybrid) and that thread's next allocations take from it, or (other
 *     variants) home as remote frees;
 *   - hak_reset from one thread releases the slabs of another, live, thread
 *     whose blocks were all freed by the first (remote frees or the transfer
 *     cache, neither collected by their owner), and empties the cache;
 *   - hak_reset asks another live thread to drain its magazines: its next
 *     call (of another size class) gives them back, and the next hak_reset
 *     leaves no slab of their class; also with a hook installed, whose
 *     reports of that thread's calls go on;
 *   - with arguments --signal FILE (run with HAKMEM_STATS_SIGNAL=12 and
 *     HAKMEM_STATS_FILE=FILE): raises SIGUSR2, allocates, and checks that the
 *     statistics were written to FILE while the program ran;
 *   - with arguments TEXT JSON: writes hak_stats_print's text and JSON to
 *     those files (tests/core.sh checks that the JSON parses and carries
 *     every figure of the text).
 * Usage: stats [TEXT JSON | --signal FILE] */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hakmem.h"

static void (*stats_get)(hak_stats_t *);
static void (*stats_print)(FILE *, int);
static size_t (*reset)(void);
static hak_stats_t s0, s1; /* big: not on the stack */

static size_t parts_sum(const hak_stats_t *s) {
  return s->in_use_bytes + s->magazine_bytes + s->transfer_bytes + s->slab_free_bytes + s->slab_tail_bytes + s->pool_bytes +
         s->superslab_free_bytes + s->medium_free_bytes + s->large_cache_bytes + s->metadata_bytes;
}
static size_t resident_sum(const hak_stats_t *s) {
  return s->resident.slabs + s->resident.pool + s->resident.superslab_free + s->resident.medium + s->resident.large +
         s->resident.large_cache + s->resident.metadata;
}

static void check_sums(const char *when, const hak_stats_t *s) {
  CHECK(parts_sum(s) == s->mapped_bytes, "%s: the parts sum to the mapped bytes (%zu vs %zu)", when, parts_sum(s),
        s->mapped_bytes);
  CHECK(resident_sum(s) == s->resident_bytes && s->resident_bytes <= s->mapped_bytes,
        "%s: resident by part sums to the resident bytes (%zu vs %zu), within the mapped", when, resident_sum(s),
        s->resident_bytes);
  CHECK(s->process_rss_bytes > 0, "%s: the process's RSS is read", when);
  CHECK(s->small_in_use_bytes + s->medium_in_use_bytes + s->large_in_use_bytes == s->in_use_bytes,
        "%s: the bytes in use by tier sum to the bytes in use", when);
  CHECK(s->superslab_dirty_bytes <= s->superslab_free_bytes && s->medium_dirty_bytes <= s->medium_free_bytes &&
            s->large_dirty_bytes <= s->large_cache_bytes,
        "%s: committed free bytes are part of the free bytes", when);
}

/* Allocates n blocks of size bytes, checks the growth of the bytes in use by
 * n x usable (and of the class's count, for small sizes), frees them, checks
 * the return. */
#define MAX_N 2000
static void *blocks[MAX_N];
enum { SMALL, MEDIUM, LARGE };
static size_t tier_bytes(const hak_stats_t *s, int t) {
  return t == SMALL ? s->small_in_use_bytes : t == MEDIUM ? s->medium_in_use_bytes : s->large_in_use_bytes;
}
static void tier(const char *what, size_t size, size_t n, size_t usable, int t) {
  int small = t == SMALL;
  stats_get(&s0);
  int cls = -1;
  for (int c = 0; small && c < HAK_STATS_CLASSES; c++)
    if (s0.cls[c].block_size == usable) cls = c;
  CHECK(!small || cls >= 0, "%s: a size class of %zu bytes is listed", what, usable);
  for (size_t i = 0; i < n; i++) {
    blocks[i] = malloc(size);
    memset(blocks[i], 1, size);
  }
  stats_get(&s1);
  CHECK(s1.in_use_bytes - s0.in_use_bytes == n * usable, "%s: %zu x %zu bytes: in use grew by %zu (expected %zu)",
        what, n, size, s1.in_use_bytes - s0.in_use_bytes, n * usable);
  CHECK(tier_bytes(&s1, t) - tier_bytes(&s0, t) == n * usable, "%s: its tier's bytes in use grew by as much", what);
  if (cls >= 0)
    CHECK(s1.cls[cls].in_use - s0.cls[cls].in_use == n && s1.cls[cls].block_size == usable,
          "%s: class %d counts %zu more blocks in use (expected %zu)", what, cls,
          s1.cls[cls].in_use - s0.cls[cls].in_use, n);
  check_sums(what, &s1);
  for (size_t i = 0; i < n; i++) free(blocks[i]);
  stats_get(&s1);
  CHECK(s1.in_use_bytes == s0.in_use_bytes, "%s: freed, in use back to %zu (is %zu)", what, s0.in_use_bytes,
        s1.in_use_bytes);
  check_sums(what, &s1);
}

/* A thread that allocates OTHER_N blocks of OTHER_SIZE bytes (state 1), and
 * when told to (state 2) allocates OTHER_AGAIN more and frees them (state
 * 3), then waits, alive, until told to go (state 4). */
#define OTHER_N 20000
#define OTHER_AGAIN 1000
#define OTHER_SIZE 64
static void *other_blocks[OTHER_N];
static pthread_mutex_t other_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t other_cond = PTHREAD_COND_INITIALIZER;
static int other_state;
static void other_set(int state) {
  pthread_mutex_lock(&other_lock);
  other_state = state;
  pthread_cond_broadcast(&other_cond);
  pthread_mutex_unlock(&other_lock);
}
static void other_wait(int state) {
  pthread_mutex_lock(&other_lock);
  while (other_state != state) pthread_cond_wait(&other_cond, &other_lock);
  pthread_mutex_unlock(&other_lock);
}
static void *other_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < OTHER_N; i++) memset(other_blocks[i] = malloc(OTHER_SIZE), 7, OTHER_SIZE);
  other_set(1);
  other_wait(2);
  for (int i = 0; i < OTHER_AGAIN; i++) memset(other_blocks[i] = malloc(OTHER_SIZE), 7, OTHER_SIZE);
  for (int i = 0; i < OTHER_AGAIN; i++) free(other_blocks[i]);
  other_set(3);
  other_wait(4);
  return NULL;
}

/* The variants with a transfer cache (core/transfer.c). */
static int has_transfer(void) {
  const char *(*variant)(void) = (const char *(*)(void))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_variant");
  return variant != NULL && (strcmp(variant(), "hybrid") == 0 || strcmp(variant(), "large_mappings") == 0);
}

/* The transfer cache carries blocks from a thread that frees a class to
 * threads that allocate it: blocks of another thread's slabs that this
 * thread frees go there only while this thread does not allocate that class
 * itself (no refill for two of the scavenger's 100 ms ticks); while it does,
 * they go home as remote frees (else they would come back to it, still
 * foreign, at its next refill: larson's round trip through the shared lock).
 * A thread allocates XFER_N blocks; this thread frees them twice over: once
 * right after allocating blocks of the class itself, once after 300 ms
 * without. A tick boundary between its own refill and the frees can only make
 * the first case look like the second, so the first is tried up to 3 times. */
#define XFER_N 4000
static void *xfer_blocks[XFER_N];
static pthread_barrier_t xfer_barrier;
static void *xfer_alloc_thread(void *arg) { /* alive until the frees are done: its slabs stay its own */
  (void)arg;
  for (int i = 0; i < XFER_N; i++) memset(xfer_blocks[i] = malloc(OTHER_SIZE), 9, OTHER_SIZE);
  pthread_barrier_wait(&xfer_barrier);
  pthread_barrier_wait(&xfer_barrier);
  return NULL;
}
static unsigned long long free_foreign_blocks(int allocate_first) {
  pthread_t t;
  pthread_barrier_init(&xfer_barrier, NULL, 2);
  pthread_create(&t, NULL, xfer_alloc_thread, NULL);
  pthread_barrier_wait(&xfer_barrier);
  void *own[600];
  if (allocate_first) { /* this thread allocates the class now: a refill */
    for (int i = 0; i < 600; i++) own[i] = malloc(OTHER_SIZE);
    for (int i = 0; i < 600; i++) free(own[i]);
  }
  stats_get(&s0);
  for (int i = 0; i < XFER_N; i++) free(xfer_blocks[i]);
  stats_get(&s1);
  pthread_barrier_wait(&xfer_barrier);
  pthread_join(t, NULL);
  pthread_barrier_destroy(&xfer_barrier);
  return s1.total.transfer_in - s0.total.transfer_in;
}
static void transfer_only_from_non_allocating(void) {
  if (!has_transfer()) return;
  reset(); /* an empty transfer cache: room for what comes */
  unsigned long long in = 1;
  for (int attempt = 0; attempt < 3 && in != 0; attempt++) in = free_foreign_blocks(1);
  CHECK(in == 0, "a thread that allocates a class sends the foreign blocks it frees home, not to the transfer cache "
        "(%llu blocks went there)", in);
  usleep(300 * 1000);
  in = free_foreign_blocks(0);
  CHECK(in > 0, "a thread that has not allocated the class for 300 ms hands them to the transfer cache (%llu blocks)",
        in);
  reset();
}

/* Dynamic flush: a thread that only frees a class (a consumer) grows that
 * magazine when it fills twice within a tick, so its flushes move big
 * batches: freeing XFER_N blocks of another live thread takes a few dozen
 * flushes, not one per 32 blocks (its starting quarter capacity, 64 blocks of
 * 64 bytes, flushes half: 125 flushes). */
static int is_dynamic_flush(void) {
  const char *(*variant)(void) = (const char *(*)(void))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_variant");
  return variant != NULL && (strcmp(variant(), "hybrid") == 0 || strcmp(variant(), "dynamic_flush") == 0 ||
                             strcmp(variant(), "large_mappings") == 0);
}
static unsigned long long consumer_flushes;
static void *consumer_thread(void *arg) {
  (void)arg;
  stats_get(&s0);
  for (int i = 0; i < XFER_N; i++) free(xfer_blocks[i]);
  stats_get(&s1);
  consumer_flushes = s1.total.flushes - s0.total.flushes;
  return NULL;
}
static void consumer_magazine_grows(void) {
  if (!is_dynamic_flush()) return;
  pthread_t t, c;
  pthread_barrier_init(&xfer_barrier, NULL, 2);
  pthread_create(&t, NULL, xfer_alloc_thread, NULL);
  pthread_barrier_wait(&xfer_barrier);
  pthread_create(&c, NULL, consumer_thread, NULL);
  pthread_join(c, NULL);
  pthread_barrier_wait(&xfer_barrier);
  pthread_join(t, NULL);
  pthread_barrier_destroy(&xfer_barrier);
  CHECK(consumer_flushes > 0 && consumer_flushes <= 40,
        "a thread that only frees grows its magazine: %d frees of %d bytes took %llu flushes (125 at its starting "
        "capacity)", XFER_N, OTHER_SIZE, consumer_flushes);
  reset();
}

static void reset_other_thread(void) {
  usleep(300 * 1000); /* this thread's last refill of the class two ticks ago: a freeing thread (above) */
  pthread_t t;
  pthread_create(&t, NULL, other_thread, NULL);
  other_wait(1);
  stats_get(&s0);
  int cls = -1;
  for (int c = 0; c < HAK_STATS_CLASSES; c++)
    if (s0.cls[c].block_size == OTHER_SIZE) cls = c;
  size_t before = cls >= 0 ? s0.cls[cls].slabs : 0;
  for (int i = 0; i < OTHER_N; i++) free(other_blocks[i]);
  stats_get(&s1);
  /* Blocks freed by this thread of the other's slabs: with a transfer cache
   * the flushes hand them over whole, and the other thread's next
   * allocations take them from there; without, they go home as remote frees. */
  unsigned long long in = s1.total.transfer_in - s0.total.transfer_in, remote = s1.total.remote_frees - s0.total.remote_frees;
  if (has_transfer())
    CHECK(in > 0 && s1.transfer_bytes > 0 && s1.transfer_bytes == in * OTHER_SIZE,
          "another thread's blocks, freed here, go to the transfer cache (%llu blocks, %zu bytes there; %llu as "
          "remote frees)", in, s1.transfer_bytes, remote);
  else
    CHECK(in == 0 && s1.transfer_bytes == 0 && remote > 0,
          "without a transfer cache, another thread's blocks freed here go home as remote frees (%llu; %llu to the "
          "transfer cache)", remote, in);
  check_sums("another thread's blocks freed", &s1);
  other_set(2);
  other_wait(3);
  stats_get(&s0);
  unsigned long long out = s0.total.transfer_out - s1.total.transfer_out;
  CHECK(has_transfer() ? out > 0 : out == 0,
        "the other thread's next allocations take %s the transfer cache (%llu blocks)", has_transfer() ? "from" : "nothing from",
        out);
  reset();
  stats_get(&s1);
  size_t after = cls >= 0 ? s1.cls[cls].slabs : 0;
  CHECK(cls >= 0 && before >= 10 && after <= 2 && s1.pool_bytes == 0,
        "hak_reset releases the slabs of a live thread whose blocks another thread freed (%zu-byte class: %zu slabs "
        "before, %zu after; pool %zu bytes)", (size_t)OTHER_SIZE, before, after, s1.pool_bytes);
  CHECK(s1.transfer_bytes == 0, "hak_reset empties the transfer cache (%zu bytes left)", s1.transfer_bytes);
  other_set(4);
  pthread_join(t, NULL);
}

/* hak_reset and another live thread's magazines: a thread (B) allocates
 * DRAIN_N blocks of DRAIN_SIZE bytes and frees them (its magazine of that
 * class fills); hak_reset here cannot touch B's magazines (only B pops and
 * pushes them, without locks), but asks B to drain: B's next call, of
 * another size class, gives them back, and the next hak_reset releases B's
 * slabs of the class. Once more with a hook installed (every thread's gate
 * closed already): B drains all the same, and its calls after the drain are
 * still reported. */
#define DRAIN_N 4000
#define DRAIN_SIZE 48
#define DRAIN_OTHER 3000 /* B's one call after the reset: another class */
static void *drain_blocks[DRAIN_N];
static int drain_state;
static pthread_mutex_t drain_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t drain_cond = PTHREAD_COND_INITIALIZER;
static void drain_set(int state) {
  pthread_mutex_lock(&drain_lock);
  drain_state = state;
  pthread_cond_broadcast(&drain_cond);
  pthread_mutex_unlock(&drain_lock);
}
static void drain_wait(int state) {
  pthread_mutex_lock(&drain_lock);
  while (drain_state != state) pthread_cond_wait(&drain_cond, &drain_lock);
  pthread_mutex_unlock(&drain_lock);
}
static int drain_bad; /* blocks that did not keep their pattern (B, after its drain) */
static _Thread_local int drain_me;
static _Atomic unsigned long drain_hooked; /* B's mallocs the hook saw */
static void drain_hook(size_t size, void *arg) {
  (void)size;
  (void)arg;
  if (drain_me) atomic_fetch_add(&drain_hooked, 1);
}
static int drain_by_free; /* B's next call is a free (its free gate), not a malloc */
static void *drain_thread(void *arg) {
  (void)arg;
  drain_me = 1;
  for (int i = 0; i < DRAIN_N; i++) memset(drain_blocks[i] = malloc(DRAIN_SIZE), 5, DRAIN_SIZE);
  for (int i = 0; i < DRAIN_N; i++) free(drain_blocks[i]);
  void *kept = malloc(DRAIN_OTHER);
  memset(kept, 6, DRAIN_OTHER);
  drain_set(1);
  drain_wait(2);
  if (drain_by_free) { /* the next call, a free its magazine has room for: the drain happens here */
    free(kept);
  } else { /* the next call, a malloc: the drain happens here */
    void *p = malloc(DRAIN_OTHER);
    memset(p, 6, DRAIN_OTHER);
    free(p);
    free(kept);
  }
  drain_set(3);
  drain_wait(4);
  /* After the drain the thread allocates as before. */
  for (int i = 0; i < DRAIN_N; i++) memset(drain_blocks[i] = malloc(DRAIN_SIZE), i & 0xff, DRAIN_SIZE);
  for (int i = 0; i < DRAIN_N; i++) {
    const unsigned char *b = drain_blocks[i];
    for (int k = 0; k < DRAIN_SIZE; k++) drain_bad += b[k] != (unsigned char)(i & 0xff);
  }
  for (int i = 0; i < DRAIN_N; i++) free(drain_blocks[i]);
  return NULL;
}

static int class_of(const hak_stats_t *s, size_t size) {
  for (int c = 0; c < HAK_STATS_CLASSES; c++)
    if (s->cls[c].block_size == size) return c;
  return -1;
}

static void reset_drains_other_thread(int hooked, int by_free) {
  const char *how = hooked ? "with a hook installed: " : by_free ? "next call a free: " : "";
  drain_by_free = by_free;
  int (*hook_add)(const hak_hooks_t *) = (int (*)(const hak_hooks_t *))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_hook_add");
  int (*hook_remove)(int) = (int (*)(int))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_hook_remove");
  int id = -1;
  if (hooked) {
    hak_hooks_t h = {.malloc_before = drain_hook};
    id = hook_add != NULL && hook_remove != NULL ? hook_add(&h) : -1;
    CHECK(id >= 0, "a hook is installed (%d)", id);
  }
  drain_state = 0;
  drain_bad = 0;
  atomic_store(&drain_hooked, 0);
  pthread_t t;
  pthread_create(&t, NULL, drain_thread, NULL);
  drain_wait(1);
  reset();
  stats_get(&s0);
  int c = class_of(&s0, DRAIN_SIZE);
  CHECK(c >= 0 && s0.cls[c].in_magazines > 0 && s0.cls[c].slabs > 0,
        "%sright after hak_reset, the other thread's magazine still holds its %d-byte blocks (%zu blocks, %zu "
        "slabs)", how, DRAIN_SIZE, c >= 0 ? s0.cls[c].in_magazines : 0, c >= 0 ? s0.cls[c].slabs : 0);
  drain_set(2);
  drain_wait(3);
  stats_get(&s1);
  CHECK(c >= 0 && s1.cls[c].in_magazines == 0,
        "%sthe other thread's next call (of another class) drained its magazine (%zu blocks of %d bytes left)", how,
        c >= 0 ? s1.cls[c].in_magazines : 0, DRAIN_SIZE);
  CHECK(s1.pool_bytes == 0, "%s... and its empty slabs went back with the pool (%zu bytes pooled)", how,
        s1.pool_bytes);
  check_sums("another thread drained", &s1);
  reset();
  stats_get(&s1);
  CHECK(c >= 0 && s1.cls[c].slabs == 0, "%sthe next hak_reset leaves no slab of the class (%zu; %zu before the drain)",
        how, c >= 0 ? s1.cls[c].slabs : 0, c >= 0 ? s0.cls[c].slabs : 0);
  unsigned long seen = atomic_load(&drain_hooked);
  drain_set(4);
  pthread_join(t, NULL);
  CHECK(drain_bad == 0, "%sthe drained thread allocates as before: %d blocks, patterns kept (%d bytes wrong)", how,
        DRAIN_N, drain_bad);
  if (hooked) {
    unsigned long after = atomic_load(&drain_hooked) - seen;
    CHECK(after == DRAIN_N, "with a hook installed: the drained thread's %d mallocs after the drain are reported (%lu)",
          DRAIN_N, after);
    CHECK(hook_remove(id) == 0, "the hook is removed");
  }
}

int main(int argc, char **argv) {
  stats_get = (void (*)(hak_stats_t *))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_stats_get");
  stats_print = (void (*)(FILE *, int))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_stats_print");
  reset = (size_t(*)(void))(uintptr_t)dlsym(RTLD_DEFAULT, "hak_reset");
  CHECK(stats_get && stats_print && reset, "hakmem is preloaded (hak_stats_get, hak_stats_print, hak_reset)");
  if (!stats_get || !stats_print || !reset) return check_report("stats");
  if (argc == 3 && strcmp(argv[1], "--signal") == 0) {
    raise(SIGUSR2);
    for (int i = 0; i < 20000; i++) free(malloc((size_t)(i % 4000) + 1)); /* slow paths, where the flag is read */
    FILE *f = fopen(argv[2], "r");
    char line[200];
    int lines = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) lines += strncmp(line, "MALLOC:", 7) == 0;
    if (f != NULL) fclose(f);
    CHECK(lines > 40, "the signal wrote the statistics to HAKMEM_STATS_FILE while the program ran (%d lines)", lines);
    return check_report("stats --signal");
  }
  if (argc == 3) { /* the two renderings of one state, for the JSON check */
    /* A background thread (the scavenger) may change the state meanwhile:
     * the JSON counts when the text before it and the text after it agree. */
    static char before[16384], after[16384];
    for (int tries = 0; tries < 20; tries++) {
      FILE *t = fopen(argv[1], "w+"), *j = fopen(argv[2], "w");
      if (t == NULL || j == NULL) return 2;
      setvbuf(t, NULL, _IONBF, 0); /* no buffer allocated between them */
      setvbuf(j, NULL, _IONBF, 0);
      stats_print(t, 0);
      stats_print(j, 1);
      long n1 = ftell(t);
      stats_print(t, 0);
      long n2 = ftell(t) - n1;
      rewind(t);
      size_t r1 = n1 > 0 && n1 < (long)sizeof before ? fread(before, 1, (size_t)n1, t) : 0;
      size_t r2 = n2 > 0 && n2 < (long)sizeof after ? fread(after, 1, (size_t)n2, t) : 0;
      fclose(j);
      if (r1 == (size_t)n1 && r2 == (size_t)n2 && n1 == n2 && memcmp(before, after, r1) == 0) {
        if (ftruncate(fileno(t), n1) != 0) return 2;
        fclose(t);
        return 0;
      }
      fclose(t);
      usleep(10000);
    }
    fprintf(stderr, "stats: the state kept changing while printing (20 tries)\n");
    return 1;
  }
  stats_get(&s0);
  size_t mapped_start = s0.mapped_bytes, resident_start = s0.resident_bytes, rss_start = s0.process_rss_bytes;
  free(malloc(1)); /* what the process keeps from its first call is not the test's */
  stats_get(&s0);
  size_t first_call_bytes = s0.in_use_bytes;
  tier("small", 100, 1000, 112, SMALL);
  tier("small, 5000 bytes", 5000, 300, 5120, SMALL);
  tier("medium", 100000, 20, 102400, MEDIUM);
  tier("large", 3u << 20, 4, 3u << 20, LARGE);
  stats_get(&s1);
  CHECK(s1.total.medium_allocs >= 20 && s1.total.large_allocs >= 4 && s1.total.refills > 0,
        "cumulative counts: %llu medium, %llu large allocations, %llu refills", s1.total.medium_allocs,
        s1.total.large_allocs, s1.total.refills);
  size_t live = reset();
  stats_get(&s1);
  CHECK(live == s1.in_use_bytes && live == first_call_bytes,
        "hak_reset returns the bytes still in use (%zu; stats %zu; after the first call %zu)", live, s1.in_use_bytes,
        first_call_bytes);
  CHECK(s1.magazine_bytes == 0 && s1.pool_bytes == 0 && s1.large_cache_bytes == 0 && s1.superslab_dirty_bytes == 0 &&
            s1.medium_dirty_bytes == 0 && s1.large_dirty_bytes == 0,
        "after hak_reset nothing free stays committed (magazines %zu, pool %zu, large cache %zu)", s1.magazine_bytes,
        s1.pool_bytes, s1.large_cache_bytes);
  CHECK(s1.total.refills == 0 && s1.total.large_allocs == 0 && s1.total.medium_allocs == 0,
        "hak_reset zeroes the cumulative counters");
  check_sums("after reset", &s1);
  CHECK(s1.resident_bytes <= (256u << 10), "after hak_reset at most 256 KiB of hakmem's memory is resident (%zu KiB)",
        s1.resident_bytes / 1024);
  printf("stats: before the first block %zu KiB mapped, %zu KiB resident (process RSS %zu KiB); after hak_reset "
         "%zu KiB mapped (%zu KiB of page-map leaves and metadata), %zu KiB resident (process RSS %zu KiB), %zu "
         "bytes still in use, as after the process's first call (%zu): not the test's\n",
         mapped_start / 1024, resident_start / 1024, rss_start / 1024, s1.mapped_bytes / 1024,
         s1.metadata_bytes / 1024, s1.resident_bytes / 1024, s1.process_rss_bytes / 1024, live, first_call_bytes);
  reset_other_thread();
  transfer_only_from_non_allocating();
  consumer_magazine_grows();
  reset_drains_other_thread(0, 0);
  reset_drains_other_thread(0, 1);
  reset_drains_other_thread(1, 0);
  return check_report("stats");
}
