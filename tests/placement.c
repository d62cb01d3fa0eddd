/* placement.c — the OS layer's placement of memory, linked with the core's
 * sources (prefixed API only):
 *
 *   placement numa   NUMA: with a simulated two-node topology handed to the
 *                    OS layer, slabs for a thread on node n come from
 *                    SuperSlabs of node n, whose memory was bound to n; the
 *                    pool gives a thread only slabs of its node; with the
 *                    machine's own topology (one node here) nothing is bound.
 *   placement thp    run with HAKMEM_THP=off (the default): nothing advised.
 *   placement thp-on run with HAKMEM_THP=on: large blocks of 2 MiB or more
 *                    are 2 MiB-aligned and advised MADV_HUGEPAGE (the "hg"
 *                    flag in /proc/self/smaps), and so are SuperSlabs;
 *                    exit 77 (skipped) when the system's THP mode is never.
 *
 * The simulated topology maps every CPU to one node, so the test does not
 * depend on which CPU the thread runs on. */
#include <string.h>

#include "check.h"
#include "hakmem.h"
#include "internal.h"

#define SKIPPED 77

static void simulate_all_on(unsigned node) {
  uint8_t map[HAK_NUMA_MAX_CPUS];
  memset(map, (int)node, sizeof map);
  hak_os_topology_simulate(2, map, HAK_NUMA_MAX_CPUS);
}

static size_t bound(unsigned node) { return atomic_load(&hak_os_counters.bound_bytes[node]); }

static void test_numa(void) {
  unsigned cls = hak_size_class(96);
  if (!config_superslab) {
    /* Individually mapped slabs are not placed: nothing is bound either way. */
    simulate_all_on(1);
    size_t before = bound(1);
    hak_slab_t *s = hak_slab_new(cls, NULL);
    CHECK(s != NULL && bound(1) == before, "without SuperSlabs no slab memory is bound (%zu bytes)", bound(1) - before);
    if (s != NULL) hak_slab_release(s);
    hak_os_topology_simulate(0, NULL, 0);
    return;
  }
  hak_os_topology_simulate(0, NULL, 0);
  CHECK(hak_os_numa_nodes() == 1, "this machine has one node (%u)", hak_os_numa_nodes());
  size_t before0 = bound(0);
  hak_slab_t *plain = hak_slab_new(cls, NULL);
  CHECK(plain != NULL && plain->ss->node == 0 && bound(0) == before0,
        "one node: the slab is on node 0 and nothing is bound (%zu bytes)", bound(0) - before0);

  simulate_all_on(1);
  CHECK(hak_os_numa_nodes() == 2 && hak_os_node() == 1, "simulated: 2 nodes, this thread on node 1");
  size_t b1 = bound(1);
  hak_slab_t *on1 = hak_slab_new(cls, NULL);
  CHECK(on1 != NULL && on1->ss->node == 1, "a thread on node 1 gets a slab of a node-1 SuperSlab (node %u)",
        on1 != NULL ? on1->ss->node : 99u);
  CHECK(bound(1) - b1 == HAK_SUPERSLAB_SIZE, "the new SuperSlab was bound to node 1 (%zu bytes)", bound(1) - b1);
  CHECK(on1 != NULL && plain != NULL && on1->ss != plain->ss, "not the node-0 SuperSlab");
  hak_slab_t *again1 = hak_slab_new(cls, NULL);
  CHECK(again1 != NULL && on1 != NULL && again1->ss == on1->ss && bound(1) - b1 == HAK_SUPERSLAB_SIZE,
        "the next slab on node 1 shares that SuperSlab, nothing more bound");

  simulate_all_on(0);
  size_t b0 = bound(0);
  hak_slab_t *on0 = hak_slab_new(cls, NULL);
  CHECK(on0 != NULL && on1 != NULL && on0->ss->node == 0 && on0->ss != on1->ss,
        "a thread on node 0 gets a slab of a node-0 SuperSlab (node %u)", on0 != NULL ? on0->ss->node : 99u);
  CHECK(on0 != NULL && plain != NULL && on0->ss == plain->ss && bound(0) == b0,
        "the node-0 SuperSlab mapped before has room: no new one, nothing bound");

  /* The pool: an empty node-1 slab is not handed to a node-0 thread. */
  if (on1 != NULL) hak_slab_release(on1);
  hak_slab_t *pooled0 = hak_slab_new(cls, NULL);
  CHECK(pooled0 != NULL && pooled0 != on1 && pooled0->ss->node == 0, "a node-0 thread does not take a pooled node-1 slab");
  simulate_all_on(1);
  hak_slab_t *pooled1 = hak_slab_new(cls, NULL);
  CHECK(pooled1 == on1, "a node-1 thread takes the pooled node-1 slab");

  pthread_mutex_lock(&hak_pool_lock);
  const char *err = hak_superslab_validate();
  pthread_mutex_unlock(&hak_pool_lock);
  CHECK(err == NULL, "SuperSlab lists per node validate: %s", err);
  hak_slab_t *all[] = {plain, again1, on0, pooled0, pooled1};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (all[i] != NULL) hak_slab_release(all[i]);
  hak_os_topology_simulate(0, NULL, 0);
  CHECK(hak_os_numa_nodes() == 1 && hak_os_node() == 0, "the machine's topology again");
}

