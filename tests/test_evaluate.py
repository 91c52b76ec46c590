"""evaluate.py end to end on a tiny random model (an HF folder), through main(argv)."""
import json
import os
import re
import shutil

import pytest
import torch

import evaluate
from common.errors import Interrupted, PhysloraError
from evaluation import generation
from evaluation.harness import (group_metrics, judge_outputs, judge_score, load_eval_records, paired_comparisons,
                                score_system)
from evaluation.loglik import option_logliks
from evaluation.stats import Z_95
from lora.adapter import LoRASettings, inject, save_adapter
from model.loading import load_model
from data.batching import context_of, prompt_and_target_ids
from fake_chat_server import FakeChatServer
from tiny_models import make_pair, write_tiny_model

MODES = ["tipping", "slipping", "crushing", "sloshing", "collision", "dropping", "rolling_away", "none"]


def scenario(split, i):
    mode = MODES[i % len(MODES)]
    return {"id": f"{split}-{i}", "task": "physics_scenario", "split": split,
            "prompt": f"Case {i}: a {'tall ' * (i % 3)}box on a tray. Will it fail?",
            "target": f"{'NO' if mode == 'none' else 'YES'}\nFAILURE_MODE: {mode}\nREASONING: because.",
            "answer": {"fails": mode != "none", "mode": mode}, "meta": {}}


def write_jsonl(path, records):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def adapter(tiny, tmp_path_factory):
    """A random (non-zero) adapter for the tiny model: the adapted model answers differently."""
    model, _ = load_model(tiny)
    torch.manual_seed(1)
    inject(model, LoRASettings(rank=4, alpha=8, dropout=0.0, targets=("v_proj", "o_proj")))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=3.0)
    folder = str(tmp_path_factory.mktemp("adapter"))
    save_adapter(model, folder, base_model=tiny)
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_jsonl(str(folder / "test_seen.jsonl"), [scenario("test_seen", i) for i in range(6)])
    write_jsonl(str(folder / "test_unseen.jsonl"), [scenario("test_unseen", i) for i in range(10)])
    write_jsonl(str(folder / "train.jsonl"), [scenario("train", i) for i in range(4)])
    return str(folder)


def run(tiny, data, out, *extra):
    evaluate.main(["--model", tiny, "--data", data, "--out", str(out), "--max-new-tokens", "6",
                   "--batch-size", "4", *extra])
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)


def test_base_and_adapter_answer_the_same_examples_and_are_compared_pairwise(tiny, adapter, data, tmp_path):
    results = run(tiny, data, tmp_path / "out", "--adapter", adapter)
    assert [e["id"] for e in results["examples"]] == [f"test_seen-{i}" for i in range(6)] + \
        [f"test_unseen-{i}" for i in range(10)]  # only the test splits, every record
    assert all(e["base"]["output"] != e["lora"]["output"] for e in results["examples"])
    for split, n in (("test_seen", 6), ("test_unseen", 10)):
        comparison = results["comparisons"]["lora"][split]["physics_scenario"]
        assert sum(comparison["accuracy"][k] for k in ("both_correct", "only_a_correct", "only_b_correct",
                                                       "both_wrong")) == n
        assert results["metrics"]["lora"][split]["physics_scenario"]["accuracy"]["n"] == n
    assert results["systems"]["lora"]["adapter"] == adapter and len(results["systems"]["lora"]["adapter_sha256"]) == 64
    report = open(tmp_path / "out" / "report.md").read()
    assert "| test_unseen · physics_scenario | base | lora | McNemar p (base vs lora) |" in report
    assert "Confusion matrix, lora, test_unseen" in report


