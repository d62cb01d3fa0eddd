/* variants/mini_magazine.h — the mini-magazine variant.
 *
 * Idea: a per-thread magazine (array stack per size class) in front; behind it
 * each slab keeps an intrusive LIFO free list (its mini-magazine) that refills
 * the thread magazine in batches. Slabs are mapped individually (1 or 4 units
 * each); empty slabs go to a bounded shared pool, then back to the OS.
 *
 * A variant header only sets policy constants; the mechanisms live in core/. */
#ifndef HAK_VARIANT_MINI_MAGAZINE_H
#define HAK_VARIANT_MINI_MAGAZINE_H

#define HAK_VARIANT_NAME "mini_magazine"

/* Free blocks of a slab: intrusive LIFO list (0) or two-tier bitmap (1). */
#define HAK_CONFIG_SLAB_BITMAP 0
/* Slabs mapped one by one (0) or carved from 2 MiB SuperSlabs (1). */
#define HAK_CONFIG_SUPERSLAB 0
/* Background scavenger and adaptive caches (dynamic flush): off (0). */
#define HAK_CONFIG_DYNAMIC_FLUSH 0

/* Empty slabs kept in the shared pool before they are unmapped. */
#define HAK_CONFIG_POOL_MAX_BYTES ((size_t)8 << 20)
/* Free medium pages kept dirty (committed) before all are decommitted. */
#define HAK_CONFIG_MEDIUM_DIRTY_MAX_BYTES ((size_t)16 << 20)
/* Large mappings cached after free: count and total bytes. */
#define HAK_CONFIG_LARGE_CACHE_ENTRIES 32
#define HAK_CONFIG_LARGE_CACHE_MAX_BYTES ((size_t)64 << 20)

#endif
