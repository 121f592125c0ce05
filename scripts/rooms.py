#!/usr/bin/env python3
# A copy of the workplace tool ../shared/tools/rooms.py, kept here because CI
# has only the clone (scripts/test-all.sh runs it as the "rooms" step).
"""rooms.py — who depends on whom, file by file, in a C tree.

A room is one source file together with the header of the same name beside it (foo.c + foo.h).
Room A depends on room B when A includes B's header, or when A's object file uses a symbol that
B's object file defines. Prints every circle (rooms that depend on each other, directly or round
a loop) and, if you name the layers from the top down, every arrow that points up.

usage: rooms.py [--build DIR] [--layers 'glob,glob;glob;...'] [ROOT]
  ROOT     the repository (default: .); sources under src/, tools/ and include/ are read
  --build  a configured CMake build folder whose object files (*.o) are read for calls
  --layers layers from the top down, ';' between layers, ',' between globs of one layer,
           e.g. 'tools/*;src/preload/*;src/alloc*,src/figures*;src/counter*;src/block*;src/backend*,src/backends/*;src/os*'
exit status: 0 when there is no circle and no arrow up, 1 otherwise.
"""
import fnmatch, os, re, subprocess, sys
from collections import defaultdict

def rooms_of(root):
    rooms = {}
    for top in ("src", "tools", "include"):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                if f.endswith((".c", ".h", ".hpp", ".cc")):
                    rel = os.path.relpath(os.path.join(d, f), root)
                    rooms[rel] = os.path.splitext(rel)[0]
    return rooms  # file -> room name (path without extension)

def include_edges(root, rooms):
    by_base = defaultdict(list)
    for f in rooms:
        by_base[os.path.basename(f)].append(f)
    edges = defaultdict(set)
    inc = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')
    for f, room in rooms.items():
        for line in open(os.path.join(root, f), errors="replace"):
            m = inc.match(line)
            if not m:
                continue
            target = m.group(1)
            cands = [c for c in by_base.get(os.path.basename(target), []) if c.endswith(target)]
            if len(cands) == 1 and rooms[cands[0]] != room:
                edges[room].add(rooms[cands[0]])
    return edges

def call_edges(build, rooms):
    edges, defined, used = defaultdict(set), {}, defaultdict(set)
    src_of = {}
    for d, _, files in os.walk(build):
        for f in files:
            if not f.endswith(".o"):
                continue
            o = os.path.join(d, f)
            m = re.search(r"CMakeFiles/[^/]+\.dir/(.+?)\.(c|cc|cpp)\.o$", o)
            if not m:
                continue
            src = m.group(1)
            room = next((r for fl, r in rooms.items() if os.path.splitext(fl)[0] == src), None)
            if not room:
                continue
            out = subprocess.run(["nm", o], capture_output=True, text=True).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == "U":
                    used[room].add(parts[1])
                elif len(parts) == 3 and parts[1] in "TDBRW":
                    defined.setdefault(parts[2], room)
    for room, syms in used.items():
        for s in syms:
            if s in defined and defined[s] != room:
                edges[room].add(defined[s])
    return edges

def circles(nodes, edges):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out

def main(argv):
    root, build, layers = ".", None, None
    i = 0
    while i < len(argv):
        if argv[i] == "--build": build = argv[i + 1]; i += 2
        elif argv[i] == "--layers": layers = [l.split(",") for l in argv[i + 1].split(";")]; i += 2
        else: root = argv[i]; i += 1
    rooms = rooms_of(root)
    edges = include_edges(root, rooms)
    if build:
        for a, bs in call_edges(build, rooms).items():
            edges[a] |= bs
    nodes = set(rooms.values())
    bad = 0
    for c in circles(nodes, edges):
        bad += 1
        print("circle: " + " <-> ".join(c))
        for a in c:
            for b in sorted(edges.get(a, ())):
                if b in c:
                    print(f"    {a} -> {b}")
    if layers:
        def layer(r):
            for k, globs in enumerate(layers):
                if any(fnmatch.fnmatch(r, g) for g in globs):
                    return k
            return None
        for a in sorted(edges):
            for b in sorted(edges[a]):
                la, lb = layer(a), layer(b)
                if la is not None and lb is not None and lb < la:
                    bad += 1
                    print(f"arrow up: {a} (layer {la + 1}) -> {b} (layer {lb + 1})")
    print(f"rooms.py: {len(nodes)} rooms, {sum(len(v) for v in edges.values())} arrows, {bad} problems")
    return 1 if bad else 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
