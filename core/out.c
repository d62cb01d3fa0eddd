/* out.c — reports written without malloc (the heap profile, the leak
 * report): formatted into a buffer on the caller's stack and written with
 * write(2), so that writing one from inside the allocator, at exit or from a
 * sampled allocation, neither allocates nor takes stdio's locks. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static void write_all(hak_out_t *o, const char *s, size_t n) {
  while (n > 0 && !o->failed) {
    ssize_t w = write(o->fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      o->failed = true;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

void hak_out_flush(hak_out_t *o) {
  write_all(o, o->buf, o->len);
  o->len = 0;
}

void hak_out_write(hak_out_t *o, const char *s, size_t n) {
  if (o->len + n > sizeof o->buf) hak_out_flush(o);
  if (n > sizeof o->buf) {
    write_all(o, s, n);
    return;
  }
  memcpy(o->buf + o->len, s, n);
  o->len += n;
}

void hak_out_printf(hak_out_t *o, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  hak_out_write(o, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

bool hak_out_copy_file(hak_out_t *o, const char *path) {
  int saved = errno;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char chunk[4096];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) hak_out_write(o, chunk, (size_t)n);
  close(fd);
  errno = saved;
  return n == 0;
}

void hak_out_error(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n <= 0) return;
  hak_out_t o = {.fd = 2};
  hak_out_write(&o, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
  hak_out_flush(&o);
}
