/* arena.c — large blocks reused in place (variants with
 * HAK_CONFIG_LARGE_ARENA): address space reserved in arenas of
 * HAK_ARENA_BYTES and kept; a large block below HAK_ARENA_MAX_BLOCK is one
 * contiguous run of whole units in an arena. What gperftools' page heap,
 * mimalloc's arenas and jemalloc's extents do; a block is never assembled
 * from moved pieces (large.c's cache does that for the variants without an
 * arena, and the first write to a moved page costs more than to a page left
 * where it was: ../shared/probes/pagecost.c prices it).
 *
 *   - Every unit of an arena belongs to exactly one run, live (a block) or
 *     free. A run's descriptor (hak_large_t, in_arena) is in the arena's
 *     edge[] table at its first and its last unit, so the runs before and
 *     after it are found by address (edge[first - 1], edge[last + 1]); a
 *     freed run merges with free neighbours at once (metadata only).
 *   - A request takes the free run that fits (aligned as asked) where it
 *     finds the most pages already there (the fewest never-touched or
 *     decommitted units), then the smallest, then the lowest address; what
 *     is left before and after it stays free. When none fits, a new arena
 *     is reserved.
 *   - Pages go back with madvise(MADV_DONTNEED) only, never right after a
 *     free: dirty[] marks the units that may hold pages (set while a block
 *     holds them, cleared by a decommit). The dirty units of a free run are
 *     decommitted when it has not changed for ARENA_DECAY_TICKS (one second,
 *     by the scavenger), when the dirty free bytes pass the bound large.c
 *     gives (the cache's bound), and all of them when the process idles or
 *     on hak_flush / hak_reset, which also unmap arenas with no live block.
 *     A run with no dirty unit reads as zero: calloc does not clear it.
 *   - realloc grows a block over a free neighbour in place, shrinks it by
 *     freeing its tail, and otherwise moves its pages (mremap) into a new
 *     run; the hole left behind is mapped afresh (it reads as zero).
 *
 * The page map holds a run by its first unit (pm_enter), live or free, so a
 * double free of a block whose run is still free is stopped as such; a
 * pointer into a run is no block. Reservations are MAP_NORESERVE: blocks up
 * to HAK_ARENA_MAX_BLOCK are not charged to the commit count (glibc's heap
 * is not either); larger ones get mappings of their own from large.c,
 * charged, so that the overcommit policy refuses what cannot be backed.
 *
 * Every function here runs with hak_large_lock held (large.c takes it): the
 * lock that the fork handlers and the lock order already name. The system
 * calls of a decommit or a move happen under it. */
#include <string.h>

#include "internal.h"
#include "list.h"

#define ARENA_UNITS (HAK_ARENA_BYTES / HAK_UNIT_SIZE)
#define ARENA_DECAY_TICKS HAK_TICKS_PER_SECOND

typedef struct hak_arena_s {
  char *base;
  struct hak_arena_s *next;
  size_t live_runs;
  uint64_t dirty[ARENA_UNITS / 64];   /* units whose pages may be resident */
  hak_large_t *edge[ARENA_UNITS];     /* the run whose first or last unit this is */
} hak_arena_t;
_Static_assert(sizeof(hak_arena_t) > 4096, "an arena's table is a mapping of its own (meta.c), which reads as zero");

static hak_arena_t *arenas;
static hak_large_t *free_runs;          /* every arena's free runs */
static size_t free_count, free_bytes, dirty_bytes, reserved_bytes;

/* ---- units -------------------------------------------------------------------- */
static size_t unit_of(const hak_arena_t *a, const char *p) { return (size_t)(p - a->base) / HAK_UNIT_SIZE; }
static size_t units(size_t bytes) { return bytes / HAK_UNIT_SIZE; }
static size_t first_unit(const hak_large_t *l) { return unit_of(l->arena, l->base); }
static size_t last_unit(const hak_large_t *l) { return first_unit(l) + units(l->map_bytes) - 1; }

static bool dirty_at(const hak_arena_t *a, size_t u) { return (a->dirty[u / 64] >> (u % 64)) & 1; }

