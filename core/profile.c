/* profile.c — the sampling heap profiler: which call stacks hold the memory
 * in use, and which allocated the most, in the gperftools heap-profile
 * format that google-pprof reads.
 *
 * Sampling by bytes. Sample points fall on the line of bytes allocated as a
 * Poisson process of rate 1 / HAKMEM_PROFILE_RATE: each thread counts down
 * an exponentially distributed number of bytes (hak_prof_left, drawn with a
 * per-thread xorshift generator), and the allocation that takes the count
 * below zero is sampled; then a new interval is drawn from its end. So a
 * block of s bytes is sampled with probability 1 - exp(-s / rate), whatever
 * the sizes around it, independently of every other block: each sampled
 * block stands for 1 / (1 - exp(-s / rate)) blocks of its size. The profile
 * keeps one bucket per (stack, size), so that google-pprof's reweighting of a
 * line by its mean size (heap_v2) is that exact inverse probability.
 *
 * Cost. Off: nothing (no instruction is added to the fast paths). On: every
 * thread's malloc gate is closed (heap.c), so each malloc takes a slow path
 * that subtracts its size from the countdown (malloc_api.c). Free's gate
 * stays open: a sampled small block gets a page run of its own (medium.c,
 * page-map tag 0), so that its free fails the fast path, and a free on the
 * slow path reads one counter of a counting filter of the sampled blocks
 * alive (hak_prof_filter): only a sampled allocation or the free of a block
 * whose slot is non-zero comes here.
 *
 * Output (hak_profile_dump; at exit; and when asked by an option, below):
 *   heap profile: <in-use objects>: <in-use bytes> [<allocated objects>: <bytes>] @ heap_v2/<rate>
 *   <objects>: <bytes> [<objects>: <bytes>] @ 0x<frame> 0x<frame> ...   (one line per bucket)
 *   # source: file.c:12                                   (HAK_TRACE_SOURCE calls)
 *   MAPPED_LIBRARIES:
 *   <the process's /proc/self/maps>
 * Counts are the samples themselves; google-pprof scales them by the rate.
 * Files are named <prefix>.<pid>.0001.heap, .0002, ... in every process (as
 * jemalloc's <prefix>.<pid>.<seq>...heap), so that two processes with the
 * same HAKMEM_PROFILE (a program and the one that runs it, a forked child)
 * never write the same file; each is created exclusively (O_EXCL), and a
 * name already taken (a file left by an earlier process of the same pid)
 * is passed over for the next number: no file is ever overwritten. A path
 * given to hak_profile_dump is written as asked (replaced if it exists).
 * Every dump says on stderr where it went, what is in use by the profile's
 * estimate (what google-pprof reports as its total) and why:
 *   hakmem: profile: <path>: 12.3 MiB in use in 1,234 blocks (<reason>)
 *
 * When (each check makes one dump at most; as gperftools' heap profiler):
 *   allocation interval  HAKMEM_PROFILE_INTERVAL more bytes allocated;
 *   inuse interval       the in-use estimate exceeds the high-water mark (the
 *                        most it was at a dump, of any reason) by
 *                        HAKMEM_PROFILE_INUSE_INTERVAL bytes;
 *   time interval        HAKMEM_PROFILE_TIME_INTERVAL seconds since the last dump;
 *   signal               HAKMEM_PROFILE_SIGNAL came: its handler only raises a
 *                        flag (a handler may not take prof_lock, allocate or
 *                        write a file: the signal may have interrupted this
 *                        thread inside them);
 *   exit, hak_profile_dump call.
 * The first two can only happen at a sample (the estimate and the bytes
 * allocated move only there), and are checked there. The last two are
 * checked at every sample too, and at every tick of the scavenger (100 ms),
 * which is what bounds the wait of a program that is idle, blocked or no
 * longer allocating: a flag checked at samples only would wait for the next
 * half MiB allocated, which an idle program never gets to. The scavenger's
 * thread takes no signals and holds no allocator lock but pass_lock, which
 * comes before prof_lock. Variants without a scavenger (no dynamic flush)
 * dump at the next sample only.
 *
 * One lock, prof_lock: the buckets, the table of sampled blocks alive, the
 * file numbering. Taken before the stack table's shard locks (stack.c) and
 * hakmem's descriptor lock (meta.c), never inside another hakmem lock. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

hak_tls int64_t hak_prof_left;
HAK_BSS_LARGE _Atomic uint16_t hak_prof_filter[1u << HAK_PROF_FILTER_BITS];

static hak_tls uint64_t rng;      /* 0: not seeded yet */
static hak_tls int64_t drawn;     /* the interval drawn last */

