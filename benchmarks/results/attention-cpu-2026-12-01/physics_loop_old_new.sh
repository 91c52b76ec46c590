# train.py's loop on the physics workload (benchmarks.train_suite.physlora_physics, 6 timed steps after a warm-up),
# the code before this session (f9804b0, checked out at $OLD) and now, in fresh processes taking turns.
# Run from the repository root: OLD=/tmp/old bash benchmarks/results/attention-cpu-2026-12-01/physics_loop_old_new.sh
run() { ROOT=$1 TAG=$2 .venv/bin/python benchmarks/results/train-physics-cpu-2026-12-01b/loop_alone.py 6; }
for round in 1 2 3 4; do
  if [ $((round % 2)) -eq 1 ]; then run "$OLD" old; run . new; else run . new; run "$OLD" old; fi
done
