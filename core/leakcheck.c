/* leakcheck.c — the leak checker (HAKMEM_LEAKCHECK=1): every allocation's
 * call stack is kept until the block is freed, and at exit the blocks still
 * live are classified as valgrind's memcheck does and the leaks reported, by
 * call stack, largest first, in LeakSanitizer's form.
 *
 * Records. A table of live blocks (address -> stack, requested size), in
 * SHARDS shards by address, each an open-addressing array under its own
 * spin lock; its memory comes from the descriptor arena (meta.c). The gates
 * stay closed for the whole run (every call takes a slow path, which records
 * it: malloc_api.c), and os.c remembers which units hakmem maps.
 *
 * The check (at exit: an atexit handler registered at start-up, so it runs
 * after the program's own handlers; or mid-run, hak_leak_check, which
 * changes nothing: tracking goes on, what the check allocated is given back,
 * and the exit check runs as ever; one check at a time, under check_lock).
 * The algorithm is memcheck's
 * (mc_leakcheck.c, described in valgrind's manual):
 *  1. Roots: every readable and writable mapping of /proc/self/maps — the
 *     data segments of every loaded object, anonymous mappings (the
 *     program's own mmaps, threads' stacks), the exiting thread's stack
 *     from its stack pointer up, its registers spilled there — except the
 *     units hakmem mapped (its blocks, descriptors, magazines and these
 *     tables: os.c) and, when hakmem is a shared object, its own data.
 *     Each aligned word that points at a live block marks it: at its start,
 *     reachable; inside it, possibly reachable.
 *     Threads' stacks (below, "Stacks"): as memcheck, which scans a stack
 *     only above its stack pointer, a stack is scanned from the stack
 *     pointer up where that is known, and a thread that has exited leaves
 *     only its TLS and thread descriptor as roots, not its stack.
 *  2. The marked blocks are scanned in turn, word by word, with the same
 *     rule; a block reached only from possibly reachable ones, or only by
 *     interior pointers, stays possible.
 *  3. Each block still unreached, in address order, leads a clique: the
 *     unreached blocks it reaches (through any pointer) are indirect leaks,
 *     and itself a direct one (memcheck's "definitely lost"). A leader
 *     reached from a later one joins that clique with its own, and the
 *     leader keeps the clique's bytes: its loss record says "T (D direct,
 *     I indirect) bytes", as memcheck's do.
 *  Blocks marked by hak_leak_ignore are roots, scanned first, as
 *  LeakSanitizer treats ignored objects: what they reach is reachable; they
 *  are counted apart (ignored), in no record.
 * Other threads go on running during the check: what they change meanwhile
 * may be seen half done (LeakSanitizer stops them; memcheck runs at the very
 * end). Blocks allocated before the checker started (none when it starts
 * from the option) are not known.
 *
 * Memory that goes away. The scavenger is paused for the whole scan
 * (hak_scavenger_pause), so hakmem releases nothing on its own meanwhile;
 * a thread of the program still running may free a block and hakmem then
 * unmap it, or unmap memory of its own. So every word is read through a copy
 * (process_vm_readv of the process itself, 64 KiB at a time), which fails
 * on an address no longer mapped where a load would crash: a page gone is
 * skipped. Where that call is refused (a seccomp filter), memory is read
 * directly.
 *
 * Stacks. glibc (x86-64) puts a thread's descriptor (TCB: its first word and
 * its third point at itself, by the TLS ABI) at the top of the thread's stack
 * mapping, with the thread's TLS below it, and keeps an exited thread's
 * mapping (cached for the next thread) with the descriptor's thread id
 * cleared by the kernel. The offset of the id is learnt from the exiting
 * thread's own descriptor, and the static TLS's extent from its TLS blocks
 * (dl_iterate_phdr). An anonymous mapping above a guard page (PROT_NONE)
 * whose top 16 KiB hold a descriptor is a thread's stack:
 *   - the exiting thread's: scanned from its stack pointer up;
 *   - a live thread's (in /proc/self/task): from its stack pointer (less
 *     the 128-byte red zone of the ABI) up when the thread is blocked
 *     (/proc/self/task/<tid>/syscall gives it); a thread running meanwhile
 *     has its whole stack scanned, stale words below its stack pointer too;
 *   - an exited thread's: only its TLS and descriptor (above its last stack
 *     pointer, as memcheck sees them: the descriptor points at the thread's
 *     DTV, malloc'd by glibc).
 * The main thread's stack ([stack]) is scanned from its stack pointer up
 * when it is the exiting thread or blocked. Stacks that the program
 * supplied (pthread_attr_setstack), or made without a guard page, are
 * scanned whole.
 *
 * Report: loss records (the blocks of one kind from one stack), each
 * "Direct leak of N byte(s) in K object(s) allocated from:", memcheck's line
 * "T (N direct, I indirect) bytes in K blocks are definitely lost in loss
 * record i of n" (numbered as memcheck numbers them: every record, reachable
 * and suppressed ones too, by total size ascending, then kind, blocks), the
 * frames "#i 0x... in function (object+0xoffset)" and, for calls built with
 * HAK_TRACE_SOURCE, "source: file:line"; then indirect and possible leaks,
 * each largest first; with HAKMEM_LEAKCHECK_REACHABLE=1 the still reachable
 * records too; then one line of counts, always, in memcheck's classes:
 *   hakmem: leak check: definitely lost D bytes in d blocks, indirectly lost ...,
 *   possibly lost ..., still reachable R bytes in r blocks, suppressed ...,
 *   ignored ...
 * Suppressions (HAKMEM_LEAKCHECK_SUPPRESS): a file of lines "leak:<pattern>"
 * (or the pattern alone), '#' comments; a leak whose stack has a frame whose
 * function or object matches a pattern is not reported (counted as
 * suppressed). A pattern matches any name containing it; '*' and '?' are
 * wildcards, '^' and '$' anchor it at the start or end.
 * When a leak is reported the process exits with HAKMEM_LEAKCHECK_EXITCODE
 * (23, as LeakSanitizer; 0: the program's own status), after flushing stdio:
 * atexit handlers registered before hakmem's start and library destructors
 * then do not run. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "internal.h"

/* ---- the records ----------------------------------------------------------------- */
#define SHARDS 64

