/* large.c — large blocks (above HAK_MEDIUM_MAX, or aligned beyond
 * HAK_MEDIUM_MAX_ALIGN). In variants with an arena (config_large_arena), a
 * block below HAK_ARENA_MAX_BLOCK is a run of a reserved arena, reused in
 * place (arena.c); this file keeps it on the live list and counts it. The
 * rest of this comment is about blocks with a mapping of their own (every
 * large block in variants without an arena): ranges of whole units, each with its descriptor in
 * the page map, so a block is found from its pointer like any span. The page
 * map holds a range by its first unit only (pm_enter): registering a block
 * costs the same at 1 MiB and at 1 TiB, and a pointer further into a block
 * finds no span, so free, realloc and malloc_usable_size stop it as an
 * invalid pointer as before. A range's memory is charged to the system's
 * commit count (hak_os_map_accounted): a request the system cannot back is
 * refused by the kernel's overcommit policy at once, as under glibc.
 *
 * A freed block is not unmapped: it goes, still committed, into the large
 * cache, from which later large requests are served without page faults:
 *   - the smallest cached range that fits (aligned as asked) is taken; when
 *     it is longer than asked, its tail stays cached as a range of its own
 *     (no system call);
 *   - when no range fits, cached ranges, largest first, are moved into a
 *     fresh mapping of the size asked for (mremap: their pages move, no copy,
 *     no fault; the last one grows over the rest of it), so only the rest
 *     faults in. Only for a request within the fixed bound of the cache
 *     (config_large_cache_max): a larger one is a fresh mapping alone, which
 *     reads as zero, so that calloc does not write a block of many GiB (nor
 *     the program fault in pages it never uses).
 * mremap moves only a range within one kernel mapping. A block assembled
 * from k moved ranges spans k mappings; its descriptor records where they
 * meet (cut[]), and when it is freed it goes back to the cache as k ranges,
 * each within one mapping and movable again. A range whose cuts could not be
 * split off (no descriptor) is reused in place but never moved.
 * This is glibc's dynamic mmap threshold and tcmalloc's page heap in spirit:
 * a program that frees and allocates large blocks in a loop stops faulting.
 * The cache is bounded (at most config_large_cache_entries ranges and
 * config_large_cache_max bytes; in dynamic-flush variants that plus as many
 * bytes as are live in large blocks); past the bound the oldest
 * ranges are unmapped, after every call that changes the bound (a free
 * lowers it by the freed block's bytes). In dynamic-flush variants the
 * scavenger also unmaps
 * ranges not reused for LARGE_DECAY_TICKS (hak_large_decay) and everything
 * once the process is idle, so the memory still goes back.
 * realloc grows a block in place when the addresses after it are free, else
 * moves its pages into a new range (no copy); shrinking caches the tail.
 *
 * With huge pages on (os.c), a fresh range of 2 MiB or more is 2 MiB-aligned
 * and advised as huge pages.
 *
 * One lock, hak_large_lock, protects the cache and the counts; system calls
 * happen outside it, on ranges taken out of the cache first (but for a
 * descriptor or a page-map leaf mapped while a range is cut: meta.c's lock
 * comes after this one, pagemap.c takes none). The page-map entry of a range is
 * cleared before its addresses are given up (I5). */
#include <string.h>

#include "internal.h"
#include "list.h"

/* Dynamic flush: a cached range not reused for this many scavenger ticks
 * (one second) goes back to the OS while the program is busy. */
#define LARGE_DECAY_TICKS HAK_TICKS_PER_SECOND

pthread_mutex_t hak_large_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_large_t *cache_head;   /* newest first */
static hak_large_t *cache_tail;   /* oldest */
static size_t cache_entries, cache_bytes, live_count, live_bytes;
static hak_large_t *live_head;      /* live blocks, for statistics */
static uint64_t allocs, frees, alloc_bytes; /* cumulative */

