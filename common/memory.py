"""Process memory: hand the heap's free pages back to the operating system, so that they stop counting as the
process's memory, and read the peak a run reports (`peak_memory_mib`).

torch allocates CPU tensors with posix_memalign(64, n), and glibc serves that from a free block of at
least n + 96 bytes: a freed tensor leaves a block that the next tensor of the same size never reuses.
The forward pass frees temporaries between the activations it keeps, so the heap fills with such holes,
resident and unused, just before the peak (the cross-entropy, with every activation alive).
glibc's malloc_trim(0) gives their whole pages back (the blocks stay free: a later allocation that
reuses one faults its pages in again). Where there is no glibc (macOS, musl), nothing happens.
"""
import ctypes
import functools
import resource
import sys

import torch


@functools.cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # no glibc
        return None


def release_free_heap() -> None:
    """Return the heap's free pages to the OS (glibc only); the allocated memory is untouched."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def peak_memory_mib(device: str) -> float:
    """The most memory the process has held: CUDA tensors on a GPU, the peak RSS on a CPU."""
    if str(device).startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
