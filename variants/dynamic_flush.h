/* variants/dynamic_flush.h — the dynamic-flush variant.
 *
 * Idea: memory that adapts to the workload. A background scavenger (started
 * lazily, restarted in a forked child) watches the allocator's slow-path
 * activity: while busy it halves the empty-slab pool and the large cache once
 * a second; after HAKMEM_IDLE_MS without activity it returns every empty slab,
 * free medium page and cached large mapping to the OS (MADV_DONTNEED or
 * munmap). Magazine capacities grow under heavy allocation and shrink when the
 * rate falls. Slabs keep free lists and are mapped one by one, as in
 * mini_magazine, so free pages inside partly used slabs cannot be returned.
 *
 * A variant header only sets policy (core/variant.h lists the choices and
 * their defaults); the mechanisms live in core/. */
#ifndef HAK_VARIANT_DYNAMIC_FLUSH_H
#define HAK_VARIANT_DYNAMIC_FLUSH_H

#define HAK_VARIANT_NAME "dynamic_flush"

#define HAK_CONFIG_SLAB_BITMAP   0
#define HAK_CONFIG_SUPERSLAB     0
#define HAK_CONFIG_DYNAMIC_FLUSH 1

#endif
