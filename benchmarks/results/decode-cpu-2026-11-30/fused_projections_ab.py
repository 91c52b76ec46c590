"""A/B in one process: SmolLM2-135M-Instruct bf16 decoding (64-token prompt, 128 new tokens, batch 1) with
q, k, v concatenated into one weight per layer and gate, up into another (copies, a prototype: not the
model's code) against the model as it is. The two take turns, 5 generations each; tokens/s.
Run: PYTHONPATH=. .venv/bin/python benchmarks/results/decode-cpu-2026-11-30/fused_projections_ab.py
"""
import statistics
import time

import torch
from model.loading import load_model
from model.sampler import SamplingParams, generate
from model import transformer as T, kernels
from model.linear import linear
model = load_model("smollm2-135m-instruct")[0].to(torch.bfloat16).eval()
for layer in model.model.layers:
    a, m = layer.self_attn, layer.mlp
    a.qkv = torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).contiguous()
    m.gu = torch.cat([m.gate_proj.weight, m.up_proj.weight]).contiguous()
orig_attn, orig_mlp = T.Attention.forward, T.MLP.forward
def attn_fwd(self, x, cos, sin, mask, cache, cache_start):
    batch, length, _ = x.shape
    qd, kd = self.n_heads*self.head_dim, self.n_kv_heads*self.head_dim
    qkv = linear(x, self.qkv)
    q = qkv[..., :qd].view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)
    k = qkv[..., qd:qd+kd].view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
    v = qkv[..., qd+kd:].view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
    q, k = kernels.rope(q, k, cos, sin)
    if cache is not None:
        k, v = cache.update(self.layer_index, cache_start, k, v)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None and length > 1, enable_gqa=True)
    return self.o_proj(out.transpose(1, 2).reshape(batch, length, -1))
def mlp_fwd(self, x):
    gu = linear(x, self.gu); n = gu.shape[-1]//2
    return self.down_proj(kernels.swiglu(gu[..., :n], gu[..., n:]))
prompt=[list(range(100,164))]
P=SamplingParams(max_new_tokens=128)
def timeit():
    t=time.perf_counter(); out=generate(model, prompt, P, [], 0); return time.perf_counter()-t, out
base_out = generate(model, prompt, P, [], 0)
res={'plain':[], 'fused':[]}
for rep in range(5):
    for name in ('plain','fused'):
        T.Attention.forward, T.MLP.forward = (orig_attn, orig_mlp) if name=='plain' else (attn_fwd, mlp_fwd)
        t,out = timeit(); res[name].append(128/t)
        if name=='fused': same = out==base_out
print({k: [round(x,1) for x in v] for k,v in res.items()}, 'same tokens', same)
print('median', {k: round(statistics.median(v),1) for k,v in res.items()})
