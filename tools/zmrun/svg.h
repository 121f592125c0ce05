#ifndef ZMRUN_SVG_H
#define ZMRUN_SVG_H

/* Draws the samples in csv_path as an SVG chart at svg_path. Returns 0, or
 * -1 with errno set (ENODATA: no samples). */
int zmrun_svg(const char *csv_path, const char *svg_path, const char *title);

#endif
