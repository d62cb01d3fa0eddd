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
 * Registration is thread-safe: the hooks installed are one immutable table
 * (an array in registration order), published through one atomic pointer.
 * A call reads the pointer and runs the table it found. hak_hook_add and
 * hak_hook_remove build a new table, publish it, then wait for a grace
 * period before freeing the old one (and a removed hook's entry with it):
 * calls count themselves in one of two counters, chosen by the parity of an
 * epoch; the writer advances the epoch and waits for the old counter to
 * drain, while new calls count in the other (so it cannot starve). A removed
 * hook is never called after hak_hook_remove returns; a hook must therefore
 * not add or remove hooks itself.
 *
 * Why a call never runs a freed table. Every access to table, epoch and
 * active[] is seq_cst, so they all fall in one total order S, and a seq_cst
 * load reads the last store before it in S. A call (hak_hooks_enter) reads
 * the epoch (parity p), increments active[p], and reads the epoch again: if
 * the parity changed meanwhile it undoes the increment and starts over, so
 * when it goes on, epoch still had parity p after its increment in S. It
 * reads table only after that. Let a writer free table T that the call read.
 * The writer exchanged T for a newer table after the call's read of table in
 * S (else the call would have read the newer one), then advanced the epoch:
 * after the call's second epoch read. Take the first epoch advance after
 * that read, by the writer W0 (the freeing writer or an earlier one, writers
 * being serialised by hooks_lock): it moves the epoch from the value the call
 * read, parity p, and W0 waits for active[p] to read 0. The call's increment
 * of active[p] comes before W0's reads of it in S, so W0 waits until the call
 * has left; a later writer starts only after W0 has returned. The re-read
 * matters: a call that read the epoch, then stalled while a whole writer went
 * by, would otherwise count in the counter the next writer does not wait
 * for. Without seq_cst on the table exchange and on the call's table read
 * (acq_rel and acquire), the writer's "store table, read active[p]" and the
 * call's "increment active[p], read table" form the store-buffering pattern:
 * each may miss the other's store, the call running T while the writer frees
 * it. On x86 a seq_cst load is the same plain load as an acquire one and the
 * exchange is the same xchg, and none of this is on a fast path.
 * One lock, hooks_lock, orders adds and removes (held through the wait); it
 * is never taken on an allocation path. */
#include <limits.h>
#include <sched.h>
#include <stdlib.h>

#include "internal.h"

#define HOOK_MAX 16 /* hooks installed at once */

typedef struct hook_table_s {
  unsigned n;
  int id[HOOK_MAX];
  hak_hooks_t hooks[HOOK_MAX]; /* in registration order */
} hook_table_t;

static pthread_mutex_t hooks_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(hook_table_t *) table;  /* NULL: no hook */
static int next_id;                    /* under hooks_lock */
static _Atomic unsigned epoch;         /* its parity picks the counter new calls use */
static _Atomic unsigned active[2];     /* calls inside the hooks, by epoch parity */
static hak_tls unsigned my_parity;     /* the counter this thread's call used */
static hak_tls bool in_hooks;          /* this thread is running hooks or a hooked call */

bool hak_hooks_enter(void) {
  if (in_hooks) return false;
  in_hooks = true;
  for (;;) { /* seq_cst throughout: see the top of the file */
    unsigned p = atomic_load(&epoch) & 1;
    atomic_fetch_add(&active[p], 1);
    if ((atomic_load(&epoch) & 1) == p) {
      my_parity = p;
      return true;
    }
    atomic_fetch_sub(&active[p], 1); /* a writer advanced the epoch meanwhile */
  }
}

void hak_hooks_leave(void) {
  atomic_fetch_sub(&active[my_parity], 1);
  in_hooks = false;
}

/* Each hook installed, in registration order, with the callback chosen by
 * the caller's macro (the callback pointer may be NULL: that event is not
 * wanted). */
#define FOR_EACH_HOOK(h)                                                                       \
  for (hook_table_t *t_ = atomic_load(&table); t_ != NULL; t_ = NULL)                       \
    for (const hak_hooks_t *h = t_->hooks; h < t_->hooks + t_->n; h++)

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

/* Publishes t (NULL: no hook) as the table, switching the gates when hooks
 * come or go, waits until no call can still be reading the old table, and
 * frees it. hooks_lock held. */
static void publish(hook_table_t *t) {
  hook_table_t *old = atomic_exchange(&table, t); /* seq_cst: see the top of the file */
  if (old == NULL && t != NULL) {
    atomic_fetch_or(&hak_observers, HAK_OBS_HOOKS); /* read by the slow paths */
    hak_gates_close(true);
  } else if (old != NULL && t == NULL) {
    atomic_fetch_and(&hak_observers, ~HAK_OBS_HOOKS);
    hak_gates_open(true);
  }
  if (old == NULL) return;
  unsigned parity = atomic_fetch_add(&epoch, 1) & 1; /* a grace period */
  while (atomic_load(&active[parity]) != 0) sched_yield();
  hak_meta_free(old, sizeof *old);
}

/* hak_hook_add (api.c, which initialises first and blocks signals). */
int hak_hooks_install(const hak_hooks_t *hooks) {
  pthread_mutex_lock(&hooks_lock);
  hook_table_t *old = atomic_load(&table), *t = NULL;
  int id = -1;
  if ((old == NULL || old->n < HOOK_MAX) && next_id < INT_MAX && (t = hak_meta_alloc(sizeof *t)) != NULL) {
    if (old != NULL) *t = *old;
    else t->n = 0;
    id = next_id++;
    t->id[t->n] = id;
    t->hooks[t->n++] = *hooks;
    publish(t);
  }
  pthread_mutex_unlock(&hooks_lock);
  return id;
}

/* hak_hook_remove (api.c). */
int hak_hooks_uninstall(int id) {
  pthread_mutex_lock(&hooks_lock);
  hook_table_t *old = atomic_load(&table), *t = NULL;
  unsigned at = old != NULL ? old->n : 0;
  for (unsigned i = 0; old != NULL && i < old->n; i++)
    if (old->id[i] == id) at = i;
  int r = -1;
  if (old != NULL && at < old->n && (old->n == 1 || (t = hak_meta_alloc(sizeof *t)) != NULL)) {
    if (t != NULL) {
      t->n = 0;
      for (unsigned i = 0; i < old->n; i++)
        if (i != at) {
          t->id[t->n] = old->id[i];
          t->hooks[t->n++] = old->hooks[i];
        }
    }
    publish(t);
    r = 0;
  }
  pthread_mutex_unlock(&hooks_lock);
  return r;
}
