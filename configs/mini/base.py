"""Shared recipe of the CPU mini-reproduction (`make reproduce-mini`).

Every mini experiment trains MLP-7 (width 100, ReLU or Linear) on the offline
Fashion-MNIST (32x32, as the Dynamical Isometry paper's MNIST MLP), batch 128,
SGD momentum 0.9, weight decay 1e-4. The papers' schedules are compressed so
that the whole suite fits in about an hour on a 2-core CPU:

  pretraining   15 epochs, LR 0.05 with x0.1 steps at epochs 8 and 12 (the
                shape of the papers' CIFAR step schedules, 160 -> 15 epochs);
  retraining    a few epochs: 1-20 % of the pretraining budget (Zimmer et al.
                2023's budgets) up to ~40 % (Le & Hua 2021's 72 of 160).

Sweep points that share the pretraining fields and seed share one dense run
through the protocols' cache; `jaxprune.reproduce` points every experiment at
one `cache_dir`, so e.g. Le & Hua's and Zimmer et al.'s sweeps prune the same
three pretrained networks.
Paper files import this one (`from configs.mini import base`); their config
argument is `experiment=NAME[,smoke]` (or the older `NAME[,smoke]`), read by
`jaxprune.config_args.parse_arg`.
"""

from collections.abc import Sequence
from typing import Any

from ml_collections import ConfigDict

from configs import common
from jaxprune import config_args, config_utils

SEEDS = (0, 1, 2)
PRETRAIN_EPOCHS = 15
PRETRAIN_SPEC = "0:0.05,8:0.005,12:0.0005"


def mlp7(
  model: str = "mlp7_relu",
  epochs: int = PRETRAIN_EPOCHS,
  spec: str = PRETRAIN_SPEC,
  protocol: str = "prune_retrain",
) -> ConfigDict:
  """The pretraining recipe above, for `protocol`, before `finalize`."""
  config = common.fashion_mnist(protocol, model=model, epochs=epochs)
  config.schedule = ConfigDict(
    dict(name="piecewise", spec=spec, epochs=config.get_ref("num_epochs"))
  )
  config.progress = False  # One line per sweep point instead of bars.
  config.checkpoint_every_epochs = 5  # Resumable, with little I/O per epoch.
  return config


def smoke(arg: str | None) -> tuple[str, bool]:
  """'experiment=NAME,smoke' (or 'NAME,smoke') -> (NAME, True)."""
  parsed = config_args.parse_arg(arg, experiment="", smoke=False)
  return parsed.experiment, parsed.smoke


def finalize(config: ConfigDict, is_smoke: bool) -> ConfigDict:
  config = config_utils.finalize(config, "smoke" if is_smoke else None)
  return config


def seeds(is_smoke: bool) -> tuple[int, ...]:
  return SEEDS[:1] if is_smoke else SEEDS


def seeded(points: Sequence[dict[str, Any]], is_smoke: bool) -> list[dict[str, Any]]:
  """Every point once per seed (the smoke run: seed 0 only)."""
  return [{**p, "seed": s} for p in points for s in seeds(is_smoke)]
