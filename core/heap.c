/* heap.c — per-thread heaps: magazines, the slabs a thread owns, remote free,
 * thread exit (abandonment) and adoption.
 *
 * A heap is created on a thread's first small allocation and reached through
 * one initial-exec TLS pointer, which starts at hak_heap_empty (all magazines
 * empty, capacity 0) so the fast paths need no NULL test. The fast paths
 * (malloc_api.c) touch only the calling thread's magazine; this file is the
 * slow path: refill a magazine from the class's slabs, flush half of a full
 * one back to them, hand a block to another thread's slab, and at thread exit
 * give the heap's slabs to the abandoned lists, from which any heap that needs
 * a slab of that class adopts them.
 *
 * Locks: hak_heap_list_lock (all heaps, for stats and fork) and
 * hak_abandoned_lock (abandoned slabs per class); see internal.h for order. */
#include <string.h>

#include "internal.h"
#include "list.h"
#include "remote_free.h"

/* The heap of a thread that has not allocated yet: every magazine's top and
 * limit point just past one NULL slot, so a pop reads NULL (empty) and a push
 * finds no room: both fast paths go to the slow path with no extra test. */
static void *empty_magazine[1];
hak_heap_t hak_heap_empty = {.mag = {[0 ... HAK_TAG_COUNT - 1] = {empty_magazine + 1, empty_magazine + 1}}};
hak_tls hak_heap_t *hak_tls_heap = &hak_heap_empty;

/* The gate: the heap the fast paths use, the thread's own heap, or the empty
 * heap when every call must take the slow path (hooks are installed: the
 * slow paths run them). Closing the gates means storing &hak_heap_empty into
 * every thread's gate (heap.c keeps each heap's gate address), so with no
 * hook the fast paths test nothing more. Another thread writes a gate with an
 * atomic store while its owner reads it with a plain aligned load (one copy
 * of an 8-byte pointer, as the hardware does it; TSan builds load it
 * atomically, internal.h): the owner sees the change at its next call.
 * hak_gates_closed counts the reasons to keep them closed; gates open again
 * lazily, each at its thread's next slow path. hak_reset closes one
 * thread's gate, with its heap's flush_wanted set, so that the thread
 * drains its magazines at its next call (hak_heaps_request_flush). */
hak_tls hak_heap_t *hak_tls_gate = &hak_heap_empty;
_Atomic unsigned hak_gates_closed;
/* free's fast path reads a gate of its own, closed only by the observers
 * that must see every free (hooks, the leak checker; the heap profiler sees
 * the frees of its samples, which it allocates so that they fail the fast
 * path: malloc_api.c). */
hak_tls hak_heap_t *hak_tls_free_gate = &hak_heap_empty;
_Atomic unsigned hak_free_gates_closed;

/* Dynamic flush: a magazine starts at 1 / MAG_START_SHARE of its class's
 * capacity (rounded up) and grows with demand (mag_adapt), so a thread that
 * allocates a few blocks of many classes holds few; it never shrinks below
 * 1 / MAG_MIN_SHARE of the capacity or MAG_MIN_BLOCKS blocks, whichever is
 * more (a refill then still moves a batch). */
#define MAG_START_SHARE 4
#define MAG_MIN_SHARE   8
#define MAG_MIN_BLOCKS  8

static pthread_mutex_t hak_heap_list_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t hak_abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_heap_t *heap_list;
static hak_heap_t *orphans; /* forked child: heaps never used again (fork below) */
static hak_slab_t *abandoned[HAK_CLASS_COUNT];
static _Atomic size_t abandoned_count;
static hak_heap_stats_t exited_stats; /* stats of heaps gone, under the list lock */
static pthread_key_t heap_key;

/* The heap lock: held by the owner while it moves blocks between its
 * magazines and its slabs, by the scavenger (dynamic-flush variants) while it
 * collects remote frees and decommits free pages of the heap's slabs, and by
 * the statistics while they walk the heap's slab lists (any thread, so in
 * every variant: a walk without it could follow a slab that the owner is
 * giving back, and its SuperSlab with it). The fast paths never take it: they
 * touch only magazines. Uncontended, it costs a refill or a flush about 40
 * instructions: tiny's instructions per malloc+free pair are unchanged. */
static inline void heap_lock(hak_heap_t *h) { pthread_mutex_lock(&h->lock); }
static inline void heap_unlock(hak_heap_t *h) { pthread_mutex_unlock(&h->lock); }

/* The owner's bracket around every change to its slabs (I6): the flag, then
 * the heap lock. Setting the flag with an acquire exchange keeps the slab
 * stores that follow after it; the release store that clears it keeps them
 * before it. A forked child sees each other thread's stores up to some point
 * in program order, so a clear flag means the heap's slabs are consistent. */
static inline void owner_enter(hak_heap_t *h) {
  (void)atomic_exchange_explicit(&h->in_slabs, 1, memory_order_acquire);
  heap_lock(h);
}
static inline void owner_leave(hak_heap_t *h) {
  heap_unlock(h);
  atomic_store_explicit(&h->in_slabs, 0, memory_order_release);
}

/* Adds the counters of src to dst. src may be another thread's live heap: its
 * counters are read with relaxed atomic loads (each written only by its own
 * thread, with HAK_STAT_ADD). */
static void stats_add(hak_heap_stats_t *dst, hak_heap_stats_t *src) {
  _Atomic uint64_t *d = (_Atomic uint64_t *)dst, *s = (_Atomic uint64_t *)src;
  for (size_t i = 0; i < sizeof(hak_heap_stats_t) / sizeof(uint64_t); i++)
    atomic_store_explicit(&d[i], atomic_load_explicit(&d[i], memory_order_relaxed) +
                                     atomic_load_explicit(&s[i], memory_order_relaxed),
                          memory_order_relaxed);
}

