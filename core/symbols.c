/* symbols.c — naming the frames of a leak report: the object holding an
 * address (dladdr) and the function, from the object's dynamic symbols or,
 * for functions it does not export, its ELF symbol table (.symtab, read from
 * the file, mapped read-only: no malloc). Used at exit only; the files stay
 * mapped until hak_symbols_release. */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

static elf_file_t files[FILES_MAX];
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
  Dl_info info;
  struct link_map *lm = NULL;
  /* ip is a return address: the call is the byte before it */
  const void *at = (const char *)ip - 1;
  if (dladdr1(at, &info, (void **)&lm, RTLD_DL_LINKMAP) == 0 || lm == NULL) return;
  out->object = info.dli_fname;
  out->offset = (uintptr_t)ip - (uintptr_t)info.dli_fbase;
  out->function = info.dli_sname;
  if (out->function != NULL) return;
  bool main_program = lm->l_name == NULL || lm->l_name[0] == '\0';
  elf_file_t *f = elf_get(main_program ? "/proc/self/exe" : lm->l_name);
  if (f != NULL && f->sym != NULL) out->function = elf_function(f, (uintptr_t)at - lm->l_addr);
}

void hak_symbols_release(void) {
  for (unsigned i = 0; i < nfiles; i++)
    if (files[i].map != NULL) munmap((void *)files[i].map, files[i].size);
  memset(files, 0, sizeof files);
  nfiles = 0;
}
