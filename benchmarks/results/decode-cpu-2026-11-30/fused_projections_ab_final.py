"""Same-process A/B of the code as committed: SmolLM2 bf16, 64-token prompt, 128 new tokens, batch 1, with the
joint q,k,v / gate,up product (fused) and with it switched off (plain), taking turns; tokens/s, median of the last 5.
Run: PYTHONPATH=. .venv/bin/python benchmarks/results/decode-cpu-2026-11-30/fused_projections_ab_final.py
"""
import time, statistics, torch
import model.linear as ml
from model.loading import load_model
from model.sampler import SamplingParams, generate
model = load_model("smollm2-135m-instruct", torch.bfloat16)[0]
real = ml.joint_parameters
prompt=[list(range(100,164))]; P=SamplingParams(max_new_tokens=128)
res={'plain':[], 'fused':[]}
for rep in range(6):
    for name in ('plain','fused'):
        ml.joint_parameters = real if name=='fused' else (lambda layers: None)
        t=time.perf_counter(); out=generate(model, prompt, P, [], 0); res[name].append(128/(time.perf_counter()-t))
print({k:[round(x,1) for x in v] for k,v in res.items()}, {k: round(statistics.median(v[1:]),1) for k,v in res.items()})
