/* fuzz.c — a seeded random fuzzer of the exported malloc API, with a shadow
 * record of every live block. Run under LD_PRELOAD of any malloc (every
 * hakmem build, glibc); the first failed check prints one line (the check,
 * the operation index, the call, its size and alignment, the seed and the
 * command that replays it) and exits 1.
 *
 * Usage: fuzz [--seed N] [--ops N] [--slots N] [--max-live MIB] [--no-coverage]
 *
 * The sequence. Each operation picks a random slot (of --slots, default
 * 1024). An empty slot gets a new block from one of malloc, calloc,
 * realloc(NULL), reallocarray(NULL), posix_memalign, aligned_alloc, memalign,
 * valloc, pvalloc; a live one is freed (1/2), resized by realloc or
 * reallocarray (3/10), or asked malloc_usable_size (1/5). One operation in 32
 * instead makes a request that must fail (below), on a random live block or
 * the largest of eight when it is a resize. Sizes: 0 to 64 MiB on a log
 * scale (size_bucket_weight), one size in eight placed on a power of two or
 * next to one; a quarter of the resizes stay within 1/4 of the old size.
 * Alignments: every power of two from 1 B to 1 MiB that the function accepts
 * (posix_memalign from sizeof(void *)), and for aligned_alloc and memalign
 * also alignments that are not a power of two, which glibc 2.36 and hakmem
 * round up to the next one. The requested bytes of live blocks are kept under
 * --max-live (default 256 MiB) by freeing random other blocks first. The
 * sequence depends only on the seed (never on addresses or usable sizes).
 *
 * What is checked, on every block:
 *   - a valid request (size <= 64 MiB) never returns NULL;
 *   - alignment: 16 for malloc, calloc, realloc and reallocarray; the
 *     requested one (rounded up to a power of two) for the aligned functions;
 *     the page for valloc and pvalloc;
 *   - malloc_usable_size >= the requested size (pvalloc: the size rounded up
 *     to a page), and it does not change while the block is live;
 *   - no two live blocks overlap: [p, p + max(usable, 1)) of each live block
 *     is kept in a treap ordered by address, checked against its neighbours;
 *   - calloc memory is zero over the requested size;
 *   - each block holds a pattern unique to it (bytes derived from a block id
 *     and the offset) over its whole usable size; the pattern is checked when
 *     the block is freed, before it is realloc'ed, and at malloc_usable_size;
 *     after a realloc the first min(old, new) requested bytes must still hold
 *     it. Blocks of at most FULL_MAX (64 KiB) usable bytes are filled and
 *     checked byte for byte; larger ones on a sample: the first and last 64
 *     bytes, and one 8-byte word in every 4 KiB of the block, at an offset
 *     within the 4 KiB that depends on the block (the same for calloc's zeros);
 *   - the requests that must fail do, and leave everything as it was:
 *     sizes near SIZE_MAX, PTRDIFF_MAX and PTRDIFF_MAX + 1 and every other one
 *     at or above 2^47 (no mapping can hold them) give NULL and ENOMEM from
 *     malloc, calloc, realloc (the block stays live and intact), valloc,
 *     pvalloc, memalign, aligned_alloc, and ENOMEM from posix_memalign;
 *     calloc and reallocarray whose product overflows give NULL and ENOMEM;
 *     posix_memalign with 0, an alignment below sizeof(void *) or one that is
 *     not a power of two gives EINVAL; every failing posix_memalign leaves
 *     *out untouched; memalign and aligned_alloc with an alignment above 2^63
 *     give NULL and EINVAL, with a power of two from 2^47 up NULL and ENOMEM;
 *     with one that is not a power of two in (2^62, 2^63) NULL and EINVAL
 *     (hakmem) or ENOMEM (glibc 2.36), both accepted;
 *     malloc_usable_size(NULL) is 0;
 *   - coverage: at the end, every function, every alignment of each aligned
 *     function, every size bucket and every failing request was exercised at
 *     least once, or the run fails (--no-coverage turns this off, for short
 *     exploratory runs).
 * realloc(p, 0) and reallocarray(p, 0, n) may return NULL (glibc and hakmem
 * free p) or a new block; both are accepted.
 *
 * A crash (a signal such as SIGSEGV, or hakmem's abort on a misuse it
 * detects) also prints the failure line, then ends the process with that
 * signal.
 *
 * The fuzzer calls malloc only for the blocks under test: its shadow record
 * is static and stdout has a static buffer. It finds hakmem through a weak
 * reference to hak_variant, not dlsym, whose error string would be allocated. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

enum fn {
  F_MALLOC, F_CALLOC, F_REALLOC, F_REALLOCARRAY, F_POSIX_MEMALIGN, F_ALIGNED_ALLOC,
  F_MEMALIGN, F_VALLOC, F_PVALLOC, F_FREE, F_USABLE, F_COUNT
};
#define ALLOC_FNS (F_PVALLOC + 1) /* the functions that make a new block */
static const char *const fn_name[F_COUNT] = {
    "malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "free", "malloc_usable_size"};

#define MAX_SLOTS   65536
#define FULL_MAX    ((size_t)64 << 10) /* blocks up to this are patterned byte for byte */
#define EDGE        64                 /* sampled blocks: bytes checked at each end      */
#define SAMPLE_STEP 4096               /* sampled blocks: one word in every 4 KiB         */
#define MAX_ALIGN_LOG 20               /* alignments 1 B .. 1 MiB                         */
#define SIZE_BUCKETS 27                /* 0, then [2^(b-1), 2^b) for b = 1 .. 26 (64 MiB) */
#define MAX_SIZE ((size_t)64 << 20)
#define MALLOC_ALIGN 16                /* alignof(max_align_t) on x86-64 and aarch64      */
#define HUGE_MIN ((size_t)1 << 47)     /* no request this large can be mapped             */

/* Sizes on a log scale: the weight of each bucket (bucket 0 is
 * size 0, bucket b holds sizes of b bits, [2^(b-1), 2^b), and bucket 26 also
 * 64 MiB itself). Most blocks are small, as in programs; blocks of 8-64 MiB
 * are rare because each costs page faults. */
static const unsigned size_bucket_weight[SIZE_BUCKETS] = {
    100,                                           /* 0                  */
    500, 500, 500, 500, 600, 600, 600, 600, 600, 600, /* 1 B .. 1 KiB      */
    520, 520, 520, 520, 520,                       /* 1 KiB .. 32 KiB    */
    250, 250, 250, 250,                            /* 32 KiB .. 512 KiB  */
    35, 35, 35, 35,                                /* 512 KiB .. 8 MiB   */
    4, 4, 4};                                      /* 8 MiB .. 64 MiB    */

/* The requests that must fail (the "invalid" operations). */
enum bad {
  B_MALLOC_HUGE, B_CALLOC_OVERFLOW, B_CALLOC_HUGE, B_REALLOC_NULL_HUGE, B_REALLOC_HUGE,
  B_REALLOCARRAY_NULL_OVERFLOW, B_REALLOCARRAY_OVERFLOW, B_PM_BAD_ALIGN, B_PM_HUGE_SIZE,
  B_PM_HUGE_ALIGN, B_MEMALIGN_HUGE_SIZE, B_MEMALIGN_ALIGN_ABOVE_2_63, B_MEMALIGN_ALIGN_2_62_2_63,
  B_MEMALIGN_HUGE_ALIGN, B_VALLOC_HUGE, B_PVALLOC_HUGE, B_USABLE_NULL, B_COUNT
};
static const char *const bad_name[B_COUNT] = {
    "malloc(huge)", "calloc(overflow)", "calloc(huge)", "realloc(NULL, huge)", "realloc(p, huge)",
    "reallocarray(NULL, overflow)", "reallocarray(p, overflow)", "posix_memalign(bad alignment)",
    "posix_memalign(huge size)", "posix_memalign(huge alignment)", "memalign/aligned_alloc(huge size)",
    "memalign/aligned_alloc(alignment > 2^63)", "memalign/aligned_alloc(alignment in (2^62, 2^63))",
    "memalign/aligned_alloc(huge power-of-two alignment)", "valloc(huge)", "pvalloc(huge)",
    "malloc_usable_size(NULL)"};

typedef struct slot_s {
  unsigned char *p;   /* NULL when the slot is empty */
  size_t req;         /* bytes requested: what realloc must keep */
  size_t usable;      /* malloc_usable_size when it was allocated: the pattern covers it */
  uint64_t id;        /* the pattern's key, unique per allocation, kept by realloc */
  int left, right;    /* treap over live blocks by address (-1: none) */
  uint32_t prio;
} slot_t;

static slot_t slots[MAX_SLOTS];
static int root = -1;
static unsigned n_slots = 1024;
static size_t max_live = (size_t)256 << 20;
static unsigned long long seed, ops = 1000000;
static bool coverage = true;
static uint64_t rng; /* test_rand state */
static uint64_t next_id = 1;
static size_t live_bytes, page_size;

/* The current call, for the failure line. */
static struct {
  unsigned long long op;
  const char *fn;
  size_t size, align;
} cur;

/* Coverage counters. */
static unsigned long long calls[F_COUNT], bad_calls[B_COUNT], size_hits[SIZE_BUCKETS];
static unsigned long long align_hits[F_COUNT][MAX_ALIGN_LOG + 1], rounded_hits[F_COUNT];
static size_t peak_live;

static char stdout_buf[1 << 12];

/* hakmem's, when it is the malloc (LD_PRELOAD); NULL under another malloc. */
extern const char *hak_variant(void) __attribute__((weak));

static void fail(const char *check, const char *fmt, ...) {
  fflush(stdout);
  fprintf(stderr, "fuzz: FAIL %s: op %llu, %s(size %zu, align %zu), seed %llu: ", check, cur.op, cur.fn,
          cur.size, cur.align, seed);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (replay: fuzz --seed %llu --ops %llu)\n", seed, cur.op + 1);
  _exit(1);
}

/* A fatal signal during an operation: the failure line, then the signal. */
static void on_crash(int sig) {
  static char line[512];
  int n = snprintf(line, sizeof(line),
                   "fuzz: FAIL crash: signal %d (%s): op %llu, %s(size %zu, align %zu), seed %llu"
                   " (replay: fuzz --seed %llu --ops %llu)\n",
                   sig, strsignal(sig), cur.op, cur.fn ? cur.fn : "-", cur.size, cur.align, seed, seed, cur.op + 1);
  if (n > 0) (void)!write(2, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void catch_crashes(void) {
  static char altstack[1 << 16];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
  sigaltstack(&ss, NULL);
  struct sigaction sa = {.sa_handler = on_crash, .sa_flags = SA_ONSTACK | SA_RESETHAND};
  int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE};
  for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) sigaction(sigs[i], &sa, NULL);
}

static void call(enum fn f, size_t size, size_t align) {
  cur.fn = fn_name[f];
  cur.size = size;
  cur.align = align;
  calls[f]++;
}

static uint64_t rnd(void) { return test_rand(&rng); }
static uint64_t below(uint64_t n) { return rnd() % n; }

/* ---- the pattern -------------------------------------------------------------- */
/* Byte i of block id: byte i % 8 of word(id, i & ~7), so a prefix is the same
 * whatever the block's size, and a shifted copy does not match. */
static inline uint64_t word(uint64_t key, size_t i) { return key ^ ((uint64_t)i * 0xff51afd7ed558ccdull); }
static inline uint64_t block_key(uint64_t id) { return id * 0x9e3779b97f4a7c15ull; }

enum visit_op { FILL, CHECK_PATTERN, CHECK_ZERO };

/* Applies op to bytes [from, to) of block p; returns the first offset found
 * wrong, or SIZE_MAX. */
static size_t visit_range(unsigned char *p, uint64_t key, size_t from, size_t to, enum visit_op op) {
  size_t i = from;
  while (i < to) {
    if ((i & 7) == 0 && i + 8 <= to) {
      uint64_t w = op == CHECK_ZERO ? 0 : word(key, i), have;
      if (op == FILL) memcpy(p + i, &w, 8);
      else {
        memcpy(&have, p + i, 8);
        if (have != w) break;
      }
      i += 8;
    } else {
      unsigned char b = op == CHECK_ZERO ? 0 : (unsigned char)(word(key, i & ~(size_t)7) >> (8 * (i & 7)));
      if (op == FILL) p[i] = b;
      else if (p[i] != b) break;
      i++;
    }
  }
  if (i >= to) return SIZE_MAX;
  /* the first wrong byte of the word */
  if (op != FILL)
    for (;; i++) {
      unsigned char b = op == CHECK_ZERO ? 0 : (unsigned char)(word(key, i & ~(size_t)7) >> (8 * (i & 7)));
      if (p[i] != b) return i;
    }
  return SIZE_MAX;
}

/* Applies op to the pattern positions of a block laid out over `layout` bytes
 * (all of them up to FULL_MAX, else the sample), those below `limit` only. */
static size_t visit(unsigned char *p, uint64_t id, size_t layout, size_t limit, enum visit_op op) {
  uint64_t key = block_key(id);
  size_t end = layout < limit ? layout : limit, bad;
  if (layout <= FULL_MAX) return visit_range(p, key, 0, end, op);
  if ((bad = visit_range(p, key, 0, EDGE < end ? EDGE : end, op)) != SIZE_MAX) return bad;
  size_t off = (size_t)((key >> 40) % (SAMPLE_STEP / 8)) * 8;
  for (size_t i = off; i + 8 <= end; i += SAMPLE_STEP)
    if ((bad = visit_range(p, key, i, i + 8, op)) != SIZE_MAX) return bad;
  if (layout - EDGE < end && (bad = visit_range(p, key, layout - EDGE, end, op)) != SIZE_MAX) return bad;
  return SIZE_MAX;
}

static void check_intact(const slot_t *s, const char *when) {
  size_t bad = visit(s->p, s->id, s->usable, SIZE_MAX, CHECK_PATTERN);
  if (bad != SIZE_MAX)
    fail("pattern", "block %p (%zu bytes requested, %zu usable, id %llu) changed at byte %zu, %s", (void *)s->p,
         s->req, s->usable, (unsigned long long)s->id, bad, when);
}

/* ---- the treap of live blocks, by address ---------------------------------------- */
static inline uintptr_t lo(int s) { return (uintptr_t)slots[s].p; }
static inline uintptr_t hi(int s) { return lo(s) + (slots[s].usable ? slots[s].usable : 1); }

static int rotate_right(int t) {
  int l = slots[t].left;
  slots[t].left = slots[l].right;
  slots[l].right = t;
  return l;
}
static int rotate_left(int t) {
  int r = slots[t].right;
  slots[t].right = slots[r].left;
  slots[r].left = t;
  return r;
}
static int tree_insert(int t, int s) {
  if (t < 0) return s;
  if (lo(s) < lo(t)) {
    slots[t].left = tree_insert(slots[t].left, s);
    if (slots[slots[t].left].prio > slots[t].prio) t = rotate_right(t);
  } else {
    slots[t].right = tree_insert(slots[t].right, s);
    if (slots[slots[t].right].prio > slots[t].prio) t = rotate_left(t);
  }
  return t;
}
static int tree_merge(int a, int b) {
  if (a < 0) return b;
  if (b < 0) return a;
  if (slots[a].prio > slots[b].prio) {
    slots[a].right = tree_merge(slots[a].right, b);
    return a;
  }
  slots[b].left = tree_merge(a, slots[b].left);
  return b;
}
static int tree_remove(int t, int s) {
  if (t == s) return tree_merge(slots[s].left, slots[s].right);
  if (lo(s) < lo(t)) slots[t].left = tree_remove(slots[t].left, s);
  else slots[t].right = tree_remove(slots[t].right, s);
  return t;
}

/* Slot s (p, usable set) must not overlap a live block: the one starting at or
 * below p must end at or before p, the first one above p must start at or
 * after p's end. */
static void check_no_overlap(int s) {
  int below_p = -1, above_p = -1;
  for (int t = root; t >= 0;) {
    if (lo(t) <= lo(s)) below_p = t, t = slots[t].right;
    else above_p = t, t = slots[t].left;
  }
  int o = below_p >= 0 && hi(below_p) > lo(s) ? below_p : above_p >= 0 && lo(above_p) < hi(s) ? above_p : -1;
  if (o >= 0)
    fail("overlap", "new block [%p, %p) overlaps live block [%p, %p) (id %llu, %zu bytes requested)",
         (void *)lo(s), (void *)hi(s), (void *)lo(o), (void *)hi(o), (unsigned long long)slots[o].id,
         slots[o].req);
}

/* ---- blocks -------------------------------------------------------------------- */
/* Records a block just returned for slot s: checks alignment, usable size,
 * overlap and (zero) calloc contents; fills the pattern. */
static void adopt(int s, void *p, size_t req, size_t align, bool zero) {
  slot_t *b = &slots[s];
  if ((uintptr_t)p % align != 0) fail("alignment", "%p is not aligned to %zu", p, align);
  calls[F_USABLE]++;
  size_t usable = malloc_usable_size(p);
  if (usable < req) fail("usable size", "malloc_usable_size(%p) = %zu < %zu requested", p, usable, req);
  b->p = p;
  b->req = req;
  b->usable = usable;
  b->left = b->right = -1;
  b->prio = (uint32_t)(block_key(b->id) >> 32);
  check_no_overlap(s);
  if (zero) {
    size_t bad = visit(b->p, b->id, req, SIZE_MAX, CHECK_ZERO);
    if (bad != SIZE_MAX) fail("calloc zero", "byte %zu of %p is %#x", bad, p, b->p[bad]);
  }
  visit(b->p, b->id, b->usable, SIZE_MAX, FILL);
  root = tree_insert(root, s);
  live_bytes += req;
  if (live_bytes > peak_live) peak_live = live_bytes;
}

static void release(int s) {
  slot_t *b = &slots[s];
  call(F_FREE, b->req, 0);
  check_intact(b, "found at free");
  root = tree_remove(root, s);
  live_bytes -= b->req;
  free(b->p);
  b->p = NULL;
}

/* Frees random other live blocks until need more bytes fit under --max-live. */
static void make_room(int keep, size_t need) {
  while (live_bytes + need > max_live && live_bytes > (keep >= 0 ? slots[keep].req : 0)) {
    int s = (int)below(n_slots);
    if (s != keep && slots[s].p != NULL) release(s);
  }
}

static unsigned size_weight_total; /* the sum of size_bucket_weight */

static size_t random_size(void) {
  unsigned r = (unsigned)below(size_weight_total), b = 0;
  while (b < SIZE_BUCKETS - 1 && r >= size_bucket_weight[b]) r -= size_bucket_weight[b++];
  if (b == 0) return 0;
  size_t base = (size_t)1 << (b - 1); /* [base, 2 base) */
  if (below(8) == 0) {                /* on or next to a power of two */
    size_t n = (below(2) ? base : 2 * base) + below(5); /* edge - 2 .. edge + 2 */
    n = n > 2 ? n - 2 : 1;
    return n > MAX_SIZE ? MAX_SIZE : n;
  }
  return base + below(base);
}

static unsigned size_bucket(size_t n) {
  unsigned b = n ? 64 - (unsigned)__builtin_clzll(n) : 0;
  return b < SIZE_BUCKETS ? b : SIZE_BUCKETS - 1;
}

/* count * size about n (a product that fits; n = 0 also as 0 * x). */
static void split(size_t n, size_t *count, size_t *size) {
  if (n == 0) {
    *count = below(2) ? 0 : 1 + below(8);
    *size = *count ? 0 : below(1000);
    return;
  }
  size_t c = 1 + below(n < 8 ? n : 8);
  if (below(2)) *count = c, *size = n / c;
  else *count = n / c, *size = c;
}

static size_t pow2_ceil(size_t a) {
  size_t r = 1;
  while (r < a) r <<= 1;
  return r;
}

static void new_block(int s) {
  enum fn f = (enum fn)below(ALLOC_FNS);
  size_t n = random_size(), align = MALLOC_ALIGN, expect = MALLOC_ALIGN, count = 0, size = 0, req = n;
  unsigned e = 0;
  bool zero = false, rounded = false;
  switch (f) {
  case F_POSIX_MEMALIGN: e = 3 + (unsigned)below(MAX_ALIGN_LOG - 2); align = expect = (size_t)1 << e; break;
  case F_ALIGNED_ALLOC:
  case F_MEMALIGN:
    e = (unsigned)below(MAX_ALIGN_LOG + 1);
    align = expect = (size_t)1 << e;
    if (below(8) == 0) { /* not a power of two, rounded up: 0 (to 1), or in (2^(e-1), 2^e) */
      rounded = true;
      align = e < 2 ? 0 : ((size_t)1 << (e - 1)) + 1 + below(((size_t)1 << (e - 1)) - 1);
      expect = pow2_ceil(align);
    }
    break;
  case F_VALLOC: align = expect = page_size; break;
  case F_PVALLOC:
    align = expect = page_size;
    req = (n + page_size - 1) / page_size * page_size;
    break;
  case F_CALLOC:
  case F_REALLOCARRAY:
    split(n, &count, &size);
    req = count * size;
    zero = f == F_CALLOC;
    break;
  default: break;
  }
  make_room(-1, req);
  slots[s].id = next_id++;
  size_t asked = f == F_CALLOC || f == F_REALLOCARRAY ? req : n;
  call(f, asked, align);
  size_hits[size_bucket(asked)]++;
  if (f == F_POSIX_MEMALIGN || f == F_ALIGNED_ALLOC || f == F_MEMALIGN) {
    if (rounded) rounded_hits[f]++;
    else align_hits[f][e]++;
  }
  void *p = NULL;
  errno = 0;
  switch (f) {
  case F_MALLOC: p = malloc(n); break;
  case F_CALLOC: p = calloc(count, size); break;
  case F_REALLOC: p = realloc(NULL, n); break;
  case F_REALLOCARRAY: p = reallocarray(NULL, count, size); break;
  case F_POSIX_MEMALIGN: {
    int rc = posix_memalign(&p, align, n);
    if (rc != 0) fail("valid request", "posix_memalign returned %d (%s)", rc, strerror(rc));
    break;
  }
  case F_ALIGNED_ALLOC: p = aligned_alloc(align, n); break;
  case F_MEMALIGN: p = memalign(align, n); break;
  case F_VALLOC: p = valloc(n); break;
  case F_PVALLOC: p = pvalloc(n); break;
  default: break;
  }
  if (p == NULL) fail("valid request", "returned NULL (errno %d, %s)", errno, strerror(errno));
  adopt(s, p, req, expect, zero);
}

static void resize(int s) {
  slot_t *b = &slots[s];
  bool array = below(3) == 0;
  size_t n = below(4) == 0 && b->req > 0 ? b->req - b->req / 4 + below(b->req / 2 + 1) : random_size();
  if (n > MAX_SIZE) n = MAX_SIZE;
  size_t count = 1, size = n;
  if (array) split(n, &count, &size), n = count * size;
  if (n > b->req) make_room(s, n - b->req);
  call(array ? F_REALLOCARRAY : F_REALLOC, n, MALLOC_ALIGN);
  size_hits[size_bucket(n)]++;
  check_intact(b, "before realloc");
  slot_t old = *b;
  root = tree_remove(root, s);
  live_bytes -= old.req;
  errno = 0;
  void *p = array ? reallocarray(b->p, count, size) : realloc(b->p, n);
  if (p == NULL) {
    if (n != 0) fail("valid request", "returned NULL (errno %d, %s)", errno, strerror(errno));
    b->p = NULL; /* realloc(p, 0) freed p */
    return;
  }
  b->p = NULL;
  if ((uintptr_t)p % MALLOC_ALIGN != 0) fail("alignment", "%p is not aligned to %d", p, MALLOC_ALIGN);
  calls[F_USABLE]++;
  size_t usable = malloc_usable_size(p);
  if (usable < n) fail("usable size", "malloc_usable_size(%p) = %zu < %zu requested", p, usable, n);
  size_t keep = old.req < n ? old.req : n;
  size_t bad = visit(p, old.id, old.usable, keep, CHECK_PATTERN);
  if (bad != SIZE_MAX)
    fail("realloc contents", "byte %zu of %zu kept (old block %p, %zu bytes) differs in the new block %p",
         bad, keep, (void *)old.p, old.req, p);
  b->p = p;
  b->req = n;
  b->usable = usable;
  b->left = b->right = -1;
  check_no_overlap(s);
  visit(b->p, b->id, b->usable, SIZE_MAX, FILL);
  root = tree_insert(root, s);
  live_bytes += n;
  if (live_bytes > peak_live) peak_live = live_bytes;
}

static void ask_usable(int s) {
  slot_t *b = &slots[s];
  call(F_USABLE, b->req, 0);
  size_t u = malloc_usable_size(b->p);
  if (u != b->usable)
    fail("usable size", "malloc_usable_size(%p) = %zu, was %zu when allocated (%zu requested)", (void *)b->p, u,
         b->usable, b->req);
  check_intact(b, "at malloc_usable_size");
}

/* ---- requests that must fail ------------------------------------------------------ */
/* A size no allocation can have: near SIZE_MAX (where rounding up to a page,
 * unit or chunk wraps around), near PTRDIFF_MAX + 1, or anything from 2^47. */
static size_t huge_size(void) {
  switch (below(8)) {
  case 0: return SIZE_MAX - below(16);
  case 1:
  case 2: return SIZE_MAX - below(1 << 24);
  case 3: return (size_t)PTRDIFF_MAX + 1;
  case 4: return (size_t)PTRDIFF_MAX + 1 + below(1 << 24);
  case 5: return (size_t)PTRDIFF_MAX - below(1 << 24);
  default: {
    size_t k = (size_t)1 << (47 + below(17));
    return k + (below(2) ? below(k) : 0);
  }
  }
}

static void expect_null(void *p, int want_errno, const char *check) {
  int e = errno;
  if (p != NULL) fail(check, "returned %p, not NULL", p); /* not freed: it may be anything */
  if (e != want_errno) fail(check, "errno %d (%s), not %d (%s)", e, strerror(e), want_errno, strerror(want_errno));
}

/* An overflowing product: count * size > SIZE_MAX. */
static void overflow_pair(size_t *count, size_t *size) {
  unsigned k = 1 + (unsigned)below(63);
  size_t a = ((size_t)1 << k) + below((size_t)1 << k);   /* > 2^k - 1 */
  size_t b = (SIZE_MAX >> k) + 1 + below(1000);           /* a * b > SIZE_MAX */
  if (below(2)) *count = a, *size = b;
  else *count = b, *size = a;
}

/* A live block for a resize that must fail: a random one, or the largest of
 * eight random ones (large blocks take other paths); -1 if none was found. */
static int live_slot(void) {
  int best = -1;
  for (unsigned tries = 0, want = below(2) ? 1 : 8, found = 0; tries < 64 && found < want; tries++) {
    int s = (int)below(n_slots);
    if (slots[s].p == NULL) continue;
    found++;
    if (best < 0 || slots[s].req > slots[best].req) best = s;
  }
  return best;
}

static void bad_request(void) {
  enum bad k = (enum bad)below(B_COUNT);
  size_t n = huge_size(), count, size, align;
  void *p;
  int s;
  bad_calls[k]++;
  switch (k) {
  case B_MALLOC_HUGE:
    call(F_MALLOC, n, MALLOC_ALIGN);
    errno = 0;
    expect_null(malloc(n), ENOMEM, "malloc(huge)");
    break;
  case B_CALLOC_OVERFLOW:
    overflow_pair(&count, &size);
    call(F_CALLOC, size, count); /* shown as size and count */
    errno = 0;
    expect_null(calloc(count, size), ENOMEM, "calloc(overflow)");
    break;
  case B_CALLOC_HUGE:
    count = 1 + below(4);
    size = n / count;
    if (size < HUGE_MIN) size = HUGE_MIN;
    call(F_CALLOC, size, count);
    errno = 0;
    expect_null(calloc(count, size), ENOMEM, "calloc(huge)");
    break;
  case B_REALLOC_NULL_HUGE:
    call(F_REALLOC, n, MALLOC_ALIGN);
    errno = 0;
    expect_null(realloc(NULL, n), ENOMEM, "realloc(NULL, huge)");
    break;
  case B_REALLOC_HUGE:
  case B_REALLOCARRAY_OVERFLOW:
    if ((s = live_slot()) < 0) {
      bad_calls[k]--;
      return;
    }
    if (k == B_REALLOC_HUGE) call(F_REALLOC, n, MALLOC_ALIGN), count = 1, size = n;
    else overflow_pair(&count, &size), call(F_REALLOCARRAY, size, count);
    errno = 0;
    p = k == B_REALLOC_HUGE ? realloc(slots[s].p, n) : reallocarray(slots[s].p, count, size);
    expect_null(p, ENOMEM, bad_name[k]);
    check_intact(&slots[s], "after a failed realloc");
    calls[F_USABLE]++;
    if (malloc_usable_size(slots[s].p) != slots[s].usable)
      fail(bad_name[k], "the block's usable size changed from %zu to %zu", slots[s].usable,
           malloc_usable_size(slots[s].p));
    break;
  case B_REALLOCARRAY_NULL_OVERFLOW:
    overflow_pair(&count, &size);
    call(F_REALLOCARRAY, size, count);
    errno = 0;
    expect_null(reallocarray(NULL, count, size), ENOMEM, "reallocarray(NULL, overflow)");
    break;
  case B_PM_BAD_ALIGN:
  case B_PM_HUGE_SIZE:
  case B_PM_HUGE_ALIGN: {
    size = below(2) ? below(1000) : random_size();
    if (k == B_PM_BAD_ALIGN) {
      switch (below(5)) {
      case 0: align = 0; break;
      case 1: align = (size_t)1 << below(3); break;                        /* 1, 2, 4: below sizeof(void *) */
      case 2: align = sizeof(void *) * (3 + 2 * below(1 << 16)); break;    /* a multiple, not a power of two */
      case 3: align = ((size_t)1 << (3 + below(60))) + 1 + below(7); break; /* not a multiple of 8 */
      default: align = SIZE_MAX - below(1 << 16); break;
      }
    } else if (k == B_PM_HUGE_SIZE) {
      align = (size_t)1 << (3 + below(MAX_ALIGN_LOG - 2));
      size = n;
    } else
      align = (size_t)1 << (47 + below(17));
    void *out = (void *)&out; /* a sentinel that must stay */
    call(F_POSIX_MEMALIGN, size, align);
    int rc = posix_memalign(&out, align, size);
    int want = k == B_PM_BAD_ALIGN ? EINVAL : ENOMEM;
    if (rc != want) fail(bad_name[k], "returned %d (%s), not %d (%s)", rc, strerror(rc), want, strerror(want));
    if (out != (void *)&out) fail(bad_name[k], "*out changed to %p on failure", out);
    break;
  }
  case B_MEMALIGN_HUGE_SIZE:
  case B_MEMALIGN_ALIGN_ABOVE_2_63:
  case B_MEMALIGN_ALIGN_2_62_2_63:
  case B_MEMALIGN_HUGE_ALIGN: {
    bool aligned = below(2);
    size = below(2) ? below(1000) : random_size();
    int want = ENOMEM; /* 0: EINVAL or ENOMEM */
    if (k == B_MEMALIGN_HUGE_SIZE) {
      align = (size_t)1 << below(MAX_ALIGN_LOG + 1);
      size = n;
    } else if (k == B_MEMALIGN_ALIGN_ABOVE_2_63) {
      align = ((size_t)1 << 63) + 1 + below(SIZE_MAX >> 1);
      want = EINVAL;
    } else if (k == B_MEMALIGN_ALIGN_2_62_2_63) {
      align = ((size_t)1 << 62) + 1 + below(((size_t)1 << 62) - 1);
      want = 0; /* EINVAL (hakmem) or ENOMEM (glibc 2.36) */
    } else
      align = (size_t)1 << (47 + below(17));
    call(aligned ? F_ALIGNED_ALLOC : F_MEMALIGN, size, align);
    errno = 0;
    p = aligned ? aligned_alloc(align, size) : memalign(align, size);
    if (want == 0 && p == NULL && errno == ENOMEM) want = ENOMEM; /* glibc 2.36 */
    expect_null(p, want ? want : EINVAL, bad_name[k]);
    break;
  }
  case B_VALLOC_HUGE:
  case B_PVALLOC_HUGE:
    call(k == B_VALLOC_HUGE ? F_VALLOC : F_PVALLOC, n, page_size);
    errno = 0;
    expect_null(k == B_VALLOC_HUGE ? valloc(n) : pvalloc(n), ENOMEM, bad_name[k]);
    break;
  case B_USABLE_NULL:
    call(F_USABLE, 0, 0);
    if ((size = malloc_usable_size(NULL)) != 0) fail("malloc_usable_size(NULL)", "returned %zu, not 0", size);
    break;
  default: break;
  }
}

/* ---- the run ------------------------------------------------------------------ */
static bool check_coverage(void) {
  char gaps[2048] = "";
  size_t len = 0;
#define GAP(...) (len += (size_t)snprintf(gaps + len, len < sizeof(gaps) ? sizeof(gaps) - len : 0, __VA_ARGS__))
  for (int f = 0; f < F_COUNT; f++)
    if (calls[f] == 0) GAP(" %s", fn_name[f]);
  for (int f = F_POSIX_MEMALIGN; f <= F_MEMALIGN; f++) {
    for (unsigned e = f == F_POSIX_MEMALIGN ? 3 : 0; e <= MAX_ALIGN_LOG; e++)
      if (align_hits[f][e] == 0) GAP(" %s(align %zu)", fn_name[f], (size_t)1 << e);
    if (f != F_POSIX_MEMALIGN && rounded_hits[f] == 0) GAP(" %s(align not a power of two)", fn_name[f]);
  }
  for (unsigned b = 0; b < SIZE_BUCKETS; b++)
    if (size_hits[b] == 0) GAP(" size-bucket-%u", b);
  for (int k = 0; k < B_COUNT; k++)
    if (bad_calls[k] == 0) GAP(" %s", bad_name[k]);
#undef GAP
  if (len == 0) return true;
  fprintf(stderr, "fuzz: FAIL coverage: seed %llu, %llu ops: never exercised:%s (more --ops, or --no-coverage)\n",
          seed, ops, gaps);
  return false;
}

static unsigned long long parse(const char *name, const char *arg, unsigned long long min, unsigned long long max) {
  char *end;
  errno = 0;
  unsigned long long v = arg ? strtoull(arg, &end, 0) : 0;
  if (arg == NULL || errno || *end || end == arg || v < min || v > max) {
    fprintf(stderr, "fuzz: %s needs a number in [%llu, %llu]\n", name, min, max);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  setvbuf(stdout, stdout_buf, _IOLBF, sizeof(stdout_buf));
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  seed = (unsigned long long)t0.tv_nsec ^ ((unsigned long long)getpid() << 32);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--seed") == 0) seed = parse(a, v, 0, ~0ull), i++;
    else if (strcmp(a, "--ops") == 0) ops = parse(a, v, 1, 1ull << 40), i++;
    else if (strcmp(a, "--slots") == 0) n_slots = (unsigned)parse(a, v, 1, MAX_SLOTS), i++;
    else if (strcmp(a, "--max-live") == 0) max_live = (size_t)parse(a, v, 64, 1 << 20) << 20, i++;
    else if (strcmp(a, "--no-coverage") == 0) coverage = false;
    else {
      fprintf(stderr, "usage: fuzz [--seed N] [--ops N] [--slots N (1024)] [--max-live MiB (256, at least 64)]"
                      " [--no-coverage]\n");
      return 2;
    }
  }
  page_size = (size_t)sysconf(_SC_PAGESIZE);
  for (unsigned b = 0; b < SIZE_BUCKETS; b++) size_weight_total += size_bucket_weight[b];
  uint64_t sm = seed + 0x9e3779b97f4a7c15ull; /* splitmix64: a non-zero xorshift state from any seed */
  sm = (sm ^ (sm >> 30)) * 0xbf58476d1ce4e5b9ull;
  sm = (sm ^ (sm >> 27)) * 0x94d049bb133111ebull;
  rng = (sm ^ (sm >> 31)) | 1;
  const char *who = hak_variant ? hak_variant() : "system malloc";
  catch_crashes();
  printf("fuzz: %s%s, seed %llu, %llu ops (replay: fuzz --seed %llu --ops %llu)\n", hak_variant ? "hakmem " : "", who,
         seed, ops, seed, ops);
  for (cur.op = 0; cur.op < ops; cur.op++) {
    if (below(32) == 0) {
      bad_request();
      continue;
    }
    int s = (int)below(n_slots);
    if (slots[s].p == NULL) {
      new_block(s);
      continue;
    }
    unsigned r = (unsigned)below(10);
    if (r < 5) release(s);
    else if (r < 8) resize(s);
    else ask_usable(s);
  }
  for (unsigned s = 0; s < n_slots; s++)
    if (slots[s].p != NULL) release((int)s);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  if (coverage && !check_coverage()) return 1;
  unsigned long long total = 0;
  for (int f = 0; f < F_COUNT; f++) total += calls[f];
  printf("fuzz: PASS %s%s, seed %llu, %llu ops (%llu calls), %.2f s, %.0f ops/s, peak live %zu MiB\n",
         hak_variant ? "hakmem " : "", who, seed, ops, total, secs, (double)ops / secs, peak_live >> 20);
  return 0;
}
