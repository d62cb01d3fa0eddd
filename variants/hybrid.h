/* variants/hybrid.h — the flagship: every idea together.
 *
 * Bitmap slabs as the control plane (which blocks are free, exact double-free
 * detection at the slab, free blocks never written), thread magazines refilled
 * by batch scans as the data plane, slabs carved from 2 MiB SuperSlabs, and
 * dynamic flush: because free blocks of a bitmap slab hold no data, the idle
 * scavenger can also decommit the free pages of partly used slabs.
 *
 * A variant header only sets policy constants; the mechanisms live in core/. */
#ifndef HAK_VARIANT_HYBRID_H
#define HAK_VARIANT_HYBRID_H

#define HAK_VARIANT_NAME "hybrid"

/* Free blocks of a slab: intrusive LIFO list (0) or two-tier bitmap (1). */
#define HAK_CONFIG_SLAB_BITMAP 1
/* Slabs mapped one by one (0) or carved from 2 MiB SuperSlabs (1). */
#define HAK_CONFIG_SUPERSLAB 1
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
