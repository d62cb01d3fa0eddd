/* os.c — the OS layer: the only file that maps, unmaps or advises memory,
 * and the only one that knows the machine's huge pages and NUMA nodes.
 *
 * Every mapping is a whole number of 64 KiB units aligned to at least a unit.
 * An aligned mapping first tries the first aligned address past the previous
 * one (the kernel usually grants it); otherwise it over-maps by the alignment
 * and trims both ends. Memory returned with hak_os_decommit leaves
 * RSS at once (MADV_DONTNEED), never lingering as LazyFree.
 *
 * Overcommit: the memory of large blocks (hak_os_map_accounted) is charged to
 * the system's commit count, as glibc's mmap'd chunks are, so the kernel's
 * overcommit policy (vm.overcommit_memory; by default its heuristic refuses a
 * single request beyond RAM + swap) turns down what it cannot back, and
 * malloc fails at once with ENOMEM. Everything else is mapped MAP_NORESERVE:
 * page-map leaves (8 MiB reserved, touched only where spans are), slabs,
 * SuperSlabs, medium chunks, descriptors and heaps, all a few MiB at most.
 * mremap keeps a mapping's charge: a large range grown or moved (hak_os_move
 * of cached large ranges only) is charged for its new length.
 *
 * Transparent huge pages: with the thp option on and the system's THP mode
 * `always` or `madvise` (/sys/kernel/mm/transparent_hugepage/enabled, read
 * once at initialisation), SuperSlabs and large blocks of 2 MiB or more are
 * mapped 2 MiB-aligned and advised MADV_HUGEPAGE (hak_os_huge_align,
 * hak_os_advise_huge). Off by default: measured in README ("Huge pages").
 *
 * NUMA: the topology (which node each CPU belongs to) is read once from
 * /sys/devices/system/node/node<N>/cpulist. On a machine with more than one
 * node, hak_os_node() is the node of the CPU the calling thread runs on, and
 * hak_os_bind() asks the kernel (mbind, MPOL_PREFERRED) to take a range's
 * pages from a node. Tests hand the layer a simulated topology
 * (hak_os_topology_simulate): then binding is recorded per node
 * (hak_os_counters.bound_bytes) instead of asked of the kernel.
 *
 * For the leak checker (leakcheck.c), this layer can also remember which
 * units it has mapped (hak_os_track_own): a two-level bitmap, one bit per
 * unit, set when a range is mapped and cleared when it is unmapped, so that
 * the checker's scan for pointers skips hakmem's own memory (magazine arrays,
 * descriptors, its tables) and finds only the program's, and knows an
 * address inside a large block past its first unit (which the page map does
 * not hold: large.c) for hakmem's. A root entry whose 64 GiB are all mapped
 * by hakmem holds OWN_ALL instead of a leaf, and bits are set a word at a
 * time, so that noting a huge mapping costs a few stores, not one per unit.
 * Off unless the leak checker is on: then one predictable branch per system
 * call. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "internal.h"

hak_os_counters_t hak_os_counters;
static _Atomic uintptr_t os_hint;

/* ---- the units hakmem mapped (leak checker) ---------------------------------- */
#define OWN_LEAF_BITS 20 /* a leaf: one bit for each of 2^20 units (64 GiB), 128 KiB */
#define OWN_ROOT_BITS (HAK_ADDR_BITS - HAK_UNIT_SHIFT - OWN_LEAF_BITS)
#define OWN_LEAF_UNITS ((uintptr_t)1 << OWN_LEAF_BITS)
#define OWN_LEAF_BYTES (OWN_LEAF_UNITS / 8)
#define OWN_ALL ((_Atomic uint64_t *)(uintptr_t)1) /* a root entry: every unit of its range is hakmem's */
static _Atomic bool own_on;
HAK_BSS_LARGE static _Atomic(_Atomic uint64_t *) own_root[1u << OWN_ROOT_BITS];

/* A fresh leaf, every bit clear or set (straight from the kernel: it is the
 * bookkeeping of mappings, not one of them); NULL when there is no memory. */
