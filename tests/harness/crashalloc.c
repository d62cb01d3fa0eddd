/*
 * crashalloc — a test allocator for the harness: an LD_PRELOAD library whose
 * malloc counts calls and aborts after N of them (N from CRASHALLOC_AFTER,
 * default 20000), so a run under it dies with SIGABRT. Memory itself comes
 * from glibc (__libc_malloc), so every other call may stay glibc's.
 */
#include <stdlib.h>

extern void *__libc_malloc(size_t n);

static long crash_after = -1;
static long calls;

void *malloc(size_t n)
{
    if (crash_after < 0) {
        const char *e = getenv("CRASHALLOC_AFTER");
        crash_after = e && *e ? atol(e) : 20000;
    }
    if (++calls > crash_after) abort();
    return __libc_malloc(n);
}
