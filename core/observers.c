/* observers.c — who watches the calls, and the per-thread state that tells
 * them what a call is: the observers' word (hooks.c, profile.c and
 * leakcheck.c set their bits; any bit set closes the threads' gates, heap.c,
 * so every call takes a slow path that tells them: malloc_api.c, observe.c),
 * the busy mark of calls that are hakmem's own, and the source location of a
 * HAK_TRACE_SOURCE call. Data only, at the bottom of the core so every level
 * can read it. */
#include "internal.h"

_Atomic unsigned hak_observers = HAK_OBS_INIT;
hak_tls bool hak_track_busy;
hak_tls const char *hak_src_file;
hak_tls int hak_src_line;
