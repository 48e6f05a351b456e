"""Published numbers of the five papers jaxprune reproduces, for "ours vs theirs".

The numbers live in ``third_party/paper_results/<paper>.csv`` (one file per paper,
typed from the plain-text copies of the papers; see the README there). Every file
has the same columns (:data:`FIELDS`), one row per (table cell, metric):

  paper, table, row_id, dataset, model, method, setting, pruning_ratio, sparsity,
  epochs, lr_schedule, metric, mean, std, unit, note

``pruning_ratio``, ``sparsity``, ``epochs``, ``mean`` and ``std`` are numeric
(empty -> ``None``); ratios are fractions in [0, 1]; percentages stay
percentages (``unit == "%"``). Everything else is a string.

Example::

  from jaxprune.results import paper_results

  rows = paper_results.load("wang2021_di")
  cell = paper_results.find(
    rows, table="Table 3", pruning_ratio=0.8, epochs=90, method="L1-norm",
    setting="90 epochs, initial finetune LR 0.01")
  cell[0]["mean"], cell[0]["std"]  # 91.36, 0.02
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PAPERS: tuple[str, ...] = (
  "wang2023",
  "le2021",
  "wang2021_di",
  "liu2019",
  "zimmer2023",
)

FIELDS: tuple[str, ...] = (
  "paper",
  "table",
  "row_id",
  "dataset",
  "model",
  "method",
  "setting",
  "pruning_ratio",
  "sparsity",
  "epochs",
  "lr_schedule",
  "metric",
  "mean",
  "std",
  "unit",
  "note",
)

NUMERIC_FIELDS: tuple[str, ...] = ("pruning_ratio", "sparsity", "epochs", "mean", "std")
RATIO_FIELDS: tuple[str, ...] = ("pruning_ratio", "sparsity")
REQUIRED_FIELDS: tuple[str, ...] = ("paper", "table", "row_id", "metric", "mean")

Row = dict[str, Any]


def data_dir() -> Path:
  """Directory holding the CSV files (``<repo>/third_party/paper_results``)."""
  return Path(__file__).resolve().parents[2] / "third_party" / "paper_results"


def csv_path(paper: str) -> Path:
  """Path of one paper's CSV file; raises ValueError for an unknown paper id."""
  if paper not in PAPERS:
    raise ValueError(f"unknown paper {paper!r}; expected one of {', '.join(PAPERS)}")
  return data_dir() / f"{paper}.csv"


def _to_float(value: str, field: str, where: str) -> float | None:
  value = value.strip()
  if not value:
    return None
  try:
    number = float(value)
  except ValueError:
    raise ValueError(f"{where}: field {field!r} is not a number: {value!r}") from None
  if not math.isfinite(number):
    raise ValueError(f"{where}: field {field!r} is not finite: {value!r}")
  return number


def _parse_row(raw: dict[str, str | None], paper: str, where: str) -> Row:
  if None in raw or any(raw.get(f) is None for f in FIELDS):
    raise ValueError(f"{where}: expected {len(FIELDS)} fields")
  row: Row = {f: raw[f] for f in FIELDS}
  for field in NUMERIC_FIELDS:
    row[field] = _to_float(raw[field] or "", field, where)
  for field in REQUIRED_FIELDS:
    if row[field] is None or row[field] == "":
      raise ValueError(f"{where}: required field {field!r} is empty")
  if row["paper"] != paper:
    raise ValueError(f"{where}: paper is {row['paper']!r}, expected {paper!r}")
  for field in RATIO_FIELDS:
    value = row[field]
    if value is not None and not 0.0 <= value <= 1.0:
      raise ValueError(f"{where}: {field} {value} is outside [0, 1]")
  return row


def load_file(path: str | Path, paper: str) -> list[Row]:
  """Reads and validates one CSV file; errors name the file and line."""
  path = Path(path)
  rows: list[Row] = []
  seen: dict[str, int] = {}
  with path.open(newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    if tuple(reader.fieldnames or ()) != FIELDS:
      raise ValueError(
        f"{path}:1: header {reader.fieldnames} does not match the schema {list(FIELDS)}"
      )
    for raw in reader:
      where = f"{path}:{reader.line_num}"
      row = _parse_row(raw, paper, where)
      if row["row_id"] in seen:
        raise ValueError(
          f"{where}: duplicate row_id {row['row_id']!r} (first on line {seen[row['row_id']]})"
        )
      seen[row["row_id"]] = reader.line_num
      rows.append(row)
  return rows


def load(paper: str | None = None) -> list[Row]:
  """Rows of one paper (an id in :data:`PAPERS`), or of all papers when None."""
  papers: Iterable[str] = PAPERS if paper is None else (paper,)
  rows: list[Row] = []
  for name in papers:
    rows.extend(load_file(csv_path(name), name))
  return rows


def _matches(value: Any, wanted: Any) -> bool:
  if callable(wanted):
    return bool(wanted(value))
  if isinstance(wanted, (int, float)) and not isinstance(wanted, bool):
    return value is not None and math.isclose(value, wanted, rel_tol=0.0, abs_tol=1e-9)
  return value == wanted


def find(rows: Iterable[Row], **criteria: Any) -> list[Row]:
  """Rows whose fields equal every criterion.

  Numbers compare with a 1e-9 tolerance, ``None`` matches an empty field, and a
  callable criterion is used as a predicate, e.g. ``setting=lambda s: "LR 0.01" in s``.
  """
  unknown = set(criteria) - set(FIELDS)
  if unknown:
    raise ValueError(f"unknown field(s) {sorted(unknown)}; fields are {list(FIELDS)}")
  return [row for row in rows if all(_matches(row[k], v) for k, v in criteria.items())]


def value(rows: Iterable[Row], **criteria: Any) -> tuple[float, float | None]:
  """``(mean, std)`` of the single row matching ``criteria``; ValueError otherwise."""
  hits = find(rows, **criteria)
  if len(hits) != 1:
    ids = [row["row_id"] for row in hits[:5]]
    raise ValueError(
      f"expected exactly one row for {criteria}, found {len(hits)}: {ids}"
    )
  return hits[0]["mean"], hits[0]["std"]


def cell(cell_criteria: Mapping[str, Any], cache: dict[str, list[Row]]) -> Row:
  """The one published row a paper config's ``paper_cell`` names (criteria
  with ``paper``, the CSV); ``cache`` keeps each paper's CSV read once."""
  criteria = dict(cell_criteria)
  paper = criteria.pop("paper")
  if paper not in cache:
    cache[paper] = load(paper)
  found = find(cache[paper], **criteria)
  if len(found) != 1:
    raise ValueError(
      f"paper_cell -> {cell_criteria} matches {len(found)} published rows; "
      "it must match exactly one"
    )
  return found[0]
