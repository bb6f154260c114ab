"""Example pages of the documentation, made by running every figure at its smallest size.

Two roles in one file:

- ``python docs/gen_examples.py [--out-dir DIR] [NAME ...]`` runs ``particles figure NAME
  --tiny --out-dir DIR`` for every figure of ``particles.figures.FIGURES`` (all of them in
  one process, through the command line's own ``main``) and writes ``DIR/examples.json``:
  for each figure the seconds it took, what it printed and the files it wrote, plus a
  hash of the package's sources.
- As an MkDocs hook (``hooks:`` in ``mkdocs.yml``) it runs the script above when the
  sources changed since the last run (the figures are cached in ``docs/.examples/``,
  ignored by git and by MkDocs), then adds one page per figure, ``examples/NAME.md``
  (the figure module's docstring, the PNG, what the run printed), an index
  ``examples/index.md``, and the committed PNGs of ``figures/`` as ``figures/NAME.png``.

``PARTICLES_DOCS_FIGURES=0`` skips running the figures: the example pages are built
from the docstrings alone, without images (the test suite builds the site that way).
``PARTICLES_DOCS_EXAMPLES=DIR`` keeps the figures in ``DIR`` instead of ``docs/.examples``.

The hook reads the figure list and docstrings with ``ast``: MkDocs never imports jax.
"""

import argparse
import ast
import contextlib
import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "particles")
FIGURES_PACKAGE = os.path.join(PACKAGE, "figures")
CACHE = os.path.join(ROOT, "docs", ".examples")
MANIFEST = "examples.json"
SKIP_ENV = "PARTICLES_DOCS_FIGURES"
CACHE_ENV = "PARTICLES_DOCS_EXAMPLES"  # another folder for the figures (the tests use one)

log = logging.getLogger("mkdocs.hooks.gen_examples")


# ---- reading the figure modules without importing them ---------------------------------


def figure_names() -> list[str]:
    """``particles.figures.FIGURES``, read from the source."""
    with open(os.path.join(FIGURES_PACKAGE, "__init__.py")) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "FIGURES" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise RuntimeError("particles/figures/__init__.py defines no FIGURES")


def figure_docstring(name: str) -> str:
    with open(os.path.join(FIGURES_PACKAGE, f"{name}.py")) as f:
        return ast.get_docstring(ast.parse(f.read())) or ""


def sources_hash() -> str:
    """Hash of every Python file of the package and of this script: the tiny figures
    are redrawn when any of them changes."""
    h = hashlib.sha256()
    paths = [os.path.abspath(__file__)]
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        paths += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".py")]
    for path in paths:
        h.update(os.path.relpath(path, ROOT).encode())
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


# ---- running the figures (the script) ----------------------------------------------------