/* A block becomes live, or stops being live (lock held). */
static void live_add(hak_large_t *l) {
  hak_list_push(&live_head, l);
  live_count++;
  live_bytes += l->map_bytes;
  allocs++;
  alloc_bytes += l->map_bytes;
}
static void live_remove(hak_large_t *l) {
  hak_list_remove(&live_head, l);
  live_count--;
  live_bytes -= l->map_bytes;
  frees++;
}
static _Atomic uint64_t activity; /* written under the lock, read without it */

static void count_activity(void) {
  atomic_store_explicit(&activity, atomic_load_explicit(&activity, memory_order_relaxed) + 1,
                        memory_order_relaxed);
}

uint64_t hak_large_activity(void) { return atomic_load_explicit(&activity, memory_order_relaxed); }

/* ---- the page map: a range by its first unit ------------------------------------ */
static bool pm_reserve(const char *base) { return hak_pagemap_reserve(base, HAK_UNIT_SIZE); }
static void pm_enter(char *base, hak_large_t *l) { hak_pagemap_set(base, HAK_UNIT_SIZE, &l->span, 0); }
static void pm_leave(char *base) { hak_pagemap_set(base, HAK_UNIT_SIZE, NULL, 0); }

/* ---- the cache (lock held) ---------------------------------------------------- */
static void cache_push(hak_large_t *l) {
  l->cached = 1;
  l->freed_tick = atomic_load_explicit(&hak_clock_tick, memory_order_relaxed);
  hak_list_push(&cache_head, l);
  if (cache_tail == NULL) cache_tail = l;
  cache_entries++;
  cache_bytes += l->map_bytes;
}

static void cache_remove(hak_large_t *l) {
  if (cache_tail == l) cache_tail = l->prev;
  hak_list_remove(&cache_head, l);
  cache_entries--;
  cache_bytes -= l->map_bytes;
}

/* The cache's byte bound. With dynamic flush the cache may hold as much more
 * as the program holds in large blocks, over the fixed bound (a program that
 * frees and allocates large blocks in a loop then reuses nearly all of its
 * pages), since what it does not reuse within a second goes back anyway.
 * Measured on large_reuse (hybrid, 1-32 MiB blocks, 8 live; 3 runs, time
 * interleaved medians of 7): a bound of 64 MiB took 0.37 ms per operation and
 * 264 K page faults; half of it plus the live bytes 0.196 ms, 97 K faults,
 * 2453 mremap moves, peak RSS 209 MiB; the whole of it plus the live bytes
 * 0.165 ms (tcmalloc 0.153), 74 K faults (tcmalloc 103 K), 2655 moves, 229
 * MiB (jemalloc 222, tcmalloc 311): the whole, nearest the fastest reference
 * while busy and within 1.05x of the leanest one's peak. Lock held. */
static size_t cache_bound(void) {
  return config_dynamic_flush ? config_large_cache_max + live_bytes : config_large_cache_max;
}

/* The arenas' bound on dirty free bytes (arena.c; lock held): half as much
 * again as the cache's, since a run is reused only by a block that fits in
 * it, so a heap of random sizes holds free runs too small for the next
 * request. Measured on large_reuse (1-32 MiB, 8 live, 400 steps, seed 1):
 * with the cache's bound, 129,719 page faults (the pages decommitted at the
 * bound fault in again) and 272 MB peak RSS; with 1.5 times it, 64,109 and
 * 258 MB; twice it, 64,109 and 257 MB (large_churn: 112,545 faults in all
 * three). */
static size_t arena_bound(void) { return cache_bound() + cache_bound() / 2; }

/* Takes the oldest ranges out until the cache is within keep_bytes and
 * keep_entries; returns them linked by next, for release_list. */
static hak_large_t *cache_cut(size_t keep_bytes, size_t keep_entries) {
  hak_large_t *out = NULL;
  while (cache_tail != NULL && (cache_bytes > keep_bytes || cache_entries > keep_entries)) {
    hak_large_t *l = cache_tail;
    cache_remove(l);
    l->next = out;
    out = l;
  }
  return out;
}

/* The ranges to unmap so that the cache is within its bounds: called after
 * every change of the cache or of the bound. */
static hak_large_t *cache_fit(void) { return cache_cut(cache_bound(), config_large_cache_entries); }

/* The smallest cached range of at least need bytes whose start is aligned
 * to align, taken out of the cache; NULL if none. */
