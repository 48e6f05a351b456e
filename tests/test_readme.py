"""Every shell command of README.md and configs/README.md runs (issue 23.4).

Commands are taken from the documents' ```bash blocks and from inline
`python -m ...` / `make ...` spans. `plan` gives each one its smoke form (config
`:smoke`, workdirs under a temporary directory, the tiny offline dataset) or a
reason it is not run here (long-running, a template with placeholders, or
covered by another test). A new command without a plan fails
`test_every_documented_command_has_a_plan`; the README walk-through (train,
prune the trained model, sweep, report, inspect, interactive use) runs in
order in `test_readme_walkthrough_runs_in_smoke_form`.

The absl command lines (`jaxprune.main`, `jaxprune.schedules`) run as real
`python -m` processes, the CLI contract; the argparse ones (`IN_PROCESS`) and
the Python snippet run in this process through the same `main(argv)` that
`python -m` calls, saving a JAX start-up per command (absl's global flags would
clash between in-process runs, argparse keeps no state).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ("README.md", os.path.join("configs", "README.md"))
FENCE = re.compile(r"```(bash|python)\n(.*?)```", re.S)
INLINE = re.compile(r"`((?:python -m|make) [^`]+)`")
PATH_FLAGS = ("--workdir", "--results", "--out")  # Moved under the test's tmp dir.
# argparse entry points, run in-process by `run` (module -> its `main(argv)`).
IN_PROCESS = {
  "jaxprune.data": "jaxprune.data.__main__",
  "jaxprune.inspect_model": "jaxprune.inspect_model",
  "jaxprune.report": "jaxprune.report",
  "jaxprune.sweeps": "jaxprune.sweeps",
}

# (pattern, reason): commands that are not run here, and why.
NOT_RUN = (
  (
    r"^(nohup )?make\b",
    "long-running make target (setup, full training, benchmarks, the 90-min "
    "mini suite); `make test` runs this suite",
  ),
  (
    r"CONFIG\.py|PAPER|TABLE|WORKDIR DIR|\.\.\.|ARG\b|i/n|sweeps/x",
    "a template with placeholders",
  ),
  (
    r"--distributed",
    "multi-host; tests/test_multiprocess.py runs it as real local processes",
  ),
  (
    r"prepare --force",
    "re-prepares the real dataset; tests/test_reliability.py runs --force on the "
    "tiny one",
  ),
  (
    r"^python -m jaxprune\.reproduce",
    "the smoke suite runs in tests/test_reproduce.py",
  ),
  (r"^python -m jaxprune\.\w+$", "the module named in prose"),
)


def commands() -> list[tuple[str, str]]:
  """(language, command) of every documented command, in document order."""
  found = []
  for doc in DOCS:
    with open(os.path.join(ROOT, doc)) as f:
      text = f.read()
    for lang, body in FENCE.findall(text):
      if lang == "python":
        found.append(("python", body))
        continue
      for line in body.replace("\\\n", " ").splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line:
          found.append(("bash", " ".join(line.split())))
    for span in INLINE.findall(FENCE.sub("", text)):
      found.append(("bash", " ".join(span.split())))
  return found


def reason_not_run(command: str) -> str | None:
  return next((why for pattern, why in NOT_RUN if re.search(pattern, command)), None)


def smoke_config(spec: str) -> str:
  """`path.py[:arg]` -> its smoke form (MNIST configs on offline Fashion-MNIST)."""
  path, _, arg = spec.partition(":")
  options = [a for a in arg.split(",") if a]
  if "wang2021_di" in path and "fashion_mnist" not in arg:
    options.append("fashion_mnist")  # The MNIST tables, offline.
  if "smoke" not in options and not path.startswith("configs/figures"):
    options.append("smoke")
  return path + (":" + ",".join(options) if options else "")


def smoke_argv(command: str, tmp: str, data: tuple[str, str]) -> list[str]:
  """The smoke form of a jaxprune command as argv (module first)."""
  words = shlex.split(re.sub(r"\[([^\]]*)\]", "", command))
  assert words[:2] == ["python", "-m"], command
  module, args = words[2], []
  for word in words[3:]:
    key, eq, value = word.partition("=")
    if key == "--config" and eq:
      value = smoke_config(value)
    elif eq and (value.startswith("workdirs/") or key in PATH_FLAGS):
      value = os.path.join(tmp, value.lstrip("/"))
    args.append(f"{key}{eq}{value}")
  data_dir, manual_dir = data
  if module in ("jaxprune.main", "jaxprune.sweeps"):
    args += [
      f"--config.data.data_dir={data_dir}",
      f"--config.data.manual_dir={manual_dir}",
    ]
  if module == "jaxprune.main":
    args.append("--config.progress=False")
  if module == "jaxprune.data":
    args += [f"--data_dir={data_dir}", f"--manual_dir={manual_dir}"]
  return [module, *args]


def _in_process(call) -> subprocess.CompletedProcess:
  """`call()` with stdout/stderr captured, as the process `python -m` would be."""
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      code = call() or 0
    except SystemExit as e:  # argparse errors and explicit exits.
      code = e.code if isinstance(e.code, int) else (e.code is not None)
      if isinstance(e.code, str):
        print(e.code, file=sys.stderr)
  return subprocess.CompletedProcess([], code, out.getvalue(), err.getvalue())


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
  """`python -m argv...` in ROOT: in this process for `IN_PROCESS` modules, else
  a real process with environment `env` (the absl command lines)."""
  if argv[0] in IN_PROCESS:
    main = importlib.import_module(IN_PROCESS[argv[0]]).main
    with contextlib.chdir(ROOT):
      return _in_process(lambda: main(argv[1:]))
  return subprocess.run(
    [sys.executable, "-m", *argv],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )


def test_every_documented_command_has_a_plan(tmp_path):
  found = commands()
  assert len(found) >= 12
  runnable = [c for lang, c in found if lang == "bash" and not reason_not_run(c)]
  for command in runnable:
    assert command.startswith("python -m jaxprune."), (
      f"{command!r}: add a smoke form or a reason to tests/test_readme.py"
    )
    smoke_argv(command, str(tmp_path), ("D", "M"))  # Parses.
  assert any("--config.num_epochs=10" in c for c in runnable)  # The first example.


def test_readme_walkthrough_runs_in_smoke_form(tiny_fmnist, tmp_path, process_env):
  data_dir, manual_dir, _ = tiny_fmnist
  ran, outputs, modules = [], {}, set()
  for lang, command in commands():
    if lang == "python":
      # Interactive use: the snippet, its paths moved under tmp_path.
      code = command.replace('"workdirs/', f'"{tmp_path}/workdirs/')
      with contextlib.chdir(ROOT):
        proc = _in_process(lambda code=code: exec(code, {"__name__": "__main__"}))
    elif reason_not_run(command) or command in ran:
      continue
    else:
      argv = smoke_argv(command, str(tmp_path), (data_dir, manual_dir))
      modules.add(argv[0])
      proc = run(argv, process_env)
    assert proc.returncode == 0, (
      f"{command}\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
    )
    ran.append(command)
    outputs[command] = proc.stdout
  assert len(ran) >= 9, ran
  # Both kinds ran: absl command lines as processes, argparse ones in-process.
  assert {"jaxprune.main", "jaxprune.schedules", *IN_PROCESS} <= modules
  pruned = next(out for c, out in outputs.items() if "dense_workdir" in c)
  assert f"dense weights: {tmp_path}/workdirs/mlp7 (retrain.dense_workdir)" in pruned
  assert "just pruned" in pruned
  python = next(out for c, out in outputs.items() if "jsv_summary" in c)
  assert "'mean'" in python
