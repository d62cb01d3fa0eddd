/* variants/hybrid.h — the flagship: every idea together.
 *
 * Bitmap slabs as the control plane (which blocks are free, exact double-free
 * detection at the slab, free blocks never written), thread magazines refilled
 * by batch scans as the data plane, slabs carved from 2 MiB SuperSlabs, and
 * dynamic flush: because free blocks of a bitmap slab hold no data, the idle
 * scavenger can also decommit the free pages of partly used slabs; and a
 * transfer cache, so that what one thread frees of another's blocks reaches
 * the next allocating thread without a trip through the slabs; and large
 * blocks reused in place, as runs of reserved arenas (core/arena.c; the
 * variant large_mappings is hybrid without them).
 *
 * A variant header only sets policy (core/variant.h lists the choices and
 * their defaults); the mechanisms live in core/. */
#ifndef HAK_VARIANT_HYBRID_H
#define HAK_VARIANT_HYBRID_H

#define HAK_VARIANT_NAME "hybrid"

#define HAK_CONFIG_SLAB_BITMAP   1
#define HAK_CONFIG_SUPERSLAB     1
#define HAK_CONFIG_DYNAMIC_FLUSH 1
/* Blocks freed by threads that do not own their slab go between magazines
 * whole (core/transfer.c), up to this many bytes of them. */
#define HAK_CONFIG_TRANSFER_MAX_BYTES ((size_t)4 << 20)
/* Large blocks below 256 MiB as runs of 1 GiB arenas, reused in place. */
#define HAK_CONFIG_LARGE_ARENA   1

#endif