static hak_large_t *cache_take_fit(size_t need, size_t align) {
  hak_large_t *best = NULL;
  for (hak_large_t *l = cache_head; l != NULL; l = l->next)
    if (l->map_bytes >= need && ((uintptr_t)l->base & (align - 1)) == 0 &&
        (best == NULL || l->map_bytes < best->map_bytes))
      best = l;
  if (best != NULL) cache_remove(best);
  return best;
}

/* Cuts range l after its first need bytes; the tail becomes a range of its
 * own (returned, not yet cached), taking the cuts past need. NULL (l stays
 * whole) when no descriptor or page-map leaf can be had. */
static hak_large_t *cut_tail(hak_large_t *l, size_t need) {
  if (!pm_reserve(l->base + need)) return NULL;
  hak_large_t *t = hak_meta_alloc(sizeof(hak_large_t));
  if (t == NULL) return NULL;
  uint32_t at = (uint32_t)(need / HAK_UNIT_SIZE);
  t->span.kind = HAK_SPAN_LARGE;
  t->base = l->base + need;
  t->map_bytes = l->map_bytes - need;
  t->ncuts = 0;
  uint8_t keep = 0;
  for (uint8_t i = 0; i < l->ncuts; i++) {
    if (l->cut[i] < at) l->cut[keep++] = l->cut[i];
    else if (l->cut[i] > at) t->cut[t->ncuts++] = l->cut[i] - at;
  }
  l->ncuts = keep;
  l->map_bytes = need;
  pm_enter(t->base, t);
  return t;
}

/* The tail of l past need bytes goes to the cache (when it can be cut off). */
static void split_tail(hak_large_t *l, size_t need) {
  if (l->map_bytes == need) return;
  hak_large_t *t = cut_tail(l, need);
  if (t != NULL) cache_push(t);
}

/* Caches range l, split at its cuts into ranges each within one kernel
 * mapping (as far as descriptors can be had). */
static void cache_push_pieces(hak_large_t *l) {
  while (l->ncuts > 0) {
    hak_large_t *t = cut_tail(l, (size_t)l->cut[l->ncuts - 1] * HAK_UNIT_SIZE);
    if (t == NULL) break;
    cache_push(t);
  }
  cache_push(l);
}

/* ---- releasing (no lock) ---------------------------------------------------- */
static void release(hak_large_t *l) {
  pm_leave(l->base);
  hak_os_unmap(l->base, l->map_bytes);
  hak_meta_free(l, sizeof(hak_large_t));
}

static void release_list(hak_large_t *l) {
  while (l != NULL) {
    hak_large_t *next = l->next;
    release(l);
    l = next;
  }
}

/* ---- allocation ------------------------------------------------------------- */
/* A fresh range of need bytes aligned to align, live, with its descriptor and
 * page-map entries; the pages of the cached ranges piece[0..n) (each within
 * one kernel mapping, together shorter than need) are moved into it in turn,
 * the last one grown over the rest. NULL when out of memory (the pieces are
 * then back in the cache). */
static hak_large_t *fresh_range(size_t need, size_t align, hak_large_t **piece, int n, bool *zeroed) {
  char *base = hak_os_map_accounted(need, hak_os_huge_align(need, align));
  hak_large_t *l = NULL;
  if (base != NULL) hak_os_advise_huge(base, need);
  if (base != NULL) {
    l = pm_reserve(base) ? hak_meta_alloc(sizeof(hak_large_t)) : NULL;
    if (l == NULL) hak_os_unmap(base, need);
  }
  if (l == NULL) { /* the pieces go back; meanwhile a free may have lowered the bound */
    pthread_mutex_lock(&hak_large_lock);
    for (int i = 0; i < n; i++) cache_push(piece[i]);
    hak_large_t *evict = cache_fit();
    pthread_mutex_unlock(&hak_large_lock);
    release_list(evict);
    return NULL;
  }
  l->span.kind = HAK_SPAN_LARGE;
  l->cached = 0;
  l->ncuts = 0;
  l->base = base;
  l->map_bytes = need;
  size_t off = 0; /* where the next piece goes; the mappings met so far end here */
  for (int i = 0; i < n; i++) {
    hak_large_t *p = piece[i];
    size_t room = i == n - 1 ? need - off : p->map_bytes; /* the last one grows to the end */
    pm_leave(p->base); /* before its addresses are given up */
    if (hak_os_move(p->base, p->map_bytes, base + off, room)) {
      if (off > 0) l->cut[l->ncuts++] = (uint32_t)(off / HAK_UNIT_SIZE);
      off += room;
    } else { /* the kernel refused: that part stays fresh */
      hak_os_unmap(p->base, p->map_bytes);
    }
    hak_meta_free(p, sizeof(hak_large_t));
  }
  /* When the last move failed, the fresh rest is a mapping of its own. */
  if (off > 0 && off < need) l->cut[l->ncuts++] = (uint32_t)(off / HAK_UNIT_SIZE);
  pm_enter(base, l);
  *zeroed = n == 0;
  return l;
}