/* Dirty units in [u, u + n). */
static size_t dirty_count(const hak_arena_t *a, size_t u, size_t n) {
  size_t c = 0;
  for (size_t end = u + n; u < end;) {
    if (u % 64 == 0 && end - u >= 64) {
      c += (size_t)__builtin_popcountll(a->dirty[u / 64]);
      u += 64;
    } else {
      c += dirty_at(a, u);
      u++;
    }
  }
  return c;
}

static void dirty_mark(hak_arena_t *a, size_t u, size_t n, bool set) {
  for (size_t end = u + n; u < end; u++) {
    if (set) a->dirty[u / 64] |= (uint64_t)1 << (u % 64);
    else a->dirty[u / 64] &= ~((uint64_t)1 << (u % 64));
  }
}

/* ---- runs --------------------------------------------------------------------- */
static void edges_set(hak_large_t *l) {
  l->arena->edge[first_unit(l)] = l;
  l->arena->edge[last_unit(l)] = l;
}

static void pm_enter(hak_large_t *l) { hak_pagemap_set(l->base, HAK_UNIT_SIZE, &l->span, 0); }
static void pm_leave(const hak_large_t *l) { hak_pagemap_set(l->base, HAK_UNIT_SIZE, NULL, 0); }

static void run_init(hak_large_t *l, hak_arena_t *a, char *base, size_t bytes) {
  memset(l, 0, sizeof *l);
  l->span.kind = HAK_SPAN_LARGE;
  l->in_arena = 1;
  l->arena = a;
  l->base = base;
  l->map_bytes = bytes;
}

/* A run becomes free (its page-map entry and edges already right), or stops
 * being free. */
static void free_insert(hak_large_t *l) {
  l->cached = 1;
  hak_list_push(&free_runs, l);
  free_count++;
  free_bytes += l->map_bytes;
}
static void free_remove(hak_large_t *l) {
  hak_list_remove(&free_runs, l);
  free_count--;
  free_bytes -= l->map_bytes;
}

/* Gives back the pages of run l's dirty units (a free run). */
static void decommit(hak_large_t *l) {
  hak_arena_t *a = l->arena;
  size_t u = first_unit(l), end = u + units(l->map_bytes);
  while (u < end) {
    if (!dirty_at(a, u)) {
      u++;
      continue;
    }
    size_t s = u;
    while (u < end && dirty_at(a, u)) u++;
    hak_os_decommit(a->base + s * HAK_UNIT_SIZE, (u - s) * HAK_UNIT_SIZE);
    dirty_mark(a, s, u - s, false);
    dirty_bytes -= (u - s) * HAK_UNIT_SIZE;
  }
}

static size_t run_dirty(const hak_large_t *l) { return dirty_count(l->arena, first_unit(l), units(l->map_bytes)); }

/* ---- arenas ------------------------------------------------------------------- */
static hak_arena_t *arena_new(void) {
  char *base = hak_os_map_aligned(HAK_ARENA_BYTES, HAK_HUGE_PAGE_SIZE);
  if (base == NULL) return NULL;
  hak_arena_t *a = NULL;
  hak_large_t *l = NULL;
  if (hak_pagemap_reserve(base, HAK_ARENA_BYTES)) {
    a = hak_meta_alloc(sizeof(hak_arena_t));
    l = a != NULL ? hak_meta_alloc(sizeof(hak_large_t)) : NULL;
  }
  if (l == NULL) {
    if (a != NULL) hak_meta_free(a, sizeof(hak_arena_t));
    hak_os_unmap(base, HAK_ARENA_BYTES);
    return NULL;
  }
  a->base = base;
  a->next = arenas;
  arenas = a;
  reserved_bytes += HAK_ARENA_BYTES;
  run_init(l, a, base, HAK_ARENA_BYTES);
  edges_set(l);
  pm_enter(l);
  free_insert(l);
  return a;
}

