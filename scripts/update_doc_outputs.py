"""Rewrite the ```text block after each ```python example in docs/ with what it prints.

Run after changing a message on purpose: `.venv/bin/python scripts/update_doc_outputs.py`,
then read the diff. tests/test_docs.py fails while a page shows stale output.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)


def run(code: str, line: int, page: Path) -> str:
    out = io.StringIO()
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            with contextlib.redirect_stdout(out):
                exec(compile("\n" * line + code, str(page), "exec"), {"__name__": "__docs__"})
        finally:
            os.chdir(here)
    return out.getvalue()


def update(page: Path) -> bool:
    text = page.read_text(encoding="utf-8")
    found = list(FENCE.finditer(text))
    edits: list[tuple[int, int, str]] = []
    for m, following in itertools.pairwise(found):
        if m.group(1).strip() != "python" or following.group(1).strip() != "text":
            continue
        if text[m.end() : following.start()].strip() not in ("", "It prints:"):
            continue
        printed = run(m.group(2), text.count("\n", 0, m.start()) + 1, page)
        body = "\n".join(line.rstrip() for line in printed.strip("\n").splitlines()) + "\n"
        if body != following.group(2):
            edits.append((following.start(2), following.end(2), body))
    for start, end, body in reversed(edits):
        text = text[:start] + body + text[end:]
    if edits:
        page.write_text(text, encoding="utf-8")
        print(f"{page.name}: {len(edits)} block(s) updated")
    return bool(edits)


if __name__ == "__main__":
    pages = [Path(p) for p in sys.argv[1:]] or sorted(DOCS.glob("*.md"))
    for page in pages:
        update(page)
