#!/usr/bin/env python3
"""layers-svg.py: draws the layers of docs/ARCHITECTURE.md from the real dependency graph.

The rooms, their include and call arrows, come from scripts/rooms.py (the CI rooms step); the
layers are the list that step checks, read from scripts/test-all.sh. Each layer is a box, top
down; an arrow is solid where the file includes the other's header, dashed where only its
object file calls the other's. An arrow that a longer path already implies is left out
(--all keeps every one).

usage: scripts/layers-svg.py [--build DIR] [--all] [--svg PATH] [ROOT]
  --build  a configured build folder whose object files are read (default: build/default)
  --svg    run Graphviz's dot and write the SVG there; without it, the dot text goes to stdout
"""
import fnmatch, os, re, subprocess, sys

sys.dont_write_bytecode = True  # leaves no __pycache__ beside the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rooms import call_edges, include_edges, rooms_of  # noqa: E402

NAMES = ["public API and tools", "accounting", "blocks", "backend seam", "OS"]


def ci_layers(root):
    text = open(os.path.join(root, "scripts", "test-all.sh")).read()
    m = re.search(r"layers='([^']+)'", text)
    return [globs.split(",") for globs in m.group(1).split(";")]


def layer_of(room, files, layers):
    for k, globs in enumerate(layers):
        for name in [room] + files:
            if any(fnmatch.fnmatch(name, g) for g in globs):
                return k
    return None


def reduce(edges):
    """Drops a -> b where b is reachable from a by a longer path."""
    def reach(a, skip):
        seen, todo = set(), [w for w in edges.get(a, ()) if w != skip]
        while todo:
            v = todo.pop()
            if v not in seen:
                seen.add(v)
                todo.extend(edges.get(v, ()))
        return seen
    return {a: {b for b in bs if b not in reach(a, b)} for a, bs in edges.items()}


def dot_text(root, build, keep_all):
    rooms = rooms_of(root)
    files = {}
    for f, r in rooms.items():
        files.setdefault(r, []).append(f)
    inc = include_edges(root, rooms)
    calls = call_edges(build, rooms) if build else {}
    layers = ci_layers(root)
    # A room in no layer (internal.h: visibility and branch hints for every
    # file) is left out of the picture.
    placed = {r for r in files if layer_of(r, files[r], layers) is not None}
    edges = {r: (set(inc.get(r, ())) | set(calls.get(r, ()))) & placed for r in placed}
    shown = edges if keep_all else reduce(edges)
    out = ["digraph layers {", '  rankdir=TB; newrank=true; nodesep=0.15; ranksep=0.45;',
           '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica", fontsize=10];',
           '  edge [color="#555555", arrowsize=0.6];']
    for k in range(len(layers)):
        members = sorted(r for r in placed if layer_of(r, files[r], layers) == k)
        name = NAMES[k] if k < len(NAMES) else f"layer {k + 1}"
        out.append(f'  subgraph cluster_{k} {{ label="{k + 1}. {name}"; fontname="Helvetica"; '
                   f'style=filled; fillcolor="{["#eef4fb", "#f3f9ee", "#fbf6ea", "#f6eefb", "#eeeeee"][k % 5]}";')
        for d in sorted({os.path.dirname(r) for r in members}):
            out.append(f'    subgraph "cluster_{k}_{d}" {{ label="{d}/"; style="rounded,dashed"; fontsize=10;')
            for r in (r for r in members if os.path.dirname(r) == d):
                label = "\\n".join(sorted(os.path.basename(f) for f in files[r]))
                out.append(f'      "{r}" [label="{label}"];')
            out.append("    }")
        out.append("  }")
    # Stacks the layers: an invisible mark above each layer's rooms and below the layer above.
    for k in range(len(layers)):
        out.append(f'  "layer {k}" [shape=point, style=invis, width=0];')
        for r in sorted(placed):
            if layer_of(r, files[r], layers) == k:
                out.append(f'  "layer {k}" -> "{r}" [style=invis];')
                if k + 1 < len(layers):
                    out.append(f'  "{r}" -> "layer {k + 1}" [style=invis];')
    for a in sorted(shown):
        for b in sorted(shown[a]):
            style = "" if b in inc.get(a, ()) else " [style=dashed]"
            out.append(f'  "{a}" -> "{b}"{style};')
    out.append("}")
    return "\n".join(out) + "\n"


def main(argv):
    root, build, keep_all, svg = ".", "build/default", False, None
    i = 0
    while i < len(argv):
        if argv[i] == "--build": build = argv[i + 1]; i += 2
        elif argv[i] == "--svg": svg = argv[i + 1]; i += 2
        elif argv[i] == "--all": keep_all = True; i += 1
        else: root = argv[i]; i += 1
    text = dot_text(root, build if os.path.isdir(build) else None, keep_all)
    if not svg:
        sys.stdout.write(text)
        return 0
    return subprocess.run(["dot", "-Tsvg", "-o", svg], input=text, text=True).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
