/* variants/mini_magazine.h — the mini-magazine variant.
 *
 * Idea: a per-thread magazine (array stack per size class) in front; behind it
 * each slab keeps an intrusive LIFO free list (its mini-magazine) that refills
 * the thread magazine in batches. Slabs are mapped individually (1 or 4 units
 * each); empty slabs go to a bounded shared pool, then back to the OS.
 *
 * A variant header only sets policy (core/variant.h lists the choices and
 * their defaults); the mechanisms live in core/. */
#ifndef HAK_VARIANT_MINI_MAGAZINE_H
#define HAK_VARIANT_MINI_MAGAZINE_H

#define HAK_VARIANT_NAME "mini_magazine"

#define HAK_CONFIG_SLAB_BITMAP   0
#define HAK_CONFIG_SUPERSLAB     0
#define HAK_CONFIG_DYNAMIC_FLUSH 0

#endif
