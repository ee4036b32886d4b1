"""The documentation site builds (``mkdocs build --strict``), offline, and its API reference
holds every public name of ``kling_testkit``.

A module's public names are those in its ``__all__`` when it has one, else its top-level names
without a leading underscore that it defines itself (not the ones it imports). They are read
from the source (``ast``), so no module is imported: some import what a test process must not
load (Schemathesis's hooks).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kling_testkit"


def public_modules() -> Iterator[tuple[str, Path]]:
    """Every module of the package (packages by their ``__init__``), none private."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(part.startswith("_") for part in parts):
            yield ".".join(parts), path


def _bound(statements: list[ast.stmt]) -> Iterator[str]:
    for node in statements:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                yield from (n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            yield node.target.id
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            yield from _bound(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            yield from _bound(node.body + node.orelse + node.finalbody)


def public_names(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return sorted(ast.literal_eval(node.value))
    return sorted({name for name in _bound(tree.body) if not name.startswith("_")})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as ``make docs`` builds it (strict, from this tree), in a folder of its own."""
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stderr[-4000:]
    return out


def test_the_public_names_are_read_as_documented() -> None:
    modules = dict(public_modules())
    assert "kling_testkit.client" in modules and "kling_testkit.spec.rules" in modules
    assert "kling_testkit.load.runner" in modules
    assert public_names(modules["kling_testkit"]) == [
        "ApiError",
        "Credentials",
        "ErrorCode",
        "KlingClient",
        "KlingError",
        "MockControl",
    ]
    client = public_names(modules["kling_testkit.client"])
    assert "KlingClient" in client and "Any" not in client  # imports are not its names


def test_every_public_name_is_in_the_reference(site: Path) -> None:
    pages = "".join(p.read_text(encoding="utf-8") for p in (site / "reference").rglob("*.html"))
    documented = set(re.findall(r'id="(kling_testkit[\w.]*)"', pages))
    missing = [
        f"{module}.{name}" if name else module
        for module, path in public_modules()
        for name in ["", *public_names(path)]
        if (f"{module}.{name}" if name else module) not in documented
    ]
    assert not missing, f"not in the API reference (docs/reference/*.md): {missing}"


def test_the_site_loads_nothing_from_elsewhere(site: Path) -> None:
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        outside = re.findall(r'<(?:script|link|img)\b[^>]*(?:src|href)="(?:https?:)?//[^"]*"', text)
        assert not outside, (page, outside)
        assert "fonts.googleapis.com" not in text, page  # theme.font: false


def test_each_pitfall_page_shows_its_test_file_as_it_runs(site: Path) -> None:
    examples = sorted((ROOT / "tests" / "examples").glob("test_pitfall_*.py"))
    assert len(examples) == 10
    pages = {
        p.parent.name: p.read_text(encoding="utf-8")
        for p in (site / "pitfalls").glob("*/index.html")
    }
    for example in examples:
        number = example.name.split("_")[2]
        page = next(text for name, text in pages.items() if name.startswith(number))
        visible = re.sub(r"<[^>]+>", "", page)
        for name in re.findall(r"^def (test_\w+)", example.read_text(encoding="utf-8"), re.M):
            assert f"def {name}(" in visible, (example.name, name)
