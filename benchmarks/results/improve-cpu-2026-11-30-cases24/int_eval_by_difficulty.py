"""How far the learned program, `int(eval(expression))`, goes: the share of generated arithmetic problems
(24 cases each, seed 0) whose every case it passes, per difficulty. Run from the repository root."""
import sys

sys.path.insert(0, ".")
from data.puzzles import generate  # noqa: E402

for difficulty in (1, 2, 3, 5):
    splits, _ = generate({"test": 150}, 0, (difficulty, difficulty), 24)
    problems = [r for r in splits["test"] if r["task"] == "puzzle_arithmetic"]
    passed = sum(all(int(eval(case["input"])) == case["output"] for case in r["answer"]["tests"]) for r in problems)
    print(f"difficulty {difficulty}: int(eval) passes {passed}/{len(problems)} arithmetic problems")
