"""`bench.py generate` and `bench.py train` time the stacks side by side: each in a process of its own,
taking turns, in an order that alternates from round to round, so that the machine's drifting speed weighs
on every stack alike; they are then compared round by round."""
import os

import pytest

from benchmarks import generate_suite, train_suite
from benchmarks.timing import Worker, alternating_rounds, paired_ratios


def test_alternating_rounds_call_every_timer_once_a_round_and_reverse_the_order_every_other_round():
    calls = []
    timers = {name: (lambda name=name: calls.append(name) or len(calls)) for name in "abc"}
    seconds = alternating_rounds(timers, 3)
    assert calls == list("abccbaabc")
    assert seconds == {"a": [1, 6, 7], "b": [2, 5, 8], "c": [3, 4, 9]}


def test_paired_ratios_compare_round_by_round():
    assert paired_ratios([4.0, 9.0], [2.0, 3.0]) == [2.0, 3.0]


class FakeWorker:
    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    def call(self, function, batch):
        self.calls.append((self.name, function, batch))
        return 1.0


def test_generation_warms_up_each_stack_then_times_them_in_alternating_rounds_per_batch_size():
    calls = []
    workers = {name: FakeWorker(name, calls) for name in ("transformers", "physlora")}
    seconds = generate_suite.time_stacks(workers, [1, 16], reps=3)
    order = ["transformers", "physlora"] * 2 + ["physlora", "transformers", "transformers", "physlora"]
    assert calls == [(name, "timed", batch) for batch in (1, 16) for name in order]
    assert seconds == {name: {1: [1.0] * 3, 16: [1.0] * 3} for name in workers}


def test_physics_workload_runs_the_methods_in_alternating_rounds_and_takes_the_median_ratio(monkeypatch, capsys):
    calls = []
    speeds = {"trainer": iter([100.0, 50.0]), "physlora": iter([220.0, 150.0])}  # answer tokens a second

    def fake_run(measure, folder, pad_id, examples, steps):
        calls.append(measure.__name__)
        return {"seconds": 1.0, "answer_tokens": next(speeds[measure.__name__.split("_")[0]]), "padded_length": 320}

    monkeypatch.setattr(train_suite, "require_oracles", lambda: None)
    monkeypatch.setattr(train_suite, "physics_examples", lambda workdir, count: ("folder", 0, []))
    monkeypatch.setattr(train_suite, "in_fresh_process", fake_run)
    monkeypatch.setattr(train_suite, "save_results", lambda *args: "results.json")
    train_suite.run_physics(type("Args", (), {"physics_steps": 6, "physics_rounds": 2, "no_save": False})())
    assert calls == ["trainer_physics", "physlora_physics", "physlora_physics", "trainer_physics"]
    assert "2.60x the Trainer (rounds 2.20-3.00)" in capsys.readouterr().out  # rounds 220/100 and 150/50


def serve_test_functions(offset):
    if offset < 0:
        raise ValueError("a negative offset")
    return {"pid": os.getpid, "add": lambda x: x + offset, "fail": lambda: 1 / 0}


def test_a_worker_builds_once_in_a_process_of_its_own_and_answers_calls():
    with Worker(serve_test_functions, 10) as worker:
        assert worker.call("pid") != os.getpid()
        assert worker.call("add", 5) == 15
        assert worker.call("pid") == worker.call("pid")


def test_a_worker_reports_a_failing_call_with_its_traceback_and_keeps_serving():
    with Worker(serve_test_functions, 10) as worker:
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            worker.call("fail")
        assert worker.call("add", 1) == 11


def test_a_worker_whose_build_fails_says_so():
    with pytest.raises(RuntimeError, match="(?s)building serve_test_functions.*a negative offset"):
        Worker(serve_test_functions, -1)
