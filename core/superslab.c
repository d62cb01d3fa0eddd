/* superslab.c — SuperSlabs: 2 MiB-aligned regions of 32 units from which
 * slabs of 1 or 4 units are carved (variants with config_superslab).
 *
 * Unit 0 of a SuperSlab holds its header: the descriptors of its slabs
 * (slabs[u] is the slab that starts at unit u), so a SuperSlab is one
 * mapping with nothing to allocate beside it, and its slabs' descriptors go
 * when it goes. Units 1..31 hold slabs (a 4-unit slab starts at a multiple of
 * 4, so it is aligned to its length). One mmap serves up to 31 slabs.
 *
 * A slab given back returns its units to the SuperSlab as dirty (still
 * committed). Without dynamic flush, a SuperSlab whose slab units are all
 * free is unmapped at once, and when the dirty units of all SuperSlabs pass
 * config_superslab_dirty_max they are decommitted (MADV_DONTNEED, in runs).
 * With dynamic flush, freed units and empty SuperSlabs stay committed while
 * the program is busy, for its next slabs, and the scavenger gives back what
 * has not been touched for SS_DECAY_TICKS (hak_superslab_decay): an empty
 * SuperSlab is unmapped, a partly used one has its dirty units decommitted.
 * hak_superslab_purge (hak_flush, the idle scavenger) gives back everything
 * at once. A program freeing a burst thus pays no system call while it frees.
 *
 * NUMA (os.c): each SuperSlab belongs to the node of the thread that mapped
 * it, its memory bound there; a slab for a thread on node n comes from a
 * SuperSlab of node n (ss_list[n]), a new one when they are all full. On a
 * machine with one node everything is node 0. With huge pages on, a
 * SuperSlab (2 MiB, 2 MiB-aligned) is advised as one huge page.
 *
 * Called with hak_pool_lock held (slab.c). */
#include "internal.h"
#include "list.h"

static hak_superslab_t *ss_list[HAK_NUMA_MAX_NODES]; /* per node: SuperSlabs with at least one free slab unit */
static hak_superslab_t *ss_full;  /* SuperSlabs with none */
static size_t dirty_units;        /* free units still committed, all SuperSlabs */

/* Units that hold slabs: all but unit 0, the header. */
static const uint32_t SLAB_UNITS = 0xfffffffeu;
_Static_assert(HAK_SUPERSLAB_UNITS == 32, "a SuperSlab's unit masks are 32 bits, one per unit");
_Static_assert(sizeof(hak_superslab_t) <= HAK_UNIT_SIZE, "the header fits unit 0");
/* Dynamic flush: a SuperSlab whose units have not changed for this many
 * scavenger ticks (one second) gives its free memory back. */
#define SS_DECAY_TICKS HAK_TICKS_PER_SECOND

/* The mask of n adjacent units, n <= 31 (a slab is 1 or 4 units; a run of
 * dirty units lies within units 1..31). */
static uint32_t units_mask(unsigned n) { return (1u << n) - 1; }

static void ss_touch(hak_superslab_t *ss) { ss->touched_tick = atomic_load_explicit(&hak_clock_tick, memory_order_relaxed); }

/* First run of `units` free units at a multiple of `units`, or -1. */
static int ss_find(const hak_superslab_t *ss, unsigned units) {
  uint32_t want = units_mask(units);
  for (unsigned u = units; u + units <= HAK_SUPERSLAB_UNITS; u += units) /* unit 0 is the header */
    if (((ss->free_units >> u) & want) == want) return (int)u;
  return -1;
}

/* A fresh SuperSlab of node's memory (its header written into unit 0), or NULL. */
static hak_superslab_t *ss_map(unsigned node) {
  char *base = hak_os_map_aligned(HAK_SUPERSLAB_SIZE, HAK_SUPERSLAB_SIZE);
  if (base == NULL) return NULL;
  if (!hak_pagemap_reserve(base, HAK_SUPERSLAB_SIZE)) {
    hak_os_unmap(base, HAK_SUPERSLAB_SIZE);
    return NULL;
  }
  hak_os_bind(base, HAK_SUPERSLAB_SIZE, node); /* before the header's first touch */
  hak_os_advise_huge(base, HAK_SUPERSLAB_SIZE);
  hak_superslab_t *ss = (hak_superslab_t *)base; /* fresh from the OS: zero */
  ss->base = base;
  ss->free_units = SLAB_UNITS;
  ss->node = node;
  hak_list_push(&ss_list[node], ss);
  return ss;
}

