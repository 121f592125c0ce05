# The inputs of scripts/zmrun-overhead.sh, made in $W once (sourced by it:
# QUICK and W come from there; it sets the sizes and the CC_SRCS, SORT_IN,
# GZ_IN and REPO the workloads use).
if [ "$QUICK" = 1 ]; then
    PY_N=150000 SORT_LINES=800000 GZ_MB=8 CC_FILES=1 CC_FUNCS=25 GIT_COMMITS=600
    LOOP_FIXED=5000000 LOOP_MIXED=4000000
else
    PY_N=600000 SORT_LINES=3000000 GZ_MB=24 CC_FILES=3 CC_FUNCS=35 GIT_COMMITS=3000
    LOOP_FIXED=40000000 LOOP_MIXED=20000000 # 0.4-0.6 s each: shorter runs drown in this machine's noise
fi

echo "preparing inputs in $W" >&2
gcc -O2 -pthread -o "$W/zmrun_loop" "$SCRIPT_DIR/../bench/zmrun_loop.c"

# Python: a dict and a list of a few hundred thousand objects each.
cat >"$W/py_objects.py" <<'EOF'
import sys
n = int(sys.argv[1])
d = {i: str(i) for i in range(n)}
l = [(i, [i, str(i)], {"k": i}) for i in range(n)]
s = sum(len(v) for v in d.values()) + sum(len(t[1][1]) + t[2]["k"] for t in l)
l.sort(key=lambda t: t[1][1])
del d
print(s, l[0][0], l[-1][0])
EOF

# Text for sort and gzip: random "words" (fixed seed, so every run is alike).
if [ ! -s "$W/lines.$SORT_LINES.txt" ]; then
    /usr/bin/python3 - "$SORT_LINES" >"$W/lines.$SORT_LINES.txt" <<'EOF'
import random, sys
r = random.Random(42)
alpha = "abcdefghijklmnopqrstuvwxyz"
out = sys.stdout
for i in range(int(sys.argv[1])):
    w = "".join(r.choice(alpha) for _ in range(r.randint(4, 14)))
    out.write("%s %d %s\n" % (w, r.randint(0, 10**9), w[::-1]))
EOF
fi
SORT_IN=$W/lines.$SORT_LINES.txt
GZ_IN=$W/gz.$GZ_MB.txt
[ -s "$GZ_IN" ] || head -c "$((GZ_MB * 1024 * 1024))" "$SORT_IN" >"$GZ_IN"

# C compile: generated translation units with system headers, compiled by one
# gcc driver (so the driver, cc1 and as each run CC_FILES times).
CC_SRCS=()
for f in $(seq 1 "$CC_FILES"); do
    src=$W/gen$f.c
    /usr/bin/python3 - "$CC_FUNCS" "$f" >"$src" <<'EOF'
import sys
n, f = int(sys.argv[1]), int(sys.argv[2])
print("#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <math.h>")
print("struct rec { int a; double b; char name[32]; struct rec *next; };")
for i in range(n):
    print(f"""
static int cmp{i}(const void *x, const void *y) {{
    const struct rec *p = x, *q = y;
    return (p->a * {i + f} + (int)p->b) - (q->a * {i + f} + (int)q->b);
}}
double work{f}_{i}(struct rec *r, int n, const char *s) {{
    double acc = {i}.5;
    qsort(r, (size_t)n, sizeof *r, cmp{i});
    for (int k = 0; k < n; k++) {{
        switch ((r[k].a + k) % 5) {{
        case 0: acc += sin(r[k].b) * {i + 1}; break;
        case 1: acc -= strlen(r[k].name) * (k ^ {i}); break;
        case 2: snprintf(r[k].name, sizeof r[k].name, "%s-%d-{i}", s, k); break;
        case 3: acc *= r[k].next ? r[k].next->b : 1.0 + k; break;
        default: for (int j = 0; j < k % {i % 7 + 3}; j++) acc += j * r[k].a; break;
        }}
        if (acc > 1e9) acc = fmod(acc, {i + 3}.0);
    }}
    return acc;
}}""")
EOF
    CC_SRCS+=("$src")
done

# git: a generated history (fast-import), then "git log --stat" over it.
REPO=$W/repo.$GIT_COMMITS
if [ ! -d "$REPO/.git" ]; then
    rm -rf "$REPO"
    git init -q "$REPO"
    /usr/bin/python3 - "$GIT_COMMITS" <<'EOF' | git -C "$REPO" fast-import --quiet
import random, sys
r = random.Random(7)
n = int(sys.argv[1])
files = {"dir%d/file%d.txt" % (i % 20, i): ["line %d of %d" % (k, i) for k in range(60)] for i in range(400)}
out = sys.stdout
for c in range(n):
    changed = r.sample(sorted(files), 4)
    msg = "commit %d\n" % c
    out.write("commit refs/heads/main\nmark :%d\n" % (c + 1))
    out.write("author A U Thor <a@example.org> %d +0000\n" % (1600000000 + c * 60))
    out.write("committer A U Thor <a@example.org> %d +0000\n" % (1600000000 + c * 60))
    out.write("data %d\n%s" % (len(msg), msg))
    if c:
        out.write("from :%d\n" % c)
    for path in (sorted(files) if c == 0 else changed):
        lines = files[path]
        for _ in range(r.randint(1, 6)):
            k = r.randrange(len(lines))
            lines[k] = "changed in %d: %s" % (c, lines[k][:40])
        if r.random() < 0.3:
            lines.insert(r.randrange(len(lines)), "added in %d" % c)
        body = "\n".join(lines) + "\n"
        out.write("M 100644 inline %s\ndata %d\n%s" % (path, len(body.encode()), body))
    out.write("\n")
EOF
    git -C "$REPO" symbolic-ref HEAD refs/heads/main
    git -C "$REPO" gc -q
fi

