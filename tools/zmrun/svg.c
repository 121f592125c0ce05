/* The time series as a self-contained SVG chart: heap and RSS against time,
 * axes with units, the heap's peak marked. Input: the CSV the sampling
 * thread writes ("time_ms,heap_bytes,rss_bytes", one header line). */
#include "svg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sample {
    double t_s, heap, rss;
} sample;

typedef struct series {
    sample *v;
    size_t n, cap;
} series;

static int read_csv(const char *path, series *s) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        unsigned long long t, h, r;
        if (first && strncmp(line, "time_ms", 7) == 0) {
            first = 0;
            continue;
        }
        first = 0;
        if (sscanf(line, "%llu,%llu,%llu", &t, &h, &r) != 3) continue;
        if (s->n == s->cap) {
            size_t cap = s->cap ? 2 * s->cap : 256;
            sample *v = realloc(s->v, cap * sizeof *v);
            if (!v) {
                fclose(f);
                return -1;
            }
            s->v = v;
            s->cap = cap;
        }
        s->v[s->n++] = (sample){(double)t / 1000.0, (double)h, (double)r};
    }
    fclose(f);
    return 0;
}

/* A round step that gives about `ticks` intervals up to max. */
static double nice_step(double max, int ticks) {
    if (max <= 0) return 1;
    double raw = max / ticks, p = 1;
    while (p * 10 <= raw) p *= 10;
    while (p > raw) p /= 10;
    double m = raw / p;
    return p * (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10);
}

static void unit_for(double max, const char **unit, double *div) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    double d = 1;
    while (u < 4 && max >= d * 1024 * 2) {
        d *= 1024;
        u++;
    }
    *unit = units[u];
    *div = d;
}

static void xml_text_n(FILE *o, const char *s, size_t n) {
    for (const char *end = s + n; s < end && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '&': fputs("&amp;", o); break;
        case '"': fputs("&quot;", o); break;
        default:
            if ((unsigned char)*s >= 0x20) fputc(*s, o);
        }
    }
}

static void xml_text(FILE *o, const char *s) { xml_text_n(o, s, strlen(s)); }

/* The title in at most TITLE_MAX characters (UTF-8 code points): a long
 * program path would run off the picture, cutting off the program's name and
 * the backend at the end, so a longer one loses its middle to an ellipsis.
 * Bold 18 px DejaVu Sans averages about 10.5 px a character; 70 of them fit
 * in the plot's width. The whole title stays in the SVG's <title>. */
enum { TITLE_MAX = 70, TITLE_HEAD = 28 };

static size_t utf8_skip(const char *s, size_t chars) {
    size_t i = 0;
    while (s[i] && chars) {
        i++;
        while (((unsigned char)s[i] & 0xC0) == 0x80) i++;
        chars--;
    }
    return i;
}

static void title_text(FILE *o, const char *s) {
    size_t n = 0;
    for (const char *p = s; *p; p++) n += ((unsigned char)*p & 0xC0) != 0x80;
    if (n <= TITLE_MAX) {
        xml_text(o, s);
        return;
    }
    xml_text_n(o, s, utf8_skip(s, TITLE_HEAD));
    fputs("\xe2\x80\xa6", o); /* U+2026 HORIZONTAL ELLIPSIS */
    xml_text(o, s + utf8_skip(s, n - (TITLE_MAX - TITLE_HEAD - 1)));
}

enum { W = 900, H = 460, ML = 100, MR = 30, MT = 60, MB = 60 };

static void polyline(FILE *o, const series *s, int rss, double tmax, double ymax,
                     const char *color) {
    fprintf(o, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\" points=\"", color);
    for (size_t i = 0; i < s->n; i++) {
        double y = rss ? s->v[i].rss : s->v[i].heap;
        fprintf(o, "%.1f,%.1f ", ML + s->v[i].t_s / tmax * (W - ML - MR),
                H - MB - y / ymax * (H - MT - MB));
    }
    fputs("\"/>\n", o);
}

