"""Which tests are slow: `make test` leaves them out, `make test-slow` runs them.

`slow_tests.txt` beside this file lists them by pytest node id, one per line:
the tests that took at least `THRESHOLD_S` seconds in a measured run of the
whole suite on 2 cores (`.ci/run` with `PYTEST_ADDOPTS=--junitxml=FILE`).
Regenerate it after such a run:

    python tests/tiers.py FILE        # rewrites tests/slow_tests.txt

A listed test that is renamed (or whose parameters change) simply falls back
into the fast tier, where it still runs; tests may also carry
``@pytest.mark.slow`` themselves.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
LIST = os.path.join(HERE, "slow_tests.txt")
THRESHOLD_S = 10.0


def slow_node_ids() -> set[str]:
  """The node ids in `slow_tests.txt` (comments and blank lines skipped)."""
  if not os.path.exists(LIST):
    return set()
  with open(LIST) as f:
    return {line.strip() for line in f if line.strip() and not line.startswith("#")}


def _node_id(classname: str, name: str) -> str:
  # junit's classname is the dotted module (and class, if any).
  parts = classname.split(".")
  for cut in range(len(parts), 0, -1):
    path = os.path.join(os.path.dirname(HERE), *parts[:cut]) + ".py"
    if os.path.exists(path):
      rel = "/".join(parts[:cut]) + ".py"
      return "::".join([rel, *parts[cut:], name])
  raise ValueError(f"no test module for junit classname {classname!r}")


def from_junit(path: str, threshold_s: float = THRESHOLD_S) -> list[tuple[float, str]]:
  """(seconds, node id) of every test in a junit XML file at or above the
  threshold, slowest first."""
  slow = [
    (float(case.get("time", 0.0)), _node_id(case.get("classname"), case.get("name")))
    for case in ET.parse(path).iter("testcase")
    if case.get("classname") and float(case.get("time", 0.0)) >= threshold_s
  ]
  return sorted(slow, reverse=True)


def main(argv: list[str]) -> int:
  if len(argv) != 1:
    print("usage: python tests/tiers.py JUNIT_XML", file=sys.stderr)
    return 2
  slow = from_junit(argv[0])
  with open(LIST, "w") as f:
    f.write(
      f"# Tests that took >= {THRESHOLD_S:g} s on 2 cores (seconds as measured);\n"
      "# written by tests/tiers.py from a junit file of the whole suite.\n"
    )
    for seconds, node in slow:
      f.write(f"# {seconds:.0f} s\n{node}\n")
  print(f"{len(slow)} slow tests, {sum(s for s, _ in slow):.0f} s -> {LIST}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
