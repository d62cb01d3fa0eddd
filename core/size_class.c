/* size_class.c — the class tables, generated at compile time from the
 * formulas in size_class.h, and the per-class invariants checked there. */
#include "size_class.h"

HAK_FOR_EACH_CLASS(HAK_CLASS_CHECK)

#define HAK_SIZE_ENTRY(c) HAK_CLASS_SIZE(c),
#define HAK_UNITS_ENTRY(c) HAK_CLASS_UNITS(c),
#define HAK_MAG_ENTRY(c) HAK_CLASS_MAG_CAP(c),

const uint32_t hak_class_size[HAK_CLASS_COUNT] = {HAK_FOR_EACH_CLASS(HAK_SIZE_ENTRY)};

#define HAK_TAG_ENTRY(c) [HAK_CLASS_TAG(c)] = {HAK_CLASS_UNITS(c) * HAK_UNIT_SIZE - 1, HAK_RECIP(HAK_CLASS_SIZE(c))},
const hak_tag_info_t hak_tag_info[HAK_TAG_COUNT] = {HAK_FOR_EACH_CLASS(HAK_TAG_ENTRY)};
const uint8_t hak_class_units[HAK_CLASS_COUNT] = {HAK_FOR_EACH_CLASS(HAK_UNITS_ENTRY)};
const uint16_t hak_class_mag_cap[HAK_CLASS_COUNT] = {HAK_FOR_EACH_CLASS(HAK_MAG_ENTRY)};
