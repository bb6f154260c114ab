"""The documentation site builds with ``mkdocs build --strict``, its API reference
lists every public name of ``particles/__init__.py``, and every Python code block of
every page runs (as a reader would run it: a fresh interpreter, float32, the blocks of a
page in order in one namespace, in an empty folder).

The default build skips the example figures (``PARTICLES_DOCS_FIGURES=0``, a few
seconds); the build that draws them at ``--tiny`` (half a minute) is marked slow.
"""

import ast
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
# A block that cannot run here is preceded by this comment (invisible on the site), with the reason.
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(\S.*?)\s*-->$")


def python_blocks(page) -> list[tuple[int, str, str | None]]:
    """(line number, code, reason it is not run or None) of every ```python block of ``page``."""
    lines = page.read_text().splitlines()
    blocks, k = [], 0
    while k < len(lines):
        if lines[k].strip() in ("```python", "```py"):
            start = k
            k += 1
            while lines[k].strip() != "```":
                k += 1
            before = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
            skip = NOT_RUN.match(before)
            blocks.append((start + 1, "\n".join(lines[start + 1 : k]), skip.group(1) if skip else None))
        k += 1
    return blocks


RUNNER = """
import json, os, sys, tempfile, traceback
import matplotlib
matplotlib.use("Agg")
results, base = {}, os.getcwd()
for page, blocks in json.loads(sys.stdin.read()).items():
    os.chdir(tempfile.mkdtemp(dir=base))
    namespace = {"__name__": "__main__"}
    for line, code in blocks:
        try:
            exec(compile(code, f"{page}:{line}", "exec"), namespace)
        except BaseException as e:
            results[page] = f"block at line {line}: " + "".join(traceback.format_exception_only(e)).strip()
            break
print(json.dumps(results))
"""


# Pages whose blocks compile many programs or run long (SDE paths): run by the slow test;
# every other page's blocks run by default. Measured alone (2026-12-07, a process per
# page): analysis 13.8 s, getting-started 17.3, layers 10.6, noise 9.5, equiangular 7.1,
# meanfield 14.5; real_models 9.8 (2026-12-08); with the tests' fast-compiling flags
# (2026-12-08): noise 9.3 s, meanfield 7.0, getting-started 6.6, equiangular 3.5,
# positions 2.7 (each with ~2 s of import).
SLOW_PAGES = (
    "docs/simulate.md",
    "docs/sweeps.md",
    "docs/sensitivity.md",
    "docs/analysis.md",
    "docs/layers.md",
    "docs/real_models.md",
    "docs/noise.md",
    "docs/meanfield.md",
)


def run_pages(tmp_path, slow: bool):
    """Run the blocks of the pages (all but SLOW_PAGES, or those) in one fresh interpreter."""
    pages = {}
    for page in PAGES:
        name = page.relative_to(ROOT).as_posix()
        blocks = [(line, code) for line, code, skip in python_blocks(page) if skip is None]
        if blocks and (name in SLOW_PAGES) == slow:
            pages[name] = blocks
    assert len(pages) >= 3, sorted(pages)
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(pages),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    failures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not failures, "\n".join(f"{page}: {error}" for page, error in failures.items())


def test_every_python_block_on_every_page_runs(tmp_path):
    """Every ```python block of docs/ and the README runs (those of SLOW_PAGES in the slow
    test below); a block that cannot (a Dask scheduler address) says why in a
    ``<!-- not run: REASON -->`` line above it."""
    run_pages(tmp_path, slow=False)


@pytest.mark.slow
def test_every_python_block_on_the_slow_pages_runs(tmp_path):
    run_pages(tmp_path, slow=True)


def test_code_blocks_are_found_and_skips_give_a_reason(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n```python\nx = 1\n```\n\n<!-- not run: needs a cluster -->\n```python\ny\n```\n")
    assert python_blocks(page) == [(2, "x = 1", None), (7, "y", "needs a cluster")]
    assert set(SLOW_PAGES) <= {p.relative_to(ROOT).as_posix() for p in PAGES if python_blocks(p)}
    for page in PAGES:  # a marker without a reason is not a marker
        assert "<!-- not run -->" not in page.read_text() and "<!-- not run: -->" not in page.read_text()


def needs_mkdocs():
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed (pip install -e '.[docs]')")
    pytest.importorskip("material", reason="mkdocs-material is not installed (pip install -e '.[docs]')")


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
    needs_mkdocs()
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
    needs_mkdocs()
    names = ast.literal_eval(
        re.search(
            r"FIGURES = (\([^)]*\))", (ROOT / "particles" / "figures" / "__init__.py").read_text()
        ).group(1)
    )
    site = build(tmp_path / "site", PARTICLES_DOCS_EXAMPLES=str(tmp_path / "examples"))
    for name in names:
        assert (site / "examples" / f"{name}.png").stat().st_size > 10_000
        assert f'src="{name}.png"' in (site / "examples" / f"{name}.html").read_text()
