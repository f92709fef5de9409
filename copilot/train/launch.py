"""`copilot train --processes N`: start N training processes on this machine with torch's elastic launcher
(what `torchrun` and `accelerate launch --multi_gpu` run), each running `python -m copilot.cli.train` with
the same arguments; they find each other through the environment the
launcher sets (copilot.train.distributed). If one process dies, the launcher stops the others and exits
non-zero; what the run had checkpointed stays for `--resume`. A process lost after process 0 published the
version (it publishes only after the last step every process took part in) is a warning, not a failed run.

Users with an accelerate config run the same module themselves:
`accelerate launch --config_file cfg.yaml -m copilot.cli.train --data DIR --name NAME`.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable

from copilot.core.paths import usable_cores
from copilot.core.types import CopilotError, UserInputError


PARENT_ENV = "COPILOT_TRAIN_LAUNCHED"  # set for processes started by `copilot train --processes`


def check_processes(processes: int, device: str, gpus: int) -> None:
    """A launch this machine cannot run is a one-line error before anything starts."""
    if processes < 1:
        raise UserInputError(f"--processes must be at least 1, got {processes}")
    if device == "cuda" and processes > gpus:
        raise UserInputError(f"--processes {processes} on GPUs, but only {gpus} CUDA GPU(s) are visible "
                             "(one process per GPU)")
    if device == "cpu" and processes > usable_cores():
        raise UserInputError(f"--processes {processes} on CPU, but this machine has {usable_cores()} usable cores "
                             "(one process per core at most)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_env(processes: int, device: str) -> dict[str, str]:
    env = {"COPILOT_DEVICE": device, PARENT_ENV: "1", "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    if device == "cpu":  # the cores are shared out: N processes each with its own thread pool would oversubscribe
        env["OMP_NUM_THREADS"] = str(max(1, usable_cores() // processes))
    return env


def run(processes: int, device: str, worker_args: list[str]) -> None:
    """Run the processes to the end with torch's elastic launcher (no restarts); a process that fails stops
    the others, and that is one CopilotError naming the process and how it ended."""
    import logging
    import uuid

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)
    env = worker_env(processes, device)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the launcher hands its environment to the processes
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=processes, run_id=uuid.uuid4().hex,
                          rdzv_backend="c10d", rdzv_endpoint=f"127.0.0.1:{_free_port()}", max_restarts=0,
                          monitor_interval=0.5)
    try:
        elastic_launch(config, entrypoint=sys.executable)("-m", "copilot.cli.train", *worker_args)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        how = (f"was killed by {failure.signal_name()}" if failure.exitcode < 0
               else f"exited with code {failure.exitcode}")
        raise CopilotError(f"training process {rank} of {processes} {how}; the others were stopped") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def train_processes(processes: int, device: str, worker_args: list[str], name: str, registry,
                    log: Callable[[str], None] = lambda s: None) -> int:
    """Check the launch, run the processes, and return the one version of NAME they published. A failed run
    is one CopilotError naming the failed process and the checkpoint `--resume` continues from."""
    from copilot.models.device import gpu_count
    from copilot.train.checkpoint import latest_checkpoint, work_dir_for

    check_processes(processes, device, gpu_count())
    log(f"Starting {processes} training processes of {name} ({device}, {'gloo' if device == 'cpu' else 'nccl'})…")
    before = set(registry.versions(name))
    failure: CopilotError | None = None
    try:
        run(processes, device, worker_args)
    except CopilotError as exc:
        failure = exc
    new = sorted(set(registry.versions(name)) - before)
    if failure is not None:
        if len(new) == 1:  # process 0 publishes only after the last step every process took part in
            log(f"warning: {failure} after the run was published; {name}@{new[0]} is complete")
            return new[0]
        ck = latest_checkpoint(work_dir_for(name))
        kept = (f"the last checkpoint is {ck} (step {int(ck.name.split('-')[1])}): run the same command with --resume"
                if ck else "no checkpoint was written yet: run the same command again")
        raise CopilotError(f"{failure}; nothing was published; {kept}") from None
    if len(new) != 1:
        raise CopilotError(f"the training processes ended but published {len(new)} versions of {name!r}")
    return new[0]