/* ---- magazines --------------------------------------------------------------- */
/* Class c's magazine (the heap keeps them by tag, types.h). */
static inline hak_mag_t *mag_of(hak_heap_t *h, unsigned c) { return &h->mag[HAK_CLASS_TAG(c)]; }
static inline uint32_t mag_count(hak_heap_t *h, unsigned c) { return (uint32_t)(mag_of(h, c)->top - h->mag_base[c]); }
static inline uint32_t mag_cap(hak_heap_t *h, unsigned c) { return (uint32_t)(mag_of(h, c)->limit - h->mag_base[c]); }

/* A slow path rewrites a magazine closed: the fast paths, which a signal
 * handler may run at any moment (reentry.c), then find it empty and without
 * room, so a handler neither pops a block the slow path is moving nor
 * pushes one it would overwrite. Closing stores the limit first (no push
 * fits from then on), then exchanges the top for the base in one atomic
 * instruction: whatever a handler popped before that is simply not in the
 * magazine the slow path holds. The slow path works on the returned view
 * (its top and limit) and opens the magazine with it: the top first, then
 * the limit. Only the calling thread's own handlers can touch its magazines,
 * so the exchange costs one instruction and no fence. */
static inline hak_mag_t mag_close(hak_heap_t *h, unsigned c) {
  hak_mag_t *m = mag_of(h, c), v;
  void **base = h->mag_base[c];
  v.limit = m->limit;
  __atomic_store_n(&m->limit, base, __ATOMIC_RELAXED);
  atomic_signal_fence(memory_order_seq_cst);
  v.top = __atomic_exchange_n(&m->top, base, __ATOMIC_RELAXED);
  return v;
}
static inline void mag_open(hak_heap_t *h, unsigned c, hak_mag_t v) {
  hak_mag_t *m = mag_of(h, c);
  __atomic_store_n(&m->top, v.top, __ATOMIC_RELAXED);
  atomic_signal_fence(memory_order_seq_cst);
  __atomic_store_n(&m->limit, v.limit, __ATOMIC_RELAXED);
}
/* A closed magazine's view: its blocks, its capacity. */
static inline uint32_t view_count(hak_heap_t *h, unsigned c, const hak_mag_t *v) {
  return (uint32_t)(v->top - h->mag_base[c]);
}
static inline uint32_t view_cap(hak_heap_t *h, unsigned c, const hak_mag_t *v) {
  return (uint32_t)(v->limit - h->mag_base[c]);
}
static inline void view_set_cap(hak_heap_t *h, unsigned c, hak_mag_t *v, uint32_t cap) {
  v->limit = h->mag_base[c] + cap;
}

/* ---- class lists ----------------------------------------------------------- */
static void slab_to_partial(hak_heap_t *h, hak_slab_t *s) {
  hak_class_slabs_t *cs = &h->slabs[s->cls];
  hak_list_remove(&cs->full, s);
  s->in_full = 0;
  hak_list_push(&cs->partial, s);
}

/* An owned slab whose blocks are all back: keep it if it is the class's only
 * slab with free blocks, else give it to the pool. */
static void slab_maybe_release(hak_heap_t *h, hak_slab_t *s) {
  hak_class_slabs_t *cs = &h->slabs[s->cls];
  if (s->in_full) slab_to_partial(h, s);
  if (cs->partial == s && s->next == NULL) return;
  hak_list_remove(&cs->partial, s);
  hak_slab_release(s);
}

/* ---- heap creation and teardown -------------------------------------------- */
static size_t heap_items_total(void) {
  size_t n = 0;
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) n += hak_class_mag_cap[c] + 1u;
  return n;
}

static hak_heap_t *heap_create(void) {
  size_t bytes = hak_align_up(sizeof(hak_heap_t) + heap_items_total() * sizeof(void *), HAK_UNIT_SIZE);
  hak_heap_t *h = hak_os_map_aligned(bytes, HAK_UNIT_SIZE);
  if (h == NULL) return NULL;
  h->map_bytes = bytes;
  void **items = (void **)(h + 1); /* zero from the OS: every sentinel is NULL */
  for (unsigned t = 0; t < HAK_TAG_COUNT; t++) h->mag[t] = hak_heap_empty.mag[t]; /* no room */
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    h->mag_base[c] = mag_of(h, c)->top = items + 1; /* items[0] is the sentinel */
    mag_of(h, c)->limit = h->mag_base[c] + (config_dynamic_flush ? (hak_class_mag_cap[c] + MAG_START_SHARE - 1) /
                                                                       MAG_START_SHARE
                                                                 : hak_class_mag_cap[c]);
    items += hak_class_mag_cap[c] + 1u;
  }
  pthread_mutex_init(&h->lock, NULL);
  h->gate = &hak_tls_gate;
  h->free_gate = &hak_tls_free_gate;
  hak_tls_heap = h;
  pthread_mutex_lock(&hak_heap_list_lock);
  hak_list_push(&heap_list, h);
  /* under the list lock: hak_gates_close either sees this heap or we see its count */
  __atomic_store_n(&hak_tls_gate, atomic_load(&hak_gates_closed) ? &hak_heap_empty : h, __ATOMIC_RELAXED);
  __atomic_store_n(&hak_tls_free_gate, atomic_load(&hak_free_gates_closed) ? &hak_heap_empty : h, __ATOMIC_RELAXED);
  pthread_mutex_unlock(&hak_heap_list_lock);
  pthread_setspecific(heap_key, h);
  return h;
}

