"""The slow-test list: read from junit durations, and every entry real."""

from __future__ import annotations

import os

import tiers

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.test_tiers" name="test_a[x-1]" time="30.5"/>
<testcase classname="tests.test_tiers" name="test_b" time="3.0"/>
<testcase classname="tests.test_tiers.TestGroup" name="test_c" time="12.0"/>
<testcase classname="" name="collection" time="99.0"/>
</testsuite></testsuites>
"""


def test_from_junit_keeps_tests_at_or_above_the_threshold_as_node_ids(tmp_path):
  path = tmp_path / "junit.xml"
  path.write_text(JUNIT)
  assert tiers.from_junit(str(path), threshold_s=12.0) == [
    (30.5, "tests/test_tiers.py::test_a[x-1]"),
    (12.0, "tests/test_tiers.py::TestGroup::test_c"),
  ]


def test_every_listed_slow_test_names_an_existing_test_function():
  root = os.path.dirname(tiers.HERE)
  slow = tiers.slow_node_ids()
  assert len(slow) > 10
  for node in slow:
    path, *names = node.split("::")
    with open(os.path.join(root, path)) as f:
      source = f.read()
    function = names[-1].split("[")[0]
    assert f"def {function}(" in source, node
