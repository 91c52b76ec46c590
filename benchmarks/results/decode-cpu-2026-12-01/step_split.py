"""A bf16 SmolLM2 decoding step at batch 1 split in two: the whole step (generate, ms a token) and its 121
matrix-vector products alone, run back to back on the same weights. Run from the repository root."""
import sys, time
sys.path.insert(0, ".")
import torch
from model.loading import load_model
from model.sampler import generate, SamplingParams
model, tok = load_model("smollm2-135m-instruct")
model = model.to(torch.bfloat16).eval()
prompts = [list(range(100, 164))]
p = SamplingParams(max_new_tokens=128)
with torch.inference_mode():
    generate(model, prompts, p, [], 0)
    best = min((lambda t: (generate(model, prompts, p, [], 0), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(3))
    print("generate ms/token %.2f" % (best / 128 * 1e3))
    from model.linear import joint_parameters
    weights = []
    for layer in model.model.layers:
        a, m = layer.self_attn, layer.mlp
        weights += [joint_parameters((a.q_proj, a.k_proj, a.v_proj))[0], a.o_proj.weight,
                    joint_parameters((m.gate_proj, m.up_proj))[0], m.down_proj.weight]
    weights.append(model.lm_head.weight)
    xs = {w.shape[1]: torch.randn(w.shape[1]).bfloat16() for w in weights}
    def products():
        for w in weights: torch.mv(w, xs[w.shape[1]])
    products()
    ts = []
    for _ in range(20):
        t = time.perf_counter(); products(); ts.append(time.perf_counter() - t)
    print("products only ms/token %.2f (median)" % (sorted(ts)[10] * 1e3), "min %.2f" % (min(ts) * 1e3))
