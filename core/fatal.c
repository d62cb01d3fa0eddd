/* fatal.c — the one-line report that stops the program on misuse or a broken
 * invariant: "hakmem: <call>: <what> <address>\n" on stderr, then abort().
 * It calls no allocator function and no stdio (the heap may be what is
 * broken): the line is formatted into a stack buffer and written with one
 * write(2). Every other core file may call it; it calls none of them. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static size_t fmt_hex(char *out, uintptr_t v) {
  char tmp[2 * sizeof(v)];
  size_t n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  out[0] = '0';
  out[1] = 'x';
  for (size_t i = 0; i < n; i++) out[2 + i] = tmp[n - 1 - i];
  return n + 2;
}

static size_t fmt_str(char *out, size_t room, const char *s) {
  size_t n = strlen(s);
  if (n > room) n = room;
  memcpy(out, s, n);
  return n;
}

/* The parts are cut to fit: prefix 8, call 64, ": " 2, what 120, address 19, "\n". */
#define FATAL_LINE_MAX 256

_Noreturn hak_cold void hak_fatal(const char *call, const char *what, const void *p) {
  char buf[FATAL_LINE_MAX];
  size_t n = 0;
  n += fmt_str(buf + n, 8, "hakmem: ");
  n += fmt_str(buf + n, 64, call);
  n += fmt_str(buf + n, 2, ": ");
  n += fmt_str(buf + n, 120, what);
  if (p != NULL) {
    buf[n++] = ' ';
    n += fmt_hex(buf + n, (uintptr_t)p);
  }
  buf[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, buf, n);
  (void)w;
  abort();
}
