"""The package's shape: no module imports another that imports it back, directly or around a circle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stylize"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere (in functions too: a lazy import still closes a
    circle), except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rsplit(".", 1)[0]
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and getattr(block.test, "id", getattr(block.test, "attr", None)) == "TYPE_CHECKING"
               for node in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
            candidates = submodules or [base]  # "from . import a" imports the module a; "from .b import x", b
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in candidates if name in modules and name != own}
    return found


def test_no_import_circles() -> None:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: imported_modules(path, set(paths)) for name, path in paths.items()}
    # a package's __init__ is imported by its submodules' import anyway: an edge into a parent is not a circle
    graph = {name: {m for m in deps if not name.startswith(m + ".")} for name, deps in graph.items()}
    circles = []

    def visit(name: str, trail: list[str]) -> None:
        for dep in sorted(graph[name]):
            if dep in trail:
                circles.append(trail[trail.index(dep):] + [dep])
            elif dep not in done:
                visit(dep, trail + [dep])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_the_check_finds_a_circle(tmp_path: Path) -> None:
    """The check itself: two modules importing each other (one lazily) are found."""
    package = tmp_path / "stylize"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import thing\n")
    (package / "b.py").write_text("def thing():\n    from . import a\n")
    modules = {"stylize", "stylize.a", "stylize.b"}
    global PACKAGE
    saved, PACKAGE = PACKAGE, package
    try:
        assert imported_modules(package / "a.py", modules) == {"stylize.b"}
        assert imported_modules(package / "b.py", modules) == {"stylize.a"}
    finally:
        PACKAGE = saved


def test_front_ends_go_through_the_stylizer() -> None:
    """The CLI, batch (on Ray too), video and the web page call ``Stylizer`` with ``Options`` whole, never its
    pipeline."""
    for front_end in ("cli.py", "batch.py", "web.py", "ray.py", "video.py"):
        tree = ast.parse((PACKAGE / front_end).read_text(encoding="utf-8"))
        reached = [node.lineno for node in ast.walk(tree)
                   if isinstance(node, ast.Attribute) and node.attr == "pipeline"]
        assert not reached, f"stylize/{front_end} reaches into Stylizer.pipeline at lines {reached}"


def top_level_names(path: Path) -> set[str]:
    """What ``from MODULE import name`` can find in a module without running it: its top-level definitions,
    assignments and imports."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def test_benchmarks_import_only_what_their_siblings_define() -> None:
    """The benchmarks are run by hand, not by the suite: a name one of them takes from another that is gone
    (``gatys_gap`` once imported a timing helper that had been renamed) would only show when someone ran it."""
    folder = PACKAGE.parent / "benchmarks"
    defined = {path.stem: top_level_names(path) for path in folder.glob("*.py")}
    missing = [f"{path.name}: {node.module}.{alias.name}"
               for path in folder.glob("*.py") for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("benchmarks.")
               for alias in node.names if alias.name not in defined.get(node.module.split(".", 1)[1], {alias.name})]
    assert not missing, "benchmarks import names their siblings do not define: " + ", ".join(missing)
