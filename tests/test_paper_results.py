"""Tests for jaxprune.results.paper_results and the typed CSVs in third_party/paper_results."""

from __future__ import annotations

import csv

import pytest

from jaxprune.results import paper_results as pr

ALL = {paper: pr.load(paper) for paper in pr.PAPERS}


@pytest.mark.parametrize("paper", pr.PAPERS)
def test_file_parses_with_schema(paper):
  path = pr.csv_path(paper)
  assert path.is_file()
  with path.open(newline="", encoding="utf-8") as f:
    raw = list(csv.reader(f))
  assert tuple(raw[0]) == pr.FIELDS
  assert all(len(line) == len(pr.FIELDS) for line in raw[1:])
  rows = ALL[paper]
  assert len(rows) == len(raw) - 1 > 0
  assert {row["paper"] for row in rows} == {paper}


@pytest.mark.parametrize("paper", pr.PAPERS)
def test_row_ids_unique(paper):
  ids = [row["row_id"] for row in ALL[paper]]
  assert len(ids) == len(set(ids))
  assert all(ids) and all(i == i.strip() and " " not in i for i in ids)


@pytest.mark.parametrize("paper", pr.PAPERS)
def test_numeric_fields_and_ratios(paper):
  for row in ALL[paper]:
    assert isinstance(row["mean"], float), row["row_id"]
    for field in pr.NUMERIC_FIELDS:
      assert row[field] is None or isinstance(row[field], float), (row["row_id"], field)
    for field in pr.RATIO_FIELDS:
      assert row[field] is None or 0.0 <= row[field] <= 1.0, (row["row_id"], field)
    assert row["std"] is None or row["std"] >= 0.0, row["row_id"]
    assert row["epochs"] is None or row["epochs"] >= 0.0, row["row_id"]
    assert row["table"] and row["metric"], row["row_id"]
    if row["unit"] == "%" and row["metric"].endswith("accuracy"):
      assert 0.0 <= row["mean"] <= 100.0, row["row_id"]


def test_load_all_and_unknown_paper():
  assert len(pr.load()) == sum(len(rows) for rows in ALL.values())
  with pytest.raises(ValueError, match="unknown paper"):
    pr.load("nobody2024")


def _spot(paper, row_id, mean, std=None):
  (row,) = pr.find(ALL[paper], row_id=row_id)
  assert row["mean"] == pytest.approx(mean), row_id
  if std is None:
    assert row["std"] is None, row_id
  else:
    assert row["std"] == pytest.approx(std), row_id
  return row


def test_spot_wang2021_di():
  rows = ALL["wang2021_di"]
  # Table 1: MLP-7-Linear orthogonal init is exactly isometric.
  row = _spot("wang2021_di", "t1_mlp7linear_mean_jsv", 1.0, 0.0)
  assert (row["metric"], row["dataset"]) == ("mean_jsv", "MNIST")
  assert pr.value(rows, table="Table 1", model="LeNet-5-ReLU", metric="jsv_max") == (
    pytest.approx(3.6007),
    None,
  )
  # Table 3: pruning ratio 0.8, 90 epochs, LR 0.01 -> 91.36 (0.02); unpruned 92.77.
  (cell,) = pr.find(
    rows,
    table="Table 3",
    method="L1-norm",
    pruning_ratio=0.8,
    epochs=90,
    setting="90 epochs, initial finetune LR 0.01",
  )
  assert (cell["mean"], cell["std"]) == (pytest.approx(91.36), pytest.approx(0.02))
  assert cell["lr_schedule"] == "0:0.01,30:0.001,60:0.0001"
  _spot("wang2021_di", "t3_mlp7linear_unpruned", 92.77)
  _spot("wang2021_di", "t3_mlp7linear_pr0.9_900ep_lr0.001", 90.44, 0.01)
  # Table 7 (column order LR 0.01, LR 0.001) and Tables 4-6.
  _spot("wang2021_di", "t7_lenet5relu_pr0.9_orthp_900ep_lr0.001", 96.46, 0.07)
  _spot("wang2021_di", "t4_ours_b_ft_90ep_0.01_decay", 73.67)
  _spot("wang2021_di", "t5_resnet34_pr0.9_ft2", 61.28)
  _spot("wang2021_di", "t6_fisher_lr0.01_1.5m_acc", 95.10, 0.13)


def test_spot_wang2023():
  _spot("wang2023", "t1_l1norm_2.31x_top1", 75.24)
  _spot("wang2023", "t1_greg1_2.56x_speedup", 2.56)
  row = _spot("wang2023", "t4_pr0.95_p30f90_lr1e-1", 79.57, 0.15)
  assert row["setting"].startswith("SX-A") and row["epochs"] == 90
  _spot("wang2023", "t4_pr0.5_flops", 1.90)
  _spot("wang2023", "t4_pr0.7_scratch", 82.45, 0.13)
  _spot("wang2023", "t5_p90f30_lr1e-4_plus1485ep_top1", 78.18)
  _spot("wang2023", "t5_p60f60_lr1e-2_ta", 87.39)
  _spot("wang2023", "t6_resnet56_pr0.9_speedup", 11.41)
  _spot("wang2023", "t7_vgg19_pr0.5_l1norm_cosine0.01", 73.51, 0.18)
  _spot("wang2023", "t8_p90f30_lr1e-4_ta", 37.93)