int zmrun_svg(const char *csv_path, const char *svg_path, const char *title) {
    series s = {0};
    if (read_csv(csv_path, &s) != 0) return -1;
    if (s.n == 0) {
        free(s.v);
        errno = ENODATA;
        return -1;
    }
    double tmax = 0, ymax = 0;
    size_t peak_i = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.v[i].t_s > tmax) tmax = s.v[i].t_s;
        if (s.v[i].heap > ymax) ymax = s.v[i].heap;
        if (s.v[i].rss > ymax) ymax = s.v[i].rss;
        if (s.v[i].heap > s.v[peak_i].heap) peak_i = i;
    }
    const char *unit;
    double div;
    unit_for(ymax, &unit, &div);
    double ystep = nice_step(ymax / div, 5) * div;
    ymax = ystep * (double)(long long)(ymax / ystep + 1);
    double tstep = nice_step(tmax, 6);
    tmax = tmax > 0 ? tstep * (double)(long long)(tmax / tstep + 0.999999) : 1;
    if (tmax <= 0) tmax = tstep;

    FILE *o = fopen(svg_path, "w");
    if (!o) {
        free(s.v);
        return -1;
    }
    fprintf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"14\">\n",
            W, H, W, H);
    fputs("<title>", o);
    xml_text(o, title);
    fputs("</title>\n", o);
    fprintf(o, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
    fputs("<text x=\"100\" y=\"28\" font-size=\"18\" font-weight=\"bold\">", o);
    title_text(o, title);
    fputs("</text>\n", o);
    /* Grid and tick labels. */
    for (double y = 0; y <= ymax + ystep / 2; y += ystep) {
        double py = H - MB - y / ymax * (H - MT - MB);
        fprintf(o, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n", ML,
                py, W - MR, py);
        fprintf(o, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", ML - 8, py + 5,
                y / div);
    }
    for (double t = 0; t <= tmax + tstep / 2; t += tstep) {
        double px = ML + t / tmax * (W - ML - MR);
        fprintf(o, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#dddddd\"/>\n", px,
                MT, px, H - MB);
        fprintf(o, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", px,
                H - MB + 20, t);
    }
    /* Axes and their labels. */
    fprintf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\" stroke-width=\"1.5\"/>\n",
            ML, H - MB, W - MR, H - MB);
    fprintf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\" stroke-width=\"1.5\"/>\n",
            ML, MT, ML, H - MB);
    fprintf(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time (s)</text>\n",
            (ML + W - MR) / 2, H - 14);
    fprintf(o, "<text x=\"24\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 24 %d)\">"
               "memory (%s)</text>\n",
            (MT + H - MB) / 2, (MT + H - MB) / 2, unit);
    polyline(o, &s, 1, tmax, ymax, "#ff7f0e");
    polyline(o, &s, 0, tmax, ymax, "#1f77b4");
    /* The heap's peak. */
    double px = ML + s.v[peak_i].t_s / tmax * (W - ML - MR);
    double py = H - MB - s.v[peak_i].heap / ymax * (H - MT - MB);
    fprintf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"#d62728\"/>\n", px, py);
    fprintf(o, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#d62728\" text-anchor=\"%s\">peak heap %.2f %s "
               "at %.2f s</text>\n",
            px + (px > W / 2 ? -10 : 10), py - 10 < MT + 14 ? py + 22 : py - 10,
            px > W / 2 ? "end" : "start", s.v[peak_i].heap / div, unit, s.v[peak_i].t_s);
    /* Legend. */
    fprintf(o, "<line x1=\"%d\" y1=\"44\" x2=\"%d\" y2=\"44\" stroke=\"#1f77b4\" stroke-width=\"3\"/>"
               "<text x=\"%d\" y=\"49\">heap</text>\n",
            W - 260, W - 230, W - 224);
    fprintf(o, "<line x1=\"%d\" y1=\"44\" x2=\"%d\" y2=\"44\" stroke=\"#ff7f0e\" stroke-width=\"3\"/>"
               "<text x=\"%d\" y=\"49\">RSS</text>\n",
            W - 150, W - 120, W - 114);
    fputs("</svg>\n", o);
    int err = ferror(o);
    if (fclose(o) != 0 || err) {
        free(s.v);
        return -1;
    }
    free(s.v);
    return 0;
}