typedef struct rec_s {
  uintptr_t p;            /* 0: empty, 1: deleted */
  const hak_stack_t *stack;
  size_t size;            /* with REC_IGNORED: hak_leak_ignore'd */
} rec_t;
/* The ignored mark rides in the size's top bit (no size comes near it), so
 * that hak_leak_free hands it back with the size and a failed realloc, which
 * puts the record back (observe.c), keeps it; a new block at the address gets
 * a fresh size, unmarked. */
#define REC_IGNORED ((size_t)1 << (sizeof(size_t) * 8 - 1))

typedef struct shard_s {
  _Atomic bool lock;
  rec_t *rec;
  size_t cap, count, dead;
} shard_t;

static shard_t shards[SHARDS];
static _Atomic bool leak_on;

static void lock(_Atomic bool *l) {
  while (atomic_exchange_explicit(l, true, memory_order_acquire))
    while (atomic_load_explicit(l, memory_order_relaxed)) sched_yield();
}
static void unlock(_Atomic bool *l) { atomic_store_explicit(l, false, memory_order_release); }

static uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}
static shard_t *shard_of(uintptr_t p) { return &shards[mix(p >> 4) % SHARDS]; }

static bool shard_grow(shard_t *sh) {
  size_t cap = sh->cap == 0 ? 1024 : sh->count * 4 > sh->cap ? sh->cap * 2 : sh->cap;
  rec_t *fresh = hak_meta_alloc(cap * sizeof *fresh);
  if (fresh == NULL) return false;
  for (size_t i = 0; i < sh->cap; i++) {
    if (sh->rec[i].p <= 1) continue;
    size_t j = mix(sh->rec[i].p) & (cap - 1);
    while (fresh[j].p != 0) j = (j + 1) & (cap - 1);
    fresh[j] = sh->rec[i];
  }
  if (sh->rec != NULL) hak_meta_free(sh->rec, sh->cap * sizeof *sh->rec);
  sh->rec = fresh;
  sh->cap = cap;
  sh->dead = 0;
  return true;
}

static size_t shard_find(const shard_t *sh, uintptr_t p) { /* its slot, or cap */
  if (sh->cap == 0) return 0;
  for (size_t j = mix(p) & (sh->cap - 1);; j = (j + 1) & (sh->cap - 1)) {
    if (sh->rec[j].p == p) return j;
    if (sh->rec[j].p == 0) return sh->cap;
  }
}

void hak_leak_alloc(void *p, size_t size, const hak_stack_t *st) {
  if (!atomic_load_explicit(&leak_on, memory_order_relaxed) || st == NULL) return;
  uintptr_t a = (uintptr_t)p;
  shard_t *sh = shard_of(a);
  lock(&sh->lock);
  size_t j = shard_find(sh, a);
  if (j < sh->cap) { /* a record left over (a free that could not be tracked) */
    sh->rec[j].stack = st;
    sh->rec[j].size = size;
  } else if ((sh->count + sh->dead + 1) * 2 <= sh->cap || shard_grow(sh)) {
    j = mix(a) & (sh->cap - 1);
    while (sh->rec[j].p > 1) j = (j + 1) & (sh->cap - 1);
    if (sh->rec[j].p == 1) sh->dead--;
    sh->rec[j] = (rec_t){a, st, size};
    sh->count++;
  }
  unlock(&sh->lock);
}

void hak_leak_free(void *p, hak_leak_rec_t *old) {
  if (old != NULL) old->stack = NULL;
  if (!atomic_load_explicit(&leak_on, memory_order_relaxed)) return;
  uintptr_t a = (uintptr_t)p;
  shard_t *sh = shard_of(a);
  lock(&sh->lock);
  size_t j = shard_find(sh, a);
  if (j < sh->cap) {
    if (old != NULL) *old = (hak_leak_rec_t){sh->rec[j].stack, sh->rec[j].size};
    sh->rec[j].p = 1;
    sh->count--;
    sh->dead++;
  }
  unlock(&sh->lock);
}

/* hak_leak_ignore (api.c): marks the record of the block at p. 0, also when
 * the checker is off; -1 (EINVAL) when p starts no block on record. */
int hak_leak_ignore_block(const void *p) {
  if (!atomic_load_explicit(&leak_on, memory_order_relaxed)) return 0;
  uintptr_t a = (uintptr_t)p;
  shard_t *sh = shard_of(a);
  lock(&sh->lock);
  size_t j = a > 1 ? shard_find(sh, a) : sh->cap;
  if (j < sh->cap) sh->rec[j].size |= REC_IGNORED;
  unlock(&sh->lock);
  if (j < sh->cap) return 0;
  errno = EINVAL;
  return -1;
}

/* ---- suppressions ------------------------------------------------------------------- */
#define SUPP_MAX 256
static char *supp_text;          /* the file, its lines cut in place */
static size_t supp_bytes;
static const char *supp[SUPP_MAX];
static unsigned nsupp;

/* Glob match of the whole of s against p ('*', '?'). */
static bool glob(const char *p, const char *pend, const char *s, const char *send) {
  const char *star = NULL, *resume = NULL;
  while (s < send) {
    if (p < pend && (*p == '?' || *p == *s)) {
      p++;
      s++;
    } else if (p < pend && *p == '*') {
      star = p++;
      resume = s;
    } else if (star != NULL) {
      p = star + 1;
      s = ++resume;
    } else {
      return false;
    }
  }
  while (p < pend && *p == '*') p++;
  return p == pend;
}

/* A pattern matches a name that contains it, unless anchored by ^ or $. */
static bool pattern_matches(const char *pat, const char *name) {
  if (name == NULL) return false;
  size_t n = strlen(pat);
  bool head = n > 0 && pat[0] == '^', tail = n > 0 && pat[n - 1] == '$' && n > (size_t)head;
  const char *p = pat + head, *pend = pat + n - tail;
  const char *s = name, *send = name + strlen(name);
  for (const char *start = s; start <= send; start++) {
    if (head && start != s) return false;
    for (const char *end = send; end >= start; end--) {
      if (tail && end != send) break;
      if (glob(p, pend, start, end)) return true;
    }
  }
  return false;
}

static bool frame_suppressed(const hak_frame_name_t *fn) {
  for (unsigned i = 0; i < nsupp; i++) {
    if (pattern_matches(supp[i], fn->function) || pattern_matches(supp[i], fn->object)) return true;
    const char *base = fn->object != NULL ? strrchr(fn->object, '/') : NULL;
    if (base != NULL && pattern_matches(supp[i], base + 1)) return true;
  }
  return false;
}

