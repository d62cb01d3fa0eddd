/* variants/large_mappings.h — hybrid with the large blocks of before.
 *
 * Everything hybrid does, but for the large blocks: a mapping of its own for
 * each, and a cache of freed mappings whose pages move (mremap) into a fresh
 * mapping to make a new block when none fits (core/large.c), instead of runs
 * of reserved arenas reused in place (core/arena.c). The ablation compares it
 * with hybrid: the one difference is HAK_CONFIG_LARGE_ARENA.
 *
 * A variant header only sets policy (core/variant.h lists the choices and
 * their defaults); the mechanisms live in core/. */
#ifndef HAK_VARIANT_LARGE_MAPPINGS_H
#define HAK_VARIANT_LARGE_MAPPINGS_H

#define HAK_VARIANT_NAME "large_mappings"

#define HAK_CONFIG_SLAB_BITMAP   1
#define HAK_CONFIG_SUPERSLAB     1
#define HAK_CONFIG_DYNAMIC_FLUSH 1
#define HAK_CONFIG_TRANSFER_MAX_BYTES ((size_t)4 << 20)
#define HAK_CONFIG_LARGE_ARENA   0

#endif
