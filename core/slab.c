/* slab.c — slabs: runs of 1 or 4 units holding blocks of one size class.
 *
 * Two ways to keep a slab's free blocks, chosen by the variant
 * (config_slab_bitmap):
 *   list    the mini-magazine: an intrusive LIFO free list (s->free) that
 *           refills thread magazines in batches, plus a bump index over blocks
 *           never handed out, so a fresh slab touches only what it hands out.
 *   bitmap  a two-tier bitmap: bit i of s->bits set when block i is free, a
 *           summary word with bit w set when s->bits[w] is not empty, and a hint
 *           (the lowest word that may hold a free block) where scans start. A
 *           refill is a batch scan; a free sets a bit (and catches a double
 *           free exactly); free blocks are never written to.
 * Either way remote frees wait on s->xfree (remote_free.h) until the owner
 * collects them.
 *
 * A slab's memory comes from, and an empty slab goes back to, the pool of
 * empty slabs and behind it fresh mappings or SuperSlab units (pool.c). */
#include <string.h>

#include "internal.h"
#include "remote_free.h"



void hak_slab_init(hak_slab_t *s, unsigned cls) {
  s->span.kind = HAK_SPAN_SLAB;
  s->cls = (uint8_t)cls;
  s->block_size = hak_class_size[cls];
  s->recip = hak_recip_of(s->block_size);
  s->capacity = (uint32_t)(s->units * HAK_UNIT_SIZE / s->block_size);
  s->used = 0;
  s->free = NULL;
  s->in_full = 0;
  s->next = s->prev = NULL;
  atomic_store_explicit(&s->xfree, NULL, memory_order_relaxed);
  if (config_check) /* checked builds: no block held, none with the freed pattern */
    for (unsigned w = 0; w < HAK_CHECK_WORDS; w++) {
      atomic_store_explicit(&s->chk_live[w], 0, memory_order_relaxed);
      atomic_store_explicit(&s->chk_poison[w], 0, memory_order_relaxed);
    }
  if (config_slab_bitmap) {
    /* every block free; the bump index is not used (all blocks count as issued) */
    s->bump = s->capacity;
    s->hint = 0;
    s->summary = 0;
    memset(s->bits, 0, sizeof(s->bits));
    for (uint32_t w = 0; w * 64 < s->capacity; w++) {
      uint32_t left = s->capacity - w * 64;
      s->bits[w] = left >= 64 ? ~0ull : (1ull << left) - 1;
      s->summary |= 1ull << w;
    }
  } else {
    s->bump = 0;
  }
  hak_pagemap_set(s->base, s->units * HAK_UNIT_SIZE, &s->span, HAK_CLASS_TAG(cls)); /* I7 */
}

/* A slab of class cls for heap owner: from the pool or fresh (pool.c). */
hak_slab_t *hak_slab_new(unsigned cls, hak_heap_t *owner) {
  hak_slab_t *s = hak_pool_take(hak_class_units[cls], hak_os_node());
  if (s == NULL) return NULL;
  hak_slab_init(s, cls);
  atomic_store_explicit(&s->span.owner, owner, memory_order_release);
  return s;
}

/* Gives an empty slab (used == 0, no owner list) away: no class, no owner, no
 * fast path (I7), to the pool or back to the OS (pool.c). */
void hak_slab_release(hak_slab_t *s) {
  atomic_store_explicit(&s->span.owner, NULL, memory_order_release);
  s->cls = HAK_CLASS_POOLED;
  hak_pagemap_set(s->base, s->units * HAK_UNIT_SIZE, &s->span, 0);
  hak_pool_put(s);
}

/* Checked builds: the link in the first word of free block b of s, which
 * the program may have written over since it freed b: NULL or the start of a
 * block of s below limit, or the program is stopped (call, what, at b). Once
 * taken off its list, b's first word gets the freed pattern back (check.c), so
 * that a write there is found when b is handed out. */