/* Whether h's foreign blocks of class c go to the transfer cache: only while
 * h does not allocate c itself (no refill this tick or the one before), so
 * the cache carries blocks from threads that free a class to threads that
 * allocate it. A thread that both frees and allocates c (larson: each thread
 * frees what its predecessor allocated) would otherwise pass its foreign
 * blocks to the cache and take them back at its next refill, still foreign,
 * round and round through one shared lock, never going home. */
static inline bool xfer_wanted(const hak_heap_t *h, unsigned c) {
  if (config_transfer_max_bytes == 0) return false;
  uint32_t last = h->refill_tick[c];
  return last == 0 || atomic_load_explicit(&hak_clock_tick, memory_order_relaxed) + 1 - last > 1;
}

/* The cross-thread free: blocks[0..n) of class c, freed into h's magazine by
 * h's thread but of slabs other heaps own, leave at a flush: to the transfer
 * cache while h does not allocate c itself (xfer_wanted), and what it has no
 * room for home, pushed on their slabs' remote-free stacks (one CAS per run of
 * one slab), which the owners collect at their next refill. */
static void flush_foreign(hak_heap_t *h, unsigned c, void **blocks, uint32_t n) {
  uint32_t kept = xfer_wanted(h, c) ? hak_xfer_put(c, blocks, n) : 0;
  if (kept < n) hak_slab_push_remote(blocks + kept, n - kept);
  HAK_STAT_ADD(h, remote_frees, n - kept);
}

/* Returns the n oldest blocks of closed magazine c (view v: base[0..n)) to
 * their slabs: into the slab when the heap owns it (neighbouring blocks of
 * one slab, the usual case, as a run: one page-map lookup, one put); the
 * blocks of other heaps' slabs go to flush_foreign (I4). */
static void mag_flush(hak_heap_t *h, unsigned c, hak_mag_t *v, uint32_t n) {
  void **base = h->mag_base[c];
  uint32_t foreign = 0; /* other heaps' blocks, moved down to base[0..foreign) */
  for (uint32_t i = 0; i < n;) {
    hak_slab_t *s = (hak_slab_t *)hak_pagemap_lookup(base[i]);
    const char *lo = s->base, *hi = lo + s->units * HAK_UNIT_SIZE;
    uint32_t j = i + 1;
    while (j < n && (const char *)base[j] >= lo && (const char *)base[j] < hi) j++;
    if (atomic_load_explicit(&s->span.owner, memory_order_relaxed) == h) {
      hak_slab_put_run(s, base + i, j - i, "free()");
      if (s->in_full) slab_to_partial(h, s);
      if (s->used == 0) slab_maybe_release(h, s);
    } else {
      memmove(base + foreign, base + i, (j - i) * sizeof(void *));
      foreign += j - i;
    }
    i = j;
  }
  if (foreign) flush_foreign(h, c, base, foreign);
  memmove(base, base + n, (view_count(h, c, v) - n) * sizeof(void *));
  v->top -= n;
  HAK_STAT_ADD(h, flushes, 1);
  HAK_STAT_ADD(h, flush_blocks, n);
}

/* Gives every slab of h away: empty ones to the pool, others to the
 * abandoned lists. flush_mags: return the magazines' blocks to their slabs
 * first; otherwise (a dead thread's heap in a forked child) those blocks stay
 * counted as in use and are never handed out again. */
static void heap_abandon_slabs(hak_heap_t *h, bool flush_mags) {
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    if (flush_mags && mag_count(h, c)) {
      hak_mag_t v = mag_close(h, c);
      if (view_count(h, c, &v)) mag_flush(h, c, &v, view_count(h, c, &v));
      mag_open(h, c, v);
    }
    hak_slab_t *lists[2] = {h->slabs[c].partial, h->slabs[c].full};
    h->slabs[c].partial = h->slabs[c].full = NULL;
    for (int l = 0; l < 2; l++) {
      hak_slab_t *s = lists[l];
      while (s != NULL) {
        hak_slab_t *next = s->next;
        hak_slab_collect(s);
        s->in_full = 0;
        s->next = s->prev = NULL;
        if (s->used == 0) {
          hak_slab_release(s);
        } else {
          atomic_store_explicit(&s->span.owner, NULL, memory_order_release);
          pthread_mutex_lock(&hak_abandoned_lock);
          s->next = abandoned[c];
          abandoned[c] = s;
          pthread_mutex_unlock(&hak_abandoned_lock);
          atomic_fetch_add_explicit(&abandoned_count, 1, memory_order_relaxed);
        }
        s = next;
      }
    }
  }
}

static void heap_unlink_and_unmap(hak_heap_t *h, bool lock) {
  if (lock) pthread_mutex_lock(&hak_heap_list_lock);
  hak_list_remove(&heap_list, h);
  stats_add(&exited_stats, &h->stats);
  if (lock) pthread_mutex_unlock(&hak_heap_list_lock);
  hak_os_unmap(h, h->map_bytes);
}

/* pthread key destructor: the thread is exiting. */
static void heap_thread_exit(void *arg) {
  hak_heap_t *h = arg;
  if (h == NULL || h == &hak_heap_empty) return;
  sigset_t old; /* no signal handler's malloc while the locks below are held */
  hak_signals_block(&old);
  pthread_mutex_lock(&hak_heap_list_lock); /* so that no one writes the gate from now on */
  __atomic_store_n(&hak_tls_gate, &hak_heap_empty, __ATOMIC_RELAXED);
  __atomic_store_n(&hak_tls_free_gate, &hak_heap_empty, __ATOMIC_RELAXED);
  h->gate = h->free_gate = NULL;
  pthread_mutex_unlock(&hak_heap_list_lock);
  hak_tls_heap = &hak_heap_empty;
  owner_enter(h);
  heap_abandon_slabs(h, true);
  owner_leave(h);
  heap_unlink_and_unmap(h, true);
  hak_direct_cache_release();
  hak_signals_restore(&old);
}