/* Unmaps the arenas that hold no live block (each is then one free run). */
static void arena_release_empty(void) {
  for (hak_arena_t **pa = &arenas; *pa != NULL;) {
    hak_arena_t *a = *pa;
    if (a->live_runs != 0) {
      pa = &a->next;
      continue;
    }
    hak_large_t *l = a->edge[0];
    free_remove(l);
    dirty_bytes -= run_dirty(l) * HAK_UNIT_SIZE;
    pm_leave(l);
    hak_meta_free(l, sizeof(hak_large_t));
    *pa = a->next;
    reserved_bytes -= HAK_ARENA_BYTES;
    hak_os_unmap(a->base, HAK_ARENA_BYTES);
    hak_meta_free(a, sizeof(hak_arena_t));
  }
}

/* ---- taking a run --------------------------------------------------------------- */
/* Where a block of need bytes aligned to align starts in free run l, or NULL
 * if it does not fit there. */
static char *fit_at(const hak_large_t *l, size_t need, size_t align) {
  char *start = (char *)hak_align_up((uintptr_t)l->base, align);
  return start + need <= l->base + l->map_bytes && start >= l->base ? start : NULL;
}

/* The free run to take: the one where the block would find the most pages
 * already there (the fewest units that are not dirty, so the fewest page
 * faults: a free run merged with the never-touched rest of an arena is used
 * from its dirty start), then the smallest, then the lowest address. */
static hak_large_t *best_fit(size_t need, size_t align, char **at) {
  hak_large_t *best = NULL;
  size_t best_fresh = 0;
  for (hak_large_t *l = free_runs; l != NULL; l = l->next) {
    char *start = fit_at(l, need, align);
    if (start == NULL) continue;
    size_t fresh = units(need) - dirty_count(l->arena, unit_of(l->arena, start), units(need));
    if (best == NULL || fresh < best_fresh ||
        (fresh == best_fresh && (l->map_bytes < best->map_bytes || (l->map_bytes == best->map_bytes && l->base < best->base)))) {
      best = l;
      best_fresh = fresh;
      *at = start;
    }
  }
  return best;
}

/* Live run of [start, start + need) out of free run l; spare[] holds two
 * descriptors for the free parts before and after it (used ones set NULL). */
static hak_large_t *carve(hak_large_t *l, char *start, size_t need, hak_large_t *spare[2]) {
  hak_arena_t *a = l->arena;
  char *end = l->base + l->map_bytes;
  free_remove(l);
  if (start > l->base) { /* l keeps the part before; the block gets a descriptor of its own */
    hak_large_t *m = spare[0];
    spare[0] = NULL;
    l->map_bytes = (size_t)(start - l->base);
    edges_set(l);
    free_insert(l);
    run_init(m, a, start, need);
    l = m;
  } else {
    l->map_bytes = need;
  }
  if (start + need < end) { /* the part after stays free */
    hak_large_t *t = spare[1];
    spare[1] = NULL;
    run_init(t, a, start + need, (size_t)(end - (start + need)));
    edges_set(t);
    pm_enter(t);
    free_insert(t);
  }
  l->cached = 0;
  edges_set(l);
  pm_enter(l);
  size_t u = first_unit(l), n = units(need);
  dirty_bytes -= dirty_count(a, u, n) * HAK_UNIT_SIZE;
  dirty_mark(a, u, n, true);
  a->live_runs++;
  return l;
}

hak_large_t *hak_arena_take(size_t need, size_t align, bool *zeroed) {
  if (need > HAK_ARENA_MAX_BLOCK || align > HAK_ARENA_MAX_BLOCK) return NULL;
  hak_large_t *spare[2] = {hak_meta_alloc(sizeof(hak_large_t)), hak_meta_alloc(sizeof(hak_large_t))};
  hak_large_t *l = NULL;
  if (spare[0] != NULL && spare[1] != NULL) {
    char *start = NULL;
    hak_large_t *f = best_fit(need, align, &start);
    if (f == NULL && arena_new() != NULL) f = best_fit(need, align, &start);
    if (f != NULL) {
      hak_arena_t *a = f->arena;
      *zeroed = dirty_count(a, unit_of(a, start), units(need)) == 0;
      l = carve(f, start, need, spare);
      hak_os_advise_huge(l->base, need); /* with huge pages on, blocks of 2 MiB or more */
    }
  }
  for (int i = 0; i < 2; i++)
    if (spare[i] != NULL) hak_meta_free(spare[i], sizeof(hak_large_t));
  return l;
}