/* Reads the suppressions; false (and a message) when the file is unreadable or
 * a line is not a suppression. */
static bool supp_load(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    hak_out_error("hakmem: HAKMEM_LEAKCHECK_SUPPRESS=%s: cannot read it: %s\n", path, strerror(errno));
    return false;
  }
  size_t cap = 1 << 16;
  supp_text = hak_meta_alloc(cap);
  ssize_t n = 0;
  while (supp_text != NULL && supp_bytes < cap - 1 &&
         ((n = read(fd, supp_text + supp_bytes, cap - 1 - supp_bytes)) > 0 || (n < 0 && errno == EINTR)))
    if (n > 0) supp_bytes += (size_t)n;
  close(fd);
  if (supp_text == NULL || n < 0 || supp_bytes == cap - 1) {
    hak_out_error("hakmem: HAKMEM_LEAKCHECK_SUPPRESS=%s: cannot read it (at most 64 KiB)\n", path);
    return false;
  }
  unsigned lineno = 0;
  for (char *line = supp_text, *next; line < supp_text + supp_bytes; line = next) {
    char *nl = memchr(line, '\n', (size_t)(supp_text + supp_bytes - line));
    next = nl != NULL ? nl + 1 : supp_text + supp_bytes;
    if (nl != NULL) *nl = '\0';
    lineno++;
    while (*line == ' ' || *line == '\t') line++;
    char *end = line + strlen(line);
    while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) *--end = '\0';
    if (*line == '\0' || *line == '#') continue;
    if (strncmp(line, "leak:", 5) == 0) line += 5;
    else if (strchr(line, ':') != NULL && strchr(line, ':') < line + strcspn(line, "*?")) {
      hak_out_error("hakmem: HAKMEM_LEAKCHECK_SUPPRESS=%s:%u: '%s' is not a suppression (leak:<pattern>)\n", path,
                    lineno, line);
      return false;
    }
    if (*line == '\0' || nsupp == SUPP_MAX) {
      hak_out_error("hakmem: HAKMEM_LEAKCHECK_SUPPRESS=%s:%u: %s\n", path, lineno,
                    *line == '\0' ? "empty pattern" : "more than 256 patterns");
      return false;
    }
    supp[nsupp++] = line;
  }
  return true;
}

/* ---- the check ------------------------------------------------------------------------ */
/* A block's state; IGNORED: hak_leak_ignore'd, a root (not reported). */
enum { UNREACHED, INDIRECT, POSSIBLE, REACHABLE, IGNORED, KINDS };
static const char *const kind_name[] = {"Direct", "Indirect", "Possible", "Reachable"};
/* memcheck's words for each kind, and its order of kinds in loss records of
 * equal size (its Reachedness: Reachable, Possible, IndirectLeak, Unreached). */
static const char *const kind_words[] = {"definitely lost", "indirectly lost", "possibly lost", "still reachable"};
static const unsigned kind_rank[] = {3, 2, 1, 0};

typedef struct blk_s {
  uintptr_t start;
  size_t size;
  const hak_stack_t *stack;
  size_t indirect;        /* a direct leak: the bytes of its clique (step 3) */
  uint32_t state;
  uint32_t clique;
} blk_t;

static blk_t *blk;
static size_t nblk;
static uint32_t *work;   /* the blocks to scan */
static size_t nwork, work_cap;

/* The block holding address a, or nblk. A block of size 0 holds its start. */
static size_t blk_find(uintptr_t a) {
  size_t lo = 0, hi = nblk;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (blk[mid].start <= a) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return nblk;
  blk_t *b = &blk[lo - 1];
  return a < b->start + (b->size ? b->size : 1) ? lo - 1 : nblk;
}

static void push(size_t i) {
  if (nwork < work_cap) work[nwork++] = (uint32_t)i;
}

/* A word w seen in memory reached as definite (from a root or a reachable
 * block) or not; clique: scanning from unreached block clique (step 3). */
static void consider(uintptr_t w, bool definite, long clique) {
  /* Not hakmem's: not a block. The page map holds a large block by its first
   * unit only (large.c); an address further into one is in a unit hakmem
   * mapped (os.c), and may make the block possibly lost. */
  if (hak_pagemap_lookup((void *)w) == NULL && !hak_os_owns((void *)w)) return;
  size_t i = blk_find(w);
  if (i == nblk) return;
  blk_t *b = &blk[i];
  if (clique >= 0) {
    if (b->state == UNREACHED && i != (size_t)clique) {
      /* Into the clique, with the clique it led if it led one (a block
       * earlier in address order that this one is reached from). */
      b->state = INDIRECT;
      b->clique = (uint32_t)clique;
      blk[clique].indirect += b->size + b->indirect;
      b->indirect = 0;
      push(i);
    }
    return;
  }
  if (b->state == REACHABLE || b->state == IGNORED) return;
  if (w == b->start && definite) {
    b->state = REACHABLE;
    push(i);
  } else if (b->state == UNREACHED) {
    b->state = POSSIBLE;
    push(i);
  }
}

/* ---- reading memory that may go away (see the head of the file) ---- */
#define FETCH_BYTES HAK_UNIT_SIZE
static uintptr_t *fetch_buf; /* FETCH_BYTES from the descriptor arena */
static bool fetch_direct;    /* process_vm_readv refused: plain loads */
static pid_t self_pid;

/* Start of the check: the buffer, and whether process_vm_readv works here. */
static void fetch_init(void) {
  self_pid = getpid();
  fetch_buf = hak_meta_alloc(FETCH_BYTES);
  uintptr_t probe = (uintptr_t)&fetch_buf;
  struct iovec local = {fetch_buf, sizeof probe}, remote = {&probe, sizeof probe};
  fetch_direct = fetch_buf == NULL || process_vm_readv(self_pid, &local, 1, &remote, 1, 0) != (ssize_t)sizeof probe;
}

/* The words of [a, a + n) (a word-aligned, n <= FETCH_BYTES, whole words)
 * still mapped from a on: *out points at them; returns how many bytes (fewer
 * than n: the page at a + that many is gone). */
static size_t fetch(uintptr_t a, size_t n, const uintptr_t **out) {
  if (fetch_direct) {
    *out = (const uintptr_t *)a;
    return n;
  }
  *out = fetch_buf;
  struct iovec local = {fetch_buf, n}, remote = {(void *)a, n};
  ssize_t got = process_vm_readv(self_pid, &local, 1, &remote, 1, 0);
  size_t first = HAK_PAGE_SIZE - (a & (HAK_PAGE_SIZE - 1));
  if (got < 0 && first < n) { /* maybe a page further on is gone: the first page alone */
    local.iov_len = remote.iov_len = first;
    got = process_vm_readv(self_pid, &local, 1, &remote, 1, 0);
  }
  return got > 0 ? (size_t)got & ~(sizeof(uintptr_t) - 1) : 0;
}

