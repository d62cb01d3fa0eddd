/* large.c — large and huge objects (above HAK_MEDIUM_MAX, or aligned beyond
 * HAK_MEDIUM_MAX_ALIGN): one mapping each, straight from the OS.
 *
 * The user pointer is the start of the mapping, so a mapping's descriptor is
 * found through the page map like any span. Freed mappings up to a bound go
 * into a small cache (config_large_cache_entries mappings,
 * config_large_cache_max bytes together) from which a later request of about
 * a smaller size is served from the best fit (its excess tail unmapped), so
 * its pages need not fault in again; the oldest entry leaves first. Growth tries mremap in place; shrinking unmaps the tail.
 *
 * One lock, hak_large_lock, protects the cache and the live count. */
#include <string.h>

#include "internal.h"

/* A cached mapping serves a request of need bytes whole when it is at most
 * need / CACHE_TAIL_SLACK longer (a quarter: the spare tail stays mapped); a
 * longer one has its tail unmapped. */
#define CACHE_TAIL_SLACK 4
/* One cached mapping may take at most 1 / CACHE_ENTRY_SHARE of the cache's
 * byte bound, so that one huge block cannot flush every other entry. */
#define CACHE_ENTRY_SHARE 4

pthread_mutex_t hak_large_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_large_t *cache_head;   /* newest first */
static size_t cache_entries, cache_bytes, live_count;
static _Atomic uint64_t activity; /* written under the lock, read without it */

static void count_activity(void) {
  atomic_store_explicit(&activity, atomic_load_explicit(&activity, memory_order_relaxed) + 1,
                        memory_order_relaxed);
}

uint64_t hak_large_activity(void) { return atomic_load_explicit(&activity, memory_order_relaxed); }

static void large_release(hak_large_t *l) {
  hak_pagemap_set(l->base, l->map_bytes, NULL);
  hak_os_unmap(l->base, l->map_bytes);
  hak_meta_free(l, sizeof(hak_large_t));
}

/* The smallest cached mapping of at least need bytes aligned to align, or
 * NULL. Lock held. */
static hak_large_t *cache_take(size_t need, size_t align) {
  hak_large_t **link, *l, **best = NULL;
  for (link = &cache_head; (l = *link) != NULL; link = &l->next)
    if (l->map_bytes >= need && ((uintptr_t)l->base & (align - 1)) == 0 &&
        (best == NULL || l->map_bytes < (*best)->map_bytes))
      best = link;
  if (best == NULL) return NULL;
  l = *best;
  *best = l->next;
  cache_entries--;
  cache_bytes -= l->map_bytes;
  return l;
}

void *hak_large_alloc(size_t size, size_t align, bool *zeroed) {
  if (size > HAK_MAX_REQUEST) return NULL;
  if (align < HAK_UNIT_SIZE) align = HAK_UNIT_SIZE;
  size_t need = hak_align_up(size ? size : 1, HAK_UNIT_SIZE);
  pthread_mutex_lock(&hak_large_lock);
  count_activity();
  hak_large_t *l = cache_head != NULL ? cache_take(need, align) : NULL;
  if (l != NULL) {
    l->cached = 0;
    live_count++;
    pthread_mutex_unlock(&hak_large_lock);
    if (l->map_bytes - need > need / CACHE_TAIL_SLACK) { /* too big: give the tail back */
      hak_pagemap_set(l->base + need, l->map_bytes - need, NULL);
      hak_os_shrink(l->base, l->map_bytes, need);
      l->map_bytes = need;
    }
    *zeroed = false;
    return l->base;
  }
  pthread_mutex_unlock(&hak_large_lock);
  char *base = hak_os_map_aligned(need, align);
  if (base == NULL) return NULL;
  l = hak_pagemap_reserve(base, need) ? hak_meta_alloc(sizeof(hak_large_t)) : NULL;
  if (l == NULL) {
    hak_os_unmap(base, need);
    return NULL;
  }
  l->span.kind = HAK_SPAN_LARGE;
  l->base = base;
  l->map_bytes = need;
  hak_pagemap_set(base, need, &l->span);
  pthread_mutex_lock(&hak_large_lock);
  live_count++;
  pthread_mutex_unlock(&hak_large_lock);
  *zeroed = true;
  return base;
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
  live_count--;
  hak_large_t *evict = NULL;
  if (l->map_bytes <= config_large_cache_max / CACHE_ENTRY_SHARE && config_large_cache_entries > 0) {
    l->cached = 1;
    l->next = cache_head;
    cache_head = l;
    cache_entries++;
    cache_bytes += l->map_bytes;
    /* Over a bound: cut the list after the newest entries that fit. */
    size_t n = 0, bytes = 0;
    for (hak_large_t *e = cache_head; e != NULL; e = e->next) {
      n++;
      bytes += e->map_bytes;
      if (e->next != NULL && (n + 1 > config_large_cache_entries ||
                              bytes + e->next->map_bytes > config_large_cache_max)) {
        evict = e->next;
        e->next = NULL;
        break;
      }
    }
    for (hak_large_t *e = evict; e != NULL; e = e->next) {
      cache_entries--;
      cache_bytes -= e->map_bytes;
    }
    l = NULL;
  }
  pthread_mutex_unlock(&hak_large_lock);
  if (l != NULL) large_release(l);
  while (evict != NULL) {
    hak_large_t *next = evict->next;
    large_release(evict);
    evict = next;
  }
}

