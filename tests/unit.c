/* unit.c — unit tests of the core's parts, linked with the core's sources
 * (prefixed API only): size classes, slab bookkeeping and its validator, the
 * remote-free stack under concurrent producers, medium runs and their
 * validator, large mappings, the page map. */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "hakmem.h"
#include "internal.h"
#include "remote_free.h"

static void test_size_classes(void) {
  CHECK(hak_size_class(0) == 0, "malloc(0) has its own class");
  unsigned prev = 0;
  for (size_t n = 1; n <= HAK_SMALL_MAX; n++) {
    unsigned c = hak_size_class(n);
    if (c != HAK_CLASS_OF(n) || c >= HAK_CLASS_COUNT || hak_class_size[c] < n ||
        (c > 1 && hak_class_size[c - 1] >= n) || c < prev) {
      CHECK(0, "size %zu maps to class %u (size %u)", n, c, c < HAK_CLASS_COUNT ? hak_class_size[c] : 0);
      return;
    }
    if (n <= 1024) CHECK(hak_class_size[c] - n < 16, "size %zu: class %u wastes >= 16 bytes", n, c);
    else CHECK((hak_class_size[c] - n) * 4 < n, "size %zu: class %u wastes 25%% or more", n, c);
    prev = c;
  }
  CHECK(hak_size_class(HAK_SMALL_MAX) == HAK_CLASS_COUNT - 1, "last class");
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    CHECK(hak_class_mag_cap[c] >= 8 && hak_class_mag_cap[c] <= 256, "class %u magazine capacity", c);
    CHECK(hak_class_units[c] * HAK_UNIT_SIZE / hak_class_size[c] >= 7, "class %u slab holds 7 blocks", c);
  }
}

static void test_slab(void) {
  unsigned cls = hak_size_class(48);
  hak_slab_t *s = hak_slab_new(cls, NULL);
  CHECK(s != NULL, "new slab");
  if (s == NULL) return;
  CHECK(hak_slab_validate(s) == NULL, "fresh slab: %s", hak_slab_validate(s));
  CHECK(hak_pagemap_lookup(s->base + 100) == &s->span, "page map finds the slab from an interior pointer");
  void *blocks[600];
  unsigned got = hak_slab_take(s, blocks, 600);
  CHECK(got == 600 && s->used == 600 && s->bump == (config_slab_bitmap ? s->capacity : 600),
        "take 600 fresh blocks: got %u used %u", got, s->used);
  CHECK(hak_slab_validate(s) == NULL, "after take: %s", hak_slab_validate(s));
  for (unsigned i = 0; i < got; i++)
    CHECK((char *)blocks[i] == s->base + (size_t)i * 48, "block %u is at base + i*size", i);
  for (unsigned i = 0; i < 300; i++) hak_slab_put(s, blocks[i], "test");
  CHECK(s->used == 300 && hak_slab_validate(s) == NULL, "after 300 puts: used %u, %s", s->used,
        hak_slab_validate(s));
  /* Remote frees: pushed on xfree, still counted in used until collected (I1). */
  for (unsigned i = 300; i < 400; i++) hak_xfree_push(&s->xfree, blocks[i]);
  CHECK(s->used == 300 && hak_slab_validate(s) == NULL, "remote frees pending: %s", hak_slab_validate(s));
  CHECK(hak_slab_collect(s) == 100 && s->used == 200, "collect takes the 100 remote frees");
  CHECK(hak_slab_validate(s) == NULL, "after collect: %s", hak_slab_validate(s));
  /* Lists give back the newest free block first (the collected remote frees);
   * bitmaps give the lowest-addressed free block (block 0, put back above). */
  void *again[10];
  CHECK(hak_slab_take(s, again, 10) == 10 && again[0] == blocks[config_slab_bitmap ? 0 : 399],
        "the free block expected first comes first");
  CHECK(hak_slab_validate(s) == NULL, "after the second take: %s", hak_slab_validate(s));
  if (config_slab_bitmap) {
    s->bits[63] |= 1ull << 63; /* block 4095 does not exist in a 48-byte slab */
    CHECK(hak_slab_validate(s) != NULL, "validator catches a bitmap bit past the capacity");
    s->bits[63] = 0;
  }
  /* The validator must catch broken bookkeeping. */
  s->used += 1;
  CHECK(hak_slab_validate(s) != NULL, "validator catches a wrong used count");
  s->used -= 1;
  hak_block_t *saved = s->free;
  char *stray = (char *)again[5] + 8; /* inside a block that is in use, not at a block boundary */
  s->free = (hak_block_t *)stray;
  ((hak_block_t *)stray)->next = NULL;
  CHECK(hak_slab_validate(s) != NULL, "validator catches a misaligned free block");
  s->free = saved;
  CHECK(hak_slab_validate(s) == NULL, "restored: %s", hak_slab_validate(s));
  /* Return everything, release to the pool, reuse it for another class. */
  for (unsigned i = 0; i < 10; i++) hak_slab_put(s, again[i], "test");
  for (unsigned i = 400; i < 600; i++) hak_slab_put(s, blocks[i], "test");
  CHECK(s->used == 0 && hak_slab_validate(s) == NULL, "all back: used %u", s->used);
  size_t pooled = hak_pool_count();
  hak_slab_release(s);
  CHECK(hak_pool_count() == pooled + 1, "empty slab goes to the pool");
  hak_slab_t *t = hak_slab_new(hak_size_class(1000), NULL);
  CHECK(t == s && t->block_size == 1008 && hak_slab_validate(t) == NULL, "pooled slab reused by another class");
  hak_slab_release(t);
  hak_pool_trim(0);
  CHECK(hak_pool_count() == 0, "pool trimmed to zero");
}

