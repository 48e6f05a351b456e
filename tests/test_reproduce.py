"""The mini-reproduction suite: every experiment builds, every claim can find its
settings, and the runner writes a report with verdicts from smoke runs."""

import os
import pathlib
import subprocess

import jax
import pytest

from jaxprune import io_utils, protocols
from jaxprune.results import reproduce, settings, sweeps, verdicts

pytestmark = pytest.mark.usefixtures("fast_compiles")

CONFIGS = os.path.join(os.path.dirname(__file__), os.pardir, "configs")
SUITE = os.path.join(CONFIGS, "mini")
FULL_SUITE = os.path.join(CONFIGS, "cpu_full")  # Papers' settings on the CPU.
CLAIM_FILTERS = ("a", "b", "among", "when", "otherwise")


def experiments(suite=SUITE):
  for path in reproduce.paper_files(suite):
    module = sweeps.load_sweep_module(path)
    for name in module.EXPERIMENTS:
      yield os.path.basename(path)[:-3], module, name


CASES = [(paper, name) for paper, _, name in experiments()]


@pytest.mark.parametrize("suite", [SUITE, FULL_SUITE], ids=["mini", "cpu_full"])
@pytest.mark.parametrize("smoke", [False, True])
def test_every_experiment_builds_and_its_claims_match_its_points(smoke, suite):
  for paper, module, name in experiments(suite):
    arg = f"{name},smoke" if smoke else name
    spec = module.EXPERIMENTS[name]
    base = module.get_config(arg)
    points = sweeps.expand(base, module.get_sweep(arg))  # Unknown keys raise.
    for _, config, _ in points:
      protocols.get(config.protocol)  # A registered protocol.
    if not smoke:
      seeds = {c.seed for _, c, _ in points}
      assert not points or len(seeds) >= 3, f"{paper}:{name} has < 3 seeds"
    claims = reproduce._claims(module, name, arg)
    assert claims, f"{paper}:{name} checks no claim"
    if spec.get("analysis"):
      continue  # Its rows come from a study, not from sweep overrides.
    if smoke and suite == FULL_SUITE:
      continue  # The paper configs' smoke sweep is their first point alone.
    # The report's settings: the swept keys' values read from each config, as
    # for rows (a point that keeps the default protocol still has one).
    pseudo_rows = [{"overrides": o, "config": c.to_dict()} for o, c, _ in points]
    keys = settings.setting_keys(pseudo_rows)
    point_settings = [settings.setting_of(r, keys) for r in pseudo_rows]
    for claim in claims:
      verdicts.validate(claim)
      for field in CLAIM_FILTERS:
        where = claim.get(field)
        if where:
          # A typo in a filter would make the claim "no data" after an hour
          # of runs; every filter must select at least one point now.
          assert any(verdicts.matches(s, where) for s in point_settings), (
            f"{paper}:{name} claim {claim['id']} {field}={where} matches no point"
          )


def test_every_mini_experiment_is_listed_once():
  assert len(CASES) == len(set(CASES)) >= 8
  assert {paper for paper, _ in CASES} == {
    "le2021",
    "zimmer2023",
    "liu2019",
    "wang2021_di",
    "wang2023",
  }