size_t hak_large_usable(hak_large_t *l, const void *p, const char *call) {
  check_live(l, p, call);
  return l->map_bytes;
}

/* Resizes the mapping at p to hold size bytes without moving it, if it can:
 * shrinks by unmapping the tail (when at least half would go), grows by
 * extending the mapping when the addresses after it are free. */
bool hak_large_resize_in_place(hak_large_t *l, void *p, size_t size) {
  check_live(l, p, "realloc()");
  if (size > HAK_MAX_REQUEST) return false; /* rounding it up to units would wrap to 0 */
  size_t need = hak_align_up(size ? size : 1, HAK_UNIT_SIZE);
  if (need <= l->map_bytes) {
    if (need <= l->map_bytes / 2) {
      hak_pagemap_set(l->base + need, l->map_bytes - need, NULL);
      hak_os_shrink(l->base, l->map_bytes, need);
      l->map_bytes = need;
    }
    return true;
  }
  if (size > HAK_MAX_REQUEST || !hak_os_grow_in_place(l->base, l->map_bytes, need)) return false;
  if (!hak_pagemap_reserve(l->base + l->map_bytes, need - l->map_bytes)) {
    hak_os_shrink(l->base, need, l->map_bytes); /* give the extension back; the caller moves the block */
    return false;
  }
  hak_pagemap_set(l->base + l->map_bytes, need - l->map_bytes, &l->span);
  l->map_bytes = need;
  return true;
}

void hak_large_cache_clear(void) { hak_large_cache_trim(0); }

/* Unmaps the oldest cached mappings until at most keep_bytes stay cached. */
void hak_large_cache_trim(size_t keep_bytes) {
  pthread_mutex_lock(&hak_large_lock);
  hak_large_t **link = &cache_head, *l;
  size_t kept = 0;
  while ((l = *link) != NULL && kept + l->map_bytes <= keep_bytes) {
    kept += l->map_bytes;
    link = &l->next;
  }
  *link = NULL;
  for (hak_large_t *e = l; e != NULL; e = e->next) {
    cache_entries--;
    cache_bytes -= e->map_bytes;
  }
  pthread_mutex_unlock(&hak_large_lock);
  while (l != NULL) {
    hak_large_t *next = l->next;
    large_release(l);
    l = next;
  }
}

void hak_large_counts(size_t *live, size_t *cached_bytes) {
  pthread_mutex_lock(&hak_large_lock);
  *live = live_count;
  *cached_bytes = cache_bytes;
  pthread_mutex_unlock(&hak_large_lock);
}

/* Validator: every cached mapping is marked cached and in the page map, and
 * the cache's counts match its list and stay within the variant's bounds. */
const char *hak_large_validate(void) {
  const char *err = NULL;
  size_t n = 0, bytes = 0;
  pthread_mutex_lock(&hak_large_lock);
  for (hak_large_t *l = cache_head; l != NULL && err == NULL; l = l->next) {
    if (++n > cache_entries) err = "the large cache holds more mappings than it counts";
    else if (!l->cached) err = "a mapping in the large cache is not marked cached";
    else if (hak_pagemap_lookup(l->base) != &l->span) err = "the page map does not point at a cached large mapping";
    bytes += l->map_bytes;
  }
  if (err == NULL && (n != cache_entries || bytes != cache_bytes)) err = "the large cache's counts do not match its list";
  if (err == NULL && (n > config_large_cache_entries || bytes > config_large_cache_max))
    err = "the large cache is over its bounds";
  pthread_mutex_unlock(&hak_large_lock);
  return err;
}
