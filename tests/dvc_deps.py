"""Which repo files a module imports (transitively, `stages.*` and `serve.*` only): dvc.yaml must list
them under the stage's deps so a code change reruns exactly the stages it affects."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_IMPORT = re.compile(r"^\s*(?:from\s+((?:stages|serve)(?:\.\w+)*)\s+import\s+([\w, ()]+)|import\s+((?:stages|serve)(?:\.\w+)+))", re.M)


def _module_file(dotted: str) -> str | None:
    path = REPO / dotted.replace(".", "/")
    if path.with_suffix(".py").is_file():
        return str(path.with_suffix(".py").relative_to(REPO))
    if (path / "__init__.py").is_file():
        return str((path / "__init__.py").relative_to(REPO))
    return None


def imported_files(entry: str) -> set[str]:
    """`entry` (a repo-relative .py path) and every repo module it imports, transitively."""
    todo, seen = [entry], set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        for frm, names, imp in _IMPORT.findall((REPO / f).read_text(encoding="utf-8")):
            targets = [imp] if imp else [frm] + [f"{frm}.{n.strip()}" for n in re.split(r"[,()\s]+", names) if n.strip()]
            for dotted in targets:
                mf = _module_file(dotted)
                if mf and not (mf.endswith("__init__.py") and mf.count("/") == 1):  # top-level package markers
                    todo.append(mf)
    return {f for f in seen if not f.endswith("__init__.py")}


def covered(path: str, deps: set[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)
