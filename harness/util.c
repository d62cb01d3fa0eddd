/*
 * util.c — general helpers of the runner: the clock, bounded formatting,
 * whole writes and small reads, a shell command's output, and
 * the path of libc. They call nothing else of the runner, so every other
 * file may use them without a cycle.
 */
#include "hakbench.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double hb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

bool hb_fmt(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

bool hb_write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

long hb_read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (long)got;
}

void hb_cmd_line(const char *cmd, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *p = popen(cmd, "re");
    if (!p) return;
    if (fgets(out, (int)cap, p)) out[strcspn(out, "\n")] = '\0';
    char sink[256];
    while (fgets(sink, sizeof sink, p)) { }
    pclose(p);
}

void hb_cmd_output(const char *cmd, char *out, size_t cap)
{
    size_t got = 0;
    out[0] = '\0';
    FILE *p = popen(cmd, "re");
    if (!p) return;
    char sink[256];
    while (got + 1 < cap && fgets(out + got, (int)(cap - got), p)) got += strlen(out + got);
    while (fgets(sink, sizeof sink, p)) { }
    pclose(p);
}

const char *hb_libc_path(void)
{
    static char path[PATH_MAX];
    if (!path[0]) {
        Dl_info info;
        /* A symbol only libc has: the answer stays libc even when the runner
         * itself runs under a preload. */
        void *sym = dlsym(RTLD_DEFAULT, "gnu_get_libc_version");
        if (sym && dladdr(sym, &info) && info.dli_fname && realpath(info.dli_fname, path)) { }
        else snprintf(path, sizeof path, "libc.so.6");
    }
    return path;
}