static pthread_mutex_t prof_lock = PTHREAD_MUTEX_INITIALIZER;
static bool prof_on;              /* under prof_lock */
static bool at_exit_set;
static char prefix[PATH_MAX - 32];
static unsigned dump_seq;
static _Atomic uint64_t rate = 512 * 1024;
static uint64_t interval, next_dump; /* HAKMEM_PROFILE_INTERVAL */
static _Atomic uint64_t allocated;   /* bytes allocated since start, counted at each sample */
/* The estimate of what is in use (google-pprof's: each sampled block of s
 * bytes stands for 1 / (1 - exp(-s / rate)) blocks) and the high-water mark
 * of HAKMEM_PROFILE_INUSE_INTERVAL; under prof_lock. */
static double inuse_bytes, high_water;
static uint64_t inuse_interval;
/* HAKMEM_PROFILE_TIME_INTERVAL in ns; when the next time dump is due
 * (UINT64_MAX: never; read without prof_lock by the scavenger's tick). */
static uint64_t time_interval;
static _Atomic uint64_t time_due = UINT64_MAX;
static volatile sig_atomic_t signalled; /* HAKMEM_PROFILE_SIGNAL came */

typedef enum dump_reason_e {
  DUMP_CALL, DUMP_EXIT, DUMP_ALLOCATION, DUMP_INUSE, DUMP_TIME, DUMP_SIGNAL
} dump_reason_t;
static const char *const reason_text[] = {
  [DUMP_CALL] = "hak_profile_dump call", [DUMP_EXIT] = "exit", [DUMP_ALLOCATION] = "allocation interval",
  [DUMP_INUSE] = "inuse interval", [DUMP_TIME] = "time interval", [DUMP_SIGNAL] = "signal",
};

/* ---- the generator ---------------------------------------------------------------- */
static uint64_t rng_next(void) {
  uint64_t x = rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng = x;
  return x * 0x2545f4914f6cdd1dull;
}

/* -ln(u) for u in (0, 1], without libm: u = m * 2^e with m in [1, 2), and
 * ln m = 2 atanh(z), z = (m - 1) / (m + 1) < 1/3, by its series (error below 1e-9). */
static double neg_log(double u) {
  union { double d; uint64_t b; } v = {u};
  int e = (int)((v.b >> 52) & 0x7ff) - 1023;
  v.b = (v.b & ~((uint64_t)0x7ff << 52)) | ((uint64_t)1023 << 52);
  double z = (v.d - 1) / (v.d + 1), z2 = z * z, term = z, sum = 0;
  for (int k = 1; k <= 19; k += 2) {
    sum += term / k;
    term *= z2;
  }
  return -(2 * sum + e * 0.6931471805599453);
}

/* exp(-x) for x >= 0, without libm: x = k ln 2 + r with r in [0, ln 2), and
 * exp(-r) by its series (alternating, terms below 1e-19 after 20). */