/* Closes every thread's gate and, with frees, its free gate: from their next
 * call on, every malloc (and free) of every thread takes the slow path (until
 * as many hak_gates_open). */
void hak_gates_close(bool frees) {
  pthread_mutex_lock(&hak_heap_list_lock);
  atomic_fetch_add(&hak_gates_closed, 1);
  if (frees) atomic_fetch_add(&hak_free_gates_closed, 1);
  for (hak_heap_t *h = heap_list; h != NULL; h = h->next) {
    if (h->gate != NULL) __atomic_store_n(h->gate, &hak_heap_empty, __ATOMIC_RELEASE);
    if (frees && h->free_gate != NULL) __atomic_store_n(h->free_gate, &hak_heap_empty, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&hak_heap_list_lock);
}

void hak_gates_open(bool frees) {
  if (frees) atomic_fetch_sub(&hak_free_gates_closed, 1);
  atomic_fetch_sub(&hak_gates_closed, 1);
}

/* hak_reset from another thread: each other live heap is asked to drain, and
 * both its gates are closed so that its owner's next call (whatever it is: a
 * pop or a push that the magazine could serve) takes the slow path, where
 * hak_gate_reopen drains it. The flag is set and the gates closed under the
 * list lock, and the owner reopens a gate under it only when no flag is set,
 * so a request is never lost. */
void hak_heaps_request_flush(void) {
  hak_heap_t *own = hak_tls_heap;
  pthread_mutex_lock(&hak_heap_list_lock);
  for (hak_heap_t *h = heap_list; h != NULL; h = h->next)
    if (h != own && h->gate != NULL) {
      atomic_store(&h->flush_wanted, true);
      __atomic_store_n(h->gate, &hak_heap_empty, __ATOMIC_RELEASE);
      if (h->free_gate != NULL) __atomic_store_n(h->free_gate, &hak_heap_empty, __ATOMIC_RELEASE);
    }
  pthread_mutex_unlock(&hak_heap_list_lock);
}

/* A slow path's check, with the calling thread's gate (or free gate) closed:
 * when hak_reset asked, the thread gives back what it holds as hak_reset does
 * for its caller: its magazines to their slabs, its empty slabs, the pages of
 * its magazine arrays, and the pool; then the gate opens again unless
 * something still needs it closed (hooks, an observer of frees, or another
 * request meanwhile). The other gate opens at its own next slow path. */
void hak_gate_reopen(bool free_gate) {
  hak_heap_t *h = hak_tls_heap, **gate = free_gate ? &hak_tls_free_gate : &hak_tls_gate;
  if (h == &hak_heap_empty) return;
  if (atomic_exchange(&h->flush_wanted, false)) {
    hak_heap_flush_thread();
    hak_heap_trim_own();
    hak_pool_trim(0);
  }
  if ((free_gate ? hak_free_gate() : hak_gate()) == h) return;
  pthread_mutex_lock(&hak_heap_list_lock);
  if (atomic_load(free_gate ? &hak_free_gates_closed : &hak_gates_closed) == 0 && !atomic_load(&h->flush_wanted))
    __atomic_store_n(gate, h, __ATOMIC_RELAXED);
  pthread_mutex_unlock(&hak_heap_list_lock);
}

void hak_heap_init(void) {
  pthread_key_create(&heap_key, heap_thread_exit);
}

/* ---- refill -------------------------------------------------------------- */
static hak_slab_t *adopt_abandoned(hak_heap_t *h, unsigned c) {
  if (atomic_load_explicit(&abandoned_count, memory_order_relaxed) == 0) return NULL;
  pthread_mutex_lock(&hak_abandoned_lock);
  hak_slab_t *s = abandoned[c];
  if (s != NULL) {
    abandoned[c] = s->next;
    atomic_store_explicit(&s->span.owner, h, memory_order_release);
  }
  pthread_mutex_unlock(&hak_abandoned_lock);
  if (s == NULL) return NULL;
  atomic_fetch_sub_explicit(&abandoned_count, 1, memory_order_relaxed);
  s->next = s->prev = NULL;
  hak_slab_collect(s);
  HAK_STAT_ADD(h, slabs_adopted, 1);
  return s;
}

/* Fills closed magazine c (view m) with up to half its capacity; returns
 * false when out of memory. */
static hak_noinline bool mag_refill(hak_heap_t *h, unsigned c, hak_mag_t *m) {
  hak_class_slabs_t *cs = &h->slabs[c];
  unsigned want = view_cap(h, c, m) / 2 ? view_cap(h, c, m) / 2 : 1;
  HAK_STAT_ADD(h, refills, 1);
  h->refill_tick[c] = atomic_load_explicit(&hak_clock_tick, memory_order_relaxed) + 1;
  /* Blocks other threads freed, handed over whole (transfer.c). */
  unsigned handed = hak_xfer_take(c, (void **)m->top, want);
  if (handed > 0) {
    m->top += handed;
    HAK_STAT_ADD(h, refill_blocks, handed);
    return true;
  }
  for (int pass = 0; pass < 2; pass++) {
    hak_slab_t *s;
    while ((s = cs->partial) != NULL) {
      /* Blocks freed by other threads first: reusing them keeps the
       * slab's touched pages few (fresh blocks would touch new pages). */
      if (atomic_load_explicit(&s->xfree, memory_order_relaxed) != NULL)
        HAK_STAT_ADD(h, remote_collected, hak_slab_collect(s));
      unsigned got = hak_slab_take(s, (void **)m->top, want);
      m->top += got;
      HAK_STAT_ADD(h, refill_blocks, got);
      if (got == want) return true;
      hak_list_remove(&cs->partial, s); /* drained: park it on the full list */
      s->in_full = 1;
      hak_list_push(&cs->full, s);
      if (got) return true;
    }
    if (pass == 0) {
      /* Full slabs that received remote frees become partial again. */
      hak_slab_t *next;
      bool any = false;
      for (s = cs->full; s != NULL; s = next) {
        next = s->next;
        if (atomic_load_explicit(&s->xfree, memory_order_relaxed) != NULL) {
          slab_to_partial(h, s);
          any = true;
        }
      }
      if (!any) break;
    }
  }
  /* An adopted slab may have no free block yet (all its blocks still live):
   * keep it on the full list and try the next one, then a new slab. */
  for (;;) {
    hak_slab_t *s = adopt_abandoned(h, c);
    if (s == NULL) {
      s = hak_slab_new(c, h);
      if (s == NULL) return false;
      HAK_STAT_ADD(h, slabs_new, 1);
    }
    unsigned got = hak_slab_take(s, (void **)m->top, want);
    m->top += got;
    HAK_STAT_ADD(h, refill_blocks, got);
    if (got > 0) {
      hak_list_push(&cs->partial, s);
      return true;
    }
    s->in_full = 1;
    hak_list_push(&cs->full, s);
  }
}

/* Dynamic flush: a class's magazine capacity doubles when it needs a second
 * refill within one scavenger tick (heavy allocation) and halves when a second
 * or more has passed since its last refill (the rate fell). Called with the
 * magazine empty, so a smaller capacity never strands blocks. */
static void mag_adapt(hak_heap_t *h, unsigned c, hak_mag_t *v) {
  uint32_t cap = view_cap(h, c, v);
  uint32_t now = atomic_load_explicit(&hak_clock_tick, memory_order_relaxed);
  uint32_t last = h->mag_tick[c], max = hak_class_mag_cap[c];
  uint32_t min = max / MAG_MIN_SHARE < MAG_MIN_BLOCKS ? (max < MAG_MIN_BLOCKS ? max : MAG_MIN_BLOCKS)
                                                     : max / MAG_MIN_SHARE;
  h->mag_tick[c] = now;
  if (now == last) {
    if (cap < max) view_set_cap(h, c, v, cap * 2 < max ? cap * 2 : max);
  } else if (now - last >= HAK_TICKS_PER_SECOND && cap > min) {
    view_set_cap(h, c, v, cap / 2 > min ? cap / 2 : min);
  }
}

/* Dynamic flush, at a free that finds magazine c full: when it was full once
 * already within this tick (the thread frees the class faster than it
 * allocates it: a consumer), the capacity doubles instead of a flush, so a
 * consumer's flushes move big batches. mag_adapt runs only at refills, so a
 * thread that only frees would otherwise keep its starting capacity (a
 * quarter) and flush a few dozen blocks at a time. True when it made room. */
static bool mag_grow_on_full(hak_heap_t *h, unsigned c, hak_mag_t *v) {
  uint32_t now = atomic_load_explicit(&hak_clock_tick, memory_order_relaxed) + 1;
  uint32_t last = h->flush_tick[c], cap = view_cap(h, c, v), max = hak_class_mag_cap[c];
  h->flush_tick[c] = now;
  if (last != now || cap >= max) return false;
  view_set_cap(h, c, v, cap * 2 < max ? cap * 2 : max);
  return true;
}

/* A block of class c for the calling thread, whose magazine for c is empty
 * (or which has no heap yet); NULL when out of memory. */
void *hak_heap_alloc_small(unsigned c) {
  hak_heap_t *h = hak_tls_heap;
  if (h == &hak_heap_empty && (h = heap_create()) == NULL) return NULL;
  hak_mag_t v = mag_close(h, c);
  if (view_count(h, c, &v) == 0) {
    if (config_dynamic_flush) mag_adapt(h, c, &v);
    owner_enter(h);
    bool ok = mag_refill(h, c, &v);
    owner_leave(h);
    if (!ok) {
      mag_open(h, c, v);
      return NULL;
    }
  }
  void *p = *--v.top;
  mag_open(h, c, v);
  return p;
}

/* Frees block p of slab s when the fast path could not: the magazine is
 * full, p is on its top (a double free), p is not the start of a block or s
 * is pooled (fatal), or the thread has no heap yet (it gets one: a thread
 * that only frees then batches its frees too). The block goes into the
 * calling thread's magazine whoever owns its slab (I4). */
void hak_heap_free_small(void *p, hak_slab_t *s) {
  hak_heap_t *h = hak_tls_heap;
  if (atomic_load_explicit(&s->span.owner, memory_order_relaxed) == h) hak_slab_check_block(s, p, "free()");
  else hak_slab_check_remote(s, p, "free()");
  if (h == &hak_heap_empty && (h = heap_create()) == NULL) { /* no memory for a heap: free it remotely */
    hak_xfree_push(&s->xfree, (hak_block_t *)p);
    return;
  }
  unsigned c = s->cls;
  hak_mag_t v = mag_close(h, c);
  if (v.top[-1] == p) hak_fatal("free()", "double free", p); /* the sentinel is NULL */
  if (v.top >= v.limit && !(config_dynamic_flush && mag_grow_on_full(h, c, &v))) {
    owner_enter(h);
    mag_flush(h, c, &v, view_count(h, c, &v) - view_cap(h, c, &v) / 2);
    owner_leave(h);
  }
  *v.top++ = p;
  mag_open(h, c, v);
}

/* Releases abandoned slabs whose blocks have all come back (through remote
 * frees) to the pool. Holding the abandoned lock makes the caller their owner. */
void hak_abandoned_sweep(void) {
  if (atomic_load_explicit(&abandoned_count, memory_order_relaxed) == 0) return;
  hak_slab_t *empty = NULL;
  pthread_mutex_lock(&hak_abandoned_lock);
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    hak_slab_t **link = &abandoned[c], *s;
    while ((s = *link) != NULL) {
      hak_slab_collect(s);
      if (s->used == 0) {
        *link = s->next;
        s->next = empty;
        empty = s;
        atomic_fetch_sub_explicit(&abandoned_count, 1, memory_order_relaxed);
      } else {
        link = &s->next;
      }
    }
  }
  pthread_mutex_unlock(&hak_abandoned_lock);
  while (empty != NULL) {
    hak_slab_t *next = empty->next;
    empty->next = NULL;
    hak_slab_release(empty);
    empty = next;
  }
}