def test_paired_comparison_counts_what_each_system_alone_gets_right_with_the_exact_mcnemar_p():
    # Base alone right on 1 example, the other system alone on 6; 3 both right, 2 both wrong.
    pattern = [(True, True)] * 3 + [(True, False)] + [(False, True)] * 6 + [(False, False)] * 2

    def scores(system):
        return [{"id": f"q{i}", "split": "test", "task": "physics_numeric", "correct": pair[system]}
                for i, pair in enumerate(pattern)]

    accuracy = paired_comparisons(scores(0), scores(1))["test"]["physics_numeric"]["accuracy"]
    assert (accuracy["both_correct"], accuracy["only_a_correct"], accuracy["only_b_correct"],
            accuracy["both_wrong"]) == (3, 1, 6, 2)
    # Two-sided exact test on the 7 discordant pairs: 2 · P(Bin(7, 1/2) <= 1) = 2 · (1 + 7) / 2⁷.
    assert accuracy["p_value"] == pytest.approx(0.125)


def test_outputs_cut_off_at_the_budget_are_counted(tiny, data, tmp_path):
    results = run(tiny, data, tmp_path / "out", "--split", "test_seen", "--max-new-tokens", "3")
    hit = [e["base"]["hit_limit"] for e in results["examples"]]
    assert results["metrics"]["base"]["test_seen"]["physics_scenario"]["hit_limit"] == sum(hit) > 0


def test_limit_takes_a_seeded_sample_of_each_split_in_file_order(tiny, data, tmp_path):
    first = run(tiny, data, tmp_path / "a", "--limit", "3")
    again = run(tiny, data, tmp_path / "b", "--limit", "3")
    ids = [e["id"] for e in first["examples"]]
    assert ids == [e["id"] for e in again["examples"]]
    assert sum(i.startswith("test_seen") for i in ids) == 3 and sum(i.startswith("test_unseen") for i in ids) == 3
    assert ids == sorted(ids, key=lambda i: (i.split("-")[0], int(i.split("-")[1])))
    assert not {"test_seen-0", "test_seen-1", "test_seen-2"} <= set(ids)  # a sample, not the first records
    assert not {"test_unseen-0", "test_unseen-1", "test_unseen-2"} <= set(ids)
    reseeded = run(tiny, data, tmp_path / "c", "--limit", "3", "--seed", "1")
    assert [e["id"] for e in reseeded["examples"]] != ids


def test_one_file_is_filtered_by_its_records_split_field_and_limited_per_split(tmp_path):
    records = [scenario("train", i) for i in range(4)] + [scenario("test_seen", i) for i in range(3)] + \
        [scenario("test_unseen", i) for i in range(3)]
    path = write_jsonl(str(tmp_path / "all.jsonl"), records[1::2] + records[::2])
    chosen = load_eval_records(path, "test*", 2, 0)
    assert sorted(r["split"] for r in chosen) == ["test_seen"] * 2 + ["test_unseen"] * 2
    assert {r["split"] for r in load_eval_records(path, "train", None, 0)} == {"train"}
    with pytest.raises(PhysloraError, match=r"all.jsonl: no record's split matches --split val; its records' splits "
                                            r"are test_seen, test_unseen, train"):
        load_eval_records(path, "val", None, 0)


def test_an_interrupted_evaluation_resumes_to_the_same_results(tiny, adapter, data, tmp_path, monkeypatch):
    sampling = ("--adapter", adapter, "--num-samples", "2", "--temperature", "1.0")
    whole = run(tiny, data, tmp_path / "whole", *sampling)  # 16 records: 4 batches of 4
    out = tmp_path / "cut"
    shutil.copytree(tmp_path / "whole", out)
    os.remove(out / "results.json")
    lines = open(out / "outputs-lora.jsonl").readlines()
    with open(out / "outputs-lora.jsonl", "w") as f:  # batch 0 finished, killed while writing batch 1's 2nd line
        f.writelines(lines[:5] + [lines[5][:15]])
    generated = []

    def answer_batch(model, tokenizer, records, prompts, batches, number, settings):
        generated.append(number)
        return real_answer_batch(model, tokenizer, records, prompts, batches, number, settings)

    real_answer_batch = generation.answer_batch
    monkeypatch.setattr(generation, "answer_batch", answer_batch)
    evaluate.main(["--resume", str(out)])
    resumed = json.load(open(out / "results.json"))
    assert resumed["metrics"] == whole["metrics"]
    assert [e["lora"]["outputs"] for e in resumed["examples"]] == [e["lora"]["outputs"] for e in whole["examples"]]
    assert generated == [1, 2, 3]  # the finished batch is kept, the half-written one redone
    # The half-written line was cut, not continued: every line reads, so a second resume would keep them all.
    assert [json.loads(line)["id"] for line in open(out / "outputs-lora.jsonl")] == \
        [json.loads(line)["id"] for line in lines[:5]] + [json.loads(line)["id"] for line in lines[4:]]
    assert f"(5 already answered in {out / 'outputs-lora.jsonl'}, kept)" in open(out / "eval.log").read()


