/* pagemap.c — the page map: a two-level radix table from 64 KiB unit to the
 * span that owns it. The root (2^11 pointers, 16 KiB) covers the 47-bit user
 * address space, 64 GiB per entry; each leaf has 2^20 entries, one per unit
 * of its 64 GiB. Every root entry points at a leaf: at the start all point at
 * one shared empty leaf (.bss, never written, so it reads as zero pages and
 * costs no memory), and the first span in a 64 GiB range maps a leaf of its
 * own (8 MiB of address space, reserved without commitment, whose pages are
 * touched only where spans are). A root entry holds its leaf's address minus
 * the empty leaf's, so the zeroed root (.bss) already points every entry at
 * the empty leaf: a lookup is two dependent loads with no test between them,
 * works before initialisation, and the root costs no relocation at load. Each entry is a span pointer with the span's
 * tag in its low bits (types.h). Lookups take no lock; leaves are installed with
 * a CAS and never freed, so a lookup never reads freed memory. Mapping a leaf
 * can fail, so a new span's range is reserved (its leaves mapped) before it
 * is set, and setting never fails.
 *
 * Slabs and medium chunks (a few units each) enter every unit they cover; a
 * large range enters its first unit only (large.c), so that registering it
 * costs the same at 1 MiB and at 1 TiB: an address further into a large
 * block looks up no span, and free of it is stopped as an invalid pointer. */
#include "internal.h"

HAK_BSS_LARGE hak_pm_leaf_t hak_pagemap_empty_leaf; /* every entry 0: no span */
_Atomic(intptr_t) hak_pagemap_root[1u << HAK_PM_ROOT_BITS]; /* leaf - &empty leaf */

/* The leaf covering address a, mapped on first use when create is set;
 * NULL when it does not exist (create unset) or cannot be mapped. */
static hak_pm_leaf_t *pagemap_leaf(uintptr_t a, bool create) {
  size_t i = (a >> (HAK_UNIT_SHIFT + HAK_PM_LEAF_BITS)) & ((1u << HAK_PM_ROOT_BITS) - 1);
  uintptr_t zero = (uintptr_t)&hak_pagemap_empty_leaf;
  intptr_t rel = atomic_load_explicit(&hak_pagemap_root[i], memory_order_acquire);
  if (rel != 0) return (hak_pm_leaf_t *)(zero + (uintptr_t)rel);
  if (!create) return NULL;
  hak_pm_leaf_t *fresh = hak_os_map_aligned(sizeof(hak_pm_leaf_t), HAK_UNIT_SIZE);
  if (fresh == NULL) return NULL;
  intptr_t expected = 0;
  if (atomic_compare_exchange_strong_explicit(&hak_pagemap_root[i], &expected, (intptr_t)((uintptr_t)fresh - zero),
                                              memory_order_acq_rel, memory_order_acquire))
    return fresh;
  hak_os_unmap(fresh, sizeof(hak_pm_leaf_t));
  return (hak_pm_leaf_t *)(zero + (uintptr_t)expected);
}

bool hak_pagemap_reserve(const void *base, size_t size) {
  const uintptr_t leaf_span = (uintptr_t)1 << (HAK_UNIT_SHIFT + HAK_PM_LEAF_BITS);
  uintptr_t a = (uintptr_t)base, end = a + size;
  for (; a < end; a = (a | (leaf_span - 1)) + 1) /* one leaf at a time */
    if (pagemap_leaf(a, true) == NULL) return false;
  return true;
}

void hak_pagemap_set(void *base, size_t size, hak_span_t *span, unsigned tag) {
  uintptr_t a = (uintptr_t)base, end = a + size, entry = span == NULL ? 0 : (uintptr_t)span | tag;
  for (; a < end; a += HAK_UNIT_SIZE) {
    hak_pm_leaf_t *leaf = pagemap_leaf(a, false);
    if (leaf == NULL) {
      if (span == NULL) continue; /* nothing to clear */
      hak_fatal("pagemap", "set without a reserved leaf (hakmem bug) at", (void *)a);
    }
    atomic_store_explicit(&(*leaf)[(a >> HAK_UNIT_SHIFT) & ((1u << HAK_PM_LEAF_BITS) - 1)], entry,
                          memory_order_release);
  }
}

/* Statistics: the leaves mapped so far (metadata). */
void hak_pagemap_account(hak_stats_t *st) {
  for (size_t i = 0; i < (1u << HAK_PM_ROOT_BITS); i++) {
    intptr_t rel = atomic_load_explicit(&hak_pagemap_root[i], memory_order_acquire);
    if (rel == 0) continue;
    void *leaf = (void *)((uintptr_t)&hak_pagemap_empty_leaf + (uintptr_t)rel);
    st->metadata_bytes += sizeof(hak_pm_leaf_t);
    st->resident.metadata += hak_os_resident(leaf, sizeof(hak_pm_leaf_t));
  }
}
