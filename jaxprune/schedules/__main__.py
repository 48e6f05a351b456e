r"""Draws retraining LR curves for a base schedule (Le & Hua / Zimmer Fig. 1).

  python -m jaxprune.schedules --config=configs/figures/le2021_fig1.py \
      --steps_per_epoch=782 --out=experiments/figures/le2021_fig1.png

The config file exposes `get_config(arg)` returning a ConfigDict with
`base` (training schedule), `retrain_epochs`, `flavor`, optional `pruning`
(stats for the ALLR variants), `title`, and `variants`: a list of dicts with
`name`, `label` and optional overrides of the retraining fields.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import app, flags
from ml_collections import config_flags

from jaxprune.schedules.figure import draw

_CONFIG = config_flags.DEFINE_config_file("config", None, "figure config file[:arg]")
_STEPS = flags.DEFINE_integer("steps_per_epoch", None, "optimizer steps per epoch")
_OUT = flags.DEFINE_string("out", None, "PNG file to write")


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  for flag in (_CONFIG, _STEPS, _OUT):
    if flag.value is None:
      raise app.UsageError(f"--{flag.name} is required")
  draw(_CONFIG.value, _STEPS.value, _OUT.value)


if __name__ == "__main__":
  app.run(main)
