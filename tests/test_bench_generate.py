"""`bench.py generate` times the stacks side by side: in one process, taking turns, in an order that
alternates from round to round, so that the machine's drifting speed weighs on every stack alike."""
import types

from benchmarks import generate_suite


def fake_stacks(monkeypatch, calls):
    """Stacks that only record (stack, prompts) for each generation."""
    def stack(name):
        def load(folder, dtype, device):
            def run(prompts):
                calls.append((name, prompts))
                return len(prompts) * generate_suite.NEW_TOKENS
            return types.SimpleNamespace(config=types.SimpleNamespace(vocab_size=50)), run
        return load
    monkeypatch.setattr(generate_suite, "STACKS", {"transformers": stack("transformers"), "physlora": stack("physlora")})


def test_each_round_times_every_stack_once_in_alternating_order_after_one_warm_up_each(monkeypatch):
    calls = []
    fake_stacks(monkeypatch, calls)
    seconds = generate_suite.measure_speeds(("transformers", "physlora"), "folder", "fp32", "cpu", [1, 3], reps=3)
    order = ["transformers", "physlora"] + ["transformers", "physlora", "physlora", "transformers", "transformers",
                                            "physlora"]
    assert [(name, len(prompts)) for name, prompts in calls] == [(name, 1) for name in order] + [(name, 3) for name in order]
    assert {stack: {batch: len(times) for batch, times in by_batch.items()} for stack, by_batch in seconds.items()} \
        == {"transformers": {1: 3, 3: 3}, "physlora": {1: 3, 3: 3}}


def test_every_stack_generates_from_the_same_prompts(monkeypatch):
    calls = []
    fake_stacks(monkeypatch, calls)
    generate_suite.measure_speeds(("transformers", "physlora"), "folder", "fp32", "cpu", [2], reps=2)
    assert len({str(prompts) for _, prompts in calls}) == 1
    assert len(calls[0][1][0]) == generate_suite.PROMPT_TOKENS