static void scan(uintptr_t lo, uintptr_t hi, bool definite, long clique) {
  lo = hak_align_up(lo, sizeof(void *));
  while (lo < hi && hi - lo >= sizeof(void *)) {
    size_t want = (hi - lo < FETCH_BYTES ? hi - lo : FETCH_BYTES) & ~(sizeof(void *) - 1);
    const uintptr_t *w;
    size_t got = fetch(lo, want, &w);
    for (size_t i = 0; i < got / sizeof *w; i++) consider(w[i], definite, clique);
    lo = got == want ? lo + got : ((lo + got) & ~(uintptr_t)(HAK_PAGE_SIZE - 1)) + HAK_PAGE_SIZE; /* past the page gone */
  }
}

static void drain(long clique) {
  while (nwork > 0) {
    blk_t *b = &blk[work[--nwork]];
    scan(b->start, b->start + b->size, clique < 0 && (b->state == REACHABLE || b->state == IGNORED), clique);
  }
}

/* [lo, hi) a root range: scanned except the units hakmem mapped. */
static void scan_root(uintptr_t lo, uintptr_t hi) {
  while (lo < hi) {
    uintptr_t unit_end = (lo | (HAK_UNIT_SIZE - 1)) + 1, end = unit_end < hi ? unit_end : hi;
    if (!hak_os_owns((void *)lo)) scan(lo, end, true, -1);
    lo = end;
    drain(-1);
  }
}

/* hakmem's own object, when it is a shared object (its data holds no block
 * of the program's): its writable segments, skipped as roots. */
#define OWN_SEGS 8
static uintptr_t own_lo[OWN_SEGS], own_hi[OWN_SEGS];
static unsigned nown;

static int own_segments(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  uintptr_t me = (uintptr_t)arg;
  bool mine = false;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && me >= lo && me < lo + ph->p_memsz) mine = true;
  }
  if (!mine || info->dlpi_name == NULL || info->dlpi_name[0] == '\0') return mine; /* the program itself: keep */
  for (int i = 0; i < info->dlpi_phnum && nown < OWN_SEGS; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W)) continue;
    own_lo[nown] = info->dlpi_addr + ph->p_vaddr;
    own_hi[nown++] = hak_align_up(info->dlpi_addr + ph->p_vaddr + ph->p_memsz, HAK_PAGE_SIZE);
  }
  return 1;
}

/* [lo, hi) less hakmem's own segments: a mapping may hold one and more (the
 * kernel merges the anonymous part of a segment, its .bss, with an anonymous
 * mapping made next to it), and hakmem's data holds addresses of blocks (a
 * medium chunk's, a large block's) that would make them reachable. */
static void scan_root_not_own(uintptr_t lo, uintptr_t hi) {
  while (lo < hi) {
    uintptr_t cut = hi, resume = hi; /* the first own segment meeting [lo, hi) */
    for (unsigned k = 0; k < nown; k++) {
      if (own_hi[k] <= lo || own_lo[k] >= hi) continue;
      uintptr_t from = own_lo[k] > lo ? own_lo[k] : lo;
      if (from < cut) {
        cut = from;
        resume = own_hi[k] < hi ? own_hi[k] : hi;
      }
    }
    if (lo < cut) scan_root(lo, cut);
    lo = resume;
  }
}

