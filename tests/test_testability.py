"""`results.testability`: groups where the compared retraining schedules are
the same learning rates step for step are found from the schedules."""

import numpy as np

from configs.mini import le2021
from jaxprune.results import sweeps, testability


def test_lrw_equals_ft_only_inside_the_last_lr_stage():
  config = le2021.get_config("retrain")
  lrs = {
    (variant, epochs): testability.retraining_lrs(
      sweeps.apply_overrides(
        config, {"retrain.schedule": variant, "retrain.num_epochs": epochs}
      )
    )
    for variant in ("ft", "lrw", "clr")
    for epochs in (2, 6)
  }
  # FT: the last LR of the original schedule throughout; LRW at 2 epochs
  # replays epochs 13-14 of 15, inside the last stage: the same numbers.
  assert np.all(lrs["ft", 2] == lrs["ft", 2][0])
  np.testing.assert_allclose(lrs["lrw", 2], lrs["ft", 2])
  assert lrs["lrw", 6].max() > lrs["ft", 6].max()  # Reaches an earlier stage.
  assert not np.allclose(lrs["clr", 2], lrs["ft", 2])
  groups = [{"retrain.num_epochs": e} for e in (2, 6)]
  found = testability.untestable_groups(
    config, {"retrain.schedule": "lrw"}, {"retrain.schedule": "ft"}, groups
  )
  assert [g["group"] for g in found] == [{"retrain.num_epochs": 2}]
  assert "same learning rate" in found[0]["why"]
  claims = {c["id"]: c for c in le2021.get_claims("retrain")}
  assert claims["le2021.lrw_beats_ft_l1"]["untestable"][0]["group"] == groups[0]
  assert "untestable" not in claims["le2021.clr_beats_ft_l1"]
