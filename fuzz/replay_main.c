/* Runs a fuzz target over the files of its corpus, once each, without
 * libFuzzer: a plain (gcc, unsanitized) build, so the inputs also go through
 * the fast paths the sanitized fuzz build never takes (the glibc chunk read).
 * Usage: fuzz_replay_<name> DIR...  Prints "N passed, 0 failed"; a failing
 * input aborts inside the target. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

int main(int argc, char **argv) {
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    long ran = 0;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "%s: not a directory\n", argv[i]);
            return 1;
        }
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            if (run_file(path) != 0) {
                fprintf(stderr, "%s: cannot read\n", path);
                return 1;
            }
            ran++;
        }
        closedir(d);
    }
    if (ran == 0) {
        fprintf(stderr, "no corpus files\n");
        return 1;
    }
    printf("%ld passed, 0 failed\n", ran);
    return 0;
}