def test_smoke_run_writes_report_with_verdicts(tiny_fmnist, tmp_path):
  data_dir, manual_dir, _ = tiny_fmnist
  out = tmp_path / "out"

  def run(report_dir, report_only=False):
    return reproduce.run_suite(
      SUITE,
      str(tmp_path / "wd"),
      str(report_dir),
      smoke=True,
      only=["wang2023:lr_epochs"],
      config_overrides={"data.data_dir": data_dir, "data.manual_dir": manual_dir},
      report_only=report_only,
    )

  sections = run(out)
  assert [s["experiment"] for s in sections] == ["lr_epochs"]
  assert sections[0]["runs"] == 4  # 4 settings x 1 smoke seed.
  text = (out / "REPORT.md").read_text()
  assert text.startswith("# Mini-reproduction report (SMOKE: not a result)")
  module = sweeps.load_sweep_module(os.path.join(SUITE, "wang2023.py"))
  for claim in module.EXPERIMENTS["lr_epochs"]["claims"]:
    assert claim["text"] in text
  # Every claim got a decided verdict: smoke settings are all present.
  assert all(v.status != verdicts.NO_DATA for v in sections[0]["verdicts"])
  assert (out / "wang2023_lr_epochs.csv").exists()
  assert any(f.endswith(".png") for f in sections[0]["figures"])
  # Every row says where it ran, and the section counts them.
  where = sweeps.platform()
  assert where.startswith("cpu: ") and f"jax {jax.__version__}" in where
  assert sections[0]["platforms"] == {where: 4}
  assert f"({where} 4 rows); commits: {sweeps.git_commit()} 4 rows." in text
  assert f"--only=wang2023:lr_epochs --smoke --data_dir={data_dir}" in text
  assert f"--manual_dir={manual_dir} --report_only\n" in text
  # A second invocation reuses every finished run.
  again = run(out)
  assert again[0]["wall_seconds"] < sections[0]["wall_seconds"]
  assert again[0]["table"] == sections[0]["table"]
  # Nothing of the invocation (date, machine, its time) is in the report: a
  # resumed run with nothing left, or --report_only, rewrites it byte for byte.
  assert (out / "REPORT.md").read_text() == text
  run(out, report_only=True)
  assert (out / "REPORT.md").read_text() == text

  # --report_only on an unfinished sweep: nothing runs, the report says so.
  results = tmp_path / "wd" / "wang2023" / "lr_epochs" / sweeps.RESULTS_FILE
  rows = io_utils.read_jsonl(str(results))
  io_utils.rewrite_jsonl(str(results), rows[:3])
  partial = run(tmp_path / "progress", report_only=True)
  assert (partial[0]["runs"], partial[0]["points"]) == (3, 4)
  assert len(io_utils.read_jsonl(str(results))) == 3  # The 4th point did not run.
  text = (tmp_path / "progress" / "REPORT.md").read_text()
  assert "3 rows of 4 points (UNFINISHED" in text
  assert text.splitlines()[0].startswith("# Mini-reproduction report (SMOKE")


def test_a_studys_rows_are_kept_for_report_only(tmp_path, monkeypatch):
  calls = []

  def study(config, paper_dir):
    calls.append(paper_dir)
    return [{"overrides": {"x": 1}, "seed": 0, "metrics": {"jsv/mean": 1.0}}]

  monkeypatch.setattr(reproduce.studies, "get", lambda name: study)
  exp_dir = str(tmp_path / "wd" / "paper" / "jsv")
  args = ("isometry", None, str(tmp_path / "wd"), "paper", exp_dir)
  rows = reproduce._study_rows(*args, report_only=False)
  assert calls == [str(tmp_path / "wd" / "paper")]
  # Stamped as a sweep's rows are: where and at which commit they ran.
  assert rows[0]["git_commit"] == sweeps.git_commit()
  assert rows[0]["platform"] == sweeps.platform()
  assert rows[0]["wall_time_seconds"] >= 0.0
  assert reproduce._study_rows(*args, report_only=True) == rows  # Read, not run.
  assert len(calls) == 1
  assert reproduce._study_rows(*args[:4], str(tmp_path / "none"), True) == []


def test_only_that_selects_nothing_is_an_error(tmp_path):
  with pytest.raises(ValueError, match="selects no experiment"):
    reproduce.run_suite(SUITE, str(tmp_path), str(tmp_path), only=["nope"])


def test_report_only_on_a_workdir_without_rows_names_the_record_to_restore(
  tmp_path, capsys
):
  # It would replace a committed report with an empty one.
  committed = pathlib.Path(COMMITTED, "cpu_full")
  before = {p: p.read_bytes() for p in committed.iterdir() if p.is_file()}
  with pytest.raises(SystemExit):
    reproduce.main(
      ["--suite=configs/cpu_full", f"--workdir={tmp_path}", "--report_only"]
    )
  assert "restore experiments/results/cpu_full/record" in capsys.readouterr().err
  after = {p: p.read_bytes() for p in committed.iterdir() if p.is_file()}
  assert after == before  # Not a table or figure written either.


COMMITTED = os.path.join(os.path.dirname(__file__), os.pardir, "experiments", "results")


def test_partial_run_never_targets_committed_results(tmp_path):
  committed = os.path.join(COMMITTED, "mini")
  assert reproduce.holds_committed_files(committed)
  for partial in ({"only": True}, {"smoke": True}):
    with pytest.raises(SystemExit):  # argparse's one-line error, exit code 2.
      reproduce.main(
        [f"--out={committed}", f"--workdir={tmp_path}"]
        + (["--only=le2021"] if "only" in partial else ["--smoke"])
      )
  assert reproduce.output_dir(None, "wd", partial=True) == os.path.join(
    "wd", reproduce.PARTIAL_OUT
  )
  assert reproduce.output_dir(None, "wd", partial=False) == reproduce.DEFAULT_OUT
  full = reproduce.output_dir(None, "wd", partial=False, suite_dir="configs/cpu_full/")
  assert full == os.path.join("experiments", "results", "cpu_full")
  assert reproduce.output_dir(str(tmp_path), "wd", partial=True) == str(tmp_path)


