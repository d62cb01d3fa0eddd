/*
 * noalloc — a test "allocator" for the harness: an LD_PRELOAD library that
 * replaces nothing, so malloc stays glibc's and every run under it must be
 * recorded as invalid.
 */
int noalloc_present(void);

int noalloc_present(void) { return 1; }
