r"""Dense kernel gradients on CPU: XLA's [K, N] dot vs `matmul_impl`'s swapped one.

  JAX_PLATFORMS=cpu .venv/bin/python experiments/benchmarks/dense_grads.py \
      [--quick] [--out=experiments/benchmarks/dense_grads]

Two tables, written to OUT.md and OUT.json:

1. The kernel gradient alone, ``x^T @ dy`` for x: [M, K], dy: [M, N], as
   XLA:CPU compiles it from autodiff ("plain") and as `matmul_impl` has it
   compiled ("swapped": ``dy^T @ x`` then a transpose), over M in {100, 2048}
   (a Dense layer's batch; a matmul convolution's N*H*W rows), K and N from
   the zoo's layers. `matmul_impl.prefer_swapped` is read off this grid.
2. A whole MLP-7 epoch (`Steps.scan_epoch`, batch 100, SGD with momentum and
   weight decay, 1024 inputs) at hidden widths 10 / 20 / 100 (DI Table 3's
   nets after pruning at PR 0.9 / 0.8, and dense), with the rule on and
   forced off (hidden width 50: Le & Hua's 50% neuron pruning), side by side with a plain PyTorch loop of the same net when
   PyTorch is installed. Per-step times are medians of interleaved repeats.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax import lax

from jaxprune import models
from jaxprune.data import pipeline
from jaxprune.models import matmul_impl
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import sharding
from jaxprune.train import steps as steps_lib
from jaxprune.train.state import create_train_state

BATCH = 100


def _best_us(fn, repeats: int = 3, min_s: float = 0.05) -> float:
  jax.block_until_ready(fn())
  n, t0 = 0, time.perf_counter()
  while time.perf_counter() - t0 < min_s:
    jax.block_until_ready(fn())
    n += 1
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in range(n):
      out = fn()
    jax.block_until_ready(out)
    best = min(best, (time.perf_counter() - t0) / n)
  return best * 1e6


def kernel_grad_grid(ms, ks, ns) -> list[dict]:
  plain = jax.jit(lambda x, g: x.T @ g)
  swapped = jax.jit(lambda x, g: lax.optimization_barrier(g.T @ x).T)
  rng = np.random.default_rng(0)
  rows = []
  for m in ms:
    for k in ks:
      for n in ns:
        x = jnp.asarray(rng.random((m, k)), jnp.float32)
        g = jnp.asarray(rng.random((m, n)), jnp.float32)
        a = _best_us(lambda x=x, g=g: plain(x, g))
        b = _best_us(lambda x=x, g=g: swapped(x, g))
        rows.append(
          {
            "M": m,
            "K": k,
            "N": n,
            "plain_us": a,
            "swapped_us": b,
            "speedup": a / b,
            "rule": matmul_impl.prefer_swapped(k, n),
          }
        )
        print(f"M={m} K={k} N={n}: {a:.0f} vs {b:.0f} us ({a / b:.2f}x)", flush=True)
  return rows


def _jax_epoch(width: int, images, labels, swap: bool):
  """A callable running one scanned epoch of MLP-7-ReLU at `width`."""
  model = models.create("mlp7_relu", widths=(width,) * 6)
  opt = ml_collections.ConfigDict(dict(name="sgd", momentum=0.9, weight_decay=1e-4))
  make_tx = hyper_lib.make_tx(opt)
  hyper = hyper_lib.build(opt, lambda s: 0.01 * jnp.ones_like(s, jnp.float32), 1000)
  mesh = sharding.make_mesh()
  pre = pipeline.Preprocess(mean=(0.5,), std=(0.25,))
  steps = steps_lib.Steps(model, make_tx, pre, mesh, BATCH, BATCH, epoch_driver="scan")
  state = jax.jit(
    lambda r: create_train_state(model, make_tx(hyper), (32, 32, 1), r),
    out_shardings=sharding.replicated(mesh),
  )(jax.random.PRNGKey(0))
  holder = {"state": state}
  rule = matmul_impl.prefer_swapped

  def epoch():
    matmul_impl.prefer_swapped = rule if swap else (lambda k, n: False)
    try:
      holder["state"], m = steps.scan_epoch(
        holder["state"], hyper, images, labels, jax.random.PRNGKey(1), jnp.int32(0)
      )
    finally:
      matmul_impl.prefer_swapped = rule
    return m

  return epoch


def _torch_epoch(width: int, images: np.ndarray, labels: np.ndarray):
  import torch
  import torch.nn.functional as F
  import torch_reference

  torch.set_num_threads(os.cpu_count() or 1)
  net = torch_reference.mlp7(width=width)
  opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
  x_all = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
  y_all = torch.from_numpy(labels.astype(np.int64))

  def epoch():
    perm = torch.randperm(len(x_all))
    for i in range(len(x_all) // BATCH):
      idx = perm[i * BATCH : (i + 1) * BATCH]
      opt.zero_grad()
      F.cross_entropy(net((x_all[idx] - 0.5) / 0.25), y_all[idx]).backward()
      opt.step()

  return epoch


def mlp_epochs(widths, num_examples: int, repeats: int) -> list[dict]:
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (num_examples, 32, 32, 1), dtype=np.uint8)
  labels = rng.integers(0, 10, num_examples).astype(np.int32)
  dev_images, dev_labels = jnp.asarray(images), jnp.asarray(labels)
  try:
    import torch  # noqa: F401

    have_torch = True
  except ImportError:
    have_torch = False
  steps = num_examples // BATCH
  rows = []
  for width in widths:
    runs = {
      "swapped": _jax_epoch(width, dev_images, dev_labels, swap=True),
      "plain": _jax_epoch(width, dev_images, dev_labels, swap=False),
    }
    if have_torch:
      runs["torch"] = _torch_epoch(width, images, labels)
    for fn in runs.values():  # Compile / warm up.
      jax.block_until_ready(fn())
    times = {name: [] for name in runs}
    for _ in range(repeats):  # Interleaved, so load shifts hit every side.
      for name, fn in runs.items():
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times[name].append((time.perf_counter() - t0) / steps * 1e6)
    row = {
      "width": width,
      **{f"{k}_us": statistics.median(v) for k, v in times.items()},
    }
    row["swap_speedup"] = row["plain_us"] / row["swapped_us"]
    if have_torch:
      row["vs_torch"] = row["torch_us"] / row["swapped_us"]
    print(row, flush=True)
    rows.append(row)
  return rows


def markdown(grid: list[dict], epochs: list[dict], load: str) -> str:
  lines = [
    "# Dense kernel gradients on CPU (`jaxprune.models.matmul_impl`)",
    "",
    "Written by `experiments/benchmarks/dense_grads.py`. " + load,
    "",
    "## MLP-7-ReLU epoch, per step (batch 100, 1024 inputs, SGD momentum + wd)",
    "",
    "| hidden width | plain XLA (us) | swapped (us) | swap speedup | PyTorch (us) "
    "| jaxprune / PyTorch speed |",
    "|---|---|---|---|---|---|",
  ]
  for r in epochs:
    torch_us = f"{r['torch_us']:.0f}" if "torch_us" in r else "-"
    vs = f"{r['vs_torch']:.2f}x" if "vs_torch" in r else "-"
    lines.append(
      f"| {r['width']} | {r['plain_us']:.0f} | {r['swapped_us']:.0f} "
      f"| {r['swap_speedup']:.2f}x | {torch_us} | {vs} |"
    )
  lines += [
    "",
    "## Kernel gradient x^T dy alone (us; speedup = plain / swapped)",
    "",
    "| M | K | N | plain | swapped | speedup | rule swaps |",
    "|---|---|---|---|---|---|---|",
  ]
  for r in grid:
    lines.append(
      f"| {r['M']} | {r['K']} | {r['N']} | {r['plain_us']:.0f} | {r['swapped_us']:.0f} "
      f"| {r['speedup']:.2f} | {'yes' if r['rule'] else 'no'} |"
    )
  return "\n".join(lines) + "\n"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="a small grid, short epochs")
  parser.add_argument("--out", default="experiments/benchmarks/dense_grads")
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args(argv)
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # torch_reference.
  if args.quick:
    grid = kernel_grad_grid([100], [1024], [10, 100])
    epochs = mlp_epochs([10], 2000, 2)
  else:
    grid = kernel_grad_grid(
      [100, 2048], [25, 100, 144, 400, 576, 1024, 4608], [6, 10, 16, 32, 64, 100, 512]
    )
    epochs = mlp_epochs([10, 20, 50, 100], 60000, args.repeats)
  load = f"1-min load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."
  from jaxprune import io_utils

  io_utils.atomic_write_bytes(args.out + ".md", markdown(grid, epochs, load).encode())
  io_utils.atomic_write_json(args.out + ".json", {"grid": grid, "epochs": epochs})
  print(f"wrote {args.out}.md")
  return 0


if __name__ == "__main__":
  sys.exit(main())