static _Atomic uint64_t *own_leaf_new(bool all) {
  void *leaf = mmap(NULL, OWN_LEAF_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (leaf == MAP_FAILED) return NULL;
  if (all) memset(leaf, 0xff, OWN_LEAF_BYTES);
  return leaf;
}

/* Sets or clears the bits of units [first, end) of one leaf (leaf indices),
 * a word at a time. */
static void own_bits(_Atomic uint64_t *leaf, uintptr_t first, uintptr_t end, bool set) {
  while (first < end) {
    uintptr_t w = first / 64, stop = (w + 1) * 64 < end ? (w + 1) * 64 : end;
    uint64_t mask = (stop - first == 64 ? ~(uint64_t)0 : (((uint64_t)1 << (stop - first)) - 1)) << (first % 64);
    if (set) atomic_fetch_or_explicit(&leaf[w], mask, memory_order_relaxed);
    else atomic_fetch_and_explicit(&leaf[w], ~mask, memory_order_relaxed);
    first = stop;
  }
}

/* Notes units [first, end), all in the range of root entry r, as mapped or
 * not. whole: they are the entry's whole range. */
static void own_note_root(size_t r, uintptr_t first, uintptr_t end, bool whole, bool mapped) {
  _Atomic(_Atomic uint64_t *) *slot = &own_root[r];
  for (;;) {
    _Atomic uint64_t *leaf = atomic_load_explicit(slot, memory_order_acquire), *fresh;
    if (mapped) {
      if (leaf == OWN_ALL) return;
      if (leaf == NULL) {
        fresh = whole ? OWN_ALL : own_leaf_new(false);
        if (fresh == NULL) return; /* no memory for the bits: the scan may read these units */
        if (!atomic_compare_exchange_strong(slot, &leaf, fresh)) {
          if (fresh != OWN_ALL) munmap((void *)fresh, OWN_LEAF_BYTES);
          continue;
        }
        if (whole) return;
        leaf = fresh;
      }
    } else {
      if (leaf == NULL) return;
      if (leaf == OWN_ALL) { /* the range is no longer all hakmem's: a leaf of set bits, then clear */
        fresh = whole ? NULL : own_leaf_new(true); /* no memory: forget the range (the scan may read it) */
        if (!atomic_compare_exchange_strong(slot, &leaf, fresh)) {
          if (fresh != NULL) munmap((void *)fresh, OWN_LEAF_BYTES);
          continue;
        }
        if (fresh == NULL) return;
        leaf = fresh;
      }
    }
    own_bits(leaf, first & (OWN_LEAF_UNITS - 1), ((end - 1) & (OWN_LEAF_UNITS - 1)) + 1, mapped);
    return;
  }
}

static void own_note(const void *p, size_t size, bool mapped) {
  if (!atomic_load_explicit(&own_on, memory_order_relaxed) || size == 0) return;
  uintptr_t u = (uintptr_t)p >> HAK_UNIT_SHIFT, end = ((uintptr_t)p + size - 1) / HAK_UNIT_SIZE + 1;
  while (u < end) { /* one root entry's range at a time */
    uintptr_t range_end = (u | (OWN_LEAF_UNITS - 1)) + 1, stop = range_end < end ? range_end : end;
    bool whole = (u & (OWN_LEAF_UNITS - 1)) == 0 && stop == range_end;
    own_note_root((u >> OWN_LEAF_BITS) & ((1u << OWN_ROOT_BITS) - 1), u, stop, whole, mapped);
    u = stop;
  }
}

void hak_os_track_own(void) { atomic_store(&own_on, true); }

bool hak_os_owns(const void *p) {
  uintptr_t u = (uintptr_t)p >> HAK_UNIT_SHIFT;
  _Atomic uint64_t *leaf = atomic_load_explicit(&own_root[(u >> OWN_LEAF_BITS) & ((1u << OWN_ROOT_BITS) - 1)],
                                                memory_order_acquire);
  if (leaf == NULL || leaf == OWN_ALL) return leaf == OWN_ALL;
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

/* accounted: charged to the commit count (no MAP_NORESERVE), so that the
 * kernel's overcommit policy may refuse it. */
static void *os_mmap(void *hint, size_t size, bool accounted) {
  if (config_fault_injection && injected_failure()) return NULL;
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | (accounted ? 0 : MAP_NORESERVE);
  void *p = mmap(hint, size, PROT_READ | PROT_WRITE, flags, -1, 0);
  atomic_fetch_add_explicit(&hak_os_counters.map_calls, 1, memory_order_relaxed);
  return p == MAP_FAILED ? NULL : p;
}

static void os_munmap_raw(void *p, size_t size) {
  if (size == 0) return;
  munmap(p, size);
  atomic_fetch_add_explicit(&hak_os_counters.unmap_calls, 1, memory_order_relaxed);
}

static void *map_aligned(size_t size, size_t align, bool accounted) {
  if (align < HAK_UNIT_SIZE) align = HAK_UNIT_SIZE;
  if (size == 0 || size > HAK_MAX_REQUEST || size + align < size) return NULL;
  int saved = errno;
  uintptr_t hint = atomic_load_explicit(&os_hint, memory_order_relaxed);
  char *p = hint ? os_mmap((void *)hak_align_up(hint, align), size, accounted) : NULL; /* aligned, if it is free */
  if (p != NULL && ((uintptr_t)p & (align - 1)) != 0) {
    os_munmap_raw(p, size);
    p = NULL;
  }
  if (p == NULL) {
    char *raw = os_mmap(NULL, size + align, accounted);
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

void *hak_os_map_aligned(size_t size, size_t align) { return map_aligned(size, align, false); }
void *hak_os_map_accounted(size_t size, size_t align) { return map_aligned(size, align, true); }

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
  atomic_fetch_add_explicit(&hak_os_counters.decommitted_bytes, size, memory_order_relaxed);
  atomic_fetch_add_explicit(&hak_os_counters.released_bytes, size, memory_order_relaxed);
  errno = saved;
}

/* Maps [p, p + size) afresh (MAP_FIXED, reading as zero): the hole an arena
 * run leaves when its pages move away (arena.c). */
bool hak_os_map_fixed(void *p, size_t size) {
  int saved = errno;
  void *r = mmap(p, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  atomic_fetch_add_explicit(&hak_os_counters.map_calls, 1, memory_order_relaxed);
  errno = saved;
  if (r == MAP_FAILED) return false;
  atomic_fetch_add_explicit(&hak_os_counters.mapped_bytes, size, memory_order_relaxed);
  own_note(p, size, true);
  return true;
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
  atomic_fetch_add_explicit(&hak_os_counters.moved_bytes, size, memory_order_relaxed);
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

/* ---- transparent huge pages ----------------------------------------------------- */
static bool thp_on; /* the option is on and the system's THP mode allows advice */

/* The system's THP mode: the bracketed word of the sysfs file; "never" when
 * the file cannot be read (no THP in this kernel). */
static hak_thp_mode_t thp_mode_read(void) {
  char buf[128];
  int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0) close(fd);
  if (n <= 0) return HAK_THP_NEVER;
  buf[n] = 0;
  for (char *q = buf; *q != 0; q++) {
    if (*q != '[') continue;
    if (q[1] == 'a' && q[2] == 'l') return HAK_THP_ALWAYS;
    if (q[1] == 'm') return HAK_THP_MADVISE;
    return HAK_THP_NEVER;
  }
  return HAK_THP_NEVER;
}
static hak_thp_mode_t thp_mode = HAK_THP_NEVER;

hak_thp_mode_t hak_os_thp_mode(void) { return thp_mode; }
bool hak_os_thp_on(void) { return thp_on; }

size_t hak_os_huge_align(size_t size, size_t align) {
  return thp_on && size >= HAK_HUGE_PAGE_SIZE && align < HAK_HUGE_PAGE_SIZE ? HAK_HUGE_PAGE_SIZE : align;
}

void hak_os_advise_huge(void *p, size_t size) {
  if (!thp_on || size < HAK_HUGE_PAGE_SIZE) return;
  int saved = errno;
  if (madvise(p, size, MADV_HUGEPAGE) == 0) atomic_fetch_add_explicit(&hak_os_counters.huge_advised_bytes, size, memory_order_relaxed);
  errno = saved;
}

/* ---- NUMA ------------------------------------------------------------------------- */
static unsigned numa_nodes = 1;                  /* 1: no NUMA placement at all */
static uint8_t cpu_node[HAK_NUMA_MAX_CPUS];     /* node of each CPU */
static bool numa_simulated;                      /* a test's topology: record, never mbind */

/* Reads "0-3,8,10-11" into cpu_node[] as node `node`; false when unreadable. */
static bool cpulist_read(unsigned node, uint8_t *map) {
  char path[64] = "/sys/devices/system/node/node";
  size_t k = 29;
  char digits[8];
  int nd = 0;
  unsigned v = node;
  do digits[nd++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  while (nd > 0) path[k++] = digits[--nd];
  const char *tail = "/cpulist";
  while (*tail) path[k++] = *tail++;
  path[k] = 0;
  char buf[512];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0) close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  for (const char *q = buf; *q >= '0' && *q <= '9';) {
    unsigned lo = 0, hi;
    while (*q >= '0' && *q <= '9') lo = lo * 10 + (unsigned)(*q++ - '0');
    hi = lo;
    if (*q == '-') {
      hi = 0;
      for (q++; *q >= '0' && *q <= '9'; q++) hi = hi * 10 + (unsigned)(*q - '0');
    }
    for (unsigned c = lo; c <= hi && c < HAK_NUMA_MAX_CPUS; c++) map[c] = (uint8_t)node;
    if (*q == ',') q++;
  }
  return true;
}

static void topology_read(void) {
  unsigned nodes = 0;
  for (unsigned node = 0; node < HAK_NUMA_MAX_NODES; node++)
    if (cpulist_read(node, cpu_node)) nodes = node + 1;
  numa_nodes = nodes > 1 ? nodes : 1;
}

void hak_os_topology_simulate(unsigned nodes, const uint8_t *map, unsigned ncpus) {
  if (nodes == 0) { /* back to the machine's own */
    numa_simulated = false;
    topology_read();
    return;
  }
  for (unsigned c = 0; c < HAK_NUMA_MAX_CPUS; c++) cpu_node[c] = c < ncpus && map[c] < nodes ? map[c] : 0;
  numa_nodes = nodes < HAK_NUMA_MAX_NODES ? nodes : HAK_NUMA_MAX_NODES;
  numa_simulated = true;
}

unsigned hak_os_numa_nodes(void) { return numa_nodes; }

unsigned hak_os_node(void) {
  if (numa_nodes <= 1) return 0;
  int cpu = sched_getcpu();
  return cpu >= 0 && (unsigned)cpu < HAK_NUMA_MAX_CPUS ? cpu_node[cpu] : 0;
}

void hak_os_bind(void *p, size_t size, unsigned node) {
  if (numa_nodes <= 1 || node >= numa_nodes) return;
  atomic_fetch_add_explicit(&hak_os_counters.bound_bytes[node], size, memory_order_relaxed);
  if (numa_simulated) return;
  int saved = errno;
  unsigned long mask[(HAK_NUMA_MAX_NODES + 63) / 64] = {0};
  mask[node / 64] = 1ul << (node % 64);
  (void)syscall(SYS_mbind, p, size, 1 /* MPOL_PREFERRED */, mask, (unsigned long)HAK_NUMA_MAX_NODES + 1, 0ul);
  errno = saved;
}

void hak_os_init(void) {
  thp_mode = thp_mode_read();
  thp_on = hak_option(HAK_OPT_THP) != 0 && thp_mode != HAK_THP_NEVER;
  if (!numa_simulated) topology_read();
}
