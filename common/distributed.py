"""Several GPUs or machines, one run: torchrun and DistributedDataParallel in a few functions.

`torchrun --nproc_per_node 8 train.py ...` starts the script 8 times (on each of several machines
with --nnodes and --rdzv-endpoint). Each copy finds in its environment RANK (0 … WORLD_SIZE-1 over
all machines), LOCAL_RANK (its GPU on this machine), WORLD_SIZE and where the copies meet
(MASTER_ADDR, MASTER_PORT); `start` joins them in a process group (NCCL between GPUs, gloo on
CPU). A plain `python train.py` has none of these: it is rank 0 of 1, and every function below
returns at once without communicating.

How N processes compute exactly what one would:
  - every process loads the same model and data and builds the same plan (data/batching.py: a
    pure function of the data, the seed and the epoch);
  - `shard` gives process r the items r, r+N, r+2N, … of a list: the rows of each training
    micro-batch, the val batches, evaluate.py's generation batches. Each item goes to exactly one
    process, so nothing is duplicated or lost, and the global batch is the single-process batch;
  - `total` sums a number over the processes (an all_reduce), e.g. the target tokens of an
    accumulation window: each process divides its summed loss by the *global* count / N (DDP
    averages the processes' gradients: N times their mean is their sum), so the gradient is the
    single-process window's;
  - rank 0 alone writes and prints (the others' stdout goes to /dev/null; errors still show);
    `gather` brings the others' results to it, `from_rank0` tells them its decisions (a folder name).
Nothing depends on N but who computes which rows, so a run may be resumed with another N; the
checkpoint keeps every process's RNG state, so with the same N even the dropout masks are the same.
"""
import atexit
import os
import sys
from contextlib import contextmanager

import torch
import torch.distributed as dist

from common.errors import PhysloraError


def start(device: str) -> None:
    """Join the other processes if torchrun started this one; on CUDA, "cuda" then means this process's GPU."""
    if "RANK" not in os.environ or dist.is_initialized():
        return
    local_rank = int(os.environ["LOCAL_RANK"])
    on_gpu = device.startswith("cuda")
    if on_gpu:
        if device != "cuda":
            raise PhysloraError(f"--device {device}: under torchrun each process uses the GPU of its LOCAL_RANK; "
                                "pass --device cuda")
        if local_rank >= torch.cuda.device_count():
            raise PhysloraError(f"torchrun --nproc_per_node: process {local_rank} of this machine has no GPU "
                                f"({torch.cuda.device_count()} here); start at most one process per GPU")
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if on_gpu else "gloo",
                            device_id=torch.device("cuda", local_rank) if on_gpu else None)
    atexit.register(_leave)
    if dist.get_rank() > 0:
        sys.stdout = open(os.devnull, "w")


def finish() -> None:
    """The end of a successful run under torchrun: wait for every process, then leave at once.

    Why not simply return and let Python shut down: a gloo worker thread lets go of a collective's
    tensors a moment after the caller has its result, and letting go of a tensor Python has seen
    takes the GIL. If the interpreter is being torn down by then, Python stops the waiting thread
    inside a C++ destructor and the process aborts (SIGABRT, "terminate called without an active
    exception"), which torchrun reports as a failed run. So, as multiprocessing ends its children,
    the exit handlers run (one leaves the process group), the output is flushed, and os._exit ends
    the process and its threads without tearing the interpreter down. Call it on every process after
    its last collective; a process that failed never gets here, and torchrun stops the others.
    """
    if not dist.is_initialized():
        return
    dist.barrier()  # no process leaves while another may still need it
    atexit._run_exitfuncs()
    sys.stdout.flush()  # (torchrun runs python -u; other launchers may not)
    sys.stderr.flush()
    os._exit(0)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def shard(items: list) -> list:
    """This process's items: every world_size-th, from its rank on (all of them in a single process)."""
    return items[rank()::world_size()]


def total(value):
    """The sum of a number over every process (`value` itself in a single process)."""
    if not dist.is_initialized():
        return value
    summed = torch.tensor(float(value), dtype=torch.float64, device=_device())
    dist.all_reduce(summed)
    return summed.item()


def gather(items: list) -> list:
    """Every process's `items`, concatenated in rank order, on rank 0; [] on the others."""
    if not dist.is_initialized():
        return items
    parts = [None] * world_size() if rank() == 0 else None
    dist.gather_object(items, parts, dst=0)
    return [item for part in parts for item in part] if rank() == 0 else []


def from_rank0(value):
    """Rank 0's `value` on every process (it waits for rank 0 to get there)."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@contextmanager
def rank0_first():
    """Rank 0 runs the block before the others: what it downloads or generates, they find ready."""
    if rank() > 0:
        dist.barrier()
    yield
    if rank() == 0 and dist.is_initialized():
        dist.barrier()


def _device() -> torch.device:
    """Where collectives' tensors live: NCCL's on this process's GPU, gloo's on the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
