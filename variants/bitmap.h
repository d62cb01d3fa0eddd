/* variants/bitmap.h — the bitmap variant.
 *
 * Idea: each slab tracks its free blocks in a two-tier bitmap (a summary word
 * over 64 bitmap words, plus a hint of where the last scan ended); the thread
 * magazine is refilled by batch scans and flushed by setting bits. Free blocks
 * are never written, and a double free reaching a slab is caught exactly.
 * Slabs are mapped one by one, as in mini_magazine.
 *
 * A variant header only sets policy (core/variant.h lists the choices and
 * their defaults); the mechanisms live in core/. */
#ifndef HAK_VARIANT_BITMAP_H
#define HAK_VARIANT_BITMAP_H

#define HAK_VARIANT_NAME "bitmap"

#define HAK_CONFIG_SLAB_BITMAP   1
#define HAK_CONFIG_SUPERSLAB     0
#define HAK_CONFIG_DYNAMIC_FLUSH 0

#endif