/* Remote-free stack: producers push concurrently, one consumer takes all. */
#define RF_PRODUCERS 4
#define RF_BLOCKS 20000
static _Atomic(hak_block_t *) rf_head;
static _Atomic int rf_finished;
static hak_block_t rf_blocks[RF_PRODUCERS][RF_BLOCKS];

static void *rf_producer(void *arg) {
  hak_block_t *mine = arg;
  for (int i = 0; i < RF_BLOCKS; i++) hak_xfree_push(&rf_head, &mine[i]);
  atomic_fetch_add(&rf_finished, 1);
  return NULL;
}

static void test_remote_free_stack(void) {
  static unsigned char seen[RF_PRODUCERS][RF_BLOCKS];
  pthread_t t[RF_PRODUCERS];
  for (int i = 0; i < RF_PRODUCERS; i++) pthread_create(&t[i], NULL, rf_producer, rf_blocks[i]);
  size_t taken = 0, dup = 0, bad = 0;
  for (;;) {
    int finished = atomic_load(&rf_finished) == RF_PRODUCERS; /* read before taking */
    for (hak_block_t *b = hak_xfree_take_all(&rf_head); b != NULL; b = b->next) {
      size_t k = (size_t)(b - &rf_blocks[0][0]);
      if (k >= RF_PRODUCERS * RF_BLOCKS) { bad++; break; }
      if (seen[k / RF_BLOCKS][k % RF_BLOCKS]++) dup++;
      taken++;
    }
    if (finished) break;
  }
  for (int i = 0; i < RF_PRODUCERS; i++) pthread_join(t[i], NULL);
  size_t expect = RF_BLOCKS;
  CHECK(bad == 0 && dup == 0, "remote stack: %zu foreign, %zu duplicate blocks", bad, dup);
  CHECK(taken == (size_t)RF_PRODUCERS * expect, "remote stack: took %zu of %zu pushed", taken,
        (size_t)RF_PRODUCERS * expect);
}

