/* hooks.c — allocation hooks: callbacks the program registers to be told of
 * every malloc, free, realloc and aligned allocation (hak_hook_add).
 *
 * With no hook installed nothing here runs and the fast paths are unchanged:
 * adding the first hook closes every thread's gate (heap.c), so that every
 * call takes the slow path, which runs the hooks; removing the last opens
 * them again. Hooks run in registration order. A hook's own allocations
 * (and those of the operation it surrounds, such as realloc's copy) do not
 * call the hooks again: a thread-local flag marks the thread as inside the
 * hooks.
 *
 * Registration is thread-safe: the table is an array of slots, each an
 * atomic pointer to an immutable copy of the caller's hak_hooks_t. A call
 * runs the hooks it finds. hak_hook_remove empties the slot, then waits for a
 * grace period before freeing the copy: calls count themselves in one of two
 * counters, chosen by the parity of an epoch; the remover advances the epoch
 * and waits for the old counter to drain, while new calls count in the
 * other (so it cannot starve). A removed hook is never called after
 * hak_hook_remove returns; a hook must therefore not remove hooks itself.
 * One lock, hooks_lock, orders adds and removes (held through the wait); it
 * is never taken on an allocation path. */
#include <sched.h>
#include <stdlib.h>

#include "hakmem.h"
#include "internal.h"

#define HOOK_SLOTS 16 /* hooks installed at once */

static pthread_mutex_t hooks_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(hak_hooks_t *) slot[HOOK_SLOTS];
static unsigned installed;             /* under hooks_lock */
static _Atomic unsigned epoch;         /* its parity picks the counter new calls use */
static _Atomic unsigned active[2];     /* calls inside the hooks, by epoch parity */
static hak_tls unsigned my_parity;     /* the counter this thread's call used */
_Atomic bool hak_hooks_on;             /* any hook installed (read by the slow paths) */
static hak_tls bool in_hooks;          /* this thread is running hooks or a hooked call */

bool hak_hooks_enter(void) {
  if (in_hooks) return false;
  in_hooks = true;
  my_parity = atomic_load(&epoch) & 1;
  atomic_fetch_add(&active[my_parity], 1);
  return true;
}

void hak_hooks_leave(void) {
  atomic_fetch_sub(&active[my_parity], 1);
  in_hooks = false;
}

/* Each hook present, in slot order, with the callback chosen by the caller's
 * macro (the callback pointer may be NULL: that event is not wanted). */
#define FOR_EACH_HOOK(h)                                                       \
  for (unsigned i_ = 0; i_ < HOOK_SLOTS; i_++)                                 \
    for (hak_hooks_t *h = atomic_load_explicit(&slot[i_], memory_order_acquire); h != NULL; h = NULL)

void hak_hooks_malloc_before(size_t size) {
  FOR_EACH_HOOK(h) if (h->malloc_before) h->malloc_before(size, h->arg);
}
void hak_hooks_malloc_after(void *p, size_t size) {
  FOR_EACH_HOOK(h) if (h->malloc_after) h->malloc_after(p, size, h->arg);
}
void hak_hooks_free_before(void *p) {
  FOR_EACH_HOOK(h) if (h->free_before) h->free_before(p, h->arg);
}
void hak_hooks_free_after(void *p) {
  FOR_EACH_HOOK(h) if (h->free_after) h->free_after(p, h->arg);
}
void hak_hooks_realloc_before(void *p, size_t size) {
  FOR_EACH_HOOK(h) if (h->realloc_before) h->realloc_before(p, size, h->arg);
}
void hak_hooks_realloc_after(void *old, void *p, size_t size) {
  FOR_EACH_HOOK(h) if (h->realloc_after) h->realloc_after(old, p, size, h->arg);
}
void hak_hooks_aligned_before(size_t align, size_t size) {
  FOR_EACH_HOOK(h) if (h->aligned_before) h->aligned_before(align, size, h->arg);
}
void hak_hooks_aligned_after(void *p, size_t align, size_t size) {
  FOR_EACH_HOOK(h) if (h->aligned_after) h->aligned_after(p, align, size, h->arg);
}

__attribute__((visibility("default"))) int hak_hook_add(const hak_hooks_t *hooks) {
  if (hooks == NULL) return -1;
  if (hak_init_state != HAK_INIT_DONE) hak_init_slow();
  hak_hooks_t *copy = hak_meta_alloc(sizeof *copy);
  if (copy == NULL) return -1;
  *copy = *hooks;
  pthread_mutex_lock(&hooks_lock);
  int id = -1;
  for (int i = 0; i < HOOK_SLOTS && id < 0; i++)
    if (atomic_load(&slot[i]) == NULL) id = i;
  if (id >= 0) {
    atomic_store_explicit(&slot[id], copy, memory_order_release);
    if (installed++ == 0) {
      atomic_store(&hak_hooks_on, true);
      hak_gates_close();
    }
  }
  pthread_mutex_unlock(&hooks_lock);
  if (id < 0) hak_meta_free(copy, sizeof *copy);
  return id;
}

__attribute__((visibility("default"))) int hak_hook_remove(int id) {
  if (id < 0 || id >= HOOK_SLOTS) return -1;
  pthread_mutex_lock(&hooks_lock);
  hak_hooks_t *copy = atomic_exchange(&slot[id], NULL);
  if (copy != NULL && --installed == 0) {
    atomic_store(&hak_hooks_on, false);
    hak_gates_open();
  }
  if (copy != NULL) { /* a grace period: calls that may have read the slot finish */
    unsigned old = atomic_fetch_add(&epoch, 1) & 1;
    while (atomic_load(&active[old]) != 0) sched_yield();
  }
  pthread_mutex_unlock(&hooks_lock);
  if (copy == NULL) return -1;
  hak_meta_free(copy, sizeof *copy);
  return 0;
}
