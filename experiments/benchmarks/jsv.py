r"""Benchmark: mean JSV of 1000 examples, jaxprune (jacrev / jacfwd) vs PyTorch.

What it times: the whole measurement a user runs, "mean Jacobian singular value
of N examples" -- per-example Jacobians of the logits w.r.t. the input, SVD of
each, mean -- for MLP-7-ReLU and LeNet-5-ReLU on 32x32x1 inputs (and ResNet-20
on 32x32x3 with --resnet):

* jaxprune: ``analysis.jacobian_singular_values`` (jit + vmap(jacrev) or
  vmap(jacfwd), streamed in batches of --batch-size), both methods, after one
  warm-up call that compiles.
* PyTorch: ``torch.func.vmap(torch.func.jacrev(f))`` over the same examples,
  then ``torch.linalg.svdvals`` (the reference pipeline, TPP's ``torch.svd``)
  and, like for like with jaxprune's default, the Gram-matrix eigenvalues;
  equivalent models hold the *same* weights (copied from the Flax params),
  ``torch.set_num_threads(2)``.

Reported: median wall time of --repeats runs (after warm-up), the ratios
PyTorch (svdvals) / jaxprune (default), and like for like (SVD vs SVD, Gram vs
Gram), and both mean JSVs (they must agree: same weights, same inputs).
Inputs are the first N Fashion-MNIST training images (resized to 32x32,
normalised) when ``fashion_mnist_local`` is prepared (``python -m
jaxprune.data prepare``), else standard-normal random inputs; the table says
which. ResNet-20 always uses random inputs (no CIFAR-10 offline).

Run:  JAX_PLATFORMS=cpu .venv/bin/python experiments/benchmarks/jsv.py [--resnet]
Smoke: ... jsv.py --num-examples 16 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch import nn as tnn

from jaxprune import analysis, models
from jaxprune.data import datasets


# ---------------------------------------------------------------- inputs
def load_inputs(n: int, channels: int, seed: int = 0) -> tuple[np.ndarray, str]:
  """[n, 32, 32, channels] float32 inputs and a description of their source."""
  if channels == 1:
    spec = datasets.get_spec("fashion_mnist_local")
    try:
      source = datasets.open_split(spec.tfds_name, spec.train_split)
      images, _ = datasets.read_all(source, spec, limit=n)
    except FileNotFoundError:
      pass
    else:
      x = datasets.resize_images(images, (32, 32)).astype(np.float32) / 255.0
      x = (x - np.float32(spec.mean[0])) / np.float32(spec.std[0])
      return x, "Fashion-MNIST train (first N, 32x32, normalised)"
  rng = np.random.default_rng(seed)
  return rng.standard_normal((n, 32, 32, channels), np.float32), "random N(0, 1)"


# ---------------------------------------------------------------- torch twins
def _t(a) -> torch.Tensor:
  return torch.from_numpy(np.array(a, np.float32))


def _linear(p) -> tnn.Linear:
  layer = tnn.Linear(*p["kernel"].shape)
  layer.weight.data, layer.bias.data = _t(p["kernel"]).T.contiguous(), _t(p["bias"])
  return layer


def _conv(p, padding: int = 0) -> tnn.Conv2d:
  kh, kw, cin, cout = p["kernel"].shape
  layer = tnn.Conv2d(cin, cout, (kh, kw), padding=padding, bias="bias" in p)
  # Flax [kh, kw, in, out] -> PyTorch [out, in, kh, kw].
  layer.weight.data = _t(p["kernel"]).permute(3, 2, 0, 1).contiguous()
  if "bias" in p:
    layer.bias.data = _t(p["bias"])
  return layer


def torch_mlp(params) -> tnn.Module:
  layers: list[tnn.Module] = [tnn.Flatten()]
  for i in range(6):
    layers += [_linear(params[f"fc{i}"]), tnn.ReLU()]
  layers.append(_linear(params["head"]))
  return tnn.Sequential(*layers)


def torch_lenet(params) -> tnn.Module:
  # conv2 sees a 5x5 map and outputs 1x1, so NCHW and NHWC flatten alike.
  return tnn.Sequential(
    _conv(params["conv0"]),
    tnn.ReLU(),
    tnn.MaxPool2d(2),
    _conv(params["conv1"]),
    tnn.ReLU(),
    tnn.MaxPool2d(2),
    _conv(params["conv2"]),
    tnn.ReLU(),
    tnn.Flatten(),
    _linear(params["fc0"]),
    tnn.ReLU(),
    _linear(params["head"]),
  )


class _TorchBasicBlock(tnn.Module):
  def __init__(self, p, stats, stride: int, out: int):
    super().__init__()
    self.c1, self.c2 = _conv(p["conv1"], 1), _conv(p["conv2"], 1)
    self.c1.stride = (stride, stride)
    self.b1, self.b2 = _bn(p["bn1"], stats["bn1"]), _bn(p["bn2"], stats["bn2"])
    self.stride, self.out = stride, out

  def forward(self, x):
    y = torch.relu(self.b1(self.c1(x)))
    y = self.b2(self.c2(y))
    sc = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
    extra = self.out - sc.shape[1]
    if extra:  # Option A: symmetric zero channels, (out - in) // 2 before.
      sc = tnn.functional.pad(sc, (0, 0, 0, 0, extra // 2, extra - extra // 2))
    return torch.relu(y + sc)


def _bn(p, s) -> tnn.BatchNorm2d:
  bn = tnn.BatchNorm2d(p["scale"].shape[0], eps=1e-5)
  bn.weight.data, bn.bias.data = _t(p["scale"]), _t(p["bias"])
  bn.running_mean.data, bn.running_var.data = _t(s["mean"]), _t(s["var"])
  return bn.eval()


def torch_resnet20(params, stats) -> tnn.Module:
  class Net(tnn.Module):
    def __init__(self):
      super().__init__()
      self.stem = _conv(params["stem_conv"], 1)
      self.bn = _bn(params["stem_bn"], stats["stem_bn"])
      blocks = []
      for s, width in enumerate((16, 32, 64)):
        for b in range(3):
          name = f"stage{s}_block{b}"
          stride = 2 if s > 0 and b == 0 else 1
          blocks.append(_TorchBasicBlock(params[name], stats[name], stride, width))
      self.blocks = tnn.Sequential(*blocks)
      self.head = _linear(params["head"])

    def forward(self, x):
      x = self.blocks(torch.relu(self.bn(self.stem(x))))
      return self.head(x.mean(dim=(2, 3)))

  return Net().eval()


def torch_mean_jsv(net: tnn.Module, x_nchw: torch.Tensor, solver: str = "svd") -> float:
  """The reference pipeline: vmap(jacrev) + SVD, or + the same Gram trick as jaxprune."""

  def f(x):
    return net(x.unsqueeze(0)).squeeze(0)

  with torch.no_grad():  # torch.func transforms still differentiate inside.
    jac = torch.func.vmap(torch.func.jacrev(f))(x_nchw)  # [N, C, c, h, w]
    jac = jac.reshape(jac.shape[0], jac.shape[1], -1)
    if solver == "svd":
      sv = torch.linalg.svdvals(jac)
    else:
      gram = jac @ jac.transpose(1, 2)
      sv = torch.linalg.eigvalsh(gram).clamp_min(0).sqrt()
  return float(sv.mean())


# ---------------------------------------------------------------- timing
def median_seconds(
  fn: Callable[[], float], repeats: int, budget_s: float = 60.0
) -> tuple[float, float]:
  """(median seconds, last result) of up to `repeats` calls after a warm-up.

  Stops early (after at least 3 timed calls) once `budget_s` is spent, so the
  slow variants (jacfwd on LeNet) do not dominate the benchmark's run time.
  """
  fn()
  times, value = [], 0.0
  while len(times) < repeats and (len(times) < 3 or sum(times) < budget_s):
    t0 = time.perf_counter()
    value = fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times), value


def bench_model(
  name: str, n: int, repeats: int, batch_size: int, full: bool = True
) -> dict:
  """One table row. `full=False` times only the headline pair (jaxprune's
  default jacrev + Gram, plus jacfwd for the small nets, vs PyTorch + svdvals),
  skipping the like-for-like variants, to keep `run_all.py` short."""
  channels = 3 if name.startswith("resnet") else 1
  x, source = load_inputs(n, channels)
  model = models.create(name)
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, channels)))
  params, stats = variables["params"], variables.get("batch_stats", {})
  apply_fn = analysis.apply_fn_from(model, params, stats)
  xj = jax.device_put(jnp.asarray(x))
  row = {"model": name, "inputs": source, "n": n, "batch_size": batch_size}
  # jacfwd pushes D = 3072 tangents per example through ResNet-20: tens of GB.
  variants = [("jacrev", "gram")] + [("jacrev", "svd")] * full
  if not name.startswith("resnet"):
    variants.append(("jacfwd", "gram"))
  for method, solver in variants:
    key = method if solver == "gram" else f"{method}_{solver}"
    t0 = time.perf_counter()
    analysis.mean_jsv(apply_fn, xj, batch_size=batch_size, method=method, solver=solver)
    row[f"{key}_first_call_s"] = time.perf_counter() - t0  # incl. compile

    def run(method=method, solver=solver):
      sv = analysis.jacobian_singular_values(
        apply_fn, xj, batch_size=batch_size, method=method, solver=solver
      )
      return float(jnp.mean(sv))  # float() waits for the device.

    row[f"{key}_s"], row[f"{key}_jsv"] = median_seconds(run, repeats)

  if name.startswith("mlp7"):
    net = torch_mlp(params)
  elif name.startswith("lenet5"):
    net = torch_lenet(params)
  else:
    net = torch_resnet20(params, stats)
  xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
  row["torch_s"], row["torch_jsv"] = median_seconds(
    lambda: torch_mean_jsv(net, xt), max(1, repeats // 2)
  )
  fwd = row.get("jacfwd_s", float("inf"))
  row["faster_method"] = "jacrev" if row["jacrev_s"] <= fwd else "jacfwd"
  row["speedup"] = row["torch_s"] / min(row["jacrev_s"], fwd)
  if full:
    row["torch_gram_s"], _ = median_seconds(
      lambda: torch_mean_jsv(net, xt, "gram"), max(1, repeats // 2)
    )
    row["speedup_svd"] = row["torch_s"] / row["jacrev_svd_s"]
    row["speedup_gram"] = row["torch_gram_s"] / row["jacrev_s"]
  return row


def markdown(rows: list[dict]) -> str:
  lines = [
    "| model | inputs | N | jaxprune jacrev (ms) | jaxprune jacfwd (ms) | "
    "jaxprune jacrev, solver=svd (ms) | PyTorch vmap(jacrev) + svdvals (ms) | "
    "PyTorch vmap(jacrev) + Gram (ms) | PyTorch svd / jaxprune default | "
    "like for like: svd / svd, Gram / Gram | mean JSV jax / torch |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ]
  for r in rows:
    fwd = f"{1e3 * r['jacfwd_s']:.1f}" if "jacfwd_s" in r else "n/a"
    lines.append(
      f"| {r['model']} | {r['inputs']} | {r['n']} | {1e3 * r['jacrev_s']:.1f} | "
      f"{fwd} | {1e3 * r['jacrev_svd_s']:.1f} | {1e3 * r['torch_s']:.1f} | "
      f"{1e3 * r['torch_gram_s']:.1f} | {r['speedup']:.1f}x | "
      f"{r['speedup_svd']:.1f}x, {r['speedup_gram']:.1f}x | "
      f"{r['jacrev_jsv']:.5f} / {r['torch_jsv']:.5f} |"
    )
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--num-examples", type=int, default=1000)
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--batch-size", type=int, default=256)
  parser.add_argument("--models", default="mlp7_relu,lenet5_relu")
  parser.add_argument("--resnet", action="store_true", help="also ResNet-20")
  parser.add_argument("--json", default="", help="also write the rows here")
  args = parser.parse_args()
  torch.set_num_threads(2)
  names = args.models.split(",") + (["resnet20"] if args.resnet else [])
  print(
    f"jax {jax.__version__} on {jax.devices()[0].platform}, torch "
    f"{torch.__version__} ({torch.get_num_threads()} threads)",
    flush=True,
  )
  rows = []
  for name in names:
    rows.append(bench_model(name, args.num_examples, args.repeats, args.batch_size))
    print(markdown(rows[-1:]), flush=True)  # Progress: one row per model.
  print()
  print(markdown(rows))
  for r in rows:
    firsts = ", ".join(
      f"{k.removesuffix('_first_call_s')} {v:.2f}s"
      for k, v in r.items()
      if k.endswith("_first_call_s")
    )
    print(f"{r['model']}: first call (compile + run): {firsts}")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  main()
