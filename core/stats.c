/* stats.c — process-wide statistics, gathered on request from the counters
 * each part keeps (OS layer, slabs, pool, medium chunks, large mappings, and
 * the per-thread heap counters: atomics written only by their own thread with
 * a relaxed load and store (HAK_STAT_ADD, no read-modify-write) on the slow
 * paths, never on the fast paths, and summed here). */
#include "hakmem.h"
#include "internal.h"

__attribute__((visibility("default"))) void hak_stats_get(hak_stats_t *out) {
  out->mapped_bytes = atomic_load(&hak_os_counters.mapped_bytes);
  out->os_map_calls = atomic_load(&hak_os_counters.map_calls);
  out->os_unmap_calls = atomic_load(&hak_os_counters.unmap_calls);
  out->os_decommit_calls = atomic_load(&hak_os_counters.decommit_calls);
  out->slab_count = atomic_load(&hak_slab_total);
  out->pooled_slab_count = hak_pool_count();
  out->medium_chunk_count = hak_medium_chunk_count();
  hak_large_counts(&out->large_count, &out->large_cached_bytes);
  hak_heap_stats_t h;
  hak_heap_stats_sum(&h);
  out->heap.refills = h.refills;
  out->heap.flushes = h.flushes;
  out->heap.slabs_new = h.slabs_new;
  out->heap.slabs_adopted = h.slabs_adopted;
  out->heap.remote_frees = h.remote_frees;
  out->heap.remote_collected = h.remote_collected;
}

__attribute__((visibility("default"))) void hak_stats_print(FILE *out, int json) {
  hak_stats_t s;
  hak_stats_get(&s);
#define HAK_STAT_FIELDS(X)                                                                         \
  X(mapped_bytes) X(slab_count) X(pooled_slab_count) X(medium_chunk_count) X(large_count)          \
  X(large_cached_bytes) X(os_map_calls) X(os_unmap_calls) X(os_decommit_calls) X(heap.refills)     \
  X(heap.flushes) X(heap.slabs_new) X(heap.slabs_adopted) X(heap.remote_frees)                     \
  X(heap.remote_collected)
  if (json) {
    fprintf(out, "{\"hakmem\":\"%s\",\"variant\":\"%s\"", HAK_VERSION_STRING, HAK_BUILD_NAME);
#define HAK_STAT_JSON(f) fprintf(out, ",\"%s\":%llu", #f, (unsigned long long)s.f);
    HAK_STAT_FIELDS(HAK_STAT_JSON)
    fprintf(out, "}\n");
  } else {
    fprintf(out, "hakmem %s, variant %s\n", HAK_VERSION_STRING, HAK_BUILD_NAME);
#define HAK_STAT_TEXT(f) fprintf(out, "  %-24s %llu\n", #f, (unsigned long long)s.f);
    HAK_STAT_FIELDS(HAK_STAT_TEXT)
  }
}

void hak_stats_at_exit(void) { hak_stats_print(stderr, hak_option(HAK_OPT_STATS) == 2); }