static void ss_unmap(hak_superslab_t *ss) {
  hak_list_remove(&ss_list[ss->node], ss);
  dirty_units -= (size_t)__builtin_popcount(ss->dirty_units);
  hak_os_unmap(ss->base, HAK_SUPERSLAB_SIZE);
}

hak_slab_t *hak_superslab_take(unsigned units, unsigned node) {
  hak_superslab_t *ss;
  int u = -1;
  if (node >= HAK_NUMA_MAX_NODES) node = 0;
  for (ss = ss_list[node]; ss != NULL; ss = ss->next)
    if ((u = ss_find(ss, units)) >= 0) break;
  if (ss == NULL) {
    if ((ss = ss_map(node)) == NULL) return NULL;
    u = ss_find(ss, units);
  }
  uint32_t mask = units_mask(units) << u;
  dirty_units -= (size_t)__builtin_popcount(ss->dirty_units & mask);
  ss->dirty_units &= ~mask;
  ss->free_units &= ~mask;
  ss_touch(ss);
  if (ss->free_units == 0) {
    hak_list_remove(&ss_list[node], ss);
    hak_list_push(&ss_full, ss);
  }
  hak_slab_t *s = &ss->slabs[u];
  s->ss = ss;
  s->units = (uint8_t)units;
  s->base = ss->base + (size_t)u * HAK_UNIT_SIZE;
  return s;
}

/* Decommits the dirty units of ss, one madvise per run of adjacent units. */
static void ss_decommit(hak_superslab_t *ss) {
  uint32_t d = ss->dirty_units;
  while (d != 0) {
    unsigned first = (unsigned)__builtin_ctz(d), len = 0;
    while (first + len < HAK_SUPERSLAB_UNITS && (d >> (first + len) & 1)) len++;
    hak_os_decommit(ss->base + (size_t)first * HAK_UNIT_SIZE, (size_t)len * HAK_UNIT_SIZE);
    d &= ~(units_mask(len) << first);
  }
  dirty_units -= (size_t)__builtin_popcount(ss->dirty_units);
  ss->dirty_units = 0;
}

/* Everything free goes back: empty SuperSlabs unmapped, dirty units decommitted. */
void hak_superslab_purge(void) {
  for (unsigned node = 0; node < HAK_NUMA_MAX_NODES; node++)
    for (hak_superslab_t *ss = ss_list[node], *next; ss != NULL; ss = next) {
      next = ss->next;
      if (ss->free_units == SLAB_UNITS) ss_unmap(ss);
      else ss_decommit(ss);
    }
}

/* Dynamic flush, while busy: the same for SuperSlabs untouched for SS_DECAY_TICKS. */
void hak_superslab_decay(void) {
  uint32_t now = atomic_load_explicit(&hak_clock_tick, memory_order_relaxed);
  for (unsigned node = 0; node < HAK_NUMA_MAX_NODES; node++)
    for (hak_superslab_t *ss = ss_list[node], *next; ss != NULL; ss = next) {
      next = ss->next;
      if (now - ss->touched_tick < SS_DECAY_TICKS) continue;
      if (ss->free_units == SLAB_UNITS) ss_unmap(ss);
      else if (ss->dirty_units != 0) ss_decommit(ss);
    }
}

void hak_superslab_put(hak_slab_t *s) {
  hak_superslab_t *ss = s->ss;
  unsigned u = (unsigned)((size_t)(s->base - ss->base) / HAK_UNIT_SIZE);
  uint32_t mask = units_mask(s->units) << u;
  if (ss->free_units == 0) {
    hak_list_remove(&ss_full, ss);
    hak_list_push(&ss_list[ss->node], ss);
  }
  ss->free_units |= mask;
  ss->dirty_units |= mask;
  dirty_units += s->units;
  ss_touch(ss);
  if (config_dynamic_flush) return; /* the scavenger gives it back once unused (above) */
  if (ss->free_units == SLAB_UNITS) ss_unmap(ss);
  else if (dirty_units * HAK_UNIT_SIZE > config_superslab_dirty_max) hak_superslab_purge();
}