static void heap_release_empty(hak_heap_t *h);

/* Returns the calling thread's magazines to its slabs and its empty slabs to the pool. */
void hak_heap_flush_thread(void) {
  hak_heap_t *h = hak_tls_heap;
  if (h == &hak_heap_empty) return;
  owner_enter(h);
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    if (mag_count(h, c) == 0) continue;
    hak_mag_t v = mag_close(h, c);
    if (view_count(h, c, &v)) mag_flush(h, c, &v, view_count(h, c, &v));
    mag_open(h, c, v);
  }
  heap_release_empty(h);
  owner_leave(h);
}

/* hak_reset: the calling thread's magazine arrays, just flushed, go back to
 * the OS (their sentinels read as NULL again from fresh pages). */
void hak_heap_trim_own(void) {
  hak_heap_t *h = hak_tls_heap;
  if (h == &hak_heap_empty) return;
  char *items = (char *)(h + 1), *first = (char *)hak_align_up((uintptr_t)items, HAK_PAGE_SIZE);
  char *end = (char *)h + h->map_bytes;
  hak_mag_t v[HAK_CLASS_COUNT]; /* closed while their pages go */
  unsigned c = 0;
  for (; c < HAK_CLASS_COUNT; c++) {
    v[c] = mag_close(h, c);
    if (view_count(h, c, &v[c]) != 0) break; /* flush first */
  }
  if (c == HAK_CLASS_COUNT && end > first) hak_os_decommit(first, (size_t)(end - first));
  for (unsigned k = 0; k < c + (c < HAK_CLASS_COUNT); k++) mag_open(h, k, v[k]);
}

