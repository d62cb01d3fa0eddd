/* slab.c — slabs: runs of 1 or 4 units holding blocks of one size class.
 *
 * Free-block bookkeeping of this core is the mini-magazine: each slab keeps an
 * intrusive LIFO free list (s->free) that refills thread magazines in batches,
 * plus a bump index over blocks never handed out, so a fresh slab touches only
 * the pages it hands out. Remote frees wait on s->xfree (remote_free.h) until
 * the owner collects them.
 *
 * Empty slabs go to a shared pool (one list per slab length), reused by any
 * size class; past config_pool_max_bytes they are unmapped. The pool lock
 * (hak_pool_lock) protects the pool lists and nothing else. */
#include <string.h>

#include "internal.h"
#include "remote_free.h"

#define HAK_CLASS_POOLED 0xffu

pthread_mutex_t hak_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_slab_t *pool_head[2];   /* [0]: 1-unit slabs, [1]: 4-unit slabs */
static size_t pool_bytes, pool_count;
_Atomic size_t hak_slab_total;

void hak_slab_init(hak_slab_t *s, unsigned cls) {
  s->span.kind = HAK_SPAN_SLAB;
  s->cls = (uint8_t)cls;
  s->block_size = hak_class_size[cls];
  s->capacity = (uint32_t)(s->units * HAK_UNIT_SIZE / s->block_size);
  s->used = 0;
  s->bump = 0;
  s->free = NULL;
  s->in_full = 0;
  s->next = s->prev = NULL;
  atomic_store_explicit(&s->xfree, NULL, memory_order_relaxed);
}

hak_slab_t *hak_slab_new(unsigned cls, hak_heap_t *owner) {
  unsigned units = hak_class_units[cls];
  size_t bytes = units * HAK_UNIT_SIZE;
  hak_slab_t *s = NULL;
  pthread_mutex_lock(&hak_pool_lock);
  hak_slab_t **head = &pool_head[units == 1 ? 0 : 1];
  if (*head != NULL) {
    s = *head;
    *head = s->next;
    pool_bytes -= bytes;
    pool_count--;
  }
  pthread_mutex_unlock(&hak_pool_lock);
  if (s == NULL) {
    char *base = hak_os_map_aligned(bytes, HAK_UNIT_SIZE);
    if (base == NULL) return NULL;
    s = hak_meta_alloc(sizeof(hak_slab_t));
    s->units = (uint8_t)units;
    s->base = base;
    hak_slab_init(s, cls);
    atomic_store_explicit(&s->owner, owner, memory_order_relaxed);
    hak_pagemap_set(base, bytes, &s->span);
    atomic_fetch_add_explicit(&hak_slab_total, 1, memory_order_relaxed);
    return s;
  }
  hak_slab_init(s, cls);
  atomic_store_explicit(&s->owner, owner, memory_order_release);
  return s;
}

/* Gives an empty slab (used == 0, no owner list) to the pool, or to the OS
 * when the pool is at its bound. */
void hak_slab_release(hak_slab_t *s) {
  size_t bytes = s->units * HAK_UNIT_SIZE;
  atomic_store_explicit(&s->owner, NULL, memory_order_release);
  s->cls = HAK_CLASS_POOLED;
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
  hak_pagemap_set(s->base, bytes, NULL);
  hak_os_unmap(s->base, bytes);
  hak_meta_free(s, sizeof(hak_slab_t));
  atomic_fetch_sub_explicit(&hak_slab_total, 1, memory_order_relaxed);
}

/* Unmaps pooled slabs until at most keep_bytes remain. */
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
    if (s == NULL) return;
    size_t bytes = s->units * HAK_UNIT_SIZE;
    hak_pagemap_set(s->base, bytes, NULL);
    hak_os_unmap(s->base, bytes);
    hak_meta_free(s, sizeof(hak_slab_t));
    atomic_fetch_sub_explicit(&hak_slab_total, 1, memory_order_relaxed);
  }
}

size_t hak_pool_count(void) {
  pthread_mutex_lock(&hak_pool_lock);
  size_t n = pool_count;
  pthread_mutex_unlock(&hak_pool_lock);
  return n;
}

