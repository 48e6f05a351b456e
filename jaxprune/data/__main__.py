"""`python -m jaxprune.data prepare [--data_dir=DIR] [--manual_dir=DIR] [--force]`.

Prepares the offline dataset `fashion_mnist_local`. When the IDX files are missing
from the default manual dir and we run as root, installs the Debian package
`dataset-fashion-mnist` with apt-get first; otherwise says how to get them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from jaxprune.data import datasets, fashion_mnist_local


def _files_present(manual_dir: str) -> bool:
  return not fashion_mnist_local.missing_files(manual_dir)


def ensure_debian_package(manual_dir: str) -> None:
  """Installs dataset-fashion-mnist with apt-get if needed and possible."""
  if _files_present(manual_dir):
    return
  if manual_dir != fashion_mnist_local.DEFAULT_MANUAL_DIR:
    raise SystemExit(
      f"Fashion-MNIST IDX files not found in --manual_dir={manual_dir}. "
      + fashion_mnist_local.HOW_TO_GET
    )
  if os.geteuid() != 0 or shutil.which("apt-get") is None:
    raise SystemExit(
      "Fashion-MNIST is not installed. Run as root: `apt-get update && apt-get "
      "install -y dataset-fashion-mnist` (or put the IDX .gz files in a directory "
      "and pass --manual_dir=DIR)."
    )
  print("Installing Debian package dataset-fashion-mnist with apt-get ...", flush=True)
  env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
  install = ["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"]
  if subprocess.run(install, env=env, check=False).returncode != 0:
    subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
    subprocess.run(install, env=env, check=True)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jaxprune.data")
  parser.add_argument("command", choices=["prepare"])
  parser.add_argument("--data_dir", default=None, help="TFDS data dir.")
  parser.add_argument("--manual_dir", default=fashion_mnist_local.DEFAULT_MANUAL_DIR)
  parser.add_argument(
    "--force", action="store_true", help="prepare again (damaged prepared files)"
  )
  args = parser.parse_args(argv)
  ensure_debian_package(args.manual_dir)
  try:
    datasets.prepare(
      "fashion_mnist_local", args.data_dir, args.manual_dir, force=args.force
    )
  except fashion_mnist_local.DatasetFileError as e:
    print(f"ERROR: {e}", file=sys.stderr)
    return 2
  print(f"fashion_mnist_local ready in {datasets.default_data_dir(args.data_dir)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
