"""The adapted model's wrong answers on the test splits of an experiment: for each, the first check line where
its program differs from the teacher's, and what the calculator read (usage: wrong_answers.py RUN)."""
import json
import sys
from collections import Counter

run = sys.argv[1]
results = json.load(open(f"{run}/eval/results.json"))
kinds = Counter()
for e in results["examples"]:
    lora = e["lora"]
    if lora["correct"]:
        continue
    want = [l.strip() for l in e["target"].splitlines() if ":" in l and not l.startswith("CHECKS")]
    got = [l.strip() for l in lora["output"].splitlines() if ":" in l and not l.startswith("CHECKS")]
    first = next((i for i in range(max(len(want), len(got)))
                  if i >= len(want) or i >= len(got) or want[i] != got[i]), None)
    w = want[first] if first is not None and first < len(want) else "(none)"
    g = got[first] if first is not None and first < len(got) else "(none)"
    check = (w if w != "(none)" else g).split(":")[0]
    kinds[check] += 1
    print(f"{e['id']} [{e['split']}] true {lora['true_mode']} read {lora['pred_class']}\n  want: {w}\n  got:  {g}")
print("\nfirst differing check:", dict(kinds.most_common()))
