/* medium.c — medium sizes (HAK_SMALL_MAX < n <= HAK_MEDIUM_MAX): runs of 4 KiB
 * pages inside 4 MiB chunks.
 *
 * Each chunk keeps boundary tags in pg[]: the first and last page of every run
 * carry its length and flags, interior pages 0. Allocation is first fit over
 * the runs (stepping run to run), aligning the run start when asked (up to
 * 64 KiB, since chunks are 4 MiB aligned); free marks the run free and
 * coalesces it with free neighbours on both sides.
 *
 * Free runs are "dirty" (committed, contents unknown) or clean (fresh or
 * decommitted, reading as zero). When the dirty pages of all chunks pass
 * config_medium_dirty_max, every dirty free run is decommitted at once. One
 * fully free chunk is kept; further ones are unmapped.
 *
 * One lock, hak_medium_lock, protects all chunks. */
#include <string.h>

#include "internal.h"
#include "list.h"

#define PG_LEN   0x07ffu
#define PG_FREE  0x0800u
#define PG_DIRTY 0x1000u
#define PG_HEAD  0x2000u
#define PG_TAIL  0x4000u

pthread_mutex_t hak_medium_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_chunk_t *chunks;
static size_t chunk_count, dirty_pages_total;
static uint64_t allocs, frees, alloc_bytes; /* cumulative, under the lock */
static _Atomic uint64_t activity; /* written under the lock, read without it */

static void count_activity(void) {
  atomic_store_explicit(&activity, atomic_load_explicit(&activity, memory_order_relaxed) + 1,
                        memory_order_relaxed);
}

uint64_t hak_medium_activity(void) { return atomic_load_explicit(&activity, memory_order_relaxed); }

static void run_mark(hak_chunk_t *c, size_t i, size_t len, unsigned flags) {
  c->pg[i] = (uint16_t)(len | flags | PG_HEAD | (len == 1 ? PG_TAIL : 0));
  if (len > 1) c->pg[i + len - 1] = (uint16_t)(len | flags | PG_TAIL);
}

static void run_clear(hak_chunk_t *c, size_t i, size_t len) {
  c->pg[i] = 0;
  c->pg[i + len - 1] = 0;
}

/* Adds a free run, coalescing with free neighbours. */
static void run_free(hak_chunk_t *c, size_t i, size_t len, bool dirty) {
  c->free_pages += (uint32_t)len;
  if (dirty) c->dirty_pages += (uint32_t)len, dirty_pages_total += len;
  if (i + len < HAK_CHUNK_PAGES && (c->pg[i + len] & PG_FREE)) {
    uint16_t e = c->pg[i + len];
    size_t nlen = e & PG_LEN;
    run_clear(c, i + len, nlen);
    if ((e & PG_DIRTY) && !dirty) dirty = true, c->dirty_pages += (uint32_t)len, dirty_pages_total += len;
    else if (!(e & PG_DIRTY) && dirty) c->dirty_pages += (uint32_t)nlen, dirty_pages_total += nlen;
    len += nlen;
  }
  if (i > 0 && (c->pg[i - 1] & PG_FREE)) {
    uint16_t e = c->pg[i - 1];
    size_t plen = e & PG_LEN, pstart = i - plen;
    run_clear(c, pstart, plen);
    if ((e & PG_DIRTY) && !dirty) dirty = true, c->dirty_pages += (uint32_t)len, dirty_pages_total += len;
    else if (!(e & PG_DIRTY) && dirty) c->dirty_pages += (uint32_t)plen, dirty_pages_total += plen;
    i = pstart;
    len += plen;
  }
  run_mark(c, i, len, PG_FREE | (dirty ? PG_DIRTY : 0));
}

static hak_chunk_t *chunk_new(void) {
  char *base = hak_os_map_aligned(HAK_CHUNK_SIZE, HAK_CHUNK_SIZE);
  if (base == NULL) return NULL;
  hak_chunk_t *c = hak_pagemap_reserve(base, HAK_CHUNK_SIZE) ? hak_meta_alloc(sizeof(hak_chunk_t)) : NULL;
  if (c == NULL) {
    hak_os_unmap(base, HAK_CHUNK_SIZE);
    return NULL;
  }
  c->span.kind = HAK_SPAN_MEDIUM;
  c->base = base;
  run_mark(c, 0, HAK_CHUNK_PAGES, PG_FREE);
  c->free_pages = HAK_CHUNK_PAGES;
  hak_pagemap_set(base, HAK_CHUNK_SIZE, &c->span, 0);
  hak_list_push(&chunks, c);
  chunk_count++;
  return c;
}

static void chunk_delete(hak_chunk_t *c) {
  hak_list_remove(&chunks, c);
  dirty_pages_total -= c->dirty_pages;
  chunk_count--;
  hak_pagemap_set(c->base, HAK_CHUNK_SIZE, NULL, 0);
  hak_os_unmap(c->base, HAK_CHUNK_SIZE);
  hak_meta_free(c, sizeof(hak_chunk_t));
}