void *hak_large_alloc(size_t size, size_t align, bool *zeroed) {
  if (size > HAK_MAX_REQUEST) return NULL;
  if (align < HAK_UNIT_SIZE) align = HAK_UNIT_SIZE;
  size_t need = hak_align_up(size ? size : 1, HAK_UNIT_SIZE);
  pthread_mutex_lock(&hak_large_lock);
  count_activity();
  hak_large_t *l = config_large_arena ? hak_arena_take(need, hak_os_huge_align(need, align), zeroed) : NULL;
  if (l != NULL) {
    live_add(l);
    hak_arena_bound(arena_bound());
    pthread_mutex_unlock(&hak_large_lock);
    return l->base;
  }
  l = cache_take_fit(need, align);
  if (l != NULL) {
    split_tail(l, need);
    l->cached = 0;
    live_add(l);
    hak_large_t *evict = cache_fit();
    pthread_mutex_unlock(&hak_large_lock);
    release_list(evict);
    *zeroed = false;
    return l->base;
  }
  /* Nothing fits: movable cached ranges, largest first, go into a fresh one
   * (when it is within the cache's fixed bound: above, it stays all fresh). */
  hak_large_t *piece[HAK_LARGE_CUTS];
  int n = 0;
  size_t got = 0;
  while (n < HAK_LARGE_CUTS && need <= config_large_cache_max) {
    hak_large_t *best = NULL;
    for (hak_large_t *c = cache_head; c != NULL; c = c->next)
      if (c->ncuts == 0 && c->map_bytes < need - got && (best == NULL || c->map_bytes > best->map_bytes))
        best = c;
    if (best == NULL) break;
    cache_remove(best);
    piece[n++] = best;
    got += best->map_bytes;
  }
  pthread_mutex_unlock(&hak_large_lock);
  l = fresh_range(need, align, piece, n, zeroed);
  if (l == NULL) return NULL;
  pthread_mutex_lock(&hak_large_lock);
  live_add(l);
  pthread_mutex_unlock(&hak_large_lock);
  return l->base;
}

static void check_live(hak_large_t *l, const void *p, const char *call) {
  if (p != l->base) hak_fatal(call, "invalid pointer", p);
  if (l->cached) hak_fatal(call, strcmp(call, "free()") == 0 ? "double free" : "freed block", p);
}

void hak_large_free(hak_large_t *l, void *p, const char *call) {
  pthread_mutex_lock(&hak_large_lock);
  count_activity();
  if (p != l->base || l->cached) {
    pthread_mutex_unlock(&hak_large_lock);
    check_live(l, p, call);
  }
  live_remove(l); /* with dynamic flush, the bound is now l->map_bytes lower */
  if (l->in_arena) {
    /* Within the bound as it was before this free: a program that frees a
     * block and then allocates one alike must find its pages still there. */
    size_t bound = arena_bound() + l->map_bytes;
    hak_arena_put(l);
    hak_arena_bound(bound);
    hak_large_t *evict = cache_fit();
    pthread_mutex_unlock(&hak_large_lock);
    release_list(evict);
    return;
  }
  bool keep = l->map_bytes <= cache_bound() && config_large_cache_entries > 0;
  if (keep) cache_push_pieces(l);
  hak_large_t *evict = cache_fit();
  if (!keep) {
    l->next = evict;
    evict = l;
  }
  pthread_mutex_unlock(&hak_large_lock);
  release_list(evict);
}