/* Validator (pool lock held): each SuperSlab on the right list (ss_full holds
 * exactly those with no free unit), dirty units a subset of free units, and
 * every unit against the unit map: a free unit is in no span, a used unit
 * belongs to the slab that starts at a multiple of its length at or below it
 * (its descriptor in slabs[]) and the page map points at that slab; the sum
 * of dirty units matches the global count. */
const char *hak_superslab_validate(void) {
  size_t dirty = 0;
  for (unsigned list = 0; list <= HAK_NUMA_MAX_NODES; list++) {
    bool full = list == HAK_NUMA_MAX_NODES;
    size_t n = 0;
    for (hak_superslab_t *ss = full ? ss_full : ss_list[list], *prev = NULL; ss != NULL; prev = ss, ss = ss->next) {
      if (++n > ((size_t)1 << 24)) return "a SuperSlab list is cyclic";
      if (ss->prev != prev) return "a SuperSlab list has a broken back link";
      if ((ss->free_units == 0) != full) return "a SuperSlab is on the wrong list for its free units";
      if (ss->node >= HAK_NUMA_MAX_NODES || (!full && ss->node != list)) return "a SuperSlab is on another node's list";
      if ((ss->free_units & ~SLAB_UNITS) != 0) return "a SuperSlab's header unit is marked free";
      if (!config_dynamic_flush && ss->free_units == SLAB_UNITS) return "an empty SuperSlab is still mapped";
      if ((ss->dirty_units & ~ss->free_units) != 0) return "a SuperSlab unit is dirty but not free";
      if (((uintptr_t)ss->base & (HAK_SUPERSLAB_SIZE - 1)) != 0 || (char *)ss != ss->base)
        return "a SuperSlab is not aligned to its size, or its header is not in its unit 0";
      dirty += (size_t)__builtin_popcount(ss->dirty_units);
      if (hak_pagemap_lookup(ss->base) != NULL) return "a SuperSlab's header unit is in the page map";
      for (unsigned u = 1; u < HAK_SUPERSLAB_UNITS;) {
        char *unit = ss->base + (size_t)u * HAK_UNIT_SIZE;
        if (ss->free_units >> u & 1) {
          if (hak_pagemap_lookup(unit) != NULL) return "a free SuperSlab unit is still in the page map";
          u++;
          continue;
        }
        hak_slab_t *s = &ss->slabs[u];
        if (s->ss != ss || s->base != unit || (s->units != 1 && s->units != 4) || u % s->units != 0 ||
            u + s->units > HAK_SUPERSLAB_UNITS)
          return "a used SuperSlab unit does not start a slab described in its header";
        for (unsigned k = 0; k < s->units; k++) {
          if (ss->free_units >> (u + k) & 1) return "a slab covers a free SuperSlab unit";
          if (hak_pagemap_lookup(unit + (size_t)k * HAK_UNIT_SIZE) != &s->span)
            return "the page map does not point a SuperSlab unit at its slab";
        }
        u += s->units;
      }
    }
  }
  if (dirty != dirty_units) return "the SuperSlabs' dirty-unit count does not match their maps";
  return NULL;
}

/* Statistics (pool lock held): each SuperSlab's header unit (metadata) and
 * its units in no slab, committed or not. */
void hak_superslab_account(hak_stats_t *st) {
  for (unsigned list = 0; list <= HAK_NUMA_MAX_NODES; list++)
    for (hak_superslab_t *ss = list == HAK_NUMA_MAX_NODES ? ss_full : ss_list[list]; ss != NULL; ss = ss->next) {
      st->superslabs++;
      st->metadata_bytes += HAK_UNIT_SIZE;
      st->resident.metadata += hak_os_resident(ss->base, HAK_UNIT_SIZE);
      st->superslab_free_bytes += (size_t)__builtin_popcount(ss->free_units) * HAK_UNIT_SIZE;
      st->superslab_dirty_bytes += (size_t)__builtin_popcount(ss->dirty_units) * HAK_UNIT_SIZE;
      for (unsigned u = 1; u < HAK_SUPERSLAB_UNITS; u++)
        if (ss->free_units >> u & 1) st->resident.superslab_free += hak_os_resident(ss->base + (size_t)u * HAK_UNIT_SIZE, HAK_UNIT_SIZE);
    }
}