/* Takes npages at an align_pages-aligned start from chunk c; -1 if none fits. */
static long chunk_take(hak_chunk_t *c, size_t npages, size_t align_pages, bool *zeroed) {
  if (c->free_pages < npages) return -1;
  for (size_t i = 0; i < HAK_CHUNK_PAGES;) {
    uint16_t e = c->pg[i];
    size_t len = e & PG_LEN;
    if ((e & PG_FREE) && len >= npages) {
      size_t start = hak_align_up(i, align_pages);
      if (start + npages <= i + len) {
        bool dirty = (e & PG_DIRTY) != 0;
        run_clear(c, i, len);
        c->free_pages -= (uint32_t)len;
        if (dirty) c->dirty_pages -= (uint32_t)len, dirty_pages_total -= len;
        if (start > i) run_free(c, i, start - i, dirty);
        if (start + npages < i + len) run_free(c, start + npages, i + len - start - npages, dirty);
        run_mark(c, start, npages, 0);
        *zeroed = !dirty;
        return (long)start;
      }
    }
    i += len;
  }
  return -1;
}

void *hak_medium_alloc(size_t size, size_t align, bool *zeroed) {
  size_t npages = hak_align_up(size, HAK_PAGE_SIZE) / HAK_PAGE_SIZE;
  size_t align_pages = align > HAK_PAGE_SIZE ? align / HAK_PAGE_SIZE : 1;
  pthread_mutex_lock(&hak_medium_lock);
  count_activity();
  hak_chunk_t *c;
  long at = -1;
  for (c = chunks; c != NULL; c = c->next)
    if ((at = chunk_take(c, npages, align_pages, zeroed)) >= 0) break;
  if (at < 0) {
    c = chunk_new();
    if (c != NULL) at = chunk_take(c, npages, align_pages, zeroed);
  }
  if (at >= 0) {
    allocs++;
    alloc_bytes += npages * HAK_PAGE_SIZE;
  }
  pthread_mutex_unlock(&hak_medium_lock);
  return at < 0 ? NULL : c->base + (size_t)at * HAK_PAGE_SIZE;
}

/* Page index of the live run that starts at p, or fatal. Lock held. */
static size_t run_of(hak_chunk_t *c, const void *p, const char *call) {
  size_t off = (size_t)((const char *)p - c->base);
  size_t i = off / HAK_PAGE_SIZE;
  if (off % HAK_PAGE_SIZE != 0 || !(c->pg[i] & PG_HEAD)) {
    pthread_mutex_unlock(&hak_medium_lock);
    hak_fatal(call, "invalid pointer", p);
  }
  if (c->pg[i] & PG_FREE) {
    pthread_mutex_unlock(&hak_medium_lock);
    hak_fatal(call, strcmp(call, "free()") == 0 ? "double free" : "freed block", p);
  }
  return i;
}

static void purge_locked(void) {
  for (hak_chunk_t *c = chunks; c != NULL; c = c->next) {
    if (c->dirty_pages == 0) continue;
    for (size_t i = 0; i < HAK_CHUNK_PAGES;) {
      uint16_t e = c->pg[i];
      size_t len = e & PG_LEN;
      if ((e & PG_FREE) && (e & PG_DIRTY)) {
        hak_os_decommit(c->base + i * HAK_PAGE_SIZE, len * HAK_PAGE_SIZE);
        run_mark(c, i, len, PG_FREE);
      }
      i += len;
    }
    dirty_pages_total -= c->dirty_pages;
    c->dirty_pages = 0;
  }
}

void hak_medium_free(hak_chunk_t *c, void *p, const char *call) {
  pthread_mutex_lock(&hak_medium_lock);
  count_activity();
  size_t i = run_of(c, p, call);
  size_t len = c->pg[i] & PG_LEN;
  frees++;
  run_clear(c, i, len);
  run_free(c, i, len, true);
  if (c->free_pages == HAK_CHUNK_PAGES) {
    /* Keep one empty chunk (the first in the list that is empty); unmap others. */
    for (hak_chunk_t *o = chunks; o != NULL; o = o->next)
      if (o != c && o->free_pages == HAK_CHUNK_PAGES) {
        chunk_delete(c);
        break;
      }
  }
  if (dirty_pages_total * HAK_PAGE_SIZE > config_medium_dirty_max) purge_locked();
  pthread_mutex_unlock(&hak_medium_lock);
}

/* Usable bytes of live block p, without the lock: a live run's head tag
 * changes only when the run itself is freed or resized, which its holder is
 * not doing while it asks (realloc, malloc_usable_size, the checked build),
 * and a re-entrant call (a signal handler's, reentry.c) must not wait for a
 * lock the code it interrupted may hold. */
size_t hak_medium_usable(hak_chunk_t *c, const void *p, const char *call) {
  size_t off = (size_t)((const char *)p - c->base);
  uint16_t tag = __atomic_load_n(&c->pg[off / HAK_PAGE_SIZE], __ATOMIC_RELAXED);
  if (off % HAK_PAGE_SIZE != 0 || !(tag & PG_HEAD)) hak_fatal(call, "invalid pointer", p);
  if (tag & PG_FREE) hak_fatal(call, strcmp(call, "free()") == 0 ? "double free" : "freed block", p);
  return (size_t)(tag & PG_LEN) * HAK_PAGE_SIZE;
}

