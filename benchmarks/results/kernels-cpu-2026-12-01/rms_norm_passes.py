"""RMSNorm forward and backward in plain torch (model/kernels.py TorchOps) at a physics micro-batch (2304 rows of 576),
timed (median of 20) with their max relative error against float64. Run from the repository root of the version to time."""
import time, torch, sys, os
sys.path.insert(0, os.getcwd())
from model.kernels import TorchOps
def t(fn, n=20):
    fn(); ts = []
    for _ in range(n):
        s = time.perf_counter(); fn(); ts.append(time.perf_counter() - s)
    return sorted(ts)[n // 2] * 1e3
for dt in (torch.bfloat16, torch.float32):
    torch.manual_seed(0)
    x = torch.randn(2304, 576, dtype=dt) * 3; w = torch.randn(576, dtype=dt); dy = torch.randn(2304, 576, dtype=dt)
    y, r = TorchOps.rms_norm_forward(x, w, 1e-5)
    x64 = x.double().requires_grad_()
    r64 = torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + 1e-5)
    w64 = w.double().requires_grad_()
    y64 = w64 * (x64 * r64); y64.backward(dy.double())
    dx, dw = TorchOps.rms_norm_backward(dy, x, w, r, True)
    e = lambda a, b: ((a.double() - b).abs().max() / b.abs().max()).item()
    print(dt, "fwd %.2f ms" % t(lambda: TorchOps.rms_norm_forward(x, w, 1e-5)), "bwd %.2f ms" % t(lambda: TorchOps.rms_norm_backward(dy, x, w, r, False)),
          "y err %.1e dx err %.1e dw err %.1e" % (e(y, y64), e(dx, x64.grad), e(dw, w64.grad)), dx.dtype)
