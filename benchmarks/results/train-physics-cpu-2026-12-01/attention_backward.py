"""CPU attention forward+backward at the physics shape (16 rows x 9 heads, 3 kv heads, 288 tokens) and the
equal-work shape: torch's flash attention against a written-out backward (fp32 softmax recomputed, GQA by grouping q).
err = max abs error / max abs value of each gradient (q, k, v) against float64."""
import time, torch, torch.nn.functional as F
def t(fn, n=5):
    fn()
    ts = []
    for _ in range(n):
        s = time.perf_counter(); fn(); ts.append(time.perf_counter() - s)
    return sorted(ts)[n // 2] * 1e3

class Attn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v):
        B, H, L, D = q.shape; Hk = k.shape[1]; G = H // Hk
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=G > 1)
        ctx.save_for_backward(q, k, v, out)
        return out
    @staticmethod
    def backward(ctx, dout):
        q, k, v, out = ctx.saved_tensors
        B, H, L, D = q.shape; Hk = k.shape[1]; G = H // Hk
        scale = D ** -0.5
        qg = q.reshape(B, Hk, G * L, D)
        s = (qg @ k.transpose(-1, -2)).float().view(B, Hk, G, L, L)
        causal = torch.ones(L, L, dtype=torch.bool).triu_(1)
        s.mul_(scale).masked_fill_(causal, float("-inf"))
        p = torch.softmax(s, -1)  # fp32
        pb = p.to(q.dtype).view(B, Hk, G * L, L)
        dog = dout.reshape(B, Hk, G * L, D)
        dv = pb.transpose(-1, -2) @ dog                      # (B,Hk,L,D): sums over G*L
        dp = (dog @ v.transpose(-1, -2)).float().view(B, Hk, G, L, L)
        delta = (dout.float() * out.float()).sum(-1).view(B, Hk, G, L, 1)
        ds = p.mul_(dp.sub_(delta)).mul_(scale).to(q.dtype).view(B, Hk, G * L, L)
        dq = (ds @ k).view(B, H, L, D)
        dk = ds.transpose(-1, -2) @ qg
        return dq, dk, dv

torch.manual_seed(0)
for dt in (torch.bfloat16, torch.float32):
  for B, H, Hk, L in ((16, 9, 3, 288), (4, 14, 2, 256)):
    D = 64
    q = torch.randn(B, H, L, D, dtype=dt, requires_grad=True)
    k = torch.randn(B, Hk, L, D, dtype=dt, requires_grad=True)
    v = torch.randn(B, Hk, L, D, dtype=dt, requires_grad=True)
    g = torch.randn(B, H, L, D, dtype=dt)
    def flash():
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True); o.backward(g)
    def ours():
        Attn.apply(q, k, v).backward(g)
    def grads(fn):
        q.grad = k.grad = v.grad = None; fn(); return [x.grad.clone() for x in (q, k, v)]
    a, b = grads(flash), grads(ours)
    # float64 reference
    q64, k64, v64 = [x.detach().double().requires_grad_() for x in (q, k, v)]
    F.scaled_dot_product_attention(q64, k64, v64, is_causal=True, enable_gqa=True).backward(g.double())
    ref = [x.grad for x in (q64, k64, v64)]
    err = lambda xs: [round(((x.double() - r).abs().max() / r.abs().max()).item(), 5) for x, r in zip(xs, ref)]
    print(dt, (B, H, Hk, L), "flash fwd+bwd", round(t(flash), 1), "ours", round(t(ours), 1), "ms; rel err flash", err(a), "ours", err(b))