static double exp_neg(double x) {
  if (x > 700) return 0;
  int k = (int)(x / 0.6931471805599453);
  double r = x - k * 0.6931471805599453, term = 1, sum = 1;
  for (int n = 1; n <= 20; n++) {
    term *= -r / n;
    sum += term;
  }
  union { double d; uint64_t b; } v = {.b = (uint64_t)(1023 - k) << 52}; /* 2^-k, k <= 1010 */
  return sum * v.d;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The next interval: exponential with mean rate, at least 1 byte. */
static int64_t draw(void) {
  if (rng == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rng = ((uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull) ^ (uint64_t)(uintptr_t)&rng ^
          ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_sec;
    if (rng == 0) rng = 1;
  }
  double u = ((double)(rng_next() >> 11) + 1) * (1.0 / 9007199254740992.0); /* (0, 1] */
  double d = neg_log(u) * (double)atomic_load_explicit(&rate, memory_order_relaxed);
  return d < 1 ? 1 : d > 4e18 ? (int64_t)4e18 : (int64_t)d;
}

/* The countdown went below zero at an allocation of size bytes. A thread's
 * first countdown started at 0, not at a drawn interval: then the interval
 * is drawn now, from before this allocation, and this one is not a sample
 * unless the interval is shorter than it. */
static bool redraw(size_t size) {
  if (rng == 0) {
    drawn = draw();
    hak_prof_left = drawn - (int64_t)size;
    if (hak_prof_left >= 0) return false;
  }
  uint64_t since = (uint64_t)(drawn - hak_prof_left); /* bytes since the last draw, this block included */
  atomic_fetch_add_explicit(&allocated, since, memory_order_relaxed);
  drawn = draw();
  hak_prof_left = drawn;
  return true;
}

/* ---- buckets and sampled blocks --------------------------------------------------------- */
typedef struct bucket_s {
  const hak_stack_t *stack;
  size_t size;
  uint64_t allocs, frees;  /* samples of this stack and size; frees of them */
  double scale;            /* the blocks a sample of this size stands for: 1 / (1 - exp(-size / rate)) */
} bucket_t;

typedef struct live_s {
  uintptr_t p;             /* 0: empty, 1: deleted */
  bucket_t *bucket;
} live_t;

#define BUCKET_CHUNK 4096  /* buckets per chunk */
typedef struct chunk_s {
  struct chunk_s *next;
  size_t used;
  bucket_t b[BUCKET_CHUNK];
} chunk_t;

static chunk_t *chunks;
static bucket_t **bslot;        /* open addressing on (stack, size) */
static size_t bcap, bcount;
static live_t *live;            /* open addressing on the block address */
static size_t lcap, lcount, ldead;

static uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

static bucket_t *bucket_of(const hak_stack_t *st, size_t size) {
  if ((bcount + 1) * 2 > bcap) {
    size_t cap = bcap ? bcap * 2 : 4096;
    bucket_t **fresh = hak_meta_alloc(cap * sizeof *fresh);
    if (fresh == NULL) return NULL;
    for (size_t i = 0; i < bcap; i++) {
      bucket_t *b = bslot[i];
      if (b == NULL) continue;
      size_t j = mix((uint64_t)(uintptr_t)b->stack ^ b->size) & (cap - 1);
      while (fresh[j] != NULL) j = (j + 1) & (cap - 1);
      fresh[j] = b;
    }
    if (bslot != NULL) hak_meta_free(bslot, bcap * sizeof *bslot);
    bslot = fresh;
    bcap = cap;
  }
  size_t j = mix((uint64_t)(uintptr_t)st ^ size) & (bcap - 1);
  for (bucket_t *b; (b = bslot[j]) != NULL; j = (j + 1) & (bcap - 1))
    if (b->stack == st && b->size == size) return b;
  if (chunks == NULL || chunks->used == BUCKET_CHUNK) {
    chunk_t *c = hak_meta_alloc(sizeof *c);
    if (c == NULL) return NULL;
    c->next = chunks;
    chunks = c;
  }
  bucket_t *b = &chunks->b[chunks->used++];
  b->stack = st;
  b->size = size;
  b->scale = 1 / (1 - exp_neg((double)size / (double)atomic_load_explicit(&rate, memory_order_relaxed)));
  bslot[j] = b;
  bcount++;
  return b;
}

static size_t live_find(uintptr_t p) { /* its slot, or lcap */
  if (lcap == 0) return lcap;
  for (size_t j = mix(p) & (lcap - 1);; j = (j + 1) & (lcap - 1)) {
    if (live[j].p == p) return j;
    if (live[j].p == 0) return lcap;
  }
}

static bool live_insert(uintptr_t p, bucket_t *b) {
  if ((lcount + ldead + 1) * 2 > lcap) {
    size_t cap = lcap ? (lcount * 4 > lcap ? lcap * 2 : lcap) : 1024;
    live_t *fresh = hak_meta_alloc(cap * sizeof *fresh);
    if (fresh == NULL) return false;
    for (size_t i = 0; i < lcap; i++) {
      if (live[i].p <= 1) continue;
      size_t j = mix(live[i].p) & (cap - 1);
      while (fresh[j].p != 0) j = (j + 1) & (cap - 1);
      fresh[j] = live[i];
    }
    if (live != NULL) hak_meta_free(live, lcap * sizeof *live);
    live = fresh;
    lcap = cap;
    ldead = 0;
  }
  size_t j = mix(p) & (lcap - 1);
  while (live[j].p > 1) j = (j + 1) & (lcap - 1);
  if (live[j].p == 1) ldead--;
  live[j].p = p;
  live[j].bucket = b;
  lcount++;
  atomic_fetch_add_explicit(&hak_prof_filter[hak_prof_slot((void *)p)], 1, memory_order_relaxed);
  return true;
}

/* Drops every bucket and sampled block. prof_lock held. */
static void reset_locked(void) {
  while (chunks != NULL) {
    chunk_t *next = chunks->next;
    hak_meta_free(chunks, sizeof *chunks);
    chunks = next;
  }
  if (bslot != NULL) hak_meta_free(bslot, bcap * sizeof *bslot);
  if (live != NULL) hak_meta_free(live, lcap * sizeof *live);
  bslot = NULL;
  live = NULL;
  bcap = bcount = lcap = lcount = ldead = 0;
  for (size_t i = 0; i < (1u << HAK_PROF_FILTER_BITS); i++) atomic_store_explicit(&hak_prof_filter[i], 0, memory_order_relaxed);
  atomic_store(&allocated, 0);
  next_dump = interval;
  inuse_bytes = high_water = 0;
  atomic_store(&time_due, UINT64_MAX); /* set by hak_prof_start */
}

/* ---- dumps ---------------------------------------------------------------------------------- */
/* What a dump says it holds: the blocks and bytes in use by the estimate,
 * over the lines of the file, as google-pprof reweights and sums them. */
typedef struct dump_figures_s {
  double blocks, bytes;
} dump_figures_t;

/* Writes the profile to fd, which it closes. prof_lock held. */
static int dump_locked(int fd, dump_figures_t *fig) {
  hak_out_t o = {.fd = fd};
  uint64_t in_n = 0, in_b = 0, all_n = 0, all_b = 0;
  *fig = (dump_figures_t){0, 0};
  for (chunk_t *c = chunks; c != NULL; c = c->next)
    for (size_t i = 0; i < c->used; i++) {
      const bucket_t *b = &c->b[i];
      in_n += b->allocs - b->frees;
      in_b += (b->allocs - b->frees) * b->size;
      all_n += b->allocs;
      all_b += b->allocs * b->size;
    }
  hak_out_printf(&o, "heap profile: %llu: %llu [%llu: %llu] @ heap_v2/%llu\n", (unsigned long long)in_n,
                 (unsigned long long)in_b, (unsigned long long)all_n, (unsigned long long)all_b,
                 (unsigned long long)atomic_load(&rate));
  for (chunk_t *c = chunks; c != NULL; c = c->next)
    for (size_t i = 0; i < c->used; i++) {
      const bucket_t *b = &c->b[i];
      if (b->stack->depth == 0) continue; /* the unwinder found nothing: in the totals only */
      uint64_t n = b->allocs - b->frees;
      fig->blocks += (double)n * b->scale;
      fig->bytes += (double)(n * b->size) * b->scale;
      hak_out_printf(&o, "%llu: %llu [%llu: %llu] @", (unsigned long long)n, (unsigned long long)(n * b->size),
                     (unsigned long long)b->allocs, (unsigned long long)(b->allocs * b->size));
      for (uint32_t f = 0; f < b->stack->depth; f++) hak_out_printf(&o, " %p", b->stack->frames[f]);
      hak_out_write(&o, "\n", 1);
      if (b->stack->file != NULL) hak_out_printf(&o, "# source: %s:%d\n", b->stack->file, b->stack->line);
    }
  hak_out_write(&o, "\nMAPPED_LIBRARIES:\n", 19);
  hak_out_copy_file(&o, "/proc/self/maps");
  hak_out_flush(&o);
  bool failed = o.failed;
  if (close(fd) != 0) failed = true;
  return failed ? -1 : 0;
}

/* n with a comma between groups of three digits, into buf. */
static const char *grouped(uint64_t n, char buf[32]) {
  char digits[24];
  int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)n), j = 0;
  for (int i = 0; i < len; i++) {
    if (i > 0 && (len - i) % 3 == 0) buf[j++] = ',';
    buf[j++] = digits[i];
  }
  buf[j] = '\0';
  return buf;
}

