/* symbols.c — naming the frames of a leak report: the object holding an
 * address (dladdr) and the function, from the object's dynamic symbols or,
 * for functions it does not export, its ELF symbol table (.symtab, read from
 * the file, mapped read-only: no malloc). Used at exit only; the files stay
 * mapped until hak_symbols_release.
 *
 * File and line come from the object's DWARF, read by another process:
 * hakmem-symbolize (symbolizer/main.c, elfutils' libdw), started at the
 * first frame that asks and ended by hak_symbols_release. Not libdw linked
 * in here: this library is preloaded into any program and the report is
 * written at exit with the leak checker's state held, where libdw would
 * allocate through hakmem itself, add libdw, libelf and compression
 * libraries to every process, and could crash or hang the program; LSan
 * makes the same choice with llvm-symbolizer. The process is started with
 * posix_spawn (no file actions: they allocate), one Unix socket pair (send
 * with MSG_NOSIGNAL: a symbolizer that died does not raise SIGPIPE, which
 * is blocked during the check and would be delivered after it), no
 * environment (no LD_PRELOAD of hakmem into it, no HAKMEM_ options, no
 * debuginfod downloads at a program's exit) and the request and answer in
 * static buffers: nothing allocated here. Where it is found: the option
 * HAKMEM_LEAKCHECK_SYMBOLIZER (a path, or off), else next to this library
 * (build/<variant>/libhakmem.so -> build/hakmem-symbolize; installed,
 * lib/hakmem/<variant>/libhakmem.so and lib/libhakmem.so ->
 * lib/hakmem/hakmem-symbolize). When it is missing, fails or takes over
 * 10 s for an answer, the frames keep their symbol-table names and object
 * offsets and hak_symbols_problem says why, once, for the report. */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

#define FILES_MAX 64

typedef struct elf_file_s {
  char path[256];
  const char *map;             /* NULL: not readable */
  size_t size;
  const Elf64_Sym *sym;
  size_t nsym;
  const char *str;
  size_t str_size;
} elf_file_t;

HAK_BSS_LARGE static elf_file_t files[FILES_MAX];
static unsigned nfiles;

static void elf_open(elf_file_t *f, const char *path) {
  strncpy(f->path, path, sizeof f->path - 1);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(Elf64_Ehdr)) {
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
      f->map = m;
      f->size = (size_t)st.st_size;
    }
  }
  close(fd);
  if (f->map == NULL) return;
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f->map;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
      eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > f->size)
    return;
  const Elf64_Shdr *sh = (const Elf64_Shdr *)(f->map + eh->e_shoff);
  const Elf64_Shdr *best = NULL;
  for (unsigned i = 0; i < eh->e_shnum; i++)
    if (sh[i].sh_type == SHT_SYMTAB || (sh[i].sh_type == SHT_DYNSYM && best == NULL)) best = &sh[i];
  if (best == NULL || best->sh_link >= eh->e_shnum) return;
  const Elf64_Shdr *strs = &sh[best->sh_link];
  if (best->sh_offset + best->sh_size > f->size || strs->sh_offset + strs->sh_size > f->size) return;
  f->sym = (const Elf64_Sym *)(f->map + best->sh_offset);
  f->nsym = best->sh_size / sizeof(Elf64_Sym);
  f->str = f->map + strs->sh_offset;
  f->str_size = strs->sh_size;
}

static elf_file_t *elf_get(const char *path) {
  for (unsigned i = 0; i < nfiles; i++)
    if (strncmp(files[i].path, path, sizeof files[i].path - 1) == 0) return &files[i];
  if (nfiles == FILES_MAX) return NULL;
  elf_file_t *f = &files[nfiles++];
  elf_open(f, path);
  return f;
}

/* The function of f holding the link-time address vaddr, or NULL. */
static const char *elf_function(const elf_file_t *f, uintptr_t vaddr) {
  for (size_t i = 0; i < f->nsym; i++) {
    const Elf64_Sym *s = &f->sym[i];
    unsigned type = ELF64_ST_TYPE(s->st_info);
    if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s->st_shndx == SHN_UNDEF) continue;
    if (vaddr >= s->st_value && vaddr < s->st_value + (s->st_size ? s->st_size : 1) && s->st_name < f->str_size)
      return f->str + s->st_name;
  }
  return NULL;
}

