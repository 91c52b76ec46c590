"""train.py, evaluate.py, experiment.py and improve.py on two processes (torch.distributed, gloo on CPU) compute what one process does.

The processes start as torchrun starts them (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT in their environment), through torch.multiprocessing so that a test can look inside
them; the resumed run of the kill test goes through the `torchrun` command line itself. They are
forked from a server that has imported torch, transformers and peft once (seconds saved each time).
"""
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file
from torch.nn.parallel import DistributedDataParallel

import evaluate
import experiment
import improve
import train
from common import distributed
from data.batching import collate
from evaluation import generation
from lora.checkpoint import latest_checkpoint
from model.loss import MicroBatchLoss
from test_evaluate import adapter, scenario, tiny, write_jsonl  # noqa: F401 (adapter and tiny are fixtures)
from test_improve import TinyModel, settings as improve_flags
from test_train import metrics, records, write_data
from test_train_steps import adapted_model_and_examples, lora_gradients, max_difference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORLD = 2
WINDOW = [[[0], [1], [2], [3]]]  # one micro-batch of 4 rows of unequal target counts: 2 rows per process
TOLERANCE = 1e-5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_torchrun_starts(rank: int, port: int, function, args) -> None:
    """function(*args) in the environment torchrun gives process `rank`."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    function(*args)


def launch(function, *args) -> None:
    """function(*args) in WORLD processes, as `torchrun --nproc_per_node 2` runs a script."""
    mp.start_processes(as_torchrun_starts, args=(free_port(), function, args), nprocs=WORLD,
                       start_method="forkserver")


multiprocessing.set_forkserver_preload(["torch", "transformers", "peft"])  # (Python 3.11's has no tests/ path)


@pytest.fixture(scope="module")
def train_data(tmp_path_factory):
    return write_data(tmp_path_factory.mktemp("data"), train_size=12)


def training_flags(tiny, data, batch_size=2, epochs=2) -> list:
    return ["--model", tiny, "--data", data, "--batch-size", str(batch_size), "--grad-accum", "2",
            "--epochs", str(epochs), "--lr", "1e-2", "--eval-every", "2"]


def step_and_weights(model) -> list:
    """The LoRA weights after one AdamW step on the gradients in place."""
    torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2).step()
    return [p.detach().clone() for p in model.parameters() if p.requires_grad]


def window_on_each_process(out: str) -> None:
    """WINDOW's loss, updated weights and gradients with this process's rows, saved by rank 0: once as
    train.py computes them, once with each process dividing by its own target tokens (a mistake)."""
    distributed.start("cpu")
    results = {}
    for normalisation in ("global", "local"):
        if normalisation == "local":
            distributed.total = lambda value: value
        model, examples = adapted_model_and_examples()
        ddp = DistributedDataParallel(MicroBatchLoss(model))
        loss = train.train_window(model, [collate(examples, distributed.shard(rows), pad_id=0) for rows in WINDOW], ddp)
        results[normalisation] = (loss, step_and_weights(model), lora_gradients(model))
    if distributed.rank() == 0:
        torch.save(results, out)


def test_two_processes_with_micro_batch_2_give_the_gradients_and_weights_of_one_process_with_batch_4(tmp_path):
    launch(window_on_each_process, str(tmp_path / "two.pt"))
    two = torch.load(tmp_path / "two.pt")
    model, examples = adapted_model_and_examples()
    loss = train.train_window(model, [collate(examples, rows, pad_id=0) for rows in WINDOW])
    weights, gradients = step_and_weights(model), lora_gradients(model)
    assert abs(two["global"][0] - loss) <= 1e-6
    assert max_difference(two["global"][1], weights) <= TOLERANCE
    assert max_difference(two["global"][2], gradients) <= TOLERANCE
    assert max_difference(two["local"][2], gradients) > 100 * TOLERANCE  # the tolerance catches the mistake


def train_recording_rows(argv: list, out: str) -> None:
    """train.main, recording the training examples of each micro-batch this process collates (no val loss)."""
    collate_rows, calls = train.collate, []

    def recording(examples, rows, *rest):
        calls.append([i for row in rows for i in row])
        return collate_rows(examples, rows, *rest)

    train.collate, train.evaluate = recording, lambda *args: 1.0
    train.main(argv)
    with open(f"{out}.{distributed.rank()}.json", "w") as f:
        json.dump(calls, f)


def test_every_training_example_is_seen_exactly_once_per_epoch_across_processes(tiny, tmp_path):
    data = write_data(tmp_path / "data", train_size=9)  # micro-batches of 4, 4 and 1 rows
    launch(train_recording_rows, [*training_flags(tiny, data, batch_size=4, epochs=3), "--out", str(tmp_path / "run")],
           str(tmp_path / "calls"))
    calls = [json.load(open(tmp_path / f"calls.{rank}.json")) for rank in range(WORLD)]
    assert [len(c) for c in calls] == [9, 9]  # each process collates every micro-batch: 3 per epoch
    for epoch in range(3):
        shares = [[i for call in c[3 * epoch:3 * epoch + 3] for i in call] for c in calls]
        assert sorted(shares[0] + shares[1]) == list(range(9)) and shares[0] and shares[1]
    assert calls[1].count([]) == 3  # the 1-row micro-batch leaves process 1 without rows once per epoch


def recording_batches(numbers: list):
    """generation.answer_batch, noting in `numbers` the number of each batch it answers."""
    answer_batch = generation.answer_batch

    def answer(model, tokenizer, records, prompts, batches, number, settings):
        numbers.append(number)
        return answer_batch(model, tokenizer, records, prompts, batches, number, settings)

    return answer


def evaluate_recording_batches(argv: list, out: str) -> None:
    """evaluate.main, recording the numbers of the batches this process generates."""
    numbers = []
    generation.answer_batch = recording_batches(numbers)
    evaluate.main(argv)
    with open(f"{out}.{distributed.rank()}.json", "w") as f:
        json.dump(numbers, f)


def test_evaluation_with_two_processes_equals_evaluation_with_one(tiny, adapter, tmp_path, monkeypatch):
    data = write_jsonl(str(tmp_path / "data" / "test.jsonl"), [scenario("test", i) for i in range(14)])
    # Sampled, so every batch must keep its rows and its seed; hot, as the tiny model is very sure of itself
    flags = ["--model", tiny, "--data", data, "--adapter", adapter, "--batch-size", "4", "--max-new-tokens", "6",
             "--num-samples", "2", "--temperature", "30"]
    launch(evaluate_recording_batches, [*flags, "--out", str(tmp_path / "two")], str(tmp_path / "batches"))
    numbers = []
    monkeypatch.setattr(generation, "answer_batch", recording_batches(numbers))
    evaluate.main([*flags, "--out", str(tmp_path / "one")])
    for name in ("results.json", "outputs-base.jsonl", "outputs-lora.jsonl", "report.md"):
        assert (tmp_path / "two" / name).read_text() == (tmp_path / "one" / name).read_text(), name
    shares = [json.load(open(tmp_path / f"batches.{rank}.json")) for rank in range(WORLD)]
    assert shares[0] and shares[1] and sorted(shares[0] + shares[1]) == sorted(numbers)


def test_two_processes_answering_multiple_choice_by_likelihood_and_generating_equal_one(tiny, tmp_path):
    # Rank 0 writes the likelihood answers and then every process plans the generation from that file: the others
    # must see what rank 0 read, not a file it is still writing (they once read, and cut, it themselves).
    questions = [{"id": f"q{i}", "task": "physics_mcq", "split": "test", "prompt": f"Question {i}? A) x B) y",
                  "target": "Answer: A", "answer": {"choice": "AB"[i % 2], "options": ["x", "y"]}} for i in range(6)]
    data = write_jsonl(str(tmp_path / "data" / "test.jsonl"), questions + [scenario("test", i) for i in range(6)])
    flags = ["--model", tiny, "--data", data, "--batch-size", "2", "--max-new-tokens", "4", "--mcq-mode", "loglik"]
    launch(evaluate.main, [*flags, "--out", str(tmp_path / "two")])
    evaluate.main([*flags, "--out", str(tmp_path / "one")])
    for name in ("results.json", "outputs-base.jsonl"):
        assert (tmp_path / "two" / name).read_text() == (tmp_path / "one" / name).read_text(), name


def train_killed_at(argv: list, step: int) -> None:
    """train.main, killed without warning (SIGKILL) as it starts optimizer step `step`."""
    learning_rate = train.learning_rate

    def dying(at, *rest):
        if at == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return learning_rate(at, *rest)

    train.learning_rate = dying
    train.main(argv)


def test_killing_and_resuming_a_two_process_run_gives_the_adapter_of_an_uninterrupted_one(tiny, train_data, tmp_path):
    flags = [*training_flags(tiny, train_data), "--dropout", "0.1"]  # 6 steps; each process its dropout masks
    launch(train.main, [*flags, "--out", str(tmp_path / "straight")])
    with pytest.raises(mp.ProcessExitedException, match="signal"):
        launch(train_killed_at, [*flags, "--out", str(tmp_path / "killed")], 6)
    assert latest_checkpoint(str(tmp_path / "killed")).endswith("step-4")
    resumed = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                              str(WORLD), "train.py", "--resume", str(tmp_path / "killed")],
                             cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # every record once (steps logged after the step-4 checkpoint ran again), as in the uninterrupted run
    assert records(tmp_path / "killed") == records(tmp_path / "straight") and len(metrics(tmp_path / "killed")) == 6
    a, b = (load_file(tmp_path / run / "adapter_model.safetensors") for run in ("straight", "killed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_two_process_run_resumed_by_one_process_ends_as_one_process_alone(tiny, train_data, tmp_path):
    flags = [*training_flags(tiny, train_data), "--dropout", "0"]  # dropout masks depend on who draws them
    launch(train.main, [*flags, "--out", str(tmp_path / "split"), "--max-steps", "3"])
    train.main(["--resume", str(tmp_path / "split")])
    train.main([*flags, "--out", str(tmp_path / "alone")])
    for key in ("loss", "grad_norm"):  # the gradient norms show the scale of the gradients, which AdamW hides
        assert metrics(tmp_path / "split", key) == pytest.approx(metrics(tmp_path / "alone", key), rel=1e-6)
    a, b = (load_file(tmp_path / run / "adapter_model.safetensors") for run in ("split", "alone"))
    assert a.keys() == b.keys() and max_difference([a[k] for k in sorted(a)], [b[k] for k in sorted(b)]) <= TOLERANCE


def test_a_two_process_experiment_writes_one_report_and_answers_as_one_process_does(tiny, tmp_path):
    flags = ["--quick", "--model", tiny, "--dtype", "fp32", "--max-new-tokens", "6"]
    launch(experiment.main, [*flags, "--out", str(tmp_path / "two")])
    experiment.main([*flags, "--out", str(tmp_path / "one")])
    two, one = tmp_path / "two", tmp_path / "one"
    assert set(json.loads((two / "timings.json").read_text())) == {"data", "train", "evaluate"}
    assert "| test_unseen · physics_scenario | base | lora |" in (two / "report.md").read_text()
    assert (two / "data" / "train.jsonl").read_text() == (one / "data" / "train.jsonl").read_text()
    with open(two / "train" / "metrics.jsonl") as f:
        assert max(m["step"] for m in map(json.loads, f)) == 6
    # The base model's answers do not depend on training: sharded generation must give the same ones.
    assert (two / "eval" / "outputs-base.jsonl").read_text() == (one / "eval" / "outputs-base.jsonl").read_text()
    examples = json.loads((two / "eval" / "results.json").read_text())["examples"]
    assert len(examples) == len({e["id"] for e in examples}) == 24


def test_a_two_process_improve_run_samples_verifies_and_keeps_what_one_process_does(tiny, tmp_path):
    flags = ["--iterations", "1", "--samples", "2", "--max-new-tokens", "8", "--batch-size", "4"]
    launch(improve.main, improve_flags(tiny, tmp_path / "two", *flags), TinyModel(tiny))
    one = improve.main(improve_flags(tiny, tmp_path / "one", *flags), answer=TinyModel(tiny))["metrics"]
    with open(tmp_path / "two" / "metrics.jsonl") as f:
        two = [json.loads(line) for line in f]
    # Training draws other dropout masks on two processes: its losses may differ, nothing else.
    differ = {"seconds", "train_loss", "val_loss"}
    assert [{k: v for k, v in m.items() if k not in differ} for m in two] == \
           [{k: v for k, v in m.items() if k not in differ} for m in one]
    assert two[1]["kept"] > 0 and (tmp_path / "two" / "iter-1" / "train" / "adapter_model.safetensors").exists()
    for name in ("samples.jsonl", "eval.jsonl"):
        assert (tmp_path / "two" / "iter-1" / name).read_text() == (tmp_path / "one" / "iter-1" / name).read_text()


FINISHING_SCRIPT = """
import atexit, sys
from common import distributed
distributed.start("cpu")
atexit.register(lambda: print("exit handler ran", file=sys.stderr))  # (rank 1 prints to /dev/null)
names = distributed.gather([distributed.rank()])  # a collective right before the end, as train.py has
print("ranks", names)
distributed.finish()
print("after finish")
"""


def test_finish_leaves_every_process_with_exit_code_0_its_output_and_its_exit_handlers(tmp_path):
    script = tmp_path / "finishing.py"
    script.write_text(FINISHING_SCRIPT)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(WORLD), str(script)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ranks [0, 1]" in done.stdout and "after finish" not in done.stdout
    assert done.stderr.count("exit handler ran") == WORLD