static uintptr_t parse_hex(const char **s) {
  uintptr_t v = 0;
  for (;; (*s)++) {
    char c = **s;
    if (c >= '0' && c <= '9') v = v * 16 + (uintptr_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v = v * 16 + (uintptr_t)(c - 'a' + 10);
    else return v;
  }
}

/* The whole of a file, in memory from the descriptor arena (*len bytes, a
 * NUL after them); NULL when unreadable. */
static char *read_file(const char *path, size_t *len, size_t *cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  *cap = 1 << 16;
  *len = 0;
  char *buf = hak_meta_alloc(*cap);
  while (buf != NULL) {
    if (*len + 1 == *cap) {
      char *bigger = hak_meta_alloc(*cap * 2);
      if (bigger != NULL) memcpy(bigger, buf, *len);
      hak_meta_free(buf, *cap);
      buf = bigger;
      *cap *= 2;
      continue;
    }
    ssize_t n = read(fd, buf + *len, *cap - 1 - *len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    *len += (size_t)n;
  }
  close(fd);
  if (buf != NULL) buf[*len] = '\0';
  return buf;
}

/* ---- threads' stacks (see the head of the file) ---------------------------------- */
#define RED_ZONE 128            /* below the stack pointer, still the function's (x86-64 ABI) */
#define TCB_SEARCH (16 * 1024)  /* a thread's descriptor lies this near the top of its mapping */
typedef struct thr_s {
  pid_t tid;
  uintptr_t sp;                 /* 0: not known (the thread was running) */
} thr_t;
static thr_t *thr;              /* the live threads but the exiting one, by tid */
static size_t nthr, thr_cap;
static pid_t self_tid;
static int tid_off = -1;        /* the thread id's offset in a descriptor; -1: not learnt */
static uintptr_t tls_span;      /* bytes of static TLS below a descriptor */

#if defined(__x86_64__)
/* The lowest static TLS block of the calling thread below its descriptor tp. */
static int tls_lowest(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  uintptr_t tp = (uintptr_t)__builtin_thread_pointer(), data = (uintptr_t)info->dlpi_tls_data;
  uintptr_t *span = arg;
  if (data != 0 && data < tp && tp - data < ((uintptr_t)64 << 20) && tp - data > *span) *span = tp - data;
  return 0;
}
#endif

/* Learns the descriptor's layout from the calling thread's own. */
static void tcb_learn(void) {
  self_tid = (pid_t)syscall(SYS_gettid);
#if defined(__x86_64__)
  const char *tp = __builtin_thread_pointer();
  if (*(const uintptr_t *)tp != (uintptr_t)tp || *(const uintptr_t *)(tp + 16) != (uintptr_t)tp) return;
  for (int off = 24; off < 1024; off += (int)sizeof(pid_t))
    if (*(const pid_t *)(tp + off) == self_tid) {
      tid_off = off;
      break;
    }
  dl_iterate_phdr(tls_lowest, &tls_span);
#endif
}

static void thr_add(pid_t tid, uintptr_t sp) {
  if (nthr == thr_cap) {
    size_t cap = thr_cap ? thr_cap * 2 : 256;
    thr_t *fresh = hak_meta_alloc(cap * sizeof *fresh);
    if (fresh == NULL) return;
    if (thr != NULL) {
      memcpy(fresh, thr, nthr * sizeof *thr);
      hak_meta_free(thr, thr_cap * sizeof *thr);
    }
    thr = fresh;
    thr_cap = cap;
  }
  size_t i = nthr++;
  for (; i > 0 && thr[i - 1].tid > tid; i--) thr[i] = thr[i - 1];
  thr[i] = (thr_t){tid, sp};
}

static const thr_t *thr_find(pid_t tid) {
  size_t lo = 0, hi = nthr;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (thr[mid].tid == tid) return &thr[mid];
    if (thr[mid].tid < tid) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

/* A blocked thread's stack pointer (/proc/self/task/<tid>/syscall: "<nr>
 * <six arguments> <sp> <pc>", or "-1 <sp> <pc>"), or 0 while it runs. */
static uintptr_t thread_sp(pid_t tid) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
  for (int attempt = 0; attempt < 3; attempt++) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    if (strncmp(buf, "running", 7) != 0) {
      const char *tok[12];
      int ntok = 0;
      for (char *c = buf; *c != '\0' && ntok < 12;) {
        while (*c == ' ' || *c == '\n') c++;
        if (*c == '\0') break;
        tok[ntok++] = c;
        while (*c != '\0' && *c != ' ' && *c != '\n') c++;
      }
      if (ntok < 3 || strncmp(tok[ntok - 2], "0x", 2) != 0) return 0;
      const char *h = tok[ntok - 2] + 2;
      return parse_hex(&h);
    }
    sched_yield(); /* running: perhaps about to block */
  }
  return 0;
}

/* The live threads (/proc/self/task) but this one, with their stack pointers. */
static void threads_read(void) {
  int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  struct dirent64_s {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
  };
  _Alignas(8) char buf[4096];
  long n;
  while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
    for (long off = 0; off < n;) {
      const struct dirent64_s *d = (const struct dirent64_s *)(buf + off);
      off += d->reclen;
      long tid = strtol(d->name, NULL, 10);
      if (tid > 0 && tid != self_tid) thr_add((pid_t)tid, thread_sp((pid_t)tid));
    }
  close(fd);
}

/* [lo, hi), an anonymous mapping above a guard page: a thread's stack if a
 * descriptor lies in its top; returns where its scan starts. */
static uintptr_t thread_stack_from(uintptr_t lo, uintptr_t hi, uintptr_t self_sp) {
  if (tid_off < 0 || hi - lo < TCB_SEARCH) return lo;
  uintptr_t top = hi - TCB_SEARCH;
  const uintptr_t *w;
  if (fetch(top, TCB_SEARCH, &w) != TCB_SEARCH) return lo;
  const char *base = (const char *)w;
  for (size_t k = TCB_SEARCH / 64; k-- > 0;) { /* 64-byte aligned, from the top down */
    size_t at = k * 64;
    uintptr_t t = top + at;
    if (w[at / 8] != t || w[at / 8 + 2] != t || at + (size_t)tid_off + sizeof(pid_t) > TCB_SEARCH) continue;
    pid_t tid;
    memcpy(&tid, base + at + tid_off, sizeof tid);
    if (tid == self_tid) return self_sp >= lo && self_sp < hi ? self_sp : lo;
    const thr_t *th = tid != 0 ? thr_find(tid) : NULL;
    if (th == NULL) return t - tls_span > lo ? t - tls_span : lo; /* exited: its TLS and descriptor */
    if (th->sp > lo + RED_ZONE && th->sp < hi) return th->sp - RED_ZONE;
    return lo; /* running: the whole stack */
  }
  return lo;
}

/* Every root range of /proc/self/maps; sp: the exiting thread's stack
 * pointer (its stack is scanned from there up). */
static void scan_roots(uintptr_t sp) {
  size_t len, cap;
  char *maps = read_file("/proc/self/maps", &len, &cap);
  if (maps == NULL) {
    hak_out_error("hakmem: leak check: cannot read /proc/self/maps: every block counts as leaked\n");
    return;
  }
  tcb_learn();
  threads_read();
  const thr_t *main_thr = thr_find(self_pid);
  uintptr_t prev_hi = 0;
  bool prev_guard = false;
  for (char *line = maps, *next; line < maps + len; line = next) {
    char *nl = strchr(line, '\n');
    next = nl != NULL ? nl + 1 : maps + len;
    if (nl != NULL) *nl = '\0';
    const char *s = line;
    uintptr_t lo = parse_hex(&s);
    s++;
    uintptr_t hi = parse_hex(&s);
    s++;
    bool rw = s[0] == 'r' && s[1] == 'w';
    bool guard_below = prev_guard && prev_hi == lo;
    prev_guard = strncmp(s, "---p", 4) == 0;
    prev_hi = hi;
    const char *path = s;
    for (int field = 0; field < 4 && *path != '\0'; field++) { /* perms offset dev inode */
      path = strchr(path, ' ');
      if (path == NULL) break;
      while (*path == ' ') path++;
    }
    if (path == NULL) path = "";
    while (*path != '\0' && *path != ' ') path++; /* past the inode */
    while (*path == ' ') path++;
    bool special = path[0] == '[' && strncmp(path, "[stack", 6) != 0 && strncmp(path, "[heap", 5) != 0 &&
                   strncmp(path, "[anon", 5) != 0; /* [vvar], [vdso], [vsyscall] */
    bool device = strncmp(path, "/dev/", 5) == 0 && strncmp(path, "/dev/zero", 9) != 0;
    if (!rw || special || device) continue;
    if (sp >= lo && sp < hi) lo = sp;
    else if (strncmp(path, "[stack]", 7) == 0 && main_thr != NULL && main_thr->sp > lo + RED_ZONE && main_thr->sp < hi)
      lo = main_thr->sp - RED_ZONE;
    else if (guard_below && (path[0] == '\0' || strncmp(path, "[anon", 5) == 0) && !hak_os_owns((void *)lo))
      lo = thread_stack_from(lo, hi, sp);
    scan_root_not_own(lo, hi);
  }
  hak_meta_free(maps, cap);
}

/* Heap sort of the blocks by address (no malloc: qsort may call it). */
static void sift(blk_t *a, size_t i, size_t n) {
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) return;
    if (c + 1 < n && a[c + 1].start > a[c].start) c++;
    if (a[i].start >= a[c].start) return;
    blk_t t = a[i];
    a[i] = a[c];
    a[c] = t;
    i = c;
  }
}
static void sort_blocks(blk_t *a, size_t n) {
  for (size_t i = n / 2; i-- > 0;) sift(a, i, n);
  for (size_t end = n; end-- > 1;) {
    blk_t t = a[0];
    a[0] = a[end];
    a[end] = t;
    sift(a, 0, end);
  }
}

