"""Subprocess half of test_ray_executor.py: Ray sweeps in a private network.

`python ray_driver.py DATA_ROOT OUT` must run inside a fresh network namespace
(`unshare --user --map-root-user --net`), where loopback is the only
interface, so that no Ray service can listen on any other address; it refuses
to start Ray anywhere else. It brings loopback up, starts one local Ray
instance of 2 CPUs (no dashboard, usage stats off, small object store) and
runs this file's sweep three times, each into its own directory under OUT:

  ray/       through the command line, `--executor=ray` (2 tasks of 2 points);
  killed/    the worker running seed 1 dies (os._exit) on its first attempt,
             `max_retries=1`: the task is retried;
  no_retry/  the same death with `max_retries=0`: the error goes to
             OUT/no_retry/error.txt, then a plain rerun fills the rest.

The file is also the sweep config: `--config=tests/ray_driver.py:DATA_ROOT`.
"""

import fcntl
import functools
import os
import shutil
import socket
import struct
import sys
import tempfile

TESTS = os.path.dirname(os.path.abspath(__file__))
# jaxprune, and fault_driver when this file is loaded as a config.
sys.path[:0] = [os.path.dirname(TESTS), TESTS]


def get_config(root):
  """1 epoch of fault_driver's tiny MLP-7 (width 16, 256 examples)."""
  import fault_driver

  c = fault_driver.get_config(root)
  c.num_epochs, c.schedule.spec = 1, "0:0.05"
  return c


def get_sweep(root=None):
  from jaxprune.results import sweeps

  return sweeps.seeds([{}], [0, 1, 2, 3])


def loopback_up():
  """`ip link set lo up` without the `ip` command (SIOCGIFFLAGS/SIOCSIFFLAGS)."""
  get_flags, set_flags, up = 0x8913, 0x8914, 0x1
  with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    request = struct.pack("16sH22x", b"lo", 0)
    flags = struct.unpack("16sH22x", fcntl.ioctl(s, get_flags, request))[1]
    fcntl.ioctl(s, set_flags, struct.pack("16sH22x", b"lo", flags | up))


def die_once(marker, config, run_dir):
  """Kills this Ray worker the first time it runs seed 1, else runs the point."""
  from jaxprune import protocols

  if config.seed == 1 and not os.path.exists(marker):
    open(marker, "w").close()
    os._exit(1)
  return protocols.run(config, run_dir)


def main(root, out):
  names = [name for _, name in socket.if_nameindex()]
  if names != ["lo"]:
    sys.exit(f"not in a private network namespace (interfaces {names}): no Ray")
  loopback_up()
  import ray

  from jaxprune.results import ray_sweeps, sweep_cli

  config = f"{os.path.abspath(__file__)}:{root}"
  base, sweep = get_config(root), get_sweep()
  temp = tempfile.mkdtemp(prefix="ray")  # Short: Ray's socket paths.
  ray.init(
    address="local",
    num_cpus=2,
    include_dashboard=False,
    object_store_memory=100 << 20,
    _node_ip_address="127.0.0.1",
    _temp_dir=temp,
  )
  cli = [f"--config={config}", f"--workdir={out}/ray", "--executor=ray"]
  assert sweep_cli.main([*cli, "--ray.max_retries=1"]) == 0
  die = functools.partial(die_once, os.path.join(out, "killed.marker"))
  options = ray_sweeps.RayOptions(max_retries=1)
  ray_sweeps.run_sweep_ray(base, sweep, f"{out}/killed", options, run_fn=die)
  die = functools.partial(die_once, os.path.join(out, "no_retry.marker"))
  options = ray_sweeps.RayOptions(max_retries=0)
  try:
    ray_sweeps.run_sweep_ray(base, sweep, f"{out}/no_retry", options, run_fn=die)
  except ray_sweeps.RayExecutorError as e:
    with open(f"{out}/no_retry/error.txt", "w") as f:
      f.write(str(e))
  ray_sweeps.run_sweep_ray(base, sweep, f"{out}/no_retry", options)
  ray.shutdown()
  shutil.rmtree(temp, ignore_errors=True)
  print("finished", flush=True)


if __name__ == "__main__":
  main(*sys.argv[1:])
