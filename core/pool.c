/* pool.c — where slab memory comes from and goes (slab.c takes and gives
 * whole slabs here): the shared pool of empty slabs (one list per slab
 * length: 1 or 4 units), reused by any size class, and behind it fresh
 * memory: a mapping of the slab's own, or units of a 2 MiB SuperSlab
 * (superslab.c, config_superslab), of the calling thread's NUMA node. Past
 * config_pool_max_bytes an empty slab's memory goes back at once: unmapped,
 * or decommitted into its SuperSlab (unmapped when it becomes empty).
 *
 * One lock, hak_pool_lock: the pool lists and the SuperSlabs. */
#include "internal.h"

pthread_mutex_t hak_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_slab_t *pool_head[2];   /* [0]: 1-unit slabs, [1]: 4-unit slabs */
static size_t pool_bytes, pool_count;
_Atomic size_t hak_slab_total;

/* Memory and a descriptor for a slab of `units` units, registered in the page
 * map; NULL when the OS refuses. SuperSlab slabs come from the memory of the
 * given NUMA node. */
static hak_slab_t *slab_map(unsigned units, unsigned node) {
  if (config_superslab) { /* units and page map change together, under the lock */
    pthread_mutex_lock(&hak_pool_lock);
    hak_slab_t *s = hak_superslab_take(units, node);
    if (s != NULL) hak_pagemap_set(s->base, units * HAK_UNIT_SIZE, &s->span, 0);
    pthread_mutex_unlock(&hak_pool_lock);
    if (s == NULL) return NULL;
    atomic_fetch_add_explicit(&hak_slab_total, 1, memory_order_relaxed);
    return s;
  }
  size_t bytes = units * HAK_UNIT_SIZE;
  char *base = hak_os_map_aligned(bytes, bytes); /* aligned to its length (hak_tag_info) */
  if (base == NULL) return NULL;
  hak_slab_t *s = hak_pagemap_reserve(base, bytes) ? hak_meta_alloc(sizeof(hak_slab_t)) : NULL;
  if (s == NULL) {
    hak_os_unmap(base, bytes);
    return NULL;
  }
  s->units = (uint8_t)units;
  s->base = base;
  hak_pagemap_set(base, bytes, &s->span, 0);
  atomic_fetch_add_explicit(&hak_slab_total, 1, memory_order_relaxed);
  return s;
}

/* Gives a slab's memory back: unmapped, or decommitted into its SuperSlab
 * (which is unmapped when it becomes empty). */
static void slab_unmap(hak_slab_t *s) {
  size_t bytes = s->units * HAK_UNIT_SIZE;
  atomic_fetch_sub_explicit(&hak_slab_total, 1, memory_order_relaxed);
  if (config_superslab) {
    pthread_mutex_lock(&hak_pool_lock);
    hak_pagemap_set(s->base, bytes, NULL, 0);
    hak_superslab_put(s);
    pthread_mutex_unlock(&hak_pool_lock);
    return;
  }
  hak_pagemap_set(s->base, bytes, NULL, 0);
  hak_os_unmap(s->base, bytes);
  hak_meta_free(s, sizeof(hak_slab_t));
}

/* NUMA node of a slab's memory: its SuperSlab's (individually mapped slabs
 * are not placed). */
static unsigned slab_node(const hak_slab_t *s) { return config_superslab ? s->ss->node : 0; }

/* A slab of `units` units for the calling thread's node: a pooled one (of
 * that node, with NUMA), or fresh memory; with its descriptor and its
 * page-map entries (tag 0), no class yet. NULL when the OS refuses. */
hak_slab_t *hak_pool_take(unsigned units, unsigned node) {
  size_t bytes = units * HAK_UNIT_SIZE;
  hak_slab_t *s = NULL;
  pthread_mutex_lock(&hak_pool_lock);
  hak_slab_t **link = &pool_head[units == 1 ? 0 : 1];
  if (config_superslab && hak_os_numa_nodes() > 1) /* a pooled slab of this thread's node */
    while (*link != NULL && slab_node(*link) != node) link = &(*link)->next;
  if (*link != NULL) {
    s = *link;
    *link = s->next;
    pool_bytes -= bytes;
    pool_count--;
  }
  pthread_mutex_unlock(&hak_pool_lock);
  if (s == NULL) s = slab_map(units, node);
  return s;
}

