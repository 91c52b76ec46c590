"""From records to batches: chat format, loss masks, truncation, bucketing, packing without leakage."""
import pytest
import torch

from data.batching import (Example, collate, encode_records, epoch_plan, evaluation_batches, padding_share,
                           prompt_and_target_ids, training_windows)
from evaluation import generation
from model.loss import IGNORE_INDEX, next_token_loss
from model.tokenizer import Tokenizer
from tiny_models import TINY, make_pair
from tokenizer_folders import folder_for


@pytest.fixture(scope="module", params=["smollm2-instruct", "llama-3.2-instruct"])
def tokenizer(request, tmp_path_factory):
    return Tokenizer.from_folder(folder_for(tmp_path_factory.mktemp("tok") / "t", request.param))


def record(prompt, target):
    return {"task": "physics_scenario", "prompt": prompt, "target": target}


def test_prompt_is_the_generation_prompt_and_target_ends_with_the_end_of_turn_token(tokenizer):
    prompt_ids, target_ids = prompt_and_target_ids(tokenizer, "Will it tip?", "YES, tipping")
    user = [{"role": "user", "content": "Will it tip?"}]
    assert prompt_ids == tokenizer.encode(tokenizer.apply_chat_template(user, add_generation_prompt=True))
    end_of_turn = "<|im_end|>" if tokenizer.chat_format == "chatml" else "<|eot_id|>"
    assert tokenizer.decode(target_ids, skip_special_tokens=False) == "YES, tipping" + end_of_turn


def test_an_imported_chats_system_message_and_earlier_turns_come_before_its_prompt(tokenizer):
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    record = {"prompt": "Define work.", "target": "Force times displacement.",
              "meta": {"system": "You are a physics tutor.", "history": history}}
    conversation = [{"role": "system", "content": "You are a physics tutor."}, *history,
                    {"role": "user", "content": "Define work."}]
    expected = tokenizer.encode(tokenizer.apply_chat_template(conversation, add_generation_prompt=True))
    example = encode_records([record], tokenizer, max_len=512).examples[0]
    assert example.input_ids[:example.prompt_length] == expected
    assert generation.prompt_ids(tokenizer, record) == expected  # evaluation sees what training saw


def test_labels_are_ignored_on_every_prompt_and_padding_position(tokenizer):
    encoded = encode_records([record("Short?", "NO"), record("A much longer question here?", "YES, slipping")],
                             tokenizer, max_len=512)
    batch = collate(encoded.examples, [[0], [1]], tokenizer.pad_id)
    for row, example in enumerate(encoded.examples):
        n, prompt = len(example.input_ids), example.prompt_length
        assert (batch.labels[row, :prompt] == IGNORE_INDEX).all()
        assert (batch.labels[row, n:] == IGNORE_INDEX).all() and (batch.input_ids[row, n:] == tokenizer.pad_id).all()
        assert batch.labels[row, prompt:n].tolist() == example.input_ids[prompt:]
    assert batch.padding_tokens == batch.input_ids.numel() - batch.tokens > 0
    assert batch.target_tokens == sum(len(e.input_ids) - e.prompt_length for e in encoded.examples)


def test_too_long_examples_lose_their_prompt_start_and_keep_the_target(tokenizer):
    short, long_prompt, long_target = record("ok?", "YES"), record("x" * 400, "YES"), record("ok?", "y" * 400)
    encoded = encode_records([short, long_prompt, long_target], tokenizer, max_len=300)  # one token per byte
    assert (encoded.records, encoded.truncated, encoded.dropped, len(encoded.examples)) == (3, 1, 1, 2)
    kept = encoded.examples[1]
    full_prompt, target = prompt_and_target_ids(tokenizer, "x" * 400, "YES")
    assert len(kept.input_ids) == 300 and kept.input_ids[kept.prompt_length:] == target
    assert kept.input_ids[:kept.prompt_length] == full_prompt[-kept.prompt_length:]


def physics_record(i):
    mode = ("tipping", "none")[i % 2]
    return record(f"Scenario {i}: will it fail?",
                  f"{'YES' if mode != 'none' else 'NO'}\nFAILURE_MODE: {mode}\nREASONING: tan 8.5° = 0.149 × {i}.")


def target_text(tokenizer, example):
    return tokenizer.decode(example.input_ids[example.prompt_length:], skip_special_tokens=False)


def test_reasoning_share_zero_trains_every_target_on_its_answer_lines_only(tokenizer):
    records = [physics_record(i) for i in range(6)]
    encoded = encode_records(records, tokenizer, max_len=512, reasoning_share=0.0)
    assert encoded.answer_only == 6
    for r, example in zip(records, encoded.examples):
        assert target_text(tokenizer, example) == r["target"][:r["target"].index("REASONING:")]


def test_reasoning_share_keeps_a_seeded_share_whole_and_never_cuts_a_target_without_reasoning(tokenizer):
    records = [physics_record(i) for i in range(200)] + [record("Plain?", "Yes, it fails.")] * 20
    full = encode_records(records, tokenizer, max_len=512)
    cut = encode_records(records, tokenizer, max_len=512, reasoning_share=0.25, seed=3)
    kept = [a.input_ids == b.input_ids for a, b in zip(full.examples, cut.examples)]
    assert all(kept[200:]) and full.answer_only == 0
    assert cut.answer_only == 200 - sum(kept[:200]) and 120 < cut.answer_only < 180  # binomial(200, 0.75): 150 ± 18
    again = encode_records(records, tokenizer, max_len=512, reasoning_share=0.25, seed=3)
    other = encode_records(records, tokenizer, max_len=512, reasoning_share=0.25, seed=4)
    assert [e.input_ids for e in again.examples] == [e.input_ids for e in cut.examples]
    assert [e.input_ids for e in other.examples] != [e.input_ids for e in cut.examples]


