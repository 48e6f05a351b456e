"""Le & Hua Fig. 2's panel shape from the committed mini-reproduction numbers.

Reads `experiments/results/mini/le2021_retrain.csv` (MLP-7 on Fashion-MNIST,
L1 filter pruning at ratio 0.5, 3 seeds per setting) and draws test accuracy
against retraining epochs, one line per retraining schedule, with
`jaxprune.results.report.figure` (the figure style of every report):

  python experiments/figures/mini_le2021_retrain.py
  -> experiments/figures/mini_le2021_retrain.{png,pdf}
"""

from __future__ import annotations

import csv
import os

from jaxprune.results import report

HERE = os.path.dirname(os.path.abspath(__file__))
CSV = os.path.join(HERE, os.pardir, "results", "mini", "le2021_retrain.csv")


def aggregated_from_csv(path: str) -> list[dict]:
  """The report's aggregated entries for the L1 (PFEC) rows of the table."""
  with open(path) as f:
    rows = [r for r in csv.DictReader(f) if r["pruning.criterion"] == "l1"]
  return [
    {
      "setting": {
        "retrain.num_epochs": int(r["retrain.num_epochs"]),
        "retrain.schedule": r["retrain.schedule"],
      },
      "n": int(r["n"]),
      "mean": {"test/accuracy": float(r["test/accuracy_mean"])},
      "std": {"test/accuracy": float(r["test/accuracy_std"])},
    }
    for r in rows
  ]


def main() -> None:
  out = os.path.join(HERE, "mini_le2021_retrain.png")
  paths = report.figure(
    aggregated_from_csv(CSV),
    "test/accuracy",
    "retrain.num_epochs",
    "retrain.schedule",
    out,
    formats=("png", "pdf"),
  )
  print("\n".join(paths))


if __name__ == "__main__":
  main()