/* Empty slab s (no class, no owner) into the pool, or back to the OS when the
 * pool is at its bound. */
void hak_pool_put(hak_slab_t *s) {
  size_t bytes = s->units * HAK_UNIT_SIZE;
  pthread_mutex_lock(&hak_pool_lock);
  if (pool_bytes + bytes <= config_pool_max_bytes) {
    hak_slab_t **head = &pool_head[s->units == 1 ? 0 : 1];
    s->next = *head;
    *head = s;
    pool_bytes += bytes;
    pool_count++;
    pthread_mutex_unlock(&hak_pool_lock);
    return;
  }
  pthread_mutex_unlock(&hak_pool_lock);
  slab_unmap(s);
}

/* Unmaps pooled slabs until at most keep_bytes remain; with nothing to keep,
 * also decommits the SuperSlabs' dirty free units. */
void hak_pool_trim(size_t keep_bytes) {
  for (;;) {
    hak_slab_t *s = NULL;
    pthread_mutex_lock(&hak_pool_lock);
    if (pool_bytes > keep_bytes) {
      int i = pool_head[1] != NULL ? 1 : 0;
      s = pool_head[i];
      pool_head[i] = s->next;
      pool_bytes -= s->units * HAK_UNIT_SIZE;
      pool_count--;
    }
    pthread_mutex_unlock(&hak_pool_lock);
    if (s == NULL) break;
    slab_unmap(s);
  }
  if (config_superslab && keep_bytes == 0) { /* nothing kept: no dirty units either */
    pthread_mutex_lock(&hak_pool_lock);
    hak_superslab_purge();
    pthread_mutex_unlock(&hak_pool_lock);
  }
}

void hak_pool_decay(void) {
  if (!config_superslab) return;
  pthread_mutex_lock(&hak_pool_lock);
  hak_superslab_decay();
  pthread_mutex_unlock(&hak_pool_lock);
}

size_t hak_pool_bytes(void) {
  pthread_mutex_lock(&hak_pool_lock);
  size_t n = pool_bytes;
  pthread_mutex_unlock(&hak_pool_lock);
  return n;
}

size_t hak_pool_count(void) {
  pthread_mutex_lock(&hak_pool_lock);
  size_t n = pool_count;
  pthread_mutex_unlock(&hak_pool_lock);
  return n;
}

/* Validator of the pool (and, in SuperSlab variants, of the SuperSlabs):
 * pooled slabs are empty, ownerless, of the list's length, in the page map,
 * and the pool's counts match its lists. */
const char *hak_pool_validate(void) {
  const char *err = NULL;
  size_t bytes = 0, count = 0;
  pthread_mutex_lock(&hak_pool_lock);
  for (int i = 0; i < 2 && err == NULL; i++)
    for (hak_slab_t *s = pool_head[i]; s != NULL && err == NULL; s = s->next) {
      if (++count > ((size_t)1 << 24)) err = "the pool list is cyclic";
      else if (s->cls != HAK_CLASS_POOLED) err = "a pooled slab has a size class";
      else if (atomic_load_explicit(&s->span.owner, memory_order_relaxed) != NULL) err = "a pooled slab has an owner";
      else if (s->units != (i == 0 ? 1 : 4)) err = "a pooled slab is on the list of another length";
      else if (hak_pagemap_lookup(s->base) != &s->span) err = "the page map does not point at a pooled slab";
      bytes += s->units * HAK_UNIT_SIZE;
    }
  if (err == NULL && (bytes != pool_bytes || count != pool_count)) err = "the pool's counts do not match its lists";
  if (err == NULL && config_superslab) err = hak_superslab_validate();
  pthread_mutex_unlock(&hak_pool_lock);
  return err;
}

/* Statistics: the pooled slabs, and (SuperSlab variants) the SuperSlabs. */
void hak_pool_account(hak_stats_t *st) {
  pthread_mutex_lock(&hak_pool_lock);
  for (int i = 0; i < 2; i++)
    for (hak_slab_t *s = pool_head[i]; s != NULL; s = s->next) {
      st->pooled_slabs++;
      st->pool_bytes += s->units * HAK_UNIT_SIZE;
      st->resident.pool += hak_os_resident(s->base, s->units * HAK_UNIT_SIZE);
    }
  if (config_superslab) hak_superslab_account(st);
  pthread_mutex_unlock(&hak_pool_lock);
}
