#!/usr/bin/env python3
"""Import circles between the files (modules) of a Rust crate: prints each strongly connected
group of modules that reach each other through `use` and `crate::`/`super::` paths, and exits
with status 1 when there is one. Doc comments and `#[cfg(test)]` modules' own files are read
too; a path inside a `//` comment is not.

Usage: scripts/dev/import-cycles.py [crates/iftcl/src]
"""
import re
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "crates/iftcl/src")


def module_of(path: Path) -> tuple:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


files = {module_of(p): p for p in root.rglob("*.rs")}


def resolve(current: tuple, path: list) -> tuple | None:
    """The longest known module that `path` (as written after `use`) names from `current`."""
    if not path:
        return None
    if path[0] == "crate":
        base, rest = (), path[1:]
    elif path[0] in ("super", "self"):
        # A file's own module is `current`; `super` is its parent (for mod.rs files too, since
        # their module is the folder).
        base = current
        rest = path
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    else:
        return None
    best = None
    for n in range(len(rest) + 1):
        cand = base + tuple(rest[:n])
        if cand in files:
            best = cand
    return best


edges = {m: set() for m in files}
path_re = re.compile(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)")
group_re = re.compile(r"\buse\s+((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)
for m, p in files.items():
    text = "\n".join(line.split("//")[0] for line in p.read_text().splitlines())
    targets = []
    for g in group_re.finditer(text):
        prefix = g.group(1).split("::")
        for item in re.split(r",", g.group(2)):
            item = item.strip().split(" as ")[0]
            if item:
                targets.append(prefix + [x for x in item.replace("{", "").replace("}", "").split("::") if x])
    targets += [t.group(1).split("::") for t in path_re.finditer(text)]
    for t in targets:
        r = resolve(m, t)
        if r is not None and r != m and not (len(r) < len(m) and m[: len(r)] == r and len(r) == 0):
            # A module's own ancestors (`super`) are edges too, except the crate root.
            edges[m].add(r)

# Tarjan's strongly connected components.
index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            out.append(comp)


sys.setrecursionlimit(10000)
for v in files:
    if v not in index:
        visit(v)
name = lambda m: "::".join(m) or "crate"
for comp in out:
    print("import circle: " + ", ".join(sorted(name(m) for m in comp)))
    for m in sorted(comp):
        print(f"  {name(m)} -> " + ", ".join(sorted(name(w) for w in edges[m] if w in comp)))
print(f"{len(files)} modules, {len(out)} import circle(s)")
sys.exit(1 if out else 0)
