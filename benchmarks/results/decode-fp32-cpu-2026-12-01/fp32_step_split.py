"""An fp32 SmolLM2 decoding step at batch 1 split in two, for both stacks: the whole step (ms a token, best of 3
generations of 128 tokens after a 64-token prompt) and the step's 211 products alone (F.linear on the same
weights, back to back). Then a profile of one generation of each, top operators by self CPU time.
Run from the repository root: python fp32_step_split.py HF_FOLDER"""
import sys, time
sys.path.insert(0, ".")
import torch
import torch.nn.functional as F
import transformers
from model.weights import build_model, read_hf_folder
from model.sampler import generate, SamplingParams

folder = sys.argv[1]
ours = build_model(*read_hf_folder(folder), torch.float32, "cpu", source=folder).eval()
theirs = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
prompt = list(range(100, 164))
params = SamplingParams(max_new_tokens=128)

def ours_run():
    generate(ours, [prompt], params, [], 0)

def theirs_run():
    ids = torch.tensor([prompt])
    theirs.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=128, min_new_tokens=128,
                    do_sample=False, pad_token_id=0)

def best_ms(run):
    run()
    times = []
    for _ in range(3):
        t = time.perf_counter(); run(); times.append(time.perf_counter() - t)
    return min(times) / 128 * 1e3

with torch.inference_mode():
    for name, run in (("physlora", ours_run), ("transformers", theirs_run), ("physlora", ours_run), ("transformers", theirs_run)):
        print(f"{name:12s} generate ms/token {best_ms(run):.2f}", flush=True)
    weights = [m.weight for m in ours.modules() if isinstance(m, torch.nn.Linear)]
    xs = {w.shape[1]: torch.randn(1, w.shape[1]) for w in weights}
    def products():
        for w in weights: F.linear(xs[w.shape[1]], w)
    products()
    ts = []
    for _ in range(20):
        t = time.perf_counter(); products(); ts.append(time.perf_counter() - t)
    ts.sort()
    print(f"{len(weights)} products only ms/token {ts[10] * 1e3:.2f} (median), min {ts[0] * 1e3:.2f}", flush=True)
    for name, run in (("physlora", ours_run), ("transformers", theirs_run)):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            run()
        print(f"== {name}: one generation of 128 tokens, top operators by self CPU time")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))
