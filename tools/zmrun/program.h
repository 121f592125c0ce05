#ifndef ZMRUN_PROGRAM_H
#define ZMRUN_PROGRAM_H

#include <stddef.h>

/* The path execvp() would run for name, into out. Returns 0, or -ENOENT (no
 * such program), -EACCES (found, not executable), -ENAMETOOLONG. */
int zmrun_find_program(const char *name, char *out, size_t len);

enum zmrun_kind {
    ZMRUN_DYNAMIC, /* an ELF with a dynamic loader: LD_PRELOAD reaches it */
    ZMRUN_STATIC,  /* an ELF without one: nothing to interpose */
    ZMRUN_SCRIPT,  /* "#!": its interpreter is what runs */
    ZMRUN_FOREIGN, /* an ELF of the other word size: the preload libraries cannot load */
    ZMRUN_UNKNOWN, /* anything else: left to exec to judge */
};
enum zmrun_kind zmrun_program_kind(const char *path);

#endif