/* A loss record: the blocks of one kind allocated from one stack. */
typedef struct group_s {
  const hak_stack_t *stack;
  uint32_t kind;
  bool suppressed;
  size_t bytes, count;
  size_t indirect;        /* direct leaks: the bytes of the blocks lost through them */
  size_t number;          /* memcheck's loss record number, from 1 */
} group_t;

static size_t group_total(const group_t *g) { return g->bytes + g->indirect; }

/* memcheck's order of loss records, which numbers them: total bytes
 * ascending, then kind (kind_rank), blocks, and stack (arbitrary, fixed). */
static bool record_before(const group_t *a, const group_t *b) {
  if (group_total(a) != group_total(b)) return group_total(a) < group_total(b);
  if (a->kind != b->kind) return kind_rank[a->kind] < kind_rank[b->kind];
  if (a->count != b->count) return a->count < b->count;
  return (uintptr_t)a->stack < (uintptr_t)b->stack;
}
/* The report's order: direct, indirect, possible, reachable; largest first. */
static bool report_before(const group_t *a, const group_t *b) {
  if (a->kind != b->kind) return a->kind < b->kind;
  if (group_total(a) != group_total(b)) return group_total(a) > group_total(b);
  return a->number > b->number;
}

/* Heap sort of the groups (no malloc; there may be thousands of stacks). */
typedef bool (*group_order_t)(const group_t *, const group_t *);
static void group_sift(group_t *g, size_t i, size_t n, group_order_t before) {
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) return;
    if (c + 1 < n && before(&g[c], &g[c + 1])) c++;
    if (!before(&g[i], &g[c])) return;
    group_t t = g[i];
    g[i] = g[c];
    g[c] = t;
    i = c;
  }
}
static void sort_groups(group_t *g, size_t n, group_order_t before) {
  for (size_t i = n / 2; i-- > 0;) group_sift(g, i, n, before);
  for (size_t end = n; end-- > 1;) {
    group_t t = g[0];
    g[0] = g[end];
    g[end] = t;
    group_sift(g, 0, end, before);
  }
}

/* Groups the blocks of each kind by stack (every block but the ignored):
 * an open-addressing table of cap slots, compacted; returns how many. */
static size_t group_blocks(group_t *g, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < nblk; i++) {
    const blk_t *b = &blk[i];
    if (b->state == IGNORED) continue;
    size_t j = mix((uint64_t)(uintptr_t)b->stack ^ b->state) & (cap - 1);
    while (g[j].count != 0 && (g[j].stack != b->stack || g[j].kind != b->state)) j = (j + 1) & (cap - 1);
    if (g[j].count == 0) {
      g[j].stack = b->stack;
      g[j].kind = b->state;
      n++;
    }
    g[j].count++;
    g[j].bytes += b->size;
    if (b->state == UNREACHED) g[j].indirect += b->indirect;
  }
  size_t k = 0; /* compact */
  for (size_t j = 0; j < cap; j++)
    if (g[j].count != 0) g[k++] = g[j];
  return n;
}

static bool group_suppressed(const group_t *g) {
  if (nsupp == 0) return false;
  for (uint32_t f = 0; f < g->stack->depth; f++) {
    hak_frame_name_t fn;
    hak_symbols_lookup(g->stack->frames[f], &fn);
    if (frame_suppressed(&fn)) return true;
  }
  return false;
}

/* v with a comma every three digits, as memcheck writes its figures. */
static const char *commas(size_t v, char buf[32]) {
  char digits[24];
  int n = snprintf(digits, sizeof digits, "%zu", v), k = 0;
  for (int i = 0; i < n; i++) {
    if (i > 0 && (n - i) % 3 == 0) buf[k++] = ',';
    buf[k++] = digits[i];
  }
  buf[k] = '\0';
  return buf;
}

/* A record: LeakSanitizer's heading, memcheck's line, the source location
 * (HAK_TRACE_SOURCE) and the frames. */
static void report_group(hak_out_t *o, const group_t *g, size_t records) {
  if (g->kind == POSSIBLE)
    hak_out_printf(o, "\nPossible leak of %zu byte(s) in %zu object(s) (only pointers into them) allocated from:\n",
                   g->bytes, g->count);
  else if (g->kind == REACHABLE)
    hak_out_printf(o, "\nStill reachable: %zu byte(s) in %zu object(s) allocated from:\n", g->bytes, g->count);
  else
    hak_out_printf(o, "\n%s leak of %zu byte(s) in %zu object(s) allocated from:\n", kind_name[g->kind], g->bytes,
                   g->count);
  char total[32], direct[32], indirect[32], count[32], number[32], of[32];
  if (g->indirect > 0)
    hak_out_printf(o, "    %s (%s direct, %s indirect) bytes in %s blocks are %s in loss record %s of %s\n",
                   commas(group_total(g), total), commas(g->bytes, direct), commas(g->indirect, indirect),
                   commas(g->count, count), kind_words[g->kind], commas(g->number, number), commas(records, of));
  else
    hak_out_printf(o, "    %s bytes in %s blocks are %s in loss record %s of %s\n", commas(g->bytes, total),
                   commas(g->count, count), kind_words[g->kind], commas(g->number, number), commas(records, of));
  if (g->stack->file != NULL) hak_out_printf(o, "    source: %s:%d\n", g->stack->file, g->stack->line);
  for (uint32_t f = 0; f < g->stack->depth; f++) {
    hak_frame_name_t fn;
    hak_symbols_lookup(g->stack->frames[f], &fn);
    hak_symbols_source(&fn);
    const hak_source_t *src = fn.nsource ? &fn.source[fn.nsource - 1] : NULL; /* the symbol's function */
    const char *name = fn.function != NULL ? fn.function : src != NULL ? src->function : "??";
    hak_out_printf(o, "    #%u %p in %s", f, g->stack->frames[f], name);
    if (fn.object != NULL) hak_out_printf(o, " (%s+0x%lx)", fn.object, (unsigned long)fn.offset);
    for (unsigned k = fn.nsource; k-- > 0;) /* the call's line, then the functions inlined there */
      hak_out_printf(o, k + 1 == fn.nsource ? " at %s%s%s:%d" : "%s%s at %s:%d",
                     k + 1 == fn.nsource ? "" : k + 2 == fn.nsource ? ", inlined: " : ", ",
                     k + 1 == fn.nsource ? "" : fn.source[k].function,
                     fn.source[k].file != NULL ? fn.source[k].file : "??", fn.source[k].line);
    hak_out_write(o, "\n", 1);
  }
  const char *why = hak_symbols_problem(); /* once in the report */
  if (why != NULL) hak_out_printf(o, "    (hakmem: no file:line in this report: %s; frames named from the symbol tables)\n", why);
  if (g->stack->depth == 0) hak_out_printf(o, "    (no stack)\n");
}

