"""Every dependency pyproject.toml declares is used (imported, or a named need)."""

import ast
import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Distribution name -> module name where they differ.
MODULE = {
  "orbax-checkpoint": "orbax",
  "tensorflow-datasets": "tensorflow_datasets",
  "ml-collections": "ml_collections",
  "absl-py": "absl",
  "pillow": "PIL",
}
# Declared without being imported by jaxprune, and why.
NOT_IMPORTED = {
  "array-record": "tensorflow-datasets reads its array_record files with it",
  "importlib-resources": "etils (tensorflow-datasets' paths) imports it",
  "pytest-xdist": "the -n option of the test suite",
  "ruff": "format and lint (pyproject [tool.ruff])",
}


def _declared() -> list[str]:
  meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
  specs = list(meta["dependencies"])
  for extra in meta["optional-dependencies"].values():
    specs += extra
  return [re.match(r"[A-Za-z0-9_.-]+", s).group(0).lower() for s in specs]


def _imported() -> set[str]:
  names = set()
  for folder in ("jaxprune", "configs", "tests"):
    for path in (ROOT / folder).rglob("*.py"):
      for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
          names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
          names.add(node.module.split(".")[0])
  return names


def test_every_declared_dependency_is_used():
  imported = _imported()
  unused = [
    d
    for d in _declared()
    if d not in NOT_IMPORTED and MODULE.get(d, d.replace("-", "_")) not in imported
  ]
  assert not unused, f"declared in pyproject.toml but never imported: {unused}"