static hak_block_t *link_of(const hak_slab_t *s, hak_block_t *b, size_t limit, const char *call, const char *what) {
  hak_block_t *next = b->next;
  if (config_check && next != NULL) {
    size_t off = (uintptr_t)next - (uintptr_t)s->base; /* wraps below the base */
    if (off >= (size_t)s->capacity * s->block_size || !hak_slab_is_block_start(s, next) ||
        hak_slab_index(s, next) >= limit)
      hak_fatal(call, what, b);
  }
  return next;
}

/* Takes up to `want` free blocks: the free list first, then fresh blocks. */
static unsigned list_take(hak_slab_t *s, void **out, unsigned want) {
  unsigned n = 0;
  hak_block_t *b = s->free;
  while (n < want && b != NULL) {
    out[n++] = b;
    hak_block_t *next = link_of(s, b, s->bump, "malloc()", "write to a freed block found when reusing it at");
    if (config_check) memset(b, HAK_CHECK_FREED_BYTE, sizeof(*b));
    b = next;
  }
  s->free = b;
  if (n < want && s->bump < s->capacity) {
    unsigned fresh = s->capacity - s->bump;
    if (fresh > want - n) fresh = want - n;
    char *p = s->base + (size_t)s->bump * s->block_size;
    for (unsigned i = 0; i < fresh; i++, p += s->block_size) out[n++] = p;
    s->bump += fresh;
  }
  return n;
}

/* Batch scan from the hint, lowest bits first: the hint is the lowest word
 * that may hold a free block (a free below it moves it down), so blocks are
 * handed out in address order, reusing freed blocks before untouched ones. */
static unsigned bitmap_take(hak_slab_t *s, void **out, unsigned want) {
  unsigned n = 0;
  while (n < want && s->summary != 0) {
    uint64_t from_hint = s->summary & (~0ull << s->hint);
    unsigned w = (unsigned)__builtin_ctzll(from_hint ? from_hint : s->summary);
    uint64_t bits = s->bits[w];
    char *base = s->base + (size_t)w * 64 * s->block_size;
    while (n < want && bits != 0) {
      unsigned b = (unsigned)__builtin_ctzll(bits);
      bits &= bits - 1;
      out[n++] = base + (size_t)b * s->block_size;
    }
    s->bits[w] = bits;
    if (bits == 0) s->summary &= ~(1ull << w);
    s->hint = w;
  }
  return n;
}

unsigned hak_slab_take(hak_slab_t *s, void **out, unsigned want) {
  unsigned n = config_slab_bitmap ? bitmap_take(s, out, want) : list_take(s, out, want);
  s->used += n;
  return n;
}

/* Index of the block that starts at p, which must be below limit (the bump
 * index for the owner, the capacity for others); stops the program otherwise. */
static size_t block_index(const hak_slab_t *s, const void *p, size_t limit, const char *call) {
  if (hak_unlikely(s->cls == HAK_CLASS_POOLED)) hak_fatal(call, "double free or invalid pointer", p);
  size_t i = hak_slab_index(s, p);
  if (hak_unlikely(!hak_slab_is_block_start(s, p) || i >= limit))
    hak_fatal(call, "invalid pointer", p);
  return i;
}

/* Marks block i of s free in the bitmap; a block already free was freed
 * twice, or never handed out (the bitmap cannot tell which). */
static void bitmap_put(hak_slab_t *s, size_t i, const void *p, const char *call) {
  uint64_t bit = 1ull << (i % 64);
  if (hak_unlikely(s->bits[i / 64] & bit)) hak_fatal(call, "double free or invalid pointer", p);
  s->bits[i / 64] |= bit;
  s->summary |= 1ull << (i / 64);
  if (i / 64 < s->hint) s->hint = (uint32_t)(i / 64);
}

/* True when blocks first..last of s are all free in the bitmap (blocks past
 * the capacity count as free). */
