r"""`make bench-gpu`: jaxprune against PyTorch on one GPU, in one go (< 8 minutes).

  python experiments/benchmarks/gpu.py [--out=experiments/benchmarks] [--quick]

Writes `RESULTS_GPU.md` (and `results_gpu.json`) in `--out`, atomically:

  1 epochs   ResNet-20, ResNet-56 and VGG-16 on CIFAR shapes (random uint8
             images, resident on the device, pad-crop + flip augmentation on
             device): jaxprune's scanned epoch (`Steps.train_epoch`) in float32
             and bfloat16 (`config.precision`) against PyTorch on the same GPU
             at its best settings (channels-last, cudnn.benchmark, TF32 on,
             bf16 autocast for the bfloat16 row, the data on the GPU too);
  2 grouped  16 ResNet-20 runs as one vmapped program against the same 16
             runs one after another through one compiled program;
  3 jsv      mean Jacobian singular value of ResNet-20 (figure 5 of run_all.py:
             jaxprune on the GPU, PyTorch's torch.func on the CPU).

On a GPU machine it first installs what is missing (`jax[cuda12]` at the
installed jax version, a CUDA build of torch) and stops with one line when no
GPU is visible. `--quick` runs tiny shapes on whatever device jax has (the CPU
in tests/test_bench_gpu.py): it checks the code paths; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SIZES = {
  # ~2 min of compiles (fewer with the persistent cache), ~3 min of timing.
  "default": dict(
    n=25000, batch=128, repeats=2, models=("resnet20", "resnet56", "vgg16"),
    runs=16, group_n=10000, jsv_n=1000,
  ),
  "quick": dict(
    n=16, batch=8, repeats=1, models=("resnet20",), runs=2, group_n=16, jsv_n=4,
  ),
}  # fmt: skip
PRECISIONS = ("float32", "bfloat16")


def fail(message: str) -> None:
  print(f"ERROR: {message}", file=sys.stderr)
  sys.exit(2)


def _pip(*packages: str) -> None:
  print(f"[bench-gpu] installing {' '.join(packages)}", flush=True)
  subprocess.run([sys.executable, "-m", "pip", "install", "-q", *packages], check=True)


def ensure_gpu_stack() -> None:
  """Fails without an NVIDIA GPU; installs jax's CUDA plugin and a CUDA torch
  if missing (before jax is imported, so the plugin is picked up)."""
  if shutil.which("nvidia-smi") is None:
    fail("no NVIDIA GPU visible (nvidia-smi not found); bench-gpu needs a CUDA GPU")
  try:
    jax_version = importlib.metadata.version("jax")
  except importlib.metadata.PackageNotFoundError:
    jax_version = None
  try:
    importlib.metadata.version("jax-cuda12-plugin")
  except importlib.metadata.PackageNotFoundError:
    _pip(f"jax[cuda12]=={jax_version}" if jax_version else "jax[cuda12]")
  probe = "import torch; print(torch.version.cuda or '')"
  done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
  if done.returncode != 0 or not done.stdout.strip():  # Missing, or a CPU build.
    _pip("--force-reinstall", "torch")


@dataclasses.dataclass
class Bench:
  """The measurements, on the devices jax and torch were given."""

  sizes: dict
  torch_device: str

  def data(self, n: int):
    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return images, rng.integers(0, 10, n).astype(np.int32)

  def jax_epochs(self, name: str, precision: str, images, labels) -> dict:
    """Images/s of jaxprune's resident epoch (first epoch: compile included)."""
    import jax
    import jax.numpy as jnp
    import train_step

    s = self.sizes
    steps, state, hyper = train_step._jax_steps(
      name, (32, 32, 3), "cifar", s["batch"], precision
    )
    x, y = jnp.asarray(images), jnp.asarray(labels)
    key = jax.random.PRNGKey(1)
    times = []
    for epoch in range(s["repeats"] + 1):
      t0 = time.perf_counter()
      state, m = steps.train_epoch(state, hyper, x, y, key, epoch)
      jax.block_until_ready(m)
      times.append(time.perf_counter() - t0)
    per_epoch = (len(labels) // s["batch"]) * s["batch"]
    return {"first_s": times[0], "images_per_s": per_epoch / min(times[1:])}

  def torch_epochs(self, name: str, precision: str, images, labels) -> dict:
    """The same epochs in PyTorch: data, permutation and augmentation on the
    device, channels-last, bf16 autocast for the bfloat16 row."""
    import torch
    import torch_reference
    from torch.nn import functional as F

    s, dev = self.sizes, torch.device(self.torch_device)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    net = torch_reference.create(name).to(dev, memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), 0.05, momentum=0.9, weight_decay=1e-4)
    x_all = torch.from_numpy(images).to(dev).permute(0, 3, 1, 2)
    y_all = torch.from_numpy(labels).long().to(dev)
    b, n = s["batch"], len(labels)
    ar = torch.arange(32, device=dev)

    def augment(x):  # Per-example pad-4 random crop and flip, as jaxprune's.
      x = F.pad(x.float() / 255.0, (4, 4, 4, 4))
      off = torch.randint(0, 9, (2, x.shape[0], 1), device=dev)
      rows, cols = (off[0] + ar)[:, :, None], (off[1] + ar)[:, None, :]
      x = x[torch.arange(x.shape[0], device=dev)[:, None, None], :, rows, cols]
      x = x.permute(0, 3, 1, 2)
      flip = torch.rand(x.shape[0], 1, 1, 1, device=dev) < 0.5
      x = torch.where(flip, x.flip(3), x)
      return ((x - 0.5) / 0.25).contiguous(memory_format=torch.channels_last)

    def epoch():
      perm = torch.randperm(n, device=dev)
      for i in range(n // b):
        idx = perm[i * b : (i + 1) * b]
        with torch.autocast(dev.type, torch.bfloat16, enabled=precision != "float32"):
          loss = F.cross_entropy(net(augment(x_all[idx])), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
      if dev.type == "cuda":
        torch.cuda.synchronize()

    times = []
    for _ in range(s["repeats"] + 1):
      t0 = time.perf_counter()
      epoch()
      times.append(time.perf_counter() - t0)
    return {"first_s": times[0], "images_per_s": (n // b) * b / min(times[1:])}

  def grouped(self) -> dict:
    """Epochs of `runs` ResNet-20s: one vmapped program vs one at a time."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import train_step

    s, k = self.sizes, self.sizes["runs"]
    images, labels = self.data(s["group_n"])
    x, y = jnp.asarray(images), jnp.asarray(labels)
    steps, state, hyper = train_step._jax_steps(
      "resnet20", (32, 32, 3), "cifar", s["batch"]
    )
    from jaxprune.train import sharding

    vsteps = dataclasses.replace(steps, vmapped=True)
    host = jax.device_get(state)
    # Placed as the compiled epochs return them, so no call retraces.
    place = lambda t: jax.device_put(t, sharding.replicated(steps.mesh))  # noqa: E731
    group = place(jax.tree_util.tree_map(lambda a: np.stack([a] * k), host))
    ghyper = jax.tree_util.tree_map(lambda a: np.stack([a] * k), hyper)
    keys = jax.random.split(jax.random.PRNGKey(1), k)
    singles = [place(host) for _ in range(k)]

    def grouped_epoch(e):
      nonlocal group
      group, m = vsteps.train_epoch(group, ghyper, x, y, keys, np.full(k, e, np.int32))
      jax.block_until_ready(m)

    def serial_epoch(e):
      for i in range(k):
        singles[i], m = steps.train_epoch(singles[i], hyper, x, y, keys[i], e)
      jax.block_until_ready(m)

    out = {}
    for label, run in (("grouped", grouped_epoch), ("serial", serial_epoch)):
      run(0)  # Compile.
      t0 = time.perf_counter()
      for e in range(1, s["repeats"] + 1):
        run(e)
      out[f"{label}_s"] = (time.perf_counter() - t0) / s["repeats"]
    out["speedup"] = out["serial_s"] / out["grouped_s"]
    return out

  def jsv(self) -> dict:
    import jsv

    return jsv.bench_model("resnet20", self.sizes["jsv_n"], 1, 256, full=False)


def environment(torch_device: str) -> dict:
  import jax
  import torch

  dev = jax.devices()[0]
  versions = {"python": platform.python_version()}
  for pkg in ("jax", "jaxlib", "jax-cuda12-plugin", "flax", "optax", "torch"):
    try:
      versions[pkg] = importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
      versions[pkg] = "not installed"
  versions["torch CUDA"] = torch.version.cuda or "none"
  return {
    "jax_device": f"{dev.platform} {getattr(dev, 'device_kind', dev)}",
    "torch_device": torch.cuda.get_device_name(0)
    if torch_device == "cuda"
    else torch_device,
    "versions": versions,
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
  }


def markdown(r: dict) -> str:
  env, mode = r["environment"], r["mode"]
  lines = [
    "# jaxprune on a GPU (`make bench-gpu`)",
    "",
    f"Written by `experiments/benchmarks/gpu.py` ({mode} mode"
    + (": tiny shapes, numbers are NOT meaningful" if mode == "quick" else "")
    + f") on {env['date']} in {r['seconds']:.0f} s.",
    "",
    f"* jax device: {env['jax_device']}; PyTorch device: {env['torch_device']}",
    "* Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
    f"* Sizes: {r['sizes']}",
    "",
    "## 1. CIFAR-shape epochs, resident data, images/s (higher is better)",
    "",
    "| model | precision | jaxprune | PyTorch | jaxprune / PyTorch | jaxprune first epoch |",
    "|---|---|---:|---:|---:|---:|",
  ]
  for e in r["epochs"]:
    j, t = e["jaxprune"], e["torch"]
    lines.append(
      f"| {e['model']} | {e['precision']} | {j['images_per_s']:.0f} | "
      f"{t['images_per_s']:.0f} | {j['images_per_s'] / t['images_per_s']:.2f} | "
      f"{j['first_s']:.1f} s |"
    )
  g, js = r["grouped"], r["jsv"]
  lines += [
    "",
    "jaxprune: `Steps.train_epoch` (one `lax.scan` per epoch on GPU), SGD momentum "
    "0.9, wd 1e-4, pad-crop + flip on device, `config.precision`. PyTorch: the "
    "twins of `torch_reference.py`, channels-last, cudnn.benchmark, TF32, bf16 "
    "autocast (bfloat16 rows), data and augmentation on the GPU. Best of the "
    "timed epochs after a first (compiling / autotuning) one.",
    "",
    f"## 2. {r['sizes']['runs']} ResNet-20 runs: one vmapped program vs one at a time",
    "",
    f"* grouped: {g['grouped_s']:.2f} s per epoch of all runs; one at a time: "
    f"{g['serial_s']:.2f} s; speed-up {g['speedup']:.2f}x "
    f"({r['sizes']['group_n']} examples per epoch, compiles excluded).",
    "",
    "## 3. Mean Jacobian singular value, ResNet-20",
    "",
    f"* N={js['n']}: jaxprune {1e3 * js['jacrev_s']:.0f} ms (jacrev + Gram "
    f"eigvals, on {env['jax_device']}), PyTorch torch.func on the CPU "
    f"{1e3 * js['torch_s']:.0f} ms; mean JSV {js['jacrev_jsv']:.5f} vs "
    f"{js['torch_jsv']:.5f}.",
    "",
  ]
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default=HERE, help="directory for RESULTS_GPU.md")
  parser.add_argument("--quick", action="store_true", help="tiny shapes, any device")
  args = parser.parse_args(argv)
  mode = "quick" if args.quick else "default"
  if not args.quick:
    ensure_gpu_stack()
  import jax

  if args.quick:  # Unoptimised XLA: the code paths in a fraction of the compiles.
    jax.config.update("jax_disable_most_optimizations", True)
  elif jax.default_backend() != "gpu":
    fail(f"jax sees no GPU (devices: {jax.devices()}); check the CUDA driver")
  import torch

  if not args.quick and not torch.cuda.is_available():
    fail("torch sees no CUDA device; reinstall a CUDA build of torch")
  sys.path.insert(0, HERE)
  from jaxprune import compile_cache, io_utils

  compile_cache.setup()  # A rerun on the same machine skips XLA compiles.
  t0 = time.perf_counter()
  bench = Bench(SIZES[mode], "cuda" if torch.cuda.is_available() else "cpu")
  images, labels = bench.data(bench.sizes["n"])
  epochs = []
  for name in bench.sizes["models"]:
    for precision in PRECISIONS:
      row = {"model": name, "precision": precision}
      row["jaxprune"] = bench.jax_epochs(name, precision, images, labels)
      row["torch"] = bench.torch_epochs(name, precision, images, labels)
      print(f"[bench-gpu] {row}", flush=True)
      epochs.append(row)
  results = {
    "mode": mode,
    "sizes": bench.sizes,
    "epochs": epochs,
    "grouped": bench.grouped(),
    "jsv": {k: v for k, v in bench.jsv().items() if not isinstance(v, str | bool)},
    "environment": environment(bench.torch_device),
  }
  results["jsv"]["n"] = bench.sizes["jsv_n"]
  results["seconds"] = time.perf_counter() - t0
  os.makedirs(args.out, exist_ok=True)
  io_utils.atomic_write_json(os.path.join(args.out, "results_gpu.json"), results)
  path = os.path.join(args.out, "RESULTS_GPU.md")
  io_utils.atomic_write_bytes(path, markdown(results).encode())
  print(f"[bench-gpu] wrote {path} in {results['seconds']:.0f} s")
  return 0


if __name__ == "__main__":
  sys.exit(main())
