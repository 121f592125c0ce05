/* Finding the program to run, and telling whether it has a malloc to
 * interpose: a statically linked ELF has no dynamic loader (no PT_INTERP),
 * so LD_PRELOAD never reaches it. */
#include "program.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int runnable(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0;
}

int zmrun_find_program(const char *name, char *out, size_t len) {
    if (!*name) return -ENOENT;
    if (strchr(name, '/')) {
        if (access(name, F_OK) != 0) return -ENOENT;
        if (!runnable(name)) return -EACCES;
        if (strlen(name) >= len) return -ENAMETOOLONG;
        strcpy(out, name);
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    int found_unrunnable = 0;
    for (const char *p = path;; p++) {
        const char *end = strchr(p, ':');
        size_t dl = end ? (size_t)(end - p) : strlen(p);
        int n = dl ? snprintf(out, len, "%.*s/%s", (int)dl, p, name) : snprintf(out, len, "%s", name);
        if (n > 0 && (size_t)n < len) {
            if (runnable(out)) return 0;
            if (access(out, F_OK) == 0) found_unrunnable = 1;
        }
        if (!end) break;
        p = end;
    }
    return found_unrunnable ? -EACCES : -ENOENT;
}

/* Whether the program headers (n of them, each entsize bytes at off) hold a
 * PT_INTERP. */
static int has_interp(int fd, uint64_t off, unsigned n, unsigned entsize, int is64) {
    for (unsigned i = 0; i < n; i++) {
        uint32_t type;
        if (pread(fd, &type, sizeof type, (off_t)(off + (uint64_t)i * entsize)) != sizeof type)
            return -1;
        (void)is64; /* p_type is the first word of both forms */
        if (type == PT_INTERP) return 1;
    }
    return 0;
}

enum zmrun_kind zmrun_program_kind(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ZMRUN_UNKNOWN;
    unsigned char head[64];
    ssize_t n = pread(fd, head, sizeof head, 0);
    enum zmrun_kind kind = ZMRUN_UNKNOWN;
    if (n >= 2 && head[0] == '#' && head[1] == '!') {
        kind = ZMRUN_SCRIPT;
    } else if (n >= (ssize_t)sizeof(Elf32_Ehdr) && memcmp(head, ELFMAG, SELFMAG) == 0) {
        int r = -1;
        int ours = sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32;
        if (head[EI_CLASS] != ours) {
            close(fd);
            return ZMRUN_FOREIGN;
        }
        if (head[EI_CLASS] == ELFCLASS64 && n >= (ssize_t)sizeof(Elf64_Ehdr)) {
            Elf64_Ehdr e;
            memcpy(&e, head, sizeof e);
            r = has_interp(fd, e.e_phoff, e.e_phnum, e.e_phentsize, 1);
        } else if (head[EI_CLASS] == ELFCLASS32) {
            Elf32_Ehdr e;
            memcpy(&e, head, sizeof e);
            r = has_interp(fd, e.e_phoff, e.e_phnum, e.e_phentsize, 0);
        }
        kind = r == 1 ? ZMRUN_DYNAMIC : r == 0 ? ZMRUN_STATIC : ZMRUN_UNKNOWN;
    }
    close(fd);
    return kind;
}