static void test_medium(void) {
  uint64_t seed = 42;
  void *p[200] = {0};
  size_t sz[200] = {0};
  for (int round = 0; round < 4000; round++) {
    int i = (int)(test_rand(&seed) % 200);
    if (p[i] != NULL) {
      CHECK(((unsigned char *)p[i])[sz[i] - 1] == (unsigned char)i, "medium block %d intact", i);
      hak_free(p[i]);
      p[i] = NULL;
    } else {
      sz[i] = HAK_SMALL_MAX + 1 + test_rand(&seed) % (HAK_MEDIUM_MAX - HAK_SMALL_MAX);
      p[i] = hak_malloc(sz[i]);
      CHECK(p[i] != NULL && hak_pagemap_lookup(p[i])->kind == HAK_SPAN_MEDIUM, "medium alloc");
      CHECK(hak_malloc_usable_size(p[i]) >= sz[i], "medium usable size");
      memset(p[i], i, sz[i]);
    }
    if (round % 500 == 0) CHECK(hak_medium_validate() == NULL, "medium runs: %s", hak_medium_validate());
  }
  for (int i = 0; i < 200; i++) hak_free(p[i]);
  CHECK(hak_medium_validate() == NULL, "medium runs after freeing all: %s", hak_medium_validate());
  hak_medium_purge();
  CHECK(hak_medium_chunk_count() == 0, "purge unmaps empty chunks: %zu left", hak_medium_chunk_count());
}

static void test_large(void) {
  size_t live0, cached0;
  hak_large_counts(&live0, &cached0);
  char *p = hak_malloc(3u << 20);
  CHECK(p != NULL && hak_pagemap_lookup(p)->kind == HAK_SPAN_LARGE, "large alloc");
  CHECK(hak_pagemap_lookup(p + 100) == hak_pagemap_lookup(p) && hak_pagemap_lookup(p + (1u << 20)) == NULL &&
            hak_pagemap_lookup(p + (3u << 20) - 1) == NULL,
        "the page map holds a large block by its first unit only");
  memset(p, 7, 3u << 20);
  char *q = hak_realloc(p, 12u << 20);
  CHECK(q != NULL && q[0] == 7 && q[(3u << 20) - 1] == 7, "large realloc keeps contents");
  CHECK(hak_malloc_usable_size(q) >= (12u << 20), "usable after growth");
  q = hak_realloc(q, 1u << 20);
  CHECK(q != NULL && q[0] == 7, "large shrink keeps contents");
  hak_free(q);
  size_t live, cached;
  hak_large_counts(&live, &cached);
  CHECK(live == live0, "live large count back to %zu (is %zu)", live0, live);
  hak_large_cache_clear();
  hak_large_counts(&live, &cached);
  CHECK(cached == 0, "cache cleared");
  CHECK(hak_pagemap_lookup(q) == NULL, "unmapped large block leaves the page map");
}

/* The large cache: a freed block is reused without faults; a longer cached
 * range is split (its tail stays cached); when nothing fits, cached ranges
 * are moved into a fresh range (their contents kept, no copy) and, freed
 * again, go back as separate movable ranges; every step keeps the validator
 * quiet. */
static void test_large_cache(void) {
  hak_large_cache_clear();
  size_t live, cached, mib = (size_t)1 << 20;
  char *a = hak_malloc(8 * mib), *b = hak_malloc(4 * mib);
  CHECK(a != NULL && b != NULL, "two large blocks");
  if (a == NULL || b == NULL) return;
  memset(a, 0xaa, 8 * mib);
  memset(b, 0xbb, 4 * mib);
  hak_free(a);
  hak_free(b);
  hak_large_counts(&live, &cached);
  CHECK(cached == 12 * mib, "both freed blocks are cached (%zu bytes)", cached);
  CHECK(hak_large_validate() == NULL, "cache after two frees: %s", hak_large_validate());
  char *c = hak_malloc(3 * mib); /* fits in b's range: the same address */
  CHECK(c == b && c[0] == (char)0xbb, "a cached range serves a smaller request in place");
  hak_large_counts(&live, &cached);
  CHECK(cached == 9 * mib, "its tail stays cached (%zu bytes)", cached);
  hak_free(c);
  size_t moves = atomic_load(&hak_os_counters.move_calls);
  char *d = hak_malloc(14 * mib); /* nothing fits: pieces move into a fresh range */
  hak_large_counts(&live, &cached);
  CHECK(d != NULL && atomic_load(&hak_os_counters.move_calls) > moves, "cached ranges were moved (%zu moves)",
        atomic_load(&hak_os_counters.move_calls) - moves);
  CHECK(cached == 0 && d[0] == (char)0xaa && d[8 * mib - 1] == (char)0xaa && d[8 * mib] == (char)0xbb,
        "the moved pages keep their contents, largest first (%zu bytes still cached)", cached);
  CHECK(hak_large_validate() == NULL, "after moving: %s", hak_large_validate());
  memset(d, 1, 14 * mib);
  hak_free(d);
  hak_large_counts(&live, &cached);
  CHECK(cached == 14 * mib && hak_large_validate() == NULL, "the assembled block is cached again in pieces: %s",
        hak_large_validate());
  char *e = hak_calloc(1, 10 * mib);
  size_t nonzero = 0;
  for (size_t i = 0; e != NULL && i < 10 * mib; i += 4096) nonzero += e[i] != 0;
  CHECK(e != NULL && nonzero == 0, "calloc from reused pages is zero (%zu pages not)", nonzero);
  char *f = hak_realloc(e, 40 * mib); /* grows: in place or by moving the pages */
  CHECK(f != NULL && f[0] == 0 && f[10 * mib - 1] == 0, "large realloc keeps the contents");
  hak_free(f);
  hak_large_cache_clear();
  hak_large_counts(&live, &cached);
  CHECK(cached == 0 && hak_large_validate() == NULL, "cache cleared");
}