/* Collects every slab's remote frees and gives the empty slabs to the pool
 * (all of them: also the one a class keeps for its next refill). Heap lock held. */
static void heap_release_empty(hak_heap_t *h) {
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    hak_slab_t *s, *next;
    for (s = h->slabs[c].full; s != NULL; s = next) {
      next = s->next;
      if (hak_slab_collect(s)) slab_to_partial(h, s);
    }
    for (s = h->slabs[c].partial; s != NULL; s = next) {
      next = s->next;
      hak_slab_collect(s);
      if (s->used == 0) {
        hak_list_remove(&h->slabs[c].partial, s);
        hak_slab_release(s);
      }
    }
  }
}

/* Slow-path activity of one heap: its refills and flushes so far. */
static uint64_t heap_activity(hak_heap_t *h) {
  return atomic_load_explicit(&h->stats.refills, memory_order_relaxed) +
         atomic_load_explicit(&h->stats.flushes, memory_order_relaxed);
}

/* Activity of all heaps, by which the scavenger tells idle from busy. */
uint64_t hak_heaps_activity(void) {
  pthread_mutex_lock(&hak_heap_list_lock);
  uint64_t n = 0;
  for (hak_heap_t *h = heap_list; h != NULL; h = h->next) n += heap_activity(h);
  pthread_mutex_unlock(&hak_heap_list_lock);
  return n;
}

/* The scavenger's pass over one heap: remote frees collected, empty slabs to
 * the pool, free pages of partly used slabs decommitted. The magazines are
 * the owner's and are left alone. Returns the pages decommitted. */
static size_t heap_scavenge(hak_heap_t *h) {
  size_t pages = 0;
  heap_lock(h);
  heap_release_empty(h);
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    for (hak_slab_t *s = h->slabs[c].partial; s != NULL; s = s->next) pages += hak_slab_decommit_free(s);
    for (hak_slab_t *s = h->slabs[c].full; s != NULL; s = s->next) pages += hak_slab_decommit_free(s);
  }
  heap_unlock(h);
  return pages;
}

/* Every heap, or (idle_only) only the heaps whose thread has not refilled or
 * flushed since the previous idle_only call: an idle thread, like a main
 * thread waiting for its workers, then stops pinning memory that the busy
 * threads freed. */
size_t hak_heaps_scavenge(bool idle_only) {
  size_t pages = 0;
  pthread_mutex_lock(&hak_heap_list_lock);
  for (hak_heap_t *h = heap_list; h != NULL; h = h->next) {
    if (idle_only) {
      uint64_t act = heap_activity(h);
      bool busy = act != h->scavenger_seen;
      h->scavenger_seen = act;
      if (busy) continue;
    }
    pages += heap_scavenge(h);
  }
  pthread_mutex_unlock(&hak_heap_list_lock);
  return pages;
}

void hak_heap_stats_sum(hak_heap_stats_t *out) {
  pthread_mutex_lock(&hak_heap_list_lock);
  memset(out, 0, sizeof(*out));
  stats_add(out, &exited_stats);
  for (hak_heap_t *h = heap_list; h != NULL; h = h->next) stats_add(out, &h->stats);
  pthread_mutex_unlock(&hak_heap_list_lock);
}

