"""The plain training protocol: one `train_and_evaluate` run."""

from __future__ import annotations

from typing import Any

import ml_collections

from jaxprune.protocols.registry import protocol
from jaxprune.train import train_and_evaluate


@protocol("train")
def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  return train_and_evaluate(config, workdir)