/* Runs put_run(s, blocks, n) in a child; true when the child stopped with
 * abort() after writing a message that contains `what`. */
static bool put_run_dies(hak_slab_t *s, void *const *blocks, unsigned n, const char *what) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    hak_slab_put_run(s, blocks, n, "free()");
    _exit(0);
  }
  close(fds[1]);
  char msg[256] = "";
  ssize_t got = read(fds[0], msg, sizeof msg - 1);
  msg[got > 0 ? got : 0] = 0;
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(msg, what) != NULL;
}

/* hak_slab_put_run, the flush's way back into a slab: a run of blocks in any
 * order (bitmap slabs gather each word's bits and store them once), with
 * every block's checks: a block already free, or twice in one run, is a
 * double free in a bitmap slab; a pointer inside a block is invalid. */
static void test_put_run(void) {
  unsigned cls = hak_size_class(48);
  hak_slab_t *s = hak_slab_new(cls, NULL);
  CHECK(s != NULL, "new slab");
  if (s == NULL) return;
  void *b[400];
  unsigned got = hak_slab_take(s, b, 400);
  CHECK(got == 400, "take 400");
  void *run[200];
  for (unsigned k = 0; k < 200; k++) run[k] = b[(k * 37) % 400]; /* scattered over the words, 200 distinct */
  hak_slab_put_run(s, run, 200, "free()");
  CHECK(s->used == 200 && hak_slab_validate(s) == NULL, "put_run of 200 scattered blocks: used %u, %s", s->used,
        hak_slab_validate(s));
  unsigned freed = 0;
  for (unsigned i = 0; i < 400; i++) freed += hak_slab_block_free(s, b[i]);
  CHECK(!config_slab_bitmap || freed == 200, "exactly the 200 blocks are free in the bitmap (%u)", freed);
  void *live = NULL;
  for (unsigned i = 0; i < 400 && live == NULL; i++) {
    bool in_run = false;
    for (unsigned k = 0; k < 200; k++) in_run |= run[k] == b[i];
    if (!in_run) live = b[i];
  }
  void *interior[] = {live, (char *)live + 16};
  CHECK(put_run_dies(s, interior, 2, "invalid pointer"), "a pointer inside a block stops put_run");
  if (config_slab_bitmap) {
    void *again[] = {live, run[7]};
    CHECK(put_run_dies(s, again, 2, "double free"), "a block already free stops put_run");
    void *twice[] = {live, (char *)live + 48, live};
    CHECK(put_run_dies(s, twice, 3, "double free"), "a block twice in one run stops put_run");
  }
  void *rest[200];
  unsigned n = 0;
  for (unsigned i = 0; i < 400; i++)
    if (!hak_slab_block_free(s, b[i]) || !config_slab_bitmap) {
      bool in_run = false;
      for (unsigned k = 0; k < 200; k++) in_run |= run[k] == b[i];
      if (!in_run) rest[n++] = b[i];
    }
  hak_slab_put_run(s, rest, n, "free()");
  CHECK(s->used == 0 && hak_slab_validate(s) == NULL, "the rest back: used %u, %s", s->used, hak_slab_validate(s));
  hak_slab_release(s);
}

