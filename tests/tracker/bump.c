/* bump.c - libtracker_bump.so, a test allocator for the tracker's
 * long-run test (tests/tracker.sh): put behind the tracker, it hands out
 * every block at a new address (64-byte steps through a 1 GiB reservation
 * that is never touched by it; free does nothing), so that a run of
 * millions of blocks gives the tracker millions of distinct pointers, as a
 * long-running program's heap does, without the memory. Blocks of up to
 * 64 bytes; larger requests take several steps. Not an allocator for
 * anything else.
 */
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define STEP 64
#define RESERVE ((size_t)1 << 30)

static _Atomic size_t g_next;
static char *g_base;

static void *take(size_t n, size_t align)
{
    if (!g_base) {
        void *m = mmap(NULL, RESERVE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        char *expected = NULL;
        if (m == MAP_FAILED)
            return NULL;
        if (!atomic_compare_exchange_strong((_Atomic(char *) *)&g_base, &expected, (char *)m))
            munmap(m, RESERVE);
    }
    if (align < STEP)
        align = STEP;
    size_t steps = (n + align - 1) / STEP + 1;
    size_t off = atomic_fetch_add(&g_next, steps * STEP) % (RESERVE - steps * STEP - align);
    uintptr_t p = ((uintptr_t)g_base + off + align - 1) & ~(uintptr_t)(align - 1);
    return (void *)p;
}

__attribute__((visibility("default"))) void *malloc(size_t n) { return take(n, STEP); }
__attribute__((visibility("default"))) void free(void *p) { (void)p; }
__attribute__((visibility("default"))) void *calloc(size_t k, size_t n)
{
    size_t b;
    if (__builtin_mul_overflow(k, n, &b))
        return NULL;
    void *p = take(b, STEP);
    return p ? memset(p, 0, b) : NULL;
}
__attribute__((visibility("default"))) void *realloc(void *p, size_t n)
{
    void *q = take(n, STEP);
    if (q && p)
        memcpy(q, p, n); /* the old block's size is unknown; the reservation is readable */
    return q;
}
__attribute__((visibility("default"))) int posix_memalign(void **out, size_t a, size_t n)
{
    void *p = take(n, a);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}
__attribute__((visibility("default"))) void *aligned_alloc(size_t a, size_t n) { return take(n, a); }
__attribute__((visibility("default"))) void *memalign(size_t a, size_t n) { return take(n, a); }
__attribute__((visibility("default"))) size_t malloc_usable_size(void *p) { return p ? STEP : 0; }
