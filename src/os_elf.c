/* The OS layer's queries of loaded ELF objects, through dl_iterate_phdr and
 * the objects' own mapped headers: an object's build ID, its TLS block, and
 * a symbol looked up in one named library only. Nothing here allocates: the
 * preload library calls it from inside malloc. */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <string.h>

#include "os.h"

/* The object loaded at `base`, as dl_iterate_phdr describes it: its program
 * headers (mapped with it) and this thread's TLS block. */
struct object_search {
    uintptr_t base;
    const ElfW(Phdr) *phdr;
    int phnum;
    void *tls;
};

static int find_object(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    struct object_search *s = arg;
    if (info->dlpi_addr != s->base) return 0;
    s->phdr = info->dlpi_phdr;
    s->phnum = info->dlpi_phnum;
    s->tls = info->dlpi_tls_data;
    return 1;
}

/* The shared object that holds `symbol`; 0 if none is found. */
static int object_of(const void *symbol, struct object_search *s) {
    Dl_info info;
    if (!dladdr(symbol, &info) || !info.dli_fbase) return 0;
    *s = (struct object_search){(uintptr_t)info.dli_fbase, NULL, 0, NULL};
    dl_iterate_phdr(find_object, s);
    return s->phdr != NULL;
}

/* Its PT_NOTE segments' NT_GNU_BUILD_ID note against id. */
static int has_build_id(const struct object_search *s, const unsigned char *id, size_t len) {
    int match = 0;
    for (int i = 0; i < s->phnum; i++) {
        const ElfW(Phdr) *ph = &s->phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const unsigned char *n = (const unsigned char *)(s->base + ph->p_vaddr);
        const unsigned char *end = n + ph->p_memsz;
        while (n + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *h = (const ElfW(Nhdr) *)(const void *)n;
            const unsigned char *name = n + sizeof *h;
            const unsigned char *desc = name + ((h->n_namesz + 3) & ~3u);
            if (desc + h->n_descsz > end) break;
            if (h->n_type == NT_GNU_BUILD_ID && h->n_namesz == 4 && memcmp(name, "GNU", 4) == 0)
                match = h->n_descsz == len && memcmp(desc, id, len) == 0;
            n = desc + ((h->n_descsz + 3) & ~3u);
        }
    }
    return match;
}

int zm__os_object_has_build_id(const void *symbol, const unsigned char *id, size_t len,
                               uintptr_t *base) {
    struct object_search s;
    if (!object_of(symbol, &s) || !has_build_id(&s, id, len)) return 0;
    *base = s.base;
    return 1;
}

int zm__os_object_tls(const void *symbol, void **block, size_t *size) {
    struct object_search s;
    if (!object_of(symbol, &s) || !s.tls) return 0;
    for (int i = 0; i < s.phnum; i++) {
        if (s.phdr[i].p_type != PT_TLS || s.phdr[i].p_memsz == 0) continue;
        *block = s.tls;
        *size = s.phdr[i].p_memsz;
        return 1;
    }
    return 0;
}

/* A library found by its file name (the last path component), with the
 * symbol being looked for. */
struct symbol_search {
    const char *soname, *name;
    void *found;
};

/* The GNU hash of a symbol name (the ELF gABI extension's). */
static uint32_t gnu_hash(const char *s) {
    uint32_t h = 5381;
    for (; *s; s++) h = h * 33 + (unsigned char)*s;
    return h;
}

/* A d_ptr as the loader left it: glibc relocates most objects' dynamic
 * entries in place, but not every target does. */
static uintptr_t dyn_addr(uintptr_t base, ElfW(Addr) ptr) {
    return ptr < base ? base + ptr : ptr;
}

/* The defined dynamic symbol `name` of the object, through its DT_GNU_HASH
 * table; NULL if it has none or no such table. */
static void *lookup_gnu(uintptr_t base, const ElfW(Dyn) *dyn, const char *name) {
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const uint32_t *hash = NULL;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_SYMTAB) symtab = (const ElfW(Sym) *)dyn_addr(base, dyn->d_un.d_ptr);
        else if (dyn->d_tag == DT_STRTAB) strtab = (const char *)dyn_addr(base, dyn->d_un.d_ptr);
        else if (dyn->d_tag == DT_GNU_HASH) hash = (const uint32_t *)dyn_addr(base, dyn->d_un.d_ptr);
    }
    if (!symtab || !strtab || !hash) return NULL;
    uint32_t nbuckets = hash[0], symoffset = hash[1], bloom_size = hash[2];
    const uint32_t *buckets = hash + 4 + bloom_size * (sizeof(ElfW(Addr)) / 4);
    const uint32_t *chain = buckets + nbuckets;
    uint32_t h = gnu_hash(name), i = nbuckets ? buckets[h % nbuckets] : 0;
    if (i < symoffset) return NULL;
    for (;; i++) {
        uint32_t ch = chain[i - symoffset];
        const ElfW(Sym) *sym = &symtab[i];
        if ((ch | 1) == (h | 1) && strcmp(strtab + sym->st_name, name) == 0 &&
            sym->st_shndx != SHN_UNDEF && (sym->st_info >> 4) != STB_LOCAL)
            return (void *)(base + sym->st_value);
        if (ch & 1) return NULL;
    }
}

static int find_symbol(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    struct symbol_search *s = arg;
    const char *file = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
    file = file ? file + 1 : info->dlpi_name;
    if (!file || strcmp(file, s->soname) != 0) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_DYNAMIC) continue;
        s->found = lookup_gnu(info->dlpi_addr,
                              (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr),
                              s->name);
        return 1;
    }
    return 1;
}

void *zm__os_library_symbol(const char *soname, const char *name) {
    struct symbol_search s = {soname, name, NULL};
    dl_iterate_phdr(find_symbol, &s);
    return s.found;
}
