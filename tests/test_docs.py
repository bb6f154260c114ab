"""The documentation site builds with ``mkdocs build --strict`` and its API reference
lists every public name of ``particles/__init__.py``.

The default build skips the example figures (``PARTICLES_DOCS_FIGURES=0``, a few
seconds); the build that draws them at ``--tiny`` (half a minute) is marked slow.
"""

import ast
import os
import pathlib
import re
import subprocess
import sys

import pytest

pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed (pip install -e '.[docs]')")
pytest.importorskip("material", reason="mkdocs-material is not installed (pip install -e '.[docs]')")

ROOT = pathlib.Path(__file__).resolve().parents[1]


def build(site, **env):
    """``mkdocs build --strict`` into ``site``; fail with MkDocs' output if it does not build."""
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml")]
        + ["--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", **env},
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"mkdocs build --strict failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )
    return site


def public_names() -> list[str]:
    """The names ``particles/__init__.py`` re-exports (``from X import Y as Y``, ``from . import m as m``)."""
    tree = ast.parse((ROOT / "particles" / "__init__.py").read_text())
    names = [
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if not (alias.asname or alias.name).startswith("_")  # a private helper module is not API
    ]
    assert len(names) > 10
    return names


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build(tmp_path_factory.mktemp("site"), PARTICLES_DOCS_FIGURES="0")


def test_site_builds_strict_without_figures(site):
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    for page in ("index.html", "getting-started.html", "model.html", "api/index.html", "examples/index.html"):
        assert page in pages
    # the example pages exist, from the figure modules' docstrings, without images
    text = (site / "examples" / "phase_diagram.html").read_text()
    assert "PARTICLES_DOCS_FIGURES=0" in text and "phase_diagram.png" not in text
    assert "equiangular curve" in text


def test_api_reference_lists_every_public_name(site):
    sources = "\n".join(p.read_text() for p in (ROOT / "docs" / "api").glob("*.md"))
    documented = set(re.findall(r"^::: (particles\.[\w.]+)", sources, re.M))
    html = "\n".join(p.read_text() for p in (site / "api").glob("*.html"))
    missing_source, missing_html = [], []
    for name in public_names():
        if f"particles.{name}" not in documented:
            missing_source.append(name)
        if f'id="particles.{name}"' not in html:
            missing_html.append(name)
    assert not missing_source, f"add '::: particles.NAME' to a page of docs/api/ for: {missing_source}"
    assert not missing_html, f"no API entry rendered for: {missing_html}"
    # the public modules are documented with their members and docstrings
    for module in ("analysis", "init", "schemes", "equiangular"):
        assert f"particles.{module}" in documented
    assert "Simulate n tokens under the attention flow" in html  # simulate's docstring
    assert ":func:" not in html and ":class:" not in html  # reST roles rewritten


@pytest.mark.slow
def test_site_builds_with_example_figures(tmp_path):
    names = ast.literal_eval(
        re.search(
            r"FIGURES = (\([^)]*\))", (ROOT / "particles" / "figures" / "__init__.py").read_text()
        ).group(1)
    )
    site = build(tmp_path / "site", PARTICLES_DOCS_EXAMPLES=str(tmp_path / "examples"))
    for name in names:
        assert (site / "examples" / f"{name}.png").stat().st_size > 10_000
        assert f'src="{name}.png"' in (site / "examples" / f"{name}.html").read_text()
