/* pagemap.c — the page map: a two-level radix table from 64 KiB unit to the
 * span that owns it. The root (2^15 pointers, in .bss, touched lazily) covers
 * the 47-bit user address space; each leaf covers 4 GiB with 2^16 entries and
 * is mapped on first use (512 KiB of address space, touched only where used).
 * Lookups are two acquire loads and take no lock; leaves are installed with a
 * CAS and never freed, so a lookup never reads freed memory. Mapping a leaf
 * can fail, so a new span's range is reserved (its leaves mapped) before it
 * is set, and setting never fails. */
#include "internal.h"

_Atomic(hak_span_t *) *_Atomic hak_pagemap_root[1u << HAK_PM_ROOT_BITS];

/* The leaf covering address a, mapped on first use when create is set;
 * NULL when it does not exist (create unset) or cannot be mapped. */
static _Atomic(hak_span_t *) *pagemap_leaf(uintptr_t a, bool create) {
  size_t i = (a >> (HAK_UNIT_SHIFT + HAK_PM_LEAF_BITS)) & ((1u << HAK_PM_ROOT_BITS) - 1);
  _Atomic(hak_span_t *) *leaf = atomic_load_explicit(&hak_pagemap_root[i], memory_order_acquire);
  if (leaf != NULL || !create) return leaf;
  size_t bytes = sizeof(hak_span_t *) << HAK_PM_LEAF_BITS;
  _Atomic(hak_span_t *) *fresh = hak_os_map_aligned(bytes, HAK_UNIT_SIZE);
  if (fresh == NULL) return NULL;
  _Atomic(hak_span_t *) *expected = NULL;
  if (atomic_compare_exchange_strong_explicit(&hak_pagemap_root[i], &expected, fresh,
                                              memory_order_acq_rel, memory_order_acquire))
    return fresh;
  hak_os_unmap(fresh, bytes);
  return expected;
}

bool hak_pagemap_reserve(const void *base, size_t size) {
  uintptr_t a = (uintptr_t)base, end = a + size;
  for (; a < end; a += HAK_UNIT_SIZE)
    if (pagemap_leaf(a, true) == NULL) return false;
  return true;
}

void hak_pagemap_set(void *base, size_t size, hak_span_t *span) {
  uintptr_t a = (uintptr_t)base, end = a + size;
  for (; a < end; a += HAK_UNIT_SIZE) {
    _Atomic(hak_span_t *) *leaf = pagemap_leaf(a, false);
    if (leaf == NULL) {
      if (span == NULL) continue; /* nothing to clear */
      hak_fatal("pagemap", "set without a reserved leaf (hakmem bug) at", (void *)a);
    }
    atomic_store_explicit(&leaf[(a >> HAK_UNIT_SHIFT) & ((1u << HAK_PM_LEAF_BITS) - 1)], span,
                          memory_order_release);
  }
}