size_t hak_large_usable(hak_large_t *l, const void *p, const char *call) {
  check_live(l, p, call);
  return l->map_bytes;
}

/* Live block l is now need bytes long. */
static void grew(hak_large_t *l, size_t need) {
  pthread_mutex_lock(&hak_large_lock);
  live_bytes += need - l->map_bytes;
  l->map_bytes = need;
  pthread_mutex_unlock(&hak_large_lock);
}

/* realloc of an arena run: in place when it can (arena.c), else its pages
 * move into a new run (below HAK_ARENA_MAX_BLOCK). NULL: allocate and copy. */
static void *arena_realloc(hak_large_t *l, void *p, size_t need) {
  pthread_mutex_lock(&hak_large_lock);
  count_activity();
  size_t before = l->map_bytes;
  bool done = hak_arena_resize(l, need);
  live_bytes = live_bytes - before + l->map_bytes;
  hak_large_t *n = NULL;
  bool zeroed;
  if (!done && (n = hak_arena_take(need, HAK_UNIT_SIZE, &zeroed)) != NULL) {
    hak_list_remove(&live_head, l); /* l's descriptor may be merged away once freed */
    live_bytes -= l->map_bytes;
    if (hak_arena_move(l, n->base)) {
      p = n->base;
      l = n;
      done = true;
    } else {
      hak_arena_put(n);
    }
    hak_list_push(&live_head, l);
    live_bytes += l->map_bytes;
  }
  if (done) hak_arena_bound(arena_bound());
  pthread_mutex_unlock(&hak_large_lock);
  return done ? p : NULL;
}

/* realloc of a large block to size > HAK_MEDIUM_MAX: in place when it can
 * (shrinking caches the tail; growing extends the mapping when the addresses
 * after it are free), else its pages move into a new range (no copy). Returns
 * the block's address, or NULL when the caller must allocate and copy. */
void *hak_large_realloc(hak_large_t *l, void *p, size_t size) {
  check_live(l, p, "realloc()");
  if (size > HAK_MAX_REQUEST) return NULL; /* rounding it up to units would wrap to 0 */
  size_t need = hak_align_up(size ? size : 1, HAK_UNIT_SIZE);
  if (l->in_arena) return arena_realloc(l, p, need);
  if (need <= l->map_bytes) {
    if (need <= l->map_bytes / 2) { /* give back at least half: the tail becomes cached */
      pthread_mutex_lock(&hak_large_lock);
      live_bytes -= l->map_bytes;
      split_tail(l, need);
      live_bytes += l->map_bytes;
      hak_large_t *evict = cache_fit();
      pthread_mutex_unlock(&hak_large_lock);
      release_list(evict);
    }
    return p;
  }
  if (l->ncuts > 0) return NULL; /* several kernel mappings: mremap cannot take it whole */
  if (hak_os_grow_in_place(l->base, l->map_bytes, need)) { /* the page map holds its first unit already */
    grew(l, need);
    return p;
  }
  /* Move it: a fresh range of the new size takes the block's pages at its start. */
  char *base = hak_os_map_accounted(need, hak_os_huge_align(need, HAK_UNIT_SIZE));
  if (base == NULL) return NULL;
  hak_os_advise_huge(base, need);
  if (!pm_reserve(base)) {
    hak_os_unmap(base, need);
    return NULL;
  }
  pm_leave(l->base);
  if (!hak_os_move(l->base, l->map_bytes, base, need)) { /* grows over the fresh range: one mapping */
    pm_enter(l->base, l);
    hak_os_unmap(base, need);
    return NULL;
  }
  l->base = base;
  pm_enter(base, l);
  grew(l, need);
  return base;
}

/* ---- giving memory back ------------------------------------------------------- */
void hak_large_cache_clear(void) {
  pthread_mutex_lock(&hak_large_lock);
  hak_arena_release();
  pthread_mutex_unlock(&hak_large_lock);
  hak_large_cache_trim(0);
}

