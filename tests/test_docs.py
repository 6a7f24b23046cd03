"""The docs hold together: every relative link in README.md and docs/*.md names a file that exists, every
`#anchor` names a heading of its page, and the README stays what a user reads first (at most ~320 lines).

Anchors follow GitHub's rules for headings (github/cmark-gfm's and github-markup's toc filter, as GitHub renders
README.md and docs/*.md): the heading's text without its inline markup, lower-cased, every character that is not
a letter, digit, underscore, hyphen or space removed, spaces made hyphens; a repeated anchor gets `-1`, `-2`, ...
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_MAX_LINES = 320

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`+([^`]*)`+")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (a `# comment` in a bash block is not a heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = INLINE_CODE.sub(r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    targets = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        line = INLINE_CODE.sub("", line)
        targets.extend(LINK.findall(line))
    return targets


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            where = dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest.name
            broken.append(f"{target}: no heading with that anchor in {where}")
    return broken


def test_github_anchor_rules() -> None:
    assert slug('Evaluation on held-out conversations (the report\'s "Evaluation" section)') == (
        "evaluation-on-held-out-conversations-the-reports-evaluation-section"
    )
    assert slug("`chatft dataset`: take a percent") == "chatft-dataset-take-a-percent"
    assert slug("Tear down: `azd down`") == "tear-down-azd-down"
    assert slug("Switching `ML_BACKEND`") == "switching-ml_backend"


def test_a_repeated_heading_gets_a_numbered_anchor(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## Examples\n\n```bash\n# Examples\n```\n\n## Examples\n\n### Examples\n")
    assert anchors(page) == {"title", "examples", "examples-1", "examples-2"}


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title), [gone](#nothing), [file](missing.md), `[code](#not-a-link)`\n")
    assert broken_links(page) == ["#nothing: no heading with that anchor in page.md", "missing.md: no such file"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert not broken_links(page), broken_links(page)


def test_the_readme_is_what_a_user_reads_first() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES, "move the detail to a page in docs/ and link to it"
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block and text.index(first_block.group(0)) < text.index("\n## ")
    commands = first_block.group(1).splitlines()
    assert commands[0].startswith("make run") and commands[1].startswith("make test"), "the two commands come first"
    for page in DOCS:
        assert f"(docs/{page.name}" in text, f"the README links to docs/{page.name}"


SCRIPTS = sorted([*(ROOT / "scripts").glob("*.sh"), *(ROOT / "scripts").glob("*.ps1")])
DOC_MENTION = re.compile(r"(docs/[\w-]+\.md)(?:, '([^']+)')?")


def test_the_hooks_point_at_pages_and_sections_that_exist() -> None:
    """A hook's error says where to read on (`see docs/deploy.md, 'Before you start'`): that page and heading exist."""
    mentions = [(script, m) for script in SCRIPTS for m in DOC_MENTION.findall(script.read_text(encoding="utf-8"))]
    assert mentions, "the hooks name the page to read"
    for script, (page, heading) in mentions:
        assert (ROOT / page).exists(), f"{script.name}: {page}"
        if heading:
            assert slug(heading) in anchors(ROOT / page), f"{script.name}: {page} has no heading {heading!r}"
