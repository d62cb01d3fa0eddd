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
 *   - a write past the requested size, found at free (or realloc): every
 *     allocation carries a canary between the requested size and a trailer
 *     that records the size (HAK_CHECK_TAIL bytes more are reserved, so there
 *     is always a canary);
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
#define TRAILER_BYTES 8      /* requested size, and the same scrambled        */
#define TRAILER_SCRAMBLE 0x9e3779b9u
/* Canary and freed-pattern fills stop this many bytes in, so that checking a
 * large block does not touch all of its pages. */
#define CHECK_SPAN_MAX ((size_t)4096)
#define HAK_CHECK_VALIDATE_EVERY 16384u /* checked calls of a thread between validations */

_Static_assert(HAK_CHECK_TAIL >= TRAILER_BYTES + 1, "the tail holds the trailer and at least one canary byte");

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
  case HAK_SPAN_DIRECT: return hak_direct_usable((hak_direct_t *)span, p, call);
  default: hak_fatal(call, "invalid pointer", p);
  }
}

static void trailer_write(unsigned char *p, size_t usable, size_t req) {
  uint32_t t[2] = {(uint32_t)req, (uint32_t)req ^ TRAILER_SCRAMBLE};
  size_t canary_end = usable - TRAILER_BYTES;
  if (canary_end - req > CHECK_SPAN_MAX) canary_end = req + CHECK_SPAN_MAX;
  memset(p + req, CANARY_BYTE, canary_end - req);
  memcpy(p + usable - TRAILER_BYTES, t, sizeof t);
}

/* The requested size recorded in live block p, after checking its trailer and
 * canary; fatal when the program wrote past its request. */
static size_t trailer_check(const unsigned char *p, size_t usable, const char *call) {
  uint32_t t[2];
  memcpy(t, p + usable - TRAILER_BYTES, sizeof t);
  size_t req = t[0];
  if ((t[0] ^ TRAILER_SCRAMBLE) != t[1] || req + HAK_CHECK_TAIL > usable)
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
