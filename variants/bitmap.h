/* variants/bitmap.h — the bitmap variant.
 *
 * Idea: each slab tracks its free blocks in a two-tier bitmap (a summary word
 * over 64 bitmap words, plus a hint of where the last scan ended); the thread
 * magazine is refilled by batch scans and flushed by setting bits. Free blocks
 * are never written, and a double free reaching a slab is caught exactly.
 * Slabs are mapped one by one, as in mini_magazine.
 *
 * A variant header only sets policy constants; the mechanisms live in core/. */
#ifndef HAK_VARIANT_BITMAP_H
#define HAK_VARIANT_BITMAP_H

#define HAK_VARIANT_NAME "bitmap"

/* Free blocks of a slab: intrusive LIFO list (0) or two-tier bitmap (1). */
#define HAK_CONFIG_SLAB_BITMAP 1
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
