"""The import graph of `jaxprune/` (issue 14.1): layered, without a cycle.

Every module is parsed with `ast`; an edge is an import statement anywhere in
it (module level, inside functions, under `if`). `from P import X` points at
the submodule `P.X` when it exists, else at `P`. Importing `P.X` also runs
`P/__init__.py` first; that implicit parent edge is left out, since a package
that imports its own submodules would otherwise always be a "cycle".
"""

from __future__ import annotations

import ast
import os
import pathlib
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What may run an experiment; the analysis toolkit must stay below all of it.
ABOVE_ANALYSIS = ("jaxprune.train", "jaxprune.protocols", "jaxprune.results")


def modules(root: str, package: str) -> dict[str, str]:
  """Dotted module name -> file, for every .py file of `package` under `root`."""
  out = {}
  for folder, _, files in os.walk(os.path.join(root, package)):
    for name in files:
      if name.endswith(".py"):
        rel = os.path.relpath(os.path.join(folder, name[:-3]), root)
        dotted = rel.replace(os.sep, ".").removesuffix(".__init__")
        out[dotted] = os.path.join(folder, name)
  return out


def imports(path: str, name: str, known: dict[str, str]) -> list[tuple[str, int, bool]]:
  """(target module, line, inside a function) for each import of a known module."""
  tree = ast.parse(pathlib.Path(path).read_text())
  package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
  in_function = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
      in_function.update(id(n) for n in ast.walk(node) if n is not node)
  out = []
  for node in ast.walk(tree):
    targets = []
    if isinstance(node, ast.Import):
      targets = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:  # Relative: resolve against this module's package.
        parts = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(parts + ([base] if base else []))
      targets = [
        f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
      ]
    for target in targets:
      while target and target not in known:  # `import P.X.attr` -> P.X
        target = target.rpartition(".")[0]
      if target and target != name:
        out.append((target, node.lineno, id(node) in in_function))
  return out


def graph(root: str, package: str) -> dict[str, list[tuple[str, int, bool]]]:
  known = modules(root, package)
  return {name: imports(path, name, known) for name, path in known.items()}


def find_cycle(edges: dict[str, list[tuple[str, int, bool]]]) -> list[str] | None:
  """One import cycle as [a, b, ..., a], or None (depth-first search)."""
  state: dict[str, int] = {}  # 1: on the current path, 2: finished.
  path: list[str] = []

  def visit(node: str) -> list[str] | None:
    state[node] = 1
    path.append(node)
    for target, _, _ in edges.get(node, ()):
      if state.get(target) == 1:
        return [*path[path.index(target) :], target]
      if target not in state and (cycle := visit(target)):
        return cycle
    path.pop()
    state[node] = 2
    return None

  for node in sorted(edges):
    if node not in state and (cycle := visit(node)):
      return cycle
  return None


def reachable(edges: dict[str, list[tuple[str, int, bool]]], start: str) -> set[str]:
  seen, todo = set(), [start]
  while todo:
    for target, _, _ in edges.get(todo.pop(), ()):
      if target not in seen:
        seen.add(target)
        todo.append(target)
  return seen


@pytest.fixture(scope="module")
def jaxprune_graph():
  return graph(ROOT, "jaxprune")


def test_the_walk_sees_every_module_and_function_level_imports(jaxprune_graph):
  assert {"jaxprune.train.loop", "jaxprune.results.sweeps"} <= set(jaxprune_graph)
  # `from jaxprune.protocols import common` points at the submodule, and a
  # function-level import is an edge too (sweeps imports the protocols lazily).
  assert ("jaxprune.protocols.common", True) in {
    (t, f) for t, _, f in jaxprune_graph["jaxprune.results.sweeps"]
  }


def test_no_import_cycle(jaxprune_graph):
  cycle = find_cycle(jaxprune_graph)
  assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_analysis_is_a_leaf_below_train_protocols_and_results(jaxprune_graph):
  for name in jaxprune_graph:
    if name == "jaxprune.analysis" or name.startswith("jaxprune.analysis."):
      above = [
        m for m in reachable(jaxprune_graph, name) if m.startswith(ABOVE_ANALYSIS)
      ]
      assert not above, f"{name} reaches {sorted(above)}"


def test_config_schema_imports_nothing_above_it(jaxprune_graph):
  # The pruning engine owns its section's defaults; nothing else is imported.
  direct = {t for t, _, _ in jaxprune_graph["jaxprune.config_utils"]}
  # config_args (the argument parser) is a leaf too.
  # The pruning engine (and its during-training methods) own their sections.
  assert direct <= {
    "jaxprune.config_schema",
    "jaxprune.pruning",
    "jaxprune.pruning.during",
    "jaxprune.config_args",
  }, direct
  assert not jaxprune_graph["jaxprune.config_args"]
  assert not jaxprune_graph["jaxprune.config_schema"]
  below = reachable(jaxprune_graph, "jaxprune.config_utils")
  assert not [m for m in below if m.startswith((*ABOVE_ANALYSIS, "jaxprune.data"))]


def test_function_level_imports_say_why(jaxprune_graph):
  files = modules(ROOT, "jaxprune")
  silent = []
  for name, edges in jaxprune_graph.items():
    lines = pathlib.Path(files[name]).read_text().splitlines()
    for _, line, in_function in edges:
      # The comment may head a block of consecutive imports.
      first = line - 1
      while lines[first - 1].lstrip().startswith(("from ", "import ")):
        first -= 1
      if in_function and "#" not in "".join(lines[first - 1 : line]):
        silent.append(f"{files[name]}:{line}")
  assert not silent, "function-level imports without a comment saying why: " + str(
    silent
  )


def _package(tmp_path, sources: dict[str, str]) -> dict:
  for rel, text in sources.items():
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
  return graph(str(tmp_path), "pkg")


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
  edges = _package(
    tmp_path,
    {
      "pkg/__init__.py": "",
      "pkg/a.py": "from pkg import b\n",
      "pkg/b.py": "def f():\n  from pkg.sub import c\n",
      "pkg/sub/__init__.py": "from pkg.sub import c\n",  # Not a cycle by itself.
      "pkg/sub/c.py": "from .. import a\n",
    },
  )
  assert find_cycle(edges) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]
  assert ("pkg.sub.c", 2, True) in edges["pkg.b"]


def test_a_layered_package_has_no_cycle(tmp_path):
  edges = _package(
    tmp_path,
    {
      "pkg/__init__.py": "from pkg import a, b\n",
      "pkg/a.py": "import pkg.b\nfrom pkg.b import VALUE\n",
      "pkg/b.py": "import os\nVALUE = 1\n",
    },
  )
  assert find_cycle(edges) is None
  assert reachable(edges, "pkg.a") == {"pkg.b"}
