"""One bf16 LoRA layer forward + backward (2304 x 576 -> 576, r 8, p 0.05) of two checkouts, in fresh processes taking turns."""
import sys, os, subprocess
a, b, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
child = r'''
import sys, os, time
sys.path.insert(0, os.environ["ROOT"])
import torch
from lora.layer import TorchOps
torch.manual_seed(0)
dt = torch.bfloat16
x = torch.randn(2304, 576).to(dt); W = torch.randn(576, 576).to(dt) / 24; A = torch.randn(8, 576) / 24; B = torch.randn(576, 8) / 8
dy = torch.randn(2304, 576).to(dt)
def once(seed):
    y, u = TorchOps.lora_forward(x, W, None, A, B, 4.0, 0.05, seed)
    TorchOps.lora_backward(dy, x, W, A, B, u, 4.0, 0.05, seed, True, True, True)
for s in range(5): once(s)
ts = []
for s in range(40):
    t = time.perf_counter(); once(s); ts.append(time.perf_counter() - t)
ts.sort()
print(os.environ["ROOT"], "median %.2f ms" % (ts[20] * 1e3), flush=True)
'''
for r in range(rounds):
    for root in ((a, b) if r % 2 == 0 else (b, a)):
        subprocess.run([sys.executable, "-c", child], env=dict(os.environ, ROOT=root))
