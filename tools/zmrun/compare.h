#ifndef ZMRUN_COMPARE_H
#define ZMRUN_COMPARE_H

#include <stdio.h>

/* One process's figures, read back from its JSON report. */
typedef struct zmrun_figures {
    double heap_peak, heap_final, rss_peak, rss_final, frag, run_time;
    int found;
} zmrun_figures;

/* The last report of process pid (the last program it exec'd) in a file of
 * JSON reports (one per line). */
int zmrun_read_report(const char *path, long pid, zmrun_figures *out);

#endif