def test_spot_le2021():
  _spot("le2021", "t1_cifar100_resnet110_pf40_clr200", 70.34, 0.24)
  _spot("le2021", "t2_cifar10_resnet56a_clr", 92.71, 0.33)
  _spot("le2021", "t2_imagenet_resnet34b_clr", 73.14, 0.03)
  _spot("le2021", "t5_imagenet_pfec_resnet34a_rclr", 73.47, 0.08)
  _spot("le2021", "t9_resnet110_pfec_accuracy_drop", -0.23)
  _spot("le2021", "t11_resnet18_pfecclr_l1_top1", 69.31, 0.06)
  _spot("le2021", "t14_56ep_stepwise_p34.9_clr", 93.26, 0.17)


def test_spot_liu2019():
  _spot("liu2019", "t1_imagenet_resnet34a_scratchb", 73.03)
  _spot("liu2019", "t1_cifar10_resnet110b_scratchb", 93.60, 0.25)
  _spot("liu2019", "t2_vggtiny_scratchb", -11.58)
  _spot("liu2019", "t4_cifar100_preresnet164_pr0.6_scratchb", 75.73, 0.29)
  _spot("liu2019", "t6_imagenet_resnet50_pr0.6_finetuned", 76.09)
  _spot("liu2019", "t7_total_width_pruned", 1689.2)
  _spot("liu2019", "t8b_cifar10_resnet110b_winningticket", 89.36, 0.30)
  _spot("liu2019", "t9b_cifar10_vgg16_pr0.8_winningticket", 92.75, 0.07)
  _spot("liu2019", "t21_stage5_pr0.6", 0.132)


def test_spot_zimmer2023():
  row = _spot("zimmer2023", "t3_t5small_wmt16_dense_bleu", 24.56, 0.007)
  assert row["unit"] == "BLEU"
  _spot("zimmer2023", "s3.2_renda_baseline_sp0.98_retrain_epochs", 3600)


def test_find_and_value():
  rows = ALL["liu2019"]
  hits = pr.find(rows, table="Table 1", dataset="ImageNet", method="Scratch-B")
  assert sorted(r["mean"] for r in hits) == [pytest.approx(72.91), pytest.approx(73.03)]
  assert pr.find(rows, table="Table 1", pruning_ratio=None, method="unpruned")
  assert pr.find(rows, setting=lambda s: "aggressive" in s)
  with pytest.raises(ValueError, match="unknown field"):
    pr.find(rows, colour="red")
  with pytest.raises(ValueError, match="exactly one row"):
    pr.value(rows, table="Table 1")


def _write(path, header, *lines):
  path.write_text("\n".join([",".join(header), *lines]) + "\n", encoding="utf-8")


GOOD = "liu2019,Table 1,r1,CIFAR-10,VGG-16,unpruned,,,,,,test_accuracy,93.63,0.16,%,"


def test_malformed_files_name_file_and_line(tmp_path):
  path = tmp_path / "liu2019.csv"
  _write(path, pr.FIELDS, GOOD)
  assert pr.load_file(path, "liu2019")[0]["mean"] == pytest.approx(93.63)

  _write(path, pr.FIELDS, GOOD, GOOD.replace("93.63", "n/a").replace(",r1,", ",r2,"))
  with pytest.raises(ValueError, match=r"liu2019\.csv:3: field 'mean' is not a number"):
    pr.load_file(path, "liu2019")

  _write(path, pr.FIELDS, GOOD, GOOD)
  with pytest.raises(ValueError, match=r"liu2019\.csv:3: duplicate row_id 'r1'"):
    pr.load_file(path, "liu2019")

  _write(path, pr.FIELDS, GOOD.replace(",,,,,test", ",,1.5,,,test"))
  with pytest.raises(ValueError, match=r"liu2019\.csv:2: sparsity 1.5 is outside"):
    pr.load_file(path, "liu2019")

  _write(path, pr.FIELDS, GOOD + ",extra")
  with pytest.raises(ValueError, match=r"liu2019\.csv:2: expected 16 fields"):
    pr.load_file(path, "liu2019")

  _write(path, pr.FIELDS[:-1], GOOD)
  with pytest.raises(ValueError, match=r"liu2019\.csv:1: header"):
    pr.load_file(path, "liu2019")

  _write(path, pr.FIELDS, GOOD.replace("93.63", ""))
  with pytest.raises(ValueError, match=r"liu2019\.csv:2: required field 'mean'"):
    pr.load_file(path, "liu2019")
