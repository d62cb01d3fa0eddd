/* validate.c — the validators of every structure, run in lock order: the
 * heaps and abandoned slabs (heap.c), the transfer cache (transfer.c), the
 * pool and the SuperSlabs (slab.c,
 * superslab.c), the medium chunks (medium.c), the large cache (large.c). Each
 * returns NULL when its invariants hold, or a static string naming the
 * broken one (types.h lists the invariants).
 *
 * hak_validate_all() (hak_validate, api.c) walks everything; the heaps of
 * other threads are read, so no other thread may allocate or free meanwhile
 * (a test calls it after joining its workers). hak_validate_own() walks the calling thread's
 * heap instead, and is safe at any time: checked builds run it periodically. */
#include "internal.h"

const char *hak_validate_own(void) {
  const char *err = hak_heap_validate_own();
  if (err == NULL) err = hak_xfer_validate();
  if (err == NULL) err = hak_pool_validate();
  if (err == NULL) err = hak_medium_validate();
  if (err == NULL) err = hak_large_validate();
  return err;
}

/* Everything (hak_validate, api.c): other threads must not allocate or free
 * meanwhile. */
const char *hak_validate_all(void) {
  const char *err = hak_heaps_validate();
  if (err == NULL) err = hak_xfer_validate();
  if (err == NULL) err = hak_pool_validate();
  if (err == NULL) err = hak_medium_validate();
  if (err == NULL) err = hak_large_validate();
  return err;
}
