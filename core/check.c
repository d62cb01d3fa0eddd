/* check.c — the checked build (make CHECK=1; config_check): every allocation
 * and free verified, at a cost the benchmark report shows.
 *
 * What it stops, each with one line "hakmem: <call>: <fault> <address>" and
 * abort():
 *   - a pointer hakmem does not own, or one that is not the start of a block
 *     (any tier), given to free, realloc or malloc_usable_size: "invalid
 *     pointer";
 *   - a free (or realloc, malloc_usable_size) of a small block that is not
 *     allocated at that moment: "double free" (or "freed block") when the
 *     program freed it before, adjacent or not, wherever the first free left
 *     it (a magazine, the transfer cache, its slab, a remote stack, or its
 *     slab waiting empty in the pool, which keeps its last class's geometry
 *     and records until it takes a class again); "invalid pointer" when
 *     hakmem never handed it out. Medium and large blocks: medium.c and
 *     large.c say which of their frees they catch;
 *   - a write past the requested size, found at free (or realloc, or
 *     malloc_usable_size): every allocation carries, after the requested
 *     size, a canary (at least one byte, at most CHECK_SPAN_MAX) and, in the
 *     last TRAILER_BYTES of its usable space, a trailer recording the size;
 *     HAK_CHECK_TAIL = TRAILER_BYTES + 1 bytes more are asked for, so there is
 *     always a canary. Bytes more than CHECK_SPAN_MAX past the request and
 *     before the trailer (large blocks, small ones aligned to 8 KiB or more)
 *     are not checked;
 *   - a write to a small block after it was freed, found when the block is
 *     handed out again: a freed small block is filled with a pattern, all of
 *     it; its first word is lent to a free list's link while it waits on its
 *     slab's list (list variants) or on a remote-free stack, and slab.c puts
 *     the pattern back when it takes the block off, checking the link it
 *     follows (a write that breaks one is stopped there: "write to a freed
 *     block found ..."; one that stores zero or the address of a block of
 *     the same slab there is not caught);
 *   - broken allocator structures: every HAK_CHECK_VALIDATE_EVERY checked
 *     calls a thread runs the validators of its heap's slabs, the SuperSlabs
 *     and the medium chunks (validate.c).
 * malloc_usable_size returns the requested size, so the canary is never
 * "usable".
 *
 * State: two bitmaps per slab (chk_live, chk_poison in hak_slab_t), changed
 * with atomic operations since any thread may free: live = held by the
 * program; poison = freed by the program (and filled with the pattern) since
 * the slab took its class. A block with neither was never handed out to the
 * program. Checked builds do not decommit free pages of a slab in use
 * (slab.c), so the pattern and these bits stay true. For medium runs and large
 * mappings their own exact bookkeeping (boundary tags, the cached flag) says
 * whether a block is live. */
#include <string.h>

#include "internal.h"

#define CANARY_BYTE   0xcbu  /* between the requested size and the trailer   */
#define FREED_BYTE    HAK_CHECK_FREED_BYTE /* a freed small block, every byte */
#define TRAILER_BYTES 8      /* one word: the requested size and its check    */
/* The trailer word: the requested size (below 2^47: HAK_MAX_REQUEST) in its
 * low 47 bits, and in its high 17 bits a check derived from the size, never
 * zero for a size of zero, so that bytes the program wrote over the trailer
 * are (but for a chance of 2^-17 on top of the size being plausible) not taken
 * for a size. */
#define TRAILER_SIZE_BITS 47
#define TRAILER_SIZE_MASK ((UINT64_C(1) << TRAILER_SIZE_BITS) - 1)
#define TRAILER_CHECK_XOR UINT64_C(0x15a5b)
/* Canary fills stop this many bytes past the request, so that checking a
 * large block does not touch all of its pages. */
#define CHECK_SPAN_MAX ((size_t)4096)
#define HAK_CHECK_VALIDATE_EVERY 16384u /* checked calls of a thread between validations */

