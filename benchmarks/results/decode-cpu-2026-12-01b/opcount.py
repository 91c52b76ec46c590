"""Aten operators dispatched by one SmolLM2 bf16 decoding step (batch 1 and 16) of the tree given as argv[1]."""
import sys, collections
sys.path.insert(0, sys.argv[1])
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from model.loading import load_model
from model.transformer import KVCache
class Count(TorchDispatchMode):
    def __init__(self): super().__init__(); self.c = collections.Counter()
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.c[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))
model, tok = load_model("smollm2-135m-instruct")
model = model.to(torch.bfloat16).eval(); model.fuse_projections()
with torch.inference_mode():
    for B in (1, 16):
        cache = KVCache(model.config, B, 200, torch.bfloat16, "cpu")
        model(torch.tensor([list(range(100,164))]*B), cache=cache)
        with Count() as c:
            model(torch.tensor([[5]]*B), positions=torch.tensor([[64]]*B), cache=cache, cache_start=64)
        print(sys.argv[1], "batch", B, "aten ops per decoding step:", sum(c.c.values()))
