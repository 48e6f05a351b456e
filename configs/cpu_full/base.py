"""The full-settings CPU suite (`python -m jaxprune.reproduce --suite=configs/cpu_full`).

Unlike `configs/mini` (every schedule compressed about 6x to fit an hour),
these experiments run the seeds' experiments that fit a 2-core CPU at the
papers' own settings, on the offline Fashion-MNIST (MNIST is not on this
machine): Dynamical Isometry's MNIST tables in full, and Le & Hua's
retraining variants at the budget ratios of their CIFAR recipe. Each paper
file wraps the full-scale paper config (`configs/<paper>/...`) and adds the
claims, so a point's config hash is the paper config's: a sweep run with
`python -m jaxprune.sweeps` and the suite share their runs.
"""

from jaxprune import config_args


def smoke(arg: str | None) -> tuple[str, bool]:
  """'experiment=NAME,smoke' (or 'NAME,smoke') -> (NAME, True)."""
  parsed = config_args.parse_arg(arg, experiment="", smoke=False)
  return parsed.experiment, parsed.smoke


def paper_arg(is_smoke: bool) -> str:
  """The paper configs' argument: Fashion-MNIST, shrunk for a smoke run."""
  return "smoke,data=fashion_mnist" if is_smoke else "data=fashion_mnist"