_Static_assert(HAK_CHECK_TAIL == TRAILER_BYTES + 1, "the tail holds the trailer and at least one canary byte");
_Static_assert(HAK_MAX_REQUEST <= TRAILER_SIZE_MASK, "the trailer holds every requested size whole");
_Static_assert(HAK_SMALL_MAX % 8 == 0, "the freed pattern is checked a word at a time");

static hak_tls uint32_t calls_until_validate = HAK_CHECK_VALIDATE_EVERY;

static void maybe_validate(void) {
  if (hak_likely(--calls_until_validate != 0)) return;
  if (hak_reentered()) { /* the validators take locks: at the next call instead */
    calls_until_validate = 1;
    return;
  }
  calls_until_validate = HAK_CHECK_VALIDATE_EVERY;
  sigset_t old;
  hak_signals_block(&old);
  const char *err = hak_validate_own();
  hak_signals_restore(&old);
  if (err != NULL) hak_fatal("validate", err, NULL);
}

static bool bit_of(_Atomic uint64_t *words, size_t i) {
  return (atomic_load_explicit(&words[i / 64], memory_order_relaxed) >> (i % 64)) & 1;
}

/* A small block p that is not held by the program: the program freed it
 * (freed: "double free", or "freed block" for realloc and malloc_usable_size),
 * or hakmem never handed it out ("invalid pointer"). */
static _Noreturn void not_live(hak_slab_t *s, size_t i, const void *p, const char *call, const char *freed) {
  hak_fatal(call, bit_of(s->chk_poison, i) ? freed : "invalid pointer", p);
}

/* The span of p, which must be the start of a block, or fatal. For slabs, also
 * the block index. A pooled slab has no class but keeps its last one's block
 * size and records until it takes a class again: a block of it that the
 * program freed is named as such (freed), anything else is invalid. */
static hak_span_t *span_of(const void *p, size_t *index, const char *call, const char *freed) {
  hak_span_t *span = hak_pagemap_lookup(p);
  if (span == NULL) hak_fatal(call, "invalid pointer", p);
  if (span->kind == HAK_SPAN_SLAB) {
    hak_slab_t *s = (hak_slab_t *)span;
    if (!hak_slab_is_block_start(s, p) || (*index = hak_slab_index(s, p)) >= s->capacity)
      hak_fatal(call, "invalid pointer", p);
    if (s->cls >= HAK_CLASS_COUNT) not_live(s, *index, p, call, freed);
  }
  return span;
}

/* Usable bytes of the live block p (the tiers check that it is live). */
static size_t usable_of(hak_span_t *span, const void *p, const char *call) {
  switch (span->kind) {
  case HAK_SPAN_SLAB: return ((hak_slab_t *)span)->block_size;
  case HAK_SPAN_MEDIUM: return hak_medium_usable((hak_chunk_t *)span, p, call);
  case HAK_SPAN_LARGE: return hak_large_usable((hak_large_t *)span, p, call);
  case HAK_SPAN_DIRECT: return hak_direct_usable((hak_direct_t *)span, p, call);
  default: hak_fatal(call, "invalid pointer", p);
  }
}

static uint64_t trailer_of(size_t req) {
  uint64_t check = (((uint64_t)req * UINT64_C(0x9e3779b97f4a7c15)) >> TRAILER_SIZE_BITS) ^ TRAILER_CHECK_XOR;
  return check << TRAILER_SIZE_BITS | (uint64_t)req;
}

/* Where the canary of a block of usable bytes asked for req ends. */
static size_t canary_end(size_t usable, size_t req) {
  size_t end = usable - TRAILER_BYTES;
  return end - req > CHECK_SPAN_MAX ? req + CHECK_SPAN_MAX : end;
}