/* The VmFlags of the mapping holding p, from /proc/self/smaps ("" if none). */
static void vmflags_of(const void *p, char *out, size_t cap) {
  out[0] = 0;
  FILE *f = fopen("/proc/self/smaps", "r");
  if (f == NULL) return;
  char line[512];
  bool in = false;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
      continue;
    }
    if (in && strncmp(line, "VmFlags:", 8) == 0) {
      snprintf(out, cap, "%s", line + 8);
      break;
    }
  }
  fclose(f);
}

static bool advised(const void *p) {
  char flags[512];
  vmflags_of(p, flags, sizeof flags);
  return strstr(flags, " hg") != NULL;
}

static int test_thp(bool on) {
  size_t mib = (size_t)1 << 20;
  if (on && hak_os_thp_mode() == HAK_THP_NEVER) {
    printf("placement: SKIP: the system's THP mode is never (no huge pages to ask for)\n");
    return SKIPPED;
  }
  CHECK(hak_os_thp_on() == on, "HAKMEM_THP is %s and huge pages are %s", on ? "on" : "off",
        hak_os_thp_on() ? "on" : "off");
  size_t advised0 = atomic_load(&hak_os_counters.huge_advised_bytes);
  hak_large_cache_clear();
  char *big = hak_malloc(6 * mib + 12345);
  char *small_large = hak_malloc(mib);
  CHECK(big != NULL && small_large != NULL, "two large blocks");
  if (big == NULL || small_large == NULL) return check_report("placement");
  big[0] = 1;
  small_large[0] = 1;
  if (on) {
    CHECK(((uintptr_t)big & (HAK_HUGE_PAGE_SIZE - 1)) == 0, "a 6 MiB block is 2 MiB-aligned (%p)", (void *)big);
    CHECK(advised(big), "and its mapping is advised MADV_HUGEPAGE (hg in VmFlags)");
    CHECK(!advised(small_large), "a 1 MiB block is not advised (smaller than a huge page)");
  } else {
    CHECK(!advised(big) && !advised(small_large), "with THP off no mapping is advised");
  }
  hak_free(big);
  hak_free(small_large);
  void *tiny = hak_malloc(64); /* the thread's first slab */
  if (config_superslab) {
    hak_slab_t *s = (hak_slab_t *)hak_pagemap_lookup(tiny);
    CHECK(s != NULL && advised(s->ss->base) == on, "the SuperSlab holding a small block is %sadvised",
          on ? "" : "not ");
  }
  hak_free(tiny);
  size_t advised_now = atomic_load(&hak_os_counters.huge_advised_bytes) - advised0;
  CHECK(on ? advised_now >= 6 * mib : advised_now == 0, "bytes advised: %zu", advised_now);
  hak_large_cache_clear();
  return check_report("placement");
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (strcmp(what, "numa") == 0) {
    test_numa();
    return check_report("placement");
  }
  if (strcmp(what, "thp") == 0) return test_thp(false);
  if (strcmp(what, "thp-on") == 0) return test_thp(true);
  fprintf(stderr, "usage: placement numa|thp|thp-on\n");
  return 2;
}
