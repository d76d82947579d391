#!/usr/bin/env python3
"""Fails when a crate's modules import each other in a cycle.

Each `.rs` file under `crates/*/src` is a module; a reference `crate::a::b::Item` (in a `use` or
inline, grouped `crate::{..}` included) or `super::x` is an edge to the deepest module that
exists. Test modules (`#[cfg(test)] mod tests { .. }` at a file's end) are left out: tests may
reach anywhere. Prints each cycle's edges and exits 1 if there is any.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates")


def modules(src):
    found = {}
    for dirpath, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if parts[-1] == "mod":
                parts = parts[:-1]
            if parts in (["lib"], ["main"]):
                parts = []
            found["::".join(parts)] = path
    return found


def edges(mods):
    def resolve(path):
        segs = path.split("::")
        for i in range(len(segs), 0, -1):
            name = "::".join(segs[:i])
            if name in mods:
                return name
        return ""

    out = {}
    for mod, path in mods.items():
        text = open(path, encoding="utf-8").read()
        text = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", text, flags=re.S)
        text = re.sub(r"//[^\n]*", "", text)
        targets = set()
        for group in re.finditer(r"crate::\{([^;]*?)\};", text, re.S):
            for item in group.group(1).split(","):
                item = item.strip().split("::{")[0].replace(" ", "")
                if item and item != "self":
                    targets.add(resolve(item))
        for ref in re.finditer(r"crate::((?:[a-z_0-9]+::)*[A-Za-z_0-9]+)", text):
            targets.add(resolve(ref.group(1)))
        parent = mod.split("::")[:-1]
        for ref in re.finditer(r"super::((?:[a-z_0-9]+::)*[A-Za-z_0-9]+)", text):
            targets.add(resolve("::".join(parent + [ref.group(1)])))
        targets.discard(mod)
        targets.discard("")
        out[mod] = targets
    return out


def cycles(graph):
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def main():
    bad = False
    for crate in sorted(os.listdir(ROOT)):
        src = os.path.join(ROOT, crate, "src")
        if not os.path.isdir(src):
            continue
        graph = edges(modules(src))
        for comp in cycles(graph):
            bad = True
            print(f"{crate}: import cycle between {', '.join(comp)}")
            for a in comp:
                for b in sorted(graph[a] & set(comp)):
                    print(f"    {a} -> {b}")
    if bad:
        sys.exit(1)
    print("no import cycles between modules")


if __name__ == "__main__":
    main()
