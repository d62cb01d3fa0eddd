/* remote_free.h — the remote-free stack of a slab: a lock-free multi-producer,
 * single-consumer LIFO.
 *
 * Producers (threads that free a block they do not own) push with one CAS.
 * The consumer (the slab's owner, or the heap adopting it) never pops one
 * block: it takes the whole stack with one atomic exchange. Because no thread
 * ever pops with a CAS, a head that was removed and pushed again (ABA) cannot
 * make a CAS succeed against a stale next pointer: a push only needs the head
 * it read to still be the head, which is exactly what its CAS checks. */
#ifndef HAK_REMOTE_FREE_H
#define HAK_REMOTE_FREE_H

#include "types.h"

static inline void hak_xfree_push(_Atomic(hak_block_t *) *head, hak_block_t *b) {
  hak_block_t *old = atomic_load_explicit(head, memory_order_relaxed);
  do {
    b->next = old;
  } while (!atomic_compare_exchange_weak_explicit(head, &old, b, memory_order_release,
                                                  memory_order_relaxed));
}

/* Pushes a chain first..last (already linked by next) with one CAS: a
 * magazine flush sends each run of one slab's blocks this way. */
static inline void hak_xfree_push_chain(_Atomic(hak_block_t *) *head, hak_block_t *first,
                                        hak_block_t *last) {
  hak_block_t *old = atomic_load_explicit(head, memory_order_relaxed);
  do {
    last->next = old;
  } while (!atomic_compare_exchange_weak_explicit(head, &old, first, memory_order_release,
                                                  memory_order_relaxed));
}

static inline hak_block_t *hak_xfree_take_all(_Atomic(hak_block_t *) *head) {
  if (atomic_load_explicit(head, memory_order_relaxed) == NULL) return NULL;
  return atomic_exchange_explicit(head, NULL, memory_order_acquire);
}

#endif
