/* variants/arena.h — hybrid, with large blocks reused in place.
 *
 * Everything hybrid does, but for the large blocks below 256 MiB: instead of
 * a mapping each and a cache of freed mappings whose pages move (mremap) to
 * make a new block, runs of address space reserved in 1 GiB arenas, reused
 * where they are, merged with free neighbours by address, their pages given
 * back by madvise after a second unused or when the dirty bytes pass the
 * cache's bound (core/arena.c). The ablation compares it with hybrid: the
 * one difference is HAK_CONFIG_LARGE_ARENA.
 *
 * A variant header only sets policy (core/variant.h lists the choices and
 * their defaults); the mechanisms live in core/. */
#ifndef HAK_VARIANT_ARENA_H
#define HAK_VARIANT_ARENA_H

#define HAK_VARIANT_NAME "arena"

#define HAK_CONFIG_SLAB_BITMAP   1
#define HAK_CONFIG_SUPERSLAB     1
#define HAK_CONFIG_DYNAMIC_FLUSH 1
#define HAK_CONFIG_TRANSFER_MAX_BYTES ((size_t)4 << 20)
#define HAK_CONFIG_LARGE_ARENA   1

#endif
