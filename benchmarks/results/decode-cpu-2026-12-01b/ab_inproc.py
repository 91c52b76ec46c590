"""In-process alternating A/B of the decoding step's fewer operators: the old KV cache (one 5-d buffer), RoPE
sign applied per layer and RMSNorm reshaping its rows (old) against the new code. Run from the repository root."""
import sys, time, dataclasses, statistics
sys.path.insert(0, ".")
import torch
from torch import nn
import model.sampler as sampler
from model import kernels
from model.kernels import TorchOps
from model.loading import load_model
from model.transformer import Transformer, KVCache

class OldKVCache(nn.Module):
    def __init__(self, config, batch, max_len, dtype, device):
        super().__init__()
        shape = (config.num_hidden_layers, batch, config.num_key_value_heads, max_len, config.head_dim)
        self.register_buffer("keys", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("values", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
    def keep_rows(self, rows):
        self.keys, self.values = self.keys[:, rows], self.values[:, rows]
    def update(self, layer, start, k, v):
        end = start + k.shape[2]
        self.keys[layer, :, :, start:end] = k
        self.values[layer, :, :, start:end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

def old_tables(angles, dtype):
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)

def old_rope(q, k, cos, sin, inverse=False):
    half = q.shape[-1] // 2
    if inverse:
        sin = -sin
    signed_sin = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)
    return tuple((x * cos).addcmul_(x.roll(half, dims=-1), signed_sin) for x in (q, k))

def old_rms_norm(x, weight, eps):
    rows, ops = x.reshape(-1, x.shape[-1]), kernels.ops_for(x)
    return ops.rms_norm_forward(rows, weight, eps)[0].view(x.shape)

new_rope, new_tables, new_rms_norm = TorchOps.rope, kernels.rope_tables, kernels.rms_norm
def use(variant):
    old = variant == "old"
    kernels.rms_norm = old_rms_norm if old else new_rms_norm
    sampler.KVCache = OldKVCache if old else KVCache
    TorchOps.rope = staticmethod(old_rope if old else new_rope)
    kernels.rope_tables = old_tables if old else new_tables

big, tok = load_model("smollm2-135m-instruct")
cfg = dataclasses.replace(big.config, hidden_size=64, intermediate_size=128, num_attention_heads=2, num_key_value_heads=1, head_dim=32, vocab_size=512)
tiny = Transformer(cfg).to(torch.bfloat16).eval(); tiny.fuse_projections()
big = big.to(torch.bfloat16).eval(); big.fuse_projections()
# same outputs
for B in (1, 3):
    outs = []
    for v in ("old", "new"):
        use(v); outs.append(sampler.generate(big, [list(range(100, 120 + 5 * r)) for r in range(B)], sampler.SamplingParams(max_new_tokens=16), [], 0))
    print("B", B, "identical tokens old/new:", outs[0] == outs[1])
N = 32
REPS = int(sys.argv[1]) if len(sys.argv) > 1 else 12
for name, m in (("tiny", tiny), ("smollm2", big)):
    for B in (1, 16):
        prompts = [list(range(100, 164))] * B
        p = sampler.SamplingParams(max_new_tokens=N)
        res = {"old": [], "new": []}
        for v in res: use(v); sampler.generate(m, prompts, p, [], 0)
        for rep in range(REPS):
            for v in (("old", "new") if rep % 2 == 0 else ("new", "old")):
                use(v); t = time.perf_counter(); sampler.generate(m, prompts, p, [], 0); res[v].append((time.perf_counter() - t) / N * 1e3)
        ratios = [o / n for o, n in zip(res["old"], res["new"])]
        print(f"{name} batch {B}: ms/token old median {statistics.median(res['old']):.2f} new {statistics.median(res['new']):.2f}; "
              f"paired old/new median {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})", flush=True)
