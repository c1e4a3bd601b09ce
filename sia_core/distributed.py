"""Batch studies past one process, on PyTorch's own distributed engine (`torchrun`).

`torchrun --nproc-per-node K -m sia_core <study> ...` starts K copies of the CLI with RANK / WORLD_SIZE set;
`init_from_environment` joins them into one process group (gloo on CPU, nccl on GPU; any number of nodes through
torchrun's rendezvous). A study shards its images by whole batches, round robin: every batch a process runs is
exactly a batch of the one-process run, so the per-image numbers are the same computation, and
`gather_rows` puts the shards back in the original order on every process. Without torchrun everything here is
a no-op for one process.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    """This process's place in the group: `rank` of `world_size` (0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def current_shard() -> Shard:
    if dist.is_available() and dist.is_initialized():
        return Shard(dist.get_rank(), dist.get_world_size())
    return Shard()


def init_from_environment() -> Shard:
    """Join the process group torchrun describes in the environment (WORLD_SIZE > 1), once; else one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return current_shard()


SHUTDOWN_WAIT_SECONDS = 120


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        if sys.exc_info()[0] is None and dist.get_backend() == "gloo":
            # on a clean exit every rank waits for the others before any tears its group down: a rank that leaves
            # while a peer's gloo threads still talk to it can abort that peer ("terminate called without an
            # active exception", once in a CI run); a peer that failed is not waited for past the timeout
            try:
                dist.monitored_barrier(timeout=datetime.timedelta(seconds=SHUTDOWN_WAIT_SECONDS))
            except RuntimeError:
                pass  # torchrun reports the failed peer
        dist.destroy_process_group()


def _collective_device() -> torch.device:
    """nccl gathers CUDA tensors, gloo CPU ones."""
    return torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")


def batch_aligned_indices(n: int, batch_size: int, shard: Shard) -> torch.Tensor:
    """The images `shard` runs: batches rank, rank + K, rank + 2K, ... of the one-process batching (batch b holds
    images b·batch_size .. (b+1)·batch_size − 1), so each of its batches is one the single process runs."""
    batches = range(shard.rank, -(-n // batch_size), shard.world_size)
    parts = [torch.arange(b * batch_size, min((b + 1) * batch_size, n)) for b in batches]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


def gather_rows(part: torch.Tensor, n: int, batch_size: int, shard: Shard) -> torch.Tensor:
    """The (n, ...) tensor whose rows `batch_aligned_indices` gave each process, assembled on every process from
    each one's `part` (its rows, in its order). Every process knows every shard's indices, so only the rows
    travel (padded to the longest shard: all_gather needs equal shapes)."""
    if not shard.is_distributed:
        return part
    indices = [batch_aligned_indices(n, batch_size, Shard(rank, shard.world_size)) for rank in range(shard.world_size)]
    longest = max(len(index) for index in indices)
    device = _collective_device()
    dtype = torch.uint8 if part.dtype == torch.bool else part.dtype  # gloo has no bool all_gather
    padded = torch.zeros((longest, *part.shape[1:]), dtype=dtype, device=device)
    padded[:len(part)] = part.to(device, dtype)
    gathered = [torch.empty_like(padded) for _ in range(shard.world_size)]
    dist.all_gather(gathered, padded)
    whole = torch.empty((n, *part.shape[1:]), dtype=dtype)
    for index, rows in zip(indices, gathered):
        whole[index] = rows[:len(index)].cpu()
    return whole.to(part.dtype)


def slowest(seconds: float, shard: Shard) -> float:
    """The largest of every process's `seconds` (the wall time of a sharded step is its slowest shard's)."""
    if not shard.is_distributed:
        return seconds
    value = torch.tensor([seconds], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return float(value.item())


def sharded_attack_batches(attack, model, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> list:
    """`[attack(model, batch) for each batch of batch_size]`, as one process runs it, with the batches shared among
    the processes of the group: each runs its own whole batches, then every per-image tensor of the results is
    gathered in order and each history curve is averaged over all images, so every process gets the one result
    the one-process run's batches concatenate to (a list of one). One process: the plain list of batch results."""
    from sia_core.attacks.base import concatenate_results

    shard = current_shard()
    n = len(y)
    if not shard.is_distributed or n == 0:
        return [attack(model, x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, n, batch_size)]
    index = batch_aligned_indices(n, batch_size, shard)
    parts = [attack(model, x[batch], y[batch]) for batch in index.split(batch_size)]
    # a process without a batch runs one image it then drops: the result's fields and history keys, for the gathering
    mine = concatenate_results(parts) if parts else attack(model, x[:1], y[:1])
    rows = len(index)
    tensors = {name: gather_rows(value[:rows], n, batch_size, shard)
               for name, value in mine.__dict__.items() if isinstance(value, torch.Tensor) and value.dim() > 0
               and len(value) == (rows if parts else 1)}
    history = {}
    for key, curve in mine.history.items():
        weighted = torch.tensor(curve, dtype=torch.float64, device=_collective_device()) * rows
        dist.all_reduce(weighted, op=dist.ReduceOp.SUM)  # every curve has the same number of steps
        history[key] = [float(value) / n for value in weighted.cpu()]
    return [dataclasses.replace(mine, **tensors, history=history)]


def map_batches(compute, n: int, batch_size: int) -> tuple[torch.Tensor, ...]:
    """`compute(index)` (a tuple of per-image tensors for the images `index`) over the batches of `batch_size`,
    concatenated in order, as one process runs it; under torchrun each process computes its own whole batches and
    every process gets every row (`gather_rows`, so on the CPU)."""
    shard = current_shard()
    if not shard.is_distributed:
        outputs = [compute(torch.arange(start, min(start + batch_size, n))) for start in range(0, n, batch_size)]
        return tuple(torch.cat(parts) for parts in zip(*outputs))
    index = batch_aligned_indices(n, batch_size, shard)
    outputs = [compute(batch) for batch in index.split(batch_size)]
    if not outputs:  # no batch here: one image's output gives the shapes, and no rows
        outputs = [tuple(part[:0] for part in compute(torch.arange(min(1, n))))]
    return tuple(gather_rows(torch.cat(parts), n, batch_size, shard) for parts in zip(*outputs))
