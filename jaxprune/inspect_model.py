"""Per-layer shapes, parameters and MACs of a registered model.

  python -m jaxprune.inspect_model --model=resnet56 [--num_classes=10]
      [--input_shape=32,32,3] [--convention=shrinkbench] [--json]
  python -m jaxprune.inspect_model --config=configs/protocols/prune_retrain.py \
      [--config.pruning.sparsity=0.5 ...] [--json]

Prints one row per Conv/Dense layer (kernel shape, output shape, params, MACs
per example at the model's input size: 32x32x3 for CIFAR models, 32x32x1 for
MLP/LeNet, 224x224x3 for ImageNet models) and the totals. With ``--json`` the
last line is one JSON object with the totals (``params``, ``flops`` = 2 *
MACs, ``macs``, ...; see ``jaxprune.pruning.counting``).

Structure: :func:`build` makes (model, variables, masks, input shape) from the
arguments and :func:`report` turns counts into text, so other modes (e.g. a
``--config`` mode that applies a config's pruning and passes its masks or
compact params to :func:`build`'s caller) only need a new builder.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxprune import config_args, config_utils, models, pruning
from jaxprune.data import datasets
from jaxprune.pruning import counting
from jaxprune.results import sweeps


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog="python -m jaxprune.inspect_model")
  parser.add_argument("--model", default=None, choices=models.names())
  parser.add_argument(
    "--config",
    default=None,
    help="PATH[:ARG] of an experiment config: count its model after applying "
    "config.pruning to a freshly initialised model.",
  )
  parser.add_argument("--num_classes", type=int, default=10)
  parser.add_argument(
    "--input_shape", default=None, help="H,W,C of one example (default: per model)."
  )
  parser.add_argument("--convention", default="actual", choices=counting.CONVENTIONS)
  parser.add_argument("--json", action="store_true", help="End with a JSON line.")
  args, args.overrides = parser.parse_known_args(argv)
  if args.overrides and args.config is None:
    parser.error(f"--config.FIELD=VALUE overrides need --config: {args.overrides}")
  return args


def _parse_shape(text: str | None, name: str) -> tuple[int, ...]:
  if text is None:
    return models.input_shape(name)
  try:
    shape = tuple(int(v) for v in text.split(","))
  except ValueError:
    shape = ()
  if len(shape) != 3 or min(shape) < 1:
    raise SystemExit(f"--input_shape must be H,W,C positive ints, got {text!r}")
  return shape


def build(args: argparse.Namespace) -> tuple[nn.Module, Any, Any, tuple[int, ...]]:
  """(model, variables or None, masks or None, input shape) to count."""
  model = models.create(args.model, num_classes=args.num_classes)
  return model, None, None, _parse_shape(args.input_shape, args.model)


def _fmt(n: float) -> str:
  return f"{n:,.0f}"


def report(counts: counting.Counts, title: str) -> str:
  """A fixed-width table of per-layer counts and the totals."""
  header = ("layer", "kernel", "output", "params", "MACs", "%MACs")
  rows = [header]
  for r in counts.layers:
    rows.append(
      (
        r.name,
        "x".join(map(str, r.kernel_shape)),
        "x".join(map(str, r.out_shape)),
        _fmt(r.params),
        _fmt(r.macs),
        f"{100 * r.macs / max(counts.macs, 1):.1f}",
      )
    )
  widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
  lines = [title]
  for i, row in enumerate(rows):
    cells = [
      c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))
    ]
    lines.append("  ".join(cells))
    if i == 0:
      lines.append("  ".join("-" * w for w in widths))
  nonzero = counts.total_nonzero_params != counts.total_params
  lines += [
    "",
    f"conv/dense params: {_fmt(counts.params)}",
    f"norm params:       {_fmt(counts.norm_params)}",
    f"other params:      {_fmt(counts.other_params)}",
    f"total params:      {_fmt(counts.total_params)}",
    f"MACs:              {_fmt(counts.macs)} ({counts.macs / 1e6:.2f}M)",
    f"FLOPs (2*MACs):    {_fmt(counts.flops)} ({counts.flops / 1e9:.3f}G)",
  ]
  if nonzero or counts.nonzero_macs != counts.macs:
    lines += [
      f"nonzero params:    {_fmt(counts.total_nonzero_params)} (total params "
      "minus the weights the masks set to zero)",
      f"nonzero MACs:      {_fmt(counts.nonzero_macs)} (each layer's MACs x its "
      "kernel density)",
      f"speedup:           {counts.theoretical_speedup:.3f}x (of this model: its "
      "MACs / its nonzero MACs; masks only)",
    ]
  return "\n".join(lines)


def load_config(spec: str, overrides: Sequence[str] = ()):
  """``PATH[:ARG]`` -> ``get_config(ARG)`` of the config file at PATH, with
  ``--config.FIELD=VALUE`` ``overrides`` applied."""
  try:
    config = config_args.load_config(spec)
  except FileNotFoundError as e:
    raise SystemExit(f"--config: {e}") from None
  try:
    return sweeps.apply_overrides(
      config, config_utils.parse_overrides(overrides, config)
    )
  except ValueError as e:
    raise SystemExit(str(e)) from None


def build_from_config(config) -> tuple[Any, dict[str, Any]]:
  """Counts of the config's pruned model plus the dense-vs-pruned summary."""

  name = config.model.name
  overrides = config_utils.model_overrides(config)
  num_classes = datasets.get_spec(config.data.name).num_classes
  shape = models.input_shape(name)
  if config.data.get("image_size"):
    shape = (*tuple(config.data.image_size), shape[-1])
  model = models.create(name, num_classes, **overrides)
  rng = jax.random.key(config.seed)
  variables = model.init(rng, jnp.zeros((1, *shape)), train=False)
  result = pruning.prune(
    config.pruning,
    variables["params"],
    variables.get("batch_stats", {}),
    model_name=name,
    rng=jax.random.fold_in(rng, 1),
    model_overrides=overrides,
  )
  pruned_model = model
  if result.widths is not None:
    pruned_model = models.create(
      name, num_classes, **{**overrides, "widths": result.widths}
    )
  dense = counting.count(model, shape)
  counts = counting.count(
    pruned_model,
    shape,
    {"params": result.params, "batch_stats": result.batch_stats},
    result.masks,
  )
  extra = {
    "model": name,
    "input_shape": list(shape),
    "pruning": config.pruning.name,
    "dense_params": dense.total_params,
    "dense_flops": dense.flops,
    # The result rows' definition (one function for both).
    "sparsity": counting.sparsity(dense, counts, result.masks, result.prunable),
    "speedup": dense.flops / counts.nonzero_flops if counts.nonzero_flops else None,
  }
  if result.widths is not None:
    extra["widths"] = json.loads(json.dumps(result.widths))
  return counts, extra


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(argv)
  if (args.model is None) == (args.config is None):
    raise SystemExit("give exactly one of --model or --config")
  if args.config is not None:
    counts, extra = build_from_config(load_config(args.config, args.overrides))
    print(
      report(counts, f"{args.config}: {extra['model']} pruned ({extra['pruning']})")
    )
    print(
      f"sparsity: {extra['sparsity']:.4f} (as in result rows: unstructured, the "
      "pruned fraction of the prunable weights; structured, 1 - nonzero params / "
      f"the dense model's params), speedup vs dense: {extra['speedup']:.3f}x (the dense "
      "model's FLOPs / these nonzero FLOPs; includes the channels surgery removed, "
      "which the per-model speedup above does not see)"
    )
    if args.json:
      print(json.dumps({**counts.summary(), **extra}))
    return 0
  model, variables, masks, shape = build(args)
  counts = counting.count(model, shape, variables, masks, convention=args.convention)
  title = (
    f"{args.model} (num_classes={args.num_classes}, input {'x'.join(map(str, shape))})"
  )
  print(report(counts, title))
  if args.json:
    summary = {"model": args.model, "input_shape": list(shape), **counts.summary()}
    print(json.dumps(summary))
  return 0


if __name__ == "__main__":
  sys.exit(main())
