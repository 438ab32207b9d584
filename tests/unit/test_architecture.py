"""The architecture's rules, read from the source with `ast`: nothing is imported, nothing leaves the machine.

Each rule fails with the list of its offenders, so a failure says what to move, not just that something is
wrong. The rules (docs: issue 11, "one shared kernel, one ledger, the local plane split by service"):
(a) no import cycle between modules of headrace/; (b) no domain package imports another domain's adapters;
(c) ledger key strings live in headrace/ledger/ only; (d) no function environment written by hand in
stacks/; (e) every module of the local plane is under 400 lines; (f) only headrace/local/seams/ imports moto.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "headrace"
# The code that ships (in Lambda assets, images or the CLI); tests and benchmarks may use anything.
SHIPPED = (PACKAGE, REPO / "functions", REPO / "stacks", REPO / "containers", REPO / "app.py")
DOMAINS = ("ingest", "training", "serving", "monitoring")
LEDGER_KEY = re.compile(r"(?<![A-Za-z0-9_])(model|dataset|run|rejection|deploy|drift|retrain)#")
LOCAL_MODULE_MAX_LINES = 400


@dataclass(frozen=True)
class Import:
    """One import statement's target, as an absolute module name, and where it is."""

    module: str
    path: Path
    line: int

    def at(self) -> str:
        shown = self.path.relative_to(REPO) if self.path.is_relative_to(REPO) else self.path
        return f"{shown}:{self.line}"


def _python_files(*roots: Path) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files.extend(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(files)


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of import nodes under `if TYPE_CHECKING:`: they never run, so they cannot close a cycle."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return guarded


def _imports(path: Path, known: frozenset[str] = frozenset(), root: Path = REPO) -> Iterator[Import]:
    """Every import in `path`, module level and inside functions; `from pkg import mod` names pkg.mod."""
    tree = _tree(path)
    guarded = _type_checking_only(tree)
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield Import(submodule if submodule in known else base, path, node.lineno)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in _python_files(PACKAGE)}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    pending = [start]
    while pending:
        for successor in graph.get(pending.pop(), ()):
            if successor not in seen:
                seen.add(successor)
                pending.append(successor)
    return seen


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that each reach all the others (strongly connected components), each sorted."""
    reach = {node: _reachable(graph, node) for node in graph}
    found: list[list[str]] = []
    placed: set[str] = set()
    for node in sorted(graph):
        if node in placed:
            continue
        component = sorted({other for other in reach[node] if node in reach.get(other, ())} | {node})
        placed.update(component)
        if len(component) > 1:
            found.append(component)
    return found


def _import_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], Import]]:
    modules = _modules()
    known = frozenset(modules)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    where: dict[tuple[str, str], Import] = {}
    for name, path in modules.items():
        for imported in _imports(path, known):
            if imported.module in known and imported.module != name:
                graph[name].add(imported.module)
                where.setdefault((name, imported.module), imported)
    return graph, where


def test_no_import_cycle_between_modules_of_headrace() -> None:
    graph, where = _import_graph()
    cycles = _cycles(graph)
    described = []
    for cycle in cycles:
        members = set(cycle)
        edges = sorted(
            f"{source} -> {target} ({where[source, target].at()})"
            for source in cycle
            for target in graph[source] & members
        )
        described.append(" | ".join(cycle) + "\n      " + "\n      ".join(edges))
    assert not cycles, "import cycles (a function-level import still closes one):\n  - " + "\n  - ".join(
        described
    )


def _is_adapter(module: str) -> bool:
    """A domain's boto3 side: its `aws` module, or one named `*_aws` (like serving's idle_aws)."""
    last = module.rsplit(".", 1)[-1]
    return last == "aws" or last.endswith("_aws")


def test_no_domain_imports_another_domains_adapters() -> None:
    known = frozenset(_modules())
    offenders = []
    for domain in DOMAINS:
        for path in _python_files(PACKAGE / domain):
            for imported in _imports(path, known):
                parts = imported.module.split(".")
                if (
                    len(parts) >= 3
                    and parts[0] == "headrace"
                    and parts[1] in DOMAINS
                    and parts[1] != domain
                    and _is_adapter(imported.module)
                ):
                    offenders.append(f"{imported.at()} ({domain} imports {imported.module})")
    assert not offenders, "a domain importing another domain's adapters:\n  - " + "\n  - ".join(offenders)


def _docstrings(tree: ast.Module) -> set[int]:
    owners = [
        tree,
        *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)),
    ]
    return {
        id(owner.body[0].value)
        for owner in owners
        if owner.body
        and isinstance(owner.body[0], ast.Expr)
        and isinstance(owner.body[0].value, ast.Constant)
        and isinstance(owner.body[0].value.value, str)
    }


def test_ledger_key_strings_live_in_the_ledger_package_only() -> None:
    offenders = []
    for path in _python_files(*SHIPPED):
        if path.is_relative_to(PACKAGE / "ledger"):
            continue
        tree = _tree(path)
        skipped = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in skipped
                and (key := LEDGER_KEY.search(node.value))
            ):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} ({key[0]!r} in {node.value!r})")
    assert not offenders, "ledger key strings outside headrace/ledger/:\n  - " + "\n  - ".join(offenders)


def _hand_written_dicts(tree: ast.Module) -> set[str]:
    """Names assigned a dict literal, comprehension or `dict(...)` call anywhere in the module."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and _is_dict_literal(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _is_dict_literal(node: ast.expr | None) -> bool:
    if isinstance(node, ast.Dict | ast.DictComp):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _is_dict_literal(node.left) or _is_dict_literal(node.right)
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict"


