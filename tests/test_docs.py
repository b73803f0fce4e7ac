"""The documentation stands alone: every repository path a Markdown file names exists, and no document cites a
document that is not in the repository."""
import os
import re

import pytest

pytestmark = pytest.mark.unit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_DIRS = {".git", ".venv", "build", "node_modules", "__pycache__", ".pytest_cache", "sim_build"}


def markdown_files():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(".md"):
                yield os.path.join(folder, name)


def top_level_folders():
    return sorted(d for d in os.listdir(ROOT) if os.path.isdir(os.path.join(ROOT, d)) and d not in SKIP_DIRS)


def named_paths(text: str, folders: list[str]):
    """Repository paths in `text`: words that start with one of the top-level folders (`rtl/engine.py`, `docs/`),
    without placeholders (`<preset>`, `{a, b}`, `*`), which name generated or patterned files."""
    pattern = re.compile(r"(?<![\w./<>{}-])((?:%s)/[\w./-]*)" % "|".join(re.escape(f) for f in folders))
    for match in pattern.finditer(text):
        path = match.group(1).rstrip(".,;:")
        following = text[match.end():match.end() + 1]
        if following in "<{*[":
            continue
        yield path


def test_the_path_finder_sees_paths_and_skips_placeholders():
    found = list(named_paths("see `rtl/engine.py`, docs/ and sim/tb_<block>.py or rtl/{a,b}.py.", ["rtl", "docs", "sim"]))
    assert found == ["rtl/engine.py", "docs/"]


@pytest.mark.parametrize("md", [os.path.relpath(p, ROOT) for p in markdown_files()])
def test_every_path_named_in_markdown_exists(md):
    text = open(os.path.join(ROOT, md), encoding="utf-8").read()
    missing = sorted({p for p in named_paths(text, top_level_folders()) if not os.path.exists(os.path.join(ROOT, p))})
    assert not missing, f"{md} names paths that do not exist: {', '.join(missing)}"


@pytest.mark.parametrize("md", [os.path.relpath(p, ROOT) for p in markdown_files()])
def test_no_reference_to_an_outside_specification(md):
    text = open(os.path.join(ROOT, md), encoding="utf-8").read()
    assert not re.search(r"SPEC\s*§|\bissue \d+\b", text), f"{md} cites a document outside the repository"
