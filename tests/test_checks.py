"""`jaxprune.checks`: the one choice validator every layer calls."""

import ml_collections
import pytest

from jaxprune import checks, models, pruning, train
from jaxprune.protocols import common


def test_choice_returns_the_value_and_names_field_and_allowed():
  assert checks.choice("B", "scratch.budget", ("E", "B")) == "B"
  with pytest.raises(
    ValueError, match=r"^scratch.budget must be one of \['E', 'B'\], got 'X'$"
  ):
    checks.choice("X", "scratch.budget", ("E", "B"))


def test_a_bool_does_not_pass_for_an_int():
  # True == 1 in Python: without the bool rule `True` would be "one of (0, 1)".
  with pytest.raises(ValueError, match="got True"):
    checks.choice(True, "stage", (0, 1))
  assert checks.choice(True, "flag", (True, False)) is True


def test_field_choice_reads_the_dotted_field():
  config = ml_collections.ConfigDict({"retrain": {"flavor": "le2021"}})
  assert checks.field_choice(config, "retrain.flavor", ("le2021",)) == "le2021"
  with pytest.raises(ValueError, match=r"^retrain\.flavor must be one of"):
    checks.field_choice(config, "retrain.flavor", ("zimmer2023",))


@pytest.mark.parametrize(
  "check, message",
  [
    (lambda c: pruning.validate(c.pruning), "pruning.mode must be one of"),
    (lambda c: common.choice(c, "pruning.mode", ("hard",)), "pruning.mode must be"),
  ],
)
def test_the_layers_share_its_message(check, message):
  config = ml_collections.ConfigDict({"pruning": pruning.default_config()})
  config.pruning.mode = "firm"
  with pytest.raises(ValueError, match=f"^{message}.*got 'firm'$"):
    check(config)


def test_models_and_the_loop_use_it():
  with pytest.raises(ValueError, match=r"^classifier must be one of .*got 'svm'$"):
    models.create("vgg16", classifier="svm")
  config = ml_collections.ConfigDict({"model": {"name": "resnet7"}})
  with pytest.raises(ValueError, match=r"^model.name must be one of \[.*'resnet56'"):
    checks.field_choice(config, "model.name", models.names())
  assert train.validate.__module__ == "jaxprune.train.validation"


def test_number_is_finite_real_and_above_its_minimum():
  assert checks.number(3, "during.cs.penalty", minimum=0) == 3.0
  for value, message in (
    (True, "must be a number, got True"),
    ("1e-8", "must be a number, got '1e-8'"),
    (float("inf"), "must be a finite number, got inf"),
    (-1e-8, "must be >= 0, got -1e-08"),
  ):
    with pytest.raises(ValueError, match=f"^during.cs.penalty {message}$"):
      checks.number(value, "during.cs.penalty", minimum=0)
