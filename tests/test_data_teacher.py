"""The optional language-model teacher, against a local fake OpenAI-compatible server.

The fake binds 127.0.0.1 only, answers a bounded number of requests and then stops by itself."""
import json
import re
import socket

import pytest

import generate_data
from common.errors import PhysloraError
from data import physics_dataset, teacher
from data.schema import load_records
from fake_chat_server import FakeChatServer as FakeTeacher

SIZES = {"train": 28, "val": 0, "test_seen": 0, "test_unseen": 0}




def records():
    splits, _ = physics_dataset.generate(SIZES, 0, physics_dataset.DEFAULT_DIFFICULTY)
    return splits["train"]


def physics_reasoning(record):
    return record["target"].split("REASONING: ")[1]


def scripted(by_prompt):
    """In turn: agree with physics and argue with its numbers, contradict it, babble, agree but cite a number
    the physics does not know."""
    def reply(prompt):
        index, record = by_prompt[prompt]
        label = f"{'YES' if record['answer']['fails'] else 'NO'}\nFAILURE_MODE: {record['answer']['mode']}\n"
        if index % 4 == 0:
            return label + f"REASONING: In the teacher's words, {physics_reasoning(record)}"
        if index % 4 == 1:
            return f"{'NO' if record['answer']['fails'] else 'YES'}\nFAILURE_MODE: none\nREASONING: Wrong."
        if index % 4 == 2:
            return "I think it might fail, maybe."
        return label + "REASONING: The margin is 123.456, so that is the answer."
    return reply


def test_agreeing_answers_replace_the_reasoning_and_the_rest_are_rejected_and_counted(monkeypatch):
    data = records()
    originals = [dict(r, meta=dict(r["meta"])) for r in data]
    by_prompt = {r["prompt"]: (i, r) for i, r in enumerate(originals)}
    monkeypatch.setenv("TEACHER_KEY", "secret")
    with FakeTeacher(scripted(by_prompt)) as fake:
        stats = teacher.apply_teacher(data, fake.url, "big-model", "TEACHER_KEY", timeout=10)
    assert stats == {"asked": 28, "accepted": 7, "contradicted": 7, "unverified": 7, "unparsable": 7}
    for i, (record, original) in enumerate(zip(data, originals)):
        assert record["target"].split("\n")[:2] == original["target"].split("\n")[:2]  # labels from physics
        if i % 4 == 0:
            assert record["target"].endswith(f"REASONING: In the teacher's words, {physics_reasoning(original)}")
            assert record["meta"]["reasoning_source"] == "teacher"
        else:
            assert record["target"] == original["target"] and record["meta"]["reasoning_source"] == "physics"
    assert fake.requests[0]["path"] == "/v1/chat/completions"
    assert fake.requests[0]["auth"] == "Bearer secret"
    assert fake.requests[0]["body"]["model"] == "big-model"


def test_the_cli_records_teacher_counts_in_the_card(tmp_path):
    agree_on_nothing = lambda prompt: (f"YES\nFAILURE_MODE: collision\nREASONING: It collides at "
                                       f"{re.search('[0-9.]+', prompt).group()}.")
    with FakeTeacher(agree_on_nothing) as fake:
        generate_data.main(["physics", "--out", str(tmp_path / "out"), "--train", "14", "--val", "14",
                            "--test-seen", "14", "--test-unseen", "14", "--teacher-url", fake.url,
                            "--teacher-model", "m", "--teacher-key-env", "NO_SUCH_VARIABLE"])
    card = json.load(open(tmp_path / "out" / "card.json"))
    assert card["teacher"]["asked"] == 14  # only train, by default
    assert card["teacher"]["accepted"] == 1 and card["teacher"]["contradicted"] == 13
    assert fake.requests[0]["auth"] is None
    train = load_records(str(tmp_path / "out"), "train")
    teacher_written = [r for r in train if r["meta"]["reasoning_source"] == "teacher"]
    assert [r["answer"]["mode"] for r in teacher_written] == ["collision"]


def test_an_http_error_from_the_teacher_is_one_user_error():
    with FakeTeacher(lambda prompt: "", status=500) as fake:
        with pytest.raises(PhysloraError, match="--teacher-url .*HTTP 500"):
            teacher.apply_teacher(records()[:1], fake.url, "m", "NO_SUCH_VARIABLE", timeout=10)


def test_an_unreachable_teacher_is_one_user_error():
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PhysloraError, match="--teacher-url .*cannot reach the server"):
        teacher.apply_teacher(records()[:1], f"http://127.0.0.1:{port}/v1", "m", "NO_SUCH_VARIABLE", timeout=2)


def governing(record):
    answer = record["answer"]
    return next(check for check in answer["checks"] if check["check"] == answer["governing_check"])


def test_the_physics_own_reasoning_is_verified():
    assert all(teacher.verified(physics_reasoning(record), record) for record in records())


def test_reasoning_with_a_wrong_number_is_not_verified():
    for record in records():
        *head, last = re.split(r"(\d+(?:\.\d+)?)", physics_reasoning(record))[:-1]
        wrong = "".join(head) + f"{float(last) * 1.37 + 0.11:.3f}"
        assert not teacher.verified(wrong, record), wrong


def test_the_governing_load_is_verified_in_another_unit_and_to_the_precision_written():
    for record in records():
        load = governing(record)["load"]
        assert teacher.verified(f"The load is {load * 100:.1f} in hundredths.", record)
        assert teacher.verified(f"The load is about {load:.1f}.", record)


@pytest.mark.parametrize("reasoning", ["It is 0.", "It is 5.", "The load 0.296 is 30 times the limit."])
def test_small_whole_numbers_and_tenfold_scales_do_not_pass_for_known_numbers(reasoning):
    assert sum(teacher.verified(reasoning, record) for record in records()) <= 2


def test_reasoning_without_a_number_is_not_verified():
    assert not teacher.verified("It obviously tips over.", records()[0])


@pytest.mark.parametrize("reply, parsed", [
    ("YES\nFAILURE_MODE: Tipping\nREASONING: It tips.", (True, "tipping", "It tips.")),
    ("no.\n\nFAILURE_MODE: none\nREASONING: Fine\nbecause it holds.", (False, "none", "Fine because it holds.")),
    ("Maybe\nFAILURE_MODE: none\nREASONING: x", None),
    ("YES\nREASONING: no mode line", None),
])
def test_teacher_replies_are_parsed_strictly(reply, parsed):
    assert teacher.parse_answer(reply) == parsed


def test_an_unknown_teacher_split_is_a_user_error(tmp_path):
    with pytest.raises(PhysloraError, match="--teacher-splits: unknown split 'trian'"):
        generate_data.main(["physics", "--out", str(tmp_path / "out"), "--train", "14", "--val", "14",
                            "--test-seen", "14", "--test-unseen", "14", "--teacher-url", "http://127.0.0.1:1",
                            "--teacher-model", "m", "--teacher-splits", "trian"])