def run_figures(out_dir: str, names: list[str]) -> dict:
    """Run each figure at ``--tiny`` into ``out_dir``; return (and write) the manifest."""
    from particles.cli import main

    os.makedirs(out_dir, exist_ok=True)
    manifest = {"sources": sources_hash(), "figures": {}}
    for name in names:
        printed = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(printed):
            rc = main(["figure", name, "--tiny", "--out-dir", out_dir])
        seconds = time.perf_counter() - start
        if rc:
            raise SystemExit(f"particles figure {name} --tiny failed with exit code {rc}")
        files = sorted(f for f in os.listdir(out_dir) if f.startswith(name + ".") and not f.endswith(".nc"))
        manifest["figures"][name] = {
            "seconds": round(seconds, 1),
            "printed": printed.getvalue(),
            "files": files,
        }
        print(f"{name}: {seconds:.1f} s", file=sys.stderr)
    with open(os.path.join(out_dir, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def cached_manifest(out_dir: str, names: list[str]) -> dict | None:
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        manifest = json.load(f)
    figures = manifest.get("figures", {})
    if manifest.get("sources") != sources_hash() or set(figures) != set(names):
        return None
    for entry in figures.values():
        if not all(os.path.isfile(os.path.join(out_dir, f)) for f in entry["files"]):
            return None
    return manifest


def cache_dir() -> str:
    return os.path.abspath(os.environ.get(CACHE_ENV) or CACHE)


def ensure_figures(out_dir: str) -> dict | None:
    """The manifest of the tiny figures, running them if the cache is stale; ``None``
    when ``PARTICLES_DOCS_FIGURES=0``."""
    if os.environ.get(SKIP_ENV, "1") == "0":
        log.info("%s=0: example pages without figures", SKIP_ENV)
        return None
    names = figure_names()
    manifest = cached_manifest(out_dir, names)
    if manifest is not None:
        log.info("example figures: cached in %s", os.path.relpath(out_dir, ROOT))
        return manifest
    log.info("example figures: running %d figures at --tiny into %s", len(names), out_dir)
    start = time.perf_counter()
    # A separate process: the figures import jax and may switch on 64-bit mode.
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--out-dir", out_dir, *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise RuntimeError(f"docs/gen_examples.py failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    log.info("example figures: %.1f s", time.perf_counter() - start)
    return cached_manifest(out_dir, names)


# ---- the pages (the hook) ----------------------------------------------------------------


def title(name: str) -> str:
    return name.replace("_", " ").capitalize()


def docstring_markdown(text: str) -> str:
    """reST-isms of the docstrings as Markdown: ``x`` and :func:`x` become `x`."""
    text = re.sub(r":(?:func|class|mod|data|meth|attr):`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def example_page(name: str, entry: dict | None) -> str:
    lines = [
        f"# {title(name)}",
        "",
        f"Made by `particles figure {name} --tiny` (or `python experiments/{name}.py --tiny`),",
        "the smallest size, a smoke test: a few seeds on a coarse grid, so the picture is",
        f"rough. The committed quick-size figure is on [Published figures](../figures.md); "
        f"`particles figure {name}` draws it (`--full` at the published resolution).",
        "",
        "## What it shows",
        "",
        docstring_markdown(figure_docstring(name)),
        "",
        "## At the smallest size",
        "",
    ]
    if entry is None:
        lines += [
            f"This build skipped the figures ({SKIP_ENV}=0); `make docs` draws them here.",
            "",
        ]
        return "\n".join(lines)
    lines += [f"Drawn when this site was built, in {entry['seconds']} s on the build machine.", ""]
    for f in entry["files"]:
        if f.endswith((".png", ".gif", ".svg")):
            lines += [f"![{title(name)}, smallest size]({f})", ""]
    # What the figure printed, without the lines naming the files it wrote and its time.
    printed = "\n".join(
        line
        for line in entry["printed"].splitlines()
        if not line.startswith("wrote ") and not line.startswith(f"{name} (tiny) in ")
    ).strip()
    if printed:
        lines += ["What the command printed:", "", "```text", printed, "```", ""]
    return "\n".join(lines)


def index_page(names: list[str], manifest: dict | None) -> str:
    lines = [
        "# Examples",
        "",
        "Every published figure of the package (`particles/figures/`, one module each, run by",
        "`particles figure NAME` or `python experiments/NAME.py`), drawn at `--tiny` when this",
        "site is built: the documentation shows what the code makes today. These are smoke",
        "tests, not results; the quick-size figures and their numbers are on",
        "[Published figures](../figures.md).",
        "",
        "| figure | module | seconds at `--tiny` |",
        "|---|---|---|",
    ]
    for name in names:
        seconds = "skipped" if manifest is None else manifest["figures"][name]["seconds"]
        lines.append(f"| [{title(name)}]({name}.md) | `particles.figures.{name}` | {seconds} |")
    return "\n".join(lines) + "\n"


def on_files(files, config):
    from mkdocs.structure.files import File

    names = figure_names()
    cache = cache_dir()
    manifest = ensure_figures(cache)
    files.append(File.generated(config, "examples/index.md", content=index_page(names, manifest)))
    for name in names:
        entry = None if manifest is None else manifest["figures"][name]
        files.append(File.generated(config, f"examples/{name}.md", content=example_page(name, entry)))
        for f in [] if entry is None else entry["files"]:
            files.append(File.generated(config, f"examples/{f}", abs_src_path=os.path.join(cache, f)))
    committed = os.path.join(ROOT, "figures")
    for f in sorted(os.listdir(committed)):
        if f.endswith(".png"):
            files.append(File.generated(config, f"figures/{f}", abs_src_path=os.path.join(committed, f)))
    return files


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="figures (default: all of particles.figures.FIGURES)")
    p.add_argument("--out-dir", default=CACHE, help="folder for the PNGs and examples.json")
    args = p.parse_args(argv)
    run_figures(args.out_dir, args.names or figure_names())


if __name__ == "__main__":
    main()