static bool bitmap_all_free(const hak_slab_t *s, size_t first, size_t last) {
  if (last >= s->capacity) last = s->capacity - 1;
  for (size_t i = first; i <= last && i < s->capacity; i++)
    if (!(s->bits[i / 64] >> (i % 64) & 1)) return false;
  return true;
}

/* Bitmap slabs: decommits (MADV_DONTNEED) every page whose blocks are all
 * free in the bitmap. Free blocks hold no data in a bitmap slab, so nothing
 * is lost; a page decommitted and later handed out again reads as zeros. The
 * caller owns the slab (owner, or the scavenger holding the heap lock), so no
 * block of such a page can be handed out meanwhile. Returns pages decommitted.
 * Checked builds decommit nothing here: a freed block keeps the pattern that
 * shows a write after free, and its record as freed (check.c). */
size_t hak_slab_decommit_free(hak_slab_t *s) {
  if (!config_slab_bitmap || config_check || s->summary == 0) return 0;
  size_t npages = s->units * HAK_UNIT_SIZE / HAK_PAGE_SIZE, done = 0, run = 0;
  for (size_t pg = 0; pg <= npages; pg++) {
    bool free_page = pg < npages &&
                     bitmap_all_free(s, pg * HAK_PAGE_SIZE / s->block_size,
                                     ((pg + 1) * HAK_PAGE_SIZE - 1) / s->block_size);
    if (free_page) {
      run++;
    } else if (run > 0) {
      hak_os_decommit(s->base + (pg - run) * HAK_PAGE_SIZE, run * HAK_PAGE_SIZE);
      done += run;
      run = 0;
    }
  }
  return done;
}

/* Checks that p is the start of a block of s that is out of the slab (owner). */
void hak_slab_check_block(hak_slab_t *s, const void *p, const char *call) {
  (void)block_index(s, p, s->bump, call);
}

/* The same check for a thread that does not own s: it may not read s->bump
 * (the owner moves it), so it checks against the capacity. */
void hak_slab_check_remote(hak_slab_t *s, const void *p, const char *call) {
  (void)block_index(s, p, s->capacity, call);
}

void hak_slab_put(hak_slab_t *s, void *p, const char *call) {
  size_t i = block_index(s, p, s->bump, call);
  if (hak_unlikely(s->used == 0)) hak_fatal(call, "double free", p);
  if (config_slab_bitmap) {
    bitmap_put(s, i, p, call);
  } else {
    hak_block_t *b = p;
    b->next = s->free;
    s->free = b;
  }
  s->used--;
}


/* Sends blocks[0..n) (small blocks, any slabs) home as remote frees: each
 * run of neighbouring blocks of one slab linked and pushed with one CAS. */
void hak_slab_push_remote(void *const *blocks, unsigned n) {
  for (unsigned i = 0; i < n;) {
    hak_slab_t *s = (hak_slab_t *)hak_pagemap_lookup(blocks[i]);
    const char *lo = s->base, *hi = lo + s->units * HAK_UNIT_SIZE;
    unsigned j = i + 1;
    while (j < n && (const char *)blocks[j] >= lo && (const char *)blocks[j] < hi) j++;
    for (unsigned k = i; k + 1 < j; k++) ((hak_block_t *)blocks[k])->next = blocks[k + 1];
    hak_xfree_push_chain(&s->xfree, blocks[i], blocks[j - 1]);
    i = j;
  }
}

/* Whether block p of s is free in the slab: its bit, in a bitmap slab; list
 * slabs cannot say without walking their list (false). */
bool hak_slab_block_free(const hak_slab_t *s, const void *p) {
  if (!config_slab_bitmap) return false;
  size_t i = hak_slab_index(s, p);
  return s->bits[i / 64] >> (i % 64) & 1;
}

/* Moves the remote frees onto the local free list (or bitmap); returns how
 * many. More of them than blocks out of the slab (I1) stops the program as
 * soon as it is seen, so that a cycle cannot keep it here. */