def test_ctrl_c_says_how_to_resume_in_one_line(tiny, data, tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(generation, "answer_batch", interrupted)
    out = tmp_path / "out"
    with pytest.raises(Interrupted, match=f"^interrupted; continue with: python evaluate.py --resume {out} "
                                          r"\(the answers so far are kept\)$"):
        run(tiny, data, out)


def test_resume_refuses_changed_settings(tiny, data, tmp_path):
    run(tiny, data, tmp_path / "out", "--split", "test_seen")
    with pytest.raises(PhysloraError, match="drop --limit"):
        evaluate.main(["--resume", str(tmp_path / "out"), "--limit", "2"])


def test_resume_refuses_data_changed_since_the_evaluation_started(tiny, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    write_jsonl(str(folder / "test_seen.jsonl"), [scenario("test_seen", i) for i in range(3)])
    run(tiny, str(folder), tmp_path / "out", "--split", "test_seen")
    write_jsonl(str(folder / "test_seen.jsonl"), [scenario("test_seen", i) for i in range(2)])
    with pytest.raises(PhysloraError, match="the records data changed since the run started"):
        evaluate.main(["--resume", str(tmp_path / "out")])


def test_resume_refuses_an_adapter_changed_since_the_evaluation_started(tiny, adapter, data, tmp_path):
    changed = tmp_path / "adapter"
    shutil.copytree(adapter, changed)
    run(tiny, data, tmp_path / "out", "--split", "test_seen", "--adapter", str(changed))
    config = json.loads((changed / "adapter_config.json").read_text())
    (changed / "adapter_config.json").write_text(json.dumps({**config, "lora_alpha": 2 * config["lora_alpha"]}))
    with pytest.raises(PhysloraError, match=rf"the lora adapter data \({re.escape(str(changed))}\) changed since the "
                                            "run started"):
        evaluate.main(["--resume", str(tmp_path / "out")])


def test_an_existing_output_folder_is_never_overwritten(tiny, data, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.json").write_text("{}")
    with pytest.raises(PhysloraError, match=r"not empty \(results.json\); continue that run with --resume .* or choose "
                                            r"another --out$"):  # evaluate.py has no --overwrite to suggest
        run(tiny, data, tmp_path / "out")
    assert (tmp_path / "out" / "results.json").read_text() == "{}"


def test_a_non_empty_out_is_refused_before_the_model_is_hashed(tiny, data, tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    monkeypatch.setattr(evaluate, "fingerprint", lambda *args: pytest.fail("hashed a model for a refused run"))
    with pytest.raises(PhysloraError, match="not empty"):
        run(tiny, data, tmp_path / "out")


@pytest.mark.parametrize("bad, message", [
    ({"prompt": "p", "target": "t"}, r"test\.jsonl:1: field 'task' is missing"),
    ({"task": "physics_scenario", "prompt": "p", "target": "t"}, r"record 'test-00000': answer: expected an object"),
    ({"task": "physics_mcq", "prompt": "p", "target": "t", "answer": {"options": ["x", "y"]}},
     r"answer\.choice: missing"),
    ({"task": "translation", "prompt": "p", "target": "t", "answer": {}}, r"unknown task 'translation'"),
])
def test_records_the_evaluator_cannot_score_are_refused_before_any_generation(tiny, tmp_path, bad, message):
    path = write_jsonl(str(tmp_path / "data" / "test.jsonl"), [bad])
    with pytest.raises(PhysloraError, match=message):
        run(tiny, path, tmp_path / "out")
    assert not os.path.exists(tmp_path / "out" / "outputs-base.jsonl")


def test_an_empty_data_file_is_a_clear_error(tiny, tmp_path):
    path = write_jsonl(str(tmp_path / "data" / "test.jsonl"), [])
    with pytest.raises(PhysloraError, match=r"test\.jsonl: no records"):
        run(tiny, path, tmp_path / "out")


def test_an_adapter_for_another_base_model_is_a_clear_error(tiny, data, tmp_path):
    other = make_pair("llama-head-dim-32")[1]  # q_proj is 128 × 64 there, 64 × 64 in the tiny model
    inject(other, LoRASettings(rank=4, alpha=8, dropout=0.0, targets=("q_proj",)))
    save_adapter(other, str(tmp_path / "other-adapter"), base_model="llama-head-dim-32")
    with pytest.raises(PhysloraError, match="was it trained on another model"):
        run(tiny, data, tmp_path / "out", "--adapter", str(tmp_path / "other-adapter"), "--split", "test_seen")
    assert not (tmp_path / "out" / "outputs-base.jsonl").exists()  # found before the baseline answered


def test_loglik_scores_each_option_as_its_own_unpadded_forward_pass(tiny):
    model, tokenizer = load_model(tiny)
    record = {"task": "physics_mcq", "prompt": "Which is a force? A) kg B) N C) m", "target": "Answer: B",
              "answer": {"choice": "B", "options": {"A": "kg", "B": "N", "C": "m"}}}
    got = option_logliks(model, tokenizer, record)
    for letter in "ABC":
        prompt, target = prompt_and_target_ids(tokenizer, record["prompt"], f"Answer: {letter}")
        ids = torch.tensor([prompt + target[:-1]])
        logprobs = model(ids)[0].double().log_softmax(-1)
        expected = sum(logprobs[len(prompt) - 1 + j, t].item() for j, t in enumerate(target[:-1]))
        assert got[letter] == pytest.approx(expected, abs=1e-4)


def test_loglik_scores_options_after_the_records_system_message_and_earlier_turns(tiny):
    model, tokenizer = load_model(tiny)
    meta = {"system": "Answer tersely.", "history": [{"role": "user", "content": "Hi"},
                                                     {"role": "assistant", "content": "Hello"}]}
    record = {"task": "physics_mcq", "prompt": "Which is a force? A) kg B) N", "target": "Answer: B",
              "answer": {"choice": "B", "options": {"A": "kg", "B": "N"}}, "meta": meta}
    got = option_logliks(model, tokenizer, record)
    for letter in "AB":
        prompt, target = prompt_and_target_ids(tokenizer, record["prompt"], f"Answer: {letter}", context_of(record))
        logprobs = model(torch.tensor([prompt + target[:-1]]))[0].double().log_softmax(-1)
        expected = sum(logprobs[len(prompt) - 1 + j, t].item() for j, t in enumerate(target[:-1]))
        assert got[letter] == pytest.approx(expected, abs=1e-4)


def test_mcq_in_loglik_mode_generates_nothing(tiny, tmp_path):
    records = [{"id": f"q{i}", "task": "physics_mcq", "prompt": f"Question {i}? A) x B) y", "target": "Answer: A",
                "answer": {"choice": "AB"[i % 2], "options": ["x", "y"]}} for i in range(4)]
    path = write_jsonl(str(tmp_path / "data" / "test.jsonl"), records)
    results = run(tiny, path, tmp_path / "out", "--mcq-mode", "loglik")
    assert all(e["base"]["output"] in ("Answer: A", "Answer: B") for e in results["examples"])
    assert all(e["base"]["pred_letter"] in "AB" for e in results["examples"])


@pytest.mark.parametrize("reply, score", [
    ('{"score": 7, "reason": "close"}', 7.0),
    ('{"score": 8, "reason": "unterminated', 8.0),
    ("Score: 9/10, good", 9.0),
    ("I would give it a 6.", 6.0),
    ('{"score": 42}', None),
    ("score: -3", None),
    ("I rate this a 0.5 out of 10", None),
    ("no idea", None),
    ("On a scale of 1 to 10, I would rate this answer 8.", 8.0),  # the scale is not the score
    ("Out of 10, I give it 3.", 3.0),
    ("A 1-10 rating: 6/10", 6.0),
    ("I'd give it a 7-8.", 7.0),  # a range of scores is not the scale
])
def test_the_judge_score_is_read_by_pattern_so_broken_json_cannot_crash(reply, score):
    assert judge_score(reply) == score


def test_a_judge_cache_cut_mid_line_is_resumed_once_and_then_fully_reused(tmp_path):
    records = [{"id": f"t{i}", "task": "instruction", "prompt": f"Say {i}", "target": f"{i}"} for i in range(3)]
    entries = {r["id"]: {"outputs": [r["target"]]} for r in records}
    cache = tmp_path / "judge-base.jsonl"
    cache.write_text(json.dumps({"id": "t0", "score": 5.0, "reply": "5"}) + '\n{"id": "t1", "sco')  # stopped mid-line
    with FakeChatServer(lambda prompt: '{"score": 7}') as judge:
        settings = {"url": judge.url, "model": "j", "key_env": "NO_KEY", "timeout": 10}
        assert judge_outputs(records, entries, settings, str(cache)) == {"t0": 5.0, "t1": 7.0, "t2": 7.0}
        assert judge_outputs(records, entries, settings, str(cache)) == {"t0": 5.0, "t1": 7.0, "t2": 7.0}
    assert len(judge.requests) == 2  # t1 and t2 once: the second call found every score in the cache


def test_the_judge_compares_with_the_target_when_the_answer_is_not_an_object(tmp_path):
    records = [{"id": "t0", "task": "instruction", "prompt": "Say hi", "target": "hi there", "answer": "hi"}]
    with FakeChatServer(lambda prompt: '{"score": 7}') as judge:
        settings = {"url": judge.url, "model": "j", "key_env": "NO_KEY", "timeout": 10}
        assert judge_outputs(records, {"t0": {"outputs": ["hi"]}}, settings, str(tmp_path / "judge.jsonl")) == {"t0": 7.0}
    assert "REFERENCE:\nhi there\n" in judge.requests[0]["body"]["messages"][-1]["content"]


def test_free_text_answers_are_judged_and_the_mean_reported(tiny, tmp_path):
    records = [{"id": f"t{i}", "task": "instruction", "prompt": f"Say {i}", "target": f"{i}",
                "answer": {"reference": f"{i}"}} for i in range(3)]
    path = write_jsonl(str(tmp_path / "data" / "test.jsonl"), records)
    replies = iter(['{"score": 4}', "garbage", '{"score": 8, "reason": "ok"'])
    with FakeChatServer(lambda prompt: next(replies)) as judge:
        results = run(tiny, path, tmp_path / "out", "--judge-url", judge.url, "--judge-model", "j")
    assert [e["base"]["judge_score"] for e in results["examples"]] == [4.0, None, 8.0]
    # scores 4 and 8: s = √8, half width 1.96 · √8 / √2
    assert results["metrics"]["base"]["test"]["instruction"]["judge"] == {
        "mean": 6.0, "n": 2, "ci95": [pytest.approx(6 - 2 * Z_95), pytest.approx(6 + 2 * Z_95)]}
    assert "ANSWER:" in judge.requests[0]["body"]["messages"][-1]["content"]


def test_pass_at_k_counts_verified_samples_per_record():
    record = {"id": "p", "task": "puzzle_arithmetic", "split": "test", "prompt": "", "target": "",
              "answer": {"function": "solve", "tests": [{"input": 2, "output": 4}]}}
    right, wrong = "def solve(x):\n    return 2 * x", "def solve(x):\n    return x + 3"
    entries = {"p": {"outputs": [wrong, right, wrong, wrong, right], "hit_limit": [False] * 5}}
    scores = score_system([record], entries, code_timeout_s=5)
    assert scores[0]["correct"] is False  # the first sample is the one scored
    assert scores[0]["pass_at"] == {1: pytest.approx(0.4), 5: 1.0}
    assert group_metrics(scores)["test"]["puzzle_arithmetic"]["pass_at"][1] == {"mean": pytest.approx(0.4), "n": 1,
                                                                               "ci95": [0, 1]}
