"""The documentation runs: every ```python block of every docs/*.md page is executed.

Each block is a complete example (it makes its own data), so each runs alone, in a
fresh namespace, inside an empty temporary directory. A ```text block right after a
```python block (only blank lines, or the line "It prints:", in between) shows what
the example prints, and must match it exactly, so error messages quoted in the docs
stay the real ones. Fragments that are not meant to run use ```text, ```yaml or
```json fences elsewhere; JSON and YAML must parse. Links between pages must point
at files and headings that exist.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.md"))

# A fence opens with ``` and an info string at the start of a line and closes with ```.
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
LANGUAGES = {"python", "text", "yaml", "json"}
LINK = re.compile(r"\]\(([^)\s]+)\)")


OUTPUT_LEAD = {"", "It prints:"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # line of the opening fence, 1-based
    language: str
    code: str
    output: str | None = None  # for python: the text block showing what it prints

    @property
    def id(self) -> str:
        return f"{self.page.name}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = list(FENCE.finditer(text))
    out = []
    for i, m in enumerate(found):
        language = m.group(1).strip()
        output = None
        following = found[i + 1] if i + 1 < len(found) else None
        if (
            language == "python"
            and following is not None
            and following.group(1).strip() == "text"
            and text[m.end() : following.start()].strip() in OUTPUT_LEAD
        ):
            output = following.group(2)
        line = text.count("\n", 0, m.start()) + 1
        out.append(Block(page, line, language, m.group(2), output))
    return out


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]


def of(language: str) -> list[Block]:
    return [b for b in ALL_BLOCKS if b.language == language]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def test_the_docs_are_there() -> None:
    names = {page.name for page in PAGES}
    assert {
        "getting-started.md",
        "datasets.md",
        "semantic-layer.md",
        "queries.md",
        "security.md",
        "errors.md",
    } <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_page_has_a_runnable_example(page: Path) -> None:
    assert any(b.language == "python" for b in blocks(page)), f"{page.name} has no example"


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: b.id)
def test_every_fence_names_a_known_language(block: Block) -> None:
    """An unlabelled or misspelt fence (```py) would silently escape these tests."""
    assert block.language in LANGUAGES, (
        f"{block.id}: fence language {block.language!r}; use python for runnable code, "
        f"or one of {sorted(LANGUAGES - {'python'})} for fragments"
    )


@pytest.mark.parametrize("block", of("python"), ids=lambda b: b.id)
def test_python_example_runs_and_prints_what_the_docs_show(
    block: Block,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    # Leading newlines make tracebacks point at the right line of the .md file.
    source = "\n" * block.line + block.code
    code = compile(source, str(block.page), "exec")
    exec(code, {"__name__": "__docs__"})
    printed = capsys.readouterr().out
    if block.output is not None:
        assert lines(printed) == lines(block.output), (
            f"{block.id} prints something other than the text block after it shows; "
            "update the docs to the real output (or fix the code)"
        )


@pytest.mark.parametrize("block", of("json"), ids=lambda b: b.id)
def test_json_fragment_parses(block: Block) -> None:
    json.loads(block.code)


@pytest.mark.parametrize("block", of("yaml"), ids=lambda b: b.id)
def test_yaml_fragment_parses(block: Block) -> None:
    yaml.safe_load(block.code)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_point_at_existing_pages_and_headings(page: Path) -> None:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # an absolute URL
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: link to missing {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name}: no heading for #{anchor}"