#define REMOTE_LINK_BROKEN "write to a freed block found at"
unsigned hak_slab_collect(hak_slab_t *s) {
  hak_block_t *b = hak_xfree_take_all(&s->xfree);
  if (b == NULL) return 0;
  unsigned n = 0;
  if (config_slab_bitmap) {
    for (hak_block_t *next; b != NULL; b = next) {
      size_t i = block_index(s, b, s->capacity, "free()");
      next = link_of(s, b, s->capacity, "remote free", REMOTE_LINK_BROKEN);
      if (config_check) memset(b, HAK_CHECK_FREED_BYTE, sizeof(*b));
      bitmap_put(s, i, b, "free()");
      if (hak_unlikely(++n > s->used)) hak_fatal("free()", "double free detected in slab at", s->base);
    }
  } else {
    hak_block_t *last = b;
    for (;;) {
      if (hak_unlikely(++n > s->used)) hak_fatal("free()", "double free detected in slab at", s->base);
      hak_block_t *next = link_of(s, last, s->capacity, "remote free", REMOTE_LINK_BROKEN);
      if (next == NULL) break;
      last = next;
    }
    last->next = s->free;
    s->free = b;
  }
  s->used -= n;
  return n;
}

const char *hak_slab_validate(hak_slab_t *s) {
  if (s->span.kind != HAK_SPAN_SLAB) return "span kind is not slab";
  if (s->cls >= HAK_CLASS_COUNT) return "slab is pooled";
  if (s->block_size != hak_class_size[s->cls]) return "block size does not match class";
  if (s->units != hak_class_units[s->cls]) return "slab length does not match class";
  if (s->capacity != s->units * HAK_UNIT_SIZE / s->block_size) return "capacity is wrong";
  if (s->bump > s->capacity) return "bump past capacity";
  if (((uintptr_t)s->base & (HAK_UNIT_SIZE - 1)) != 0) return "slab base not unit aligned";
  for (size_t u = 0; u < s->units; u++)
    if (hak_pagemap_lookup(s->base + u * HAK_UNIT_SIZE) != &s->span) return "page map does not point at slab";
  size_t nfree = 0;
  if (config_slab_bitmap) {
    for (unsigned w = 0; w < HAK_SLAB_BITMAP_WORDS; w++) {
      if ((s->bits[w] != 0) != ((s->summary >> w) & 1)) return "summary bit does not match its bitmap word";
      if (w * 64 >= s->capacity ? s->bits[w] != 0
                                : s->capacity - w * 64 < 64 && (s->bits[w] >> (s->capacity - w * 64)) != 0)
        return "bitmap marks a block past the capacity";
      nfree += (size_t)__builtin_popcountll(s->bits[w]);
    }
    if (s->free != NULL) return "bitmap slab has a free list";
  }
  for (hak_block_t *b = s->free; b != NULL; b = b->next) {
    size_t off = (size_t)((char *)b - s->base);
    if ((char *)b < s->base || off % s->block_size != 0) return "free list holds a misaligned block";
    if (off / s->block_size >= s->bump) return "free list holds a never-used block";
    if (++nfree > s->capacity) return "free list is cyclic or too long";
  }
  size_t nx = 0; /* each link checked before it is followed: the program may have written over one */
  for (hak_block_t *b = atomic_load(&s->xfree); b != NULL; b = b->next) {
    size_t off = (uintptr_t)b - (uintptr_t)s->base; /* wraps below the base */
    if (off >= (size_t)s->capacity * s->block_size || off % s->block_size != 0)
      return "remote list holds a pointer that is not a block of its slab";
    if (++nx > s->capacity) return "remote list is cyclic or too long";
  }
  if (s->used + nfree + (s->capacity - s->bump) != s->capacity)
    return "used + free + unused != capacity (I1)";
  if (nx > s->used) return "more remote frees than blocks in use (I1)";
  return NULL;
}


