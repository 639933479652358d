"""Every relative link and image of the repository's markdown points at a file that exists;
the README's library example runs as written."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
SKIP = {"runs", "node_modules", "__pycache__"}  # run outputs and tool folders, not docs
LINK = re.compile(r"\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)


def _markdown_files():
    for path in ROOT.rglob("*.md"):
        parts = path.relative_to(ROOT).parts
        if any(p.startswith(".") or p in SKIP or p.endswith(".egg-info") for p in parts):
            continue
        yield path


def test_relative_links_resolve():
    files = list(_markdown_files())
    assert any(f.name == "results.md" for f in files) and any(f.name == "README.md" for f in files)
    broken = []
    for path in files:
        for target in LINK.findall(path.read_text(encoding="utf-8")):
            target = target.split("#")[0]
            if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):  # anchors, URLs
                continue
            if not (path.parent / target).exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_the_readme_library_example_runs_as_written():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Library use", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    namespace: dict = {}
    exec(compile(code, "README.md (Library use)", "exec"), namespace)  # noqa: S102
    score = namespace["out"].score
    assert score.shape == (2,) and bool((score >= 0).all())