/* ---- giving a run back ------------------------------------------------------------ */
/* Free run l merges with the free runs beside it; returns the merged run
 * (not yet on the free list). */
static hak_large_t *coalesce(hak_large_t *l) {
  hak_arena_t *a = l->arena;
  size_t u = first_unit(l);
  if (u > 0 && a->edge[u - 1]->cached) {
    hak_large_t *p = a->edge[u - 1];
    free_remove(p);
    p->map_bytes += l->map_bytes;
    p->freed_tick = l->freed_tick;
    pm_leave(l);
    hak_meta_free(l, sizeof(hak_large_t));
    l = p;
  }
  size_t after = last_unit(l) + 1;
  if (after < ARENA_UNITS && a->edge[after]->cached) {
    hak_large_t *n = a->edge[after];
    free_remove(n);
    l->map_bytes += n->map_bytes;
    pm_leave(n);
    hak_meta_free(n, sizeof(hak_large_t));
  }
  edges_set(l);
  return l;
}

/* Run l (its page-map entry and edges right, not on the free list) becomes
 * free: counted, merged, listed. */
static void give_back(hak_large_t *l) {
  l->cached = 1;
  l->freed_tick = atomic_load_explicit(&hak_clock_tick, memory_order_relaxed);
  dirty_bytes += run_dirty(l) * HAK_UNIT_SIZE;
  free_insert(coalesce(l));
}

void hak_arena_put(hak_large_t *l) {
  l->arena->live_runs--;
  give_back(l);
}

/* ---- realloc --------------------------------------------------------------------- */
bool hak_arena_resize(hak_large_t *l, size_t need) {
  hak_arena_t *a = l->arena;
  if (need <= l->map_bytes) {
    if (need > l->map_bytes / 2) return true; /* keep it: give back at least half */
    hak_large_t *t = hak_meta_alloc(sizeof(hak_large_t));
    if (t == NULL) return true;
    run_init(t, a, l->base + need, l->map_bytes - need);
    l->map_bytes = need;
    edges_set(l);
    edges_set(t);
    pm_enter(t);
    give_back(t);
    return true;
  }
  size_t after = last_unit(l) + 1, more = need - l->map_bytes;
  if (after >= ARENA_UNITS || !a->edge[after]->cached || a->edge[after]->map_bytes < more) return false;
  hak_large_t *n = a->edge[after];
  free_remove(n);
  pm_leave(n);
  dirty_bytes -= dirty_count(a, after, units(more)) * HAK_UNIT_SIZE;
  dirty_mark(a, after, units(more), true);
  if (n->map_bytes > more) {
    n->base += more;
    n->map_bytes -= more;
    edges_set(n);
    pm_enter(n);
    free_insert(n);
  } else {
    hak_meta_free(n, sizeof(hak_large_t));
  }
  l->map_bytes = need;
  edges_set(l);
  return true;
}

/* Moves live run l's pages to dst (a mapped range at least as long: another
 * arena run, or a block's own mapping), no copy; l's range is mapped afresh
 * and l becomes free (reading as zero). False when the kernel refuses (l's
 * range spans several kernel mappings after earlier moves): nothing changed. */
bool hak_arena_move(hak_large_t *l, char *dst) {
  if (!hak_os_move(l->base, l->map_bytes, dst, l->map_bytes)) return false;
  if (!hak_os_map_fixed(l->base, l->map_bytes)) { /* the hole cannot be refilled: undo */
    if (!hak_os_move(dst, l->map_bytes, l->base, l->map_bytes)) hak_fatal("realloc()", "cannot restore an arena range", l->base);
    return false;
  }
  dirty_mark(l->arena, first_unit(l), units(l->map_bytes), false);
  hak_arena_put(l);
  return true;
}

