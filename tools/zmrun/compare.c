/* Reading a process's figures back from a file of JSON reports (one object
 * per line, as the preload library writes them with ZMRUN_JSON=1). */
#include "compare.h"

#include <stdlib.h>
#include <string.h>

static int number_after(const char *line, const char *key, double *out) {
    const char *p = strstr(line, key);
    if (!p) return 0;
    p += strlen(key);
    char *end;
    double v = strtod(p, &end);
    if (end == p) return 0;
    *out = v;
    return 1;
}

int zmrun_read_report(const char *path, long pid, zmrun_figures *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char want[40];
    snprintf(want, sizeof want, "{\"pid\":%ld,", pid);
    char *line = NULL;
    size_t cap = 0;
    /* The pid's last report: a process that execs reports once per program
     * image, and the program a wrapper (env, a shell's exec, a version
     * manager's shim) runs is the last. */
    while (getline(&line, &cap, f) > 0) {
        if (strncmp(line, want, strlen(want)) != 0) continue;
        out->found = number_after(line, "\"heap_peak\":", &out->heap_peak) &&
                     number_after(line, "\"heap_final\":", &out->heap_final) &&
                     number_after(line, "\"rss_peak\":", &out->rss_peak) &&
                     number_after(line, "\"rss_final\":", &out->rss_final) &&
                     number_after(line, "\"fragmentation\":", &out->frag) &&
                     number_after(line, "\"run_time_s\":", &out->run_time);
    }
    free(line);
    fclose(f);
    return out->found ? 0 : -1;
}
