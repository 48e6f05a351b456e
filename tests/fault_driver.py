"""Subprocess half of test_faults.py: a tiny run or sweep that SIGKILLs itself.

`python fault_driver.py run|sweep DATA_ROOT WORKDIR [FAULT]` runs the tiny
experiment of `get_config(DATA_ROOT)` (a `train` run, or a sweep over three
seeds) and kills its own process with SIGKILL at FAULT:

  compile           0.2 s into the first epoch's call (XLA is compiling);
  after_checkpoint  right after the first periodic checkpoint is on disk;
  checkpoint_write  while orbax writes the second periodic checkpoint;
  before_summary    after the final checkpoint, before summary.json;
  after_row         right after a sweep appended its first row;
  mid_row           halfway through writing a sweep's second row.

The file is also a config file: `python -m jaxprune.main
--config=tests/fault_driver.py:DATA_ROOT` runs the same experiment.
"""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def get_config(root):
  """3 epochs of MLP-7 (width 16) on the tiny dataset under `root`."""
  from jaxprune import config_utils
  from jaxprune.data import fashion_mnist_local

  fashion_mnist_local.FashionMnistLocal.strict_counts = False
  c = config_utils.base_config()
  c.data.data_dir = os.path.join(root, "tfds")
  c.data.manual_dir = os.path.join(root, "idx")
  c.data.image_size, c.data.train_limit = (32, 32), 256
  c.num_epochs, c.batch_size, c.eval_batch_size = 3, 64, 128
  c.progress = False
  c.model.init, c.model.widths = "orthogonal", (16,) * 6
  c.schedule.spec = "0:0.05,2:0.005"
  return c


def die():
  os.kill(os.getpid(), signal.SIGKILL)


def install(fault):
  """Patches the library so that the process kills itself at `fault`."""
  import orbax.checkpoint as ocp

  from jaxprune import io_utils
  from jaxprune.train import checkpointing, epochs, member

  if fault == "compile":
    train_epoch = epochs.train_epoch

    def first_epoch(*args, **kwargs):
      threading.Timer(0.2, die).start()
      return train_epoch(*args, **kwargs)

    epochs.train_epoch = first_epoch
  elif fault in ("after_checkpoint", "checkpoint_write"):
    save, saves = checkpointing.Checkpointer.save, []

    def killing_save(self, kind, step, state, meta):
      saves.append(kind)
      if fault == "checkpoint_write" and saves.count("latest") == 2:
        # Orbax writes in a background thread; die while it does.
        ocp.CheckpointManager.wait_until_finished = lambda _: (time.sleep(0.05), die())
      save(self, kind, step, state, meta)
      if fault == "after_checkpoint" and kind == "latest":
        die()

    checkpointing.Checkpointer.save = killing_save
  elif fault == "before_summary":
    write_summary = member.Member.summary

    def killing_summary(self, status, *args, **kwargs):
      if status == "completed":  # After the final checkpoint, before summary.json.
        die()
      return write_summary(self, status, *args, **kwargs)

    member.Member.summary = killing_summary
  elif fault in ("after_row", "mid_row"):
    append, rows = io_utils.append_jsonl, []

    def killing_append(path, row):
      if not path.endswith("results.jsonl"):
        return append(path, row)
      rows.append(row)
      if fault == "mid_row" and len(rows) == 2:
        with open(path, "a") as f:
          f.write(io_utils._dumps(row)[:40])
          f.flush()
          os.fsync(f.fileno())
        die()
      append(path, row)
      if fault == "after_row":
        die()
      return None

    io_utils.append_jsonl = killing_append
  elif fault:
    raise ValueError(f"unknown fault {fault!r}")


def main(mode, root, workdir, fault=""):
  from jaxprune import protocols
  from jaxprune.results import sweeps

  install(fault)
  config = get_config(root)
  print("started", flush=True)
  if mode == "run":
    protocols.run(config, workdir)
  else:
    config.num_epochs, config.schedule.spec = 1, "0:0.05"
    sweeps.run_sweep(config, sweeps.seeds([{}], [0, 1, 2]), workdir)
  print("finished", flush=True)


if __name__ == "__main__":
  main(*sys.argv[1:])
