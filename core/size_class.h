/* size_class.h — small-object size classes.
 *
 * Class 0 serves malloc(0) (16 bytes, kept apart so that the arithmetic below
 * needs no branch); classes 1..64 are 16-byte steps up to 1 KiB; classes
 * 65..84 are four per doubling up to HAK_SMALL_MAX (32 KiB), so internal
 * fragmentation stays under 25 %. The mapping size -> class is arithmetic,
 * the table class -> size is generated at compile time from the same formula,
 * and the _Static_asserts below check every class's invariants at build time. */
#ifndef HAK_SIZE_CLASS_H
#define HAK_SIZE_CLASS_H

#include "types.h"

/* Size of class c, as an integer constant expression. */
#define HAK_CLASS_SIZE(c)                                                        \
  ((c) == 0 ? 16u                                                                \
   : (c) <= 64 ? 16u * (unsigned)(c)                                             \
   : (1u << (10 + ((c) - 65) / 4)) + (((c) - 65) % 4 + 1) * (1u << (8 + ((c) - 65) / 4)))

/* Class of size n (n <= HAK_SMALL_MAX), as an integer constant expression. */
#define HAK_CLASS_OF(n)                                                          \
  ((n) <= 1024 ? (unsigned)(((n) + 15) >> 4)                                     \
   : 65u + (unsigned)(63 - __builtin_clzll((unsigned long long)(n) - 1) - 10) * 4u + \
         (unsigned)((((unsigned long long)(n) - 1) >> (63 - __builtin_clzll((unsigned long long)(n) - 1) - 2)) & 3u))

/* Slab geometry: classes up to 8 KiB use one-unit (64 KiB) slabs, larger ones
 * four units, so that every slab holds at least 7 blocks. */
#define HAK_CLASS_UNITS(c) (HAK_CLASS_SIZE(c) <= 8192u ? 1u : 4u)

/* Magazine capacity: about 32 KiB of blocks, between 8 and 256 blocks.
 * Measured on hybrid: a 64 KiB budget held more memory (xthread peak RSS
 * 3.4-3.6 MiB vs 2.9-3.1) for no speed; a 16 KiB budget with at most 128
 * blocks saved a little more memory but made mir's bursts of frees spill to
 * the slabs (25 % more allocator instructions). */
#define HAK_CLASS_MAG_CAP(c)                                                     \
  ((32768u / HAK_CLASS_SIZE(c)) > 256u ? 256u                                    \
   : (32768u / HAK_CLASS_SIZE(c)) < 8u ? 8u : (32768u / HAK_CLASS_SIZE(c)))

/* Invariants of every class, checked by the compiler. */
#define HAK_CLASS_CHECK(c)                                                       \
  _Static_assert(HAK_CLASS_SIZE(c) % 16 == 0, "class sizes are multiples of 16"); \
  _Static_assert((c) == 0 || HAK_CLASS_OF(HAK_CLASS_SIZE(c)) == (c), "size(c) maps back to c"); \
  _Static_assert((c) == 0 || (c) == HAK_CLASS_COUNT - 1 ||                      \
                 HAK_CLASS_OF(HAK_CLASS_SIZE(c) + 1) == (c) + 1, "size(c)+1 maps to c+1"); \
  _Static_assert((c) == 0 || (c) == HAK_CLASS_COUNT - 1 ||                      \
                 HAK_CLASS_SIZE((c) + 1) > HAK_CLASS_SIZE(c), "sizes increase"); \
  _Static_assert((c) < 65 || (c) == HAK_CLASS_COUNT - 1 ||                      \
                 HAK_CLASS_SIZE((c) + 1) * 4 <= HAK_CLASS_SIZE(c) * 5, "steps above 1 KiB are at most 25 %"); \
  _Static_assert((HAK_CLASS_UNITS(c) * HAK_UNIT_SIZE) / HAK_CLASS_SIZE(c) >= 7, "a slab holds at least 7 blocks");

#define HAK_REP4(m, b)  m(b) m((b) + 1) m((b) + 2) m((b) + 3)
#define HAK_REP16(m, b) HAK_REP4(m, b) HAK_REP4(m, (b) + 4) HAK_REP4(m, (b) + 8) HAK_REP4(m, (b) + 12)
#define HAK_FOR_EACH_CLASS(m)                                                    \
  HAK_REP16(m, 0) HAK_REP16(m, 16) HAK_REP16(m, 32) HAK_REP16(m, 48) HAK_REP16(m, 64) \
  HAK_REP4(m, 80) m(84)

_Static_assert(HAK_CLASS_SIZE(HAK_CLASS_COUNT - 1) == HAK_SMALL_MAX, "last class is HAK_SMALL_MAX");
_Static_assert(HAK_CLASS_OF(HAK_SMALL_MAX) == HAK_CLASS_COUNT - 1, "HAK_SMALL_MAX is the last class");
_Static_assert(HAK_CLASS_OF(0) == 0 && HAK_CLASS_OF(1) == 1 && HAK_CLASS_OF(1025) == 65, "boundaries");

/* What free's fast path needs of a class, by tag (types.h): mask gives a
 * block's offset in its slab (slabs are aligned to their length), recip is
 * the block size's 64-bit reciprocal (internal.h). Tag 0 and tags past the
 * last class: zero, never used (their magazines never have room). */
typedef struct hak_tag_info_s {
  uint64_t mask;
  uint64_t recip;
} hak_tag_info_t;
#define HAK_RECIP(size) (UINT64_MAX / (size) + 1)
extern const hak_tag_info_t hak_tag_info[HAK_TAG_COUNT];

extern const uint32_t hak_class_size[HAK_CLASS_COUNT];
extern const uint8_t  hak_class_units[HAK_CLASS_COUNT];
extern const uint16_t hak_class_mag_cap[HAK_CLASS_COUNT];

/* Class of a small size (n <= HAK_SMALL_MAX). */
static inline unsigned hak_size_class(size_t n) {
  if (n <= 1024) return (unsigned)((n + 15) >> 4);
  size_t m = n - 1;
  unsigned e = 63u - (unsigned)__builtin_clzll(m);
  return 65u + (e - 10u) * 4u + (unsigned)((m >> (e - 2u)) & 3u);
}

#endif