def test_no_function_environment_is_written_by_hand_in_stacks() -> None:
    offenders = []
    for path in _python_files(REPO / "stacks", REPO / "app.py"):
        tree = _tree(path)
        dict_names = _hand_written_dicts(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                value = keyword.value
                if keyword.arg == "environment" and (
                    _is_dict_literal(value) or (isinstance(value, ast.Name) and value.id in dict_names)
                ):
                    offenders.append(f"{path.relative_to(REPO)}:{keyword.value.lineno} (environment=)")
            is_add = isinstance(node.func, ast.Attribute) and node.func.attr == "add_environment"
            if is_add and node.args and isinstance(node.args[0], ast.Constant):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} (add_environment)")
    assert not offenders, (
        "function environments written by hand (compute them from the settings class):\n  - "
        + "\n  - ".join(offenders)
    )


def test_every_local_plane_module_is_under_400_lines() -> None:
    too_long = []
    for path in _python_files(PACKAGE / "local"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines >= LOCAL_MODULE_MAX_LINES:
            too_long.append(f"{path.relative_to(REPO)} ({lines} lines)")
    assert not too_long, (
        f"local plane modules of {LOCAL_MODULE_MAX_LINES} lines or more:\n  - " + "\n  - ".join(too_long)
    )


def test_only_the_seams_package_imports_moto() -> None:
    seams = PACKAGE / "local" / "seams"
    offenders = sorted(
        {
            f"{imported.at()} ({imported.module})"
            for path in _python_files(*SHIPPED)
            if not path.is_relative_to(seams)
            for imported in _imports(path)
            if imported.module.split(".")[0] == "moto"
        }
    )
    assert not offenders, "moto imported outside headrace/local/seams/:\n  - " + "\n  - ".join(offenders)


def test_the_checker_follows_relative_and_function_level_imports_but_not_type_checking(
    tmp_path: Path,
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from . import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n"
    )
    (package / "c.py").write_text("from .a import f\nfrom ..pkg import b\n")
    known = frozenset({"pkg", "pkg.a", "pkg.b", "pkg.c"})

    def imported(name: str) -> set[str]:
        return {i.module for i in _imports(package / name, known, tmp_path)}

    assert imported("a.py") == {"pkg.b"}
    assert imported("b.py") == {"typing"}
    assert imported("c.py") == {"pkg.a", "pkg.b"}
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
