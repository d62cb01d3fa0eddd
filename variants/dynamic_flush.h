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
 * A variant header only sets policy constants; the mechanisms live in core/. */
#ifndef HAK_VARIANT_DYNAMIC_FLUSH_H
#define HAK_VARIANT_DYNAMIC_FLUSH_H

#define HAK_VARIANT_NAME "dynamic_flush"

/* Free blocks of a slab: intrusive LIFO list (0) or two-tier bitmap (1). */
#define HAK_CONFIG_SLAB_BITMAP 0
/* Slabs mapped one by one (0) or carved from 2 MiB SuperSlabs (1). */
#define HAK_CONFIG_SUPERSLAB 0
/* Background scavenger and adaptive caches (dynamic flush): off (0). */
#define HAK_CONFIG_DYNAMIC_FLUSH 1

/* Empty slabs kept in the shared pool before they are unmapped. */
#define HAK_CONFIG_POOL_MAX_BYTES ((size_t)8 << 20)
/* Free medium pages kept dirty (committed) before all are decommitted. */
#define HAK_CONFIG_MEDIUM_DIRTY_MAX_BYTES ((size_t)16 << 20)
/* Large mappings cached after free: count and total bytes. */
#define HAK_CONFIG_LARGE_CACHE_ENTRIES 32
#define HAK_CONFIG_LARGE_CACHE_MAX_BYTES ((size_t)64 << 20)

#endif