/* Unmaps the oldest cached ranges until at most keep_bytes stay cached. */
void hak_large_cache_trim(size_t keep_bytes) {
  pthread_mutex_lock(&hak_large_lock);
  hak_large_t *evict = cache_cut(keep_bytes, config_large_cache_entries);
  pthread_mutex_unlock(&hak_large_lock);
  release_list(evict);
}

/* Dynamic flush, while busy: unmaps the ranges not reused for
 * LARGE_DECAY_TICKS. */
void hak_large_decay(void) {
  uint32_t now = atomic_load_explicit(&hak_clock_tick, memory_order_relaxed);
  hak_large_t *evict = NULL;
  pthread_mutex_lock(&hak_large_lock);
  hak_arena_decay();
  while (cache_tail != NULL && now - cache_tail->freed_tick >= LARGE_DECAY_TICKS) {
    hak_large_t *l = cache_tail;
    cache_remove(l);
    l->next = evict;
    evict = l;
  }
  pthread_mutex_unlock(&hak_large_lock);
  release_list(evict);
}

void hak_large_counts(size_t *live, size_t *cached_bytes) {
  pthread_mutex_lock(&hak_large_lock);
  *live = live_count;
  *cached_bytes = cache_bytes + hak_arena_free_bytes();
  pthread_mutex_unlock(&hak_large_lock);
}

/* Validator: the cache's list (links, newest first, oldest at the tail), every
 * range in it cached and in the page map by its first unit only, its counts
 * and bounds. */
const char *hak_large_validate(void) {
  const char *err = NULL;
  size_t n = 0, bytes = 0;
  pthread_mutex_lock(&hak_large_lock);
  hak_large_t *prev = NULL;
  for (hak_large_t *l = cache_head; l != NULL && err == NULL; prev = l, l = l->next) {
    if (++n > cache_entries) err = "the large cache holds more ranges than it counts";
    else if (l->prev != prev) err = "the large cache has a broken back link";
    else if (!l->cached) err = "a range in the large cache is not marked cached";
    else if (prev != NULL && (int32_t)(prev->freed_tick - l->freed_tick) < 0) err = "the large cache is not newest first";
    else if (hak_pagemap_lookup(l->base) != &l->span) err = "the page map does not point at a cached large range";
    else if (l->map_bytes > HAK_UNIT_SIZE && hak_pagemap_lookup(l->base + l->map_bytes - HAK_UNIT_SIZE) != NULL)
      err = "the page map holds a cached large range past its first unit";
    bytes += l->map_bytes;
  }
  if (err == NULL && prev != cache_tail) err = "the large cache's tail is not its last range";
  if (err == NULL && (n != cache_entries || bytes != cache_bytes)) err = "the large cache's counts do not match its list";
  if (err == NULL && (n > config_large_cache_entries || bytes > cache_bound()))
    err = "the large cache is over its bounds";
  if (err == NULL) err = hak_arena_validate();
  pthread_mutex_unlock(&hak_large_lock);
  return err;
}

/* Statistics: live blocks (in use), the cache, their residency, the
 * cumulative counts. */
void hak_large_account(hak_stats_t *st, uint64_t totals[3]) {
  pthread_mutex_lock(&hak_large_lock);
  st->large_blocks += live_count;
  st->in_use_bytes += live_bytes;
  st->large_in_use_bytes += live_bytes;
  st->large_cached += cache_entries;
  st->large_cache_bytes += cache_bytes;
  st->large_dirty_bytes += cache_bytes;
  hak_arena_account(st);
  for (hak_large_t *l = live_head; l != NULL; l = l->next) st->resident.large += hak_os_resident(l->base, l->map_bytes);
  for (hak_large_t *l = cache_head; l != NULL; l = l->next)
    st->resident.large_cache += hak_os_resident(l->base, l->map_bytes);
  totals[0] = allocs;
  totals[1] = frees;
  totals[2] = alloc_bytes;
  pthread_mutex_unlock(&hak_large_lock);
}
