"""The import structure of particles/ and of the scripts around it (issue 23):

- no import cycles, in particles/ and in benchmarks/ (module-level and function-level
  imports alike, absolute and relative);
- no module of particles/ imports another module's private names (a private *module*,
  ``from ._config import SolveConfig``, is fine);
- benchmarks/ and experiments/ use particles through its public names only.

The graph is built with ``ast`` by :func:`import_graph`, itself checked on a small
package written to tmp_path."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def module_files(root: Path, package: str | None) -> dict[str, Path]:
    """{dotted module name: file} of the .py files under ``root``: as the package
    ``package`` (``root/__init__.py`` is ``package``, ``root/sub/x.py`` is
    ``package.sub.x``), or with ``package=None`` as top-level scripts (``root/x.py`` is
    ``x``, a folder of scripts on sys.path, as benchmarks/ is)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if package is None:
            if len(parts) > 1:
                continue
        else:
            if parts[-1] == "__init__":
                parts = parts[:-1]
            parts = [package, *parts]
        out[".".join(parts)] = path
    return out


def _is_package(name: str, files: dict[str, Path]) -> bool:
    return files[name].name == "__init__.py"


def imports_of(name: str, files: dict[str, Path]):
    """(node, imported module, imported name or None) for each import in module ``name``,
    wherever it is (module level or inside a function); relative imports resolved.
    ``from X import y`` imports the module ``X.y`` when there is one, else ``X``'s name y."""
    tree = ast.parse(files[name].read_text(), filename=str(files[name]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                here = name.split(".")
                package = here if _is_package(name, files) else here[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                yield node, base, alias.name


def _known(module: str, files) -> str | None:
    """The module of ``files`` that importing ``module`` runs last (its deepest known
    prefix), or None for a module from elsewhere."""
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in files:
            return ".".join(parts[:k])
    return None


def import_graph(root: Path, package: str | None = None) -> dict[str, set[str]]:
    """{module: the modules under ``root`` it imports} (see :func:`module_files`)."""
    files = module_files(root, package)
    graph = {name: set() for name in files}
    for name in files:
        for _, base, imported in imports_of(name, files):
            if imported is not None and f"{base}.{imported}" in files:
                target = f"{base}.{imported}"  # from . import submodule
            else:
                target = _known(base, files)  # a name of base (its __init__ for a package)
            if target is not None:
                graph[name].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles, as lists [m0, m1, ..., mk]: m0 imports m1, ..., mk imports m0,
    starting at the least module: a shortest cycle through each module that is on one
    (each strongly connected component of the graph; a module importing itself is a
    cycle of one). Sorted."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(v):  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = set()
    for component in components:
        if len(component) == 1 and not graph[min(component)] & component:
            continue
        for start in sorted(component):  # a shortest cycle through each of its modules
            paths, seen = [[start]], set()
            while paths:
                path = paths.pop(0)
                if start in graph[path[-1]]:
                    k = path.index(min(path))
                    cycles.add(tuple(path[k:] + path[:k]))
                    break
                for w in sorted(graph[path[-1]] & component - seen):
                    seen.add(w)
                    paths.append([*path, w])
    return sorted(map(list, cycles))


def describe(cycles) -> str:
    return "import cycles:\n" + "\n".join("  " + " -> ".join([*c, c[0]]) for c in cycles)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(root: Path, package: str) -> list[str]:
    """Imports in ``package`` of a private name (not a module) from another module."""
    files = module_files(root, package)
    out = []
    for name in files:
        for node, base, imported in imports_of(name, files):
            if imported is not None and _private(imported) and f"{base}.{imported}" not in files:
                out.append(
                    f"{files[name].relative_to(root.parent)}:{node.lineno}: from {base} import {imported}"
                )
    return out


def private_uses(folder: Path, library: str = "particles") -> list[str]:
    """In the scripts of ``folder``: imports of a private module of ``library``
    (``particles._gram``), of a private name from it, and attribute access
    ``module._name`` on a name bound to one of its modules."""
    lib = module_files(ROOT / library, library)
    out = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        where = lambda node: f"{path.relative_to(folder.parent)}:{node.lineno}"  # noqa: E731
        bound = {}  # local name -> the library module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == library:
                        if any(_private(p) for p in alias.name.split(".")):
                            out.append(f"{where(node)}: import {alias.name}")
                        if alias.asname:
                            bound[alias.asname] = alias.name
                        else:
                            bound[alias.name.split(".")[0]] = library
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] != library:
                    continue
                if any(_private(p) for p in node.module.split(".")):
                    out.append(f"{where(node)}: from {node.module} import ...")
                for alias in node.names:
                    if _private(alias.name):
                        out.append(f"{where(node)}: from {node.module} import {alias.name}")
                    elif f"{node.module}.{alias.name}" in lib:
                        bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and _private(node.attr)
            ):
                out.append(f"{where(node)}: {node.value.id}.{node.attr} ({bound[node.value.id]})")
    return sorted(set(out))


# -- the checker, on a package made up for it ---------------------------------------


def write(root: Path, files: dict[str, str]):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def toy(tmp_path):
    root = tmp_path / "pkg"
    write(
        root,
        {
            "__init__.py": '__version__ = "1"\nfrom .x import f as f\n',
            "a.py": "from . import b\n\ndef f():\n    from .c import g\n",  # function level
            "b.py": "from .sub import d\nimport os, numpy\n",
            "c.py": "import pkg.b\nfrom . import __version__\nfrom ._priv import _helper, public\n",
            "_priv.py": "_helper = public = 1\n",
            "sub/__init__.py": "",
            "sub/d.py": "from .. import a\nfrom . import _e\n",  # .. is pkg; _e a private module
            "sub/_e.py": "from ..x import _secret\n",
            "x.py": "def f():\n    from . import y\n_secret = 2\n",
            "y.py": "import pkg.x as x\nimport pkg\n",
        },
    )
    return root


def test_import_graph_of_a_made_up_package(toy):
    assert import_graph(toy, "pkg") == {
        "pkg": {"pkg.x"},
        "pkg.a": {"pkg.b", "pkg.c"},
        "pkg.b": {"pkg.sub.d"},
        "pkg.c": {"pkg.b", "pkg", "pkg._priv"},  # `from . import __version__`: the package
        "pkg._priv": set(),
        "pkg.sub": set(),
        "pkg.sub.d": {"pkg.a", "pkg.sub._e"},
        "pkg.sub._e": {"pkg.x"},
        "pkg.x": {"pkg.y"},
        "pkg.y": {"pkg.x", "pkg"},
    }


def test_find_cycles_of_a_made_up_package(toy):
    cycles = find_cycles(import_graph(toy, "pkg"))
    assert cycles == [
        ["pkg", "pkg.x", "pkg.y"],
        ["pkg.a", "pkg.b", "pkg.sub.d"],
        ["pkg.a", "pkg.c", "pkg.b", "pkg.sub.d"],  # the shortest through pkg.c
        ["pkg.x", "pkg.y"],
    ]
    assert "pkg.a -> pkg.b -> pkg.sub.d -> pkg.a" in describe(cycles)
    assert find_cycles({"a": {"a"}, "b": {"a"}}) == [["a"]]  # a module importing itself
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_private_imports_of_a_made_up_package(toy):
    assert private_imports(toy, "pkg") == [
        "pkg/c.py:3: from pkg._priv import _helper",
        "pkg/sub/_e.py:1: from pkg.x import _secret",
    ]


def test_scripts_graph_and_private_uses(tmp_path):
    folder = tmp_path / "scripts"
    write(
        folder,
        {
            "run.py": "from report import render\nimport common\n",
            "report.py": "import common\n",
            "common.py": "def f():\n    import run\n",
            "bad.py": (
                "import particles\nimport particles._gram\nfrom particles import sensitivity, _cache\n"
                "from particles._config import SolveConfig\nimport particles.kernels as k\n"
                "particles._x()\nsensitivity._chain()\nk._y\nparticles.__version__\nsensitivity.lyapunov\n"
            ),
        },
    )
    assert find_cycles(import_graph(folder)) == [["common", "run"], ["common", "run", "report"]]
    assert [use.split(": ", 1)[1] for use in private_uses(folder)] == [
        "import particles._gram",
        "from particles import _cache",
        "from particles._config import ...",
        "particles._x (particles)",
        "sensitivity._chain (particles.sensitivity)",
        "k._y (particles.kernels)",
    ]


# -- the real folders ---------------------------------------------------------------


def test_benchmarks_have_no_import_cycles():
    graph = import_graph(ROOT / "benchmarks")
    assert {"run", "report", "blocks", "throughput"} <= set(graph)  # the checker sees them
    assert "report" in graph["run"] and "throughput" in graph["blocks"]
    cycles = find_cycles(graph)
    assert not cycles, describe(cycles)


def test_particles_has_no_import_cycles():
    graph = import_graph(ROOT / "particles", "particles")
    assert len(graph) > 20 and "particles._config" in graph["particles"]
    cycles = find_cycles(graph)
    assert not cycles, describe(cycles)


def test_particles_modules_import_no_private_names():
    found = private_imports(ROOT / "particles", "particles")
    assert not found, "private names imported from another module:\n" + "\n".join(found)


def test_experiments_use_public_names_only():
    found = private_uses(ROOT / "experiments")
    assert not found, "private names of particles used:\n" + "\n".join(found)


def test_benchmarks_use_public_names_only():
    found = private_uses(ROOT / "benchmarks")
    assert not found, "private names of particles used:\n" + "\n".join(found)


def test_diffeqsolve_is_called_from_the_engine_only():
    """``diffrax.diffeqsolve`` is called in particles/_engine.py only (the solve that
    sensitivity differentiates); the forward solves (tokens, the reduced model, the mean
    field) go through particles/_loop.py, its loop written out."""
    allowed = {"particles/_engine.py"}
    callers = set()
    for path in sorted((ROOT / "particles").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if name == "diffeqsolve":
                    callers.add(path.relative_to(ROOT).as_posix())
    assert callers and callers <= allowed, sorted(callers - allowed)