/* ---- giving memory back ----------------------------------------------------------- */
void hak_arena_decay(void) {
  uint32_t now = atomic_load_explicit(&hak_clock_tick, memory_order_relaxed);
  for (hak_large_t *l = free_runs; l != NULL && dirty_bytes > 0; l = l->next)
    if (now - l->freed_tick >= ARENA_DECAY_TICKS) decommit(l);
}

/* The dirty free bytes within bound: the dirty runs freed longest ago go first. */
void hak_arena_bound(size_t bound) {
  while (dirty_bytes > bound) {
    hak_large_t *oldest = NULL;
    for (hak_large_t *l = free_runs; l != NULL; l = l->next)
      if ((oldest == NULL || (int32_t)(l->freed_tick - oldest->freed_tick) < 0) && run_dirty(l) > 0) oldest = l;
    if (oldest == NULL) break;
    decommit(oldest);
  }
}

void hak_arena_release(void) {
  for (hak_large_t *l = free_runs; l != NULL && dirty_bytes > 0; l = l->next) decommit(l);
  arena_release_empty();
}

/* ---- statistics and the validator ------------------------------------------------ */
void hak_arena_account(hak_stats_t *st) {
  for (hak_arena_t *a = arenas; a != NULL; a = a->next) /* the tables: meta.c counts their bytes */
    st->resident.metadata += hak_os_resident(a, hak_align_up(sizeof(hak_arena_t), HAK_UNIT_SIZE));
  st->large_cached += free_count;
  st->large_cache_bytes += free_bytes;
  st->large_dirty_bytes += dirty_bytes;
  for (hak_large_t *l = free_runs; l != NULL; l = l->next)
    if (run_dirty(l) > 0) st->resident.large_cache += hak_os_resident(l->base, l->map_bytes);
}

size_t hak_arena_free_bytes(void) { return free_bytes; }

/* Every arena tiled by runs in address order, each in edge[] at both ends
 * and in the page map at its first unit; no two free runs side by side; the
 * free list and the counts agree with the runs. */
const char *hak_arena_validate(void) {
  size_t nfree = 0, fbytes = 0, dbytes = 0, rbytes = 0;
  for (hak_arena_t *a = arenas; a != NULL; a = a->next) {
    size_t live = 0;
    bool prev_free = false;
    rbytes += HAK_ARENA_BYTES;
    for (size_t u = 0; u < ARENA_UNITS;) {
      hak_large_t *l = a->edge[u];
      if (l == NULL || l->arena != a || !l->in_arena || l->base != a->base + u * HAK_UNIT_SIZE) return "an arena run is not where its edge says";
      if (l->map_bytes == 0 || l->map_bytes % HAK_UNIT_SIZE != 0 || u + units(l->map_bytes) > ARENA_UNITS) return "an arena run has a bad length";
      if (a->edge[last_unit(l)] != l) return "an arena run's last unit does not name it";
      if (hak_pagemap_lookup(l->base) != &l->span) return "the page map does not hold an arena run";
      if (l->cached) {
        if (prev_free) return "two free arena runs side by side";
        nfree++;
        fbytes += l->map_bytes;
        dbytes += run_dirty(l) * HAK_UNIT_SIZE;
      } else {
        live++;
      }
      prev_free = l->cached;
      u += units(l->map_bytes);
    }
    if (live != a->live_runs) return "an arena's live-run count is wrong";
  }
  size_t listed = 0;
  for (hak_large_t *l = free_runs; l != NULL; l = l->next)
    if (!l->cached || !l->in_arena || ++listed > nfree) return "the arena free list holds a run that is not free";
  if (listed != nfree || nfree != free_count || fbytes != free_bytes) return "the arena free list's counts do not match its runs";
  if (dbytes != dirty_bytes) return "the arena's dirty bytes do not match its runs";
  if (rbytes != reserved_bytes) return "the arena reservations do not add up";
  return NULL;
}