/* The units hakmem mapped (os.c, for the leak checker): a mapping of three
 * whole 64 GiB leaf ranges is noted as such (no leaf), a partial unmap in the
 * middle one splits it into bits, and unmapping the rest forgets them all. */
static void test_os_owns(void) {
  const size_t leaf = (size_t)64 << 30, unit = (size_t)1 << 16;
  hak_os_track_own();
  char *p = hak_os_map_aligned(3 * leaf, leaf); /* MAP_NORESERVE, never touched */
  CHECK(p != NULL, "a 192 GiB reservation");
  if (p == NULL) return;
  CHECK(hak_os_owns(p) && hak_os_owns(p + leaf + 12345) && hak_os_owns(p + 3 * leaf - 1),
        "every unit of a 192 GiB mapping is hakmem's");
  hak_os_unmap(p + leaf + unit, leaf - 2 * unit); /* the middle range but its first and last unit */
  CHECK(hak_os_owns(p + leaf) && !hak_os_owns(p + leaf + unit) && !hak_os_owns(p + leaf + leaf / 2) &&
            !hak_os_owns(p + 2 * leaf - unit - 1) && hak_os_owns(p + 2 * leaf - unit) && hak_os_owns(p + 2 * leaf) &&
            hak_os_owns(p + leaf - 1),
        "a partial unmap forgets exactly its units");
  hak_os_unmap(p, leaf + unit);
  hak_os_unmap(p + 2 * leaf - unit, leaf + unit);
  CHECK(!hak_os_owns(p) && !hak_os_owns(p + leaf) && !hak_os_owns(p + 2 * leaf - unit) &&
            !hak_os_owns(p + 2 * leaf + 777) && !hak_os_owns(p + 3 * leaf - 1),
        "unmapped, none of it is hakmem's");
}

/* realloc growing a small block in small steps: the block it moves to (a
 * pop from the thread's magazine of the new class) holds the size asked,
 * the next step that fits stays in place, and the contents follow. */
static void test_realloc_growth(void) {
  unsigned char *p = hak_malloc(600);
  CHECK(p != NULL, "malloc(600)");
  if (p == NULL) return;
  size_t old = hak_malloc_usable_size(p);
  memset(p, 0x5a, 600);
  unsigned char *q = hak_realloc(p, old + 64);
  size_t got = hak_malloc_usable_size(q);
  CHECK(q != NULL && got >= old + 64, "realloc(%zu -> %zu): %zu usable bytes", old, old + 64, got);
  bool kept = true;
  for (size_t i = 0; i < 600; i++) kept &= q[i] == 0x5a;
  CHECK(kept, "the moved block keeps its contents");
  unsigned char *r = hak_realloc(q, old + 128);
  CHECK(r != NULL && (r == q) == (old + 128 <= got), "realloc to %zu: in place exactly when the block holds it (%zu)",
        old + 128, got);
  hak_free(r);
  p = hak_malloc(30000);
  q = hak_realloc(p, 31000);
  got = hak_malloc_usable_size(q);
  CHECK(q != NULL && got >= 31000 && got <= HAK_SMALL_MAX, "realloc(30000 -> 31000) stays small: %zu usable bytes", got);
  hak_free(q);
}

int main(void) {
  test_os_owns();
  test_size_classes();
  test_slab();
  test_put_run();
  test_remote_free_stack();
  test_medium();
  test_large();
  test_realloc_growth();
  if (!config_large_arena) test_large_cache(); /* arena variants: tests/arena.c */
  int x;
  CHECK(hak_pagemap_lookup(&x) == NULL && hak_pagemap_lookup(main) == NULL, "foreign pointers are not ours");
  return check_report("unit");
}