void hak_symbols_lookup(const void *ip, hak_frame_name_t *out) {
  out->function = NULL;
  out->object = NULL;
  out->offset = (uintptr_t)ip;
  out->address = 0;
  out->in_main = false;
  out->nsource = 0;
  Dl_info info;
  struct link_map *lm = NULL;
  /* ip is a return address: the call is the byte before it */
  const void *at = (const char *)ip - 1;
  if (dladdr1(at, &info, (void **)&lm, RTLD_DL_LINKMAP) == 0 || lm == NULL) return;
  out->object = info.dli_fname;
  out->offset = (uintptr_t)ip - (uintptr_t)info.dli_fbase;
  out->address = (uintptr_t)ip - lm->l_addr;
  out->function = info.dli_sname;
  bool main_program = lm->l_name == NULL || lm->l_name[0] == '\0';
  out->in_main = main_program;
  if (out->function != NULL) return;
  elf_file_t *f = elf_get(main_program ? "/proc/self/exe" : lm->l_name);
  if (f != NULL && f->sym != NULL) out->function = elf_function(f, (uintptr_t)at - lm->l_addr);
}

/* ---- file:line: the hakmem-symbolize process --------------------------------------- */
#define SYMBOLIZER_NAME "hakmem-symbolize"
#define ANSWER_TIMEOUT_MS 10000

static enum { SYM_UNTRIED, SYM_RUNNING, SYM_OFF, SYM_FAILED } sym_state;
static int sym_fd = -1;
static pid_t sym_pid;
static char sym_path[PATH_MAX];
static char exe_path[PATH_MAX];  /* the main program's file (its l_name is "") */
static char request[PATH_MAX + 32];
static char answer[8192];

static bool executable(const char *path) { return access(path, X_OK) == 0; }

/* The program next to this library: ../hakmem-symbolize (a build's, or an
 * installed variant's, directory) or hakmem/hakmem-symbolize (the installed
 * lib/libhakmem.so). False: none there. */
static bool find_symbolizer(char *why, size_t n) {
  Dl_info info;
  if (dladdr((void *)&hak_symbols_lookup, &info) == 0 || info.dli_fname == NULL) {
    snprintf(why, n, "cannot tell where libhakmem.so is");
    return false;
  }
  const char *slash = strrchr(info.dli_fname, '/');
  int dir = slash != NULL ? (int)(slash - info.dli_fname) : 1;
  const char *d = slash != NULL ? info.dli_fname : ".";
  static const char *const rel[] = {"/../" SYMBOLIZER_NAME, "/hakmem/" SYMBOLIZER_NAME};
  for (unsigned i = 0; i < sizeof rel / sizeof rel[0]; i++) {
    snprintf(sym_path, sizeof sym_path, "%.*s%s", dir, d, rel[i]);
    if (executable(sym_path)) return true;
  }
  snprintf(why, n, SYMBOLIZER_NAME " not found next to %s (HAKMEM_LEAKCHECK_SYMBOLIZER names it)",
           info.dli_fname);
  return false;
}

static void sym_stop(void) {
  if (sym_state != SYM_RUNNING) return;
  shutdown(sym_fd, SHUT_RDWR); /* its end of file, whoever else holds the socket */
  close(sym_fd);
  sym_fd = -1;
  while (waitpid(sym_pid, NULL, 0) < 0 && errno == EINTR) {
  }
}

static char problem[PATH_MAX + 160]; /* why there is no file:line, until hak_symbols_problem takes it */

static void sym_fail(const char *why) {
  if (sym_state == SYM_RUNNING) {
    kill(sym_pid, SIGKILL);
    sym_stop();
  }
  sym_state = SYM_FAILED;
  snprintf(problem, sizeof problem, "%s", why);
}

const char *hak_symbols_problem(void) {
  static char taken[sizeof problem];
  if (problem[0] == '\0') return NULL;
  memcpy(taken, problem, sizeof taken);
  problem[0] = '\0';
  return taken;
}

extern char **environ;

