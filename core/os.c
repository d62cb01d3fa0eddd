/* os.c — the OS layer: the only file that maps, unmaps or advises memory.
 *
 * Every mapping is a whole number of 64 KiB units aligned to at least a unit.
 * An aligned mapping first tries the first aligned address past the previous
 * one (the kernel usually grants it); otherwise it over-maps by the alignment
 * and trims both ends. Memory returned with hak_os_decommit leaves
 * RSS at once (MADV_DONTNEED), never lingering as LazyFree.
 *
 * For the leak checker (leakcheck.c), this layer can also remember which
 * units it has mapped (hak_os_track_own): a two-level bitmap, one bit per
 * unit, set when a range is mapped and cleared when it is unmapped, so that
 * the checker's scan for pointers skips hakmem's own memory (magazine arrays,
 * descriptors, its tables) and finds only the program's. Off unless the leak
 * checker is on: then one predictable branch per system call. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>

#include "internal.h"

hak_os_counters_t hak_os_counters;
static _Atomic uintptr_t os_hint;

/* ---- the units hakmem mapped (leak checker) ---------------------------------- */
#define OWN_LEAF_BITS 20 /* a leaf: one bit for each of 2^20 units (64 GiB), 128 KiB */
#define OWN_ROOT_BITS (HAK_ADDR_BITS - HAK_UNIT_SHIFT - OWN_LEAF_BITS)
static _Atomic bool own_on;
static _Atomic(_Atomic uint64_t *) own_root[1u << OWN_ROOT_BITS];

/* The leaf of unit u, mapped when create and missing (straight from the
 * kernel: it is the bookkeeping of mappings, not one of them). */
