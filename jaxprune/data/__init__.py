"""TFDS-backed input pipelines (see `pipeline.load`)."""

from jaxprune.data.datasets import SPECS, DatasetSpec, get_spec, prepare
from jaxprune.data.fashion_mnist_local import DatasetFileError, FashionMnistLocal
from jaxprune.data.pipeline import (
  Data,
  Preprocess,
  ResidentSplit,
  StreamingSplit,
  epoch_permutation,
  load,
)

__all__ = [
  "SPECS",
  "Data",
  "DatasetFileError",
  "DatasetSpec",
  "FashionMnistLocal",
  "Preprocess",
  "ResidentSplit",
  "StreamingSplit",
  "epoch_permutation",
  "get_spec",
  "load",
  "prepare",
]
