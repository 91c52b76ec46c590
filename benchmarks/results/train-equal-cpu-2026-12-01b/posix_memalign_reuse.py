"""Whether glibc reuses a freed block of exactly the requested size: posix_memalign(64, n), as torch allocates, against malloc."""
import ctypes
libc = ctypes.CDLL("libc.so.6")
libc.mallopt(-3, 64*2**20)  # M_MMAP_THRESHOLD high so heap is used
def pm(n):
    p = ctypes.c_void_p(); libc.posix_memalign(ctypes.byref(p), 64, ctypes.c_size_t(n)); return p.value
libc.free.argtypes = [ctypes.c_void_p]
n = 3670016
a = pm(n); b = pm(n); c = pm(n)
libc.free(b)
d = pm(n)
print("posix_memalign reuse:", d == b, hex(b), hex(d))
libc.malloc.restype = ctypes.c_void_p; libc.malloc.argtypes = [ctypes.c_size_t]
a = libc.malloc(n); b = libc.malloc(n); c = libc.malloc(n); libc.free(b); d = libc.malloc(n)
print("malloc reuse:", d == b)
