/* check.c — the checked build (make CHECK=1; config_check): every allocation
 * and free verified, at a cost the benchmark report shows.
 *
 * What it stops, each with one line "hakmem: <call>: <fault> <address>" and
 * abort():
 *   - a pointer hakmem does not own, or one that is not the start of a block
 *     (any tier), given to free, realloc or malloc_usable_size;
 *   - a free (or realloc, malloc_usable_size) of a block that is not allocated
 *     at that moment: every double free, adjacent or not, whether the first
 *     free left the block in a magazine, in its slab or on a remote stack;
 *   - a write past the requested size, found at free (or realloc, or
 *     malloc_usable_size): every allocation carries, after the requested
 *     size, a canary (at least one byte, at most CHECK_SPAN_MAX) and, in the
 *     last TRAILER_BYTES of its usable space, a trailer recording the size;
 *     HAK_CHECK_TAIL = TRAILER_BYTES + 1 bytes more are asked for, so there is
 *     always a canary. Bytes past the canary's 4 KiB and before the trailer
 *     (only large blocks have such) are not checked;
 *   - a write to a small block after it was freed, found when the block is
 *     handed out again (freed small blocks are filled with a pattern);
 *   - broken allocator structures: every HAK_CHECK_VALIDATE_EVERY checked
 *     calls a thread runs the validators of its heap's slabs, the SuperSlabs
 *     and the medium chunks (validate.c).
 * malloc_usable_size returns the requested size, so the canary is never
 * "usable".
 *
 * State: two bitmaps per slab (chk_live, chk_poison in hak_slab_t), changed
 * with atomic operations since any thread may free; for medium runs and large
 * mappings their own exact bookkeeping (boundary tags, the cached flag) says
 * whether a block is live. */
#include <string.h>

#include "internal.h"

#define CANARY_BYTE   0xcbu  /* between the requested size and the trailer   */
#define FREED_BYTE    0xdfu  /* a freed small block, after its first word     */
#define TRAILER_BYTES 8      /* one word: the requested size and its check    */
/* The trailer word: the requested size (below 2^47: HAK_MAX_REQUEST) in its
 * low 47 bits, and in its high 17 bits a check derived from the size, never
 * zero for a size of zero, so that bytes the program wrote over the trailer
 * are (but for a chance of 2^-17 on top of the size being plausible) not taken
 * for a size. */
#define TRAILER_SIZE_BITS 47
#define TRAILER_SIZE_MASK ((UINT64_C(1) << TRAILER_SIZE_BITS) - 1)
#define TRAILER_CHECK_XOR UINT64_C(0x15a5b)
/* Canary and freed-pattern fills stop this many bytes in, so that checking a
 * large block does not touch all of its pages. */
#define CHECK_SPAN_MAX ((size_t)4096)
#define HAK_CHECK_VALIDATE_EVERY 16384u /* checked calls of a thread between validations */

_Static_assert(HAK_CHECK_TAIL == TRAILER_BYTES + 1, "the tail holds the trailer and at least one canary byte");
_Static_assert(HAK_MAX_REQUEST <= TRAILER_SIZE_MASK, "the trailer holds every requested size whole");

static hak_tls uint32_t calls_until_validate = HAK_CHECK_VALIDATE_EVERY;

static void maybe_validate(void) {
  if (hak_likely(--calls_until_validate != 0)) return;
  calls_until_validate = HAK_CHECK_VALIDATE_EVERY;
  const char *err = hak_validate_own();
  if (err != NULL) hak_fatal("validate", err, NULL);
}

/* The span of p, which must be the start of a block, or fatal. For slabs, also
 * the block index. */
static hak_span_t *span_of(const void *p, size_t *index, const char *call) {
  hak_span_t *span = hak_pagemap_lookup(p);
  if (span == NULL) hak_fatal(call, "invalid pointer", p);
  if (span->kind == HAK_SPAN_SLAB) {
    hak_slab_t *s = (hak_slab_t *)span;
    if (s->cls >= HAK_CLASS_COUNT || !hak_slab_is_block_start(s, p)) hak_fatal(call, "invalid pointer", p);
    *index = hak_slab_index(s, p);
  }
  return span;
}

