/* stack.c — call stacks of allocations, for the heap profiler (profile.c)
 * and the leak checker (leakcheck.c): capture inside malloc (observe.c), a
 * table that keeps each distinct stack once, and the scrub of the dead stack.
 *
 * Capture. _Unwind_Backtrace (libgcc, from the .eh_frame tables every Debian
 * object carries, so code built without frame pointers unwinds too). It
 * allocates nothing and its lookups (dl_iterate_phdr over the loaded
 * objects' .eh_frame_hdr) keep no state that a first call must set up, but
 * it is called once at start-up anyway so that any lazy work is done then.
 * hakmem does not link libgcc_s: a process that neither profiles nor checks
 * leaks never maps it (some 90 KiB resident). hak_stack_init, at start-up
 * when HAKMEM_PROFILE or HAKMEM_LEAKCHECK is set, or from hak_profile_start,
 * loads it (dlopen, with no lock of hakmem held and the thread's calls
 * untracked; its mallocs are served as any) and calls the unwinder through
 * the two function pointers it resolves; until then, or if it cannot be
 * loaded (said once on stderr), a capture finds no frame.
 * The frames of hakmem itself are left out: the API and its slow paths are
 * placed in the section hak_text (HAK_TEXT: malloc_api.c, observe.c, realloc.c,
 * alloc.c, free.c), and the stack
 * kept starts at the first frame outside it after the first inside it, so
 * frame 0 is the program's call of malloc whatever the path (tail calls
 * included).
 *
 * Safety. The tracking runs inside the depth mark (reentry.c): a malloc or
 * free made meanwhile on the thread (by a signal handler, or by something
 * the unwinder calls) is re-entrant, takes none of this layer's locks and
 * is not tracked; a free waits on the deferred list and is tracked when it
 * is made, so a record is never removed after its address was handed out
 * again. hak_track_busy marks the calls that are hakmem's own (the inner
 * calls of a tracked realloc, the profiler's API): not tracked. Across fork: the prepare handler stops new captures and waits for
 * those running (another thread's unwinder may hold the loader's lock, which
 * the child could never take again), then takes the table locks; the child
 * re-initialises them. Memory: the table and its stacks come from hakmem's
 * descriptor arena (meta.c), never from malloc.
 *
 * Locks: one per shard of the stack table (shard_lock), taken with nothing
 * else of this layer held; the profiler's and leak checker's locks are taken
 * before it (internal.h, lock order). */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unwind.h>

#include "internal.h"


/* ---- capture ------------------------------------------------------------------- */
extern char __start_hak_text[], __stop_hak_text[];

static _Atomic unsigned unwinders;  /* threads inside _Unwind_Backtrace */
static _Atomic bool unwind_closed;  /* fork in progress: no new capture */

/* libgcc_s's unwinder, resolved by hak_stack_init (NULL until then). */
typedef _Unwind_Reason_Code (*unwind_backtrace_fn)(_Unwind_Trace_Fn, void *);
typedef _Unwind_Ptr (*unwind_get_ip_fn)(struct _Unwind_Context *);
static _Atomic(unwind_backtrace_fn) unwind_backtrace;
static unwind_get_ip_fn unwind_get_ip; /* set before unwind_backtrace is published */
static pthread_once_t unwinder_once = PTHREAD_ONCE_INIT;

typedef struct capture_s {
  void **frames;
  int n, max;
  int phase; /* 0: before hakmem's frames, 1: in them, 2: keeping */
} capture_t;

