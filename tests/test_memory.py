"""release_free_heap: freed heap blocks stop counting as resident memory (glibc)."""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# In a child process: the mallopt below would change how every later test allocates.
CHILD = textwrap.dedent("""
    import ctypes, os, sys
    sys.path.insert(0, {root!r})
    from common.memory import release_free_heap
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 256 * 2**20)  # M_MMAP_THRESHOLD: blocks of 64 MiB come from the heap, as tensors do
    libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]

    def resident_mib():
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    size = 64 * 2**20
    below, hole, above = (libc.malloc(size) for _ in range(3))
    ctypes.memset(hole, 1, size)
    libc.free(hole)  # between two live blocks: glibc keeps it, resident
    kept = resident_mib()
    release_free_heap()
    print(kept - resident_mib())
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_release_free_heap_returns_a_freed_block_between_live_ones_to_the_os():
    child = subprocess.run([sys.executable, "-c", CHILD.format(root=ROOT)], capture_output=True, text=True, check=True)
    assert float(child.stdout) >= 60  # of the 64 MiB hole
