"""One definition of the reported "sparsity": result rows and ``inspect --config``.

Pinned to Wang et al. 2023 Table 6 (ResNet-56 on CIFAR-10, L1-norm pruning of
the first conv of every block), which counts sparsity as the fraction of all
the dense model's parameters that pruning removes.
"""

import pytest

from configs.wang2023 import table6
from jaxprune import inspect_model as jp_inspect
from jaxprune.protocols import common

# Pruning ratio -> (sparsity % printed in Table 6, the independent count %).
# The paper prints 70.57 / 90.39 where counting every parameter of the
# pruned ResNet-56 gives 70.58 / 90.45 (docs/provenance.md, "Sparsity").
TABLE6 = {
  0.3: (31.14, 31.14),
  0.5: (49.82, 49.82),
  0.7: (70.57, 70.58),
  0.9: (90.39, 90.45),
}


def _row_sparsity(config, surgery: bool) -> float:
  """The sparsity a protocol's result row reports after pruning ``config``."""
  config.pruning.surgery = surgery
  return common.measure_at_init(config)["sparsity"]


@pytest.mark.parametrize("ratio", sorted(TABLE6))
def test_table6_sparsity_through_inspect_and_rows(ratio):
  paper, counted = TABLE6[ratio]
  config = table6.get_config()
  config.pruning.ratio = ratio
  _, extra = jp_inspect.build_from_config(config)
  inspected = 100 * extra["sparsity"]
  assert round(inspected, 2) == counted
  assert inspected == pytest.approx(paper, abs=0.07)
  # Result rows: the same number, with surgery (and with masks alone).
  for surgery in (True, False) if ratio == 0.5 else (True,):
    assert 100 * _row_sparsity(config, surgery) == pytest.approx(inspected, abs=1e-9)