static void *meta_or_null(size_t bytes) { return bytes ? hak_meta_alloc(bytes) : NULL; }
static size_t blk_cap; /* blk[]'s room, in blocks */

/* Step 1: the records, copied into blk[] in address order while every shard
 * is locked; at exit, nothing is recorded after. False: no memory for the
 * copy. */
static bool take_records(bool at_exit) {
  for (int i = 0; i < SHARDS; i++) lock(&shards[i].lock);
  if (at_exit) atomic_store(&leak_on, false);
  size_t n = 0;
  for (int i = 0; i < SHARDS; i++) n += shards[i].count;
  blk = meta_or_null(n * sizeof *blk);
  blk_cap = n;
  nblk = nwork = 0;
  work_cap = 2 * n + 16;
  work = hak_meta_alloc(work_cap * sizeof *work);
  if ((n && blk == NULL) || work == NULL) {
    for (int i = 0; i < SHARDS; i++) unlock(&shards[i].lock);
    return false;
  }
  for (int i = 0; i < SHARDS; i++)
    for (size_t j = 0; j < shards[i].cap; j++) {
      const rec_t *r = &shards[i].rec[j];
      if (r->p > 1 && nblk < n)
        blk[nblk++] = (blk_t){r->p, r->size & ~REC_IGNORED, r->stack, 0, r->size & REC_IGNORED ? IGNORED : UNREACHED, 0};
    }
  for (int i = 0; i < SHARDS; i++) unlock(&shards[i].lock);
  sort_blocks(blk, nblk);
  return true;
}

/* Step 2: what reaches what: the ignored blocks and the roots (the checking
 * thread's stack from sp), the blocks they reach and what those reach, then
 * the cliques of the blocks still unreached (direct and indirect leaks). */
static void classify(uintptr_t sp) {
  nown = 0;
  dl_iterate_phdr(own_segments, (void *)(uintptr_t)&hak_leak_init);
  fetch_init();
  for (size_t i = 0; i < nblk; i++) /* an ignored block is a root, as in LeakSanitizer */
    if (blk[i].state == IGNORED) push(i);
  drain(-1);
  scan_roots(sp);
  for (size_t i = 0; i < nblk; i++) {
    if (blk[i].state != UNREACHED) continue;
    push(i);
    drain((long)i);
  }
}

/* What a check allocated, given back (a check mid-run leaves nothing). */
static void release_state(void) {
  if (blk != NULL) hak_meta_free(blk, blk_cap * sizeof *blk);
  if (work != NULL) hak_meta_free(work, work_cap * sizeof *work);
  if (thr != NULL) hak_meta_free(thr, thr_cap * sizeof *thr);
  if (fetch_buf != NULL) hak_meta_free(fetch_buf, FETCH_BYTES);
  blk = NULL;
  work = NULL;
  thr = NULL;
  fetch_buf = NULL;
  nblk = blk_cap = nwork = work_cap = nthr = thr_cap = 0;
}

/* Step 3: the report, to HAKMEM_LEAKCHECK_FILE or stderr: the leaks by
 * stack (direct, indirect, possible), largest first; with
 * HAKMEM_LEAKCHECK_REACHABLE the still reachable blocks too; the counts
 * line, always. *c gets the counts. True when a leak was reported. */
