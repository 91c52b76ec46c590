"""Scratch: score an adapter on val only (tuning; never test)."""
import argparse, json, sys, time, collections, re
sys.path.insert(0, '/work/main')
from evaluation.generation import GenerationSettings, answer_records
from evaluation.harness import score_system, group_metrics
from common.cli import load_model_from_args
p = argparse.ArgumentParser(); p.add_argument('run'); p.add_argument('data'); p.add_argument('--limit', type=int, default=None)
a = p.parse_args()
recs = [json.loads(l) for l in open(f'{a.data}/val.jsonl')][:a.limit]
model, tok = load_model_from_args(argparse.Namespace(model='smollm2-135m-instruct', adapter=a.run, dtype='bf16', device='cpu'))
t = time.time()
entries = answer_records(model, tok, recs, GenerationSettings(batch_size=32), f'{a.run}/val-outputs.jsonl')
scores = score_system(recs, entries, 5.0)
m = group_metrics(scores)['val']['physics_scenario']
keys = {k: v for k, v in m.items() if isinstance(v, dict) and 'rate' in v}
print(json.dumps({k: round(v['rate'], 3) for k, v in keys.items()}), f'{time.time()-t:.0f}s')
# per-check accuracy
st = collections.defaultdict(lambda: [0, 0])
by_id = {s['id']: s for s in scores}
for r in recs:
    pred = by_id[r['id']]['pred_class']
    k = r['answer']['governing_check'] + ('/F' if r['answer']['fails'] else '/P'); st[k][0] += pred == r['answer']['mode']; st[k][1] += 1
print(' '.join(f'{k}:{v[0]}/{v[1]}' for k, v in sorted(st.items())))