def test_epoch_plan_covers_every_example_once_and_depends_only_on_seed_and_epoch():
    lengths = [3 + (7 * i) % 40 for i in range(103)]
    plan = epoch_plan(lengths, micro_batch=4, seed=1, epoch=0)
    assert sorted(i for rows in plan for row in rows for i in row) == list(range(103))
    assert plan == epoch_plan(lengths, micro_batch=4, seed=1, epoch=0)
    assert plan != epoch_plan(lengths, micro_batch=4, seed=1, epoch=1)


def test_each_epoch_starts_with_its_longest_micro_batch():
    lengths = [3 + (7 * i) % 40 for i in range(103)]
    for epoch in range(3):
        plan = epoch_plan(lengths, micro_batch=4, seed=epoch, epoch=epoch)
        longest = [max(lengths[i] for [i] in rows) for rows in plan]
        assert longest[0] == max(lengths)
        assert longest[1:] != sorted(longest[1:], reverse=True)  # the rest stay shuffled


def test_length_buckets_pad_far_less_than_random_batches():
    lengths = [3 + (37 * i) % 200 for i in range(400)]
    examples = [Example([1] * n, 1) for n in lengths]
    bucketed = padding_share(examples, epoch_plan(lengths, micro_batch=8, seed=0, epoch=0))
    in_order = padding_share(examples, [[[i] for i in range(k, k + 8)] for k in range(0, 400, 8)])
    assert bucketed < 0.1 < 0.4 < in_order


def test_packed_rows_fit_max_len_and_hold_every_example_once():
    lengths = [3 + (7 * i) % 40 for i in range(50)]
    plan = epoch_plan(lengths, micro_batch=2, seed=0, epoch=0, pack_len=64)
    assert all(sum(lengths[i] for i in row) <= 64 for rows in plan for row in rows)
    assert sorted(i for rows in plan for row in rows for i in row) == list(range(50))


def test_windows_group_micro_batches_per_optimizer_step_and_count_epochs():
    windows = training_windows([5] * 10, micro_batch=2, accumulation=2, epochs=2, seed=0)
    assert [len(batches) for _, batches in windows] == [2, 2, 1] * 2  # 5 micro-batches per epoch
    assert [round(epoch, 3) for epoch, _ in windows] == [0.333, 0.667, 1.0, 1.333, 1.667, 2.0]


def test_evaluation_batches_hold_every_example_sorted_by_length():
    batches = evaluation_batches([9, 2, 5, 7, 1], micro_batch=2)
    assert batches == [[[4], [1]], [[2], [3]], [[0]]]


def test_packed_examples_neither_see_each_other_nor_shift_positions():
    _, model = make_pair("llama3-gqa-rope-scaling")
    generator = torch.Generator().manual_seed(0)
    examples = [Example(torch.randint(0, TINY["vocab_size"], (n,), generator=generator).tolist(), 2) for n in (7, 5, 9)]
    packed = collate(examples, [[0, 1, 2]], pad_id=0)
    assert packed.positions[0].tolist() == list(range(7)) + list(range(5)) + list(range(9))
    with torch.no_grad():
        hidden = model.hidden_states(packed.input_ids, positions=packed.positions, mask=packed.mask)[0]
        start = 0
        for example in examples:
            alone = model.hidden_states(torch.tensor([example.input_ids]))[0]
            assert (hidden[start:start + len(alone)] - alone).abs().max() <= 1e-5
            start += len(alone)


def test_a_packed_row_has_the_summed_loss_of_its_examples_alone():
    _, model = make_pair("qwen2-tied")
    generator = torch.Generator().manual_seed(1)
    examples = [Example(torch.randint(0, TINY["vocab_size"], (n,), generator=generator).tolist(), 3) for n in (8, 6)]

    def loss(batch):
        hidden = model.hidden_states(batch.input_ids, positions=batch.positions, mask=batch.mask)
        return next_token_loss(hidden, model.lm_head.weight, batch.labels).item()
    with torch.no_grad():
        packed = collate(examples, [[0, 1], [1]], pad_id=0)  # a second, shorter row: padded and masked
        assert packed.target_tokens == 5 + 3 + 3
        alone = sum(loss(collate(examples, [[i]], pad_id=0)) for i in (0, 1, 1))
        assert abs(loss(packed) - alone) <= 1e-4


def test_padding_to_a_multiple_adds_unlabelled_pads_and_leaves_the_loss_unchanged():
    _, model = make_pair("qwen2-tied")
    generator = torch.Generator().manual_seed(2)
    examples = [Example(torch.randint(1, TINY["vocab_size"], (n,), generator=generator).tolist(), 3) for n in (9, 6)]
    plain, padded = collate(examples, [[0], [1]], pad_id=0), collate(examples, [[0], [1]], pad_id=0, multiple=8)
    assert plain.input_ids.shape[1] == 9 and padded.input_ids.shape[1] == 16
    assert (padded.labels[:, 9:] == IGNORE_INDEX).all() and (padded.input_ids[:, 9:] == 0).all()
    assert (padded.target_tokens, padded.tokens, padded.padding_tokens) == (plain.target_tokens, 15, 17)
    assert padding_share(examples, [[[0], [1]]], multiple=8) == 17 / 32
    with torch.no_grad():
        losses = [next_token_loss(model.hidden_states(b.input_ids), model.lm_head.weight, b.labels) for b in (plain, padded)]
    assert abs(losses[0] - losses[1]) <= 1e-5
