"""The shared cache of pruned-but-not-retrained states.

A prune -> retrain sweep over retraining fields (schedule, epochs, lr) prunes
the same dense weights the same way for every point; the first pruning (of the
dense phase's final weights) is stored once in `<cache>/pruned/<key>/` next to
the dense phases (`<cache>/train/<hash>/`, see `common`) and loaded by every
other point, under the same kind of file lock, so concurrent shards wait for
one producer instead of pruning twice.

The key hashes exactly what determines the pruned state: the config hash of
the dense phase it was pruned from (its training fields; also right for
`retrain.dense_workdir`), the whole `pruning` section, the cycle and its
cumulative target, `retrain.orthp` / `retrain.orthp_gain` (OrthP runs on the
pruned weights), the seed (the pruning rng derives from it) and the pruning
code's fingerprint (`jaxprune.fingerprint`), plus the source hash of a
criterion or allocation registered from outside jaxprune. Retraining
fields are not in it. Later IMP cycles start from retrained weights, so they
are not cached.

Storage: `state.npz` (params, batch stats, masks, the prunable predicate; flat
"item/path/to/leaf" keys, loaded without pickle) and `meta.json` (the cycle's
statistics; written last, so its presence marks a complete entry). After
surgery the small-dense widths are read back from the stored params
(`models.read_widths`); an entry whose widths would not read back is not
stored.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from typing import Any

import flax
import ml_collections
import numpy as np

from jaxprune import config_utils, fingerprint, io_utils, models
from jaxprune.protocols import common
from jaxprune.pruning import allocation, scores, structured
from jaxprune.train import Start, sharding

ITEMS = ("params", "batch_stats", "masks", "prunable")
SEP = "/"


def key(
  config: ml_collections.ConfigDict,
  dense_hash: str,
  *,
  cycle: int,
  cumulative: float,
) -> str:
  """The cache key of the pruning of cycle `cycle` from the dense phase
  `dense_hash` (see the module docstring for what it covers)."""
  fields = {
    "dense": dense_hash,
    "pruning": config_utils.hashed_section(
      config_utils.to_json_dict(common.resolved(config.pruning)), "pruning"
    ),
    "orthp": bool(config.retrain.orthp),
    "orthp_gain": config.retrain.orthp_gain,
    "seed": int(config.seed),
    "cycle": int(cycle),
    "cumulative": float(cumulative),
    "code": fingerprint.code("prune"),  # An edited criterion is a new entry.
  }
  user = fingerprint.outside(_pruning_functions(config.pruning))
  if user:  # Only for registered extensions: built-in keys stay the same.
    fields["user_code"] = user
  text = json.dumps(fields, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pruning_functions(p: ml_collections.ConfigDict) -> list[Callable]:
  """The registered criterion and allocation functions `p` prunes with."""
  unstructured = p.name == "unstructured"
  lib = scores if unstructured else structured
  out = [lib.CRITERIA.get(p.criterion)] if p.criterion in lib.CRITERIA else []
  if unstructured and p.allocation in allocation.ALLOCATIONS:
    out.append(allocation.ALLOCATIONS.get(p.allocation).select)
  return out


def _save(path: str, fields: dict[str, Any], meta: dict[str, Any]) -> None:
  arrays, present = {}, []
  for item in ITEMS:
    tree = fields[item]
    if tree is None:
      continue
    present.append(item)
    flat = flax.traverse_util.flatten_dict(dict(tree), sep=SEP)
    for leaf_path, value in flat.items():
      arrays[item + SEP + leaf_path] = np.asarray(value)
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  io_utils.atomic_write_bytes(os.path.join(path, "state.npz"), buffer.getvalue())
  io_utils.atomic_write_json(
    os.path.join(path, "meta.json"), {**meta, "items": present}
  )


def _load(path: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
  meta_path = os.path.join(path, "meta.json")
  if not os.path.exists(meta_path):
    return None
  meta = io_utils.read_json(meta_path)
  with np.load(os.path.join(path, "state.npz"), allow_pickle=False) as npz:
    flat = {name: npz[name] for name in npz.files}
  fields: dict[str, Any] = {}
  for item in ITEMS:
    if item not in meta["items"]:
      fields[item] = None
      continue
    prefix = item + SEP
    leaves = {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}
    fields[item] = flax.traverse_util.unflatten_dict(leaves, sep=SEP)
  return fields, meta


def _widths_read_back(config: ml_collections.ConfigDict, params: Any) -> Any:
  overrides = common.overrides_without_widths(config)
  return models.read_widths(config.model.name, params, **overrides)


def cached(
  config: ml_collections.ConfigDict,
  run_workdir: str,
  dense_hash: str | None,
  *,
  cycle: int,
  cumulative: float,
  compute: Callable[[], Any],
  build: Callable[..., Any],
) -> Any:
  """The pruned state from the cache, else `compute()` stored in it.

  `compute() -> Pruned` (`prune_retrain.Pruned`) prunes; `build(**fields)` makes a
  `Pruned` from stored fields (passed in so this module does not import the
  protocol that uses it). Without `dense_hash` (a dense summary without
  config_hash) nothing is cached.
  """
  if not dense_hash:
    return compute()
  digest = key(config, dense_hash, cycle=cycle, cumulative=cumulative)
  path = os.path.join(common.cache_root(config, run_workdir), "pruned", digest)
  with io_utils.file_lock(path + ".lock"):
    common.drop_if_stale(path)  # `python -m jaxprune.sweeps --force`.
    loaded = _load(path)
    if loaded is not None:
      fields, meta = loaded
      widths = _widths_read_back(config, fields["params"]) if meta["surgery"] else None
      start = Start(fields["params"], fields["batch_stats"] or {}, fields["masks"])
      return build(
        start=start,
        widths=widths,
        prunable=fields["prunable"],
        sparsity=meta["sparsity"],
        fraction=meta["fraction"],
        norm_change=meta["norm_change"],
      )
    pruned = compute()
    surgery = pruned.widths is not None
    if surgery and _widths_read_back(config, pruned.start.params) != pruned.widths:
      return pruned  # Would not load back the same model: do not store it.
    if sharding.is_primary():
      fields = {
        "params": pruned.start.params,
        "batch_stats": pruned.start.batch_stats or None,
        "masks": pruned.start.masks,
        "prunable": pruned.prunable,
      }
      meta = {
        "sparsity": float(pruned.sparsity),
        "fraction": float(pruned.fraction),
        "norm_change": float(pruned.norm_change),
        "surgery": surgery,
        "config_hash": config_utils.config_hash(config),
      }
      _save(path, fields, meta)
    return pruned
