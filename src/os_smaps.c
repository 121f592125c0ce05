/* Linux: one kB field summed over /proc/PID/smaps (or read from
 * /proc/self/status), streamed through a fixed buffer. */

#include "os_text.h"

void zm__smaps_init(zm__smaps_sum *s, const char *field) {
    memset(s, 0, sizeof *s);
    s->field = field ? field : "";
    size_t n = strnlen(s->field, sizeof s->line);
    if (n > 0 && s->field[n - 1] == ':')
        n--;
    s->field_len = n;
}

static size_t skip_blanks(const char *s, size_t n, size_t pos) {
    while (pos < n && (s[pos] == ' ' || s[pos] == '\t'))
        pos++;
    return pos;
}

/* "<field>:<blanks><digits><blanks>kB": the whole name must match, and the
 * kB unit keeps unitless fields (THPeligible, ProtectionKey) out of a byte
 * count. A number too large saturates. */
static int smaps_line_kb(const zm__smaps_sum *s, const char *line, size_t n, unsigned long long *kb) {
    size_t k = s->field_len;
    if (k == 0 || n <= k || memcmp(line, s->field, k) != 0 || line[k] != ':')
        return 0;
    size_t pos = skip_blanks(line, n, k + 1);
    size_t digits = pos;
    unsigned long long v = 0;
    while (pos < n && is_digit(line[pos])) {
        unsigned d = (unsigned)(line[pos++] - '0');
        v = (v > (ULLONG_MAX - d) / 10) ? ULLONG_MAX : v * 10 + d;
    }
    if (pos == digits)
        return 0;
    pos = skip_blanks(line, n, pos);
    if (n - pos < 2 || line[pos] != 'k' || line[pos + 1] != 'B')
        return 0;
    if (skip_blanks(line, n, pos + 2) != n)
        return 0;
    *kb = v;
    return 1;
}

static void smaps_append(zm__smaps_sum *s, const char *buf, size_t n) {
    if (s->line_overflow)
        return;
    if (n > sizeof s->line - s->line_len) {
        s->line_overflow = 1; /* mapping headers with long paths: never a field */
        return;
    }
    memcpy(s->line + s->line_len, buf, n);
    s->line_len += n;
}

static void smaps_end_line(zm__smaps_sum *s) {
    unsigned long long kb;
    if (!s->line_overflow && smaps_line_kb(s, s->line, s->line_len, &kb)) {
        s->kb = sat_add(s->kb, kb);
        s->found = 1;
    }
    s->line_len = 0;
    s->line_overflow = 0;
}

void zm__smaps_feed(zm__smaps_sum *s, const char *buf, size_t len) {
    if (!s || !buf)
        return;
    while (len > 0) {
        const char *nl = memchr(buf, '\n', len);
        size_t take = nl ? (size_t)(nl - buf) : len;
        smaps_append(s, buf, take);
        if (!nl)
            return;
        smaps_end_line(s);
        buf += take + 1;
        len -= take + 1;
    }
}

size_t zm__smaps_result(const zm__smaps_sum *s, int *found) {
    unsigned long long kb = s->kb, tail;
    int any = s->found;
    /* A last line without '\n' still counts. */
    if (!s->line_overflow && smaps_line_kb(s, s->line, s->line_len, &tail)) {
        kb = sat_add(kb, tail);
        any = 1;
    }
    if (found)
        *found = any;
    return sat_mul_size(kb, 1024);
}

/* Shortest line that can match: name, ':', one digit and "kB". */
static int smaps_field_fits(const zm__smaps_sum *s) {
    return s->field_len > 0 && s->field_len + 4 <= sizeof s->line;
}

/* Writes "/proc/<pid>/<leaf>" (or /proc/self/ for -1) into out. */
static void proc_path(char *out, long pid, const char *leaf) {
    char digits[24];
    size_t nd = 0;
    char *p = out;
    memcpy(p, "/proc/", 6);
    p += 6;
    if (pid < 0) {
        memcpy(p, "self", 4);
        p += 4;
    } else {
        unsigned long v = (unsigned long)pid;
        do
            digits[nd++] = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        while (nd > 0)
            *p++ = digits[--nd];
    }
    *p++ = '/';
    size_t ll = strlen(leaf);
    memcpy(p, leaf, ll + 1);
}

static int smaps_read(int fd, zm__smaps_sum *s) {
    char buf[4096];
    for (;;) {
        ssize_t n = read_retry(fd, buf, sizeof buf);
        if (n < 0)
            return 0;
        if (n == 0)
            return 1;
        zm__smaps_feed(s, buf, (size_t)n);
    }
}

/* The sum of a "Name:  N kB" field over the lines of /proc/<pid>/<leaf>. */
static size_t kb_field_bytes(const char *field, long pid, const char *leaf) {
    zm__smaps_sum s;
    char path[48];
    int found, saved = errno;
    if (!field || pid < -1) {
        errno = EINVAL;
        return 0;
    }
    zm__smaps_init(&s, field);
    if (!smaps_field_fits(&s)) {
        errno = EINVAL;
        return 0;
    }
    proc_path(path, pid, leaf);
    int fd = open_ro(path);
    if (fd < 0) {
        if (errno == ENOENT)
            errno = ESRCH;
        else if (errno == EPERM)
            errno = EACCES;
        return 0;
    }
    int ok = smaps_read(fd, &s);
    close_quietly(fd);
    if (!ok)
        return 0;
    size_t bytes = zm__smaps_result(&s, &found);
    errno = found ? saved : ENOENT;
    return bytes;
}

size_t zm__os_smap_bytes(const char *field, long pid) { return kb_field_bytes(field, pid, "smaps"); }

size_t zm__os_status_bytes(const char *field) { return kb_field_bytes(field, -1, "status"); }