/* ---- fork ------------------------------------------------------------------- */
void hak_heap_fork_prepare(void) {
  pthread_mutex_lock(&hak_heap_list_lock);
  pthread_mutex_lock(&hak_abandoned_lock);
}

void hak_heap_fork_parent(void) {
  pthread_mutex_unlock(&hak_abandoned_lock);
  pthread_mutex_unlock(&hak_heap_list_lock);
}

/* In the child only the forking thread exists. Every other heap belongs to a
 * thread that is gone, which may have been anywhere in its code at the fork.
 * The global structures are consistent (fork_prepare holds their locks) and
 * so are the remote-free stacks (single atomic steps), but a dead thread's
 * magazines may be half-updated (the fast paths write them without any
 * flag), and its slabs too if it was in the middle of a slab operation. So:
 *   - a magazine of a dead thread is never read: its blocks stay counted as
 *     in use in their slabs and are never handed out again (at most one
 *     magazine's worth per class and dead thread);
 *   - a dead heap whose owner was not changing its slabs (I6) has consistent
 *     slabs: they are abandoned, as at thread exit, for live threads to
 *     adopt, and the heap is unmapped;
 *   - a dead heap whose owner was in a slab operation is an orphan: its slabs
 *     keep it as owner, so frees into them are remote frees that nobody
 *     collects, and nothing reads it again. Its memory stays mapped.
 * Called with all locks re-initialised, before the child runs anything. */
void hak_heap_fork_child(void) {
  pthread_mutex_init(&hak_abandoned_lock, NULL);
  pthread_mutex_init(&hak_heap_list_lock, NULL);
  hak_heap_t *me = hak_tls_heap, *h, *next;
  for (h = heap_list; h != NULL; h = next) {
    next = h->next;
    if (h == me) {
      pthread_mutex_init(&h->lock, NULL);
      continue;
    }
    if (atomic_load_explicit(&h->in_slabs, memory_order_acquire)) {
      hak_list_remove(&heap_list, h);
      stats_add(&exited_stats, &h->stats);
      hak_list_push(&orphans, h);
      continue;
    }
    heap_abandon_slabs(h, false);
    heap_unlink_and_unmap(h, false);
  }
}

/* ---- validation ---------------------------------------------------------------- */

static bool sorted_contains(void *const *a, uint32_t n, const void *p) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if ((uintptr_t)a[mid] < (uintptr_t)p) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && a[lo] == p;
}

/* Checks one class list of h: links, owner, class, in_full flag, and each
 * slab's own invariants; with a list variant, also that no block of the
 * slab's free list is in the magazine (sorted mag[0..nmag)). */
static const char *validate_list(hak_heap_t *h, unsigned c, hak_slab_t *head, bool full, void *const *mag,
                                 uint32_t nmag) {
  hak_slab_t *prev = NULL;
  size_t n = 0, limit = atomic_load_explicit(&hak_slab_total, memory_order_relaxed) + 1;
  for (hak_slab_t *s = head; s != NULL; prev = s, s = s->next) {
    if (++n > limit) return "a heap's slab list is cyclic";
    if (s->prev != prev) return "a heap's slab list has a broken back link";
    if (atomic_load_explicit(&s->span.owner, memory_order_relaxed) != h)
      return "a slab on a heap's list is not owned by that heap (I3)";
    if (s->cls != c) return "a slab is on the list of another size class";
    if (s->in_full != full) return "a slab's in_full flag does not match its list";
    const char *err = hak_slab_validate(s);
    if (err != NULL) return err;
    for (hak_block_t *b = s->free; b != NULL; b = b->next)
      if (sorted_contains(mag, nmag, b)) return "a block is both in a magazine and on its slab's free list (I4)";
  }
  return NULL;
}

/* Checks heap h: its magazines (each block in a slab the heap owns, of the
 * magazine's class, handed out by the slab, not free in its bitmap, not held
 * by the program in a checked build, no block twice) and its slab lists. The
 * caller is h's owner, or h's owner is quiescent. */
static const char *heap_validate(hak_heap_t *h) {
  void *sorted[256];
  _Static_assert(sizeof sorted / sizeof sorted[0] >= 256, "room for the largest magazine");
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    uint32_t count = mag_count(h, c);
    if (mag_cap(h, c) > hak_class_mag_cap[c] || count > mag_cap(h, c) || h->mag_base[c][-1] != NULL)
      return "a magazine's count or capacity is out of range, or its sentinel is not NULL";
    for (uint32_t i = 0; i < count; i++) {
      void *p = h->mag_base[c][i];
      uintptr_t entry = hak_pagemap_entry(p);
      hak_span_t *span = (hak_span_t *)(entry & ~HAK_TAG_MASK);
      if (span == NULL || span->kind != HAK_SPAN_SLAB) return "a magazine holds a pointer that is not in a slab";
      hak_slab_t *s = (hak_slab_t *)span;
      if (s->cls != c || (entry & HAK_TAG_MASK) != HAK_CLASS_TAG(c))
        return "a magazine holds a block of another size class, or its page-map tag is wrong (I7)";
      size_t k = hak_slab_index(s, p);
      if (!hak_slab_is_block_start(s, p) || k >= s->capacity) return "a magazine holds a pointer that is not a block";
      /* A slab of this heap's (others' are read only by their owners) */
      bool mine = atomic_load_explicit(&s->span.owner, memory_order_relaxed) == h;
      if (mine && k >= s->bump) return "a magazine holds a block its slab never handed out";
      if (mine && config_slab_bitmap && (s->bits[k / 64] >> (k % 64) & 1))
        return "a magazine holds a block its slab's bitmap marks free (I4)";
      if (config_check && hak_check_is_live(s, k)) return "a magazine holds a block the program holds";
      sorted[i] = p;
    }
    hak_sort_ptrs(sorted, count);
    for (uint32_t i = 1; i < count; i++)
      if (sorted[i] == sorted[i - 1]) return "a magazine holds a block twice (I4)";
    const char *err = validate_list(h, c, h->slabs[c].partial, false, sorted, count);
    if (err == NULL) err = validate_list(h, c, h->slabs[c].full, true, sorted, count);
    if (err != NULL) return err;
  }
  return NULL;
}

