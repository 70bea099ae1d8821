#!/usr/bin/env python3
"""File-level import cycles in each crate (issue 14): exit 1 when any file
imports another that, directly or round a ring, imports it back.

Reads every crates/*/src/**/*.rs, resolves `use crate::...`, `use super::...`,
`use self::...`, uses of child modules, and `crate::x::y` / `super::x` paths in
code (test modules included) to the file that names the item: the module file
where the path stops, as a reader following the path finds it. So a path
through a `mod.rs` that re-exports a child's item depends on that `mod.rs`
(with --follow, re-exports are followed to the defining file instead). A
`pub use` itself counts only when its own file uses the name; `mod x;` is
not a use. Comments and string literals are ignored. Python 3, no packages.

Usage: scripts/modcycles.py [-v] [--follow] [ROOT]   (ROOT: the repository)
  -v  print every edge found
"""

import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
FOLLOW_REEXPORTS = "--follow" in sys.argv


def strip_code(text):
    """The text with comments, strings and char literals blanked (offsets kept)."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a, b):
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c in "rb" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'(?:br|r)(#*)"', text[i:])
            if m:
                close = '"' + m.group(1)
                j = text.find(close, i + len(m.group(0)))
                j = n if j < 0 else j + len(close)
                blank(i, j)
                i = j
            else:
                i += 1
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(i, j + 1)
            i = j + 1
        elif c == "'":
            if i + 1 < n and text[i + 1] == "\\":
                j = text.find("'", i + 2)
                j = n if j < 0 else j
                blank(i, j + 1)
                i = j + 1
            elif i + 2 < n and text[i + 2] == "'":
                blank(i, i + 3)
                i += 3
            else:
                i += 1  # a lifetime
        else:
            i += 1
    return "".join(out)


def expand_use(tree):
    """`a::{b, c::{self, D}}` -> [[a, b], [a, c], [a, c, D]] (aliases removed before)."""
    tree = re.sub(r"\s+", "", tree)
    results = []

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        return parts

    def walk(prefix, s):
        if not s:
            return
        brace = s.find("{")
        if brace >= 0 and s.endswith("}"):
            head = s[:brace].rstrip(":")
            segs = prefix + [x for x in head.split("::") if x]
            for part in split_top(s[brace + 1 : -1]):
                walk(segs, part)
            return
        segs = prefix + [x for x in s.split("::") if x]
        if segs and segs[-1] == "self":
            segs = segs[:-1]
        results.append(segs)

    walk([], tree)
    return results


class Module:
    def __init__(self, crate, path, modpath, rel):
        self.crate = crate
        self.path = path
        self.modpath = modpath  # tuple of segments from the crate root
        self.rel = rel
        raw = open(path, encoding="utf-8").read()
        self.code = strip_code(raw)
        self.inline = []  # (start, end, name) of inline `mod name { ... }`
        self.reexports = {}  # name -> absolute segments (from `pub use`)
        self.glob_reexports = []  # absolute segments of `pub use x::*`
        self.uses = []  # (absolute segments, is_pub, imported name)
        self.rest = self.code  # code with use statements blanked


def module_files(crate_dir):
    src = os.path.join(crate_dir, "src")
    root = "lib.rs" if os.path.exists(os.path.join(src, "lib.rs")) else "main.rs"
    files = {}
    for dirpath, _, names in os.walk(src):
        for name in names:
            if not name.endswith(".rs"):
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, src)
            parts = rel[:-3].split(os.sep)
            if rel == root:
                modpath = ()
            elif parts[-1] == "mod":
                modpath = tuple(parts[:-1])
            elif len(parts) == 1 and parts[0] in ("lib", "main"):
                continue  # the other root of a crate with both; not a module here
            else:
                modpath = tuple(parts)
            files[modpath] = full
    return files


def inline_mods(code):
    spans = []
    for m in re.finditer(r"\bmod\s+(" + IDENT + r")\s*\{", code):
        depth, j = 0, m.end() - 1
        while j < len(code):
            if code[j] == "{":
                depth += 1
            elif code[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        spans.append((m.start(), j, m.group(1)))
    return spans


def scope_at(mod, pos):
    """Module path (from the crate root) of the code at offset pos."""
    path = list(mod.modpath)
    for start, end, name in sorted(mod.inline):
        if start <= pos <= end:
            path.append(name)
    return path


def absolutize(mod, segs, pos, modules):
    """A use path as segments from the crate root, or None when external."""
    if not segs:
        return None
    scope = scope_at(mod, pos)
    head = segs[0]
    if head == "crate":
        return segs[1:]
    if head in ("self", "super"):
        cur = list(scope)
        i = 0
        while i < len(segs) and segs[i] in ("self", "super"):
            if segs[i] == "super":
                if not cur:
                    return None
                cur.pop()
            i += 1
        return cur + segs[i:]
    # 2018 paths: a child module of the current scope (file or inline).
    if tuple(scope + [head]) in modules:
        return scope + segs
    return None


def resolve(segs, modules, seen=None):
    """The module file (modpath) that defines the item segs names."""
    seen = seen or set()
    key = tuple(segs)
    if key in seen:
        return None
    seen.add(key)
    cur = ()
    for i, seg in enumerate(segs):
        if seg == "*":
            return cur
        nxt = cur + (seg,)
        if nxt in modules:
            cur = nxt
            continue
        owner = modules.get(cur)
        if not FOLLOW_REEXPORTS:
            return cur
        if owner is not None and seg in owner.reexports:
            target = owner.reexports[seg] + segs[i + 1 :]
            found = resolve(target, modules, seen)
            return found if found is not None else cur
        if owner is not None and not defines(owner, seg):
            for g in owner.glob_reexports:
                found = resolve(g + segs[i:], modules, seen)
                if found is not None and found != g and tuple(g) != found:
                    return found
        return cur
    return cur


def defines(mod, name):
    return re.search(
        r"\b(?:fn|struct|enum|trait|type|const|static|union|macro_rules!)\s+" + re.escape(name) + r"\b",
        mod.code,
    ) is not None


USE_RE = re.compile(r"(?<![\w:])(pub(?:\s*\([^)]*\))?\s+)?use\s+([^;]*);")
PATH_RE = re.compile(r"(?<![\w:])(?:crate|super|self)(?:\s*::\s*" + IDENT + r")+")


def parse_uses(mod, modules_paths):
    rest = list(mod.code)
    for m in USE_RE.finditer(mod.code):
        is_pub = m.group(1) is not None
        body = re.sub(r"\s+as\s+(" + IDENT + r"|_)", "", m.group(2))
        body = body.lstrip(":")
        for k in range(m.start(), m.end()):
            if rest[k] != "\n":
                rest[k] = " "
        for segs in expand_use(body):
            absolute = absolutize(mod, segs, m.start(), modules_paths)
            if absolute is None:
                continue
            name = segs[-1] if segs else ""
            mod.uses.append((absolute, is_pub, name, m.start()))
            in_file_scope = scope_at(mod, m.start()) == list(mod.modpath)
            if is_pub and in_file_scope:
                if name == "*":
                    mod.glob_reexports.append(absolute[:-1])
                else:
                    mod.reexports[name] = absolute
    # `mod x;` declares a child: it is not a use of a re-exported `x`.
    for m in re.finditer(r"\bmod\s+" + IDENT + r"\s*;", mod.code):
        for k in range(m.start(), m.end()):
            rest[k] = " "
    mod.rest = "".join(rest)


def edges_of(mod, modules):
    out = {}

    def add(target, why):
        if target is not None and target != mod.modpath and target in modules:
            out.setdefault(target, why)

    for absolute, is_pub, name, _ in mod.uses:
        if is_pub and name != "*":
            # A re-export is a dependency only when this file uses the name itself.
            if not re.search(r"(?<![\w:])" + re.escape(name) + r"\b", mod.rest):
                continue
        if is_pub and name == "*":
            continue
        add(resolve(absolute, modules), "use " + "::".join(absolute))
    for m in PATH_RE.finditer(mod.rest):
        segs = [s.strip() for s in m.group(0).split("::")]
        absolute = absolutize(mod, segs, m.start(), modules)
        if absolute is not None:
            add(resolve(absolute, modules), "::".join(segs))
    # Bare `child::x` paths to a child module of the file (no `use`).
    children = {p[-1] for p in modules if p[:-1] == mod.modpath and len(p) == len(mod.modpath) + 1}
    for child in children:
        for m in re.finditer(r"(?<![\w:])" + re.escape(child) + r"\s*::\s*(" + IDENT + r")", mod.rest):
            absolute = list(mod.modpath) + [child, m.group(1)]
            add(resolve(absolute, modules), child + "::" + m.group(1))
    return out


def sccs(nodes, edges):
    index, low, on, stack, result = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        # Iterative Tarjan: modules can nest deeper than Python's recursion likes.
        work = [(v, iter(sorted(edges.get(v, {}))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            pushed = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, {})))))
                    pushed = True
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            if pushed:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                result.append(comp)

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return result


def check_crate(crate_dir, verbose):
    files = module_files(crate_dir)
    modules = {}
    for modpath, path in files.items():
        rel = os.path.relpath(path, crate_dir)
        modules[modpath] = Module(os.path.basename(crate_dir), path, modpath, rel)
    for mod in modules.values():
        mod.inline = inline_mods(mod.code)
    for mod in modules.values():
        parse_uses(mod, modules)
    edges = {p: edges_of(m, modules) for p, m in modules.items()}
    cycles = [c for c in sccs(list(modules), edges) if len(c) > 1]
    name = os.path.basename(crate_dir)
    for comp in cycles:
        members = sorted(comp)
        print("%s: cycle: %s" % (name, " <-> ".join(modules[p].rel for p in members)))
        for p in members:
            for q, why in sorted(edges[p].items()):
                if q in comp:
                    print("    %s -> %s  (%s)" % (modules[p].rel, modules[q].rel, why))
    if verbose:
        for p in sorted(modules):
            for q, why in sorted(edges[p].items()):
                print("  %s: %s -> %s  (%s)" % (name, modules[p].rel, modules[q].rel, why))
    return len(cycles)


def main(argv):
    verbose = "-v" in argv
    args = [a for a in argv if a not in ("-v", "--follow")]
    root = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    crates = sorted(
        os.path.join(root, "crates", d)
        for d in os.listdir(os.path.join(root, "crates"))
        if os.path.isdir(os.path.join(root, "crates", d, "src"))
    )
    total = 0
    for crate in crates:
        found = check_crate(crate, verbose)
        if not found:
            print("%s: no file-level import cycles" % os.path.basename(crate))
        total += found
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
