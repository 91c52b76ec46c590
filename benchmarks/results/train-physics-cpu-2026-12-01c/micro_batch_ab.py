"""Our physics step at micro-batch 8 x 2 vs 16 x 1 (same optimizer step) over the same 128 examples (one epoch:
8 windows of 16), after a warm-up step; fresh process per run, alternating."""
import sys, time, json, subprocess
sys.path.insert(0, '.')
def run(batch, accum):
    import tempfile
    import benchmarks.train_suite as ts
    ts.PHYSICS_BATCH, ts.PHYSICS_ACCUMULATION = batch, accum
    with tempfile.TemporaryDirectory() as d:
        folder, pad_id, examples = ts.physics_examples(d, 128)
        step, windows = ts.physics_loop(folder, pad_id, examples)
        step(windows[0])
        start = time.perf_counter()
        tokens = sum(step(w) for w in windows)
        seconds = time.perf_counter() - start
    print(json.dumps({"batch": batch, "accum": accum, "windows": len(windows), "seconds": seconds, "answer_tokens": tokens, "tps": tokens / seconds}))
if len(sys.argv) > 1:
    run(int(sys.argv[1]), int(sys.argv[2]))
else:
    for rnd in range(int(sys.argv[1]) if False else 4):
        for b, a in ((8, 2), (16, 1)) if rnd % 2 == 0 else ((16, 1), (8, 2)):
            out = subprocess.run([sys.executable, __file__, str(b), str(a)], capture_output=True, text=True)
            print((out.stdout.strip().splitlines() or [out.stderr[-500:]])[-1], flush=True)