def test_a_committed_partial_report_may_be_replaced_by_a_partial_run(tmp_path):
  # A long run's progress report is committed, then refreshed next time; a
  # committed full report stays protected.
  subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
  report = tmp_path / "REPORT.md"
  report.write_text(f"# Mini-reproduction report {reproduce.PARTIAL_MARK}: ...)\n")
  git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t"]
  subprocess.run([*git, "add", "REPORT.md"], check=True)
  subprocess.run([*git, "commit", "-qm", "progress"], check=True)
  assert reproduce.holds_committed_files(str(tmp_path))
  assert reproduce.output_dir(str(tmp_path), "wd", partial=True) == str(tmp_path)
  report.write_text("# Mini-reproduction report\n")  # A full report.
  with pytest.raises(ValueError, match="holds committed results"):
    reproduce.output_dir(str(tmp_path), "wd", partial=True)


def test_smoke_run_without_out_writes_to_scratch(tiny_fmnist, tmp_path, capsys):
  data_dir, manual_dir, _ = tiny_fmnist
  report = pathlib.Path(COMMITTED, "mini", "REPORT.md")
  before = report.read_text()
  assert (
    reproduce.main(
      [
        f"--workdir={tmp_path}",
        "--only=wang2023:lr_epochs",
        "--smoke",
        f"--data_dir={data_dir}",
        f"--manual_dir={manual_dir}",
      ]
    )
    == 0
  )
  assert report.read_text() == before
  scratch = tmp_path / reproduce.PARTIAL_OUT / "REPORT.md"
  assert "SMOKE" in scratch.read_text()
  assert f"report goes to {tmp_path / reproduce.PARTIAL_OUT}" in capsys.readouterr().out


def test_where_rows_ran_is_said_only_when_recorded():
  unrecorded = reproduce.UNRECORDED
  assert reproduce._where_ran({}) == ""
  assert reproduce._where_ran({unrecorded: 7}) == ""  # Old reports stay as they were.
  assert (
    reproduce._where_ran({"cpu: cpu, jax 0.10.2": 3, "gpu: NVIDIA H200, jax 0.11.2": 2})
    == " (cpu: cpu, jax 0.10.2 3 rows; gpu: NVIDIA H200, jax 0.11.2 2 rows)"
  )
  assert reproduce._where_ran({"cpu: cpu, jax 0.10.2": 3, unrecorded: 1}).endswith(
    "; not recorded 1 rows)"
  )


def test_table7_runs_mlp7_first_then_lenet5s_short_points_before_long():
  """The order the cheap rows arrive in: every MLP-7-ReLU point, then both
  LeNet-5s' 90-epoch and Scratch points, then their 900-epoch points."""
  module = sweeps.load_sweep_module(os.path.join(FULL_SUITE, "wang2021_di.py"))
  order = [
    (p["model.name"], p.get("retrain.num_epochs") == module.LONG_EPOCHS)
    for p in module.get_sweep("table7")
  ]
  stages = [order[0]]
  for stage in order[1:]:
    if stage != stages[-1]:
      stages.append(stage)
  assert stages == [
    ("mlp7_relu", False),
    ("mlp7_relu", True),
    ("lenet5_linear", False),
    ("lenet5_relu", False),
    ("lenet5_linear", True),
    ("lenet5_relu", True),
  ]


def test_table7_nets_argument_keeps_those_nets_points_and_their_hashes():
  """`table7,nets=...` (a GPU running only the LeNet-5s) is the same points,
  in the same order, as the full sweep's for those nets; unknown nets fail."""
  module = sweeps.load_sweep_module(os.path.join(FULL_SUITE, "wang2021_di.py"))
  lenets = ("lenet5_linear", "lenet5_relu")
  full = [p for p in module.get_sweep("table7") if p["model.name"] in lenets]
  assert module.get_sweep("table7,nets=lenet5_linear+lenet5_relu") == full
  assert len(full) == 90
  assert module.get_config("table7,nets=lenet5_relu") == module.get_config("table7")
  for bad in ("table7,nets=lenet", "nets=mlp7_relu"):
    with pytest.raises(ValueError, match="nets="):
      module.get_sweep(bad)