static bool sym_start(void) {
  char why[PATH_MAX + 128];
  const char *opt = hak_option_text(HAK_OPT_LEAKCHECK_SYMBOLIZER);
  if (opt != NULL && strcmp(opt, "off") == 0) {
    sym_state = SYM_OFF;
    return false;
  }
  if (opt != NULL) {
    snprintf(sym_path, sizeof sym_path, "%s", opt);
  } else if (!find_symbolizer(why, sizeof why)) {
    sym_fail(why);
    return false;
  }
  ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
  exe_path[n > 0 ? n : 0] = '\0';
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    snprintf(why, sizeof why, "no socket for %s: %s", sym_path, strerror(errno));
    sym_fail(why);
    return false;
  }
  fcntl(sv[1], F_SETFD, 0); /* the child's end is inherited: its number is passed */
  char fdarg[16];
  snprintf(fdarg, sizeof fdarg, "%d", sv[1]);
  char *argv[] = {sym_path, "--fd", fdarg, NULL};
  char *envp[] = {NULL};
  posix_spawnattr_t attr; /* the child starts with no signal blocked (the check blocks them) */
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  int rc = posix_spawn(&sym_pid, sym_path, NULL, &attr, argv, envp);
  posix_spawnattr_destroy(&attr);
  close(sv[1]);
  if (rc != 0) {
    close(sv[0]);
    snprintf(why, sizeof why, "cannot run %s: %s", sym_path, strerror(rc));
    sym_fail(why);
    return false;
  }
  sym_fd = sv[0];
  sym_state = SYM_RUNNING;
  return true;
}

/* One request, its answer into answer[] (ending with an empty line). */
static bool sym_exchange(size_t len, char *why, size_t n) {
  for (size_t done = 0; done < len;) {
    ssize_t w = send(sym_fd, request + done, len - done, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      snprintf(why, n, "%s stopped reading: %s", sym_path, strerror(errno));
      return false;
    }
    done += (size_t)w;
  }
  size_t got = 0;
  while (!(got >= 1 && answer[got - 1] == '\n' && (got == 1 || answer[got - 2] == '\n'))) {
    if (got == sizeof answer - 1) {
      snprintf(why, n, "%s: an answer longer than %zu bytes", sym_path, sizeof answer - 1);
      return false;
    }
    struct pollfd p = {.fd = sym_fd, .events = POLLIN};
    int r = poll(&p, 1, ANSWER_TIMEOUT_MS);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      snprintf(why, n, "%s gave no answer in %d s", sym_path, ANSWER_TIMEOUT_MS / 1000);
      return false;
    }
    ssize_t k = r > 0 ? recv(sym_fd, answer + got, sizeof answer - 1 - got, 0) : -1;
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      snprintf(why, n, "%s stopped answering", sym_path);
      return false;
    }
    got += (size_t)k;
  }
  answer[got] = '\0';
  return true;
}

/* Lines "FUNCTION<TAB>FILE<TAB>LINE" of answer[] into fn->source; a file
 * "??" is none, and an answer without any file gives no source. */
static bool sym_parse(hak_frame_name_t *fn) {
  char *p = answer;
  while (*p != '\0' && *p != '\n' && fn->nsource < HAK_SOURCE_MAX) {
    char *end = strchr(p, '\n');
    char *t1 = strchr(p, '\t');
    char *t2 = t1 != NULL ? strchr(t1 + 1, '\t') : NULL;
    if (end == NULL || t1 == NULL || t2 == NULL || t2 > end) return false;
    *t1 = *t2 = *end = '\0';
    int line = 0;
    for (const char *c = t2 + 1; *c >= '0' && *c <= '9'; c++) line = line * 10 + (*c - '0');
    bool known = strcmp(t1 + 1, "??") != 0;
    fn->source[fn->nsource++] = (hak_source_t){p, known ? t1 + 1 : NULL, line};
    p = end + 1;
  }
  if (fn->nsource > 0 && fn->source[0].file == NULL) fn->nsource = 0;
  return true;
}

void hak_symbols_source(hak_frame_name_t *fn) {
  fn->nsource = 0;
  if (fn->object == NULL || fn->address == 0) return;
  if (sym_state == SYM_UNTRIED && !sym_start()) return;
  if (sym_state != SYM_RUNNING) return;
  int len = snprintf(request, sizeof request, "%s %lx\n", fn->in_main ? exe_path : fn->object,
                     (unsigned long)(fn->address - 1)); /* a return address: the call is before it */
  char why[PATH_MAX + 128];
  if (len <= 0 || (size_t)len >= sizeof request) return;
  if (!sym_exchange((size_t)len, why, sizeof why)) {
    sym_fail(why);
    return;
  }
  if (!sym_parse(fn)) {
    snprintf(why, sizeof why, "%s: an answer not in its format", sym_path);
    sym_fail(why);
  }
}

void hak_symbols_release(void) {
  sym_stop();
  if (sym_state == SYM_RUNNING) sym_state = SYM_UNTRIED;
  for (unsigned i = 0; i < nfiles; i++)
    if (files[i].map != NULL) munmap((void *)files[i].map, files[i].size);
  memset(files, 0, sizeof files);
  nfiles = 0;
}
