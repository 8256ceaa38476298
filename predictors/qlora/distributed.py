"""Data-parallel fine-tuning: where this process stands among those that
``torchrun`` or ``accelerate launch`` started, and where its model goes.

Both launchers set ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` in each process's
environment; a plain ``bench train qlora`` has none of them (one process). Each
process holds a whole copy of the model on its own GPU (``device_map={"":
local_rank}``), the transformers Trainer shards the data and averages the
gradients, and rank 0 alone writes and prints. Torch-free.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from bench.errors import BenchError


@dataclass(frozen=True)
class Ranks:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    local_world_size: int = 0  # processes on this machine (0: not said, as many as world)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Is this the process that writes files and prints the final lines?"""
        return self.rank == 0


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise BenchError(f"environment variable {key}={raw!r} is not an integer "
                         "(set by torchrun / accelerate launch)") from None


def ranks(env: Mapping[str, str] | None = None) -> Ranks:
    """This process's place, from the launcher's environment variables."""
    env = os.environ if env is None else env
    world = _int(env, "WORLD_SIZE", 1)
    rank = _int(env, "RANK", 0)
    local = _int(env, "LOCAL_RANK", rank)
    here = _int(env, "LOCAL_WORLD_SIZE", 0)
    if world < 1 or not 0 <= rank < world or local < 0 or here < 0:
        raise BenchError(f"inconsistent launcher environment: WORLD_SIZE={world}, "
                         f"RANK={rank}, LOCAL_RANK={local}")
    return Ranks(world, rank, local, here)


def device_for(device: str, gpus: int, where: Ranks) -> str:
    """The device this process trains on, for the predictor's ``device`` value,
    on a machine with ``gpus`` visible GPUs.

    One process: ``device`` as given (``auto`` = the GPU if any, else CPU).
    Data parallel: ``auto`` or ``cuda`` = this process's own GPU,
    ``cuda:<local rank>``; ``cpu`` stays CPU (gloo). More processes on a
    machine than it has GPUs, a fixed GPU (``cuda:1``) or a spread over several
    (``device_map="auto"``, one model cut across GPUs) cannot serve data
    parallelism and are refused in one line."""
    if not where.distributed:
        return device
    name = device.strip().lower()
    if name == "cpu":
        return "cpu"
    if name in ("auto", "cuda"):
        if not gpus:
            return "cpu"
        # Every process refuses (not only those past the last GPU), so none
        # waits for the others at the first collective.
        here = max(where.local_world_size, where.local_rank + 1)
        if here > gpus:
            raise BenchError(f"{here} processes on this machine but it shows {gpus} "
                             f"GPU{'s' if gpus > 1 else ''}: each process needs one of its "
                             f"own; start at most {gpus} per machine (torchrun "
                             f"--nproc_per_node={gpus}) or pass --param device=cpu")
        return f"cuda:{where.local_rank}"
    raise BenchError(f"device={device} is not for data parallel training: each of the "
                     f"{where.world_size} processes holds a whole model on the GPU of its "
                     "local rank (device_map={'': local_rank}), never one device for all "
                     "nor device_map='auto'; leave device=auto (or pass device=cpu)")


def global_batch(per_device: int, grad_accum: int, where: Ranks) -> int:
    """Examples per optimiser step: per-device batch x processes x accumulation."""
    return per_device * where.world_size * grad_accum
