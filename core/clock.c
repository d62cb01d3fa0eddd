/* clock.c — the allocator's coarse clock: HAK_TICKS_PER_SECOND ticks a
 * second, advanced by the scavenger thread (scavenger.c) in the variants that
 * have one, read by every layer that ages what it keeps (the magazines'
 * capacities, SuperSlab units, the large cache, the pool). Data only, at the
 * bottom of the core so every level can read it. */
#include "internal.h"

_Atomic uint32_t hak_clock_tick;
