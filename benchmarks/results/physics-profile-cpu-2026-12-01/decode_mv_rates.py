"""bf16 and fp32 matrix-vector product time and read rate at SmolLM2's decoding shapes (q|k|v joint, o, gate|up
joint, down, lm_head), cache-hot except the lm_head, and the machine's copy bandwidth."""
import torch, time
torch.manual_seed(0)
shapes = [(960,576),(576,576),(3072,576),(576,1536),(49152,576)]
def t(f, n=200):
    for _ in range(10): f()
    ts=[]
    for _ in range(n):
        a=time.perf_counter(); f(); ts.append(time.perf_counter()-a)
    ts.sort(); return ts[n//2]
# big copy bandwidth
big = torch.randn(64*1024*1024//4); dst = torch.empty_like(big)
bw = 2*big.numel()*4 / t(lambda: dst.copy_(big), 20) / 1e9
print("copy bandwidth GB/s (read+write)", round(bw,1))
for (o,i) in shapes:
    for dt in (torch.bfloat16, torch.float32):
        W = torch.randn(o,i).to(dt); x = torch.randn(i).to(dt)
        s = t(lambda: torch.mv(W,x))
        print(o,i,dt, "%.1f us  %.1f GB/s" % (s*1e6, W.numel()*W.element_size()/s/1e9))