bool hak_medium_resize_in_place(hak_chunk_t *c, void *p, size_t size) {
  size_t need = hak_align_up(size, HAK_PAGE_SIZE) / HAK_PAGE_SIZE;
  pthread_mutex_lock(&hak_medium_lock);
  size_t i = run_of(c, p, "realloc()");
  size_t len = c->pg[i] & PG_LEN;
  bool ok = true;
  if (need < len) {
    run_clear(c, i, len);
    run_mark(c, i, need, 0);
    run_free(c, i + need, len - need, true);
  } else if (need > len) {
    size_t j = i + len;
    uint16_t e = j < HAK_CHUNK_PAGES ? c->pg[j] : 0;
    size_t nlen = e & PG_LEN;
    if ((e & PG_FREE) && len + nlen >= need) {
      bool dirty = (e & PG_DIRTY) != 0;
      run_clear(c, j, nlen);
      c->free_pages -= (uint32_t)nlen;
      if (dirty) c->dirty_pages -= (uint32_t)nlen, dirty_pages_total -= nlen;
      run_clear(c, i, len);
      run_mark(c, i, need, 0);
      if (len + nlen > need) run_free(c, i + need, len + nlen - need, dirty);
    } else {
      ok = false;
    }
  }
  pthread_mutex_unlock(&hak_medium_lock);
  return ok;
}

void hak_medium_purge(void) {
  pthread_mutex_lock(&hak_medium_lock);
  purge_locked();
  hak_chunk_t *c, *next;
  for (c = chunks; c != NULL; c = next) {
    next = c->next;
    if (c->free_pages == HAK_CHUNK_PAGES) chunk_delete(c);
  }
  pthread_mutex_unlock(&hak_medium_lock);
}

size_t hak_medium_chunk_count(void) {
  pthread_mutex_lock(&hak_medium_lock);
  size_t n = chunk_count;
  pthread_mutex_unlock(&hak_medium_lock);
  return n;
}

/* Validator: walks every chunk's runs and checks the boundary tags and counts. */
const char *hak_medium_validate(void) {
  const char *err = NULL;
  size_t dirty_total = 0;
  pthread_mutex_lock(&hak_medium_lock);
  for (hak_chunk_t *c = chunks; c != NULL && err == NULL; c = c->next) {
    size_t freep = 0, dirtyp = 0, i = 0;
    bool prev_free = false;
    while (i < HAK_CHUNK_PAGES) {
      uint16_t e = c->pg[i];
      size_t len = e & PG_LEN;
      if (!(e & PG_HEAD) || len == 0 || i + len > HAK_CHUNK_PAGES) { err = "run head tag missing or bad length"; break; }
      uint16_t t = c->pg[i + len - 1];
      if (!(t & PG_TAIL) || (t & PG_LEN) != len || (t & (PG_FREE | PG_DIRTY)) != (e & (PG_FREE | PG_DIRTY))) { err = "run tail tag does not match head"; break; }
      if (e & PG_FREE) {
        if (prev_free) { err = "two adjacent free runs (not coalesced)"; break; }
        freep += len;
        if (e & PG_DIRTY) dirtyp += len;
      }
      prev_free = (e & PG_FREE) != 0;
      i += len;
    }
    if (err == NULL && freep != c->free_pages) err = "chunk free-page count is wrong";
    if (err == NULL && dirtyp != c->dirty_pages) err = "chunk dirty-page count is wrong";
    if (err == NULL && hak_pagemap_lookup(c->base) != &c->span) err = "page map does not point at chunk";
    dirty_total += c->dirty_pages;
  }
  if (err == NULL && dirty_total != dirty_pages_total) err = "total dirty-page count is wrong";
  pthread_mutex_unlock(&hak_medium_lock);
  return err;
}

/* Statistics: chunks, their live runs (in use), free pages committed or not,
 * residency, and the cumulative counts (reset: taken as the new zero). */
void hak_medium_account(hak_stats_t *st, uint64_t totals[3]) {
  pthread_mutex_lock(&hak_medium_lock);
  for (hak_chunk_t *c = chunks; c != NULL; c = c->next) {
    st->medium_chunks++;
    st->in_use_bytes += (HAK_CHUNK_PAGES - c->free_pages) * HAK_PAGE_SIZE;
    st->medium_in_use_bytes += (HAK_CHUNK_PAGES - c->free_pages) * HAK_PAGE_SIZE;
    st->medium_free_bytes += c->free_pages * HAK_PAGE_SIZE;
    st->medium_dirty_bytes += c->dirty_pages * HAK_PAGE_SIZE;
    st->resident.medium += hak_os_resident(c->base, HAK_CHUNK_SIZE);
  }
  totals[0] = allocs;
  totals[1] = frees;
  totals[2] = alloc_bytes;
  pthread_mutex_unlock(&hak_medium_lock);
}
