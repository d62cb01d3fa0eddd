/* check.h — the tiny assertion kit of the C tests. CHECK records a failure
 * with its location and keeps going; each test program ends with
 * check_report(), whose non-zero exit status makes the test FAIL. */
#ifndef HAK_TEST_CHECK_H
#define HAK_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failures, check_count;

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    check_count++;                                                             \
    if (!(cond)) {                                                             \
      check_failures++;                                                        \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
    }                                                                          \
  } while (0)

static inline int check_report(const char *what) {
  printf("%s: %d checks, %d failed\n", what, check_count, check_failures);
  return check_failures ? 1 : 0;
}

/* xorshift64*: the deterministic generator of every test. */
static inline uint64_t test_rand(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

#endif