/* Takes up to `want` free blocks: the free list first, then fresh blocks. */
unsigned hak_slab_take(hak_slab_t *s, void **out, unsigned want) {
  unsigned n = 0;
  hak_block_t *b = s->free;
  while (n < want && b != NULL) {
    out[n++] = b;
    b = b->next;
  }
  s->free = b;
  if (n < want && s->bump < s->capacity) {
    unsigned fresh = s->capacity - s->bump;
    if (fresh > want - n) fresh = want - n;
    char *p = s->base + (size_t)s->bump * s->block_size;
    for (unsigned i = 0; i < fresh; i++, p += s->block_size) out[n++] = p;
    s->bump += fresh;
  }
  s->used += n;
  return n;
}

/* Checks that p is the start of a block of s that is out of the slab. */
void hak_slab_check_block(hak_slab_t *s, const void *p, const char *call) {
  size_t off = (size_t)((const char *)p - s->base);
  if (s->cls == HAK_CLASS_POOLED) hak_fatal(call, "double free or invalid pointer", p);
  if (off % s->block_size != 0 || off / s->block_size >= s->bump)
    hak_fatal(call, "invalid pointer", p);
}

/* The same check for a thread that does not own s: it may not read s->bump
 * (the owner moves it), so it checks against the capacity. */
void hak_slab_check_remote(hak_slab_t *s, const void *p, const char *call) {
  size_t off = (size_t)((const char *)p - s->base);
  if (s->cls == HAK_CLASS_POOLED) hak_fatal(call, "double free or invalid pointer", p);
  if (off % s->block_size != 0 || off / s->block_size >= s->capacity)
    hak_fatal(call, "invalid pointer", p);
}

void hak_slab_put(hak_slab_t *s, void *p, const char *call) {
  hak_slab_check_block(s, p, call);
  if (hak_unlikely(s->used == 0)) hak_fatal(call, "double free", p);
  hak_block_t *b = p;
  b->next = s->free;
  s->free = b;
  s->used--;
}

/* Moves the remote frees onto the local free list; returns how many. */
unsigned hak_slab_collect(hak_slab_t *s) {
  hak_block_t *b = hak_xfree_take_all(&s->xfree);
  if (b == NULL) return 0;
  unsigned n = 0;
  hak_block_t *last = b;
  for (;;) {
    n++;
    if (last->next == NULL) break;
    last = last->next;
  }
  if (hak_unlikely(n > s->used)) hak_fatal("free()", "double free detected in slab at", s->base);
  last->next = s->free;
  s->free = b;
  s->used -= n;
  return n;
}

const char *hak_slab_validate(hak_slab_t *s) {
  if (s->span.kind != HAK_SPAN_SLAB) return "span kind is not slab";
  if (s->cls >= HAK_CLASS_COUNT) return "slab is pooled";
  if (s->block_size != hak_class_size[s->cls]) return "block size does not match class";
  if (s->units != hak_class_units[s->cls]) return "slab length does not match class";
  if (s->capacity != s->units * HAK_UNIT_SIZE / s->block_size) return "capacity is wrong";
  if (s->bump > s->capacity) return "bump past capacity";
  if (((uintptr_t)s->base & (HAK_UNIT_SIZE - 1)) != 0) return "slab base not unit aligned";
  for (size_t u = 0; u < s->units; u++)
    if (hak_pagemap_lookup(s->base + u * HAK_UNIT_SIZE) != &s->span) return "page map does not point at slab";
  size_t nfree = 0;
  for (hak_block_t *b = s->free; b != NULL; b = b->next) {
    size_t off = (size_t)((char *)b - s->base);
    if ((char *)b < s->base || off % s->block_size != 0) return "free list holds a misaligned block";
    if (off / s->block_size >= s->bump) return "free list holds a never-used block";
    if (++nfree > s->capacity) return "free list is cyclic or too long";
  }
  size_t nx = 0;
  for (hak_block_t *b = atomic_load(&s->xfree); b != NULL; b = b->next)
    if (++nx > s->capacity) return "remote list is cyclic or too long";
  if (s->used + nfree + (s->capacity - s->bump) != s->capacity)
    return "used + free + unused != capacity (I1)";
  if (nx > s->used) return "more remote frees than blocks in use (I1)";
  return NULL;
}