static bool report(hak_leak_counts_t *c) {
  size_t bytes[KINDS] = {0}, count[KINDS] = {0}, supp_total = 0, supp_count = 0;
  size_t cap = 16;
  while (cap < nblk * 2) cap *= 2;
  group_t *g = hak_meta_alloc(cap * sizeof *g);
  hak_out_t *o = hak_meta_alloc(sizeof *o);
  if (g == NULL || o == NULL) {
    if (g != NULL) hak_meta_free(g, cap * sizeof *g);
    if (o != NULL) hak_meta_free(o, sizeof *o);
    hak_out_error("hakmem: leak check: out of memory, no report\n");
    return false;
  }
  size_t ng = group_blocks(g, cap);
  sort_groups(g, ng, record_before);
  for (size_t i = 0; i < ng; i++) {
    g[i].number = i + 1;
    g[i].suppressed = g[i].kind != REACHABLE && group_suppressed(&g[i]);
    if (g[i].suppressed) {
      supp_total += g[i].bytes;
      supp_count += g[i].count;
    } else {
      bytes[g[i].kind] += g[i].bytes;
      count[g[i].kind] += g[i].count;
    }
  }
  for (size_t i = 0; i < nblk; i++)
    if (blk[i].state == IGNORED) {
      bytes[IGNORED] += blk[i].size;
      count[IGNORED]++;
    }
  sort_groups(g, ng, report_before);
  const char *path = hak_option_text(HAK_OPT_LEAKCHECK_FILE);
  int fd = path != NULL ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : 2;
  if (fd < 0) {
    hak_out_error("hakmem: HAKMEM_LEAKCHECK_FILE=%s: %s; the report goes to stderr\n", path, strerror(errno));
    fd = 2;
  }
  o->fd = fd;
  bool leaks = count[UNREACHED] + count[INDIRECT] + count[POSSIBLE] > 0;
  bool reachable = hak_option(HAK_OPT_LEAKCHECK_REACHABLE) != 0 && count[REACHABLE] > 0;
  if (leaks)
    hak_out_printf(o, "=================================================================\n"
                      "==%d==ERROR: hakmem: detected memory leaks\n", (int)getpid());
  for (size_t i = 0; i < ng; i++)
    if (!g[i].suppressed && g[i].kind != REACHABLE) report_group(o, &g[i], ng);
  if (reachable) {
    hak_out_printf(o, "%s==%d==hakmem: still reachable blocks (HAKMEM_LEAKCHECK_REACHABLE=1)\n",
                   leaks ? "\n" : "=================================================================\n", (int)getpid());
    for (size_t i = 0; i < ng; i++)
      if (g[i].kind == REACHABLE) report_group(o, &g[i], ng);
  }
  if (leaks)
    hak_out_printf(o, "\nSUMMARY: hakmem: %zu byte(s) leaked in %zu allocation(s).\n",
                   bytes[UNREACHED] + bytes[INDIRECT] + bytes[POSSIBLE], count[UNREACHED] + count[INDIRECT] + count[POSSIBLE]);
  hak_out_printf(o,
                 "hakmem: leak check: definitely lost %zu bytes in %zu blocks, indirectly lost %zu bytes in %zu "
                 "blocks, possibly lost %zu bytes in %zu blocks, still reachable %zu bytes in %zu blocks, "
                 "suppressed %zu bytes in %zu blocks, ignored %zu bytes in %zu blocks\n",
                 bytes[UNREACHED], count[UNREACHED], bytes[INDIRECT], count[INDIRECT], bytes[POSSIBLE],
                 count[POSSIBLE], bytes[REACHABLE], count[REACHABLE], supp_total, supp_count, bytes[IGNORED],
                 count[IGNORED]);
  hak_out_flush(o);
  if (fd != 2) close(fd);
  hak_meta_free(o, sizeof *o);
  hak_meta_free(g, cap * sizeof *g);
  *c = (hak_leak_counts_t){1, bytes[UNREACHED], count[UNREACHED], bytes[INDIRECT], count[INDIRECT], bytes[POSSIBLE],
                           count[POSSIBLE], bytes[REACHABLE], count[REACHABLE], supp_total, supp_count,
                           bytes[IGNORED], count[IGNORED]};
  return leaks;
}

/* One check at a time (the exit check waits for one under way). */
static _Atomic bool check_lock;

/* The check; sp: where the checking thread's stack is scanned from, above
 * every frame of the check itself (check_from_here). at_exit: tracking
 * stops, and the process exits with HAKMEM_LEAKCHECK_EXITCODE when a leak
 * was reported; otherwise the process goes on as it was. The bytes
 * definitely and indirectly lost. */
static hak_noinline size_t check(uintptr_t sp, bool at_exit, hak_leak_counts_t *c) {
  bool busy = hak_track_busy;
  hak_track_busy = true;
  lock(&check_lock);
  if (at_exit) atomic_fetch_and(&hak_observers, ~HAK_OBS_LEAKS); /* nothing tracked from now on */
  bool paused = hak_scavenger_pause(); /* nothing released by hakmem's own thread until the scan is done */
  bool reported = false;
  if (take_records(at_exit)) {
    classify(sp);
    if (paused) hak_scavenger_resume();
    reported = report(c);
    hak_symbols_release();
  } else {
    if (paused) hak_scavenger_resume();
    hak_out_error("hakmem: leak check: out of memory, no check\n");
  }
  release_state();
  unlock(&check_lock);
  hak_track_busy = busy;
  long code = hak_option(HAK_OPT_LEAKCHECK_EXITCODE);
  if (at_exit && reported && code != 0) {
    fflush(NULL);
    _exit((int)code);
  }
  return c->definite_bytes + c->indirect_bytes;
}

/* Runs the check with the calling thread's stack scanned from this frame's
 * stack pointer up: the registers' values saved in it
 * (__builtin_unwind_init) and the program's frames, and nothing the check
 * leaves in its own frames, all below (a copy of a mapping's start, or of a
 * block's address, in one of them would make a block reachable). */
static hak_noinline size_t check_from_here(bool at_exit, hak_leak_counts_t *c) {
  __builtin_unwind_init();
  uintptr_t sp;
#if defined(__x86_64__)
  __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
#else
  sp = (uintptr_t)__builtin_frame_address(0);
#endif
  return check(sp, at_exit, c);
}

/* The atexit handler. */
static void check_at_exit(void) {
  sigset_t old; /* no handler runs while the records and their locks are read */
  hak_signals_block(&old);
  hak_leak_counts_t c = {0};
  check_from_here(true, &c);
  hak_signals_restore(&old);
}

/* hak_leak_check (api.c, signals blocked there): the same check now; the
 * process goes on as it was. Afterwards the stack the check used is cleared,
 * as the tracking code clears its own: a precaution (its dead frames may
 * hold blocks' addresses, which a check made later from a deeper frame would
 * see; tests/leaks.c check-midrun makes one, and saw the same counts without
 * the clearing too: the report's frames write over the scan's). */
size_t hak_leak_check_now(hak_leak_counts_t *out) {
  hak_leak_counts_t c = {0};
  size_t lost = 0;
  if (atomic_load(&leak_on)) {
    lost = check_from_here(false, &c);
    hak_stack_scrub();
  }
  if (out != NULL) *out = c;
  return lost;
}

/* ---- start-up and fork ----------------------------------------------------------------- */
void hak_leak_init(void) {
  hak_os_track_own(); /* first: the memory mapped from now on is hakmem's, not a root */
  const char *supp_path = hak_option_text(HAK_OPT_LEAKCHECK_SUPPRESS);
  if (supp_path != NULL && !supp_load(supp_path)) _exit(2);
  atomic_store(&leak_on, true);
  atomic_fetch_or(&hak_observers, HAK_OBS_LEAKS);
  hak_gates_close(true);
  atexit(check_at_exit);
}

void hak_leak_fork_prepare(void) {
  for (int i = 0; i < SHARDS; i++) lock(&shards[i].lock);
}
void hak_leak_fork_parent(void) {
  for (int i = SHARDS - 1; i >= 0; i--) unlock(&shards[i].lock);
}
void hak_leak_fork_child(void) {
  /* A check under way in another thread of the parent does not go on here:
   * what it allocated stays allocated, the next check starts afresh. */
  atomic_store(&check_lock, false);
  for (int i = 0; i < SHARDS; i++) atomic_store(&shards[i].lock, false);
}