/* After a dump, whether written or not (a file that cannot be written is
 * not tried again at every sample): the line on stderr, the high-water mark,
 * the next time dump. prof_lock held. */
static void dumped_locked(int r, const char *path, const dump_figures_t *fig, dump_reason_t why) {
  if (r == 0) {
    char blocks[32];
    hak_out_error("hakmem: profile: %s: %.1f MiB in use in %s blocks (%s)\n", path, fig->bytes / 1048576.0,
                  grouped((uint64_t)(fig->blocks + 0.5), blocks), reason_text[why]);
  }
  if (inuse_bytes > high_water) high_water = inuse_bytes;
  if (time_interval != 0) atomic_store(&time_due, now_ns() + time_interval);
}

/* A name already taken is passed over; after this many in a row, give up. */
#define NAME_TRIES 1000

/* The next numbered file of the prefix, <prefix>.<pid>.<seq>.heap, created
 * exclusively; said why it cannot be written but for a call (whose caller
 * gets -1 and errno). prof_lock held. */
static int dump_numbered_locked(dump_reason_t why) {
  char path[PATH_MAX];
  int fd = -1;
  for (int tries = 0; fd < 0 && tries < NAME_TRIES; tries++) {
    snprintf(path, sizeof path, "%s.%d.%04u.heap", prefix, (int)getpid(), ++dump_seq);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  dump_figures_t fig;
  int r = fd >= 0 ? dump_locked(fd, &fig) : -1;
  int saved = errno;
  if (r != 0 && why != DUMP_CALL) hak_out_error("hakmem: heap profile: cannot write %s: %s\n", path, strerror(errno));
  dumped_locked(r, path, &fig, why);
  errno = saved;
  return r;
}

/* hak_profile_dump(path): that file, replaced if it exists. prof_lock held. */
static int dump_path_locked(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  dump_figures_t fig;
  int r = fd >= 0 ? dump_locked(fd, &fig) : -1;
  int saved = errno;
  dumped_locked(r, path, &fig, DUMP_CALL);
  errno = saved;
  return r;
}

static bool time_due_now(void) {
  uint64_t due = atomic_load_explicit(&time_due, memory_order_relaxed);
  return due != UINT64_MAX && due <= now_ns();
}

/* The dump a sample (at_sample) or a tick is the time of, if any. prof_lock
 * held, the profile on. */
static void maybe_dump_locked(bool at_sample) {
  dump_reason_t why;
  if (signalled) {
    signalled = 0; /* before the dump: a signal that comes during it asks for the next */
    why = DUMP_SIGNAL;
  } else if (at_sample && interval != 0 && atomic_load_explicit(&allocated, memory_order_relaxed) >= next_dump) {
    why = DUMP_ALLOCATION;
  } else if (at_sample && inuse_interval != 0 && inuse_bytes > high_water + (double)inuse_interval) {
    why = DUMP_INUSE;
  } else if (time_due_now()) {
    why = DUMP_TIME;
  } else {
    return;
  }
  (void)dump_numbered_locked(why);
  if (interval != 0 && why == DUMP_ALLOCATION) /* the next multiple (as before: only this kind moves it) */
    while (next_dump <= atomic_load_explicit(&allocated, memory_order_relaxed)) next_dump += interval;
}

static void at_exit(void) {
  bool busy = hak_track_busy;
  hak_track_busy = true;
  sigset_t old;
  hak_signals_block(&old);
  pthread_mutex_lock(&prof_lock);
  if (prof_on) (void)dump_numbered_locked(DUMP_EXIT);
  pthread_mutex_unlock(&prof_lock);
  hak_signals_restore(&old);
  hak_track_busy = busy;
}

/* ---- what the tracking calls (stack.c) ------------------------------------------------------- */
bool hak_prof_redraw(size_t size) { return redraw(size); }

void hak_prof_sample(void *p, size_t size, const hak_stack_t *st) {
  if (st == NULL) return;
  pthread_mutex_lock(&prof_lock);
  if (prof_on) {
    bucket_t *b = bucket_of(st, size);
    if (b != NULL && live_insert((uintptr_t)p, b)) {
      b->allocs++;
      inuse_bytes += (double)size * b->scale;
    }
    maybe_dump_locked(true);
  }
  pthread_mutex_unlock(&prof_lock);
}

void hak_prof_free(void *p) {
  if (!hak_prof_maybe_sampled(p)) return;
  pthread_mutex_lock(&prof_lock);
  size_t j = live_find((uintptr_t)p);
  if (j < lcap) {
    live[j].bucket->frees++;
    inuse_bytes -= (double)live[j].bucket->size * live[j].bucket->scale;
    live[j].p = 1;
    lcount--;
    ldead++;
    atomic_fetch_sub_explicit(&hak_prof_filter[hak_prof_slot(p)], 1, memory_order_relaxed);
  }
  pthread_mutex_unlock(&prof_lock);
}

/* ---- the API (api.c: hak_profile_start, _stop, _dump) ------------------------------------------ */
/* Each runs with signals blocked (no handler's malloc may want prof_lock) and
 * marked busy (what it allocates is hakmem's own). */
int hak_prof_start(const char *path_prefix) {
  if (path_prefix == NULL || *path_prefix == '\0' || strlen(path_prefix) >= sizeof prefix) {
    errno = EINVAL;
    return -1;
  }
  hak_stack_init(); /* the unwinder, loaded before any lock is taken */
  bool busy = hak_track_busy;
  hak_track_busy = true;
  sigset_t old;
  hak_signals_block(&old);
  pthread_mutex_lock(&prof_lock);
  reset_locked();
  strcpy(prefix, path_prefix);
  dump_seq = 0;
  bool was_on = prof_on;
  prof_on = true;
  if (time_interval != 0) atomic_store(&time_due, now_ns() + time_interval);
  if (!at_exit_set) {
    at_exit_set = true;
    atexit(at_exit);
  }
  pthread_mutex_unlock(&prof_lock);
  if (!was_on) {
    atomic_fetch_or(&hak_observers, HAK_OBS_PROFILE);
    hak_gates_close(false);
  }
  hak_signals_restore(&old);
  hak_track_busy = busy;
  return 0;
}

void hak_prof_stop(void) {
  bool busy = hak_track_busy;
  hak_track_busy = true;
  sigset_t old;
  hak_signals_block(&old);
  pthread_mutex_lock(&prof_lock);
  bool was_on = prof_on;
  prof_on = false;
  if (was_on) atomic_fetch_and(&hak_observers, ~HAK_OBS_PROFILE);
  reset_locked();
  pthread_mutex_unlock(&prof_lock);
  if (was_on) hak_gates_open(false);
  hak_signals_restore(&old);
  hak_track_busy = busy;
}

int hak_prof_dump(const char *path) {
  bool busy = hak_track_busy;
  hak_track_busy = true;
  sigset_t old;
  hak_signals_block(&old);
  pthread_mutex_lock(&prof_lock);
  int r;
  if (!prof_on) {
    errno = EINVAL; /* no profile being taken */
    r = -1;
  } else {
    r = path != NULL ? dump_path_locked(path) : dump_numbered_locked(DUMP_CALL);
  }
  pthread_mutex_unlock(&prof_lock);
  hak_signals_restore(&old);
  hak_track_busy = busy;
  return r;
}

/* ---- the signal and the scavenger's tick ------------------------------------------------------ */
/* Catches HAKMEM_PROFILE_SIGNAL (options.c accepts only the signals that
 * decide nothing of a program's fate; not the statistics' one, which would
 * then mean two things); the program's handler is chained (signal_flag.c). */
static void catch_signal(void) {
  long sig = hak_option(HAK_OPT_PROFILE_SIGNAL);
  if (sig <= 0) return;
  if (sig == hak_option(HAK_OPT_STATS_SIGNAL)) {
    hak_out_error("hakmem: HAKMEM_PROFILE_SIGNAL=%ld is HAKMEM_STATS_SIGNAL's signal too: one signal cannot ask for "
                  "both; no profile signal\n", sig);
    return;
  }
  if (!hak_signal_flag_catch((int)sig, &signalled))
    hak_out_error("hakmem: cannot catch signal %ld for the heap profiler\n", sig);
}

/* The scavenger's tick (scavenger.c, every 100 ms): the dump a signal or
 * the time interval asks for, in a program that does not allocate. */
static void on_tick(void) {
  if (hak_likely(!signalled && atomic_load_explicit(&time_due, memory_order_relaxed) == UINT64_MAX)) return;
  if (!signalled && !time_due_now()) return;
  bool busy = hak_track_busy;
  hak_track_busy = true;
  sigset_t old;
  hak_signals_block(&old);
  pthread_mutex_lock(&prof_lock);
  if (prof_on) maybe_dump_locked(false);
  else signalled = 0; /* no profile: nothing to write */
  pthread_mutex_unlock(&prof_lock);
  hak_signals_restore(&old);
  hak_track_busy = busy;
}

/* ---- start-up and fork ------------------------------------------------------------------------ */
void hak_prof_init(void) {
  atomic_store(&rate, (uint64_t)hak_option(HAK_OPT_PROFILE_RATE));
  interval = (uint64_t)hak_option(HAK_OPT_PROFILE_INTERVAL);
  inuse_interval = (uint64_t)hak_option(HAK_OPT_PROFILE_INUSE_INTERVAL);
  time_interval = (uint64_t)hak_option(HAK_OPT_PROFILE_TIME_INTERVAL) * 1000000000u;
  catch_signal();
  if (config_dynamic_flush && (hak_option(HAK_OPT_PROFILE_SIGNAL) != 0 || time_interval != 0))
    hak_scavenger_on_tick(on_tick);
  const char *p = hak_option_text(HAK_OPT_PROFILE);
  if (p != NULL && hak_prof_start(p) != 0)
    hak_out_error("hakmem: HAKMEM_PROFILE: the prefix is too long; no profile\n");
}

void hak_prof_fork_prepare(void) { pthread_mutex_lock(&prof_lock); }
void hak_prof_fork_parent(void) { pthread_mutex_unlock(&prof_lock); }
void hak_prof_fork_child(void) {
  pthread_mutex_init(&prof_lock, NULL);
  dump_seq = 0; /* the child's own files: its pid, from .0001 */
}