/* The calling thread's heap (checked builds run this periodically). */
const char *hak_heap_validate_own(void) {
  hak_heap_t *h = hak_tls_heap;
  if (h == &hak_heap_empty) return NULL;
  owner_enter(h);
  const char *err = heap_validate(h);
  owner_leave(h);
  return err;
}

/* Every heap and the abandoned lists. Other threads must not be allocating
 * or freeing meanwhile (their magazines are read); the scavenger may run. */
const char *hak_heaps_validate(void) {
  const char *err = NULL;
  pthread_mutex_lock(&hak_heap_list_lock);
  hak_heap_t *prev = NULL;
  for (hak_heap_t *h = heap_list; h != NULL && err == NULL; prev = h, h = h->next) {
    if (h->prev != prev) err = "the heap list has a broken back link";
    heap_lock(h);
    if (err == NULL) err = heap_validate(h);
    heap_unlock(h);
  }
  pthread_mutex_unlock(&hak_heap_list_lock);
  if (err != NULL) return err;
  size_t count = 0;
  pthread_mutex_lock(&hak_abandoned_lock);
  for (unsigned c = 0; c < HAK_CLASS_COUNT && err == NULL; c++)
    for (hak_slab_t *s = abandoned[c]; s != NULL && err == NULL; s = s->next) {
      count++;
      if (atomic_load_explicit(&s->span.owner, memory_order_relaxed) != NULL) err = "an abandoned slab has an owner (I3)";
      else if (s->cls != c) err = "an abandoned slab is on the list of another size class";
      else err = hak_slab_validate(s);
    }
  if (err == NULL && count != atomic_load_explicit(&abandoned_count, memory_order_relaxed))
    err = "the abandoned-slab count does not match the lists";
  pthread_mutex_unlock(&hak_abandoned_lock);
  return err;
}

/* ---- statistics ------------------------------------------------------------------ */
/* Remote frees waiting on s->xfree, counted by walking the stack (the caller
 * keeps the owner from collecting it: its heap lock, or the abandoned lock);
 * every link is checked to lie in the slab, so a stack changing under a
 * caller without that guarantee (a heap without lock) gives a wrong count,
 * never a wild read. */
static size_t xfree_count(const hak_slab_t *s) {
  const char *lo = s->base, *hi = lo + s->units * HAK_UNIT_SIZE;
  size_t n = 0;
  for (const hak_block_t *b = atomic_load_explicit(&s->xfree, memory_order_acquire); b != NULL && n < s->capacity;
       b = b->next, n++)
    if ((const char *)b < lo || (const char *)b >= hi || !hak_slab_is_block_start(s, b)) break;
  return n;
}

static void account_slab(hak_stats_t *st, const hak_slab_t *s) {
  hak_class_stats_t *k = &st->cls[s->cls];
  size_t bytes = s->units * HAK_UNIT_SIZE, pending = xfree_count(s);
  k->slabs++;
  k->slab_bytes += bytes;
  k->in_use += s->used - pending; /* magazines are taken out by the caller */
  k->free_in_slabs += s->capacity - s->used + pending;
  st->slab_tail_bytes += bytes - (size_t)s->capacity * s->block_size;
  st->resident.slabs += hak_os_resident(s->base, bytes);
}

/* A magazine's count as another thread sees it: the owner moves its top on
 * the fast paths without any lock or atomic, so this is a snapshot (an
 * aligned 8-byte load reads some value the owner stored). */
static hak_racy_read uint32_t mag_count_snapshot(hak_heap_t *h, unsigned c) {
  void **top = *(void **volatile *)&mag_of(h, c)->top;
  return (uint32_t)(top - h->mag_base[c]);
}

static void account_lists(hak_stats_t *st, hak_heap_t *h) {
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    st->cls[c].in_magazines += mag_count_snapshot(h, c);
    for (hak_slab_t *s = h->slabs[c].partial; s != NULL; s = s->next) account_slab(st, s);
    for (hak_slab_t *s = h->slabs[c].full; s != NULL; s = s->next) account_slab(st, s);
  }
}

/* Heaps (their mappings as metadata), their magazines and slabs, the
 * abandoned slabs, and the heaps' cumulative counters. */
void hak_heaps_account(hak_stats_t *st, hak_heap_stats_t *totals) {
  pthread_mutex_lock(&hak_heap_list_lock);
  stats_add(totals, &exited_stats);
  for (hak_heap_t *h = heap_list; h != NULL; h = h->next) {
    heap_lock(h);
    st->heaps++;
    st->metadata_bytes += h->map_bytes;
    st->resident.metadata += hak_os_resident(h, h->map_bytes);
    account_lists(st, h);
    heap_unlock(h);
    stats_add(totals, &h->stats);
  }
  for (hak_heap_t *h = orphans; h != NULL; h = h->next) { /* their slabs may be mid-change: mappings only */
    st->metadata_bytes += h->map_bytes;
    st->resident.metadata += hak_os_resident(h, h->map_bytes);
  }
  pthread_mutex_unlock(&hak_heap_list_lock);
  pthread_mutex_lock(&hak_abandoned_lock);
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++)
    for (hak_slab_t *s = abandoned[c]; s != NULL; s = s->next) account_slab(st, s);
  pthread_mutex_unlock(&hak_abandoned_lock);
}