static _Atomic uint64_t *own_leaf(uintptr_t u, bool create) {
  _Atomic(_Atomic uint64_t *) *slot = &own_root[(u >> OWN_LEAF_BITS) & ((1u << OWN_ROOT_BITS) - 1)];
  _Atomic uint64_t *leaf = atomic_load_explicit(slot, memory_order_acquire);
  if (leaf != NULL || !create) return leaf;
  void *fresh = mmap(NULL, (1u << OWN_LEAF_BITS) / 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (fresh == MAP_FAILED) return NULL;
  _Atomic uint64_t *expected = NULL;
  if (atomic_compare_exchange_strong(slot, &expected, (_Atomic uint64_t *)fresh)) return fresh;
  munmap(fresh, (1u << OWN_LEAF_BITS) / 8);
  return expected;
}

static void own_note(const void *p, size_t size, bool mapped) {
  if (!atomic_load_explicit(&own_on, memory_order_relaxed) || size == 0) return;
  uintptr_t first = (uintptr_t)p >> HAK_UNIT_SHIFT, end = ((uintptr_t)p + size - 1) / HAK_UNIT_SIZE + 1;
  for (uintptr_t u = first; u < end; u++) {
    _Atomic uint64_t *leaf = own_leaf(u, mapped);
    if (leaf == NULL) continue; /* no memory for the bit: the scan may read this unit */
    uintptr_t i = u & ((1u << OWN_LEAF_BITS) - 1);
    uint64_t bit = (uint64_t)1 << (i % 64);
    if (mapped) atomic_fetch_or_explicit(&leaf[i / 64], bit, memory_order_relaxed);
    else atomic_fetch_and_explicit(&leaf[i / 64], ~bit, memory_order_relaxed);
  }
}

void hak_os_track_own(void) { atomic_store(&own_on, true); }

bool hak_os_owns(const void *p) {
  uintptr_t u = (uintptr_t)p >> HAK_UNIT_SHIFT;
  _Atomic uint64_t *leaf = own_leaf(u, false);
  if (leaf == NULL) return false;
  uintptr_t i = u & ((1u << OWN_LEAF_BITS) - 1);
  return (atomic_load_explicit(&leaf[i / 64], memory_order_relaxed) >> (i % 64)) & 1;
}

/* Fault injection (test builds, config_fault_injection): mmap calls still to
 * go before the one that fails, or -1; with fail_sticky every later call fails
 * too, until hak_os_fail_after(-1, ...). */
static _Atomic long fail_countdown = -1;
static _Atomic bool fail_sticky;

void hak_os_fail_after(long n, bool sticky) {
  atomic_store(&fail_sticky, sticky);
  atomic_store(&fail_countdown, n);
}

static bool injected_failure(void) {
  long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
  if (n < 0) return false;
  if (n == 0) {
    if (!atomic_load(&fail_sticky)) atomic_store(&fail_countdown, -1);
    return true;
  }
  atomic_store_explicit(&fail_countdown, n - 1, memory_order_relaxed);
  return false;
}

static void *os_mmap(void *hint, size_t size) {
  if (config_fault_injection && injected_failure()) return NULL;
  void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  atomic_fetch_add_explicit(&hak_os_counters.map_calls, 1, memory_order_relaxed);
  return p == MAP_FAILED ? NULL : p;
}

static void os_munmap_raw(void *p, size_t size) {
  if (size == 0) return;
  munmap(p, size);
  atomic_fetch_add_explicit(&hak_os_counters.unmap_calls, 1, memory_order_relaxed);
}

void *hak_os_map_aligned(size_t size, size_t align) {
  if (align < HAK_UNIT_SIZE) align = HAK_UNIT_SIZE;
  if (size == 0 || size > HAK_MAX_REQUEST || size + align < size) return NULL;
  int saved = errno;
  uintptr_t hint = atomic_load_explicit(&os_hint, memory_order_relaxed);
  char *p = hint ? os_mmap((void *)hak_align_up(hint, align), size) : NULL; /* aligned, if it is free */
  if (p != NULL && ((uintptr_t)p & (align - 1)) != 0) {
    os_munmap_raw(p, size);
    p = NULL;
  }
  if (p == NULL) {
    char *raw = os_mmap(NULL, size + align);
    if (raw == NULL) {
      errno = ENOMEM;
      return NULL;
    }
    p = (char *)hak_align_up((uintptr_t)raw, align);
    os_munmap_raw(raw, (size_t)(p - raw));
    os_munmap_raw(p + size, (size_t)(raw + size + align - (p + size)));
  }
  atomic_store_explicit(&os_hint, (uintptr_t)(p + size), memory_order_relaxed);
  atomic_fetch_add_explicit(&hak_os_counters.mapped_bytes, size, memory_order_relaxed);
  own_note(p, size, true);
  errno = saved;
  return p;
}

void hak_os_unmap(void *p, size_t size) {
  os_munmap_raw(p, size);
  own_note(p, size, false);
  atomic_fetch_sub_explicit(&hak_os_counters.mapped_bytes, size, memory_order_relaxed);
  atomic_fetch_add_explicit(&hak_os_counters.released_bytes, size, memory_order_relaxed);
}

void hak_os_decommit(void *p, size_t size) {
  if (size == 0) return;
  int saved = errno;
  madvise(p, size, MADV_DONTNEED);
  atomic_fetch_add_explicit(&hak_os_counters.decommit_calls, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&hak_os_counters.released_bytes, size, memory_order_relaxed);
  errno = saved;
}

/* Grows a mapping in place (never moves it); false when the next addresses are taken. */
bool hak_os_grow_in_place(void *p, size_t old_size, size_t new_size) {
  int saved = errno;
  void *r = mremap(p, old_size, new_size, 0);
  errno = saved;
  if (r == MAP_FAILED) return false;
  atomic_fetch_add_explicit(&hak_os_counters.mapped_bytes, new_size - old_size, memory_order_relaxed);
  own_note((char *)p + old_size, new_size - old_size, true);
  return true;
}

/* Moves the pages of [src, src + size) to dst, whose dst_size bytes
 * (>= size) we have mapped, without copying or faulting them: the range
 * becomes one kernel mapping of dst_size bytes at dst, its first size bytes
 * src's pages, the rest fresh (mremap grows the moved mapping into the
 * space). src must lie in one kernel mapping. False when the kernel refuses;
 * nothing changed then. */
bool hak_os_move(void *src, size_t size, void *dst, size_t dst_size) {
  int saved = errno;
  void *r = mremap(src, size, dst_size, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  errno = saved;
  if (r == MAP_FAILED) return false;
  atomic_fetch_add_explicit(&hak_os_counters.move_calls, 1, memory_order_relaxed);
  own_note(src, size, false); /* dst was mapped (and noted) already */
  atomic_fetch_sub_explicit(&hak_os_counters.mapped_bytes, size, memory_order_relaxed); /* dst was mapped */
  return true;
}

/* Bytes of [p, p + size) resident in memory now (mincore); p page-aligned. */
size_t hak_os_resident(const void *p, size_t size) {
  unsigned char vec[4096];
  size_t pages = size / HAK_PAGE_SIZE, resident = 0;
  int saved = errno;
  for (size_t done = 0; done < pages;) {
    size_t n = pages - done < sizeof vec ? pages - done : sizeof vec;
    if (mincore((char *)p + done * HAK_PAGE_SIZE, n * HAK_PAGE_SIZE, vec) != 0) break;
    for (size_t i = 0; i < n; i++) resident += vec[i] & 1;
    done += n;
  }
  errno = saved;
  return resident * HAK_PAGE_SIZE;
}

/* The process's resident bytes (/proc/self/statm), or 0 when unreadable. No
 * allocation: open, read, close. */
size_t hak_os_process_rss(void) {
  int saved = errno;
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0) close(fd);
  errno = saved;
  if (n <= 0) return 0;
  buf[n] = 0;
  const char *q = buf;
  while (*q != ' ' && *q != 0) q++; /* size, then resident */
  size_t pages = 0;
  for (q++; *q >= '0' && *q <= '9'; q++) pages = pages * 10 + (size_t)(*q - '0');
  return pages * HAK_PAGE_SIZE;
}

void hak_os_shrink(void *p, size_t old_size, size_t new_size) {
  hak_os_unmap((char *)p + new_size, old_size - new_size);
}
