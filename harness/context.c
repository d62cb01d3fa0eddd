/*
 * context.c — what a reader needs to trust a result: the machine, the build,
 * and, for every allocator, its library, version and whether its preload
 * takes (checked once up front by running this binary as `hakbench probe`
 * under the preload; every run is verified again on its own).
 */
#include "hakbench.h"

#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* `hakbench probe`: runs under the preload and reports what serves malloc. */
int hb_probe_main(void)
{
    void *p = malloc(64); /* make sure the allocator is initialised */
    free(p);
    Dl_info info;
    const char *from = "";
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    if (sym && dladdr(sym, &info) && info.dli_fname) from = info.dli_fname;
    const char *(*ver)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "hak_version");
    const char *(*var)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "hak_variant");
    printf("%s\t%s\t%s\n", from, ver ? ver() : "", var ? var() : "");
    return 0;
}

static void shell_quote(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    if (cap < 3) { out[0] = '\0'; return; }
    out[o++] = '\'';
    for (; *s && o + 6 < cap; s++) {
        if (*s == '\'') { memcpy(out + o, "'\\''", 4); o += 4; }
        else out[o++] = *s;
    }
    out[o++] = '\'';
    out[o] = '\0';
}

static void package_version(const char *real, char *out, size_t cap)
{
    char q[PATH_MAX + 16], cmd[2 * PATH_MAX], pkg[256];
    shell_quote(q, sizeof q, real);
    snprintf(cmd, sizeof cmd, "dpkg-query -S %s 2>/dev/null | head -1 | cut -d: -f1", q);
    hb_cmd_line(cmd, pkg, sizeof pkg);
    if (!pkg[0] || strchr(pkg, '\'')) return;
    snprintf(cmd, sizeof cmd, "dpkg-query -W -f='${Version}' '%s' 2>/dev/null", pkg);
    char ver[128];
    hb_cmd_line(cmd, ver, sizeof ver);
    if (ver[0]) hb_fmt(out, cap, "%s %s", pkg, ver);
}

void hb_probe_alloc(hb_alloc *a, const char *self)
{
    a->available = true;
    if (a->system) {
        snprintf(a->real, sizeof a->real, "%s", hb_libc_path());
        snprintf(a->version, sizeof a->version, "glibc %s", gnu_get_libc_version());
        snprintf(a->served_by, sizeof a->served_by, "%s", a->real);
        a->preload_ok = true;
        return;
    }
    if (access(a->lib, R_OK) != 0 || !realpath(a->lib, a->real)) {
        a->available = false;
        hb_fmt(a->skip_reason, sizeof a->skip_reason, "library not found: %s%s", a->lib,
                 a->kind == HB_KIND_HAKMEM ? " (build it with make VARIANT=...)" : " (make deps-bench installs it)");
        return;
    }
    if (a->kind == HB_KIND_HAKMEM) {
        char cf[PATH_MAX];
        snprintf(cf, sizeof cf, "%s", a->real);
        char *slash = strrchr(cf, '/');
        if (slash) {
            snprintf(slash, sizeof cf - (size_t)(slash - cf), "/cflags");
            if (hb_read_file(cf, a->cflags, sizeof a->cflags) > 0) a->cflags[strcspn(a->cflags, "\n")] = '\0';
        }
    }
    char qlib[PATH_MAX + 16], qself[PATH_MAX + 16], cmd[3 * PATH_MAX], line[PATH_MAX + 256];
    shell_quote(qlib, sizeof qlib, a->real);
    shell_quote(qself, sizeof qself, self);
    snprintf(cmd, sizeof cmd, "LD_PRELOAD=%s %s probe 2>/dev/null", qlib, qself);
    hb_cmd_line(cmd, line, sizeof line);
    char *from = strtok(line, "\t"), *ver = strtok(NULL, "\t"), *var = strtok(NULL, "\t");
    char rp[PATH_MAX];
    if (from && realpath(from, rp)) snprintf(a->served_by, sizeof a->served_by, "%s", rp);
    else if (from) snprintf(a->served_by, sizeof a->served_by, "%s", from);
    a->preload_ok = strcmp(a->served_by, a->real) == 0;
    if (ver && *ver) snprintf(a->version, sizeof a->version, "hakmem %s%s%s", ver, var && *var ? " " : "", var ? var : "");
    else package_version(a->real, a->version, sizeof a->version);
}

static void kv_file(hb_jbuf *b, const char *key, const char *path, bool bracketed)
{
    char buf[512];
    if (hb_read_file(path, buf, sizeof buf) <= 0) { jb_null(b, key); return; }
    buf[strcspn(buf, "\n")] = '\0';
    if (bracketed) {
        char *l = strchr(buf, '['), *r = l ? strchr(l, ']') : NULL;
        if (l && r) { *r = '\0'; jb_str(b, key, l + 1); return; }
    }
    jb_str(b, key, buf);
}