static _Unwind_Reason_Code capture_frame(struct _Unwind_Context *ctx, void *arg) {
  capture_t *c = arg;
  uintptr_t ip = unwind_get_ip(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  bool ours = ip >= (uintptr_t)__start_hak_text && ip < (uintptr_t)__stop_hak_text;
  if (c->phase == 0) {
    if (ours) c->phase = 1;
    return _URC_NO_REASON;
  }
  if (c->phase == 1) {
    if (ours) return _URC_NO_REASON;
    c->phase = 2;
  }
  c->frames[c->n++] = (void *)ip;
  return c->n < c->max ? _URC_NO_REASON : _URC_END_OF_STACK;
}

int hak_stack_capture(void **frames, int max) {
  unwind_backtrace_fn backtrace = atomic_load_explicit(&unwind_backtrace, memory_order_acquire);
  if (backtrace == NULL) return 0; /* not loaded */
  for (;;) {
    atomic_fetch_add(&unwinders, 1);
    if (!atomic_load(&unwind_closed)) break;
    atomic_fetch_sub(&unwinders, 1);
    while (atomic_load(&unwind_closed)) sched_yield();
  }
  capture_t c = {frames, 0, max, 0};
  backtrace(capture_frame, &c);
  atomic_fetch_sub(&unwinders, 1);
  return c.n;
}

/* ---- the stack table -------------------------------------------------------------- */
#define SHARDS 16
#define SCRUB_BYTES 8192
#define ARENA_BYTES ((size_t)1 << 20)

typedef struct shard_s {
  _Atomic bool lock;
  hak_stack_t **slot; /* open addressing by hash; NULL: empty */
  size_t cap, count;
  char *arena, *arena_end;
} shard_t;
static shard_t shards[SHARDS];

static void spin_lock(_Atomic bool *l) {
  while (atomic_exchange_explicit(l, true, memory_order_acquire))
    while (atomic_load_explicit(l, memory_order_relaxed)) sched_yield();
}
static void spin_unlock(_Atomic bool *l) { atomic_store_explicit(l, false, memory_order_release); }

static uint64_t stack_hash(void *const *frames, int n, const char *file, int line) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n ^ ((uint64_t)(uintptr_t)file << 1) ^ (uint64_t)line;
  for (int i = 0; i < n; i++) {
    h ^= (uint64_t)(uintptr_t)frames[i];
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  return h | 1; /* never 0 */
}

static bool stack_equal(const hak_stack_t *s, void *const *frames, int n, const char *file, int line) {
  return s->depth == (uint32_t)n && s->file == file && s->line == line &&
         memcmp(s->frames, frames, (size_t)n * sizeof(void *)) == 0;
}

/* Doubles the shard's slot array; false when out of memory. Shard locked. */
static bool shard_grow(shard_t *sh) {
  size_t cap = sh->cap ? sh->cap * 2 : 1024;
  hak_stack_t **slot = hak_meta_alloc(cap * sizeof *slot);
  if (slot == NULL) return false;
  for (size_t i = 0; i < sh->cap; i++) {
    hak_stack_t *s = sh->slot[i];
    if (s == NULL) continue;
    size_t j = (size_t)(s->hash >> 8) & (cap - 1);
    while (slot[j] != NULL) j = (j + 1) & (cap - 1);
    slot[j] = s;
  }
  if (sh->slot != NULL) hak_meta_free(sh->slot, sh->cap * sizeof *slot);
  sh->slot = slot;
  sh->cap = cap;
  return true;
}

const hak_stack_t *hak_stack_intern(void *const *frames, int n, const char *file, int line) {
  uint64_t h = stack_hash(frames, n, file, line);
  shard_t *sh = &shards[h % SHARDS];
  spin_lock(&sh->lock);
  hak_stack_t *found = NULL;
  if ((sh->count + 1) * 2 > sh->cap && !shard_grow(sh)) goto out;
  size_t j = (size_t)(h >> 8) & (sh->cap - 1);
  for (hak_stack_t *s; (s = sh->slot[j]) != NULL; j = (j + 1) & (sh->cap - 1))
    if (s->hash == h && stack_equal(s, frames, n, file, line)) {
      found = s;
      goto out;
    }
  size_t bytes = hak_align_up(sizeof(hak_stack_t) + (size_t)n * sizeof(void *), 16);
  if (sh->arena == NULL || (size_t)(sh->arena_end - sh->arena) < bytes) {
    char *a = hak_meta_alloc(ARENA_BYTES); /* kept for the life of the process */
    if (a == NULL) goto out;
    sh->arena = a;
    sh->arena_end = a + ARENA_BYTES;
  }
  found = (hak_stack_t *)sh->arena;
  sh->arena += bytes;
  found->hash = h;
  found->file = file;
  found->line = line;
  found->depth = (uint32_t)n;
  memcpy(found->frames, frames, (size_t)n * sizeof(void *));
  sh->slot[j] = found;
  sh->count++;
out:
  spin_unlock(&sh->lock);
  return found;
}

/* The leak checker scans the stack conservatively at exit (leakcheck.c):
 * copies of block addresses that the tracking code left in the dead part of
 * the stack below the program's frames would look like pointers the program
 * holds (memcheck's allocator runs on its own stack and leaves none). This
 * clears the stack below the caller, as deep as the tracking goes. */
void hak_stack_scrub(void) {
  char area[SCRUB_BYTES];
  explicit_bzero(area, sizeof area);
  __asm__ volatile("" : : "r"(area) : "memory");
}

/* ---- start-up and fork ---------------------------------------------------------------- */
static void unwinder_load(void) {
  void *lib = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
  void *bt = lib == NULL ? NULL : dlsym(lib, "_Unwind_Backtrace");
  void *ip = lib == NULL ? NULL : dlsym(lib, "_Unwind_GetIP");
  if (bt == NULL || ip == NULL) {
    const char *why = dlerror();
    hak_out_error("hakmem: cannot load the unwinder (libgcc_s.so.1: %s): no call stacks\n",
                  why != NULL ? why : "no _Unwind_Backtrace");
    return;
  }
  unwind_get_ip = (unwind_get_ip_fn)(uintptr_t)ip;
  atomic_store_explicit(&unwind_backtrace, (unwind_backtrace_fn)(uintptr_t)bt, memory_order_release);
}

/* Loads the unwinder once and calls it once (any lazy work of its first
 * call done here, out of any allocation). No lock of hakmem held. */
void hak_stack_init(void) {
  void *frames[4];
  bool busy = hak_track_busy;
  hak_track_busy = true;
  pthread_once(&unwinder_once, unwinder_load);
  (void)hak_stack_capture(frames, 4);
  hak_track_busy = busy;
}

void hak_stack_fork_prepare(void) {
  atomic_store(&unwind_closed, true);
  while (atomic_load(&unwinders) != 0) sched_yield();
  for (int i = 0; i < SHARDS; i++) spin_lock(&shards[i].lock);
}

void hak_stack_fork_parent(void) {
  for (int i = SHARDS - 1; i >= 0; i--) spin_unlock(&shards[i].lock);
  atomic_store(&unwind_closed, false);
}

void hak_stack_fork_child(void) {
  for (int i = 0; i < SHARDS; i++) atomic_store(&shards[i].lock, false);
  atomic_store(&unwinders, 0);
  atomic_store(&unwind_closed, false);
}
