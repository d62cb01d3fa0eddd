/* superslab.c — SuperSlabs: 2 MiB-aligned regions of 32 units from which
 * slabs of 1 or 4 units are carved (variants with config_superslab).
 *
 * The descriptors of a SuperSlab's slabs live in its header (slabs[u] is the
 * slab that starts at unit u), so the slabs of one region share one metadata
 * block and a pointer's slab is found from the region base and the unit index.
 * A slab given back returns its units to the SuperSlab as dirty (still
 * committed): a SuperSlab whose units are all free is unmapped with one
 * munmap, and when the dirty units of all SuperSlabs pass
 * config_superslab_dirty_max they are decommitted (MADV_DONTNEED, in runs) at
 * once, as is everything dirty on hak_superslab_purge() (hak_flush, the idle
 * scavenger). A program freeing a burst in allocation order thus returns it
 * one SuperSlab (32 slabs) per system call. One mmap serves 32 slabs.
 *
 * Called with hak_pool_lock held (slab.c). */
#include "internal.h"
#include "list.h"

static hak_superslab_t *ss_list;  /* SuperSlabs with at least one free unit */
static hak_superslab_t *ss_full;  /* SuperSlabs with none */
static size_t dirty_units;        /* free units still committed, all SuperSlabs */

static const uint32_t ALL_UNITS = 0xffffffffu;
_Static_assert(HAK_SUPERSLAB_UNITS == 32, "a SuperSlab's unit masks are 32 bits, one per unit");
/* The mask of n adjacent units, n <= 31: a slab is 1 or 4 units, and a run of
 * dirty units is shorter than a SuperSlab (one whose units are all free is
 * unmapped at once, so a mapped one always has a unit in use). */
static uint32_t units_mask(unsigned n) { return (1u << n) - 1; }

/* First run of `units` free units at a multiple of `units`, or -1. */
static int ss_find(const hak_superslab_t *ss, unsigned units) {
  uint32_t want = units_mask(units);
  for (unsigned u = 0; u + units <= HAK_SUPERSLAB_UNITS; u += units)
    if (((ss->free_units >> u) & want) == want) return (int)u;
  return -1;
}

hak_slab_t *hak_superslab_take(unsigned units) {
  hak_superslab_t *ss;
  int u = -1;
  for (ss = ss_list; ss != NULL; ss = ss->next)
    if ((u = ss_find(ss, units)) >= 0) break;
  if (ss == NULL) {
    char *base = hak_os_map_aligned(HAK_SUPERSLAB_SIZE, HAK_SUPERSLAB_SIZE);
    if (base == NULL) return NULL;
    ss = hak_pagemap_reserve(base, HAK_SUPERSLAB_SIZE) ? hak_meta_alloc(sizeof(hak_superslab_t)) : NULL;
    if (ss == NULL) {
      hak_os_unmap(base, HAK_SUPERSLAB_SIZE);
      return NULL;
    }
    ss->base = base;
    ss->free_units = ALL_UNITS;
    hak_list_push(&ss_list, ss);
    u = 0;
  }
  uint32_t mask = units_mask(units) << u;
  dirty_units -= (size_t)__builtin_popcount(ss->dirty_units & mask);
  ss->dirty_units &= ~mask;
  ss->free_units &= ~mask;
  if (ss->free_units == 0) {
    hak_list_remove(&ss_list, ss);
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

void hak_superslab_purge(void) {
  for (hak_superslab_t *ss = ss_list; ss != NULL; ss = ss->next) ss_decommit(ss);
}

void hak_superslab_put(hak_slab_t *s) {
  hak_superslab_t *ss = s->ss;
  unsigned u = (unsigned)((size_t)(s->base - ss->base) / HAK_UNIT_SIZE);
  uint32_t mask = units_mask(s->units) << u;
  if (ss->free_units == 0) {
    hak_list_remove(&ss_full, ss);
    hak_list_push(&ss_list, ss);
  }
  ss->free_units |= mask;
  ss->dirty_units |= mask;
  dirty_units += s->units;
  if (ss->free_units == ALL_UNITS) {
    hak_list_remove(&ss_list, ss);
    dirty_units -= (size_t)__builtin_popcount(ss->dirty_units);
    hak_os_unmap(ss->base, HAK_SUPERSLAB_SIZE);
    hak_meta_free(ss, sizeof(hak_superslab_t));
  } else if (dirty_units * HAK_UNIT_SIZE > config_superslab_dirty_max) {
    hak_superslab_purge();
  }
}


/* Validator (pool lock held): each SuperSlab on the right list (ss_full holds
 * exactly those with no free unit), dirty units a subset of free units, and
 * every unit against the unit map: a free unit is in no span, a used unit
 * belongs to the slab that starts at a multiple of its length at or below it
 * (its descriptor in slabs[]) and the page map points at that slab; the sum
 * of dirty units matches the global count. */
const char *hak_superslab_validate(void) {
  size_t dirty = 0;
  for (int full = 0; full < 2; full++) {
    size_t n = 0;
    for (hak_superslab_t *ss = full ? ss_full : ss_list, *prev = NULL; ss != NULL; prev = ss, ss = ss->next) {
      if (++n > ((size_t)1 << 24)) return "a SuperSlab list is cyclic";
      if (ss->prev != prev) return "a SuperSlab list has a broken back link";
      if ((ss->free_units == 0) != (full == 1)) return "a SuperSlab is on the wrong list for its free units";
      if (ss->free_units == ALL_UNITS) return "an empty SuperSlab is still mapped";
      if ((ss->dirty_units & ~ss->free_units) != 0) return "a SuperSlab unit is dirty but not free";
      if (((uintptr_t)ss->base & (HAK_SUPERSLAB_SIZE - 1)) != 0) return "a SuperSlab is not aligned to its size";
      dirty += (size_t)__builtin_popcount(ss->dirty_units);
      for (unsigned u = 0; u < HAK_SUPERSLAB_UNITS;) {
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
