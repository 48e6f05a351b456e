"""ImageNet100: 100 classes of imagenet2012 from a class-list file, relabelled.

Run on `tfds.testing.mock_data` (random imagenet2012 examples with the real
class names); the expected labels and counts are computed here from the raw
mock records, independently of `class_subset`.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxprune import config_utils
from jaxprune.data import class_subset, datasets, pipeline

NUM_MOCK = 48


def _write(path, names) -> str:
  path.write_text("# a comment line\n" + "\n".join(names) + "\n")
  return str(path)


@pytest.fixture(scope="module")
def mock_subset(tmp_path_factory):
  """(config.data, {split: raw labels}, class list) over mock imagenet2012: the
  list holds, in a shuffled order, half of the classes present in the mock
  train split and 100 - that many absent ones."""
  tmp = tmp_path_factory.mktemp("in100")
  with tfds.testing.mock_data(num_examples=NUM_MOCK):
    raw = {
      split: datasets.open_split("imagenet2012", split, str(tmp))
      for split in ("train", "validation")
    }
    names = class_subset.label_names(raw["train"])
    labels = {s: np.asarray([int(r["label"]) for r in src]) for s, src in raw.items()}
  present = list(dict.fromkeys(labels["train"].tolist()))
  absent = [i for i in range(len(names)) if i not in set(present)]
  chosen = present[: len(present) // 2] + absent[: 100 - len(present) // 2]
  order = [names[i] for i in np.random.default_rng(0).permutation(chosen)]
  cfg = config_utils.base_config().data
  cfg.name = "imagenet100"
  cfg.data_dir = str(tmp)
  cfg.image_size = (16, 16)
  cfg.class_list = _write(tmp / "classes.txt", order)
  return cfg, names, labels, order


def _expected(raw_labels, names, order):
  """(kept positions, new labels) by a plain loop over the raw labels."""
  kept = [i for i, label in enumerate(raw_labels) if names[label] in order]
  return kept, [order.index(names[raw_labels[i]]) for i in kept]


def test_imagenet100_keeps_listed_classes_relabelled_in_file_order(mock_subset):
  cfg, names, labels, order = mock_subset
  with tfds.testing.mock_data(num_examples=NUM_MOCK):
    data = pipeline.load(cfg)
    for split, key in (("train", data.train), ("validation", data.evals["test"])):
      kept, new = _expected(labels[split], names, order)
      assert 0 < len(kept) < NUM_MOCK  # Some dropped, some kept.
      source = key.source
      assert key.num_examples == len(source) == len(kept)  # Counted, not assumed.
      assert (source.total, source.dropped) == (NUM_MOCK, NUM_MOCK - len(kept))
      assert [source[i]["label"] for i in range(len(kept))] == new
    # The streamed eval batches carry the new labels, in the split's order.
    kept, new = _expected(labels["validation"], names, order)
    batches = list(data.evals["test"].batches(8, train=False, seed=0, epoch=0))
    got = np.concatenate([b[1][b[2] > 0] for b in batches]).tolist()
    assert got == new and batches[0][0].shape[1:] == (16, 16, 3)
  assert data.spec.num_classes == 100 and max(new) < 100


def test_default_class_list_is_cmc_imagenet100():
  """The committed list: 100 distinct imagenet2012 classes, CMC's first and
  last entries (docs/provenance.md)."""
  classes = class_subset.read_class_list(class_subset.IMAGENET100, 100)
  names = tfds.builder("imagenet2012").info.features["label"].names
  mapping = class_subset.label_map(names, classes)
  assert sorted(mapping[mapping >= 0].tolist()) == list(range(100))
  assert (classes[0], classes[-1]) == ("n02869837", "n02090622")
  assert datasets.get_spec("imagenet100").class_list == class_subset.IMAGENET100


def test_bad_class_list_file_is_refused_in_one_line(tmp_path):
  names = [f"n{i:08d}" for i in range(100)]
  cases = {
    "does not exist": str(tmp_path / "missing.txt"),
    "must list 100 classes": _write(tmp_path / "short.txt", names[:99]),
    "more than once": _write(tmp_path / "dup.txt", names[:99] + names[:1]),
  }
  for message, path in cases.items():
    with pytest.raises((ValueError, FileNotFoundError), match=message) as e:
      class_subset.read_class_list(path, 100)
    assert str(e.value).startswith("data.class_list") and "\n" not in str(e.value)
  with pytest.raises(ValueError, match=r"data\.class_list: class 'n00000000' is not"):
    class_subset.label_map(["n01440764"], names)
  cfg = config_utils.base_config().data
  cfg.name, cfg.class_list = "cifar10", cases["more than once"]
  with pytest.raises(ValueError, match=r"data\.class_list applies to .*imagenet100"):
    datasets.open_spec_split(datasets.get_spec("cifar10"), "train", cfg)


def test_kept_indices_of_a_prepared_split_are_saved_and_reused(
  tiny_fmnist, tmp_path, monkeypatch
):
  """On a dataset prepared on disk (the tiny Fashion-MNIST), the kept indices
  are saved under <data_dir>/class_subsets/ and a later process reads them
  instead of passing over the labels again."""
  data_dir = tiny_fmnist[0]
  source = datasets.open_split("fashion_mnist_local", "train", data_dir)
  names = [f"class{i}" for i in range(10)]  # Its labels are plain ints: name them.
  monkeypatch.setattr(class_subset, "label_names", lambda _: names)
  path = _write(tmp_path / "three.txt", [names[7], names[2], names[5]])
  monkeypatch.setattr(class_subset, "_INDEX_CACHE", {})
  restrict = functools.partial(
    class_subset.restrict, source, "fashion_mnist_local", "train", path, 3
  )
  subset = restrict(data_dir=data_dir)
  raw = np.asarray([int(r["label"]) for r in source])
  kept = np.flatnonzero(np.isin(raw, [7, 2, 5]))
  np.testing.assert_array_equal(subset.indices, kept)
  assert [r["label"] for r in subset.__getitems__(range(len(kept)))] == [
    [7, 2, 5].index(label) for label in raw[kept]
  ]
  saved = list((pathlib.Path(data_dir) / "class_subsets").glob("train-*.npy"))
  assert len(saved) == 1
  monkeypatch.setattr(class_subset, "_INDEX_CACHE", {})  # A fresh process.
  monkeypatch.setattr(class_subset, "all_labels", lambda *a: 1 / 0)
  again = restrict(data_dir=data_dir)
  np.testing.assert_array_equal(again.indices, kept)


# The paper's ResNet-34 (1/8 width, 16x16) costs minutes of CPU per point
# here, beyond the suite's budget: with JAXPRUNE_SMOKE_ALL=1 only, as the other
# ImageNet nets' smoke runs (tests/test_config_smoke_runs.py).
PAPER_NET = pytest.param(
  True,
  marks=pytest.mark.skipif(
    os.environ.get("JAXPRUNE_SMOKE_ALL") != "1",
    reason="ResNet-34 smoke runs take minutes; JAXPRUNE_SMOKE_ALL=1 runs them",
  ),
)


@pytest.mark.usefixtures("fast_compiles")
@pytest.mark.parametrize("paper_net", [False, PAPER_NET], ids=["mlp7", "resnet34"])
def test_wang2023_imagenet100_smoke_points_run_on_mock_data(paper_net, tmp_path):
  """The `:smoke` points of Tables 4, 5 and 8 (`prune_epoch` on ImageNet100)
  run end to end on mock imagenet2012 read through the default class list, at
  16x16; by default only Table 5's (S4.2 at 95 %) with MLP-7 in place of
  ResNet-34 (neuron groups: an MLP has no residual blocks)."""
  from jaxprune.results import sweeps

  tables = ("table4", "table5", "table8") if paper_net else ("table5",)
  summaries = {}
  with tfds.testing.mock_data(num_examples=1200):  # ~130 examples kept per split.
    for table in tables:
      module = sweeps.load_sweep_module(f"configs/wang2023/{table}.py")
      base, sweep = module.get_config("smoke"), module.get_sweep("smoke")
      with base.unlocked():
        base.data.data_dir = str(tmp_path / "tfds")
        base.data.image_size = (16, 16)
        base.cache_dir = str(tmp_path / "cache")  # One dense pretraining for all.
        if not paper_net:
          base.model.name, base.pruning.groups = "mlp7_relu", "all"
      (row,) = sweeps.run_sweep(base, sweep, str(tmp_path / table))
      assert row["status"] == "completed", (table, row)
      run = tmp_path / table / "runs" / row["config_hash"]
      summaries[table] = json.loads((run / "summary.json").read_text())
      config = json.loads((run / "config.json").read_text())
      assert config["data"]["name"] == "imagenet100"
  for summary in summaries.values():
    assert 0.0 <= summary["test/accuracy"] <= 1.0
    assert (summary["prune_epoch"], summary["total_epochs"]) == (1, 2)
  # The smoke schedule S is "0:0.1,1:0.001" over 2 epochs: pruned after epoch 1.
  assert summaries["table5"]["setup"] == "S4.2 P1F1, 1e-3"
  assert summaries["table5"]["target_sparsity"] > 0.9
  if paper_net:
    assert summaries["table4"]["setup"] == "S4.2 P1F1, 1e-3"
    # 95 % of the block convs' filters removed leaves fewer weights than 10 %.
    assert summaries["table5"]["params"] < summaries["table4"]["params"]
