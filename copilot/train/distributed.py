"""Data-parallel training across processes, on torch.distributed as accelerate sets it up.

A run started by a launcher (`copilot train --processes N`, `torchrun`, or `accelerate launch`; they all
set WORLD_SIZE/RANK/LOCAL_RANK) joins one process group: gloo on CPU, NCCL on GPUs (accelerate's
`PartialState` picks the backend and, on GPUs, each process's device). Every process tokenizes and packs
the same rows and draws the same batch plan; each takes its shard of a step's rows (rank::world),
computes gradients on them, and the LoRA gradients are summed across processes with one all-reduce per
optimizer step — the reduction DDP performs, done once after gradient accumulation, so processes with
unequal micro-batches never wait on each other's backward passes. The loss is normalized by the
whole step's completion-token count, so N processes with the same global batch take the same steps as one.
Process 0 alone logs, shows the progress bar, writes checkpoints and publishes the candidate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from copilot.core.types import CopilotError

# A collective that waits longer than this means a peer is gone (a crashed or killed process): fail
# instead of hanging. Generous: process 0 may be writing a checkpoint while the others wait.
COLLECTIVE_TIMEOUT = timedelta(minutes=10)


def launched() -> bool:
    """True in a process started by a distributed launcher with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


@dataclass
class Group:
    """This process's place in the run: rank 0 of 1 for a plain run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def join(cls, device: str) -> Group:
        """Join the launcher's process group (a no-op for a single process)."""
        if not launched():
            return cls()
        from accelerate import PartialState

        state = PartialState(cpu=(device == "cpu"), timeout=COLLECTIVE_TIMEOUT)
        return cls(state.process_index, state.num_processes, state.local_process_index)

    def shard(self, rows: list[Any]) -> list[Any]:
        return rows[self.rank::self.world]

    def sum_gradients(self, params: list[Any], extra: list[float]) -> list[float]:
        """Sum every parameter's gradient (missing ones count as zero) and the `extra` numbers across
        processes, in one all-reduce; returns the summed extras."""
        if self.world == 1:
            return extra
        import torch
        import torch.distributed as dist

        dev = params[0].device
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params]
                         + [torch.tensor(extra, dtype=torch.float32, device=dev)])
        _collective(dist.all_reduce, flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).to(p.dtype)
            offset += n
        return [float(x) for x in flat[offset:]]

    def max(self, values: list[float]) -> list[float]:
        """The largest of each value across processes (elapsed time, a stop request): every process
        then makes the same decision."""
        if self.world == 1:
            return values
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        _collective(dist.all_reduce, t, op=dist.ReduceOp.MAX)
        return [float(x) for x in t.cpu()]

    def same_weights(self, params: list[Any]) -> None:
        """Start every process from process 0's trainable weights."""
        if self.world == 1:
            return
        import torch.distributed as dist

        for p in params:
            _collective(dist.broadcast, p.data, src=0)

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            _collective(dist.barrier)

    def __enter__(self) -> Group:
        return self

    def __exit__(self, exc_type, *_) -> None:
        # A process that finished its work leaves the group before it exits: a gloo group left to the
        # interpreter's teardown can abort it ("terminate called without an active exception") after the run
        # was published. A failed process just ends; the launcher stops the others.
        if exc_type is None:
            self.close()

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _collective(fn, *args, **kwargs):
    """A collective whose peer is gone (killed, crashed, timed out) is one clear error, not a gloo traceback."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise CopilotError(f"lost contact with another training process ({first[:160]})") from None
