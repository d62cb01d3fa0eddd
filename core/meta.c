/* meta.c — memory for descriptors (slab descriptors, medium chunks, large
 * descriptors, heaps), taken from the OS and never from the blocks we serve.
 * Size-segregated free lists over 128-byte granules (span descriptors are
 * HAK_SPAN_ALIGN-aligned: the page map tags their pointers); blocks above 4 KiB get
 * their own mapping. One lock (hak_meta_lock), last in the lock order. */
#include <string.h>

#include "internal.h"

#define META_GRANULE HAK_SPAN_ALIGN /* span descriptors carry a tag in their low bits */
#define META_SMALL_MAX 4096
#define META_AREA (HAK_UNIT_SIZE * 4)

pthread_mutex_t hak_meta_lock = PTHREAD_MUTEX_INITIALIZER;
static void *meta_free[META_SMALL_MAX / META_GRANULE + 1];
static char *meta_bump, *meta_end;
/* The areas, for statistics: each area's first granule links to the previous. */
static char *last_area;
static _Atomic size_t big_bytes; /* blocks with their own mapping */

void *hak_meta_alloc(size_t size) {
  size = hak_align_up(size ? size : 1, META_GRANULE);
  if (size > META_SMALL_MAX) {
    void *big = hak_os_map_aligned(hak_align_up(size, HAK_UNIT_SIZE), HAK_UNIT_SIZE);
    if (big != NULL) atomic_fetch_add(&big_bytes, hak_align_up(size, HAK_UNIT_SIZE));
    return big;
  }
  size_t k = size / META_GRANULE;
  pthread_mutex_lock(&hak_meta_lock);
  void *p = meta_free[k];
  if (p != NULL) {
    meta_free[k] = *(void **)p;
    pthread_mutex_unlock(&hak_meta_lock);
    memset(p, 0, size);
    return p;
  }
  if (meta_bump == NULL || (size_t)(meta_end - meta_bump) < size) {
    char *area = hak_os_map_aligned(META_AREA, HAK_UNIT_SIZE);
    if (area == NULL) {
      pthread_mutex_unlock(&hak_meta_lock);
      return NULL;
    }
    *(char **)area = last_area;
    last_area = area;
    meta_bump = area + META_GRANULE;
    meta_end = area + META_AREA;
  }
  p = meta_bump;
  meta_bump += size;
  pthread_mutex_unlock(&hak_meta_lock);
  return p; /* fresh from the OS: already zero */
}

void hak_meta_free(void *p, size_t size) {
  size = hak_align_up(size ? size : 1, META_GRANULE);
  if (size > META_SMALL_MAX) {
    hak_os_unmap(p, hak_align_up(size, HAK_UNIT_SIZE));
    atomic_fetch_sub(&big_bytes, hak_align_up(size, HAK_UNIT_SIZE));
    return;
  }
  size_t k = size / META_GRANULE;
  pthread_mutex_lock(&hak_meta_lock);
  *(void **)p = meta_free[k];
  meta_free[k] = p;
  pthread_mutex_unlock(&hak_meta_lock);
}

/* Statistics: the areas and the blocks with a mapping of their own. */
void hak_meta_account(hak_stats_t *st) {
  pthread_mutex_lock(&hak_meta_lock);
  for (char *a = last_area; a != NULL; a = *(char **)a) {
    st->metadata_bytes += META_AREA;
    st->resident.metadata += hak_os_resident(a, META_AREA);
  }
  pthread_mutex_unlock(&hak_meta_lock);
  st->metadata_bytes += atomic_load(&big_bytes); /* residency walked only for the arenas' tables (arena.c) */
}
