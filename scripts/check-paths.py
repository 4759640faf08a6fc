#!/usr/bin/env python3
"""Every repository path the documentation names must exist.

Reads README.md, BENCHMARKS.md, docs/*.md and every DESIGN.md, and checks the targets
of relative Markdown links and every `backticked` token that starts with a
top-level directory of the repository (`ff-worktree/tests/it/chaos.rs`,
`scripts/test.sh`, `ff-cli/schemas`). Placeholders (`<id>`, `*`, `…`) are
skipped. Exits 1 naming each missing path.
"""
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
TOP = {e for e in os.listdir(ROOT) if os.path.isdir(os.path.join(ROOT, e)) and not e.startswith(".")}
TOP |= {e for e in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, e))}

def docs():
    for name in ("README.md", "BENCHMARKS.md"):
        yield os.path.join(ROOT, name)
    for name in sorted(os.listdir(os.path.join(ROOT, "docs"))):
        if name.endswith(".md"):
            yield os.path.join(ROOT, "docs", name)
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in ("target", ".git", "fuzz")]
        if "DESIGN.md" in filenames:
            yield os.path.join(dirpath, "DESIGN.md")

def candidates(text):
    for m in re.finditer(r"\]\(([^)\s]+)\)", text):
        target = m.group(1).split("#")[0]
        if target and not re.match(r"^[a-z]+:", target):
            yield ("link", target)
    for m in re.finditer(r"`([^`\s]+)`", text):
        token = m.group(1).rstrip(".,:;")
        first = token.split("/")[0]
        if "/" in token and first in TOP:
            yield ("token", token)

def main():
    missing = []
    checked = 0
    for doc in docs():
        if not os.path.exists(doc):
            continue
        base = os.path.dirname(doc)
        with open(doc, encoding="utf-8") as f:
            text = f.read()
        for kind, path in candidates(text):
            if any(c in path for c in "<>*…{}$") or path.startswith("-"):
                continue
            checked += 1
            here = os.path.normpath(os.path.join(base, path))
            top = os.path.normpath(os.path.join(ROOT, path))
            # A link must work where the document is read (GitHub resolves
            # it from the document's directory); a backticked path names a
            # file from the repository's root.
            found = os.path.exists(here) if kind == "link" else (os.path.exists(here) or os.path.exists(top))
            if not found:
                missing.append(f"{os.path.relpath(doc, ROOT)}: {path}")
    for m in missing:
        print(f"missing path: {m}", file=sys.stderr)
    print(f"check-paths: {checked} paths named in the docs, {len(missing)} missing")
    return 1 if missing else 0

if __name__ == "__main__":
    sys.exit(main())
