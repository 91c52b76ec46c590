"""The machine-speed probe quoted around benchmark runs: bf16 and fp32 matmul rate of a 1024 x 896 x 4864 product
(the MLP up-projection of the Qwen2.5-0.5B shape), median of 10 after 3 warm-ups."""
import torch, time
torch.manual_seed(0)
for dt in (torch.bfloat16, torch.float32):
    a = torch.randn(1024, 896, dtype=dt); b = torch.randn(896, 4864, dtype=dt)
    for _ in range(3): a @ b
    ts = []
    for _ in range(10):
        t = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t)
    ts.sort(); print(dt, "%.2f TFLOP/s" % (2*1024*896*4864/ts[5]/1e12))
