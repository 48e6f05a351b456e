r"""Pruning during training (protocol `during`): MLP-7-ReLU on Fashion-MNIST
pruned to 90% within a budget of 20 epochs by any registered method
(`jaxprune.pruning.during.METHODS`: dnw, dpf, gmp, ...), linear LR.

Config argument (comma-separated): `method=NAME` (default gmp), `ft=N` epochs
of fine-tuning with fixed masks after the budget (Zimmer et al.: 30 FT epochs
for the pruning-stable methods on CIFAR), `cyclic` (method gmp only: the LR
decays linearly to 0 and restarts after every pruning epoch, Zimmer et al.
App. C.3's "cyclic" GMP), `smoke` (a seconds-long run).

Run:
  python -m jaxprune.main --config=configs/protocols/during.py:method=dpf --workdir=workdirs/during_dpf
Expected (estimate, not yet measured at 20 epochs): ~85% test accuracy at
sparsity 0.90 for gmp and dpf; a few minutes on a 2-core CPU. Measured with
`--config.num_epochs=4 --config.data.train_limit=10000` (gmp_frequency=1):
gmp 65.5%, dpf 40.1%, dnw 10.0% (chance). DNW holds 90% sparsity from the first
step: the global top-k of MLP-7's initial weights keeps none of its 1024x100
input layer (its weights are ~3x smaller than the hidden layers'), and with
uniform selection the 7-layer ReLU net at 10% density does not train in 4
epochs either (also 10.0%); at 50% it does (76.8%). SET and RigL (sparse
from the first step, ERK, kernels scaled by 1/sqrt(density)), measured at 20
epochs: set 88.5%, rigl 88.2% (rigl from the dense init's scale: 10.0%). Same
4-epoch command, GSM and LC
(hard-pruned accuracy; in brackets the method's own forward at the end): gsm
12.4% (dense 73.8%; 10.1% with weight_decay 5e-3: 4 epochs are too few for
the passive weights to decay), lc 10.0% at its defaults (constant mu 1e-4),
10.0% with mu_init=1e-3, mu_factor=1.03 (mu ~10 at the end; global keeps
almost no input-layer weight, as for DNW) and 68.9% with that growing mu and
pruning.allocation=uniform.
Smoke (seconds): --config=configs/protocols/during.py:method=gmp,smoke
"""

import ml_collections

from configs import common
from jaxprune import config_args, config_utils
from jaxprune.pruning.during import gmp


def get_config(arg: str | None = None):
  a = config_args.parse_arg(arg, smoke=False, method="gmp", ft=0, cyclic=False)
  config = common.fashion_mnist("during")
  config.pruning.name = "unstructured"
  config.pruning.sparsity = 0.9
  config.during.method = a.method
  config.during.finetune_epochs = a.ft
  if a.method in ("set", "rigl"):
    # Sparse from the first step: a 90 % sparse MLP-7 does not train from the
    # dense init's scale (10 % test accuracy), it does with each kernel
    # divided by sqrt(its density) (20 epochs: RigL 88.2 %, SET 88.5 %).
    # Their initial distribution is `pruning.allocation`: ERK, Evci et al.'s.
    config.during[a.method].init_scale = "density"
    config.pruning.allocation = "erk"
  # GMP prunes after epochs 4, 8, 12, 16 (Zimmer et al. C.3 prune every 5 or
  # 10 of 200 epochs); the cubic schedule counts from the first epoch.
  config.pruning.gmp_frequency = 4
  if a.smoke:
    config = config_utils.smoke(config)
    config.pruning.gmp_frequency = 1  # Prune after epoch 1 of 2.
  if a.cyclic:
    if a.method != "gmp":
      raise ValueError(
        f"config argument cyclic applies to method=gmp only, got {a.method!r}"
      )
    epochs = int(config.num_epochs)
    restarts = [e for e, s in enumerate(gmp.plan(config)) if s >= 0 and e < epochs]
    config.schedule = ml_collections.ConfigDict(
      dict(
        name="cyclic_linear", lr=config.schedule.lr, epochs=epochs, restarts=restarts
      )
    )
  return config
