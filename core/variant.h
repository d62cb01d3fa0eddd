/* variant.h — the interface between the core and a variant.
 *
 * A variant is one header in variants/ (built with `make VARIANT=<name>`),
 * included here. It names itself and chooses policy; the mechanisms are all
 * in core/, selected by these constants (tested as ordinary typed constants,
 * config_* in internal.h, so every path compiles whatever the variant):
 *
 *   HAK_VARIANT_NAME                   its name, returned by hak_variant()
 *   HAK_CONFIG_SLAB_BITMAP    (must)   free blocks of a slab: intrusive LIFO
 *                                      list (0) or two-tier bitmap (1)
 *   HAK_CONFIG_SUPERSLAB      (must)   slabs mapped one by one (0) or carved
 *                                      from 2 MiB SuperSlabs (1)
 *   HAK_CONFIG_DYNAMIC_FLUSH  (must)   background scavenger, idle release and
 *                                      adaptive magazine capacity (1) or not (0)
 *   HAK_CONFIG_POOL_MAX_BYTES          empty slabs kept for reuse before they go
 *                                      back to the OS (default 8 MiB)
 *   HAK_CONFIG_MEDIUM_DIRTY_MAX_BYTES  free medium pages kept committed before
 *                                      they are decommitted (default 16 MiB)
 *   HAK_CONFIG_SUPERSLAB_DIRTY_MAX_BYTES  free SuperSlab units kept committed
 *                                      before they are decommitted (default 16 MiB)
 *   HAK_CONFIG_LARGE_CACHE_ENTRIES     freed large ranges cached (default 64)
 *   HAK_CONFIG_LARGE_CACHE_MAX_BYTES   ... and their total size (default 64 MiB; with
 *                                      dynamic flush, that plus the bytes live in large blocks)
 *   HAK_CONFIG_LARGE_ARENA             large blocks below 256 MiB as runs of reserved
 *                                      arenas, reused in place (1, arena.c), or
 *                                      mappings of their own and the large cache (0, default;
 *                                      hybrid: 1)
 *   HAK_CONFIG_TRANSFER_MAX_BYTES      free blocks the transfer cache between thread
 *                                      magazines may hold (default 0: no transfer cache)
 */
#ifndef HAK_VARIANT_H
#define HAK_VARIANT_H

#include HAK_VARIANT_HEADER

#if !defined(HAK_VARIANT_NAME) || !defined(HAK_CONFIG_SLAB_BITMAP) || \
    !defined(HAK_CONFIG_SUPERSLAB) || !defined(HAK_CONFIG_DYNAMIC_FLUSH)
#error "a variant must define HAK_VARIANT_NAME, HAK_CONFIG_SLAB_BITMAP, HAK_CONFIG_SUPERSLAB and HAK_CONFIG_DYNAMIC_FLUSH"
#endif

/* The checked build (make CHECK=1, -DHAK_CHECK=1) of a variant is a build of
 * its own, named "<variant>-check" (hak_variant(), the harness, build/). */
#ifndef HAK_CHECK
#define HAK_CHECK 0
#endif
#if HAK_CHECK
#define HAK_BUILD_NAME HAK_VARIANT_NAME "-check"
#else
#define HAK_BUILD_NAME HAK_VARIANT_NAME
#endif

#ifndef HAK_CONFIG_POOL_MAX_BYTES
#define HAK_CONFIG_POOL_MAX_BYTES ((size_t)8 << 20)
#endif
#ifndef HAK_CONFIG_MEDIUM_DIRTY_MAX_BYTES
#define HAK_CONFIG_MEDIUM_DIRTY_MAX_BYTES ((size_t)16 << 20)
#endif
#ifndef HAK_CONFIG_SUPERSLAB_DIRTY_MAX_BYTES
#define HAK_CONFIG_SUPERSLAB_DIRTY_MAX_BYTES ((size_t)16 << 20)
#endif
#ifndef HAK_CONFIG_LARGE_CACHE_ENTRIES
#define HAK_CONFIG_LARGE_CACHE_ENTRIES 64
#endif
#ifndef HAK_CONFIG_LARGE_ARENA
#define HAK_CONFIG_LARGE_ARENA 0
#endif
#ifndef HAK_CONFIG_TRANSFER_MAX_BYTES
#define HAK_CONFIG_TRANSFER_MAX_BYTES 0
#endif
#ifndef HAK_CONFIG_LARGE_CACHE_MAX_BYTES
#define HAK_CONFIG_LARGE_CACHE_MAX_BYTES ((size_t)64 << 20)
#endif

#endif