/* Usable bytes of the live block p (the tiers check that it is live). */
static size_t usable_of(hak_span_t *span, const void *p, const char *call) {
  switch (span->kind) {
  case HAK_SPAN_SLAB: return ((hak_slab_t *)span)->block_size;
  case HAK_SPAN_MEDIUM: return hak_medium_usable((hak_chunk_t *)span, p, call);
  case HAK_SPAN_LARGE: return hak_large_usable((hak_large_t *)span, p, call);
  default: hak_fatal(call, "invalid pointer", p);
  }
}

static uint64_t trailer_of(size_t req) {
  uint64_t check = (((uint64_t)req * UINT64_C(0x9e3779b97f4a7c15)) >> TRAILER_SIZE_BITS) ^ TRAILER_CHECK_XOR;
  return check << TRAILER_SIZE_BITS | (uint64_t)req;
}

static void trailer_write(unsigned char *p, size_t usable, size_t req) {
  uint64_t t = trailer_of(req);
  size_t canary_end = usable - TRAILER_BYTES;
  if (canary_end - req > CHECK_SPAN_MAX) canary_end = req + CHECK_SPAN_MAX;
  memset(p + req, CANARY_BYTE, canary_end - req);
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
  size_t canary_end = usable - TRAILER_BYTES;
  if (canary_end - req > CHECK_SPAN_MAX) canary_end = req + CHECK_SPAN_MAX;
  for (size_t i = req; i < canary_end; i++)
    if (p[i] != CANARY_BYTE) hak_fatal(call, "write past the end of the block at", p);
  return req;
}

void *hak_check_on_alloc(void *p, size_t req, const char *call) {
  if (p == NULL) return NULL;
  maybe_validate();
  size_t i = 0;
  hak_span_t *span = span_of(p, &i, call);
  size_t usable = usable_of(span, p, call);
  if (span->kind == HAK_SPAN_SLAB) {
    hak_slab_t *s = (hak_slab_t *)span;
    uint64_t bit = 1ull << (i % 64);
    if (atomic_fetch_or_explicit(&s->chk_live[i / 64], bit, memory_order_relaxed) & bit)
      hak_fatal(call, "allocator handed out a live block (hakmem bug) at", p);
    if (atomic_fetch_and_explicit(&s->chk_poison[i / 64], ~bit, memory_order_relaxed) & bit) {
      const unsigned char *b = p;
      size_t end = usable < CHECK_SPAN_MAX ? usable : CHECK_SPAN_MAX;
      for (size_t k = sizeof(void *); k < end; k++)
        if (b[k] != FREED_BYTE) hak_fatal(call, "write to a freed block found when reusing it at", p);
    }
  }
  trailer_write(p, usable, req);
  return p;
}

void hak_check_on_free(void *p, const char *call) {
  maybe_validate();
  size_t i = 0;
  hak_span_t *span = span_of(p, &i, call);
  if (span->kind == HAK_SPAN_SLAB) {
    hak_slab_t *s = (hak_slab_t *)span;
    uint64_t bit = 1ull << (i % 64);
    if (!(atomic_load_explicit(&s->chk_live[i / 64], memory_order_relaxed) & bit))
      hak_fatal(call, "double free", p);
    (void)trailer_check(p, s->block_size, call);
    if (!(atomic_fetch_and_explicit(&s->chk_live[i / 64], ~bit, memory_order_relaxed) & bit))
      hak_fatal(call, "double free", p); /* freed by another thread meanwhile */
    size_t end = s->block_size < CHECK_SPAN_MAX ? s->block_size : CHECK_SPAN_MAX;
    memset((char *)p + sizeof(void *), FREED_BYTE, end - sizeof(void *));
    atomic_fetch_or_explicit(&s->chk_poison[i / 64], bit, memory_order_relaxed);
    return;
  }
  (void)trailer_check(p, usable_of(span, p, call), call);
}

size_t hak_check_requested(const void *p, const char *call) {
  maybe_validate();
  size_t i = 0;
  hak_span_t *span = span_of(p, &i, call);
  if (span->kind == HAK_SPAN_SLAB && !hak_check_is_live((hak_slab_t *)span, i))
    hak_fatal(call, "freed block", p);
  return trailer_check(p, usable_of(span, p, call), call);
}