/* True when p[from, to) all hold byte v; a word at a time where it can. */
static bool all_bytes(const unsigned char *p, size_t from, size_t to, unsigned char v) {
  uint64_t w = UINT64_C(0x0101010101010101) * v;
  for (; from < to && from % 8 != 0; from++)
    if (p[from] != v) return false;
  for (; from + 8 <= to; from += 8) {
    uint64_t x;
    memcpy(&x, p + from, 8);
    if (x != w) return false;
  }
  for (; from < to; from++)
    if (p[from] != v) return false;
  return true;
}

static void trailer_write(unsigned char *p, size_t usable, size_t req) {
  uint64_t t = trailer_of(req);
  memset(p + req, CANARY_BYTE, canary_end(usable, req) - req);
  memcpy(p + usable - TRAILER_BYTES, &t, sizeof t);
}

/* The requested size recorded in live block p, after checking its trailer and
 * canary; fatal when the program wrote past its request. */
static size_t trailer_check(const unsigned char *p, size_t usable, const char *call) {
  uint64_t t;
  memcpy(&t, p + usable - TRAILER_BYTES, sizeof t);
  size_t req = (size_t)(t & TRAILER_SIZE_MASK);
  if (t != trailer_of(req) || req + HAK_CHECK_TAIL > usable)
    hak_fatal(call, "write past the end of the block (trailer overwritten) at", p);
  if (!all_bytes(p, req, canary_end(usable, req), CANARY_BYTE))
    hak_fatal(call, "write past the end of the block at", p);
  return req;
}

void *hak_check_on_alloc(void *p, size_t req, const char *call) {
  if (p == NULL) return NULL;
  maybe_validate();
  size_t i = 0;
  hak_span_t *span = span_of(p, &i, call, "allocator handed out a freed block (hakmem bug) at");
  size_t usable = usable_of(span, p, call);
  if (span->kind == HAK_SPAN_SLAB) {
    hak_slab_t *s = (hak_slab_t *)span;
    uint64_t bit = 1ull << (i % 64);
    if (atomic_fetch_or_explicit(&s->chk_live[i / 64], bit, memory_order_relaxed) & bit)
      hak_fatal(call, "allocator handed out a live block (hakmem bug) at", p);
    if ((atomic_fetch_and_explicit(&s->chk_poison[i / 64], ~bit, memory_order_relaxed) & bit) &&
        !all_bytes(p, 0, usable, FREED_BYTE))
      hak_fatal(call, "write to a freed block found when reusing it at", p);
  }
  trailer_write(p, usable, req);
  return p;
}

void hak_check_on_free(void *p, const char *call) {
  maybe_validate();
  size_t i = 0;
  hak_span_t *span = span_of(p, &i, call, "double free");
  if (span->kind == HAK_SPAN_SLAB) {
    hak_slab_t *s = (hak_slab_t *)span;
    uint64_t bit = 1ull << (i % 64);
    if (!bit_of(s->chk_live, i)) not_live(s, i, p, call, "double free");
    (void)trailer_check(p, s->block_size, call);
    if (!(atomic_fetch_and_explicit(&s->chk_live[i / 64], ~bit, memory_order_relaxed) & bit))
      hak_fatal(call, "double free", p); /* freed by another thread meanwhile */
    /* Recorded as freed before the pattern is written: the block stays the
     * program's until this call pushes it, so no allocation checks it meanwhile. */
    atomic_fetch_or_explicit(&s->chk_poison[i / 64], bit, memory_order_relaxed);
    memset(p, FREED_BYTE, s->block_size);
    return;
  }
  (void)trailer_check(p, usable_of(span, p, call), call);
}

size_t hak_check_requested(const void *p, const char *call) {
  maybe_validate();
  size_t i = 0;
  hak_span_t *span = span_of(p, &i, call, "freed block");
  if (span->kind == HAK_SPAN_SLAB && !hak_check_is_live((hak_slab_t *)span, i))
    not_live((hak_slab_t *)span, i, p, call, "freed block");
  return trailer_check(p, usable_of(span, p, call), call);
}
