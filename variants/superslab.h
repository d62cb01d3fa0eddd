/* variants/superslab.h — the SuperSlab variant.
 *
 * Idea: slabs are carved from 2 MiB-aligned SuperSlabs whose header holds the
 * slabs' descriptors; one mmap serves 32 slabs; empty slabs are reused by any
 * size class, and a SuperSlab whose slabs are all gone goes back to the OS.
 * Free blocks are kept in lists, as in mini_magazine, which it is compared with.
 *
 * A variant header only sets policy (core/variant.h lists the choices and
 * their defaults); the mechanisms live in core/. */
#ifndef HAK_VARIANT_SUPERSLAB_H
#define HAK_VARIANT_SUPERSLAB_H

#define HAK_VARIANT_NAME "superslab"

#define HAK_CONFIG_SLAB_BITMAP   0
#define HAK_CONFIG_SUPERSLAB     1
#define HAK_CONFIG_DYNAMIC_FLUSH 0

#endif
