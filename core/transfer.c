/* transfer.c — the transfer cache: per size class, a bounded stack of free
 * blocks between the thread magazines (tcmalloc's transfer cache, in spirit).
 *
 * A magazine flush sends the blocks of other threads' slabs home (types.h
 * I4): without this cache each goes as a remote free, a link written into
 * the block and one CAS per run onto the slab's xfree stack, and the owner
 * later collects them one by one into its slab before it hands them out
 * again. When one thread frees what another allocates (a producer and its
 * consumers), every block makes that trip. The flush hands such blocks here
 * instead: one lock and one copy of their pointers, the blocks untouched;
 * and a refill takes a batch from here before it goes to its slabs. Blocks
 * of the flushing thread's own slabs go back to them as before, so a single
 * thread never fills this cache.
 *
 * A block here is out of its slab, counted in its slab's used like a block in
 * a magazine (I4). The cache holds at most XFER_BATCHES flushes' worth of
 * blocks per class and config_transfer_max_bytes in all; a flush finding no
 * room sends the rest home as remote frees. hak_xfer_drain gives every block
 * back to its slab (remote frees, collected by the owner or by the sweep of
 * abandoned slabs): the idle scavenger, hak_flush and hak_reset call it, so
 * a process that goes idle keeps nothing here.
 *
 * One lock, hak_xfer_lock (level 2b of internal.h's order: taken by an owner
 * holding its heap lock; no other lock is taken while it is held). Each class's array is
 * mapped from the descriptor arena on its first put. */
#include <sched.h>
#include <string.h>

#include "internal.h"
#include "remote_free.h"

/* A class's array holds this many of its flushes (half a magazine each). */
#define XFER_BATCHES 4

/* The lock: a spin lock that yields the processor after XFER_SPINS tries.
 * It is held for one copy of at most a flush's pointers (some 100 ns): a
 * mutex whose waiter goes to sleep in the kernel cost a producer and its
 * consumer, which meet here every batch, thousands of context switches per
 * run (xthread: 16,000 against 1,300 without the transfer cache). */
#define XFER_SPINS 64
static _Atomic bool hak_xfer_lock;
static void xfer_lock(void) {
  for (unsigned spins = 0;; spins++) {
    if (!atomic_load_explicit(&hak_xfer_lock, memory_order_relaxed) &&
        !atomic_exchange_explicit(&hak_xfer_lock, true, memory_order_acquire))
      return;
    if (spins < XFER_SPINS) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      sched_yield();
    }
  }
}
static void xfer_unlock(void) { atomic_store_explicit(&hak_xfer_lock, false, memory_order_release); }
static void **xfer_blocks[HAK_CLASS_COUNT];        /* NULL until the class's first put */
static uint32_t xfer_count[HAK_CLASS_COUNT];
static size_t xfer_bytes;                          /* all classes */
static _Atomic uint32_t xfer_any[HAK_CLASS_COUNT]; /* xfer_count, read without the lock */
static uint64_t xfer_in, xfer_out;                 /* cumulative blocks, under the lock */

static uint32_t xfer_cap(unsigned c) { return XFER_BATCHES * (hak_class_mag_cap[c] / 2u ? hak_class_mag_cap[c] / 2u : 1u); }

unsigned hak_xfer_put(unsigned c, void *const *blocks, unsigned n) {
  if (config_transfer_max_bytes == 0 || n == 0) return 0;
  size_t size = hak_class_size[c];
  xfer_lock();
  if (xfer_blocks[c] == NULL && (xfer_blocks[c] = hak_meta_alloc(xfer_cap(c) * sizeof(void *))) == NULL) {
    xfer_unlock();
    return 0;
  }
  unsigned room = xfer_cap(c) - xfer_count[c];
  size_t byte_room = (config_transfer_max_bytes - (xfer_bytes < config_transfer_max_bytes ? xfer_bytes
                                                                                          : config_transfer_max_bytes)) / size;
  if (room > byte_room) room = (unsigned)byte_room;
  if (n > room) n = room;
  memcpy(xfer_blocks[c] + xfer_count[c], blocks, n * sizeof(void *));
  xfer_count[c] += n;
  xfer_bytes += n * size;
  xfer_in += n;
  atomic_store_explicit(&xfer_any[c], xfer_count[c], memory_order_relaxed);
  xfer_unlock();
  return n;
}