void hb_write_context(int fd, const hb_opts *o, const char *suite_path,
                      const hb_alloc *allocs, int nalloc, const hb_case *cases, int ncase,
                      const char *callgrind_suite)
{
    hb_jbuf b;
    jb_init(&b);
    char buf[1024];
    jb_open(&b, NULL, '{');
    jb_str(&b, "type", "context");
    jb_str(&b, "schema", HB_SCHEMA);
    jb_str(&b, "suite", o->suite_name);
    jb_str(&b, "suite_file", suite_path);
    time_t now = time(NULL);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", localtime(&now));
    jb_str(&b, "started", buf);
    gethostname(buf, sizeof buf);
    buf[sizeof buf - 1] = '\0';
    jb_str(&b, "host", buf);

    /* machine */
    hb_cmd_line("grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'", buf, sizeof buf);
    jb_str(&b, "cpu_model", buf);
    jb_int(&b, "cores", sysconf(_SC_NPROCESSORS_ONLN));
    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(buf, sizeof buf, "%s %s %s", u.sysname, u.release, u.machine);
        jb_str(&b, "kernel", buf);
        jb_str(&b, "kernel_version", u.version);
    }
    kv_file(&b, "thp_enabled", "/sys/kernel/mm/transparent_hugepage/enabled", true);
    kv_file(&b, "thp_defrag", "/sys/kernel/mm/transparent_hugepage/defrag", true);
    kv_file(&b, "cpu_governor", "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", false);
    kv_file(&b, "aslr", "/proc/sys/kernel/randomize_va_space", false);
    kv_file(&b, "loadavg_start", "/proc/loadavg", false);
    char mem[64];
    hb_cmd_line("grep -m1 '^MemTotal' /proc/meminfo | awk '{print $2}'", mem, sizeof mem);
    jb_int(&b, "mem_total_kib", atoll(mem));
    jb_str(&b, "glibc", gnu_get_libc_version());

    /* build */
    const char *cc = getenv("CC");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --version 2>/dev/null", cc && *cc && !strchr(cc, '\'') ? cc : "cc");
    hb_cmd_line(cmd, buf, sizeof buf);
    jb_str(&b, "compiler", buf);
    hb_cmd_line("git rev-parse HEAD 2>/dev/null", buf, sizeof buf);
    jb_str(&b, "git_commit", buf[0] ? buf : NULL);
    hb_cmd_line("git status --porcelain --untracked-files=no 2>/dev/null | head -1", buf, sizeof buf);
    jb_bool(&b, "git_dirty", buf[0] != '\0');

    /* runner settings */
    jb_open(&b, "runner", '{');
    jb_int(&b, "reps", o->reps);
    jb_num(&b, "timeout_s", o->timeout_s);
    jb_int(&b, "sample_ms", o->sample_ms);
    jb_str(&b, "callgrind_suite", callgrind_suite);
    jb_str(&b, "order", "repetition > case > allocator (rotated by one each repetition)");
    jb_close(&b, '}');

    jb_open(&b, "allocators", '[');
    for (int i = 0; i < nalloc; i++) {
        const hb_alloc *a = &allocs[i];
        jb_open(&b, NULL, '{');
        jb_str(&b, "name", a->name);
        jb_str(&b, "kind", a->kind == HB_KIND_HAKMEM ? "hakmem" : "reference");
        jb_str(&b, "library", a->lib);
        jb_str(&b, "realpath", a->real[0] ? a->real : NULL);
        jb_str(&b, "description", a->desc);
        jb_str(&b, "status", a->available ? "available" : "skipped");
        jb_str(&b, "skip_reason", a->available ? NULL : a->skip_reason);
        jb_str(&b, "version", a->version[0] ? a->version : NULL);
        if (a->kind == HB_KIND_HAKMEM) jb_str(&b, "cflags", a->cflags[0] ? a->cflags : NULL);
        if (a->available) {
            jb_str(&b, "probe_malloc_from", a->served_by[0] ? a->served_by : NULL);
            jb_bool(&b, "probe_preload_ok", a->preload_ok);
        }
        jb_close(&b, '}');
    }
    jb_close(&b, ']');

    jb_open(&b, "cases", '[');
    for (int i = 0; i < ncase; i++) {
        jb_open(&b, NULL, '{');
        jb_str(&b, "label", cases[i].label);
        jb_str(&b, "workload", cases[i].workload);
        jb_bool(&b, "missing", cases[i].missing);
        jb_open(&b, "args", '[');
        for (int k = 1; k < cases[i].argc; k++) jb_str(&b, NULL, cases[i].argv[k]);
        jb_close(&b, ']');
        jb_close(&b, '}');
    }
    jb_close(&b, ']');
    jb_close(&b, '}');
    jb_finish_line(&b);
    hb_write_all(fd, b.p, b.len);
    jb_free(&b);
}

void hb_write_skip(int fd, const hb_case *c, const char *mode)
{
    hb_jbuf b;
    jb_init(&b);
    jb_open(&b, NULL, '{');
    jb_str(&b, "type", "skip");
    jb_str(&b, "schema", HB_SCHEMA);
    jb_str(&b, "mode", mode);
    jb_str(&b, "label", c->label);
    jb_str(&b, "workload", c->workload);
    jb_str(&b, "reason", c->missing_reason);
    jb_close(&b, '}');
    jb_finish_line(&b);
    hb_write_all(fd, b.p, b.len);
    jb_free(&b);
}

void hb_write_end(int fd, const hb_tally *t, double wall_s, bool interrupted)
{
    hb_jbuf b;
    jb_init(&b);
    jb_open(&b, NULL, '{');
    jb_str(&b, "type", "end");
    jb_str(&b, "schema", HB_SCHEMA);
    jb_int(&b, "ok", t->ok);
    jb_int(&b, "failed", t->failed);
    jb_int(&b, "invalid", t->invalid);
    jb_num(&b, "wall_s", wall_s);
    jb_bool(&b, "interrupted", interrupted);
    kv_file(&b, "loadavg_end", "/proc/loadavg", false);
    jb_close(&b, '}');
    jb_finish_line(&b);
    hb_write_all(fd, b.p, b.len);
    jb_free(&b);
}
