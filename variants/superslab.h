/* variants/superslab.h — the SuperSlab variant.
 *
 * Idea: slabs are carved from 2 MiB-aligned SuperSlabs whose header holds the
 * slabs' descriptors; one mmap serves 32 slabs; empty slabs are reused by any
 * size class, and a SuperSlab whose slabs are all gone goes back to the OS.
 * Free blocks are kept in lists, as in mini_magazine, which it is compared with.
 *
 * A variant header only sets policy constants; the mechanisms live in core/. */
#ifndef HAK_VARIANT_SUPERSLAB_H
#define HAK_VARIANT_SUPERSLAB_H

#define HAK_VARIANT_NAME "superslab"

/* Free blocks of a slab: intrusive LIFO list (0) or two-tier bitmap (1). */
#define HAK_CONFIG_SLAB_BITMAP 0
/* Slabs mapped one by one (0) or carved from 2 MiB SuperSlabs (1). */
#define HAK_CONFIG_SUPERSLAB 1
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