unsigned hak_xfer_take(unsigned c, void **out, unsigned want) {
  if (config_transfer_max_bytes == 0 || atomic_load_explicit(&xfer_any[c], memory_order_relaxed) == 0) return 0;
  xfer_lock();
  unsigned n = xfer_count[c] < want ? xfer_count[c] : want;
  xfer_count[c] -= n;
  memcpy(out, xfer_blocks[c] + xfer_count[c], n * sizeof(void *));
  xfer_bytes -= n * (size_t)hak_class_size[c];
  xfer_out += n;
  atomic_store_explicit(&xfer_any[c], xfer_count[c], memory_order_relaxed);
  xfer_unlock();
  return n;
}

/* Every block back to its slab, as remote frees; returns how many. */
size_t hak_xfer_drain(void) {
  if (config_transfer_max_bytes == 0) return 0;
  void *batch[256];
  size_t total = 0;
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    while (atomic_load_explicit(&xfer_any[c], memory_order_relaxed) != 0) {
      unsigned n = hak_xfer_take(c, batch, (unsigned)(sizeof batch / sizeof *batch));
      if (n == 0) break;
      hak_slab_push_remote(batch, n);
      total += n;
    }
  }
  return total;
}

/* fork: the lock across it (the cache is consistent whenever it is free). */
void hak_xfer_fork_prepare(void) { xfer_lock(); }
void hak_xfer_fork_parent(void) { xfer_unlock(); }
void hak_xfer_fork_child(void) { xfer_unlock(); }

/* Statistics: the blocks here by class, their arrays as metadata, the
 * cumulative counts. */
void hak_xfer_account(hak_stats_t *st, uint64_t totals[2]) {
  xfer_lock();
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    st->cls[c].in_transfer += xfer_count[c]; /* the arrays are descriptor-arena memory (meta.c) */
  }
  totals[0] = xfer_in;
  totals[1] = xfer_out;
  xfer_unlock();
}

/* Each block a block start of a slab of its class, out of its slab (a bitmap
 * slab has its bit clear), and none twice. */
const char *hak_xfer_validate(void) {
  static void *sorted[XFER_BATCHES * 128];
  const char *err = NULL;
  xfer_lock();
  size_t bytes = 0;
  for (unsigned c = 0; c < HAK_CLASS_COUNT && err == NULL; c++) {
    uint32_t n = xfer_count[c];
    bytes += (size_t)n * hak_class_size[c];
    if (n > xfer_cap(c)) err = "a transfer-cache class holds more blocks than its capacity";
    for (uint32_t i = 0; i < n && err == NULL; i++) {
      void *p = xfer_blocks[c][i];
      uintptr_t e = hak_pagemap_entry(p);
      hak_slab_t *s = (hak_slab_t *)(e & ~(uintptr_t)HAK_TAG_MASK);
      if (s == NULL || s->span.kind != HAK_SPAN_SLAB || s->cls != c || (e & HAK_TAG_MASK) != HAK_CLASS_TAG(c))
        err = "a transfer-cache block is not in a slab of its class (I7)";
      else if (!hak_slab_is_block_start(s, p)) err = "a transfer-cache block is not a block start";
      else if (hak_slab_block_free(s, p)) err = "a transfer-cache block is also free in its slab (I4)";
    }
    if (err == NULL && n > 1 && n <= sizeof sorted / sizeof *sorted) {
      memcpy(sorted, xfer_blocks[c], n * sizeof(void *));
      hak_sort_ptrs(sorted, n);
      for (uint32_t i = 1; i < n && err == NULL; i++)
        if (sorted[i] == sorted[i - 1]) err = "a transfer-cache block is there twice (I4)";
    }
  }
  if (err == NULL && bytes != xfer_bytes) err = "the transfer cache's byte count does not match its blocks";
  xfer_unlock();
  return err;
}
