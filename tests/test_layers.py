"""The layers point one way: the import graph of ``jobstore/`` has no cycles and no upward edges.

Every module under ``jobstore/`` is parsed with :mod:`ast` (nothing is imported), and *every*
import counts: module-level ones, those inside functions and methods (a lazy import is still a
dependency: it just moves the cost, and the cycle, to the first call), those under
``if TYPE_CHECKING:``, and two spellings of a dynamic import: a literal
``importlib.import_module("jobstore.x")`` and a ``"jobstore.x.y:Name"`` spec string (as in the URL
scheme registry), so a registry cannot smuggle an edge past the check.

``TYPE_CHECKING`` imports count for the layer rules *and* for cycle detection. They never run, so
a cycle made only of them cannot fail at import time, but it is still two modules that each know
the other, which is what "the layers point one way" forbids; none exists, so there is nothing to
exempt.

The graph's nodes are modules. ``from jobstore.blobs import gcs`` is an edge to
``jobstore.blobs.gcs`` (a submodule), ``from jobstore.blobs import BlobInfo`` one to
``jobstore.blobs``. The implicit import of parent packages (importing ``jobstore.catalog.engine``
runs ``jobstore/catalog/__init__.py`` first) is not an edge: otherwise every package whose
``__init__`` re-exports a submodule would be "in a cycle" with all of its submodules.

Rules
=====

A *component* is ``jobstore.<first name>``: a subpackage (``jobstore.catalog``) or a top-level
module (``jobstore.store``). Components are placed in layers, top to bottom (``LAYERS``)::

    jobstore.__main__                                  the ``python -m jobstore`` entry point
    jobstore.cli                                       the commands
    jobstore.demo  jobstore.maintenance  jobstore.toil clients of the store
    jobstore.store                                     the concrete job store
    jobstore.blob_lifecycle  jobstore.transfer         when blobs go; bytes in and out
    jobstore.abstract                                  the interface and the shared logic
    jobstore.catalog  jobstore.blobs  jobstore.urls    the backends (siblings)
    jobstore.providers                                 what blobs and urls share per provider
    jobstore.locator  jobstore.config  jobstore.job    names, settings, job descriptions
    jobstore.encryption                                customer keys (Config reads them)
    jobstore.errors                                    the exception hierarchy
    jobstore.redact                                    masking secrets in messages

1. **No cycles** (:func:`test_no_import_cycles`), within a component as well as across them.
2. **Downward only** (rule ``upward``): a module imports modules of its own component freely and
   otherwise only of components in *strictly lower* layers. Components sharing a layer are
   siblings that must not import one another (rule ``sibling``): ``catalog``, ``blobs`` and
   ``urls`` know nothing of each other (what ``blobs`` and ``urls`` both need is in
   ``jobstore.providers``, below them), nor do ``demo``, ``maintenance`` and ``toil``.
3. **The facade** (``jobstore/__init__.py``) may import anything and nothing may import it
   (rule ``facade``): it sits above every layer. It is also where ``jobstore.store`` registers its
   factory with ``jobstore.abstract``, so that ``AbstractJobStore.createJobStore`` works while
   ``abstract`` never imports ``store``.
4. **The backends are the store's business** (rule ``backend``): components above
   ``jobstore.store`` reach ``catalog``, ``blobs``, ``urls`` and ``providers`` only through
   ``jobstore.store`` (or ``jobstore.abstract``), except through a documented maintenance
   interface (``MAINTENANCE_INTERFACES``: ``jobstore.catalog.reports``, which docs/MAINTENANCE.md
   names as where all the maintenance commands' SQL is).
5. **Every module has a layer** (rule ``unplaced``): a new component must be added to ``LAYERS``
   on purpose.

Where the placement differs from the first sketch of issue 19 (cli, demo and ``__main__`` in one
top layer; encryption, errors and redact beside their users), it follows the code: ``__main__``
runs the CLI, ``jobstore demo`` (a command) runs ``jobstore.demo`` (a client of the store like the
maintenance functions), ``Config`` reads customer keys through ``jobstore.encryption``, and
``jobstore.errors`` masks URLs with ``jobstore.redact``. Siblings never import one another, so
each of those edges needed its own layer.

``KNOWN_VIOLATIONS`` lists the edges that break these rules today and cannot be fixed here (their
modules are being rewritten elsewhere). It may only shrink: a new violation fails the test, and so
does an entry that no longer occurs, so the list stays exactly the debt that is left.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "jobstore"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE

#: Components, top layer first; see the module docstring.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("jobstore.__main__",),
    ("jobstore.cli",),
    ("jobstore.demo", "jobstore.maintenance", "jobstore.toil"),
    ("jobstore.store",),
    ("jobstore.blob_lifecycle", "jobstore.lease", "jobstore.transfer"),
    ("jobstore.abstract", "jobstore.placement"),
    ("jobstore.catalog", "jobstore.blobs", "jobstore.urls"),
    ("jobstore.providers",),
    ("jobstore.locator", "jobstore.config", "jobstore.job"),
    ("jobstore.encryption",),
    ("jobstore.errors",),
    ("jobstore.redact",),
)
#: The public facade: above every layer.
FACADE = PACKAGE
#: Components that only the store (and what lies between it and them) may use directly.
BACKENDS = frozenset({"jobstore.catalog", "jobstore.blobs", "jobstore.urls", "jobstore.providers"})
#: The component every client reaches the backends through.
STORE = "jobstore.store"
#: Documented interfaces a component above the store may use instead of the store.
MAINTENANCE_INTERFACES: Mapping[str, frozenset[str]] = {
    # docs/MAINTENANCE.md, "The maintenance interface": rows through the store's
    # MaintenanceCatalog, blobs through the store's BlobStore and the few names beside it.
    "jobstore.maintenance": frozenset({"jobstore.catalog.maintenance", "jobstore.blobs.maintenance"}),
    # docs/MAINTENANCE.md, "Schema migrations": `jobstore db` administers a catalog by URL.
    "jobstore.cli": frozenset({"jobstore.catalog.admin"}),
}

#: (rule, importer, imported) of every edge that breaks a rule today: none. MAY ONLY SHRINK: a new
#: violation is fixed, never listed (the test fails while a listed edge no longer occurs).
KNOWN_VIOLATIONS: frozenset[tuple[str, str, str]] = frozenset()

RULES = {
    "unplaced": "is in no layer: add its component to LAYERS",
    "facade": "imports the facade (jobstore/__init__.py), which sits above every layer",
    "upward": "imports a component of a higher layer",
    "sibling": "imports a sibling component of its own layer",
    "backend": "reaches a backend directly instead of through jobstore.store (or a documented interface)",
}

#: ``"jobstore.urls.local:FileHandler"``: a lazy import by name (the URL scheme registry's form).
_SPEC = re.compile(rf"^({PACKAGE}(?:\.\w+)+):\w+(?:\.\w+)*$")


# --- collecting the graph ---------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    where: str  # path:line
    how: str  # "module level", "in a function", "under TYPE_CHECKING", "by name"

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported} ({self.where}, {self.how})"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module under ``root`` (a package directory)."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _ImportVisitor(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, modules: Iterable[str], where: str) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.modules = set(modules)
        self.where = where
        self.context: list[str] = []
        self.found: list[Edge] = []

    def _add(self, target: str, node: ast.AST) -> None:
        if target == PACKAGE or target.startswith(PACKAGE + "."):
            if target != self.module:
                how = self.context[-1] if self.context else "module level"
                self.found.append(Edge(self.module, target, f"{self.where}:{getattr(node, 'lineno', 0)}", how))

    def _resolve(self, target: str) -> str:
        """``target`` itself if it is a module, else the longest module prefix of it."""
        candidate = target
        while candidate and candidate not in self.modules and "." in candidate:
            candidate = candidate.rpartition(".")[0]
        return candidate if candidate in self.modules else target

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(self._resolve(alias.name), node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            source = ".".join([*base, node.module] if node.module else base)
        else:
            source = node.module or ""
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            self._add(submodule if submodule in self.modules else self._resolve(source), node)

    def _within(self, how: str, body: Iterable[ast.AST]) -> None:
        self.context.append(how)
        for child in body:
            self.visit(child)
        self.context.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self._within("in a function", ast.iter_child_nodes(node))

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self._within("under TYPE_CHECKING", node.body)
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and (match := _SPEC.match(node.value)):
            self.context.append("by name")
            self._add(self._resolve(match[1]), node)
            self.context.pop()

    def visit_Call(self, node: ast.Call) -> None:
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name in ("import_module", "__import__") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                self.context.append("by name")
                self._add(self._resolve(first.value), node)
                self.context.pop()
        self.generic_visit(node)


def collect_edges(root: Path) -> tuple[set[str], list[Edge]]:
    """The modules under ``root`` and every import between them (see the module docstring)."""
    modules = module_names(root)
    edges: list[Edge] = []
    for name, path in modules.items():
        visitor = _ImportVisitor(name, path.name == "__init__.py", modules, str(path.relative_to(root.parent)))
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        edges += visitor.found
    return set(modules), edges


# --- the checks (pure functions of a graph, so the self-tests can feed them synthetic ones) ----


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component of more than one module
    (or a module importing itself), found with Tarjan's algorithm (iteratively)."""
    successors = {node: sorted(set(targets)) for node, targets in graph.items()}
    for targets in list(successors.values()):
        for target in targets:
            successors.setdefault(target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(successors):
        if start in index:
            continue
        work = [(start, iter(successors[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in successors[node]:
                    components.append(component)
    return [_a_cycle_through(sorted(component), successors) for component in components]


def _a_cycle_through(component: list[str], successors: Mapping[str, list[str]]) -> list[str]:
    """A shortest cycle from the component's first module back to itself, inside the component."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in successors[node]:
            if child == start:
                return [*paths[node], start]
            if child in members and child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError(f"no cycle through {start} in {component}")  # not a real component


def component_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def layer_violations(
    edges: Iterable[Edge],
    layers: tuple[tuple[str, ...], ...] = LAYERS,
    *,
    facade: str = FACADE,
    backends: frozenset[str] = BACKENDS,
    store: str = STORE,
    interfaces: Mapping[str, frozenset[str]] = MAINTENANCE_INTERFACES,
) -> dict[tuple[str, str, str], list[Edge]]:
    """(rule, importer, imported) -> the edges breaking that rule; see the module docstring."""
    depth = {component: level for level, group in enumerate(layers) for component in group}
    store_depth = depth[store]
    found: dict[tuple[str, str, str], list[Edge]] = {}

    def report(rule: str, edge: Edge) -> None:
        found.setdefault((rule, edge.importer, edge.imported), []).append(edge)

    for edge in edges:
        if edge.importer == facade:
            continue
        if edge.imported == facade:
            report("facade", edge)
            continue
        source, target = component_of(edge.importer), component_of(edge.imported)
        if source not in depth or target not in depth:
            report("unplaced", edge)
            continue
        if source == target:
            continue
        if depth[target] < depth[source]:
            report("upward", edge)
        elif depth[target] == depth[source]:
            report("sibling", edge)
        elif (
            depth[source] < store_depth
            and target in backends
            and edge.imported not in interfaces.get(source, frozenset())
        ):
            report("backend", edge)
    return found


def unplaced_modules(modules: Iterable[str], layers: tuple[tuple[str, ...], ...] = LAYERS) -> list[str]:
    placed = {component for group in layers for component in group}
    return sorted(m for m in modules if m != FACADE and component_of(m) not in placed)


def reconcile(found: Mapping[tuple[str, str, str], list[Edge]], known: frozenset[tuple[str, str, str]]) -> list[str]:
    """What is wrong with ``found`` given the known debt: new violations, and stale known ones."""
    problems = []
    for key in sorted(set(found) - known):
        rule = key[0]
        lines = "\n      ".join(str(edge) for edge in found[key])
        problems.append(f"NEW {key}: {key[1]} {RULES[rule]}:\n      {lines}")
    for key in sorted(known - set(found)):
        problems.append(f"STALE {key}: no longer occurs; delete it from KNOWN_VIOLATIONS (it may only shrink)")
    return problems


def graph_of(edges: Iterable[Edge]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.imported)
    return graph


# --- the package ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def package() -> tuple[set[str], list[Edge]]:
    return collect_edges(PACKAGE_DIR)


def test_no_import_cycles(package: tuple[set[str], list[Edge]]) -> None:
    _, edges = package
    cycles = find_cycles(graph_of(edges))
    described = []
    for cycle in cycles:
        steps = [
            next(str(e) for e in edges if e.importer == a and e.imported == b) for a, b in itertools.pairwise(cycle)
        ]
        described.append(" -> ".join(cycle) + "\n    " + "\n    ".join(steps))
    assert not cycles, "import cycles in jobstore/:\n  " + "\n  ".join(described)


def test_every_module_has_a_layer(package: tuple[set[str], list[Edge]]) -> None:
    modules, _ = package
    assert not unplaced_modules(modules), (
        f"modules in no layer (add their component to LAYERS): {unplaced_modules(modules)}"
    )


def test_layers_point_one_way(package: tuple[set[str], list[Edge]]) -> None:
    _, edges = package
    problems = reconcile(layer_violations(edges), KNOWN_VIOLATIONS)
    assert not problems, "layer rules (tests/test_layers.py docstring):\n  " + "\n  ".join(problems)


def test_known_violations_are_only_backend_debt() -> None:
    """The debt is the rework's (rule 4); the rules about direction have no exceptions left."""
    assert {rule for rule, _, _ in KNOWN_VIOLATIONS} <= {"backend"}
    assert all(
        component_of(importer) in ("jobstore.cli", "jobstore.maintenance") for _, importer, _ in KNOWN_VIOLATIONS
    )


def test_the_cycles_of_issue_19_are_gone(package: tuple[set[str], list[Edge]]) -> None:
    """abstract <-> store and catalog.location <-> catalog.engine, and blobs <-> urls."""
    _, edges = package
    pairs = {(component_of(e.importer), component_of(e.imported)) for e in edges}
    modules = {(e.importer, e.imported) for e in edges}
    assert ("jobstore.abstract", "jobstore.store") not in pairs
    assert ("jobstore.catalog.location", "jobstore.catalog.engine") not in modules
    assert ("jobstore.blobs", "jobstore.urls") not in pairs
    assert ("jobstore.urls", "jobstore.blobs") not in pairs


def test_create_job_store_still_works_through_the_abstract_class(tmp_path: Path) -> None:
    from jobstore import AbstractJobStore, FileJobStore

    assert type(AbstractJobStore.createJobStore(f"file:{tmp_path}/a")) is FileJobStore


# --- the checker catches what it should (synthetic graphs) --------------------------------------

_SYNTHETIC_LAYERS = (("pkg.top",), ("pkg.mid_a", "pkg.mid_b"), ("pkg.store",), ("pkg.backend",), ("pkg.bottom",))


def _edge(importer: str, imported: str) -> Edge:
    return Edge(importer, imported, "synthetic.py:1", "module level")


def test_self_test_a_cycle_is_found_and_reported() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    cycles = find_cycles(graph)
    assert sorted(cycles) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "d": {"a", "c"}}) == []


def test_self_test_rule_violations_are_found() -> None:
    def rules(*pairs: tuple[str, str]) -> set[tuple[str, str, str]]:
        edges = [_edge(f"pkg.{a}" if a != "pkg" else a, f"pkg.{b}" if b != "pkg" else b) for a, b in pairs]
        found = layer_violations(
            edges,
            _SYNTHETIC_LAYERS,
            facade="pkg",
            backends=frozenset({"pkg.backend"}),
            store="pkg.store",
            interfaces={"pkg.mid_b": frozenset({"pkg.backend.reports"})},
        )
        return {(rule, a.removeprefix("pkg."), b.removeprefix("pkg.")) for rule, a, b in found}

    # Down, within a component, and the facade importing anything: fine.
    assert rules(("top.x", "mid_a.y"), ("mid_a.y", "store"), ("store", "backend.q")) == set()
    assert rules(("backend.q", "backend.r"), ("backend.r", "bottom"), ("pkg", "top.x")) == set()
    # Up, sideways, into the facade, into a backend around the store, unplaced.
    assert rules(("bottom", "backend.q")) == {("upward", "bottom", "backend.q")}
    assert rules(("mid_a.y", "mid_b")) == {("sibling", "mid_a.y", "mid_b")}
    assert rules(("store", "pkg")) == {("facade", "store", "pkg")}
    assert rules(("mid_a.y", "backend.q")) == {("backend", "mid_a.y", "backend.q")}
    assert rules(("mid_b.z", "backend.reports")) == set()  # its documented interface
    assert rules(("mid_a.y", "backend.reports")) == {("backend", "mid_a.y", "backend.reports")}
    assert rules(("elsewhere", "bottom")) == {("unplaced", "elsewhere", "bottom")}


def test_self_test_known_violations_must_match_exactly() -> None:
    found = {("upward", "a", "b"): [_edge("a", "b")]}
    assert reconcile(found, frozenset({("upward", "a", "b")})) == []
    new = reconcile(found, frozenset())
    assert len(new) == 1 and new[0].startswith("NEW ('upward', 'a', 'b')") and "synthetic.py:1" in new[0]
    stale = reconcile({}, frozenset({("upward", "a", "b")}))
    assert len(stale) == 1 and stale[0].startswith("STALE")


def test_self_test_hidden_imports_are_collected(tmp_path: Path) -> None:
    """Imports in functions, under TYPE_CHECKING, relative, and by name all make edges."""
    root = tmp_path / PACKAGE
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "low.py").write_text("VALUE = 1\n")
    (root / "sub" / "__init__.py").write_text("from . import a\n")
    (root / "sub" / "a.py").write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from jobstore.sub.b import B\n"
        "else:\n"
        "    import jobstore.low\n"
        "def f():\n"
        "    from ..low import VALUE\n"
        "    return VALUE\n"
        "HANDLERS = {'x': 'jobstore.sub.b:Handler'}\n"
    )
    (root / "sub" / "b.py").write_text(
        "import importlib\nclass B:\n    def m(self):\n        return importlib.import_module('jobstore.sub.a')\n"
    )
    modules, edges = collect_edges(root)
    assert modules == {"jobstore", "jobstore.low", "jobstore.sub", "jobstore.sub.a", "jobstore.sub.b"}
    found = {(e.importer, e.imported, e.how) for e in edges}
    assert found == {
        ("jobstore.sub", "jobstore.sub.a", "module level"),
        ("jobstore.sub.a", "jobstore.sub.b", "under TYPE_CHECKING"),
        ("jobstore.sub.a", "jobstore.low", "module level"),
        ("jobstore.sub.a", "jobstore.low", "in a function"),
        ("jobstore.sub.a", "jobstore.sub.b", "by name"),
        ("jobstore.sub.b", "jobstore.sub.a", "by name"),
    }
    assert find_cycles(graph_of(edges)) == [["jobstore.sub.a", "jobstore.sub.b", "jobstore.sub.a"]]
